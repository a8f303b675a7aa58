"""Initialisation and sampling: shared noise against the oracle, and statistics."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from genjax import mixture, testing
from genjax.mixture import oracle
from tests.mixture import COVARIANCE_TYPES, three_blobs


def test_kmeans_plusplus_matches_oracle_on_shared_uniforms(x64):
    x = three_blobs(200, seed=1)
    rng = np.random.default_rng(0)
    uniforms = rng.uniform(size=6)
    sw = rng.uniform(0.0, 2.0, size=200)
    sw[:50] = 0.0  # points of zero weight are never chosen
    got = mixture.kmeans_plusplus_from_noise(jnp.asarray(x), jnp.asarray(uniforms), jnp.asarray(sw))
    want = oracle.kmeans_plusplus_from_noise(x, uniforms, sw)
    np.testing.assert_array_equal(got, want)
    assert np.all(np.asarray(got) >= 50)


def test_random_init_matches_oracle_on_shared_gumbels(x64):
    rng = np.random.default_rng(1)
    gumbels = rng.gumbel(size=80)
    sw = rng.uniform(0.5, 1.5, size=80)
    got = mixture.random_from_noise(jnp.asarray(sw), jnp.asarray(gumbels), 5)
    np.testing.assert_array_equal(got, oracle.random_from_noise(sw, gumbels, 5))
    assert len(set(np.asarray(got).tolist())) == 5  # without replacement


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_params_from_centres_matches_oracle(x64, covariance_type):
    x = three_blobs(150, seed=3)
    centres = x[[0, 10, 20]]
    got = mixture.params_from_centres(
        jnp.asarray(x), jnp.asarray(centres), covariance_type=covariance_type, reg_covar=1e-3
    )
    want = oracle.params_from_centres(x, centres, covariance_type, 1e-3)
    for a, b in zip((got.weights, got.means, got.covs), want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


def test_kmeans_plusplus_seeds_one_centre_per_separated_cluster(keys):
    # Four tight clusters 100 apart: after the first centre, D^2 sampling puts all but
    # ~1e-6 of the mass on unvisited clusters, so every key must find all four.
    rng = np.random.default_rng(2)
    corners = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0]])
    x = jnp.asarray(np.repeat(corners, 25, axis=0) + 0.1 * rng.normal(size=(100, 2)),
                    jnp.float32)
    for key in keys:
        indices = np.asarray(mixture.kmeans_plusplus(key, x, 4))
        assert sorted(indices // 25) == [0, 1, 2, 3]
    # The random initialisation, by contrast, may put two centres in one cluster.
    params = mixture.initialize(keys[0], x, k=4, method="random")
    assert params.means.shape == (4, 2)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_from_noise_matches_oracle(x64, covariance_type):
    rng = np.random.default_rng(5)
    means = rng.normal(size=(3, 2))
    covs = {
        "full": np.array([[[1.0, 0.3], [0.3, 0.5]], [[0.2, -0.1], [-0.1, 0.4]], np.eye(2)]),
        "diag": np.array([[1.0, 0.5], [0.2, 0.4], [2.0, 0.1]]),
        "spherical": np.array([1.0, 0.2, 3.0]),
    }[covariance_type]
    params = mixture.GMMParams(jnp.full(3, 1 / 3), jnp.asarray(means), jnp.asarray(covs))
    assert params.covariance_type == covariance_type  # read off covs.ndim
    components = rng.integers(0, 3, size=50)
    eps = rng.normal(size=(50, 2))
    got = mixture.sample_from_noise(params, jnp.asarray(components), jnp.asarray(eps))
    want = oracle.sample_from_noise(means, covs, covariance_type, components, eps)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_sample_moments_and_component_frequencies(key):
    weights = np.array([0.2, 0.5, 0.3])
    # Components > 20 standard deviations apart (for the frequency check below).
    means = np.array([[-30.0, 0.0], [0.0, 20.0], [30.0, -10.0]])
    covs = np.array(
        [[[1.0, 0.3], [0.3, 0.5]], [[0.2, 0.0], [0.0, 0.4]], [[0.5, -0.2], [-0.2, 0.3]]]
    )
    params = mixture.GMMParams(
        jnp.asarray(weights, jnp.float32), jnp.asarray(means, jnp.float32),
        jnp.asarray(covs, jnp.float32),
    )
    n = 20_000
    x = mixture.sample(key, params, n)
    assert x.shape == (n, 2) and x.dtype == jnp.float32
    # The mixture's exact moments: E[x] = sum pi mu, Cov = sum pi (Sigma + mu mu^T) - m m^T.
    mean = weights @ means
    cov = np.einsum("k,kde->de", weights, covs + np.einsum("kd,ke->kde", means, means))
    cov -= np.outer(mean, mean)
    testing.moment_ztest(np.asarray(x), mean, cov, check_variance=True)
    # The components are so far apart that the most responsible one is the one drawn
    # (misassignment probability < 1e-80), so its counts test the categorical draw.
    counts = np.bincount(np.asarray(mixture.predict(params, x)), minlength=3)
    testing.chi_square_test(counts, weights)
