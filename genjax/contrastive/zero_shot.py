"""Zero-shot classification with a contrastive image-text model (Radford et al. 2021).

A trained CLIP classifies images into classes it was never trained to separate: each
class is described by text prompts ("a handwritten {}", "the digit {}"), the prompts are
embedded by the text encoder, and an image goes to the class whose text embedding is
closest in cosine similarity (Radford et al. 2021, sec. 3.1.2):

    w_k = normalise( mean_t normalise(g(prompt_t(class_k))) )     (prompt ensembling, sec. 3.1.4)
    logits_ik = s <u_i, w_k>,   u_i = f(image_i) / |f(image_i)|
    class_i = argmax_k logits_ik

Ensembling averages the *unit* template embeddings and renormalises the mean, so every
template counts equally and the class embedding stays on the sphere.

Two layers: the math over embeddings (:func:`zero_shot_logits`, :func:`zero_shot_classify`,
DESIGN.md's public API), and the same through a model's encoders --
:func:`encode_classes`, :func:`zero_shot_predict`, :func:`image_text_similarity` -- which
take the model (a pytree with ``encode_image(images) -> (n, E)`` and ``encode_text(tokens)
-> (pooled (m, E), per-token features)``, e.g. :class:`genjax.contrastive.CLIP`) as a traced
argument: one compilation per shape serves every checkpoint.

References:
  Radford et al., "Learning Transferable Visual Models From Natural Language
    Supervision", ICML 2021, sec. 3.1.2 and 3.1.4.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.contrastive import captions
from genjax.contrastive.loss import l2_normalize
from genjax.model import Model, model_jit

__all__ = [
    "format_prompts",
    "class_text_embeddings",
    "ensemble_class_embeddings",
    "zero_shot_logits",
    "zero_shot_classify",
    "encode_classes",
    "zero_shot_predict",
    "image_text_similarity",
]


def format_prompts(class_names: Sequence[str], templates: Sequence[str]) -> list[list[str]]:
    """``prompts[k][t] = templates[t].format(class_names[k])`` (templates hold ``"{}"``).

    Raises:
      ValueError: no classes, no templates, a template without ``"{}"``, or an empty
        class name or prompt.
    """
    class_names, templates = list(class_names), list(templates)
    if not class_names:
        raise ValueError("class_names must be non-empty")
    if not templates:
        raise ValueError("templates must be non-empty")
    for t in templates:
        if "{}" not in t:
            raise ValueError(f"templates: each template needs a '{{}}' slot, got {t!r}")
    for name in class_names:
        if not str(name).strip():
            raise ValueError(f"class_names: empty class name {name!r}")
    return [[t.format(name) for t in templates] for name in class_names]


def class_text_embeddings(
    encode_text: Callable[[list[str]], jax.Array], prompts: Sequence[Sequence[str]]
) -> jax.Array:
    """Embed ``T`` prompts for each of ``K`` classes: ``(K, T, D)``.

    Args:
      encode_text: ``list of m strings -> (m, D)`` text embeddings (tokeniser + encoder).
      prompts: K lists of T prompts each (e.g. from :func:`format_prompts`).

    Returns:
      (K, T, D) embeddings (unnormalised; :func:`ensemble_class_embeddings` normalises).

    Raises:
      ValueError: no classes, classes with different numbers of prompts, or an empty
        prompt.
    """
    prompts = [list(p) for p in prompts]
    if not prompts:
        raise ValueError("prompts must be non-empty (one list of prompts per class)")
    counts = {len(p) for p in prompts}
    if len(counts) != 1 or 0 in counts:
        raise ValueError(
            f"prompts: every class needs the same positive number of prompts, got {counts}"
        )
    for per_class in prompts:
        for prompt in per_class:
            if not isinstance(prompt, str) or not prompt.strip():
                raise ValueError(
                    f"prompts: every prompt must be a non-empty string, got {prompt!r}"
                )
    k, t = len(prompts), counts.pop()
    flat = [p for per_class in prompts for p in per_class]
    emb = jnp.asarray(encode_text(flat))  # (K T, D)
    if emb.ndim != 2 or emb.shape[0] != k * t:
        raise ValueError(f"encode_text must return ({k * t}, D) embeddings, got {emb.shape}")
    return emb.reshape(k, t, emb.shape[1])  # (K, T, D)


def ensemble_class_embeddings(class_text_emb: jax.Array) -> jax.Array:
    """Prompt ensembling: ``(K, T, D) -> (K, D)``, normalise -> mean over T -> normalise.

    A ``(K, D)`` input (one prompt per class) is only normalised.
    """
    e = jnp.asarray(class_text_emb)
    checks.finite("class_text_emb", e)  # when concrete
    if e.ndim == 2:
        return l2_normalize(e)
    if e.ndim != 3:
        raise ValueError(
            f"class_text_emb must have shape (classes, dim) or (classes, templates, dim), "
            f"got {e.shape}"
        )
    if e.shape[0] < 1 or e.shape[1] < 1:
        raise ValueError(f"class_text_emb needs >= 1 class and >= 1 template, got {e.shape}")
    return l2_normalize(jnp.mean(l2_normalize(e), axis=1))  # (K, D)


def zero_shot_logits(
    image_emb: jax.Array, class_text_emb: jax.Array, logit_scale: float | jax.Array = 1.0
) -> jax.Array:
    """Scaled cosine similarities of images to classes: ``(n, K)``.

        logits_ik = s <image_i / |image_i|, w_k>

    Args:
      image_emb: (n, D) image embeddings.
      class_text_emb: (K, D) or (K, T, D) (T prompt templates, ensembled).
      logit_scale: s > 0 (1 gives cosines; the trained scale gives CLIP's probabilities
        through a softmax).

    Returns:
      (n, K) logits.
    """
    image_emb = jnp.asarray(image_emb)
    w = ensemble_class_embeddings(class_text_emb)  # (K, D)
    if image_emb.ndim != 2 or image_emb.shape[1] != w.shape[1]:
        raise ValueError(
            f"image_emb must have shape (n, {w.shape[1]}) to match class_text_emb, "
            f"got {image_emb.shape}"
        )
    checks.positive("logit_scale", logit_scale)
    checks.finite("image_emb", image_emb)  # when concrete
    u = l2_normalize(image_emb)  # (n, D)
    return jnp.asarray(logit_scale, u.dtype) * jnp.einsum("nd,kd->nk", u, w.astype(u.dtype))


def zero_shot_classify(image_emb: jax.Array, class_text_emb: jax.Array) -> jax.Array:
    """The class of each image: ``argmax_k cos(image_i, w_k)``.

    Args:
      image_emb: (n, D) image embeddings.
      class_text_emb: (K, D) class text embeddings, or (K, T, D) with T prompt templates
        per class, ensembled by :func:`ensemble_class_embeddings`.

    Returns:
      (n,) int32 class indices in [0, K).

    Example:
      >>> zero_shot_classify(jnp.array([[0.1, 2.0]]), jnp.eye(2)).tolist()
      [1]
    """
    return jnp.argmax(zero_shot_logits(image_emb, class_text_emb), axis=1).astype(jnp.int32)


def encode_classes(model: Model, class_tokens: jax.Array) -> jax.Array:
    """Text embeddings of ``T`` tokenised prompts for each of ``K`` classes.

    Args:
      model: the contrastive model (module docstring); its ``encode_text`` is used.
      class_tokens: ``(K, T, L)`` int token ids (e.g. :func:`genjax.contrastive.captions.
        caption_table`).

    Returns:
      ``(K, T, E)`` pooled text embeddings (unnormalised; ensembling normalises).
    """
    class_tokens = jnp.asarray(class_tokens)
    checks.ndim("class_tokens", class_tokens, 3, "(classes, templates, length)")
    checks.integer_array("class_tokens", class_tokens)
    captions.check_model_tokens("class_tokens", class_tokens, model)
    return _encode_classes(model, class_tokens)


@model_jit
def _encode_classes(model: Model, class_tokens: jax.Array) -> jax.Array:
    k, t, length = class_tokens.shape
    pooled, _ = model.encode_text(class_tokens.reshape(k * t, length))  # (K T, E)
    return pooled.reshape(k, t, pooled.shape[-1])  # (K, T, E)


def zero_shot_predict(model: Model, images: jax.Array, class_tokens: jax.Array) -> jax.Array:
    """Zero-shot classes of images through the model's encoders (Radford et al. 2021, 3.1.2).

        u_i = f(image_i),  w_k = ensemble_t g(prompt_kt),  class_i = argmax_k cos(u_i, w_k)

    Args:
      model: the contrastive model (module docstring).
      images: ``(n, H, W, C)`` in the model's input range.
      class_tokens: ``(K, T, L)`` int tokens: T prompts for each of K classes.

    Returns:
      ``(n,)`` int32 class indices in ``[0, K)``.
    """
    class_tokens = jnp.asarray(class_tokens)
    checks.ndim("class_tokens", class_tokens, 3, "(classes, templates, length)")
    captions.check_model_tokens("class_tokens", class_tokens, model)
    checks.finite("images", images)
    return _zero_shot_predict(model, images, class_tokens)


@model_jit
def _zero_shot_predict(model: Model, images: jax.Array, class_tokens: jax.Array) -> jax.Array:
    image_emb = model.encode_image(images)  # (n, E)
    return zero_shot_classify(image_emb, _encode_classes(model, class_tokens))


def image_text_similarity(model: Model, images: jax.Array, tokens: jax.Array) -> jax.Array:
    """Cosine similarities ``cos(f(image_i), g(text_j))`` of every image and text: ``(n, m)``.

    What text-to-image retrieval ranks (the best images for text ``j`` are the largest
    entries of column ``j``).

    Args:
      model: the contrastive model (module docstring).
      images: ``(n, H, W, C)`` in the model's input range.
      tokens: ``(m, L)`` int token ids.

    Returns:
      ``(n, m)`` similarities in ``[-1, 1]``.
    """
    checks.ndim("tokens", tokens, 2, "(texts, length)")
    captions.check_model_tokens("tokens", tokens, model)
    checks.finite("images", images)
    return _image_text_similarity(model, images, tokens)


@model_jit
def _image_text_similarity(model: Model, images: jax.Array, tokens: jax.Array) -> jax.Array:
    text_emb, _ = model.encode_text(tokens)  # (m, E)
    return zero_shot_logits(model.encode_image(images), text_emb)  # scale 1: cosines
