"""The CLIP model: an image encoder, a text encoder and a learned temperature.

    f: images (B, H, W, C) -> (B, E)       :class:`genjax.nn.ConvImageEncoder`
    g: tokens (B, L) -> (B, E), (B, L, W)  :class:`genjax.nn.CharTextEncoder` (pooled, per token)
    t: ()                                  log logit scale, ``s = exp(min(t, log 100))``
    b: ()                                  logit bias (SigLIP only)

trained by :func:`clip_model_loss` (Radford et al. 2021, Figure 3; or SigLIP's sigmoid loss,
Zhai et al. 2023), which follows the model protocol: ``(model, batch, key)`` with the CLIP
Module as the differentiated pytree. The per-token text features are what
:mod:`genjax.composites.text_to_image` conditions a U-Net on.

References:
  Radford et al., "Learning Transferable Visual Models From Natural Language
    Supervision", ICML 2021.
  Zhai, Mustafa, Kolesnikov, Beyer, "Sigmoid Loss for Language Image Pre-Training",
    ICCV 2023.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import checks
from genjax.contrastive import captions
from genjax.contrastive.loss import (
    INIT_LOG_LOGIT_SCALE,
    SIGLIP_INIT_LOGIT_BIAS,
    clip_loss,
    clipped_logit_scale,
    sigmoid_loss,
)
from genjax.model import model_jit
from genjax.nn.clip_encoders import CharTextEncoder, ConvImageEncoder

__all__ = ["CLIP", "clip_model_loss", "OBJECTIVES"]

OBJECTIVES = ("clip", "siglip")
"""The contrastive objectives: ``"clip"`` (symmetric InfoNCE) or ``"siglip"`` (pairwise sigmoid)."""


class CLIP(nnx.Module):
    """Image and text encoders into one ``embed_dim`` space, plus the log logit scale.

    Args:
      embed_dim: E, the shared embedding size.
      image_channels, image_size: the images' C and (H, W).
      image_widths, image_hidden: the conv widths and MLP head of the image encoder.
      text_width, text_depth, num_heads: the character transformer's token size, blocks
        and heads.
      vocab_size, max_length: the tokeniser's (default: :mod:`genjax.contrastive.captions`).
      init_log_logit_scale: t at initialisation (``log(1/0.07)``, Radford et al. 2021; SigLIP
        starts at ``log 10``).
      init_logit_bias: b at initialisation (-10, Zhai et al. 2023); used by SigLIP's loss only.
      rngs: ``nnx.Rngs`` for initialisation.

    Example:
      >>> model = CLIP(embed_dim=8, image_widths=(8, 8), image_hidden=16, text_width=8,
      ...              text_depth=1, num_heads=2, rngs=nnx.Rngs(0))
      >>> model.encode_image(jnp.zeros((2, 8, 8, 1))).shape
      (2, 8)
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
        init_logit_bias: float = SIGLIP_INIT_LOGIT_BIAS,
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
        self.logit_bias = nnx.Param(jnp.asarray(init_logit_bias, jnp.float32))

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
    model: CLIP, batch: tuple[jax.Array, jax.Array], key: jax.Array | None = None, *,
    objective: str = "clip",
) -> tuple[jax.Array, dict]:
    """The contrastive loss of a batch of (image, caption) pairs through the encoders.

        u = f(images), v = g(tokens), s = exp(min(t, log 100))
        loss = clip_loss(u, v, s)          (objective "clip", Radford et al. 2021, Figure 3)
             | sigmoid_loss(u, v, s, b)    (objective "siglip", Zhai et al. 2023, Algorithm 1)

    Args:
      model: the :class:`CLIP` Module (a pytree: ``jax.grad`` differentiates it).
      batch: ``(images (B, H, W, C), tokens (B, L))``, caption row i describing image i.
      key: unused (the loss is deterministic); kept for the ``(model, batch, key)`` protocol.
      objective: ``"clip"`` or ``"siglip"`` (static).

    One compiled program per model structure, shapes and objective: the model is traced.

    Returns:
      ``(loss, {"logit_scale", "accuracy"})``: ``accuracy`` is the fraction of images
      whose own caption is the most similar in the batch (ties with same-class captions
      count against it, so it stays below 1 on digits).

    Example:
      >>> model = CLIP(embed_dim=8, image_widths=(8, 8), image_hidden=16, text_width=8,
      ...              text_depth=1, num_heads=2, rngs=nnx.Rngs(0))
      >>> tokens = jnp.zeros((2, captions.MAX_LENGTH), jnp.int32).at[:, 0].set(captions.EOS)
      >>> loss, metrics = clip_model_loss(model, (jnp.zeros((2, 8, 8, 1)), tokens))
      >>> round(float(loss), 4)  # identical pairs: every logit equal, log 2
      0.6931
    """
    checks.one_of("objective", objective, OBJECTIVES)
    images, tokens = batch
    checks.ndim("tokens", tokens, 2, "(batch, length)")
    if jnp.shape(tokens)[0] != jnp.shape(images)[0]:
        raise ValueError(f"tokens must hold one caption per image: {jnp.shape(tokens)[0]} "
                         f"captions for {jnp.shape(images)[0]} images")
    captions.check_model_tokens("tokens", tokens, model)  # ids and <eos>, when concrete
    checks.finite("images", images)
    return _clip_model_loss(model, (images, tokens), key, objective=objective)


@functools.partial(model_jit, static_argnames=("objective",))
def _clip_model_loss(model: CLIP, batch: tuple[jax.Array, jax.Array], key: jax.Array | None,
                     *, objective: str) -> tuple[jax.Array, dict]:
    del key
    images, tokens = batch
    u = model.encode_image(images)  # (B, E)
    v, _ = model.encode_text(tokens)  # (B, E)
    scale = model.logit_scale()
    if objective == "clip":
        loss = clip_loss(u, v, scale)
    else:
        loss = sigmoid_loss(u, v, scale, model.logit_bias[...])
    sims = jnp.einsum("id,jd->ij", u, v)  # (B, B) unnormalised; argmax only needs row order
    norms = jnp.linalg.norm(v, axis=1)  # (B,)
    hit = jnp.argmax(sims / norms[None, :], axis=1) == jnp.arange(u.shape[0])
    return loss, {"logit_scale": scale, "accuracy": jnp.mean(hit.astype(jnp.float32))}
