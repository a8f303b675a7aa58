"""GAN networks as flax.nnx modules: 2-D MLPs, DCGAN, conditional GAN, StyleGAN parts, CycleGAN.

* :class:`MLPGenerator` / :class:`MLPDiscriminator` — the toy networks of 2-D GAN
  experiments (ring, grid): fully connected, leaky-ReLU in the critic.
* :class:`DCGANGenerator` / :class:`DCGANDiscriminator` — Radford et al. (2016): strided
  (transposed) convolutions instead of pooling, ReLU in the generator with ``tanh`` output,
  leaky ReLU (slope 0.2) in the discriminator, for ``(H, W, C)`` images with ``H, W``
  divisible by 4 (8x8 digits: 2x2 -> 4x4 -> 8x8; 28x28 MNIST: 7x7 -> 14x14 -> 28x28).
  Where DCGAN uses batch normalisation, the generator uses GroupNorm and the discriminator
  none: batch statistics couple the examples, which breaks the per-example gradient of the
  gradient penalty (Gulrajani et al. 2017, sec. 4) and would be hidden state (STYLE.md).
* conditional GAN: with ``num_classes``, the generator reads ``[z, embed(y)]`` (Mirza &
  Osindero 2014, sec. 3.2) and the discriminator is a projection discriminator
  ``l(x, y) = psi(phi(x)) + embed(y)^T phi(x)`` (Miyato & Koyama 2018, eq. 3).
* StyleGAN parts (Karras et al. 2019): :class:`MappingNetwork` ``z -> w`` (pixel
  normalisation of ``z``, then 8 fully connected layers, leaky ReLU 0.2; sec. 2) and
  :class:`AdaIN` — the learned affine map ``A: w -> (y_s, y_b)`` followed by adaptive
  instance normalisation (Huang & Belongie 2017, eq. 8)
  ``AdaIN(x_i, y) = y_{s,i} (x_i - mu(x_i)) / sigma(x_i) + y_{b,i}`` per example and channel.
* :class:`Translator` — CycleGAN's image-to-image generator at toy size (Zhu et al. 2017
  use a ResNet; here: three 3x3 convolutions with a residual connection, ``tanh`` output).

Images are NHWC in ``[-1, 1]``. Discriminators return logits ``(batch,)``.

References:
  Radford, Metz & Chintala (2016), "Unsupervised Representation Learning with Deep
  Convolutional GANs", ICLR.
  Mirza & Osindero (2014), "Conditional Generative Adversarial Nets", arXiv:1411.1784.
  Miyato & Koyama (2018), "cGANs with Projection Discriminator", ICLR.
  Karras, Laine & Aila (2019), "A Style-Based Generator Architecture for GANs", CVPR.
  Huang & Belongie (2017), "Arbitrary Style Transfer in Real-time with Adaptive Instance
  Normalization", ICCV.
  Karras et al. (2018), "Progressive Growing of GANs", ICLR (pixel normalisation, sec. 4.2).
  Zhu et al. (2017), "Unpaired Image-to-Image Translation using Cycle-Consistent
  Adversarial Networks", ICCV.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import checks
from genjax.gan import patch_conv
from genjax.nn import MLP

LEAK = 0.2  # leaky-ReLU slope of DCGAN's discriminator and StyleGAN's mapping network


def _lrelu(x: jax.Array) -> jax.Array:
    return jax.nn.leaky_relu(x, LEAK)


def _check_image_shape(image_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or min(shape) < 1 or shape[0] % 4 or shape[1] % 4:
        raise ValueError(
            f"image_shape must be (H, W, C) with H and W divisible by 4, got {tuple(image_shape)}"
        )
    return shape  # type: ignore[return-value]


# The (transposed) convolutions run as patch products (:mod:`genjax.gan.patch_conv`): the
# same numbers to float32 rounding, but on XLA:CPU the lowering of a transposed convolution
# and of a strided convolution's gradients (convolutions of a zero-dilated input or with a
# dilated kernel) made the DCGAN training step 3-4x slower at 8x8 (genjax/bench/gan.py).


def _conv(layer: nnx.Conv, x: jax.Array) -> jax.Array:
    """``layer(x)`` of a stride-2 "SAME" ``nnx.Conv`` as one patch product."""
    return patch_conv.conv2d(x, layer.kernel[...], layer.bias[...], 2)


def _conv_transpose(layer: nnx.ConvTranspose, x: jax.Array) -> jax.Array:
    """``layer(x)`` of a stride-2 "SAME" ``nnx.ConvTranspose`` as four patch products."""
    return patch_conv.conv_transpose2d(x, layer.kernel[...], layer.bias[...], 2)


def _check_labels(labels, num_classes: int | None, batch: int) -> None:
    if num_classes is None:
        if labels is not None:
            raise ValueError("labels given to an unconditional network (num_classes=None)")
        return
    if labels is None:
        raise ValueError(f"labels (batch,) are required: the network has num_classes={num_classes}")
    checks.shape("labels", labels, (batch,))


# --------------------------------------------------------------------------------------
# 2-D MLPs
# --------------------------------------------------------------------------------------


class MLPGenerator(nnx.Module):
    """``G: z (batch, latent_dim) -> x (batch, data_dim)``, ReLU hidden layers, linear output.

    Args:
      latent_dim: size of ``z``.
      hidden_sizes: widths of the hidden layers.
      data_dim: size of ``x``.
      rngs: initialisation only.

    Example:
      >>> g = MLPGenerator(4, (8,), 2, rngs=nnx.Rngs(0))
      >>> g(jnp.zeros((3, 4))).shape, g.latent_dim
      ((3, 2), 4)
    """

    def __init__(self, latent_dim: int, hidden_sizes: Sequence[int], data_dim: int, *,
                 rngs: nnx.Rngs):
        self.latent_dim = checks.positive_int("latent_dim", latent_dim)
        self.net = MLP(latent_dim, hidden_sizes, data_dim, rngs=rngs, activation=jax.nn.relu)

    def __call__(self, z: jax.Array) -> jax.Array:
        """``z: (batch, latent_dim) -> (batch, data_dim)``."""
        return self.net(z)


class MLPDiscriminator(nnx.Module):
    """``D: x (batch, data_dim) -> logits (batch,)``, leaky-ReLU (0.2) hidden layers.

    Args:
      data_dim: size of ``x``.
      hidden_sizes: widths of the hidden layers.
      rngs: initialisation only.

    Example:
      >>> d = MLPDiscriminator(2, (8,), rngs=nnx.Rngs(0))
      >>> d(jnp.zeros((3, 2))).shape  # one logit per example
      (3,)
    """

    def __init__(self, data_dim: int, hidden_sizes: Sequence[int], *, rngs: nnx.Rngs):
        data_dim = checks.positive_int("data_dim", data_dim)
        self.net = MLP(data_dim, hidden_sizes, 1, rngs=rngs, activation=_lrelu)

    def __call__(self, x: jax.Array) -> jax.Array:
        """``x: (batch, data_dim) -> (batch,)`` logits."""
        return self.net(x)[:, 0]


# --------------------------------------------------------------------------------------
# DCGAN (optionally conditional)
# --------------------------------------------------------------------------------------


class DCGANGenerator(nnx.Module):
    """DCGAN generator ``z (batch, latent_dim) [, y (batch,)] -> x (batch, H, W, C)`` in [-1, 1].

    ``z`` (and, with ``num_classes``, a learned label embedding, Mirza & Osindero 2014) is
    projected to a ``(H/4, W/4, 4 * base)`` feature map, then two stride-2 transposed
    convolutions (kernel 4) double the resolution twice (Radford et al. 2016, fig. 1).

    Args:
      latent_dim: size of ``z``.
      image_shape: ``(H, W, C)`` with ``H, W`` divisible by 4.
      base_channels: channels of the last hidden map (the first has 4x as many).
      num_classes: number of labels for a conditional generator, or None.
      rngs: initialisation only.

    Example:
      >>> g = DCGANGenerator(4, (8, 8, 1), base_channels=4, rngs=nnx.Rngs(0))
      >>> g(jnp.zeros((2, 4))).shape
      (2, 8, 8, 1)
    """

    def __init__(self, latent_dim: int, image_shape: Sequence[int], *, base_channels: int = 32,
                 num_classes: int | None = None, rngs: nnx.Rngs):
        h, w, c = _check_image_shape(image_shape)
        self.latent_dim = checks.positive_int("latent_dim", latent_dim)
        base = checks.positive_int("base_channels", base_channels)
        self.num_classes = (
            None if num_classes is None else checks.positive_int("num_classes", num_classes)
        )
        self.image_shape = (h, w, c)
        self.start = (h // 4, w // 4, 4 * base)
        in_dim = latent_dim
        if self.num_classes is not None:
            self.embed = nnx.Embed(self.num_classes, latent_dim, rngs=rngs)
            in_dim = 2 * latent_dim  # [z, embed(y)]
        else:
            self.embed = None
        self.project = nnx.Linear(in_dim, h // 4 * (w // 4) * 4 * base, rngs=rngs)
        self.norm0 = nnx.GroupNorm(4 * base, num_groups=min(8, 4 * base), rngs=rngs)
        self.up1 = nnx.ConvTranspose(4 * base, 2 * base, (4, 4), strides=(2, 2), padding="SAME",
                                     rngs=rngs)
        self.norm1 = nnx.GroupNorm(2 * base, num_groups=min(8, 2 * base), rngs=rngs)
        self.up2 = nnx.ConvTranspose(2 * base, c, (4, 4), strides=(2, 2), padding="SAME", rngs=rngs)

    def __call__(self, z: jax.Array, labels: jax.Array | None = None) -> jax.Array:
        """``z: (B, latent_dim)``, ``labels: (B,)`` int or None -> ``(B, H, W, C)``."""
        B = z.shape[0]
        _check_labels(labels, self.num_classes, B)
        if self.embed is not None:
            z = jnp.concatenate([z, self.embed(labels)], axis=-1)  # (B, 2 latent)
        h = self.project(z).reshape(B, *self.start)  # (B, H/4, W/4, 4 base)
        h = jax.nn.relu(self.norm0(h))
        h = jax.nn.relu(self.norm1(_conv_transpose(self.up1, h)))  # (B, H/2, W/2, 2 base)
        return jnp.tanh(_conv_transpose(self.up2, h))  # (B, H, W, C), tanh (Radford et al.)


class DCGANDiscriminator(nnx.Module):
    """DCGAN discriminator ``x (batch, H, W, C) [, y] -> logits (batch,)``.

    Two stride-2 convolutions (kernel 4, leaky ReLU 0.2, no normalisation) and a dense
    feature layer ``phi(x)``; the logit is ``psi(phi(x))`` and, with ``num_classes``, the
    projection term ``embed(y)^T phi(x)`` is added (Miyato & Koyama 2018, eq. 3).

    Args:
      image_shape: ``(H, W, C)`` with ``H, W`` divisible by 4.
      base_channels: channels of the first convolution (the second has 2x as many).
      feature_dim: size of ``phi(x)``.
      num_classes: for a projection discriminator, or None.
      rngs: initialisation only.

    Example:
      >>> d = DCGANDiscriminator((8, 8, 1), base_channels=4, feature_dim=8, rngs=nnx.Rngs(0))
      >>> d(jnp.zeros((2, 8, 8, 1))).shape
      (2,)
    """

    def __init__(self, image_shape: Sequence[int], *, base_channels: int = 32,
                 feature_dim: int = 128, num_classes: int | None = None, rngs: nnx.Rngs):
        h, w, c = _check_image_shape(image_shape)
        base = checks.positive_int("base_channels", base_channels)
        feature_dim = checks.positive_int("feature_dim", feature_dim)
        self.num_classes = (
            None if num_classes is None else checks.positive_int("num_classes", num_classes)
        )
        self.image_shape = (h, w, c)
        self.conv1 = nnx.Conv(c, base, (4, 4), strides=(2, 2), padding="SAME", rngs=rngs)
        self.conv2 = nnx.Conv(base, 2 * base, (4, 4), strides=(2, 2), padding="SAME", rngs=rngs)
        self.features = nnx.Linear(h // 4 * (w // 4) * 2 * base, feature_dim, rngs=rngs)
        self.psi = nnx.Linear(feature_dim, 1, rngs=rngs)
        if self.num_classes is not None:
            self.embed = nnx.Embed(self.num_classes, feature_dim, rngs=rngs)
        else:
            self.embed = None

    def __call__(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
        """``x: (B, H, W, C)``, ``labels: (B,)`` or None -> ``(B,)`` logits."""
        B = x.shape[0]
        _check_labels(labels, self.num_classes, B)
        h = _lrelu(_conv(self.conv1, x))  # (B, H/2, W/2, base)
        h = _lrelu(_conv(self.conv2, h))  # (B, H/4, W/4, 2 base)
        phi = _lrelu(self.features(h.reshape(B, -1)))  # (B, feature_dim)
        logits = self.psi(phi)[:, 0]  # psi(phi(x))
        if self.embed is not None:
            logits = logits + jnp.sum(self.embed(labels) * phi, axis=-1)  # + y^T V phi(x)
        return logits


# --------------------------------------------------------------------------------------
# StyleGAN: mapping network and AdaIN
# --------------------------------------------------------------------------------------


def pixel_norm(z: jax.Array, eps: float = 1e-8) -> jax.Array:
    """``z / sqrt(mean(z^2) + eps)`` over the last axis (Karras et al. 2018, sec. 4.2);
    ``eps > 0`` keeps the all-zero latent finite (it maps to 0)."""
    checks.positive("eps", eps)
    return z * jax.lax.rsqrt(jnp.mean(jnp.square(z), axis=-1, keepdims=True) + eps)


def adain(x: jax.Array, style_scale: jax.Array, style_bias: jax.Array, *,
          eps: float = 1e-5) -> jax.Array:
    """Adaptive instance normalisation (Huang & Belongie 2017, eq. 8).

    .. math::
      AdaIN(x, y)_{b,h,w,c} = y_{s,b,c} (x_{b,h,w,c} - mu_{b,c}) / sigma_{b,c} + y_{b,b,c}

    ``mu`` and ``sigma = sqrt(var + eps)`` are each example's per-channel mean and standard
    deviation over the spatial axes; the output's per-channel mean is ``y_b`` and its std
    ``|y_s| sqrt(var / (var + eps))`` (``|y_s|`` as ``eps -> 0``).

    Args:
      x: ``(B, H, W, C)`` content features.
      style_scale: ``(B, C)`` ``y_s``.
      style_bias: ``(B, C)`` ``y_b``.
      eps: added to the variance.

    Returns:
      ``(B, H, W, C)``.
    """
    B, _, _, C = x.shape
    checks.shape("style_scale", style_scale, (B, C))
    checks.shape("style_bias", style_bias, (B, C))
    mu = jnp.mean(x, axis=(1, 2), keepdims=True)  # (B, 1, 1, C)
    var = jnp.mean(jnp.square(x - mu), axis=(1, 2), keepdims=True)  # (B, 1, 1, C)
    normalized = (x - mu) * jax.lax.rsqrt(var + eps)  # (x - mu) / sigma
    return style_scale[:, None, None, :] * normalized + style_bias[:, None, None, :]


class MappingNetwork(nnx.Module):
    """StyleGAN's mapping network ``f: z (B, latent_dim) -> w (B, w_dim)`` (Karras et al. 2019).

    ``w = MLP(pixel_norm(z))`` with ``num_layers`` fully connected layers (8 in the paper),
    leaky ReLU 0.2 after each (the paper's last layer is also activated).

    Args:
      latent_dim: size of ``z``.
      w_dim: size of ``w`` (and of the hidden layers).
      num_layers: >= 1.
      rngs: initialisation only.

    Example:
      >>> m = MappingNetwork(4, 6, num_layers=2, rngs=nnx.Rngs(0))
      >>> m(jnp.ones((3, 4))).shape
      (3, 6)
    """

    def __init__(self, latent_dim: int, w_dim: int, *, num_layers: int = 8, rngs: nnx.Rngs):
        num_layers = checks.positive_int("num_layers", num_layers)
        w_dim = checks.positive_int("w_dim", w_dim)
        sizes = [checks.positive_int("latent_dim", latent_dim)] + [w_dim] * num_layers
        pairs = zip(sizes[:-1], sizes[1:], strict=True)
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in pairs])

    def __call__(self, z: jax.Array) -> jax.Array:
        """``z: (B, latent_dim) -> w: (B, w_dim)``."""
        h = pixel_norm(z)
        for layer in self.layers:
            h = _lrelu(layer(h))
        return h


class AdaIN(nnx.Module):
    """StyleGAN's style modulation: ``A: w -> (y_s, y_b)``, then :func:`adain` (Karras et al. 2019).

    The affine map's scale bias starts at 1, so a fresh layer is instance normalisation
    (Karras et al. 2019's implementation initialises it so).

    Args:
      w_dim: size of ``w``.
      channels: ``C`` of the modulated feature map.
      rngs: initialisation only.

    Example:
      >>> layer = AdaIN(6, 2, rngs=nnx.Rngs(0))
      >>> layer(jnp.ones((3, 4, 4, 2)), jnp.zeros((3, 6))).shape
      (3, 4, 4, 2)
    """

    def __init__(self, w_dim: int, channels: int, *, rngs: nnx.Rngs):
        self.channels = checks.positive_int("channels", channels)
        self.affine = nnx.Linear(checks.positive_int("w_dim", w_dim), 2 * channels, rngs=rngs,
                                 bias_init=nnx.initializers.zeros)
        self.affine.bias[...] = self.affine.bias[...].at[:channels].set(1.0)

    def styles(self, w: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``w: (B, w_dim) -> (y_s (B, C), y_b (B, C))``."""
        y = self.affine(w)  # (B, 2C)
        return y[:, : self.channels], y[:, self.channels :]

    def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
        """``x: (B, H, W, C)``, ``w: (B, w_dim) -> (B, H, W, C)``."""
        y_s, y_b = self.styles(w)
        return adain(x, y_s, y_b)


# --------------------------------------------------------------------------------------
# CycleGAN translator
# --------------------------------------------------------------------------------------


class Translator(nnx.Module):
    """An image-to-image generator ``(B, H, W, C) -> (B, H, W, C)`` in [-1, 1].

    ``tanh(x + conv(relu(conv(relu(conv(x))))))``: three 3x3 convolutions with a residual
    connection from the input (CycleGAN's ResNet generator, Zhu et al. 2017, appendix 7.2,
    reduced to one block at full resolution for 8x8 images); ``residual=False`` drops the
    skip connection, so that a fresh translator is not already close to the identity.

    Args:
      channels: ``C``.
      hidden: channels of the hidden maps.
      residual: add the input before the ``tanh``.
      rngs: initialisation only.

    Example:
      >>> t = Translator(1, hidden=4, rngs=nnx.Rngs(0))
      >>> t(jnp.zeros((2, 8, 8, 1))).shape
      (2, 8, 8, 1)
    """

    def __init__(self, channels: int, *, hidden: int = 32, residual: bool = True,
                 rngs: nnx.Rngs):
        self.residual = bool(residual)
        c = checks.positive_int("channels", channels)
        hidden = checks.positive_int("hidden", hidden)
        self.conv1 = nnx.Conv(c, hidden, (3, 3), padding="SAME", rngs=rngs)
        self.conv2 = nnx.Conv(hidden, hidden, (3, 3), padding="SAME", rngs=rngs)
        self.conv3 = nnx.Conv(hidden, c, (3, 3), padding="SAME", rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """``x: (B, H, W, C) -> (B, H, W, C)``."""
        h = jax.nn.relu(self.conv1(x))
        h = jax.nn.relu(self.conv2(h))
        out = self.conv3(h)
        return jnp.tanh(x + out if self.residual else out)
