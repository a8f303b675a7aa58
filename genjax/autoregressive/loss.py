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

The ``*_loss(params, batch, key)`` functions are the trainer's interface: ``params`` is the
network module itself (a pytree of arrays in flax 0.12), ``key`` is unused (maximum
likelihood is deterministic) but kept for the common signature.

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

from genjax.autoregressive.network import levels_to_input
from genjax.metrics import bits_per_dim


def categorical_nll(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """-log softmax(logits)[target] = logsumexp(logits) - logits[target].

    Args:
      logits: (..., K).
      targets: (...) int in {0 .. K-1}.

    Returns:
      (...) negative log-probabilities in nats.
    """
    if logits.shape[:-1] != jnp.shape(targets):
        raise ValueError(f"targets must have shape {logits.shape[:-1]} (logits {logits.shape} "
                         f"without the last axis), got {jnp.shape(targets)}")
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
    """
    B, L, _ = logits.shape
    if tokens.shape != (B, L + 1):
        raise ValueError(f"tokens must have shape (B, L + 1) = {(B, L + 1)}, got {tokens.shape}")
    if mask is not None and jnp.shape(mask) != tokens.shape:
        raise ValueError(f"mask must have the shape of tokens {tokens.shape}, got "
                         f"{jnp.shape(mask)}")
    nll = categorical_nll(logits, tokens[:, 1:])  # (B, L)
    if mask is None:
        w = jnp.ones_like(nll)
    else:
        w = jnp.asarray(mask)[:, 1:].astype(nll.dtype)  # weights of the targets (B, L)
    count = jnp.sum(w)
    return jnp.sum(nll * w) / jnp.maximum(count, 1.0), count


def next_token_loss(params: Any, batch: Any, key: jax.Array | None = None
                    ) -> tuple[jax.Array, dict]:
    """The language-model loss for :func:`genjax.train.fit`.

    Args:
      params: a model with ``params(tokens (B, L)) -> logits (B, L, V)`` (the
        :class:`~genjax.autoregressive.Transformer`).
      batch: (B, L + 1) int token windows, or a pair ``(tokens, mask)`` with mask (B, L + 1).
      key: unused.

    Returns:
      (mean nats per target token, {"loss", "bits_per_token"}).
    """
    del key
    tokens, mask = batch if isinstance(batch, tuple | list) else (batch, None)
    logits = params(tokens[:, :-1])  # (B, L, V)
    loss, _ = next_token_nll(logits, tokens, mask)
    return loss, {"loss": loss, "bits_per_token": loss / math.log(2.0)}


def image_nll(logits: jax.Array, levels: jax.Array) -> jax.Array:
    """-log p(x) of each image: the sum over pixels of the categorical nll.

    Args:
      logits: (B, H, W, K).
      levels: (B, H, W, 1) int.

    Returns:
      (B,) nats per image.
    """
    if levels.ndim != 4 or levels.shape[-1] != 1:
        raise ValueError(f"levels must have shape (B, H, W, 1), got {levels.shape}")
    return jnp.sum(categorical_nll(logits, levels[..., 0]), axis=(1, 2))


def pixelcnn_loss(params: Any, batch: jax.Array, key: jax.Array | None = None
                  ) -> tuple[jax.Array, dict]:
    """PixelCNN maximum likelihood: mean nats per pixel; bits/dim in the metrics.

    Args:
      params: a :class:`~genjax.autoregressive.network.PixelCNN` or ``GatedPixelCNN``.
      batch: (B, H, W, 1) int levels in {0 .. K-1}.
      key: unused.
    """
    del key
    logits = params(levels_to_input(batch, params.num_levels))  # (B, H, W, K)
    nll = image_nll(logits, batch)  # (B,)
    num_dims = math.prod(batch.shape[1:])
    mean = jnp.mean(nll)
    return mean / num_dims, {"loss": mean / num_dims, "nll_nats": mean,
                             "bits_per_dim": bits_per_dim(mean, num_dims)}


def wavenet_loss(params: Any, batch: jax.Array, key: jax.Array | None = None
                 ) -> tuple[jax.Array, dict]:
    """WaveNet maximum likelihood: mean nats per sample of the signal.

    Args:
      params: a :class:`~genjax.autoregressive.network.WaveNet` with ``in_features = 1``.
      batch: (B, T) int levels in {0 .. K-1}.
      key: unused.
    """
    del key
    logits = params(levels_to_input(batch, params.num_levels)[..., None])  # (B, T, K)
    nll = jnp.mean(categorical_nll(logits, batch))
    return nll, {"loss": nll, "bits_per_sample": nll / math.log(2.0)}
