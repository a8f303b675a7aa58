"""Beam search with EOS handling and a length penalty, in one compiled ``lax.scan``.

Each step extends every alive beam by every token, ``s(y, v) = s(y) + log p(v | y)``, and
keeps the ``num_beams`` best non-EOS extensions alive; every EOS extension is a finished
hypothesis with the length-normalised score (Hugging Face's length penalty; GNMT's
``((5 + |y|) / 6)**alpha`` differs only in the length's offset, Wu et al. 2016, eq. 14)

    score(y) = sum_t log p(y_t | y_<t) / |y|**length_penalty

and the ``num_beams`` best finished hypotheses are kept. :func:`beam_search` runs the
model's whole causal forward pass each step; :func:`beam_search_cached` the same search
over the model's KV cache, its rows gathered by parent beam after each selection.

References:
  Wu et al. (2016), "Google's neural machine translation system", eq. 14 (length penalty).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.autoregressive.decoding import masking
from genjax.autoregressive.decoding.interface import _check_context, _check_prompt, _token_id
from genjax.model import Model, model_jit

__all__ = ["beam_search", "beam_search_cached"]


def _length_normalise(score: jax.Array, length: Any, alpha: float) -> jax.Array:
    """``score / length**alpha`` -- Hugging Face's length penalty (alpha = 0: raw sum)."""
    return score / jnp.asarray(length, score.dtype) ** alpha


def _beam_loop(prompt, current_lp, after_select, memory, *, num_beams, max_new_tokens,
               eos_id, length_penalty, pad_id):
    """Beam search's scan, shared by the uncached and cached variants.

    ``current_lp(memory, buf, t) -> (B*K, V)`` log-probabilities of the token at ``P + t``
    for every beam; ``after_select(memory, parent (B*K,), token (B*K,), t) -> memory``
    reorders / extends the model state after the beams are chosen.
    """
    B, P = prompt.shape
    K, N = num_beams, max_new_tokens
    L = P + N
    neg_inf = -jnp.inf  # "no hypothesis"; only ever added to finite log-probs or compared
    buf = jnp.broadcast_to(
        jnp.concatenate([prompt, jnp.full((B, N), pad_id, jnp.int32)], axis=1)[:, None],
        (B, K, L))  # (B, K, L) alive beams
    alive = jnp.full((B, K), neg_inf, jnp.float32).at[:, 0].set(0.0)  # only beam 0 lives
    fin_tok = jnp.full((B, K, N), pad_id, jnp.int32)  # finished hypotheses (new tokens)
    fin_score = jnp.full((B, K), neg_inf, jnp.float32)  # their length-normalised scores

    # loop state: alive beams (B, K, L) and their summed log-probs (B, K), the finished
    # pool (B, K, N) with its normalised scores (B, K), the model's memory
    def step(carry, t):
        buf, alive, fin_tok, fin_score, memory = carry
        lp = current_lp(memory, buf, t)  # (B*K, V)
        V = lp.shape[-1]
        for name, value in (("eos_id", eos_id), ("pad_id", pad_id)):
            if value is not None:
                checks.int_in_range(name, value, 0, V - 1)  # at trace time: V is static
        cand = alive[:, :, None] + lp.reshape(B, K, V).astype(jnp.float32)  # (B, K, V)
        if eos_id is not None:
            # every beam's EOS extension is a finished candidate, scored by length t + 1
            eos_score = _length_normalise(cand[:, :, eos_id], t + 1, length_penalty)
            eos_tok = jax.lax.dynamic_update_index_in_dim(
                buf[:, :, P:], jnp.full((B, K), eos_id, jnp.int32), t, axis=2)  # (B, K, N)
            pool_score = jnp.concatenate([fin_score, eos_score], axis=1)  # (B, 2K)
            pool_tok = jnp.concatenate([fin_tok, eos_tok], axis=1)  # (B, 2K, N)
            fin_score, idx = jax.lax.top_k(pool_score, K)  # (B, K)
            fin_tok = jnp.take_along_axis(pool_tok, idx[:, :, None], axis=1)
            cand = cand.at[:, :, eos_id].set(neg_inf)  # alive beams do not end
        alive, flat = jax.lax.top_k(cand.reshape(B, K * V), K)  # (B, K) best extensions
        parent, token = flat // V, (flat % V).astype(jnp.int32)  # (B, K) each
        buf = jnp.take_along_axis(buf, parent[:, :, None], axis=1)  # (B, K, L)
        buf = jax.lax.dynamic_update_index_in_dim(buf, token, P + t, axis=2)
        parent_flat = (jnp.arange(B)[:, None] * K + parent).reshape(B * K)  # rows of B*K
        memory = after_select(memory, parent_flat, token.reshape(B * K), t)
        return (buf, alive, fin_tok, fin_score, memory), None

    (buf, alive, fin_tok, fin_score, _), _ = jax.lax.scan(
        step, (buf, alive, fin_tok, fin_score, memory), jnp.arange(N))
    # beams alive after N tokens end there (length N) and compete with the finished ones
    pool_score = jnp.concatenate([fin_score, _length_normalise(alive, N, length_penalty)],
                                 axis=1)  # (B, 2K)
    pool_tok = jnp.concatenate([fin_tok, buf[:, :, P:]], axis=1)  # (B, 2K, N)
    scores, idx = jax.lax.top_k(pool_score, K)
    return jnp.take_along_axis(pool_tok, idx[:, :, None], axis=1), scores


_BEAM_STATIC = ("num_beams", "max_new_tokens", "eos_id", "length_penalty", "pad_id")


def _constrained(current_lp, after_select, memory, mask, rows: int, N: int):
    """Wrap a beam loop's model hooks with a constraint (:mod:`.masking`): forbidden
    extensions get log-probability -inf, each beam carries its automaton state, gathered
    by parent beam and advanced by the chosen token."""
    if mask is None:
        return current_lp, after_select, memory

    def lp(memory, buf, t):
        inner, state = memory
        allowed = masking.allowed(mask, state, N - t)  # (B*K, V): N - t slots left
        return jnp.where(allowed, current_lp(inner, buf, t), -jnp.inf)

    def after(memory, parent, token, t):
        inner, state = memory
        state = jax.tree.map(lambda a: a[parent], state)
        return after_select(inner, parent, token, t), masking.advance(mask, state, token)

    return lp, after, (memory, masking.init_state(mask, rows))


@functools.partial(model_jit, static_argnames=_BEAM_STATIC)
def _beam_search_jit(model, prompt, mask=None, *, num_beams, max_new_tokens, eos_id,
                     length_penalty, pad_id):
    B, P = prompt.shape
    K = num_beams

    def current_lp(memory, buf, t):  # the whole forward pass; causal, so pads are unseen
        out = model(buf.reshape(B * K, buf.shape[-1]))  # (B*K, L, V)
        row = jax.lax.dynamic_index_in_dim(out, P + t - 1, axis=1, keepdims=False)
        return jax.nn.log_softmax(row.astype(jnp.float32), axis=-1)  # (B*K, V)

    current_lp, after_select, memory = _constrained(
        current_lp, lambda memory, *_: memory, (), mask, B * K, max_new_tokens)
    return _beam_loop(prompt, current_lp, after_select, memory, num_beams=K,
                      max_new_tokens=max_new_tokens, eos_id=eos_id,
                      length_penalty=length_penalty, pad_id=pad_id)


@functools.partial(model_jit, static_argnames=_BEAM_STATIC)
def _beam_search_cached_jit(model, prompt, mask=None, *, num_beams, max_new_tokens, eos_id,
                            length_penalty, pad_id):
    B, P = prompt.shape
    K, N = num_beams, max_new_tokens
    cache = model.init_cache(B * K, P + N)
    rows = jnp.repeat(prompt, K, axis=0)  # (B*K, P), beam k of prompt b at row b*K + k
    logits, cache = model.decode(rows, cache, jnp.asarray(0, jnp.int32))  # prefill

    def current_lp(memory, buf, t):
        return jax.nn.log_softmax(memory[1].astype(jnp.float32), axis=-1)  # (B*K, V)

    def after_select(memory, parent, token, t):
        cache = jax.tree.map(lambda a: a[parent], memory[0])  # reorder beams (batch axis 0)
        logits, cache = model.decode(token[:, None], cache, P + t)  # (B*K, 1, V)
        return cache, logits[:, 0]

    current_lp, after_select, memory = _constrained(
        current_lp, after_select, (cache, logits[:, -1]), mask, B * K, N)
    return _beam_loop(prompt, current_lp, after_select, memory, num_beams=K,
                      max_new_tokens=N, eos_id=eos_id, length_penalty=length_penalty,
                      pad_id=pad_id)


def _beam_arguments(model, prompt, num_beams, max_new_tokens, eos_id, length_penalty, pad_id,
                    constraint=None):
    V = getattr(model, "vocab_size", None)
    one_d = jnp.ndim(prompt) == 1
    prompt = _check_prompt(jnp.asarray(prompt)[None] if one_d else prompt,
                           None if V is None else int(V))
    V = None if V is None else int(V)
    eos_id = _token_id("eos_id", eos_id, V)
    pad_id = _token_id("pad_id", pad_id, V)
    length_penalty = checks.finite("length_penalty", float(length_penalty))
    options = dict(num_beams=checks.positive_int("num_beams", num_beams),
                   max_new_tokens=checks.positive_int("max_new_tokens", max_new_tokens),
                   eos_id=eos_id, length_penalty=length_penalty,
                   pad_id=(0 if eos_id is None else eos_id) if pad_id is None else pad_id)
    mask = masking.prepare(constraint, options["max_new_tokens"], eos_id, V)
    return one_d, prompt, options, mask


def beam_search(model: Model, prompt: jax.Array, *, num_beams: int, max_new_tokens: int,
                eos_id: int | None = None, length_penalty: float = 1.0,
                pad_id: int | None = None, constraint: Any = None
                ) -> tuple[jax.Array, jax.Array]:
    """Beam search for the highest-scoring continuations (one compiled ``lax.scan``).

    Each step extends every alive beam by every token and keeps the ``num_beams`` best
    non-EOS extensions alive; every EOS extension is a finished hypothesis scored

        score(y) = sum_t log p(y_t | y_<t) / |y|**length_penalty

    (``|y|`` = new tokens including the EOS); the ``num_beams`` best finished hypotheses
    are kept. After ``max_new_tokens`` steps the alive beams finish with ``|y| = N`` and
    compete with the finished pool. Unlike Hugging Face, an EOS extension is considered
    even when it ranks below the alive beams, and there is no early stop; with
    ``num_beams >= V**N`` nothing is pruned and the result is the exact best sequence (the
    tests check this by enumeration).

    Args:
      model: callable pytree, ``model(tokens (n, L) int32) -> (n, L, V)`` next-token logits
        or log-probabilities at every position (row ``i`` scores token ``i + 1``; they are
        normalised by ``log_softmax``, which leaves log-probabilities unchanged); must be
        causal, since positions after the current one hold ``pad_id``. A
        :class:`~genjax.autoregressive.Transformer` is one. Traced: new weights reuse the
        compiled search; a plain function is accepted but compiles anew per function
        object.
      prompt: (B, P) or (P,) int token ids (in [0, V) when the model has ``vocab_size``).
      num_beams: K >= 1.
      max_new_tokens: N >= 1.
      eos_id: end-of-sequence id, or None (all hypotheses have N tokens).
      length_penalty: alpha (finite); 0 ranks by the raw sum of log-probabilities.
      pad_id: fills positions after EOS (default ``eos_id``, else 0).
      constraint: an ``Automaton`` or a ``Grammar`` (:mod:`.masking`): extensions that
        leave the language, or cannot complete it in the remaining steps, score -inf,
        so every hypothesis with a finite score is in the language.

    Returns:
      ``(sequences (B, K, N) int32, scores (B, K) float32)``, best first (``(K, N)``,
      ``(K,)`` for a 1-D prompt). A score of ``-inf`` marks an empty slot (fewer than K
      hypotheses exist).

    Example:
      >>> model = Transformer(8, 16, 8, 2, 1, rngs=nnx.Rngs(0))
      >>> seqs, scores = beam_search(model, jnp.zeros((2, 3), jnp.int32), num_beams=2,
      ...                            max_new_tokens=3)
      >>> seqs.shape, scores.shape  # (B, K, N), (B, K), best first
      ((2, 2, 3), (2, 2))
    """
    one_d, prompt, options, mask = _beam_arguments(model, prompt, num_beams, max_new_tokens,
                                                   eos_id, length_penalty, pad_id, constraint)
    seqs, scores = _beam_search_jit(model, prompt, mask, **options)
    return (seqs[0], scores[0]) if one_d else (seqs, scores)


def beam_search_cached(model: Model, prompt: jax.Array, *, num_beams: int,
                       max_new_tokens: int, eos_id: int | None = None,
                       length_penalty: float = 1.0, pad_id: int | None = None,
                       constraint: Any = None) -> tuple[jax.Array, jax.Array]:
    """:func:`beam_search` over a model's KV cache: same search, same result.

    The ``B * K`` beams are rows of one cache; after each selection the cache rows are
    gathered by parent beam (every cache leaf must have the batch on axis 0, as
    ``Transformer.init_cache`` does) and the chosen tokens are fed with one
    ``model.decode`` call. Requires ``P + max_new_tokens <= model.max_len``.

    Args:
      model: callable pytree with ``init_cache`` / ``decode``
        (:mod:`~genjax.autoregressive.decoding.interface`); traced.
      prompt, num_beams, max_new_tokens, eos_id, length_penalty, pad_id, constraint: as
        :func:`beam_search`.

    Returns:
      ``(sequences (B, K, N), scores (B, K))``, best first.

    Example:
      >>> model = Transformer(8, 16, 8, 2, 1, rngs=nnx.Rngs(0))
      >>> seqs, scores = beam_search_cached(model, jnp.zeros((2, 3), jnp.int32), num_beams=2,
      ...                                   max_new_tokens=3)
      >>> seqs.shape, scores.shape, bool(jnp.all(scores[:, 0] >= scores[:, 1]))  # best first
      ((2, 2, 3), (2, 2), True)
    """
    one_d, prompt, options, mask = _beam_arguments(model, prompt, num_beams, max_new_tokens,
                                                   eos_id, length_penalty, pad_id, constraint)
    _check_context(model, prompt.shape[1], options["max_new_tokens"])
    seqs, scores = _beam_search_cached_jit(model, prompt, mask, **options)
    return (seqs[0], scores[0]) if one_d else (seqs, scores)

