"""Parameters of a Gaussian mixture and the covariance algebra EM needs.

A Gaussian mixture model (GMM; Bishop 2006, *Pattern Recognition and Machine Learning*,
§9.2, eq. 9.7) is

    p(x) = sum_k pi_k N(x; mu_k, Sigma_k),        k = 1..K,  x in R^D.

Three covariance families are supported. The covariance is stored compactly, and its
shape says which family it is (the tag ``covariance_type`` travels with the parameters as
static pytree metadata, so it survives ``jax.jit`` and ``jax.vmap``):

===================  ===============  =======================================
``covariance_type``  ``covs`` shape   ``Sigma_k``
===================  ===============  =======================================
``"full"``           ``(K, D, D)``    ``covs[k]``
``"diag"``           ``(K, D)``       ``diag(covs[k])``
``"spherical"``      ``(K,)``         ``covs[k] * I_D``
===================  ===============  =======================================

This is scikit-learn's ``covariances_`` layout, so parameters move between the two
libraries unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular
from jax.typing import ArrayLike, DTypeLike

from genjax import checks

__all__ = [
    "COVARIANCE_TYPES",
    "GMMParams",
    "full_covariances",
    "n_parameters",
    "precision_cholesky",
    "check_covariance_type",
    "check_data",
    "check_sample_weight",
    "check_reg_covar",
    "check_params",
    "check_k",
    "check_fit_arguments",
]

#: The covariance families, in scikit-learn's spelling.
COVARIANCE_TYPES: tuple[str, ...] = ("full", "diag", "spherical")

# ndim of ``covs`` for each family: full (K, D, D), diag (K, D), spherical (K,).
_COVS_NDIM = {"full": 3, "diag": 2, "spherical": 1}


def check_covariance_type(covariance_type: Any) -> str:
    """Returns ``covariance_type`` or raises a ``ValueError`` naming the allowed values."""
    return checks.one_of("covariance_type", covariance_type, COVARIANCE_TYPES)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class GMMParams:
    """The parameters ``(pi, mu, Sigma)`` of a K-component Gaussian mixture in D dimensions.

    Attributes:
      weights: ``(K,)`` mixing weights ``pi_k``, positive, summing to one.
      means: ``(K, D)`` component means ``mu_k``.
      covs: the covariances, ``(K, D, D)`` (full), ``(K, D)`` (diag: the variances) or
        ``(K,)`` (spherical: one variance per component).
      covariance_type: ``"full"``, ``"diag"`` or ``"spherical"``. Static metadata, not a
        leaf. Left out, it is read off ``covs.ndim`` (3, 2, 1); give it explicitly when
        ``covs`` carries extra leading batch axes (parameters of many fits stacked by
        ``jax.vmap``).

    The constructor does no checks (pytree reconstruction inside transformations must
    stay cheap); :func:`genjax.mixture.fit` validates a user-given initialisation.

    Example:
      >>> params = GMMParams(jnp.full(2, 0.5), jnp.zeros((2, 3)), jnp.ones(2))
      >>> params.covariance_type
      'spherical'
    """

    weights: Any  # (K,)
    means: Any  # (K, D)
    covs: Any  # (K, D, D) full | (K, D) diag | (K,) spherical
    covariance_type: str | None = dataclasses.field(default=None, metadata=dict(static=True))

    def __post_init__(self) -> None:
        if self.covariance_type is None:
            ndim = getattr(self.covs, "ndim", None)
            inferred = {3: "full", 2: "diag", 1: "spherical"}.get(ndim)
            if inferred is None:
                raise ValueError(
                    "covariance_type could not be read off covs: covs must have ndim 3 (full), "
                    f"2 (diag) or 1 (spherical), got shape {getattr(self.covs, 'shape', None)}"
                )
            object.__setattr__(self, "covariance_type", inferred)
        else:
            check_covariance_type(self.covariance_type)

    @property
    def num_components(self) -> int:
        """K."""
        return self.means.shape[-2]

    @property
    def dim(self) -> int:
        """D."""
        return self.means.shape[-1]


def full_covariances(params: GMMParams) -> jax.Array:
    """``Sigma_k`` as dense matrices, whatever the storage.

    Args:
      params: a :class:`GMMParams` with K components in D dimensions.

    Returns:
      ``(K, D, D)`` covariance matrices.
    """
    check_params(params)
    covs = jnp.asarray(params.covs)
    eye = jnp.eye(params.dim, dtype=covs.dtype)  # (D, D)
    if params.covariance_type == "full":
        return covs
    if params.covariance_type == "diag":
        return covs[:, :, None] * eye[None]  # (K, D, 1) * (1, D, D) -> (K, D, D)
    return covs[:, None, None] * eye[None]  # (K, 1, 1) * (1, D, D) -> (K, D, D)


def precision_cholesky(params: GMMParams) -> tuple[jax.Array, jax.Array]:
    """The whitening factor of each component and ``log det Sigma_k``.

    For a full covariance, ``Sigma_k = L_k L_k^T`` (Cholesky) and the whitening matrix is
    ``A_k = L_k^{-1}``, obtained by one triangular solve against the identity, so that

        (x - mu_k)^T Sigma_k^{-1} (x - mu_k) = || A_k (x - mu_k) ||^2,
        log det Sigma_k = 2 sum_d log (L_k)_dd.

    This is done once per EM iteration on ``(K, D, D)`` matrices; the ``n`` data points
    only ever meet ``A_k`` through a matrix product. For diagonal and spherical
    covariances the factor is elementwise: ``A_k = Sigma_k^{-1/2}``.

    Args:
      params: a :class:`GMMParams`.

    Returns:
      ``(whiten, log_det)``: ``whiten`` of shape ``(K, D, D)`` (full, lower triangular),
      ``(K, D)`` (diag) or ``(K,)`` (spherical); ``log_det`` of shape ``(K,)``.
    """
    check_params(params)
    covs = jnp.asarray(params.covs)
    if params.covariance_type == "full":
        chol = jnp.linalg.cholesky(covs)  # (K, D, D), Sigma_k = L_k L_k^T
        eye = jnp.broadcast_to(jnp.eye(params.dim, dtype=covs.dtype), covs.shape)
        whiten = solve_triangular(chol, eye, lower=True)  # (K, D, D), A_k = L_k^{-1}
        log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
        return whiten, log_det
    if params.covariance_type == "diag":
        return jax.lax.rsqrt(covs), jnp.sum(jnp.log(covs), axis=-1)  # (K, D), (K,)
    return jax.lax.rsqrt(covs), params.dim * jnp.log(covs)  # (K,), (K,)


def n_parameters(params: GMMParams) -> int:
    """The number of free parameters: ``K - 1`` weights, ``K D`` means, and the covariances.

    Covariances count ``K D (D + 1) / 2`` (full), ``K D`` (diag) or ``K`` (spherical)
    free numbers. This is the ``p`` of the BIC (Schwarz 1978).
    """
    check_params(params)
    k, d = params.num_components, params.dim
    cov_params = {"full": k * d * (d + 1) // 2, "diag": k * d, "spherical": k}
    return (k - 1) + k * d + cov_params[params.covariance_type]


# ---------------------------------------------------------------------------------------
# Argument checks shared by the family's functions (trace time: shapes always, values when
# concrete), built from genjax.checks so that every message names the argument.
# ---------------------------------------------------------------------------------------


def check_data(x: ArrayLike, name: str = "x", dim: int | None = None) -> jax.Array:
    """``x`` as a float array of shape ``(n, D)``, ``n >= 1``, finite; ``D = dim`` if given."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    checks.ndim(name, x, 2, "(n, D) (for 1-D data use x[:, None])")
    if x.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one point, got shape {x.shape}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(
            f"{name} has {x.shape[1]} features but the mixture has dimension {dim} "
            f"({name}.shape = {x.shape})"
        )
    return checks.finite(name, x)


def check_sample_weight(sample_weight: ArrayLike | None, n: int, dtype: DTypeLike) -> jax.Array:
    """``sample_weight`` as an ``(n,)`` array of ``dtype`` (ones when None), ``>= 0`` with a
    positive sum."""
    if sample_weight is None:
        return jnp.ones((n,), dtype)
    w = jnp.asarray(sample_weight, dtype)
    checks.shape("sample_weight", w, (n,))
    checks.nonnegative("sample_weight", w)
    if checks.is_concrete(w) and not np.sum(np.asarray(w, np.float64)) > 0:
        raise ValueError(f"sample_weight must have a positive sum, got {float(np.sum(w))}")
    return w


def check_reg_covar(reg_covar: ArrayLike) -> None:
    """``reg_covar`` is a finite scalar ``>= 0`` (the value skipped when traced)."""
    checks.ndim("reg_covar", reg_covar, 0, "(a scalar)")
    checks.nonnegative("reg_covar", reg_covar)


def check_params(params: GMMParams, name: str = "params") -> None:
    """Shapes of ``params`` consistent with one another (K, D read off ``means``), and, when
    the arrays are concrete, a valid mixture: weights on the simplex, finite means,
    symmetric positive-definite covariances (positive variances for diag and spherical)."""
    if not isinstance(params, GMMParams):
        raise ValueError(f"{name} must be a GMMParams, got {type(params).__name__}")
    checks.ndim(f"{name}.means", params.means, 2, "(K, D)")
    k, d = jnp.shape(params.means)
    expected = {"full": (k, d, d), "diag": (k, d), "spherical": (k,)}[params.covariance_type]
    checks.shape(f"{name}.weights", params.weights, (k,))
    checks.shape(f"{name}.covs", params.covs, expected)
    if checks.is_concrete((params.weights, params.means, params.covs)):
        _check_param_values(params, name)


def _check_param_values(params: GMMParams, name: str) -> None:
    weights = np.asarray(params.weights, np.float64)
    # Sum to one up to float32 rounding of an M-step (K terms of ~1e-7 each).
    if (not np.all(np.isfinite(weights)) or np.any(weights < 0)
            or not np.isclose(weights.sum(), 1.0, rtol=0, atol=1e-4)):
        raise ValueError(f"{name}.weights must be >= 0 and sum to 1, got {weights}")
    checks.finite(f"{name}.means", params.means)
    covs = np.asarray(params.covs, np.float64)
    checks.finite(f"{name}.covs", covs)
    if params.covariance_type == "full":
        sym = np.allclose(covs, np.swapaxes(covs, -1, -2), rtol=1e-5, atol=0)
        ok = sym and np.all(np.linalg.eigvalsh(0.5 * (covs + np.swapaxes(covs, -1, -2))) > 0)
    else:
        ok = np.all(covs > 0)
    if not ok:
        raise ValueError(
            f"{name}.covs must hold symmetric positive-definite covariances (positive "
            f"variances for diag and spherical)"
        )


def check_k(k: Any, n: int) -> int:
    """``k`` as a Python int in ``[1, n]`` (at most one component per point)."""
    return checks.int_in_range("k", k, 1, n)


def check_fit_arguments(
    x: ArrayLike, *, covariance_type: Any, reg_covar: ArrayLike, sample_weight: Any
) -> tuple[jax.Array, jax.Array]:
    """The checks of every function that fits parameters to ``x`` (M-step, initialisation,
    EM): returns ``(x (n, D), sample_weight (n,))``."""
    check_covariance_type(covariance_type)
    check_reg_covar(reg_covar)
    x = check_data(x)
    return x, check_sample_weight(sample_weight, x.shape[0], x.dtype)
