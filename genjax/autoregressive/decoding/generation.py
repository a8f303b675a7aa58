"""``generate``: sampling continuations with a KV cache, in one compiled ``lax.while_loop``.

For a batch of prompts ``x_{1..P}`` the loop draws, for ``t = 0 .. N - 1``,

    x_{P+t+1} ~ softmax(filter(mask(l_t))),    l_t = model(x_{<=P+t})_{P+t}

where ``filter`` is :func:`~genjax.autoregressive.decoding.filter_logits` (temperature,
top-k, top-p, min-p; temperature 0 is greedy) and ``mask`` removes the tokens a
:class:`~genjax.autoregressive.decoding.constrained.Automaton` forbids (constrained
decoding; its law is discussed in :mod:`~genjax.autoregressive.decoding.constrained`).
The logits come from the model's KV cache: one prefill ``model.decode(prompt, cache, 0)``,
then one ``model.decode(x_t, cache, P + t - 1)`` a step (``use_cache=False`` recomputes the
whole causal forward pass instead: the reference the tests hold the cache to). A sequence
that emits ``eos_id`` emits ``pad_id`` afterwards; the loop stops when every sequence has
(the ``while_loop`` of flax's lm1b sampler, its state one commented tuple).

The cache grows with the sequence: the ``N - 1`` cached steps run as up to
``_SEGMENTS`` consecutive loops, loop ``i`` on a cache of exactly the ``P + e_i - 1``
positions its steps write (``e_i`` its last step + 1), grown between loops by
:func:`_grow_cache`. A step's attention reads its whole cache (masked above the current
position), and XLA's CPU batched matrix-vector products cost in proportion to the rows
they read (issue 15's profile: 8 of them were ~30% of a step at 144 rows), so the
average step reads ``P + 5N/8`` rows instead of ``P + N``. Masked rows carry weight
``exp(finfo.min - max) = 0`` exactly, so the logits are those of a full-length cache.

Noise is injectable: step ``t`` samples by Gumbel-max with the Gumbels ``g_t`` (B, V);
:func:`generate` draws ``g_t = jax.random.gumbel(fold_in(key, t), (B, V))`` inside the
loop, :func:`generate_from_noise` takes them all as an argument (the tests share them with
the NumPy oracle, :func:`genjax.autoregressive.oracle.generate`).

The model is a traced argument (:func:`genjax.model.model_jit`): new weights of the same
shapes reuse the compiled loop; the sampling options are static (each setting is its own
program).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.autoregressive.decoding import constrained as cst
from genjax.autoregressive.decoding import grammar as gr
from genjax.autoregressive.decoding import masking
from genjax.autoregressive.decoding.filters import (
    _removed,
    sample_token_from_noise,
    sampling_options,
)
from genjax.autoregressive.decoding.interface import (
    _check_context,
    _check_prompt,
    _token_id,
    _vocab_size_of,
)
from genjax.model import Model, model_jit

__all__ = ["generate", "generate_from_noise"]


def _generate_loop(model: Model, prompt: jax.Array, noise_fn: Callable, *,
                   max_new_tokens: int, temperature: float, top_k, top_p, min_p,
                   eos_id, pad_id, constraint, completable_table, use_cache: bool,
                   with_log_probs: bool = True):
    """The decoding loop shared by :func:`generate` and :func:`generate_from_noise`."""
    B, P = prompt.shape
    N = max_new_tokens

    def pick(t, logits, done, state):
        """One deterministic step: mask, filter, sample with the noise of step t."""
        logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))  # (B, V)
        masked = logits
        if mask is not None:  # (B, V): r = N - t slots left now
            allowed = masking.allowed(mask, state, N - t)
            masked = jnp.where(allowed, logits, _removed(logits.dtype))
        token = sample_token_from_noise(masked, noise_fn(t), temperature=temperature,
                                        top_k=top_k, top_p=top_p, min_p=min_p)  # (B,)
        if with_log_probs:  # log p_model(x_t)
            log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1),
                                           token[:, None], axis=-1)[:, 0]
        else:  # not asked for: the loop skips the log-softmax
            log_prob = jnp.zeros(token.shape, logits.dtype)
        if eos_id is not None:  # after EOS: pad, log-prob 0, automaton frozen
            token = jnp.where(done, pad_id, token)
            log_prob = jnp.where(done, 0.0, log_prob)
            done = done | (token == eos_id)
        if mask is not None:
            state = masking.freeze(state, masking.advance(mask, state, token),
                                   done & (token != eos_id))
        return token, log_prob, done, state

    done0 = jnp.zeros((B,), bool)
    mask = completable_table  # masking.prepare's mask (None: unconstrained)
    state0 = masking.init_state(mask, B) if mask is not None else jnp.zeros((B,), jnp.int32)
    ends = _segment_ends(model, B, P, N) if use_cache else (N,)
    if use_cache:  # step t writes position P + t - 1: a segment ending at e needs P + e - 1
        cache = model.init_cache(B, P + ends[0] - 1)
        logits, cache = model.decode(prompt, cache, jnp.asarray(0, jnp.int32))  # prefill
        buffer = None
    else:
        cache = None
        buffer = jnp.concatenate([prompt, jnp.zeros((B, N), jnp.int32)], axis=1)  # (B, L)
        logits = model(buffer)
    token, log_prob, done, state = pick(0, logits[:, P - 1], done0, state0)
    tokens = jnp.zeros((B, N), jnp.int32).at[:, 0].set(token)
    log_probs = jnp.zeros((B, N), logits.dtype).at[:, 0].set(log_prob)
    if buffer is not None:
        buffer = buffer.at[:, P].set(token)

    # loop state: step t (next token to emit), emitted tokens (B, N), their log-probs
    # (B, N), last token, per-sequence done flags, automaton states, KV cache / buffer
    def cond(carry):
        t, _, _, _, done, _, _ = carry
        return (t < N) & ~jnp.all(done)

    def body(carry):
        t, tokens, log_probs, last, done, state, memory = carry
        if use_cache:  # feed the last token at absolute position P + t - 1
            step_logits, memory = model.decode(last[:, None], memory, P + t - 1)
            step_logits = step_logits[:, 0]  # (B, V)
        else:  # recompute the whole (causal) forward pass; future pads are not seen
            step_logits = jax.lax.dynamic_index_in_dim(model(memory), P + t - 1, axis=1,
                                                       keepdims=False)  # (B, V)
        token, log_prob, done, state = pick(t, step_logits, done, state)
        tokens = jax.lax.dynamic_update_index_in_dim(tokens, token, t, axis=1)
        log_probs = jax.lax.dynamic_update_index_in_dim(log_probs, log_prob, t, axis=1)
        if not use_cache:
            memory = jax.lax.dynamic_update_index_in_dim(memory, token, P + t, axis=1)
        return t + 1, tokens, log_probs, token, done, state, memory

    memory = cache if use_cache else buffer
    carry = (jnp.asarray(1, jnp.int32), tokens, log_probs, token, done, state, memory)
    for end in ends:  # one loop per cache length (one loop without a cache)
        if use_cache:
            carry = (*carry[:-1], _grow_cache(model, carry[-1], B, P + end - 1))
        carry = jax.lax.while_loop(lambda c, end=end: cond(c) & (c[0] < end), body, carry)
    _, tokens, log_probs, _, done, _, _ = carry
    if eos_id is not None:  # sequences all done early: the untouched tail is padding
        emitted = jnp.arange(N)[None, :] <= _first_index(tokens, eos_id)[:, None]  # (B, N)
        tokens = jnp.where(emitted, tokens, pad_id)
        log_probs = jnp.where(emitted, log_probs, 0.0)
    return tokens, log_probs


# The cached loop runs as at most this many loops of growing cache length (module
# docstring); each is compiled, so more segments trade compile time for attention rows.
_SEGMENTS = 4
_MIN_SEGMENT_STEPS = 8  # shorter segments save too few rows to pay for their compile


def _segment_ends(model: Model, batch: int, prompt_len: int, steps: int) -> tuple[int, ...]:
    """The cached loops' ends ``e_1 < .. < e_k = N``: loop i runs steps ``t < e_i``.

    One loop (``(N,)``) unless the model's cache grows along its position axis only: every
    leaf of ``init_cache(B, T + 1)`` at least as large as that of ``init_cache(B, T)`` on
    every axis, the tree the same (what :func:`_grow_cache` needs).
    """
    k = min(_SEGMENTS, steps // _MIN_SEGMENT_STEPS)
    if k <= 1:
        return (steps,)
    short = jax.eval_shape(lambda: model.init_cache(batch, prompt_len))
    long = jax.eval_shape(lambda: model.init_cache(batch, prompt_len + steps - 1))
    if jax.tree.structure(short) != jax.tree.structure(long) or not all(
            a.ndim == b.ndim and all(m <= n for m, n in zip(a.shape, b.shape, strict=True))
            for a, b in zip(jax.tree.leaves(short), jax.tree.leaves(long), strict=True)):
        return (steps,)
    return tuple(sorted({-(-steps * (i + 1) // k) for i in range(k)}))  # ceil(N (i+1) / k)


def _grow_cache(model: Model, cache, batch: int, length: int):
    """``cache`` (filled below some position) inside a fresh ``init_cache(batch, length)``.

    Each leaf is written at the origin of the larger one, so positions keep their index
    and the rows beyond the old length hold the empty cache's values (zeros for the
    :class:`~genjax.autoregressive.Transformer`), as in a cache built at full length.
    """
    fresh = model.init_cache(batch, length)

    def put(new: jax.Array, old: jax.Array) -> jax.Array:
        if new.shape == old.shape:
            return old
        return jax.lax.dynamic_update_slice(new, old.astype(new.dtype), (0,) * new.ndim)

    return jax.tree.map(put, fresh, cache)


def _first_index(tokens: jax.Array, eos_id: int) -> jax.Array:
    """Index of the first EOS per row (N where none): (B, N) -> (B,)."""
    N = tokens.shape[1]
    is_eos = tokens == eos_id
    return jnp.where(jnp.any(is_eos, axis=1), jnp.argmax(is_eos, axis=1), N)


# Drawing every step's Gumbels in one vectorised call before the loop costs ~5x less than
# N draws inside it (threefry's rounds run as a small loop of their own on a CPU); up to
# 2^24 floats (64 MB) are drawn ahead, larger workloads draw per step.
_PREDRAW_LIMIT = 2**24

_STATIC = ("max_new_tokens", "temperature", "top_k", "top_p", "min_p", "eos_id", "pad_id",
           "use_cache", "return_log_probs")


@functools.partial(model_jit, static_argnames=_STATIC)
def _generate_jit(key, model, prompt, constraint, completable_table, *, max_new_tokens,
                  temperature, top_k, top_p, min_p, eos_id, pad_id, use_cache,
                  return_log_probs):
    B, V = prompt.shape[0], _vocab_size_of(model)

    def draw(t):  # step t's Gumbels (B, V), from fold_in(key, t)
        return jax.random.gumbel(jax.random.fold_in(key, t), (B, V), jnp.float32)

    if max_new_tokens * B * V <= _PREDRAW_LIMIT:  # all steps' noise at once, the same values
        gumbels = jax.vmap(draw)(jnp.arange(max_new_tokens))  # (N, B, V)

        def noise_fn(t):
            return gumbels[t]
    else:  # too large to hold: draw inside the loop
        noise_fn = draw

    tokens, log_probs = _generate_loop(
        model, prompt, noise_fn, max_new_tokens=max_new_tokens, temperature=temperature,
        top_k=top_k, top_p=top_p, min_p=min_p, eos_id=eos_id, pad_id=pad_id,
        constraint=constraint, completable_table=completable_table, use_cache=use_cache,
        with_log_probs=return_log_probs)
    return (tokens, log_probs) if return_log_probs else tokens


@functools.partial(model_jit, static_argnames=_STATIC)
def _generate_noise_jit(model, prompt, gumbels, constraint, completable_table, *,
                        max_new_tokens, temperature, top_k, top_p, min_p, eos_id, pad_id,
                        use_cache, return_log_probs):
    tokens, log_probs = _generate_loop(
        model, prompt, lambda t: gumbels[t], max_new_tokens=max_new_tokens,
        temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, eos_id=eos_id,
        pad_id=pad_id, constraint=constraint, completable_table=completable_table,
        use_cache=use_cache, with_log_probs=return_log_probs)
    return (tokens, log_probs) if return_log_probs else tokens


def _prepare(model, prompt, max_new_tokens, temperature, top_k, top_p, min_p, eos_id,
             pad_id, constraint, use_cache, return_log_probs):
    """Checks every argument; returns the prompt, the completability table, the statics."""
    V = _vocab_size_of(model)
    prompt = _check_prompt(prompt, V)
    N = checks.positive_int("max_new_tokens", max_new_tokens)
    eos_id = _token_id("eos_id", eos_id, V)
    pad_id = _token_id("pad_id", pad_id, V)
    if pad_id is None:
        pad_id = 0 if eos_id is None else eos_id
    _check_context(model, prompt.shape[1], N)
    table = masking.prepare(constraint, N, eos_id, V)  # checks; None when unconstrained
    statics = dict(max_new_tokens=N, eos_id=eos_id, pad_id=pad_id, use_cache=bool(use_cache),
                   return_log_probs=bool(return_log_probs),
                   **sampling_options(temperature, top_k, top_p, min_p))
    return prompt, table, statics


def generate(key: jax.Array, model: Model, prompt: jax.Array, *, max_new_tokens: int,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             min_p: float | None = None, eos_id: int | None = None,
             pad_id: int | None = None, constraint: cst.Automaton | gr.Grammar | None = None,
             use_cache: bool = True, return_log_probs: bool = False
             ) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Sample continuations of a batch of prompts, with a KV cache, in one compiled loop.

    Prefill: one ``model.decode(prompt, cache, 0)``; then each step samples
    ``x_t ~ softmax(filter(mask(l_t)))`` (:func:`~genjax.autoregressive.decoding.sample_token`)
    and feeds ``x_t`` back with ``model.decode(x_t, cache, P + t)``. Everything runs in one
    ``lax.while_loop`` that stops when every sequence has emitted ``eos_id`` (or after
    ``max_new_tokens``).

    Args:
      key: a JAX key; step ``t`` draws its Gumbels ``(B, V)`` float32 from
        ``fold_in(key, t)`` (:func:`generate_from_noise` takes them instead).
      model: callable pytree with the decoding interface
        (:mod:`~genjax.autoregressive.decoding.interface`): ``model(tokens (B, L)) ->
        logits (B, L, V)``, ``init_cache``, ``decode``, ``vocab_size``, ``max_len``; e.g. a
        :class:`~genjax.autoregressive.Transformer`. Traced: new weights of the same
        shapes reuse the compiled loop.
      prompt: (B, P) int token ids in [0, V).
      max_new_tokens: N >= 1; ``P + N <= model.max_len``.
      temperature: T >= 0 (0 = greedy).
      top_k, top_p, min_p: filters (:func:`~genjax.autoregressive.decoding.filter_logits`).
      eos_id: end-of-sequence id; a sequence that emitted it emits ``pad_id`` afterwards.
      pad_id: the padding id after EOS (default ``eos_id``).
      constraint: a :class:`~genjax.autoregressive.decoding.constrained.Automaton`
        (regular expression, word list, JSON schema) or a
        :class:`~genjax.autoregressive.decoding.grammar.Grammar` (context-free, needs
        ``eos_id``); tokens that leave the language or cannot complete it in the remaining
        steps are masked inside the loop (see :mod:`~genjax.autoregressive.decoding.masking`
        for what is guaranteed).
      use_cache: False recomputes the full forward pass each step (the reference the tests
        hold the cached loop to).
      return_log_probs: also return ``log p_model(x_t | x_<t)`` (the model's own
        temperature-1 log-probabilities of the emitted tokens, 0 after EOS).

    Returns:
      (B, N) int32 new tokens, or ``(tokens, log_probs (B, N) float32)``.

    Example:
      >>> model = Transformer(8, 16, 8, 2, 1, rngs=nnx.Rngs(0))
      >>> prompt = jnp.zeros((2, 3), jnp.int32)
      >>> generate(jax.random.key(0), model, prompt, max_new_tokens=4, top_p=0.9).shape
      (2, 4)
    """
    prompt, table, statics = _prepare(model, prompt, max_new_tokens, temperature, top_k,
                                      top_p, min_p, eos_id, pad_id, constraint, use_cache,
                                      return_log_probs)
    return _generate_jit(key, model, prompt, constraint, table, **statics)


def generate_from_noise(model: Model, prompt: jax.Array, gumbels: jax.Array, *,
                        max_new_tokens: int, temperature: float = 1.0,
                        top_k: int | None = None, top_p: float | None = None,
                        min_p: float | None = None, eos_id: int | None = None,
                        pad_id: int | None = None,
                        constraint: cst.Automaton | gr.Grammar | None = None,
                        use_cache: bool = True, return_log_probs: bool = False
                        ) -> jax.Array | tuple[jax.Array, jax.Array]:
    """:func:`generate` on given noise: ``gumbels`` (N, B, V), row ``t`` for step ``t``.

    ``generate(key, ...)`` equals ``generate_from_noise(..., gumbels)`` with
    ``gumbels[t] = jax.random.gumbel(jax.random.fold_in(key, t), (B, V))``.

    Args:
      model, prompt: as :func:`generate`.
      gumbels: (max_new_tokens, B, V) standard Gumbel noise.
      max_new_tokens, ...: as :func:`generate`.

    Example:
      >>> model = Transformer(8, 16, 8, 2, 1, rngs=nnx.Rngs(0))
      >>> prompt = jnp.zeros((2, 3), jnp.int32)
      >>> gumbels = jax.random.gumbel(jax.random.key(0), (4, 2, 8))  # (N, B, V)
      >>> generate_from_noise(model, prompt, gumbels, max_new_tokens=4).shape
      (2, 4)
    """
    prompt, table, statics = _prepare(model, prompt, max_new_tokens, temperature, top_k,
                                      top_p, min_p, eos_id, pad_id, constraint, use_cache,
                                      return_log_probs)
    checks.shape("gumbels", gumbels, (statics["max_new_tokens"], prompt.shape[0],
                                      _vocab_size_of(model)))
    return _generate_noise_jit(model, prompt, jnp.asarray(gumbels, jnp.float32), constraint,
                               table, **statics)
