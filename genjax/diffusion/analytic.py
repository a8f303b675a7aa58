"""Exact diffusion models of Gaussian-mixture data.

If the data follow a Gaussian mixture ``p_0 = sum_k w_k N(mu_k, Sigma_k)``, the noised
variable ``x_t = alpha x_0 + sigma eps`` follows the mixture
``p_t = sum_k w_k N(alpha mu_k, alpha^2 Sigma_k + sigma^2 I)``
(:meth:`genjax.targets.GaussianMixture.noised`), so every quantity a diffusion network
learns is known in closed form (Tweedie's formula; Efron 2011; Song et al. 2021, sec. 3.3):

    E[eps | x_t] = -sigma grad log p_t(x_t)                      (the optimal eps-prediction)
    E[x_0 | x_t] = sum_k r_k(x_t) [mu_k + alpha Sigma_k C_k^{-1} (x_t - alpha mu_k)],
    C_k = alpha^2 Sigma_k + sigma^2 I,  r_k(x_t) = p(k | x_t)   (the optimal denoiser)

These plug into the samplers wherever a trained network would, so a sampler's output can
be held against the exact target (:mod:`genjax.diffusion.sample`).

Two implementations:

* :func:`analytic_eps_fn`, :func:`analytic_denoiser` -- the reference: per example, the
  score of ``target.noised(alpha_t, sigma_t)`` (Cholesky per component), written to be
  read.
* :func:`fast_analytic_eps_fn`, :func:`fast_analytic_denoiser` -- the same numbers laid
  out for speed. Each ``Sigma_k = U_k diag(lam_k) U_k^T`` is diagonalised once; then
  ``C_k = U_k diag(alpha^2 lam_k + sigma^2) U_k^T`` is inverted for free at every noise
  level, and the work is arrays of shape ``(K, D, N)`` with the N points on the last
  (contiguous, vectorised) axis. When all points share one noise level (the samplers'
  calls), the per-component constants are computed once per call (``lax.cond`` on the
  levels). Per-call cost on the 4096-point ring: about 70 us (2-core CPU).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from genjax.diffusion.schedules import Schedule

if TYPE_CHECKING:
    from genjax.targets import GaussianMixture

__all__ = [
    "analytic_eps_fn",
    "analytic_denoiser",
    "fast_analytic_eps_fn",
    "fast_analytic_denoiser",
]

EpsFn = Callable[[jax.Array, jax.Array], jax.Array]


def _check_xt(x: jax.Array, t: jax.Array, dim: int, tname: str) -> None:
    if x.ndim != 2 or x.shape[-1] != dim:
        raise ValueError(f"x must have shape (batch, D={dim}), got {x.shape}")
    if t.shape != (x.shape[0],):
        raise ValueError(f"{tname} must have shape (batch={x.shape[0]},), got {t.shape}")


def analytic_eps_fn(target: GaussianMixture, schedule: Schedule) -> EpsFn:
    """The exact noise prediction ``E[eps | x_t]`` for mixture data (reference version).

        eps(x_t, t) = -sigma_t grad log p_t(x_t),  p_t = target.noised(alpha_t, sigma_t)

    Args:
      target: the data distribution, a ``GaussianMixture`` over ``R^D``.
      schedule: the noise schedule giving ``alpha_t, sigma_t``.

    Returns:
      ``eps_fn(x_t, t)`` with ``x_t: (batch, D)``, ``t: (batch,)`` integer in ``[0, T)``,
      returning ``(batch, D)``.
    """

    def eps_fn(x_t: jax.Array, t: jax.Array) -> jax.Array:
        x_t, t = jnp.asarray(x_t), jnp.asarray(t)
        _check_xt(x_t, t, target.dim, "t")
        alpha = schedule.alpha(t).astype(target.means.dtype)  # (batch,)
        sigma = schedule.sigma(t).astype(target.means.dtype)  # (batch,)

        def one(x: jax.Array, a: jax.Array, s: jax.Array) -> jax.Array:
            return -s * target.noised(a, s).score(x)  # eps = -sigma * score

        return jax.vmap(one)(x_t, alpha, sigma).astype(x_t.dtype)

    return eps_fn


def analytic_denoiser(target: GaussianMixture) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """The exact denoiser ``E[x_0 | x]`` for ``x = x_0 + sigma eps`` (reference version).

    The variance-exploding parametrisation of Karras et al. (2022): ``alpha = 1``.

    Args:
      target: the data distribution, a ``GaussianMixture`` over ``R^D``.

    Returns:
      ``denoise_fn(x, sigma)`` with ``x: (batch, D)``, ``sigma: (batch,)`` positive,
      returning ``(batch, D)``.
    """

    def denoise_fn(x: jax.Array, sigma: jax.Array) -> jax.Array:
        x, sigma = jnp.asarray(x), jnp.asarray(sigma)
        _check_xt(x, sigma, target.dim, "sigma")
        one = jnp.ones((), target.means.dtype)

        def single(xi: jax.Array, si: jax.Array) -> jax.Array:
            return target.posterior_mean_x0(xi, one, si.astype(one.dtype))  # Tweedie

        return jax.vmap(single)(x, sigma).astype(x.dtype)

    return denoise_fn


def _eigen(target: GaussianMixture, dtype: jnp.dtype) -> tuple[jax.Array, ...]:
    """``Sigma_k = U_k diag(lam_k) U_k^T`` and the means in each component's eigenbasis."""
    covs = target.covs.astype(dtype)
    lam, u = jnp.linalg.eigh(covs)  # (K, D), (K, D, D); columns of U_k are eigenvectors
    means = target.means.astype(dtype)  # (K, D)
    mu_rot = jnp.einsum("kde,kd->ke", u, means)  # (K, D), U_k^T mu_k
    log_w = jnp.log(target.weights.astype(dtype))  # (K,)
    return lam, u, means, mu_rot, log_w


def _mixture_terms(
    x_dn: jax.Array,
    alpha: jax.Array,
    sigma: jax.Array,
    lam: jax.Array,
    u: jax.Array,
    mu_rot: jax.Array,
    log_w: jax.Array,
    denoise: bool,
) -> jax.Array:
    """The mixture's ``-grad log p_t`` (or its shrinkage term) in the ``(D, N)`` layout.

    Args:
      x_dn: ``(D, N)`` the points, one per column.
      alpha, sigma: ``(M,)`` with ``M = N`` (one noise level per point) or ``M = 1`` (one
        level for all points: then every per-component constant is a ``(K, D)`` array
        computed once, not per point).
      lam, u, mu_rot, log_w: from :func:`_eigen`.
      denoise: return ``sum_k r_k U_k diag(lam_k / var_k) y_k`` (the denoiser's
        shrinkage) instead of ``sum_k r_k U_k diag(1 / var_k) y_k`` (``-grad log p_t``).

    Returns:
      ``(D, N)``, and ``r: (K, N)`` the responsibilities ``p(k | x_t)``.

    Layout matters on XLA:CPU (measured in a 1000-step loop on the 4096-point ring, 2-core
    machine): the whole model costs about 70 us per call with both contractions as
    ``einsum`` calls into ``(D, N)`` results (points on the minor axis), about 125 us with the
    final one as a broadcast-multiply-sum over two axes, and the earlier version (``(N, D)``
    output, per-point constants) about 190 us.
    """
    a = alpha[None, None, :]  # (1, 1, M)
    # eigenvalues of C_k = alpha^2 Sigma_k + sigma^2 I and their reciprocals: (K, D, M)
    var = a**2 * lam[:, :, None] + (sigma**2)[None, None, :]
    inv_var = 1.0 / var
    # -1/2 log det C_k + log w_k: (K, M), constant over the points when M = 1
    log_norm = log_w[:, None] - 0.5 * jnp.sum(jnp.log(var), axis=1)
    # y_k = U_k^T x - alpha U_k^T mu_k: (K, D, N), y[k, e, n] = sum_d U[k, d, e] x[d, n]
    y = jnp.einsum("kde,dn->ken", u, x_dn) - a * mu_rot[:, :, None]
    # log w_k + log N(x; alpha mu_k, C_k) up to the shared -D/2 log 2 pi: (K, N)
    logits = log_norm - 0.5 * jnp.sum(y * y * inv_var, axis=1)
    r = jax.nn.softmax(logits, axis=0)  # (K, N), p(k | x_t)
    scale = lam[:, :, None] * inv_var if denoise else inv_var  # (K, D, M)
    g = r[:, None, :] * scale * y  # (K, E, N): r_k diag(scale_k) y_k in each eigenbasis
    # back to the standard basis and summed over components: out[d, n] = sum_{k,e} U g
    return jnp.einsum("kde,ken->dn", u, g), r


def _per_level(
    x: jax.Array, level: jax.Array, terms: Callable[[jax.Array, jax.Array], jax.Array]
) -> jax.Array:
    """Runs ``terms(x_dn, idx)`` once for a batch sharing one noise level, else per point.

    The samplers call the model with one time for the whole batch; then the per-component
    constants are computed once (``M = 1``) instead of per point. Which branch runs is
    decided at run time (``lax.cond``), so any ``(N,)`` levels stay correct.
    """
    x_dn = x.T  # (D, N): the points on the contiguous axis
    shared = jnp.all(level == level[:1])
    out = jax.lax.cond(
        shared, lambda: terms(x_dn, jnp.zeros((1,), jnp.int32)), lambda: terms(x_dn, None)
    )
    return out.T


def fast_analytic_eps_fn(target: GaussianMixture, schedule: Schedule) -> EpsFn:
    """:func:`analytic_eps_fn` computed in the ``(K, D, N)`` layout (same numbers, faster).

        eps = -sigma grad log p_t(x) = sigma sum_k r_k U_k diag(1 / (alpha^2 lam_k + sigma^2))
              U_k^T (x - alpha mu_k)

    ``alpha_t, sigma_t`` are tabulated once for the whole schedule; when all points share
    one ``t`` (as in the samplers) the per-component constants are computed once per call.

    Returns:
      ``eps_fn(x_t, t)``, ``x_t: (batch, D)``, ``t: (batch,)`` -> ``(batch, D)``.
    """
    alpha_table = jnp.sqrt(schedule.alpha_bars)  # (T,) alpha_t
    sigma_table = jnp.sqrt(schedule.one_minus_alpha_bars)  # (T,) sigma_t, no cancellation

    def eps_fn(x_t: jax.Array, t: jax.Array) -> jax.Array:
        x_t, t = jnp.asarray(x_t), jnp.asarray(t)
        _check_xt(x_t, t, target.dim, "t")
        lam, u, _, mu_rot, log_w = _eigen(target, x_t.dtype)
        alpha = alpha_table[t].astype(x_t.dtype)  # (N,)
        sigma = sigma_table[t].astype(x_t.dtype)  # (N,)

        def terms(x_dn: jax.Array, first: jax.Array | None) -> jax.Array:
            a, s = (alpha, sigma) if first is None else (alpha[first], sigma[first])
            neg_score, _ = _mixture_terms(x_dn, a, s, lam, u, mu_rot, log_w, denoise=False)
            return s[None, :] * neg_score  # eps = -sigma * score: (D, N)

        return _per_level(x_t, t, terms)

    return eps_fn


def fast_analytic_denoiser(target: GaussianMixture) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """:func:`analytic_denoiser` computed in the ``(K, D, N)`` layout.

        E[x_0 | x] = sum_k r_k (mu_k + U_k diag(lam_k / (lam_k + sigma^2)) U_k^T (x - mu_k))

    written per component, with no ``x + sigma^2 score`` cancellation at large sigma.

    Returns:
      ``denoise_fn(x, sigma)``, ``x: (batch, D)``, ``sigma: (batch,)`` -> ``(batch, D)``.
    """

    def denoise_fn(x: jax.Array, sigma: jax.Array) -> jax.Array:
        x, sigma = jnp.asarray(x), jnp.asarray(sigma)
        _check_xt(x, sigma, target.dim, "sigma")
        sigma = sigma.astype(x.dtype)
        lam, u, means, mu_rot, log_w = _eigen(target, x.dtype)

        def terms(x_dn: jax.Array, first: jax.Array | None) -> jax.Array:
            s = sigma if first is None else sigma[first]
            a = jnp.ones_like(s)
            shrink, r = _mixture_terms(x_dn, a, s, lam, u, mu_rot, log_w, denoise=True)
            # sum_k r_k mu_k + shrink: (D, N)
            return jnp.sum(means[:, :, None] * r[:, None, :], axis=0) + shrink

        return _per_level(x, sigma, terms)

    return denoise_fn
