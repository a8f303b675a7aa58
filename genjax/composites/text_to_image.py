"""Text-to-image diffusion steered by a CLIP text encoder (cross-attention + CFG).

Where the contrastive and diffusion families meet. The recipe of latent diffusion and Imagen
at toy size:

1. **Text conditioning.** A caption's tokens go through the (frozen) CLIP text encoder;
   its per-token features ``c = g_tokens(caption)`` of shape ``(B, L, W)``
   (:func:`text_context`) are the context that every attention block of the
   :class:`genjax.nn.UNet` attends to by cross-attention (Rombach et al. 2022, sec. 3.3:
   ``Attention(Q = W_Q h, K = W_K c, V = W_V c)``). Imagen (Saharia et al. 2022, sec. 2.1)
   also keeps the text encoder frozen.
2. **Training** is the simplified DDPM objective (Ho et al. 2020, eq. 14),
   ``|eps - eps_theta(x_t, t, c)|^2`` (:func:`text_to_image_loss`, through
   :func:`genjax.diffusion.loss`), with **caption dropout**: each caption is replaced by the
   empty caption with probability ``p_uncond`` (Ho & Salimans 2022, Algorithm 1), so one
   network learns both ``eps(x_t, t, c)`` and ``eps(x_t, t, null)``.
3. **Sampling** is DDIM (Song et al. 2021, :func:`genjax.diffusion.ddim_sample`) on the
   classifier-free guided prediction (Ho & Salimans 2022, eq. 6, genjax's convention)::

       eps = eps(x_t, t, null) + scale * (eps(x_t, t, c) - eps(x_t, t, null))

   both halves from one network call on the doubled batch ``[x_t; x_t]`` with contexts
   ``[c; null]`` (:class:`GuidedContextModel`).
4. **Negative prompts** (Stable Diffusion's ``negative_prompt``): the null context is
   replaced by a negative caption's, ``eps = eps(x_t, t, c_neg) + scale * (eps(x_t, t, c) -
   eps(x_t, t, c_neg))`` (:mod:`genjax.diffusion.guidance`), steering away from ``c_neg``;
   ``negative_context`` of :func:`sample` and :func:`sample_from_noise`.

The model protocol (DESIGN.md): the denoiser is a callable pytree
``model(x_t (B, H, W, C), t (B,), context=c (B, L, W)) -> eps (B, H, W, C)`` -- a
:class:`genjax.nn.UNet` built with ``context_dim`` -- traced, never static: new weights
reuse the compiled sampler. :class:`ContextModel` and :class:`GuidedContextModel` bind a
context (and a guidance scale) to it as pytrees, so they are models of the diffusion
family's ``(x_t, t)`` signature.

References:
  Rombach et al., "High-Resolution Image Synthesis with Latent Diffusion Models", CVPR 2022.
  Saharia et al., "Photorealistic Text-to-Image Diffusion Models with Deep Language
    Understanding" (Imagen), NeurIPS 2022.
  Ho, Salimans, "Classifier-Free Diffusion Guidance", 2022.
  Ho, Jain, Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020.
  Song, Meng, Ermon, "Denoising Diffusion Implicit Models", ICLR 2021.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp

from genjax import checks, diffusion
from genjax.contrastive import captions
from genjax.model import Model, model_jit

__all__ = [
    "ContextModel",
    "GuidedContextModel",
    "caption_dropout",
    "text_context",
    "text_to_image_loss",
    "guided_context_eps_fn",
    "sample",
    "sample_from_noise",
]

Schedule = Any  # genjax.diffusion.Schedule


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
    checks.probability("p_uncond", p_uncond)
    tokens = jnp.asarray(tokens)
    null_tokens = jnp.asarray(null_tokens, tokens.dtype)
    checks.ndim("tokens", tokens, 2, "(B, L)")
    checks.shape("null_tokens", null_tokens, tokens.shape[1:])
    drop = jax.random.bernoulli(key, p_uncond, tokens.shape[:1])  # (B,) True = drop
    return jnp.where(drop[:, None], null_tokens[None, :], tokens)  # (B, L)


def text_context(model: Model, tokens: jax.Array) -> jax.Array:
    """The frozen per-token text features a denoiser attends to: ``(m, L) -> (m, L, W)``.

    ``stop_gradient(model.encode_text(tokens)[1])``: no gradient reaches the text encoder
    from the diffusion loss (it is shaped by the contrastive objective alone, as CLIP's
    text encoder in Imagen and latent diffusion).

    Args:
      model: the contrastive model, a pytree with ``encode_text(tokens) -> (pooled,
        features (m, L, W))`` (:class:`genjax.contrastive.CLIP`); traced.
      tokens: ``(m, L)`` int token ids.
    """
    checks.ndim("tokens", tokens, 2, "(m, L)")
    checks.integer_array("tokens", tokens)
    captions.check_model_tokens("tokens", tokens, model)  # ids in [0, V) and <eos>
    return _text_context(model, tokens)


@model_jit
def _text_context(model: Model, tokens: jax.Array) -> jax.Array:
    return jax.lax.stop_gradient(model.encode_text(tokens)[1])


def _check_context(name: str, context: Any, batch: int | None = None) -> jax.Array:
    context = jnp.asarray(context)
    checks.ndim(name, context, 3, "(B, L, W)")
    if batch is not None and context.shape[0] not in (batch, 1):
        raise ValueError(f"{name} must have shape ({batch}, L, W) (or (1, L, W)) to match "
                         f"x_t, got {context.shape}")
    return context


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ContextModel:
    """A context-conditioned denoiser with its context bound: ``(x_t, t) -> eps``.

        model(x_t, t) = net(x_t, t, context=context)

    Attributes:
      model: ``net(x_t (B, ...), t (B,), context=c (B, L, W)) -> (B, ...)``.
      context: ``(B, L, W)`` the captions' token features (or ``(1, L, W)``, broadcast).

    Example:
      >>> net = jax.tree_util.Partial(lambda x, t, context: x + context.sum(axis=(1, 2))[:, None])
      >>> ContextModel(net, jnp.ones((2, 3, 4)))(jnp.zeros((2, 1)), jnp.zeros(2)).tolist()
      [[12.0], [12.0]]
    """

    model: Model
    context: jax.Array

    def __call__(self, x_t: jax.Array, t: jax.Array) -> jax.Array:
        context = _check_context("context", self.context, x_t.shape[0])
        context = jnp.broadcast_to(context, (x_t.shape[0], *context.shape[1:]))
        return self.model(x_t, t, context=context)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class GuidedContextModel:
    """Classifier-free guidance on a text context, a model ``(x_t, t) -> eps`` (a pytree).

        eps = eps(x_t, t, null) + scale * (eps(x_t, t, c) - eps(x_t, t, null))

    One network call per step, on ``[x_t; x_t]`` with contexts ``[c; null]``.

    Attributes:
      model: ``net(x_t (B, ...), t (B,), context=c (B, L, W)) -> (B, ...)``.
      context: ``(B, L, W)`` the captions' token features.
      null_context: ``(B or 1, L, W)`` the empty caption's features.
      scale: guidance scale (0 unconditional, 1 conditional); an array, traced.

    Example:
      >>> net = jax.tree_util.Partial(lambda x, t, context: x + context.sum(axis=(1, 2))[:, None])
      >>> m = GuidedContextModel(net, jnp.ones((1, 1, 1)), jnp.zeros((1, 1, 1)), jnp.asarray(2.0))
      >>> m(jnp.zeros((1, 1)), jnp.zeros(1)).tolist()  # 0 + 2 (1 - 0)
      [[2.0]]
    """

    model: Model
    context: jax.Array
    null_context: jax.Array
    scale: jax.Array

    def __call__(self, x_t: jax.Array, t: jax.Array) -> jax.Array:
        batch = x_t.shape[0]
        context = _check_context("context", self.context, batch)
        null = _check_context("null_context", self.null_context, batch)
        if context.shape[0] != batch:
            raise ValueError(f"x_t has batch {batch} but {context.shape[0]} contexts were given")
        null = jnp.broadcast_to(null.astype(context.dtype), context.shape)
        both = self.model(
            jnp.concatenate([x_t, x_t]),  # (2B, ...)
            jnp.concatenate([t, t]),  # (2B,)
            context=jnp.concatenate([context, null]),  # (2B, L, W)
        )
        eps_cond, eps_uncond = jnp.split(both, 2)  # 2 x (B, ...)
        return diffusion.guided(eps_cond, eps_uncond, self.scale)


def guided_context_eps_fn(
    model: Model, context: jax.Array, null_context: jax.Array, scale: float | jax.Array
) -> GuidedContextModel:
    """A sampler's model ``(x_t, t) -> eps`` with classifier-free guidance on a text context.

    Args:
      model: ``net(x_t (B, ...), t (B,), context=c (B, L, W)) -> (B, ...)``.
      context: (B, L, W) the captions' token features.
      null_context: (B, L, W) the empty caption's features (or (1, L, W), broadcast).
      scale: guidance scale (0 unconditional, 1 conditional); may be traced.

    Returns:
      the :class:`GuidedContextModel`: pass it to any diffusion sampler as its model.
    """
    context = _check_context("context", context)
    null_context = _check_context("null_context", null_context)
    if null_context.shape[1:] != context.shape[1:]:
        raise ValueError(f"null_context must have shape (B or 1, {context.shape[1]}, "
                         f"{context.shape[2]}) to match context, got {null_context.shape}")
    scale = jnp.asarray(scale, context.dtype)
    if scale.ndim != 0:
        raise ValueError(f"scale must be a scalar, got shape {scale.shape}")
    checks.finite("scale", scale)  # when concrete
    return GuidedContextModel(model, context, null_context, scale)


def text_to_image_loss(
    model: Model, batch: tuple[jax.Array, jax.Array], key: jax.Array, *, schedule: Schedule
) -> tuple[jax.Array, dict]:
    """The DDPM eps-loss of a context-conditioned denoiser (Ho et al. 2020, eq. 14).

        t ~ U{0..T-1}, eps ~ N(0, I), x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps
        loss = mean |eps - eps_theta(x_t, t, context)|^2

    :func:`genjax.diffusion.loss` of the :class:`ContextModel` that binds the context; one
    compiled program per shape (the model, the batch and the schedule traced).

    Args:
      model: the denoiser ``model(x_t, t, context=c) -> eps`` (differentiated).
      batch: ``(x0 (B, H, W, C) clean images in [-1, 1], context (B, L, W))`` -- the text
        token features, already dropped out where unconditional.
      key: PRNG key (``t`` and ``eps``, as :func:`genjax.diffusion.loss` draws them).
      schedule: the noise schedule.

    Returns:
      ``(loss, metrics)``.

    Example:
      >>> net = jax.tree_util.Partial(lambda x, t, context: jnp.zeros_like(x))
      >>> batch = (jnp.zeros((2, 4, 4, 1)), jnp.zeros((2, 3, 8)))
      >>> loss, metrics = text_to_image_loss(net, batch, jax.random.key(0),
      ...                                    schedule=diffusion.linear(100))
      >>> loss.shape, bool(loss > 0)  # predicting eps = 0 costs the noise's |eps|^2 / D
      ((), True)
    """
    x0, context = batch
    x0 = jnp.asarray(x0)
    context = _check_context("context", context)
    if context.shape[0] != x0.shape[0]:
        raise ValueError(
            f"context must have shape ({x0.shape[0]}, L, W) to match x0, got {context.shape}"
        )
    checks.finite("x0", x0)  # while concrete, before the compiled program
    checks.finite("context", context)
    return _text_to_image_loss(model, (x0, context), key, schedule=schedule)


@model_jit
def _text_to_image_loss(model: Model, batch: tuple[jax.Array, jax.Array], key: jax.Array, *,
                        schedule: Schedule) -> tuple[jax.Array, dict]:
    x0, context = batch
    return diffusion.loss(ContextModel(model, context), x0, key, schedule=schedule)


def sample_from_noise(
    model: Model,
    x_T: jax.Array,
    context: jax.Array,
    null_context: jax.Array,
    schedule: Schedule,
    *,
    num_steps: int,
    guidance_scale: float | jax.Array,
    clip_x0: float | None = 1.0,
    negative_context: jax.Array | None = None,
) -> jax.Array:
    """Guided DDIM (eta = 0) from a given start ``x_T``: the deterministic part of :func:`sample`.

    Args:
      model: the denoiser ``model(x_t, t, context=c) -> eps`` (traced).
      x_T: ``(B, H, W, C)`` the starting noise.
      context, null_context, schedule, num_steps, guidance_scale, clip_x0, negative_context:
        as in :func:`sample`.

    Returns:
      ``(B, H, W, C)`` samples.
    """
    _check_guidance(guidance_scale, x_T, context)
    return _sample_from_noise(model, x_T, context, null_context, schedule, num_steps=num_steps,
                              guidance_scale=guidance_scale, clip_x0=clip_x0,
                              negative_context=negative_context)


def _check_guidance(guidance_scale: Any, x: Any, context: Any) -> None:
    """The values a compiled sampler cannot check: a finite scale, one context per image."""
    checks.finite("guidance_scale", guidance_scale)  # when concrete
    context = _check_context("context", context)
    if x is not None and context.shape[0] != jnp.shape(x)[0]:
        raise ValueError(f"context must have shape ({jnp.shape(x)[0]}, L, W) to match x_T, "
                         f"got {context.shape}")


@functools.partial(model_jit, static_argnames=("num_steps", "clip_x0"))
def _sample_from_noise(model, x_T, context, null_context, schedule, *, num_steps,
                       guidance_scale, clip_x0, negative_context):
    if negative_context is not None:  # a negative prompt takes the null context's place
        null_context = _check_context("negative_context", negative_context)
    guided = guided_context_eps_fn(model, context, null_context, guidance_scale)
    return diffusion.ddim_sample_from_noise(guided, x_T, None, schedule, num_steps=num_steps,
                                            clip_x0=clip_x0)


def sample(
    key: jax.Array,
    model: Model,
    context: jax.Array,
    null_context: jax.Array,
    image_shape: tuple[int, ...],
    schedule: Schedule,
    *,
    num_steps: int,
    guidance_scale: float | jax.Array,
    clip_x0: float | None = 1.0,
    negative_context: jax.Array | None = None,
) -> jax.Array:
    """Draw one image per caption by guided DDIM (eta = 0).

    One compiled program per shape and step count: the model, the contexts and the guidance
    scale are traced (a new checkpoint, new captions or a new scale reuse it).

    Args:
      key: PRNG key: ``x_T = jax.random.normal(split(key)[0], (B, *image_shape))``, as
        :func:`genjax.diffusion.ddim_sample` draws it.
      model: the denoiser ``model(x_t, t, context=c) -> eps`` (traced; a
        :class:`genjax.nn.UNet` with ``context_dim``).
      context: (B, L, W) caption token features (:func:`text_context`).
      null_context: (B or 1, L, W) the empty caption's features.
      image_shape: (H, W, C) of one image (static).
      schedule: the noise schedule the network was trained with.
      num_steps: DDIM steps (static).
      guidance_scale: the CFG scale (traced: one compiled sampler serves every scale).
      clip_x0: clip DDIM's x0 estimate to ``[-clip_x0, clip_x0]`` (the data range; static).
      negative_context: (B or 1, L, W) a negative prompt's features, or None. When given it
        replaces ``null_context`` in the mix: ``eps = eps(c_neg) + scale * (eps(c) -
        eps(c_neg))`` (negative-prompt guidance; traced).

    Returns:
      (B, H, W, C) samples in the data space ([-1, 1] for digits).
    """
    image_shape = tuple(checks.positive_int("image_shape", d) for d in image_shape)
    _check_guidance(guidance_scale, None, context)
    return _sample(key, model, context, null_context, image_shape, schedule,
                   num_steps=num_steps, guidance_scale=guidance_scale, clip_x0=clip_x0,
                   negative_context=negative_context)


@functools.partial(model_jit, static_argnames=("image_shape", "num_steps", "clip_x0"))
def _sample(key, model, context, null_context, image_shape, schedule, *, num_steps,
            guidance_scale, clip_x0, negative_context):
    context = _check_context("context", context)
    if negative_context is not None:  # a negative prompt takes the null context's place
        null_context = _check_context("negative_context", negative_context, context.shape[0])
    guided = guided_context_eps_fn(model, context, null_context, guidance_scale)
    shape = (context.shape[0], *image_shape)
    return diffusion.ddim_sample(key, guided, shape, schedule, num_steps=num_steps,
                                 clip_x0=clip_x0)
