"""E-step, M-step, log-density, BIC and the EM loop, held against the NumPy oracle.

Tolerances: float64 results agree with the float64 oracle to ~1e-12 per operation (the
two compute the same sums in different orders); rtol 1e-9 leaves room for the ~1e-13
growth over tens of EM iterations. float32 single evaluations use the shared
``genjax.testing`` table (single_op). float32 EM trajectories are compared only over a
few iterations and with rtol 2e-3: each iteration re-fits from float32 responsibilities
whose rounding (~1e-7 relative, times the condition of the fit) is carried forward and
amplified while the iterates still move.
"""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import mixture
from genjax.mixture import oracle
from genjax.testing import assert_close_to_oracle
from tests.mixture import COVARIANCE_TYPES, initial_params, three_blobs

RTOL64 = 1e-9


@pytest.fixture(scope="module")
def blobs() -> np.ndarray:
    return three_blobs()


def _params(weights, means, covs, covariance_type, dtype):
    return mixture.GMMParams(
        jnp.asarray(weights, dtype), jnp.asarray(means, dtype), jnp.asarray(covs, dtype),
        covariance_type,
    )


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_e_step_log_prob_bic_match_oracle_x64(x64, blobs, covariance_type):
    w0, m0, c0 = initial_params(blobs, 3, covariance_type)
    params = _params(w0, m0, c0, covariance_type, jnp.float64)
    x = jnp.asarray(blobs)
    log_resp, ll = mixture.e_step(params, x)
    want_resp, want_ll = oracle.e_step(w0, m0, c0, covariance_type, blobs)
    np.testing.assert_allclose(log_resp, want_resp, rtol=RTOL64, atol=1e-12)
    np.testing.assert_allclose(ll, want_ll, rtol=RTOL64)
    np.testing.assert_allclose(
        mixture.log_prob(params, x), oracle.log_prob(w0, m0, c0, covariance_type, blobs),
        rtol=RTOL64,
    )
    np.testing.assert_allclose(
        mixture.bic(params, x), oracle.bic(w0, m0, c0, covariance_type, blobs), rtol=RTOL64
    )
    np.testing.assert_array_equal(
        mixture.predict(params, x), np.argmax(want_resp, axis=1)
    )


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_m_step_matches_oracle_x64(x64, blobs, covariance_type):
    w0, m0, c0 = initial_params(blobs, 3, covariance_type)
    log_resp, _ = oracle.e_step(w0, m0, c0, covariance_type, blobs)
    sw = np.random.default_rng(3).uniform(0.0, 2.0, len(blobs))
    got = mixture.m_step(
        jnp.asarray(blobs), jnp.asarray(log_resp), covariance_type=covariance_type,
        reg_covar=1e-3, sample_weight=jnp.asarray(sw),
    )
    want = oracle.m_step(blobs, np.exp(log_resp), covariance_type, 1e-3, sw)
    assert got.covariance_type == covariance_type
    for a, b in zip((got.weights, got.means, got.covs), want, strict=True):
        np.testing.assert_allclose(a, b, rtol=RTOL64, atol=1e-13)


def test_e_and_m_step_float32_match_oracle(blobs):
    # One evaluation each in float32 against the float64 oracle: the shared single_op table.
    w0, m0, c0 = initial_params(blobs, 3, "full")
    params = _params(w0, m0, c0, "full", jnp.float32)
    x32 = jnp.asarray(blobs, jnp.float32)
    log_resp, ll = mixture.e_step(params, x32)
    want_resp, want_ll = oracle.e_step(w0, m0, c0, "full", blobs)
    assert log_resp.dtype == jnp.float32
    assert_close_to_oracle(jnp.exp(log_resp), np.exp(want_resp))
    assert_close_to_oracle(ll, np.float64(want_ll))
    got = mixture.m_step(x32, jnp.asarray(want_resp, jnp.float32), covariance_type="full")
    want = oracle.m_step(blobs, np.exp(want_resp), "full", 1e-6)
    assert_close_to_oracle((got.weights, got.means, got.covs), want)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fit_iterates_match_oracle_x64(x64, blobs, covariance_type):
    """Same start, same loop: identical iterates, log-likelihoods, stop and flag."""
    w0, m0, c0 = initial_params(blobs, 3, covariance_type)
    init = _params(w0, m0, c0, covariance_type, jnp.float64)
    params, hist = mixture.fit(
        jax.random.key(0), jnp.asarray(blobs), k=3, covariance_type=covariance_type,
        init=init, max_iter=60, tol=1e-6,
    )
    w, m, c, lls, n_iter, converged = oracle.fit(
        blobs, w0, m0, c0, covariance_type, max_iter=60, tol=1e-6, reg_covar=1e-6
    )
    assert int(hist.n_iter) == n_iter and bool(hist.converged) == converged
    assert n_iter > 5  # the start is rough: the comparison covers a real trajectory
    np.testing.assert_allclose(hist.log_likelihood[:n_iter], lls, rtol=RTOL64)
    assert np.all(np.isnan(np.asarray(hist.log_likelihood[n_iter:])))
    for a, b in zip((params.weights, params.means, params.covs), (w, m, c), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)


def test_fit_float32_short_trajectory_matches_oracle(blobs):
    w0, m0, c0 = initial_params(blobs, 3, "full")
    init = _params(w0, m0, c0, "full", jnp.float32)
    params, hist = mixture.fit(
        jax.random.key(0), jnp.asarray(blobs, jnp.float32), k=3, init=init, max_iter=5, tol=0.0
    )
    w, m, c, lls, n_iter, _ = oracle.fit(
        blobs, w0, m0, c0, "full", max_iter=5, tol=0.0, reg_covar=1e-6
    )
    assert int(hist.n_iter) == n_iter == 5
    assert params.means.dtype == jnp.float32
    # See the module docstring for rtol 2e-3 (float32 carried through 5 re-fits).
    np.testing.assert_allclose(hist.log_likelihood, lls, rtol=2e-3)
    for a, b in zip((params.weights, params.means, params.covs), (w, m, c), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_log_likelihood_never_decreases(x64, covariance_type):
    # The EM property (Bishop §9.4): L_{t+1} >= L_t. Checked in float64, where rounding
    # (~1e-15 relative) cannot hide a real decrease; 4 components on 3 clusters, random init.
    x = jnp.asarray(three_blobs(300, seed=5))
    _, hist = mixture.fit(
        jax.random.key(2), x, k=4, covariance_type=covariance_type, init="random",
        max_iter=40, tol=0.0,
    )
    lls = np.asarray(hist.log_likelihood)
    assert np.all(np.isfinite(lls)) and int(hist.n_iter) == 40
    assert np.all(np.diff(lls) >= -1e-12 * np.abs(lls[1:])), np.diff(lls).min()
    assert lls[-1] > lls[0] + 1e-3  # it did climb


def test_step_jit_and_eager_agree(blobs):
    w0, m0, c0 = initial_params(blobs, 3, "full")
    params = _params(w0, m0, c0, "full", jnp.float32)
    x = jnp.asarray(blobs, jnp.float32)
    jitted = jax.jit(lambda p, x: mixture.em_step(p, x))(params, x)
    with jax.disable_jit():
        eager = mixture.em_step(params, x)
    for a, b in zip(jax.tree.leaves(jitted), jax.tree.leaves(eager), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_high_dimension_path_matches_oracle(x64):
    # D = 10 > the unrolled limit: the einsum path of the E- and M-steps.
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.normal(size=(60, 10)), rng.normal(size=(60, 10)) + 3.0])
    for covariance_type in COVARIANCE_TYPES:
        w0, m0, c0 = initial_params(x, 2, covariance_type)
        params, hist = mixture.fit(
            jax.random.key(0), jnp.asarray(x), k=2, covariance_type=covariance_type,
            init=_params(w0, m0, c0, covariance_type, jnp.float64), max_iter=10, tol=0.0,
        )
        w, m, c, lls, _, _ = oracle.fit(
            x, w0, m0, c0, covariance_type, max_iter=10, tol=0.0, reg_covar=1e-6
        )
        np.testing.assert_allclose(hist.log_likelihood, lls, rtol=RTOL64)
        np.testing.assert_allclose(params.covs, c, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_one_component_is_the_sample_mean_and_covariance(x64, blobs, covariance_type):
    params, hist = mixture.fit(
        jax.random.key(0), jnp.asarray(blobs), k=1, covariance_type=covariance_type, tol=1e-9
    )
    cov = np.cov(blobs.T, bias=True) + 1e-6 * np.eye(2)  # the ML (biased) covariance
    want = {"full": cov, "diag": np.diag(cov), "spherical": np.mean(np.diag(cov))}
    np.testing.assert_allclose(params.weights, [1.0], rtol=1e-12)
    np.testing.assert_allclose(params.means[0], blobs.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(params.covs[0], want[covariance_type], rtol=1e-10)
    # Step 1 fits the k-means++ start (itself the global fit), step 2 sees no change.
    assert bool(hist.converged) and int(hist.n_iter) == 2


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_one_dimensional_data(x64, covariance_type):
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.normal(-2.0, 0.5, 150), rng.normal(2.0, 0.8, 250)])[:, None]
    w0, m0, c0 = initial_params(x, 2, covariance_type)
    params, hist = mixture.fit(
        jax.random.key(0), jnp.asarray(x), k=2, covariance_type=covariance_type,
        init=_params(w0, m0, c0, covariance_type, jnp.float64), max_iter=100, tol=1e-8,
    )
    w, m, c, lls, n_iter, _ = oracle.fit(
        x, w0, m0, c0, covariance_type, max_iter=100, tol=1e-8, reg_covar=1e-6
    )
    assert int(hist.n_iter) == n_iter
    np.testing.assert_allclose(params.means, m, rtol=1e-7)
    np.testing.assert_allclose(params.covs, c, rtol=1e-7)
    order = np.argsort(np.asarray(params.means[:, 0]))
    np.testing.assert_allclose(np.asarray(params.means[:, 0])[order], [-2.0, 2.0], atol=0.15)
    np.testing.assert_allclose(np.asarray(params.weights)[order], [0.375, 0.625], atol=0.03)


def test_collapsed_component_stays_finite(x64):
    # A component started on an isolated point collapses onto it: its covariance is then
    # exactly reg_covar I and its log-density at the point ~ +6.9 per dimension, not inf.
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(50, 2)), [[100.0, 100.0]]])
    init = _params([0.5, 0.5], [[0.0, 0.0], [100.0, 100.0]], np.stack([np.eye(2)] * 2),
                   "full", jnp.float64)
    for reg in (1e-6, 1e-3):
        params, hist = mixture.fit(
            jax.random.key(0), jnp.asarray(x), k=2, init=init, reg_covar=reg, max_iter=20
        )
        assert np.all(np.isfinite(np.asarray(hist.log_likelihood[: int(hist.n_iter)])))
        np.testing.assert_allclose(params.covs[1], reg * np.eye(2), rtol=1e-6, atol=1e-15)
        np.testing.assert_allclose(params.means[1], [100.0, 100.0], rtol=1e-12)
        assert np.all(np.isfinite(np.asarray(mixture.log_prob(params, jnp.asarray(x)))))


def test_collapse_float32_on_duplicated_points():
    x = np.concatenate([np.zeros((20, 2)), np.random.default_rng(1).normal(size=(40, 2)) + 5])
    params, hist = mixture.fit(
        jax.random.key(1), jnp.asarray(x, jnp.float32), k=2, reg_covar=1e-4, max_iter=20
    )
    assert all(np.all(np.isfinite(np.asarray(a))) for a in jax.tree.leaves(params))
    lls = np.asarray(hist.log_likelihood[: int(hist.n_iter)])
    assert np.all(np.isfinite(lls))
    # One component sits on the 20 copies of 0: covariance reg_covar I.
    on_zero = int(np.argmin(np.linalg.norm(np.asarray(params.means), axis=1)))
    np.testing.assert_allclose(params.covs[on_zero], 1e-4 * np.eye(2), rtol=1e-3, atol=1e-8)


def test_integer_sample_weights_equal_repeated_points(x64, blobs):
    counts = np.random.default_rng(4).integers(0, 4, size=len(blobs))
    w0, m0, c0 = initial_params(blobs, 3, "full")
    init = _params(w0, m0, c0, "full", jnp.float64)
    weighted, h1 = mixture.fit(
        jax.random.key(0), jnp.asarray(blobs), k=3, init=init,
        sample_weight=jnp.asarray(counts, jnp.float64), max_iter=30, tol=0.0,
    )
    repeated, h2 = mixture.fit(
        jax.random.key(0), jnp.asarray(np.repeat(blobs, counts, axis=0)), k=3, init=init,
        max_iter=30, tol=0.0,
    )
    np.testing.assert_allclose(h1.log_likelihood, h2.log_likelihood, rtol=1e-10)
    for a, b in zip(jax.tree.leaves(weighted), jax.tree.leaves(repeated), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)


def test_vmap_over_independent_fits():
    # Four data sets and four keys in one program; each lane stops at its own iteration and
    # equals the fit run on its own. rtol 1e-4: vmapped reductions may sum in another order.
    xs = np.stack([three_blobs(120, seed=s) for s in range(4)]).astype(np.float32)
    keys = jax.random.split(jax.random.key(3), 4)
    batched_fit = jax.vmap(lambda key, x: mixture.fit(key, x, k=3, max_iter=50, tol=1e-4))
    params, hist = batched_fit(keys, jnp.asarray(xs))
    assert params.means.shape == (4, 3, 2) and hist.n_iter.shape == (4,)
    for i in range(4):
        p_i, h_i = mixture.fit(keys[i], jnp.asarray(xs[i]), k=3, max_iter=50, tol=1e-4)
        assert int(hist.n_iter[i]) == int(h_i.n_iter)
        np.testing.assert_allclose(params.means[i], p_i.means, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(params.covs[i], p_i.covs, rtol=1e-4, atol=1e-4)
    assert len(set(np.asarray(hist.n_iter).tolist())) > 1  # lanes really stopped apart


def test_second_call_does_not_recompile():
    fit_module = importlib.import_module("genjax.mixture.fit")  # the module, not the function

    x1 = jnp.asarray(three_blobs(64, seed=8), jnp.float32)
    x2 = x1 + 1.0
    mixture.fit(jax.random.key(0), x1, k=2, max_iter=7, tol=1e-3)
    before = fit_module._fit._cache_size()
    mixture.fit(jax.random.key(1), x2, k=2, max_iter=7, tol=1e-2, reg_covar=1e-4)
    assert fit_module._fit._cache_size() == before


def test_float32_far_from_the_origin():
    # Data 1000 away from the origin in float32 (spacing of representable numbers there:
    # 6e-5): the fit must be the centred fit, shifted. Differences x_n - mu_k are formed
    # before any product, so no E[x x^T] - mu mu^T cancellation (which would lose ~1e6 x
    # eps = 0.1 of the covariance here); tolerance 2e-3 covers the 6e-5 input rounding
    # amplified over 10 iterations.
    x = three_blobs(200, seed=6)
    w0, m0, c0 = initial_params(x, 3, "full")
    runs = []
    for shift in (0.0, 1000.0):
        init = _params(w0, m0 + shift, c0, "full", jnp.float32)
        params, _ = mixture.fit(
            jax.random.key(0), jnp.asarray(x + shift, jnp.float32), k=3, init=init,
            max_iter=10, tol=0.0,
        )
        runs.append(params)
    np.testing.assert_allclose(runs[1].means - 1000.0, runs[0].means, atol=2e-3)
    np.testing.assert_allclose(runs[1].covs, runs[0].covs, rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(runs[1].weights, runs[0].weights, atol=2e-3)

