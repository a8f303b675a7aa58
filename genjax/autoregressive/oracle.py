"""NumPy-only float64 twin of the decoding strategies (no jax, no genjax).

Written from the definitions, not from the JAX code, and deliberately by a different
route where one exists: the filters sort token ids explicitly by (-probability, id) and
take a prefix (the JAX code sorts values only and resolves ties by counting); the
nucleus is built by adding tokens until the mass reaches p; the beam step enumerates
candidates; speculative sampling is also given as its exact output law by enumeration.

Contents:

* filters: :func:`apply_temperature`, :func:`top_k_keep`, :func:`top_p_keep`,
  :func:`min_p_keep`, :func:`filter_logits`, :func:`sampling_probs`, and the Gumbel-max
  step :func:`sample_from_gumbel`;
* :func:`generate` -- the decoding loop over a NumPy next-token function (full recompute);
* :func:`beam_step`, :func:`best_sequence` (brute force over all sequences);
* :func:`accept_probability`, :func:`residual`, :func:`speculative_verify`,
  :func:`speculative_law` (the exact law of the emitted tokens);
* :func:`completable`, :func:`dfa_mask` -- the constrained-decoding mask.

References: see :mod:`genjax.autoregressive.decoding`.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

NEG = np.finfo(np.float64).min  # removed logit


# ---------------------------------------------------------------------------------------
# Filters (one row: logits (V,))
# ---------------------------------------------------------------------------------------


def softmax(logits: np.ndarray) -> np.ndarray:
    """``softmax(logits)`` in float64, shifted by the maximum (no overflow)."""
    z = np.asarray(logits, np.float64)
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


def _order(values: np.ndarray) -> list[int]:
    """Token ids by decreasing value, ties by increasing id."""
    return sorted(range(len(values)), key=lambda v: (-values[v], v))


def apply_temperature(logits: np.ndarray, t: float) -> np.ndarray:
    """(l - max l) / T, clamped at the removed value; T = 0 keeps only the first argmax."""
    l = np.asarray(logits, np.float64)
    if t == 0:
        out = np.full_like(l, NEG)
        out[_order(l)[0]] = 0.0
        return out
    kept = l > NEG
    return np.where(kept, (np.where(kept, l, 0.0) - l.max()) / t, NEG)


def top_k_keep(logits: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of the k largest logits, ties by lower id."""
    keep = np.zeros(len(logits), bool)
    keep[_order(np.asarray(logits, np.float64))[:k]] = True
    return keep


def top_p_keep(logits: np.ndarray, p: float) -> np.ndarray:
    """Add tokens by decreasing probability (ties: lower id) until the mass reaches p."""
    probs = softmax(logits)
    keep = np.zeros(len(probs), bool)
    mass = 0.0
    for v in _order(probs):
        keep[v] = True
        mass += probs[v]
        if mass >= p:
            break
    return keep


def min_p_keep(logits: np.ndarray, min_p: float) -> np.ndarray:
    """The tokens min-p keeps: ``p_v >= min_p * max_u p_u`` (Nguyen et al. 2024)."""
    probs = softmax(logits)
    return probs >= min_p * probs.max()


def filter_logits(logits, *, temperature=1.0, top_k=None, top_p=None, min_p=None):
    """temperature -> top-k -> top-p -> min-p; removed logits = float64 min."""
    out = apply_temperature(logits, temperature)
    if temperature == 0:
        return out
    for keep_fn, arg in ((top_k_keep, top_k), (top_p_keep, top_p), (min_p_keep, min_p)):
        if arg is not None:
            out = np.where(keep_fn(out, arg), out, NEG)
    return out


def sampling_probs(logits, **options) -> np.ndarray:
    """The law sample_token draws from: softmax of the filtered logits."""
    f = filter_logits(logits, **options)
    return softmax(f) * (f > NEG)


def sample_from_gumbel(gumbel: np.ndarray, logits: np.ndarray, **options) -> int:
    """Gumbel-max: argmax(filtered + g); greedy (argmax of logits) at temperature 0."""
    if options.get("temperature", 1.0) == 0:
        return int(_order(np.asarray(logits, np.float64))[0])
    f = filter_logits(logits, **options)
    score = np.where(f > NEG, f + gumbel, -np.inf)
    return int(np.argmax(score))


# ---------------------------------------------------------------------------------------
# Constrained decoding
# ---------------------------------------------------------------------------------------


def completable(transitions: np.ndarray, accepting: np.ndarray, max_steps: int,
                eos: bool) -> np.ndarray:
    """reach[r, s]: a string of L can be finished from s in r tokens (EOS counts as one)."""
    S, V = transitions.shape
    reach = np.zeros((max_steps + 1, S), bool)
    reach[0] = accepting
    for r in range(1, max_steps + 1):
        for s in range(S):
            ok = eos and bool(accepting[s])
            for v in range(V):
                nxt = transitions[s, v]
                if nxt >= 0 and reach[r - 1, nxt]:
                    ok = True
            reach[r, s] = ok
    return reach


def dfa_mask(transitions, accepting, state: int, reach_next: np.ndarray, eos_id) -> np.ndarray:
    """Allowed tokens in ``state`` with reach_next = reach[r - 1] (r slots left)."""
    V = transitions.shape[1]
    mask = np.array([transitions[state, v] >= 0 and reach_next[transitions[state, v]]
                     for v in range(V)])
    if eos_id is not None:
        mask[eos_id] = bool(accepting[state])
    return mask


# ---------------------------------------------------------------------------------------
# The decoding loop
# ---------------------------------------------------------------------------------------


def generate(gumbels, next_logits_fn, prompt, max_new_tokens, *, eos_id=None, pad_id=None,
             automaton=None, **options):
    """Sequential decoding of each row.

    Args:
      gumbels: (N, B, V) noise; next_logits_fn(seq (L,)) -> (V,) logits of the next token;
      prompt: (B, P) ints; automaton: optional (transitions, accepting) NumPy pair.

    Returns:
      (B, N) tokens.
    """
    prompt = np.asarray(prompt)
    B = prompt.shape[0]
    N = max_new_tokens
    pad = (eos_id if eos_id is not None else 0) if pad_id is None else pad_id
    reach = None
    if automaton is not None:
        reach = completable(*automaton, N, eos_id is not None)
    out = np.full((B, N), pad, np.int64)
    for b in range(B):
        seq = list(prompt[b])
        state = 0
        for t in range(N):
            logits = np.asarray(next_logits_fn(np.asarray(seq)), np.float64)
            if automaton is not None:
                allowed = dfa_mask(*automaton, state, reach[N - 1 - t], eos_id)
                logits = np.where(allowed, logits, NEG)
            x = sample_from_gumbel(np.asarray(gumbels[t, b], np.float64), logits, **options)
            out[b, t] = x
            seq.append(x)
            if eos_id is not None and x == eos_id:
                break
            if automaton is not None:
                state = int(automaton[0][state, x])
    return out


# ---------------------------------------------------------------------------------------
# Beam search
# ---------------------------------------------------------------------------------------


def beam_step(alive: np.ndarray, log_probs: np.ndarray, num_beams: int, eos_id=None):
    """One step for one prompt.

    Args:
      alive: (K,) scores of the alive beams (-inf = empty); log_probs: (K, V).

    Returns:
      (new scores (K,), parents (K,), tokens (K,), eos scores (K,) unnormalised or None):
      the K best non-EOS extensions by enumeration of all K * V candidates.
    """
    K, V = log_probs.shape
    cands = []
    for k in range(K):
        for v in range(V):
            if v == eos_id:
                continue
            cands.append((alive[k] + log_probs[k, v], k, v))
    cands.sort(key=lambda c: -c[0])
    best = cands[:num_beams]
    eos = None if eos_id is None else alive + log_probs[:, eos_id]
    return (np.array([c[0] for c in best]), np.array([c[1] for c in best]),
            np.array([c[2] for c in best]), eos)


def best_sequence(log_prob_fn, prompt, max_new_tokens, vocab_size, *, eos_id=None,
                  length_penalty=1.0):
    """Brute force: the highest ``sum log p / len**alpha`` over all continuations.

    A continuation ends at its first EOS (length counted with the EOS) or after N tokens.
    ``log_prob_fn(seq (L,)) -> (V,)`` next-token log-probabilities.

    Returns:
      (tokens tuple, score).
    """
    best, best_score = None, -np.inf
    for length in range(1, max_new_tokens + 1):
        for seq in itertools.product(range(vocab_size), repeat=length):
            if eos_id is not None:
                if eos_id in seq[:-1]:
                    continue
                if length < max_new_tokens and seq[-1] != eos_id:
                    continue
            elif length < max_new_tokens:
                continue
            total = 0.0
            ctx = list(prompt)
            for x in seq:
                total += float(log_prob_fn(np.asarray(ctx))[x])
                ctx.append(x)
            score = total / length ** length_penalty
            if score > best_score:
                best, best_score = seq, score
    return best, best_score


# ---------------------------------------------------------------------------------------
# Speculative sampling (Leviathan et al. 2023, Algorithm 1; Chen et al. 2023)
# ---------------------------------------------------------------------------------------


def accept_probability(p: np.ndarray, q: np.ndarray, x: int) -> float:
    """min(1, p(x) / q(x)); a token the draft cannot propose (q = 0) is always accepted."""
    if q[x] == 0:
        return 1.0 if p[x] > 0 else 0.0
    return min(1.0, p[x] / q[x])


def residual(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """norm(max(0, p - q)); p itself where p = q (the rejection then has probability 0)."""
    r = np.maximum(np.asarray(p, np.float64) - q, 0.0)
    s = r.sum()
    return r / s if s > 0 else np.asarray(p, np.float64)


def speculative_verify(uniforms, gumbels, draft_tokens, draft_probs, target_probs):
    """The rule on given noise: (emitted tokens list, number accepted)."""
    k = len(draft_tokens)
    out = []
    for i in range(k):
        x = int(draft_tokens[i])
        if uniforms[i] < accept_probability(target_probs[i], draft_probs[i], x):
            out.append(x)
            continue
        r = residual(target_probs[i], draft_probs[i])
        out.append(int(np.argmax(np.where(r > 0, np.log(np.where(r > 0, r, 1.0)) + gumbels[i],
                                          -np.inf))))
        return out, i
    p = np.asarray(target_probs[k], np.float64)
    out.append(int(np.argmax(np.where(p > 0, np.log(np.where(p > 0, p, 1.0)) + gumbels[k],
                                      -np.inf))))
    return out, k


def speculative_law(draft_fn, target_fn, prefix, k: int, vocab_size: int) -> dict:
    """Exact law of the tokens one verification round emits, by enumeration.

    ``draft_fn(seq) -> q (V,)``, ``target_fn(seq) -> p (V,)`` next-token laws given the
    tokens so far. Sums over every draft ``x_1..x_k`` (probability prod q) and every
    accept/reject outcome.

    Returns:
      {emitted tuple: probability}.
    """
    V = vocab_size
    law: dict[tuple, float] = {}

    def add(seq, prob):
        law[seq] = law.get(seq, 0.0) + prob

    def rec(ctx, emitted, prob, i):
        if i == k:  # all drafts accepted: bonus token from the target
            p = target_fn(np.asarray(ctx))
            for v in range(V):
                if p[v] > 0:
                    add(tuple(emitted) + (v,), prob * p[v])
            return
        q = draft_fn(np.asarray(ctx))
        p = target_fn(np.asarray(ctx))
        r = residual(p, q)
        for x in range(V):
            if q[x] == 0:
                continue
            a = accept_probability(p, q, x)
            if a > 0:
                rec(ctx + [x], emitted + [x], prob * q[x] * a, i + 1)
            if a < 1:
                for v in range(V):
                    if r[v] > 0:
                        add(tuple(emitted) + (v,), prob * q[x] * (1 - a) * r[v])

    rec(list(prefix), [], 1.0, 0)
    return law


def complete_law(law: dict, target_fn, prefix, length: int, vocab_size: int) -> np.ndarray:
    """Extend each emitted sequence with target samples to ``length`` tokens: the law of the
    first ``length`` output tokens, as a (V,)*length array."""
    out = np.zeros((vocab_size,) * length)
    for seq, prob in law.items():
        def rec(s, pr):
            if len(s) >= length:
                out[tuple(s[:length])] += pr
                return
            p = target_fn(np.asarray(list(prefix) + list(s)))
            for v in range(vocab_size):
                if p[v] > 0:
                    rec(s + (v,), pr * p[v])
        rec(tuple(seq), prob)
    return out


def sequence_law(next_probs_fn, prefix, length: int, vocab_size: int) -> np.ndarray:
    """The law of the next ``length`` tokens under ``next_probs_fn``, (V,)*length."""
    out = np.zeros((vocab_size,) * length)
    for seq in itertools.product(range(vocab_size), repeat=length):
        prob, ctx = 1.0, list(prefix)
        for x in seq:
            prob *= next_probs_fn(np.asarray(ctx))[x]
            ctx.append(x)
        out[seq] = prob
    return out


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """``log softmax(logits)`` in float64, by the shifted log-sum-exp."""
    z = np.asarray(logits, np.float64)
    m = z.max()
    return z - m - math.log(np.exp(z - m).sum())
