"""Beam search: exact best sequence by brute-force enumeration (enough beams), the NumPy
beam step on a narrow beam, K = 1 is greedy, validation.

Scores are sums of <= 4 float32 log-probabilities compared with float64 sums: the
float32 single-op tolerance applies.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.autoregressive import decoding as dec
from genjax.autoregressive import oracle
from genjax.testing import assert_close_to_oracle

V = 4
TABLE = np.asarray(jax.nn.log_softmax(
    2.0 * jax.random.normal(jax.random.key(11), (V, V, V)), axis=-1), np.float64)
TABLE_J = jnp.asarray(TABLE, jnp.float32)


def log_prob_fn(tokens):
    """A causal trigram model: row i scores token i + 1 from tokens i - 1 and i."""
    prev = jnp.concatenate([jnp.zeros_like(tokens[:, :1]), tokens[:, :-1]], axis=1)
    return TABLE_J[prev, tokens]  # (n, L, V)


def np_log_probs(seq):
    return TABLE[seq[-2] if len(seq) > 1 else 0, seq[-1]]


PROMPTS = np.array([[1, 2], [3, 0]])


@pytest.mark.parametrize("eos_id, num_beams, alpha", [(2, 27, 1.0), (None, 27, 0.0)])
def test_enough_beams_equal_brute_force(eos_id, num_beams, alpha):
    N = 4  # 27 = 3**3 beams keep every non-EOS prefix alive: nothing is pruned
    seqs, scores = dec.beam_search(log_prob_fn, jnp.asarray(PROMPTS), num_beams=num_beams,
                                   max_new_tokens=N, eos_id=eos_id, length_penalty=alpha)
    for b, prompt in enumerate(PROMPTS):
        best, best_score = oracle.best_sequence(np_log_probs, list(prompt), N, V,
                                                eos_id=eos_id, length_penalty=alpha)
        got = list(np.asarray(seqs[b, 0]))
        if eos_id is not None:
            n = len(best)
            assert got[:n] == list(best) and all(t == eos_id for t in got[n:])
        else:
            assert got == list(best)
        assert_close_to_oracle(scores[b, 0], np.float64(best_score))
        assert bool(jnp.all(jnp.diff(scores[b]) <= 0))  # best first


def test_narrow_beam_matches_numpy_beam_steps():
    K, N, eos, alpha = 3, 3, 1, 0.7
    prompt = [2, 3]
    seqs, scores = dec.beam_search(log_prob_fn, jnp.asarray(prompt), num_beams=K,
                                   max_new_tokens=N, eos_id=eos, length_penalty=alpha)
    # the oracle loop over oracle.beam_step
    alive = np.array([0.0] + [-np.inf] * (K - 1))
    beams = [list(prompt) for _ in range(K)]
    finished = []  # (score, tokens)
    for t in range(N):
        lp = np.stack([np_log_probs(b) for b in beams])  # (K, V)
        new, parents, toks, eos_scores = oracle.beam_step(alive, lp, K, eos)
        for k in range(K):
            finished.append((eos_scores[k] / (t + 1) ** alpha, beams[k][2:] + [eos]))
        beams = [beams[p] + [int(x)] for p, x in zip(parents, toks, strict=True)]
        alive = new
    finished += [(alive[k] / N ** alpha, beams[k][2:]) for k in range(K)]
    finished.sort(key=lambda f: -f[0])
    for k in range(K):
        want_score, want_tokens = finished[k]
        got = list(np.asarray(seqs[k]))
        assert got[:len(want_tokens)] == want_tokens
        assert_close_to_oracle(scores[k], np.float64(want_score))


def test_one_beam_is_greedy():
    seqs, _ = dec.beam_search(log_prob_fn, jnp.asarray(PROMPTS), num_beams=1,
                              max_new_tokens=4)
    for b, prompt in enumerate(PROMPTS):
        seq = list(prompt)
        for _ in range(4):
            seq.append(int(np.argmax(np_log_probs(seq))))
        assert list(np.asarray(seqs[b, 0])) == seq[2:]


@pytest.mark.parametrize("bad, match", [(dict(num_beams=0), "num_beams"),
                                        (dict(max_new_tokens=0), "max_new_tokens")])
def test_beam_search_rejects_bad_arguments(bad, match):
    args = dict(num_beams=2, max_new_tokens=2) | bad
    with pytest.raises(ValueError, match=match):
        dec.beam_search(log_prob_fn, jnp.asarray(PROMPTS), **args)


def test_cached_beam_search_equals_uncached():
    """Through a real position-masked cache whose rows are reordered by parent beam."""
    from tests.autoregressive.test_decoding import HistoryModel

    model = HistoryModel(2.0 * jax.random.normal(jax.random.key(3), (5, 5)), 5, 12)
    prompt = jnp.array([[1, 2], [0, 4]])
    opts = dict(num_beams=3, max_new_tokens=5, eos_id=4, length_penalty=0.5)
    s1, c1 = dec.beam_search(model, prompt, **opts)  # logits: normalised by log_softmax
    s2, c2 = dec.beam_search_cached(model, prompt, **opts)
    np.testing.assert_array_equal(np.asarray(s1), np.asarray(s2))
    np.testing.assert_allclose(np.asarray(c1), np.asarray(c2), rtol=1e-6)
    assert np.isfinite(np.asarray(c1)).all()

