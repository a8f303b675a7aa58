"""Bad and extreme inputs for the shared modules: metrics, ode, targets, gaussian (issue 16).

Each :class:`BadInput` names the argument a call gets wrong; ``assert_handled`` requires a
``ValueError``/``TypeError`` naming it, or a finite, correct answer for a valid extreme.
The plain tests below hold the numerical findings to exact answers.

Findings of issue 16 covered here:

* 6 -- ``test_sample_metrics_are_nan_on_nonfinite_input``: every sample-set metric returns
  NaN (never a score such as ``energy_distance = 0.0``) when a sample is NaN or inf.
* 9 -- the ``ode.solve: f(y, t) ...`` cases: a field written ``f(y, t)`` is rejected when the
  swap changes a shape (the issue's ``lambda y, t: -y`` gave 0.5 for 0.368).
* 11 -- the ``frechet_distance_gaussian: cov_a not PSD`` cases (0.0 before) and
  ``test_frechet_distance_gaussian_is_nan_for_a_traced_indefinite_covariance``.
* 13 -- the ``LinearGaussian.log_prob: noise_std = 1e-4`` extreme and
  ``test_linear_gaussian_log_prob_at_small_noise_matches_the_oracle``; the
  ``mmd / energy_distance at scale 1e20`` extremes and
  ``test_sample_metrics_are_scale_equivariant_up_to_1e20``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import gaussian, metrics, ode, oracle_metrics, oracle_targets, targets
from genjax.testing import BadInput, assert_handled

KEY = jax.random.key(0)
A = jnp.asarray(np.random.default_rng(0).normal(size=(24, 2)), jnp.float32)
B = jnp.asarray(np.random.default_rng(1).normal(size=(20, 2)) + 1.0, jnp.float32)
NAN_A = A.at[3, 1].set(jnp.nan)
INF_B = B.at[0, 0].set(jnp.inf)
MIX = targets.ring(n_modes=4)
W = np.array([[1.0], [2.0], [0.5]])
B0 = np.array([0.1, -0.2, 0.3])
LG = targets.LinearGaussian.create(W, B0, 0.5)
LG_SHARP = targets.LinearGaussian.create(W, B0, 1e-4)
X_SHARP = np.asarray(LG_SHARP.sample(jax.random.key(3), 4)[0])  # (4, 3) float32


def _decay(t, y):
    return -y  # dy/dt = -y: y(1) = exp(-1) y0


def _lg_sharp_ok(got) -> bool:
    want = oracle_targets.linear_gaussian_log_prob(W, B0, 1e-4, X_SHARP.astype(np.float64))
    # float32 x carries ~1e-7 |x| of rounding; the density's slope |r - W mu| / s^2 ~ 1e4
    # turns it into ~1e-3 of log p (see LinearGaussian.log_prob): 1e-2 is that, with margin.
    return bool(np.allclose(np.asarray(got), want, rtol=0, atol=1e-2))


def _metrics() -> list[BadInput]:
    return [
        BadInput("metrics.mmd: x 1-D", lambda: metrics.mmd(A[:, 0], B), "x"),
        BadInput("metrics.mmd: dimensions differ", lambda: metrics.mmd(A, B[:, :1]), "y"),
        BadInput("metrics.mmd: bandwidth = 0", lambda: metrics.mmd(A, B, bandwidth=0.0),
                 "bandwidth"),
        BadInput("metrics.mmd: bandwidth NaN",
                 lambda: metrics.mmd(A, B, bandwidth=float("nan")), "bandwidth"),
        BadInput("metrics.mmd: unbiased with one sample",
                 lambda: metrics.mmd(A[:1], B, unbiased=True), "x"),
        BadInput("metrics.energy_distance: y empty",
                 lambda: metrics.energy_distance(A, B[:0]), "y"),
        BadInput("metrics.energy_distance: y 3-D",
                 lambda: metrics.energy_distance(A, B[None]), "y"),
        BadInput("metrics.sliced_wasserstein: num_projections = 0",
                 lambda: metrics.sliced_wasserstein(KEY, A, B, num_projections=0),
                 "num_projections"),
        BadInput("metrics.sliced_wasserstein_with_directions: directions of another dimension",
                 lambda: metrics.sliced_wasserstein_with_directions(A, B, jnp.ones((3, 3))),
                 "directions"),
        BadInput("metrics.mode_coverage: radius < 0",
                 lambda: metrics.mode_coverage(A, MIX.means, -1.0), "radius"),
        BadInput("metrics.mode_coverage: means of another dimension",
                 lambda: metrics.mode_coverage(A, jnp.zeros((3, 3)), 1.0), "means"),
        BadInput("metrics.bits_per_dim: num_dims = 0",
                 lambda: metrics.bits_per_dim(10.0, 0), "num_dims"),
        BadInput("metrics.frechet_distance: one feature row",
                 lambda: metrics.frechet_distance(A[:1], B), "feats_a"),
        BadInput("metrics.frechet_distance_gaussian: cov_a not PSD",
                 lambda: metrics.frechet_distance_gaussian(jnp.zeros(2), -jnp.eye(2),
                                                           jnp.zeros(2), jnp.eye(2)), "cov_a"),
        BadInput("metrics.frechet_distance_gaussian: cov_b indefinite",
                 lambda: metrics.frechet_distance_gaussian(
                     jnp.zeros(2), jnp.eye(2), jnp.zeros(2),
                     jnp.array([[1.0, 2.0], [2.0, 1.0]])), "cov_b"),
        BadInput("metrics.frechet_distance_gaussian: cov_a not symmetric",
                 lambda: metrics.frechet_distance_gaussian(
                     jnp.zeros(2), jnp.array([[1.0, 0.5], [0.0, 1.0]]), jnp.zeros(2),
                     jnp.eye(2)), "cov_a"),
        BadInput("metrics.frechet_distance_gaussian: mu_b NaN",
                 lambda: metrics.frechet_distance_gaussian(
                     jnp.zeros(2), jnp.eye(2), jnp.array([0.0, jnp.nan]), jnp.eye(2)), "mu_b"),
        BadInput("metrics.frechet_distance_gaussian: cov_b of another size",
                 lambda: metrics.frechet_distance_gaussian(jnp.zeros(2), jnp.eye(2),
                                                           jnp.zeros(2), jnp.eye(3)), "cov_b"),
        BadInput("metrics.mmd at scale 1e20 (valid)",
                 lambda: metrics.mmd(A * 1e20, B * 1e20), kind="extreme",
                 check=lambda v: np.isclose(float(v), float(metrics.mmd(A, B)), rtol=1e-4)),
        BadInput("metrics.energy_distance at scale 1e20 (valid)",
                 lambda: metrics.energy_distance(A * 1e20, B * 1e20), kind="extreme",
                 check=lambda v: np.isclose(float(v) / 1e20,
                                            float(metrics.energy_distance(A, B)), rtol=1e-4)),
        BadInput("metrics.sliced_wasserstein at scale 1e20 (valid)",
                 lambda: metrics.sliced_wasserstein(KEY, A * 1e20, B * 1e20), kind="extreme"),
        BadInput("metrics.frechet_distance_gaussian: singular PSD covariance (valid)",
                 lambda: metrics.frechet_distance_gaussian(
                     jnp.zeros(2), jnp.array([[1.0, 1.0], [1.0, 1.0]]), jnp.zeros(2),
                     jnp.eye(2)), kind="extreme"),
    ]


def _ode() -> list[BadInput]:
    y0 = jnp.ones(3)
    return [
        BadInput("ode.solve: f(y, t) order (lambda y, t: -y)",
                 lambda: ode.solve(lambda y, t: -y, y0, 0.0, 1.0, num_steps=4), "f"),
        BadInput("ode.solve: f(y, t) order indexing y",
                 lambda: ode.solve(lambda y, t: -y[0] * t, y0, 0.0, 1.0, num_steps=4), "f"),
        BadInput("ode.solve: f returns another structure",
                 lambda: ode.solve(lambda t, y: (-y, -y), y0, 0.0, 1.0, num_steps=4), "f"),
        BadInput("ode.solve: method 'rk45'",
                 lambda: ode.solve(_decay, y0, 0.0, 1.0, method="rk45"), "method"),
        BadInput("ode.solve: num_steps = 0",
                 lambda: ode.solve(_decay, y0, 0.0, 1.0, num_steps=0), "num_steps"),
        BadInput("ode.solve: rtol = 0",
                 lambda: ode.solve(_decay, y0, 0.0, 1.0, method="dopri5", rtol=0.0), "rtol"),
        BadInput("ode.solve: integer y0",
                 lambda: ode.solve(_decay, jnp.ones(3, jnp.int32), 0.0, 1.0), "y0"),
        BadInput("ode.solve: t0 a vector",
                 lambda: ode.solve(_decay, y0, jnp.zeros(2), 1.0, num_steps=4), "t0"),
        BadInput("ode.solve: empty y0", lambda: ode.solve(_decay, (), 0.0, 1.0), "y0"),
        BadInput("ode.solve: exp(-1) (the f(t, y) order, valid)",
                 lambda: ode.solve(_decay, y0, 0.0, 1.0, num_steps=20), kind="extreme",
                 check=lambda y: bool(np.allclose(np.asarray(y), np.exp(-1.0), rtol=1e-5))),
    ]


def _targets() -> list[BadInput]:
    return [
        BadInput("targets.ring: n_modes = 0", lambda: targets.ring(n_modes=0), "n_modes"),
        BadInput("targets.ring: std < 0", lambda: targets.ring(std=-0.1), "std"),
        BadInput("targets.grid: spacing NaN", lambda: targets.grid(spacing=float("nan")),
                 "spacing"),
        BadInput("targets.mixture_1d: weights not summing to 1",
                 lambda: targets.mixture_1d([0.5, 0.6], [0.0, 1.0], [1.0, 1.0]), "weights"),
        BadInput("targets.mixture_1d: stds of another length",
                 lambda: targets.mixture_1d([0.5, 0.5], [0.0, 1.0], [1.0]), "stds"),
        BadInput("GaussianMixture.create: indefinite covariance",
                 lambda: targets.GaussianMixture.create(
                     [1.0], [[0.0, 0.0]], [[[1.0, 2.0], [2.0, 1.0]]]), "covs"),
        BadInput("GaussianMixture.log_prob: x of another dimension",
                 lambda: MIX.log_prob(jnp.zeros((2, 3))), "x"),
        BadInput("GaussianMixture.score: x 0-D", lambda: MIX.score(jnp.zeros(())), "x"),
        BadInput("GaussianMixture.sample: n = 0", lambda: MIX.sample(KEY, 0), "n"),
        BadInput("GaussianMixture.noised: alpha a vector",
                 lambda: MIX.noised(jnp.ones(2), 0.5), "alpha"),
        BadInput("GaussianMixture.noised: sigma < 0", lambda: MIX.noised(1.0, -0.5), "sigma"),
        BadInput("GaussianMixture.eps: sigma < 0", lambda: MIX.eps(A, 1.0, -0.5), "sigma"),
        BadInput("GaussianMixture.noised_score: alpha NaN",
                 lambda: MIX.noised_score(A, float("nan"), 0.5), "alpha"),
        BadInput("GaussianMixture.denoise: alpha = sigma = 0",
                 lambda: MIX.denoise(A, 0.0, 0.0), "sigma"),
        BadInput("GaussianMixture.posterior_mean_x0: x_t of another dimension",
                 lambda: MIX.posterior_mean_x0(jnp.zeros((2, 3)), 1.0, 0.5), "x_t"),
        BadInput("GaussianMixture.responsibilities: x of another dimension",
                 lambda: MIX.responsibilities(jnp.zeros((2, 3))), "x"),
        BadInput("LinearGaussian.create: noise_std = 0",
                 lambda: targets.LinearGaussian.create(W, B0, 0.0), "noise_std"),
        BadInput("LinearGaussian.create: b of another size",
                 lambda: targets.LinearGaussian.create(W, np.zeros(2), 1.0), "b"),
        BadInput("LinearGaussian.log_prob: x of another dimension",
                 lambda: LG.log_prob(jnp.zeros((2, 2))), "x"),
        BadInput("LinearGaussian.elbo: q_logvar of another shape",
                 lambda: LG.elbo(jnp.zeros((2, 3)), jnp.zeros((2, 1)), jnp.zeros((2, 2))),
                 "q_logvar"),
        BadInput("LinearGaussian.kl_to_posterior: q_mean of another latent size",
                 lambda: LG.kl_to_posterior(jnp.zeros((2, 3)), jnp.zeros((2, 2)),
                                            jnp.zeros((2, 2))), "q_mean"),
        BadInput("LinearGaussian.sample: n = 0", lambda: LG.sample(KEY, 0), "n"),
        BadInput("targets.optimal_discriminator: shapes differ",
                 lambda: targets.optimal_discriminator(jnp.zeros(3), jnp.zeros(2)), "log_p_g"),
        BadInput("targets.gan_value_at_optimum: n = 0",
                 lambda: targets.gan_value_at_optimum(MIX, MIX, KEY, 0), "n"),
        BadInput("targets.gan_value_at_optimum: q of another dimension",
                 lambda: targets.gan_value_at_optimum(
                     MIX, targets.mixture_1d([1.0], [0.0], [1.0]), KEY, 8), "q"),
        BadInput("LinearGaussian.log_prob: noise_std = 1e-4 (valid, near-singular C)",
                 lambda: LG_SHARP.log_prob(jnp.asarray(X_SHARP)), kind="extreme",
                 check=_lg_sharp_ok),
        BadInput("GaussianMixture.log_prob: |x| = 1e18 (valid)",
                 lambda: MIX.log_prob(jnp.full((1, 2), 1e18)), kind="extreme"),
        BadInput("GaussianMixture.eps: alpha = 0 (pure noise, valid)",
                 lambda: MIX.eps(A, 0.0, 1.0), kind="extreme",
                 check=lambda e: bool(np.allclose(np.asarray(e), np.asarray(A), atol=1e-6))),
    ]


def _gaussian() -> list[BadInput]:
    return [
        BadInput("gaussian.standard_normal_log_prob: x 0-D",
                 lambda: gaussian.standard_normal_log_prob(jnp.zeros(())), "x"),
        BadInput("gaussian.diag_normal_log_prob: mean of another dimension",
                 lambda: gaussian.diag_normal_log_prob(A, jnp.zeros(3), jnp.zeros(2)), "mean"),
        BadInput("gaussian.diag_normal_log_prob: logvar of another dimension",
                 lambda: gaussian.diag_normal_log_prob(A, jnp.zeros(2), jnp.zeros(3)), "logvar"),
        BadInput("gaussian.isotropic_normal_log_prob: std = 0",
                 lambda: gaussian.isotropic_normal_log_prob(A, A, 0.0), "std"),
        BadInput("gaussian.isotropic_normal_log_prob: std of another batch",
                 lambda: gaussian.isotropic_normal_log_prob(A, A, jnp.ones(5)), "std"),
        BadInput("gaussian.kl_diag_standard_normal: logvar of another dimension",
                 lambda: gaussian.kl_diag_standard_normal(A, jnp.zeros((24, 3))), "logvar"),
        BadInput("gaussian.kl_diag_normals: mean_p of another dimension",
                 lambda: gaussian.kl_diag_normals(A, A, jnp.zeros(3), A), "mean_p"),
        BadInput("gaussian.kl_diag_standard_normal: logvar = -80 and 80 (valid)",
                 lambda: gaussian.kl_diag_standard_normal(jnp.zeros(2), jnp.array([-80.0, 80.0])),
                 kind="extreme"),
        BadInput("gaussian.diag_normal_log_prob: logvar = -80 at the mean (valid)",
                 lambda: gaussian.diag_normal_log_prob(jnp.zeros(2), jnp.zeros(2),
                                                       jnp.full(2, -80.0)), kind="extreme"),
    ]


CASES: list[BadInput] = [*_metrics(), *_ode(), *_targets(), *_gaussian()]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_handled(case: BadInput) -> None:
    assert_handled(case)


@pytest.mark.parametrize("bad", ["nan_x", "inf_y"])
def test_sample_metrics_are_nan_on_nonfinite_input(bad: str) -> None:
    """Finding 6: a NaN/inf sample gives NaN, never a score (energy_distance gave 0.0)."""
    x, y = (NAN_A, B) if bad == "nan_x" else (A, INF_B)
    values = {
        "mmd": metrics.mmd(x, y),
        "mmd_unbiased": metrics.mmd(x, y, unbiased=True),
        "energy_distance": metrics.energy_distance(x, y),
        "sliced_wasserstein": metrics.sliced_wasserstein(KEY, x, y, num_projections=8),
        "frechet_distance": metrics.frechet_distance(x, y),
        "mode_coverage": metrics.mode_coverage(x if bad == "nan_x" else y, MIX.means, 1.0),
    }
    assert all(np.isnan(float(v)) for v in values.values()), values
    # Under jit too (the finite check is data-dependent, not a trace-time one).
    assert np.isnan(float(jax.jit(metrics.energy_distance)(x, y)))


def test_sample_metrics_are_scale_equivariant_up_to_1e20() -> None:
    """Finding 13: data at scale 1e20 (squares overflow float32) give the exact answer.

    Energy distance and SW_2 are homogeneous of degree 1, MMD with the median bandwidth of
    degree 0; the oracle is float64 NumPy on the unscaled data. A power-of-two scale keeps
    float32 scaling exact, so the tolerance is the float32-vs-float64 one (1e-5 relative on
    sums of ~1e3 terms: 1e-4).
    """
    want_ed = oracle_metrics.energy_distance(np.asarray(A, np.float64), np.asarray(B, np.float64))
    want_mmd = oracle_metrics.mmd(np.asarray(A, np.float64), np.asarray(B, np.float64))
    for scale in (2.0**-60, 1.0, 1e20):
        got_ed = float(metrics.energy_distance(A * scale, B * scale)) / scale
        got_mmd = float(metrics.mmd(A * scale, B * scale))
        np.testing.assert_allclose(got_ed, want_ed, rtol=1e-4)
        np.testing.assert_allclose(got_mmd, want_mmd, rtol=1e-4)


def test_frechet_distance_gaussian_is_nan_for_a_traced_indefinite_covariance() -> None:
    """Finding 11: under jit the covariance cannot be checked at trace time; NaN, not 0.0."""
    f = jax.jit(metrics.frechet_distance_gaussian)
    assert np.isnan(float(f(jnp.zeros(2), -jnp.eye(2), jnp.zeros(2), -jnp.eye(2))))
    # A valid pair is unaffected: N(0, I) vs N(1, 4 I) in 2-D: |1|^2 * 2 + 2 (2 - 1)^2 = 4.
    got = f(jnp.zeros(2), jnp.eye(2), jnp.ones(2), 4.0 * jnp.eye(2))
    np.testing.assert_allclose(float(got), 4.0, rtol=1e-6)


def test_linear_gaussian_log_prob_at_small_noise_matches_the_oracle() -> None:
    """Finding 13: noise_std = 1e-4 (C = W W^T + 1e-8 I near-singular in float32)."""
    got = np.asarray(LG_SHARP.log_prob(jnp.asarray(X_SHARP)))
    assert _lg_sharp_ok(got), got
    # Ordinary noise: the float32 vs float64 agreement of a short computation (1e-5).
    x = np.asarray(LG.sample(jax.random.key(4), 8)[0])
    want = oracle_targets.linear_gaussian_log_prob(W, B0, 0.5, x.astype(np.float64))
    np.testing.assert_allclose(np.asarray(LG.log_prob(jnp.asarray(x))), want, rtol=1e-5)


def test_ode_solve_rejects_the_swapped_field_of_the_issue() -> None:
    """Finding 9: ``lambda y, t: -y`` returned 0.5 for exp(-1) = 0.368 without a word."""
    with pytest.raises(ValueError, match=r"f\(y, t\)"):
        ode.solve(lambda y, t: -y, jnp.ones(3), 0.0, 1.0, num_steps=20)
    np.testing.assert_allclose(ode.solve(_decay, jnp.ones(3), 0.0, 1.0, num_steps=20),
                               np.exp(-1.0), rtol=1e-5)
