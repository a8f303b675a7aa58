"""CLIP-guided generation (VQGAN+CLIP): optimise a decoder's latent to match a caption.

Crowson et al. (2022, sec. 3) generate an image for a text prompt with no generative
training at all: a decoder's continuous latent ``z`` (the VQGAN's, before quantisation) is
optimised by Adam so that CLIP's embedding of the decoded image approaches the prompt's
embedding::

    x(z) = clip_[0,1](Dec(q(z)))               q: nearest code, straight-through
    u_a = f_image(aug_a(x(z)))                 a = 1 .. A augmented views
    L(z) = (1/A) sum_a d(u_a, v),   v = g_text(prompt)
    d(u, v) = 2 arcsin(|u^ - v^| / 2)^2        squared spherical distance, u^ = u / |u|
    z <- Adam(z, grad_z L)                     num_steps times

``q(z) = z + sg(e_{k*} - z)`` (van den Oord et al. 2017, eq. 1-2) keeps every decoded image
on the decoder's code grid, where the decoder was trained, while the gradient passes
straight through to the continuous ``z``; Crowson et al. use random crops ("cutouts") as
augmentations so that the image, not an adversarial pattern, raises the similarity. On 8x8
digits the augmentations are random shifts by up to ``max_shift`` pixels (``jnp.roll``).

The functions are generic over the decoder: any pytree ``model`` with
``model.decode(z) -> images (n, H, W, C)`` in [0, 1] works (the VQ-VAE of
:mod:`genjax.vae.quantize`, a VQGAN), with ``model.codebook`` (``(K, D)``, an array or an
``nnx.Param``) when ``quantize=True``. CLIP is any pytree with ``encode_image(images in
[-1, 1]) -> (n, E)`` and ``encode_text(tokens) -> ((n, E), ...)``
(:class:`genjax.contrastive.CLIP`). Both are traced arguments (:func:`genjax.model.model_jit`):
new weights reuse the compiled optimisation. All noise -- the initial latents and the
shifts -- is injectable through :func:`clip_guided_from_noise`.

References:
  Crowson, Biderman, Kornis, Stander, Hallahan, Castricato, Raff, "VQGAN-CLIP: Open
    Domain Image Generation and Editing with Natural Language Guidance", ECCV 2022.
  Esser, Rombach, Ommer, "Taming Transformers for High-Resolution Image Synthesis", CVPR
    2021.
  van den Oord, Vinyals, Kavukcuoglu, "Neural Discrete Representation Learning", NeurIPS
    2017.
  Radford et al., "Learning Transferable Visual Models From Natural Language
    Supervision", ICML 2021.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from genjax import checks
from genjax.model import Model, model_jit

__all__ = [
    "GuidedResult",
    "spherical_distance",
    "decode_latents",
    "initial_latents",
    "draw_shifts",
    "clip_guided",
    "clip_guided_from_noise",
]


class GuidedResult(NamedTuple):
    """What :func:`clip_guided` returns."""

    images: jax.Array  # (n, H, W, C) in [0, 1]: the decoded final latents
    latents: jax.Array  # (n, *latent_shape) the optimised continuous latents
    loss_trace: jax.Array  # (num_steps,) mean augmented loss L(z) before each step
    distance: jax.Array  # (n,) d(f_image(images), v) of the final, unaugmented images


def spherical_distance(u: jax.Array, v: jax.Array) -> jax.Array:
    """``d(u, v) = 2 arcsin(|u^ - v^| / 2)^2`` over the last axis (Crowson et al. 2022).

    Equal to ``theta^2 / 2`` for the angle theta between u and v; 0 when aligned, pi^2/2
    when opposite. Args broadcast: u (..., E), v (..., E) -> (...).

    Computed as ``2 atan2(|u^ - v^|, |u^ + v^|)^2``: the chord is ``|u^ - v^| = 2 sin(theta/2)``
    and ``|u^ + v^| = 2 cos(theta/2)``, so ``atan2`` gives ``arcsin(|u^ - v^| / 2) =
    theta / 2`` without arcsin's infinite slope near opposite vectors (in float32 a
    one-ulp error there moved d by ~4e-4 relative). The norms are taken as
    ``sqrt(where(s > 0, s, 1))`` so that the gradient at u^ = v^ is 0, not NaN.
    """

    def safe_norm(a):
        sq = jnp.sum(a * a, axis=-1)
        return jnp.where(sq > 0, jnp.sqrt(jnp.where(sq > 0, sq, 1.0)), 0.0)

    uh = u / jnp.linalg.norm(u, axis=-1, keepdims=True)  # u^
    vh = v / jnp.linalg.norm(v, axis=-1, keepdims=True)  # v^
    half_theta = jnp.arctan2(safe_norm(uh - vh), safe_norm(uh + vh))  # = arcsin(|u^-v^|/2)
    return 2.0 * half_theta**2


def _codebook(model: Model) -> jax.Array:
    codebook = getattr(model, "codebook", None)
    if codebook is None:
        raise ValueError("model: quantize=True needs a model with a codebook (K, D) attribute")
    return jnp.asarray(codebook[...])


def decode_latents(model: Model, z: jax.Array, *, quantize: bool = True) -> jax.Array:
    """``x(z) = clip_[0,1](Dec(q(z)))``: the images of latents ``z (n, *latent_shape)``.

    With ``quantize`` the last axis of ``z`` is snapped to the nearest codebook vector with
    the straight-through gradient (van den Oord et al. 2017, eq. 1-2):
    ``q(z) = z + sg(e_{k*} - z)``.
    """
    if quantize:
        codebook = _codebook(model)  # (K, D)
        # k* = argmin_k |z - e_k|^2 = argmin_k (|e_k|^2 - 2 z.e_k)
        sq_norms = jnp.sum(codebook**2, axis=-1).reshape((1,) * (z.ndim - 1) + (-1,))
        scores = sq_norms - 2.0 * z @ codebook.T  # (..., K)
        e = jnp.take(codebook, jnp.argmin(scores, axis=-1), axis=0)  # e_{k*}
        z = z + jax.lax.stop_gradient(e - z)  # straight-through
    return jnp.clip(model.decode(z), 0.0, 1.0)


def initial_latents(key: jax.Array, model: Model, n: int, latent_shape: Sequence[int], *,
                    quantize: bool = True, noise_scale: float = 0.1) -> jax.Array:
    """Starting latents ``(n, *latent_shape)``: with ``quantize``, a uniformly random code
    at every latent position plus ``N(0, noise_scale^2)`` (so that no latent sits exactly on
    a Voronoi boundary), else ``N(0, I)``."""
    n = checks.positive_int("n", n)
    shape = tuple(checks.positive_int("latent_shape", s) for s in latent_shape)
    if not shape:
        raise ValueError("latent_shape must be non-empty")
    checks.nonnegative("noise_scale", noise_scale)
    k_code, k_noise = jax.random.split(key)
    if not quantize:
        return jax.random.normal(k_noise, (n, *shape))
    codebook = _codebook(model)
    if shape[-1] != codebook.shape[1]:
        raise ValueError(f"latent_shape must end in the code size {codebook.shape[1]}, got "
                         f"{shape}")
    codes = jax.random.randint(k_code, (n, *shape[:-1]), 0, codebook.shape[0])
    return codebook[codes] + noise_scale * jax.random.normal(k_noise, (n, *shape))


def draw_shifts(key: jax.Array, num_steps: int, num_augmentations: int,
                max_shift: int) -> jax.Array:
    """Random pixel shifts ``(num_steps, A, 2)`` int32, uniform in ``[-max_shift, max_shift]``."""
    num_steps = checks.positive_int("num_steps", num_steps)
    A = checks.positive_int("num_augmentations", num_augmentations)
    s = checks.nonnegative_int("max_shift", max_shift)
    return jax.random.randint(key, (num_steps, A, 2), -s, s + 1).astype(jnp.int32)


@functools.partial(model_jit, model_argnames=("model", "clip"),
                   static_argnames=("quantize",))
def _optimise(model: Model, clip: Model, tokens: jax.Array, z0: jax.Array,
              shifts: jax.Array, learning_rate: jax.Array, *, quantize: bool) -> GuidedResult:
    v = jax.lax.stop_gradient(clip.encode_text(tokens)[0])  # (n, E) prompt embeddings
    opt = optax.adam(learning_rate)

    def loss_fn(z, shift):  # shift (A, 2)
        x = decode_latents(model, z, quantize=quantize)  # (n, H, W, C) in [0, 1]
        views = jax.vmap(lambda s: jnp.roll(x, (s[0], s[1]), axis=(1, 2)))(shift)  # (A, n, ...)
        A, n = views.shape[:2]
        u = clip.encode_image(2.0 * views.reshape(A * n, *x.shape[1:]) - 1.0)  # [-1, 1]
        d = spherical_distance(u.reshape(A, n, -1), v[None])  # (A, n)
        per_image = jnp.mean(d, axis=0)  # L(z_i): mean over the views
        return jnp.sum(per_image), per_image  # latents are independent: sum = per-image steps

    def step(carry, shift):
        z, state = carry
        (_, per_image), grad = jax.value_and_grad(loss_fn, has_aux=True)(z, shift)
        updates, state = opt.update(grad, state, z)
        return (optax.apply_updates(z, updates), state), jnp.mean(per_image)

    (z, _), trace = jax.lax.scan(step, (z0, opt.init(z0)), shifts)
    images = decode_latents(model, z, quantize=quantize)
    distance = spherical_distance(clip.encode_image(2.0 * images - 1.0), v)
    return GuidedResult(images, z, trace, distance)


def clip_guided_from_noise(model: Model, clip: Model, tokens: jax.Array, z0: jax.Array,
                           shifts: jax.Array, *, learning_rate: float = 0.1,
                           quantize: bool = True) -> GuidedResult:
    """:func:`clip_guided` on given noise: the starting latents and the shifts.

    Args:
      model: the decoder pytree (``decode``; ``codebook`` when ``quantize``).
      clip: the CLIP pytree (``encode_image``, ``encode_text``).
      tokens: (n, L) int caption tokens, one prompt per image.
      z0: (n, *latent_shape) float starting latents (:func:`initial_latents`).
      shifts: (num_steps, A, 2) int pixel shifts of the A views at each step
        (:func:`draw_shifts`; all zeros: no augmentation).
      learning_rate: Adam's step size, > 0.
      quantize: snap latents to the codebook (straight-through) before decoding.

    Returns:
      A :class:`GuidedResult`.
    """
    checks.ndim("tokens", tokens, 2, "(n, L)")
    checks.integer_array("tokens", tokens)
    checks.floating("z0", z0)
    if jnp.ndim(z0) < 2 or jnp.shape(z0)[0] != jnp.shape(tokens)[0]:
        raise ValueError(f"z0 must have shape (n, *latent_shape) with n = {jnp.shape(tokens)[0]} "
                         f"(one latent per prompt row), got {jnp.shape(z0)}")
    checks.shape("shifts", shifts, (None, None, 2))
    checks.integer_array("shifts", shifts)
    if 0 in jnp.shape(shifts):
        raise ValueError(f"shifts must have shape (num_steps >= 1, A >= 1, 2), got "
                         f"{jnp.shape(shifts)}")
    checks.positive("learning_rate", learning_rate)
    checks.finite("learning_rate", learning_rate)
    if quantize:
        _codebook(model)
    return _optimise(model, clip, jnp.asarray(tokens, jnp.int32), jnp.asarray(z0, jnp.float32),
                     jnp.asarray(shifts, jnp.int32), jnp.float32(learning_rate),
                     quantize=bool(quantize))


def clip_guided(key: jax.Array, model: Model, clip: Model, tokens: jax.Array,
                latent_shape: Sequence[int], *, num_steps: int = 100,
                learning_rate: float = 0.1, num_augmentations: int = 4, max_shift: int = 1,
                quantize: bool = True, noise_scale: float = 0.1) -> GuidedResult:
    """Images for captions by optimising a decoder's latents against CLIP (VQGAN+CLIP).

    Draws ``z0`` (:func:`initial_latents`) and the shifts (:func:`draw_shifts`) from
    ``key``, then runs ``num_steps`` Adam steps on ``L(z)`` (module docstring) in one
    compiled ``lax.scan``.

    Args:
      key: PRNG key.
      model: decoder pytree: ``model.decode(z (n, *latent_shape)) -> (n, H, W, C)`` in
        [0, 1], and ``model.codebook`` (K, D) when ``quantize``.
      clip: CLIP pytree (:class:`genjax.contrastive.CLIP`).
      tokens: (n, L) int caption tokens (:func:`genjax.contrastive.captions.tokenize`).
      latent_shape: one image's latent shape, e.g. ``(M, D)`` for the VQ-VAE.
      num_steps: Adam steps, >= 1.
      learning_rate: Adam's step size, > 0.
      num_augmentations: A >= 1 shifted views per step.
      max_shift: largest shift in pixels, >= 0 (0: every view is the image itself).
      quantize: decode ``q(z)`` (straight-through) rather than ``z``.
      noise_scale: std of the noise added to the initial codes, >= 0.

    Returns:
      A :class:`GuidedResult` (images, latents, loss trace, final distances).
    """
    checks.ndim("tokens", tokens, 2, "(n, L)")
    n = jnp.shape(tokens)[0]
    checks.positive_int("num_steps", num_steps)  # before any draw: fail fast
    checks.positive_int("num_augmentations", num_augmentations)
    checks.nonnegative_int("max_shift", max_shift)
    k_init, k_shift = jax.random.split(key)
    z0 = initial_latents(k_init, model, n, latent_shape, quantize=quantize,
                         noise_scale=noise_scale)
    shifts = draw_shifts(k_shift, num_steps, num_augmentations, max_shift)
    return clip_guided_from_noise(model, clip, tokens, z0, shifts, learning_rate=learning_rate,
                                  quantize=quantize)
