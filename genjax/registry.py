"""Recipes: what ``genjax train NAME`` runs.

A :class:`Recipe` is a frozen description of one end-to-end training job: how to build
the parameters, the objective (or a custom step for procedures that are not gradient
descent, such as EM or a GAN's alternating updates), how to sample from the result, and
how to judge and draw it. Each family declares its recipes in ``<family>/recipes.py`` as a
module-level ``RECIPES`` tuple; this module collects them. Dependencies run one way: the
registry imports the recipes, a family's math never imports the registry.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

PyTree = Any

#: The family modules whose ``RECIPES`` make up ``genjax list``. A module that does not
#: exist yet (a family still being written) is skipped, so the list can name the plan.
RECIPE_MODULES: tuple[str, ...] = (
    "genjax.diffusion.recipes",
    "genjax.vae.recipes",
    "genjax.counting.recipes",
    "genjax.mixture.recipes",
    "genjax.flows.recipes",
    "genjax.autoregressive.recipes",
    "genjax.gan.recipes",
    "genjax.energy.recipes",
    "genjax.contrastive.recipes",
)

#: What ``genjax train`` with no recipe runs (falls back to the first recipe found when the
#: diffusion family is absent).
DEFAULT_RECIPE = "ddpm"


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

    def __post_init__(self) -> None:
        if (self.loss is None) == (self.step is None):
            raise ValueError(f"recipe {self.name!r}: give exactly one of loss and step")
        if self.steps < 1:
            raise ValueError(f"recipe {self.name!r}: steps must be >= 1, got {self.steps}")
        if self.batch_size < 1:
            raise ValueError(
                f"recipe {self.name!r}: batch_size must be >= 1, got {self.batch_size}"
            )


def _collect() -> dict[str, Recipe]:
    found: dict[str, Recipe] = {}
    for module_name in RECIPE_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            # Only a missing family is tolerated; a broken import inside one is a bug.
            if err.name is not None and module_name.startswith(err.name):
                continue
            raise
        for recipe in module.RECIPES:
            if recipe.name in found:
                raise ValueError(f"recipe {recipe.name!r} is declared twice")
            found[recipe.name] = recipe
    return found


def recipes() -> dict[str, Recipe]:
    """All recipes, by name, in the order of :data:`RECIPE_MODULES`."""
    return _collect()


def default_recipe_name() -> str:
    names = list(recipes())
    if not names:
        raise ValueError("no recipes are registered")
    return DEFAULT_RECIPE if DEFAULT_RECIPE in names else names[0]


def get(name: str) -> Recipe:
    """The recipe called ``name``; a ValueError lists the known names otherwise."""
    table = recipes()
    if name not in table:
        raise ValueError(f"unknown recipe {name!r}; known recipes: {', '.join(table)}")
    return table[name]
