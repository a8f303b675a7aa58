"""PixelCNN over greyscale images with K levels: masked convolutions, plain and gated.

Both factorise an image's law by the chain rule in raster order,

    p(x) = prod_t p(x_t | x_{<t}),   t = 0 .. H W - 1 (row by row, left to right),

and are *causal*: the logits at pixel ``t`` depend on pixels ``< t`` only (the image
convention: input and target are the same image; the tests check it by Jacobian).

* :class:`PixelCNN` (van den Oord, Kalchbrenner & Kavukcuoglu 2016a, sec. 3.4): masked
  convolutions of type A (first layer, the pixel itself hidden) and B. Stacked, they have a
  blind spot (2016b, fig. 1).
* :class:`GatedPixelCNN` (van den Oord et al. 2016b): a vertical stack (rows above) and a
  horizontal stack (the row so far) with gated activations; no blind spot.
* :func:`pixelcnn_sample` draws images pixel by pixel in one compiled ``lax.scan``
  (:func:`~genjax.autoregressive.levels.fill_levels_from_noise`);
  :func:`pixelcnn_sample_from_noise` is the same on given noise and can complete a given
  image from any raster position (2016a, fig. 1: image completions).

References:
  van den Oord, Kalchbrenner, Kavukcuoglu, "Pixel Recurrent Neural Networks", ICML 2016a.
  van den Oord et al., "Conditional Image Generation with PixelCNN Decoders", NeurIPS 2016b.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from genjax import checks
from genjax.autoregressive.levels import (
    fill_levels_from_noise,
    gated_activation,
    levels_to_input,
    read_out,
)
from genjax.model import Model, model_jit

__all__ = [
    "MASK_TYPES",
    "conv_mask",
    "MaskedConv2d",
    "PixelCNN",
    "GatedPixelCNNLayer",
    "GatedPixelCNN",
    "quantize",
    "pixelcnn_sample",
    "pixelcnn_sample_from_noise",
]

#: Masks of :func:`conv_mask`. "A": the centre pixel excluded (first layer), "B": included;
#: "vertical": the rows at and above the centre (all columns); "horizontal_A" /
#: "horizontal_B": the centre row only, columns left of (A) or up to (B) the centre.
MASK_TYPES = ("A", "B", "vertical", "horizontal_A", "horizontal_B")


def conv_mask(kernel_size: int, mask_type: str) -> np.ndarray:
    """The 0/1 mask multiplying a (k, k) convolution kernel (cross-correlation, centre c).

    With ``c = k // 2`` and kernel offsets (dy, dx) (the pixel at row i + dy - c,
    column j + dx - c feeds output pixel (i, j)), raster order allows

        "A":            dy < c  or  (dy == c and dx < c)    (strictly before the pixel)
        "B":            dy < c  or  (dy == c and dx <= c)   (the pixel itself as well)
        "vertical":     dy <= c                              (rows at and above, all columns)
        "horizontal_A": dy == c and dx < c
        "horizontal_B": dy == c and dx <= c

    Args:
      kernel_size: k, odd and >= 1.
      mask_type: one of :data:`MASK_TYPES`.

    Returns:
      (k, k) float32 mask.
    """
    if checks.positive_int("kernel_size", kernel_size) % 2 == 0:
        raise ValueError(f"kernel_size must be an odd integer >= 1, got {kernel_size!r}")
    checks.one_of("mask_type", mask_type, MASK_TYPES)
    k, c = int(kernel_size), int(kernel_size) // 2
    dy, dx = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")  # (k, k) each
    before = (dy < c) | ((dy == c) & (dx < c))
    centre = (dy == c) & (dx == c)
    allowed = {
        "A": before,
        "B": before | centre,
        "vertical": dy <= c,
        "horizontal_A": (dy == c) & (dx < c),
        "horizontal_B": (dy == c) & (dx <= c),
    }[mask_type]
    return allowed.astype(np.float32)


class MaskedConv2d(nnx.Module):
    """A 'SAME' k x k convolution (NHWC) whose kernel is multiplied by a fixed mask.

        y[i, j] = b + sum_{dy, dx, c_in} (M * W)[dy, dx, c_in, :] x[i + dy - c, j + dx - c, c_in]

    Masking the weights (not the inputs) makes the output at pixel (i, j) independent of
    the pixels the mask removes (van den Oord et al. 2016a, sec. 3.4). All input channels
    of a pixel share its mask entry: these models are greyscale, so there is no R/G/B
    ordering inside a pixel.

    Args:
      in_features, out_features: channel counts.
      kernel_size: odd k.
      mask_type: see :func:`conv_mask`.
      rngs: ``nnx.Rngs`` for initialisation.

    Example:
      >>> conv = MaskedConv2d(1, 2, 3, "A", rngs=nnx.Rngs(0))
      >>> conv(jnp.zeros((1, 4, 4, 1))).shape
      (1, 4, 4, 2)
    """

    def __init__(self, in_features: int, out_features: int, kernel_size: int, mask_type: str,
                 *, rngs: nnx.Rngs):
        in_features = checks.positive_int("in_features", in_features)
        out_features = checks.positive_int("out_features", out_features)
        self.mask_type = mask_type
        self.kernel_size = int(kernel_size)
        mask = conv_mask(kernel_size, mask_type)  # validates both arguments
        # LeCun-normal over the taps the mask keeps (the conv's effective fan-in)
        fan_in = float(mask.sum()) * in_features
        shape = (self.kernel_size, self.kernel_size, in_features, out_features)
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), shape) / np.sqrt(fan_in))
        self.bias = nnx.Param(jnp.zeros((out_features,)))

    def masked_kernel(self) -> jax.Array:
        """M * W: (k, k, in, out)."""
        mask = conv_mask(self.kernel_size, self.mask_type)[:, :, None, None]  # (k, k, 1, 1)
        return self.kernel[...] * mask

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: (B, H, W, in) -> (B, H, W, out)."""
        kernel = self.masked_kernel().astype(x.dtype)
        y = jax.lax.conv_general_dilated(
            x, kernel, window_strides=(1, 1), padding="SAME",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )  # (B, H, W, out)
        return y + self.bias[...].astype(x.dtype)[None, None, None, :]  # + b, (1, 1, 1, out)


def _check_image(x: jax.Array) -> None:
    checks.shape("x", x, ("B", "H", "W", 1))  # greyscale images


class PixelCNN(nnx.Module):
    """The plain PixelCNN: a type-A masked convolution, then type-B ones, then 1x1 layers.

        h_1 = ReLU(conv_A(x)),  h_l = ReLU(conv_B(h_{l-1})) + h_{l-1}  (l = 2 .. L)
        logits = 1x1(ReLU(1x1(h_L)))                 (B, H, W, num_levels)

    (van den Oord et al. 2016a, sec. 3.4, with residual connections between the type-B
    layers.) Stacking masked k x k convolutions leaves a **blind spot**: pixels above and
    to the right of (i, j) that no path of masked kernels reaches, however deep the stack
    (2016b, fig. 1); :class:`GatedPixelCNN` removes it. Both are kept so that the tests can
    show the difference by Jacobian.

    Args:
      num_levels: K, the number of pixel values; logits are over {0 .. K-1}.
      rngs: ``nnx.Rngs`` for initialisation.
      features: channels of the hidden layers.
      num_layers: L masked convolutions (1 type A + L - 1 type B), >= 1.
      kernel_size: odd k of the masked convolutions.

    Example:
      >>> model = PixelCNN(4, rngs=nnx.Rngs(0), features=8, num_layers=2)
      >>> model(jnp.zeros((2, 4, 4, 1))).shape  # logits over 4 levels per pixel
      (2, 4, 4, 4)
    """

    def __init__(self, num_levels: int, *, rngs: nnx.Rngs, features: int = 32,
                 num_layers: int = 5, kernel_size: int = 3):
        self.num_levels = checks.positive_int("num_levels", num_levels)
        features = checks.positive_int("features", features)
        num_layers = checks.positive_int("num_layers", num_layers)
        self.first = MaskedConv2d(1, features, kernel_size, "A", rngs=rngs)
        self.layers = nnx.List([MaskedConv2d(features, features, kernel_size, "B", rngs=rngs)
                                for _ in range(num_layers - 1)])
        self.hidden = nnx.Linear(features, features, rngs=rngs)
        self.out = nnx.Linear(features, self.num_levels, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: (B, H, W, 1) float pixels (see :func:`levels_to_input`) -> (B, H, W, K) logits.

        The logits at pixel t depend only on the pixels before t in raster order.
        """
        _check_image(x)
        h = nnx.relu(self.first(x))  # (B, H, W, F), type A: pixel itself excluded
        for layer in self.layers:
            h = h + nnx.relu(layer(h))  # type B, residual
        return read_out(h, self.hidden, self.out)  # (B, H, W, K)


def _shift_down(x: jax.Array) -> jax.Array:
    # row i receives row i - 1 (zeros into row 0): (B, H, W, C) -> (B, H, W, C)
    return jnp.pad(x, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]


class GatedPixelCNNLayer(nnx.Module):
    """One gated layer with a vertical and a horizontal stack (van den Oord et al. 2016b, fig. 2).

        v_feat = conv_vertical(v)                                 (2F channels)
        v'     = tanh(v_feat_f) ⊙ σ(v_feat_g)                     (eq. 2)
        h_feat = conv_horizontal(h) + 1x1(shift_down(v_feat))     (the vertical-to-horizontal link)
        h'     = h + 1x1(tanh(h_feat_f) ⊙ σ(h_feat_g))            (residual, not in the first layer)

    The vertical stack sees the rows at and above the current one; shifting it down one row
    before it joins the horizontal stack leaves only rows strictly above. The horizontal
    stack sees the current row left of the pixel (first layer: mask "horizontal_A") or up
    to it (later layers: "horizontal_B"). Their union is every earlier pixel: no blind spot.

    Args:
      in_features: channels of v and h in (1 in the first layer).
      features: F, channels out.
      kernel_size: odd k.
      first: the first layer (horizontal mask A, no residual).
      rngs: ``nnx.Rngs`` for initialisation.

    Example:
      >>> layer = GatedPixelCNNLayer(1, 4, 3, first=True, rngs=nnx.Rngs(0))
      >>> v, h = layer(jnp.zeros((2, 4, 4, 1)), jnp.zeros((2, 4, 4, 1)))
      >>> v.shape, h.shape
      ((2, 4, 4, 4), (2, 4, 4, 4))
    """

    def __init__(self, in_features: int, features: int, kernel_size: int, *, first: bool,
                 rngs: nnx.Rngs):
        self.first = bool(first)
        self.vertical = MaskedConv2d(in_features, 2 * features, kernel_size, "vertical",
                                     rngs=rngs)
        self.horizontal = MaskedConv2d(in_features, 2 * features, kernel_size,
                                       "horizontal_A" if first else "horizontal_B", rngs=rngs)
        self.link = nnx.Linear(2 * features, 2 * features, rngs=rngs)  # 1x1, vertical -> horizontal
        self.h_out = nnx.Linear(features, features, rngs=rngs)  # 1x1 after the horizontal gate

    def __call__(self, v: jax.Array, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        """v, h: (B, H, W, in) -> v', h': (B, H, W, F) each."""
        v_feat = self.vertical(v)  # (B, H, W, 2F)
        h_feat = self.horizontal(h) + self.link(_shift_down(v_feat))  # (B, H, W, 2F)
        h_new = self.h_out(gated_activation(h_feat))  # (B, H, W, F)
        if not self.first:
            h_new = h + h_new  # residual on the horizontal stack
        return gated_activation(v_feat), h_new


class GatedPixelCNN(nnx.Module):
    """The gated, blind-spot-free PixelCNN (van den Oord et al. 2016b), unconditional.

        (v_0, h_0) = (x, x)
        (v_l, h_l) = GatedLayer_l(v_{l-1}, h_{l-1}),   l = 1 .. L
        logits = 1x1(ReLU(1x1(ReLU(h_L))))              (B, H, W, num_levels)

    After L layers of kernel k the logits of pixel (i, j) see every pixel of rows
    i - L*(k//2) .. i - 1 within L*(k//2) columns, and the L*(k//2) pixels left of it in
    row i — and nothing at or after it in raster order.

    Args:
      num_levels: K, the number of pixel values.
      rngs: ``nnx.Rngs`` for initialisation.
      features: F, channels of both stacks.
      num_layers: L gated layers, >= 1.
      kernel_size: odd k.

    Example:
      >>> model = GatedPixelCNN(4, rngs=nnx.Rngs(0), features=8, num_layers=2)
      >>> model(jnp.zeros((2, 4, 4, 1))).shape
      (2, 4, 4, 4)
    """

    def __init__(self, num_levels: int, *, rngs: nnx.Rngs, features: int = 32,
                 num_layers: int = 5, kernel_size: int = 3):
        self.num_levels = checks.positive_int("num_levels", num_levels)
        features = checks.positive_int("features", features)
        num_layers = checks.positive_int("num_layers", num_layers)
        self.layers = nnx.List([
            GatedPixelCNNLayer(1 if i == 0 else features, features, kernel_size, first=i == 0,
                               rngs=rngs)
            for i in range(num_layers)
        ])
        self.hidden = nnx.Linear(features, features, rngs=rngs)
        self.out = nnx.Linear(features, self.num_levels, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: (B, H, W, 1) float pixels (see :func:`levels_to_input`) -> (B, H, W, K) logits."""
        _check_image(x)
        v, h = x, x
        for layer in self.layers:
            v, h = layer(v, h)  # (B, H, W, F) each
        return read_out(h, self.hidden, self.out)  # (B, H, W, K)


def quantize(x: jax.Array, num_levels: int) -> jax.Array:
    """Values in [0, 1] -> int32 levels round(x (K - 1)) in {0 .. K-1} (x finite)."""
    num_levels = checks.positive_int("num_levels", num_levels)
    checks.finite("x", x)  # when concrete: NaN would round to an arbitrary integer level
    return _quantize(x, num_levels)


@functools.partial(jax.jit, static_argnames=("num_levels",))
def _quantize(x: jax.Array, num_levels: int) -> jax.Array:
    return jnp.clip(jnp.round(jnp.asarray(x) * (num_levels - 1)), 0, num_levels - 1).astype(
        jnp.int32)


def _check_sampling(model: Model, temperature: float) -> int:
    checks.positive("temperature", temperature)
    return checks.positive_int("model.num_levels", model.num_levels)


def _draw(model: Model, x: jax.Array, gumbel: jax.Array, temperature: float,
          start: int | jax.Array) -> jax.Array:
    """Raster-order filling of ``x`` (n, H, W, 1) from pixel ``start`` on: (n, H, W, 1)."""
    n, H, W, _ = x.shape
    K = model.num_levels

    def logits_fn(flat):  # (n, H W) levels -> (n, H W, K) logits, raster order
        images = flat.reshape(n, H, W, 1)  # (n, H W) -> (n, H, W, 1)
        return model(levels_to_input(images, K)).reshape(n, H * W, K)

    flat = fill_levels_from_noise(logits_fn, x.reshape(n, H * W), gumbel.reshape(n, H * W, K),
                                  temperature=temperature, start=start)
    return flat.reshape(n, H, W, 1)  # (n, H W) -> (n, H, W, 1)


def pixelcnn_sample_from_noise(model: Model, x: jax.Array, gumbel: jax.Array, *,
                               temperature: float = 1.0,
                               start: int | jax.Array = 0) -> jax.Array:
    """Draw the pixels of ``x`` from raster index ``start`` on, with the noise given.

        for t = start .. H W - 1:   x_t = argmax_k (logits_t(x_{<t})_k / tau + g_{t,k})

    Each step runs the whole network on the current canvas and reads pixel t's logits; by
    causality they depend only on the pixels before t (drawn, or kept from ``x``). With
    ``start = 0`` this is :func:`pixelcnn_sample` (the values of ``x`` are then never
    read); ``start > 0`` completes the image below/right of ``start`` given the pixels
    above it (van den Oord et al. 2016a, fig. 1).

    Args:
      model: callable pytree, ``model(x (n, H, W, 1) float in [-1, 1]) -> (n, H, W, K)``
        causal logits, with an int attribute ``num_levels = K`` (:class:`PixelCNN`,
        :class:`GatedPixelCNN`). Traced: new weights reuse the compiled sampler.
      x: (n, H, W, 1) int levels in {0 .. K-1}, the canvas.
      gumbel: (n, H, W, K) standard Gumbel noise, one vector per pixel and image.
      temperature: tau > 0.
      start: the first raster index drawn, in [0, H W]; traced (one compiled program
        serves every start: the loop visits every pixel and keeps ``x`` before ``start``).

    Returns:
      (n, H, W, 1) int32 levels.

    Example:
      >>> model = PixelCNN(4, rngs=nnx.Rngs(0), features=8, num_layers=2)
      >>> gumbel = jax.random.gumbel(jax.random.key(0), (2, 4, 4, 4))
      >>> pixelcnn_sample_from_noise(model, jnp.zeros((2, 4, 4, 1), jnp.int32), gumbel).shape
      (2, 4, 4, 1)
    """
    K = _check_sampling(model, temperature)
    n, H, W, _ = checks.shape("x", x, (None, None, None, 1))
    checks.token_ids("x", jnp.asarray(x), K)  # levels in {0 .. K-1}
    checks.shape("gumbel", gumbel, (n, H, W, K))
    checks.finite("gumbel", gumbel)
    checks.in_range("start", start, 0, H * W)  # skipped when traced
    return _pixelcnn_from_noise_jit(model, x, gumbel, start, temperature=temperature)


@functools.partial(model_jit, static_argnames=("temperature",))
def _pixelcnn_from_noise_jit(model, x, gumbel, start, *, temperature):
    return _draw(model, x, gumbel, temperature, start)


def pixelcnn_sample(key: jax.Array, model: Model, n: int, *,
                    image_shape: tuple[int, int] = (8, 8),
                    temperature: float = 1.0) -> jax.Array:
    """``n`` images of ``image_shape`` drawn from the model (one compiled ``lax.scan``).

    Draws ``gumbel = jax.random.gumbel(key, (n, H, W, K))`` and fills a canvas of zeros in
    raster order: :func:`pixelcnn_sample_from_noise` with ``start = 0``.

    Args:
      key: a JAX key.
      model: as :func:`pixelcnn_sample_from_noise`.
      n: number of images, >= 1.
      image_shape: (H, W), each >= 1.
      temperature: tau > 0 (1 samples the model; below 1 sharpens it).

    Returns:
      (n, H, W, 1) int32 levels in {0 .. K-1}.

    Example:
      >>> model = PixelCNN(4, rngs=nnx.Rngs(0), features=8, num_layers=2)
      >>> x = pixelcnn_sample(jax.random.key(0), model, 2, image_shape=(4, 4))
      >>> x.shape, bool(jnp.all((x >= 0) & (x < 4)))
      ((2, 4, 4, 1), True)
    """
    _check_sampling(model, temperature)
    n = checks.positive_int("n", n)
    checks.shape("image_shape", np.asarray(image_shape), (2,))
    shape = (checks.positive_int("image_shape[0]", image_shape[0]),
             checks.positive_int("image_shape[1]", image_shape[1]))
    return _pixelcnn_sample_jit(key, model, n=n, image_shape=shape, temperature=temperature)


@functools.partial(model_jit, static_argnames=("n", "image_shape", "temperature"))
def _pixelcnn_sample_jit(key, model, *, n, image_shape, temperature):
    H, W = image_shape
    gumbel = jax.random.gumbel(key, (n, H, W, model.num_levels))  # (n, H, W, K)
    return _draw(model, jnp.zeros((n, H, W, 1), jnp.int32), gumbel, temperature, 0)
