"""Tests for genjax.targets: exact densities, scores, posteriors, held against the NumPy
oracle, finite differences, quadrature and Monte Carlo."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import oracle_targets as ot
from genjax import targets
from genjax.testing import assert_close_to_oracle, chi_square_test, moment_ztest


def _random_mixture(seed: int, k: int = 3, d: int = 2) -> tuple[np.ndarray, ...]:
    """Full, well-conditioned random covariances so off-diagonal terms are exercised."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.5, 1.5, size=k)
    w /= w.sum()
    means = rng.normal(scale=2.0, size=(k, d))
    a = rng.normal(size=(k, d, d))
    covs = a @ np.swapaxes(a, -1, -2) / d + 0.3 * np.eye(d)[None]
    return w, means, covs


def _points(seed: int, n: int = 17, d: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=3.0, size=(n, d))


# ---------------------------------------------------------------------------------------
# Gaussian mixture: densities and scores
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_jit", [False, True])
def test_mixture_log_prob_and_score_match_oracle_float64(x64, use_jit):
    w, means, covs = _random_mixture(0, k=3, d=3)
    gm = targets.GaussianMixture.create(w, means, covs)
    assert gm.means.dtype == jnp.float64
    x = _points(1, d=3)
    log_prob = lambda g, x: g.log_prob(x)
    score = lambda g, x: g.score(x)
    if use_jit:
        log_prob, score = jax.jit(log_prob), jax.jit(score)
    assert_close_to_oracle(log_prob(gm, x), ot.mixture_log_prob(w, means, covs, x))
    assert_close_to_oracle(score(gm, x), ot.mixture_score(w, means, covs, x))


def test_mixture_float32_matches_oracle(key):
    w, means, covs = _random_mixture(2)
    gm = targets.GaussianMixture.create(w, means, covs)
    assert gm.means.dtype == jnp.float32
    x = _points(3).astype(np.float32)
    # Oracle evaluated at the float32 inputs actually used, so only arithmetic differs.
    w32, m32, c32 = (np.asarray(a, np.float64) for a in (gm.weights, gm.means, gm.covs))
    assert_close_to_oracle(gm.log_prob(x), ot.mixture_log_prob(w32, m32, c32, x))
    np.testing.assert_allclose(
        gm.score(x),
        ot.mixture_score(w32, m32, c32, x),
        # Score is a difference of responsibility-weighted terms: near the saddle
        # between modes the result is small against its parts, so an absolute floor
        # scaled to the parts' size (|Sigma^{-1}(x - mu)| ~ 10) is the honest measure.
        rtol=1e-5,
        atol=1e-5,
    )


def test_score_equals_autodiff_of_log_prob(x64):
    w, means, covs = _random_mixture(4, k=4, d=2)
    gm = targets.GaussianMixture.create(w, means, covs)
    x = jnp.asarray(_points(5))
    # log_prob's x-derivative rule *is* the closed-form score; differentiating the mixture's
    # fields as well makes it fall back to plain autodiff of the log-density.
    grad = jax.vmap(jax.grad(lambda x, g: g.log_prob(x), argnums=(0, 1)), in_axes=(0, None))
    auto, _ = jax.jit(grad)(x, gm)
    np.testing.assert_allclose(gm.score(x), auto, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gm.score(x), jax.vmap(jax.grad(gm.log_prob))(x), rtol=1e-14)


def test_oracle_score_equals_central_finite_difference():
    w, means, covs = _random_mixture(6, k=3, d=2)
    x = _points(7, n=9)
    h = 1e-5
    fd = np.zeros_like(x)
    for j in range(x.shape[1]):
        e = np.zeros(x.shape[1])
        e[j] = h
        fd[:, j] = (
            ot.mixture_log_prob(w, means, covs, x + e) - ot.mixture_log_prob(w, means, covs, x - e)
        ) / (2 * h)
    # Central differences: truncation O(h^2 f''') ~ 1e-10, rounding O(eps/h) ~ 1e-11.
    np.testing.assert_allclose(ot.mixture_score(w, means, covs, x), fd, rtol=1e-7, atol=1e-8)


def test_log_prob_integrates_to_one_on_a_grid(x64):
    gm = targets.ring(n_modes=5, radius=2.0, std=0.5)
    # Box [-6, 6]^2: every mode is >= 8 std from the boundary, so the mass outside is
    # below 1e-14; trapezoid with spacing 0.03 = std/16 has relative error ~1e-12 for
    # a Gaussian (spectrally accurate on smooth, decaying integrands).
    ticks = np.linspace(-6.0, 6.0, 401)
    gx, gy = np.meshgrid(ticks, ticks, indexing="ij")
    pts = jnp.asarray(np.stack([gx.ravel(), gy.ravel()], axis=-1))
    dens = np.exp(np.asarray(gm.log_prob(pts))).reshape(gx.shape)
    h = ticks[1] - ticks[0]
    wts = np.ones_like(ticks)
    wts[[0, -1]] = 0.5
    total = h * h * np.einsum("i,j,ij->", wts, wts, dens)
    assert abs(total - 1.0) < 1e-9


def test_extreme_inputs_stay_finite():
    gm = targets.ring(n_modes=4, radius=3.0, std=0.1)
    far = jnp.array([[1e3, -5e2], [0.0, 0.0], [3.0, 0.0]])
    lp = gm.log_prob(far)
    s = gm.score(far)
    assert np.all(np.isfinite(lp)) and np.all(np.isfinite(s))
    # Far away only the nearest mode matters: score -> -(x - mu_nearest) / std^2.
    means = np.asarray(gm.means)
    nearest = means[int(np.argmin(np.sum((means - np.asarray(far[0])[None, :]) ** 2, 1)))]
    np.testing.assert_allclose(s[0], -(np.asarray(far[0]) - nearest) / 0.01, rtol=1e-5)


# ---------------------------------------------------------------------------------------
# Gaussian mixture: sampling, moments, noising, denoiser
# ---------------------------------------------------------------------------------------


def test_mean_and_covariance_match_oracle(x64):
    w, means, covs = _random_mixture(8)
    gm = targets.GaussianMixture.create(w, means, covs)
    assert_close_to_oracle(gm.mean(), ot.mixture_mean(w, means))
    assert_close_to_oracle(gm.covariance(), ot.mixture_covariance(w, means, covs))


def test_samples_have_the_mixture_moments_and_weights(key):
    w, means, covs = _random_mixture(9, k=3)
    gm = targets.GaussianMixture.create(w, means, covs)
    n = 20_000
    x = jax.jit(gm.sample, static_argnums=1)(key, n)
    assert x.shape == (n, 2) and x.dtype == jnp.float32
    moment_ztest(x, gm.mean(), gm.covariance(), check_variance=True)
    # Beyond moments, the law itself: a 1-D projection's exact CDF against the samples.
    u = np.array([0.6, 0.8])
    _projection_chi_square(np.asarray(x) @ u, w, means @ u, np.einsum("i,kij,j->k", u, covs, u))


def _projection_chi_square(proj, w, m_k, var_k, num_bins: int = 20) -> None:
    """Chi-square test of 1-D draws against sum_k w_k N(m_k, var_k), whose CDF is
    sum_k w_k Phi((t - m_k) / s_k); bins between sample quantiles."""
    edges = np.quantile(proj, np.linspace(0, 1, num_bins + 1)[1:-1])
    s_k = np.sqrt(var_k)
    cdf = np.array(
        [
            sum(
                wk * 0.5 * math.erfc(-(t - m) / (s * math.sqrt(2)))
                for wk, m, s in zip(w, m_k, s_k, strict=True)
            )
            for t in edges
        ]
    )
    probs = np.diff(np.concatenate([[0.0], cdf, [1.0]]))
    counts = np.bincount(np.searchsorted(edges, proj), minlength=num_bins)
    chi_square_test(counts, probs)


def test_noised_is_the_law_of_the_diffused_variable(keys):
    w, means, covs = _random_mixture(10, k=2)
    gm = targets.GaussianMixture.create(w, means, covs)
    alpha, sigma = 0.7, 0.9
    pt = gm.noised(alpha, sigma)
    # Closed form against the oracle, and noised is a GaussianMixture again.
    ow, om, oc = ot.mixture_noised(
        *(np.asarray(a, np.float64) for a in (gm.weights, gm.means, gm.covs)), alpha, sigma
    )
    assert isinstance(pt, targets.GaussianMixture)
    assert_close_to_oracle((pt.weights, pt.means, pt.covs), (ow, om, oc))
    # Monte Carlo: x_t = alpha x0 + sigma eps has the moments of pt ...
    n = 20_000
    x0 = gm.sample(keys[0], n)
    xt = alpha * x0 + sigma * jax.random.normal(keys[1], x0.shape)
    moment_ztest(xt, pt.mean(), pt.covariance(), check_variance=True)
    # ... and its 1-D projections follow pt's density.
    u = np.array([1.0, 0.0])
    pt_covs = np.asarray(pt.covs, np.float64)
    _projection_chi_square(
        np.asarray(xt) @ u,
        w,
        np.asarray(pt.means, np.float64) @ u,
        np.einsum("i,kij,j->k", u, pt_covs, u),
    )
    # A wrong law (sigma too small) is rejected by the same check.
    wrong = gm.noised(alpha, 0.5 * sigma)
    with pytest.raises(AssertionError):
        moment_ztest(xt, wrong.mean(), wrong.covariance(), check_variance=True)


@pytest.mark.parametrize("use_jit", [False, True])
def test_posterior_mean_x0_is_tweedie(x64, use_jit):
    w, means, covs = _random_mixture(11, k=3)
    gm = targets.GaussianMixture.create(w, means, covs)
    x_t = _points(12)
    fn = lambda g, x, a, s: g.posterior_mean_x0(x, a, s)
    if use_jit:
        fn = jax.jit(fn)
    for alpha, sigma in [(0.9, 0.4), (0.3, 1.0), (1.0, 1e-3)]:
        got = fn(gm, x_t, alpha, sigma)
        want = ot.mixture_posterior_mean_x0(w, means, covs, x_t, alpha, sigma)
        # Tweedie divides by alpha; at alpha = 0.3 the oracle's rounding is 3x larger.
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_posterior_mean_x0_limits(x64):
    w, means, covs = _random_mixture(13)
    gm = targets.GaussianMixture.create(w, means, covs)
    x_t = jnp.asarray(_points(14))
    # alpha = 0: x_t carries no information, the denoiser is the prior mean (and finite).
    np.testing.assert_allclose(
        gm.posterior_mean_x0(x_t, 0.0, 1.0), np.broadcast_to(gm.mean(), x_t.shape), rtol=1e-12
    )
    # sigma -> 0 with alpha = 1: the denoiser returns its input.
    np.testing.assert_allclose(gm.posterior_mean_x0(x_t, 1.0, 1e-6), x_t, rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------------------------
# Constructors, pytree behaviour, validation
# ---------------------------------------------------------------------------------------


def test_constructors_geometry():
    r = targets.ring(n_modes=6, radius=4.0, std=0.3)
    assert r.num_components == 6 and r.dim == 2
    np.testing.assert_allclose(np.linalg.norm(r.means, axis=1), 4.0, rtol=1e-6)
    np.testing.assert_allclose(
        r.means[1], [4 * math.cos(math.pi / 3), 4 * math.sin(math.pi / 3)], rtol=1e-6
    )
    np.testing.assert_allclose(r.covs, np.broadcast_to(0.09 * np.eye(2), (6, 2, 2)), rtol=1e-6)
    np.testing.assert_allclose(r.weights, np.full(6, 1 / 6), rtol=1e-6)
    g = targets.grid(n_per_side=3, spacing=2.0, std=0.2)
    assert g.num_components == 9
    np.testing.assert_allclose(g.mean(), [0.0, 0.0], atol=1e-6)
    assert set(np.unique(np.round(np.asarray(g.means), 5))) == {-2.0, 0.0, 2.0}
    m = targets.mixture_1d([0.25, 0.75], [-1.0, 2.0], [0.5, 1.0])
    assert m.dim == 1
    np.testing.assert_allclose(m.covs[:, 0, 0], [0.25, 1.0])
    np.testing.assert_allclose(m.mean(), [0.25 * -1 + 0.75 * 2.0], rtol=1e-6)


def test_mixture_is_a_pytree_under_jit_and_vmap(key):
    gm = targets.ring(n_modes=4)
    x = gm.sample(key, 8)
    eager = gm.log_prob(x)
    np.testing.assert_array_equal(jax.jit(lambda g: g.log_prob(x))(gm), eager)
    # A batch of targets (stacked leaves) through vmap: scale the means.
    stacked = jax.tree_util.tree_map(lambda a: jnp.stack([a, a]), gm)
    stacked = targets.GaussianMixture(
        stacked.weights, stacked.means * jnp.array([1.0, 2.0])[:, None, None], stacked.covs
    )
    both = jax.vmap(lambda g: g.log_prob(x))(stacked)
    np.testing.assert_allclose(both[0], eager, rtol=1e-6)
    assert not np.allclose(both[1], eager)
    # Traced noise levels.
    f = jax.jit(lambda a, s: gm.noised(a, s).log_prob(x))
    np.testing.assert_allclose(f(0.5, 0.5), gm.noised(0.5, 0.5).log_prob(x), rtol=1e-6)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: targets.ring(n_modes=0), "n_modes"),
        (lambda: targets.ring(std=0.0), "std"),
        (lambda: targets.ring(radius=-1.0), "radius"),
        (lambda: targets.grid(n_per_side=0), "n_per_side"),
        (lambda: targets.grid(spacing=0.0), "spacing"),
        (lambda: targets.grid(std=-0.2), "std"),
        (lambda: targets.mixture_1d([0.5, 0.6], [0, 1], [1, 1]), "weights"),
        (lambda: targets.mixture_1d([1.5, -0.5], [0, 1], [1, 1]), "weights"),
        (lambda: targets.mixture_1d([0.5, 0.5], [0, 1, 2], [1, 1]), "means"),
        (lambda: targets.mixture_1d([0.5, 0.5], [0, 1], [1, 0]), "stds"),
        (
            lambda: targets.GaussianMixture.create([1.0], [[0.0, 0.0]], [[[1.0, 2.0], [2.0, 1.0]]]),
            "positive definite",
        ),
        (
            lambda: targets.GaussianMixture.create([1.0], [[0.0, 0.0]], [[[1.0, 0.5], [0.0, 1.0]]]),
            "symmetric",
        ),
        (lambda: targets.GaussianMixture.create([1.0], [[0.0, 0.0]], [[[1.0]]]), "covs"),
        (
            lambda: targets.GaussianMixture.create([0.5, 0.5], [[0.0, 0.0]], np.eye(2)[None]),
            "means",
        ),
        (lambda: targets.ring().log_prob(jnp.zeros((3, 3))), "x"),
        (lambda: targets.ring().noised(jnp.ones(2), 1.0), "alpha"),
        (lambda: targets.LinearGaussian.create(np.ones(3), np.zeros(3), 1.0), "W"),
        (lambda: targets.LinearGaussian.create(np.ones((3, 2)), np.zeros(2), 1.0), "b"),
        (lambda: targets.LinearGaussian.create(np.ones((3, 2)), np.zeros(3), 0.0), "noise_std"),
        (lambda: targets.optimal_discriminator(jnp.zeros(3), jnp.zeros(2)), "log_p_g"),
        (
            lambda: targets.gan_value_at_optimum(
                targets.ring(), targets.mixture_1d([1.0], [0.0], [1.0]), jax.random.key(0), 10
            ),
            "q",
        ),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# ---------------------------------------------------------------------------------------
# Linear-Gaussian model
# ---------------------------------------------------------------------------------------


def _lg_params(seed: int, d: int = 4, l: int = 2):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(d, l)), rng.normal(size=(d,)), 0.7


@pytest.mark.parametrize("use_jit", [False, True])
def test_linear_gaussian_marginal_and_posterior_match_bayes(x64, use_jit):
    W, b, s = _lg_params(20)
    lg = targets.LinearGaussian.create(W, b, s)
    x = _points(21, n=5, d=4)
    log_prob = lambda m, x: m.log_prob(x)
    posterior = lambda m, x: m.posterior(x)
    if use_jit:
        log_prob, posterior = jax.jit(log_prob), jax.jit(posterior)
    assert_close_to_oracle(lg.marginal_cov(), ot.linear_gaussian_marginal(W, b, s)[1])
    assert_close_to_oracle(log_prob(lg, x), ot.linear_gaussian_log_prob(W, b, s, x))
    # Oracle conditions the joint Gaussian of (z, x); ours uses M = W^T W + s^2 I.
    assert_close_to_oracle(posterior(lg, x), ot.linear_gaussian_posterior(W, b, s, x))


def test_linear_gaussian_samples(keys):
    W, b, s = _lg_params(22, d=3, l=2)
    lg = targets.LinearGaussian.create(W, b, s)
    x, z = lg.sample(keys[0], 20_000)
    assert x.shape == (20_000, 3) and z.shape == (20_000, 2)
    moment_ztest(x, b, lg.marginal_cov(), check_variance=True)
    moment_ztest(z, np.zeros(2), np.eye(2), check_variance=True)
    # x is W z + b plus noise of variance s^2: the residual has the noise's moments.
    moment_ztest(x - z @ lg.W.T - lg.b[None, :], np.zeros(3), s**2 * np.eye(3), check_variance=True)


def test_elbo_equals_log_likelihood_at_the_exact_posterior(x64):
    # q is diagonal, so take W with orthogonal columns: then the posterior is diagonal.
    q_mat, _ = np.linalg.qr(np.random.default_rng(23).normal(size=(5, 3)))
    W = q_mat * np.array([2.0, 1.0, 0.5])[None, :]
    b = np.arange(5.0)
    lg = targets.LinearGaussian.create(W, b, 0.3)
    x = jnp.asarray(_points(24, n=6, d=5))
    mean, cov = lg.posterior(x)
    np.testing.assert_allclose(cov, np.diag(np.diag(cov)), atol=1e-14)
    logvar = jnp.broadcast_to(jnp.log(jnp.diagonal(cov)), mean.shape)
    np.testing.assert_allclose(lg.elbo(x, mean, logvar), lg.log_prob(x), rtol=1e-12)
    np.testing.assert_allclose(lg.kl_to_posterior(x, mean, logvar), 0.0, atol=1e-12)


@pytest.mark.parametrize("use_jit", [False, True])
def test_elbo_gap_is_the_kl_to_the_posterior(x64, use_jit):
    W, b, s = _lg_params(25)
    lg = targets.LinearGaussian.create(W, b, s)
    rng = np.random.default_rng(26)
    x = _points(27, n=6, d=4)
    q_mean = rng.normal(size=(6, 2))
    q_logvar = rng.normal(scale=0.5, size=(6, 2))
    elbo = jax.jit(lambda m, *a: m.elbo(*a)) if use_jit else (lambda m, *a: m.elbo(*a))
    got_elbo = elbo(lg, x, q_mean, q_logvar)
    got_kl = lg.kl_to_posterior(x, q_mean, q_logvar)
    want_elbo, want_kl = ot.linear_gaussian_elbo(W, b, s, x, q_mean, q_logvar)
    assert_close_to_oracle(got_elbo, want_elbo)
    assert_close_to_oracle(got_kl, want_kl)
    assert np.all(np.asarray(got_kl) > 0)
    assert np.all(np.asarray(got_elbo) < np.asarray(lg.log_prob(x)))


def test_elbo_float32_and_batch_shapes():
    W, b, s = _lg_params(28)
    lg = targets.LinearGaussian.create(W, b, s)
    x = jnp.ones((2, 3, 4))
    out = lg.elbo(x, jnp.zeros((2, 3, 2)), jnp.zeros((2, 3, 2)))
    assert out.shape == (2, 3) and out.dtype == jnp.float32
    mean, cov = lg.posterior(x)
    assert mean.shape == (2, 3, 2) and cov.shape == (2, 2)
    with pytest.raises(ValueError, match="q_logvar"):
        lg.elbo(x, jnp.zeros((2, 3, 2)), jnp.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="q_mean"):
        lg.kl_to_posterior(x, jnp.zeros((2, 3, 5)), jnp.zeros((2, 3, 5)))


# ---------------------------------------------------------------------------------------
# GAN pairs
# ---------------------------------------------------------------------------------------


def test_optimal_discriminator():
    lp = jnp.array([0.0, 1.0, -2.0, 1e4, -1e4])
    lq = jnp.array([0.0, 0.0, 0.0, -1e4, 1e4])
    d = targets.optimal_discriminator(lp, lq)
    # D* = p / (p + q)
    np.testing.assert_allclose(
        d[:3], [0.5, math.e / (math.e + 1), math.exp(-2) / (math.exp(-2) + 1)], rtol=1e-6
    )
    np.testing.assert_array_equal(d[3:], [1.0, 0.0])


def test_gan_value_at_optimum(key):
    # One sample size and one mixture shape throughout: a single compilation.
    n = 40_000
    value = jax.jit(targets.gan_value_at_optimum, static_argnums=3)
    p = targets.mixture_1d([0.3, 0.7], [-1.0, 1.5], [0.6, 0.8])
    # p against itself: D* = 1/2 everywhere, so exactly -log 4 for any sample.
    np.testing.assert_allclose(value(p, p, key, n), -math.log(4.0), rtol=1e-6)
    q = targets.mixture_1d([0.5, 0.5], [0.0, 3.0], [1.0, 0.5])
    est = value(p, q, key, n)
    as_tuple = lambda t: tuple(np.asarray(a, np.float64) for a in (t.weights, t.means, t.covs))
    exact = ot.gan_value_at_optimum_1d(as_tuple(p), as_tuple(q), lo=-12.0, hi=15.0)
    assert -math.log(4.0) < exact < 0.0
    # Each log-sigmoid term lies in [log eps, 0] with standard deviation < 1 here, so the
    # sum of two means has a standard error below sqrt(2 / n) = 0.007; allow 5 of them.
    assert abs(float(est) - exact) < 5 * math.sqrt(2.0 / n)
    # Far-apart pair: JSD -> log 2, value -> 0.
    far = targets.mixture_1d([0.5, 0.5], [100.0, 104.0], [1.0, 1.0])
    np.testing.assert_allclose(value(p, far, key, n), 0.0, atol=1e-6)
