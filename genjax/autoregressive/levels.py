"""What the networks over discrete levels share: PixelCNN (images) and WaveNet (signals).

Both model ``K`` discrete levels per position with a categorical read-out, and both are
sampled one position at a time in their causal order:

* :func:`levels_to_input` -- integer levels ``{0 .. K-1}`` as the networks' float input
  ``2 l / (K - 1) - 1`` in ``[-1, 1]``;
* :func:`gated_activation` -- ``tanh(W_f * x) ⊙ σ(W_g * x)`` (van den Oord et al. 2016b,
  eq. 2; WaveNet, eq. 2);
* :func:`read_out` -- the 1x1 head ``1x1(ReLU(1x1(ReLU(h))))`` to ``K`` logits (2016a,
  fig. 4);
* :func:`fill_levels_from_noise` -- the sampling loop: for each position ``t`` in order,
  ``x_t = argmax_k (logits_t(x_{<t})_k / tau + g_{t,k})`` (Gumbel-max, so ``x_t`` is drawn
  from ``softmax(logits_t / tau)``), one ``lax.scan`` over the positions.

References:
  van den Oord, Kalchbrenner, Kavukcuoglu, "Pixel Recurrent Neural Networks", ICML 2016a.
  van den Oord et al., "Conditional Image Generation with PixelCNN Decoders", NeurIPS 2016b.
  van den Oord et al., "WaveNet: A Generative Model for Raw Audio", arXiv:1609.03499, 2016c.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import checks

__all__ = ["levels_to_input", "gated_activation", "read_out", "fill_levels_from_noise"]


def levels_to_input(levels: jax.Array, num_levels: int) -> jax.Array:
    """Integer levels {0 .. K-1} -> the networks' float input in [-1, 1]: 2 l / (K - 1) - 1."""
    num_levels = checks.positive_int("num_levels", num_levels)
    checks.token_ids("levels", jnp.asarray(levels), num_levels)  # {0 .. K-1}, when concrete
    scale = 2.0 / max(num_levels - 1, 1)
    return jnp.asarray(levels).astype(jnp.float32) * scale - 1.0


def gated_activation(features: jax.Array) -> jax.Array:
    """``tanh(f) ⊙ σ(g)`` of the two halves ``[f, g]`` of the last axis: (..., 2F) -> (..., F)."""
    f, g = jnp.split(features, 2, axis=-1)  # y = tanh(W_f * x) ⊙ sigmoid(W_g * x)  (eq. 2)
    return jnp.tanh(f) * jax.nn.sigmoid(g)


def read_out(x: jax.Array, hidden: nnx.Linear, out: nnx.Linear) -> jax.Array:
    """The 1x1 read-out: ReLU -> 1x1 -> ReLU -> 1x1 -> K logits; (..., C) -> (..., K)."""
    return out(nnx.relu(hidden(nnx.relu(x))))


def fill_levels_from_noise(logits_fn: Callable[[jax.Array], jax.Array], x: jax.Array,
                           gumbel: jax.Array, *, temperature: float,
                           start: int | jax.Array = 0) -> jax.Array:
    """Draw positions ``start .. D - 1`` of ``x`` in order, on given Gumbel noise.

        for t = start .. D - 1:   x_t = argmax_k (logits_fn(x)_{t,k} / tau + g_{t,k})

    Each step runs the whole network on the current ``x`` and reads position ``t``; for a
    causal network those logits depend only on ``x_{<t}``, so positions ``>= t`` (zeros,
    or whatever ``x`` holds there) are never seen, and positions ``< start`` are kept.

    Args:
      logits_fn: ``(n, D) int levels -> (n, D, K) logits``, causal in D.
      x: (n, D) int32 levels.
      gumbel: (n, D, K) standard Gumbel noise (positions ``< start`` unused).
      temperature: tau > 0.
      start: the first position drawn, in [0, D]; may be traced (one program for every
        start: the scan runs over all positions and keeps ``x`` before ``start``).

    Returns:
      (n, D) int32 levels.
    """

    def step(levels, t):
        logits = logits_fn(levels)  # (n, D, K)
        at_t = jax.lax.dynamic_index_in_dim(logits, t, axis=1, keepdims=False)  # (n, K)
        g_t = jax.lax.dynamic_index_in_dim(gumbel, t, axis=1, keepdims=False)  # (n, K)
        new = jnp.argmax(at_t / temperature + g_t, axis=-1).astype(jnp.int32)  # Gumbel-max
        old = jax.lax.dynamic_index_in_dim(levels, t, axis=1, keepdims=False)  # (n,)
        new = jnp.where(t >= start, new, old)  # positions before start are kept
        return jax.lax.dynamic_update_index_in_dim(levels, new, t, axis=1), None

    D = x.shape[1]
    levels, _ = jax.lax.scan(step, x.astype(jnp.int32), jnp.arange(D, dtype=jnp.int32))
    return levels
