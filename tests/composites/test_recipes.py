"""The composite recipes: latent-diffusion trains a few steps and reports; text-to-digit's
loss, prompt plumbing and guidance on untrained weights."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import data, registry, train
from genjax.composites import recipes
from genjax.vae import recipes as vae_recipes


def _digits(split, n):
    images, labels = data.load_with_labels("digits", split, 0)
    return jnp.asarray(images[:n]), jnp.asarray(labels[:n])


def test_registered():
    assert [r.name for r in recipes.RECIPES] == ["latent-diffusion", "text-to-digit"]
    assert all(registry.get(r.name).family == "composites" for r in recipes.RECIPES)
    assert registry.get("text-to-digit").sample_options == ("prompt", "guidance", "steps",
                                                            "negative_prompt")


@pytest.mark.slow
def test_latent_diffusion_trains_both_phases_and_reports(tmp_path, monkeypatch):
    # the report's IWAE-5000 on 100 images takes tens of seconds: k=10 on 8 images here
    monkeypatch.setattr(vae_recipes, "IWAE_K", 10)
    monkeypatch.setattr(vae_recipes, "IWAE_IMAGES", 8)
    monkeypatch.setattr(recipes, "LD_STEPS", 4)  # two VAE steps, then two denoiser steps
    recipe = registry.get("latent-diffusion")
    # 64 test images: the report's 64 latent-diffusion and prior samples reuse the compiled
    # samplers of the 64-sample calls (the sample grid, this test's own draw)
    train_x, test_x = data.load("digits")[:64], data.load("digits", split="test")[:64]
    res = train.fit(recipe, train_x, key=jax.random.key(0), out_dir=tmp_path, steps=4,
                    batch_size=16, progress=False, report=False)
    phases = [h["vae_phase"] for h in res.history]
    assert phases == [1.0, 1.0, 0.0, 0.0]
    assert all(np.isfinite(v) for h in res.history for k, v in h.items() if k != "step")
    samples = recipe.sample(jax.random.key(1), res.params, 64)
    assert samples.shape == (64, 8, 8, 1) and bool(jnp.all(jnp.isfinite(samples)))
    figures = recipe.report(jax.random.key(2), res.params, train_x, test_x, tmp_path)
    assert figures["mmd_latent_diffusion_vs_test"] >= 0 and figures["test_elbo_nats"] < 0
    for picture in ("samples.png", "reconstructions.png", "interpolations.png"):
        assert (tmp_path / picture).stat().st_size > 0


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
