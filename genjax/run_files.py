"""What the trainer writes into a run directory besides checkpoints, and how.

* ``metrics.jsonl``: appended one row a logged step, read back up to a resumed step (a
  line torn by a hard kill is skipped);
* ``config.json``, ``summary.json``: written whole through a temporary file and a rename,
  so that Ctrl-C or a crash leaves the old file or the new one, never a torn one;
* the progress bar (tqdm), redrawn a few times a second on a terminal and every 10 s in a log;
* :func:`check_finite`, the trainer's check of its data before anything is written, and
  :func:`check_loaded`, the same check of a user's file as ``genjax.data.load`` reads it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import numpy as np


def check_finite(name: str, data: Any) -> None:
    """Raises ``ValueError`` (one line) when a floating array of ``data`` holds NaN or inf.

    Args:
      name: what to call the data in the message (``"data"``, ``"test_data"``).
      data: an array or a pytree of arrays with a leading example axis ``(n, ...)``;
        integer leaves (labels, token ids) are not checked.

    The message gives the number of non-finite values and the first one's index, so that
    the bad example can be found: ``data: 3 non-finite values (NaN or inf) of 40; the first
    is nan at index (5, 1), example 5``.
    """
    leaves, _ = jax.tree_util.tree_flatten_with_path(data)
    for path, leaf in leaves:
        arr = np.asarray(leaf)
        if not np.issubdtype(arr.dtype, np.inexact):
            continue
        bad = ~np.isfinite(arr)
        count = int(np.count_nonzero(bad))
        if count == 0:
            continue
        first = np.unravel_index(int(np.argmax(bad.ravel())), arr.shape)
        where = jax.tree_util.keystr(path) if path else ""
        index = tuple(int(i) for i in first)
        raise ValueError(
            f"{name}{where}: {count} non-finite value{'s' if count != 1 else ''} (NaN or "
            f"inf) of {arr.size}; the first is {arr[first]} at index {index}, example "
            f"{index[0] if index else 0}; training needs finite data"
        )


def check_loaded(path: str, array: np.ndarray) -> np.ndarray:
    """A user's data file as loaded (``genjax.data.load``): refused in one line when it has
    no example axis (a single value) or holds NaN or inf -- before any recipe quantises or
    windows it, where a NaN would turn into an arbitrary integer."""
    if np.ndim(array) == 0:
        raise ValueError(f"file {path!r} holds one value, shape (); data needs (n, ...)")
    check_finite(f"file {path!r}", array)
    return array


def read_history(path: Path, upto_step: int) -> list[dict]:
    """The logged rows up to ``upto_step``; a line torn by a hard kill is skipped."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and row.get("step", upto_step + 1) <= upto_step:
            rows.append(row)
    return rows


def write_atomically(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file and a rename, so that a Ctrl-C
    or a crash leaves the old content or the new, never a torn file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def read_seconds(path: Path, step: int) -> float:
    """Training seconds an earlier call spent up to the checkpoint of ``step`` (0 if unknown).

    ``train_seconds.json`` maps each saved step to the cumulative training time at that save,
    so a resumed run's ``summary.json`` reports the whole run's training time, not the last
    segment's (and a finished run resumed only to rewrite its report keeps its time)."""
    try:
        return float(json.loads(path.read_text(encoding="utf-8")).get(str(step), 0.0))
    except (OSError, ValueError, AttributeError):
        return 0.0


def write_seconds(path: Path, step: int, seconds: float) -> None:
    """Records the cumulative training ``seconds`` at the checkpoint of ``step``."""
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
        table = table if isinstance(table, dict) else {}
    except (OSError, ValueError):
        table = {}
    table[str(step)] = seconds
    write_atomically(path, json.dumps(table, indent=1) + "\n")


def jsonable(value: Any) -> Any:
    """``value`` with arrays and NumPy scalars turned into lists and numbers (for JSON)."""
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    arr = np.asarray(value)
    return arr.item() if arr.ndim == 0 else arr.tolist()


class _NoLog:
    def write(self, text: str) -> None:
        del text

    def flush(self) -> None:
        return None

    def __enter__(self) -> _NoLog:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def log_file(path: Path, *, enabled: bool):
    """The metrics log opened for appending, or a sink that drops writes when not ``enabled``."""
    return path.open("a", encoding="utf-8") if enabled else _NoLog()


class _NoBar:
    def update(self, n: int) -> None:
        del n

    def set_postfix(self, **kwargs: Any) -> None:
        del kwargs

    def close(self) -> None:
        return None


def progress_bar(name: str, start: int, total: int, *, enabled: bool):
    """A tqdm bar from ``start`` to ``total`` steps on stderr, or a silent one."""
    if not enabled:
        return _NoBar()
    import sys

    from tqdm.auto import tqdm

    # Redrawn a few times a second on a terminal; in a log file, one line every 10 seconds.
    interval = 0.1 if sys.stderr.isatty() else 10.0
    return tqdm(total=total, initial=start, desc=f"train {name}", unit="step",
                dynamic_ncols=True, mininterval=interval)


NOT_APPLICABLE = "not applicable"


def label_data_figures(figures: dict, recipe_data: str, data_figures: tuple[str, ...],
                       data_name: str | None) -> dict:
    """A recipe's ``data_figures`` describe its built-in data ``recipe_data`` (the ring's
    true log-likelihood, its 8 modes): on other data (``data_name``) they are labelled "not
    applicable", not reported."""
    if data_name is None or str(data_name) == recipe_data or not data_figures:
        return figures
    note = (f"{NOT_APPLICABLE}: describes the built-in data {recipe_data!r}, "
            f"not --data {str(data_name)!r}")
    return {k: (note if _names_data_figure(k, data_figures) else v)
            for k, v in figures.items()}


def _names_data_figure(key: str, data_figures: tuple[str, ...]) -> bool:
    """``key`` is one of ``data_figures``, or one with a sampler's or a step count's tag:
    ``mode_coverage`` also names ``mode_coverage_ddim`` and ``mode_coverage_100_steps``."""
    return any(key == f or key.startswith(f + "_") or key.endswith("_" + f)
               for f in data_figures)
