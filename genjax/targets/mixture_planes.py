"""A Gaussian mixture's diffusion quantities at one shared noise level, for small ``D``.

The same equations as :mod:`genjax.targets.mixture` (eqs. 1, 2, 4-6 of its docstring; Tweedie's
formula, Efron 2011, eq. 2.8), for the call every sampler makes: all N points at one level
``x_t = alpha x_0 + sigma eps`` and a small dimension ``D``. With ``v_k = alpha^2 lam_k +
sigma^2`` and the residual ``y_k = U_k^T x - alpha U_k^T mu_k`` in the k-th eigenbasis:

    l_k(x)  = log w_k - 1/2 sum_e log v_ke - D/2 log 2 pi - 1/2 sum_e y_ke^2 / v_ke      (1)
    r_k(x)  = exp(l_k - m) / sum_j exp(l_j - m),   m = max_j l_j                         (2)
    out(x)  = sum_k r_k [U_k (c_k * y_k)] (+ sum_k r_k mu_k for the denoiser)             (4)-(6)

with ``c_k = -1/v_k`` (the score, eq. 4), ``sigma / v_k`` (the noise prediction, eq. 5) or
``alpha lam_k / v_k`` (the denoiser, eq. 6).

Layout. Every per-point quantity is a ``(K, N)`` plane -- one per eigen-axis ``e`` for ``y``
-- with the N points on the contiguous axis, and the rotation ``U_k^T x`` unrolled over its
``D^2`` scalar coefficients (``(K,)`` columns broadcast along the points). The
per-level constants (``v_k``, ``1/v_k``, ``log |C_k|``, ``c_k U_k``) are ``(K, D)`` /
``(K, D, D)`` arrays computed once per call. No matrix product of inner size ``D`` is
formed: on XLA:CPU the ``(K, D, N)`` layout's ``U^T x`` became one library (YNNPACK) fusion
that cost ~2x the arithmetic here; the sum over components is one product of inner size
``K D`` (measured on the 4096-point 8-mode ring, 50 calls in a compiled loop: ~175 -> ~75 us
of CPU time per call; the benchmarks' diffusion suite).
Unrolling costs ``O(D^2)`` program size, so the mixture uses this path for
``D <= PLANES_MAX_DIM`` only and its ``(K, D, N)`` products above.

The NumPy float64 twin is :mod:`genjax.oracle_targets` (tests/shared/test_targets_layout.py).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from genjax.gaussian import LOG_2PI

__all__ = ["PLANES_MAX_DIM", "shared_level_sum"]

PLANES_MAX_DIM = 4
"""Largest dimension ``D`` computed in planes (program size grows as ``D^2``)."""


def shared_level_sum(
    target: Any, x: jax.Array, alpha: jax.Array, sigma: jax.Array, kind: str
) -> jax.Array:
    """Eq. (4) (``kind="score"``), (5) (``"eps"``) or (6) (``"denoise"``) at one level.

    Args:
      target: the clean ``GaussianMixture`` (its eigenbasis fields are read).
      x: ``(N, D)`` points, ``D <= PLANES_MAX_DIM``.
      alpha, sigma: ``()`` the shared noise level, not both zero.
      kind: ``"score"``, ``"eps"`` or ``"denoise"``.

    Returns:
      ``(N, D)``.
    """
    u = target.eigenvectors  # (K, D, E): Sigma_k = U_k diag(lam_k) U_k^T, E = D
    lam = target.eigenvalues  # (K, E)
    dim = u.shape[1]
    var = alpha**2 * lam + sigma**2  # (K, E): v_k, the eigenvalues of C_k
    inv_var = 1.0 / var
    # log w_k - 1/2 log |C_k| - D/2 log 2 pi: (K,), once per call
    log_norm = target.log_weights - 0.5 * (jnp.sum(jnp.log(var), axis=1) + dim * LOG_2PI)
    shift = alpha * target.means_rotated  # (K, E): alpha U_k^T mu_k
    xt = x.T  # (D, N)
    # y_ke = sum_d U_kde x_d - alpha (U_k^T mu_k)_e: one (K, N) plane per e          (1)
    ys = [
        sum(u[:, d, e, None] * xt[d][None, :] for d in range(dim)) - shift[:, e, None]
        for e in range(dim)
    ]
    # l_k = log_norm_k - 1/2 sum_e y_ke^2 / v_ke: (K, N)                                (1)
    logits = log_norm[:, None] - 0.5 * sum(ys[e] * ys[e] * inv_var[:, e, None] for e in range(dim))
    unnorm = jnp.exp(logits - jnp.max(logits, axis=0, keepdims=True))  # (K, N), eq. (2)
    total = jnp.sum(unnorm, axis=0)  # (N,): r_k = unnorm_k / total
    if kind == "score":
        coef = -inv_var  # (4): -Sigma_t^{-1} (x - alpha mu) per component
    elif kind == "eps":
        coef = sigma * inv_var  # (5): sigma C_k^{-1} (x - alpha mu_k)
    else:
        coef = alpha * lam * inv_var  # (6): alpha Sigma_k C_k^{-1} (x - alpha mu_k)
    k = u.shape[0]
    # [d, (k, e)] = U_kde c_ke: (D, K E), once per call
    w = jnp.transpose(u * coef[:, None, :], (1, 0, 2)).reshape(dim, k * dim)
    weighted = jnp.stack([unnorm * y for y in ys], axis=1).reshape(k * dim, -1)  # (K E, N)
    out = w @ weighted  # (D, N): sum_k unnorm_k U_k (c_k * y_k), one product of inner size K D
    if kind == "denoise":
        out = out + target.means.T @ unnorm  # (6): + sum_k unnorm_k mu_k
    return (out / total[None, :]).T  # r_k = unnorm_k / total: (N, D)
