"""Timing harness shared by every benchmark suite.

What is measured, and why:

* ``compile_s`` — the first call of a jitted function: tracing, XLA compilation and one run.
  Reported apart, because a user pays it once per shape, not per call.
* ``run_s`` — the median of ``repeats`` (>= 5) further calls, each ended by
  ``jax.block_until_ready`` so that JAX's asynchronous dispatch cannot hide work. The median,
  not the mean, because a shared machine produces occasional slow outliers.

Host (NumPy, PyTorch) code is timed the same way, with ``compile_s`` = its first call.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# The published tables live in the source tree's benchmarks/results/ (never in the wheel).
# In a source checkout (an editable install) this file is <root>/genjax/bench/harness.py and
# <root> holds pyproject.toml and benchmarks/results/: results go there, whatever the working
# directory. An installed wheel (site-packages) has no such root, and nothing is ever written
# into site-packages: results go to ./benchmarks/results under the working directory.
# `--out DIR` (python -m genjax.bench, genjax bench) overrides both.
_ROOT = Path(__file__).resolve().parents[2]
_IS_CHECKOUT = (_ROOT / "pyproject.toml").is_file() and (_ROOT / "benchmarks" / "results").is_dir()
RESULTS_DIR = (_ROOT if _IS_CHECKOUT else Path.cwd()) / "benchmarks" / "results"


@dataclasses.dataclass(frozen=True)
class Timing:
    compile_s: float  # first call: trace + compile + one run (host code: first call)
    run_s: float  # median steady-state seconds per call


@dataclasses.dataclass(frozen=True)
class Row:
    suite: str
    case: str  # the workload, e.g. "ddim-50 on ring-4096"
    impl: str  # "genjax", "oracle (numpy)", "scikit-learn", "diffusers (torch)", ...
    compile_s: float | None
    run_s: float
    extra: dict = dataclasses.field(default_factory=dict)  # quality figures, ratios, notes


def _block(out: Any) -> Any:
    import jax

    return jax.block_until_ready(out)


def _time(call: Callable[[], Any], repeats: int, finish: Callable[[Any], Any]) -> Timing:
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    start = time.perf_counter()
    finish(call())
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        finish(call())
        times.append(time.perf_counter() - start)
    return Timing(compile_s=first, run_s=statistics.median(times))


def time_jax(fn: Callable, *args: Any, repeats: int = 5, **kwargs: Any) -> Timing:
    """Times a jitted ``fn(*args, **kwargs)``: first call apart, then the median of ``repeats``."""
    return _time(lambda: fn(*args, **kwargs), repeats, _block)


def time_host(fn: Callable, *args: Any, repeats: int = 5, **kwargs: Any) -> Timing:
    """Times host code (NumPy, scikit-learn, PyTorch on CPU) the same way."""
    return _time(lambda: fn(*args, **kwargs), repeats, lambda out: out)


def machine() -> dict:
    """What the numbers were measured on."""
    import jax

    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
    }
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def table(rows: Sequence[Row]) -> str:
    """A plain-text table; within each case, each row's speed relative to genjax."""
    genjax_time = {r.case: r.run_s for r in rows if r.impl == "genjax"}
    header = f"{'case':<38} {'impl':<24} {'compile':>10} {'run':>10} {'vs genjax':>10}  extra"
    lines = [header, "-" * len(header)]
    for r in rows:
        ref = genjax_time.get(r.case)
        ratio = f"{r.run_s / ref:.1f}x" if ref and r.impl != "genjax" else ""
        extra = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.extra.items()
        )
        lines.append(
            f"{r.case:<38} {r.impl:<24} {_fmt(r.compile_s):>10} {_fmt(r.run_s):>10} "
            f"{ratio:>10}  {extra}"
        )
    return "\n".join(lines)


def report(suite: str, rows: Sequence[Row], notes: str = "", out_dir: Path | None = None) -> Path:
    """Prints the table and writes ``<out_dir>/<suite>.json`` (rows, machine, notes)."""
    out_dir = RESULTS_DIR if out_dir is None else Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"\n== {suite} ==")
    print(table(rows))
    if notes:
        print(notes)
    path = out_dir / f"{suite}.json"
    payload = {
        "suite": suite,
        "measured": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        "notes": notes,
        "rows": [dataclasses.asdict(r) for r in rows],
    }
    path.write_text(json.dumps(payload, indent=2, default=float) + "\n", encoding="utf-8")
    return path
