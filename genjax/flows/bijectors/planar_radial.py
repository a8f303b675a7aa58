"""Planar and radial flows (Rezende & Mohamed 2015, sec. 4.1, Appendix A).

Two single-layer bijectors built for variational inference, usable as density models:

* :class:`Planar` — ``x = z + u_hat tanh(w^T z + b)``, a contraction or expansion along the
  hyperplane ``w^T z + b = 0`` (eqs. 10-12);
* :class:`Radial` — ``x = z + beta h(r) (z - z0)``, around the reference point ``z0``
  (eqs. 13-14).

Their inverses have no closed form in general: the radial one reduces to a quadratic in
``r`` (solved exactly); the planar one to a monotone scalar equation along ``w``, solved
by bisection.

References:
  Rezende, Mohamed (2015). Variational Inference with Normalizing Flows. ICML.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.flows.bijectors.base import Bijector

Params = Any

__all__ = ["Planar", "Radial"]


@dataclasses.dataclass(frozen=True)
class Planar(Bijector):
    """Planar flow (Rezende & Mohamed 2015, eqs. 10-12, Appendix A.1).

    forward: x = z + u_hat tanh(w^T z + b),  log|det| = log|1 + u_hat^T w tanh'(w^T z + b)|,
    with ``u_hat = u + (m(w^T u) - w^T u) w / ||w||^2``, ``m(a) = -1 + softplus(a)``, so
    ``w^T u_hat > -1`` and the map is invertible.
    inverse: ``a = w^T z`` solves the monotone scalar equation
    ``a + (w^T u_hat) tanh(a + b) = w^T x`` on ``[w^T x - |w^T u_hat|, w^T x + |w^T u_hat|]``
    (bisection, ``num_bisection`` halvings), then ``z = x - u_hat tanh(a + b)``.

    Args:
      dim: D.
      num_bisection: halvings of the bracket in the inverse (60 reach float64 resolution).

    Example:
      >>> b = Planar(2)
      >>> x, log_det = b.forward(b.init(jax.random.key(0)), jnp.ones((3, 2)))
      >>> x.shape, log_det.shape
      ((3, 2), (3,))
    """

    dim: int
    num_bisection: int = 60

    def __post_init__(self) -> None:
        checks.positive_int("dim", self.dim)
        checks.positive_int("num_bisection", self.num_bisection)

    def init(self, key: jax.Array) -> Params:
        kw, ku = jax.random.split(key)
        return {
            "w": 0.5 * jax.random.normal(kw, (self.dim,)),
            "u": 0.5 * jax.random.normal(ku, (self.dim,)),
            "b": jnp.zeros(()),
        }

    def _u_hat(self, params: Params) -> jax.Array:
        w, u = params["w"], params["u"]
        wu = jnp.dot(w, u)
        m = -1.0 + jax.nn.softplus(wu)  # m(w^T u) > -1
        ww = jnp.dot(w, w)
        # Appendix A.1. At w = 0 the map is the shift z + u tanh(b) (det 1, invertible) and
        # the correction's w / |w|^2 is 0 / 0: its numerator w is 0, so divide by 1 there.
        return u + (m - wu) * w / jnp.where(ww > 0, ww, 1.0)

    def forward(self, params: Params, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        w, b = params["w"], params["b"]
        u_hat = self._u_hat(params)
        a = z @ w + b  # (B,)
        x = z + u_hat[None] * jnp.tanh(a)[:, None]  # eq. 10
        psi = 1 - jnp.tanh(a) ** 2  # h'(a), times w below (eq. 11)
        return x, jnp.log(jnp.abs(1 + psi * jnp.dot(u_hat, w)))  # eq. 12

    def inverse(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        w, b = params["w"], params["b"]
        u_hat = self._u_hat(params)
        c = jnp.dot(w, u_hat)  # > -1
        target = x @ w  # w^T x = a + c tanh(a + b), a = w^T z
        lo, hi = target - jnp.abs(c), target + jnp.abs(c)

        def body(_, bracket):
            lo, hi = bracket
            mid = 0.5 * (lo + hi)
            too_big = mid + c * jnp.tanh(mid + b) > target  # g is increasing
            return jnp.where(too_big, lo, mid), jnp.where(too_big, mid, hi)

        lo, hi = jax.lax.fori_loop(0, self.num_bisection, body, (lo, hi))
        a = 0.5 * (lo + hi)
        z = x - u_hat[None] * jnp.tanh(a + b)[:, None]
        _, log_det = self.forward(params, z)
        return z, -log_det


@dataclasses.dataclass(frozen=True)
class Radial(Bijector):
    """Radial flow (Rezende & Mohamed 2015, eqs. 13-14, Appendix A.2).

    forward: x = z + beta h(r) (z - z0), r = ||z - z0||, h = 1 / (alpha + r),
    log|det| = (D - 1) log(1 + beta h) + log(1 + beta h + beta h'(r) r),
    with ``alpha = softplus(alpha_raw) > 0`` and ``beta = -alpha + softplus(beta_raw) > -alpha``
    (invertibility). inverse, closed form: ``||x - z0|| = r (1 + beta / (alpha + r))`` is the
    quadratic ``r^2 + (alpha + beta - r_x) r - alpha r_x = 0`` with one positive root, and
    ``z = z0 + (x - z0) r / r_x``.

    Args:
      dim: D.

    Example:
      >>> b = Radial(2)
      >>> x, log_det = b.forward(b.init(jax.random.key(0)), jnp.ones((3, 2)))
      >>> x.shape, log_det.shape
      ((3, 2), (3,))
    """

    dim: int

    def __post_init__(self) -> None:
        checks.positive_int("dim", self.dim)

    def init(self, key: jax.Array) -> Params:
        return {
            "z0": 0.5 * jax.random.normal(key, (self.dim,)),
            "alpha_raw": jnp.zeros(()),
            "beta_raw": jnp.zeros(()),
        }

    def _alpha_beta(self, params: Params) -> tuple[jax.Array, jax.Array]:
        alpha = jax.nn.softplus(params["alpha_raw"])
        return alpha, -alpha + jax.nn.softplus(params["beta_raw"])

    def forward(self, params: Params, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        alpha, beta = self._alpha_beta(params)
        diff = z - params["z0"][None]
        r = jnp.sqrt(jnp.sum(diff**2, axis=-1))  # (B,)
        h = 1 / (alpha + r)
        x = z + (beta * h)[:, None] * diff  # eq. 14
        dh = -(h**2)  # h'(r)
        log_det = (self.dim - 1) * jnp.log1p(beta * h) + jnp.log1p(beta * h + beta * dh * r)
        return x, log_det

    def inverse(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        alpha, beta = self._alpha_beta(params)
        diff = x - params["z0"][None]
        rx = jnp.sqrt(jnp.sum(diff**2, axis=-1))
        q = alpha + beta - rx
        root = jnp.sqrt(q**2 + 4 * alpha * rx)
        # Positive root of r^2 + q r - alpha r_x = 0, in the form without cancellation.
        r = jnp.where(q > 0, 2 * alpha * rx / (q + root), (root - q) / 2)
        ratio = jnp.where(rx > 0, r / jnp.where(rx > 0, rx, 1.0), 1.0)
        z = params["z0"][None] + ratio[:, None] * diff
        _, log_det = self.forward(params, z)
        return z, -log_det
