"""Checkpoints that Ctrl-C cannot tear and damage cannot hide.

The trainer (:mod:`genjax.train`) saves its state here and resumes from it. Three promises:

* **A finished step is never lost to Ctrl-C.** While :class:`InterruptGuard` is active (the
  training loop and every save), SIGINT only *asks* to stop: the step in flight finishes,
  its metrics row is written, a checkpoint of it is saved, and only then does training stop
  (:class:`TrainingInterrupted`). A second (third ...) Ctrl-C during that save does not tear
  it: the save completes and the message says which step ``--resume`` continues from.
  (SIGQUIT, Ctrl-\\, still stops at once; the previous checkpoint is then the one to resume
  from, and the unfinished save is cleaned up below.)
* **A damaged checkpoint is named in one line, and the newest intact one is used.** Orbax
  writes a step into ``<step>.orbax-checkpoint-tmp-*`` and renames it when complete, and
  tensorstore checks a CRC-32C of every chunk, so an unfinished save, a flipped byte or a
  truncated file is *detected*; :func:`restore_latest_intact` turns the detection into a
  warning naming the file and falls back to the step before (``max_to_keep=2`` keeps one).
  A damaged step is moved to ``<out_dir>/checkpoint-damaged/`` (kept, never deleted) so
  that the resumed run can save that step number again.
* **A checkpoint that does not fit the model is not "damage".** A stored shape that differs
  from the model's (another recipe's run, another configuration) is a ``ValueError`` that
  says so, and nothing is moved.

Only process 0 moves or removes files; every process reads the same checkpoint.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import re
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np

from genjax import sharding

PyTree = Any

CHECKPOINT_DIR = "checkpoint"
DAMAGED_DIR = "checkpoint-damaged"
MAX_TO_KEEP = 2
_TMP_MARK = ".orbax-checkpoint-tmp"


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :func:`genjax.train.fit`.

    Attributes:
      saved_step: the step ``--resume`` continues from (the newest checkpoint on disk), or
        ``None`` when the run has none.
      phase: ``"start-up"`` (before the first step), ``"training"`` or ``"report"`` (every
        step done and saved; the pictures and ``summary.json`` not yet written).
      message: one line for the user saying what was saved.
    """

    def __init__(self, message: str, *, saved_step: int | None, phase: str) -> None:
        super().__init__(message)
        self.message = message
        self.saved_step = saved_step
        self.phase = phase


# --- Ctrl-C ---------------------------------------------------------------------------------

class InterruptGuard:
    """Within ``with InterruptGuard() as guard:``, SIGINT sets ``guard.requested`` instead of
    raising ``KeyboardInterrupt``; the trainer polls it between steps.

    Only the main thread receives signals, so elsewhere (a trainer run from a worker thread)
    the guard does nothing and Python's default behaviour stays.
    """

    def __init__(self, write: Callable[[str], None] | None = None) -> None:
        self.requested = 0  # Ctrl-Cs received while active
        self.saving_step: int | None = None  # the step being written, during a save
        self.saved_step: int | None = None  # the newest step on disk
        self._write = write or (lambda line: print(line, file=sys.stderr, flush=True))
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _handle(self, signum: int, frame: object) -> None:
        del signum, frame
        self.requested += 1
        if self.saving_step is not None:
            self._write(
                f"\nCtrl-C: the checkpoint of step {self.saving_step} is being written; "
                "stopping as soon as it is complete (Ctrl-\\ stops at once, keeping "
                f"{_step_words(self.saved_step)})")
        elif self.requested == 1:
            self._write("\nCtrl-C: finishing the current step, then saving a checkpoint")
        else:
            self._write("\nCtrl-C again: still finishing the current step; its checkpoint "
                        "follows (Ctrl-\\ stops at once, keeping "
                        f"{_step_words(self.saved_step)})")

    @contextlib.contextmanager
    def saving(self, step: int) -> Iterator[None]:
        """Marks a save of ``step`` in flight (for the messages above)."""
        self.saving_step = step
        try:
            yield
        finally:
            self.saving_step = None


def _step_words(step: int | None) -> str:
    return "no checkpoint" if step is None else f"the checkpoint of step {step}"


# --- the files ------------------------------------------------------------------------------

def checkpoint_dir(out_dir: str | Path) -> Path:
    """The absolute checkpoint directory of the run directory ``out_dir``."""
    return (Path(out_dir) / CHECKPOINT_DIR).resolve()


def saved_steps(out_dir: str | Path) -> list[int]:
    """The completed checkpoint steps in ``out_dir``, ascending (unfinished saves excluded)."""
    root = checkpoint_dir(out_dir)
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit())


def unfinished_saves(out_dir: str | Path) -> list[Path]:
    """``<step>.orbax-checkpoint-tmp-*`` directories: saves that never completed."""
    root = checkpoint_dir(out_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if _TMP_MARK in p.name)


def open_manager(out_dir: str | Path):
    """Orbax's manager of ``out_dir/checkpoint``, keeping the two newest steps."""
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(max_to_keep=MAX_TO_KEEP)
    return ocp.CheckpointManager(checkpoint_dir(out_dir), options=options)


def save(manager, state: PyTree, step: int, guard: InterruptGuard | None = None) -> None:
    """Writes ``state``'s flat leaves as ``step`` and waits until the save is complete.

    Under ``guard``, a Ctrl-C during the save is held until it completes.
    """
    import orbax.checkpoint as ocp

    leaves = jax.tree.leaves(state)
    context = guard.saving(step) if guard is not None else contextlib.nullcontext()
    with context:
        manager.save(step, args=ocp.args.StandardSave({"leaves": leaves}), force=True)
        manager.wait_until_finished()
    if guard is not None:
        guard.saved_step = step


def _restore_step(out_dir: Path, step: int, template: PyTree,
                  mesh: jax.sharding.Mesh | None) -> PyTree:
    import orbax.checkpoint as ocp

    everywhere = sharding.replicated(sharding.make_mesh(1) if mesh is None else mesh)
    leaves, treedef = jax.tree.flatten(template)
    abstract = {
        "leaves": [jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=everywhere)
                   for x in leaves]
    }
    manager = open_manager(out_dir)
    try:
        restored = manager.restore(step, args=ocp.args.StandardRestore(abstract))
    finally:
        manager.close()
    return jax.tree.unflatten(treedef, restored["leaves"])


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silences what a failed tensorstore read leaves behind (asyncio tracebacks of orphaned
    coroutines, absl warnings): the caller reports the failure in one line instead."""
    loggers = [logging.getLogger(name) for name in ("absl", "asyncio")]
    levels = [lg.level for lg in loggers]
    hooks = (sys.unraisablehook, threading.excepthook)
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    sys.unraisablehook = lambda *_: None
    threading.excepthook = lambda *_: None
    try:
        yield
    finally:
        gc.collect()  # orphaned coroutines complain when collected: collect them here
        sys.unraisablehook, threading.excepthook = hooks
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


_SHAPE_MISMATCH = re.compile(r"not compatible with the stored shape|shape mismatch", re.I)
_FILE_IN_ERROR = re.compile(r'local file "([^"]+)"')


def _damage_reason(err: BaseException, step_dir: Path) -> str:
    """One line: the damaged file (when it can be named) and what is wrong with it."""
    text = str(err)
    files = _FILE_IN_ERROR.findall(text)
    culprit = next((f for f in reversed(files) if not f.endswith("/")), None)
    if culprit is None:
        culprit = _first_unreadable_json(step_dir)
    what = text.split("[tensorstore_spec")[0].strip().splitlines()[0] if text.strip() else ""
    for marker in ("CRC-32C checksum verification failed", "DATA_LOSS", "OUT_OF_RANGE",
                   "NOT_FOUND"):
        if marker in what:
            what = marker if marker != "DATA_LOSS" else "DATA_LOSS (unreadable data)"
            break
    what = f"{type(err).__name__}: {what}"[:160]
    return f"{culprit}: {what}" if culprit else what


def _first_unreadable_json(step_dir: Path) -> str | None:
    """The first of a step's JSON files (``_METADATA``, ...) that does not parse, if any."""
    if not step_dir.is_dir():
        return str(step_dir) + " (missing)"
    for path in sorted(step_dir.rglob("*")):
        if path.is_file() and (path.name.startswith("_") or path.parent.name
                               in ("array_metadatas",)) and path.name != "_sharding":
            try:
                json.loads(path.read_text("utf-8"))
            except (ValueError, UnicodeDecodeError):
                return str(path)
    return None


def _set_aside(out_dir: Path, path: Path) -> Path:
    """Moves a damaged or unfinished checkpoint directory into ``checkpoint-damaged/``."""
    target_root = Path(out_dir).resolve() / DAMAGED_DIR
    target_root.mkdir(exist_ok=True)
    target = target_root / path.name
    n = 1
    while target.exists():
        target = target_root / f"{path.name}.{n}"
        n += 1
    shutil.move(str(path), str(target))
    return target


def restore_latest_intact(
    out_dir: str | Path,
    template: PyTree,
    *,
    mesh: jax.sharding.Mesh | None = None,
    warn: Callable[[str], None] | None = None,
    set_aside: bool = True,
    verb: str = "resuming from",
) -> PyTree:
    """The newest checkpoint of ``out_dir`` that reads back whole, in ``template``'s shape.

    Unfinished saves and damaged steps are each named in one warning line and skipped
    (moved to ``checkpoint-damaged/`` when ``set_aside``, so that the run can write those
    step numbers again). Raises ``ValueError`` (one line) when no intact checkpoint is left,
    or when a checkpoint holds arrays of other shapes than ``template`` (another model).
    """
    out_dir = Path(out_dir)
    warn = warn or (lambda line: print(line, file=sys.stderr, flush=True))
    main = sharding.is_main_process()
    skipped: list[str] = []  # one line each, finished when the fallback is known
    for tmp in unfinished_saves(out_dir):
        where = _set_aside(out_dir, tmp) if (set_aside and main) else None
        note = f"; set aside in {where}" if where else ""
        skipped.append(f"warning: {tmp} is an unfinished checkpoint (its save was "
                       f"interrupted){note}")
    steps = saved_steps(out_dir)
    for step in reversed(steps):
        step_dir = checkpoint_dir(out_dir) / str(step)
        try:
            with _quiet():
                state = _restore_step(out_dir, step, template, mesh)
        except Exception as err:  # noqa: BLE001 -- any failure to read back is reported
            if _SHAPE_MISMATCH.search(str(err)):
                first = str(err).splitlines()[0][:200]
                raise ValueError(
                    f"resume: the checkpoint {step_dir} holds arrays of other shapes than "
                    f"this recipe's model ({first}); was it written by another recipe or "
                    "configuration?") from None
            reason = _damage_reason(err, step_dir)
            where = _set_aside(out_dir, step_dir) if (set_aside and main) else None
            note = f"; set aside in {where}" if where else ""
            skipped.append(f"warning: checkpoint {step_dir} is damaged ({reason}){note}")
            continue
        for line in skipped:
            warn(f"{line}; {verb} step {step}, the newest intact checkpoint")
        return state
    resuming = verb.startswith("resum")
    hint = "; train without --resume" if resuming else "; the run saved no intact checkpoint"
    what = "resume" if resuming else "checkpoint"
    if not skipped:
        raise ValueError(f"{what}: no checkpoint found in {checkpoint_dir(out_dir)}{hint}")
    for line in skipped:
        warn(line)
    raise ValueError(f"{what}: no intact checkpoint in {checkpoint_dir(out_dir)} (see the "
                     f"warnings above){hint}")
