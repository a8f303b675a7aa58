"""JSON-schema-constrained decoding: the schema's regex agrees with ``re.fullmatch`` and
its automaton with both, every string of the (finite) language of a tiny schema parses
and validates and is emitted with positive probability, every emission is in it, and
constrained sampling from a random model yields records that parse and validate --
with generate and with beam search. Bad schemas raise ValueError naming the schema path.
"""

from __future__ import annotations

import itertools
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.autoregressive import decoding as dec
from genjax.autoregressive import json_records as jr
from genjax.autoregressive import oracle
from genjax.autoregressive.decoding import constrained as cst
from genjax.autoregressive.decoding import json_schema as js
from tests.autoregressive.test_decoding import TableModel

TINY = {"type": "array", "items": {"anyOf": [{"type": "integer", "maxDigits": 1,
                                              "minimum": 0}, {"type": "null"}]},
        "maxItems": 2}
TINY_VOCAB = ["[", "]", ",", "0", "7", "n", "u", "l", "<eos>"]
TINY_EOS = 8


def _valid(text: str, schema: dict) -> bool:
    try:
        return js.validate(json.loads(text), schema)
    except ValueError:
        return False


def test_record_schema_regex_automaton_and_validator_agree():
    pattern = js.schema_regex(jr.RECORD_SCHEMA)
    vocab = [chr(c) for c in range(32, 127)] + ["<eos>"]
    aut = js.from_json_schema(jr.RECORD_SCHEMA, vocab, eos_id=len(vocab) - 1)
    rng = np.random.default_rng(0)
    records = jr.record_lines(30, seed=1)
    mutants = []
    for text in records:
        for _ in range(5):
            s = list(text)
            i = int(rng.integers(len(s)))
            s[i] = '0a",:{}[]-.'[rng.integers(11)]
            mutants.append("".join(s))
    for text in records + mutants:
        ids = [vocab.index(ch) for ch in text]
        match = re.fullmatch(pattern, text) is not None
        assert cst.accepts(aut, ids, eos_id=len(vocab) - 1) == match, text
        if match:  # every string of the language parses and validates
            assert _valid(text, jr.RECORD_SCHEMA), text
    assert all(re.fullmatch(pattern, t) for t in records)
    # single-character substitutions: most break the record, a few keep it valid
    assert 0.02 < np.mean([re.fullmatch(pattern, t) is not None for t in mutants]) < 0.9


def _tiny_language():
    """The strings up to 11 characters that fullmatch, among the prefixes of candidates
    (the candidates are every array the schema describes, written out by hand)."""
    pattern = js.schema_regex(TINY)
    alphabet = "[],07nul"
    out = set()
    frontier = {""}  # '[null,null]' has 11 characters; grow prefixes of candidates
    for _ in range(11):
        frontier = {p + ch for p in frontier for ch in alphabet
                    if any(p + ch == s[:len(p) + 1] for s in _TINY_STRINGS)}
        out |= {s for s in frontier if re.fullmatch(pattern, s)}
    return out


_TINY_STRINGS = ["[]"] + [f"[{a}]" for a in ("0", "7", "null")] + [
    f"[{a},{b}]" for a in ("0", "7", "null") for b in ("0", "7", "null")]


def test_tiny_schema_enumeration_every_emission_valid_every_string_reachable():
    aut = js.from_json_schema(TINY, TINY_VOCAB, eos_id=TINY_EOS)
    language = _tiny_language()
    assert language == set(_TINY_STRINGS) and all(_valid(s, TINY) for s in language)
    model = TableModel(jax.random.normal(jax.random.key(0), (2, 9, 9)), 9, 16)
    trans, acc = np.asarray(aut.transitions), np.asarray(aut.accepting)
    N = 12
    reach = oracle.completable(trans, acc, N, True)
    support = set()

    def rec(seq, state):
        if len(seq) == N or (seq and seq[-1] == TINY_EOS):
            support.add("".join(TINY_VOCAB[v] for v in seq if v != TINY_EOS))
            return
        mask = oracle.dfa_mask(trans, acc, state, reach[N - 1 - len(seq)], TINY_EOS)
        probs = oracle.sampling_probs(np.where(
            mask, model.np_next_logits(np.asarray([0] + seq)), oracle.NEG))
        for v in np.flatnonzero(probs > 0):
            rec(seq + [int(v)], state if v == TINY_EOS else int(trans[state, v]))

    rec([], 0)
    assert support == language
    # a budget too small for '[null,null]' drops it and keeps the rest reachable
    short = cst.completable(aut, 8, eos_id=TINY_EOS)
    assert short[8, 0] and not cst.accepts(aut, [0] * 12, eos_id=TINY_EOS)


@pytest.fixture(scope="module")
def small_record_setup():
    schema = {"type": "object", "properties": {
        "id": {"type": "integer", "maxDigits": 2, "minimum": 0},
        "ok": {"type": "boolean"},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2}}}
    vocab = list('{}[]",:-.0123456789abdefgiklnorstuz') + ['"id":', "true", "<eos>"]
    eos = len(vocab) - 1
    return schema, vocab, eos, js.from_json_schema(schema, vocab, eos_id=eos)


def test_generate_and_beam_search_emit_valid_records(small_record_setup):
    schema, vocab, eos, aut = small_record_setup
    V = len(vocab)
    model = TableModel(2.0 * jax.random.normal(jax.random.key(1), (2, V, V)), V, 64)
    out = np.asarray(dec.generate(jax.random.key(2), model, jnp.zeros((16, 1), jnp.int32),
                                  max_new_tokens=40, eos_id=eos, constraint=aut))
    texts = ["".join(vocab[v] for v in row[:list(row).index(eos)])
             if eos in row else None for row in out]
    assert all(t is not None and _valid(t, schema) for t in texts), texts
    assert any('"id":' in t for t in texts)  # multi-character tokens are used
    seqs, scores = dec.beam_search(model, jnp.zeros((1,), jnp.int32), num_beams=4,
                                   max_new_tokens=40, eos_id=eos, constraint=aut)
    for row, score in zip(np.asarray(seqs), np.asarray(scores), strict=True):
        if np.isfinite(score):
            row = list(row)
            assert _valid("".join(vocab[v] for v in row[:row.index(eos)]), schema)
    assert np.isfinite(np.asarray(scores)).any()
    # over the KV cache (beam states gathered by parent with the cache rows): same search
    cached, cached_scores = dec.beam_search_cached(model, jnp.zeros((1,), jnp.int32),
                                                   num_beams=4, max_new_tokens=40, eos_id=eos,
                                                   constraint=aut)
    np.testing.assert_array_equal(np.asarray(cached), np.asarray(seqs))
    # the same log-probabilities summed in the same order; cached logits differ by rounding
    np.testing.assert_allclose(np.asarray(cached_scores), np.asarray(scores), rtol=1e-6)


@pytest.mark.parametrize("schema, match", [
    ({"type": "object", "properties": {"a": {"type": "string", "maxLength": -1}}},
     "schema.a: maxLength"),
    ({"type": "object", "properties": {"a": {"type": "integer", "minimum": 3}}},
     "schema.a: minimum"),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "required": []},
     "required"),
    ({"type": "array", "items": {"type": "date"}}, "schema.items: type"),
    ({"type": "string", "pattern": "a+"}, "unsupported keyword"),
    ({"type": "array", "items": {"type": "null"}, "minItems": 3, "maxItems": 1}, "maxItems"),
    ({"enum": []}, "enum"),
    ("string", "schema must be a dict"),
    ({"type": "array", "items": {"type": "array", "items": {"type": "array", "items": {
        "type": "array", "items": {"type": "array", "items": {"type": "array", "items": {
            "type": "array", "items": {"type": "null"}}}}}}}}, "MAX_DEPTH"),
])
def test_bad_schemas(schema, match):
    with pytest.raises(ValueError, match=match):
        js.from_json_schema(schema, TINY_VOCAB, eos_id=TINY_EOS)


def test_validator_rejects_what_the_schema_forbids():
    s = jr.RECORD_SCHEMA
    good = json.loads(jr.record_lines(1, seed=3)[0])
    assert js.validate(good, s)
    for key, bad in (("id", -1), ("id", 1000), ("id", True), ("name", "ab"), ("tags", ["x"]),
                     ("score", 1.25), ("active", 1), ("note", 0), ("owner", {})):
        assert not js.validate(dict(good, **{key: bad}), s), key
    assert not js.validate({k: v for k, v in good.items() if k != "id"}, s)
    assert list(itertools.islice(iter(good), 1)) == ["id"]
