"""Text -> CLIP image embedding -> image: the unCLIP cascade of DALL-E 2 at toy size.

Ramesh et al. (2022) generate an image from a caption ``y`` in two stages:

    P(x | y) = P(x | z_i, y) P(z_i | y)                                    (Ramesh et al., eq. 1)

a **prior** ``P(z_i | y)`` that produces a CLIP image embedding ``z_i`` from the caption's
CLIP text embedding ``z_t``, and a **decoder** ``P(x | z_i)`` that draws an image from it.
Both are diffusion models here:

* **Embeddings** (:func:`image_embeddings`, :func:`text_embeddings`): the frozen CLIP
  encoders' outputs, unit-normalised (CLIP compares them by cosine) and multiplied by
  ``sqrt(E)`` so each of the ``E`` coordinates has variance about 1 -- the scale the
  variance-preserving schedules assume (as in the public DALL-E 2 reimplementation,
  ``image_embed_scale = sqrt(E)``). Gradients stop there: CLIP is shaped by its own loss.
* **Prior** (:class:`EmbeddingPrior`): an MLP ``eps_theta(z_t, t, z_text)`` trained with the
  simplified DDPM loss (Ho et al. 2020, eq. 14) on ``(z_i, z_t)`` pairs (:func:`prior_loss`),
  the text embedding replaced by zeros with probability ``p_uncond`` (Ho & Salimans 2022) so
  the prior is also unconditional. Ramesh et al. (sec. 2.1) use a decoder-only transformer
  predicting ``z_i`` directly; on 32-D embeddings an MLP predicting ``eps`` suffices.
  With class-conditional Gaussian embeddings ``z_i | c ~ N(mu_c, Sigma_c)`` the optimal
  prior is known: ``E[eps | z_t, c] = sigma C^{-1} (z_t - alpha mu_c)``, ``C = alpha^2
  Sigma_c + sigma^2 I`` (:meth:`genjax.targets.GaussianMixture.eps`), which the tests hold
  the trained prior to.
* **Decoder**: the text-to-image U-Net of :mod:`genjax.composites.text_to_image` with the
  image embedding as its one context token ``(B, 1, E)`` (Ramesh et al. sec. 2.1 project
  ``z_i`` into four extra context tokens and add it to the timestep embedding), trained with
  the embedding zeroed with probability ``p_uncond``, sampled with classifier-free guidance.
* **Sampling** (:func:`sample`, :func:`sample_from_noise`): guided DDIM on the prior,

      eps = eps(z, t, z_neg) + w (eps(z, t, z_text) - eps(z, t, z_neg))

  with ``z_neg`` the null (zero) embedding or a **negative prompt**'s text embedding
  (:mod:`genjax.diffusion.guidance`), the result projected back onto the sphere of radius
  ``sqrt(E)`` the decoder was trained on, then guided DDIM on the decoder.

Models follow DESIGN.md's protocol: the prior and decoder are traced pytrees (nnx Modules);
:class:`TextConditioned` and :class:`GuidedPrior` bind a text embedding (and a guidance
scale) to the prior as pytrees of the diffusion family's ``(x_t, t)`` signature.

References:
  Ramesh, Dhariwal, Nichol, Chu, Chen, "Hierarchical Text-Conditional Image Generation with
    CLIP Latents" (DALL-E 2 / unCLIP), arXiv:2204.06125, 2022.
  Radford et al., "Learning Transferable Visual Models From Natural Language Supervision",
    ICML 2021.
  Ho, Jain, Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020.
  Ho, Salimans, "Classifier-Free Diffusion Guidance", 2022.
  Song, Meng, Ermon, "Denoising Diffusion Implicit Models", ICLR 2021.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import checks, diffusion
from genjax.composites import text_to_image
from genjax.model import Model, model_jit
from genjax.nn.embeddings import sinusoidal_embedding
from genjax.nn.mlp import MLP

__all__ = [
    "EmbeddingPrior",
    "TextConditioned",
    "GuidedPrior",
    "to_sphere",
    "image_embeddings",
    "text_embeddings",
    "embedding_dropout",
    "prior_loss",
    "decoder_loss",
    "sample_embeddings",
    "sample",
    "sample_from_noise",
]

Schedule = Any  # genjax.diffusion.Schedule


def to_sphere(z: jax.Array) -> jax.Array:
    """``sqrt(E) z / |z|``: ``(B, E) -> (B, E)`` on the sphere where every coordinate has
    mean square 1 (zero rows stay zero: the null embedding)."""
    z = jnp.asarray(z)
    checks.ndim("z", z, 2, "(B, E)")
    norm = jnp.linalg.norm(z, axis=-1, keepdims=True)  # (B, 1)
    return jnp.sqrt(z.shape[-1]) * z / jnp.maximum(norm, 1e-12)


@functools.partial(model_jit, model_argnames=("clip",))
def image_embeddings(clip: Model, images: jax.Array) -> jax.Array:
    """``z_i = sqrt(E) f(x) / |f(x)|``, frozen: images ``(B, H, W, C)`` in the encoder's range
    -> ``(B, E)``. ``clip`` has ``encode_image`` (:class:`genjax.contrastive.CLIP`)."""
    checks.ndim("images", images, 4, "(B, H, W, C)")
    return jax.lax.stop_gradient(to_sphere(clip.encode_image(images)))


@functools.partial(model_jit, model_argnames=("clip",))
def text_embeddings(clip: Model, tokens: jax.Array) -> jax.Array:
    """``z_t = sqrt(E) g(y) / |g(y)|``, frozen: tokens ``(B, L)`` -> ``(B, E)`` (CLIP's pooled
    text embedding, the one it compares with images)."""
    checks.ndim("tokens", tokens, 2, "(B, L)")
    checks.integer_array("tokens", tokens)
    return jax.lax.stop_gradient(to_sphere(clip.encode_text(tokens)[0]))


def embedding_dropout(key: jax.Array, z: jax.Array, p_uncond: float) -> jax.Array:
    """Each row of ``z (B, E)`` replaced by the null (zero) embedding with probability
    ``p_uncond`` (Ho & Salimans 2022, Algorithm 1; Ramesh et al. sec. 2.1 zero the CLIP
    embedding 10% of the time)."""
    checks.probability("p_uncond", p_uncond)
    z = jnp.asarray(z)
    checks.ndim("z", z, 2, "(B, E)")
    keep = ~jax.random.bernoulli(key, p_uncond, z.shape[:1])  # (B,)
    return z * keep[:, None].astype(z.dtype)


class EmbeddingPrior(nnx.Module):
    """``eps_theta(z_t (B, E), t (B,), text (B, E)) -> (B, E)``: an MLP on ``[z_t, text,
    time embedding]``.

    Args:
      dim: E, the embedding size (>= 1).
      hidden: widths of the hidden layers (each >= 1).
      time_embed_dim: size of the sinusoidal time features and their learned embedding
        (even, >= 2).
      rngs: ``nnx.Rngs`` for initialisation.
    """

    def __init__(self, dim: int, hidden: tuple[int, ...] = (256, 256), *,
                 time_embed_dim: int = 64, rngs: nnx.Rngs):
        self.dim = checks.positive_int("dim", dim)
        hidden = tuple(checks.positive_int("hidden", h) for h in hidden)
        if not hidden:
            raise ValueError("hidden must name at least one layer width, got ()")
        self.time_embed_dim = checks.positive_int("time_embed_dim", time_embed_dim)
        if time_embed_dim % 2:
            raise ValueError(f"time_embed_dim must be an even integer >= 2, got {time_embed_dim}")
        self.time_mlp = MLP(time_embed_dim, [time_embed_dim], time_embed_dim, rngs=rngs)
        self.net = MLP(2 * dim + time_embed_dim, hidden, dim, rngs=rngs)

    def __call__(self, z_t: jax.Array, t: jax.Array, text: jax.Array) -> jax.Array:
        checks.shape("z_t", z_t, (None, self.dim))
        checks.shape("text", text, (z_t.shape[0], self.dim))
        emb = self.time_mlp(sinusoidal_embedding(t, self.time_embed_dim))  # (B, T_emb)
        return self.net(jnp.concatenate([z_t, text.astype(z_t.dtype), emb], axis=-1))


def _check_text(name: str, text: Any, batch: int | None = None) -> jax.Array:
    text = jnp.asarray(text)
    checks.ndim(name, text, 2, "(B, E)")
    if batch is not None and text.shape[0] not in (batch, 1):
        raise ValueError(f"{name} must have shape ({batch}, E) (or (1, E)), got {text.shape}")
    return text


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TextConditioned:
    """The prior with a text embedding bound: ``(z_t, t) -> prior(z_t, t, text)``.

    Attributes:
      model: ``prior(z_t (B, E), t (B,), text (B, E)) -> (B, E)``.
      text: ``(B, E)`` text embeddings (zero rows: unconditional), or ``(1, E)`` broadcast.
    """

    model: Model
    text: jax.Array

    def __call__(self, z_t: jax.Array, t: jax.Array) -> jax.Array:
        text = _check_text("text", self.text, z_t.shape[0])
        return self.model(z_t, t, jnp.broadcast_to(text, (z_t.shape[0], text.shape[1])))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class GuidedPrior:
    """The guided prior, a model ``(z_t, t) -> eps`` (a pytree):

        eps = eps(z_t, t, negative) + scale * (eps(z_t, t, text) - eps(z_t, t, negative))

    ``negative`` is the null (zero) embedding for classifier-free guidance, or a negative
    prompt's text embedding. One network call on ``[z_t; z_t]``.

    Attributes:
      model: ``prior(z_t (B, E), t (B,), text (B, E)) -> (B, E)``.
      text: ``(B, E)`` the prompts' text embeddings.
      negative: ``(B or 1, E)`` zeros or the negative prompts' embeddings.
      scale: guidance scale, a () array (traced).
    """

    model: Model
    text: jax.Array
    negative: jax.Array
    scale: jax.Array

    def __call__(self, z_t: jax.Array, t: jax.Array) -> jax.Array:
        batch = z_t.shape[0]
        text = _check_text("text", self.text, batch)
        if text.shape[0] != batch:
            raise ValueError(f"z_t has batch {batch} but {text.shape[0]} text embeddings")
        negative = jnp.broadcast_to(_check_text("negative", self.negative, batch).astype(
            text.dtype), text.shape)
        both = self.model(jnp.concatenate([z_t, z_t]), jnp.concatenate([t, t]),
                          jnp.concatenate([text, negative]))  # (2B, E)
        eps_cond, eps_neg = jnp.split(both, 2)  # 2 x (B, E)
        return diffusion.guided(eps_cond, eps_neg, self.scale)  # eps_neg + w (eps_c - eps_neg)


@model_jit
def prior_loss(
    model: Model, batch: tuple[jax.Array, jax.Array], key: jax.Array, *, schedule: Schedule
) -> tuple[jax.Array, dict]:
    """The prior's DDPM eps-loss (Ho et al. 2020, eq. 14) on ``(z_i, z_t)`` pairs.

        t ~ U{0..T-1}, eps ~ N(0, I), z_s = sqrt(abar_t) z_i + sqrt(1 - abar_t) eps
        loss = mean |eps - eps_theta(z_s, t, z_t)|^2

    Args:
      model: ``prior(z (B, E), t (B,), text (B, E)) -> (B, E)`` (differentiated).
      batch: ``(z_image (B, E), z_text (B, E))``, the text rows already dropped out
        (:func:`embedding_dropout`) where unconditional.
      key: PRNG key (``t`` and ``eps``, as :func:`genjax.diffusion.loss` draws them).
      schedule: the noise schedule.

    Returns:
      ``(loss, {"loss", "mse"})``.
    """
    z_image, z_text = (jnp.asarray(a) for a in batch)
    checks.ndim("z_image", z_image, 2, "(B, E)")
    checks.shape("z_text", z_text, z_image.shape)
    return diffusion.loss(TextConditioned(model, z_text), z_image, key, schedule=schedule)


def decoder_loss(
    model: Model, batch: tuple[jax.Array, jax.Array], key: jax.Array, *, schedule: Schedule
) -> tuple[jax.Array, dict]:
    """The decoder's DDPM eps-loss given image embeddings: batch ``(x0 (B, H, W, C) in
    [-1, 1], z_image (B, E))``, the embedding the one context token of the U-Net
    (:func:`genjax.composites.text_to_image.text_to_image_loss`)."""
    x0, z_image = batch
    z_image = jnp.asarray(z_image)
    checks.ndim("z_image", z_image, 2, "(B, E)")
    return text_to_image.text_to_image_loss(model, (x0, z_image[:, None, :]), key,
                                            schedule=schedule)


def _cascade(prior, decoder, text, negative, z_T, x_T, prior_schedule, decoder_schedule,
             prior_steps, decoder_steps, prior_scale, decoder_scale, clip_x0):
    """Prior DDIM from ``z_T``, onto the sphere, decoder DDIM from ``x_T``."""
    guided = GuidedPrior(prior, text, negative, prior_scale)
    z = diffusion.ddim_sample_from_noise(guided, z_T, None, prior_schedule, num_steps=prior_steps)
    z = to_sphere(z)  # the decoder was trained on embeddings of norm sqrt(E)
    null = jnp.zeros((1, 1, z.shape[-1]), z.dtype)
    images = text_to_image.sample_from_noise(decoder, x_T, z[:, None, :], null, decoder_schedule,
                                             num_steps=decoder_steps,
                                             guidance_scale=decoder_scale, clip_x0=clip_x0)
    return images, z


@functools.partial(model_jit, model_argnames=("prior",), static_argnames=("num_steps",))
def sample_embeddings(
    key: jax.Array,
    prior: Model,
    text: jax.Array,
    schedule: Schedule,
    *,
    num_steps: int,
    scale: float | jax.Array,
    negative_text: jax.Array | None = None,
) -> jax.Array:
    """The prior alone: image embeddings ``(B, E)`` for text embeddings ``(B, E)`` by guided
    DDIM (eta = 0), before the projection onto the sphere that :func:`sample` applies.

    Args:
      key: PRNG key; ``z_T = normal(split(key)[0], (B, E))`` (as :func:`sample` draws it).
      prior: ``prior(z (B, E), t (B,), text (B, E)) -> eps``.
      text: ``(B, E)`` text embeddings (zero rows: unconditional).
      schedule: the prior's schedule.
      num_steps: DDIM steps (static).
      scale: guidance scale (0 unconditional, 1 conditional; traced).
      negative_text: ``(B or 1, E)`` embeddings to guide away from, or None (null).
    """
    text, negative, scale = _check_sampling(text, negative_text, scale=scale)
    z_T = jax.random.normal(jax.random.split(key)[0], text.shape, text.dtype)  # (B, E)
    guided = GuidedPrior(prior, text, negative, scale)
    return diffusion.ddim_sample_from_noise(guided, z_T, None, schedule, num_steps=num_steps)


def _check_sampling(text, negative, **named_scales):
    text = _check_text("text", text)
    negative = (jnp.zeros((1, text.shape[1]), text.dtype) if negative is None
                else _check_text("negative_text", negative, text.shape[0]))
    checks.shape("negative_text", negative, (None, text.shape[1]))
    scales = []
    for name, value in named_scales.items():
        value = jnp.asarray(value, text.dtype)
        checks.ndim(name, value, 0, "(a scalar)")
        scales.append(value)
    return text, negative, *scales


@functools.partial(model_jit, model_argnames=("prior", "decoder"),
                   static_argnames=("prior_steps", "decoder_steps", "clip_x0"))
def sample_from_noise(
    prior: Model,
    decoder: Model,
    text: jax.Array,
    z_T: jax.Array,
    x_T: jax.Array,
    prior_schedule: Schedule,
    decoder_schedule: Schedule,
    *,
    prior_steps: int,
    decoder_steps: int,
    prior_scale: float | jax.Array,
    decoder_scale: float | jax.Array,
    negative_text: jax.Array | None = None,
    clip_x0: float | None = 1.0,
) -> tuple[jax.Array, jax.Array]:
    """The cascade (DDIM, eta = 0) from given starting noise: the deterministic part of
    :func:`sample`.

    Args:
      prior, decoder, text: as in :func:`sample`, and so are ``prior_schedule``,
        ``decoder_schedule``, ``prior_steps``, ``decoder_steps``, ``prior_scale``,
        ``decoder_scale``, ``negative_text`` and ``clip_x0``.
      z_T: ``(B, E)`` the prior's starting noise.
      x_T: ``(B, H, W, C)`` the decoder's starting noise.

    Returns:
      ``(images (B, H, W, C), z_image (B, E))``.
    """
    text, negative, prior_scale, decoder_scale = _check_sampling(
        text, negative_text, prior_scale=prior_scale, decoder_scale=decoder_scale)
    z_T, x_T = jnp.asarray(z_T), jnp.asarray(x_T)
    checks.shape("z_T", z_T, text.shape)
    checks.ndim("x_T", x_T, 4, "(B, H, W, C)")
    checks.shape("x_T", x_T, (text.shape[0], None, None, None))
    return _cascade(prior, decoder, text, negative, z_T, x_T, prior_schedule, decoder_schedule,
                    prior_steps, decoder_steps, prior_scale, decoder_scale, clip_x0)


@functools.partial(model_jit, model_argnames=("prior", "decoder"),
                   static_argnames=("image_shape", "prior_steps", "decoder_steps", "clip_x0"))
def sample(
    key: jax.Array,
    prior: Model,
    decoder: Model,
    text: jax.Array,
    image_shape: tuple[int, int, int],
    prior_schedule: Schedule,
    decoder_schedule: Schedule,
    *,
    prior_steps: int,
    decoder_steps: int,
    prior_scale: float | jax.Array,
    decoder_scale: float | jax.Array,
    negative_text: jax.Array | None = None,
    clip_x0: float | None = 1.0,
) -> tuple[jax.Array, jax.Array]:
    """Draw one image per text embedding: prior, then decoder (Ramesh et al. 2022, eq. 1).

    One compiled program per shape and step counts; the models, embeddings and scales are
    traced.

    Args:
      key: PRNG key; ``z_key, x_key = split(key)``, ``z_T = normal(z_key, (B, E))``,
        ``x_T = normal(x_key, (B, *image_shape))``.
      prior: ``prior(z (B, E), t (B,), text (B, E)) -> eps`` (:class:`EmbeddingPrior`).
      decoder: ``decoder(x_t, t, context=(B, 1, E)) -> eps`` (a :class:`genjax.nn.UNet`
        with ``context_dim = E``).
      text: ``(B, E)`` text embeddings (:func:`text_embeddings`).
      image_shape: ``(H, W, C)`` (static).
      prior_schedule, decoder_schedule: the schedules the two were trained with.
      prior_steps, decoder_steps: DDIM steps of each stage (static).
      prior_scale: the prior's guidance scale (0 unconditional, 1 conditional).
      decoder_scale: the decoder's classifier-free guidance scale on the image embedding.
      negative_text: ``(B or 1, E)`` negative prompts' text embeddings, replacing the null
        embedding in the prior's guided mix; None for the null embedding.
      clip_x0: the decoder's x0 clipping (the image range; static).

    Returns:
      ``(images (B, H, W, C), z_image (B, E))``: the images and the prior's embeddings.
    """
    text, negative, prior_scale, decoder_scale = _check_sampling(
        text, negative_text, prior_scale=prior_scale, decoder_scale=decoder_scale)
    image_shape = tuple(checks.positive_int("image_shape", s) for s in image_shape)
    if len(image_shape) != 3:
        raise ValueError(f"image_shape must be (H, W, C), got {image_shape}")
    z_key, x_key = jax.random.split(key)
    z_T = jax.random.normal(z_key, text.shape, text.dtype)  # (B, E)
    x_T = jax.random.normal(x_key, (text.shape[0], *image_shape), text.dtype)  # (B, H, W, C)
    return _cascade(prior, decoder, text, negative, z_T, x_T, prior_schedule, decoder_schedule,
                    prior_steps, decoder_steps, prior_scale, decoder_scale, clip_x0)
