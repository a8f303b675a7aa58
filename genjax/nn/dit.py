"""The diffusion transformer (DiT) of Peebles & Xie (2023): a noise-prediction network (NHWC).

An image ``x (B, H, W, C)`` is cut into ``N = (H/p)(W/p)`` non-overlapping ``p x p`` patches,
each flattened and linearly embedded into a token of size ``D`` (sec. 3.2, "Patchify"); fixed
2-D sine-cosine position embeddings are added (the ViT/MAE frequencies). The conditioning
vector is the sum of a time embedding and a class embedding (sec. 3.2, "adaLN-Zero block"):

    c = MLP_t(sinusoidal(t)) [+ Embed(y)]                                   (B, D)

and every transformer block is modulated by it, adaLN-Zero (sec. 3.2; the reference code's
``DiTBlock``)::

    (shift_1, scale_1, gate_1, shift_2, scale_2, gate_2) = W_ada SiLU(c) + b_ada    6 x (B, D)
    modulate(h, shift, scale) = h * (1 + scale) + shift                     (per token)
    x = x + gate_1 * MHA(modulate(LN(x), shift_1, scale_1))
    x = x + gate_2 * MLP(modulate(LN(x), shift_2, scale_2))                 (GELU, tanh form)

with ``LN`` a LayerNorm *without* learned scale and bias (eps 1e-6). ``W_ada, b_ada`` start at
zero, so every gate is 0 and every block is exactly the identity at initialisation — the
"Zero" of adaLN-Zero, after the zero-initialised residual branches of Goyal et al. (2017).
The final layer is an adaLN-modulated LayerNorm and a linear map to ``p * p * C_out`` values
per token, both zero-initialised (so the network predicts 0 at initialisation), and
"unpatchify" rearranges the tokens back into an image.

Without position embeddings every operation is per token except attention, which is
equivariant to a permutation of the tokens; so the network is then equivariant to a
permutation of the patches (a test holds it to that).

Variants chosen here (Peebles & Xie leave them open or use another): the network predicts
only ``eps`` (no learned covariance channels: genjax's samplers take ``eps(x_t, t)``; pass
``out_channels = 2 C`` for both); the timestep features are genjax's
:func:`~genjax.nn.sinusoidal_embedding` (sines first; DiT's code puts cosines first, a fixed
permutation of features); the class-embedding table has ``num_classes + 1`` rows, row
``num_classes`` being the null label of classifier-free guidance, as in DiT's code.

References:
  Peebles, Xie, "Scalable Diffusion Models with Transformers", ICCV 2023 (arXiv:2212.09748).
  Dosovitskiy et al., "An Image is Worth 16x16 Words" (ViT), ICLR 2021.
  He et al., "Masked Autoencoders Are Scalable Vision Learners" (MAE), CVPR 2022 — the 2-D
    sine-cosine position embedding.
  Goyal et al., "Accurate, Large Minibatch SGD", 2017 — zero-initialised residual branches.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import checks
from genjax.nn.attention import MultiHeadAttention
from genjax.nn.embeddings import sinusoidal_embedding
from genjax.nn.mlp import MLP

__all__ = [
    "patchify",
    "unpatchify",
    "sincos_position_embedding_2d",
    "modulate",
    "AdaLNZeroBlock",
    "FinalLayer",
    "DiT",
]

# DiT's code initialises every linear map by Xavier-uniform with zero bias (``initialize_weights``).
_XAVIER = nnx.initializers.xavier_uniform()
_ZERO = nnx.initializers.zeros_init()
_LN_EPS = 1e-6  # DiT's LayerNorm epsilon


def _linear(d_in: int, d_out: int, *, rngs: nnx.Rngs, zero: bool = False) -> nnx.Linear:
    return nnx.Linear(
        d_in, d_out, kernel_init=_ZERO if zero else _XAVIER, bias_init=_ZERO, rngs=rngs
    )


def _plain_layer_norm(dim: int, rngs: nnx.Rngs) -> nnx.LayerNorm:
    """LayerNorm without learned scale and bias: adaLN supplies both from the condition."""
    return nnx.LayerNorm(dim, epsilon=_LN_EPS, use_scale=False, use_bias=False, rngs=rngs)


def patchify(x: jax.Array, patch_size: int) -> jax.Array:
    """Cut images into non-overlapping square patches, one flattened patch per token.

        tokens[b, i * (W/p) + j, (u * p + v) * C + c] = x[b, i * p + u, j * p + v, c]

    Patches are numbered row by row (raster order); inside a patch the values are ordered
    ``(row u, column v, channel c)``.

    Args:
      x: (B, H, W, C) images, ``H`` and ``W`` divisible by ``patch_size``.
      patch_size: p, >= 1.

    Returns:
      (B, N, p * p * C) tokens with ``N = (H / p) (W / p)``.

    Example:
      >>> patchify(jnp.zeros((2, 8, 8, 1)), 2).shape
      (2, 16, 4)
    """
    p = checks.positive_int("patch_size", patch_size)
    checks.ndim("x", x, 4, "(B, H, W, C)")
    B, H, W, C = x.shape
    if H % p or W % p:
        raise ValueError(f"x: image size {H}x{W} must be divisible by patch_size={p}")
    h = x.reshape(B, H // p, p, W // p, p, C)  # (B, H/p, p, W/p, p, C)
    h = h.transpose(0, 1, 3, 2, 4, 5)  # (B, H/p, W/p, p, p, C)
    return h.reshape(B, (H // p) * (W // p), p * p * C)  # (B, N, p p C)


def unpatchify(tokens: jax.Array, patch_size: int, height: int, width: int) -> jax.Array:
    """Rearrange patch tokens back into images: the inverse of :func:`patchify`.

    Args:
      tokens: (B, N, p * p * C) with ``N = (height / p) (width / p)``.
      patch_size: p, >= 1.
      height, width: the image size, each divisible by ``patch_size``.

    Returns:
      (B, height, width, C) images.

    Example:
      >>> x = jnp.arange(32.0).reshape(2, 4, 4, 1)
      >>> bool(jnp.all(unpatchify(patchify(x, 2), 2, 4, 4) == x))
      True
    """
    p = checks.positive_int("patch_size", patch_size)
    height = checks.positive_int("height", height)
    width = checks.positive_int("width", width)
    if height % p or width % p:
        raise ValueError(f"height, width = {height}, {width} must be divisible by patch_size={p}")
    gh, gw = height // p, width // p
    checks.ndim("tokens", tokens, 3, "(B, N, p * p * C)")
    B, N, F = tokens.shape
    if N != gh * gw or F % (p * p):
        raise ValueError(
            f"tokens must have shape (B, N={gh * gw}, p*p*C) for a {height}x{width} image in "
            f"{p}x{p} patches, got {tokens.shape}"
        )
    C = F // (p * p)
    h = tokens.reshape(B, gh, gw, p, p, C)  # (B, H/p, W/p, p, p, C)
    h = h.transpose(0, 1, 3, 2, 4, 5)  # (B, H/p, p, W/p, p, C)
    return h.reshape(B, height, width, C)  # (B, H, W, C)


def sincos_position_embedding_2d(
    grid_h: int, grid_w: int, dim: int, *, dtype=jnp.float32
) -> jax.Array:
    """Fixed 2-D sine-cosine position embeddings of a ``grid_h x grid_w`` grid of patches.

    The MAE/DiT construction: half of the features embed the patch's row ``i``, half its
    column ``j``, each with the 1-D sinusoidal embedding of :func:`sinusoidal_embedding`
    (frequencies ``10000^(-k / (dim/4))``, sines then cosines)::

        pos[i * grid_w + j] = [sinusoidal(i, dim/2), sinusoidal(j, dim/2)]

    Args:
      grid_h, grid_w: the number of patch rows and columns, each >= 1.
      dim: D, divisible by 4.
      dtype: a float dtype for the result.

    Returns:
      (grid_h * grid_w, dim) in ``dtype``, in the raster order of :func:`patchify`.

    Example:
      >>> sincos_position_embedding_2d(4, 4, 8).shape
      (16, 8)
    """
    grid_h = checks.positive_int("grid_h", grid_h)
    grid_w = checks.positive_int("grid_w", grid_w)
    dim = checks.positive_int("dim", dim)
    if dim % 4:
        raise ValueError(f"dim must be divisible by 4 for 2-D sine-cosine embeddings, got {dim}")
    rows = jnp.repeat(jnp.arange(grid_h, dtype=dtype), grid_w)  # (N,) i of each patch
    cols = jnp.tile(jnp.arange(grid_w, dtype=dtype), grid_h)  # (N,) j of each patch
    return jnp.concatenate(
        [sinusoidal_embedding(rows, dim // 2), sinusoidal_embedding(cols, dim // 2)], axis=-1
    )  # (N, D)


def modulate(h: jax.Array, shift: jax.Array, scale: jax.Array) -> jax.Array:
    """adaLN modulation ``h * (1 + scale) + shift``, one shift and scale per example.

    Args:
      h: (B, N, D) normalised tokens.
      shift, scale: (B, D) each.

    Returns:
      (B, N, D).

    Example:
      >>> modulate(jnp.ones((1, 2, 3)), jnp.ones((1, 3)), jnp.ones((1, 3)))[0, 0].tolist()
      [3.0, 3.0, 3.0]
    """
    return h * (1.0 + scale[:, None, :]) + shift[:, None, :]  # broadcast over the N tokens


def _check_tokens_cond(tokens: jax.Array, cond: jax.Array, dim: int, cond_dim: int) -> None:
    checks.shape("tokens", tokens, ("B", "N", dim))
    checks.shape("cond", cond, (tokens.shape[0], cond_dim))


class AdaLNZeroBlock(nnx.Module):
    """A DiT block with adaLN-Zero conditioning (Peebles & Xie 2023, sec. 3.2, Fig. 3).

        (shift_1, scale_1, gate_1, shift_2, scale_2, gate_2) = W_ada SiLU(c) + b_ada
        x = x + gate_1 * MHA(modulate(LN(x), shift_1, scale_1))
        x = x + gate_2 * MLP(modulate(LN(x), shift_2, scale_2))

    ``W_ada`` and ``b_ada`` are zero at initialisation, so the block is the identity then.
    The attention is the shared :class:`~genjax.nn.MultiHeadAttention`; the MLP is
    ``Linear(D, mlp_ratio D) -> GELU (tanh) -> Linear(mlp_ratio D, D)``.

    Args:
      dim: D, the token size, divisible by ``heads``.
      heads: attention heads.
      cond_dim: size of the conditioning vector ``c``.
      mlp_ratio: hidden width of the MLP in units of D, > 0.
      rngs: ``nnx.Rngs`` for initialisation only.

    Example:
      >>> block = AdaLNZeroBlock(8, 2, 4, rngs=nnx.Rngs(0))
      >>> x = jnp.ones((3, 5, 8))
      >>> bool(jnp.all(block(x, jnp.ones((3, 4))) == x))  # identity at initialisation
      True
    """

    def __init__(
        self, dim: int, heads: int, cond_dim: int, *, mlp_ratio: float = 4.0, rngs: nnx.Rngs
    ):
        dim = checks.positive_int("dim", dim)
        heads = checks.positive_int("heads", heads)
        if dim % heads:
            raise ValueError(f"heads={heads} must divide dim={dim}")
        cond_dim = checks.positive_int("cond_dim", cond_dim)
        checks.positive("mlp_ratio", mlp_ratio)
        hidden = max(1, int(round(dim * float(mlp_ratio))))
        self.dim = dim
        self.cond_dim = cond_dim
        self.norm1 = _plain_layer_norm(dim, rngs)
        self.attn = MultiHeadAttention(dim, heads, rngs=rngs)
        self.norm2 = _plain_layer_norm(dim, rngs)
        self.mlp = MLP(dim, [hidden], dim, rngs=rngs, activation=nnx.gelu)  # GELU, tanh form
        self.adaln = _linear(cond_dim, 6 * dim, rngs=rngs, zero=True)  # adaLN-Zero: W, b = 0

    def __call__(
        self, tokens: jax.Array, cond: jax.Array, *, mask: jax.Array | None = None
    ) -> jax.Array:
        """Apply the block.

        Args:
          tokens: (B, N, D) tokens.
          cond: (B, cond_dim) conditioning vectors (time + class embedding).
          mask: optional bool attention mask broadcastable to (B, heads, N, N), True = may
            attend (e.g. a causal or factorised space-time mask); None attends everywhere.

        Returns:
          (B, N, D).
        """
        _check_tokens_cond(tokens, cond, self.dim, self.cond_dim)
        mods = self.adaln(nnx.silu(cond))  # (B, 6 D)
        shift1, scale1, gate1, shift2, scale2, gate2 = jnp.split(mods, 6, axis=-1)  # 6 x (B, D)
        h = modulate(self.norm1(tokens), shift1, scale1)  # (B, N, D)
        x = tokens + gate1[:, None, :] * self.attn(h, mask=mask)  # x + g_1 MHA(...)
        h = modulate(self.norm2(x), shift2, scale2)  # (B, N, D)
        return x + gate2[:, None, :] * self.mlp(h)  # x + g_2 MLP(...)


class FinalLayer(nnx.Module):
    """DiT's output layer: adaLN-modulated LayerNorm, then a linear map to patch values.

        (shift, scale) = W_ada SiLU(c) + b_ada
        out = W_out modulate(LN(x), shift, scale) + b_out        (B, N, out_features)

    ``W_ada, b_ada, W_out, b_out`` are all zero at initialisation (DiT's
    ``initialize_weights``), so the layer outputs 0 then.

    Args:
      dim: D, the token size.
      cond_dim: size of the conditioning vector ``c``.
      out_features: values per token, ``p * p * C_out`` for :func:`unpatchify`.
      rngs: ``nnx.Rngs`` for initialisation only.

    Example:
      >>> final = FinalLayer(8, 4, 12, rngs=nnx.Rngs(0))
      >>> final(jnp.ones((3, 5, 8)), jnp.ones((3, 4))).shape
      (3, 5, 12)
    """

    def __init__(self, dim: int, cond_dim: int, out_features: int, *, rngs: nnx.Rngs):
        self.dim = checks.positive_int("dim", dim)
        self.cond_dim = checks.positive_int("cond_dim", cond_dim)
        out_features = checks.positive_int("out_features", out_features)
        self.norm = _plain_layer_norm(self.dim, rngs)
        self.adaln = _linear(self.cond_dim, 2 * self.dim, rngs=rngs, zero=True)
        self.linear = _linear(self.dim, out_features, rngs=rngs, zero=True)

    def __call__(self, tokens: jax.Array, cond: jax.Array) -> jax.Array:
        """tokens: (B, N, D), cond: (B, cond_dim) -> (B, N, out_features)."""
        _check_tokens_cond(tokens, cond, self.dim, self.cond_dim)
        shift, scale = jnp.split(self.adaln(nnx.silu(cond)), 2, axis=-1)  # 2 x (B, D)
        return self.linear(modulate(self.norm(tokens), shift, scale))


class DiT(nnx.Module):
    """Diffusion transformer ``(x (B, H, W, C), t (B,)[, labels (B,)]) -> (B, H, W, C_out)``.

        tokens = Linear(patchify(x)) [+ pos]                   (B, N, D)
        c      = MLP_t(sinusoidal(t * time_scale)) [+ Embed(labels)]     (B, D)
        tokens = AdaLNZeroBlock_k(tokens, c),  k = 1 .. depth
        out    = unpatchify(FinalLayer(tokens, c))            (B, H, W, C_out)

    A drop-in replacement for :class:`~genjax.nn.UNet` as the model of every genjax
    diffusion sampler and loss (the same call signature).

    Args:
      in_channels: image channels C.
      patch_size: p; H and W must be divisible by it.
      dim: D, the token size, divisible by ``num_heads`` (and by 4 with position embeddings).
      depth: number of :class:`AdaLNZeroBlock`, >= 1.
      num_heads: attention heads.
      mlp_ratio: MLP hidden width in units of D.
      num_classes: classes for class conditioning, or None; row ``num_classes`` of the
        embedding table is the null label (classifier-free guidance).
      frequency_dim: size of the sinusoidal time features before the time MLP (256 in DiT),
        an even integer.
      out_channels: output channels (default ``in_channels``; ``2 C`` adds DiT's learned
        covariance channels).
      time_scale: ``t`` is multiplied by this before the sinusoidal embedding.
      position_embedding: add the fixed 2-D sine-cosine position embeddings (DiT does);
        False makes the network equivariant to permutations of the patches.
      rngs: ``nnx.Rngs`` for initialisation only.

    Example:
      >>> net = DiT(1, patch_size=2, dim=16, depth=1, num_heads=2, rngs=nnx.Rngs(0))
      >>> net(jnp.zeros((2, 8, 8, 1)), jnp.array([3, 7])).shape
      (2, 8, 8, 1)
    """

    def __init__(
        self,
        in_channels: int,
        *,
        patch_size: int = 2,
        dim: int = 64,
        depth: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        num_classes: int | None = None,
        frequency_dim: int = 256,
        out_channels: int | None = None,
        time_scale: float = 1.0,
        position_embedding: bool = True,
        rngs: nnx.Rngs,
    ):
        self.in_channels = checks.positive_int("in_channels", in_channels)
        self.patch_size = checks.positive_int("patch_size", patch_size)
        dim = checks.positive_int("dim", dim)
        depth = checks.positive_int("depth", depth)
        num_heads = checks.positive_int("num_heads", num_heads)
        if dim % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide dim={dim}")
        if position_embedding and dim % 4:
            raise ValueError(f"dim must be divisible by 4 for position embeddings, got {dim}")
        self.frequency_dim = checks.positive_int("frequency_dim", frequency_dim)
        if frequency_dim % 2:
            raise ValueError(f"frequency_dim must be an even integer >= 2, got {frequency_dim}")
        self.num_classes = (
            None if num_classes is None else checks.positive_int("num_classes", num_classes)
        )
        self.out_channels = checks.positive_int(
            "out_channels", self.in_channels if out_channels is None else out_channels
        )
        self.time_scale = float(checks.positive("time_scale", time_scale))
        self.position_embedding = bool(position_embedding)
        self.dim = dim
        p = self.patch_size
        self.patch_embed = _linear(p * p * self.in_channels, dim, rngs=rngs)  # conv p x p, stride p
        self.time_mlp = MLP(self.frequency_dim, [dim], dim, rngs=rngs)  # Linear, SiLU, Linear
        self.class_embed = (
            None if num_classes is None else nnx.Embed(self.num_classes + 1, dim, rngs=rngs)
        )
        self.blocks = nnx.List(
            [
                AdaLNZeroBlock(dim, num_heads, dim, mlp_ratio=mlp_ratio, rngs=rngs)
                for _ in range(depth)
            ]
        )
        self.final = FinalLayer(dim, dim, p * p * self.out_channels, rngs=rngs)

    def condition(
        self, t: jax.Array, labels: jax.Array | None, batch: int, dtype=jnp.float32
    ) -> jax.Array:
        """The conditioning vector ``c = MLP_t(sinusoidal(t)) [+ Embed(labels)]``, (B, D).

        Args:
          t: (B,) or () times (integer steps or floats).
          labels: (B,) int labels in ``[0, num_classes]``; required iff ``num_classes``.
          batch: B.
          dtype: the float dtype the time features are computed in.
        """
        if (labels is None) != (self.class_embed is None):
            raise ValueError(
                f"labels must be given iff num_classes is set (num_classes={self.num_classes})"
            )
        if jnp.ndim(t) > 1 or (jnp.ndim(t) == 1 and jnp.shape(t)[0] not in (1, batch)):
            raise ValueError(
                f"t must be a scalar or have shape (B,) = ({batch},), got {jnp.shape(t)}"
            )
        t = jnp.broadcast_to(jnp.asarray(t), (batch,)).astype(dtype)  # (B,)
        cond = self.time_mlp(sinusoidal_embedding(t * self.time_scale, self.frequency_dim))
        if self.class_embed is not None:  # labels in [0, num_classes]: num_classes is null
            checks.shape("labels", labels, (batch,))
            checks.token_ids("labels", jnp.asarray(labels), self.num_classes + 1)
            # The table's own dtype (nnx.Embed would cast a float64 table to float32).
            cond = cond + jnp.take(self.class_embed.embedding[...], labels, axis=0)  # (B, D)
        return cond

    def __call__(self, x: jax.Array, t: jax.Array, labels: jax.Array | None = None) -> jax.Array:
        """Predict a (B, H, W, out_channels) image (the noise ``eps``, for genjax's samplers).

        Args:
          x: (B, H, W, in_channels) images, H and W divisible by ``patch_size``.
          t: (B,) times (integer steps or floats), or a scalar for the whole batch.
          labels: (B,) int labels in ``[0, num_classes]``; required iff ``num_classes``.

        Returns:
          (B, H, W, out_channels) prediction in ``x``'s dtype.
        """
        checks.shape("x", x, ("B", "H", "W", self.in_channels))
        B, H, W, _ = x.shape
        p = self.patch_size
        if H % p or W % p:
            raise ValueError(f"x: image size {H}x{W} must be divisible by patch_size={p}")
        # Time features and positions in float32 at least (float64 when x is float64).
        dtype = jnp.promote_types(x.dtype, jnp.float32)
        cond = self.condition(t, labels, B, dtype)  # (B, D)
        tokens = self.patch_embed(patchify(x, p))  # (B, N, D)
        if self.position_embedding:
            pos = sincos_position_embedding_2d(H // p, W // p, self.dim, dtype=dtype)  # (N, D)
            tokens = tokens + pos[None]
        for block in self.blocks:
            tokens = block(tokens, cond)  # (B, N, D)
        out = self.final(tokens, cond)  # (B, N, p p C_out)
        return unpatchify(out, p, H, W).astype(x.dtype)  # (B, H, W, C_out)
