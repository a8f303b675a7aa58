"""The published tables: the README's benchmark block is what the generator makes of the
committed results, and the renderer puts each figure in its column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genjax.bench import harness, report

ROOT = Path(report.__file__).resolve().parents[2]


def test_readme_block_is_generated_from_the_committed_results():
    # A hand edit of the block, or results committed without rerunning the generator, fail.
    assert report.rewrite_readme(ROOT / "README.md", harness.RESULTS_DIR, check=True), (
        "README's benchmark block is stale: python -m genjax.bench.report --readme README.md"
    )


def _payload(rows: list[dict]) -> dict:
    return {
        "suite": "demo",
        "measured": "2026-12-05 08:00:00 UTC",
        "machine": {
            "cpu_model": "Test CPU",
            "cpu_count": 2,
            "load_start": [0.1, 0, 0],
            "load_end": [0.3, 0, 0],
        },
        "libraries": {"jax": "0.10.2", "torch": "2.13.0"},
        "notes": "",
        "rows": rows,
    }


def _row(case, impl, run_s, compile_s=None, **extra):
    return {
        "suite": "demo",
        "case": case,
        "impl": impl,
        "compile_s": compile_s,
        "run_s": run_s,
        "extra": extra,
    }


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_suite_table_columns_and_ratios():
    rows = [
        _row("case-a", "genjax", 0.002, 0.5),
        _row("case-a", "oracle (numpy f64)", 0.1),
        _row("case-a", "torch", 0.006),  # no pairs: ratio of the medians, 3x
        _row("case-b", "genjax", 0.004, 0.25),
        _row("case-b", "numpy (np.unique)", 0.002, ratio=0.45, pairs=3),  # paired ratio wins
        _row("case-b", "genjax (sort every order)", 0.008, 0.3),
        _row("quality x nfe=5", "genjax", 0.001, 0.1, figure_only=True),
    ]
    lines = report.suite_table(_payload(rows)).splitlines()
    assert _cells(lines[0])[:3] == ["workload", "genjax (steady state)", "genjax compile"]
    body = [_cells(line) for line in lines[2:]]
    assert len(body) == 3  # the figure-only row is left out
    assert body[0] == ["case-a", "2 ms", "500 ms", "100 ms", "torch: 6 ms", "3.00x"]
    assert body[1] == [
        "case-b",
        "4 ms",
        "250 ms",
        "-",
        "numpy (np.unique): 2 ms",
        "0.45x (3 pairs)",
    ]
    # a genjax variant gets its own line, its ratio from the medians (0.002 / 0.008)
    assert body[2][0] == "case-b (sort every order)" and body[2][-1] == "0.25x"


def test_markdown_tables_names_the_machine_and_versions(tmp_path):
    (tmp_path / "demo.json").write_text(json.dumps(_payload([_row("c", "genjax", 1.5, 2.0)])))
    (tmp_path / "demo_quality.png").write_bytes(b"")
    text = report.markdown_tables(tmp_path, images="benchmarks/results")
    assert "#### demo" in text and "Test CPU, 2 cores" in text
    assert "load 0.10 at start, 0.30 at end" in text and "torch 2.13.0" in text
    assert "| c | 1.5 s | 2 s |" in text
    assert "![demo_quality](benchmarks/results/demo_quality.png)" in text
    with pytest.raises(ValueError, match="results_dir"):
        report.markdown_tables(tmp_path / "empty")


def test_rewrite_readme_touches_only_the_block(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "demo.json").write_text(json.dumps(_payload([_row("c", "genjax", 0.01)])))
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\nbefore\n{report.BEGIN}\nold table\n{report.END}\nafter\n")
    assert not report.rewrite_readme(readme, results, check=True)  # stale, left alone
    assert "old table" in readme.read_text()
    assert report.main(["--readme", str(readme), "--results", str(results), "--check"]) == 1
    assert not report.rewrite_readme(readme, results)
    text = readme.read_text()
    assert text.startswith("# Title\nbefore\n") and text.endswith(f"{report.END}\nafter\n")
    assert "old table" not in text and "| c | 10 ms |" in text
    assert report.rewrite_readme(readme, results, check=True)  # now current
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="readme"):
        report.rewrite_readme(readme, results)


def test_diffusion_quality_picture_and_respaced_ddpm(tmp_path):
    import numpy as np

    from genjax.bench import diffusion as bench
    from genjax.diffusion import oracle

    betas = oracle.linear_betas(1000, 1e-4, 0.02)
    np.testing.assert_allclose(np.asarray(bench._respaced(betas, 1000).betas), betas, rtol=1e-5)
    # respaced to 5 steps: the same alpha_bar at the kept times, the last one included
    short = np.cumprod(1 - np.asarray(bench._respaced(betas, 5).betas, np.float64))
    np.testing.assert_allclose(short[-1], np.cumprod(1 - betas)[-1], rtol=1e-4)
    rows = [
        harness.Row(
            "diffusion",
            f"quality {s} nfe={m}",
            "genjax",
            0.1,
            0.001,
            {"energy_distance": e / m, "noise_floor": 0.002, "figure_only": True},
        )
        for s, e in (("ddpm", 1.0), ("heun", 0.2))
        for m in (5, 10, 20)
    ] + [harness.Row("diffusion", "ddim-50 ring-4096", "genjax", 0.1, 0.004, {})]
    path = bench.draw(rows, tmp_path)
    assert path.endswith(bench.PICTURE) and (tmp_path / bench.PICTURE).stat().st_size > 1000
    assert bench.draw(rows[-1:], tmp_path / "none") is None
