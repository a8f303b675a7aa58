"""The autoregressive family's entries for ``genjax train``: networks, then decoding demos."""

from genjax.autoregressive.recipes_decoding import RECIPES as DECODING
from genjax.autoregressive.recipes_networks import RECIPES as NETWORKS

RECIPES = NETWORKS + DECODING
