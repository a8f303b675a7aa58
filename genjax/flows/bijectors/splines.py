"""Rational-quadratic spline bijectors (Durkan et al. 2019, Neural Spline Flows).

A monotone rational-quadratic spline on ``[-B, B]`` with ``K`` bins, the identity outside
(linear tails whose slope 1 matches the end knots' derivatives ``d_0 = d_K = 1``):

* :func:`spline_params` turns unconstrained numbers into valid knots (sec. 3.1);
* :func:`rational_quadratic_spline` evaluates the spline or its inverse and the
  log-derivative (eqs. 4-6; Appendix A, eqs. 29-32 for the inverse);
* :class:`SplineCoupling` — RQ-NSF (C): a coupling layer whose transformed half goes
  through splines with knots from the conditioner (sec. 3.3);
* :class:`ElementwiseSpline` — one spline per dimension with its knots learned directly.

References:
  Durkan, Bekasov, Murray, Papamakarios (2019). Neural Spline Flows. NeurIPS.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from genjax import checks
from genjax.flows.bijectors.base import Bijector
from genjax.flows.bijectors.couplings import Coupling

Params = Any

__all__ = ["spline_params", "rational_quadratic_spline", "SplineCoupling", "ElementwiseSpline"]


def spline_params(
    unnormalized: jax.Array,
    *,
    bound: float,
    min_width: float = 1e-3,
    min_height: float = 1e-3,
    min_derivative: float = 1e-3,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Valid spline knots from unconstrained network outputs (Durkan et al. 2019, sec. 3.1).

    widths  = 2B (min_w + (1 - K min_w) softmax(theta_w))       (positive, sum 2B)
    heights = 2B (min_h + (1 - K min_h) softmax(theta_h))
    derivatives = min_d + softplus(theta_d)                     (interior knots, positive)

    Args:
      unnormalized: (..., 3K - 1): ``theta_w (K)``, ``theta_h (K)``, ``theta_d (K - 1)``.
      bound: B > 0, the spline acts on ``[-B, B]``.

    Returns:
      ``widths (..., K)``, ``heights (..., K)``, ``derivatives (..., K - 1)``.
    """
    checks.positive("bound", bound)
    k = (unnormalized.shape[-1] + 1) // 3
    if 3 * k - 1 != unnormalized.shape[-1] or k < 1:
        raise ValueError(f"unnormalized: last axis must be 3K - 1, got {unnormalized.shape}")
    uw, uh, ud = unnormalized[..., :k], unnormalized[..., k : 2 * k], unnormalized[..., 2 * k :]
    widths = 2 * bound * (min_width + (1 - k * min_width) * jax.nn.softmax(uw, axis=-1))
    heights = 2 * bound * (min_height + (1 - k * min_height) * jax.nn.softmax(uh, axis=-1))
    derivatives = min_derivative + jax.nn.softplus(ud)
    return widths, heights, derivatives


def _check_knots(widths: jax.Array, heights: jax.Array, derivatives: jax.Array,
                 bound: float) -> None:
    """ValueError for concrete knots that do not describe a monotone spline on [-B, B]."""
    checks.positive("bound", bound)
    k = jnp.shape(widths)[-1] if jnp.ndim(widths) else 0
    checks.shape("heights", heights, jnp.shape(widths))
    checks.shape("derivatives", derivatives, (*jnp.shape(widths)[:-1], k - 1))
    if not checks.is_concrete((widths, heights, derivatives)):
        return  # traced values cannot be checked; spline_params makes valid ones
    for name, a in (("widths", widths), ("heights", heights)):
        a = np.asarray(a, np.float64)
        if not np.all(a > 0):
            raise ValueError(
                f"{name} must be positive (strictly increasing knots), got min {a.min():.4g}"
            )
        total = a.sum(-1)
        if not np.allclose(total, 2 * bound, rtol=1e-4, atol=0):
            raise ValueError(
                f"{name} must sum to the interval length 2 * bound = {2 * bound}, "
                f"got sums in [{total.min():.6g}, {total.max():.6g}]"
            )
    d = np.asarray(derivatives, np.float64)
    if not np.all(d > 0):
        raise ValueError(f"derivatives must be positive, got min {d.min():.4g}")


def rational_quadratic_spline(
    x: jax.Array,
    widths: jax.Array,
    heights: jax.Array,
    derivatives: jax.Array,
    *,
    bound: float,
    inverse: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """Monotone rational-quadratic spline on ``[-B, B]``, identity outside (linear tails).

    Within bin k, with knots ``(x_k, y_k)``, ``w_k = x_{k+1} - x_k``, ``h_k``, slope
    ``s_k = h_k / w_k``, knot derivatives ``d_k`` (``d_0 = d_K = 1`` so the tails join
    smoothly) and ``xi = (x - x_k) / w_k`` (Durkan et al. 2019, eqs. 4-6):

        y = y_k + h_k [s_k xi^2 + d_k xi (1 - xi)] / [s_k + (d_{k+1} + d_k - 2 s_k) xi (1 - xi)]
        dy/dx = s_k^2 [d_{k+1} xi^2 + 2 s_k xi (1 - xi) + d_k (1 - xi)^2]
                / [s_k + (d_{k+1} + d_k - 2 s_k) xi (1 - xi)]^2

    and the inverse is the root in [0, 1] of a quadratic ``a xi^2 + b xi + c = 0``
    (Appendix A, eqs. 29-32), taken as ``xi = 2c / (-b - sqrt(b^2 - 4ac))`` (no cancellation).

    Args:
      x: (...) inputs (outputs of the forward map when ``inverse``).
      widths: (..., K) positive bin widths summing to ``2 B``.
      heights: (..., K) positive bin heights summing to ``2 B``.
      derivatives: (..., K - 1) positive derivatives at the interior knots.
      bound: B > 0.
      inverse: evaluate the inverse map instead.

    Returns:
      ``(y (...), log |dy/dx| (...))`` — for ``inverse`` the log-derivative of the inverse map.

    Raises:
      ValueError: concrete knots that are not positive or do not sum to ``2 B``.
    """
    _check_knots(widths, heights, derivatives, bound)
    dtype = jnp.result_type(x, widths)
    x = x.astype(dtype)
    ones = jnp.ones((*derivatives.shape[:-1], 1), dtype)
    d = jnp.concatenate([ones, derivatives.astype(dtype), ones], axis=-1)  # (..., K+1)
    zero = jnp.zeros((*widths.shape[:-1], 1), dtype)
    knot_x = -bound + jnp.concatenate([zero, jnp.cumsum(widths, axis=-1)], axis=-1)
    knot_y = -bound + jnp.concatenate([zero, jnp.cumsum(heights, axis=-1)], axis=-1)
    # Pin the last knot to +B exactly (the cumsum rounds).
    knot_x = knot_x.at[..., -1].set(bound)
    knot_y = knot_y.at[..., -1].set(bound)
    inside = (x > -bound) & (x < bound)
    xc = jnp.clip(x, -bound, bound)  # safe value for the tails (masked out below)
    knots_in = knot_y if inverse else knot_x
    # Bin index: number of interior knots at or below the input, in [0, K - 1].
    k = jnp.sum(xc[..., None] >= knots_in[..., 1:-1], axis=-1)[..., None]

    def take(a):
        return jnp.take_along_axis(a, k, axis=-1)[..., 0]

    xk, yk = take(knot_x), take(knot_y)
    wk, hk = take(jnp.diff(knot_x, axis=-1)), take(jnp.diff(knot_y, axis=-1))
    dk, dk1 = take(d[..., :-1]), take(d[..., 1:])
    sk = hk / wk
    if inverse:
        dy = xc - yk
        a = hk * (sk - dk) + dy * (dk1 + dk - 2 * sk)  # eq. 30
        b = hk * dk - dy * (dk1 + dk - 2 * sk)  # eq. 31
        c = -sk * dy  # eq. 32
        disc = jnp.maximum(b**2 - 4 * a * c, 0.0)
        xi = jnp.clip(2 * c / (-b - jnp.sqrt(disc)), 0.0, 1.0)  # eq. 29, stable root
    else:
        xi = (xc - xk) / wk
    om = xi * (1 - xi)
    denom = sk + (dk1 + dk - 2 * sk) * om
    y_in = yk + hk * (sk * xi**2 + dk * om) / denom  # eq. 4
    x_in = xk + xi * wk
    logd = (
        2 * jnp.log(sk)
        + jnp.log(dk1 * xi**2 + 2 * sk * om + dk * (1 - xi) ** 2)
        - 2 * jnp.log(denom)
    )  # eq. 5
    if inverse:
        return jnp.where(inside, x_in, x), jnp.where(inside, -logd, 0.0)
    return jnp.where(inside, y_in, x), jnp.where(inside, logd, 0.0)


@dataclasses.dataclass(frozen=True)
class SplineCoupling(Coupling):
    """Rational-quadratic spline coupling (RQ-NSF (C), Durkan et al. 2019, sec. 3.3).

        forward:  x_a = z_a,  x_b = RQS(z_b; theta(z_a)),       log|det| = sum log RQS'(z_b)
        inverse:  z_a = x_a,  z_b = RQS^{-1}(x_b; theta(x_a)),  log|det| = -sum log RQS'(z_b)

    elementwise on ``[-B, B]``, the identity outside; ``theta`` is the conditioner's
    ``3K - 1`` numbers per transformed entry (:func:`spline_params`). Vector events only.

    Args:
      event_shape: ``(dim,)``, dim even.
      hidden_sizes: conditioner widths.
      swap: condition on the second half.
      num_bins: K >= 1.
      bound: B > 0.

    Example:
      >>> b = SplineCoupling((4,), hidden_sizes=(8,), num_bins=4)
      >>> params, z = b.init(jax.random.key(0)), jnp.full((2, 4), 0.5)
      >>> x, log_det = b.forward(params, z)
      >>> bool(jnp.allclose(b.inverse(params, x)[0], z, atol=1e-5))
      True
    """

    num_bins: int = 8
    bound: float = 3.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.event_shape) != 1:
            raise ValueError(f"event_shape: SplineCoupling takes (dim,), got {self.event_shape}")
        checks.positive_int("num_bins", self.num_bins)
        checks.positive("bound", self.bound)

    @property
    def params_per_dim(self) -> int:  # type: ignore[override]
        return 3 * self.num_bins - 1

    def _spline(self, params: Params, va: jax.Array, vb: jax.Array,
                inverse: bool) -> tuple[jax.Array, jax.Array]:
        theta = self.conditioner(params, va)  # (batch, half, 3K - 1)
        w, h, d = spline_params(theta, bound=self.bound)
        y, logd = rational_quadratic_spline(vb, w, h, d, bound=self.bound, inverse=inverse)
        return y, jnp.sum(logd, axis=-1)

    def forward(self, params: Params, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        za, zb = self.split(z)
        xb, ld = self._spline(params, za, zb, inverse=False)
        return self.merge(za, xb), ld

    def inverse(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        xa, xb = self.split(x)
        zb, ld = self._spline(params, xa, xb, inverse=True)
        return self.merge(xa, zb), ld


@dataclasses.dataclass(frozen=True)
class ElementwiseSpline(Bijector):
    """An unconditional rational-quadratic spline per dimension (knots learned directly).

        forward:  x_d = RQS_d(z_d),       log|det| = sum_d log RQS_d'(z_d)
        inverse:  z_d = RQS_d^{-1}(x_d),  log|det| = -sum_d log RQS_d'(z_d)

    Params: ``{"theta": (dim, 3K - 1)}`` unconstrained knots (:func:`spline_params`).

    Args:
      dim: number of dimensions (any, including 1).
      num_bins: K >= 1.
      bound: B > 0.

    Example:
      >>> b = ElementwiseSpline(3, num_bins=4)
      >>> params, z = b.init(jax.random.key(0)), jnp.full((2, 3), 0.5)
      >>> x, log_det = b.forward(params, z)
      >>> bool(jnp.allclose(b.inverse(params, x)[0], z, atol=1e-5)), log_det.shape
      (True, (2,))
    """

    dim: int
    num_bins: int = 8
    bound: float = 3.0

    def __post_init__(self) -> None:
        checks.positive_int("dim", self.dim)
        checks.positive_int("num_bins", self.num_bins)
        checks.positive("bound", self.bound)

    def init(self, key: jax.Array) -> Params:
        # Near-uniform knots with a little jitter: close to the identity, not exactly.
        shape = (self.dim, 3 * self.num_bins - 1)
        return {"theta": 0.01 * jax.random.normal(key, shape)}

    def _call(self, params: Params, v: jax.Array, inverse: bool) -> tuple[jax.Array, jax.Array]:
        w, h, d = spline_params(params["theta"], bound=self.bound)  # (dim, K), (dim, K), ...
        b = v.shape[0]
        w, h, d = (jnp.broadcast_to(a[None], (b, *a.shape)) for a in (w, h, d))  # (b, dim, .)
        y, logd = rational_quadratic_spline(v, w, h, d, bound=self.bound, inverse=inverse)
        return y, jnp.sum(logd, axis=-1)

    def forward(self, params: Params, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self._call(params, z, inverse=False)

    def inverse(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self._call(params, x, inverse=True)
