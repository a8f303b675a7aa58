"""Recipes: what ``genjax train NAME`` runs.

A :class:`Recipe` is a frozen description of one end-to-end training job: how to build
the parameters, the objective (or a custom step for procedures that are not gradient
descent, such as EM or a GAN's alternating updates), how to sample from the result, and
how to judge and draw it. Each family declares its recipes in ``<family>/recipes.py`` as a
module-level ``RECIPES`` tuple; this module collects them. Dependencies run one way: the
registry imports the recipes, a family's math never imports the registry.
"""

from __future__ import annotations

import importlib

from genjax.recipe import PyTree, Recipe

__all__ = ["Recipe", "PyTree", "RECIPE_MODULES", "recipes", "get", "default_recipe_name"]

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
    "genjax.composites.recipes",
    "genjax.composites.token_recipes",
    "genjax.composites.vision_language_recipes",
    "genjax.composites.unclip_recipes",
    # architectures and adaptation: DiT, video DiT, LoRA, distillation, StyleGAN2, pix2pix,
    # flow posteriors
    "genjax.diffusion.dit_recipes",
    "genjax.diffusion.video_recipes",
    "genjax.diffusion.lora_recipes",
    "genjax.diffusion.distill_recipes",
    "genjax.gan.stylegan_recipes",
    "genjax.gan.pix2pix_recipes",
    "genjax.composites.flow_posterior_recipes",
)

#: What ``genjax train`` with no recipe runs (falls back to the first recipe found when the
#: diffusion family is absent).
DEFAULT_RECIPE = "ddpm"


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
    """The recipe ``genjax train`` runs when none is named."""
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
