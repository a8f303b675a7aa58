"""Timing harness shared by every benchmark suite.

What is measured, and why:

* ``compile_s`` — the first call of a jitted function: tracing, XLA compilation and one run.
  Reported apart, because a user pays it once per shape, not per call.
* ``run_s`` — the median of ``repeats`` (>= 5) further calls, each ended by
  ``jax.block_until_ready`` so that JAX's asynchronous dispatch cannot hide work. The median,
  not the mean, because a shared machine produces occasional slow outliers.

Host (NumPy, PyTorch) code is timed the same way, with ``compile_s`` = its first call.

* ``time_paired`` — genjax against a peer on a shared machine: the two sides alternate
  (a block of calls of one, then of the other, ``pairs`` times), and the ratio reported is
  the median of the per-pair ratios, so that a drift in the machine's speed cancels.

Every results file names what it was measured on (:func:`machine`: the CPU model, its
cores, the load average when the suite started and when it ended) and the versions of the
libraries the suite used (:func:`library_versions`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
import sys
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


@dataclasses.dataclass(frozen=True)
class Paired:
    """Two implementations timed in alternation (see :func:`time_paired`)."""

    a: Timing  # the first side (genjax): first call, median of all its timed calls
    b: Timing  # the second side (the peer), likewise
    ratio: float  # median over the pairs of b_i / a_i: > 1 means a is faster
    pairs: int


def time_paired(
    fn_a: Callable[[], Any], fn_b: Callable[[], Any], *, pairs: int = 3, repeats: int = 3
) -> Paired:
    """Times two zero-argument calls side by side: ``a`` then ``b``, ``pairs`` times.

    Each side's first call is its ``compile_s``. Then, ``pairs`` times, ``repeats`` calls of
    ``a`` and ``repeats`` calls of ``b`` (each ended by ``jax.block_until_ready``, which
    passes NumPy and PyTorch results through); a pair's figure for each side is the median
    of its block, and ``ratio`` is the median over the pairs of ``b_i / a_i``.
    """
    if pairs < 1 or repeats < 1:
        raise ValueError(f"pairs and repeats must be >= 1, got pairs={pairs}, repeats={repeats}")
    firsts, blocks = [], ([], [])
    for fn in (fn_a, fn_b):
        start = time.perf_counter()
        _block(fn())
        firsts.append(time.perf_counter() - start)
    for _ in range(pairs):
        for fn, block in zip((fn_a, fn_b), blocks, strict=True):
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                _block(fn())
                times.append(time.perf_counter() - start)
            block.append(statistics.median(times))
    ratio = statistics.median(b / a for a, b in zip(*blocks, strict=True))
    return Paired(
        Timing(firsts[0], statistics.median(blocks[0])),
        Timing(firsts[1], statistics.median(blocks[1])),
        ratio,
        pairs,
    )


#: Distributions whose versions a results file names when the suite imported them.
LIBRARIES = (
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "numpy",
    "scipy",
    "torch",
    "diffusers",
    "transformers",
    "blackjax",
    "scikit-learn",
    "distrax",
)
_MODULE_OF = {"scikit-learn": "sklearn"}  # distribution name -> module name where they differ


def library_versions(only_imported: bool = True) -> dict[str, str]:
    """Installed versions of :data:`LIBRARIES` (jax, jaxlib and numpy always; the rest only
    when this process imported them, i.e. when the suite used them)."""
    from importlib import metadata

    versions = {}
    for name in LIBRARIES:
        module = _MODULE_OF.get(name, name)
        if only_imported and name not in ("jax", "jaxlib", "numpy") and module not in sys.modules:
            continue
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def load_average() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages (runnable processes), None where unknown."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def machine(load_start: list[float] | None = None) -> dict:
    """What the numbers were measured on: CPU model, cores, load at start and end, devices."""
    import jax

    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "load_start": load_start,
        "load_end": load_average(),
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


def report(
    suite: str,
    rows: Sequence[Row],
    notes: str = "",
    out_dir: Path | None = None,
    *,
    load_start: list[float] | None = None,
    wall_s: float | None = None,
) -> Path:
    """Prints the table and writes ``<out_dir>/<suite>.json``.

    The file holds the rows, the notes, the machine (with ``load_start``, the load average
    taken before the suite ran, and the load now), the libraries' versions and the suite's
    ``wall_s`` (seconds, all of it: imports, compiles, every implementation).
    """
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
        "machine": machine(load_start),
        "libraries": library_versions(),
        "wall_s": wall_s,
        "notes": notes,
        "rows": [dataclasses.asdict(r) for r in rows],
    }
    path.write_text(json.dumps(payload, indent=2, default=float) + "\n", encoding="utf-8")
    return path
