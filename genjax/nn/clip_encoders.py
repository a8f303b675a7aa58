"""Small CLIP encoders: a convolutional image encoder and a character transformer.

Both map their input to a shared embedding space of size ``embed_dim`` (Radford et al.
2021, sec. 2.4); the contrastive loss normalises the outputs, so the encoders end in a
plain linear projection.

* :class:`ConvImageEncoder` -- stride-2 3x3 convolutions with GroupNorm and SiLU, then an
  MLP head on the flattened feature map (a small stand-in for CLIP's ResNet/ViT; an 8x8
  digit becomes 2x2 after two halvings).
* :class:`CharTextEncoder` -- the text transformer of CLIP at toy size: token + learned
  position embeddings, pre-LayerNorm :class:`genjax.nn.TransformerBlock` layers with a
  *causal* mask, a final LayerNorm, and the feature at the ``<eos>`` token projected to the
  embedding ("the activations of the highest layer of the transformer at the [EOS] token
  are treated as the feature representation of the text", Radford et al. 2021, sec. 2.4).
  With the causal mask, tokens up to ``<eos>`` never see the padding, so no padding mask
  is needed. It returns the pooled embedding *and* the per-token features, which a
  text-to-image model attends to by cross-attention (Rombach et al. 2022, sec. 3.3).

References:
  Radford et al., "Learning Transferable Visual Models From Natural Language
    Supervision", ICML 2021.
  Rombach et al., "High-Resolution Image Synthesis with Latent Diffusion Models", CVPR 2022.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from genjax import checks
from genjax.nn.attention import TransformerBlock
from genjax.nn.mlp import MLP


class ConvImageEncoder(nnx.Module):
    """``images (B, H, W, C) -> embeddings (B, embed_dim)``.

        h = SiLU(GN(Conv3x3_stride2(h)))          once per entry of ``widths``
        emb = MLP(flatten(h))                     (hidden ``hidden`` units, SiLU)

    Args:
      in_channels: C.
      embed_dim: output size.
      image_size: (H, W); each must be divisible by ``2 ** len(widths)``.
      widths: channels of the successive stride-2 convolutions.
      hidden: width of the MLP head.
      num_groups: GroupNorm groups (divide every width).
      rngs: ``nnx.Rngs`` for initialisation.

    Example:
      >>> enc = ConvImageEncoder(1, 32, rngs=nnx.Rngs(0))
      >>> enc(jnp.zeros((4, 8, 8, 1))).shape
      (4, 32)
    """

    def __init__(
        self,
        in_channels: int,
        embed_dim: int,
        *,
        image_size: tuple[int, int] = (8, 8),
        widths: Sequence[int] = (32, 64),
        hidden: int = 128,
        num_groups: int = 8,
        rngs: nnx.Rngs,
    ):
        widths = tuple(checks.positive_int("widths", w) for w in widths)
        if not widths:
            raise ValueError("widths must be non-empty")
        factor = 2 ** len(widths)
        h, w = (int(s) for s in image_size)
        if h % factor or w % factor:
            raise ValueError(
                f"image_size {image_size} must be divisible by 2**len(widths) = {factor}"
            )
        for width in widths:
            if width % num_groups:
                raise ValueError(f"num_groups={num_groups} must divide every width, got {width}")
        self.in_channels = checks.positive_int("in_channels", in_channels)
        self.image_size = (h, w)
        convs, norms, c = [], [], self.in_channels
        for width in widths:
            convs.append(nnx.Conv(c, width, (3, 3), strides=2, rngs=rngs))
            norms.append(nnx.GroupNorm(width, num_groups, rngs=rngs))
            c = width
        self.convs = nnx.List(convs)
        self.norms = nnx.List(norms)
        flat = (h // factor) * (w // factor) * c
        hidden = checks.positive_int("hidden", hidden)
        self.head = MLP(flat, [hidden], checks.positive_int("embed_dim", embed_dim), rngs=rngs)

    def __call__(self, images: jax.Array) -> jax.Array:
        """images: (B, H, W, C) -> (B, embed_dim)."""
        if images.ndim != 4 or images.shape[1:] != (*self.image_size, self.in_channels):
            raise ValueError(
                f"images must have shape (B, {self.image_size[0]}, {self.image_size[1]}, "
                f"{self.in_channels}), got {images.shape}"
            )
        h = images
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = nnx.silu(norm(conv(h)))  # (B, H/2, W/2, width)
        B = h.shape[0]
        return self.head(h.reshape(B, -1))  # (B, h*w*c) -> (B, embed_dim)


class CharTextEncoder(nnx.Module):
    """``tokens (B, L) -> (pooled (B, embed_dim), token features (B, L, width))``.

        x_0 = E_tok[tokens] + E_pos[0..L-1]                       (B, L, width)
        x_l = TransformerBlock_l(x_{l-1})   (causal, pre-LN)       l = 1..depth
        feats = LN(x_depth)                                        (B, L, width)
        pooled = feats[b, eos_b] W_proj                            (B, embed_dim)

    Args:
      vocab_size: number of token ids.
      max_length: L, the longest token sequence (size of the position table).
      embed_dim: size of the pooled embedding (the shared CLIP space).
      width: token feature size; divisible by ``num_heads``.
      depth: transformer blocks.
      num_heads: attention heads.
      eos_id: the id of the end-of-text token the pooled feature is read at.
      rngs: ``nnx.Rngs`` for initialisation.

    Example:
      >>> enc = CharTextEncoder(10, 6, 4, width=8, depth=1, num_heads=2, eos_id=2,
      ...                       rngs=nnx.Rngs(0))
      >>> pooled, features = enc(jnp.array([[5, 6, 2, 0, 0, 0]]))  # eos at position 2
      >>> pooled.shape, features.shape
      ((1, 4), (1, 6, 8))
    """

    def __init__(
        self,
        vocab_size: int,
        max_length: int,
        embed_dim: int,
        *,
        width: int = 64,
        depth: int = 2,
        num_heads: int = 4,
        eos_id: int = 2,
        rngs: nnx.Rngs,
    ):
        self.vocab_size = checks.positive_int("vocab_size", vocab_size)
        self.max_length = checks.positive_int("max_length", max_length)
        self.width = checks.positive_int("width", width)
        depth = checks.positive_int("depth", depth)
        self.eos_id = checks.int_in_range("eos_id", eos_id, 0, vocab_size - 1)
        init = nnx.initializers.normal(0.02)  # GPT-2 / CLIP embedding initialisation
        self.token_embed = nnx.Embed(vocab_size, width, embedding_init=init, rngs=rngs)
        self.pos_embed = nnx.Param(init(rngs.params(), (max_length, width)))  # (L, width)
        self.blocks = nnx.List(
            [TransformerBlock(width, num_heads, causal=True, rngs=rngs) for _ in range(depth)]
        )
        self.norm = nnx.LayerNorm(width, rngs=rngs)
        self.proj = nnx.Linear(
            width, checks.positive_int("embed_dim", embed_dim), use_bias=False,
            kernel_init=nnx.initializers.normal(1.0 / math.sqrt(width)), rngs=rngs,
        )

    def __call__(self, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
        """tokens: (B, L) int ids, each row holding one ``eos_id`` -> (pooled, features).

        Returns:
          pooled: (B, embed_dim) the projected feature at each row's ``<eos>``.
          features: (B, L, width) the final LayerNorm'd token features.
        """
        if tokens.ndim != 2 or not 1 <= tokens.shape[1] <= self.max_length:
            raise ValueError(
                f"tokens must have shape (B, L) with L <= {self.max_length}, got {tokens.shape}"
            )
        # ids outside [0, V) index past the embedding table (NaN) or wrap around, and a row
        # without <eos> would be pooled at index 0: rejected while the ids are concrete
        checks.token_ids("tokens", jnp.asarray(tokens), self.vocab_size)
        if checks.is_concrete(tokens):
            has_eos = np.any(np.asarray(tokens) == self.eos_id, axis=1)
            if not has_eos.all():
                raise ValueError(f"tokens: every row must hold eos_id={self.eos_id} (the pooled "
                                 f"position), row {int(np.argmin(has_eos))} has none")
        B, L = tokens.shape
        x = self.token_embed(tokens) + self.pos_embed[...][None, :L]  # (B, L, width)
        for block in self.blocks:
            x = block(x)  # causal self-attention + MLP, (B, L, width)
        feats = self.norm(x)  # (B, L, width)
        eos = jnp.argmax(tokens == self.eos_id, axis=1)  # (B,) first <eos> of each row
        pooled = jnp.take_along_axis(feats, eos[:, None, None], axis=1)[:, 0]  # (B, width)
        return self.proj(pooled), feats
