"""The contrastive recipes, a few steps each: init, loss, sampling, report."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genjax import data, registry
from genjax.contrastive import recipes


def _digits(split, n):
    images, labels = data.load_with_labels("digits", split, 0)
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
    assert [r.name for r in recipes.RECIPES] == ["clip"]
    assert registry.get("clip").sample_options == ("prompt",)


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
