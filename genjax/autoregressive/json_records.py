"""Built-in JSON records: random instances of a bounded JSON schema, and a text corpus with
one record line after each paragraph of the built-in text (the ``json-lm`` recipe's data).

:func:`random_value` draws an instance of a schema of the vocabulary of
:mod:`genjax.autoregressive.decoding.json_schema` (strings from a small word list, numbers
of the allowed digits, arrays of uniform length in their bounds); records are written in
the compact serialisation (``json.dumps(value, separators=(",", ":"))``), the form the
schema's automaton accepts, so a model trained on them can learn the format -- and the
recipe measures how often it gets it right on its own and under the constraint.
No network: the text is :func:`genjax.data.corpus_text`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from genjax import data as data_lib
from genjax.autoregressive.decoding import json_schema as js

__all__ = ["RECORD_SCHEMA", "WORDS", "random_value", "record_lines", "corpus_with_records"]

WORDS = ("alpha", "beta", "delta", "echo", "kilo", "lima", "nova", "oscar", "rho", "sigma",
         "tango", "zulu", "red", "green", "blue", "amber", "jade", "onyx")
"""The vocabulary of the records' word fields."""
RECORD_SCHEMA: dict = {
    "type": "object",
    "properties": {
        "id": {"type": "integer", "maxDigits": 3, "minimum": 0},
        "name": {"type": "string", "minLength": 3, "maxLength": 8},
        "score": {"type": "number", "maxDigits": 2, "maxFractionDigits": 1},
        "tags": {"type": "array", "items": {"enum": ["red", "green", "blue"]},
                 "maxItems": 3},
        "active": {"type": "boolean"},
        "owner": {"type": "object", "properties": {
            "name": {"type": "string", "minLength": 3, "maxLength": 8},
            "level": {"type": "integer", "maxDigits": 1, "minimum": 0}}},
        "note": {"type": "null"},
    },
}
"""The JSON schema of one record of the corpus: id, name, score, tags, flags, owner, note."""


def random_value(rng: np.random.Generator, schema: dict) -> Any:
    """One instance of ``schema`` (checked by :func:`~.json_schema.check_schema`)."""
    if "enum" in schema or "const" in schema:
        values = schema["enum"] if "enum" in schema else [schema["const"]]
        return values[int(rng.integers(len(values)))]
    if "anyOf" in schema:
        return random_value(rng, schema["anyOf"][int(rng.integers(len(schema["anyOf"])))])
    kind = schema["type"]
    if kind == "object":
        return {k: random_value(rng, sub) for k, sub in schema.get("properties", {}).items()}
    if kind == "string":
        lo = schema.get("minLength", 0)
        hi = schema.get("maxLength", js.DEFAULT_MAX_LENGTH)
        words = [w for w in WORDS if lo <= len(w) <= hi]
        if words:
            return words[int(rng.integers(len(words)))]
        return "".join(rng.choice(list("abcdefghij"), size=int(rng.integers(lo, hi + 1))))
    if kind in ("integer", "number"):
        d = schema.get("maxDigits", js.DEFAULT_DIGITS)
        value = int(rng.integers(0, 10 ** int(rng.integers(1, d + 1))))
        if "minimum" not in schema and rng.random() < 0.3:
            value = -value
        if kind == "number" and rng.random() < 0.6:
            f = schema.get("maxFractionDigits", js.DEFAULT_FRACTION_DIGITS)
            if f > 0:
                frac = int(rng.integers(1, 10)) / 10  # one fraction digit
                value = round(value + (frac if value >= 0 else -frac), f)
        return value
    if kind == "boolean":
        return bool(rng.random() < 0.5)
    if kind == "null":
        return None
    lo = schema.get("minItems", 0)
    hi = schema.get("maxItems", js.DEFAULT_MAX_ITEMS)
    return [random_value(rng, schema["items"]) for _ in range(int(rng.integers(lo, hi + 1)))]


def record_lines(n: int, seed: int, schema: dict = RECORD_SCHEMA) -> list[str]:
    """``n`` compact serialisations of random instances of ``schema``."""
    js.check_schema(schema)
    rng = np.random.default_rng(seed)
    return [json.dumps(random_value(rng, schema), separators=(",", ":")) for _ in range(n)]


def corpus_with_records(seed: int = 0, schema: dict = RECORD_SCHEMA) -> str:
    """The built-in text with one record line after every paragraph (blank-line
    separated), each on a line of its own."""
    paragraphs = data_lib.corpus_text().split("\n\n")
    records = record_lines(len(paragraphs), seed, schema)
    return "\n\n".join(f"{p}\n{r}" for p, r in zip(paragraphs, records, strict=True))
