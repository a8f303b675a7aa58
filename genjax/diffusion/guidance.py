"""Classifier-free guidance (Ho & Salimans 2022).

One network ``eps(x_t, t, c)`` is trained both conditionally and unconditionally: during
training each label is replaced by a null label with probability ``p_uncond``
(:func:`label_dropout`). At sampling time the two predictions are mixed (Ho & Salimans
2022, eq. 6, written in genjax's convention — DESIGN.md):

    eps_guided = eps_uncond + scale * (eps_cond - eps_uncond)

``scale = 0`` is the unconditional model, ``scale = 1`` the conditional model, and
``scale > 1`` extrapolates away from the unconditional prediction (sharper, less diverse
samples). Ho & Salimans write the same mix as ``(1 + w) eps_cond - w eps_uncond``, i.e.
their ``w`` is our ``scale - 1``.

References:
  Ho, Salimans, "Classifier-Free Diffusion Guidance", NeurIPS 2021 workshop; arXiv:2207.12598.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

__all__ = ["guided", "label_dropout", "guided_eps_fn"]


def guided(eps_cond: jax.Array, eps_uncond: jax.Array, scale: float | jax.Array) -> jax.Array:
    """Mix conditional and unconditional noise predictions.

        eps = eps_uncond + scale * (eps_cond - eps_uncond)       (Ho & Salimans 2022, eq. 6)

    Args:
      eps_cond: (batch, ...) prediction given the label.
      eps_uncond: (batch, ...) prediction given the null label, same shape.
      scale: guidance scale (a scalar): 0 unconditional, 1 conditional.

    Returns:
      (batch, ...) guided prediction.

    Example:
      >>> guided(jnp.ones(3), jnp.zeros(3), 2.0)  # [2., 2., 2.]
    """
    eps_cond = jnp.asarray(eps_cond)
    eps_uncond = jnp.asarray(eps_uncond)
    if eps_cond.shape != eps_uncond.shape:
        raise ValueError(
            f"eps_cond and eps_uncond must have the same shape, got {eps_cond.shape} "
            f"and {eps_uncond.shape}"
        )
    scale = jnp.asarray(scale, dtype=eps_cond.dtype)
    if scale.ndim != 0:
        raise ValueError(f"scale must be a scalar, got shape {scale.shape}")
    return eps_uncond + scale * (eps_cond - eps_uncond)


def label_dropout(
    key: jax.Array, labels: jax.Array, p_uncond: float, null_label: int
) -> jax.Array:
    """Replace each label by ``null_label`` with probability ``p_uncond``.

    The training-time half of classifier-free guidance (Ho & Salimans 2022, Algorithm 1:
    ``c <- null with probability p_uncond``), so one network learns both
    ``eps(x_t, t, c)`` and ``eps(x_t, t, null)``.

    Args:
      key: PRNG key.
      labels: (batch,) integer labels.
      p_uncond: drop probability in [0, 1] (0.1-0.2 in the paper).
      null_label: the integer standing for "no label" (e.g. ``num_classes``).

    Returns:
      (batch,) labels, same dtype, some replaced by ``null_label``.
    """
    if not 0.0 <= p_uncond <= 1.0:
        raise ValueError(f"p_uncond must be in [0, 1], got {p_uncond!r}")
    labels = jnp.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must have shape (batch,), got {labels.shape}")
    drop = jax.random.bernoulli(key, p_uncond, labels.shape)  # (batch,) True = drop
    return jnp.where(drop, jnp.asarray(null_label, labels.dtype), labels)


def guided_eps_fn(
    eps_fn_cond: Callable[[jax.Array, jax.Array, jax.Array], jax.Array],
    labels: jax.Array,
    null_label: int,
    scale: float,
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """Build a sampler's ``eps_fn(x_t, t)`` from a label-conditioned model.

    Both predictions come from one call of the network on the doubled batch
    ``[x_t; x_t]`` with labels ``[labels; null]`` (one network evaluation per step, as in
    the reference implementations), then they are mixed by :func:`guided`.

    Args:
      eps_fn_cond: ``eps_fn_cond(x_t (batch, ...), t (batch,), labels (batch,))``.
      labels: (batch,) the labels to sample, one per sample.
      null_label: the label the network was trained with for "unconditional".
      scale: guidance scale (0 unconditional, 1 conditional).

    Returns:
      ``eps_fn(x_t (batch, ...), t (batch,)) -> (batch, ...)``. When ``scale`` is
      exactly 0 or 1 (Python numbers) only one half of the batch is evaluated.
    """
    labels = jnp.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must have shape (batch,), got {labels.shape}")
    null = jnp.full_like(labels, null_label)

    def eps_fn(x_t: jax.Array, t: jax.Array) -> jax.Array:
        if x_t.shape[0] != labels.shape[0]:
            raise ValueError(
                f"x_t has batch {x_t.shape[0]} but {labels.shape[0]} labels were given"
            )
        if isinstance(scale, (int, float)) and scale == 0:
            return eps_fn_cond(x_t, t, null)
        if isinstance(scale, (int, float)) and scale == 1:
            return eps_fn_cond(x_t, t, labels)
        both = eps_fn_cond(
            jnp.concatenate([x_t, x_t]),  # (2 batch, ...)
            jnp.concatenate([t, t]),  # (2 batch,)
            jnp.concatenate([labels, null]),  # (2 batch,)
        )
        eps_cond, eps_uncond = jnp.split(both, 2)  # 2 x (batch, ...)
        return guided(eps_cond, eps_uncond, scale)

    return eps_fn
