"""Gaussian mixtures: exact log-density, score, samples, and the exact diffusion models.

``p(x) = sum_k w_k N(x; mu_k, Sigma_k)``. The law of the diffused variable
``x_t = alpha x_0 + sigma eps`` (``x_0 ~ p``, ``eps ~ N(0, I)``) is again a mixture,
``p_t = sum_k w_k N(alpha mu_k, C_k)`` with ``C_k = alpha^2 Sigma_k + sigma^2 I``, so the
score, noise prediction and denoiser a diffusion model learns are known at every noise level
(Tweedie's formula: Efron 2011, "Tweedie's formula and selection bias", eq. 2.8; Song et al.
2021, "Score-based generative modeling through SDEs", sec. 3).

One implementation serves all of them. Each covariance is diagonalised once,
``Sigma_k = U_k diag(lam_k) U_k^T`` (by :meth:`GaussianMixture.create`, in float64). Then
``C_k = U_k diag(v_k) U_k^T`` with ``v_k = alpha^2 lam_k + sigma^2`` shares ``Sigma_k``'s
eigenvectors, and with ``y_k = U_k^T x - alpha U_k^T mu_k`` (the residual in the k-th
eigenbasis):

    l_k(x)   = log w_k - 1/2 sum_e log v_ke - D/2 log 2 pi - 1/2 sum_e y_ke^2 / v_ke   (1)
               = log w_k + log N(x; alpha mu_k, C_k)
    r_k(x)   = softmax_k l_k(x) = p(k | x_t = x)                                      (2)
    log p_t  = logsumexp_k l_k(x)                                                     (3)
    grad_x log p_t(x) = -sum_k r_k U_k (y_k / v_k)                                    (4)
    E[eps | x_t = x]  = -sigma grad log p_t(x) = sum_k r_k U_k (sigma y_k / v_k)      (5)
    E[x_0 | x_t = x]  = sum_k r_k (mu_k + U_k (alpha lam_k y_k / v_k))                (6)

The clean mixture is ``alpha = 1, sigma = 0`` (``v = lam``). (6) is Tweedie's
``(x + sigma^2 grad log p_t) / alpha`` written per component, which needs no division by
``alpha`` (finite at ``alpha = 0``, where it is the prior mean) and has no cancellation at
large ``sigma``. At ``alpha = 0`` (zero terminal SNR) (5) is exactly ``x / sigma``.

Layout. The work is two matrix products on arrays of shape ``(K, D, N)`` with the N points on
the last (contiguous, vectorised) axis: ``U^T x`` in, ``sum_k U_k (...)`` out. When all N
points share one noise level (a sampler's call), the per-level constants ``v_k``, ``1/v_k``
and ``log |C_k|`` are ``(K, D)`` arrays computed once per call, not per point (decided by
shape for scalar levels, by ``lax.cond`` at run time for ``(N,)`` levels); at one level and
``D <= 4`` the work is done in ``(K, N)`` planes instead (:mod:`.mixture_planes`, ~2x faster
there: the samplers' call). Measured per call
on the 4096-point ring (8 modes, float32, in a compiled loop, shared 2-core CPU): ``log_prob``
~125 us, ``score`` ~150, ``log_prob_and_score`` ~135, ``eps`` ~155, ``denoise`` ~115 (the
per-point Cholesky version this replaced: 0.3-1.5 ms for ``log_prob`` and ``score``).

The NumPy float64 twin, written from the equations (``slogdet``/``solve``, Tweedie as
``x + sigma^2 score``), is :mod:`genjax.oracle_targets`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero
from jax.scipy.special import logsumexp

from genjax import checks
from genjax.gaussian import LOG_2PI
from genjax.targets.mixture_planes import PLANES_MAX_DIM, shared_level_sum

__all__ = ["GaussianMixture"]


def default_float() -> Any:
    """float32, or float64 when the user enabled x64."""
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def _check_level(alpha: Any, sigma: Any) -> None:
    """A noise level ``x_t = alpha x_0 + sigma eps``: finite, ``sigma >= 0``, not both zero.
    Values are checked when concrete."""
    checks.finite("alpha", alpha)
    checks.nonnegative("sigma", sigma)
    if checks.is_concrete((alpha, sigma)):
        both = (np.asarray(alpha) == 0) & (np.asarray(sigma) == 0)
        if np.any(both):
            raise ValueError("alpha and sigma must not both be 0 (x_t would be the point 0; "
                             "its law has no density), got sigma = 0 where alpha = 0")


def check_points(name: str, x: jax.Array, size: int, axis_name: str = "D") -> None:
    """Raises ``ValueError`` unless ``x`` has shape ``(..., size)``."""
    if x.ndim < 1 or x.shape[-1] != size:
        raise ValueError(f"{name} must have shape (..., {axis_name}={size}), got {x.shape}")


def _layout(xp: Any, weights: Any, means: Any, covs: Any) -> dict[str, Any]:
    """The eigenbasis fields from ``(weights, means, covs)``; ``xp`` is ``np`` or ``jnp``.

    Leading batch axes are kept (a stack of mixtures, as ``jax.vmap`` sees them).
    """
    lam, u = xp.linalg.eigh(covs)  # (..., K, D), (..., K, D, D): Sigma_k = U_k diag(lam_k) U_k^T
    return {
        "log_weights": xp.log(weights),  # (..., K)
        "eigenvalues": lam,
        "eigenvectors": u,  # columns are eigenvectors
        "means_rotated": xp.einsum("...kde,...kd->...ke", u, means),  # (..., K, D), U_k^T mu_k
    }


_FIELDS = (
    "weights", "means", "covs", "log_weights", "eigenvalues", "eigenvectors", "means_rotated"
)  # fmt: skip


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class GaussianMixture:
    """A mixture of full-covariance Gaussians, ``p(x) = sum_k w_k N(x; mu_k, Sigma_k)``.

    A pytree of seven arrays: the parameters and their eigenbasis layout (module docstring),
    derived once -- by :meth:`create` (float64 NumPy, then cast), by :meth:`noised`
    (exactly, from this mixture's layout), or, when the class is called directly with the
    three parameters, by ``jnp.linalg.eigh`` in their dtype (no checks: reconstruction
    inside transformations stays cheap). Pass it to ``jax.jit``/``vmap`` like any pytree;
    its bound methods (``target.log_prob``, ``target.score``) are traced models
    (:mod:`genjax.model`): new mixtures of the same shapes never recompile.

    The density and its derivatives read the layout fields only: to differentiate with
    respect to the parameters, build the mixture inside the differentiated function.

    Attributes:
      weights: ``(K,)`` mixing weights, positive, summing to one.
      means: ``(K, D)`` component means ``mu_k``.
      covs: ``(K, D, D)`` component covariances ``Sigma_k``, symmetric positive definite.
      log_weights: ``(K,)`` ``log w_k``.
      eigenvalues: ``(K, D)`` ``lam_k``, ascending, all positive.
      eigenvectors: ``(K, D, D)`` ``U_k``, orthogonal, eigenvectors as columns.
      means_rotated: ``(K, D)`` ``U_k^T mu_k``, each mean in its component's eigenbasis.

    Example:
      >>> target = ring(n_modes=8, radius=4.0, std=0.3)
      >>> x = target.sample(jax.random.key(0), 1000)       # (1000, 2)
      >>> lp, score = target.log_prob_and_score(x)       # (1000,), (1000, 2)
      >>> eps = target.eps(x, 0.8, 0.6)                   # E[eps | x_t = x], (1000, 2)
    """

    weights: jax.Array  # (K,)
    means: jax.Array  # (K, D)
    covs: jax.Array  # (K, D, D)
    log_weights: jax.Array = dataclasses.field(init=False)  # (K,)
    eigenvalues: jax.Array = dataclasses.field(init=False)  # (K, D)
    eigenvectors: jax.Array = dataclasses.field(init=False)  # (K, D, D)
    means_rotated: jax.Array = dataclasses.field(init=False)  # (K, D)

    def __post_init__(self) -> None:
        for name, value in _layout(jnp, self.weights, self.means, self.covs).items():
            object.__setattr__(self, name, value)

    @classmethod
    def _from_fields(cls, **fields: Any) -> GaussianMixture:
        """All seven fields given (pytree unflattening, :meth:`create`, :meth:`noised`)."""
        gm = object.__new__(cls)
        for name in _FIELDS:
            object.__setattr__(gm, name, fields[name])
        return gm

    # -- construction --------------------------------------------------------------------

    @classmethod
    def create(cls, weights: Any, means: Any, covs: Any, *, dtype: Any = None) -> GaussianMixture:
        """Validated constructor; the layout is computed in float64 and cast once.

        Args:
          weights: ``(K,)`` positive, summing to one (within 1e-6).
          means: ``(K, D)``.
          covs: ``(K, D, D)`` symmetric positive definite.
          dtype: floating dtype of the fields; default float32 (float64 under x64).

        Raises:
          ValueError: naming the argument whose shape or value is invalid.
        """
        dtype = dtype or default_float()
        w, m, c = (np.asarray(a, dtype=np.float64) for a in (weights, means, covs))
        if w.ndim != 1 or w.shape[0] < 1:
            raise ValueError(f"weights must have shape (K,) with K >= 1, got {w.shape}")
        k = w.shape[0]
        if m.ndim != 2 or m.shape[0] != k or m.shape[1] < 1:
            raise ValueError(f"means must have shape (K={k}, D) with D >= 1, got {m.shape}")
        d = m.shape[1]
        checks.shape("covs", c, (k, d, d))
        checks.positive("weights", w)
        if abs(w.sum() - 1.0) > 1e-6:
            raise ValueError(f"weights must sum to 1, got sum {w.sum()!r}")
        checks.finite("means", m)
        checks.finite("covs", c)
        asym = np.max(np.abs(c - np.swapaxes(c, -1, -2)), initial=0.0)
        if asym > 1e-8 * max(1.0, float(np.max(np.abs(c)))):
            raise ValueError(f"covs must be symmetric, max |Sigma - Sigma^T| = {asym:.3g}")
        fields = {"weights": w, "means": m, "covs": c, **_layout(np, w, m, c)}
        min_eig = float(np.min(fields["eigenvalues"]))
        if min_eig <= 0:
            raise ValueError(f"covs must be positive definite, smallest eigenvalue {min_eig:.3g}")
        return cls._from_fields(**{n: jnp.asarray(v, dtype=dtype) for n, v in fields.items()})

    # -- shapes ---------------------------------------------------------------------------

    def __repr__(self) -> str:
        shape = getattr(self.means, "shape", None)  # (K, D); leaves may be placeholders
        return f"GaussianMixture(means shape {shape}, dtype {getattr(self.means, 'dtype', None)})"

    @property
    def num_components(self) -> int:
        """K, the number of components."""
        return self.weights.shape[-1]

    @property
    def dim(self) -> int:
        """D, the dimension of x."""
        return self.means.shape[-1]

    # -- the one implementation: eqs. (1)-(6) in the (K, D, N) layout -------------------

    def _prepare(self, name: str, x: Any) -> tuple[jax.Array, tuple[int, ...], Any]:
        """``x: (..., D)`` as ``(N, D)`` in the computing dtype; the batch shape; out dtype.

        Results come back in ``x``'s floating dtype; the arithmetic is done in the wider of
        that and the mixture's dtype.
        """
        x = jnp.asarray(x)
        check_points(name, x, self.dim)
        dtype = self.means_rotated.dtype
        out = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else dtype
        flat = x.reshape(-1, self.dim).astype(jnp.promote_types(out, dtype))  # (N, D)
        return flat, x.shape[:-1], out

    def _levels(
        self, alpha: Any, sigma: Any, batch: tuple[int, ...], dtype: Any
    ) -> tuple[jax.Array, jax.Array]:
        """``alpha, sigma`` (scalars or of shape ``batch``) as ``(M,)`` arrays, M in {1, N}."""
        out = []
        for name, v in (("alpha", alpha), ("sigma", sigma)):
            v = jnp.asarray(v, dtype=dtype)
            if v.shape != () and v.shape != batch:
                raise ValueError(
                    f"{name} must be a scalar or have the batch shape {batch} of x, got {v.shape}"
                )
            out.append(v.reshape(-1))  # (1,) or (N,)
        size = max(out[0].shape[0], out[1].shape[0])
        return jnp.broadcast_to(out[0], (size,)), jnp.broadcast_to(out[1], (size,))

    def _terms(
        self, x: jax.Array, alpha: jax.Array | None, sigma: jax.Array | None
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Eq. (1) at the points ``x: (N, D)`` for levels ``alpha, sigma: (M,)``.

        ``alpha = sigma = None`` is the mixture itself (``v = lam``, nothing to compute).
        Returns ``l: (K, N)``, the residuals ``y: (K, D, N)`` and ``1 / v: (K, D, M)``.
        """
        if alpha is None:
            var = self.eigenvalues[:, :, None]  # (K, D, 1)
            shift = self.means_rotated[:, :, None]  # (K, D, 1)
        else:
            a = alpha[None, None, :]  # (1, 1, M)
            var = a**2 * self.eigenvalues[:, :, None] + (sigma**2)[None, None, :]  # (K, D, M)
            shift = a * self.means_rotated[:, :, None]  # (K, D, M), alpha U_k^T mu_k
        inv_var = 1.0 / var
        # log w_k - 1/2 log |C_k| - D/2 log 2 pi: (K, M), per level, not per point
        log_norm = self.log_weights[:, None] - 0.5 * (
            jnp.sum(jnp.log(var), axis=1) + self.dim * LOG_2PI
        )
        # y_k = U_k^T x - alpha U_k^T mu_k: (K, D, N), y[k, e, n] = sum_d U[k, d, e] x[n, d]
        y = jnp.einsum("kde,nd->ken", self.eigenvectors, x) - shift
        return log_norm - 0.5 * jnp.sum(y * y * inv_var, axis=1), y, inv_var  # (1)

    def _combine(
        self, r: jax.Array, coef: jax.Array, y: jax.Array, scale: jax.Array | None = None
    ) -> jax.Array:
        """``scale * sum_k r_k U_k (coef_k * y_k)``: ``(D, N)``, the sums of eqs. (4)-(6), as
        one product ``(D, K E) @ (K E, N)`` of reshaped (not copied) operands."""
        k, d, e = self.eigenvectors.shape
        u_flat = jnp.transpose(self.eigenvectors, (1, 0, 2)).reshape(d, k * e)  # [d, (k, e)]
        out = u_flat @ (r[:, None, :] * coef * y).reshape(k * e, -1)  # (D, N)
        return out if scale is None else out * scale[None, :]

    def _posterior_sum(
        self, x: jax.Array, alpha: jax.Array | None, sigma: jax.Array | None, kind: str
    ) -> jax.Array:
        """Eq. (4) (``kind="score"``), (5) (``"eps"``) or (6) (``"denoise"``): ``(N, D)``.

        Each ``(D, N)`` product meets one elementwise operation before its transpose (a sign,
        ``sigma``, the means): on XLA:CPU that keeps the fusions apart, about 25% faster.
        """
        logits, y, inv_var = self._terms(x, alpha, sigma)
        r = jax.nn.softmax(logits, axis=0)  # (K, N), eq. (2)
        if kind == "score":
            return (-self._combine(r, inv_var, y)).T  # (4)
        if kind == "eps":
            return self._combine(r, inv_var, y, scale=sigma).T  # (5)
        shrink = alpha[None, None, :] * self.eigenvalues[:, :, None] * inv_var  # (K, D, M)
        return (self.means.T @ r + self._combine(r, shrink, y)).T  # (6): (D, K) @ (K, N) + ...

    def _at_level(self, name: str, x: Any, alpha: Any, sigma: Any, kind: str) -> jax.Array:
        """Eqs. (4)-(6) at ``x: (..., D)``, one noise level per point or one for all."""
        flat, batch, out = self._prepare(name, x)
        alpha, sigma = self._levels(alpha, sigma, batch, flat.dtype)

        def run(a: jax.Array, s: jax.Array) -> jax.Array:
            if a.shape[0] == 1 and self.dim <= PLANES_MAX_DIM:  # one level, small D: planes
                return shared_level_sum(self, flat, a[0], s[0], kind)
            return self._posterior_sum(flat, a, s, kind)

        if alpha.shape[0] == 1:  # scalar levels: (K, D, 1) constants, by shape
            res = run(alpha, sigma)
        else:  # (N,) levels: per-level constants once when they all agree (the samplers)
            shared = jnp.all(alpha == alpha[0]) & jnp.all(sigma == sigma[0])
            res = jax.lax.cond(shared, lambda: run(alpha[:1], sigma[:1]), lambda: run(alpha, sigma))
        return res.reshape(*batch, self.dim).astype(out)  # (N, D) -> (..., D)

    def _log_prob_and_score_flat(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Eqs. (3) and (4) of the clean mixture in one pass: ``(N,)`` and ``(N, D)``."""
        logits, y, inv_var = self._terms(x, None, None)
        log_p = logsumexp(logits, axis=0)  # (N,), eq. (3)
        r = jnp.exp(logits - log_p[None, :])  # (K, N), eq. (2)
        return log_p, (-self._combine(r, inv_var, y)).T  # eq. (4)

    # -- densities of the mixture ---------------------------------------------------------

    @jax.jit
    def component_log_probs(self, x: jax.Array) -> jax.Array:
        """``log w_k + log N(x; mu_k, Sigma_k)`` (eq. 1): ``x: (..., D) -> (..., K)``."""
        flat, batch, out = self._prepare("x", x)
        logits, _, _ = self._terms(flat, None, None)  # (K, N)
        return logits.T.reshape(*batch, self.num_components).astype(out)

    @jax.jit
    def log_prob(self, x: jax.Array) -> jax.Array:
        """Exact log-density ``log p(x) = logsumexp_k [log w_k + log N(x; mu_k, Sigma_k)]``.

        Its derivative in ``x`` is the closed-form :meth:`score` (a ``jax.custom_jvp``), so
        ``jax.grad``/``jax.vjp`` of it (MALA, HMC) cost one pass; derivatives with respect to
        the mixture's fields use ordinary autodiff.

        Args:
          x: ``(..., D)``.

        Returns:
          ``(...)`` log-densities.
        """
        flat, batch, out = self._prepare("x", x)
        return _log_prob_flat(self, flat).reshape(batch).astype(out)

    @jax.jit
    def responsibilities(self, x: jax.Array) -> jax.Array:
        """``r_k(x) = p(k | x)`` (eq. 2): ``x: (..., D) -> (..., K)``, rows summing to one."""
        return jax.nn.softmax(self.component_log_probs(x), axis=-1)

    @jax.jit
    def score(self, x: jax.Array) -> jax.Array:
        """Exact score ``grad_x log p(x) = -sum_k r_k(x) Sigma_k^{-1} (x - mu_k)`` (eq. 4).

        One pass, no autodiff; ``r_k`` is a softmax of eq. (1), finite far from every mode.

        Args:
          x: ``(..., D)``.

        Returns:
          ``(..., D)`` scores.
        """
        flat, batch, out = self._prepare("x", x)
        return self._posterior_sum(flat, None, None, "score").reshape(*batch, self.dim).astype(out)

    @jax.jit
    def log_prob_and_score(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(log p(x), grad_x log p(x))`` in one fused pass (for MALA, HMC).

        Args:
          x: ``(..., D)``.

        Returns:
          ``((...), (..., D))``: eqs. (3) and (4) sharing eqs. (1)-(2).
        """
        flat, batch, out = self._prepare("x", x)
        log_p, score = self._log_prob_and_score_flat(flat)
        return log_p.reshape(batch).astype(out), score.reshape(*batch, self.dim).astype(out)

    # -- sampling -------------------------------------------------------------------------

    @functools.partial(jax.jit, static_argnames="n")
    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """Draw ``n`` samples: ``k ~ Cat(w)``, ``x = mu_k + L_k eps``, ``eps ~ N(0, I)``,
        ``L_k`` the Cholesky factor of ``Sigma_k``.

        Args:
          key: a PRNG key.
          n: number of samples (static).

        Returns:
          ``(n, D)`` samples in the dtype of ``means``.
        """
        n = checks.positive_int("n", n)
        comp_key, eps_key = jax.random.split(key)
        ks = jax.random.categorical(comp_key, self.log_weights, shape=(n,))  # (n,)
        eps = jax.random.normal(eps_key, (n, self.dim), dtype=self.means.dtype)  # (n, D)
        chol = jnp.linalg.cholesky(self.covs)  # (K, D, D)
        return self.means[ks] + jnp.einsum("nij,nj->ni", chol[ks], eps)  # (n, D)

    # -- diffusion ------------------------------------------------------------------------

    def noised(self, alpha: Any, sigma: Any) -> GaussianMixture:
        """Law of ``x_t = alpha x_0 + sigma eps`` with ``x_0 ~ self``, ``eps ~ N(0, I)``.

        Each component maps to ``N(alpha mu_k, alpha^2 Sigma_k + sigma^2 I)``; weights are
        unchanged. Exact and cheap: the eigenvectors are shared, the eigenvalues become
        ``alpha^2 lam_k + sigma^2``. ``alpha`` and ``sigma`` are scalars (may be traced),
        not both zero.
        """
        dtype = self.means.dtype
        _check_level(alpha, sigma)
        alpha, sigma = jnp.asarray(alpha, dtype=dtype), jnp.asarray(sigma, dtype=dtype)
        checks.shape("alpha", alpha, ())
        checks.shape("sigma", sigma, ())
        eye = jnp.eye(self.dim, dtype=dtype)
        return GaussianMixture._from_fields(
            weights=self.weights,
            means=alpha * self.means,  # alpha mu_k
            covs=alpha**2 * self.covs + sigma**2 * eye[None],  # alpha^2 Sigma_k + sigma^2 I
            log_weights=self.log_weights,
            eigenvalues=alpha**2 * self.eigenvalues + sigma**2,  # alpha^2 lam_k + sigma^2
            eigenvectors=self.eigenvectors,
            means_rotated=alpha * self.means_rotated,  # U_k^T (alpha mu_k)
        )

    @checks.before_jit(lambda a: _check_level(a["alpha"], a["sigma"]))
    @jax.jit
    def noised_score(self, x: jax.Array, alpha: Any, sigma: Any) -> jax.Array:
        """``grad_x log p_t(x)`` for ``p_t = self.noised(alpha, sigma)`` (eq. 4).

        Args:
          x: ``(..., D)`` noisy points.
          alpha, sigma: scalars, or of shape ``(...)`` (one level per point); not both zero.

        Returns:
          ``(..., D)``.
        """
        return self._at_level("x", x, alpha, sigma, "score")

    @checks.before_jit(lambda a: _check_level(a["alpha"], a["sigma"]))
    @jax.jit
    def eps(self, x: jax.Array, alpha: Any, sigma: Any) -> jax.Array:
        """The optimal noise prediction ``E[eps | x_t = x] = -sigma grad log p_t(x)`` (eq. 5).

        For ``x_t = alpha x_0 + sigma eps``; ``x / sigma`` exactly at ``alpha = 0``.

        Args:
          x: ``(..., D)`` noisy points.
          alpha, sigma: scalars or of shape ``(...)``; ``sigma >= 0``, not both zero (at
            ``sigma = 0`` the noise is known exactly: 0).

        Returns:
          ``(..., D)``.
        """
        return self._at_level("x", x, alpha, sigma, "eps")

    @checks.before_jit(lambda a: _check_level(a["alpha"], a["sigma"]))
    @jax.jit
    def denoise(self, x: jax.Array, alpha: Any, sigma: Any) -> jax.Array:
        """The optimal denoiser ``E[x_0 | x_t = x]`` (Tweedie, eq. 6).

            E[x_0 | x_t] = (x_t + sigma^2 grad log p_t(x_t)) / alpha
                         = sum_k r_k(x_t) [mu_k + alpha Sigma_k C_k^{-1} (x_t - alpha mu_k)]

        The second form, used here, stays finite at ``alpha -> 0`` (the prior mean).

        Args:
          x: ``(..., D)`` noisy points.
          alpha, sigma: scalars or of shape ``(...)``; not both zero.

        Returns:
          ``(..., D)`` posterior means.
        """
        return self._at_level("x_t", x, alpha, sigma, "denoise")

    def posterior_mean_x0(self, x_t: jax.Array, alpha: Any, sigma: Any) -> jax.Array:
        """``E[x_0 | x_t]``: the same as :meth:`denoise` (its descriptive name)."""
        return self.denoise(x_t, alpha, sigma)

    # -- moments --------------------------------------------------------------------------

    @jax.jit
    def mean(self) -> jax.Array:
        """``E[x] = sum_k w_k mu_k``, shape ``(D,)``."""
        return jnp.einsum("k,kd->d", self.weights, self.means)

    @jax.jit
    def covariance(self) -> jax.Array:
        """``Cov[x] = sum_k w_k (Sigma_k + mu_k mu_k^T) - E[x] E[x]^T``, shape ``(D, D)``.

        Written as ``sum_k w_k (Sigma_k + (mu_k - m)(mu_k - m)^T)`` (law of total
        covariance), which avoids cancelling two large terms when the modes are far out.
        """
        centred = self.means - self.mean()[None, :]  # (K, D)
        between = jnp.einsum("k,ki,kj->ij", self.weights, centred, centred)
        within = jnp.einsum("k,kij->ij", self.weights, self.covs)
        return within + between


jax.tree_util.register_pytree_with_keys(
    GaussianMixture,
    lambda gm: (tuple((jax.tree_util.GetAttrKey(n), getattr(gm, n)) for n in _FIELDS), None),
    lambda _, leaves: GaussianMixture._from_fields(**dict(zip(_FIELDS, leaves, strict=True))),
)


@jax.custom_jvp
def _log_prob_flat(target: GaussianMixture, x: jax.Array) -> jax.Array:
    """Eq. (3) at ``x: (N, D)``: ``(N,)``."""
    logits, _, _ = target._terms(x, None, None)
    return logsumexp(logits, axis=0)


@functools.partial(_log_prob_flat.defjvp, symbolic_zeros=True)
def _log_prob_flat_jvp(primals: tuple, tangents: tuple) -> tuple[jax.Array, jax.Array]:
    """``d log p = score . dx`` (eq. 4); autodiff when the mixture's fields move too."""
    target, x = primals
    t_target, t_x = tangents
    is_zero = lambda t: isinstance(t, SymbolicZero)  # noqa: E731
    if not all(is_zero(t) for t in jax.tree_util.tree_leaves(t_target, is_leaf=is_zero)):
        fill = lambda t, p: jnp.zeros_like(p) if is_zero(t) else t  # noqa: E731
        t_target = jax.tree_util.tree_map(fill, t_target, target, is_leaf=is_zero)
        return jax.jvp(_log_prob_flat.fun, primals, (t_target, fill(t_x, x)))
    log_p, score = target._log_prob_and_score_flat(x)
    if is_zero(t_x):
        return log_p, jnp.zeros_like(log_p)
    return log_p, jnp.sum(score * t_x, axis=1)  # (N,)
