"""genjax.plotting: every function writes a real, non-empty PNG where asked."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

from genjax import plotting

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_png(path) -> np.ndarray:
    with open(path, "rb") as fh:
        assert fh.read(8) == PNG_MAGIC
    img = imread(path)
    assert img.ndim == 3 and min(img.shape[:2]) > 50
    assert img[..., :3].std() > 0.01  # not a blank canvas
    return img


def test_tile_images_places_each_image():
    images = np.zeros((3, 2, 2, 1), np.float32)
    images[1] = 0.5
    images[2] = 2.0  # clipped to 1
    grid = plotting.tile_images(images, nrow=2, pad=1)
    assert grid.shape == (2 * 3 + 1, 2 * 3 + 1, 1)
    np.testing.assert_array_equal(grid[1:3, 1:3, 0], 0.0)  # image 0: row 0, col 0
    np.testing.assert_array_equal(grid[1:3, 4:6, 0], 0.5)  # image 1: row 0, col 1
    np.testing.assert_array_equal(grid[4:6, 1:3, 0], 1.0)  # image 2: row 1, col 0
    np.testing.assert_array_equal(grid[4:6, 4:6, 0], 1.0)  # empty slot stays white
    assert grid[0, :, 0].min() == 1.0  # padding is white


def test_image_grid_grey_and_rgb(tmp_path):
    rng = np.random.default_rng(0)
    out = plotting.image_grid(rng.random((10, 8, 8, 1)), tmp_path / "a" / "grey.png", title="g")
    assert out == str(tmp_path / "a" / "grey.png")  # parent directory created
    _assert_png(out)
    _assert_png(plotting.image_grid(rng.random((4, 6, 6, 3)), tmp_path / "rgb.png", nrow=4))
    with pytest.raises(ValueError, match="images"):
        plotting.image_grid(rng.random((4, 6, 6, 2)), tmp_path / "bad.png")
    with pytest.raises(ValueError, match="nrow"):
        plotting.image_grid(rng.random((4, 6, 6, 1)), tmp_path / "bad.png", nrow=0)


def test_scatter_2d(tmp_path):
    rng = np.random.default_rng(1)
    path = plotting.scatter_2d(
        rng.normal(size=(300, 2)),
        3 * rng.normal(size=(500, 2)),
        tmp_path / "s" / "sc.png",
        title="samples",
    )
    _assert_png(path)
    with pytest.raises(ValueError, match="samples"):
        plotting.scatter_2d(np.zeros((5, 3)), np.zeros((5, 2)), tmp_path / "bad.png")


def test_text_dump_txt_and_png(tmp_path):
    texts = ["first sample with $dollars$", "second\nover two lines"]
    txt = plotting.text_dump(texts, tmp_path / "t" / "out.txt", title="Samples")
    content = open(txt, encoding="utf-8").read()
    assert content.startswith("Samples\n")
    for t in texts:
        assert t in content
    png = plotting.text_dump(texts, tmp_path / "pic.png")
    _assert_png(png)
    assert "second\nover two lines" in open(tmp_path / "pic.txt", encoding="utf-8").read()
    with pytest.raises(ValueError, match="texts"):
        plotting.text_dump("not a list", tmp_path / "x.txt")


def test_line_plot(tmp_path):
    steps = np.array([1, 2, 4, 8, 16])
    path = plotting.line_plot(
        {"ddim": (steps, 1.0 / steps), "ddpm": (steps, 2.0 / steps)},
        tmp_path / "q" / "curve.png",
        xlabel="steps",
        ylabel="MMD",
        title="quality",
        logx=True,
        logy=True,
    )
    _assert_png(path)
    with pytest.raises(ValueError, match="series"):
        plotting.line_plot({}, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="series"):
        plotting.line_plot({"a": ([1, 2], [1, 2, 3])}, tmp_path / "bad.png")


def test_importing_plotting_loads_no_matplotlib():
    # Recipes import genjax.plotting at module top: matplotlib must wait until a figure is drawn.
    import subprocess
    import sys

    code = "import sys, genjax.plotting; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr
