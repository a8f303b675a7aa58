"""Tests for genjax.metrics: the NumPy oracle, closed forms, SciPy where it has the same
statistic, invariances (zero on identical sets, growth with a shift), and bad inputs."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import metrics
from genjax import oracle_metrics as om
from genjax.testing import assert_close_to_oracle


def _sets(seed: int, n: int = 60, m: int = 45, d: int = 3, shift: float = 0.7):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = rng.normal(size=(m, d)) * 1.3 + shift
    return x, y


# ---------------------------------------------------------------------------------------
# Against the oracle, float64 and float32, eager and jit
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_jit", [False, True])
def test_metrics_match_oracle_float64(x64, key, use_jit):
    x, y = _sets(0)
    j = jax.jit if use_jit else (lambda f, **kw: f)
    assert_close_to_oracle(j(metrics.mmd)(x, y), om.mmd(x, y))
    mmd_u = j(functools.partial(metrics.mmd, unbiased=True))
    assert_close_to_oracle(mmd_u(x, y, bandwidth=0.8), om.mmd(x, y, 0.8, unbiased=True))
    assert_close_to_oracle(j(metrics.energy_distance)(x, y), om.energy_distance(x, y))
    assert_close_to_oracle(j(metrics.frechet_distance)(x, y), om.frechet_distance(x, y))
    dirs = np.random.default_rng(1).normal(size=(16, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    # n = 60, m = 45: the unequal-size path, against the oracle's lcm replication.
    sw = j(metrics.sliced_wasserstein_with_directions)(x, y, dirs)
    assert_close_to_oracle(sw, om.sliced_wasserstein(x, y, dirs))
    sw_eq = j(metrics.sliced_wasserstein_with_directions)(x[:45], y, dirs)
    assert_close_to_oracle(sw_eq, om.sliced_wasserstein(x[:45], y, dirs))
    assert_close_to_oracle(j(metrics.mode_coverage)(x, y[:5], 0.5), om.mode_coverage(x, y[:5], 0.5))


def test_median_heuristic_matches_oracle_on_strided_subsample(x64):
    # Sets larger than the 128-row subsample, one of them ordered (sorted by its first
    # coordinate): the strided subsample and the exact order statistics match the oracle.
    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 2))
    y = np.sort(rng.normal(size=(701, 2)) + 0.5, axis=0)
    assert_close_to_oracle(
        metrics._median_bandwidth(jnp.asarray(x), jnp.asarray(y)), om.median_bandwidth(x, y)
    )
    assert_close_to_oracle(metrics.mmd(x, y), om.mmd(x, y))


def test_metrics_match_oracle_float32(key):
    x, y = _sets(2)
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    # The oracle sees the float32 inputs, so only float32 arithmetic separates the two.
    x, y = x32.astype(np.float64), y32.astype(np.float64)
    out = metrics.mmd(x32, y32)
    assert out.dtype == jnp.float32
    assert_close_to_oracle(out, om.mmd(x, y))
    assert_close_to_oracle(metrics.energy_distance(x32, y32), om.energy_distance(x, y))
    # Frechet: float32 covariance and eigendecompositions of 3x3 matrices, ~10 ops deep.
    np.testing.assert_allclose(
        metrics.frechet_distance(x32, y32), om.frechet_distance(x, y), rtol=1e-5
    )


def test_energy_distance_is_scipy_squared_in_1d():
    scipy_stats = pytest.importorskip("scipy.stats")
    x, y = _sets(3, d=1)
    want = scipy_stats.energy_distance(x[:, 0], y[:, 0]) ** 2
    np.testing.assert_allclose(metrics.energy_distance(x, y), want, rtol=1e-5)


def test_sliced_wasserstein_in_1d_is_exact_w2(x64, key):
    # In 1-D every direction is +-1 and W_2 between x and x + c is exactly |c|.
    x = np.random.default_rng(4).normal(size=(50, 1))
    np.testing.assert_allclose(metrics.sliced_wasserstein(key, x, x + 2.5), 2.5, rtol=1e-12)
    # Unequal sizes with the same law: {0, 1} vs {0, 0, 1, 1} -> 0; vs {0, 1, 1} -> the
    # quantile functions differ on u in (1/3, 1/2) by 1: W_2^2 = 1/6.
    a = np.array([[0.0], [1.0]])
    np.testing.assert_allclose(
        metrics.sliced_wasserstein(key, a, np.array([[0.0], [0.0], [1.0], [1.0]])), 0.0, atol=1e-15
    )
    np.testing.assert_allclose(
        metrics.sliced_wasserstein(key, a, np.array([[0.0], [1.0], [1.0]])),
        math.sqrt(1 / 6),
        rtol=1e-12,
    )


def test_sliced_wasserstein_of_shifted_gaussians(keys):
    # X ~ N(0, I), Y = X + mu (same draws): along theta, W_2 = |theta . mu| exactly, so
    # SW_2^2 = E_theta (theta . mu)^2 = |mu|^2 / D for theta uniform on the sphere; with
    # 4096 directions the Monte Carlo error of the mean is ~1.5% of it (chi-square tails).
    # The identity holds for any sample, so a small one suffices.
    x = jax.random.normal(keys[0], (64, 4))
    mu = jnp.array([1.0, -2.0, 0.5, 1.5])
    sw = metrics.sliced_wasserstein(keys[1], x, x + mu[None, :], num_projections=4096)
    np.testing.assert_allclose(sw**2, jnp.sum(mu**2) / 4, rtol=0.06)
    # Same key, same directions, same value; another key differs slightly.
    again = metrics.sliced_wasserstein(keys[1], x, x + mu[None, :], num_projections=4096)
    assert float(again) == float(sw)


# ---------------------------------------------------------------------------------------
# Invariances: zero on identical sets, growth with the shift
# ---------------------------------------------------------------------------------------


def test_zero_on_identical_sets(key):
    x = np.asarray(jax.random.normal(key, (200, 2)))
    # V-statistics: exactly the same pair sums on both sides, up to the final rounding.
    assert abs(float(metrics.mmd(x, x))) < 1e-6
    assert abs(float(metrics.energy_distance(x, x))) < 1e-6
    assert float(metrics.sliced_wasserstein(key, x, x)) == 0.0
    assert abs(float(metrics.frechet_distance(x, x))) < 1e-5
    # Reordering the same set changes nothing.
    perm = np.random.default_rng(0).permutation(200)
    assert float(metrics.sliced_wasserstein(key, x, x[perm])) == 0.0
    assert abs(float(metrics.energy_distance(x, x[perm]))) < 1e-6


def test_metrics_grow_with_a_shift(keys):
    x = jax.random.normal(keys[0], (300, 2))
    y0 = jax.random.normal(keys[1], (300, 2))
    values = {name: [] for name in ("mmd", "energy", "sw", "frechet")}
    for shift in (0.0, 0.5, 1.0, 2.0):
        y = y0 + shift
        values["mmd"].append(float(metrics.mmd(x, y, bandwidth=1.0)))
        values["energy"].append(float(metrics.energy_distance(x, y)))
        values["sw"].append(float(metrics.sliced_wasserstein(keys[2], x, y)))
        values["frechet"].append(float(metrics.frechet_distance(x, y)))
    for name, v in values.items():
        assert all(b > a for a, b in zip(v, v[1:], strict=False)), (name, v)
        assert v[-1] > 0.1, (name, v)
    # Frechet: the fitted means differ by the shift exactly, the covariances not at all.
    np.testing.assert_allclose(values["frechet"][3] - values["frechet"][0], 2 * 2.0**2, rtol=0.1)


def test_unbiased_mmd_is_centred_on_zero_for_one_law(keys):
    # The U-statistic averages to 0 under H0 (it may be negative); the V-statistic is
    # biased upwards by about (2 - 2 E k) / n.
    vals_u, vals_v = [], []
    for i in range(8):
        x = jax.random.normal(jax.random.fold_in(keys[0], i), (100, 2))
        y = jax.random.normal(jax.random.fold_in(keys[1], i), (100, 2))
        vals_u.append(float(metrics.mmd(x, y, bandwidth=1.0, unbiased=True)))
        vals_v.append(float(metrics.mmd(x, y, bandwidth=1.0)))
    assert min(vals_u) < 0 < max(vals_u)
    assert all(v > u for u, v in zip(vals_u, vals_v, strict=True))


# ---------------------------------------------------------------------------------------
# Closed forms: Frechet, coverage, bits per dimension
# ---------------------------------------------------------------------------------------


def test_frechet_distance_closed_forms(x64):
    rng = np.random.default_rng(5)
    a = rng.normal(size=(4, 4))
    s = a @ a.T + np.eye(4)
    mu_a, mu_b = rng.normal(size=4), rng.normal(size=4)
    # Equal covariances: only the means remain, |mu_a - mu_b|^2.
    np.testing.assert_allclose(
        metrics.frechet_distance_gaussian(mu_a, s, mu_b, s), np.sum((mu_a - mu_b) ** 2), rtol=1e-10
    )
    # Diagonal covariances: sum_i (sqrt(a_i) - sqrt(b_i))^2 on top.
    da, db = rng.uniform(0.1, 3.0, size=4), rng.uniform(0.1, 3.0, size=4)
    want = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(da) - np.sqrt(db)) ** 2)
    got = metrics.frechet_distance_gaussian(mu_a, np.diag(da), mu_b, np.diag(db))
    np.testing.assert_allclose(got, want, rtol=1e-10)
    # Rotation invariance: conjugating both covariances by an orthogonal Q changes nothing.
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    rotated = metrics.frechet_distance_gaussian(
        q @ mu_a, q @ np.diag(da) @ q.T, q @ mu_b, q @ np.diag(db) @ q.T
    )
    np.testing.assert_allclose(rotated, want, rtol=1e-9)
    # Non-commuting covariances against the oracle's eigenvalues of S_a S_b.
    b = rng.normal(size=(4, 4))
    s2 = b @ b.T + 0.1 * np.eye(4)
    assert_close_to_oracle(
        metrics.frechet_distance_gaussian(mu_a, s, mu_b, s2),
        om.frechet_distance_gaussian(mu_a, s, mu_b, s2),
    )
    # Singular covariance (rank 1) stays finite and correct: N(0, diag(1, 0)) vs N(0, I).
    np.testing.assert_allclose(
        metrics.frechet_distance_gaussian(np.zeros(2), np.diag([1.0, 0.0]), np.zeros(2), np.eye(2)),
        1.0,
        atol=1e-7,
    )


def test_mode_coverage_counts_modes_hit():
    means = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0], [5.0, 5.0]])
    samples = np.array([[0.1, 0.0], [0.0, 0.1], [5.0, 0.9], [2.5, 2.5]])
    # Mode 0 twice, mode 1 within 0.9; (2.5, 2.5) is 3.54 from every mode.
    assert float(metrics.mode_coverage(samples, means, 1.0)) == pytest.approx(0.5)
    assert float(metrics.mode_coverage(samples, means, 0.5)) == pytest.approx(0.25)
    assert float(metrics.mode_coverage(samples, means, 3.6)) == pytest.approx(1.0)
    # Radius is inclusive, and a traced radius works under jit.
    f = jax.jit(metrics.mode_coverage)
    assert float(f(samples, means, 0.9)) == pytest.approx(0.5)


def test_occupancy_kl_from_uniform():
    # even shares: 0; one bin of K: log K; two of four: log 2 -- and the oracle elsewhere
    assert float(metrics.occupancy_kl(np.array([3, 3, 3]))) == pytest.approx(0.0, abs=1e-7)
    assert float(metrics.occupancy_kl(np.array([0, 9, 0, 0]))) == pytest.approx(math.log(4))
    assert float(metrics.occupancy_kl(np.array([5.0, 5.0, 0.0, 0.0]))) == pytest.approx(math.log(2))
    counts = np.array([40, 1, 7, 0, 12, 3, 0, 2])
    f = jax.jit(metrics.occupancy_kl)
    for fn in (metrics.occupancy_kl, f):
        assert_close_to_oracle(fn(counts), om.occupancy_kl(counts))
    # no counts: undefined (NaN), never the "balanced" 0
    assert np.isnan(float(metrics.occupancy_kl(np.zeros(8))))
    assert np.isnan(om.occupancy_kl(np.zeros(8)))
    # a billion samples in float32 stay exact to float32 rounding
    big = np.array([1e9, 1e9, 0.0, 0.0], np.float32)
    assert float(metrics.occupancy_kl(big)) == pytest.approx(math.log(2), rel=1e-6)


def test_bits_per_dim():
    np.testing.assert_allclose(metrics.bits_per_dim(64 * math.log(2.0), 64), 1.0, rtol=1e-6)
    out = metrics.bits_per_dim(jnp.array([0.0, 784 * 8 * math.log(2.0)]), 784)
    np.testing.assert_allclose(out, [0.0, 8.0], rtol=1e-6)
    assert_close_to_oracle(metrics.bits_per_dim(jnp.float32(123.4), 10), om.bits_per_dim(123.4, 10))


# ---------------------------------------------------------------------------------------
# Memory: block-wise pair sums
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("direct", [False, True])
@pytest.mark.parametrize("same", [False, True])
def test_blockwise_pair_sum_equals_one_shot(x64, monkeypatch, direct, same):
    rng = np.random.default_rng(6)
    x = jnp.asarray(rng.normal(size=(37, 3)))
    y = x if same else jnp.asarray(rng.normal(size=(23, 3)))
    fn = lambda d2: jnp.sqrt(d2 + 1.0)
    d2 = om.pairwise_sq_dists(x, y)
    if same:
        np.fill_diagonal(d2, 0.0)
    want = np.sum(np.sqrt(d2 + 1.0))
    # Force blocks of a few rows (37 rows do not divide evenly: padding is exercised).
    monkeypatch.setattr(metrics, "_MAX_PAIRS", 5 * y.shape[0] * (3 if direct else 1))
    got = metrics._pair_sum(x, y, fn, same=same, direct=direct)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_large_sets_run_blockwise(key):
    # 4200 x 4200 pairs of 2-D points (35.3M coordinates) exceed one block (33.6M), so
    # the energy distance runs in row blocks; compare with a float64 NumPy sum in chunks.
    x = np.asarray(jax.random.normal(key, (4200, 2)), np.float64)
    y = x[::-1] * 1.2 + 0.3

    def mean_dist(a, b):
        return sum(
            np.sqrt(om.pairwise_sq_dists(a[i : i + 500], b)).sum() for i in range(0, len(a), 500)
        ) / (len(a) * len(b))

    want = 2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y)
    got = metrics.energy_distance(x.astype(np.float32), y.astype(np.float32))
    # float32 sums of 1.8e7 terms: rounding ~1e-6 relative per pair sum, and the
    # statistic is a difference of three O(1) means, so compare at 1e-5 absolute.
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)


# ---------------------------------------------------------------------------------------
# Gradients and bad inputs
# ---------------------------------------------------------------------------------------


def test_energy_distance_gradient_is_finite_on_coincident_points(key):
    x = jax.random.normal(key, (20, 2))
    g = jax.grad(lambda y: metrics.energy_distance(x, y))(x)
    assert np.all(np.isfinite(g))
    g_shift = jax.grad(lambda y: metrics.energy_distance(x, y))(x + 1.0)
    # Moving y back towards x lowers the distance: the gradient points along +shift.
    assert float(jnp.sum(g_shift)) > 0


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: metrics.mmd(np.zeros(5), np.zeros((5, 1))), "x"),
        (lambda: metrics.mmd(np.zeros((5, 2)), np.zeros((5, 3))), "y"),
        (lambda: metrics.mmd(np.zeros((5, 2)), np.zeros((5, 2)), bandwidth=0.0), "bandwidth"),
        (lambda: metrics.mmd(np.zeros((1, 2)), np.zeros((5, 2)), unbiased=True), "x"),
        (lambda: metrics.energy_distance(np.zeros((0, 2)), np.zeros((5, 2))), "x"),
        (
            lambda: metrics.sliced_wasserstein(
                jax.random.key(0), np.zeros((4, 2)), np.zeros((4, 2)), num_projections=0
            ),
            "num_projections",
        ),
        (
            lambda: metrics.sliced_wasserstein_with_directions(
                np.zeros((4, 2)), np.zeros((4, 2)), np.zeros((3, 3))
            ),
            "directions",
        ),
        (lambda: metrics.mode_coverage(np.zeros((4, 2)), np.zeros((3, 3)), 1.0), "means"),
        (lambda: metrics.mode_coverage(np.zeros(4), np.zeros((3, 3)), 1.0), "samples"),
        (lambda: metrics.mode_coverage(np.zeros((4, 2)), np.zeros((3, 2)), -1.0), "radius"),
        (lambda: metrics.occupancy_kl(np.array([1.0, -1.0])), "counts"),
        (lambda: metrics.occupancy_kl(np.ones((2, 2))), "counts"),
        (lambda: metrics.occupancy_kl(np.ones(0)), "counts"),
        (lambda: metrics.bits_per_dim(1.0, 0), "num_dims"),
        (lambda: metrics.frechet_distance(np.zeros((1, 2)), np.zeros((5, 2))), "feats_a"),
        (lambda: metrics.frechet_distance(np.zeros((3, 2)), np.zeros((5, 4))), "feats_b"),
        (
            lambda: metrics.frechet_distance_gaussian(
                np.zeros(2), np.eye(3), np.zeros(2), np.eye(2)
            ),
            "cov_a",
        ),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(call, name):
    with pytest.raises(ValueError, match=name):
        call()
