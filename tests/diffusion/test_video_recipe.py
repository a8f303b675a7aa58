"""``genjax train video-dit`` end to end on a tiny configuration: a few steps of the trainer,
every sampler, the pictures and the motion figures."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genjax import data, registry
from genjax.diffusion import video_data, video_recipes


@pytest.fixture
def tiny(monkeypatch):
    # A one-block network of width 8 and 4-step samplers: the recipe's code paths at a
    # fraction of its cost (the full configuration is what `genjax train` runs). Joint
    # attention: one block instead of a spatial-temporal pair halves the programs compiled
    # here (the factorised network is held to its oracle in tests/nn/test_video_dit.py).
    monkeypatch.setitem(video_recipes.NET, "attention", "joint")
    monkeypatch.setitem(video_recipes.NET, "dim", 8)
    monkeypatch.setitem(video_recipes.NET, "depth", 1)
    monkeypatch.setitem(video_recipes.NET, "num_heads", 2)
    monkeypatch.setitem(video_recipes.NET, "frequency_dim", 8)
    monkeypatch.setitem(video_recipes.DEFAULT_STEPS, "ddim", 4)
    monkeypatch.setitem(video_recipes.DEFAULT_STEPS, "dpm_solver_pp", 4)
    monkeypatch.setattr(video_recipes, "REPORT_CLIPS", 6)
    monkeypatch.setattr(video_recipes, "STRIP_CLIPS", 2)


def test_video_dit_trains_samples_and_reports(tiny, tmp_path):
    # The recipe's own functions, as the trainer calls them (the trainer itself, with its
    # checkpoints and sharding, is tested in tests/shared/test_train.py).
    recipe = registry.get("video-dit")
    assert recipe.family == "diffusion" and recipe.sample_options == ("sampler", "steps")
    clips, _, _ = video_data.moving_digit_clips(data.load("digits", split="test")[:64])
    params = recipe.init(jax.random.key(0), clips)
    opt = optax.sgd(recipe.learning_rate)  # the trainer's Adam is tested with the trainer

    @jax.jit
    def step(params, opt_state, key):
        (loss, _), grads = jax.value_and_grad(recipe.loss, has_aux=True)(
            params, jnp.asarray(clips[:8]), key
        )
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    opt_state = opt.init(params)
    losses = []
    for i in range(3):
        params, opt_state, loss = step(params, opt_state, jax.random.key(i))
        losses.append(float(loss))
    # At initialisation the network predicts eps = 0 (adaLN-Zero), so the loss is
    # E||eps||^2 / dim = 1 up to the batch's sampling error; the steps move the weights.
    assert 0.8 < losses[0] < 1.2 and np.all(np.isfinite(losses))
    assert float(jnp.abs(params["net"].final.linear.kernel[...]).max()) > 0.0
    figures = recipe.report(jax.random.key(2), params, clips, clips[:32], tmp_path)
    for name in ("samples.png", "samples.gif", "data.png", "motion.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    # Real clips move exactly linearly; shuffled ones do not (the figure's two references).
    assert figures["com_residual_real"] < 1e-6
    assert figures["shift_error_real"] < 1e-9
    assert figures["com_residual_shuffled"] > 0.5
    assert np.isfinite(figures["com_residual_samples"])
    assert 0.0 <= figures["fraction_samples_consistent"] <= 1.0
