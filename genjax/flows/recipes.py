"""The flows family's entries for ``genjax train``: discrete flows, then continuous ones."""

from genjax.flows.recipes_continuous import RECIPES as CONTINUOUS
from genjax.flows.recipes_discrete import RECIPES as DISCRETE

RECIPES = DISCRETE + CONTINUOUS
