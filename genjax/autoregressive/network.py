"""Autoregressive networks: a causal transformer with a KV cache, PixelCNN, WaveNet.

Every network here factorises a joint distribution by the chain rule,

    p(x_1 .. x_N) = prod_t p(x_t | x_{<t}),

and is *causal*: the output that parameterises ``p(x_t | x_{<t})`` depends on no input
at or after ``t``. The tests check this by Jacobian for each of them (and the NumPy
oracle in ``oracle_network.py`` for the attention, the masked convolutions, the gated
PixelCNN and WaveNet).

**Transformer** (GPT-2: Radford et al. 2019; blocks of Vaswani et al. 2017): token
embedding plus a position embedding (learned, or the fixed sinusoids of Vaswani et al.,
sec. 3.5), ``num_layers`` pre-LayerNorm causal blocks, a final LayerNorm and a linear
read-out to the vocabulary. Logits at position ``t`` are the model's
``log p(x_{t+1} | x_{<=t})`` up to a constant: they depend on tokens ``0 .. t`` only
(the language-model convention: the targets are the inputs shifted by one).

Model interface (what ``decoding`` codes against)::

    logits = model(tokens)                          # (B, L) int32 -> (B, L, V)
    cache = model.init_cache(batch_size, max_len)   # per layer {"k", "v"}: (B, T, H, d_k)
    logits, cache = model.decode(tokens, cache, pos)

``decode`` processes ``S`` tokens at absolute positions ``pos .. pos + S - 1`` (a whole
prompt for prefill, one token per step afterwards) and returns exactly the rows
``pos .. pos + S - 1`` of ``model(whole_sequence)``; ``pos`` may be traced under ``jit``.

**PixelCNN** (van den Oord et al. 2016a) over greyscale images with ``K`` levels: masked
convolutions of type A (first layer, the pixel itself hidden) and B. Stacked, they have a
blind spot; the **gated PixelCNN** (van den Oord et al. 2016b) splits the receptive field
into a vertical stack (rows above) and a horizontal stack (the row so far) and has none.
Logits at pixel ``t`` (raster order) depend on pixels ``< t`` only — the image convention:
input and target are the same image.

**WaveNet** (van den Oord et al. 2016c): the input delayed by one step, then dilated
causal convolutions with gated activations and residual/skip connections; logits at time
``t`` depend on ``x_{t-R} .. x_{t-1}``. Signals are mu-law companded to ``K`` levels.

Samplers (``pixelcnn_sample``, ``wavenet_sample``) are one jitted ``lax.scan`` over the
positions, each step the Gumbel-max of the logits with injected noise.

References:
  Vaswani et al., "Attention Is All You Need", NeurIPS 2017.
  Radford et al., "Language Models are Unsupervised Multitask Learners" (GPT-2), 2019.
  van den Oord, Kalchbrenner, Kavukcuoglu, "Pixel Recurrent Neural Networks", ICML 2016a.
  van den Oord et al., "Conditional Image Generation with PixelCNN Decoders", NeurIPS 2016b.
  van den Oord et al., "WaveNet: A Generative Model for Raw Audio", arXiv:1609.03499, 2016c.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from genjax.nn.attention import TransformerBlock
from genjax.nn.embeddings import sinusoidal_embedding

POSITIONS = ("learned", "sinusoidal")


def _check_positive(name: str, value: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


class Transformer(nnx.Module):
    """Decoder-only causal transformer over token ids (GPT-2 layout, pre-LayerNorm).

        h_0 = E[x_t] + P[t]                         (token + position embedding)
        h_l = Block_l(h_{l-1}),  l = 1 .. num_layers (causal self-attention + MLP)
        logits_t = W_out LN(h_L)_t                  (scores of x_{t+1} given x_{<=t})

    Args:
      vocab_size: V, >= 1.
      max_len: the longest sequence (and cache) the model accepts, >= 1.
      dim: D, the width; divisible by ``num_heads`` (and even for sinusoidal positions).
      num_heads: attention heads per block.
      num_layers: number of blocks, >= 1.
      rngs: ``nnx.Rngs`` for initialisation only.
      positions: ``"learned"`` (a (max_len, D) table, N(0, 0.02^2) at init) or
        ``"sinusoidal"`` (fixed, Vaswani et al. 2017, sec. 3.5; no parameters).
      mlp_ratio: MLP width in units of D.

    Example:
      >>> model = Transformer(16, 32, 32, 4, 2, rngs=nnx.Rngs(0))
      >>> model(jnp.zeros((2, 5), jnp.int32)).shape
      (2, 5, 16)
    """

    def __init__(
        self, vocab_size: int, max_len: int, dim: int, num_heads: int, num_layers: int, *,
        rngs: nnx.Rngs, positions: str = "learned", mlp_ratio: int = 4,
    ):
        self.vocab_size = _check_positive("vocab_size", vocab_size)
        self.max_len = _check_positive("max_len", max_len)
        dim = _check_positive("dim", dim)
        num_heads = _check_positive("num_heads", num_heads)
        num_layers = _check_positive("num_layers", num_layers)
        if dim % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide dim={dim}")
        if positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {positions!r}")
        if positions == "sinusoidal" and dim % 2:
            raise ValueError(f"dim must be even for sinusoidal positions, got {dim}")
        self.dim = dim
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.positions = positions
        self.token_embed = nnx.Embed(self.vocab_size, dim, rngs=rngs)
        if positions == "learned":
            self.position_embed = nnx.Param(
                0.02 * jax.random.normal(rngs.params(), (self.max_len, dim))
            )
        else:
            self.position_embed = None
        self.blocks = nnx.List([
            TransformerBlock(dim, num_heads, rngs=rngs, mlp_ratio=mlp_ratio, causal=True)
            for _ in range(num_layers)
        ])
        self.norm = nnx.LayerNorm(dim, rngs=rngs)
        self.head = nnx.Linear(dim, self.vocab_size, rngs=rngs)

    # --- pieces, public so that tests can differentiate through embedded inputs ----------

    def position_embedding(self, start: jax.Array, length: int) -> jax.Array:
        """P[start .. start + length - 1]: (length, D); ``start`` may be traced."""
        start = jnp.asarray(start, jnp.int32)
        if self.position_embed is None:
            t = start + jnp.arange(length, dtype=jnp.int32)  # absolute positions (length,)
            return sinusoidal_embedding(t, self.dim)  # (length, D)
        zero = jnp.zeros((), jnp.int32)
        return jax.lax.dynamic_slice(self.position_embed[...], (start, zero), (length, self.dim))

    def embed(self, tokens: jax.Array, start: jax.Array | int = 0) -> jax.Array:
        """h_0 = E[x] + P[start + t]: tokens (B, S) int -> (B, S, D)."""
        S = tokens.shape[1]
        return self.token_embed(tokens) + self.position_embedding(start, S)[None]

    def logits_from_embeddings(self, h: jax.Array) -> jax.Array:
        """The causal blocks and read-out on embedded inputs: h_0 (B, L, D) -> (B, L, V)."""
        for block in self.blocks:
            h = block(h)  # (B, L, D)
        return self.head(self.norm(h))  # (B, L, V)

    def _check_tokens(self, tokens: jax.Array) -> jax.Array:
        tokens = jnp.asarray(tokens)
        if tokens.ndim != 2:
            raise ValueError(f"tokens must have shape (B, L), got {tokens.shape}")
        if not jnp.issubdtype(tokens.dtype, jnp.integer):
            raise ValueError(f"tokens must be integer ids, got dtype {tokens.dtype}")
        return tokens

    # --- the interface --------------------------------------------------------------------

    def __call__(self, tokens: jax.Array) -> jax.Array:
        """Full causal forward pass, no cache.

        Args:
          tokens: (B, L) int token ids, ``1 <= L <= max_len``.

        Returns:
          (B, L, V) logits; row ``t`` scores the token at ``t + 1`` given tokens ``<= t``.
        """
        tokens = self._check_tokens(tokens)
        if tokens.shape[1] > self.max_len:
            raise ValueError(
                f"tokens has length {tokens.shape[1]}, longer than max_len={self.max_len}"
            )
        return self.logits_from_embeddings(self.embed(tokens))

    def init_cache(
        self, batch_size: int, max_len: int | None = None, dtype=jnp.float32
    ) -> tuple[dict, ...]:
        """An empty KV cache.

        Args:
          batch_size: B, >= 1.
          max_len: cache length T, ``1 <= T <= self.max_len``; default ``self.max_len``.
          dtype: dtype of the cached keys and values.

        Returns:
          a tuple with one ``{"k", "v"}`` per layer, each (B, T, H, d_k) of zeros.
        """
        batch_size = _check_positive("batch_size", batch_size)
        max_len = self.max_len if max_len is None else _check_positive("max_len", max_len)
        if max_len > self.max_len:
            raise ValueError(
                f"max_len={max_len} is longer than the model's max_len={self.max_len}"
            )
        return tuple(block.init_cache(batch_size, max_len, dtype) for block in self.blocks)

    def decode(
        self, tokens: jax.Array, cache: tuple[dict, ...], pos: jax.Array
    ) -> tuple[jax.Array, tuple[dict, ...]]:
        """Incremental forward pass through the KV cache.

        Args:
          tokens: (B, S) int ids at absolute positions ``pos .. pos + S - 1``.
          cache: from :meth:`init_cache` (or a previous ``decode``), filled below ``pos``.
          pos: () int32 start position, may be traced; the caller keeps ``pos + S <= T``.

        Returns:
          (logits (B, S, V) equal to rows pos .. pos + S - 1 of the uncached forward pass,
          the new cache).
        """
        tokens = self._check_tokens(tokens)
        if len(cache) != self.num_layers:
            raise ValueError(f"cache has {len(cache)} layers, the model {self.num_layers}")
        T = cache[0]["k"].shape[1]
        if tokens.shape[1] > T:
            raise ValueError(f"tokens has length {tokens.shape[1]}, longer than the cache "
                             f"length {T}")
        h = self.embed(tokens, pos)  # (B, S, D)
        new_cache = []
        for block, layer_cache in zip(self.blocks, cache, strict=True):
            h, layer_cache = block.decode(h, layer_cache, pos)  # (B, S, D)
            new_cache.append(layer_cache)
        return self.head(self.norm(h)), tuple(new_cache)


# ---------------------------------------------------------------------------------------
# PixelCNN: masked convolutions (van den Oord, Kalchbrenner, Kavukcuoglu 2016a) and the
# gated PixelCNN with vertical and horizontal stacks (van den Oord et al. 2016b)
# ---------------------------------------------------------------------------------------

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
    if int(kernel_size) != kernel_size or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be an odd integer >= 1, got {kernel_size!r}")
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type must be one of {MASK_TYPES}, got {mask_type!r}")
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
    """

    def __init__(self, in_features: int, out_features: int, kernel_size: int, mask_type: str,
                 *, rngs: nnx.Rngs):
        in_features = _check_positive("in_features", in_features)
        out_features = _check_positive("out_features", out_features)
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
    if x.ndim != 4 or x.shape[-1] != 1:
        raise ValueError(f"x must be greyscale images (B, H, W, 1), got shape {x.shape}")


def _read_out(x: jax.Array, hidden: nnx.Linear, out: nnx.Linear) -> jax.Array:
    # the 1x1 read-out of PixelCNN (2016a, fig. 4): ReLU -> 1x1 -> ReLU -> 1x1 -> K logits
    return out(nnx.relu(hidden(nnx.relu(x))))


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
    """

    def __init__(self, num_levels: int, *, rngs: nnx.Rngs, features: int = 32,
                 num_layers: int = 5, kernel_size: int = 3):
        self.num_levels = _check_positive("num_levels", num_levels)
        features = _check_positive("features", features)
        num_layers = _check_positive("num_layers", num_layers)
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
        return _read_out(h, self.hidden, self.out)  # (B, H, W, K)


def _gate(features: jax.Array) -> jax.Array:
    # y = tanh(W_f * x) ⊙ sigmoid(W_g * x)   (van den Oord et al. 2016b, eq. 2)
    f, g = jnp.split(features, 2, axis=-1)
    return jnp.tanh(f) * jax.nn.sigmoid(g)


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
        h_new = self.h_out(_gate(h_feat))  # (B, H, W, F)
        if not self.first:
            h_new = h + h_new  # residual on the horizontal stack
        return _gate(v_feat), h_new


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
    """

    def __init__(self, num_levels: int, *, rngs: nnx.Rngs, features: int = 32,
                 num_layers: int = 5, kernel_size: int = 3):
        self.num_levels = _check_positive("num_levels", num_levels)
        features = _check_positive("features", features)
        num_layers = _check_positive("num_layers", num_layers)
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
        return _read_out(h, self.hidden, self.out)  # (B, H, W, K)


def levels_to_input(levels: jax.Array, num_levels: int) -> jax.Array:
    """Integer levels {0 .. K-1} -> the networks' float input in [-1, 1]: 2 l / (K - 1) - 1."""
    num_levels = _check_positive("num_levels", num_levels)
    scale = 2.0 / max(num_levels - 1, 1)
    return jnp.asarray(levels).astype(jnp.float32) * scale - 1.0


def quantize(x: jax.Array, num_levels: int) -> jax.Array:
    """Values in [0, 1] -> int32 levels round(x (K - 1)) in {0 .. K-1}."""
    num_levels = _check_positive("num_levels", num_levels)
    return jnp.clip(jnp.round(jnp.asarray(x) * (num_levels - 1)), 0, num_levels - 1).astype(
        jnp.int32)


def _categorical_step(logits: jax.Array, gumbel: jax.Array, temperature: float) -> jax.Array:
    # Gumbel-max: argmax(logits / tau + g), g ~ Gumbel(0, 1), draws from softmax(logits / tau)
    return jnp.argmax(logits / temperature + gumbel, axis=-1).astype(jnp.int32)


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")


@functools.partial(jax.jit, static_argnames=("temperature",))
def pixelcnn_sample_from_noise(model: nnx.Module, gumbel: jax.Array, *,
                               temperature: float = 1.0) -> jax.Array:
    """Draw images pixel by pixel in raster order, with the noise given (one jitted scan).

        for t = 0 .. H W - 1:   x_t = argmax_k (logits_t(x_{<t})_k / tau + g_{t,k})

    Each step runs the whole network on the current canvas (pixels >= t still 0) and reads
    pixel t's logits; by causality they depend only on the pixels already drawn.

    Args:
      model: a :class:`PixelCNN` or :class:`GatedPixelCNN` with K levels.
      gumbel: (H, W, n, K) standard Gumbel noise, one vector per pixel and image.
      temperature: tau > 0.

    Returns:
      (n, H, W, 1) int32 levels.
    """
    _check_temperature(temperature)
    H, W, n, K = gumbel.shape
    if K != model.num_levels:
        raise ValueError(f"gumbel has {K} levels, the model {model.num_levels}")

    def step(levels, t):
        i, j = t // W, t % W  # raster position of pixel t
        logits = model(levels_to_input(levels, K))  # (n, H, W, K)
        row = jax.lax.dynamic_index_in_dim(logits, i, axis=1, keepdims=False)  # (n, W, K)
        pixel = jax.lax.dynamic_index_in_dim(row, j, axis=1, keepdims=False)  # (n, K)
        noise = gumbel[i, j]  # (n, K)
        new = _categorical_step(pixel, noise, temperature)  # (n,)
        levels = levels.at[:, i, j, 0].set(new)
        return levels, None

    canvas = jnp.zeros((n, H, W, 1), jnp.int32)
    levels, _ = jax.lax.scan(step, canvas, jnp.arange(H * W, dtype=jnp.int32))
    return levels


def pixelcnn_sample(key: jax.Array, model: nnx.Module, n: int, *, image_shape=(8, 8),
                    temperature: float = 1.0) -> jax.Array:
    """n images of ``image_shape`` (H, W) drawn from the model: (n, H, W, 1) int32 levels."""
    n = _check_positive("n", n)
    H, W = (_check_positive("image_shape[0]", image_shape[0]),
            _check_positive("image_shape[1]", image_shape[1]))
    gumbel = jax.random.gumbel(key, (H, W, n, model.num_levels))
    return pixelcnn_sample_from_noise(model, gumbel, temperature=temperature)


# ---------------------------------------------------------------------------------------
# WaveNet (van den Oord et al. 2016c)
# ---------------------------------------------------------------------------------------


def _shift_right(x: jax.Array, d: int) -> jax.Array:
    # x_{t-d} with zeros before the start: (B, T, C) -> (B, T, C)
    return jnp.pad(x, ((0, 0), (d, 0), (0, 0)))[:, : x.shape[1]]


class CausalConv1d(nnx.Module):
    """Dilated causal convolution of width 2 (WaveNet, sec. 2.1):

        y_t = W_0 x_{t-d} + W_1 x_t + b        (x_{t-d} = 0 for t < d)

    written as one linear map of the concatenation [x_{t-d}, x_t].

    Args:
      in_features, out_features: channel counts.
      dilation: d >= 1.
      rngs: ``nnx.Rngs`` for initialisation.
    """

    def __init__(self, in_features: int, out_features: int, dilation: int, *, rngs: nnx.Rngs):
        self.dilation = _check_positive("dilation", dilation)
        self.linear = nnx.Linear(2 * in_features, out_features, rngs=rngs)  # [W_0; W_1]

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: (B, T, in) -> (B, T, out)."""
        past = _shift_right(x, self.dilation)  # x_{t-d}, (B, T, in)
        return self.linear(jnp.concatenate([past, x], axis=-1))  # (B, T, out)


class WaveNet(nnx.Module):
    """WaveNet: gated dilated causal convolutions with residual and skip connections.

        h_0 = CausalConv_1(shift(x))                     (shift: x_{t-1}, so t sees only x_{<t})
        z_l = tanh(W_{f,l} *_{d_l} h) ⊙ σ(W_{g,l} *_{d_l} h)    (sec. 2.3, eq. 2)
        h_l = h_{l-1} + 1x1_res(z_l),   s_l = 1x1_skip(z_l)     (sec. 2.4, fig. 4)
        logits = 1x1(ReLU(1x1(ReLU(sum_l s_l))))          (B, T, num_levels)

    The logits at time t depend on x_{t-R} .. x_{t-1} only, with the receptive field
    R = 2 + sum(dilations) (the shift, the width-2 first convolution, then each layer).

    Args:
      num_levels: K, the number of quantisation levels (e.g. of :func:`mu_law_encode`).
      rngs: ``nnx.Rngs`` for initialisation.
      residual_channels: channels of h.
      skip_channels: channels of the skip sum.
      dilations: d_l of each layer (WaveNet doubles them: 1, 2, 4, ...).
      in_features: channels of the float input x.
    """

    def __init__(self, num_levels: int, *, rngs: nnx.Rngs, residual_channels: int = 32,
                 skip_channels: int = 32, dilations=(1, 2, 4, 8, 16, 32), in_features: int = 1):
        self.num_levels = _check_positive("num_levels", num_levels)
        residual_channels = _check_positive("residual_channels", residual_channels)
        skip_channels = _check_positive("skip_channels", skip_channels)
        in_features = _check_positive("in_features", in_features)
        dilations = tuple(dilations)
        if not dilations:
            raise ValueError("dilations must name at least one layer")
        for i, d in enumerate(dilations):
            _check_positive(f"dilations[{i}]", d)
        self.dilations = dilations
        self.in_features = in_features
        self.receptive_field = 2 + sum(dilations)
        self.first = CausalConv1d(in_features, residual_channels, 1, rngs=rngs)
        self.filter_gate = nnx.List([
            CausalConv1d(residual_channels, 2 * residual_channels, d, rngs=rngs)
            for d in dilations
        ])
        self.residual = nnx.List([nnx.Linear(residual_channels, residual_channels, rngs=rngs)
                                  for _ in dilations])
        self.skip = nnx.List([nnx.Linear(residual_channels, skip_channels, rngs=rngs)
                              for _ in dilations])
        self.hidden = nnx.Linear(skip_channels, skip_channels, rngs=rngs)
        self.out = nnx.Linear(skip_channels, self.num_levels, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: (B, T, in_features) float -> (B, T, K) logits of x_t given x_{<t}."""
        if x.ndim != 3 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must have shape (B, T, {self.in_features}), got {x.shape}")
        h = self.first(_shift_right(x, 1))  # (B, T, R): depends on x_{t-2}, x_{t-1}
        skips = 0.0
        for conv, res, skip in zip(self.filter_gate, self.residual, self.skip, strict=True):
            z = _gate(conv(h))  # (B, T, R)
            h = h + res(z)  # residual
            skips = skips + skip(z)  # (B, T, S)
        return _read_out(skips, self.hidden, self.out)  # (B, T, K)


def mu_law_encode(x: jax.Array, num_levels: int) -> jax.Array:
    """mu-law companding and quantisation (WaveNet, sec. 2.2), mu = K - 1.

        f(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu),   level = round((f(x) + 1) / 2 * mu)

    Args:
      x: (...) values in [-1, 1] (clipped).
      num_levels: K >= 2.

    Returns:
      (...) int32 levels in {0 .. K-1}.
    """
    if int(num_levels) != num_levels or num_levels < 2:
        raise ValueError(f"num_levels must be an integer >= 2, got {num_levels!r}")
    mu = float(num_levels - 1)
    x = jnp.clip(jnp.asarray(x, jnp.float32), -1.0, 1.0)
    f = jnp.sign(x) * jnp.log1p(mu * jnp.abs(x)) / np.log1p(mu)
    return jnp.round((f + 1.0) / 2.0 * mu).astype(jnp.int32)


def mu_law_decode(levels: jax.Array, num_levels: int) -> jax.Array:
    """The inverse of :func:`mu_law_encode` (up to quantisation): levels -> values in [-1, 1].

        f = 2 level / mu - 1,   x = sign(f) ((1 + mu)^|f| - 1) / mu
    """
    if int(num_levels) != num_levels or num_levels < 2:
        raise ValueError(f"num_levels must be an integer >= 2, got {num_levels!r}")
    mu = float(num_levels - 1)
    f = 2.0 * jnp.asarray(levels).astype(jnp.float32) / mu - 1.0
    return jnp.sign(f) * jnp.expm1(jnp.abs(f) * np.log1p(mu)) / mu


@functools.partial(jax.jit, static_argnames=("temperature",))
def wavenet_sample_from_noise(model: WaveNet, gumbel: jax.Array, *,
                              temperature: float = 1.0) -> jax.Array:
    """Draw sequences one step at a time with the noise given (one jitted scan).

        for t = 0 .. T - 1:   x_t = argmax_k (logits_t(x_{<t})_k / tau + g_{t,k})

    The network input is :func:`levels_to_input` of the levels drawn so far.

    Args:
      model: a :class:`WaveNet` with ``in_features == 1``.
      gumbel: (T, n, K) standard Gumbel noise.
      temperature: tau > 0.

    Returns:
      (n, T) int32 levels.
    """
    _check_temperature(temperature)
    T, n, K = gumbel.shape
    if K != model.num_levels:
        raise ValueError(f"gumbel has {K} levels, the model {model.num_levels}")

    def step(levels, t):
        logits = model(levels_to_input(levels, K)[..., None])  # (n, T, K)
        at_t = jax.lax.dynamic_index_in_dim(logits, t, axis=1, keepdims=False)  # (n, K)
        new = _categorical_step(at_t, gumbel[t], temperature)  # (n,)
        return levels.at[:, t].set(new), None

    levels, _ = jax.lax.scan(step, jnp.zeros((n, T), jnp.int32), jnp.arange(T, dtype=jnp.int32))
    return levels


def wavenet_sample(key: jax.Array, model: WaveNet, n: int, length: int, *,
                   temperature: float = 1.0) -> jax.Array:
    """n sequences of ``length`` levels drawn from the model: (n, length) int32."""
    n = _check_positive("n", n)
    length = _check_positive("length", length)
    gumbel = jax.random.gumbel(key, (length, n, model.num_levels))
    return wavenet_sample_from_noise(model, gumbel, temperature=temperature)
