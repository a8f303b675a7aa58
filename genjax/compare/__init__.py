"""``genjax compare``: the surveys' trade-off table, measured.

Every family's representative recipe is trained on the same data for the same wall-clock
budget over several seeds (:mod:`genjax.compare.runner`), read through per-family
adapters (:mod:`genjax.compare.adapters`), scored by the shared metrics
(:mod:`genjax.compare.measure`), and written as a table (:mod:`genjax.compare.report`)
and pictures (:mod:`genjax.compare.figures`). It sits beside the trainer at the top
layer: it imports the recipes; no family imports it.
"""

from genjax.compare.runner import DEFAULT_BUDGET, DEFAULT_SEEDS, NUM_SAMPLES, compare

__all__ = ["compare", "DEFAULT_BUDGET", "DEFAULT_SEEDS", "NUM_SAMPLES"]
