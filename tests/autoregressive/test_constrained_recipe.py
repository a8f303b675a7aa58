"""The json-lm recipe, shrunk: a tiny schema and network, a few training steps through
genjax.train.fit, the report's figures (constrained samples always parse and validate)."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from genjax import train
from genjax.autoregressive import json_lm
from genjax.autoregressive import recipes as rn
from genjax.autoregressive.decoding import json_schema as js

TINY_SCHEMA = {"type": "object", "properties": {
    "a": {"type": "integer", "maxDigits": 1, "minimum": 0}, "b": {"type": "boolean"}}}


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setattr(rn, "EVAL_WINDOWS", 16)
    for name, value in (("LM_CONTEXT", 24), ("LM_DIM", 8), ("LM_HEADS", 2), ("LM_LAYERS", 1)):
        monkeypatch.setattr(rn, name, value)
    monkeypatch.setattr(json_lm, "SCHEMA", TINY_SCHEMA)
    monkeypatch.setattr(json_lm, "REPORT_SAMPLES", 8)
    monkeypatch.setattr(json_lm, "GRAMMAR_DEPTH", 2)
    monkeypatch.setattr(json_lm, "TIMING_REPEATS", 1)


def test_json_lm_recipe_trains_and_reports(tmp_path, small):
    recipe = {r.name: r for r in rn.RECIPES}["json-lm"]
    train_data = recipe.load_data(recipe.data, "train", 0)
    test_data = recipe.load_data(recipe.data, "test", 0)[:16]
    assert train_data.shape[1] == 25
    text = "".join(rn.data_lib.decode_text(w) for w in train_data[::4][:400])
    assert '{"a":' in text  # records are in the corpus
    res = train.fit(recipe, train_data[:64], key=jax.random.key(0), out_dir=tmp_path, steps=3,
                    batch_size=8, progress=False, test_data=test_data)
    s = res.summary
    assert (tmp_path / "samples.png").stat().st_size > 0
    # the masks' guarantees: every constrained record parses; the schema's also validate
    assert s["parse_rate_schema"] == 1.0 and s["valid_rate_schema"] == 1.0
    assert s["parse_rate_grammar"] == 1.0
    # 3 steps of training: the plain model rarely writes a whole record
    assert s["parse_rate_plain"] < 1.0
    assert all(np.isfinite(s[f"ms_per_step_{k}"]) and s[f"ms_per_step_{k}"] > 0
               for k in ("plain", "schema", "grammar"))
    texts = recipe.sample(jax.random.key(1), res.params, 8, mask="schema")
    assert all(js.validate(json.loads(t), TINY_SCHEMA) for t in texts)
    with pytest.raises(ValueError, match="mask"):
        recipe.sample(jax.random.key(1), res.params, 2, mask="regex")
