"""Speculative sampling: a cheap draft proposes, the target verifies, the law is the target's.

Each round the draft model proposes ``k`` tokens autoregressively, ``x_i ~ q_i``; one
cached call of the target scores all of them, giving ``p_1 .. p_{k+1}``; then
(Leviathan, Kalman & Matias 2023, Algorithm 1; Chen et al. 2023, Algorithm 2)

    accept x_i  iff  u_i < min(1, p_i(x_i) / q_i(x_i))        (u_i ~ U(0, 1))

up to the first rejection ``n``, and one more token is drawn from the residual
``norm(max(0, p_{n+1} - q_{n+1}))`` (``n < k``) or from ``p_{k+1}`` (the bonus token,
``n = k``). Every emitted token is then distributed exactly as the target's
(:func:`speculative_verify_from_noise` is the rule on given noise;
:func:`speculative_generate` is the whole loop, one ``lax.while_loop`` over rounds).

References:
  Leviathan, Kalman & Matias (2023), "Fast inference from transformers via speculative
    decoding", ICML, Algorithm 1.
  Chen et al. (2023), "Accelerating large language model decoding with speculative
    sampling", Algorithm 2.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.autoregressive.decoding.filters import (
    _removed,
    filter_logits,
    sample_token_from_noise,
    sampling_options,
)
from genjax.autoregressive.decoding.interface import (
    _check_context,
    _check_prompt,
    _vocab_size_of,
)
from genjax.model import Model, model_jit

__all__ = [
    "speculative_verify",
    "speculative_verify_from_noise",
    "speculative_verify_batch",
    "speculative_generate",
]


def speculative_verify_from_noise(
    draft_tokens: jax.Array,
    draft_probs: jax.Array,
    target_probs: jax.Array,
    uniforms: jax.Array,
    gumbels: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """The accept/reject rule of speculative sampling on given noise (one sequence).

    The noise twin of :func:`speculative_verify`: its arguments without the key, then the
    noise, which :func:`speculative_verify` draws as ``u_key, g_key = split(key)``,
    ``uniforms = uniform(u_key, (k,))``, ``gumbels = gumbel(g_key, (k + 1, V))``.

    For i = 1 .. k (Leviathan et al. 2023, Algorithm 1; Chen et al. 2023, Algorithm 2):

        accept x_i  iff  u_i < min(1, p_i(x_i) / q_i(x_i))     (tested as u_i q_i(x_i) < p_i(x_i))

    stop at the first rejection n (n = k when all are accepted) and emit
    ``x_1 .. x_n`` followed by one token from

        norm(max(0, p_{n+1} - q_{n+1}))   if n < k   (the residual distribution)
        p_{k+1}                           if n = k   (the bonus token)

    (a residual that rounds to zero everywhere, possible only when p = q up to rounding,
    falls back to p). Then every emitted token is distributed as the target's.

    Args:
      draft_tokens: (k,) int, x_i ~ q_i.
      draft_probs: (k, V), q_i.
      target_probs: (k + 1, V), p_i (row k for the bonus token).
      uniforms: (k,) in [0, 1).
      gumbels: (k + 1, V) standard Gumbels; row n samples the residual / bonus token.

    Returns:
      ``(tokens (k + 1,) int32, num_accepted () int32)``: tokens[:n] = x_1..x_n,
      tokens[n] = the residual/bonus token, -1 after.
    """
    draft_tokens, draft_probs, target_probs = _check_verify_shapes(
        draft_tokens, draft_probs, target_probs
    )
    checks.ndim("draft_tokens", draft_tokens, 1, "(k,)")
    k, V = draft_probs.shape
    checks.shape("uniforms", uniforms, (k,))
    checks.shape("gumbels", gumbels, (k + 1, V))
    return _verify_from_noise(draft_tokens, draft_probs, target_probs, uniforms, gumbels)


@jax.jit
def _verify_from_noise(draft_tokens, draft_probs, target_probs, uniforms, gumbels):
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
    log_r = jnp.where(
        residual > 0, jnp.log(jnp.where(residual > 0, residual, 1.0)), _removed(residual.dtype)
    )  # log of the unnormalised residual
    extra = jnp.argmax(log_r + gumbels[n].astype(log_r.dtype)).astype(jnp.int32)
    pos = jnp.arange(k + 1)
    drafts = jnp.concatenate([draft_tokens.astype(jnp.int32), jnp.zeros((1,), jnp.int32)])
    tokens = jnp.where(pos < n, drafts, jnp.where(pos == n, extra, -1))
    return tokens, n.astype(jnp.int32)


def _check_verify_shapes(draft_tokens, draft_probs, target_probs):
    """(..., k) int, (..., k, V), (..., k + 1, V) with k, V >= 1, or a ValueError."""
    checks.integer_array("draft_tokens", draft_tokens)
    if jnp.ndim(draft_tokens) < 1 or jnp.shape(draft_tokens)[-1] < 1:
        raise ValueError(
            f"draft_tokens must have shape (..., k) with k >= 1, got {jnp.shape(draft_tokens)}"
        )
    *lead, k = jnp.shape(draft_tokens)
    V = jnp.shape(draft_probs)[-1] if jnp.ndim(draft_probs) else None
    checks.shape("draft_probs", draft_probs, (*lead, k, V))
    checks.shape("target_probs", target_probs, (*lead, k + 1, V))
    # values, when concrete: an id outside [0, V) would index another token's probability
    # (or wrap around), and a negative or NaN probability breaks the accept rule silently
    checks.token_ids("draft_tokens", draft_tokens, V)
    checks.nonnegative("draft_probs", draft_probs)
    checks.nonnegative("target_probs", target_probs)
    return (
        jnp.asarray(draft_tokens, jnp.int32),
        jnp.asarray(draft_probs),
        jnp.asarray(target_probs),
    )


def speculative_verify(
    key: jax.Array, draft_tokens: jax.Array, draft_probs: jax.Array, target_probs: jax.Array
) -> tuple[jax.Array, jax.Array]:
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
    _check_verify_shapes(draft_tokens, draft_probs, target_probs)  # values while concrete
    checks.ndim("draft_tokens", draft_tokens, 1, "(k,)")
    return _speculative_verify_jit(key, draft_tokens, draft_probs, target_probs)


@jax.jit
def _speculative_verify_jit(key, draft_tokens, draft_probs, target_probs):
    draft_tokens, draft_probs, target_probs = _check_verify_shapes(
        draft_tokens, draft_probs, target_probs
    )
    k, V = draft_probs.shape
    u_key, g_key = jax.random.split(key)
    dtype = jnp.promote_types(target_probs.dtype, jnp.float32)
    return speculative_verify_from_noise(
        draft_tokens,
        draft_probs,
        target_probs,
        jax.random.uniform(u_key, (k,), dtype),
        jax.random.gumbel(g_key, (k + 1, V), dtype),
    )


def speculative_verify_batch(
    key: jax.Array, draft_tokens: jax.Array, draft_probs: jax.Array, target_probs: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """:func:`speculative_verify` over a batch: (B, k), (B, k, V), (B, k + 1, V) ->
    ``(tokens (B, k + 1), num_accepted (B,))``, an independent key per row."""
    _check_verify_shapes(draft_tokens, draft_probs, target_probs)  # values while concrete
    checks.ndim("draft_tokens", draft_tokens, 2, "(B, k)")
    return _speculative_verify_batch_jit(key, draft_tokens, draft_probs, target_probs)


@jax.jit
def _speculative_verify_batch_jit(key, draft_tokens, draft_probs, target_probs):
    draft_tokens, draft_probs, target_probs = _check_verify_shapes(
        draft_tokens, draft_probs, target_probs
    )
    keys = jax.random.split(key, draft_tokens.shape[0])
    return jax.vmap(_speculative_verify_jit)(keys, draft_tokens, draft_probs, target_probs)


def _probs(logits: jax.Array, options: dict) -> jax.Array:
    """The sampling distribution ``softmax(filter(l))`` (one-hot argmax when T = 0)."""
    return jax.nn.softmax(filter_logits(logits.astype(jnp.float32), **options), axis=-1)


@functools.partial(
    model_jit,
    model_argnames=("target_model", "draft_model"),
    static_argnames=("max_new_tokens", "num_draft", "temperature", "top_k", "top_p", "min_p"),
)
def _speculative_jit(
    key,
    target_model,
    draft_model,
    prompt,
    *,
    max_new_tokens,
    num_draft,
    temperature,
    top_k,
    top_p,
    min_p,
):
    options = dict(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p)
    B, P = prompt.shape
    N, k = max_new_tokens, num_draft
    V = _vocab_size_of(target_model)
    T = P + N + k + 1  # cache / buffer length: a round may run k + 1 tokens past N
    t_cache = target_model.init_cache(B, T)
    d_cache = draft_model.init_cache(B, T)
    if P > 1:  # the target: prefill all but the last prompt token, which each round feeds
        _, t_cache = target_model.decode(prompt[:, :-1], t_cache, jnp.asarray(0, jnp.int32))
    if P > 2:  # the draft: all but the last two, which each round feeds (see below)
        _, d_cache = draft_model.decode(prompt[:, :-2], d_cache, jnp.asarray(0, jnp.int32))
    buf = jnp.concatenate([prompt, jnp.zeros((B, T - P), jnp.int32)], axis=1)  # (B, T)

    def draft_sample(logits, i, d_key):  # x_i ~ q_i from (B, V) logits: the token and q_i
        g = jax.random.gumbel(jax.random.fold_in(d_key, i), (B, V), jnp.float32)
        x = sample_token_from_noise(logits.astype(jnp.float32), g, **options)
        return x, _probs(logits, options)

    # loop state: round index, committed length n (the target's cache holds positions
    # < n - 1, the draft's < n - 2), token buffer, both caches, accepted-draft count (B,)
    def cond(carry):
        return carry[1] < P + N

    def body(carry):
        r, n, buf, t_cache, d_cache, accepted = carry
        rkey = jax.random.fold_in(key, r)
        d_key, u_key, g_key = jax.random.split(rkey, 3)
        last = jax.lax.dynamic_index_in_dim(buf, n - 1, axis=1, keepdims=False)  # (B,)
        # the draft's first call feeds the last two committed tokens: when the previous
        # round accepted all k drafts, x_k (now at n - 2) was never fed to the draft, and a
        # second token costs a batch-1 call next to nothing. Round 0 with P = 1 clamps the
        # start to 0 and reads row 0 (the stale row 1 it writes is rewritten before use).
        start = jnp.maximum(n - 2, 0)
        pair = jax.lax.dynamic_slice_in_dim(buf, start, 2, axis=1)  # (B, 2)
        logits, d_cache = draft_model.decode(pair, d_cache, start)
        x1, q1 = draft_sample(
            jax.lax.dynamic_index_in_dim(logits, n - 1 - start, axis=1, keepdims=False), 0, d_key
        )

        def draft_step(c, i):  # feed x_i to the draft (at n - 1 + i), sample x_{i+1} ~ q
            tok, cache = c
            logits, cache = draft_model.decode(tok[:, None], cache, n - 1 + i)
            x, q = draft_sample(logits[:, 0], i, d_key)
            return (x, cache), (x, q)

        # the k - 1 further proposals in one scan (none when k = 1)
        (_, d_cache), (xs, qs) = jax.lax.scan(draft_step, (x1, d_cache), jnp.arange(1, k))
        xs = jnp.concatenate([x1[:, None], xs.T], axis=1)  # (B, k)
        qs = jnp.concatenate([q1[:, None], jnp.swapaxes(qs, 0, 1)], axis=1)  # (B, k, V)
        # one target pass over [last, x_1 .. x_k] gives p_1 .. p_{k+1}
        feed = jnp.concatenate([last[:, None], xs], axis=1)  # (B, k + 1)
        t_logits, t_cache = target_model.decode(feed, t_cache, n - 1)
        ps = _probs(t_logits, options)  # (B, k + 1, V)
        us = jax.random.uniform(u_key, (B, k), jnp.float32)
        gs = jax.random.gumbel(g_key, (B, k + 1, V), jnp.float32)
        out, num = jax.vmap(speculative_verify_from_noise)(xs, qs, ps, us, gs)
        # lockstep: every row commits m = min_b (n_b + 1) tokens, a prefix of its own
        # output; caches are rolled back simply by moving n (stale entries beyond the
        # new position are masked by the model's causal mask and later overwritten)
        m = jnp.min(num) + 1
        commit = jnp.arange(k + 1)[None, :] < m  # (B, k + 1)
        old = jax.lax.dynamic_slice_in_dim(buf, n, k + 1, axis=1)
        buf = jax.lax.dynamic_update_slice_in_dim(buf, jnp.where(commit, out, old), n, axis=1)
        return r + 1, n + m, buf, t_cache, d_cache, accepted + num

    carry = (
        jnp.asarray(0, jnp.int32),
        jnp.asarray(P, jnp.int32),
        buf,
        t_cache,
        d_cache,
        jnp.zeros((B,), jnp.int32),
    )
    rounds, _, buf, _, _, accepted = jax.lax.while_loop(cond, body, carry)
    per_round = jnp.maximum(rounds, 1)
    stats = {
        "rounds": rounds,
        "accepted": accepted,
        "acceptance_rate": jnp.mean(accepted) / (k * per_round),
        "tokens_per_round": N / per_round,
    }
    return buf[:, P : P + N], stats


def speculative_generate(
    key: jax.Array,
    target_model: Model,
    draft_model: Model,
    prompt: jax.Array,
    *,
    max_new_tokens: int,
    num_draft: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
) -> tuple[jax.Array, dict]:
    """Speculative sampling from ``target_model`` with a cheaper ``draft_model``.

    Each round (one ``lax.while_loop`` iteration): the draft proposes ``k = num_draft``
    tokens autoregressively from ``q`` (k cached draft calls, the last k - 1 one
    ``lax.scan``; the first feeds the last two committed tokens, so that a draft ``x_k``
    accepted last round enters the draft's cache); one cached target call over the
    ``k + 1`` positions ``[x_n, x_1 .. x_k]`` scores all of them, giving ``p_1 ..
    p_{k+1}``; :func:`speculative_verify_from_noise` accepts a prefix and adds a residual
    or bonus token. Rejected positions are rolled back by moving the committed length
    alone: the caches are written in place, and rows past it are masked by the causal
    mask until the next round overwrites them (no cache is copied). ``p`` and ``q`` are the filtered
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
      target_model, draft_model: callable pytrees with the decoding interface
        (:mod:`~genjax.autoregressive.decoding.interface`) and the same vocabulary, e.g.
        two :class:`~genjax.autoregressive.Transformer` of different sizes; both traced
        (new weights reuse the compiled loop).
      prompt: (B, P) int token ids in [0, V).
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

    Example:
      >>> model = Transformer(8, 16, 8, 2, 1, rngs=nnx.Rngs(0))
      >>> tokens, stats = speculative_generate(jax.random.key(0), model, model,
      ...                                      jnp.zeros((2, 3), jnp.int32), max_new_tokens=4,
      ...                                      num_draft=2)
      >>> tokens.shape, float(stats["acceptance_rate"])  # a draft equal to the target: all kept
      ((2, 4), 1.0)
    """
    V = _vocab_size_of(target_model)
    if _vocab_size_of(draft_model) != V:
        raise ValueError(
            f"draft_model has vocab_size {_vocab_size_of(draft_model)}, target_model {V}"
        )
    prompt = _check_prompt(prompt, V)
    max_new_tokens = checks.positive_int("max_new_tokens", max_new_tokens)
    num_draft = checks.positive_int("num_draft", num_draft)
    for model in (target_model, draft_model):
        _check_context(model, prompt.shape[1], max_new_tokens, extra=num_draft + 1)
    options = sampling_options(temperature, top_k, top_p, min_p)
    return _speculative_jit(
        key,
        target_model,
        draft_model,
        prompt,
        max_new_tokens=max_new_tokens,
        num_draft=num_draft,
        **options,
    )
