"""Recipes (filled in by the family's authors)."""

from genjax.registry import Recipe

RECIPES: tuple[Recipe, ...] = ()
