"""The Gaussian mixture's eigenbasis layout: one implementation of every mixture formula.

Held in float64 against genjax.oracle_targets (NumPy, slogdet/solve, Tweedie as
``x + sigma^2 score``) for full, diagonal, isotropic and 1-D mixtures, clean and noised, at
ordinary and extreme points and noise levels; the closed-form derivative of ``log_prob``
against plain autodiff and finite differences; dtypes; compile-once for new mixtures.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest

from genjax import oracle_targets as ot
from genjax import targets
from genjax.model import model_jit
from genjax.testing import assert_close_to_oracle, count_compilations


def _full(k: int = 3, d: int = 3):
    rng = np.random.default_rng(0)
    w = rng.uniform(0.5, 1.5, size=k)
    a = rng.normal(size=(k, d, d))
    covs = a @ np.swapaxes(a, -1, -2) / d + 0.3 * np.eye(d)[None]
    return w / w.sum(), rng.normal(scale=2.0, size=(k, d)), covs


def _diagonal():
    covs = np.stack([np.diag([0.5, 2.0, 1.0]), np.diag([0.1, 0.1, 3.0])])
    return np.array([0.3, 0.7]), np.array([[1.0, 0.0, -1.0], [-2.0, 1.0, 0.5]]), covs


def _one_d():
    m = targets.mixture_1d([0.2, 0.5, 0.3], [-2.0, 0.5, 3.0], [0.4, 1.0, 0.2])
    return tuple(np.asarray(a, np.float64) for a in (m.weights, m.means, m.covs))


def _isotropic():
    m = targets.ring(n_modes=5, radius=3.0, std=0.3, dtype=jnp.float64)
    return tuple(np.asarray(a, np.float64) for a in (m.weights, m.means, m.covs))


KINDS = {"full": _full, "diagonal": _diagonal, "one_d": _one_d, "isotropic": _isotropic}


def _points(d: int, seed: int = 1) -> np.ndarray:
    """Ordinary points, a mode itself, and points far from every mode (to 1e3)."""
    rng = np.random.default_rng(seed)
    far = np.stack([np.full(d, 1e3), np.linspace(-300.0, 250.0, d), np.full(d, -40.0)])
    return np.concatenate([rng.normal(scale=3.0, size=(7, d)), far])


@pytest.mark.parametrize("kind", list(KINDS))
def test_clean_mixture_equals_oracle(x64, kind):
    w, m, c = KINDS[kind]()
    gm = targets.GaussianMixture.create(w, m, c)
    # The layout reconstructs the covariances and means: Sigma_k = U diag(lam) U^T.
    u, lam = np.asarray(gm.eigenvectors), np.asarray(gm.eigenvalues)
    assert_close_to_oracle(np.einsum("kde,ke,kfe->kdf", u, lam, u), c)
    assert_close_to_oracle(np.einsum("kde,ke->kd", u, np.asarray(gm.means_rotated)), m)
    x = _points(m.shape[1])
    assert_close_to_oracle(gm.log_prob(x), ot.mixture_log_prob(w, m, c, x))
    assert_close_to_oracle(gm.score(x), ot.mixture_score(w, m, c, x))
    assert_close_to_oracle(gm.component_log_probs(x), ot.mixture_component_log_probs(w, m, c, x))
    assert_close_to_oracle(gm.responsibilities(x), ot.mixture_responsibilities(w, m, c, x))
    lp, score = gm.log_prob_and_score(x)
    want = (ot.mixture_log_prob(w, m, c, x), ot.mixture_score(w, m, c, x))
    assert_close_to_oracle((lp, score), want)
    # Constructed directly (layout by jnp.linalg.eigh): the same numbers.
    direct = targets.GaussianMixture(*(jnp.asarray(a) for a in (w, m, c)))
    assert_close_to_oracle(direct.log_prob_and_score(x), (lp, score))


@pytest.mark.parametrize("kind", list(KINDS))
def test_noised_mixture_and_diffusion_quantities_equal_oracle(x64, kind):
    w, m, c = KINDS[kind]()
    gm = targets.GaussianMixture.create(w, m, c)
    d = m.shape[1]
    x = _points(d, seed=2)
    n = x.shape[0]
    for alpha, sigma in [(0.8, 0.6), (0.05, 1.0), (1.0, 1e-6), (1.0, 80.0)]:
        pt = gm.noised(alpha, sigma)
        ow, om, oc = ot.mixture_noised(w, m, c, alpha, sigma)
        assert_close_to_oracle((pt.weights, pt.means, pt.covs), (ow, om, oc))
        u, lam = np.asarray(pt.eigenvectors), np.asarray(pt.eigenvalues)
        assert_close_to_oracle(np.einsum("kde,ke,kfe->kdf", u, lam, u), oc)
        assert_close_to_oracle(
            pt.log_prob_and_score(x),
            (ot.mixture_log_prob(ow, om, oc, x), ot.mixture_score(ow, om, oc, x)),
        )
        # The same quantities from the clean mixture at the noise level: scalar levels,
        # and one level per point (the first half at this level, the rest at another).
        assert_close_to_oracle(gm.noised_score(x, alpha, sigma), ot.mixture_score(ow, om, oc, x))
        assert_close_to_oracle(gm.eps(x, alpha, sigma), ot.mixture_eps(w, m, c, x, alpha, sigma))
        den = gm.denoise(x, alpha, sigma)
        want = ot.mixture_posterior_mean_x0_by_conditioning(w, m, c, x, alpha, sigma)
        assert_close_to_oracle(den, want)
        # Tweedie's (x + sigma^2 score) / alpha too, away from the far points (where its
        # cancellation costs the oracle up to 4 digits; held to long double, ours keeps them).
        assert_close_to_oracle(den[:7], ot.mixture_posterior_mean_x0(w, m, c, x[:7], alpha, sigma))
        a2, s2 = 0.5, 0.9
        av = np.where(np.arange(n) < n // 2, alpha, a2)
        sv = np.where(np.arange(n) < n // 2, sigma, s2)
        want = np.concatenate([
            ot.mixture_eps(w, m, c, x[: n // 2], alpha, sigma),
            ot.mixture_eps(w, m, c, x[n // 2:], a2, s2),
        ])  # fmt: skip
        assert_close_to_oracle(gm.eps(x, av, sv), want)


def test_limits_of_the_diffusion_quantities(x64):
    w, m, c = _full()
    gm = targets.GaussianMixture.create(w, m, c)
    x = _points(3, seed=3)
    # alpha = 0 (zero terminal SNR): eps = x / sigma, the denoiser is the prior mean.
    assert_close_to_oracle(gm.eps(x, 0.0, 2.0), x / 2.0)
    prior_mean = np.broadcast_to(gm.mean(), x.shape)
    near = np.abs(x).max(axis=1) < 100.0
    assert_close_to_oracle(gm.denoise(x[near], 0.0, 2.0), prior_mean[near])
    # Far out, p(k | x) rests on |U_k^T x|^2 / sigma^2 ~ 1e6, rounded differently per k:
    # the problem's own conditioning, |x|^2 / sigma^2 ulps, bounds the error.
    cond = np.max(np.sum(x**2, axis=1)) / 4.0
    np.testing.assert_allclose(gm.denoise(x, 0.0, 2.0), prior_mean, rtol=4e-16 * cond)
    # sigma = 0: the denoiser returns x / alpha; eps vanishes; the noised score is the clean
    # score of x / alpha, scaled by 1 / alpha.
    assert_close_to_oracle(gm.denoise(x, 0.5, 0.0), x / 0.5)
    np.testing.assert_array_equal(gm.eps(x, 0.5, 0.0), np.zeros_like(x))
    assert_close_to_oracle(gm.noised_score(x, 0.5, 0.0), gm.score(x / 0.5) / 0.5)


def test_one_shared_level_equals_scalar_level(x64):
    """(N,) levels that all agree take the once-per-call branch: the scalar-level numbers
    (one level per point, all different, is held to the oracle above)."""
    gm = targets.GaussianMixture.create(*_full())
    x = jnp.asarray(_points(3, seed=4))
    n = x.shape[0]
    for method in (gm.eps, gm.denoise, gm.noised_score):
        np.testing.assert_allclose(
            method(x, jnp.full((n,), 0.7), jnp.full((n,), 0.4)),
            method(x, 0.7, 0.4),
            rtol=1e-13,  # the same arithmetic, fused differently inside lax.cond
            atol=1e-13,
        )


def test_log_prob_and_score_is_log_prob_and_its_gradient(x64):
    gm = targets.GaussianMixture.create(*_full())
    x = jnp.asarray(_points(3, seed=5)[:7])
    lp, score = gm.log_prob_and_score(x)
    np.testing.assert_allclose(lp, gm.log_prob(x), rtol=1e-14)
    grad = jax.grad(lambda x: jnp.sum(gm.log_prob(x)))(x)
    np.testing.assert_allclose(score, grad, rtol=1e-12, atol=1e-12)
    # The gradient by plain autodiff of eq. (3): with the mixture's own fields also
    # differentiated, log_prob's derivative rule falls back to ordinary autodiff.
    grad_x, grad_gm = jax.grad(lambda x, g: jnp.sum(g.log_prob(x)), argnums=(0, 1))(x, gm)
    np.testing.assert_allclose(score, grad_x, rtol=1e-10, atol=1e-12)
    # d log p / d (U_k^T mu_k) = r_k (y_k / lam_k), summed over the points: against the oracle.
    r = ot.mixture_responsibilities(*_full(), np.asarray(x))  # (N, K)
    y = np.einsum("kde,nd->nke", gm.eigenvectors, x) - np.asarray(gm.means_rotated)[None]
    want = np.einsum("nk,nke->ke", r, y / np.asarray(gm.eigenvalues)[None])
    np.testing.assert_allclose(grad_gm.means_rotated, want, rtol=1e-10, atol=1e-12)
    # Forward and reverse mode, first and second order, against finite differences.
    jax.test_util.check_grads(gm.log_prob, (x,), order=2, modes=["fwd", "rev"])


@pytest.mark.parametrize(
    "x_dtype, want", [("float32", "float32"), ("bfloat16", "bfloat16"), ("int32", "float32")]
)
def test_results_in_the_input_dtype(x_dtype, want):
    gm = targets.ring()
    x = jnp.asarray([[3, 1], [0, -4]], dtype=x_dtype)
    for out in (gm.log_prob(x), gm.score(x), gm.eps(x, 0.6, 0.8), gm.denoise(x, 1.0, 0.5)):
        assert out.dtype == want
    np.testing.assert_allclose(
        np.asarray(gm.score(x), np.float32),
        gm.score(x.astype(jnp.float32)),
        rtol=1e-2 if x_dtype == "bfloat16" else 0,
    )


def test_float64_input_to_float32_mixture_is_computed_in_float64(x64):
    gm32 = targets.ring(dtype=jnp.float32)
    w, m, c = (np.asarray(a, np.float64) for a in (gm32.weights, gm32.means, gm32.covs))
    x = _points(2, seed=6)[:7]
    out = gm32.log_prob(jnp.asarray(x))
    assert out.dtype == jnp.float64
    # float32 parameters (layout rounded once), float64 arithmetic.
    np.testing.assert_allclose(out, ot.mixture_log_prob(w, m, c, x), rtol=1e-6)


def test_bound_methods_are_traced_models():
    """target.log_prob of two mixtures of the same shapes: one program, different numbers."""
    fn = model_jit(lambda model, x: model(x))
    x = jax.random.normal(jax.random.key(0), (32, 2))
    a, b = targets.ring(radius=4.0), targets.ring(radius=2.0, std=0.5)
    with count_compilations() as n:
        out_a = fn(a.log_prob, x).block_until_ready()
    assert n[0] >= 1
    with count_compilations() as n:
        out_b = fn(b.log_prob, x).block_until_ready()
    assert n[0] == 0
    np.testing.assert_allclose(out_b, b.log_prob(x), rtol=1e-6)
    assert not np.allclose(out_a, out_b)


def test_level_shapes_are_checked():
    gm = targets.ring()
    with pytest.raises(ValueError, match="alpha"):
        gm.eps(jnp.zeros((4, 2)), jnp.ones(3), 1.0)
    with pytest.raises(ValueError, match="sigma"):
        gm.denoise(jnp.zeros((4, 2)), 1.0, jnp.ones((4, 1)))
    with pytest.raises(ValueError, match="x"):
        gm.log_prob_and_score(jnp.zeros((4, 3)))
