"""Probabilistic PCA: a latent-variable model whose likelihood and posterior are exact.

Tipping & Bishop (1999), "Probabilistic principal component analysis", eqs. 3-7:

    z ~ N(0, I_L),   x | z ~ N(W z + b, s^2 I_D)
    x ~ N(b, C),     C = W W^T + s^2 I_D                                   (eq. 6)
    z | x ~ N(M^{-1} W^T (x - b), s^2 M^{-1}),   M = W^T W + s^2 I_L        (eq. 7)

and the ELBO of a diagonal Gaussian ``q(z)`` in closed form (Kingma & Welling 2014, eq. 3),
so the ELBO and IWAE bounds of a VAE can be held against ``log p(x)``. The float64 twin
(:mod:`genjax.oracle_targets`) conditions the joint Gaussian of ``(z, x)`` instead of using
``M`` and writes the ELBO as ``log p(x) - KL(q || p(z | x))``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from genjax import checks
from genjax.gaussian import LOG_2PI, isotropic_normal_log_prob, kl_diag_standard_normal
from genjax.targets.mixture import check_points, default_float

__all__ = ["LinearGaussian"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LinearGaussian:
    """Probabilistic PCA: ``z ~ N(0, I_L)``, ``x | z ~ N(W z + b, s^2 I_D)``.

    Marginal (Tipping & Bishop 1999, eq. 6): ``x ~ N(b, C)``, ``C = W W^T + s^2 I_D``.
    Posterior (eq. 7): ``z | x ~ N(M^{-1} W^T (x - b), s^2 M^{-1})``,
    ``M = W^T W + s^2 I_L``.

    A pytree of three arrays: ``lg.log_prob`` (a bound method) is a traced model for the
    samplers (:mod:`genjax.model`); new parameters of the same shapes never recompile.

    Attributes:
      W: ``(D, L)`` loading matrix.
      b: ``(D,)`` offset.
      noise_std: ``()`` observation noise standard deviation ``s > 0``.

    Example:
      >>> model = LinearGaussian.create(jnp.ones((2, 1)), jnp.zeros(2), 1.0)
      >>> model.marginal_cov().tolist()  # W W^T + s^2 I
      [[2.0, 1.0], [1.0, 2.0]]
    """

    W: jax.Array  # (D, L)
    b: jax.Array  # (D,)
    noise_std: jax.Array  # ()

    @classmethod
    def create(cls, W: Any, b: Any, noise_std: Any, *, dtype: Any = None) -> LinearGaussian:
        """Validated constructor; raises ``ValueError`` naming a bad argument."""
        dtype = dtype or default_float()
        w = np.asarray(W, dtype=np.float64)
        bb = np.asarray(b, dtype=np.float64)
        s = np.asarray(noise_std, dtype=np.float64)
        if w.ndim != 2 or min(w.shape) < 1:
            raise ValueError(f"W must have shape (D, L) with D, L >= 1, got {w.shape}")
        checks.shape("b", bb, (w.shape[0],))
        checks.shape("noise_std", s, ())
        checks.positive("noise_std", s)
        checks.finite("W", w)
        checks.finite("b", bb)
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

    @jax.jit
    def marginal_cov(self) -> jax.Array:
        """``C = W W^T + s^2 I_D``, shape ``(D, D)``."""
        return self.W @ self.W.T + self.noise_std**2 * jnp.eye(self.dim, dtype=self.W.dtype)

    @jax.jit
    def log_prob(self, x: jax.Array) -> jax.Array:
        """Exact marginal log-likelihood ``log N(x; b, W W^T + s^2 I)`` (eq. 6).

        Computed through the ``L x L`` matrix ``M = W^T W + s^2 I`` (never through
        ``C = W W^T + s^2 I``, whose Cholesky factor fails in float32 once ``s^2`` is below
        ~1e-7 of ``|W|^2`` and ``L < D``). With ``r = x - b`` and the posterior mean
        ``mu = M^{-1} W^T r`` (eq. 7):

            r^T C^{-1} r = |r - W mu|^2 / s^2 + |mu|^2      (Woodbury; W^T W mu = W^T r - s^2 mu)
            log|C| = (D - L) log s^2 + log|M|              (matrix determinant lemma)

        Both terms are sums of squares, so nothing cancels: ``noise_std = 1e-4`` gives the
        true value. (A float32 ``x`` itself carries a rounding error of ~1e-7 |x|, which moves
        ``log p`` by ~1e-7 |x| |r - W mu| / s^2 -- the conditioning of the density, not of
        this formula.)

        Args:
          x: ``(..., D)``.

        Returns:
          ``(...)``.
        """
        x = jnp.asarray(x)
        check_points("x", x, self.dim)
        batch = x.shape[:-1]
        s2 = self.noise_std**2
        chol_m = jnp.linalg.cholesky(self._m_matrix())  # M = R R^T  (L, L)
        r = x.reshape(-1, self.dim) - self.b[None, :]  # (N, D), x - b
        proj = r @ self.W  # (N, L), (W^T r)^T
        half = solve_triangular(chol_m, proj.T, lower=True)  # (L, N), R^{-1} W^T r
        mu = solve_triangular(chol_m.T, half, lower=False).T  # (N, L), M^{-1} W^T r
        resid = r - mu @ self.W.T  # (N, D), r - W mu
        maha = jnp.sum(resid**2, axis=-1) / s2 + jnp.sum(mu**2, axis=-1)  # (N,)
        logdet = (self.dim - self.latent_dim) * jnp.log(s2) + 2.0 * jnp.sum(
            jnp.log(jnp.diagonal(chol_m))
        )  # log|C| = (D - L) log s^2 + log|M|
        # log N = -1/2 (D log 2 pi + log|C| + (x-b)^T C^{-1} (x-b))
        return (-0.5 * (self.dim * LOG_2PI + logdet + maha)).reshape(batch)

    def _m_matrix(self) -> jax.Array:
        # M = W^T W + s^2 I_L  (L, L)
        return self.W.T @ self.W + self.noise_std**2 * jnp.eye(self.latent_dim, dtype=self.W.dtype)

    @jax.jit
    def posterior(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Exact posterior ``p(z | x) = N(M^{-1} W^T (x - b), s^2 M^{-1})`` (eq. 7).

        Args:
          x: ``(..., D)``.

        Returns:
          ``(mean, cov)`` with ``mean: (..., L)`` and ``cov: (L, L)`` (the same for every x).
        """
        x = jnp.asarray(x)
        check_points("x", x, self.dim)
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
        n = checks.positive_int("n", n)
        z_key, eps_key = jax.random.split(key)
        z = jax.random.normal(z_key, (n, self.latent_dim), dtype=self.W.dtype)
        eps = jax.random.normal(eps_key, (n, self.dim), dtype=self.W.dtype)
        x = z @ self.W.T + self.b[None, :] + self.noise_std * eps
        return x, z

    def _check_q(self, q_mean: jax.Array, q_logvar: jax.Array) -> None:
        check_points("q_mean", q_mean, self.latent_dim, axis_name="L")
        checks.same_shape("q_logvar", q_logvar, "q_mean", q_mean)

    @jax.jit
    def elbo(self, x: jax.Array, q_mean: jax.Array, q_logvar: jax.Array) -> jax.Array:
        """Closed-form ELBO of a diagonal Gaussian ``q(z) = N(m, diag(v))``, ``v = exp(logvar)``.

        ``ELBO = E_q[log p(x | z)] - KL(q || p(z))`` (Kingma & Welling 2014, eq. 3), each
        term exact:

            E_q[log p(x|z)] = log N(x; W m + b, s^2 I) - tr(W diag(v) W^T) / (2 s^2)
            KL(q || N(0, I)) = 1/2 sum_l (m_l^2 + v_l - 1 - logvar_l)

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
        check_points("x", x, self.dim)
        self._check_q(q_mean, q_logvar)
        if x.shape[:-1] != q_mean.shape[:-1]:
            raise ValueError(
                f"x batch shape {x.shape[:-1]} must equal q_mean batch shape {q_mean.shape[:-1]}"
            )
        var = jnp.exp(q_logvar)  # (..., L)
        mean_x = q_mean @ self.W.T + jnp.broadcast_to(self.b, x.shape)  # (..., D), W m + b
        col_sq = jnp.sum(self.W**2, axis=0)  # (L,), diag(W^T W)
        # tr(W diag(v) W^T) = sum_l v_l |W_:l|^2
        trace = jnp.sum(var * jnp.broadcast_to(col_sq, var.shape), axis=-1)  # (...)
        e_lik = isotropic_normal_log_prob(x, mean_x, self.noise_std) - trace / (
            2.0 * self.noise_std**2
        )
        return e_lik - kl_diag_standard_normal(q_mean, q_logvar)

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
        self._check_q(q_mean, q_logvar)
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
