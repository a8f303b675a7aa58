"""Maximum-likelihood objectives of the autoregressive networks.

An autoregressive model's log-likelihood is a sum of categorical log-probabilities,

    log p(x) = sum_t log p(x_t | x_{<t}) = sum_t [ logits_t[x_t] - logsumexp_k logits_t[k] ],

so every loss here is a (masked) mean of :func:`categorical_nll`:

* :func:`next_token_loss` — the language-model objective: the transformer's logits at
  position t score token t + 1 (the targets are the inputs shifted by one), with an
  optional 0/1 mask choosing which targets count (padding, prompts);
* :func:`pixelcnn_loss` — the image likelihood in nats per image, reported also as bits per
  dimension, ``nll / (H W ln 2)`` (:func:`genjax.metrics.bits_per_dim`);
* :func:`wavenet_loss` — the same over quantised 1-D signals.

The ``*_loss(model, batch, key)`` functions follow the model protocol (DESIGN.md) and are
the trainer's interface: ``model`` is the network module itself (a pytree of arrays in
flax 0.12; the trainer differentiates it directly), ``key`` is unused (maximum likelihood is
deterministic) but kept for the common signature. Each returns ``(loss, metrics)``.

References:
  Bengio et al., "A Neural Probabilistic Language Model", JMLR 2003.
  van den Oord, Kalchbrenner, Kavukcuoglu, "Pixel Recurrent Neural Networks", ICML 2016
  (bits per dimension, sec. 5.1).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.autoregressive.levels import levels_to_input
from genjax.metrics import bits_per_dim
from genjax.model import Model


def categorical_nll(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """-log softmax(logits)[target] = logsumexp(logits) - logits[target].

    Args:
      logits: (..., K).
      targets: (...) int in {0 .. K-1}.

    Returns:
      (...) negative log-probabilities in nats.

    Example:
      >>> [round(v, 4) for v in categorical_nll(jnp.zeros((2, 4)), jnp.array([0, 3])).tolist()]
      [1.3863, 1.3863]
    """
    checks.floating("logits", logits)
    checks.shape("targets", targets, jnp.shape(logits)[:-1])  # logits without the last axis
    # an id outside [0, K) would pick a NaN (>= K) or wrap around (< 0): checked when concrete
    checks.token_ids("targets", jnp.asarray(targets), jnp.shape(logits)[-1])
    log_z = jax.nn.logsumexp(logits, axis=-1)  # (...), stable log sum_k exp(logits_k)
    picked = jnp.take_along_axis(logits, jnp.asarray(targets)[..., None], axis=-1)[..., 0]
    return log_z - picked


def next_token_nll(logits: jax.Array, tokens: jax.Array, mask: jax.Array | None = None
                   ) -> tuple[jax.Array, jax.Array]:
    """Masked mean next-token cross-entropy.

        loss = sum_{b,t} w_{b,t+1} nll(logits_{b,t}, x_{b,t+1}) / max(sum w, 1)

    Args:
      logits: (B, L, V), computed from ``tokens[:, :-1]``.
      tokens: (B, L + 1) int ids.
      mask: (B, L + 1) 0/1 (or bool): which tokens count as targets; column 0 is never a
        target. None counts every target.

    Returns:
      (mean nll in nats per counted token, number of counted tokens).

    Example:
      >>> nll = next_token_nll(jnp.zeros((1, 3, 4)), jnp.array([[0, 1, 2, 3]]))
      >>> [round(float(v), 4) for v in nll]  # uniform over V = 4: log 4 per token
      [1.3863, 3.0]
    """
    checks.ndim("logits", logits, 3, "(B, L, V)")
    B, L, V = logits.shape
    checks.shape("tokens", tokens, (B, L + 1))
    checks.token_ids("tokens", jnp.asarray(tokens), V)
    if mask is not None:
        checks.same_shape("mask", mask, "tokens", tokens)
    nll = categorical_nll(logits, tokens[:, 1:])  # (B, L)
    if mask is None:
        w = jnp.ones_like(nll)
    else:
        w = jnp.asarray(mask)[:, 1:].astype(nll.dtype)  # weights of the targets (B, L)
    count = jnp.sum(w)
    return jnp.sum(nll * w) / jnp.maximum(count, 1.0), count


def next_token_loss(model: Model, batch: Any, key: jax.Array | None = None
                    ) -> tuple[jax.Array, dict]:
    """The language-model loss for :func:`genjax.train.fit`: mean next-token cross-entropy.

        loss = -mean_{b,t} log softmax(model(x_{b,<=t}))[x_{b,t+1}]

    Args:
      model: callable pytree, ``model(tokens (B, L) int) -> logits (B, L, V)``, causal (the
        :class:`~genjax.autoregressive.Transformer`).
      batch: (B, L + 1) int token windows, or a pair ``(tokens, mask)`` with mask (B, L + 1).
      key: unused.

    Returns:
      (mean nats per target token, {"loss", "bits_per_token"}).

    Example:
      >>> model = jax.tree_util.Partial(lambda t: jnp.zeros((*t.shape, 5)))  # uniform, V = 5
      >>> loss, metrics = next_token_loss(model, jnp.array([[0, 1, 2, 3]]))
      >>> round(float(loss), 4)  # log 5
      1.6094
    """
    del key
    tokens, mask = batch if isinstance(batch, tuple | list) else (batch, None)
    checks.ndim("tokens", tokens, 2, "(B, L + 1)")  # before the model runs
    vocab_size = getattr(model, "vocab_size", None)
    if vocab_size is not None:
        checks.token_ids("tokens", jnp.asarray(tokens), int(vocab_size))
    else:
        checks.integer_array("tokens", tokens)
    if mask is not None:
        checks.same_shape("mask", mask, "tokens", tokens)
    logits = model(tokens[:, :-1])  # (B, L, V)
    loss, _ = next_token_nll(logits, tokens, mask)
    return loss, {"loss": loss, "bits_per_token": loss / math.log(2.0)}


def image_nll(logits: jax.Array, levels: jax.Array) -> jax.Array:
    """-log p(x) of each image: the sum over pixels of the categorical nll.

    Args:
      logits: (B, H, W, K).
      levels: (B, H, W, 1) int.

    Returns:
      (B,) nats per image.

    Example:
      >>> nll = image_nll(jnp.zeros((1, 2, 2, 4)), jnp.zeros((1, 2, 2, 1), int))
      >>> [round(v, 4) for v in nll.tolist()]  # 4 pixels, log 4 each
      [5.5452]
    """
    checks.shape("levels", levels, ("B", "H", "W", 1))
    checks.token_ids("levels", jnp.asarray(levels), jnp.shape(logits)[-1])  # levels in {0 .. K-1}
    return jnp.sum(categorical_nll(logits, levels[..., 0]), axis=(1, 2))


def pixelcnn_loss(model: Model, batch: jax.Array, key: jax.Array | None = None
                  ) -> tuple[jax.Array, dict]:
    """PixelCNN maximum likelihood: mean nats per pixel; bits/dim in the metrics.

        loss = mean_b (-log p(x_b)) / (H W),   -log p(x) = sum_t nll(logits_t, x_t)

    Args:
      model: callable pytree, ``model(x (B, H, W, 1) float) -> (B, H, W, K)`` logits, with
        ``num_levels = K`` (a :class:`~genjax.autoregressive.PixelCNN` or
        :class:`~genjax.autoregressive.GatedPixelCNN`).
      batch: (B, H, W, 1) int levels in {0 .. K-1}.
      key: unused.

    Returns:
      (mean nats per pixel, {"loss", "nll_nats" (per image), "bits_per_dim"}).

    Example:
      >>> model = PixelCNN(4, rngs=nnx.Rngs(0), features=8, num_layers=2)
      >>> loss, metrics = pixelcnn_loss(model, jnp.zeros((2, 4, 4, 1), jnp.int32))
      >>> loss.shape, bool(loss > 0)
      ((), True)
    """
    del key
    # the shape is the model's to check (it names its input x); the values are ours
    checks.token_ids("batch", jnp.asarray(batch), model.num_levels)  # levels in {0 .. K-1}
    logits = model(levels_to_input(batch, model.num_levels))  # (B, H, W, K)
    nll = image_nll(logits, batch)  # (B,)
    num_dims = math.prod(batch.shape[1:])
    mean = jnp.mean(nll)
    return mean / num_dims, {"loss": mean / num_dims, "nll_nats": mean,
                             "bits_per_dim": bits_per_dim(mean, num_dims)}


def wavenet_loss(model: Model, batch: jax.Array, key: jax.Array | None = None
                 ) -> tuple[jax.Array, dict]:
    """WaveNet maximum likelihood: mean nats per sample of the signal.

    Args:
      model: callable pytree, ``model(x (B, T, 1) float) -> (B, T, K)`` logits, with
        ``num_levels = K`` (a :class:`~genjax.autoregressive.WaveNet`, ``in_features = 1``).
      batch: (B, T) int levels in {0 .. K-1}.
      key: unused.

    Returns:
      (mean nats per sample, {"loss", "bits_per_sample"}).

    Example:
      >>> model = WaveNet(4, rngs=nnx.Rngs(0), residual_channels=4, skip_channels=4,
      ...                 dilations=(1, 2))
      >>> loss, metrics = wavenet_loss(model, jnp.zeros((2, 8), jnp.int32))
      >>> loss.shape, bool(loss > 0)
      ((), True)
    """
    del key
    checks.token_ids("batch", jnp.asarray(batch), model.num_levels)  # values; shape: the model
    logits = model(levels_to_input(batch, model.num_levels)[..., None])  # (B, T, K)
    nll = jnp.mean(categorical_nll(logits, batch))
    return nll, {"loss": nll, "bits_per_sample": nll / math.log(2.0)}
