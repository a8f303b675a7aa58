"""Analytic ground truth: distributions whose densities, scores and posteriors are exact.

Three kinds of target, each usable wherever a trained model would plug in:

* :class:`GaussianMixture` -- ``p(x) = sum_k w_k N(x; mu_k, Sigma_k)`` with exact
  log-density, score ``grad_x log p(x)``, samples, and the law of the diffused variable
  ``x_t = alpha x_0 + sigma eps`` (again a Gaussian mixture), so that the exact score,
  noise prediction and denoiser ``E[x_0 | x_t]`` of a diffusion model over this data are
  known at every noise level (Tweedie's formula; Efron 2011, "Tweedie's formula and
  selection bias", eq. 2.8; Song et al. 2021, "Score-based generative modeling through
  SDEs", sec. 3).
* :class:`LinearGaussian` -- probabilistic PCA (Tipping & Bishop 1999, "Probabilistic
  principal component analysis", eqs. 3-6): ``z ~ N(0, I_L)``, ``x = W z + b + s eps``,
  with exact marginal likelihood, exact posterior ``p(z | x)``, and the ELBO of a diagonal
  Gaussian ``q(z)`` in closed form -- so the ELBO and IWAE bounds of a VAE can be held
  against ``log p(x)`` (Kingma & Welling 2014, eq. 3).
* GAN pairs of known densities: the optimal discriminator ``D*(x) = p/(p+q)`` and the value
  of the game at it, ``V(D*, G) = -log 4 + 2 JSD(p || q)`` (Goodfellow et al. 2014,
  Proposition 1 and Theorem 1).

Both classes are frozen dataclasses registered as pytrees (every field an array), so they
pass through ``jax.jit``, ``jax.vmap`` and ``jax.grad``; their methods are themselves
jit-compiled (the target is a traced argument; sample counts are static). Constructing them directly
performs no checks (pytree reconstruction inside transformations must stay cheap and
shape-agnostic); the constructors :func:`ring`, :func:`grid`, :func:`mixture_1d`,
:meth:`GaussianMixture.create` and :meth:`LinearGaussian.create` validate their arguments
and raise ``ValueError`` naming the offending one.

The NumPy float64 twin of this module is :mod:`genjax.oracle_targets`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular
from jax.scipy.special import logsumexp

__all__ = [
    "GaussianMixture",
    "LinearGaussian",
    "ring",
    "grid",
    "mixture_1d",
    "optimal_discriminator",
    "gan_value_at_optimum",
]

_LOG_2PI = math.log(2.0 * math.pi)


def _default_float() -> Any:
    # float32 unless the user enabled x64, in which case float64.
    return jax.dtypes.canonicalize_dtype(jnp.float64)


# ---------------------------------------------------------------------------------------
# Gaussian mixture
# ---------------------------------------------------------------------------------------


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class GaussianMixture:
    """A mixture of full-covariance Gaussians, ``p(x) = sum_k w_k N(x; mu_k, Sigma_k)``.

    Attributes:
      weights: ``(K,)`` mixing weights, positive, summing to one.
      means: ``(K, D)`` component means ``mu_k``.
      covs: ``(K, D, D)`` component covariances ``Sigma_k``, symmetric positive definite.

    Example:
      >>> target = ring(n_modes=8, radius=4.0, std=0.3)
      >>> x = target.sample(jax.random.key(0), 1000)       # (1000, 2)
      >>> target.score(x).shape                           # grad_x log p(x)
      (1000, 2)
    """

    weights: jax.Array  # (K,)
    means: jax.Array  # (K, D)
    covs: jax.Array  # (K, D, D)

    # -- construction --------------------------------------------------------------------

    @classmethod
    def create(cls, weights: Any, means: Any, covs: Any, *, dtype: Any = None) -> GaussianMixture:
        """Validated constructor.

        Args:
          weights: ``(K,)`` positive, summing to one (within 1e-6 relative).
          means: ``(K, D)``.
          covs: ``(K, D, D)`` symmetric positive definite.
          dtype: floating dtype of the fields; default float32 (float64 under x64).

        Raises:
          ValueError: naming the argument whose shape or value is invalid.
        """
        dtype = dtype or _default_float()
        w = np.asarray(weights, dtype=np.float64)
        m = np.asarray(means, dtype=np.float64)
        c = np.asarray(covs, dtype=np.float64)
        if w.ndim != 1 or w.shape[0] < 1:
            raise ValueError(f"weights must have shape (K,) with K >= 1, got {w.shape}")
        k = w.shape[0]
        if m.ndim != 2 or m.shape[0] != k or m.shape[1] < 1:
            raise ValueError(f"means must have shape (K={k}, D) with D >= 1, got {m.shape}")
        d = m.shape[1]
        if c.shape != (k, d, d):
            raise ValueError(f"covs must have shape (K={k}, D={d}, D={d}), got {c.shape}")
        if not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise ValueError(f"weights must be finite and > 0, got {w}")
        if abs(w.sum() - 1.0) > 1e-6:
            raise ValueError(f"weights must sum to 1, got sum {w.sum()!r}")
        if not np.all(np.isfinite(m)):
            raise ValueError("means must be finite")
        if not np.all(np.isfinite(c)):
            raise ValueError("covs must be finite")
        asym = np.max(np.abs(c - np.swapaxes(c, -1, -2)), initial=0.0)
        if asym > 1e-8 * max(1.0, float(np.max(np.abs(c)))):
            raise ValueError(f"covs must be symmetric, max |Sigma - Sigma^T| = {asym:.3g}")
        min_eig = float(np.min(np.linalg.eigvalsh(c)))
        if min_eig <= 0:
            raise ValueError(f"covs must be positive definite, smallest eigenvalue {min_eig:.3g}")
        return cls(
            weights=jnp.asarray(w, dtype=dtype),
            means=jnp.asarray(m, dtype=dtype),
            covs=jnp.asarray(c, dtype=dtype),
        )

    # -- shapes ---------------------------------------------------------------------------

    @property
    def num_components(self) -> int:
        """K, the number of components."""
        return self.weights.shape[-1]

    @property
    def dim(self) -> int:
        """D, the dimension of x."""
        return self.means.shape[-1]

    def _check_x(self, x: jax.Array, name: str = "x") -> None:
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"{name} must have shape (..., D={self.dim}), got {x.shape}")

    # -- densities ------------------------------------------------------------------------

    def _component_terms(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Per-component log-densities and the Cholesky factors, x: (N, D).

        Returns ``log N(x_n; mu_k, Sigma_k)`` of shape (N, K), the whitened residuals
        ``L_k^{-1}(x_n - mu_k)`` of shape (K, N, D), and the factors ``L_k`` (K, D, D).
        """
        chol = jnp.linalg.cholesky(self.covs)  # (K, D, D), Sigma_k = L_k L_k^T
        diff = x[None, :, :] - self.means[:, None, :]  # (K, N, D), x_n - mu_k
        # u = L_k^{-1} (x - mu_k), solved per component: (K, D, N) -> (K, N, D)
        white = jax.vmap(lambda l, r: solve_triangular(l, r.T, lower=True).T)(chol, diff)
        maha = jnp.sum(white**2, axis=-1)  # (K, N), (x-mu)^T Sigma^{-1} (x-mu) = |u|^2
        # log|Sigma_k| = 2 sum_i log L_k[i, i]
        logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)  # (K,)
        # log N(x; mu, Sigma) = -1/2 (D log 2 pi + log|Sigma| + maha)
        log_n = -0.5 * (self.dim * _LOG_2PI + logdet[:, None] + maha)  # (K, N)
        return log_n.T, white, chol

    @jax.jit
    def component_log_probs(self, x: jax.Array) -> jax.Array:
        """``log w_k + log N(x; mu_k, Sigma_k)`` for every component.

        Args:
          x: ``(..., D)``.

        Returns:
          ``(..., K)`` joint log-probabilities of x and component k.
        """
        x = jnp.asarray(x)
        self._check_x(x)
        batch = x.shape[:-1]
        log_n, _, _ = self._component_terms(x.reshape(-1, self.dim))  # (N, K)
        joint = jnp.log(self.weights)[None, :] + log_n  # (N, K)
        return joint.reshape(*batch, self.num_components)

    @jax.jit
    def log_prob(self, x: jax.Array) -> jax.Array:
        """Exact log-density ``log p(x) = logsumexp_k [log w_k + log N(x; mu_k, Sigma_k)]``.

        Args:
          x: ``(..., D)``.

        Returns:
          ``(...)`` log-densities.
        """
        return logsumexp(self.component_log_probs(x), axis=-1)

    @jax.jit
    def responsibilities(self, x: jax.Array) -> jax.Array:
        """Posterior component probabilities ``r_k(x) = p(k | x)``, ``x: (..., D) -> (..., K)``."""
        return jax.nn.softmax(self.component_log_probs(x), axis=-1)

    @jax.jit
    def score(self, x: jax.Array) -> jax.Array:
        """Exact score ``grad_x log p(x) = -sum_k r_k(x) Sigma_k^{-1} (x - mu_k)``.

        ``r_k(x) = w_k N(x; mu_k, Sigma_k) / p(x)`` is computed as a softmax of the joint
        log-probabilities, so it stays finite far from every mode.

        Args:
          x: ``(..., D)``.

        Returns:
          ``(..., D)`` scores.
        """
        x = jnp.asarray(x)
        self._check_x(x)
        batch = x.shape[:-1]
        flat = x.reshape(-1, self.dim)  # (N, D)
        log_n, white, chol = self._component_terms(flat)
        resp = jax.nn.softmax(jnp.log(self.weights)[None, :] + log_n, axis=-1)  # (N, K)
        # Sigma_k^{-1}(x - mu_k) = L_k^{-T} u_k: one more triangular solve per component.
        prec_diff = jax.vmap(lambda l, u: solve_triangular(l, u.T, lower=True, trans="T").T)(
            chol, white
        )  # (K, N, D)
        score = -jnp.einsum("nk,knd->nd", resp, prec_diff)  # (N, D)
        return score.reshape(*batch, self.dim)

    # -- sampling -------------------------------------------------------------------------

    @functools.partial(jax.jit, static_argnames="n")
    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """Draw ``n`` samples: ``k ~ Cat(w)``, ``x = mu_k + L_k eps``, ``eps ~ N(0, I)``.

        Args:
          key: a PRNG key.
          n: number of samples (static).

        Returns:
          ``(n, D)`` samples in the dtype of ``means``.
        """
        comp_key, eps_key = jax.random.split(key)
        ks = jax.random.categorical(comp_key, jnp.log(self.weights), shape=(n,))  # (n,)
        eps = jax.random.normal(eps_key, (n, self.dim), dtype=self.means.dtype)  # (n, D)
        chol = jnp.linalg.cholesky(self.covs)  # (K, D, D)
        return self.means[ks] + jnp.einsum("nij,nj->ni", chol[ks], eps)  # (n, D)

    # -- diffusion ------------------------------------------------------------------------

    def noised(self, alpha: Any, sigma: Any) -> GaussianMixture:
        """Law of ``x_t = alpha x_0 + sigma eps`` with ``x_0 ~ self``, ``eps ~ N(0, I)``.

        Each component maps to ``N(alpha mu_k, alpha^2 Sigma_k + sigma^2 I)``; weights are
        unchanged. ``alpha`` and ``sigma`` are scalars (may be traced); ``sigma > 0`` or
        ``alpha != 0`` keeps the covariances positive definite.
        """
        alpha = jnp.asarray(alpha, dtype=self.means.dtype)
        sigma = jnp.asarray(sigma, dtype=self.means.dtype)
        if alpha.ndim != 0:
            raise ValueError(f"alpha must be a scalar, got shape {alpha.shape}")
        if sigma.ndim != 0:
            raise ValueError(f"sigma must be a scalar, got shape {sigma.shape}")
        eye = jnp.eye(self.dim, dtype=self.covs.dtype)
        return GaussianMixture(
            weights=self.weights,
            means=alpha * self.means,  # alpha mu_k
            covs=alpha**2 * self.covs + sigma**2 * eye[None],  # alpha^2 Sigma_k + sigma^2 I
        )

    @jax.jit
    def posterior_mean_x0(self, x_t: jax.Array, alpha: Any, sigma: Any) -> jax.Array:
        """The exact denoiser ``E[x_0 | x_t]`` for ``x_t = alpha x_0 + sigma eps``.

        Tweedie's formula gives ``E[x_0 | x_t] = (x_t + sigma^2 grad log p_t(x_t)) / alpha``
        with ``p_t = self.noised(alpha, sigma)``. We evaluate the identical quantity
        component by component, which needs no division by ``alpha`` and so stays finite at
        ``alpha -> 0`` (where it tends to the prior mean):

            E[x_0 | x_t] = sum_k r_k(x_t) [mu_k + alpha Sigma_k C_k^{-1} (x_t - alpha mu_k)],
            C_k = alpha^2 Sigma_k + sigma^2 I,   r_k = p(k | x_t) under p_t.

        Args:
          x_t: ``(..., D)`` noisy points.
          alpha: scalar signal scale.
          sigma: scalar noise scale.

        Returns:
          ``(..., D)`` posterior means.
        """
        x_t = jnp.asarray(x_t)
        self._check_x(x_t, "x_t")
        p_t = self.noised(alpha, sigma)
        alpha = jnp.asarray(alpha, dtype=self.means.dtype)
        batch = x_t.shape[:-1]
        flat = x_t.reshape(-1, self.dim)  # (N, D)
        log_n, white, chol = p_t._component_terms(flat)  # under p_t: C_k = L_k L_k^T
        resp = jax.nn.softmax(jnp.log(self.weights)[None, :] + log_n, axis=-1)  # (N, K)
        # C_k^{-1} (x_t - alpha mu_k) = L_k^{-T} u_k
        c_inv_diff = jax.vmap(lambda l, u: solve_triangular(l, u.T, lower=True, trans="T").T)(
            chol, white
        )  # (K, N, D)
        # mu_k + alpha Sigma_k C_k^{-1} (x_t - alpha mu_k)
        comp_mean = self.means[:, None, :] + alpha * jnp.einsum(
            "kij,knj->kni", self.covs, c_inv_diff
        )  # (K, N, D)
        out = jnp.einsum("nk,knd->nd", resp, comp_mean)  # (N, D)
        return out.reshape(*batch, self.dim)

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
        m = self.mean()
        centred = self.means - m[None, :]  # (K, D)
        between = jnp.einsum("k,ki,kj->ij", self.weights, centred, centred)
        within = jnp.einsum("k,kij->ij", self.weights, self.covs)
        return within + between


def _isotropic_mixture(means: np.ndarray, std: float, dtype: Any) -> GaussianMixture:
    k, d = means.shape
    covs = np.broadcast_to(std**2 * np.eye(d), (k, d, d))
    return GaussianMixture.create(np.full((k,), 1.0 / k), means, covs, dtype=dtype)


def ring(
    n_modes: int = 8, radius: float = 4.0, std: float = 0.3, *, dtype: Any = None
) -> GaussianMixture:
    """Equal-weight 2-D mixture with modes on a circle.

    ``mu_k = radius (cos 2 pi k / n_modes, sin 2 pi k / n_modes)``, ``Sigma_k = std^2 I_2``.

    Raises:
      ValueError: if ``n_modes < 1``, ``radius < 0`` or ``std <= 0``.
    """
    if int(n_modes) != n_modes or n_modes < 1:
        raise ValueError(f"n_modes must be an integer >= 1, got {n_modes!r}")
    if not (math.isfinite(radius) and radius >= 0):
        raise ValueError(f"radius must be finite and >= 0, got {radius!r}")
    if not (math.isfinite(std) and std > 0):
        raise ValueError(f"std must be finite and > 0, got {std!r}")
    angles = 2.0 * np.pi * np.arange(int(n_modes)) / int(n_modes)
    means = radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1)  # (K, 2)
    return _isotropic_mixture(means, std, dtype)


def grid(
    n_per_side: int = 4, spacing: float = 2.0, std: float = 0.2, *, dtype: Any = None
) -> GaussianMixture:
    """Equal-weight 2-D mixture with ``n_per_side**2`` modes on a square grid centred at 0.

    ``mu_{ij} = spacing (i - (n-1)/2, j - (n-1)/2)``, ``Sigma = std^2 I_2``.

    Raises:
      ValueError: if ``n_per_side < 1``, ``spacing <= 0`` or ``std <= 0``.
    """
    if int(n_per_side) != n_per_side or n_per_side < 1:
        raise ValueError(f"n_per_side must be an integer >= 1, got {n_per_side!r}")
    if not (math.isfinite(spacing) and spacing > 0):
        raise ValueError(f"spacing must be finite and > 0, got {spacing!r}")
    if not (math.isfinite(std) and std > 0):
        raise ValueError(f"std must be finite and > 0, got {std!r}")
    n = int(n_per_side)
    ticks = spacing * (np.arange(n) - (n - 1) / 2.0)  # (n,)
    gx, gy = np.meshgrid(ticks, ticks, indexing="ij")
    means = np.stack([gx.ravel(), gy.ravel()], axis=-1)  # (n^2, 2)
    return _isotropic_mixture(means, std, dtype)


def mixture_1d(weights: Any, means: Any, stds: Any, *, dtype: Any = None) -> GaussianMixture:
    """A 1-D mixture ``sum_k w_k N(x; m_k, s_k^2)`` as a ``GaussianMixture`` with ``D = 1``.

    Args:
      weights: ``(K,)`` positive, summing to one.
      means: ``(K,)``.
      stds: ``(K,)`` positive standard deviations.

    Raises:
      ValueError: naming the argument whose shape or value is invalid.
    """
    w = np.asarray(weights, dtype=np.float64)
    m = np.asarray(means, dtype=np.float64)
    s = np.asarray(stds, dtype=np.float64)
    if w.ndim != 1 or w.shape[0] < 1:
        raise ValueError(f"weights must have shape (K,) with K >= 1, got {w.shape}")
    if m.shape != w.shape:
        raise ValueError(f"means must have shape {w.shape} like weights, got {m.shape}")
    if s.shape != w.shape:
        raise ValueError(f"stds must have shape {w.shape} like weights, got {s.shape}")
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"stds must be finite and > 0, got {s}")
    return GaussianMixture.create(w, m[:, None], (s**2)[:, None, None], dtype=dtype)


# ---------------------------------------------------------------------------------------
# Linear-Gaussian latent model (probabilistic PCA)
# ---------------------------------------------------------------------------------------


def _diag_gaussian_check(q_mean: jax.Array, q_logvar: jax.Array, latent: int) -> None:
    if q_mean.ndim < 1 or q_mean.shape[-1] != latent:
        raise ValueError(f"q_mean must have shape (..., L={latent}), got {q_mean.shape}")
    if q_logvar.shape != q_mean.shape:
        raise ValueError(
            f"q_logvar must have the shape of q_mean {q_mean.shape}, got {q_logvar.shape}"
        )


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LinearGaussian:
    """Probabilistic PCA: ``z ~ N(0, I_L)``, ``x | z ~ N(W z + b, s^2 I_D)``.

    Marginal (Tipping & Bishop 1999, eq. 6): ``x ~ N(b, C)``, ``C = W W^T + s^2 I_D``.
    Posterior (eq. 7): ``z | x ~ N(M^{-1} W^T (x - b), s^2 M^{-1})``,
    ``M = W^T W + s^2 I_L``.

    Attributes:
      W: ``(D, L)`` loading matrix.
      b: ``(D,)`` offset.
      noise_std: ``()`` observation noise standard deviation ``s > 0``.
    """

    W: jax.Array  # (D, L)
    b: jax.Array  # (D,)
    noise_std: jax.Array  # ()

    @classmethod
    def create(cls, W: Any, b: Any, noise_std: Any, *, dtype: Any = None) -> LinearGaussian:
        """Validated constructor; raises ``ValueError`` naming a bad argument."""
        dtype = dtype or _default_float()
        w = np.asarray(W, dtype=np.float64)
        bb = np.asarray(b, dtype=np.float64)
        s = np.asarray(noise_std, dtype=np.float64)
        if w.ndim != 2 or min(w.shape) < 1:
            raise ValueError(f"W must have shape (D, L) with D, L >= 1, got {w.shape}")
        if bb.shape != (w.shape[0],):
            raise ValueError(f"b must have shape (D={w.shape[0]},), got {bb.shape}")
        if s.ndim != 0 or not np.isfinite(s) or s <= 0:
            raise ValueError(f"noise_std must be a finite scalar > 0, got {noise_std!r}")
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(bb))):
            raise ValueError("W and b must be finite")
        return cls(
            W=jnp.asarray(w, dtype=dtype),
            b=jnp.asarray(bb, dtype=dtype),
            noise_std=jnp.asarray(s, dtype=dtype),
        )

    @property
    def dim(self) -> int:
        """D, the data dimension."""
        return self.W.shape[0]

    @property
    def latent_dim(self) -> int:
        """L, the latent dimension."""
        return self.W.shape[1]

    def _check_x(self, x: jax.Array) -> None:
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape (..., D={self.dim}), got {x.shape}")

    @jax.jit
    def marginal_cov(self) -> jax.Array:
        """``C = W W^T + s^2 I_D``, shape ``(D, D)``."""
        return self.W @ self.W.T + self.noise_std**2 * jnp.eye(self.dim, dtype=self.W.dtype)

    @jax.jit
    def log_prob(self, x: jax.Array) -> jax.Array:
        """Exact marginal log-likelihood ``log N(x; b, W W^T + s^2 I)``.

        Args:
          x: ``(..., D)``.

        Returns:
          ``(...)``.
        """
        x = jnp.asarray(x)
        self._check_x(x)
        batch = x.shape[:-1]
        chol = jnp.linalg.cholesky(self.marginal_cov())  # C = L L^T
        diff = x.reshape(-1, self.dim) - self.b[None, :]  # (N, D), x - b
        white = solve_triangular(chol, diff.T, lower=True)  # (D, N), L^{-1}(x - b)
        maha = jnp.sum(white**2, axis=0)  # (N,)
        logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))  # log|C|
        # log N = -1/2 (D log 2 pi + log|C| + (x-b)^T C^{-1} (x-b))
        return (-0.5 * (self.dim * _LOG_2PI + logdet + maha)).reshape(batch)

    def _m_matrix(self) -> jax.Array:
        # M = W^T W + s^2 I_L  (L, L)
        return self.W.T @ self.W + self.noise_std**2 * jnp.eye(self.latent_dim, dtype=self.W.dtype)

    @jax.jit
    def posterior(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Exact posterior ``p(z | x) = N(M^{-1} W^T (x - b), s^2 M^{-1})``.

        Args:
          x: ``(..., D)``.

        Returns:
          ``(mean, cov)`` with ``mean: (..., L)`` and ``cov: (L, L)`` (the same for every x).
        """
        x = jnp.asarray(x)
        self._check_x(x)
        batch = x.shape[:-1]
        chol_m = jnp.linalg.cholesky(self._m_matrix())  # M = R R^T
        eye = jnp.eye(self.latent_dim, dtype=self.W.dtype)
        r_inv = solve_triangular(chol_m, eye, lower=True)  # R^{-1}
        m_inv = r_inv.T @ r_inv  # M^{-1}
        proj = (x.reshape(-1, self.dim) - self.b[None, :]) @ self.W  # (N, L), (W^T (x - b))^T
        mean = proj @ m_inv  # (N, L); M^{-1} symmetric
        cov = self.noise_std**2 * m_inv  # s^2 M^{-1}
        return mean.reshape(*batch, self.latent_dim), cov

    @functools.partial(jax.jit, static_argnames="n")
    def sample(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        """Ancestral samples: ``z ~ N(0, I_L)``, ``x = W z + b + s eps``.

        Returns:
          ``(x, z)`` with ``x: (n, D)`` and ``z: (n, L)``.
        """
        z_key, eps_key = jax.random.split(key)
        z = jax.random.normal(z_key, (n, self.latent_dim), dtype=self.W.dtype)
        eps = jax.random.normal(eps_key, (n, self.dim), dtype=self.W.dtype)
        x = z @ self.W.T + self.b[None, :] + self.noise_std * eps
        return x, z

    @jax.jit
    def elbo(self, x: jax.Array, q_mean: jax.Array, q_logvar: jax.Array) -> jax.Array:
        """Closed-form ELBO of a diagonal Gaussian ``q(z) = N(m, diag(v))``, ``v = exp(logvar)``.

        ``ELBO = E_q[log p(x | z)] + E_q[log p(z)] - E_q[log q(z)]`` (Kingma & Welling
        2014, eq. 3), each term exact:

            E_q[log p(x|z)] = -D/2 log(2 pi s^2)
                              - (|x - b - W m|^2 + tr(W diag(v) W^T)) / (2 s^2)
            E_q[log p(z)]   = -L/2 log(2 pi) - (|m|^2 + sum v) / 2
            E_q[log q(z)]   = -L/2 log(2 pi) - sum(logvar) / 2 - L/2

        ``ELBO = log p(x) - KL(q || p(z | x)) <= log p(x)``, equal iff q is the posterior
        (possible only when ``W^T W`` is diagonal, since q is diagonal).

        Args:
          x: ``(..., D)``.
          q_mean: ``(..., L)``.
          q_logvar: ``(..., L)``.

        Returns:
          ``(...)``.
        """
        x, q_mean, q_logvar = jnp.asarray(x), jnp.asarray(q_mean), jnp.asarray(q_logvar)
        self._check_x(x)
        _diag_gaussian_check(q_mean, q_logvar, self.latent_dim)
        if x.shape[:-1] != q_mean.shape[:-1]:
            raise ValueError(
                f"x batch shape {x.shape[:-1]} must equal q_mean batch shape {q_mean.shape[:-1]}"
            )
        s2 = self.noise_std**2
        d, l = self.dim, self.latent_dim
        var = jnp.exp(q_logvar)  # (..., L)
        resid = x - jnp.broadcast_to(self.b, x.shape) - q_mean @ self.W.T  # (..., D), x - b - W m
        col_sq = jnp.sum(self.W**2, axis=0)  # (L,), diag(W^T W)
        # tr(W diag(v) W^T) = sum_l v_l |W_:l|^2
        trace = jnp.sum(var * jnp.broadcast_to(col_sq, var.shape), axis=-1)
        e_lik = -0.5 * d * jnp.log(2 * jnp.pi * s2) - (jnp.sum(resid**2, -1) + trace) / (2 * s2)
        e_prior = -0.5 * l * _LOG_2PI - 0.5 * (jnp.sum(q_mean**2, -1) + jnp.sum(var, -1))
        e_q = -0.5 * l * _LOG_2PI - 0.5 * jnp.sum(q_logvar, -1) - 0.5 * l
        return e_lik + e_prior - e_q

    @jax.jit
    def kl_to_posterior(self, x: jax.Array, q_mean: jax.Array, q_logvar: jax.Array) -> jax.Array:
        """``KL(q || p(z | x))`` for ``q = N(m, diag(exp(logvar)))``, in closed form.

        With posterior ``N(mu_p, S_p)``: ``KL = 1/2 [tr(S_p^{-1} S_q)
        + (mu_p - m)^T S_p^{-1} (mu_p - m) - L + log|S_p| - log|S_q|]``.

        Args:
          x: ``(..., D)``.
          q_mean: ``(..., L)``.
          q_logvar: ``(..., L)``.

        Returns:
          ``(...)`` non-negative.
        """
        q_mean, q_logvar = jnp.asarray(q_mean), jnp.asarray(q_logvar)
        _diag_gaussian_check(q_mean, q_logvar, self.latent_dim)
        mu_p, _ = self.posterior(x)  # (..., L)
        if mu_p.shape != q_mean.shape:
            raise ValueError(
                f"x batch shape {mu_p.shape[:-1]} must equal q_mean batch shape {q_mean.shape[:-1]}"
            )
        s2 = self.noise_std**2
        prec = self._m_matrix() / s2  # S_p^{-1} = M / s^2
        l = self.latent_dim
        var = jnp.exp(q_logvar)
        # tr(S_p^{-1} diag(v)) = sum_l (S_p^{-1})_ll v_l
        tr = jnp.sum(jnp.broadcast_to(jnp.diagonal(prec), var.shape) * var, axis=-1)
        delta = mu_p - q_mean  # (..., L)
        maha = jnp.einsum("...i,ij,...j->...", delta, prec, delta)
        # log|S_p| = L log s^2 - log|M|
        logdet_p = l * jnp.log(s2) - 2.0 * jnp.sum(
            jnp.log(jnp.diagonal(jnp.linalg.cholesky(self._m_matrix())))
        )
        return 0.5 * (tr + maha - l + logdet_p - jnp.sum(q_logvar, axis=-1))


# ---------------------------------------------------------------------------------------
# GANs with known densities
# ---------------------------------------------------------------------------------------


@jax.jit
def optimal_discriminator(log_p_data: jax.Array, log_p_g: jax.Array) -> jax.Array:
    """The optimal discriminator ``D*(x) = p_data / (p_data + p_g)`` (Goodfellow et al. 2014,
    Proposition 1), from log-densities: ``D* = sigmoid(log p_data - log p_g)``.

    Args:
      log_p_data: ``(...)`` log-densities of the data distribution at x.
      log_p_g: ``(...)`` log-densities of the generator distribution at the same x.

    Returns:
      ``(...)`` probabilities in [0, 1].
    """
    log_p_data, log_p_g = jnp.asarray(log_p_data), jnp.asarray(log_p_g)
    if log_p_data.shape != log_p_g.shape:
        raise ValueError(
            f"log_p_g must have the shape of log_p_data {log_p_data.shape}, got {log_p_g.shape}"
        )
    return jax.nn.sigmoid(log_p_data - log_p_g)


@functools.partial(jax.jit, static_argnames="n")
def gan_value_at_optimum(
    p: GaussianMixture, q: GaussianMixture, key: jax.Array, n: int
) -> jax.Array:
    """Monte Carlo value of the GAN game at the optimal discriminator.

    ``V(D*, G) = E_{x~p}[log D*(x)] + E_{x~q}[log(1 - D*(x)] = -log 4 + 2 JSD(p || q)``
    (Goodfellow et al. 2014, Theorem 1), with ``p`` the data and ``q`` the generator.

    Estimator: ``n`` independent draws from each of ``p`` and ``q``;
    ``log D*(x) = log_sigmoid(log p(x) - log q(x))`` and
    ``log(1 - D*(x)) = log_sigmoid(log q(x) - log p(x))`` (stable forms); the two sample
    averages are summed. Unbiased, standard error ``O(1/sqrt(n))``; exactly ``-log 4``
    when ``p == q``. The result lies in ``[-log 4, 0]`` in expectation.

    Args:
      p: data distribution.
      q: generator distribution (same dimension).
      key: a PRNG key.
      n: number of samples from each (static).

    Returns:
      ``()`` the estimate.
    """
    if p.dim != q.dim:
        raise ValueError(f"q must have the dimension of p ({p.dim}), got {q.dim}")
    if int(n) != n or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    kp, kq = jax.random.split(key)
    xp = p.sample(kp, n)  # (n, D)
    xq = q.sample(kq, n)  # (n, D)
    term_p = jnp.mean(jax.nn.log_sigmoid(p.log_prob(xp) - q.log_prob(xp)))  # E_p log D*
    term_q = jnp.mean(jax.nn.log_sigmoid(q.log_prob(xq) - p.log_prob(xq)))  # E_q log(1-D*)
    return term_p + term_q
