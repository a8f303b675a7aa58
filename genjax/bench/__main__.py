"""``python -m genjax.bench [SUITE ...] [--quick] [--out DIR]`` — run benchmark suites."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path

from genjax.bench import harness

_NOT_SUITES = {"harness", "__main__", "report"}  # helpers, not suites


def available() -> list[str]:
    """Suite names: every module of this package but the harness, the report and this one."""
    here = Path(__file__).resolve().parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name not in _NOT_SUITES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m genjax.bench",
        description="Time genjax's jitted code against its NumPy oracle and peer libraries.",
    )
    parser.add_argument("suites", nargs="*", help=f"suites to run (default: all): {available()}")
    parser.add_argument("--quick", action="store_true", help="smaller workloads, for a smoke run")
    parser.add_argument("--out", type=Path, default=None, help="directory for the JSON results")
    args = parser.parse_args(argv)
    names = args.suites or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f"unknown suite(s) {unknown}; available: {available()}", file=sys.stderr)
        return 2
    for name in names:
        load_start, start = harness.load_average(), time.perf_counter()
        module = importlib.import_module(f"genjax.bench.{name}")
        rows = module.run(quick=args.quick)
        if hasattr(module, "draw"):  # a suite's picture, beside its results
            module.draw(rows, harness.RESULTS_DIR if args.out is None else args.out)
        harness.report(
            name,
            rows,
            notes=getattr(module, "NOTES", ""),
            out_dir=args.out,
            load_start=load_start,
            wall_s=time.perf_counter() - start,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
