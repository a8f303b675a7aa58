"""The Frechet (2-Wasserstein) distance between Gaussians: FID's formula.

* :func:`frechet_distance_gaussian` -- between ``N(mu_a, S_a)`` and ``N(mu_b, S_b)``
  (Dowson & Landau 1982, "The Frechet distance between multivariate normal distributions",
  J. Multivariate Anal. 12(3)).
* :func:`frechet_distance` -- between the Gaussians fitted to two feature sets (Heusel et al.
  2017, "GANs trained by a two time-scale update rule converge to a local Nash equilibrium",
  eq. 6 -- the FID formula, on whatever features the caller supplies).

Both are re-exported by :mod:`genjax.metrics`; the NumPy float64 twin is
:mod:`genjax.oracle_metrics`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.sample_sets import check_pair, nan_unless_finite

__all__ = ["frechet_distance", "frechet_distance_gaussian"]


def _sqrtm_psd(s: jax.Array) -> jax.Array:
    # S = U diag(l) U^T  =>  S^{1/2} = U diag(sqrt(max(l, 0))) U^T
    lam, u = jnp.linalg.eigh(s)
    return (u * jnp.sqrt(jnp.maximum(lam, 0.0))[None, :]) @ u.T


@jax.jit
def _frechet_moments(
    mu_a: jax.Array, cov_a: jax.Array, mu_b: jax.Array, cov_b: jax.Array
) -> jax.Array:
    # Tr((S_a S_b)^{1/2}) = Tr((S_a^{1/2} S_b S_a^{1/2})^{1/2}): the two matrices are
    # similar, and the right one is symmetric PSD, so a symmetric eigensolver suffices
    # (no non-symmetric sqrtm, whose iterations go complex on near-singular inputs).
    root_a = _sqrtm_psd(cov_a)
    inner = root_a @ cov_b @ root_a
    inner = 0.5 * (inner + inner.T)  # re-symmetrise against rounding
    tr_cross = jnp.sum(jnp.sqrt(jnp.maximum(jnp.linalg.eigvalsh(inner), 0.0)))
    diff = mu_a - mu_b
    # d^2 = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})   (Heusel et al. 2017, eq. 6)
    value = jnp.sum(diff**2) + jnp.trace(cov_a) + jnp.trace(cov_b) - 2.0 * tr_cross
    # A covariance with a clearly negative eigenvalue has no Gaussian: NaN, not a distance
    # (clipping its eigenvalues would return a number for a meaningless input).
    valid = _is_psd(cov_a) & _is_psd(cov_b)
    return jnp.where(valid, nan_unless_finite(value, mu_a, cov_a, mu_b, cov_b), jnp.nan)


def _is_psd(cov: jax.Array) -> jax.Array:
    """``()`` bool: symmetric positive semi-definite up to rounding (``checks.covariance``)."""
    sym = 0.5 * (cov + cov.T)
    lam = jnp.linalg.eigvalsh(sym)  # ascending
    scale = jnp.maximum(jnp.max(jnp.abs(lam)), jnp.finfo(cov.dtype).tiny)
    tol = max(checks.PSD_RTOL, math.sqrt(float(jnp.finfo(cov.dtype).eps))) * scale
    asym = jnp.max(jnp.abs(cov - cov.T))
    return (lam[0] >= -tol) & (asym <= tol)


def frechet_distance_gaussian(
    mu_a: jax.Array, cov_a: jax.Array, mu_b: jax.Array, cov_b: jax.Array
) -> jax.Array:
    """Squared 2-Wasserstein (Frechet) distance between ``N(mu_a, S_a)`` and ``N(mu_b, S_b)``.

    ``d^2 = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})``.

    Args:
      mu_a: ``(D,)``.
      cov_a: ``(D, D)`` symmetric PSD.
      mu_b: ``(D,)``.
      cov_b: ``(D, D)`` symmetric PSD.

    Returns:
      ``()``; NaN when an input is traced and non-finite or not PSD.

    Raises:
      ValueError: (concrete inputs) a covariance that is not symmetric positive
        semi-definite up to rounding (``checks.covariance``), or a non-finite mean.
    """
    mu_a, cov_a, mu_b, cov_b = map(jnp.asarray, (mu_a, cov_a, mu_b, cov_b))
    (d,) = checks.shape("mu_a", mu_a, ("D",))
    checks.shape("cov_a", cov_a, (d, d))
    checks.shape("mu_b", mu_b, (d,))
    checks.shape("cov_b", cov_b, (d, d))
    checks.finite("mu_a", mu_a)
    checks.finite("mu_b", mu_b)
    checks.covariance("cov_a", cov_a)
    checks.covariance("cov_b", cov_b)
    dtype = jnp.result_type(mu_a.dtype, cov_a.dtype, mu_b.dtype, cov_b.dtype, float)
    return _frechet_moments(*(a.astype(dtype) for a in (mu_a, cov_a, mu_b, cov_b)))


@jax.jit
def _frechet(feats_a: jax.Array, feats_b: jax.Array) -> jax.Array:
    def moments(f: jax.Array) -> tuple[jax.Array, jax.Array]:
        mu = jnp.mean(f, axis=0)  # (D,)
        c = f - mu[None, :]
        return mu, (c.T @ c) / (f.shape[0] - 1)  # unbiased covariance (ddof = 1), as FID

    mu_a, cov_a = moments(feats_a)
    mu_b, cov_b = moments(feats_b)
    return nan_unless_finite(_frechet_moments(mu_a, cov_a, mu_b, cov_b), feats_a, feats_b)


def frechet_distance(feats_a: jax.Array, feats_b: jax.Array) -> jax.Array:
    """Frechet distance between Gaussians fitted to two feature sets (the FID formula).

    ``d^2 = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})`` with sample means and
    unbiased (``ddof=1``) sample covariances, as in Heusel et al. (2017) and pytorch-fid.
    Returned squared, as FID is. The matrix square root goes through the symmetric
    eigendecomposition of ``S_a^{1/2} S_b S_a^{1/2}``; negative eigenvalues from rounding
    are clipped to 0. For large D use float64 (``jax.enable_x64``).

    Args:
      feats_a: ``(n, D)`` features, ``n >= 2``.
      feats_b: ``(m, D)`` features, ``m >= 2``.

    Returns:
      ``()`` the squared Frechet distance.
    """
    x, y = check_pair(feats_a, feats_b, min_n=2, names=("feats_a", "feats_b"))
    return _frechet(x, y)
