"""The energy recipes: registered; ``ebm`` trains a few PCD steps, samples and reports."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import registry
from genjax.energy import recipes


def test_registered():
    assert "genjax.energy.recipes" in registry.RECIPE_MODULES
    assert {r.name for r in recipes.RECIPES} == {"ebm", "ebm-digits", "score-matching", "rbm"}
    assert all(r.family == "energy" for r in recipes.RECIPES)


def test_ebm_trains_samples_and_reports(tmp_path, monkeypatch):
    monkeypatch.setattr(recipes, "REPORT_SAMPLES", 64)
    monkeypatch.setattr(recipes, "RING_SAMPLE_STEPS", 10)
    monkeypatch.setattr(recipes, "RING_BUFFER", 128)
    recipe = next(r for r in recipes.RECIPES if r.name == "ebm")
    train = np.asarray(jax.random.normal(jax.random.key(0), (64, 2))) * 3
    params = recipe.init(jax.random.key(1), train)
    assert params["buffer"].shape == (128, 2)
    step = jax.jit(recipe.step)
    buffer0 = np.asarray(params["buffer"])
    for i in range(5):
        params, metrics = step(params, jnp.asarray(train[i * 8 : (i + 1) * 8]), jax.random.key(i))
        assert all(np.isfinite(float(v)) for v in metrics.values()), metrics
    assert np.any(np.asarray(params["buffer"]) != buffer0)  # the chains were written back
    for sampler in ("langevin", "mala"):  # the report's programs: n = 64, 10 steps
        x = recipe.sample(jax.random.key(2), params, 64, sampler=sampler)
        assert x.shape == (64, 2) and bool(jnp.all(jnp.isfinite(x)))
    with pytest.raises(ValueError, match="sampler"):
        recipe.sample(jax.random.key(2), params, 4, sampler="gibbs")
    out = recipe.report(jax.random.key(3), params, train, train, tmp_path)
    json.dumps(out)
    assert {"energy_distance", "mmd", "mode_coverage", "energy_distance_mala"} <= set(out)
    assert all(np.isfinite(v) for v in out.values())
    assert (tmp_path / "samples.png").exists() and (tmp_path / "energy.png").exists()
