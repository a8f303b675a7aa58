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


def _drive(out: str, scenario: str) -> None:
    """Runs in the subprocess: the interrupted command, then (a fresh call) its resume."""
    from genjax import checkpoint, cli, registry, train

    original_get = registry.get

    def get(name):
        recipe = original_get(name)
        report = recipe.report

        def report_hook(*args):
            if scenario == "report" and not fired.get("report"):
                fired["report"] = True
                _kill_self()  # Python raises KeyboardInterrupt inside the report
            return report(*args)

        return dataclasses.replace(recipe, checkpoint_every=CHECKPOINT_EVERY, report=report_hook)

    registry.get = get
    fired: dict[str, bool] = {}

    original_make_step = train.make_step

    def make_step(*args, **kwargs):
        step_fn = original_make_step(*args, **kwargs)

        def hooked(state, data):
            if scenario in ("step", "twice") and int(state.step) == 5 and not fired.get("step"):
                fired["step"] = True
                _kill_self()  # arrives while step 6 is being taken
            return step_fn(state, data)

        return hooked

    train.make_step = make_step

    original_open = checkpoint.open_manager

    class Manager:
        def __init__(self, inner):
            self._inner = inner

        def save(self, step, **kwargs):
            result = self._inner.save(step, **kwargs)  # asynchronous: now in flight
            if (scenario == "save" and step == 8) or (scenario == "twice" and step == 6):
                if not fired.get("save"):
                    fired["save"] = True
                    _kill_self()
            return result

        def __getattr__(self, name):
            return getattr(self._inner, name)

    checkpoint.open_manager = lambda out_dir: Manager(original_open(out_dir))

    original_init = train.init_state

    def init_state(*args, **kwargs):
        if scenario == "startup" and not fired.get("startup"):
            fired["startup"] = True
            _kill_self()
        return original_init(*args, **kwargs)

    train.init_state = init_state

    argv = ["train", "gmm", "--steps", str(STEPS), "--out", out, "--no-progress"]
    if scenario != "none":
        print(f"rc={cli.main(argv)}", flush=True)
        print(f"saved={checkpoint.saved_steps(out)}", flush=True)
        argv = argv + (["--resume"] if scenario != "startup" else [])
    print(f"rc={cli.main(argv)}", flush=True)
    import jax

    params = train.load_params(original_get("gmm"), out, jax.random.key(0),
                               cli._load(original_get("gmm"), "ring", "train", 0))
    leaves = {str(i): np.asarray(x) for i, x in enumerate(jax.tree.leaves(params))}
    np.savez(Path(out) / "final_params.npz", **leaves)


def _run(tmp_path: Path, scenario: str) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / scenario
    proc = subprocess.run(
        [sys.executable, "-m", "tests.shared.test_interrupts", str(out), scenario],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc, out


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
def reference(tmp_path_factory) -> dict:
    proc, out = _run(tmp_path_factory.mktemp("ref"), "none")
    assert proc.returncode == 0, proc.stderr
    return _files(out)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_interrupt_then_resume_equals_the_uninterrupted_run(tmp_path, reference, scenario):
    proc, out = _run(tmp_path, scenario)
    codes = [line for line in proc.stdout.splitlines() if line.startswith("rc=")]
    assert codes == ["rc=130", "rc=0"], proc.stdout + proc.stderr
    assert SCENARIOS[scenario] in proc.stderr, proc.stderr
    if scenario == "startup":
        assert "saved=[]" in proc.stdout and "checkpoint saved" not in proc.stderr
    if scenario == "twice":
        # The second Ctrl-C waited for the save and said so; the save is complete.
        assert "the checkpoint of step 6 is being written" in proc.stderr, proc.stderr
        assert "saved=[4, 6]" in proc.stdout, proc.stdout
    if scenario == "report":
        assert "saved=[8, 12]" in proc.stdout, proc.stdout
    got = _files(out)
    rows = [json.loads(x)["step"] for x in got["metrics.jsonl"].splitlines()]
    assert rows == list(range(1, STEPS + 1))  # no row lost, none twice
    for name in ("metrics.jsonl", "config.json", "summary", "samples.png"):
        assert got[name] == reference[name], name
    assert len(got["params"]) == len(reference["params"])
    for a, b in zip(got["params"], reference["params"], strict=True):
        np.testing.assert_array_equal(a, b)  # bitwise


if __name__ == "__main__":
    _drive(sys.argv[1], sys.argv[2])
