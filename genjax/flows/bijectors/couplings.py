"""Coupling layers: NICE's additive and RealNVP's affine coupling.

A coupling layer splits its input in two halves along the last axis, ``z = [z_a, z_b]``,
leaves the conditioning half ``z_a`` as it is and transforms the other elementwise with
parameters computed from ``z_a`` by a network (the *conditioner*). Its Jacobian is block
triangular, so the log-determinant is the sum of the elementwise log-derivatives:

* :class:`AdditiveCoupling` — NICE (Dinh et al. 2015, eq. 5):
  ``x_b = z_b + m(z_a)``, log-det 0.
* :class:`AffineCoupling` — RealNVP (Dinh et al. 2017, eqs. 7-8):
  ``x_b = z_b * exp(s(z_a)) + t(z_a)``, ``s = c tanh(s_raw / c)`` soft-clamped to ``(-c, c)``
  for stability (Glow and later flows clamp the same way); log-det ``sum s``.

Vectors ``(batch, dim)`` are split in halves along the last axis with an MLP conditioner;
images ``(batch, H, W, C)`` along channels with Glow's convolutional one (sec. 3.3). The
conditioner's last layer starts at zero, so every coupling starts as the identity (Glow's and
NSF's choice). Params: ``{"net": conditioner}``, the flax.nnx module itself.

:class:`Coupling` is the shared split / merge / conditioner; the spline coupling of
:mod:`genjax.flows.bijectors.splines` builds on it too.

References:
  Dinh, Krueger, Bengio (2015). NICE: Non-linear Independent Components Estimation.
  Dinh, Sohl-Dickstein, Bengio (2017). Density estimation using Real NVP. ICLR.
  Kingma, Dhariwal (2018). Glow: Generative Flow with Invertible 1x1 Convolutions. NeurIPS.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from genjax.flows.bijectors.base import Bijector, sum_except_batch
from genjax.nn.mlp import MLP

Params = Any

__all__ = ["ConvConditioner", "Coupling", "AdditiveCoupling", "AffineCoupling"]


class ConvConditioner(nnx.Module):
    """Glow's coupling network NN(): conv3x3 - ReLU - conv1x1 - ReLU - zero-init conv3x3.

    ``(B, H, W, c_in) -> (B, H, W, c_out)``; the last convolution starts at zero.

    Example:
      >>> net = ConvConditioner(2, 8, 4, rngs=nnx.Rngs(0))
      >>> net(jnp.zeros((1, 4, 4, 2))).shape
      (1, 4, 4, 4)
    """

    def __init__(self, c_in: int, hidden: int, c_out: int, *, rngs: nnx.Rngs):
        self.c1 = nnx.Conv(c_in, hidden, (3, 3), padding="SAME", rngs=rngs)
        self.c2 = nnx.Conv(hidden, hidden, (1, 1), padding="SAME", rngs=rngs)
        self.c3 = nnx.Conv(hidden, c_out, (3, 3), padding="SAME", rngs=rngs)
        self.c3.kernel[...] = jnp.zeros_like(self.c3.kernel[...])  # start at the identity

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.c3(nnx.relu(self.c2(nnx.relu(self.c1(x)))))


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
class Coupling(Bijector):
    """Shared split / merge / conditioner of the coupling layers.

    ``z = [z_1, z_2]`` along the last axis (halves); the conditioning half ``z_a`` is ``z_1``
    (``z_2`` when ``swap``), the transformed half ``z_b`` the other one. The conditioner
    maps ``z_a (batch, ..., half)`` to ``params_per_dim`` numbers per transformed entry.
    """

    event_shape: tuple[int, ...]  # (dim,) or (H, W, C)
    hidden_sizes: tuple[int, ...] = (64, 64)  # MLP widths; images use hidden_sizes[0] channels
    swap: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "event_shape", _check_shape(self.event_shape))
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(f"hidden_sizes must be widths >= 1, got {self.hidden_sizes}")

    params_per_dim = 2

    @property
    def half(self) -> int:
        """Size of each half of the last axis."""
        return self.event_shape[-1] // 2

    def init(self, key: jax.Array) -> Params:
        """``{"net": conditioner}``: an MLP (vectors) or :class:`ConvConditioner` (images)."""
        half, p = self.half, self.params_per_dim
        if len(self.event_shape) == 3:
            return {"net": ConvConditioner(half, self.hidden_sizes[0], half * p,
                                           rngs=nnx.Rngs(key))}
        net = MLP(half, self.hidden_sizes, half * p, rngs=nnx.Rngs(key))
        last = net.layers[-1]
        last.kernel[...] = jnp.zeros_like(last.kernel[...])  # start at the identity
        return {"net": net}

    def split(self, v: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``v (batch, *event_shape) -> (v_a, v_b)``, each ``(batch, ..., half)``."""
        if v.shape[1:] != self.event_shape:
            raise ValueError(f"input must have shape (batch, *{self.event_shape}), got {v.shape}")
        v1, v2 = v[..., : self.half], v[..., self.half :]
        return (v2, v1) if self.swap else (v1, v2)

    def merge(self, va: jax.Array, vb: jax.Array) -> jax.Array:
        """The inverse of :meth:`split`."""
        return jnp.concatenate((vb, va) if self.swap else (va, vb), axis=-1)

    def conditioner(self, params: Params, va: jax.Array) -> jax.Array:
        """``(batch, ..., half) -> (batch, ..., half, params_per_dim)``."""
        out = params["net"](va)  # (batch, ..., half * P)
        return out.reshape(*va.shape, self.params_per_dim)


@dataclasses.dataclass(frozen=True)
class AdditiveCoupling(Coupling):
    """NICE's additive coupling (Dinh et al. 2015, eq. 5).

        forward:  x_a = z_a,  x_b = z_b + m(z_a),    log|det| = 0
        inverse:  z_a = x_a,  z_b = x_b - m(x_a),    log|det| = 0

    Args:
      event_shape: ``(dim,)`` (MLP conditioner ``m``) or ``(H, W, C)`` (conv conditioner);
        the last axis must be even.
      hidden_sizes: conditioner widths.
      swap: condition on the second half instead of the first.

    Example:
      >>> b = AdditiveCoupling((4,), hidden_sizes=(8,))
      >>> params, z = b.init(jax.random.key(0)), jnp.ones((2, 4))
      >>> x, log_det = b.forward(params, z)
      >>> bool(jnp.allclose(b.inverse(params, x)[0], z, atol=1e-6)), log_det.tolist()
      (True, [0.0, 0.0])
    """

    params_per_dim = 1

    def forward(self, params: Params, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        za, zb = self.split(z)
        xb = zb + self.conditioner(params, za)[..., 0]  # eq. 5
        return self.merge(za, xb), jnp.zeros(z.shape[0], z.dtype)

    def inverse(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        xa, xb = self.split(x)
        zb = xb - self.conditioner(params, xa)[..., 0]
        return self.merge(xa, zb), jnp.zeros(x.shape[0], x.dtype)


@dataclasses.dataclass(frozen=True)
class AffineCoupling(Coupling):
    """RealNVP's affine coupling (Dinh et al. 2017, eqs. 7-8) with a soft-clamped scale.

        forward:  x_a = z_a,  x_b = z_b * exp(s) + t,     log|det| = sum s
        inverse:  z_a = x_a,  z_b = (x_b - t) * exp(-s),  log|det| = -sum s

    with ``(t, s_raw) = NN(z_a)`` and ``s = c tanh(s_raw / c)`` (bounded, so exp(s) can
    neither overflow nor vanish; ``s ~ s_raw`` near 0).

    Args:
      event_shape: ``(dim,)`` or ``(H, W, C)``; the last axis must be even.
      hidden_sizes: conditioner widths.
      swap: condition on the second half.
      scale_clamp: c > 0.

    Example:
      >>> b = AffineCoupling((4,), hidden_sizes=(8,))
      >>> params, z = b.init(jax.random.key(0)), jnp.ones((2, 4))
      >>> x, log_det = b.forward(params, z)
      >>> z_back, inv_log_det = b.inverse(params, x)
      >>> bool(jnp.allclose(z_back, z, atol=1e-5)), bool(jnp.allclose(inv_log_det, -log_det))
      (True, True)
    """

    scale_clamp: float = 3.0

    def _shift_log_scale(self, params: Params, va: jax.Array) -> tuple[jax.Array, jax.Array]:
        out = self.conditioner(params, va)
        c = self.scale_clamp
        return out[..., 0], c * jnp.tanh(out[..., 1] / c)  # t, s in (-c, c)

    def forward(self, params: Params, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        za, zb = self.split(z)
        t, s = self._shift_log_scale(params, za)
        xb = zb * jnp.exp(s) + t  # eq. 7
        return self.merge(za, xb), sum_except_batch(s)

    def inverse(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        xa, xb = self.split(x)
        t, s = self._shift_log_scale(params, xa)
        zb = (xb - t) * jnp.exp(-s)  # eq. 8
        return self.merge(xa, zb), -sum_except_batch(s)
