"""The ``json-lm`` recipe: a character transformer on text with JSON records, decoded
plainly, under the record schema's automaton, and under the JSON grammar.

Data: the built-in text with one record line after each paragraph
(:func:`genjax.autoregressive.json_records.corpus_with_records`, records drawn from
:data:`SCHEMA`), windows of 128 characters; the network is ``char-lm``'s (2 layers, 64
wide). The report prompts with a newline and ``{`` -- the opening of a record -- and
continues ``REPORT_SAMPLES`` times up to the newline (EOS) three ways:

* ``plain``: unconstrained sampling (temperature 1);
* ``schema``: masked by the automaton of the schema's serialisations
  (:func:`~genjax.autoregressive.decoding.json_schema.schema_regex` without its opening
  brace, :mod:`~genjax.autoregressive.decoding.constrained`);
* ``grammar``: masked by the pushdown automaton of arbitrary JSON
  (:data:`~genjax.autoregressive.decoding.grammar.JSON_GRAMMAR`, an object's rest).

Figures: for each, the fraction of samples that parse (``json.loads`` of ``{`` + the
sample) and that validate against the schema
(:func:`~genjax.autoregressive.decoding.json_schema.validate`); the milliseconds per
decoding step of each (compile excluded, median of five interleaved rounds, divided by
the steps the loop ran), their ratio to plain decoding; and the held-out bits per
character. The schema mask guarantees parse and validate rates of 1, the grammar mask a
parse rate of 1.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from genjax import data as data_lib
from genjax.autoregressive import json_records, loss
from genjax.autoregressive.decoding import constrained, generate, json_schema
from genjax.autoregressive.decoding import grammar as gr
from genjax.recipe import Recipe

SCHEMA: dict = json_records.RECORD_SCHEMA
DATA = "text-records"  # the default data name: text + records, made from the seed
PROMPT = "\n{"
REPORT_SAMPLES = 32
GRAMMAR_DEPTH = 8  # stack frames of the JSON grammar mask (open objects/arrays)
TIMING_REPEATS = 5


def _windows(name: str, split: str, seed: int) -> np.ndarray:
    """(n, LM_CONTEXT + 1) windows of the text with records (or of ``genjax.data``'s
    ``name``); the first 90% of the characters train, the rest test."""
    from genjax.autoregressive import recipes

    if name == DATA:
        ids = data_lib.encode_text(json_records.corpus_with_records(seed, SCHEMA))
    else:
        ids = np.asarray(data_lib.load(name, split="train", seed=seed), np.int32)
    cut = int(0.9 * len(ids))
    ids = np.asarray(ids[:cut] if split == "train" else ids[cut:], np.int32)
    length = recipes.LM_CONTEXT
    stride = recipes.LM_STRIDE if split == "train" else length
    starts = np.arange(0, len(ids) - length - 1, stride)
    return ids[starts[:, None] + np.arange(length + 1)[None, :]]


def _init(key: jax.Array, train_data: Any):
    from genjax.autoregressive import recipes

    return recipes._init_lm(key, train_data)


def _optimizer(total_steps: int):
    from genjax.autoregressive import recipes

    return recipes._lm_optimizer(total_steps)


def constraints(vocab_size: int) -> dict:
    """The two masks for continuations of ``PROMPT``: ``{"schema": Automaton,
    "grammar": Grammar}`` over the text vocabulary (EOS = newline, id 0)."""
    vocab = data_lib.text_vocabulary()[:vocab_size]
    eos = data_lib.text_vocabulary().index("\n")
    pattern = json_schema.schema_regex(SCHEMA)
    assert pattern.startswith("\\{")  # an object: the prompt wrote its brace
    rules = dict(gr.JSON_GRAMMAR, record=gr.JSON_GRAMMAR["object"][2:])
    return {"schema": constrained.from_regex(pattern[2:], vocab, eos_id=eos),
            "grammar": gr.from_grammar(rules, vocab, start="record", eos_id=eos,
                                       max_depth=GRAMMAR_DEPTH)}


def _decode(key, params, n: int, constraint, temperature: float = 1.0) -> np.ndarray:
    prompt = jnp.tile(jnp.asarray(data_lib.encode_text(PROMPT), jnp.int32)[None], (n, 1))
    eos = data_lib.text_vocabulary().index("\n")
    return np.asarray(generate(key, params, prompt, max_new_tokens=params.max_len - len(PROMPT),
                               temperature=temperature, eos_id=eos, constraint=constraint))


def _texts(tokens: np.ndarray) -> list[str]:
    """Each row up to its first newline, after the prompt's ``{``."""
    return ["{" + data_lib.decode_text(row).split("\n")[0] for row in tokens]


def _sample(key: jax.Array, params, n: int, *, mask: str = "schema",
            temperature: float = 1.0) -> list[str]:
    """``n`` records: ``{`` + a continuation up to the newline, with ``mask`` one of
    "none", "schema", "grammar"."""
    masks = constraints(params.vocab_size)
    if mask not in ("none", *masks):
        raise ValueError(f"mask must be one of none, schema, grammar; got {mask!r}")
    return _texts(_decode(key, params, n, masks.get(mask), temperature))


def _parses_and_validates(text: str) -> tuple[bool, bool]:
    try:
        value = json.loads(text)
    except ValueError:
        return False, False
    return True, json_schema.validate(value, SCHEMA)


def _steps_run(tokens: np.ndarray) -> int:
    """Steps the loop ran: until the last row's first newline (EOS), or all of them."""
    eos = data_lib.text_vocabulary().index("\n")
    ended = np.where((tokens == eos).any(1), np.argmax(tokens == eos, axis=1) + 1,
                     tokens.shape[1])
    return int(ended.max())


def _ms_per_step(calls: dict) -> tuple[dict, dict]:
    """Median milliseconds per loop step of each ``calls[name]()`` (compile excluded): the
    calls are timed in interleaved rounds, so a change in the machine's load hits all of
    them alike. Returns (ms per step, tokens) by name."""
    tokens = {name: np.asarray(fn()) for name, fn in calls.items()}  # compile
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(TIMING_REPEATS):
        for name, fn in calls.items():
            start = time.perf_counter()
            np.asarray(fn())
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * float(np.median(times[name])) / _steps_run(tokens[name])
            for name in calls}, tokens


def _report(key, params, train_data, test_data, out_dir) -> dict:
    from genjax import plotting
    from genjax.autoregressive import recipes

    masks = {"plain": None, **constraints(params.vocab_size)}
    keys = {name: jax.random.fold_in(key, i) for i, name in enumerate(masks)}
    calls = {name: (lambda k=keys[name], mask=mask: _decode(k, params, REPORT_SAMPLES, mask))
             for name, mask in masks.items()}
    ms, tokens = _ms_per_step(calls)
    figures, lines = {}, []
    for name in masks:
        texts = _texts(tokens[name])
        verdicts = [_parses_and_validates(t) for t in texts]
        figures[f"parse_rate_{name}"] = float(np.mean([p for p, _ in verdicts]))
        figures[f"valid_rate_{name}"] = float(np.mean([v for _, v in verdicts]))
        figures[f"ms_per_step_{name}"] = ms[name]
        lines += [f"[{name}] {t}" for t in texts[:4]]
    for name in ("schema", "grammar"):
        figures[f"mask_cost_ratio_{name}"] = figures[f"ms_per_step_{name}"] / \
            figures["ms_per_step_plain"]
    plotting.text_dump(lines, Path(out_dir) / "samples.png", title="json-lm: records")
    figures["test_bits_per_char"] = recipes._bits_per_char({"lm": params}, test_data)["lm"]
    return figures


RECIPE = Recipe(
    name="json-lm", family="autoregressive",
    summary="char transformer on text with JSON records; parse/validate rates of plain, "
            "schema-masked and grammar-masked sampling, and the mask's per-step cost",
    data=DATA, init=_init, sample=_sample, report=_report, loss=loss.next_token_loss,
    steps=1500, batch_size=16, learning_rate=3e-3, optimizer=_optimizer,
    load_data=_windows, sample_options=("mask", "temperature"))
