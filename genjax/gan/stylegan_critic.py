"""A small StyleGAN2-style discriminator, optionally spectrally normalised.

Karras et al. (2020), fig. 7c (the residual discriminator), without the minibatch standard
deviation layer; with ``spectral_norm``, every layer is a :class:`genjax.gan.SpectralNorm`
(Miyato et al. 2018) whose power-iteration vector ``u`` :func:`genjax.gan.gan_trainer`
carries in its state.

References:
  Karras et al. (2020), "Analyzing and Improving the Image Quality of StyleGAN", CVPR.
  Miyato, Kataoka, Koyama & Yoshida (2018), "Spectral Normalization for GANs", ICLR.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
from flax import nnx

from genjax import checks
from genjax.gan.spectral import SpectralNorm

LEAK = 0.2  # leaky-ReLU slope, as in the generator
GAIN = math.sqrt(2.0)  # StyleGAN2's activation gain


def _act(x: jax.Array) -> jax.Array:
    return GAIN * jax.nn.leaky_relu(x, LEAK)  # sqrt(2) lrelu_0.2


def _apply(layer: nnx.Module, x: jax.Array) -> jax.Array:
    # spectral norm with the stored u: the trainer advances u (genjax.gan.step)
    return layer(x, update=False) if isinstance(layer, SpectralNorm) else layer(x)


class StyleGANDiscriminator(nnx.Module):
    """A small StyleGAN2-style critic ``x (B, H, W, C) -> logits (B,)``.

    ``fromRGB`` (1x1 conv), then per resolution from ``H`` down to ``start_resolution``:
    two 3x3 convolutions and 2x2 average pooling, with the residual ``(skip + main) /
    sqrt(2)`` (StyleGAN2's resnet discriminator, fig. 7c); a dense layer and the logit. The
    minibatch standard deviation layer is left out: it couples the examples, and R1 and the
    gradient penalty need each example's own gradient. With ``spectral_norm``, every
    convolution and dense layer is a :class:`genjax.gan.SpectralNorm` (Miyato et al. 2018)
    whose ``u`` the trainer carries.

    Args:
      image_shape: ``(H, H, C)``, ``H = start_resolution * 2^m``.
      channels: feature channels.
      start_resolution: the side at which the dense head starts.
      spectral_norm: wrap every layer in spectral normalisation.
      rngs: initialisation only.

    Example:
      >>> d = StyleGANDiscriminator((8, 8, 1), channels=2, spectral_norm=True,
      ...                           rngs=nnx.Rngs(0))
      >>> d(jnp.zeros((3, 8, 8, 1))).shape
      (3,)
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        *,
        channels: int = 32,
        start_resolution: int = 4,
        spectral_norm: bool = False,
        rngs: nnx.Rngs,
    ):
        c = checks.positive_int("channels", channels)
        r0 = checks.positive_int("start_resolution", start_resolution)
        shape = tuple(int(s) for s in image_shape)
        doublings = math.log2(shape[0] / r0) if len(shape) == 3 and shape[0] >= r0 else -1.0
        if len(shape) != 3 or shape[0] != shape[1] or min(shape) < 1 or doublings != int(doublings):
            raise ValueError(
                f"image_shape must be (H, H, C) with H = start_resolution * 2^m "
                f"(start_resolution={r0}), got {tuple(image_shape)}"
            )
        self.spectral = bool(spectral_norm)

        def wrap(layer):
            return SpectralNorm(layer, rngs=rngs) if self.spectral else layer

        self.from_rgb = wrap(nnx.Conv(shape[2], c, (1, 1), rngs=rngs))
        blocks = [
            (
                wrap(nnx.Conv(c, c, (3, 3), padding="SAME", rngs=rngs)),
                wrap(nnx.Conv(c, c, (3, 3), padding="SAME", rngs=rngs)),
            )
            for _ in range(int(doublings))
        ]
        self.blocks = nnx.List([nnx.List(pair) for pair in blocks])
        self.head = wrap(nnx.Linear(r0 * r0 * c, c, rngs=rngs))
        self.out = wrap(nnx.Linear(c, 1, rngs=rngs))

    def __call__(self, x: jax.Array) -> jax.Array:
        """``x (B, H, W, C) -> (B,)`` logits."""
        B = x.shape[0]
        h = _act(_apply(self.from_rgb, x))  # (B, H, W, c)
        for conv1, conv2 in self.blocks:
            main = _act(_apply(conv2, _act(_apply(conv1, h))))
            h = nnx.avg_pool((h + main) / GAIN, (2, 2), strides=(2, 2))  # (B, H/2, W/2, c)
        h = _act(_apply(self.head, h.reshape(B, -1)))  # (B, c)
        return _apply(self.out, h)[:, 0]
