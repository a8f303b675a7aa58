"""Exact mixture models, and the samplers held against exact targets.

* the exact models (eps over a schedule, denoiser, score over an SDE) equal
  genjax.oracle_targets (NumPy) in float64 and float32, at one level per point and at one
  shared level; new mixtures never recompile; zero terminal SNR gives eps = x_t;
* DDIM (eta = 0) with the exact eps maps N(0, I) to the target's exact mean and
  covariance within Monte Carlo error (a Gaussian and the ring) [slow];
* every sampler covers all 8 modes of the ring [slow].

The measured convergence orders (against each sampler's declared ``*_ORDER``) are in
test_orders.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import diffusion as d
from genjax import metrics, targets
from genjax import oracle_targets as ot
from genjax.diffusion import analytic
from genjax.model import model_jit
from genjax.testing import assert_close_to_oracle, count_compilations, moment_ztest


def _np(target):
    return tuple(np.asarray(a, np.float64) for a in (target.weights, target.means, target.covs))


def _aniso_mixture(dtype):
    covs = [[[0.5, 0.2], [0.2, 0.3]], [[0.2, 0.0], [0.0, 0.6]], [[0.3, -0.1], [-0.1, 0.3]]]
    return targets.GaussianMixture.create(
        [0.2, 0.5, 0.3], [[-2.0, 0.0], [1.0, 1.5], [0.5, -2.0]], covs, dtype=dtype
    )


def _call(model, *args):
    return model(*args)


# One program per model type and shapes: the models are traced, not baked in.
_call_jit = model_jit(_call)


@pytest.mark.parametrize("jit", [False, True])
def test_eps_and_denoiser_match_numpy_oracle(x64, jit):
    target = _aniso_mixture(jnp.float64)
    w, m, c = _np(target)
    s = d.linear(1000, dtype=jnp.float64)
    ab = np.asarray(s.alpha_bars)
    x = np.random.default_rng(0).standard_normal((6, 2)) * 3.0
    call = _call_jit if jit else _call
    # One level per point (the per-point branch), then one shared level (the samplers').
    for t in (np.array([0, 1, 100, 500, 998, 999], np.int32), np.full(6, 700, np.int32)):
        want = np.stack([
            ot.mixture_eps(w, m, c, x[i:i + 1], np.sqrt(ab[ti]), np.sqrt(1 - ab[ti]))[0]
            for i, ti in enumerate(t)
        ])  # fmt: skip
        assert_close_to_oracle(call(d.analytic_eps_fn(target, s), x, t), want)
    sig = np.array([0.002, 0.1, 1.0, 5.0, 80.0, 0.5])
    want = np.stack([
        ot.mixture_posterior_mean_x0(w, m, c, x[i:i + 1] * sig[i], 1.0, sig[i])[0]
        for i in range(6)
    ])  # fmt: skip
    assert_close_to_oracle(call(d.analytic_denoiser(target), x * sig[:, None], sig), want)


def test_float32_models_match_oracle_at_their_parameters():
    """The float32 model against the float64 oracle at the same (float32) parameters."""
    target = targets.ring()
    w, m, c = _np(target)
    s = d.linear(1000)
    x = jax.random.normal(jax.random.key(0), (64, 2)) * 4.0
    t = jax.random.randint(jax.random.key(1), (64,), 0, 1000)
    ab = np.asarray(s.alpha_bars, np.float64)[np.asarray(t)]
    om = np.asarray(s.one_minus_alpha_bars, np.float64)[np.asarray(t)]
    xn = np.asarray(x, np.float64)
    want = np.stack([
        ot.mixture_eps(w, m, c, xn[i:i + 1], np.sqrt(ab[i]), np.sqrt(om[i]))[0]
        for i in range(64)
    ])  # fmt: skip
    got = d.analytic_eps_fn(target, s)(x, t)
    assert got.dtype == jnp.float32
    # float32 arithmetic on values up to ~8: a few ulps.
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    sig = jnp.exp(jax.random.uniform(jax.random.key(2), (64,), minval=-6.0, maxval=4.4))
    xs = x * sig[:, None]
    sn, xsn = np.asarray(sig, np.float64), np.asarray(xs, np.float64)
    want = np.stack([
        ot.mixture_posterior_mean_x0(w, m, c, xsn[i:i + 1], 1.0, sn[i])[0] for i in range(64)
    ])  # fmt: skip
    np.testing.assert_allclose(d.analytic_denoiser(target)(xs, sig), want, rtol=1e-5, atol=1e-5)


def test_score_model_matches_oracle(x64):
    target = _aniso_mixture(jnp.float64)
    w, m, c = _np(target)
    sde = _VP(beta_min=0.1, beta_max=20.0)
    x = np.random.default_rng(1).standard_normal((5, 2)) * 2.0
    t = np.array([1e-4, 0.1, 0.5, 0.9, 1.0])
    model = d.analytic.analytic_score_fn(target, sde)
    a, sg = np.asarray(sde.alpha(t)), np.asarray(sde.sigma(t))
    want = np.stack([
        ot.mixture_score(*ot.mixture_noised(w, m, c, a[i], sg[i]), x[i:i + 1])[0]
        for i in range(5)
    ])  # fmt: skip
    assert_close_to_oracle(_call_jit(model, x, t), want)
    # A scalar time is one level for the whole batch.
    want = ot.mixture_score(*ot.mixture_noised(w, m, c, a[2], sg[2]), x)
    assert_close_to_oracle(model(x, 0.5), want)


class _VP:
    """A variance-preserving SDE's marginal scales (what the score model needs of an SDE)."""

    def __init__(self, beta_min: float, beta_max: float) -> None:
        self.beta_min, self.beta_max = beta_min, beta_max

    def _log_alpha(self, t):
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def alpha(self, t):
        return jnp.exp(self._log_alpha(t))

    def sigma(self, t):
        return jnp.sqrt(-jnp.expm1(2.0 * self._log_alpha(t)))


def test_models_compile_once_for_new_mixtures():
    """Two mixtures of the same shapes (and two schedules): one program; the outputs differ."""
    s1, s2 = d.linear(100), d.cosine(100)
    m1 = d.analytic_eps_fn(targets.ring(n_modes=8, radius=4.0, std=0.3), s1)
    m2 = d.analytic_eps_fn(targets.ring(n_modes=8, radius=2.0, std=0.5), s2)
    x = jax.random.normal(jax.random.key(0), (16, 2))
    t = jnp.full((16,), 50)
    fn = model_jit(_call)
    with count_compilations() as n:
        e1 = fn(m1, x, t).block_until_ready()
    assert n[0] >= 1
    with count_compilations() as n:
        e2 = fn(m2, x, t).block_until_ready()
    assert n[0] == 0
    assert not np.allclose(e1, e2)
    np.testing.assert_allclose(e2, m2(x, t), rtol=1e-6, atol=1e-6)


def test_deprecated_fast_aliases_warn_and_return_the_models():
    target, s = targets.ring(), d.linear(10)
    with pytest.warns(DeprecationWarning, match="analytic_eps_fn"):
        eps = analytic.fast_analytic_eps_fn(target, s)
    with pytest.warns(DeprecationWarning, match="analytic_denoiser"):
        den = analytic.fast_analytic_denoiser(target)
    assert isinstance(eps, analytic.AnalyticEps) and isinstance(den, analytic.AnalyticDenoiser)
    assert "fast_analytic_eps_fn" not in analytic.__all__


def test_zero_terminal_snr_eps_is_x_over_sigma():
    s = d.rescale_zero_terminal_snr(d.linear(100))
    model = d.analytic_eps_fn(targets.ring(), s)
    x = jax.random.normal(jax.random.key(3), (8, 2)) * 3.0
    out = model(x, jnp.full((8,), 99))
    # alpha = 0, sigma = 1: no information about x_0 -- E[eps | x_t] = x_t exactly.
    np.testing.assert_allclose(out, x, rtol=1e-6, atol=1e-6)


def test_single_gaussian_closed_form_and_extremes():
    """N(m, c^2 I): eps = sigma (x - alpha m)/(alpha^2 c^2 + sigma^2); a sign flip fails."""
    m, c = np.array([1.0, -2.0]), 0.5
    target = targets.GaussianMixture.create([1.0], [m], [c**2 * np.eye(2)])
    s = d.linear(1000)
    x = jnp.array([[3.0, 1.0], [-1.0, 0.0]])
    for t in (0, 999):
        tt = jnp.full((2,), t)
        a, sg = float(s.alpha(t)), float(s.sigma(t))
        want = sg * (np.asarray(x) - a * m) / (a**2 * c**2 + sg**2)
        np.testing.assert_allclose(d.analytic_eps_fn(target, s)(x, tt), want, rtol=2e-5)
    den = d.analytic_denoiser(target)
    # sigma -> 0 returns x itself; sigma -> inf returns the prior mean.
    np.testing.assert_allclose(den(x, jnp.full((2,), 1e-4)), x, atol=1e-6)
    np.testing.assert_allclose(den(x * 1e4, jnp.full((2,), 1e4)), np.stack([m, m]), atol=1e-3)


def test_bad_shapes_raise():
    target = targets.ring()
    fn = d.analytic_eps_fn(target, d.linear(10))
    with pytest.raises(ValueError, match="t"):
        fn(jnp.zeros((4, 2)), jnp.zeros((3,), jnp.int32))
    with pytest.raises(ValueError, match="x"):
        fn(jnp.zeros((4, 3)), jnp.zeros((4,), jnp.int32))


@pytest.mark.slow
def test_ddim_reproduces_exact_mean_and_covariance():
    """DDIM with all T steps integrates the probability-flow ODE, which maps N(0, I) to the
    data law: sample mean and covariance match the exact ones within Monte Carlo error."""
    s = d.linear(1000)
    n = 20_000
    gauss = targets.GaussianMixture.create([1.0], [[1.0, -0.5]], [[[1.0, 0.6], [0.6, 0.8]]])
    for target in (gauss, targets.ring()):
        eps = d.analytic_eps_fn(target, s)
        x = np.asarray(d.ddim_sample(jax.random.key(3), eps, (n, 2), s, num_steps=1000))
        mean, cov = np.asarray(target.mean()), np.asarray(target.covariance())
        moment_ztest(x, mean, cov, check_variance=True)
        # Off-diagonal covariance: SE of the sample covariance ~ sqrt((c_00 c_11 + c_01^2)/n).
        se = np.sqrt((cov[0, 0] * cov[1, 1] + cov[0, 1] ** 2) / n)
        assert abs(np.cov(x.T)[0, 1] - cov[0, 1]) < 4.5 * se
        # Power: the wrong sign of eps would collapse or blow up the spread.
        assert np.all(np.abs(np.diag(np.cov(x.T)) / np.diag(cov) - 1) < 0.1)


@pytest.mark.slow
def test_every_sampler_covers_the_ring():
    target = targets.ring(n_modes=8, radius=4.0, std=0.3)
    s = d.linear(1000)
    eps = d.analytic_eps_fn(target, s)
    den = d.analytic_denoiser(target)
    key, n = jax.random.key(11), 1024
    truth = target.sample(jax.random.key(12), n)
    runs = {
        "ddpm": d.ddpm_sample(key, eps, (n, 2), s),
        "ddim-50": d.ddim_sample(key, eps, (n, 2), s, num_steps=50),
        "ddim-50 eta=1": d.ddim_sample(key, eps, (n, 2), s, num_steps=50, eta=1.0),
        "dpm++2M-20": d.dpm_solver_pp_sample(key, eps, (n, 2), s, num_steps=20),
        "dpm++3M-20": d.dpm_solver_pp_sample(key, eps, (n, 2), s, num_steps=20, order=3),
        "dpm++2S-20": d.dpm_solver_pp_sample(
            key, eps, (n, 2), s, num_steps=20, method="singlestep"
        ),
        "euler-50": d.euler_sample(key, den, (n, 2), d.karras_sigmas(50)),
        "heun-18": d.heun_sample(key, den, (n, 2), d.karras_sigmas(18)),
        "heun-18 churn": d.heun_sample(key, den, (n, 2), d.karras_sigmas(18), s_churn=10.0,
                                       s_tmin=0.05, s_tmax=50.0),
    }  # fmt: skip
    for name, x in runs.items():
        assert float(metrics.mode_coverage(x, target.means, 0.9)) == 1.0, name
        # and the samples sit on the modes: nearly all within 4 std of one
        dist = jnp.min(jnp.linalg.norm(x[:, None, :] - target.means[None], axis=-1), axis=1)
        assert float(jnp.mean(dist < 1.2)) > 0.97, name
        assert float(metrics.energy_distance(x, truth)) < 0.05, name


@pytest.mark.parametrize("dim", [2, 6])  # the (K, N) planes (D <= 4) and the (K, D, N) layout
def test_one_level_paths_equal_oracle(x64, dim):
    """At one shared level the mixture computes in planes for small D and in its (K, D, N)
    layout above: both held to the float64 oracle for eps, the score and the denoiser, at an
    ordinary and an extreme level."""
    rng = np.random.default_rng(3)
    a = rng.normal(size=(3, dim, dim))
    covs = a @ np.swapaxes(a, -1, -2) / dim + 0.2 * np.eye(dim)[None]
    w, m = np.array([0.2, 0.5, 0.3]), rng.normal(scale=2.0, size=(3, dim))
    gm = targets.GaussianMixture.create(w, m, covs)
    x = rng.normal(scale=3.0, size=(9, dim))
    for alpha, sigma in [(0.8, 0.6), (0.05, 1.0)]:
        ow, om, oc = ot.mixture_noised(w, m, covs, alpha, sigma)
        want = (
            ot.mixture_eps(w, m, covs, x, alpha, sigma),
            ot.mixture_score(ow, om, oc, x),
            ot.mixture_posterior_mean_x0_by_conditioning(w, m, covs, x, alpha, sigma),
        )
        got = tuple(f(x, alpha, sigma) for f in (gm.eps, gm.noised_score, gm.denoise))
        assert_close_to_oracle(got, want)  # (the methods are jitted; the levels traced)
