"""The benchmark harness: compile apart from steady state, a table, a JSON file."""

from __future__ import annotations

import json
import time

import jax
import jax.numpy as jnp

from genjax.bench import harness
from genjax.bench.__main__ import available


def test_time_jax_separates_compile_from_run():
    @jax.jit
    def f(x):
        return jnp.sin(x) @ jnp.cos(x).T

    timing = harness.time_jax(f, jnp.ones((64, 64)), repeats=5)
    assert timing.run_s > 0
    # The first call traces and compiles: it costs more than a steady-state call.
    assert timing.compile_s > timing.run_s


def test_time_host_measures_the_call():
    timing = harness.time_host(time.sleep, 0.01, repeats=5)
    assert 0.009 < timing.run_s < 0.2


def test_report_writes_table_and_json(tmp_path, capsys):
    rows = [
        harness.Row("demo", "case-a", "genjax", 0.5, 0.001, {"energy": 0.01}),
        harness.Row("demo", "case-a", "oracle (numpy)", None, 0.1),
    ]
    path = harness.report("demo", rows, notes="a note", out_dir=tmp_path)
    text = capsys.readouterr().out
    assert "100.0x" in text  # the oracle row is 100 times slower than genjax
    payload = json.loads(path.read_text())
    assert payload["rows"][0]["run_s"] == 0.001
    assert payload["machine"]["cpu_count"] >= 1
    assert payload["notes"] == "a note"


def test_suites_are_discovered():
    names = available()
    assert "harness" not in names
    assert {"mixture", "counting"} <= set(names)
