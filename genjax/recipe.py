"""``Recipe``: the frozen description of one ``genjax train NAME`` job.

A bottom-layer module (it imports nothing of genjax) so that each family's ``recipes.py``
imports it and :mod:`genjax.registry` collects the families' ``RECIPES`` without either
importing the other. The trainer (:mod:`genjax.train`) reads a recipe field by field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["Recipe", "PyTree"]

PyTree = Any


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One training job, passed field by field to :func:`genjax.train.fit`.

    Exactly one of ``loss`` and ``step`` is given.

    * ``loss(params, batch, key) -> (loss, metrics)``: the trainer differentiates it with
      respect to ``params`` and applies ``optimizer(total_steps)`` (default
      ``optax.adam(learning_rate)``).
    * ``step(params, batch, key) -> (params, metrics)``: a whole update written by the
      family (EM iterations, counting, a GAN's two players). ``params`` is then whatever
      pytree of arrays ``init`` returns, optimiser states included.

    ``metrics`` is a flat dict of scalar arrays; it is logged to ``metrics.jsonl``.
    """

    name: str
    family: str
    summary: str  # one line for `genjax list`
    data: str  # default data set: a name for genjax.data.load, or a path
    init: Callable[[Any, PyTree], PyTree]  # (key, train_data) -> params
    sample: Callable[..., Any]  # (key, params, n, **options) -> samples
    # Writes the picture(s) of a run into out_dir and returns the quality figures for
    # summary.json: (key, params, train_data, test_data, out_dir) -> dict of floats.
    report: Callable[[Any, PyTree, PyTree, PyTree, Path], dict]
    loss: Callable[..., tuple[Any, dict]] | None = None
    step: Callable[..., tuple[PyTree, dict]] | None = None
    steps: int = 2000
    batch_size: int = 256
    learning_rate: float = 1e-3
    optimizer: Callable[[int], Any] | None = None  # total steps -> optax transformation
    ema_decay: float | None = None  # keep an exponential moving average of params
    full_batch: bool = False  # each step sees the whole training set (EM, counting)
    # (name, split, seed) -> data pytree with a leading example axis; default
    # genjax.data.load. Lets a recipe train on (images, labels) pairs.
    load_data: Callable[[str, str, int], PyTree] | None = None
    checkpoint_every: int = 500
    sample_options: tuple[str, ...] = ()  # options `genjax sample` may pass to `sample`
    # Keys of the report's figures that describe the built-in data `data` rather than the
    # data trained on (the ring's true log-likelihood, its 8-mode coverage, a digit
    # classifier's verdict): when `genjax train --data` names other data, the trainer
    # labels them "not applicable" instead of reporting them. A name also covers its tagged
    # variants: "mode_coverage" labels "mode_coverage_ddim" and "mode_coverage_100_steps".
    data_figures: tuple[str, ...] = ()
    # For `genjax train NAME --base RUN_DIR`: RUN_DIR -> the recipe that starts from the
    # model trained in RUN_DIR (fine-tuning) instead of training its base itself.
    with_base: Callable[[Path], Recipe] | None = None

    def __post_init__(self) -> None:
        if (self.loss is None) == (self.step is None):
            raise ValueError(f"recipe {self.name!r}: give exactly one of loss and step")
        if self.steps < 1:
            raise ValueError(f"recipe {self.name!r}: steps must be >= 1, got {self.steps}")
        if self.batch_size < 1:
            raise ValueError(
                f"recipe {self.name!r}: batch_size must be >= 1, got {self.batch_size}"
            )
