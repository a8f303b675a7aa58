"""The regex front end against Python's ``re.fullmatch``: random patterns with classes,
escapes and bounded repetition, on every short string and on random longer ones; bad
patterns raise ValueError naming the pattern."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from genjax.autoregressive.decoding import constrained as cst
from genjax.autoregressive.decoding import regex

ALPHABET = list("ab1_ -{}")  # letters, a digit, word and space characters, braces
VOCAB = ALPHABET + ["<eos>"]
EOS = len(ALPHABET)
ATOMS = ["a", "b", "1", "\\d", "\\w", "\\s", "\\D", "\\W", "\\S", ".", "[ab]", "[^a]",
         "[a-b1]", "[\\d_]", "[^\\s-]", "\\-", "\\{", "_", "[\\]a]", "\\}", "(?:a|b1)"]
QUANTIFIERS = ["", "", "*", "+", "?", "{2}", "{1,3}", "{,2}", "{2,}", "{0,1}"]


def _random_pattern(rng, depth=0):
    parts = []
    for _ in range(rng.integers(1, 4)):
        if depth < 2 and rng.random() < 0.25:
            inner = "|".join(_random_pattern(rng, depth + 1)
                             for _ in range(rng.integers(1, 3)))
            atom = f"({inner})"
        else:
            atom = ATOMS[rng.integers(len(ATOMS))]
        parts.append(atom + QUANTIFIERS[rng.integers(len(QUANTIFIERS))])
    return "".join(parts)


def _accepts(aut, text):
    return cst.accepts(aut, [VOCAB.index(ch) for ch in text], eos_id=EOS)


def test_random_patterns_match_python_re():
    rng = np.random.default_rng(0)
    short = ["".join(t) for n in range(4) for t in itertools.product(ALPHABET, repeat=n)]
    checked = matched = 0
    for _ in range(40):
        pattern = _random_pattern(rng)
        try:
            aut = cst.from_regex(pattern, VOCAB, eos_id=EOS)
        except ValueError as err:  # an empty language: then re matches nothing either
            assert "empty" in str(err), pattern
            aut = None
        longer = ["".join(rng.choice(ALPHABET, size=rng.integers(4, 9))) for _ in range(150)]
        for text in short + longer:
            want = re.fullmatch(pattern, text) is not None
            got = aut is not None and _accepts(aut, text)
            assert got == want, (pattern, text)
            checked += 1
            matched += want
    assert matched > 200 and checked > 20000


@pytest.mark.parametrize("pattern", ["a{3}", "(ab){1,2}", "a{,2}b", "a{2,}", "[ab]{0,3}1",
                                     "a{}", "a{,}", "\\d{2}-\\w+", "x{1,2", "[\\s\\d]{2}"])
def test_bounded_repetition_and_literal_braces(pattern):
    vocab = list("abx12{},- ") + ["<eos>"]
    aut = cst.from_regex(pattern, vocab, eos_id=len(vocab) - 1)
    for n in range(6):
        for t in itertools.product("ab1{},", repeat=n) if n < 5 else []:
            text = "".join(t)
            ids = [vocab.index(ch) for ch in text]
            assert cst.accepts(aut, ids, eos_id=len(vocab) - 1) == bool(
                re.fullmatch(pattern, text)), (pattern, text)


def test_escape_and_bad_patterns():
    text = 'a{1}."\\[x]*'
    assert re.fullmatch(regex.escape(text), text)
    vocab = list(text) + ["<eos>"]
    aut = cst.from_regex(regex.escape(text), vocab, eos_id=len(vocab) - 1)
    assert cst.accepts(aut, list(range(len(text))), eos_id=len(vocab) - 1)
    for bad in ("a{3,1}", "^a", "a$", "\\q", "(?=a)", "[b-a]", "{2}", "a\\", "<s>"):
        with pytest.raises(ValueError, match="pattern"):
            cst.from_regex(bad, VOCAB, eos_id=EOS)
    with pytest.raises(ValueError, match="NFA states"):
        cst.from_regex("(a{1000}){1000}", VOCAB, eos_id=EOS)
    with pytest.raises(ValueError, match="pattern must be a string"):
        cst.from_regex(3, VOCAB, eos_id=EOS)
