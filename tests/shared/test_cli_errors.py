"""The command line answers a user's bad file, bad directory or bad data in one line with
exit status 2 (issue 16, findings 6 and 14), and reports only what holds for the data it was
given (finding 12). In-process (`cli.main`), so that no test pays a JAX start-up."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genjax import cli, data


def _points(n: int = 400) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, 2)).astype(np.float32)


def _with(value: float, *where: tuple[int, int]) -> np.ndarray:
    x = _points()
    for i, j in where:
        x[i, j] = value
    return x


# (name, how to make the file, extra arguments, what the one line must say)
BAD_FILES = [
    ("nan-ddpm", lambda p: np.save(p, _with(np.nan, (17, 1), (40, 0))), ["ddpm"],
     "nan-ddpm.npy': 2 non-finite values (NaN or inf) of 800; the first is nan at index "
     "(17, 1), example 17"),
    ("inf-realnvp", lambda p: np.save(p, _with(np.inf, (3, 0))), ["realnvp"],
     "inf-realnvp.npy': 1 non-finite value (NaN or inf) of 800; the first is inf at index "
     "(3, 0)"),
    ("neg-inf-gmm", lambda p: np.save(p, _with(-np.inf, (5, 1))), ["gmm"],
     "the first is -inf at index (5, 1)"),
    ("empty-file", lambda p: p.write_bytes(b""), ["gmm"], "could not be read as a .npy file"),
    ("no-examples", lambda p: np.save(p, np.zeros((0, 2), np.float32)), ["gmm"],
     "0 example(s) is too few"),
    ("scalar", lambda p: np.save(p, np.float32(1.0)), ["gmm"], "data needs (n, ...)"),
    # A recipe that quantises its data (wavenet's mu-law levels) is refused on the file.
    ("nan-wavenet", lambda p: np.save(p, np.where(np.eye(40, 64) > 0, np.nan, 0.0)),
     ["wavenet"], "40 non-finite values (NaN or inf) of 2560; the first is nan at index (0, 0)"),
    ("not-npy", lambda p: p.write_bytes(b"\x93NUMPY garbage"), ["gmm"],
     "could not be read as a .npy file"),
]


@pytest.mark.parametrize("name, make, args, needle", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_a_bad_data_file_is_one_line_and_exit_2(tmp_path, capsys, name, make, args, needle):
    path = tmp_path / f"{name}.npy"
    make(path)
    out = tmp_path / "run"
    code = cli.main(["train", *args, "--data", str(path), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert needle in err[0], err
    assert not (out / "checkpoint").exists()  # refused before training wrote anything


@pytest.mark.parametrize("target", ["file", "inside-a-file"])
def test_out_naming_a_file_is_one_line_and_exit_2(tmp_path, capsys, target):
    existing = tmp_path / "notes.txt"
    existing.write_text("mine")
    out = existing if target == "file" else existing / "run"
    code = cli.main(["train", "gmm", "--steps", "1", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert str(existing) in err[0] and "Traceback" not in err[0]
    assert existing.read_text() == "mine"


def test_ctrl_c_before_training_is_one_line_and_says_nothing_was_saved(monkeypatch, capsys,
                                                                       tmp_path):
    # Finding 4 at the command line: an interrupt while the data load does not claim a save.
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_load", interrupted)
    code = cli.main(["train", "gmm", "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == cli.EXIT_INTERRUPTED and len(err) == 1, err
    assert "before anything was saved" in err[0] and "checkpoint saved" not in err[0]


def test_data_figures_cover_tagged_variants_and_the_built_in_data_keeps_them(tmp_path):
    import jax

    from genjax import train
    from tests.shared.test_train import _recipe

    recipe = _recipe(data="ring", data_figures=("mean_error",), steps=2,
                     report=lambda key, params, tr, te, out: {"mean_error": 1.0,
                                                              "mean_error_ddim": 2.0,
                                                              "energy": 3.0})
    points = data.load("ring", split="test")[:64]
    own = train.fit(recipe, points, key=jax.random.key(0), out_dir=tmp_path / "a",
                    progress=False, data_name="ring")
    assert own.summary["mean_error"] == 1.0 and own.summary["mean_error_ddim"] == 2.0
    other = train.fit(recipe, points, key=jax.random.key(0), out_dir=tmp_path / "b",
                      progress=False, data_name=str(Path("mine.npy")))
    assert other.summary["mean_error"].startswith("not applicable")
    assert other.summary["mean_error_ddim"].startswith("not applicable")
    assert other.summary["energy"] == 3.0
