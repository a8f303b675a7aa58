"""Damaged checkpoints: named in one line, set aside, and the newest intact one resumed --
to the same parameters, bit for bit, as a run that was never interrupted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

from genjax import checkpoint, train
from tests.shared.test_train import _data, _recipe

KEY = 7


def _interrupt_at(step: int):
    def on_step(done: int) -> None:
        if done == step:
            raise KeyboardInterrupt

    return on_step


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    return train.fit(_recipe(), _data(), key=jax.random.key(KEY), out_dir=out, progress=False,
                     report=False)


@pytest.fixture(scope="module")
def cut(tmp_path_factory) -> Path:
    """A run stopped at step 33: checkpoints 30 (periodic) and 33 (the interrupt)."""
    out = tmp_path_factory.mktemp("cut")
    with pytest.raises(KeyboardInterrupt) as stop:
        train.fit(_recipe(), _data(), key=jax.random.key(KEY), out_dir=out, progress=False,
                  report=False, on_step=_interrupt_at(33))
    (out / "message.txt").write_text(str(stop.value))
    assert checkpoint.saved_steps(out) == [30, 33]
    return out


def _cut_run(cut: Path, out: Path) -> None:
    """A copy of the cut run in ``out`` (each test damages its own)."""
    shutil.copytree(cut, out, dirs_exist_ok=True)


def _flip_array_bytes(step_dir: Path) -> str:
    files = sorted(p for p in step_dir.rglob("*") if p.is_file() and p.parent.name == "d")
    for path in files:
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        path.write_bytes(bytes(raw))
    return "/d/"  # the message names one of these files


def _truncate_metadata(step_dir: Path) -> str:
    path = step_dir / "default" / "_METADATA"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return "_METADATA"


def _leave_unfinished_save(step_dir: Path) -> str:
    # What a hard kill during a save leaves: orbax's temporary directory, never renamed.
    shutil.copytree(step_dir, step_dir.parent / "36.orbax-checkpoint-tmp-1234567")
    return "36.orbax-checkpoint-tmp-1234567"


DAMAGE = {"corrupt-array": _flip_array_bytes, "truncated-metadata": _truncate_metadata,
          "unfinished-save": _leave_unfinished_save}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_newest_checkpoint_is_named_and_the_intact_one_resumed(
        tmp_path, capfd, full, cut, damage):
    _cut_run(cut, tmp_path)
    named = DAMAGE[damage](checkpoint.checkpoint_dir(tmp_path) / "33")
    capfd.readouterr()
    resumed = train.fit(_recipe(), _data(), key=jax.random.key(KEY), out_dir=tmp_path,
                        progress=False, report=False, resume=True)
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    # One line, naming the file, saying where it resumes from; no tensorstore dump.
    assert len(err) == 1, err
    assert err[0].startswith("warning: ") and named in err[0], err
    resumed_from = 33 if damage == "unfinished-save" else 30
    assert f"resuming from step {resumed_from}, the newest intact checkpoint" in err[0], err
    # Set aside, not deleted; the run then saved that step number again.
    assert (tmp_path / checkpoint.DAMAGED_DIR).is_dir()
    np.testing.assert_array_equal(resumed.params["mu"], full.params["mu"])
    rows = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows == list(range(1, 41))


def test_sampling_reads_past_a_damaged_checkpoint_without_moving_it(tmp_path, capfd, cut):
    _cut_run(cut, tmp_path)
    _flip_array_bytes(checkpoint.checkpoint_dir(tmp_path) / "33")
    capfd.readouterr()
    (tmp_path / "config.json").write_text(json.dumps({"steps": 40, "recipe": "mean"}))
    train.load_params(_recipe(), tmp_path, jax.random.key(KEY), _data())
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "sampling from step 30" in err[0], err
    assert checkpoint.saved_steps(tmp_path) == [30, 33]  # read-only: nothing moved


def test_no_intact_checkpoint_left_is_one_clear_error(tmp_path, capfd, cut):
    _cut_run(cut, tmp_path)
    for step in (30, 33):
        _flip_array_bytes(checkpoint.checkpoint_dir(tmp_path) / str(step))
    with pytest.raises(ValueError, match="resume: no intact checkpoint"):
        train.fit(_recipe(), _data(), key=jax.random.key(KEY), out_dir=tmp_path,
                  progress=False, report=False, resume=True)
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 2 and all(line.startswith("warning: checkpoint") for line in err), err


def test_a_checkpoint_of_another_model_is_not_called_damage(tmp_path, cut):
    _cut_run(cut, tmp_path)
    other = _recipe(init=lambda key, data: {"mu": jax.numpy.zeros(3)})
    with pytest.raises(ValueError, match="other shapes than this recipe's model"):
        train.fit(other, np.zeros((64, 3), np.float32), key=jax.random.key(KEY),
                  out_dir=tmp_path, progress=False, report=False, resume=True)
    assert checkpoint.saved_steps(tmp_path) == [30, 33]  # nothing set aside


def test_resume_of_a_finished_run_rewrites_its_summary(tmp_path, full):
    # Finding 2: resuming a finished run used to fail ("Checkpoint for step 40 already
    # exists"); it now writes the report and summary.json again.
    shutil.copytree(full.out_dir, tmp_path, dirs_exist_ok=True)  # finished, no summary yet
    assert not (tmp_path / "summary.json").exists()
    again = train.fit(_recipe(), _data(), key=jax.random.key(KEY), out_dir=tmp_path,
                      progress=False, resume=True)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == 40
    # the finished run's training time, not the (near-zero) time of this report-only call
    recorded = json.loads((tmp_path / "train_seconds.json").read_text())["40"]
    assert summary["train_seconds"] == recorded > 0
    np.testing.assert_array_equal(again.params["mu"], full.params["mu"])
    with pytest.raises(ValueError, match=r"steps must be >= 40"):
        train.fit(_recipe(), _data(), key=jax.random.key(KEY), out_dir=tmp_path,
                  progress=False, resume=True, steps=20)


def test_interrupted_step_keeps_its_metrics_row(cut):
    # Finding 3: the row of the interrupted step (33) is in metrics.jsonl, once.
    rows = [json.loads(x)["step"] for x in (cut / "metrics.jsonl").read_text().splitlines()]
    assert rows == list(range(1, 34))
    # Finding 4: the interrupt says what it saved (and the command line repeats it).
    assert "interrupted at step 33 of 40; checkpoint of step 33 saved" in (
        cut / "message.txt").read_text()


def test_non_finite_training_data_is_refused_before_anything_is_written(tmp_path):
    bad = _data()
    bad[5, 1] = np.nan
    bad[9, 0] = np.inf
    with pytest.raises(ValueError, match=r"^data: 2 non-finite values .* at index \(5, 1\), "
                                         r"example 5"):
        train.fit(_recipe(), bad, key=jax.random.key(0), out_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match=r"^test_data: 1 non-finite value "):
        train.fit(_recipe(), _data(), key=jax.random.key(0), out_dir=tmp_path / "run",
                  test_data=np.where(np.arange(128).reshape(64, 2) == 7, np.nan, _data()))
