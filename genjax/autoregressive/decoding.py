"""Decoding strategies for autoregressive models: each exact to the distribution it claims.

Implemented here, every sampler compiled whole (one ``jax.jit`` around one loop):

* logit filters -- :func:`temperature`, :func:`top_k_filter`, :func:`top_p_filter`
  (nucleus sampling, Holtzman et al. 2020), :func:`min_p_filter` (Nguyen et al. 2024);
  :func:`sample_token` composing them; temperature 0 is greedy (argmax).
* :func:`generate` -- sampling with a KV cache in one ``lax.while_loop``, per-sequence
  EOS, optional token-level constraint (:mod:`genjax.autoregressive.constrained`).
* :func:`beam_search` -- with EOS handling and a length penalty (Wu et al. 2016), over a
  ``log_prob_fn`` (full forward pass per step); :func:`beam_search_cached` -- the same
  search over a model's KV cache.
* :func:`speculative_verify` and :func:`speculative_generate` -- speculative sampling
  (Leviathan, Kalman & Matias 2023; Chen et al. 2023), which emits tokens distributed
  exactly as the target model's.

Conventions (DESIGN.md):

* removed logits are set to ``jnp.finfo(dtype).min``, never ``-inf * mask``;
* top-p keeps the smallest set of most probable tokens whose mass reaches ``p``, the
  boundary token included, never empty; ties in probability are broken by lower token id
  (top-k likewise);
* noise is injectable: sampling is the Gumbel-max trick (Gumbel 1954; Maddison et al.
  2014), ``x = argmax_v (l_v + g_v)`` with ``g_v ~ Gumbel(0, 1)`` i.i.d., which draws ``x``
  with probability ``softmax(l)_x``; each ``*_from_noise`` function takes its Gumbels
  (and uniforms), so tests share noise with the NumPy oracle
  (:mod:`genjax.autoregressive.oracle`).

The order of the filters in :func:`sample_token` is temperature, top-k, top-p, min-p
(Hugging Face's order of its logits warpers). Temperature comes first so that the
mass-based filters (top-p, min-p) act on the distribution that is actually sampled: with
``T = 0.5`` a nucleus of mass 0.9 is a nucleus of the sharpened distribution. Top-k is
unaffected by the order (temperature keeps the ranking); top-p after top-k takes the
nucleus of the renormalised top-k distribution; min-p last compares with the largest
surviving probability, which every filter keeps.

Model interface (what :class:`genjax.autoregressive.Transformer` provides)::

    logits = model(tokens)                          # (B, L) int32 -> (B, L, V)
    cache = model.init_cache(batch_size, max_len)   # pytree, batch on axis 0 of each leaf
    logits, cache = model.decode(tokens, cache, pos)  # (B, S) at positions pos..pos+S-1

References:
  Holtzman et al. (2020), "The curious case of neural text degeneration", ICLR.
  Nguyen et al. (2024), "Turning up the heat: min-p sampling for creative and coherent
    LLM outputs".
  Wu et al. (2016), "Google's neural machine translation system", eq. 14 (length penalty).
  Leviathan, Kalman & Matias (2023), "Fast inference from transformers via speculative
    decoding", ICML, Algorithm 1.
  Chen et al. (2023), "Accelerating large language model decoding with speculative
    sampling", Algorithm 2.
  Maddison, Tarlow & Minka (2014), "A* sampling", NeurIPS (the Gumbel-max trick).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from genjax.autoregressive import constrained as cst

__all__ = [
    "temperature",
    "top_k_filter",
    "top_p_filter",
    "min_p_filter",
    "filter_logits",
    "sample_token",
    "sample_token_from_noise",
    "generate",
    "generate_from_noise",
    "beam_search",
    "beam_search_cached",
    "speculative_verify",
    "speculative_verify_from_noise",
    "speculative_verify_batch",
    "speculative_generate",
]

Model = Any


# ---------------------------------------------------------------------------------------
# Argument checks (trace time)
# ---------------------------------------------------------------------------------------


def _check_temperature(t: Any) -> float:
    try:
        t = float(t)
    except (TypeError, jax.errors.ConcretizationTypeError) as err:
        raise ValueError(f"temperature must be a Python float >= 0, got {t!r}") from err
    if not (math.isfinite(t) and t >= 0.0):
        raise ValueError(f"temperature must be a finite float >= 0, got {t!r}")
    return t


def _check_top_k(k: Any) -> int | None:
    if k is None:
        return None
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"top_k must be an integer >= 1 (or None), got {k!r}")
    return int(k)


def _check_top_p(p: Any) -> float | None:
    if p is None:
        return None
    p = float(p)
    if not 0.0 < p <= 1.0:
        raise ValueError(f"top_p must lie in (0, 1] (or be None), got {p!r}")
    return p


def _check_min_p(p: Any) -> float | None:
    if p is None:
        return None
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"min_p must lie in [0, 1] (or be None), got {p!r}")
    return p


def _check_positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _check_logits(logits: Any) -> jax.Array:
    logits = jnp.asarray(logits)
    if logits.ndim < 1 or logits.shape[-1] < 1:
        raise ValueError(f"logits must have shape (..., V) with V >= 1, got {logits.shape}")
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        raise ValueError(f"logits must be a floating array, got dtype {logits.dtype}")
    return logits


def _check_token_id(name: str, value: Any, vocab_size: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or int(value) != value or value < 0:
        raise ValueError(f"{name} must be a token id >= 0 (or None), got {value!r}")
    if vocab_size is not None and value >= vocab_size:
        raise ValueError(f"{name} must be < the vocabulary size {vocab_size}, got {value}")
    return int(value)


def _removed(dtype: Any) -> jax.Array:
    """The value of a removed logit (DESIGN.md): finite, so no inf - inf or 0 * inf NaN."""
    return jnp.asarray(jnp.finfo(dtype).min, dtype)


# ---------------------------------------------------------------------------------------
# Filters: (..., V) logits -> (..., V) logits, removed entries = finfo.min
# ---------------------------------------------------------------------------------------


# Each filter is a thin Python function that checks its argument and skips no-ops, around
# one jitted kernel whose parameter (T, k, p, min_p) is traced: one compilation per
# shape, whatever the values.


@jax.jit
def _temperature_kernel(logits: jax.Array, t: jax.Array) -> jax.Array:
    shifted = logits - jnp.max(logits, axis=-1, keepdims=True)  # <= 0
    return jnp.maximum(shifted / t.astype(logits.dtype), _removed(logits.dtype))


@jax.jit
def _greedy_kernel(logits: jax.Array) -> jax.Array:
    best = jnp.argmax(logits, axis=-1)  # first maximum = lowest id
    ids = jnp.arange(logits.shape[-1]).reshape((1,) * (logits.ndim - 1) + (-1,))
    keep = ids == best[..., None]  # (..., V)
    return jnp.where(keep, jnp.zeros_like(logits), _removed(logits.dtype))


def temperature(logits: jax.Array, t: float) -> jax.Array:
    """Temperature scaling, ``softmax(l / T)``; ``T = 0`` is the greedy limit.

        l'_v = (l_v - max_u l_u) / T                   (T > 0)
        l'_v = 0 if v = argmax l (lowest id on ties), finfo.min otherwise   (T = 0)

    The shift by the maximum leaves the distribution unchanged and keeps the result
    finite for any ``T > 0`` (logits of 1e4 at T = 1e-40 would overflow otherwise);
    results are clamped at ``finfo.min``.

    Args:
      logits: (..., V) floating.
      t: temperature T >= 0 (a Python float).

    Returns:
      (..., V) logits of the same dtype.
    """
    logits = _check_logits(logits)
    t = _check_temperature(t)
    if t == 0.0:
        return _greedy_kernel(logits)
    return _temperature_kernel(logits, jnp.asarray(t, jnp.float32))


_scale = temperature  # the function, for callers whose argument is named temperature


def _keep_top(logits: jax.Array, sorted_desc: jax.Array, count: jax.Array) -> jax.Array:
    """Mask of the ``count`` largest logits, ties broken by lower id.

    Args:
      logits: (..., V); sorted_desc: (..., V) the same values in descending order;
      count: (..., 1) int in [1, V].

    The kept set is {v : l_v > thr} plus the lowest-id tokens with l_v = thr, as many as
    needed, where thr is the count-th largest value: a sort of the values, no argsort.
    """
    thr = jnp.take_along_axis(sorted_desc, count - 1, axis=-1)  # (..., 1)
    greater = logits > thr  # (..., V)
    equal = logits == thr  # (..., V)
    num_greater = jnp.sum(greater, axis=-1, keepdims=True)  # (..., 1)
    tie_rank = jnp.cumsum(equal, axis=-1)  # 1-based rank among the ties, by id
    return greater | (equal & (tie_rank <= count - num_greater))


def _sorted_desc(logits: jax.Array) -> jax.Array:
    return -jnp.sort(-logits, axis=-1)  # (..., V) values, descending


@jax.jit
def _top_k_kernel(logits: jax.Array, k: jax.Array) -> jax.Array:
    count = jnp.full((*logits.shape[:-1], 1), k, dtype=jnp.int32)  # (..., 1)
    keep = _keep_top(logits, _sorted_desc(logits), count)
    return jnp.where(keep, logits, _removed(logits.dtype))


def top_k_filter(logits: jax.Array, k: int) -> jax.Array:
    """Keep the ``k`` largest logits (ties broken by lower token id), remove the rest.

    Args:
      logits: (..., V) floating.
      k: integer >= 1; ``k >= V`` keeps everything.

    Returns:
      (..., V): ``logits`` where kept, ``finfo(dtype).min`` elsewhere.
    """
    logits = _check_logits(logits)
    k = _check_top_k(k)
    if k is None or k >= logits.shape[-1]:
        return logits
    return _top_k_kernel(logits, jnp.asarray(k, jnp.int32))


@jax.jit
def _top_p_kernel(logits: jax.Array, p: jax.Array) -> jax.Array:
    work = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))
    sorted_desc = _sorted_desc(work)  # (..., V)
    w = jnp.exp(sorted_desc - sorted_desc[..., :1])  # unnormalised probabilities, w_(1) = 1
    total = jnp.sum(w, axis=-1, keepdims=True)  # (..., 1)
    before = jnp.cumsum(w, axis=-1) - w  # mass strictly before each sorted token
    count = jnp.sum(before < p.astype(work.dtype) * total, axis=-1, keepdims=True)  # >= 1
    keep = _keep_top(work, sorted_desc, count.astype(jnp.int32))
    return jnp.where(keep, logits, _removed(logits.dtype))


def top_p_filter(logits: jax.Array, p: float) -> jax.Array:
    """Nucleus filter (Holtzman et al. 2020, eq. 3): the smallest top set of mass >= p.

    With the tokens sorted by decreasing probability (ties: lower id first),
    ``pi_(1) >= pi_(2) >= ...``, token ``(i)`` is kept iff the mass *before* it is below p:

        keep (i)  <=>  sum_{j < i} pi_(j) < p

    so the boundary token that makes the mass reach ``p`` is kept, the token ``(1)`` always
    is (never empty), and when ``p`` equals a cumulative sum exactly the set stops there.
    ``p = 1`` keeps every token (returns ``logits`` unchanged). Probabilities are
    computed in at least float32, unnormalised (``exp(l - max)``) against ``p * total``.

    Args:
      logits: (..., V) floating.
      p: the nucleus mass in (0, 1].

    Returns:
      (..., V): ``logits`` where kept, ``finfo(dtype).min`` elsewhere.
    """
    logits = _check_logits(logits)
    p = _check_top_p(p)
    if p is None or p >= 1.0:
        return logits
    return _top_p_kernel(logits, jnp.asarray(p, jnp.float32))


@jax.jit
def _min_p_kernel(logits: jax.Array, log_min_p: jax.Array) -> jax.Array:
    shifted = logits - jnp.max(logits, axis=-1, keepdims=True)  # log(pi_v / pi_max) <= 0
    keep = shifted >= log_min_p.astype(logits.dtype)
    return jnp.where(keep, logits, _removed(logits.dtype))


def min_p_filter(logits: jax.Array, min_p: float) -> jax.Array:
    """Min-p filter (Nguyen et al. 2024): keep tokens with ``pi_v >= min_p * max_u pi_u``.

    In log space, ``l_v - max_u l_u >= log(min_p)`` (no normalisation needed). ``min_p = 0``
    keeps everything; the most probable token is always kept.

    Args:
      logits: (..., V) floating.
      min_p: in [0, 1].

    Returns:
      (..., V): ``logits`` where kept, ``finfo(dtype).min`` elsewhere.
    """
    logits = _check_logits(logits)
    min_p = _check_min_p(min_p)
    if min_p is None or min_p == 0.0:
        return logits
    return _min_p_kernel(logits, jnp.asarray(math.log(min_p), jnp.float32))


def filter_logits(logits: jax.Array, *, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None, min_p: float | None = None) -> jax.Array:
    """The logits of the distribution :func:`sample_token` draws from.

    Order: temperature, top-k, top-p, min-p (module docstring says why). With
    ``temperature = 0`` only the argmax survives.

    Args:
      logits: (..., V) floating.
      temperature: T >= 0.
      top_k, top_p, min_p: filters, each optional (None = off).

    Returns:
      (..., V) logits; removed entries ``finfo(dtype).min``.
    """
    top_k, top_p, min_p = _check_top_k(top_k), _check_top_p(top_p), _check_min_p(min_p)
    out = _scale(logits, temperature)
    if temperature == 0.0:
        return out
    if top_k is not None:
        out = top_k_filter(out, top_k)
    if top_p is not None:
        out = top_p_filter(out, top_p)
    if min_p is not None:
        out = min_p_filter(out, min_p)
    return out


def sample_token_from_noise(gumbel: jax.Array, logits: jax.Array, *,
                            temperature: float = 1.0, top_k: int | None = None,
                            top_p: float | None = None, min_p: float | None = None
                            ) -> jax.Array:
    """The deterministic sampling step: ``argmax_v (l'_v + g_v)`` (Gumbel-max).

    ``temperature = 0`` returns ``argmax_v l_v`` exactly (lowest id on ties), ignoring
    ``gumbel`` and the other filters (which all keep the argmax).

    Args:
      gumbel: (..., V) standard Gumbel noise.
      logits: (..., V) floating.
      temperature, top_k, top_p, min_p: as in :func:`filter_logits`.

    Returns:
      (...,) int32 token ids.
    """
    logits = _check_logits(logits)
    if _check_temperature(temperature) == 0.0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    if gumbel.shape != logits.shape:
        raise ValueError(f"gumbel must have the shape of logits {logits.shape}, "
                         f"got {gumbel.shape}")
    filtered = filter_logits(logits, temperature=temperature, top_k=top_k, top_p=top_p,
                             min_p=min_p)
    # a removed logit (finfo.min) plus any finite Gumbel stays far below every kept one
    return jnp.argmax(filtered + gumbel.astype(filtered.dtype), axis=-1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("temperature", "top_k", "top_p", "min_p"))
def sample_token(key: jax.Array, logits: jax.Array, *, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None,
                 min_p: float | None = None) -> jax.Array:
    """Draw one token per row from the filtered distribution.

        x ~ softmax(filter(l))   with filter = min-p o top-p o top-k o temperature

    Args:
      key: a JAX key.
      logits: (..., V) floating.
      temperature: T >= 0; 0 is greedy (exactly argmax, no division by 0).
      top_k: keep the k most probable (ties: lower id), or None.
      top_p: nucleus mass in (0, 1], or None.
      min_p: in [0, 1], or None.

    Returns:
      (...,) int32 token ids.

    Example:
      >>> sample_token(jax.random.key(0), logits, temperature=0.8, top_p=0.9)
    """
    logits = _check_logits(logits)
    gumbel = jax.random.gumbel(key, logits.shape, jnp.promote_types(logits.dtype,
                                                                      jnp.float32))
    return sample_token_from_noise(gumbel, logits, temperature=temperature, top_k=top_k,
                                   top_p=top_p, min_p=min_p)


# ---------------------------------------------------------------------------------------
# generate: KV-cached sampling in one while_loop
# ---------------------------------------------------------------------------------------


def _check_prompt(prompt: Any) -> jax.Array:
    prompt = jnp.asarray(prompt)
    if prompt.ndim != 2 or prompt.shape[0] < 1 or prompt.shape[1] < 1:
        raise ValueError(f"prompt must have shape (B, P) with B, P >= 1, got {prompt.shape}")
    if not jnp.issubdtype(prompt.dtype, jnp.integer):
        raise ValueError(f"prompt must hold integer token ids, got dtype {prompt.dtype}")
    return prompt.astype(jnp.int32)


def _check_context(model: Model, prompt_len: int, max_new_tokens: int, extra: int = 0) -> None:
    max_len = getattr(model, "max_len", None)
    if max_len is None:
        return
    if prompt_len > max_len:
        raise ValueError(f"prompt has length {prompt_len}, longer than the model's context "
                         f"max_len={max_len}")
    if prompt_len + max_new_tokens + extra > max_len:
        raise ValueError(f"max_new_tokens={max_new_tokens} does not fit: prompt length "
                         f"{prompt_len} + max_new_tokens{f' + {extra}' if extra else ''} "
                         f"exceeds the model's max_len={max_len}")


def _generate_loop(model: Model, prompt: jax.Array, noise_fn: Callable, *,
                   max_new_tokens: int, temperature: float, top_k, top_p, min_p,
                   eos_id, pad_id, constraint, completable_table, use_cache: bool):
    """The decoding loop shared by :func:`generate` and :func:`generate_from_noise`."""
    B, P = prompt.shape
    N = max_new_tokens
    L = P + N

    def pick(t, logits, done, state):
        """One deterministic step: mask, filter, sample with the noise of step t."""
        logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))  # (B, V)
        masked = logits
        if constraint is not None:
            allowed = cst.allowed_tokens(constraint, state, completable_table[N - 1 - t],
                                         eos_id)  # (B, V): r = N - t slots left now
            masked = jnp.where(allowed, logits, _removed(logits.dtype))
        token = sample_token_from_noise(noise_fn(t), masked, temperature=temperature,
                                        top_k=top_k, top_p=top_p, min_p=min_p)  # (B,)
        log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1),
                                       token[:, None], axis=-1)[:, 0]  # log p_model(x_t)
        if eos_id is not None:  # after EOS: pad, log-prob 0, automaton frozen
            token = jnp.where(done, pad_id, token)
            log_prob = jnp.where(done, 0.0, log_prob)
            done = done | (token == eos_id)
        if constraint is not None:
            state = jnp.where(done & (token != eos_id), state,
                              cst.advance(constraint, state, token, eos_id))
        return token, log_prob, done, state

    done0 = jnp.zeros((B,), bool)
    state0 = jnp.broadcast_to(constraint.start, (B,)).astype(jnp.int32) if constraint \
        is not None else jnp.zeros((B,), jnp.int32)
    if use_cache:
        cache = model.init_cache(B, L)
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
    _, tokens, log_probs, _, done, _, _ = jax.lax.while_loop(cond, body, carry)
    if eos_id is not None:  # sequences all done early: the untouched tail is padding
        emitted = jnp.arange(N)[None, :] <= _first_index(tokens, eos_id)[:, None]  # (B, N)
        tokens = jnp.where(emitted, tokens, pad_id)
        log_probs = jnp.where(emitted, log_probs, 0.0)
    return tokens, log_probs


def _first_index(tokens: jax.Array, eos_id: int) -> jax.Array:
    """Index of the first EOS per row (N where none): (B, N) -> (B,)."""
    N = tokens.shape[1]
    is_eos = tokens == eos_id
    return jnp.where(jnp.any(is_eos, axis=1), jnp.argmax(is_eos, axis=1), N)


_STATIC = ("max_new_tokens", "temperature", "top_k", "top_p", "min_p", "eos_id", "pad_id",
           "use_cache", "return_log_probs")


@functools.partial(jax.jit, static_argnames=_STATIC)
def _generate_jit(key, model, prompt, constraint, completable_table, *, max_new_tokens,
                  temperature, top_k, top_p, min_p, eos_id, pad_id, use_cache,
                  return_log_probs):
    B = prompt.shape[0]

    def noise_fn(t):  # a fresh Gumbel draw per step, from fold_in(key, t)
        V = _vocab_size_of(model)
        return jax.random.gumbel(jax.random.fold_in(key, t), (B, V), jnp.float32)

    tokens, log_probs = _generate_loop(
        model, prompt, noise_fn, max_new_tokens=max_new_tokens, temperature=temperature,
        top_k=top_k, top_p=top_p, min_p=min_p, eos_id=eos_id, pad_id=pad_id,
        constraint=constraint, completable_table=completable_table, use_cache=use_cache)
    return (tokens, log_probs) if return_log_probs else tokens


@functools.partial(jax.jit, static_argnames=_STATIC)
def _generate_noise_jit(gumbels, model, prompt, constraint, completable_table, *,
                        max_new_tokens, temperature, top_k, top_p, min_p, eos_id, pad_id,
                        use_cache, return_log_probs):
    tokens, log_probs = _generate_loop(
        model, prompt, lambda t: gumbels[t], max_new_tokens=max_new_tokens,
        temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, eos_id=eos_id,
        pad_id=pad_id, constraint=constraint, completable_table=completable_table,
        use_cache=use_cache)
    return (tokens, log_probs) if return_log_probs else tokens


def _vocab_size_of(model: Model) -> int:
    V = getattr(model, "vocab_size", None)
    if V is None:
        raise ValueError("model must have an integer attribute vocab_size")
    return int(V)


def _prepare(model, prompt, max_new_tokens, temperature, top_k, top_p, min_p, eos_id,
             pad_id, constraint):
    prompt = _check_prompt(prompt)
    max_new_tokens = _check_positive("max_new_tokens", max_new_tokens)
    V = _vocab_size_of(model)
    options = dict(temperature=_check_temperature(temperature), top_k=_check_top_k(top_k),
                   top_p=_check_top_p(top_p), min_p=_check_min_p(min_p))
    eos_id = _check_token_id("eos_id", eos_id, V)
    pad_id = _check_token_id("pad_id", pad_id, V)
    if pad_id is None:
        pad_id = 0 if eos_id is None else eos_id
    _check_context(model, prompt.shape[1], max_new_tokens)
    table = None
    if constraint is not None:
        if not isinstance(constraint, cst.Automaton):
            raise ValueError(f"constraint must be a constrained.Automaton, got {constraint!r}")
        if constraint.vocab_size != V:
            raise ValueError(f"constraint has {constraint.vocab_size} token columns, the "
                             f"model's vocabulary {V}")
        reach = cst.completable(constraint, max_new_tokens, eos_id=eos_id)
        if not reach[max_new_tokens, int(constraint.start)]:
            raise ValueError(f"constraint: no string of the language fits in "
                             f"max_new_tokens={max_new_tokens} tokens")
        table = jnp.asarray(reach)
    return prompt, max_new_tokens, options, eos_id, pad_id, table


def generate(key: jax.Array, model: Model, prompt: jax.Array, *, max_new_tokens: int,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             min_p: float | None = None, eos_id: int | None = None,
             pad_id: int | None = None, constraint: cst.Automaton | None = None,
             use_cache: bool = True, return_log_probs: bool = False):
    """Sample continuations of a batch of prompts, with a KV cache, in one compiled loop.

    Prefill: one ``model.decode(prompt, cache, 0)``; then each step samples
    ``x_t ~ softmax(filter(mask(l_t)))`` (:func:`sample_token`) and feeds ``x_t`` back with
    ``model.decode(x_t, cache, P + t)``. Everything runs in one ``lax.while_loop`` that
    stops when every sequence has emitted ``eos_id`` (or after ``max_new_tokens``).

    Args:
      key: a JAX key; step ``t`` draws its Gumbels from ``fold_in(key, t)``.
      model: the model (``vocab_size``, ``max_len``, ``__call__``, ``init_cache``, ``decode``).
      prompt: (B, P) int token ids.
      max_new_tokens: N >= 1; ``P + N <= model.max_len``.
      temperature: T >= 0 (0 = greedy).
      top_k, top_p, min_p: filters (:func:`filter_logits`).
      eos_id: end-of-sequence id; a sequence that emitted it emits ``pad_id`` afterwards.
      pad_id: the padding id after EOS (default ``eos_id``).
      constraint: a :class:`~genjax.autoregressive.constrained.Automaton`; tokens that
        leave the language or cannot complete it in the remaining steps are masked (see
        :mod:`~genjax.autoregressive.constrained` for what is guaranteed).
      use_cache: False recomputes the full forward pass each step (the reference the tests
        hold the cached loop to).
      return_log_probs: also return ``log p_model(x_t | x_<t)`` (the model's own
        temperature-1 log-probabilities of the emitted tokens, 0 after EOS).

    Returns:
      (B, N) int32 new tokens, or ``(tokens, log_probs (B, N))``.
    """
    prompt, N, options, eos_id, pad_id, table = _prepare(
        model, prompt, max_new_tokens, temperature, top_k, top_p, min_p, eos_id, pad_id,
        constraint)
    return _generate_jit(key, model, prompt, constraint, table, max_new_tokens=N,
                         eos_id=eos_id, pad_id=pad_id, use_cache=bool(use_cache),
                         return_log_probs=bool(return_log_probs), **options)


def generate_from_noise(gumbels: jax.Array, model: Model, prompt: jax.Array, *,
                        max_new_tokens: int, temperature: float = 1.0,
                        top_k: int | None = None, top_p: float | None = None,
                        min_p: float | None = None, eos_id: int | None = None,
                        pad_id: int | None = None, constraint: cst.Automaton | None = None,
                        use_cache: bool = True, return_log_probs: bool = False):
    """:func:`generate` on given noise: ``gumbels`` (N, B, V), row ``t`` for step ``t``."""
    prompt, N, options, eos_id, pad_id, table = _prepare(
        model, prompt, max_new_tokens, temperature, top_k, top_p, min_p, eos_id, pad_id,
        constraint)
    want = (N, prompt.shape[0], _vocab_size_of(model))
    if tuple(gumbels.shape) != want:
        raise ValueError(f"gumbels must have shape (max_new_tokens, B, V) = {want}, "
                         f"got {tuple(gumbels.shape)}")
    return _generate_noise_jit(jnp.asarray(gumbels, jnp.float32), model, prompt, constraint,
                               table, max_new_tokens=N, eos_id=eos_id, pad_id=pad_id,
                               use_cache=bool(use_cache),
                               return_log_probs=bool(return_log_probs), **options)


# ---------------------------------------------------------------------------------------
# Beam search
# ---------------------------------------------------------------------------------------


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


@functools.partial(jax.jit, static_argnames=("log_prob_fn", *_BEAM_STATIC))
def _beam_search_jit(prompt, *, log_prob_fn, **options):
    B, P = prompt.shape
    K = options["num_beams"]

    def current_lp(memory, buf, t):  # the whole forward pass; causal, so pads are unseen
        lp = log_prob_fn(buf.reshape(B * K, buf.shape[-1]))  # (B*K, L, V)
        return jax.lax.dynamic_index_in_dim(lp, P + t - 1, axis=1, keepdims=False)

    return _beam_loop(prompt, current_lp, lambda memory, *_: memory, (), **options)


@functools.partial(jax.jit, static_argnames=_BEAM_STATIC)
def _beam_search_cached_jit(model, prompt, **options):
    B, P = prompt.shape
    K, N = options["num_beams"], options["max_new_tokens"]
    cache = model.init_cache(B * K, P + N)
    rows = jnp.repeat(prompt, K, axis=0)  # (B*K, P), beam k of prompt b at row b*K + k
    logits, cache = model.decode(rows, cache, jnp.asarray(0, jnp.int32))  # prefill

    def current_lp(memory, buf, t):
        return jax.nn.log_softmax(memory[1].astype(jnp.float32), axis=-1)  # (B*K, V)

    def after_select(memory, parent, token, t):
        cache = jax.tree.map(lambda a: a[parent], memory[0])  # reorder beams (batch axis 0)
        logits, cache = model.decode(token[:, None], cache, P + t)  # (B*K, 1, V)
        return cache, logits[:, 0]

    return _beam_loop(prompt, current_lp, after_select, (cache, logits[:, -1]), **options)


def _beam_arguments(prompt, num_beams, max_new_tokens, eos_id, length_penalty, pad_id):
    one_d = jnp.ndim(prompt) == 1
    prompt = _check_prompt(jnp.asarray(prompt)[None] if one_d else prompt)
    options = dict(num_beams=_check_positive("num_beams", num_beams),
                   max_new_tokens=_check_positive("max_new_tokens", max_new_tokens),
                   eos_id=_check_token_id("eos_id", eos_id, None))
    pad_id = _check_token_id("pad_id", pad_id, None)
    options["pad_id"] = (0 if options["eos_id"] is None else options["eos_id"]) \
        if pad_id is None else pad_id
    length_penalty = float(length_penalty)
    if not math.isfinite(length_penalty):
        raise ValueError(f"length_penalty must be finite, got {length_penalty}")
    options["length_penalty"] = length_penalty
    return one_d, prompt, options


def beam_search(log_prob_fn: Callable[[jax.Array], jax.Array], prompt: jax.Array, *,
                num_beams: int, max_new_tokens: int, eos_id: int | None = None,
                length_penalty: float = 1.0, pad_id: int | None = None
                ) -> tuple[jax.Array, jax.Array]:
    """Beam search for the highest-scoring continuations (one compiled ``lax.scan``).

    Each step extends every alive beam by every token, ``s(y, v) = s(y) + log p(v | y)``,
    and keeps the ``num_beams`` best non-EOS extensions alive. Every EOS extension is a
    finished hypothesis with the length-normalised score

        score(y) = sum_t log p(y_t | y_<t) / |y|**length_penalty

    (``|y|`` = new tokens including the EOS; Hugging Face's length penalty; GNMT's
    ``((5 + |y|) / 6)**alpha`` differs only in the length's offset, Wu et al. 2016 eq. 14);
    the ``num_beams`` best finished hypotheses are kept. After ``max_new_tokens`` steps
    the alive beams finish with ``|y| = N`` and compete with the finished pool. Unlike
    Hugging Face, an EOS extension is considered even when it ranks below the alive beams,
    and there is no early stop; with ``num_beams >= V**N`` nothing is pruned and the result
    is the exact best sequence (the tests check this by enumeration).

    Args:
      log_prob_fn: ``tokens (n, L) -> (n, L, V)`` next-token log-probabilities at every
        position (row ``i`` scores token ``i + 1``); must be causal, since positions after
        the current one hold ``pad_id``. Static (hashable) under ``jit``.
      prompt: (B, P) or (P,) int token ids.
      num_beams: K >= 1.
      max_new_tokens: N >= 1.
      eos_id: end-of-sequence id, or None (all hypotheses have N tokens).
      length_penalty: alpha; 0 ranks by the raw sum of log-probabilities.
      pad_id: fills positions after EOS (default ``eos_id``, else 0).

    Returns:
      ``(sequences (B, K, N) int32, scores (B, K))``, best first (``(K, N)``, ``(K,)`` for a
      1-D prompt). A score of ``-inf`` marks an empty slot (fewer than K hypotheses exist).
    """
    one_d, prompt, options = _beam_arguments(prompt, num_beams, max_new_tokens, eos_id,
                                             length_penalty, pad_id)
    seqs, scores = _beam_search_jit(prompt, log_prob_fn=log_prob_fn, **options)
    return (seqs[0], scores[0]) if one_d else (seqs, scores)


def beam_search_cached(model: Model, prompt: jax.Array, *, num_beams: int,
                       max_new_tokens: int, eos_id: int | None = None,
                       length_penalty: float = 1.0, pad_id: int | None = None
                       ) -> tuple[jax.Array, jax.Array]:
    """:func:`beam_search` over a model's KV cache: same search, same result.

    The ``B * K`` beams are rows of one cache; after each selection the cache rows are
    gathered by parent beam (every cache leaf must have the batch on axis 0, as
    ``Transformer.init_cache`` does) and the chosen tokens are fed with one
    ``model.decode`` call. Requires ``P + max_new_tokens <= model.max_len``.

    Args:
      model: a model with ``init_cache`` / ``decode`` (see the module docstring).
      prompt, num_beams, max_new_tokens, eos_id, length_penalty, pad_id: as
        :func:`beam_search`.

    Returns:
      ``(sequences (B, K, N), scores (B, K))``, best first.
    """
    one_d, prompt, options = _beam_arguments(prompt, num_beams, max_new_tokens, eos_id,
                                             length_penalty, pad_id)
    _check_context(model, prompt.shape[1], options["max_new_tokens"])
    seqs, scores = _beam_search_cached_jit(model, prompt, **options)
    return (seqs[0], scores[0]) if one_d else (seqs, scores)


# ---------------------------------------------------------------------------------------
# Speculative sampling
# ---------------------------------------------------------------------------------------


def speculative_verify_from_noise(uniforms: jax.Array, gumbels: jax.Array,
                                  draft_tokens: jax.Array, draft_probs: jax.Array,
                                  target_probs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The accept/reject rule of speculative sampling on given noise (one sequence).

    For i = 1 .. k (Leviathan et al. 2023, Algorithm 1; Chen et al. 2023, Algorithm 2):

        accept x_i  iff  u_i < min(1, p_i(x_i) / q_i(x_i))     (tested as u_i q_i(x_i) < p_i(x_i))

    stop at the first rejection n (n = k when all are accepted) and emit
    ``x_1 .. x_n`` followed by one token from

        norm(max(0, p_{n+1} - q_{n+1}))   if n < k   (the residual distribution)
        p_{k+1}                           if n = k   (the bonus token)

    (a residual that rounds to zero everywhere, possible only when p = q up to rounding,
    falls back to p). Then every emitted token is distributed as the target's.

    Args:
      uniforms: (k,) in [0, 1).
      gumbels: (k + 1, V) standard Gumbels; row n samples the residual / bonus token.
      draft_tokens: (k,) int, x_i ~ q_i.
      draft_probs: (k, V), q_i.
      target_probs: (k + 1, V), p_i (row k for the bonus token).

    Returns:
      ``(tokens (k + 1,) int32, num_accepted () int32)``: tokens[:n] = x_1..x_n,
      tokens[n] = the residual/bonus token, -1 after.
    """
    k = draft_tokens.shape[0]
    V = target_probs.shape[-1]
    idx = jnp.arange(k)
    q_x = draft_probs[idx, draft_tokens]  # (k,)
    p_x = target_probs[idx, draft_tokens]  # (k,)
    accept = uniforms * q_x < p_x  # u < min(1, p/q), no division
    n = jnp.sum(jnp.cumprod(accept.astype(jnp.int32)))  # accepted before the 1st rejection
    q_ext = jnp.concatenate([draft_probs, jnp.zeros((1, V), draft_probs.dtype)], axis=0)
    residual = jnp.maximum(target_probs[n] - q_ext[n], 0.0)  # (V,); = p_{k+1} when n = k
    residual = jnp.where(jnp.sum(residual) > 0, residual, target_probs[n])
    log_r = jnp.where(residual > 0, jnp.log(jnp.where(residual > 0, residual, 1.0)),
                      _removed(residual.dtype))  # log of the unnormalised residual
    extra = jnp.argmax(log_r + gumbels[n].astype(log_r.dtype)).astype(jnp.int32)
    pos = jnp.arange(k + 1)
    drafts = jnp.concatenate([draft_tokens.astype(jnp.int32), jnp.zeros((1,), jnp.int32)])
    tokens = jnp.where(pos < n, drafts, jnp.where(pos == n, extra, -1))
    return tokens, n.astype(jnp.int32)


def _check_verify_shapes(draft_tokens, draft_probs, target_probs):
    draft_tokens = jnp.asarray(draft_tokens)
    draft_probs, target_probs = jnp.asarray(draft_probs), jnp.asarray(target_probs)
    if draft_tokens.ndim < 1:
        raise ValueError(f"draft_tokens must have shape (..., k), got {draft_tokens.shape}")
    k = draft_tokens.shape[-1]
    if k < 1:
        raise ValueError("draft_tokens must hold k >= 1 tokens")
    lead = draft_tokens.shape[:-1]
    if draft_probs.ndim < 1:
        raise ValueError(f"draft_probs must have shape (..., k, V), got {draft_probs.shape}")
    V = draft_probs.shape[-1]
    if draft_probs.shape != (*lead, k, V):
        raise ValueError(f"draft_probs must have shape {(*lead, k, V)}, got {draft_probs.shape}")
    if target_probs.shape != (*lead, k + 1, V):
        raise ValueError(f"target_probs must have shape {(*lead, k + 1, V)}, "
                         f"got {target_probs.shape}")
    return draft_tokens.astype(jnp.int32), draft_probs, target_probs


@jax.jit
def speculative_verify(key: jax.Array, draft_tokens: jax.Array, draft_probs: jax.Array,
                       target_probs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Speculative sampling's verification of ``k`` drafted tokens (one sequence).

    See :func:`speculative_verify_from_noise` for the rule; this draws its noise from
    ``key``.

    Args:
      key: a JAX key.
      draft_tokens: (k,) int, the draft's samples.
      draft_probs: (k, V) the draft's distributions they were drawn from.
      target_probs: (k + 1, V) the target's distributions at the same positions and one more.

    Returns:
      ``(tokens (k + 1,), num_accepted ())``; ``num_accepted + 1`` tokens are emitted.
    """
    draft_tokens, draft_probs, target_probs = _check_verify_shapes(draft_tokens, draft_probs,
                                                                   target_probs)
    k, V = draft_probs.shape
    u_key, g_key = jax.random.split(key)
    dtype = jnp.promote_types(target_probs.dtype, jnp.float32)
    return speculative_verify_from_noise(jax.random.uniform(u_key, (k,), dtype),
                                         jax.random.gumbel(g_key, (k + 1, V), dtype),
                                         draft_tokens, draft_probs, target_probs)


@jax.jit
def speculative_verify_batch(key: jax.Array, draft_tokens: jax.Array, draft_probs: jax.Array,
                             target_probs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """:func:`speculative_verify` over a batch: (B, k), (B, k, V), (B, k + 1, V) ->
    ``(tokens (B, k + 1), num_accepted (B,))``, an independent key per row."""
    draft_tokens, draft_probs, target_probs = _check_verify_shapes(draft_tokens, draft_probs,
                                                                   target_probs)
    if draft_tokens.ndim != 1 + 1:
        raise ValueError(f"draft_tokens must have shape (B, k), got {draft_tokens.shape}")
    keys = jax.random.split(key, draft_tokens.shape[0])
    return jax.vmap(speculative_verify)(keys, draft_tokens, draft_probs, target_probs)


def _probs(logits: jax.Array, options: dict) -> jax.Array:
    """The sampling distribution ``softmax(filter(l))`` (one-hot argmax when T = 0)."""
    return jax.nn.softmax(filter_logits(logits.astype(jnp.float32), **options), axis=-1)


@functools.partial(jax.jit, static_argnames=("max_new_tokens", "num_draft", "temperature",
                                             "top_k", "top_p", "min_p"))
def _speculative_jit(key, target_model, draft_model, prompt, *, max_new_tokens, num_draft,
                     temperature, top_k, top_p, min_p):
    options = dict(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p)
    B, P = prompt.shape
    N, k = max_new_tokens, num_draft
    V = _vocab_size_of(target_model)
    T = P + N + k + 1  # cache / buffer length: a round may run k + 1 tokens past N
    t_cache = target_model.init_cache(B, T)
    d_cache = draft_model.init_cache(B, T)
    if P > 1:  # prefill all but the last prompt token, which each round feeds first
        _, t_cache = target_model.decode(prompt[:, :-1], t_cache, jnp.asarray(0, jnp.int32))
        _, d_cache = draft_model.decode(prompt[:, :-1], d_cache, jnp.asarray(0, jnp.int32))
    buf = jnp.concatenate([prompt, jnp.zeros((B, T - P), jnp.int32)], axis=1)  # (B, T)

    # loop state: round index, committed length n (caches hold positions < n - 1, the
    # token at n - 1 is fed next), token buffer, both caches, accepted-draft count (B,)
    def cond(carry):
        return carry[1] < P + N

    def body(carry):
        r, n, buf, t_cache, d_cache, accepted = carry
        rkey = jax.random.fold_in(key, r)
        d_key, u_key, g_key = jax.random.split(rkey, 3)
        last = jax.lax.dynamic_index_in_dim(buf, n - 1, axis=1, keepdims=False)  # (B,)

        def draft_step(c, i):  # feed a token to the draft, sample the next from q
            tok, cache = c
            logits, cache = draft_model.decode(tok[:, None], cache, n - 1 + i)
            q = _probs(logits[:, 0], options)  # (B, V)
            g = jax.random.gumbel(jax.random.fold_in(d_key, i), (B, V), jnp.float32)
            x = sample_token_from_noise(g, logits[:, 0].astype(jnp.float32), **options)
            return (x, cache), (x, q)

        (_, d_cache), (xs, qs) = jax.lax.scan(draft_step, (last, d_cache), jnp.arange(k))
        xs, qs = xs.T, jnp.swapaxes(qs, 0, 1)  # (B, k), (B, k, V)
        # one target pass over [last, x_1 .. x_k] gives p_1 .. p_{k+1}
        feed = jnp.concatenate([last[:, None], xs], axis=1)  # (B, k + 1)
        t_logits, t_cache = target_model.decode(feed, t_cache, n - 1)
        ps = _probs(t_logits, options)  # (B, k + 1, V)
        us = jax.random.uniform(u_key, (B, k), jnp.float32)
        gs = jax.random.gumbel(g_key, (B, k + 1, V), jnp.float32)
        out, num = jax.vmap(speculative_verify_from_noise)(us, gs, xs, qs, ps)
        # lockstep: every row commits m = min_b (n_b + 1) tokens, a prefix of its own
        # output; caches are rolled back simply by moving n (stale entries beyond the
        # new position are masked by the model's causal mask and later overwritten)
        m = jnp.min(num) + 1
        commit = jnp.arange(k + 1)[None, :] < m  # (B, k + 1)
        old = jax.lax.dynamic_slice_in_dim(buf, n, k + 1, axis=1)
        buf = jax.lax.dynamic_update_slice_in_dim(buf, jnp.where(commit, out, old), n,
                                                  axis=1)
        return r + 1, n + m, buf, t_cache, d_cache, accepted + num

    carry = (jnp.asarray(0, jnp.int32), jnp.asarray(P, jnp.int32), buf, t_cache, d_cache,
             jnp.zeros((B,), jnp.int32))
    rounds, _, buf, _, _, accepted = jax.lax.while_loop(cond, body, carry)
    return buf[:, P:P + N], rounds, accepted


def speculative_generate(key: jax.Array, target_model: Model, draft_model: Model,
                         prompt: jax.Array, *, max_new_tokens: int, num_draft: int,
                         temperature: float = 1.0, top_k: int | None = None,
                         top_p: float | None = None, min_p: float | None = None
                         ) -> tuple[jax.Array, dict]:
    """Speculative sampling from ``target_model`` with a cheaper ``draft_model``.

    Each round (one ``lax.while_loop`` iteration): the draft proposes ``k = num_draft``
    tokens autoregressively from ``q`` (k cached draft calls); one cached target call
    scores all of them, giving ``p_1 .. p_{k+1}``; :func:`speculative_verify_from_noise`
    accepts a prefix and adds a residual or bonus token. ``p`` and ``q`` are the filtered
    sampling distributions (:func:`filter_logits`, same options for both), so the output
    is distributed exactly as :func:`generate` with those options on the target.

    Batches run in lockstep: every sequence commits ``m = min_b (n_b + 1)`` tokens per
    round, a prefix of its own verified output. The truncation keeps the law exact: given
    the first ``j - 1`` drafts accepted, the ``j``-th emitted token is distributed as the
    target's (whether accepted or resampled), and the cut depends on the other rows'
    independent noise and on this row's acceptances only. The models share one scalar
    cache position, which is why rows cannot advance separately; batch 1 loses nothing.

    Args:
      key: a JAX key (round r uses ``fold_in(key, r)``).
      target_model, draft_model: models with the cached interface and the same vocabulary.
      prompt: (B, P) int token ids.
      max_new_tokens: N >= 1; needs ``P + N + k + 1 <= max_len`` of both models.
      num_draft: k >= 1 drafted tokens per round.
      temperature, top_k, top_p, min_p: the sampling distribution (T = 0: greedy, whose
        output then equals the target's greedy decoding).

    Returns:
      ``(tokens (B, N) int32, stats)`` with ``stats = {"rounds": (), "accepted": (B,),
      "acceptance_rate": (), "tokens_per_round": ()}``: ``acceptance_rate`` is the
      fraction of drafted tokens accepted, ``mean(accepted) / (k * rounds)`` (per row,
      before the lockstep cut; drafts after a rejection count as not accepted, so with a
      per-token acceptance probability ``a`` it is ``(a + a^2 + .. + a^k) / k``), and
      ``tokens_per_round`` = ``N / rounds``, the tokens each target call yielded.
    """
    prompt = _check_prompt(prompt)
    max_new_tokens = _check_positive("max_new_tokens", max_new_tokens)
    num_draft = _check_positive("num_draft", num_draft)
    V = _vocab_size_of(target_model)
    if _vocab_size_of(draft_model) != V:
        raise ValueError(f"draft_model has vocab_size {_vocab_size_of(draft_model)}, "
                         f"target_model {V}")
    for model in (target_model, draft_model):
        _check_context(model, prompt.shape[1], max_new_tokens, extra=num_draft + 1)
    options = dict(temperature=_check_temperature(temperature), top_k=_check_top_k(top_k),
                   top_p=_check_top_p(top_p), min_p=_check_min_p(min_p))
    tokens, rounds, accepted = _speculative_jit(
        key, target_model, draft_model, prompt, max_new_tokens=max_new_tokens,
        num_draft=num_draft, **options)
    rate = jnp.mean(accepted) / (num_draft * jnp.maximum(rounds, 1))
    return tokens, {"rounds": rounds, "accepted": accepted, "acceptance_rate": rate,
                    "tokens_per_round": max_new_tokens / jnp.maximum(rounds, 1)}
