"""The ``gmm`` recipe and recovery of the ring's 8 modes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from genjax import data, mixture, targets
from genjax.mixture.recipes import RECIPES


def _match(fitted_means: np.ndarray, true_means: np.ndarray) -> np.ndarray:
    # For each true mode the nearest fitted mean; all 8 must be distinct (one per mode).
    d = np.linalg.norm(fitted_means[:, None] - true_means[None], axis=-1)  # (K, K)
    nearest = np.argmin(d, axis=0)
    assert len(set(nearest.tolist())) == len(true_means), "two modes share a component"
    return nearest


def test_fit_recovers_the_ring():
    x = jnp.asarray(data.load("ring"))  # 20,000 draws of targets.ring()
    truth = targets.ring()
    params, hist = mixture.fit(jax.random.key(0), x, k=8, tol=1e-6)
    assert bool(hist.converged)
    idx = _match(np.asarray(params.means), np.asarray(truth.means))
    # ~2,500 points per mode, std 0.3: the standard error of a mean is 0.006, of a
    # variance 0.09 * sqrt(2 / 2500) = 0.0025, of a weight sqrt(1/8 * 7/8 / 20000) = 0.0023;
    # the bounds below are 5-8 standard errors.
    np.testing.assert_allclose(np.asarray(params.means)[idx], truth.means, atol=0.05)
    np.testing.assert_allclose(np.asarray(params.covs)[idx], truth.covs, atol=0.015)
    np.testing.assert_allclose(np.asarray(params.weights)[idx], truth.weights, atol=0.015)
    # The fitted log-likelihood of held-out data is within 0.01 nats/point of the truth's.
    test = jnp.asarray(data.load("ring", split="test"))
    gap = float(jnp.mean(truth.log_prob(test)) - jnp.mean(mixture.log_prob(params, test)))
    assert abs(gap) < 0.01, gap


def test_gmm_recipe_steps_and_report(tmp_path):
    (recipe,) = RECIPES
    assert recipe.name == "gmm" and recipe.full_batch and recipe.step is not None
    x = jnp.asarray(data.load("ring")[:4000])
    params = recipe.init(jax.random.key(0), x)
    step = jax.jit(recipe.step)
    lls = []
    for i in range(3):
        params, metrics = step(params, x, jax.random.key(i))
        lls.append(float(metrics["log_likelihood"]))
    assert lls[1] >= lls[0] - 1e-5 and lls[2] >= lls[1] - 1e-5  # EM: never down (float32)
    draws = recipe.sample(jax.random.key(1), params, 50)
    assert draws.shape == (50, 2)
    test = jnp.asarray(data.load("ring", split="test")[:2000])
    figures = recipe.report(jax.random.key(2), params, x, test, tmp_path)
    assert (tmp_path / "samples.png").stat().st_size > 0
    assert figures["mode_coverage"] == 1.0
    assert abs(figures["log_likelihood_gap"]) < 0.05
    assert np.isfinite(figures["bic"]) and figures["bic"] > 0
    assert -3.0 < figures["test_log_likelihood"] < -2.0
