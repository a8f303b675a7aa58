"""Encoders and decoders for autoencoders and VAEs, as flax.nnx modules used functionally.

Two pairs, one for each kind of input:

* :class:`MLPEncoder` / :class:`MLPDecoder` flatten any data shape (vectors, ``(H, W, C)``
  images) and run a :class:`genjax.nn.MLP` — the networks of Kingma & Welling (2014), §C;
* :class:`ConvEncoder` / :class:`ConvDecoder` take NHWC images whose height and width are
  multiples of 4 (8x8 digits, 28x28 MNIST): two stride-2 3x3 convolutions halve the
  resolution twice, a linear read-out maps the ``(H/4, W/4, c)`` features to the output;
  the decoder mirrors it with stride-2 transposed convolutions (the DCGAN layout of
  Radford et al. 2016, at toy size).

The networks know nothing of the loss: an encoder maps ``(batch, *data_shape)`` to
``(batch, out_features)`` (a VAE asks for ``2 * latent_dim`` and splits mean and
log-variance), a decoder maps ``(batch, in_features)`` to ``(batch, *data_shape)``
unconstrained (logits or means). Shapes that a network cannot take raise ``ValueError``
when it is built and when it is called.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
from flax import nnx

from genjax import checks
from genjax.nn.mlp import MLP


def _check_data_shape(data_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(data_shape)
    if not shape or any(int(s) != s or s < 1 for s in shape):
        raise ValueError(f"data_shape must be a non-empty tuple of integers >= 1, got {shape!r}")
    return tuple(int(s) for s in shape)


def _check_image_shape(image_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(image_shape)
    if len(shape) != 3 or any(int(s) != s or s < 1 for s in shape):
        raise ValueError(f"image_shape must be (H, W, C) with positive integers, got {shape!r}")
    h, w, c = (int(s) for s in shape)
    if h % 4 or w % 4:
        raise ValueError(
            f"image_shape {shape!r}: height and width must be multiples of 4 (two stride-2 "
            "stages), e.g. (8, 8, 1) or (28, 28, 1)"
        )
    return h, w, c


def _check_input(x: jax.Array, trailing: tuple[int, ...], name: str) -> None:
    checks.shape(name, x, ("batch", *trailing))


class MLPEncoder(nnx.Module):
    """``(batch, *data_shape) -> (batch, out_features)``: flatten, then an MLP.

    Args:
      data_shape: shape of one example, e.g. ``(D,)`` or ``(H, W, C)``.
      hidden_sizes: hidden widths; empty gives an affine map (the linear encoder).
      out_features: output width (``2 * latent_dim`` for a Gaussian encoder).
      rngs: initialisation only.
      activation: hidden nonlinearity.

    Example:
      >>> enc = MLPEncoder((4, 4, 1), (8,), 3, rngs=nnx.Rngs(0))
      >>> enc(jnp.zeros((2, 4, 4, 1))).shape
      (2, 3)
    """

    def __init__(
        self,
        data_shape: Sequence[int],
        hidden_sizes: Sequence[int],
        out_features: int,
        *,
        rngs: nnx.Rngs,
        activation: Callable[[jax.Array], jax.Array] = nnx.silu,
    ):
        self.data_shape = _check_data_shape(data_shape)
        out_features = checks.positive_int("out_features", out_features)
        self.net = MLP(
            math.prod(self.data_shape), hidden_sizes, out_features, rngs=rngs, activation=activation
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: (batch, *data_shape) -> (batch, out_features)."""
        _check_input(x, self.data_shape, "x")
        return self.net(x.reshape(x.shape[0], -1))  # (batch, prod(data_shape))


class MLPDecoder(nnx.Module):
    """``(batch, in_features) -> (batch, *data_shape)``: an MLP, then a reshape.

    Args:
      in_features: latent width.
      hidden_sizes: hidden widths; empty gives an affine map (the linear decoder).
      data_shape: shape of one output example.
      rngs: initialisation only.
      activation: hidden nonlinearity.

    Example:
      >>> dec = MLPDecoder(3, (8,), (4, 4, 1), rngs=nnx.Rngs(0))
      >>> dec(jnp.zeros((2, 3))).shape
      (2, 4, 4, 1)
    """

    def __init__(
        self,
        in_features: int,
        hidden_sizes: Sequence[int],
        data_shape: Sequence[int],
        *,
        rngs: nnx.Rngs,
        activation: Callable[[jax.Array], jax.Array] = nnx.silu,
    ):
        self.in_features = checks.positive_int("in_features", in_features)
        self.data_shape = _check_data_shape(data_shape)
        self.net = MLP(
            self.in_features, hidden_sizes, math.prod(self.data_shape), rngs=rngs,
            activation=activation,
        )

    def __call__(self, z: jax.Array) -> jax.Array:
        """z: (batch, in_features) -> (batch, *data_shape), unconstrained."""
        _check_input(z, (self.in_features,), "z")
        return self.net(z).reshape(z.shape[0], *self.data_shape)


class ConvEncoder(nnx.Module):
    """``(batch, H, W, C) -> (batch, out_features)`` with two stride-2 convolutions.

    ``H, W`` must be multiples of 4: ``(H, W) -> (H/2, W/2) -> (H/4, W/4)``, then a linear
    read-out of the flattened features.

    Args:
      image_shape: ``(H, W, C)``.
      out_features: output width.
      channels: the two convolutions' widths.
      rngs: initialisation only.

    Example:
      >>> enc = ConvEncoder((8, 8, 1), 3, channels=(4, 8), rngs=nnx.Rngs(0))
      >>> enc(jnp.zeros((2, 8, 8, 1))).shape
      (2, 3)
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        out_features: int,
        *,
        channels: tuple[int, int] = (32, 64),
        rngs: nnx.Rngs,
    ):
        self.image_shape = _check_image_shape(image_shape)
        out_features = checks.positive_int("out_features", out_features)
        c1, c2 = (checks.positive_int("channels[i]", c) for c in channels)
        h, w, c = self.image_shape
        self.conv1 = nnx.Conv(c, c1, (3, 3), strides=(2, 2), padding="SAME", rngs=rngs)
        self.conv2 = nnx.Conv(c1, c2, (3, 3), strides=(2, 2), padding="SAME", rngs=rngs)
        self.out = nnx.Linear((h // 4) * (w // 4) * c2, out_features, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: (batch, H, W, C) -> (batch, out_features)."""
        _check_input(x, self.image_shape, "x")
        h = nnx.silu(self.conv1(x))  # (B, H/2, W/2, c1)
        h = nnx.silu(self.conv2(h))  # (B, H/4, W/4, c2)
        return self.out(h.reshape(h.shape[0], -1))  # (B, out_features)


class ConvDecoder(nnx.Module):
    """``(batch, in_features) -> (batch, H, W, C)``, the mirror of :class:`ConvEncoder`.

    A linear map to ``(H/4, W/4, c1)`` features, two stride-2 transposed convolutions to
    ``(H, W, c2)``, and a 3x3 convolution to ``C`` unconstrained output channels.

    Args:
      in_features: latent width.
      image_shape: ``(H, W, C)``; ``H, W`` multiples of 4.
      channels: the transposed convolutions' widths.
      rngs: initialisation only.

    Example:
      >>> dec = ConvDecoder(3, (8, 8, 1), channels=(8, 4), rngs=nnx.Rngs(0))
      >>> dec(jnp.zeros((2, 3))).shape
      (2, 8, 8, 1)
    """

    def __init__(
        self,
        in_features: int,
        image_shape: Sequence[int],
        *,
        channels: tuple[int, int] = (64, 32),
        rngs: nnx.Rngs,
    ):
        self.in_features = checks.positive_int("in_features", in_features)
        self.image_shape = _check_image_shape(image_shape)
        c1, c2 = (checks.positive_int("channels[i]", c) for c in channels)
        h, w, c = self.image_shape
        self.c1 = c1
        self.inp = nnx.Linear(self.in_features, (h // 4) * (w // 4) * c1, rngs=rngs)
        self.up1 = nnx.ConvTranspose(c1, c2, (3, 3), strides=(2, 2), padding="SAME", rngs=rngs)
        self.up2 = nnx.ConvTranspose(c2, c2, (3, 3), strides=(2, 2), padding="SAME", rngs=rngs)
        self.out = nnx.Conv(c2, c, (3, 3), padding="SAME", rngs=rngs)

    def __call__(self, z: jax.Array) -> jax.Array:
        """z: (batch, in_features) -> (batch, H, W, C), unconstrained."""
        _check_input(z, (self.in_features,), "z")
        h, w, _ = self.image_shape
        f = nnx.silu(self.inp(z)).reshape(z.shape[0], h // 4, w // 4, self.c1)  # (B, H/4, W/4, c1)
        f = nnx.silu(self.up1(f))  # (B, H/2, W/2, c2)
        f = nnx.silu(self.up2(f))  # (B, H, W, c2)
        return self.out(f)  # (B, H, W, C)
