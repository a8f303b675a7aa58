"""Ctrl-C at any moment of `genjax train` loses no finished step, and `--resume` ends bitwise
where an uninterrupted run ends: same parameters, same metrics.jsonl, same summary and picture.

Each scenario runs `genjax train gmm` in a subprocess (this module, run as a script) that
sends itself a real SIGINT at a chosen, deterministic moment -- during a step, during a
checkpoint save, twice (during a step, then during the save that follows), during the report,
during start-up -- and then resumes it in a fresh `cli.main` call of the same process. The
moments are hooked by wrapping the trainer's own functions (no sleeps, no timing).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

STEPS = 12
CHECKPOINT_EVERY = 4  # saves at 4 and 8 during the run, 12 at the end
ROOT = Path(__file__).resolve().parents[2]

# (scenario, what the interrupted command must say on stderr)
SCENARIOS = {
    # SIGINT while step 6 runs: step 6 finishes, is logged and saved (checkpoints: 4, 6).
    "step": "interrupted at step 6 of 12; checkpoint of step 6 saved",
    # SIGINT while the periodic save of step 8 is in flight: the save completes first.
    "save": "interrupted at step 8 of 12; checkpoint of step 8 saved",
    # SIGINT during step 6, and again during the save of step 6 (finding 1).
    "twice": "interrupted at step 6 of 12; checkpoint of step 6 saved",
    # SIGINT while the report runs, every step saved (finding 2).
    "report": "interrupted while writing the report; every step is saved",
    # SIGINT before the first step: nothing saved, and it says so (finding 4).
    "startup": "no checkpoint was saved",
}


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def _drive(root: str) -> None:
    """Runs in the subprocess: for each scenario (and "none", the reference), the
    interrupted command, then (a fresh `cli.main` call) its resume. One process for all of
    them: JAX and the recipes are imported once."""
    from genjax import checkpoint, cli, registry, train

    # A terminal's process: Python's Ctrl-C handler. A parent that ignores SIGINT (pytest-xdist's
    # workers do) passes SIG_IGN on through exec, and Python then installs no handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    scenario = ""
    fired: set[str] = set()

    def once(moment: str) -> None:
        if moment not in fired:
            fired.add(moment)
            _kill_self()  # a real SIGINT, handled as a user's Ctrl-C is

    original_get = registry.get

    def get(name):
        recipe = original_get(name)
        report = recipe.report

        def report_hook(*args):
            if scenario == "report":
                once("report")  # Python raises KeyboardInterrupt inside the report
            return report(*args)

        return dataclasses.replace(recipe, checkpoint_every=CHECKPOINT_EVERY, report=report_hook)

    original_make_step = train.make_step
    taking = {"step": 0}

    def make_step(*args, **kwargs):
        step_fn = original_make_step(*args, **kwargs)

        def hooked(state, data):
            taking["step"] = int(state.step) + 1
            return step_fn(state, data)

        return hooked

    original_to_host = train._to_host

    def to_host(metrics):
        # Where a user's Ctrl-C lands: the step is dispatched and Python waits for its
        # result (its metrics) to come back from the device.
        if scenario in ("step", "twice") and taking["step"] == 6:
            once("step")
        return original_to_host(metrics)

    original_open = checkpoint.open_manager

    class Manager:
        def __init__(self, inner):
            self._inner = inner

        def save(self, step, **kwargs):
            result = self._inner.save(step, **kwargs)  # asynchronous: now in flight
            if (scenario == "save" and step == 8) or (scenario == "twice" and step == 6):
                once("save")
            return result

        def __getattr__(self, name):
            return getattr(self._inner, name)

    original_init = train.init_state

    def init_state(*args, **kwargs):
        if scenario == "startup":
            once("startup")
        return original_init(*args, **kwargs)

    registry.get = get
    train.make_step = make_step
    train._to_host = to_host
    checkpoint.open_manager = lambda out_dir: Manager(original_open(out_dir))
    train.init_state = init_state

    import jax

    recipe = original_get("gmm")
    train_data = cli._load(recipe, "ring", "train", 0)
    for scenario in ["none", *SCENARIOS]:
        fired.clear()
        out = str(Path(root) / scenario)
        print(f"=== {scenario}", file=sys.stderr, flush=True)
        argv = ["train", "gmm", "--steps", str(STEPS), "--out", out, "--no-progress"]
        codes = []
        if scenario != "none":
            codes.append(cli.main(argv))
            (Path(out) / "saved.json").write_text(json.dumps(checkpoint.saved_steps(out)))
            argv = argv + (["--resume"] if scenario != "startup" else [])
        codes.append(cli.main(argv))
        (Path(out) / "codes.json").write_text(json.dumps(codes))
        params = train.load_params(recipe, out, jax.random.key(0), train_data)
        leaves = {str(i): np.asarray(x) for i, x in enumerate(jax.tree.leaves(params))}
        np.savez(Path(out) / "final_params.npz", **leaves)


def _files(out: Path) -> dict:
    summary = json.loads((out / "summary.json").read_text())
    summary.pop("train_seconds")  # wall time: the only figure allowed to differ
    params = np.load(out / "final_params.npz")
    return {
        "metrics.jsonl": (out / "metrics.jsonl").read_text(),
        "config.json": (out / "config.json").read_text(),
        "summary": summary,
        "samples.png": (out / "samples.png").read_bytes(),
        "params": [params[k] for k in sorted(params.files, key=int)],
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """Every scenario's run directory, and what each printed on stderr."""
    root = tmp_path_factory.mktemp("interrupts")
    proc = subprocess.run([sys.executable, "-m", "tests.shared.test_interrupts", str(root)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    stderr = {}
    for chunk in proc.stderr.split("=== ")[1:]:
        name, _, text = chunk.partition("\n")
        stderr[name] = text
    return root, stderr


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_interrupt_then_resume_equals_the_uninterrupted_run(runs, scenario):
    root, stderr = runs
    out = root / scenario
    err = stderr[scenario]
    assert json.loads((out / "codes.json").read_text()) == [130, 0], err
    got, reference = _files(out), _files(root / "none")
    rows = [json.loads(x)["step"] for x in got["metrics.jsonl"].splitlines()]
    assert rows == list(range(1, STEPS + 1))  # no row lost, none twice
    saved = json.loads((out / "saved.json").read_text())  # what the interrupt left on disk
    if scenario == "startup":
        assert saved == [] and "checkpoint saved" not in err, err
    if scenario == "twice":
        # The second Ctrl-C waited for the save, said so, and the save is complete.
        assert "the checkpoint of step 6 is being written" in err, err
        assert saved == [4, 6]
    if scenario in ("step", "save"):
        assert saved[-1] == {"step": 6, "save": 8}[scenario]
    if scenario == "report":
        assert saved == [8, 12] and "Write the report with:" in err, err
    assert SCENARIOS[scenario] in err, err
    for name in ("metrics.jsonl", "config.json", "summary", "samples.png"):
        assert got[name] == reference[name], name
    assert len(got["params"]) == len(reference["params"]) > 0
    for a, b in zip(got["params"], reference["params"], strict=True):
        np.testing.assert_array_equal(a, b)  # bitwise


if __name__ == "__main__":
    _drive(sys.argv[1])
