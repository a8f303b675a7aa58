"""JSON schema -> the regular language of its serialisations -> a token automaton.

A *bounded* schema (the JSON Schema vocabulary below, every size finite) has finitely
deep, finitely long instances, so the set of their serialisations is a regular language:
:func:`schema_regex` writes it as a regular expression, and :func:`from_json_schema`
compiles it with :func:`~genjax.autoregressive.decoding.constrained.from_regex` into the
token automaton that constrained decoding masks with (Willard & Louf 2023, section 4:
"JSON schema -> regular expression -> index"). Completability pruning, the length budget
and the in-loop mask are the regular case's, unchanged.

Supported schema (every other keyword is a ValueError naming the schema path):

* ``{"type": "object", "properties": {name: schema, ...}, "required": [...]}`` -- every
  property is emitted, in the order given; ``required``, if present, must list them all;
* ``{"type": "string", "minLength": m, "maxLength": n}`` (default 0 and
  ``DEFAULT_MAX_LENGTH``); characters are printable ASCII other than ``"`` and ``\\``,
  so a string's serialisation is its text between quotes (no escape sequences);
* ``{"type": "integer", "maxDigits": d, "minimum": 0}`` -- ``-?(0|[1-9][0-9]{0,d-1})``,
  no minus sign when ``minimum`` is 0 (the only minimum supported); ``"number"`` adds
  ``(\\.[0-9]{1,f})?`` with ``"maxFractionDigits": f`` (defaults ``DEFAULT_DIGITS``,
  ``DEFAULT_FRACTION_DIGITS``; no exponent);
* ``{"type": "boolean"}``, ``{"type": "null"}``;
* ``{"type": "array", "items": schema, "minItems": m, "maxItems": n}`` (default 0 and
  ``DEFAULT_MAX_ITEMS``);
* ``{"enum": [v, ...]}`` and ``{"const": v}`` of JSON values, ``{"anyOf": [schema, ...]}``;
* nesting of objects and arrays to at most ``MAX_DEPTH`` levels.

Whitespace policy: none. The language is the compact serialisation,
``json.dumps(value, separators=(",", ":"))`` with the schema's property order -- one
string per value, the canonical form a tokenizer-level model can learn and a parser
reads. Every string of the language is valid JSON and an instance of the schema
(:func:`validate`, which the tests apply to every string they enumerate).

References:
  Willard & Louf (2023), "Efficient guided generation for large language models".
  JSON Schema Validation (draft 2020-12), sections 6.1-6.5 (the keywords above).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from genjax.autoregressive.decoding import constrained, regex

__all__ = ["schema_regex", "from_json_schema", "validate", "check_schema",
           "STRING_CHARS", "MAX_DEPTH"]

DEFAULT_MAX_LENGTH = 16
DEFAULT_MAX_ITEMS = 4
DEFAULT_DIGITS = 6
DEFAULT_FRACTION_DIGITS = 3
MAX_DEPTH = 6
"""The deepest nesting of objects and arrays a schema may have (levels)."""
STRING_CHARS = "".join(chr(c) for c in range(32, 127) if chr(c) not in '"\\')
"""The characters a JSON string may hold here: printable ASCII but ``"`` and ``\\``."""
_STRING_CLASS = '[ !#-\\[\\]-~]'  # printable ASCII but '"' (0x22) and '\' (0x5c)
_KEYWORDS = {
    "object": {"type", "properties", "required"},
    "string": {"type", "minLength", "maxLength"},
    "integer": {"type", "maxDigits", "minimum"},
    "number": {"type", "maxDigits", "maxFractionDigits", "minimum"},
    "boolean": {"type"}, "null": {"type"},
    "array": {"type", "items", "minItems", "maxItems"},
}


def _bound(schema: dict, key: str, default: int, path: str, low: int = 0) -> int:
    value = schema.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 10_000:
        raise ValueError(f"schema{path}: {key} must be an integer in [{low}, 10000], "
                         f"got {value!r}")
    return value


def check_schema(schema: Any, path: str = "", depth: int = 0) -> None:
    """Raises ValueError naming the path of the first unsupported part of ``schema``."""
    if not isinstance(schema, dict):
        raise ValueError(f"schema{path} must be a dict, got {schema!r}")
    if "enum" in schema or "const" in schema:
        values = schema["enum"] if "enum" in schema else [schema["const"]]
        if set(schema) - {"enum", "const", "type"} or not isinstance(values, list) or not values:
            raise ValueError(f"schema{path}: enum must be a non-empty list (alone)")
        for v in values:
            json.dumps(v, allow_nan=False)  # a JSON value, or TypeError/ValueError
        return
    if "anyOf" in schema:
        if set(schema) != {"anyOf"} or not isinstance(schema["anyOf"], list) \
                or not schema["anyOf"]:
            raise ValueError(f"schema{path}: anyOf must be a non-empty list (alone)")
        for i, sub in enumerate(schema["anyOf"]):
            check_schema(sub, f"{path}.anyOf[{i}]", depth)
        return
    kind = schema.get("type")
    if kind not in _KEYWORDS:
        raise ValueError(f"schema{path}: type must be one of {sorted(_KEYWORDS)}, got {kind!r}")
    extra = set(schema) - _KEYWORDS[kind]
    if extra:
        raise ValueError(f"schema{path}: unsupported keyword(s) {sorted(extra)} for {kind}")
    if kind in ("object", "array"):
        if depth >= MAX_DEPTH:
            raise ValueError(f"schema{path}: nesting deeper than MAX_DEPTH={MAX_DEPTH}")
    if kind == "object":
        props = schema.get("properties", {})
        if not isinstance(props, dict) or not all(isinstance(k, str) for k in props):
            raise ValueError(f"schema{path}: properties must be a dict name -> schema")
        if "required" in schema and sorted(schema["required"]) != sorted(props):
            raise ValueError(f"schema{path}: required must list every property "
                             "(optional properties are not supported)")
        for name, sub in props.items():
            check_schema(sub, f"{path}.{name}", depth + 1)
    elif kind == "string":
        lo = _bound(schema, "minLength", 0, path)
        hi = _bound(schema, "maxLength", DEFAULT_MAX_LENGTH, path)
        if hi < lo:
            raise ValueError(f"schema{path}: maxLength {hi} < minLength {lo}")
    elif kind in ("integer", "number"):
        _bound(schema, "maxDigits", DEFAULT_DIGITS, path, low=1)
        if kind == "number":
            _bound(schema, "maxFractionDigits", DEFAULT_FRACTION_DIGITS, path)
        if schema.get("minimum", 0) != 0:
            raise ValueError(f"schema{path}: minimum must be 0 or absent")
    elif kind == "array":
        lo = _bound(schema, "minItems", 0, path)
        hi = _bound(schema, "maxItems", DEFAULT_MAX_ITEMS, path)
        if hi < lo:
            raise ValueError(f"schema{path}: maxItems {hi} < minItems {lo}")
        check_schema(schema.get("items", {}), f"{path}.items", depth + 1)


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _regex(schema: dict) -> str:
    if "enum" in schema or "const" in schema:
        values = schema["enum"] if "enum" in schema else [schema["const"]]
        return "(?:" + "|".join(regex.escape(_dump(v)) for v in values) + ")"
    if "anyOf" in schema:
        return "(?:" + "|".join(_regex(sub) for sub in schema["anyOf"]) + ")"
    kind = schema["type"]
    if kind == "object":  # {"k1":v1,"k2":v2}, schema order, no whitespace
        items = [regex.escape(_dump(name) + ":") + _regex(sub)
                 for name, sub in schema.get("properties", {}).items()]
        return "\\{" + ",".join(items) + "\\}"
    if kind == "string":
        lo = schema.get("minLength", 0)
        hi = schema.get("maxLength", DEFAULT_MAX_LENGTH)
        return f'"{_STRING_CLASS}{{{lo},{hi}}}"'
    if kind in ("integer", "number"):
        d = schema.get("maxDigits", DEFAULT_DIGITS)
        sign = "" if "minimum" in schema else "-?"
        digits = f"(?:0|[1-9][0-9]{{0,{d - 1}}})"
        if kind == "number":
            f = schema.get("maxFractionDigits", DEFAULT_FRACTION_DIGITS)
            frac = f"(?:\\.[0-9]{{1,{f}}})?" if f > 0 else ""
            return sign + digits + frac
        return sign + digits
    if kind == "boolean":
        return "(?:true|false)"
    if kind == "null":
        return "null"
    # array: [] or [v(,v){lo-1,hi-1}]
    lo = schema.get("minItems", 0)
    hi = schema.get("maxItems", DEFAULT_MAX_ITEMS)
    item = _regex(schema.get("items", {}))
    if hi == 0:
        return "\\[\\]"
    body = f"{item}(?:,{item}){{{max(lo - 1, 0)},{hi - 1}}}"
    return f"\\[(?:{body})\\]" if lo > 0 else f"\\[(?:{body})?\\]"


def schema_regex(schema: dict) -> str:
    """The regular expression of ``schema``'s compact serialisations (module docstring).

    Args:
      schema: a bounded JSON schema (dict) of the supported vocabulary.

    Returns:
      a pattern for :func:`~genjax.autoregressive.decoding.constrained.from_regex`, also
      valid for Python's ``re.fullmatch`` (the tests hold the two to each other).
    """
    check_schema(schema)
    return _regex(schema)


def from_json_schema(schema: dict, vocabulary: Sequence[str], *,
                     eos_id: int | None = None) -> constrained.Automaton:
    """The token automaton of ``schema``'s serialisations, for ``generate(constraint=)``.

    Args:
      schema: a bounded JSON schema (see the module docstring).
      vocabulary: V strings, ``vocabulary[v]`` the text of token ``v``.
      eos_id: the end-of-sequence token (allowed exactly when the text is complete).

    Returns:
      a pruned :class:`~genjax.autoregressive.decoding.constrained.Automaton`.

    Example:
      >>> a = from_json_schema({"type": "boolean"}, [*"truefals", "<eos>"], eos_id=8)
      >>> type(a).__name__
      'Automaton'
    """
    return constrained.from_regex(schema_regex(schema), vocabulary, eos_id=eos_id)


def validate(value: Any, schema: dict) -> bool:
    """Is the (parsed) JSON ``value`` an instance of ``schema``? A small validator of the
    supported vocabulary, written from JSON Schema's definitions (not from the regex)."""
    if "enum" in schema or "const" in schema:
        values = schema["enum"] if "enum" in schema else [schema["const"]]
        return any(_dump(value) == _dump(v) for v in values)
    if "anyOf" in schema:
        return any(validate(value, sub) for sub in schema["anyOf"])
    kind = schema["type"]
    if kind == "object":
        props = schema.get("properties", {})
        return isinstance(value, dict) and set(value) == set(props) and all(
            validate(value[k], sub) for k, sub in props.items())
    if kind == "string":
        return isinstance(value, str) and schema.get("minLength", 0) <= len(value) <= \
            schema.get("maxLength", DEFAULT_MAX_LENGTH)
    if kind in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if kind == "integer" and not isinstance(value, int):
            return False
        if not math.isfinite(value) or value < schema.get("minimum", -math.inf):
            return False
        if abs(value) >= 10 ** schema.get("maxDigits", DEFAULT_DIGITS):
            return False
        f = schema.get("maxFractionDigits", DEFAULT_FRACTION_DIGITS)
        return kind == "integer" or round(value, f) == value
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    return isinstance(value, list) and schema.get("minItems", 0) <= len(value) <= \
        schema.get("maxItems", DEFAULT_MAX_ITEMS) and all(
            validate(v, schema.get("items", {})) for v in value)
