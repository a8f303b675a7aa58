"""The flows recipes: registered, and a few steps each of the cheap ones through their own
functions (the flow-matching recipe is in ``test_flow_matching.py``)."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import data, train
from genjax.flows import flow, recipes

NAMES = ["realnvp", "glow", "maf", "nsf", "ffjord", "flow-matching"]


def _recipe(name):
    return next(r for r in recipes.RECIPES if r.name == name)


def test_registered():
    from genjax import registry

    assert [r.name for r in recipes.RECIPES] == NAMES
    for name in NAMES:
        assert registry.get(name).family == "flows"


def test_recipes_call_public_functions_only():
    # No private name of another module: recipes.py reads `module.name`, never `module._name`.
    import inspect
    import re

    source = inspect.getsource(recipes)
    assert not re.findall(r"\b(?:cnf|fm|flow|metrics|plotting|targets|jax|jnp)\._\w", source)


def test_realnvp_fits_samples_and_reports(tmp_path, monkeypatch):
    monkeypatch.setattr(recipes, "REPORT_SAMPLES", 64)
    monkeypatch.setattr(recipes, "GRID", 16)
    monkeypatch.setattr(recipes.FlowRecipe, "grid", 16)
    monkeypatch.setattr(recipes, "EVAL_CHUNK", 256)
    recipe = _recipe("realnvp")
    train_x = data.load("moons", split="train")[:512]
    test_x = data.load("moons", split="test")[:256]
    result = train.fit(recipe, train_x, steps=10, batch_size=64, key=jax.random.key(0),
                       out_dir=tmp_path, test_data=test_x, progress=False)  # fmt: skip
    summary = json.loads((tmp_path / "summary.json").read_text())
    for name in ("test_log_likelihood", "train_log_likelihood", "energy_distance"):
        assert np.isfinite(summary[name])
    assert (tmp_path / "density.png").stat().st_size > 0
    assert (tmp_path / "samples.png").stat().st_size > 0
    # The reported test LL is the mean log-density in data units (not the standardised one).
    lp = recipes.REALNVP.log_prob(result.params, jnp.asarray(test_x))
    np.testing.assert_allclose(summary["test_log_likelihood"], float(jnp.mean(lp)), rtol=1e-4)
    x = recipe.sample(jax.random.key(1), result.params, 8)
    assert x.shape == (8, 2) and bool(jnp.all(jnp.isfinite(x)))


def test_ffjord_loss_gradient_and_sample():
    # The recipe's functions on a batch of the ring: a finite NLL, a gradient for every
    # weight of the velocity network (held whole in the params), samples in data units.
    recipe = _recipe("ffjord")
    ring = jnp.asarray(data.load("ring", split="train")[:32])
    params = recipe.init(jax.random.key(0), ring)
    (loss, metrics), grads = jax.jit(jax.value_and_grad(recipe.loss, has_aux=True))(
        params, ring, jax.random.key(1)
    )
    assert np.isfinite(float(loss)) and set(metrics) == {"nll_standardised"}
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads["model"]))
    assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads["model"])) > 0
    x = recipe.sample(jax.random.key(2), params, 16, steps=4)
    assert x.shape == (16, 2) and bool(jnp.all(jnp.isfinite(x)))
    # Data units: about the ring's scale (radius 4), not the standardised one.
    assert 1.0 < float(jnp.std(x)) < 10.0


@pytest.mark.slow
def test_glow_loss_gradient_and_sample(monkeypatch):
    # The recipe's functions with a one-level, one-step Glow: the same code path, a fraction
    # of the compile time (the multi-scale split is held by the bijector suite's Glow; the
    # full recipe is run by `genjax train glow`).
    small = flow.glow((8, 8, 1), num_levels=1, num_steps=1, hidden_channels=8)
    monkeypatch.setattr(recipes, "GLOW", small)
    recipe = _recipe("glow")
    images = jnp.asarray(data.load("digits", split="train")[:16])
    params = recipe.init(jax.random.key(0), images)
    (loss, metrics), grads = jax.jit(jax.value_and_grad(recipe.loss, has_aux=True))(
        params, images, jax.random.key(1)
    )
    # A fresh flow on dequantised digits is worse than uniform on [0, 1]^64 (0 nats) only
    # by its initial mismatch; bits/dim of the discrete bound is log2(17) = 4.09 for it.
    assert np.isfinite(float(loss)) and float(metrics["bits_per_dim"]) > 0
    assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads)) > 0
    x = recipe.sample(jax.random.key(2), params, 4, temperature=0.7)
    assert x.shape == (4, 8, 8, 1) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0
