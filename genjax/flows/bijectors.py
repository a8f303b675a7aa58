"""Bijectors of the discrete normalizing flows, each with forward, inverse and both
log-determinants.

Convention (DESIGN.md, as distrax/TFP): ``forward`` maps base noise ``z`` to data ``x`` (the
sampling direction), ``inverse`` maps data to noise, and a flow's density is

    log p(x) = log N(f^{-1}(x); 0, I) + log |det d f^{-1}(x) / dx|.

Every bijector is a frozen dataclass holding only static configuration (so it is hashable
and can be a static argument of ``jax.jit``) with one uniform interface:

    init(key) -> params                         a pytree of float arrays (trainable)
    forward(params, z) -> (x, log_det)          log_det = log |det dx/dz|, shape (batch,)
    inverse(params, x) -> (z, log_det)          log_det = log |det dz/dx| = -forward's
    data_init(params, x) -> (params, z)         data-dependent initialisation (ActNorm),
                                                 then the inverse of ``x``

Inputs carry a leading batch axis: ``(batch, dim)`` for vector bijectors, ``(batch, H, W, C)``
(NHWC) for image ones. Conditioner networks are flax.nnx modules used functionally: their
``nnx.split`` state sits in ``params``, their graph is rebuilt (cached) from the static
configuration.

Implemented (forward direction stated; the inverse is closed form unless noted):

* :class:`AdditiveCoupling` — NICE (Dinh et al. 2015, eq. 5): ``x_b = z_b + m(z_a)``, log-det 0.
* :class:`AffineCoupling` — RealNVP (Dinh et al. 2017, eq. 7):
  ``x_b = z_b * exp(s(z_a)) + t(z_a)``, ``s = c tanh(s_raw / c)`` soft-clamped to ``(-c, c)``
  for stability (Glow and later flows clamp the same way); log-det ``sum s``.
  Vectors are split in halves along the last axis, images along channels (Glow, sec. 3.3).
* :class:`SplineCoupling` and :class:`ElementwiseSpline` — rational-quadratic splines
  (Durkan et al. 2019) with identity (linear) tails outside ``[-B, B]``;
  :func:`rational_quadratic_spline` holds the math.
* :class:`ActNorm` — Glow (Kingma & Dhariwal 2018, sec. 3.1): per-channel
  ``x = z * exp(log_scale) + bias``, initialised from data so that ``inverse(x)`` has zero
  mean and unit variance per channel; log-det ``H W sum log_scale``.
* :class:`Conv1x1` — Glow's invertible 1x1 convolution (sec. 3.2), ``x = W z`` per pixel,
  with the LU parameterisation ``W = P L (U + diag(sign * exp(log_s)))`` (eq. 10): P and
  sign fixed, L unit lower, U strictly upper; log-det ``H W sum log_s``. Also usable on
  vectors (one "pixel").
* :class:`Squeeze` and :class:`MultiScale` — RealNVP's squeeze (space-to-depth, sec. 3.6)
  and multi-scale architecture: after each level half of the channels are factored out
  to the base distribution.
* :class:`MAF` and :class:`IAF` — MADE-conditioned autoregressive affine maps
  (Papamakarios et al. 2017; Kingma et al. 2016). MAF's density (inverse) is one MADE pass,
  its sampling (forward) D sequential passes; IAF is the reverse.
* :class:`Planar` and :class:`Radial` — Rezende & Mohamed (2015), eqs. 10-14. Their inverses
  have no closed form in general: the radial one reduces to a quadratic in ``r`` (solved
  exactly); the planar one to a monotone scalar equation along ``w``, solved by bisection.
* :class:`Permutation` — a fixed permutation of the last axis (log-det 0).
* :class:`Chain` — composition; ``forward`` applies ``layers[0]`` first.

References:
  Dinh, Krueger, Bengio (2015). NICE: Non-linear Independent Components Estimation.
  Dinh, Sohl-Dickstein, Bengio (2017). Density estimation using Real NVP. ICLR.
  Kingma, Dhariwal (2018). Glow: Generative Flow with Invertible 1x1 Convolutions. NeurIPS.
  Papamakarios, Pavlakou, Murray (2017). Masked Autoregressive Flow. NeurIPS.
  Kingma, Salimans, Jozefowicz, Chen, Sutskever, Welling (2016). Improved Variational
  Inference with Inverse Autoregressive Flow. NeurIPS.
  Durkan, Bekasov, Murray, Papamakarios (2019). Neural Spline Flows. NeurIPS.
  Rezende, Mohamed (2015). Variational Inference with Normalizing Flows. ICML.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from genjax.nn.made import MADE
from genjax.nn.mlp import MLP

Params = Any

__all__ = [
    "Bijector",
    "AdditiveCoupling",
    "AffineCoupling",
    "SplineCoupling",
    "ElementwiseSpline",
    "ActNorm",
    "Conv1x1",
    "Squeeze",
    "MultiScale",
    "MAF",
    "IAF",
    "Planar",
    "Radial",
    "Permutation",
    "Chain",
    "rational_quadratic_spline",
    "spline_params",
]


def _sum_except_batch(a: jax.Array) -> jax.Array:
    """``(batch, ...) -> (batch,)``."""
    return jnp.sum(a.reshape(a.shape[0], -1), axis=1)


def _bcast(v: jax.Array, ndim: int) -> jax.Array:
    """A last-axis vector ``(C,)`` shaped ``(1, ..., 1, C)`` to broadcast over ``ndim`` axes."""
    return v.reshape((1,) * (ndim - 1) + (-1,))


class Bijector(abc.ABC):
    """The uniform interface (see the module docstring). Subclasses are frozen dataclasses."""

    def init(self, key: jax.Array) -> Params:
        del key
        return {}

    @abc.abstractmethod
    def forward(self, params: Params, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Noise side to data side: ``z (batch, ...) -> (x (batch, ...), log_det (batch,))``."""

    @abc.abstractmethod
    def inverse(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Data side to noise side: ``x -> (z, log_det of the inverse (batch,))``."""

    def data_init(self, params: Params, x: jax.Array) -> tuple[Params, jax.Array]:
        """Data-dependent initialisation from a data-side batch ``x``; default: none.

        Returns ``(params, inverse(params, x)[0])`` so a chain can pass the batch on.
        """
        return params, self.inverse(params, x)[0]


# ----------------------------------------------------------------------------------------
# Conditioner networks (flax.nnx, used functionally)
# ----------------------------------------------------------------------------------------


class _ConvNet(nnx.Module):
    """Glow's coupling network NN(): conv3x3 - ReLU - conv1x1 - ReLU - zero-init conv3x3."""

    def __init__(self, c_in: int, hidden: int, c_out: int, *, rngs: nnx.Rngs):
        self.c1 = nnx.Conv(c_in, hidden, (3, 3), padding="SAME", rngs=rngs)
        self.c2 = nnx.Conv(hidden, hidden, (1, 1), padding="SAME", rngs=rngs)
        self.c3 = nnx.Conv(hidden, c_out, (3, 3), padding="SAME", rngs=rngs)
        self.c3.kernel[...] = jnp.zeros_like(self.c3.kernel[...])  # start at the identity

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.c3(nnx.relu(self.c2(nnx.relu(self.c1(x)))))


def _zero_last(net: MLP) -> MLP:
    # Last layer zero: the coupling starts as the identity (Glow's and NSF's choice).
    net.layers[-1].kernel[...] = jnp.zeros_like(net.layers[-1].kernel[...])
    return net


@functools.cache
def _graphdef(bijector: Bijector) -> nnx.GraphDef:
    """The (static) graph of a bijector's network, built once per configuration."""
    return nnx.split(nnx.eval_shape(lambda: bijector._build(jax.random.key(0))))[0]


def _apply(bijector: Bijector, net_state: Params, h: jax.Array) -> jax.Array:
    return nnx.merge(_graphdef(bijector), net_state)(h)


# ----------------------------------------------------------------------------------------
# Coupling layers
# ----------------------------------------------------------------------------------------


def _check_shape(event_shape: tuple[int, ...]) -> tuple[int, ...]:
    event_shape = tuple(int(s) for s in event_shape)
    if len(event_shape) not in (1, 3) or min(event_shape) < 1:
        raise ValueError(
            f"event_shape must be (dim,) or (H, W, C) with positive sizes, got {event_shape}"
        )
    if event_shape[-1] % 2:
        raise ValueError(
            f"event_shape: a half-split coupling needs an even last axis (dim or channels), "
            f"got {event_shape[-1]} in {event_shape}"
        )
    return event_shape


@dataclasses.dataclass(frozen=True)
class _Coupling(Bijector):
    """Shared split/merge/conditioner of the coupling layers.

    ``z = [z_1, z_2]`` along the last axis (halves); the conditioning half ``z_a`` is ``z_1``
    (``z_2`` when ``swap``), the transformed half ``z_b`` the other one.
    """

    event_shape: tuple[int, ...]  # (dim,) or (H, W, C)
    hidden_sizes: tuple[int, ...] = (64, 64)  # MLP widths; images use hidden_sizes[0] channels
    swap: bool = False

    def __post_init__(self):
        object.__setattr__(self, "event_shape", _check_shape(self.event_shape))
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(f"hidden_sizes must be widths >= 1, got {self.hidden_sizes}")

    params_per_dim = 2

    @property
    def _half(self) -> int:
        return self.event_shape[-1] // 2

    def _build(self, key: jax.Array) -> nnx.Module:
        half, p = self._half, self.params_per_dim
        if len(self.event_shape) == 3:
            return _ConvNet(half, self.hidden_sizes[0], half * p, rngs=nnx.Rngs(key))
        return _zero_last(MLP(half, self.hidden_sizes, half * p, rngs=nnx.Rngs(key)))

    def init(self, key: jax.Array) -> Params:
        return {"net": nnx.split(self._build(key))[1]}

    def _split(self, v: jax.Array) -> tuple[jax.Array, jax.Array]:
        if v.shape[1:] != self.event_shape:
            raise ValueError(f"input must have shape (batch, *{self.event_shape}), got {v.shape}")
        v1, v2 = v[..., : self._half], v[..., self._half :]
        return (v2, v1) if self.swap else (v1, v2)

    def _merge(self, va: jax.Array, vb: jax.Array) -> jax.Array:
        return jnp.concatenate((vb, va) if self.swap else (va, vb), axis=-1)

    def _conditioner(self, params: Params, va: jax.Array) -> jax.Array:
        """``(batch, ..., half) -> (batch, ..., half, params_per_dim)``."""
        out = _apply(self, params["net"], va)  # (batch, ..., half * P)
        return out.reshape(*va.shape, self.params_per_dim)


@dataclasses.dataclass(frozen=True)
class AdditiveCoupling(_Coupling):
    """NICE's additive coupling (Dinh et al. 2015, eq. 5).

    forward:  x_a = z_a,  x_b = z_b + m(z_a);   inverse: z_b = x_b - m(x_a);  log-dets 0.

    Args:
      event_shape: ``(dim,)`` (MLP conditioner ``m``) or ``(H, W, C)`` (conv conditioner);
        the last axis must be even.
      hidden_sizes: conditioner widths.
      swap: condition on the second half instead of the first.
    """

    params_per_dim = 1

    def forward(self, params, z):
        za, zb = self._split(z)
        xb = zb + self._conditioner(params, za)[..., 0]  # eq. 5
        return self._merge(za, xb), jnp.zeros(z.shape[0], z.dtype)

    def inverse(self, params, x):
        xa, xb = self._split(x)
        zb = xb - self._conditioner(params, xa)[..., 0]
        return self._merge(xa, zb), jnp.zeros(x.shape[0], x.dtype)


@dataclasses.dataclass(frozen=True)
class AffineCoupling(_Coupling):
    """RealNVP's affine coupling (Dinh et al. 2017, eqs. 7-8) with a soft-clamped scale.

    forward:  x_a = z_a,  x_b = z_b * exp(s) + t,   log|det| = sum s
    inverse:  z_b = (x_b - t) * exp(-s),             log|det| = -sum s
    with ``(t, s_raw) = NN(z_a)`` and ``s = c tanh(s_raw / c)`` (bounded, so exp(s) can
    neither overflow nor vanish; ``s ~ s_raw`` near 0).

    Args:
      event_shape: ``(dim,)`` or ``(H, W, C)``; the last axis must be even.
      hidden_sizes: conditioner widths.
      swap: condition on the second half.
      scale_clamp: c > 0.
    """

    scale_clamp: float = 3.0

    def _shift_log_scale(self, params, va):
        out = self._conditioner(params, va)
        c = self.scale_clamp
        return out[..., 0], c * jnp.tanh(out[..., 1] / c)  # t, s in (-c, c)

    def forward(self, params, z):
        za, zb = self._split(z)
        t, s = self._shift_log_scale(params, za)
        xb = zb * jnp.exp(s) + t  # eq. 7
        return self._merge(za, xb), _sum_except_batch(s)

    def inverse(self, params, x):
        xa, xb = self._split(x)
        t, s = self._shift_log_scale(params, xa)
        zb = (xb - t) * jnp.exp(-s)  # eq. 8
        return self._merge(xa, zb), -_sum_except_batch(s)


# ----------------------------------------------------------------------------------------
# Rational-quadratic splines (Durkan et al. 2019)
# ----------------------------------------------------------------------------------------


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
    k = (unnormalized.shape[-1] + 1) // 3
    if 3 * k - 1 != unnormalized.shape[-1] or k < 1:
        raise ValueError(f"unnormalized: last axis must be 3K - 1, got {unnormalized.shape}")
    uw, uh, ud = unnormalized[..., :k], unnormalized[..., k : 2 * k], unnormalized[..., 2 * k :]
    widths = 2 * bound * (min_width + (1 - k * min_width) * jax.nn.softmax(uw, axis=-1))
    heights = 2 * bound * (min_height + (1 - k * min_height) * jax.nn.softmax(uh, axis=-1))
    derivatives = min_derivative + jax.nn.softplus(ud)
    return widths, heights, derivatives


def _check_knots(widths, heights, derivatives, bound) -> None:
    """ValueError for concrete knots that do not describe a monotone spline on [-B, B]."""
    if any(isinstance(a, jax.core.Tracer) for a in (widths, heights, derivatives)):
        return  # traced values cannot be checked; spline_params makes valid ones
    if not bound > 0:
        raise ValueError(f"bound must be > 0, got {bound}")
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
class SplineCoupling(_Coupling):
    """Rational-quadratic spline coupling (RQ-NSF (C), Durkan et al. 2019, sec. 3.3).

    forward: x_a = z_a, x_b = RQS(z_b; theta(z_a)) elementwise on [-B, B], identity outside;
    log|det| = sum log RQS'(z_b). Vector events only.

    Args:
      event_shape: ``(dim,)``, dim even.
      hidden_sizes: conditioner widths.
      swap: condition on the second half.
      num_bins: K >= 1.
      bound: B > 0.
    """

    num_bins: int = 8
    bound: float = 3.0

    def __post_init__(self):
        super().__post_init__()
        if len(self.event_shape) != 1:
            raise ValueError(f"event_shape: SplineCoupling takes (dim,), got {self.event_shape}")
        if int(self.num_bins) != self.num_bins or self.num_bins < 1:
            raise ValueError(f"num_bins must be an integer >= 1, got {self.num_bins!r}")
        if not self.bound > 0:
            raise ValueError(f"bound must be > 0, got {self.bound}")

    @property
    def params_per_dim(self) -> int:  # type: ignore[override]
        return 3 * self.num_bins - 1

    def _spline(self, params, va, vb, inverse):
        theta = self._conditioner(params, va)  # (batch, half, 3K - 1)
        w, h, d = spline_params(theta, bound=self.bound)
        y, logd = rational_quadratic_spline(vb, w, h, d, bound=self.bound, inverse=inverse)
        return y, jnp.sum(logd, axis=-1)

    def forward(self, params, z):
        za, zb = self._split(z)
        xb, ld = self._spline(params, za, zb, inverse=False)
        return self._merge(za, xb), ld

    def inverse(self, params, x):
        xa, xb = self._split(x)
        zb, ld = self._spline(params, xa, xb, inverse=True)
        return self._merge(xa, zb), ld


@dataclasses.dataclass(frozen=True)
class ElementwiseSpline(Bijector):
    """An unconditional rational-quadratic spline per dimension (parameters learned directly).

    Args:
      dim: number of dimensions (any, including 1).
      num_bins: K >= 1.
      bound: B > 0.
    """

    dim: int
    num_bins: int = 8
    bound: float = 3.0

    def init(self, key):
        # Near-uniform knots with a little jitter: close to the identity, not exactly.
        shape = (self.dim, 3 * self.num_bins - 1)
        return {"theta": 0.01 * jax.random.normal(key, shape)}

    def _call(self, params, v, inverse):
        w, h, d = spline_params(params["theta"], bound=self.bound)  # (dim, K) ...
        b = v.shape[0]
        w, h, d = (jnp.broadcast_to(a[None], (b, *a.shape)) for a in (w, h, d))
        y, logd = rational_quadratic_spline(v, w, h, d, bound=self.bound, inverse=inverse)
        return y, jnp.sum(logd, axis=-1)

    def forward(self, params, z):
        return self._call(params, z, inverse=False)

    def inverse(self, params, x):
        return self._call(params, x, inverse=True)


# ----------------------------------------------------------------------------------------
# Glow: ActNorm, invertible 1x1 convolution, squeeze, multi-scale
# ----------------------------------------------------------------------------------------


def _positions(v: jax.Array) -> int:
    """Spatial positions per example (1 for vectors, H W for images)."""
    return math.prod(v.shape[1:-1])


@dataclasses.dataclass(frozen=True)
class ActNorm(Bijector):
    """Activation normalisation (Kingma & Dhariwal 2018, sec. 3.1, Table 1).

    forward:  x = z * exp(log_scale) + bias           log|det| = P sum log_scale
    inverse:  z = (x - bias) * exp(-log_scale)        log|det| = -P sum log_scale
    per channel (last axis), P = spatial positions (H W, or 1 for vectors).
    ``data_init`` sets ``bias = mean(x)``, ``log_scale = log std(x)`` per channel, so the
    inverse (data -> noise) output of the first batch has zero mean and unit variance.

    Args:
      channels: C, size of the last axis.
    """

    channels: int

    def init(self, key):
        del key
        return {"bias": jnp.zeros(self.channels), "log_scale": jnp.zeros(self.channels)}

    def forward(self, params, z):
        ls = params["log_scale"]
        x = z * jnp.exp(_bcast(ls, z.ndim)) + _bcast(params["bias"], z.ndim)
        return x, jnp.full(z.shape[0], _positions(z) * jnp.sum(ls), z.dtype)

    def inverse(self, params, x):
        ls = params["log_scale"]
        z = (x - _bcast(params["bias"], x.ndim)) * jnp.exp(-_bcast(ls, x.ndim))
        return z, jnp.full(x.shape[0], -_positions(x) * jnp.sum(ls), x.dtype)

    def data_init(self, params, x):
        axes = tuple(range(x.ndim - 1))
        mean = jnp.mean(x, axis=axes)
        std = jnp.std(x, axis=axes)
        params = {"bias": mean, "log_scale": jnp.log(std + 1e-6)}
        return params, self.inverse(params, x)[0]


@dataclasses.dataclass(frozen=True)
class Conv1x1(Bijector):
    """Invertible 1x1 convolution (Kingma & Dhariwal 2018, sec. 3.2), optionally LU.

    forward: x[..., :] = W z[..., :] at every position, log|det| = P log|det W|;
    inverse: z = W^{-1} x, log|det| = -P log|det W|.

    LU (eq. 10): ``W = Perm L (U + diag(sign * exp(log_s)))`` with ``Perm`` (the channel
    reversal) and ``sign`` (+1) fixed, L unit lower triangular, U strictly upper; then
    ``log|det W| = sum log_s`` (O(C) instead of O(C^3)), and the inverse is two
    triangular solves. Without LU, W is a free matrix (``slogdet``). Works on vectors too.

    Args:
      channels: C.
      lu: use the LU parameterisation.
    """

    channels: int
    lu: bool = True

    def init(self, key):
        c = self.channels
        if not self.lu:
            q, _ = jnp.linalg.qr(jax.random.normal(key, (c, c)))  # a random rotation
            return {"weight": q}
        k1, k2 = jax.random.split(key)
        # Small random triangular parts: a well-conditioned start near the permutation.
        return {
            "lower": 0.1 * jax.random.normal(k1, (c, c)),
            "upper": 0.1 * jax.random.normal(k2, (c, c)),
            "log_s": jnp.zeros(c),
        }

    def _lu(self, params):
        c = self.channels
        eye = jnp.eye(c, dtype=params["lower"].dtype)
        lower = jnp.tril(params["lower"], -1) + eye  # unit lower triangular L
        upper = jnp.triu(params["upper"], 1) + jnp.diag(jnp.exp(params["log_s"]))  # U + diag(s)
        return lower, upper

    def weight(self, params) -> jax.Array:
        """W ``(C, C)``."""
        if not self.lu:
            return params["weight"]
        lower, upper = self._lu(params)
        return (lower @ upper)[::-1]  # Perm L (U + diag s): Perm reverses the rows

    def _log_abs_det(self, params):
        if not self.lu:
            return jnp.linalg.slogdet(params["weight"])[1]
        return jnp.sum(params["log_s"])  # log|det W| = sum log|s| (det Perm = +-1, det L = 1)

    def forward(self, params, z):
        if z.shape[-1] != self.channels:
            raise ValueError(f"input must have {self.channels} channels, got {z.shape}")
        w = self.weight(params)
        x = jnp.einsum("...c,dc->...d", z, w)  # x_d = sum_c W_dc z_c
        return x, jnp.full(z.shape[0], _positions(z) * self._log_abs_det(params), z.dtype)

    def inverse(self, params, x):
        if x.shape[-1] != self.channels:
            raise ValueError(f"input must have {self.channels} channels, got {x.shape}")
        flat = x.reshape(-1, self.channels).T  # (C, N): one column per position
        if self.lu:
            lower, upper = self._lu(params)
            v = flat[::-1]  # Perm^{-1} x (the reversal is its own inverse)
            v = jax.scipy.linalg.solve_triangular(lower, v, lower=True, unit_diagonal=True)
            v = jax.scipy.linalg.solve_triangular(upper, v, lower=False)
        else:
            v = jnp.linalg.solve(params["weight"], flat)
        z = v.T.reshape(x.shape)
        return z, jnp.full(x.shape[0], -_positions(x) * self._log_abs_det(params), x.dtype)


@dataclasses.dataclass(frozen=True)
class Squeeze(Bijector):
    """RealNVP's squeeze (Dinh et al. 2017, sec. 3.6) as a bijector; log-dets 0.

    inverse (data -> noise, space-to-depth): ``(B, H, W, C) -> (B, H/2, W/2, 4C)``, each
    2x2 block of pixels stacked into channels; forward: depth-to-space, the exact reverse.
    """

    def inverse(self, params, x):
        if x.ndim != 4:
            raise ValueError(f"x must be a batch of images (B, H, W, C), got shape {x.shape}")
        b, h, w, c = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"x: squeeze needs even H and W, got H={h}, W={w}")
        y = x.reshape(b, h // 2, 2, w // 2, 2, c)  # (B, H/2, 2, W/2, 2, C)
        y = y.transpose(0, 1, 3, 2, 4, 5)  # (B, H/2, W/2, 2, 2, C)
        return y.reshape(b, h // 2, w // 2, 4 * c), jnp.zeros(b, x.dtype)

    def forward(self, params, z):
        if z.ndim != 4:
            raise ValueError(f"z must be a batch of images (B, H, W, C), got shape {z.shape}")
        b, h, w, c4 = z.shape
        if c4 % 4:
            raise ValueError(f"z: unsqueeze needs channels divisible by 4, got {c4}")
        y = z.reshape(b, h, w, 2, 2, c4 // 4)  # (B, H, W, 2, 2, C)
        y = y.transpose(0, 1, 3, 2, 4, 5)  # (B, H, 2, W, 2, C)
        return y.reshape(b, 2 * h, 2 * w, c4 // 4), jnp.zeros(b, z.dtype)


@dataclasses.dataclass(frozen=True)
class MultiScale(Bijector):
    """RealNVP/Glow multi-scale architecture (Dinh et al. 2017, sec. 3.6; Glow, Fig. 2).

    inverse (data -> noise), for levels l = 1..L:
        h <- squeeze(h);  h <- levels[l].inverse(h);
        if l < L: (z_l, h) <- split channels in halves, z_l factored out
    and the noise is ``concat(flat(z_1), ..., flat(z_{L-1}), flat(h))`` — a vector of the
    image's size ``H W C``. forward is the reverse. The factored-out halves go straight
    to the standard normal base (RealNVP's choice; Glow's learned split prior is not used).

    Args:
      levels: one bijector per level, acting on that level's squeezed images.
      image_shape: data shape ``(H, W, C)``; H and W divisible by ``2^L``.
    """

    levels: tuple[Bijector, ...]
    image_shape: tuple[int, int, int]

    def __post_init__(self):
        h, w, c = (int(s) for s in self.image_shape)
        n = len(self.levels)
        if n < 1:
            raise ValueError("levels must hold at least one bijector")
        if len(self.image_shape) != 3 or h % 2**n or w % 2**n:
            raise ValueError(
                f"image_shape: H and W must be divisible by 2^levels = {2**n}, "
                f"got {self.image_shape}"
            )
        object.__setattr__(self, "levels", tuple(self.levels))
        object.__setattr__(self, "image_shape", (h, w, c))

    def level_shapes(self) -> list[tuple[int, int, int]]:
        """The squeezed shape each level acts on."""
        h, w, c = self.image_shape
        shapes = []
        for i in range(len(self.levels)):
            h, w, c = h // 2, w // 2, 4 * c
            shapes.append((h, w, c))
            if i < len(self.levels) - 1:
                c //= 2
        return shapes

    def init(self, key):
        keys = jax.random.split(key, len(self.levels))
        return [lvl.init(k) for lvl, k in zip(self.levels, keys, strict=True)]

    def _run_inverse(self, params, x, data_init: bool):
        if x.shape[1:] != self.image_shape:
            raise ValueError(f"x must have shape (batch, *{self.image_shape}), got {x.shape}")
        b = x.shape[0]
        h, zs, log_det, new = x, [], jnp.zeros(b, x.dtype), []
        for i, (lvl, p) in enumerate(zip(self.levels, params, strict=True)):
            h = Squeeze().inverse({}, h)[0]
            if data_init:
                p, h = lvl.data_init(p, h)
                new.append(p)
            else:
                h, ld = lvl.inverse(p, h)
                log_det = log_det + ld
            if i < len(self.levels) - 1:
                c = h.shape[-1] // 2
                zs.append(h[..., :c].reshape(b, -1))  # factored out: (B, h w c/2)
                h = h[..., c:]
        zs.append(h.reshape(b, -1))
        return jnp.concatenate(zs, axis=1), log_det, new  # (B, H W C)

    def inverse(self, params, x):
        z, log_det, _ = self._run_inverse(params, x, data_init=False)
        return z, log_det

    def data_init(self, params, x):
        z, _, new = self._run_inverse(params, x, data_init=True)
        return new, z

    def forward(self, params, z):
        size = math.prod(self.image_shape)
        if z.ndim != 2 or z.shape[1] != size:
            raise ValueError(f"z must have shape (batch, {size}), got {z.shape}")
        b = z.shape[0]
        shapes = self.level_shapes()
        # Sizes of the noise chunks, in the order inverse() concatenates them.
        sizes = [math.prod(s) // 2 for s in shapes[:-1]] + [math.prod(shapes[-1])]
        offsets = np.cumsum([0, *sizes])
        log_det = jnp.zeros(b, z.dtype)
        h = None
        for i in reversed(range(len(self.levels))):
            hh, ww, cc = shapes[i]
            chunk = z[:, offsets[i] : offsets[i + 1]]
            if h is None:
                h = chunk.reshape(b, hh, ww, cc)
            else:
                h = jnp.concatenate([chunk.reshape(b, hh, ww, cc // 2), h], axis=-1)
            h, ld = self.levels[i].forward(params[i], h)
            log_det = log_det + ld
            h = Squeeze().forward({}, h)[0]
        return h, log_det


# ----------------------------------------------------------------------------------------
# Autoregressive: MAF and IAF
# ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Autoregressive(Bijector):
    dim: int
    hidden_sizes: tuple[int, ...] = (64, 64)
    order: tuple[int, ...] | None = None  # MADE input degrees; None = 1..D
    scale_clamp: float = 3.0

    def __post_init__(self):
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))
        if self.order is not None:
            object.__setattr__(self, "order", tuple(int(o) for o in self.order))
        if int(self.dim) != self.dim or self.dim < 1:
            raise ValueError(f"dim must be an integer >= 1, got {self.dim!r}")

    def _build(self, key):
        made = MADE(self.dim, self.hidden_sizes, 2, rngs=nnx.Rngs(key), order=self.order)
        last = made.layers[-1]
        last.kernel[...] = jnp.zeros_like(last.kernel[...])  # start at the identity
        return made

    def init(self, key):
        return {"net": nnx.split(self._build(key))[1]}

    def _shift_log_scale(self, params, u):
        out = _apply(self, params["net"], u)  # (B, D, 2), [:, d] from u_{<d} only
        c = self.scale_clamp
        return out[..., 0], c * jnp.tanh(out[..., 1] / c)

    def _check(self, v):
        if v.ndim != 2 or v.shape[1] != self.dim:
            raise ValueError(f"input must have shape (batch, {self.dim}), got {v.shape}")

    def _affine_parallel(self, params, u):
        """u -> u * exp(alpha(u)) + mu(u): one MADE pass; log-det sum alpha(u)."""
        mu, alpha = self._shift_log_scale(params, u)
        return u * jnp.exp(alpha) + mu, jnp.sum(alpha, axis=-1)

    def _unaffine_parallel(self, params, v):
        """v -> (v - mu(v)) exp(-alpha(v)): one MADE pass; log-det -sum alpha(v)."""
        mu, alpha = self._shift_log_scale(params, v)
        return (v - mu) * jnp.exp(-alpha), -jnp.sum(alpha, axis=-1)

    def _affine_sequential(self, params, z):
        """Solve x = z * exp(alpha(x)) + mu(x) for x: D passes, each fixing one more
        coordinate in the order (output d depends on x_{<d} only), so D iterations of
        ``x <- z exp(alpha(x)) + mu(x)`` from any start give the exact solution."""

        def body(_, x):
            mu, alpha = self._shift_log_scale(params, x)
            return z * jnp.exp(alpha) + mu

        x = jax.lax.fori_loop(0, self.dim, body, jnp.zeros_like(z))
        _, alpha = self._shift_log_scale(params, x)
        return x, jnp.sum(alpha, axis=-1)

    def _unaffine_sequential(self, params, x):
        """Solve z = (x - mu(z)) exp(-alpha(z)) for z (D passes, as above)."""

        def body(_, z):
            mu, alpha = self._shift_log_scale(params, z)
            return (x - mu) * jnp.exp(-alpha)

        z = jax.lax.fori_loop(0, self.dim, body, jnp.zeros_like(x))
        _, alpha = self._shift_log_scale(params, z)
        return z, -jnp.sum(alpha, axis=-1)


@dataclasses.dataclass(frozen=True)
class MAF(_Autoregressive):
    """Masked autoregressive affine layer (Papamakarios et al. 2017, eqs. 2-5).

    inverse (density, one MADE pass):   z_d = (x_d - mu_d(x_{<d})) exp(-alpha_d(x_{<d})),
                                        log|det| = -sum_d alpha_d
    forward (sampling, D MADE passes):  x_d = z_d exp(alpha_d(x_{<d})) + mu_d(x_{<d}),
                                        log|det| = sum_d alpha_d
    ``alpha = c tanh(alpha_raw / c)`` (soft clamp). ``order`` is MADE's input order.

    Args:
      dim: D.
      hidden_sizes: MADE widths (each >= D - 1).
      order: a permutation of ``1..D`` (None: natural).
      scale_clamp: c.
    """

    def forward(self, params, z):
        self._check(z)
        return self._affine_sequential(params, z)

    def inverse(self, params, x):
        self._check(x)
        return self._unaffine_parallel(params, x)


@dataclasses.dataclass(frozen=True)
class IAF(_Autoregressive):
    """Inverse autoregressive affine layer (Kingma et al. 2016, eqs. 10-11).

    forward (sampling, one MADE pass):  x_d = z_d exp(alpha_d(z_{<d})) + mu_d(z_{<d}),
                                        log|det| = sum_d alpha_d
    inverse (density, D MADE passes):   solve the same for z.

    Args: as :class:`MAF`.
    """

    def forward(self, params, z):
        self._check(z)
        return self._affine_parallel(params, z)

    def inverse(self, params, x):
        self._check(x)
        return self._unaffine_sequential(params, x)


# ----------------------------------------------------------------------------------------
# Planar and radial flows (Rezende & Mohamed 2015)
# ----------------------------------------------------------------------------------------


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
    """

    dim: int
    num_bisection: int = 60

    def init(self, key):
        kw, ku = jax.random.split(key)
        return {
            "w": 0.5 * jax.random.normal(kw, (self.dim,)),
            "u": 0.5 * jax.random.normal(ku, (self.dim,)),
            "b": jnp.zeros(()),
        }

    def _u_hat(self, params):
        w, u = params["w"], params["u"]
        wu = jnp.dot(w, u)
        m = -1.0 + jax.nn.softplus(wu)  # m(w^T u) > -1
        return u + (m - wu) * w / jnp.dot(w, w)  # Appendix A.1

    def forward(self, params, z):
        w, b = params["w"], params["b"]
        u_hat = self._u_hat(params)
        a = z @ w + b  # (B,)
        x = z + u_hat[None] * jnp.tanh(a)[:, None]  # eq. 10
        psi = 1 - jnp.tanh(a) ** 2  # h'(a), times w below (eq. 11)
        return x, jnp.log(jnp.abs(1 + psi * jnp.dot(u_hat, w)))  # eq. 12

    def inverse(self, params, x):
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
    """

    dim: int

    def init(self, key):
        return {
            "z0": 0.5 * jax.random.normal(key, (self.dim,)),
            "alpha_raw": jnp.zeros(()),
            "beta_raw": jnp.zeros(()),
        }

    def _alpha_beta(self, params):
        alpha = jax.nn.softplus(params["alpha_raw"])
        return alpha, -alpha + jax.nn.softplus(params["beta_raw"])

    def forward(self, params, z):
        alpha, beta = self._alpha_beta(params)
        diff = z - params["z0"][None]
        r = jnp.sqrt(jnp.sum(diff**2, axis=-1))  # (B,)
        h = 1 / (alpha + r)
        x = z + (beta * h)[:, None] * diff  # eq. 14
        dh = -(h**2)  # h'(r)
        log_det = (self.dim - 1) * jnp.log1p(beta * h) + jnp.log1p(beta * h + beta * dh * r)
        return x, log_det

    def inverse(self, params, x):
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


# ----------------------------------------------------------------------------------------
# Permutation and composition
# ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Permutation(Bijector):
    """A fixed permutation of the last axis: ``x[..., i] = z[..., perm[i]]``; log-dets 0.

    Args:
      perm: a permutation of ``0..D-1``; :meth:`reverse` and :meth:`random` build common ones.
    """

    perm: tuple[int, ...]

    def __post_init__(self):
        perm = tuple(int(p) for p in self.perm)
        if sorted(perm) != list(range(len(perm))):
            raise ValueError(f"perm must be a permutation of 0..{len(perm) - 1}, got {perm}")
        object.__setattr__(self, "perm", perm)

    @classmethod
    def reverse(cls, dim: int) -> Permutation:
        return cls(tuple(range(dim - 1, -1, -1)))

    @classmethod
    def random(cls, seed: int, dim: int) -> Permutation:
        return cls(tuple(int(i) for i in np.random.default_rng(seed).permutation(dim)))

    def forward(self, params, z):
        return z[..., np.asarray(self.perm)], jnp.zeros(z.shape[0], z.dtype)

    def inverse(self, params, x):
        return x[..., np.argsort(self.perm)], jnp.zeros(x.shape[0], x.dtype)


@dataclasses.dataclass(frozen=True)
class Chain(Bijector):
    """Composition: ``forward = layers[-1].forward o ... o layers[0].forward``; the inverse
    runs the layers backwards; log-dets add.

    Args:
      layers: the bijectors, in the order the forward (sampling) pass applies them.
    """

    layers: tuple[Bijector, ...]

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))

    def init(self, key):
        keys = jax.random.split(key, len(self.layers))
        return [layer.init(k) for layer, k in zip(self.layers, keys, strict=True)]

    def forward(self, params, z):
        log_det = jnp.zeros(z.shape[0], z.dtype)
        for layer, p in zip(self.layers, params, strict=True):
            z, ld = layer.forward(p, z)
            log_det = log_det + ld
        return z, log_det

    def inverse(self, params, x):
        log_det = jnp.zeros(x.shape[0], x.dtype)
        for layer, p in zip(reversed(self.layers), reversed(params), strict=True):
            x, ld = layer.inverse(p, x)
            log_det = log_det + ld
        return x, log_det

    def data_init(self, params, x):
        new = list(params)
        for i in reversed(range(len(self.layers))):
            new[i], x = self.layers[i].data_init(params[i], x)
        return new, x
