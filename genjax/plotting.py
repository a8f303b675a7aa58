"""Pictures of samples: image grids, 2-D scatter plots, text dumps, quality curves.

Everything renders off-screen with matplotlib's Agg canvas on a bare
``matplotlib.figure.Figure`` -- pyplot is never imported, so no display, no
global figure registry and nothing left open after a call. Every function
creates the parent directories of ``path`` and returns the path written.

matplotlib is imported inside the functions that draw (:func:`_figure`), so a
recipe imports this module at its top for free: ``import genjax.plotting`` loads
no matplotlib (``python -X importtime -c "import genjax.plotting"`` shows it).
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # annotations only; matplotlib itself is imported where a figure is made
    from matplotlib.figure import Figure


def _prepare(path: str | os.PathLike) -> str:
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    return path


def _figure(**kwargs: Any) -> Figure:
    """A bare matplotlib ``Figure`` (no pyplot); matplotlib is imported here, on first use."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _save(fig: Figure, path: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # attach the off-screen canvas
    fig.savefig(path, dpi=fig.dpi)


def tile_images(images: Any, *, nrow: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile a batch of images into one array, row by row.

    Args:
      images: (n, H, W, C) with C in {1, 3, 4}, or (n, H, W); values in [0, 1]
        (clipped).
      nrow: images per row (torchvision's convention); default ceil(sqrt(n)).
      pad: pixels of white between images.

    Returns:
      (rows * (H + pad) + pad, nrow * (W + pad) + pad, C) float32 array.
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]  # (n, H, W) -> (n, H, W, 1)
    if x.ndim != 4 or x.shape[-1] not in (1, 3, 4) or x.shape[0] < 1:
        raise ValueError(
            f"images must have shape (n, H, W, C) with n >= 1 and C in (1, 3, 4), "
            f"got {np.shape(images)}"
        )
    n, h, w, c = x.shape
    if nrow is None:
        nrow = math.ceil(math.sqrt(n))
    if int(nrow) != nrow or nrow < 1:
        raise ValueError(f"nrow must be an integer >= 1, got {nrow!r}")
    nrow = int(nrow)
    rows = math.ceil(n / nrow)
    grid = np.ones((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), dtype=np.float32)
    for i in range(n):
        r, q = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        grid[top : top + h, left : left + w] = np.clip(np.nan_to_num(x[i]), 0.0, 1.0)
    return grid


def image_grid(
    images: Any,
    path: str | os.PathLike,
    *,
    nrow: int | None = None,
    title: str | None = None,
) -> str:
    """Save a grid of images as a PNG.

    Args:
      images: (n, H, W, C) (or (n, H, W)) values in [0, 1]; C = 1 is grey.
      path: output file (``.png``).
      nrow: images per row; default ceil(sqrt(n)).
      title: optional title above the grid.

    Returns:
      the path written.
    """
    path = _prepare(path)
    grid = tile_images(images, nrow=nrow)
    height, width = grid.shape[:2]
    scale = max(4.0 / max(height, width), 0.05)  # at least ~4 inches, ~20 px per pixel
    fig = _figure(figsize=(width * scale, height * scale + (0.4 if title else 0.0)), dpi=100)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0 if not title else 0.9))
    if grid.shape[-1] == 1:
        ax.imshow(grid[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(grid, interpolation="nearest")
    ax.set_axis_off()
    if title:
        fig.suptitle(title)
    _save(fig, path)
    return path


def scatter_2d(
    samples: Any,
    data: Any,
    path: str | os.PathLike,
    *,
    title: str | None = None,
) -> str:
    """Scatter model samples over the training data (2-D), side by side and overlaid.

    Args:
      samples: (n, 2) model samples (drawn in colour).
      data: (m, 2) reference data (drawn in grey underneath).
      path: output file (``.png``).
      title: optional title.

    Returns:
      the path written.
    """
    s = np.asarray(samples, dtype=np.float64)
    d = np.asarray(data, dtype=np.float64)
    for name, arr in (("samples", s), ("data", d)):
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError(f"{name} must have shape (n, 2), got {arr.shape}")
    path = _prepare(path)
    finite = d[np.all(np.isfinite(d), axis=1)]
    if finite.size:
        lo, hi = np.percentile(finite, [0.5, 99.5], axis=0)
        margin = 0.1 * (hi - lo) + 1e-6
        lo, hi = lo - margin, hi + margin
    else:
        lo, hi = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    fig = _figure(figsize=(10, 5), dpi=100)
    panels = (("data", d, "0.5"), ("samples over data", s, "C0"))
    for i, (label, pts, colour) in enumerate(panels):
        ax = fig.add_subplot(1, 2, i + 1)
        if i == 1:
            ax.scatter(d[:, 0], d[:, 1], s=2, c="0.8", linewidths=0)
        ax.scatter(pts[:, 0], pts[:, 1], s=2, c=colour, linewidths=0)
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal")
        ax.set_title(f"{label} (n={len(pts)})")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
    return path


def text_dump(texts: Sequence[str], path: str | os.PathLike, *, title: str | None = None) -> str:
    """Write text samples to a file; a ``.png`` path also gets a rendered picture.

    The text file holds the title (if any) and each sample under a
    ``--- sample i ---`` header. For a path ending in ``.png`` the text goes to
    the same path with a ``.txt`` suffix and the PNG shows it in a monospaced
    font (lines wrapped at 100 characters, at most 60 lines per sample).

    Args:
      texts: the samples.
      path: output ``.txt`` (or any non-PNG name) or ``.png``.
      title: optional first line.

    Returns:
      the path written (the PNG for a ``.png`` path).
    """
    if isinstance(texts, str):
        raise ValueError("texts must be a list of strings, got a single str")
    texts = [str(t) for t in texts]
    path = _prepare(path)
    lines: list[str] = [title, ""] if title else []
    for i, text in enumerate(texts):
        lines += [f"--- sample {i} ---", text, ""]
    body = "\n".join(lines)
    is_png = path.lower().endswith(".png")
    txt_path = os.path.splitext(path)[0] + ".txt" if is_png else path
    with open(txt_path, "w", encoding="utf-8") as fh:
        fh.write(body)
    if not is_png:
        return path
    shown: list[str] = []
    for i, text in enumerate(texts):
        wrapped = [w for line in text.splitlines() for w in (textwrap.wrap(line, 100) or [""])]
        shown += [f"--- sample {i} ---", *wrapped[:60], ""]
    if title:
        shown = [title, "", *shown]
    # Matplotlib treats $ as math delimiters; escape it so raw text shows as written.
    rendered = "\n".join(shown).replace("$", r"\$")
    fig = _figure(figsize=(10, max(1.0, 0.17 * len(shown) + 0.4)), dpi=100)
    fig.text(0.01, 0.99, rendered, family="monospace", fontsize=9, va="top", ha="left")
    _save(fig, path)
    return path


def line_plot(
    series: Mapping[str, tuple[Any, Any]],
    path: str | os.PathLike,
    *,
    xlabel: str = "",
    ylabel: str = "",
    title: str | None = None,
    logx: bool = False,
    logy: bool = False,
) -> str:
    """Plot named curves, e.g. sample quality against the number of sampler steps.

    Args:
      series: name -> (x (k,), y (k,)) for each curve.
      path: output file (``.png``).
      xlabel, ylabel, title: axis labels and title.
      logx, logy: logarithmic axes.

    Returns:
      the path written.
    """
    if not series:
        raise ValueError("series must hold at least one curve")
    path = _prepare(path)
    fig = _figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    for name, (x, y) in series.items():
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.shape != y.shape or x.ndim != 1:
            raise ValueError(
                f"series[{name!r}] must be (x, y) of equal 1-D shapes, got {x.shape}, {y.shape}"
            )
        ax.plot(x, y, marker="o", markersize=3, label=name)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    _save(fig, path)
    return path
