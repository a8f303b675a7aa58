"""The ``rbm`` recipe end to end on a tiny configuration: CD-1 steps, Gibbs samples, the AIS
report (few chains and temperatures) and its pictures."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np

from genjax import data
from genjax.energy import rbm as R
from genjax.energy import recipes


def test_rbm_recipe_trains_samples_and_reports(tmp_path, monkeypatch):
    monkeypatch.setattr(recipes, "RBM_SAMPLE_STEPS", 10)
    monkeypatch.setattr(recipes, "RBM_AIS_CHAINS", 8)
    monkeypatch.setattr(recipes, "RBM_AIS_BETAS", (5, 5, 5))
    monkeypatch.setattr(recipes, "RBM_LL_IMAGES", 32)
    recipe = next(r for r in recipes.RECIPES if r.name == "rbm")
    train = data.load("digits")[:128]
    test = data.load("digits", split="test")[:64]
    params = recipe.init(jax.random.key(0), train)
    assert params.W.shape == (64, recipes.RBM_HIDDEN)
    step = jax.jit(jax.value_and_grad(recipe.loss, has_aux=True))
    for i in range(3):
        (loss, metrics), g = step(params, jnp.asarray(train[i * 32 : (i + 1) * 32]),
                                  jax.random.key(i))  # fmt: skip
        assert np.isfinite(float(loss)) and 0.0 <= float(metrics["reconstruction_error"]) <= 1.0
        params = jax.tree.map(lambda a, d: a - 0.05 * d, params, g)
    x = recipe.sample(jax.random.key(1), params, 100, steps=1)  # the report's program
    assert x.shape == (100, 8, 8, 1) and set(np.unique(np.asarray(x))) <= {0.0, 1.0}
    assert len(recipes.rbm_betas((5, 5, 5))) == 16
    out = recipe.report(jax.random.key(2), params, train, test, tmp_path)
    json.dumps(out)
    assert all(np.isfinite(v) for v in out.values()), out
    # log-likelihoods of 64 binary pixels are negative and above the uniform model's 64 log 1/2
    assert 64 * np.log(0.5) < out["test_log_likelihood"] < 0.0
    assert (
        out["train_minus_test_log_likelihood"]
        == out["train_log_likelihood"] - out["test_log_likelihood"]
    )
    assert isinstance(params, R.RBMParams)
    assert (tmp_path / "samples.png").exists() and (tmp_path / "chains.png").exists()
