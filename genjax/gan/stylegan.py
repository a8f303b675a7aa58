"""StyleGAN's generator: modulated convolutions, noise inputs, style mixing, truncation.

Karras, Laine & Aila (2019) (StyleGAN) and Karras et al. (2020) (StyleGAN2). The mapping
network ``f: z -> w`` is :class:`genjax.gan.MappingNetwork`; this module holds the
synthesis network that ``w`` drives and the three ways of choosing the ``w`` of each layer.

**Modulated convolution with weight demodulation** (StyleGAN2, sec. 2.2). A layer's style
``s = A(w)`` (a learned affine map, bias initialised to 1) scales the input channels of the
convolution weight ``w_{ijk}`` (``i`` input channel, ``j`` output channel, ``k`` kernel tap):

    w'_{ijk}  = s_i w_{ijk}                                                   (eq. 1)
    sigma_j   = sqrt(sum_{i,k} w'_{ijk}^2)                                    (eq. 2)
    w''_{ijk} = w'_{ijk} / sqrt(sum_{i,k} w'_{ijk}^2 + eps)                   (eq. 3)

For inputs with independent unit-variance entries the output ``y_j = sum_{i,k} w''_{ijk}
x_{ik}`` has variance ``sum_{i,k} w''^2_{ijk} = S_j / (S_j + eps)`` (``S_j = sigma_j^2``): 1
up to ``eps`` -- demodulation replaces AdaIN's instance normalisation by this statistical
assumption. :func:`modulated_conv` computes it without forming one kernel per example:
``conv(x * s, w) * d_j`` with ``d_j = 1 / sqrt(sum_{i,k} s_i^2 w_{ijk}^2 + eps)`` (the
paper's non-fused implementation; the same sum as eq. 3).

**Synthesis network** (StyleGAN, sec. 2; StyleGAN2's "skip" generator, fig. 7b). A learned
constant ``(r0, r0, C)`` is the input. The first block applies one modulated 3x3
convolution; every further block doubles the resolution (nearest-neighbour upsampling, where
the paper uses a [1, 3, 3, 1] FIR filter) and applies two. After each convolution:
``x + b_c * noise`` (a single-channel N(0, 1) image per layer, learned per-channel
strengths ``b_c`` initialised to 0; StyleGAN sec. 2 and fig. 1b), a bias and
``sqrt(2) * lrelu_0.2`` (StyleGAN2's gain, which keeps the variance). Each block ends in a
modulated, non-demodulated 1x1 "toRGB" convolution; the image is the sum of the blocks'
outputs, each upsampled to the next resolution (fig. 7b). Weights are N(0, 1) with
runtime scale ``1 / sqrt(fan_in)`` (equalised learning rate, Karras et al. 2018, sec. 4.1).

**Which w drives which layer.** Block ``b`` reads ``ws[:, 2b]`` and ``ws[:, 2b + 1]``
(``num_ws = 2 * num_blocks``): block 0 its convolution and its toRGB, block ``b >= 1`` its
upsampling convolution, then its second convolution and toRGB. Indices ``< 2b`` are the
coarse styles (resolutions below block ``b``'s), the rest the fine ones.

* style mixing (StyleGAN sec. 3.1): ``ws[:, i] = w_1`` for ``i < c``, ``w_2`` for ``i >= c``;
  in training, with probability ``p`` (0.9), at a crossover ``c ~ U{1, ..., num_ws - 1}``;
* truncation (StyleGAN sec. 3 / appendix B): ``w' = w_avg + psi (w - w_avg)``, ``w_avg`` the
  mean of ``w`` tracked during training (``w_avg <- beta w_avg + (1 - beta) mean_b w``,
  beta 0.995). ``psi = 1`` changes nothing; ``psi = 0`` maps every ``z`` to ``w_avg``.

The generator is a model in genjax's protocol: ``g(z)`` is the noise-free generator (noise
images zero, no mixing), ``g(z, noise)`` takes a :class:`StyleNoise` (the injectable noise
of DESIGN.md), and :func:`stylegan_sample` draws both in one compiled program.

References:
  Karras, Laine & Aila (2019), "A Style-Based Generator Architecture for Generative
  Adversarial Networks", CVPR.
  Karras, Laine, Aittala, Hellsten, Lehtinen & Aila (2020), "Analyzing and Improving the
  Image Quality of StyleGAN", CVPR.
  Karras, Aila, Laine & Lehtinen (2018), "Progressive Growing of GANs", ICLR.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from genjax import checks
from genjax.gan.modulated_conv import modulated_conv
from genjax.gan.network import MappingNetwork
from genjax.model import Model, model_jit

LEAK = 0.2  # leaky-ReLU slope of every StyleGAN layer
GAIN = math.sqrt(2.0)  # StyleGAN2's activation gain: keeps lrelu's output at unit variance


def _act(x: jax.Array) -> jax.Array:
    return GAIN * jax.nn.leaky_relu(x, LEAK)  # sqrt(2) lrelu_0.2


def _up(x: jax.Array) -> jax.Array:
    """Nearest-neighbour 2x upsampling ``(B, H, W, C) -> (B, 2H, 2W, C)``."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def truncate(w: jax.Array, w_avg: jax.Array, psi: float | jax.Array) -> jax.Array:
    """The truncation trick ``w' = w_avg + psi (w - w_avg)`` (StyleGAN, sec. 3 and appendix B).

    Args:
      w: ``(..., w_dim)`` latents in W.
      w_avg: ``(w_dim,)`` the tracked mean of ``w``.
      psi: the truncation (1: none; 0: every ``w`` becomes ``w_avg``).

    Returns:
      ``(..., w_dim)``.

    Example:
      >>> truncate(jnp.array([[2.0, 4.0]]), jnp.array([0.0, 2.0]), 0.5)
      Array([[1., 3.]], dtype=float32)
    """
    checks.shape("w_avg", w_avg, (w.shape[-1],))
    checks.finite("psi", psi)
    w_avg = w_avg.reshape((1,) * (w.ndim - 1) + w_avg.shape)  # (1, ..., 1, w_dim)
    return w_avg + psi * (w - w_avg)


def mix_styles(ws_coarse: jax.Array, ws_fine: jax.Array, crossover: jax.Array) -> jax.Array:
    """Style mixing: layer ``i`` reads ``ws_coarse`` for ``i < crossover``, else ``ws_fine``.

    Args:
      ws_coarse: ``(B, num_ws, w_dim)``.
      ws_fine: ``(B, num_ws, w_dim)``.
      crossover: ``(B,)`` int in ``[0, num_ws]`` (``num_ws``: no mixing, all coarse).

    Returns:
      ``(B, num_ws, w_dim)``.

    Example:
      >>> a, b = jnp.zeros((1, 4, 2)), jnp.ones((1, 4, 2))
      >>> mix_styles(a, b, jnp.array([1]))[0, :, 0]
      Array([0., 1., 1., 1.], dtype=float32)
    """
    checks.ndim("ws_coarse", ws_coarse, 3, "(B, num_ws, w_dim)")
    checks.same_shape("ws_fine", ws_fine, "ws_coarse", ws_coarse)
    B, num_ws, _ = ws_coarse.shape
    checks.integer_array("crossover", crossover)
    checks.shape("crossover", crossover, (B,))
    checks.int_array_in_range("crossover", crossover, 0, num_ws + 1)
    coarse = jnp.arange(num_ws)[None, :] < crossover[:, None]  # (B, num_ws)
    return jnp.where(coarse[:, :, None], ws_coarse, ws_fine)


class SynthesisLayer(nnx.Module):
    """One modulated convolution (optionally after 2x upsampling), noise, bias, activation.

    ``x -> sqrt(2) lrelu(modconv(up(x), w'', A(w)) + b_noise * noise + bias)``.

    Args:
      w_dim: size of ``w``.
      in_channels: ``C_in``.
      out_channels: ``C_out``.
      kernel_size: odd, 3 in StyleGAN.
      up: upsample 2x first.
      rngs: initialisation only.

    Example:
      >>> layer = SynthesisLayer(4, 2, 3, rngs=nnx.Rngs(0))
      >>> layer(jnp.ones((2, 4, 4, 2)), jnp.ones((2, 4)), jnp.zeros((2, 4, 4, 1))).shape
      (2, 4, 4, 3)
    """

    def __init__(
        self,
        w_dim: int,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: int = 3,
        up: bool = False,
        rngs: nnx.Rngs,
    ):
        w_dim = checks.positive_int("w_dim", w_dim)
        c_in = checks.positive_int("in_channels", in_channels)
        c_out = checks.positive_int("out_channels", out_channels)
        k = checks.positive_int("kernel_size", kernel_size)
        self.up = bool(up)
        # A: w -> s, bias 1 so that a fresh layer starts unmodulated (StyleGAN2's init)
        self.affine = nnx.Linear(w_dim, c_in, bias_init=nnx.initializers.ones, rngs=rngs)
        self.weight = nnx.Param(jax.random.normal(rngs.params(), (k, k, c_in, c_out)))
        self.noise_strength = nnx.Param(jnp.zeros((c_out,)))  # b_c, 0 at init (StyleGAN)
        self.bias = nnx.Param(jnp.zeros((c_out,)))

    def __call__(self, x: jax.Array, w: jax.Array, noise: jax.Array) -> jax.Array:
        """``x (B, H, W, C_in)``, ``w (B, w_dim)``, ``noise (B, H', W', 1)`` -> ``(B, H', W',
        C_out)`` (``H' = 2H`` when ``up``)."""
        if self.up:
            x = _up(x)  # (B, 2H, 2W, C_in)
        # the runtime scale 1/sqrt(fan_in) cancels in eq. 3; kept so that eps acts as in
        # the paper relative to a unit-scale kernel
        weight = self.weight[...] / math.sqrt(math.prod(self.weight.shape[:3]))
        y = modulated_conv(x, weight, self.affine(w))  # (B, H', W', C_out)
        strength = self.noise_strength[...][None, None, None, :]  # (1, 1, 1, C_out)
        y = y + strength * noise  # + b_c * noise, one noise image shared by the channels
        return _act(y + self.bias[...][None, None, None, :])


class ToRGB(nnx.Module):
    """A modulated 1x1 convolution without demodulation, plus bias (StyleGAN2, fig. 7b).

    Args:
      w_dim: size of ``w``.
      in_channels: ``C``.
      image_channels: channels of the image.
      rngs: initialisation only.

    Example:
      >>> ToRGB(4, 3, 1, rngs=nnx.Rngs(0))(jnp.ones((2, 4, 4, 3)), jnp.ones((2, 4))).shape
      (2, 4, 4, 1)
    """

    def __init__(self, w_dim: int, in_channels: int, image_channels: int, *, rngs: nnx.Rngs):
        w_dim = checks.positive_int("w_dim", w_dim)
        c = checks.positive_int("in_channels", in_channels)
        c_img = checks.positive_int("image_channels", image_channels)
        self.affine = nnx.Linear(w_dim, c, bias_init=nnx.initializers.ones, rngs=rngs)
        self.weight = nnx.Param(jax.random.normal(rngs.params(), (1, 1, c, c_img)))
        self.bias = nnx.Param(jnp.zeros((c_img,)))

    def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
        """``x (B, H, W, C)``, ``w (B, w_dim)`` -> ``(B, H, W, image_channels)``."""
        weight = self.weight[...] / math.sqrt(self.weight.shape[2])  # equalised lr: 1/sqrt(C)
        y = modulated_conv(x, weight, self.affine(w), demodulate=False)
        return y + self.bias[...][None, None, None, :]


class WAverage(nnx.Variable):
    """The tracked mean of ``w`` (a buffer: carried state, not a trainable parameter)."""


class StyleNoise(NamedTuple):
    """The generator's noise beyond ``z``: a pytree of arrays.

    Attributes:
      images: one ``(B, r, r, 1)`` N(0, 1) image per synthesis layer
        (:meth:`StyleGANGenerator.noise_shapes`).
      z_mix: ``(B, latent_dim)`` the second latent of style mixing.
      crossover: ``(B,)`` int in ``[1, num_ws]``: layers ``>= crossover`` read ``f(z_mix)``
        (``num_ws``: no mixing).
    """

    images: tuple[jax.Array, ...]
    z_mix: jax.Array
    crossover: jax.Array


class StyleGANGenerator(nnx.Module):
    """StyleGAN2's generator ``z (B, latent_dim) [, noise] -> x (B, H, W, C)``.

    Mapping network, synthesis network from a learned constant, noise inputs, style mixing
    and truncation (see the module docstring).

    Args:
      latent_dim: size of ``z``.
      image_shape: ``(H, W, C)`` with ``H = W = start_resolution * 2^m``.
      w_dim: size of ``w``.
      mapping_layers: fully connected layers of the mapping network (8 in the paper).
      channels: feature channels of every synthesis layer.
      start_resolution: side of the learned constant (4 in the paper).
      rngs: initialisation only.

    Example:
      >>> g = StyleGANGenerator(4, (8, 8, 1), w_dim=4, mapping_layers=1, channels=2,
      ...                       rngs=nnx.Rngs(0))
      >>> g(jnp.ones((3, 4))).shape, g.num_ws
      ((3, 8, 8, 1), 4)
    """

    def __init__(
        self,
        latent_dim: int,
        image_shape: Sequence[int],
        *,
        w_dim: int = 64,
        mapping_layers: int = 8,
        channels: int = 32,
        start_resolution: int = 4,
        rngs: nnx.Rngs,
    ):
        self.latent_dim = checks.positive_int("latent_dim", latent_dim)
        self.w_dim = checks.positive_int("w_dim", w_dim)
        c = checks.positive_int("channels", channels)
        r0 = checks.positive_int("start_resolution", start_resolution)
        shape = tuple(int(s) for s in image_shape)
        doublings = math.log2(shape[0] / r0) if len(shape) == 3 and shape[0] >= r0 else -1.0
        if len(shape) != 3 or shape[0] != shape[1] or min(shape) < 1 or doublings != int(doublings):
            raise ValueError(
                f"image_shape must be (H, H, C) with H = start_resolution * 2^m "
                f"(start_resolution={r0}), got {tuple(image_shape)}"
            )
        self.image_shape = shape
        self.resolutions = tuple(r0 * 2**b for b in range(int(doublings) + 1))
        self.num_ws = 2 * len(self.resolutions)
        self.mapping = MappingNetwork(latent_dim, w_dim, num_layers=mapping_layers, rngs=rngs)
        self.const = nnx.Param(jax.random.normal(rngs.params(), (1, r0, r0, c)))
        convs = [SynthesisLayer(w_dim, c, c, rngs=rngs)]
        for _ in self.resolutions[1:]:
            convs += [
                SynthesisLayer(w_dim, c, c, up=True, rngs=rngs),
                SynthesisLayer(w_dim, c, c, rngs=rngs),
            ]
        self.convs = nnx.List(convs)
        self.to_rgb = nnx.List([ToRGB(w_dim, c, shape[2], rngs=rngs) for _ in self.resolutions])
        self.w_avg = WAverage(jnp.zeros((w_dim,)))

    def noise_shapes(self, batch: int) -> tuple[tuple[int, int, int, int], ...]:
        """The shapes ``(batch, r, r, 1)`` of the noise images, one per synthesis layer."""
        return tuple(
            (batch, r, r, 1)
            for b, r in enumerate(self.resolutions)
            for _ in range(1 if b == 0 else 2)
        )

    def ws(
        self, z: jax.Array, noise: StyleNoise | None = None, *, psi: float | jax.Array = 1.0
    ) -> jax.Array:
        """``z (B, latent_dim)`` -> the per-layer latents ``ws (B, num_ws, w_dim)``: mapping,
        style mixing with ``noise.z_mix`` at ``noise.crossover``, truncation by ``psi``."""
        checks.shape("z", z, (None, self.latent_dim))
        w = self.mapping(z)  # (B, w_dim)
        ws = jnp.repeat(w[:, None, :], self.num_ws, axis=1)  # (B, num_ws, w_dim)
        if noise is not None:
            w2 = jnp.repeat(self.mapping(noise.z_mix)[:, None, :], self.num_ws, axis=1)
            ws = mix_styles(ws, w2, noise.crossover)
        return truncate(ws, self.w_avg[...], psi)  # w_avg + psi (w - w_avg)

    def synthesize(
        self, ws: jax.Array, noise_images: Sequence[jax.Array] | None = None
    ) -> jax.Array:
        """The synthesis network: ``ws (B, num_ws, w_dim)``, ``noise_images`` (one ``(B, r,
        r, 1)`` per layer, or None for zeros) -> ``(B, H, W, C)``."""
        B = ws.shape[0]
        checks.shape("ws", ws, (B, self.num_ws, self.w_dim))
        shapes = self.noise_shapes(B)
        if noise_images is None:
            noise_images = [jnp.zeros(s, ws.dtype) for s in shapes]
        if len(noise_images) != len(shapes):
            raise ValueError(
                f"noise_images must hold {len(shapes)} images, got {len(noise_images)}"
            )
        for n, s in zip(noise_images, shapes, strict=True):
            checks.shape("noise_images", n, s)
        x = jnp.broadcast_to(self.const[...], (B, *self.const.shape[1:]))  # (B, r0, r0, C)
        x = self.convs[0](x, ws[:, 0], noise_images[0])
        rgb = self.to_rgb[0](x, ws[:, 1])  # (B, r0, r0, C_img)
        for b in range(1, len(self.resolutions)):
            x = self.convs[2 * b - 1](x, ws[:, 2 * b], noise_images[2 * b - 1])  # up, (2r, 2r)
            x = self.convs[2 * b](x, ws[:, 2 * b + 1], noise_images[2 * b])
            rgb = _up(rgb) + self.to_rgb[b](x, ws[:, 2 * b + 1])  # skip generator (fig. 7b)
        return rgb

    def __call__(
        self, z: jax.Array, noise: StyleNoise | None = None, *, psi: float | jax.Array = 1.0
    ) -> jax.Array:
        """``z (B, latent_dim)``, ``noise`` (None: zero noise, no mixing) -> ``(B, H, W, C)``."""
        images = None if noise is None else noise.images
        return self.synthesize(self.ws(z, noise, psi=psi), images)


def stylegan_noise(key: jax.Array, model: Model, n: int, *, mixing_prob: float = 0.0) -> StyleNoise:
    """Draws a :class:`StyleNoise` for ``n`` samples of ``model``.

    Noise images ``~ N(0, 1)``; ``z_mix ~ N(0, I)``; with probability ``mixing_prob`` a
    crossover ``c ~ U{1, ..., num_ws - 1}``, else ``num_ws`` (StyleGAN, sec. 3.1).

    Args:
      key: PRNG key.
      model: a :class:`StyleGANGenerator`.
      n: number of samples, >= 1.
      mixing_prob: in [0, 1] (0.9 in StyleGAN's training).

    Returns:
      A :class:`StyleNoise`.

    Example:
      >>> g = StyleGANGenerator(4, (8, 8, 1), w_dim=4, mapping_layers=1, channels=2,
      ...                       rngs=nnx.Rngs(0))
      >>> noise = stylegan_noise(jax.random.key(0), g, 3, mixing_prob=1.0)
      >>> [x.shape for x in noise.images], bool(jnp.all(noise.crossover < g.num_ws))
      ([(3, 4, 4, 1), (3, 8, 8, 1), (3, 8, 8, 1)], True)
    """
    n = checks.positive_int("n", n)
    checks.probability("mixing_prob", mixing_prob)
    image_key, z_key, mix_key, cut_key = jax.random.split(key, 4)
    shapes = model.noise_shapes(n)
    images = tuple(
        jax.random.normal(k, s)
        for k, s in zip(jax.random.split(image_key, len(shapes)), shapes, strict=True)
    )
    z_mix = jax.random.normal(z_key, (n, model.latent_dim))
    cut = jax.random.randint(cut_key, (n,), 1, model.num_ws)  # c ~ U{1, ..., num_ws - 1}
    mixed = jax.random.uniform(mix_key, (n,)) < mixing_prob
    return StyleNoise(images, z_mix, jnp.where(mixed, cut, model.num_ws).astype(jnp.int32))


@functools.partial(model_jit, static_argnames=("n",))
def _sample(
    key: jax.Array, model: Model, n: int, psi: jax.Array, mixing_prob: jax.Array
) -> jax.Array:
    z_key, noise_key = jax.random.split(key)
    z = jax.random.normal(z_key, (n, model.latent_dim))  # z ~ N(0, I)
    return model(z, stylegan_noise(noise_key, model, n, mixing_prob=mixing_prob), psi=psi)


def stylegan_sample(
    key: jax.Array, model: Model, n: int, *, psi: float = 1.0, mixing_prob: float = 0.0
) -> jax.Array:
    """``n`` images ``G(z, noise)``, ``z ~ N(0, I)``, fresh noise, truncation ``psi``; one program.

    Args:
      key: PRNG key (split into the latents' and the noise's keys).
      model: a :class:`StyleGANGenerator` (traced: new weights do not recompile).
      n: number of samples, >= 1 (static).
      psi: truncation, finite (1: none).
      mixing_prob: probability of style mixing per sample, in [0, 1].

    Returns:
      ``(n, H, W, C)``.

    Example:
      >>> g = StyleGANGenerator(4, (8, 8, 1), w_dim=4, mapping_layers=1, channels=2,
      ...                       rngs=nnx.Rngs(0))
      >>> stylegan_sample(jax.random.key(0), g, 2, psi=0.5).shape
      (2, 8, 8, 1)
    """
    n = checks.positive_int("n", n)
    checks.finite("psi", psi)
    checks.probability("mixing_prob", mixing_prob)
    if not isinstance(model, StyleGANGenerator):
        raise ValueError(f"model must be a StyleGANGenerator, got {type(model).__name__}")
    return _sample(
        key, model, n, jnp.asarray(psi, jnp.float32), jnp.asarray(mixing_prob, jnp.float32)
    )


def track_w_avg(
    model: StyleGANGenerator, z: jax.Array, *, decay: float = 0.995
) -> StyleGANGenerator:
    """``w_avg <- decay w_avg + (1 - decay) mean_b f(z_b)`` in a copy of ``model`` (StyleGAN2).

    Args:
      model: a :class:`StyleGANGenerator`; not modified.
      z: ``(B, latent_dim)`` latents of this training step.
      decay: in [0, 1) (0.995 in StyleGAN2).

    Returns:
      The generator with the new ``w_avg``.

    Example:
      >>> g = StyleGANGenerator(4, (8, 8, 1), w_dim=4, mapping_layers=1, channels=2,
      ...                       rngs=nnx.Rngs(0))
      >>> g2 = track_w_avg(g, jnp.ones((2, 4)), decay=0.0)  # w_avg = f(z)
      >>> bool(jnp.allclose(g2.w_avg[...], g.mapping(jnp.ones((1, 4)))[0]))
      True
    """
    checks.in_range("decay", decay, 0.0, 1.0, high_open=True)
    checks.shape("z", z, (None, model.latent_dim))
    model = jax.tree.map(jnp.asarray, model)  # a new graph: the input stays as it was
    w_mean = jnp.mean(jax.lax.stop_gradient(model.mapping(z)), axis=0)  # (w_dim,)
    model.w_avg[...] = decay * model.w_avg[...] + (1.0 - decay) * w_mean
    return model


def generator_weights(model: StyleGANGenerator) -> dict:
    """The generator's weights as NumPy arrays in :mod:`genjax.gan.oracle_stylegan`'s layout.

    Args:
      model: a :class:`StyleGANGenerator`.

    Returns:
      ``{"mapping": [(W, b)], "const", "convs": [dict], "to_rgb": [dict], "w_avg"}``.

    Example:
      >>> g = StyleGANGenerator(4, (8, 8, 1), w_dim=4, mapping_layers=1, channels=2,
      ...                       rngs=nnx.Rngs(0))
      >>> weights = generator_weights(g)
      >>> len(weights["convs"]), weights["const"].shape
      (3, (4, 4, 2))
    """
    if not isinstance(model, StyleGANGenerator):
        raise ValueError(f"model must be a StyleGANGenerator, got {type(model).__name__}")
    a = lambda v: np.asarray(v[...])  # noqa: E731

    def affine(layer):
        return {
            "A": a(layer.affine.kernel),
            "a": a(layer.affine.bias),
            "weight": a(layer.weight),
            "bias": a(layer.bias),
        }

    return {
        "mapping": [(a(lin.kernel), a(lin.bias)) for lin in model.mapping.layers],
        "const": a(model.const)[0],
        "convs": [
            {**affine(c), "noise_strength": a(c.noise_strength), "up": c.up} for c in model.convs
        ],
        "to_rgb": [affine(t) for t in model.to_rgb],
        "w_avg": a(model.w_avg),
    }
