"""The ``vae-iaf`` recipe trains a few steps through genjax.train.fit and draws its report."""

import jax
import numpy as np

from genjax import data, registry, train
from genjax.composites import flow_posterior_recipes as recipes


def test_vae_iaf_trains_and_reports(tmp_path, monkeypatch):
    # the report's IWAE-1000 on 100 images takes tens of seconds: k=10 in chunks of 5 on 8
    monkeypatch.setattr(recipes, "IWAE_K", 10)
    monkeypatch.setattr(recipes, "IWAE_CHUNK", 5)
    monkeypatch.setattr(recipes, "IWAE_IMAGES", 8)
    monkeypatch.setattr(recipes, "ELBO_DRAWS", 2)
    monkeypatch.setattr(recipes, "PICTURE_DIGITS", 1)
    monkeypatch.setattr(recipes, "PICTURE_DRAWS", 50)
    recipe = registry.get("vae-iaf")
    assert recipe.family == "composites"
    train_x, test_x = data.load("digits")[:64], data.load("digits", split="test")[:40]
    res = train.fit(
        recipe,
        train_x,
        key=jax.random.key(0),
        out_dir=tmp_path,
        steps=2,
        batch_size=16,
        progress=False,
        report=False,
    )
    last = res.history[-1]
    for name in recipes.POSTERIORS:
        assert np.isfinite(last[f"elbo_{name}"]) and last[f"elbo_{name}"] < 0
    samples = recipe.sample(jax.random.key(1), res.params, 4)
    assert samples.shape == (4, 8, 8, 1) and bool(np.all(np.isfinite(samples)))
    figures = recipe.report(jax.random.key(2), res.params, train_x, test_x, tmp_path)
    for name in recipes.POSTERIORS:
        elbo = figures[f"test_elbo_nats_first8_{name}"]
        iwae = figures[f"test_iwae10_nats_first8_{name}"]
        assert elbo < 0 and np.isclose(figures[f"gap_nats_{name}"], iwae - elbo)
        assert figures[f"gap_nats_{name}"] > -1.0  # L_10 >= ELBO up to the noise of 2 draws
    for picture in ("posteriors.png", "samples.png"):
        assert (tmp_path / picture).stat().st_size > 0
