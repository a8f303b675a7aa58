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

**Negative prompts** (the ``negative_prompt`` of Stable Diffusion's samplers; analysed as
"negative conditioning" by Armandpour et al. 2023) replace the unconditional branch by a
condition to steer away from:

    eps_guided = eps_neg + scale * (eps_cond - eps_neg),   eps_neg = eps(x_t, t, c_neg)

Since ``eps = -sigma_t * score``, the guided score is ``score_neg + scale (score_cond -
score_neg)``: the score of ``p_t(x | c)^scale p_t(x | c_neg)^(1 - scale)`` (up to its
normaliser), which for ``scale > 1`` pushes mass away from where ``c_neg`` is likely.
:class:`GuidedModel` takes ``negative_labels``; :func:`guided` is the same mix whichever
condition its second argument was computed with.

The guided model is a pytree (:class:`GuidedModel`, built by :func:`guided_eps_fn`) over
the conditional network's arrays and the labels, so every sampler takes it as its model and
compiles once for all weights, labels and (array) scales of the same shapes.

References:
  Ho, Salimans, "Classifier-Free Diffusion Guidance", NeurIPS 2021 workshop; arXiv:2207.12598.
  Armandpour, Sadeghian, Zheng, Sadeghian, Zhou, "Re-imagine the Negative Prompt Algorithm:
    Transform 2D Diffusion into 3D, alleviate Janus problem and Beyond", arXiv:2304.04968, 2023.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.model import Model

__all__ = ["guided", "label_dropout", "LabelledModel", "with_labels", "GuidedModel",
           "guided_eps_fn"]


def guided(eps_cond: jax.Array, eps_uncond: jax.Array, scale: float | jax.Array) -> jax.Array:
    """Mix conditional and unconditional noise predictions.

        eps = eps_uncond + scale * (eps_cond - eps_uncond)       (Ho & Salimans 2022, eq. 6)

    With a negative condition's prediction as ``eps_uncond`` this is negative-prompt
    guidance, ``eps_neg + scale * (eps_cond - eps_neg)`` (module docstring).

    Args:
      eps_cond: (batch, ...) prediction given the label.
      eps_uncond: (batch, ...) prediction given the null label (or the negative
        condition), same shape.
      scale: guidance scale (a scalar): 0 unconditional, 1 conditional.

    Returns:
      (batch, ...) guided prediction.

    Example:
      >>> guided(jnp.ones(3), jnp.zeros(3), 2.0).tolist()
      [2.0, 2.0, 2.0]
    """
    eps_cond = jnp.asarray(eps_cond)
    eps_uncond = jnp.asarray(eps_uncond)
    checks.same_shape("eps_cond", eps_cond, "eps_uncond", eps_uncond)
    scale = jnp.asarray(scale, dtype=eps_cond.dtype)
    checks.ndim("scale", scale, 0, "(a scalar)")
    checks.finite("scale", scale)
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
    checks.probability("p_uncond", p_uncond)
    checks.nonnegative_int("null_label", null_label)
    labels = jnp.asarray(labels)
    checks.ndim("labels", labels, 1, "(batch,)")
    drop = jax.random.bernoulli(key, p_uncond, labels.shape)  # (batch,) True = drop
    return jnp.where(drop, jnp.asarray(null_label, labels.dtype), labels)


def _check_labels(labels: Any) -> jax.Array:
    labels = jnp.asarray(labels)
    checks.ndim("labels", labels, 1, "(batch,)")
    return checks.integer_array("labels", labels)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity (arrays inside)
class LabelledModel:
    """A label-conditioned network with its labels bound: ``(x_t, t) -> model(x_t, t, labels)``.

    What a loss or a sampler takes as its model when the network is conditional (training
    with :func:`label_dropout`'s labels, or sampling without guidance).

    Attributes:
      model: ``model(x_t (batch, ...), t (batch,), labels (batch,)) -> (batch, ...)``.
      labels: ``(batch,)`` integer labels, one per example.

    Example:
      >>> net = jax.tree_util.Partial(lambda x, t, y: x + y[:, None])
      >>> LabelledModel(net, jnp.array([1, 2]))(jnp.zeros((2, 1)), jnp.zeros(2)).tolist()
      [[1.0], [2.0]]
    """

    model: Model
    labels: jax.Array

    def __call__(self, x_t: jax.Array, t: jax.Array) -> jax.Array:
        checks.shape("labels", self.labels, (x_t.shape[0],))
        return self.model(x_t, t, self.labels)


def with_labels(model: Model, labels: jax.Array) -> LabelledModel:
    """``model`` with ``labels (batch,)`` bound: a model ``(x_t, t)``, :class:`LabelledModel`.

    Example:
      >>> net = jax.tree_util.Partial(lambda x, t, y: x + y[:, None])
      >>> with_labels(net, jnp.array([1, 2]))(jnp.zeros((2, 1)), jnp.zeros(2)).tolist()
      [[1.0], [2.0]]
    """
    return LabelledModel(model, _check_labels(labels))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity (arrays inside)
class GuidedModel:
    """The classifier-free guided prediction of a label-conditioned network, a model pytree.

        model(x_t, t) = eps_uncond + scale * (eps_cond - eps_uncond)
        eps_cond = net(x_t, t, labels),  eps_uncond = net(x_t, t, null_label)

    With ``negative_labels`` the second branch is the negative condition's (module
    docstring): ``eps_uncond = net(x_t, t, negative_labels)``.

    Both predictions come from one call of the network on the doubled batch ``[x_t; x_t]``
    with labels ``[labels; null]`` (one network evaluation per step, as in the reference
    implementations). When ``scale`` is exactly 0 or 1 (a Python number: static under
    :func:`genjax.model.model_jit`) only one half of the batch is evaluated.

    Attributes:
      model: the network ``net(x_t (batch, ...), t (batch,), labels (batch,))``.
      labels: ``(batch,)`` the labels to sample, one per sample.
      scale: guidance scale (0 unconditional, 1 conditional); a Python number or a () array
        (traced: one compiled sampler serves every scale).
      null_label: the label the network was trained with for "unconditional" (static).
      negative_labels: ``(batch,)`` labels to guide away from, replacing ``null_label`` in
        the second branch; None (the default) for plain classifier-free guidance.

    Example:
      >>> net = jax.tree_util.Partial(lambda x, t, y: x + y[:, None])  # eps = label
      >>> m = GuidedModel(net, jnp.array([1]), 2.0, 0)  # eps_u + w (eps_c - eps_u) = 0 + 2 (1 - 0)
      >>> m(jnp.zeros((1, 1)), jnp.zeros(1)).tolist()
      [[2.0]]
    """

    model: Model
    labels: jax.Array
    scale: float | jax.Array
    null_label: int = dataclasses.field(metadata={"static": True})
    negative_labels: jax.Array | None = None

    def __call__(self, x_t: jax.Array, t: jax.Array) -> jax.Array:
        labels = self.labels
        checks.shape("labels", labels, (x_t.shape[0],))
        if self.negative_labels is None:
            null = jnp.full_like(labels, self.null_label)
        else:  # negative prompt: eps_neg + scale (eps_cond - eps_neg)
            checks.shape("negative_labels", self.negative_labels, (x_t.shape[0],))
            null = self.negative_labels.astype(labels.dtype)
        if isinstance(self.scale, int | float) and self.scale == 0:
            return self.model(x_t, t, null)
        if isinstance(self.scale, int | float) and self.scale == 1:
            return self.model(x_t, t, labels)
        both = self.model(
            jnp.concatenate([x_t, x_t]),  # (2 batch, ...)
            jnp.concatenate([t, t]),  # (2 batch,)
            jnp.concatenate([labels, null]),  # (2 batch,)
        )
        eps_cond, eps_uncond = jnp.split(both, 2)  # 2 x (batch, ...)
        return guided(eps_cond, eps_uncond, self.scale)


def guided_eps_fn(
    model: Model, labels: jax.Array, null_label: int, scale: float | jax.Array, *,
    negative_labels: jax.Array | None = None,
) -> GuidedModel:
    """A sampler's model ``(x_t, t) -> eps`` from a label-conditioned network (guided).

    Args:
      model: the network ``model(x_t (batch, ...), t (batch,), labels (batch,))``.
      labels: (batch,) the labels to sample, one per sample.
      null_label: the label the network was trained with for "unconditional".
      scale: guidance scale (0 unconditional, 1 conditional).
      negative_labels: (batch,) labels to guide away from (a negative prompt): the mix
        becomes ``eps_neg + scale * (eps_cond - eps_neg)``; None for classifier-free
        guidance against ``null_label``.

    Returns:
      the :class:`GuidedModel`, a pytree over the network's arrays, the labels and an array
      ``scale``: pass it to any sampler as its model.

    Example:
      >>> net = jax.tree_util.Partial(lambda x, t, y: x + y[:, None])  # eps = the label
      >>> model = guided_eps_fn(net, jnp.array([3]), null_label=1, scale=2.0)
      >>> model(jnp.zeros((1, 1)), jnp.zeros(1)).tolist()  # 1 + 2 (3 - 1)
      [[5.0]]
    """
    labels = _check_labels(labels)
    if negative_labels is not None:
        negative_labels = jnp.asarray(negative_labels)
        checks.integer_array("negative_labels", negative_labels)
        checks.shape("negative_labels", negative_labels, labels.shape)
    null_label = checks.nonnegative_int("null_label", null_label)
    return GuidedModel(model, labels, scale, null_label, negative_labels)
