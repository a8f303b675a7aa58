"""The CLIP model: an image encoder, a text encoder and a learned temperature.

    f: images (B, H, W, C) -> (B, E)       :class:`genjax.nn.ConvImageEncoder`
    g: tokens (B, L) -> (B, E), (B, L, W)  :class:`genjax.nn.CharTextEncoder` (pooled, per token)
    t: ()                                  log logit scale, ``s = exp(min(t, log 100))``

trained by :func:`clip_model_loss` (Radford et al. 2021, Figure 3). The per-token text
features are what :mod:`genjax.contrastive.text_to_image` conditions a U-Net on.

References:
  Radford et al., "Learning Transferable Visual Models From Natural Language
    Supervision", ICML 2021.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from genjax.contrastive import captions
from genjax.contrastive.loss import INIT_LOG_LOGIT_SCALE, clip_loss, clipped_logit_scale
from genjax.nn.clip_encoders import CharTextEncoder, ConvImageEncoder

__all__ = ["CLIP", "clip_model_loss"]


class CLIP(nnx.Module):
    """Image and text encoders into one ``embed_dim`` space, plus the log logit scale.

    Args:
      embed_dim: E, the shared embedding size.
      image_channels, image_size: the images' C and (H, W).
      image_widths, image_hidden: the conv widths and MLP head of the image encoder.
      text_width, text_depth, num_heads: the character transformer's token size, blocks
        and heads.
      vocab_size, max_length: the tokeniser's (default: :mod:`genjax.contrastive.captions`).
      init_log_logit_scale: t at initialisation (``log(1/0.07)``, Radford et al. 2021).
      rngs: ``nnx.Rngs`` for initialisation.
    """

    def __init__(
        self,
        *,
        embed_dim: int = 32,
        image_channels: int = 1,
        image_size: tuple[int, int] = (8, 8),
        image_widths: Sequence[int] = (32, 64),
        image_hidden: int = 128,
        text_width: int = 64,
        text_depth: int = 2,
        num_heads: int = 4,
        vocab_size: int = captions.VOCAB_SIZE,
        max_length: int = captions.MAX_LENGTH,
        init_log_logit_scale: float = INIT_LOG_LOGIT_SCALE,
        rngs: nnx.Rngs,
    ):
        self.image_encoder = ConvImageEncoder(
            image_channels, embed_dim, image_size=image_size, widths=image_widths,
            hidden=image_hidden, rngs=rngs,
        )
        self.text_encoder = CharTextEncoder(
            vocab_size, max_length, embed_dim, width=text_width, depth=text_depth,
            num_heads=num_heads, eos_id=captions.EOS, rngs=rngs,
        )
        self.log_logit_scale = nnx.Param(jnp.asarray(init_log_logit_scale, jnp.float32))

    def encode_image(self, images: jax.Array) -> jax.Array:
        """images: (B, H, W, C) -> (B, E) (unnormalised)."""
        return self.image_encoder(images)

    def encode_text(self, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
        """tokens: (B, L) -> (pooled (B, E), token features (B, L, text_width))."""
        return self.text_encoder(tokens)

    def logit_scale(self) -> jax.Array:
        """() ``s = exp(min(t, log 100))``."""
        return clipped_logit_scale(self.log_logit_scale[...])


def clip_model_loss(
    model: CLIP, images: jax.Array, tokens: jax.Array
) -> tuple[jax.Array, dict]:
    """CLIP's loss of a batch of (image, caption) pairs, with metrics.

    Args:
      model: the :class:`CLIP` model.
      images: (B, H, W, C) images.
      tokens: (B, L) caption tokens, row i describing image i.

    Returns:
      ``(loss, {"logit_scale", "accuracy"})``: ``accuracy`` is the fraction of images
      whose own caption is the most similar in the batch (ties with same-class captions
      count against it, so it stays below 1 on digits).
    """
    u = model.encode_image(images)  # (B, E)
    v, _ = model.encode_text(tokens)  # (B, E)
    scale = model.logit_scale()
    loss = clip_loss(u, v, scale)
    sims = jnp.einsum("id,jd->ij", u, v)  # (B, B) unnormalised; argmax only needs row order
    norms = jnp.linalg.norm(v, axis=1)  # (B,)
    hit = jnp.argmax(sims / norms[None, :], axis=1) == jnp.arange(u.shape[0])
    return loss, {"logit_scale": scale, "accuracy": jnp.mean(hit.astype(jnp.float32))}
