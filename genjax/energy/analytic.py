"""A Gaussian mixture's log-density and score laid out for batched MCMC.

:meth:`genjax.targets.GaussianMixture.log_prob` is the readable reference (a Cholesky
factor and a triangular solve per component, per call). An MCMC loop evaluates the density
and its gradient at every step for every chain, so here -- as in
:func:`genjax.diffusion.fast_analytic_eps_fn` -- the constants are computed once, outside the
loop, from the eigendecomposition ``Sigma_k = U_k diag(lam_k) U_k^T``:

    log p(x) = logsumexp_k [ c_k - 1/2 sum_e y_ke^2 / lam_ke ],   y_k = U_k^T x - U_k^T mu_k,
    c_k = log w_k - 1/2 sum_e log lam_ke - D/2 log 2 pi
    grad log p(x) = -sum_k r_k(x) U_k diag(1 / lam_k) y_k,       r_k = softmax_k(...)

and the work is arrays of shape ``(K, D, N)`` with the N chains on the last (contiguous,
vectorised) axis: one ``einsum`` in, one out. The returned functions map
``x: (chains, dim) -> (chains,)`` (and ``-> (chains, dim)``), the batched form the
samplers of :mod:`genjax.energy.mcmc` take. The gradient of :func:`mixture_log_prob_fn`
is written by hand (``jax.custom_vjp``) so that a sampler's ``vjp`` costs one pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

if TYPE_CHECKING:
    from genjax.targets import GaussianMixture

__all__ = ["mixture_log_prob_fn", "mixture_score_fn"]


def _constants(target: GaussianMixture) -> tuple[jax.Array, ...]:
    lam, u = jnp.linalg.eigh(target.covs)  # (K, D), (K, D, D): columns of U_k eigenvectors
    mu_rot = jnp.einsum("kde,kd->ke", u, target.means)  # (K, D), U_k^T mu_k
    dim = target.means.shape[-1]
    c = (
        jnp.log(target.weights)
        - 0.5 * jnp.sum(jnp.log(lam), axis=-1)
        - 0.5 * dim * math.log(2.0 * math.pi)
    )  # (K,) log w_k - 1/2 log|Sigma_k| - D/2 log 2 pi
    return u, 1.0 / lam, mu_rot, c


def _terms(x: jax.Array, u, inv_lam, mu_rot, c) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``log p (N,)``, ``r (K, N)`` and ``diag(1/lam_k) y_k (K, D, N)`` for ``x: (N, D)``."""
    # y[k, e, n] = sum_d U[k, d, e] x[n, d] - (U_k^T mu_k)[e]: (K, D, N), chains minor
    y = jnp.einsum("kde,nd->ken", u, x) - mu_rot[:, :, None]
    z = inv_lam[:, :, None] * y  # (K, D, N), Lambda_k^{-1} y_k
    logits = c[:, None] - 0.5 * jnp.sum(y * z, axis=1)  # (K, N) log w_k N(x; mu_k, Sigma_k)
    log_p = jax.nn.logsumexp(logits, axis=0)  # (N,)
    r = jnp.exp(logits - log_p[None, :])  # (K, N) responsibilities p(k | x)
    return log_p, r, z


def mixture_log_prob_fn(target: GaussianMixture) -> Callable[[jax.Array], jax.Array]:
    """``log_prob_fn(x (chains, dim)) -> (chains,)``, the exact mixture log-density.

    Same numbers as ``target.log_prob`` (held to it by the tests), with the per-component
    constants computed once here and a hand-written gradient.
    """
    consts = _constants(target)
    dtype = target.means.dtype

    @jax.custom_vjp
    def log_prob(x: jax.Array) -> jax.Array:
        return _terms(x.astype(dtype), *consts)[0].astype(x.dtype)

    def fwd(x):
        log_p, r, z = _terms(x.astype(dtype), *consts)
        # grad log p(x) = -sum_k r_k U_k Lambda_k^{-1} y_k: (N, D)
        grad = -jnp.einsum("kde,ken->nd", consts[0], r[:, None, :] * z)
        return log_p.astype(x.dtype), grad.astype(x.dtype)

    def bwd(grad, cot):
        return (cot[:, None] * grad,)

    log_prob.defvjp(fwd, bwd)
    return log_prob


def mixture_score_fn(target: GaussianMixture) -> Callable[[jax.Array], jax.Array]:
    """``score_fn(x (chains, dim)) -> (chains, dim)``, the exact ``grad log p``."""
    consts = _constants(target)
    dtype = target.means.dtype

    def score(x: jax.Array) -> jax.Array:
        _, r, z = _terms(x.astype(dtype), *consts)
        return -jnp.einsum("kde,ken->nd", consts[0], r[:, None, :] * z).astype(x.dtype)

    return score
