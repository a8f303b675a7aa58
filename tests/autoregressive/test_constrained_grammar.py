"""Grammar-constrained decoding: the pushdown automaton accepts exactly the language
(balanced brackets within the stack bound, against a direct checker; JSON, against
``json.loads``), the in-loop mask equals the NumPy oracle's breadth-first completions,
generate equals the oracle loop on shared noise, every emitted sequence is in the
language and every string of the language within the budget is emitted with positive
probability (enumeration), the sampling law is the locally renormalised one (enumeration
+ chi-square), and beam search keeps to the language.
"""

from __future__ import annotations

import itertools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.autoregressive import decoding as dec
from genjax.autoregressive import oracle
from genjax.autoregressive import oracle_grammar as og
from genjax.autoregressive.decoding import grammar as gr
from genjax.autoregressive.decoding import masking
from genjax.testing import chi_square_test
from tests.autoregressive.test_decoding import TableModel

VOCAB = ["(", ")", "[", "]", "<eos>"]
EOS = 4
DEPTH = 2  # frames: nesting up to DEPTH + 1 (the outermost pair pushes nothing)
JSON_VOCAB = [chr(c) for c in range(32, 127)] + ["<eos>"]
JSON_EOS = len(JSON_VOCAB) - 1


def _balanced(text: str, max_nesting: int) -> bool:
    """Direct check: non-empty, balanced, nesting at most ``max_nesting``."""
    stack = []
    for ch in text:
        if ch in "([":
            stack.append(ch)
            if len(stack) > max_nesting:
                return False
        elif not stack or {"(": ")", "[": "]"}[stack.pop()] != ch:
            return False
    return bool(text) and not stack


def _tables(g: gr.Grammar) -> dict:
    out = {f.name: np.asarray(getattr(g, f.name)) for f in
           __import__("dataclasses").fields(g)}
    out["max_depth"] = g.max_depth
    return out


@pytest.fixture(scope="module")
def brackets():
    return gr.from_grammar(gr.BRACKETS_GRAMMAR, VOCAB, eos_id=EOS, max_depth=DEPTH)


@pytest.fixture(scope="module")
def json_grammar():
    return gr.from_grammar(gr.JSON_GRAMMAR, JSON_VOCAB, eos_id=JSON_EOS, max_depth=4)


def test_brackets_accepts_exactly_the_bounded_language(brackets):
    seqs = [s for n in range(9) for s in itertools.product(range(4), repeat=n)]
    rows = np.full((len(seqs), 8), -1)
    for i, s in enumerate(seqs):
        rows[i, :len(s)] = s
    got = gr.accepts_batch(brackets, rows)
    want = [_balanced("".join(VOCAB[i] for i in s), DEPTH + 1) for s in seqs]
    np.testing.assert_array_equal(got, want)
    assert sum(want) > 50 and any(len(s) == 8 for s, w in zip(seqs, want, strict=True) if w)
    assert not gr.accepts(brackets, [0, 0, 0, 0, 1, 1, 1, 1])  # nesting 4 > bound


def _mutations(rng, text, n):
    alphabet = '{}[],:"0123456789.-eEtrufalsn\\/ab'
    out = []
    for _ in range(n):
        s = list(text)
        for _ in range(rng.integers(1, 3)):
            i = int(rng.integers(0, len(s) + 1))
            op = rng.integers(3)
            if op == 0 and s:
                del s[min(i, len(s) - 1)]
            elif op == 1:
                s.insert(i, alphabet[rng.integers(len(alphabet))])
            elif s:
                s[min(i, len(s) - 1)] = alphabet[rng.integers(len(alphabet))]
        out.append("".join(s))
    return out


def _json_ok(text: str, max_frames: int) -> bool:
    """json.loads accepts it (no whitespace was inserted), within the stack bound."""
    try:
        value = json.loads(text)
    except ValueError:
        return False

    def frames(v):  # one frame per container that holds a value
        if isinstance(v, dict | list):
            items = list(v.values()) if isinstance(v, dict) else v
            return max((1 + frames(x) for x in items), default=0)
        return 0
    return frames(value) <= max_frames


def test_json_grammar_agrees_with_json_loads(json_grammar):
    rng = np.random.default_rng(0)
    seeds = ['{"a":[1,2.5e-3,{"b":null}],"c":"x\\"y\\u00e9"}', "[]", "{}", "[[[[1]]]]",
             "-0.5", "true", '"s"', '[{"k":[false,{}]}]', "[[[[[1]]]]]", "01", "1.", "tru"]
    texts = seeds + [m for s in seeds[:8] for m in _mutations(rng, s, 40)]
    texts = [t for t in texts if t and all(32 <= ord(ch) < 127 for ch in t)]
    width = max(map(len, texts))
    rows = np.full((len(texts), width), -1)
    for i, t in enumerate(texts):
        rows[i, :len(t)] = [JSON_VOCAB.index(ch) for ch in t]
    got = gr.accepts_batch(json_grammar, rows)
    want = [_json_ok(t, json_grammar.max_depth) for t in texts]
    assert [t for t, g, w in zip(texts, got, want, strict=True) if g != w] == []
    assert 0.1 < np.mean(want) < 0.9


def _reachable_configs(tables, max_len):
    """(prefix, oracle config) for every token prefix up to max_len the PDA can read."""
    out, frontier = [((), og.initial(tables))], [((), og.initial(tables))]
    for _ in range(max_len):
        nxt = []
        for prefix, cfg in frontier:
            for v in range(tables["token_chars"].shape[0]):
                new = og.read_token(tables, cfg, v)
                if new is not None:
                    nxt.append((prefix + (v,), new))
        out += nxt
        frontier = nxt
    return out


_allowed = jax.jit(masking.allowed)  # one program for every budget r (traced)


def _batch_configs(g, prefixes):
    width = max(1, max(len(p) for p in prefixes))
    rows = np.full((len(prefixes), width), -1)
    for i, p in enumerate(prefixes):
        rows[i, :len(p)] = p
    return gr.read_sequences(g, jnp.asarray(rows, jnp.int32))


def test_mask_matches_oracle_breadth_first_completions(brackets, json_grammar):
    tables = _tables(brackets)
    pairs = _reachable_configs(tables, 4)
    state = _batch_configs(brackets, [p for p, _ in pairs])
    q, depth, stack = (np.asarray(state[k]) for k in ("q", "depth", "stack"))
    assert [(int(q[i]), tuple(int(r) for r in stack[i, :depth[i]]))
            for i in range(len(pairs))] == [cfg for _, cfg in pairs]
    for r in range(1, 5):
        got = np.asarray(_allowed(masking.GrammarMask(brackets, EOS), state, jnp.asarray(r)))
        want = np.stack([og.mask(tables, cfg, r, EOS) for _, cfg in pairs])
        np.testing.assert_array_equal(got, want)
    # JSON: completion lengths and masks at a few prefixes (oracle BFS over 95 characters)
    jt = _tables(json_grammar)
    texts = ['{"a":[', "[[1,", '{"ab', "[-", '[{"k":tr', "[[[[1"]
    prefixes = [[JSON_VOCAB.index(ch) for ch in text] for text in texts]
    state = _batch_configs(json_grammar, prefixes)
    costs = np.asarray(gr.config_cost(json_grammar, state))
    for i, (text, prefix) in enumerate(zip(texts, prefixes, strict=True)):
        cfg = og.initial(jt)
        for v in prefix:
            cfg = og.read_token(jt, cfg, v)
        assert costs[i] == og.completion_length(jt, cfg, 12), text
        one = jax.tree.map(lambda a, i=i: a[i:i + 1], state)
        for r in (costs[i], costs[i] + 1):
            got = np.asarray(_allowed(masking.GrammarMask(json_grammar, JSON_EOS), one,
                                      jnp.asarray(r)))[0]
            np.testing.assert_array_equal(got, og.mask(jt, cfg, int(r), JSON_EOS),
                                          err_msg=text)


def _model(seed):
    return TableModel(1.2 * jax.random.normal(jax.random.key(seed), (2, 5, 5)), 5, 16)


def _oracle_generate(tables, model, gumbels, N, **options):
    B = gumbels.shape[1]
    out = np.full((B, N), EOS)
    for b in range(B):
        seq, cfg = [0], og.initial(tables)
        for t in range(N):
            allowed = og.mask(tables, cfg, N - t, EOS)
            logits = np.where(allowed, model.np_next_logits(np.asarray(seq)), oracle.NEG)
            x = oracle.sample_from_gumbel(gumbels[t, b], logits, **options)
            out[b, t] = x
            if x == EOS:
                break
            seq.append(x)
            cfg = og.read_token(tables, cfg, x)
    return out


def test_generate_matches_oracle_on_shared_noise(brackets):
    m = _model(0)
    B, N = 24, 6
    g = np.random.default_rng(1).gumbel(size=(N, B, 5))
    prompt = jnp.zeros((B, 1), jnp.int32)
    got = np.asarray(dec.generate_from_noise(m, prompt, jnp.asarray(g), max_new_tokens=N,
                                             eos_id=EOS, constraint=brackets, temperature=0.9))
    np.testing.assert_array_equal(got, _oracle_generate(_tables(brackets), m, g, N,
                                                        temperature=0.9))
    assert gr.accepts_batch(brackets, got, eos_id=EOS).all()
    assert len({tuple(row) for row in got}) > 5  # not one fixed output


def _local_law(tables, model, N, **options):
    """Exact law of masked decoding by enumeration (oracle masks)."""
    law = {}

    def rec(seq, cfg, prob):
        if len(seq) == N or (seq and seq[-1] == EOS):
            law[tuple(seq)] = law.get(tuple(seq), 0.0) + prob
            return
        allowed = og.mask(tables, cfg, N - len(seq), EOS)
        logits = np.where(allowed, model.np_next_logits(np.asarray([0] + seq)), oracle.NEG)
        probs = oracle.sampling_probs(logits, **options)
        for v in np.flatnonzero(probs > 0):
            rec(seq + [int(v)], cfg if v == EOS else og.read_token(tables, cfg, int(v)),
                prob * probs[v])

    rec([], og.initial(tables), 1.0)
    return law


def test_every_emission_in_language_and_every_string_reachable(brackets):
    N = 7
    law = _local_law(_tables(brackets), _model(1), N)
    assert abs(sum(law.values()) - 1.0) < 1e-12
    emitted = {"".join(VOCAB[v] for v in s if v != EOS) for s in law}
    for s in law:  # EOS only after a complete string; no EOS only at the budget
        assert (s[-1] == EOS) or len(s) == N
    language = {"".join(VOCAB[i] for i in t) for n in range(1, N + 1)
                for t in itertools.product(range(4), repeat=n)}
    language = {t for t in language if _balanced(t, DEPTH + 1)}
    assert emitted == language and len(language) > 30


@pytest.mark.slow
def test_grammar_generate_law_chi_square(brackets):
    # the compiled program of the shared-noise test (same shapes and options), 200 calls
    m = _model(2)
    N, B = 6, 24
    law = _local_law(_tables(brackets), m, N, temperature=0.9)
    rng = np.random.default_rng(5)
    toks = np.concatenate([np.asarray(dec.generate_from_noise(
        m, jnp.zeros((B, 1), jnp.int32), jnp.asarray(rng.gumbel(size=(N, B, 5))),
        max_new_tokens=N, eos_id=EOS, constraint=brackets, temperature=0.9))
        for _ in range(200)])
    index = {s: i for i, s in enumerate(law)}
    counts = np.zeros(len(law), int)
    for row in toks:
        cut = list(row)
        if EOS in cut:
            cut = cut[:cut.index(EOS) + 1]
        counts[index[tuple(cut)]] += 1  # a KeyError would be an impossible output
    chi_square_test(counts, np.array(list(law.values())))


def test_beam_search_with_grammar_finds_best_string_of_the_language(brackets):
    m = _model(4)
    N = 4
    seqs, scores = dec.beam_search(m, jnp.zeros((1,), jnp.int32), num_beams=24,
                                   max_new_tokens=N, eos_id=EOS, constraint=brackets)
    seqs, scores = np.asarray(seqs), np.asarray(scores)
    finite = np.isfinite(scores)
    assert finite.any() and gr.accepts_batch(brackets, seqs[finite], eos_id=EOS).all()
    # brute force: the best length-normalised score over the language within N tokens
    best = -math.inf
    for n in range(1, N + 1):
        for t in itertools.product(range(4), repeat=n):
            if not _balanced("".join(VOCAB[i] for i in t), DEPTH + 1):
                continue
            seq = list(t) + ([EOS] if n < N else [])
            ctx, lp = [0], 0.0
            for x in seq:
                lp += oracle.log_softmax(m.np_next_logits(np.asarray(ctx)))[x]
                ctx.append(x)
            best = max(best, lp / len(seq))
    assert abs(scores[0] - best) < 1e-5  # float32 sums of a few log-probabilities


def test_bad_grammars_and_arguments(brackets):
    cases = [
        (dict(rules={"s": "a<s>b|<t>", "t": "a<t>x|b"}), "LL\\(1\\)"),
        (dict(rules={"s": "<t>x", "t": "(?:a<t>)?"}), "empty string"),
        (dict(rules={"s": "a<t>", "t": "<s>b"}, start="s"), "rules"),
        (dict(rules={"s": "<s>a|b"}), "left recursion|LL"),
        (dict(rules={"s": "<u>"}), "undefined"),
        (dict(rules={}), "rules"),
        (dict(rules={"s": "(a"}), "pattern"),
        (dict(rules={"s": "z"}), "empty"),
        (dict(rules={"s": "a"}, start="t"), "start"),
        (dict(rules={"s": "a"}, eos_id=None), "eos_id"),
        (dict(rules={"s": "a"}, max_depth=0), "max_depth"),
        (dict(rules={"s": "a"}, eos_id=9), "eos_id"),
    ]
    for kwargs, match in cases:
        args = dict(vocabulary=["a", "b", "x", "<eos>"], eos_id=3) | kwargs
        with pytest.raises(ValueError, match=match):
            gr.from_grammar(args.pop("rules"), **args)
    m = _model(0)
    prompt = jnp.zeros((2, 1), jnp.int32)
    with pytest.raises(ValueError, match="eos_id"):
        dec.generate(jax.random.key(0), m, prompt, max_new_tokens=4, constraint=brackets)
    with pytest.raises(ValueError, match="constraint"):  # '()' needs 2 tokens
        dec.generate(jax.random.key(0), m, prompt, max_new_tokens=1, eos_id=EOS,
                     constraint=brackets)
    with pytest.raises(ValueError, match="constraint"):
        dec.generate(jax.random.key(0), m, prompt, max_new_tokens=4, eos_id=EOS,
                     constraint="(ab)+")
