"""The contrastive recipes, a few steps each: init, loss, sampling, report."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genjax import registry
from genjax.contrastive import recipes


def _digits(split, n):
    images, labels = recipes.load_digits("digits", split, 0)
    return jnp.asarray(images[:n]), jnp.asarray(labels[:n])


def _train(recipe, params, batch, steps):
    opt = optax.adam(recipe.learning_rate)

    @jax.jit
    def step(params, opt_state, key):
        (loss, metrics), grads = jax.value_and_grad(recipe.loss, has_aux=True)(
            params, batch, key
        )
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, metrics

    opt_state, losses = opt.init(params), []
    for i in range(steps):
        params, opt_state, loss, metrics = step(params, opt_state, jax.random.key(i))
        losses.append(float(loss))
    return params, losses, metrics


def test_registered():
    assert [r.name for r in recipes.RECIPES] == ["clip", "text-to-digit"]
    assert registry.get("clip").sample_options == ("prompt",)
    assert registry.get("text-to-digit").sample_options == ("prompt", "guidance", "steps")


@pytest.mark.slow
def test_clip_trains_retrieves_and_reports(tmp_path):
    recipe = registry.get("clip")
    train = _digits("train", 64)
    params = recipe.init(jax.random.key(0), train)
    params, losses, metrics = _train(recipe, params, train, 8)
    # InfoNCE starts near log 64 ~ 4.2 and must fall on a fixed batch.
    assert losses[0] > 3.0 and np.mean(losses[-3:]) < losses[0] - 0.2
    assert 0 < float(metrics["logit_scale"]) <= 100
    x = recipe.sample(jax.random.key(1), params, 5, prompt="the digit 4")
    assert x.shape == (5, 8, 8, 1)
    with pytest.raises(ValueError, match="prompt"):
        recipe.sample(jax.random.key(1), params, 5, prompt="  ")
    out = recipe.report(jax.random.key(2), params, train, _digits("test", 359), tmp_path)
    assert (tmp_path / "samples.png").stat().st_size > 0
    assert 0.0 <= out["zero_shot_accuracy"] <= 1.0
    assert all(np.isfinite(v) for v in out.values())


def test_text_to_digit_loss_and_guided_sampling():
    # Untrained weights (the training step is exercised by the clip test's loop and the
    # loss pieces by test_text_to_image): the prompt plumbing, CFG and errors.
    recipe = registry.get("text-to-digit")
    images, labels = _digits("train", 4)
    params = recipe.init(jax.random.key(0), (images, labels))
    loss, metrics = jax.jit(recipe.loss)(params, (images, labels), jax.random.key(1))
    assert np.isfinite(float(loss)) and float(metrics["clip_loss"]) > 0
    kw = dict(prompt="a handwritten three", steps=2)
    uncond = recipe.sample(jax.random.key(3), params, 4, guidance=0.0, **kw)
    guided = recipe.sample(jax.random.key(3), params, 4, guidance=3.0, **kw)
    assert uncond.shape == (4, 8, 8, 1) and 0 <= float(uncond.min()) <= float(uncond.max()) <= 1
    # Same noise: the prompt moves the guided samples, not the unconditional ones.
    other = recipe.sample(jax.random.key(3), params, 4, guidance=0.0, steps=2, prompt="a one")
    np.testing.assert_allclose(other, uncond, atol=1e-6)
    assert float(jnp.abs(guided - uncond).max()) > 1e-4
    for bad in ("", "seven!", ["a one"]):
        with pytest.raises(ValueError, match="prompt"):
            recipe.sample(jax.random.key(3), params, 4, prompt=bad)
    with pytest.raises(ValueError, match="steps"):
        recipe.sample(jax.random.key(3), params, 4, steps=0)
