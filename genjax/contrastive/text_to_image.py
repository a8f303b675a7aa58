"""Text-to-image diffusion steered by a CLIP text encoder (cross-attention + CFG).

The recipe of latent diffusion and Imagen at toy size:

1. **Text conditioning.** A caption's tokens go through the (frozen) CLIP text encoder;
   its per-token features ``c = g_tokens(caption)`` of shape ``(B, L, W)`` are the context
   that every attention block of the :class:`genjax.nn.UNet` attends to by
   cross-attention (Rombach et al. 2022, sec. 3.3: ``Attention(Q = W_Q h, K = W_K c,
   V = W_V c)``). Imagen (Saharia et al. 2022, sec. 2.1) also keeps the text encoder
   frozen.
2. **Training** is the simplified DDPM objective (Ho et al. 2020, eq. 14),
   ``|eps - eps_theta(x_t, t, c)|^2``, with **caption dropout**: each caption is replaced
   by the empty caption with probability ``p_uncond`` (Ho & Salimans 2022, Algorithm 1),
   so one network learns both ``eps(x_t, t, c)`` and ``eps(x_t, t, null)``.
3. **Sampling** is DDIM (Song et al. 2021) on the classifier-free guided prediction
   (Ho & Salimans 2022, eq. 6, genjax's convention)::

       eps = eps(x_t, t, null) + scale * (eps(x_t, t, c) - eps(x_t, t, null))

   both halves from one network call on the doubled batch ``[x_t; x_t]`` with contexts
   ``[c; null]``.

References:
  Rombach et al., "High-Resolution Image Synthesis with Latent Diffusion Models", CVPR 2022.
  Saharia et al., "Photorealistic Text-to-Image Diffusion Models with Deep Language
    Understanding" (Imagen), NeurIPS 2022.
  Ho, Salimans, "Classifier-Free Diffusion Guidance", 2022.
  Ho, Jain, Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020.
  Song, Meng, Ermon, "Denoising Diffusion Implicit Models", ICLR 2021.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from genjax.diffusion.guidance import guided
from genjax.diffusion.loss import loss as diffusion_loss
from genjax.diffusion.sample import ddim_sample
from genjax.diffusion.schedules import Schedule

__all__ = ["caption_dropout", "text_to_image_loss", "guided_context_eps_fn", "sample"]

# eps_fn_ctx(x_t (B, H, W, C), t (B,), context (B, L, W)) -> (B, H, W, C)
ContextEpsFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def caption_dropout(
    key: jax.Array, tokens: jax.Array, p_uncond: float, null_tokens: jax.Array
) -> jax.Array:
    """Replace each caption by the null (empty) caption with probability ``p_uncond``.

    Args:
      key: PRNG key.
      tokens: (B, L) int caption tokens.
      p_uncond: drop probability in [0, 1] (0.1 as Ho & Salimans 2022 and Stable Diffusion).
      null_tokens: (L,) the empty caption.

    Returns:
      (B, L) tokens, some rows replaced by ``null_tokens``.
    """
    if not 0.0 <= p_uncond <= 1.0:
        raise ValueError(f"p_uncond must be in [0, 1], got {p_uncond!r}")
    tokens = jnp.asarray(tokens)
    null_tokens = jnp.asarray(null_tokens, tokens.dtype)
    if tokens.ndim != 2 or null_tokens.shape != tokens.shape[1:]:
        raise ValueError(
            f"tokens must be (B, L) and null_tokens (L,), got {tokens.shape} and "
            f"{null_tokens.shape}"
        )
    drop = jax.random.bernoulli(key, p_uncond, tokens.shape[:1])  # (B,) True = drop
    return jnp.where(drop[:, None], null_tokens[None, :], tokens)  # (B, L)


def text_to_image_loss(
    net: object,
    x0: jax.Array,
    context: jax.Array,
    key: jax.Array,
    *,
    apply_fn: Callable[[object, jax.Array, jax.Array, jax.Array], jax.Array],
    schedule: Schedule,
) -> tuple[jax.Array, dict]:
    """The DDPM eps-loss of a context-conditioned denoiser (Ho et al. 2020, eq. 14).

        t ~ U{0..T-1}, eps ~ N(0, I), x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps
        loss = mean |eps - eps_theta(x_t, t, context)|^2

    Args:
      net: the denoiser's parameters (differentiated).
      x0: (B, H, W, C) clean images in [-1, 1].
      context: (B, L, W) text token features (already dropped out where unconditional).
      key: PRNG key.
      apply_fn: ``apply_fn(net, x_t, t, context) -> eps`` of x_t's shape.
      schedule: the noise schedule.

    Returns:
      ``(loss, metrics)``.
    """
    context = jnp.asarray(context)
    if context.ndim != 3 or context.shape[0] != x0.shape[0]:
        raise ValueError(
            f"context must have shape ({x0.shape[0]}, L, W) to match x0, got {context.shape}"
        )
    return diffusion_loss(
        net, x0, key, apply_fn=lambda n, x_t, t: apply_fn(n, x_t, t, context), schedule=schedule
    )


def guided_context_eps_fn(
    eps_fn_ctx: ContextEpsFn,
    context: jax.Array,
    null_context: jax.Array,
    scale: float | jax.Array,
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """A sampler's ``eps_fn(x_t, t)`` with classifier-free guidance on a text context.

        eps = eps(x_t, t, null) + scale * (eps(x_t, t, c) - eps(x_t, t, null))

    One network call per step, on ``[x_t; x_t]`` with contexts ``[c; null]``.

    Args:
      eps_fn_ctx: ``(x_t (B, ...), t (B,), context (B, L, W)) -> (B, ...)``.
      context: (B, L, W) the captions' token features.
      null_context: (B, L, W) the empty caption's features (or (1, L, W), broadcast).
      scale: guidance scale (0 unconditional, 1 conditional); may be traced.

    Returns:
      ``eps_fn(x_t (B, ...), t (B,)) -> (B, ...)``.
    """
    context = jnp.asarray(context)
    null_context = jnp.broadcast_to(jnp.asarray(null_context, context.dtype), context.shape)

    def eps_fn(x_t: jax.Array, t: jax.Array) -> jax.Array:
        if x_t.shape[0] != context.shape[0]:
            raise ValueError(
                f"x_t has batch {x_t.shape[0]} but {context.shape[0]} contexts were given"
            )
        both = eps_fn_ctx(
            jnp.concatenate([x_t, x_t]),  # (2B, ...)
            jnp.concatenate([t, t]),  # (2B,)
            jnp.concatenate([context, null_context]),  # (2B, L, W)
        )
        eps_cond, eps_uncond = jnp.split(both, 2)  # 2 x (B, ...)
        return guided(eps_cond, eps_uncond, scale)

    return eps_fn


def sample(
    key: jax.Array,
    eps_fn_ctx: ContextEpsFn,
    context: jax.Array,
    null_context: jax.Array,
    image_shape: tuple[int, ...],
    schedule: Schedule,
    *,
    num_steps: int,
    guidance_scale: float | jax.Array,
    clip_x0: float | None = 1.0,
) -> jax.Array:
    """Draw one image per caption by guided DDIM (eta = 0).

    Args:
      key: PRNG key (the initial noise).
      eps_fn_ctx: the context-conditioned noise prediction.
      context: (B, L, W) caption token features.
      null_context: (B or 1, L, W) the empty caption's features.
      image_shape: (H, W, C) of one image.
      schedule: the noise schedule the network was trained with.
      num_steps: DDIM steps (static).
      guidance_scale: the CFG scale (traced: one compiled sampler serves every scale).
      clip_x0: clip DDIM's x0 estimate to ``[-clip_x0, clip_x0]`` (the data range).

    Returns:
      (B, H, W, C) samples in the data space ([-1, 1] for digits).
    """
    context = jnp.asarray(context)
    if context.ndim != 3:
        raise ValueError(f"context must have shape (B, L, W), got {context.shape}")
    eps_fn = guided_context_eps_fn(eps_fn_ctx, context, null_context, guidance_scale)
    shape = (context.shape[0], *image_shape)
    return ddim_sample(key, eps_fn, shape, schedule, num_steps=num_steps, clip_x0=clip_x0)
