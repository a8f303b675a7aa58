"""The benchmark harness: compile apart from steady state, a table, a JSON file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

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
    # the machine and the library versions are named; the load at the end is taken now
    assert payload["machine"]["cores_usable"] >= 1 and len(payload["machine"]["load_end"]) == 3
    assert {"jax", "jaxlib", "numpy"} <= set(payload["libraries"])


def test_time_paired_alternates_and_takes_the_median_ratio():
    calls = []

    def fast():
        calls.append("a")
        time.sleep(0.002)

    def slow():
        calls.append("b")
        time.sleep(0.008)

    paired = harness.time_paired(fast, slow, pairs=3, repeats=2)
    # first calls of each, then blocks of two, alternating: a b aa bb aa bb aa bb
    assert "".join(calls) == "ab" + "aabb" * 3
    assert paired.pairs == 3 and paired.a.run_s < paired.b.run_s
    assert 2.0 < paired.ratio < 6.0  # 8 ms / 2 ms, with room for a slow sleep


def test_suites_are_discovered():
    names = available()
    assert "harness" not in names
    assert {"mixture", "counting"} <= set(names)


def test_results_dir_of_a_checkout_and_of_an_installed_copy(tmp_path):
    # In this checkout (editable install) results go to <root>/benchmarks/results, whatever
    # the working directory.
    root = Path(harness.__file__).resolve().parents[2]
    assert harness.RESULTS_DIR == root / "benchmarks" / "results"
    # An installed copy (no checkout around it, read-only like site-packages) writes into
    # ./benchmarks/results of the working directory and nothing beside itself.
    site = tmp_path / "site"
    shutil.copytree(root / "genjax", site / "genjax", ignore=shutil.ignore_patterns("__pycache__"))
    for path in site.rglob("*"):
        path.chmod(0o555 if path.is_dir() else 0o444)
    work = tmp_path / "work"
    work.mkdir()
    code = (
        "from genjax.bench import harness; "
        "print(harness.__file__); "
        "print(harness.report('probe', [harness.Row('probe', 'c', 'genjax', None, 1.0)]))"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=work,
            env=env,
            text=True,
            capture_output=True,
            check=True,
        ).stdout.splitlines()
    finally:
        for path in site.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert out[0] == str(site / "genjax" / "bench" / "harness.py")
    assert out[-1] == str(work / "benchmarks" / "results" / "probe.json")
    assert (work / "benchmarks" / "results" / "probe.json").is_file()
    assert not list(site.rglob("*.json"))


def test_python_m_genjax_bench_help():
    out = subprocess.run(
        [sys.executable, "-m", "genjax.bench", "--help"], text=True, capture_output=True, check=True
    ).stdout
    assert "--quick" in out and "--out" in out and "ode" in out
