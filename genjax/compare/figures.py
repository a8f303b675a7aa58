"""The pictures of ``genjax compare``: the samples sheet and quality against sampling cost.

* ``sheet.png`` -- one panel per family and sampler, seed 0's samples side by side: on the
  ring a scatter over the held-out points (grey), on the digits a 6x6 tile of images
  (:func:`genjax.plotting.tile_images`); a family without a recipe for the data gets a
  panel that says why.
* ``quality_vs_cost.png`` -- one point per family/sampler: the seconds one sample costs
  at batch ``n`` (the inverse of the measured throughput, log scale) against the quality
  figure (mean over seeds, the bar one standard deviation), with the real-data floor as
  a dashed line.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np

from genjax import data as data_lib
from genjax import plotting

__all__ = ["sheet", "quality_vs_cost", "quality_name"]


def quality_name(data_name: str) -> str:
    """What the quality axis measures: energy distance (ring) or Fréchet distance (digits)."""
    return (
        "energy distance to held-out points"
        if data_name == "ring"
        else "Fréchet distance of classifier features"
    )


def _title(row: dict) -> str:
    name = row["sampler"] or "n/a"
    return f"{row['family']}\n{name}"


def _save(fig, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=fig.dpi)


def sheet(result: dict, path: Path) -> Path:
    """Writes the samples sheet of ``result`` (what :func:`genjax.compare.compare` returns)."""
    from matplotlib.figure import Figure

    rows = result["rows"]
    cols = min(6, len(rows))
    lines = math.ceil(len(rows) / cols)
    fig = Figure(figsize=(2.4 * cols, 2.7 * lines), dpi=100)
    ring = result["data"] == "ring"
    real = data_lib.load(result["data"], split="test", seed=0)
    for i, row in enumerate(rows):
        ax = fig.add_subplot(lines, cols, i + 1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(_title(row), fontsize=8)
        if row["status"] != "ok":
            ax.text(
                0.5,
                0.5,
                "n/a\n" + textwrap.fill(row["reason"], 24),
                ha="center",
                va="center",
                fontsize=6,
                transform=ax.transAxes,
            )
            continue
        samples = np.asarray(row["sheet_samples"])
        if ring:
            ax.scatter(real[:1000, 0], real[:1000, 1], s=1, c="0.8", rasterized=True)
            ax.scatter(samples[:, 0], samples[:, 1], s=2, c="C3", rasterized=True)
            ax.set_xlim(-6, 6)
            ax.set_ylim(-6, 6)
            ax.set_aspect("equal")
        else:
            ax.imshow(
                plotting.tile_images(samples[:36], nrow=6)[..., 0],
                cmap="gray",
                vmin=0.0,
                vmax=1.0,
                interpolation="nearest",
            )
    fig.suptitle(
        f"genjax compare --data {result['data']}: seed 0 samples, "
        f"{result['budget_seconds']:g} s of training per family",
        fontsize=10,
    )
    fig.tight_layout()
    _save(fig, path)
    return path


def quality_vs_cost(result: dict, path: Path) -> Path:
    """Writes the quality-versus-sampling-cost scatter of ``result``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 5.0), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    for i, row in enumerate(r for r in result["rows"] if r["status"] == "ok"):
        cost = 1.0 / row["speed"]["samples_per_second"]
        q = row["quality"]
        if not q["mean"] > 0:  # a log axis: a diverged row (NaN) has no point
            continue
        ax.errorbar(
            [cost], [q["mean"]], yerr=[[0.0], [q["std"]]], fmt="o", color=f"C{i % 10}", capsize=3
        )
        ax.annotate(
            f"{row['family']}: {row['sampler']}",
            (cost, q["mean"]),
            fontsize=7,
            xytext=(4, 3),
            textcoords="offset points",
        )
    floor = result["reference"]["quality"]
    ax.axhline(floor, ls="--", c="0.4", lw=1)
    # x in axes units, y in data units: the label sits at the left end of the line
    ax.text(0.01, floor, " real vs real", transform=ax.get_yaxis_transform(), fontsize=7,
            color="0.4", va="bottom")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"seconds per sample (batch {result['num_samples']}, compile apart)")
    ax.set_ylabel(quality_name(result["data"]) + " (lower is better)")
    ax.set_title(
        f"quality vs sampling cost, {result['data']}, mean of {result['seeds']} seed(s)",
        fontsize=10,
    )
    fig.tight_layout()
    _save(fig, path)
    return path
