"""Every VAE recipe trains a few steps through genjax.train.fit and draws its report."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import registry, train
from genjax.vae import recipes


def _digits(n):
    from genjax import data

    return data.load("digits")[:n], data.load("digits", split="test")


def _train_and_report(tmp_path, name):
    recipe = registry.get(name)
    train_x, test_x = _digits(64)
    res = train.fit(recipe, train_x, key=jax.random.key(0), out_dir=tmp_path, steps=2,
                    batch_size=16, progress=False, report=False)
    assert all(np.isfinite(v) for k, v in res.history[-1].items() if k != "step")
    params = res.params
    samples = recipe.sample(jax.random.key(1), params, 4)
    assert samples.shape == (4, 8, 8, 1) and bool(jnp.all(jnp.isfinite(samples)))
    figures = recipe.report(jax.random.key(2), params, train_x, test_x, tmp_path)
    if name == "vq-vae":
        assert 1.0 <= figures["test_codebook_perplexity"] <= figures["num_codes"]
    else:
        assert figures["test_elbo_nats"] < 0
        assert np.isfinite(figures["test_iwae10_nats_first8"])
    for picture in ("samples.png", "reconstructions.png", "interpolations.png"):
        assert (tmp_path / picture).stat().st_size > 0
    if name in ("vae", "iwae", "hvae"):  # 2-D (top) latents on the digits test set
        assert (tmp_path / "latents.png").exists()


FAST = ("vae", "iwae")  # share one network, so their compiled report functions


@pytest.mark.parametrize("name", FAST)
def test_recipe_trains_and_reports(tmp_path, monkeypatch, name):
    # the report's IWAE-5000 on 100 images takes tens of seconds: k=10 on 8 images here
    monkeypatch.setattr(recipes, "IWAE_K", 10)
    monkeypatch.setattr(recipes, "IWAE_IMAGES", 8)
    _train_and_report(tmp_path, name)


@pytest.mark.slow
def test_other_recipes_train_and_report(tmp_path, monkeypatch):
    monkeypatch.setattr(recipes, "IWAE_K", 10)
    monkeypatch.setattr(recipes, "IWAE_IMAGES", 8)
    others = [r.name for r in recipes.RECIPES
              if r.name not in FAST + ("cvae", "dae", "dae-ring")]  # those: tested below
    assert len(others) == 3  # (latent-diffusion: tests/composites/test_recipes.py)
    for name in others:
        _train_and_report(tmp_path / name, name)


def _labelled_digits(n):
    from genjax import data

    return (tuple(a[:n] for a in data.load_with_labels("digits")),
            data.load_with_labels("digits", "test"))


@pytest.mark.parametrize("name", ("cvae", "dae", "dae-ring"))
def test_conditional_and_denoising_recipes(tmp_path, monkeypatch, name):
    from genjax import data

    # 10 judged samples per class: the same shape as the 10 x 10 grid, one compiled sampler
    monkeypatch.setattr(recipes, "CVAE_PER_CLASS", 10)
    recipe = registry.get(name)
    if name == "cvae":
        train_data, test_data = _labelled_digits(64)
    elif name == "dae":
        train_data, test_data = data.load("digits")[:64], data.load("digits", split="test")
    else:  # the whole test split: the report recognises the built-in ring by its points
        train_data, test_data = data.load("ring")[:256], data.load("ring", split="test")
    res = train.fit(recipe, train_data, key=jax.random.key(0), out_dir=tmp_path, steps=2,
                    batch_size=16, progress=False, report=False)
    assert all(np.isfinite(v) for k, v in res.history[-1].items() if k != "step")
    samples = recipe.sample(jax.random.key(1), res.params, 4)
    assert samples.shape == (4, *np.shape(test_data[0] if name == "cvae" else test_data)[1:])
    assert bool(jnp.all(jnp.isfinite(samples)))
    figures = recipe.report(jax.random.key(2), res.params, train_data, test_data, tmp_path)
    assert all(np.isfinite(v) for v in figures.values())
    if name == "cvae":
        assert figures["test_elbo_nats"] < 0 and 0 <= figures["sample_class_accuracy"] <= 1
        assert figures["classifier_test_accuracy"] > 0.9
        sevens = recipe.sample(jax.random.key(1), res.params, 4, prompt="a handwritten seven")
        np.testing.assert_allclose(  # "7" and "seven" name the same class: same samples
            sevens, recipe.sample(jax.random.key(1), res.params, 4, prompt="7"))
        assert not np.allclose(sevens, samples)  # not the classes 0, 1, 2, 3 in turn
        with pytest.raises(ValueError, match="prompt"):
            recipe.sample(jax.random.key(1), res.params, 4, prompt="a handwritten cat")
        assert (tmp_path / "samples.png").stat().st_size > 0
    elif name == "dae":
        # the noisy input's error is sigma^2 per pixel
        np.testing.assert_allclose(figures["test_mse_noisy_sigma_0.5"], 0.25, rtol=0.03)
        assert (tmp_path / "denoising.png").stat().st_size > 0
    else:
        np.testing.assert_allclose(figures["test_mse_noisy"], 1.0, rtol=0.05)
        assert 0 < figures["test_mse_exact_posterior_mean"] < figures["test_mse_noisy"]
        assert (tmp_path / "denoising.png").stat().st_size > 0
