"""Constrained decoding: the automata accept exactly the language (held against Python's
``re.fullmatch``), the token mask equals the NumPy oracle's, every output is in the
language, and the output law is the masked (locally renormalised) model -- exactly on
shared noise, by enumeration, and by chi-square -- which equals the model conditioned on
the language where the theory says it must.
"""

from __future__ import annotations

import itertools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.autoregressive import decoding as dec
from genjax.autoregressive import oracle
from genjax.autoregressive.decoding import constrained as cst
from genjax.testing import chi_square_test
from tests.autoregressive.test_decoding import TableModel

CHARS = ["a", "b", "c"]
EOS = 3
VOCAB = CHARS + ["<eos>"]
PATTERNS = ["(ab|c)+", "a*b?c", "[a-b]+c|cc", "(a|b)(c|)a?", "[^a]*a", "a.b", "ab\\*|"]


def _strings(max_len, chars="abc*"):
    for n in range(max_len + 1):
        for t in itertools.product(chars, repeat=n):
            yield "".join(t)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_regex_automaton_accepts_exactly_the_language(pattern):
    vocab = CHARS + ["*", "<eos>"]
    aut = cst.from_regex(pattern, vocab, eos_id=4)
    for s in _strings(4):
        ids = [vocab.index(ch) for ch in s]
        assert cst.accepts(aut, ids, eos_id=4) == bool(re.fullmatch(pattern, s)), (pattern, s)


def test_multi_character_tokens_and_trie():
    vocab = ["a", "b", "ab", "ba", "", "<eos>"]
    aut = cst.from_regex("(ab)+a?", vocab, eos_id=5)
    for n in range(4):
        for ids in itertools.product(range(5), repeat=n):
            text = "".join(vocab[i] for i in ids)
            ok = bool(re.fullmatch("(ab)+a?", text)) and "" not in [vocab[i] for i in ids]
            assert cst.accepts(aut, ids, eos_id=5) == ok, ids
    words = ["ab", "aba", "b", "bab"]
    trie = cst.from_strings(words, vocab, eos_id=5)
    for n in range(4):
        for ids in itertools.product(range(4), repeat=n):
            text = "".join(vocab[i] for i in ids)
            assert cst.accepts(trie, ids, eos_id=5) == (text in words), ids


def test_bad_patterns_and_empty_languages():
    for bad in ("(ab", "a)", "*a", "[ab", "a\\"):
        with pytest.raises(ValueError, match="pattern"):
            cst.from_regex(bad, VOCAB, eos_id=EOS)
    with pytest.raises(ValueError, match="empty"):
        cst.from_regex("d+", VOCAB, eos_id=EOS)
    with pytest.raises(ValueError, match="empty"):
        cst.from_strings(["xyz"], VOCAB, eos_id=EOS)


@pytest.mark.parametrize("eos_id", [EOS, None])
def test_mask_and_completable_match_oracle(eos_id):
    aut = cst.from_regex("(ab|c)+", VOCAB, eos_id=EOS)
    trans, acc = np.asarray(aut.transitions), np.asarray(aut.accepting)
    N = 5
    reach = cst.completable(aut, N, eos_id=eos_id)
    np.testing.assert_array_equal(reach, oracle.completable(trans, acc, N, eos_id is not None))
    states = jnp.arange(aut.num_states)
    for r in range(1, N + 1):
        got = np.asarray(cst.allowed_tokens(aut, states, jnp.asarray(reach[r - 1]), eos_id))
        want = np.stack([oracle.dfa_mask(trans, acc, s, reach[r - 1], eos_id)
                         for s in range(aut.num_states)])
        np.testing.assert_array_equal(got, want)


def _model(seed=0, unigram=False):
    table = 1.2 * jax.random.normal(jax.random.key(seed), (2, 4, 4))
    if unigram:  # next-token law independent of the context
        table = jnp.broadcast_to(table[0, 0], (2, 4, 4))
    return TableModel(table, 4, 16)


def test_generate_with_constraint_matches_oracle_and_stays_in_language():
    m = _model()
    aut = cst.from_regex("(ab|c)+", VOCAB, eos_id=EOS)
    B, N = 32, 5
    rng = np.random.default_rng(0)
    g = rng.gumbel(size=(N, B, 4))
    prompt = np.zeros((B, 1), int)
    got = np.asarray(dec.generate_from_noise(m, jnp.asarray(prompt), jnp.asarray(g),
                                             max_new_tokens=N, eos_id=EOS, constraint=aut,
                                             temperature=0.9))
    want = oracle.generate(g, m.np_next_logits, prompt, N, eos_id=EOS, temperature=0.9,
                           automaton=(np.asarray(aut.transitions), np.asarray(aut.accepting)))
    np.testing.assert_array_equal(got, want)
    for row in got:
        text = "".join(VOCAB[t] for t in row if t != EOS)
        assert re.fullmatch("(ab|c)+", text), text
    # without EOS every output has exactly N tokens, all in the language
    plain = np.asarray(dec.generate(jax.random.key(1), m, jnp.asarray(prompt), max_new_tokens=N,
                                    constraint=aut))
    for row in plain:
        assert re.fullmatch("(ab|c)+", "".join(VOCAB[t] for t in row))
    with pytest.raises(ValueError, match="constraint"):  # no string of 'ab's has length 3
        dec.generate(jax.random.key(1), m, jnp.asarray(prompt), max_new_tokens=3,
                     constraint=cst.from_regex("(ab)+", VOCAB, eos_id=EOS))


def _local_law(model, aut, N, eos_id, **options):
    """Exact law of masked decoding: every sequence, probability = product of masked,
    renormalised sampling probabilities (oracle)."""
    trans, acc = np.asarray(aut.transitions), np.asarray(aut.accepting)
    reach = oracle.completable(trans, acc, N, eos_id is not None)
    law = {}

    def rec(seq, state, prob):
        t = len(seq)
        if t == N or (seq and seq[-1] == eos_id):
            law[tuple(seq)] = law.get(tuple(seq), 0.0) + prob
            return
        logits = model.np_next_logits(np.asarray([0] + seq))
        mask = oracle.dfa_mask(trans, acc, state, reach[N - 1 - t], eos_id)
        probs = oracle.sampling_probs(np.where(mask, logits, oracle.NEG), **options)
        for v in np.flatnonzero(probs > 0):
            nxt = state if v == eos_id else int(trans[state, v])
            rec(seq + [int(v)], nxt, prob * probs[v])

    rec([], 0, 1.0)
    return law


def _global_law(model, language_seqs):
    """The model conditioned on a set of complete sequences: p(x) / p(L)."""
    def p(seq):
        prob, ctx = 1.0, [0]
        for x in seq:
            prob *= oracle.softmax(model.np_next_logits(np.asarray(ctx)))[x]
            ctx.append(x)
        return prob
    w = {s: p(s) for s in language_seqs}
    z = sum(w.values())
    return {s: v / z for s, v in w.items()}


def test_law_is_model_conditioned_on_language_when_theory_says_so():
    # fixed length N = 3, per-position classes, context-free model: q = p( . | L) exactly
    m = _model(1, unigram=True)
    aut = cst.from_regex("[ab][bc][ac]", VOCAB, eos_id=EOS)
    local = _local_law(m, aut, 3, None)
    lang = [s for s in itertools.product(range(3), repeat=3)
            if re.fullmatch("[ab][bc][ac]", "".join(CHARS[i] for i in s))]
    glob = _global_law(m, lang)
    assert set(local) == set(glob)
    for s in lang:
        assert abs(local[s] - glob[s]) < 1e-12
    # with look-ahead-dependent masses (here '(ab|c)+' with EOS) local masking is not the
    # conditional -- the documented limitation (Park et al. 2024)
    aut2 = cst.from_regex("(ab|c)+", VOCAB, eos_id=EOS)
    local2 = _local_law(m, aut2, 4, EOS)
    glob2 = _global_law(m, list(local2))
    assert max(abs(local2[s] - glob2[s]) for s in local2) > 1e-3


@pytest.mark.slow
def test_constrained_generate_law_chi_square():
    m = _model(2)
    aut = cst.from_regex("(ab|c)+", VOCAB, eos_id=EOS)
    N, n = 4, 6000
    opts = dict(temperature=1.3, top_p=0.95)
    law = _local_law(m, aut, N, EOS, **opts)
    toks = np.asarray(dec.generate(jax.random.key(7), m, jnp.zeros((n, 1), jnp.int32),
                                   max_new_tokens=N, eos_id=EOS, constraint=aut, **opts))
    index = {s: i for i, s in enumerate(law)}
    counts = np.zeros(len(law), int)
    for row in toks:
        cut = list(row)
        if EOS in cut:
            cut = cut[:cut.index(EOS) + 1]
        counts[index[tuple(cut)]] += 1  # a KeyError would be an impossible output
    chi_square_test(counts, np.array(list(law.values())))
