"""The two halves of EM for a Gaussian mixture, and the densities they rest on.

Expectation-maximisation (Dempster, Laird & Rubin 1977) for a Gaussian mixture, as in
Bishop (2006), *Pattern Recognition and Machine Learning*, §9.2.2:

* **E-step** (eq. 9.23): the responsibilities
  ``gamma_nk = pi_k N(x_n; mu_k, Sigma_k) / sum_j pi_j N(x_n; mu_j, Sigma_j)``,
  computed in the log domain with ``logsumexp`` so that points far from every component
  (densities that underflow to 0 in float32) still get responsibilities that sum to one.
* **M-step** (eqs. 9.24-9.27 with 9.26 in its weighted form): with sample weights
  ``w_n`` (all one by default),
  ``N_k = sum_n w_n gamma_nk``, ``mu_k = sum_n w_n gamma_nk x_n / N_k``,
  ``Sigma_k = sum_n w_n gamma_nk (x_n - mu_k)(x_n - mu_k)^T / N_k + reg_covar I``,
  ``pi_k = N_k / sum_j N_j``.

The log-likelihood reported by :func:`e_step` is that of the parameters it was given
(eq. 9.28), averaged over the (weighted) data; EM never decreases it (Bishop §9.4).

Two conventions follow scikit-learn's ``GaussianMixture`` so that iterates agree with it
exactly: ``N_k`` gets ``10 * eps`` added (an empty component keeps finite parameters
instead of dividing 0 by 0), and ``reg_covar`` is added to the diagonal of every
covariance (to each variance for ``diag`` and ``spherical``). One floor is genjax's own:
the added variance is at least :func:`variance_floor` (``10 eps`` times the data's
variance), so that ``reg_covar = 0`` on duplicate points -- where a component collapses
and the likelihood is unbounded -- stays finite instead of NaN.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from genjax import checks
from genjax.gaussian import LOG_2PI
from genjax.mixture.params import (
    GMMParams,
    check_data,
    check_fit_arguments,
    check_params,
    check_reg_covar,
    check_sample_weight,
    n_parameters,
    precision_cholesky,
)

__all__ = [
    "bic",
    "component_log_prob",
    "e_step",
    "em_step",
    "log_prob",
    "m_step",
    "predict",
    "predict_proba",
]


# ---------------------------------------------------------------------------------------
# Densities
# ---------------------------------------------------------------------------------------


# Up to this dimension the per-dimension loops below are unrolled at trace time: every
# (n, K) quantity of one EM iteration is then computed inside a few fused elementwise loops
# and nothing of size (n, K, D) or (n, K, D, D) is ever written to memory. Above it the
# batched einsum forms are used (the unrolled graph would grow like D^2).
_UNROLL_MAX_DIM = 8


def _mahalanobis(params: GMMParams, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``||A_k (x_n - mu_k)||^2`` (``(n, K)``) and ``log det Sigma_k`` (``(K,)``)."""
    whiten, log_det = precision_cholesky(params)  # A_k (lower triangular), log det Sigma_k
    means = params.means  # (K, D)
    dim = x.shape[-1]
    if dim <= _UNROLL_MAX_DIM:
        # y_e = x_{n,e} - mu_{k,e}: D arrays of shape (n, K)
        y = [x[:, e][:, None] - means[None, :, e] for e in range(dim)]
        maha = jnp.zeros_like(y[0])
        for d in range(dim):
            if params.covariance_type == "full":
                # z_d = sum_{e <= d} (A_k)_{de} y_e: A_k = L_k^{-1} is lower triangular
                z = y[0] * whiten[None, :, d, 0]
                for e in range(1, d + 1):
                    z = z + y[e] * whiten[None, :, d, e]
            elif params.covariance_type == "diag":
                z = y[d] * whiten[None, :, d]
            else:
                z = y[d] * whiten[None, :]
            maha = maha + jnp.square(z)
        return maha, log_det
    diff = x[:, None, :] - means[None, :, :]  # (n, K, D), x_n - mu_k
    if params.covariance_type == "full":
        z = jnp.einsum("kde,nke->nkd", whiten, diff)  # (n, K, D), A_k (x_n - mu_k)
    elif params.covariance_type == "diag":
        z = diff * whiten[None, :, :]  # (n, K, D)
    else:
        z = diff * whiten[None, :, None]  # (n, K, D)
    return jnp.sum(jnp.square(z), axis=-1), log_det  # (n, K), (K,)


def component_log_prob(params: GMMParams, x: jax.Array) -> jax.Array:
    """``log N(x_n; mu_k, Sigma_k)`` for every point and component.

    ``log N(x; mu, Sigma) = -1/2 (D log 2 pi + log det Sigma + ||A (x - mu)||^2)`` with the
    whitening factor ``A = L^{-1}``, ``Sigma = L L^T`` (:func:`precision_cholesky`): one
    Cholesky factorisation and one triangular solve per component and iteration, then
    products of the differences ``x_n - mu_k`` with the lower-triangular ``A_k`` -- no
    ``(n, K, D, D)`` array and no per-point solve.

    Args:
      params: a :class:`GMMParams` with K components in D dimensions.
      x: ``(n, D)`` points.

    Returns:
      ``(n, K)`` log-densities.
    """
    check_params(params)
    x = check_data(x, dim=params.dim)
    maha, log_det = _mahalanobis(params, x)
    dim = x.shape[-1]
    return -0.5 * (dim * LOG_2PI + log_det[None, :] + maha)


def _weighted_log_prob(params: GMMParams, x: jax.Array) -> jax.Array:
    # log pi_k + log N(x_n; mu_k, Sigma_k): (n, K), the log of eq. 9.23's numerator.
    return jnp.log(params.weights)[None, :] + component_log_prob(params, x)


def _normalise(weighted: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(log sum_k exp a_nk, softmax_k a_nk)`` for ``a`` of shape ``(n, K)``.

    The log-sum-exp trick, ``log sum_k e^{a_k} = m + log sum_k e^{a_k - m}`` with
    ``m = max_k a_k``, so that nothing overflows or underflows to an all-zero row; the
    responsibilities ``e^{a_k - m} / sum_j e^{a_j - m}`` reuse the same exponentials.
    """
    peak = jnp.max(weighted, axis=-1)  # (n,), m
    scaled = jnp.exp(weighted - peak[:, None])  # (n, K), in (0, 1], 1 at the max
    total = jnp.sum(scaled, axis=-1)  # (n,), in [1, K]
    return peak + jnp.log(total), scaled / total[:, None]


@jax.jit
def _log_prob(params: GMMParams, x: jax.Array) -> jax.Array:
    return _normalise(_weighted_log_prob(params, x))[0]  # (n,)


def log_prob(params: GMMParams, x: jax.Array) -> jax.Array:
    """The mixture's log-density, ``log p(x_n) = logsumexp_k (log pi_k + log N(x_n; mu_k, S_k))``.

    Args:
      params: a :class:`GMMParams` with K components in D dimensions.
      x: ``(n, D)`` points.

    Returns:
      ``(n,)`` log-densities (Bishop eq. 9.7).
    """
    check_params(params)
    return _log_prob(params, check_data(x, dim=params.dim))


def _mean_log_lik(log_norm: jax.Array, w: jax.Array) -> jax.Array:
    # sum_n w_n log p(x_n) / sum_n w_n: eq. 9.28 per (weighted) point.
    return jnp.sum(w * log_norm) / jnp.sum(w)


def _e_step(params: GMMParams, x: jax.Array, w: jax.Array) -> tuple[jax.Array, jax.Array]:
    weighted = _weighted_log_prob(params, x)  # (n, K)
    log_norm, _ = _normalise(weighted)  # (n,), log p(x_n)
    log_resp = weighted - log_norm[:, None]  # (n, K), log gamma_nk, eq. 9.23
    return log_resp, _mean_log_lik(log_norm, w)


@jax.jit
def _e_step_jit(params, x, w):
    return _e_step(params, x, w)


def e_step(
    params: GMMParams, x: jax.Array, sample_weight: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """E-step: log-responsibilities and the mean log-likelihood of ``params``.

    ``log gamma_nk = log pi_k + log N(x_n; mu_k, Sigma_k) - log p(x_n)`` (Bishop eq. 9.23)
    and ``mean_log_lik = sum_n w_n log p(x_n) / sum_n w_n`` (eq. 9.28 per point).

    Args:
      params: a :class:`GMMParams` with K components in D dimensions.
      x: ``(n, D)`` points.
      sample_weight: optional ``(n,)`` non-negative weights ``w_n`` (default all one).

    Returns:
      ``(log_resp, mean_log_lik)``: ``(n, K)`` and a scalar.
    """
    check_params(params)
    x = check_data(x, dim=params.dim)
    w = check_sample_weight(sample_weight, x.shape[0], x.dtype)
    return _e_step_jit(params, x, w)


def _scatter(x: jax.Array, wresp: jax.Array, means: jax.Array, covariance_type: str):
    """``sum_n w_n gamma_nk (x_n - mu_k)(x_n - mu_k)^T`` -- or its diagonal, ``(K, D)``.

    Two passes (means first, then centred products): unlike ``E[x x^T] - mu mu^T``, this
    stays accurate in float32 for a narrow component far from the origin.
    """
    dim = x.shape[-1]
    if dim <= _UNROLL_MAX_DIM:
        y = [x[:, e][:, None] - means[None, :, e] for e in range(dim)]  # D x (n, K)
        if covariance_type != "full":
            return jnp.stack([jnp.sum(wresp * jnp.square(y[d]), axis=0) for d in range(dim)], -1)
        entries = {}
        for d in range(dim):
            for e in range(d + 1):
                entries[d, e] = entries[e, d] = jnp.sum(wresp * y[d] * y[e], axis=0)  # (K,)
        rows = [jnp.stack([entries[d, e] for e in range(dim)], -1) for d in range(dim)]
        return jnp.stack(rows, -2)  # (K, D, D)
    diff = x[:, None, :] - means[None, :, :]  # (n, K, D), x_n - mu_k
    if covariance_type != "full":
        return jnp.einsum("nk,nkd->kd", wresp, jnp.square(diff))  # (K, D)
    return jnp.einsum("nkd,nke->kde", wresp[:, :, None] * diff, diff)  # (K, D, D)


def variance_floor(x: jax.Array, w: jax.Array) -> jax.Array:
    """``()`` the least variance an M-step adds: ``10 eps s``, ``s`` the data's variance.

    ``s`` is the weighted variance of ``x: (n, D)`` averaged over the D coordinates (1 when
    the data are constant). A component that collapses onto duplicate points has zero
    scatter, and with ``reg_covar = 0`` its covariance would be singular: its likelihood is
    unbounded and the Cholesky factor NaN. The floor keeps it finite (a component of width
    ``sqrt(10 eps s)``), and lies far below any variance the data resolve: ``10 eps`` of
    ``s`` is ~1e-6 relative in float32 and ~2e-15 in float64. ``reg_covar`` larger than the
    floor is used unchanged.
    """
    total = jnp.sum(w)
    mean = jnp.dot(w, x) / total  # (D,)
    var = jnp.mean(jnp.dot(w, jnp.square(x - mean[None, :])) / total)  # ()
    scale = jnp.where(var > 0, var, jnp.ones_like(var))
    return 10 * jnp.finfo(x.dtype).eps * scale


def _m_step(
    x: jax.Array, resp: jax.Array, w: jax.Array, reg_covar, covariance_type: str
) -> GMMParams:
    dtype = x.dtype
    wresp = w[:, None] * resp  # (n, K), w_n gamma_nk
    # N_k (eq. 9.27), plus 10 eps so that an empty component divides by a tiny number, not 0.
    nk = jnp.sum(wresp, axis=0) + 10 * jnp.finfo(dtype).eps  # (K,)
    means = jnp.dot(x.T, wresp).T / nk[:, None]  # (K, D), eq. 9.24
    scatter = _scatter(x, wresp, means, covariance_type)
    reg = jnp.maximum(jnp.asarray(reg_covar, dtype), variance_floor(x, w))
    if covariance_type == "full":
        # eq. 9.25, plus reg_covar on the diagonal
        covs = scatter / nk[:, None, None] + reg * jnp.eye(x.shape[1], dtype=dtype)[None]
    else:
        variances = scatter / nk[:, None]  # (K, D), the diagonal of eq. 9.25
        if covariance_type == "spherical":
            variances = jnp.mean(variances, axis=-1)  # (K,), the mean of the D variances
        covs = variances + reg
    weights = nk / jnp.sum(nk)  # (K,), eq. 9.26
    return GMMParams(weights, means, covs, covariance_type)


_m_step_jit = jax.jit(_m_step, static_argnames=("covariance_type",))


def m_step(x: jax.Array, log_resp: jax.Array, *, covariance_type: str = "full",
           reg_covar: float = 1e-6, sample_weight: jax.Array | None = None,
           ) -> GMMParams:  # fmt: skip
    """M-step: the parameters that maximise the expected complete-data log-likelihood.

    ``N_k = sum_n w_n gamma_nk + 10 eps`` (eq. 9.27), ``mu_k = sum_n w_n gamma_nk x_n / N_k``
    (eq. 9.24), ``Sigma_k = sum_n w_n gamma_nk (x_n - mu_k)(x_n - mu_k)^T / N_k + reg_covar I``
    (eq. 9.25; its diagonal for ``diag``, the mean of the diagonal for ``spherical``),
    ``pi_k = N_k / sum_j N_j`` (eq. 9.26).

    Args:
      x: ``(n, D)`` points.
      log_resp: ``(n, K)`` log-responsibilities ``log gamma_nk`` (rows sum to one after exp).
      covariance_type: ``"full"``, ``"diag"`` or ``"spherical"``.
      reg_covar: non-negative number added to every variance, keeping covariances
        positive definite when a component collapses onto a point; at least
        :func:`variance_floor` is added (so ``0`` stays finite on duplicate points).
      sample_weight: optional ``(n,)`` non-negative weights ``w_n``.

    Returns:
      The new :class:`GMMParams`.
    """
    x, w = check_fit_arguments(x, covariance_type=covariance_type, reg_covar=reg_covar,
                               sample_weight=sample_weight)  # fmt: skip
    log_resp = jnp.asarray(log_resp, x.dtype)
    if log_resp.ndim != 2 or log_resp.shape[0] != x.shape[0]:
        raise ValueError(
            f"log_resp must have shape (n, K) = ({x.shape[0]}, K) to match x, got {log_resp.shape}"
        )
    if checks.is_concrete(log_resp):
        # Log-responsibilities: each row's exp sums to one (rounding of an E-step allowed).
        row = np.exp(np.asarray(log_resp, np.float64)).sum(axis=-1)
        if np.any(np.isnan(log_resp)) or not np.allclose(row, 1.0, rtol=0, atol=1e-3):
            raise ValueError(
                "log_resp must hold log-responsibilities (each row's exp summing to 1), got "
                f"row sums in [{row.min():.6g}, {row.max():.6g}]"
            )
    return _m_step_jit(x, jnp.exp(log_resp), w, reg_covar, covariance_type=covariance_type)


def _em_step(params: GMMParams, x: jax.Array, w: jax.Array, reg_covar):
    # E-step straight to gamma_nk (no log-responsibilities and second exp), then M-step.
    log_norm, resp = _normalise(_weighted_log_prob(params, x))  # (n,), (n, K)
    new = _m_step(x, resp, w, reg_covar, params.covariance_type)
    return new, _mean_log_lik(log_norm, w)


_em_step_jit = jax.jit(_em_step)


def em_step(
    params: GMMParams,
    x: jax.Array,
    *,
    reg_covar: float = 1e-6,
    sample_weight: jax.Array | None = None,
) -> tuple[GMMParams, jax.Array]:
    """One EM iteration: :func:`e_step` then :func:`m_step`, fused into one program.

    Args:
      params: the current :class:`GMMParams` (its ``covariance_type`` is kept).
      x: ``(n, D)`` points.
      reg_covar: non-negative number added to every variance.
      sample_weight: optional ``(n,)`` non-negative weights.

    Returns:
      ``(new_params, mean_log_lik)`` where ``mean_log_lik`` is the mean log-likelihood of
      the *given* ``params`` (the quantity EM never decreases from one call to the next).
    """
    check_params(params)
    check_reg_covar(reg_covar)
    x = check_data(x, dim=params.dim)
    w = check_sample_weight(sample_weight, x.shape[0], x.dtype)
    return _em_step_jit(params, x, w, reg_covar)


def predict_proba(params: GMMParams, x: jax.Array) -> jax.Array:
    """Responsibilities ``gamma_nk`` (eq. 9.23): ``(n, K)`` rows summing to one."""
    log_resp, _ = e_step(params, x)
    return jnp.exp(log_resp)


@jax.jit
def _predict(params, x):
    return jnp.argmax(_weighted_log_prob(params, x), axis=-1)


def predict(params: GMMParams, x: jax.Array) -> jax.Array:
    """The most responsible component of each point: ``(n,)`` int, ``argmax_k gamma_nk``."""
    check_params(params)
    return _predict(params, check_data(x, dim=params.dim))


def bic(params: GMMParams, x: jax.Array) -> jax.Array:
    """Bayesian information criterion (Schwarz 1978), lower is better.

    ``BIC = -2 sum_n log p(x_n) + p log n`` with ``p`` the number of free parameters
    (:func:`genjax.mixture.params.n_parameters`), as scikit-learn's ``GaussianMixture.bic``.

    Args:
      params: a :class:`GMMParams`.
      x: ``(n, D)`` points.

    Returns:
      A scalar.
    """
    check_params(params)
    x = check_data(x, dim=params.dim)
    n = x.shape[0]
    return -2.0 * jnp.sum(_log_prob(params, x)) + n_parameters(params) * np.log(n)
