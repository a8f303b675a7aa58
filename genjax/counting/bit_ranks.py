"""Ranks and selects over the occupancy of a dense count table, packed 32 entries a word.

The n-gram counting of :mod:`genjax.counting.ngram_tables` fills a dense table of counts
by one scatter-add and then needs, without sorting, (a) the rank of an entry among the
occupied ones (its index in the sorted table of distinct grams) and (b) the j-th occupied
entry (the sorted distinct grams themselves). Both come from the occupancy as bits (the
succinct rank/select structure of Jacobson 1989): the table packed into ``ceil(size / 32)``
uint32 words and the exclusive prefix sum of their population counts (a scan 32 times
shorter than the table). ``rank(x)`` is the prefix sum before x's word plus the popcount of
that word left of x's bit (two gathers); ``select(j)`` is a binary search of the running
sums for the word, then five halvings of a popcount for the bit.

:func:`over_prefix` walks the first ``num_valid`` entries of a table of static capacity in
chunks (a loop whose trip count is known at run time), so that work scales with the
distinct grams, not the corpus length.

References:
  G. Jacobson, "Space-efficient static trees and graphs", FOCS (1989).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "Occupancy",
    "occupancy",
    "rank_of",
    "select",
    "popcount",
    "exclusive_cumsum",
    "over_prefix",
    "fit_length",
]

_SCAN_BLOCK = 1024  # the prefix sum below runs within blocks of this many, then over blocks


def exclusive_cumsum(x: jax.Array) -> jax.Array:
    """sum_{j < i} x_j for a 1-D int32 array, as two short prefix sums.

    jnp.cumsum lowers to an associative scan on CPU, several times slower than a
    reduce_window within blocks of 1024 plus a prefix sum over the block totals.
    """
    size = x.shape[0]
    padded = jnp.pad(x, (0, -size % _SCAN_BLOCK)).reshape(-1, _SCAN_BLOCK)
    inner = jax.lax.reduce_window(
        padded, 0, jax.lax.add, (1, _SCAN_BLOCK), (1, 1), ((0, 0), (_SCAN_BLOCK - 1, 0))
    )  # inclusive prefix sums within each block
    block_totals = inner[:, -1]
    offsets = jnp.cumsum(block_totals) - block_totals  # (num_blocks,): a short scan
    return (inner + offsets[:, None]).reshape(-1)[:size] - x


class Occupancy(NamedTuple):
    """Which entries of a dense count table are nonzero, packed 32 to a word."""

    bits: jax.Array  # (W,) uint32: bit b of word j is entry 32 j + b
    before: jax.Array  # (W,) int32: occupied entries in the words before word j
    through: jax.Array  # (W,) int32: occupied entries in words 0..j (nondecreasing)
    count: jax.Array  # () int32: occupied entries in all


def popcount(x: jax.Array) -> jax.Array:
    """Set bits of each uint32 word, as int32. x: (...) -> (...)."""
    return jax.lax.population_count(x).astype(jnp.int32)


def occupancy(table: jax.Array) -> Occupancy:
    """The occupancy words of a (size,) count table and their exclusive popcount sums."""
    size = table.shape[0]
    num_words = -(-size // 32)
    occupied = jnp.pad(table > 0, (0, num_words * 32 - size)).reshape(num_words, 32)
    bits = jnp.sum(
        occupied.astype(jnp.uint32) << jnp.arange(32, dtype=jnp.uint32)[None, :],
        axis=1,
        dtype=jnp.uint32,
    )
    ones = popcount(bits)
    before = exclusive_cumsum(ones)
    return Occupancy(bits, before, before + ones, before[-1] + ones[-1])


def rank_of(occ: Occupancy, query: jax.Array) -> jax.Array:
    """Occupied entries below each query (its rank when occupied): two gathers, a popcount.

    query: (Q,) int32 in [0, size) -> (Q,) int32.
    """
    word, bit = query >> 5, (query & 31).astype(jnp.uint32)
    below = occ.bits.at[word].get(mode="promise_in_bounds") & ((jnp.uint32(1) << bit) - 1)
    return occ.before.at[word].get(mode="promise_in_bounds") + popcount(below)


def select(occ: Occupancy, j: jax.Array) -> jax.Array:
    """The j-th occupied entry (0-based, increasing order), the inverse of :func:`rank_of`.

    j: (Q,) int32 in [0, count) -> (Q,) int32 entries. The word by a binary search of the
    running popcounts, the bit within it by five halvings of a popcount (the largest p
    with popcount(word & (2**p - 1)) <= j - before[word]).
    """
    num_words = occ.bits.shape[0]
    word = jnp.minimum(jnp.searchsorted(occ.through, j, side="right"), num_words - 1)
    word = word.astype(jnp.int32)
    bits = occ.bits.at[word].get(mode="promise_in_bounds")
    within = j - occ.before.at[word].get(mode="promise_in_bounds")
    pos = jnp.zeros(j.shape, jnp.uint32)
    for step in (16, 8, 4, 2, 1):
        trial = pos + jnp.uint32(step)
        fits = popcount(bits & ((jnp.uint32(1) << trial) - 1)) <= within
        pos = jnp.where(fits, trial, pos)
    return word * 32 + pos.astype(jnp.int32)


# --------------------------------------------------------------------------------------
# walking the distinct entries of a fixed-capacity table
# --------------------------------------------------------------------------------------

_CHUNK = 2**14  # entries per step of over_prefix


def over_prefix(length: int, num_valid: jax.Array, body, init):
    """Runs ``body(carry, start, size, real, new)`` over the chunks of ``[0, num_valid)``.

    The tables of distinct grams have a static capacity but only their first
    ``num_valid`` entries are real; a loop over chunks of :data:`_CHUNK` entries with a
    trip count known at run time touches those only (a 10**6-slot table of 60,000 distinct
    5-grams: 4 steps, not 62). The last chunk's start is clamped to stay inside the table,
    so it may overlap the one before: ``real`` (size,) marks the entries below
    ``num_valid`` (a body that writes values writes these: the overlap gets the same
    values again) and ``new`` those no earlier chunk saw (a body that adds uses these).
    """
    size = min(length, _CHUNK)

    def step(c, carry):
        start = jnp.minimum(c * size, length - size)
        position = start + jnp.arange(size, dtype=jnp.int32)
        real = position < num_valid
        return body(carry, start, size, real, real & (position >= c * size))

    return jax.lax.fori_loop(0, (num_valid + size - 1) // size, step, init)


def fit_length(x: jax.Array, length: int) -> jax.Array:
    """(n,) x cut or zero-padded to ``length`` entries (ranks past the distinct grams are 0)."""
    return x[:length] if x.shape[0] >= length else jnp.pad(x, (0, length - x.shape[0]))
