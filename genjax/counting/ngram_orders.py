"""Counting one order of n-grams: a dense histogram read through its occupancy, or a sort.

The engine under :func:`genjax.counting.ngram_tables.count_tables`. Order k's grams are
ids ``rank(u) * V + w`` (u the (k-1)-gram prefix, ranked in order k - 1's sorted table);
:func:`counting_plan` decides, from static shapes, how each order is counted:

* by **codes** (:func:`count_by_codes`): the m-grams' base-V codes in one dense table of
  ``V**m`` entries (one scatter-add), every lower order its sum over the last word;
* **dense** (:func:`unique_dense`): one scatter-add into a table of ``D * V`` entries,
  D the distinct (k-1)-grams; ranks and the sorted distinct ids from the occupancy bits
  (:mod:`genjax.counting.bit_ranks`), no sort;
* **sort** (:func:`unique_sort`): ``jnp.sort`` and ``jnp.searchsorted``, when D * V is
  too large for the budget (chosen at run time among :func:`table_sizes` when only the
  corpus knows D).

On XLA:CPU a scatter-add of 10**6 ids costs ~2-4 ms and a sort of them ~50-90 ms, hence
the dense paths. References: Chen & Goodman (1999) for the counts' use.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from genjax.counting.bit_ranks import (
    Occupancy,
    fit_length,
    occupancy,
    over_prefix,
    rank_of,
    select,
)

__all__ = [
    "DENSE_BUDGET",
    "SENTINEL",
    "counting_plan",
    "table_sizes",
    "count_by_codes",
    "unique_dense",
    "unique_sort",
    "list_distinct",
    "row_types",
    "no_occupancy",
]

SENTINEL = int(jnp.iinfo(jnp.int32).max)  # pads the sorted id tables; larger than every id
_SENTINEL = SENTINEL


def list_distinct(occ: Occupancy, table: jax.Array, cap: int, key_to_id):
    """The occupied entries of a dense table in increasing order, as sorted gram ids.

    Entry j of the output is the j-th occupied key (:func:`select`), written as the id
    ``key_to_id(key)`` (increasing too), with its count ``table[key]``; padded with the
    sentinel (ids, keys) and 0 (counts) to ``cap``. Only the distinct entries are visited.
    Returns unique_ids (cap,), counts (cap,), keys (cap,).
    """

    def body(carry, start, size, real, new):
        ids, counts, keys = carry
        key = select(occ, jnp.where(real, start + jnp.arange(size, dtype=jnp.int32), 0))
        count = table.at[key].get(mode="fill", fill_value=0)
        ids = jax.lax.dynamic_update_slice(ids, jnp.where(real, key_to_id(key), _SENTINEL),
                                           (start,))  # fmt: skip
        counts = jax.lax.dynamic_update_slice(counts, jnp.where(real, count, 0), (start,))
        keys = jax.lax.dynamic_update_slice(keys, jnp.where(real, key, _SENTINEL), (start,))
        return ids, counts, keys

    empty = jnp.full((cap,), _SENTINEL, jnp.int32)
    return over_prefix(cap, occ.count, body, (empty, jnp.zeros((cap,), jnp.int32), empty))


def row_types(occ: Occupancy, num_rows: int, vocab_size: int) -> jax.Array:
    """Occupied entries in each row of V entries of a dense table: (num_rows,) int32."""
    start = rank_of(occ, jnp.arange(0, num_rows * vocab_size, vocab_size, dtype=jnp.int32))
    return jnp.diff(jnp.append(start, occ.count))


def unique_dense(ids: jax.Array, cap: int, table_size: int, vocab_size: int, cap_context: int,
                  need_slots: bool, num_words: int):  # fmt: skip
    """Sorted distinct ids and counts of ids known to lie in ``[0, table_size)``, unsorted.

    A dense table of counts, one row of V entries per context rank, filled by one
    scatter-add (a histogram); the distinct ids are its occupied entries, listed in order
    by :func:`select`, and a position's slot among them is :func:`rank_of` its id. The
    context types N1+(u .) are the rows' occupied entries.
    ids: (P,) int32 -> the same six values as :func:`unique_sort`, the last the table's
    :class:`Occupancy` with its words padded to ``num_words`` (so that the branches of a
    ``lax.switch`` over table sizes agree), for the continuation counts' lookups.
    """
    table = jnp.zeros((table_size,), jnp.int32).at[ids].add(1, mode="promise_in_bounds")
    occ = occupancy(table)
    unique_ids, counts, _ = list_distinct(occ, table, cap, lambda key: key)
    types = fit_length(row_types(occ, table_size // vocab_size, vocab_size), cap_context)
    slots = rank_of(occ, ids) if need_slots else jnp.zeros((0,), jnp.int32)
    pad = (0, num_words - occ.bits.shape[0])  # past the table: no entries, all below
    before = jnp.pad(occ.before, pad, constant_values=occ.count)
    through = jnp.pad(occ.through, pad, constant_values=occ.count)
    padded = Occupancy(jnp.pad(occ.bits, pad), before, through, occ.count)
    return unique_ids, counts, slots, types, occ.count, padded


def no_occupancy(num_words: int) -> Occupancy:
    """An empty occupancy of ``num_words`` words (the shape a sorted order carries)."""
    words = jnp.zeros((num_words,), jnp.int32)
    return Occupancy(words.astype(jnp.uint32), words, words, jnp.zeros((), jnp.int32))


def unique_sort(ids: jax.Array, cap: int, table_size: int, vocab_size: int, cap_context: int,
                 need_slots: bool, num_words: int):  # fmt: skip
    """Sorted distinct ids and their counts, by one sort and scatter-adds.

    ids: (P,) int32 -> unique_ids (cap,) padded with the sentinel, counts (cap,) int32,
    slots (P,) (the index of each position's id in unique_ids; (0,) unless
    ``need_slots``), the context types N1+(u .) (cap_context,) by rank(u), and the number
    of distinct ids (), and an empty occupancy of ``num_words`` words (the shape of
    :func:`unique_dense`'s; the lookups search ``unique_ids`` instead). A plain sort and a
    search back, because a sort that carries the permutation (argsort) is ~10x slower on
    XLA:CPU. ``table_size`` is unused (the signature of :func:`unique_dense`).
    """
    del table_size
    sorted_ids = jnp.sort(ids)
    first = jnp.concatenate([jnp.ones((1,), bool), sorted_ids[1:] != sorted_ids[:-1]])
    slot = jnp.cumsum(first.astype(jnp.int32)) - 1  # (P,) index among the distinct ids
    unique_ids = jnp.full((cap,), _SENTINEL, jnp.int32).at[slot].set(sorted_ids)
    counts = jnp.zeros((cap,), jnp.int32).at[slot].add(1)  # c(gram): scatter-add of ones
    slots = jnp.zeros((0,), jnp.int32)
    if need_slots:
        slots = jnp.searchsorted(unique_ids, ids).astype(jnp.int32)  # exact hits
    valid = unique_ids != _SENTINEL
    parent = jnp.where(valid, unique_ids // vocab_size, cap_context)  # rank(u); padding: dropped
    types = jnp.zeros((cap_context,), jnp.int32).at[parent].add(1, mode="drop")  # N1+(u .)
    return unique_ids, counts, slots, types, slot[-1] + 1, no_occupancy(num_words)


# Entries of the largest dense counting table. 2**22 int32 counts are 16 MiB; with the
# occupancy and its bit words an order's temporaries are a few times that (tens of MiB).
# It holds e.g. the 5-grams of a 10**6-character corpus with V = 97 (32,599 distinct
# 4-gram contexts * 97 = 3.2M ids); a larger D falls back to the sort.
DENSE_BUDGET = 2**22
_DENSE_PER_POSITION = 8  # at most this many table entries per k-gram position ...
_DENSE_FLOOR = 2**16  # ... unless the table is this small anyway (256 KiB)


def counting_plan(n: int, num_tokens: int, vocab_size: int, budget: int) -> list[tuple]:
    """How each order k = 1..n is counted: a list of ``(how, table_size)``.

    * ``("codes", V**k)``: orders 1..m, where m is the highest order whose ``V**m`` codes
      fit the budget: the m-grams' base-V codes are counted in one dense table and every
      lower order's table is its sum over the last word (plus the one k-gram that ends the
      corpus);
    * ``("dense", size)``: above m, the ids ``rank(u) * V + w`` lie below ``D * V`` with D
      the number of distinct (k-1)-grams, ``D <= min(N - k + 2, V**(k-1))``; when that
      bound fits the budget a dense table of it always suffices;
    * ``("cond", size)``: otherwise the smallest of a few tables of up to the budget
      (rounded down to a multiple of V; see :func:`table_sizes`) that the corpus's ids
      turn out to fit, chosen at run time by ``lax.switch``, and the sort when none does;
    * ``("sort", 0)``: a budget below V.

    The budget of order k is also held to :data:`_DENSE_PER_POSITION` entries per k-gram
    position (but at least :data:`_DENSE_FLOOR`): a table much larger than a short corpus
    costs more to clear and scan than sorting the corpus.
    """
    V = vocab_size

    def limit(k):
        return min(budget, max(_DENSE_PER_POSITION * max(num_tokens - k + 1, 1), _DENSE_FLOOR))

    m = 0
    while m < n and V ** (m + 1) <= limit(m + 1):
        m += 1
    plan = [("codes", V**k) for k in range(1, m + 1)]
    for k in range(m + 1, n + 1):
        bound = min(max(num_tokens - k + 2, 1), V ** (k - 1)) * V
        if bound <= limit(k):
            plan.append(("dense", bound))
        elif limit(k) >= V:
            plan.append(("cond", limit(k) // V * V))
        else:
            plan.append(("sort", 0))
    return plan


_SIZES_PER_OCTAVE = 1  # candidate tables of a "cond" order: sizes a factor 2 apart
_OCTAVES = 2  # ... from the budget down to a quarter of it


def table_sizes(size: int, vocab_size: int) -> list[int]:
    """The candidate table sizes of a ``("cond", size)`` order, increasing, multiples of V.

    Clearing the table and packing its occupancy cost in proportion to its size, so an
    order whose D * V turns out far below the budget (10**6 characters: 12,519 distinct
    3-grams * 97 = 1.2M of 4.2M) gets a table nearer to it (2.1M). Every size is a branch
    of a ``lax.switch``, compiled whether taken or not: three (a factor 2 apart) cost about
    1 s of compile on two cores over one; a finer grid measured no faster under load.
    """
    rows = size // vocab_size
    steps = range(_SIZES_PER_OCTAVE * _OCTAVES, -1, -1)
    fractions = {max(int(rows * 2 ** (-i / _SIZES_PER_OCTAVE)), 1) for i in steps}
    return [r * vocab_size for r in sorted(fractions)]


def count_by_codes(tokens: jax.Array, m: int, vocab_size: int, caps: list[int],
                    need_slots: bool):  # fmt: skip
    """Orders 1..m from one dense table of the m-grams' base-V codes.

    code(x_i .. x_{i+m-1}) = sum_j x_{i+j} V**(m-1-j) < V**m. The table of order k < m is
    the table of order k + 1 summed over its last word, plus the k-gram at N - k (it
    starts no (k+1)-gram). The distinct k-grams are the occupied codes in increasing order
    (:func:`select`); their ids ``rank(u) * V + w`` follow from the (k-1)-gram table's
    ranks, which keep the order of the codes. Returns, per order, (unique_ids, counts,
    types, num_distinct, find) with ``find(rank(u), w)`` the rank of the k-gram (u w) (seen
    in the corpus) by its code, and the slots of the m-grams' positions (or None).
    """
    V = vocab_size
    num_tokens = tokens.shape[0]

    def codes(start, length, width):  # (length,) codes of the width-grams at start..
        code = jnp.zeros((length,), jnp.int32)
        for j in range(width):
            code = code * V + tokens[start + j : start + j + length]
        return code

    num_positions = max(num_tokens - m + 1, 0)
    top_codes = codes(0, num_positions, m)
    tables = [jnp.zeros((V**m,), jnp.int32).at[top_codes].add(1, mode="promise_in_bounds")]
    for k in range(m - 1, 0, -1):  # c(g) = sum_w c(g w), + 1 for the k-gram ending the corpus
        table = jnp.sum(tables[0].reshape(V**k, V), axis=1, dtype=jnp.int32)
        if num_tokens - k >= 0:
            table = table.at[codes(num_tokens - k, 1, k)].add(1)
        tables.insert(0, table)
    occupancies = [occupancy(t) for t in tables]
    out, keys = [], None
    for k in range(1, m + 1):
        occ = occupancies[k - 1]
        if k == 1:
            key_to_id = lambda key: key  # noqa: E731  (rank of the empty context is 0)
        else:
            # id(u w) = rank(u) * V + w; code(u w) = code(u) * V + w
            key_to_id = lambda key, below=occupancies[k - 2]: (  # noqa: E731
                rank_of(below, key // V) * V + key % V
            )
        unique_ids, counts, new_keys = list_distinct(occ, tables[k - 1], caps[k], key_to_id)
        rows = row_types(occ, V ** (k - 1), V)  # N1+(u .) by code(u)
        types = rows if keys is None else rows.at[keys].get(mode="fill", fill_value=0)

        def find(parent, w, occ=occ, keys=keys):  # code(u w) = code(u) V + w; code(u) by rank
            code_u = 0 if keys is None else keys.at[parent].get(mode="promise_in_bounds")
            return rank_of(occ, code_u * V + w)

        out.append((unique_ids, counts, types, occ.count, find))
        keys = new_keys
    slots = rank_of(occupancies[-1], top_codes) if need_slots else None
    return out, slots
