"""Networks of the energy family (flax.nnx, built eagerly, used functionally).

* :class:`MLPEnergy` -- ``E_theta: R^D -> R`` for 2-D toy data: an MLP with smooth (SiLU)
  activations, so ``grad_x E`` (what Langevin dynamics follows) is continuous.
* :class:`ConvEnergy` -- a small convolutional energy for 8x8 digits (Du & Mordatch 2019
  use a ResNet; three strided 3x3 convolutions suffice at 8x8), SiLU activations.
* :class:`NoiseConditionalScore` -- ``s_theta(x, sigma)`` for annealed Langevin dynamics
  (Song & Ermon 2019): the shared :class:`genjax.nn.MLPDenoiser` conditioned on
  ``log sigma`` and divided by ``sigma`` (Song & Ermon 2020, "Improved techniques for
  training score-based generative models", Technique 3: ``s(x, sigma) = s(x) / sigma``),
  so the network's output has unit scale at every level.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import checks
from genjax.nn import MLPDenoiser

__all__ = ["MLPEnergy", "ConvEnergy", "NoiseConditionalScore"]


class MLPEnergy(nnx.Module):
    """``x (batch, dim) -> E(x) (batch,)``, an MLP with SiLU activations.

    Args:
      dim: input dimension >= 1.
      hidden: hidden widths, each >= 1.
      rngs: ``nnx.Rngs`` for initialisation only.

    Example:
      >>> energy = MLPEnergy(2, (8,), rngs=nnx.Rngs(0))
      >>> energy(jnp.zeros((3, 2))).shape  # one energy per example
      (3,)
    """

    def __init__(self, dim: int, hidden: Sequence[int], *, rngs: nnx.Rngs):
        if len(hidden) < 1:
            raise ValueError(f"hidden must be a non-empty sequence of widths >= 1, got {hidden!r}")
        sizes = (checks.positive_int("dim", dim),
                 *(checks.positive_int(f"hidden[{i}]", h) for i, h in enumerate(hidden)))
        self.layers = nnx.List(
            [nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        )
        self.out = nnx.Linear(sizes[-1], 1, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        h = x
        for layer in self.layers:
            h = nnx.silu(layer(h))  # (batch, width)
        return self.out(h)[:, 0]  # (batch,)


class ConvEnergy(nnx.Module):
    """``x (batch, 8, 8, C) -> E(x) (batch,)``: 3x3 convolutions 8x8 -> 4x4 -> 2x2, then a
    linear read-out.

    Args:
      in_channels: image channels (1 for digits).
      channels: width of the first convolution (the others use ``2 * channels``).
      rngs: ``nnx.Rngs`` for initialisation only.

    Example:
      >>> energy = ConvEnergy(1, 4, rngs=nnx.Rngs(0))
      >>> energy(jnp.zeros((2, 8, 8, 1))).shape
      (2,)
    """

    def __init__(self, in_channels: int = 1, channels: int = 32, *, rngs: nnx.Rngs):
        in_channels = checks.positive_int("in_channels", in_channels)
        c = checks.positive_int("channels", channels)
        self.conv1 = nnx.Conv(in_channels, c, (3, 3), rngs=rngs)  # 8x8
        self.conv2 = nnx.Conv(c, 2 * c, (3, 3), strides=2, rngs=rngs)  # -> 4x4
        self.conv3 = nnx.Conv(2 * c, 2 * c, (3, 3), strides=2, rngs=rngs)  # -> 2x2
        self.out = nnx.Linear(2 * c * 4, 1, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        h = nnx.silu(self.conv1(x))  # (B, 8, 8, c)
        h = nnx.silu(self.conv2(h))  # (B, 4, 4, 2c)
        h = nnx.silu(self.conv3(h))  # (B, 2, 2, 2c)
        return self.out(h.reshape(h.shape[0], -1))[:, 0]  # (B, 8c) -> (B,)


class NoiseConditionalScore(nnx.Module):
    """``(x (batch, dim), sigma (batch,)) -> s(x, sigma) (batch, dim)``.

    ``s = MLPDenoiser(x, log sigma) / sigma`` (Song & Ermon 2020, Technique 3).

    Args:
      dim: data dimension.
      hidden: hidden widths of the MLP.
      time_embed_dim: size of the ``log sigma`` embedding (even).
      rngs: ``nnx.Rngs`` for initialisation only.

    Example:
      >>> score = NoiseConditionalScore(2, (8,), rngs=nnx.Rngs(0))
      >>> score(jnp.zeros((3, 2)), jnp.full(3, 0.5)).shape
      (3, 2)
    """

    def __init__(self, dim: int, hidden: Sequence[int], *, time_embed_dim: int = 32,
                 rngs: nnx.Rngs):  # fmt: skip
        # log sigma in about [-5, 3]; x100 spreads it over the sinusoidal frequencies.
        self.net = MLPDenoiser(dim, hidden, time_embed_dim=time_embed_dim, time_scale=100.0,
                               rngs=rngs)  # fmt: skip

    def __call__(self, x: jax.Array, sigma: jax.Array) -> jax.Array:
        return self.net(x, jnp.log(sigma)) / sigma[:, None]
