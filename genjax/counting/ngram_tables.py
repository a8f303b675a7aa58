"""The n-gram table engine: every order's counts as sorted id tables, and their lookups.

What an n-gram language model (:mod:`genjax.counting.ngram`) reads: for every order
``k = 1..n`` the raw counts ``c(u w)`` of the k-grams of a corpus, their context totals
``c(u .)`` and types ``N1+(u .)``, and the continuation counts ``N1+(. u w)`` of Kneser-Ney
(Chen & Goodman 1999, eq. 17) with their totals and types. This module builds them
(:func:`count_tables`, one jitted program) and looks grams up (:func:`counts`,
:func:`continuation_counts`, :func:`context_lookups`); the smoothing lives in the language
model.

Representation (why not a dense ``V**n`` table): for every order ``k = 1..n`` the distinct
k-grams are kept as a sorted int32 array of ids, looked up with ``jnp.searchsorted``. A
k-gram ``(u, w)`` gets the id ``rank(u) * V + w`` where ``rank(u)`` is the position of its
(k-1)-gram prefix ``u`` in the sorted table of order k - 1, so ids stay below
``num_tokens * V`` for any order (one int32 as long as that is < 2**31) and memory is
``O(n * num_tokens)`` whatever ``V**n`` is. Table ``k`` has a fixed capacity of
``max(num_tokens - k + 1, 1)`` slots (an upper bound on the distinct k-grams), padded with
int32-max, so shapes depend only on the corpus length and counting is one jitted program.

Counting (how the sorted tables are built; the tables are the same either way): order k's
ids lie below ``D * V`` where ``D <= min(cap_{k-1}, V**(k-1))`` is the number of distinct
(k-1)-grams. When that static bound fits a budget of :data:`DENSE_BUDGET` entries (and 8
per k-gram position, at least 2**16, so that short corpora get no huge tables), the order is
counted without a sort: a histogram (one scatter-add of ones into a dense table, one row of
V per context rank), the table's occupancy packed into 32-bit words, and each id's rank
among the distinct ids as the prefix sum of the words' popcounts before its word plus the
popcount of its own word left of its bit (two gathers); a scatter of the ids to their ranks
gives the sorted distinct ids. Above the bound, a ``lax.cond`` uses a budget-sized dense
table when the corpus's own ``D`` is small enough and the sort (``jnp.sort`` plus
``jnp.searchsorted``) otherwise; on XLA:CPU the sort is several times slower than the
dense pass on 10**6 tokens.

What is derived rather than counted: the context totals ``c(u .) = c(u)`` less one for the
(k-1)-gram that ends the corpus; the context types ``N1+(u .)`` as differences of the ranks
of the table rows' first entries; the continuation types ``#{w: N1+(. u w) > 0}`` as
``N1+(u .)`` less the k-gram at position 0 when it occurs nowhere else. The continuation
counts and their totals are scatter-adds over the distinct (k+1)-grams only: the tables
have a static capacity (the corpus length) but their real entries are a prefix, walked in
chunks by a loop whose trip count is known at run time (:func:`_over_prefix`).

References:
  Chen & Goodman, "An Empirical Study of Smoothing Techniques for Language Modeling",
  Harvard TR-10-98 (1999).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from genjax import checks

__all__ = [
    "NGramModel",
    "DENSE_BUDGET",
    "SENTINEL",
    "count_tables",
    "find",
    "in_vocab",
    "counts",
    "continuation_counts",
    "context_lookups",
]

_INT32_MAX = int(np.iinfo(np.int32).max)
SENTINEL = _INT32_MAX  # pads the sorted id tables; larger than every real id
_SENTINEL = SENTINEL


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=[
        "gram_ids",
        "gram_counts",
        "gram_continuations",
        "context_totals",
        "context_types",
        "continuation_totals",
        "continuation_types",
        "alpha",
        "discount",
    ],
    meta_fields=["n", "vocab_size", "smoothing"],
)
@dataclasses.dataclass(frozen=True)
class NGramModel:
    """Counts of one corpus for every order 1..n, and the smoother that reads them.

    The count tables are this module's (:func:`count_tables`); ``alpha``, ``discount`` and
    ``smoothing`` are the language model's (:func:`genjax.counting.ngram.fit`). Tuples are
    indexed by ``k - 1`` for the order ``k``; ``cap_k = max(N - k + 1, 1)`` for a corpus of
    ``N`` tokens (``cap_0 = 1``: the empty context).

    Example:
      >>> model = ngram.fit(jnp.array([0, 1, 2] * 4), n=2, vocab_size=3)
      >>> isinstance(model, NGramModel), model.n, model.vocab_size
      (True, 2, 3)
    """

    gram_ids: tuple[jax.Array, ...]  # order k: (cap_k,) int32, sorted ids rank(u) * V + w
    gram_counts: tuple[jax.Array, ...]  # order k: (cap_k,) int32, c(u w)
    gram_continuations: tuple[jax.Array, ...]  # order k < n: (cap_k,) int32, N1+(. u w)
    context_totals: tuple[jax.Array, ...]  # order k: (cap_{k-1},) int32, c(u .) by rank(u)
    context_types: tuple[jax.Array, ...]  # order k: (cap_{k-1},) int32, N1+(u .)
    continuation_totals: tuple[jax.Array, ...]  # order k < n: (cap_{k-1},), sum_w N1+(. u w)
    continuation_types: tuple[jax.Array, ...]  # order k < n: (cap_{k-1},), #{w: N1+(. u w) > 0}
    alpha: jax.Array  # () float, add-k's k
    discount: jax.Array  # () float, Kneser-Ney's D
    n: int
    vocab_size: int
    smoothing: str


# --------------------------------------------------------------------------------------
# occupancy bits: ranks and selects over a dense table without a table-wide prefix sum
# --------------------------------------------------------------------------------------

_SCAN_BLOCK = 1024  # the prefix sum below runs within blocks of this many, then over blocks


def _exclusive_cumsum(x: jax.Array) -> jax.Array:
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


class _Occupancy(NamedTuple):
    """Which entries of a dense count table are nonzero, packed 32 to a word."""

    bits: jax.Array  # (W,) uint32: bit b of word j is entry 32 j + b
    before: jax.Array  # (W,) int32: occupied entries in the words before word j
    through: jax.Array  # (W,) int32: occupied entries in words 0..j (nondecreasing)
    count: jax.Array  # () int32: occupied entries in all


def _popcount(x: jax.Array) -> jax.Array:
    return jax.lax.population_count(x).astype(jnp.int32)


def _occupancy(table: jax.Array) -> _Occupancy:
    """The occupancy words of a (size,) count table and their exclusive popcount sums."""
    size = table.shape[0]
    num_words = -(-size // 32)
    occupied = jnp.pad(table > 0, (0, num_words * 32 - size)).reshape(num_words, 32)
    bits = jnp.sum(
        occupied.astype(jnp.uint32) << jnp.arange(32, dtype=jnp.uint32)[None, :],
        axis=1,
        dtype=jnp.uint32,
    )
    ones = _popcount(bits)
    before = _exclusive_cumsum(ones)
    return _Occupancy(bits, before, before + ones, before[-1] + ones[-1])


def _rank_of(occ: _Occupancy, query: jax.Array) -> jax.Array:
    """Occupied entries below each query (its rank when occupied): two gathers, a popcount.

    query: (Q,) int32 in [0, size) -> (Q,) int32.
    """
    word, bit = query >> 5, (query & 31).astype(jnp.uint32)
    below = occ.bits.at[word].get(mode="promise_in_bounds") & ((jnp.uint32(1) << bit) - 1)
    return occ.before.at[word].get(mode="promise_in_bounds") + _popcount(below)


def _select(occ: _Occupancy, j: jax.Array) -> jax.Array:
    """The j-th occupied entry (0-based, increasing order), the inverse of :func:`_rank_of`.

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
        fits = _popcount(bits & ((jnp.uint32(1) << trial) - 1)) <= within
        pos = jnp.where(fits, trial, pos)
    return word * 32 + pos.astype(jnp.int32)


# --------------------------------------------------------------------------------------
# counting one order
# --------------------------------------------------------------------------------------

_CHUNK = 2**14  # entries per step of _over_prefix


def _over_prefix(length: int, num_valid: jax.Array, body, init):
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


def _fit_length(x: jax.Array, length: int) -> jax.Array:
    """x cut or zero-padded to ``length`` entries (ranks past the distinct grams are 0)."""
    return x[:length] if x.shape[0] >= length else jnp.pad(x, (0, length - x.shape[0]))


def _list_distinct(occ: _Occupancy, table: jax.Array, cap: int, key_to_id):
    """The occupied entries of a dense table in increasing order, as sorted gram ids.

    Entry j of the output is the j-th occupied key (:func:`_select`), written as the id
    ``key_to_id(key)`` (increasing too), with its count ``table[key]``; padded with the
    sentinel (ids, keys) and 0 (counts) to ``cap``. Only the distinct entries are visited.
    Returns unique_ids (cap,), counts (cap,), keys (cap,).
    """

    def body(carry, start, size, real, new):
        ids, counts, keys = carry
        key = _select(occ, jnp.where(real, start + jnp.arange(size, dtype=jnp.int32), 0))
        count = table.at[key].get(mode="fill", fill_value=0)
        ids = jax.lax.dynamic_update_slice(ids, jnp.where(real, key_to_id(key), _SENTINEL),
                                           (start,))  # fmt: skip
        counts = jax.lax.dynamic_update_slice(counts, jnp.where(real, count, 0), (start,))
        keys = jax.lax.dynamic_update_slice(keys, jnp.where(real, key, _SENTINEL), (start,))
        return ids, counts, keys

    empty = jnp.full((cap,), _SENTINEL, jnp.int32)
    return _over_prefix(cap, occ.count, body, (empty, jnp.zeros((cap,), jnp.int32), empty))


def _row_types(occ: _Occupancy, num_rows: int, vocab_size: int) -> jax.Array:
    """Occupied entries in each row of V entries of a dense table: (num_rows,) int32."""
    start = _rank_of(occ, jnp.arange(0, num_rows * vocab_size, vocab_size, dtype=jnp.int32))
    return jnp.diff(jnp.append(start, occ.count))


def _unique_dense(ids: jax.Array, cap: int, table_size: int, vocab_size: int, cap_context: int,
                  need_slots: bool, num_words: int):  # fmt: skip
    """Sorted distinct ids and counts of ids known to lie in ``[0, table_size)``, unsorted.

    A dense table of counts, one row of V entries per context rank, filled by one
    scatter-add (a histogram); the distinct ids are its occupied entries, listed in order
    by :func:`_select`, and a position's slot among them is :func:`_rank_of` its id. The
    context types N1+(u .) are the rows' occupied entries.
    ids: (P,) int32 -> the same six values as :func:`_unique_sort`, the last the table's
    :class:`_Occupancy` with its words padded to ``num_words`` (so that the branches of a
    ``lax.switch`` over table sizes agree), for the continuation counts' lookups.
    """
    table = jnp.zeros((table_size,), jnp.int32).at[ids].add(1, mode="promise_in_bounds")
    occ = _occupancy(table)
    unique_ids, counts, _ = _list_distinct(occ, table, cap, lambda key: key)
    types = _fit_length(_row_types(occ, table_size // vocab_size, vocab_size), cap_context)
    slots = _rank_of(occ, ids) if need_slots else jnp.zeros((0,), jnp.int32)
    pad = (0, num_words - occ.bits.shape[0])  # past the table: no entries, all below
    before = jnp.pad(occ.before, pad, constant_values=occ.count)
    through = jnp.pad(occ.through, pad, constant_values=occ.count)
    padded = _Occupancy(jnp.pad(occ.bits, pad), before, through, occ.count)
    return unique_ids, counts, slots, types, occ.count, padded


def _no_occupancy(num_words: int) -> _Occupancy:
    """An empty occupancy of ``num_words`` words (the shape a sorted order carries)."""
    words = jnp.zeros((num_words,), jnp.int32)
    return _Occupancy(words.astype(jnp.uint32), words, words, jnp.zeros((), jnp.int32))


def _unique_sort(ids: jax.Array, cap: int, table_size: int, vocab_size: int, cap_context: int,
                 need_slots: bool, num_words: int):  # fmt: skip
    """Sorted distinct ids and their counts, by one sort and scatter-adds.

    ids: (P,) int32 -> unique_ids (cap,) padded with the sentinel, counts (cap,) int32,
    slots (P,) (the index of each position's id in unique_ids; (0,) unless
    ``need_slots``), the context types N1+(u .) (cap_context,) by rank(u), and the number
    of distinct ids (), and an empty occupancy of ``num_words`` words (the shape of
    :func:`_unique_dense`'s; the lookups search ``unique_ids`` instead). A plain sort and a
    search back, because a sort that carries the permutation (argsort) is ~10x slower on
    XLA:CPU. ``table_size`` is unused (the signature of :func:`_unique_dense`).
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
    return unique_ids, counts, slots, types, slot[-1] + 1, _no_occupancy(num_words)


# Entries of the largest dense counting table. 2**22 int32 counts are 16 MiB; with the
# occupancy and its bit words an order's temporaries are a few times that (tens of MiB).
# It holds e.g. the 5-grams of a 10**6-character corpus with V = 97 (32,599 distinct
# 4-gram contexts * 97 = 3.2M ids); a larger D falls back to the sort.
DENSE_BUDGET = 2**22
_DENSE_PER_POSITION = 8  # at most this many table entries per k-gram position ...
_DENSE_FLOOR = 2**16  # ... unless the table is this small anyway (256 KiB)


def _counting_plan(n: int, num_tokens: int, vocab_size: int, budget: int) -> list[tuple]:
    """How each order k = 1..n is counted: a list of ``(how, table_size)``.

    * ``("codes", V**k)``: orders 1..m, where m is the highest order whose ``V**m`` codes
      fit the budget: the m-grams' base-V codes are counted in one dense table and every
      lower order's table is its sum over the last word (plus the one k-gram that ends the
      corpus);
    * ``("dense", size)``: above m, the ids ``rank(u) * V + w`` lie below ``D * V`` with D
      the number of distinct (k-1)-grams, ``D <= min(N - k + 2, V**(k-1))``; when that
      bound fits the budget a dense table of it always suffices;
    * ``("cond", size)``: otherwise the smallest of a few tables of up to the budget
      (rounded down to a multiple of V; see :func:`_table_sizes`) that the corpus's ids
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


def _table_sizes(size: int, vocab_size: int) -> list[int]:
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


def _count_by_codes(tokens: jax.Array, m: int, vocab_size: int, caps: list[int],
                    need_slots: bool):  # fmt: skip
    """Orders 1..m from one dense table of the m-grams' base-V codes.

    code(x_i .. x_{i+m-1}) = sum_j x_{i+j} V**(m-1-j) < V**m. The table of order k < m is
    the table of order k + 1 summed over its last word, plus the k-gram at N - k (it
    starts no (k+1)-gram). The distinct k-grams are the occupied codes in increasing order
    (:func:`_select`); their ids ``rank(u) * V + w`` follow from the (k-1)-gram table's
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
    occupancies = [_occupancy(t) for t in tables]
    out, keys = [], None
    for k in range(1, m + 1):
        occ = occupancies[k - 1]
        if k == 1:
            key_to_id = lambda key: key  # noqa: E731  (rank of the empty context is 0)
        else:
            # id(u w) = rank(u) * V + w; code(u w) = code(u) * V + w
            key_to_id = lambda key, below=occupancies[k - 2]: (  # noqa: E731
                _rank_of(below, key // V) * V + key % V
            )
        unique_ids, counts, new_keys = _list_distinct(occ, tables[k - 1], caps[k], key_to_id)
        rows = _row_types(occ, V ** (k - 1), V)  # N1+(u .) by code(u)
        types = rows if keys is None else rows.at[keys].get(mode="fill", fill_value=0)

        def find(parent, w, occ=occ, keys=keys):  # code(u w) = code(u) V + w; code(u) by rank
            code_u = 0 if keys is None else keys.at[parent].get(mode="promise_in_bounds")
            return _rank_of(occ, code_u * V + w)

        out.append((unique_ids, counts, types, occ.count, find))
        keys = new_keys
    slots = _rank_of(occupancies[-1], top_codes) if need_slots else None
    return out, slots


def _chain_ranks(ids_: list[jax.Array], gram: jax.Array, vocab_size: int) -> list[jax.Array]:
    """The ranks of a gram from the corpus and of its prefixes: [rank(g[:1]), ..]."""
    rank, ranks = jnp.zeros((), jnp.int32), []
    for j in range(gram.shape[0]):
        rank = jnp.searchsorted(ids_[j], rank * vocab_size + gram[j]).astype(jnp.int32)
        ranks.append(rank)
    return ranks


@functools.partial(jax.jit, static_argnames=("n", "vocab_size", "budget"))
def count_tables(tokens: jax.Array, *, n: int, vocab_size: int, budget: int = DENSE_BUDGET,
                 ) -> dict:  # fmt: skip
    """All count tables of :class:`NGramModel` (the smoother does not change them).

    Args:
      tokens: ``(N,)`` int32 ids in ``[0, vocab_size)`` (checked by the caller).
      n: the highest order (static).
      vocab_size: V (static).
      budget: the most entries of a dense counting table (static; see
        :func:`_counting_plan`); 0 counts every order by sorting.

    Returns:
      The seven count fields of :class:`NGramModel`, by name.
    """
    num_tokens = tokens.shape[0]
    V = vocab_size
    caps = [1] + [max(min(num_tokens - k + 1, V**k), 1) for k in range(1, n + 1)]
    plan = _counting_plan(n, num_tokens, V, budget)
    m = sum(how == "codes" for how, _ in plan)
    ids_, counts_, types, distinct_, finders = [], [], [], [], []
    slots = None
    if m:
        by_codes, slots = _count_by_codes(tokens, m, V, caps, need_slots=m < n)
        for unique_ids, counts, type_count, num_distinct, find in by_codes:
            ids_.append(unique_ids)
            counts_.append(counts)
            types.append(type_count)
            distinct_.append(num_distinct)
            finders.append(find)
    for k in range(m + 1, n + 1):
        num_positions = max(num_tokens - k + 1, 0)  # k-grams start at 0 .. N - k
        cap, cap_context = caps[k], caps[k - 1]
        how, table_size = plan[k - 1]
        sizes = _table_sizes(table_size, V) if how == "cond" else [table_size]
        num_words = -(-sizes[-1] // 32)
        dense = jnp.asarray(how == "dense")  # whether the occupancy below answers lookups
        if num_positions == 0:  # no k-grams: empty tables, found by searching
            how = "sort"
            result = (jnp.full((cap,), _SENTINEL, jnp.int32), jnp.zeros((cap,), jnp.int32),
                      jnp.zeros((0,), jnp.int32), jnp.zeros((cap_context,), jnp.int32),
                      jnp.zeros((), jnp.int32), _no_occupancy(num_words))  # fmt: skip
        else:
            if k == 1:
                ids = tokens  # rank(empty context) = 0, so id = w
            else:  # id(x_i .. x_{i+k-1}) = rank(x_i .. x_{i+k-2}) * V + x_{i+k-1}
                ids = slots[:num_positions] * V + tokens[k - 1 : k - 1 + num_positions]
            args = (ids, cap, table_size, V, cap_context, k < n, num_words)
            if how == "dense":
                result = _unique_dense(*args)
            elif how == "sort":
                result = _unique_sort(*args)
            else:  # the ids lie below (number of distinct (k-1)-grams) * V, known at run time
                branches = [
                    lambda i, a=(cap, size, V, cap_context, k < n, num_words): _unique_dense(i, *a)
                    for size in sizes
                ]
                branches.append(lambda i, a=args[1:]: _unique_sort(i, *a))
                # the smallest table that holds the largest id; past the last: the sort
                too_small = jnp.sum(jnp.max(ids) >= jnp.array(sizes, jnp.int32))
                result = jax.lax.switch(too_small, branches, ids)
                dense = too_small < len(sizes)
        unique_ids, counts, slots, type_count, num_distinct, occ = result

        def find(parent, w, occ=occ, dense=dense, table=unique_ids, sort=how == "sort"):
            # the rank of the k-gram (u w), u of rank `parent`: by the table's occupancy
            # when it was counted densely, else by a binary search of the sorted ids
            if sort:
                return jnp.searchsorted(table, parent * V + w).astype(jnp.int32)
            return jax.lax.cond(
                dense,
                lambda q: _rank_of(occ, q),
                lambda q: jnp.searchsorted(table, q).astype(jnp.int32),
                parent * V + w,
            )

        finders.append(find)
        ids_.append(unique_ids)
        counts_.append(counts)
        types.append(type_count)
        distinct_.append(num_distinct)

    # c(u .) = c(u) but for the (k-1)-gram that ends the corpus: no word follows it
    totals = [jnp.full((1,), num_tokens, jnp.int32)]  # c(.) of the empty context: N
    for k in range(2, n + 1):
        total = counts_[k - 2]
        if num_tokens >= k - 1:
            last = _chain_ranks(ids_, tokens[num_tokens - k + 1 :], V)[-1]
            total = total.at[last].add(-1)
        totals.append(total)

    continuations, cont_totals, cont_types = [], [], []
    suffix_rank = jnp.zeros((caps[1],), jnp.int32)  # of a 1-gram's suffix: the empty gram
    for k in range(1, n):
        # N1+(. g) for a k-gram g: one for each distinct (k+1)-gram (a g) ending in g. The
        # distinct (k+1)-gram with id r V + w ends in the k-gram (s w), s = suffix_rank[r]
        # the rank of the (k-1)-gram that ends the k-gram r: its id is s V + w.
        def add_continuations(carry, start, size, real, new, k=k, suffix_rank=suffix_rank):
            cont, cont_total, next_suffix = carry
            longer = jax.lax.dynamic_slice(ids_[k], (start,), (size,))  # (a g) = (r w)
            r = jnp.where(real, longer // V, 0)
            parent = suffix_rank.at[r].get(mode="promise_in_bounds")  # s = rank(u), g = u w
            slot = finders[k - 1](parent, longer % V)  # rank of (u w), u of rank s
            cont = cont.at[jnp.where(new, slot, caps[k])].add(1, mode="drop")
            cont_total = cont_total.at[jnp.where(new, parent, caps[k - 1])].add(1, mode="drop")
            next_suffix = jax.lax.dynamic_update_slice(next_suffix, jnp.where(real, slot, 0),
                                                       (start,))  # fmt: skip
            return cont, cont_total, next_suffix

        init = (jnp.zeros((caps[k],), jnp.int32), jnp.zeros((caps[k - 1],), jnp.int32),
                jnp.zeros((caps[k + 1],), jnp.int32))  # fmt: skip
        cont, cont_total, suffix_rank = _over_prefix(caps[k + 1], distinct_[k],
                                                     add_continuations, init)  # fmt: skip
        continuations.append(cont)
        cont_totals.append(cont_total)
        # #{w: N1+(. u w) > 0} = N1+(u .) less the k-gram at position 0 when it occurs
        # nowhere else: every other k-gram has a word before one of its occurrences
        type_count = types[k - 1]
        if num_tokens >= k:
            ranks = _chain_ranks(ids_, tokens[:k], V)
            parent = ranks[-2] if k > 1 else 0  # rank of its (k-1)-prefix
            alone = (counts_[k - 1][ranks[-1]] == 1).astype(jnp.int32)
            type_count = type_count.at[parent].add(-alone)
        cont_types.append(type_count)

    return {
        "gram_ids": tuple(ids_),
        "gram_counts": tuple(counts_),
        "gram_continuations": tuple(continuations),
        "context_totals": tuple(totals),
        "context_types": tuple(types),
        "continuation_totals": tuple(cont_totals),
        "continuation_types": tuple(cont_types),
    }


# --------------------------------------------------------------------------------------
# lookups
# --------------------------------------------------------------------------------------


def find(table: jax.Array, query: jax.Array):
    """Index of each query in a sorted table and whether it is there. query: (...)."""
    index = jnp.minimum(jnp.searchsorted(table, query), table.shape[0] - 1)
    return index, table[index] == query


def in_vocab(tokens: jax.Array, vocab_size: int) -> jax.Array:
    """``(tokens >= 0) & (tokens < vocab_size)``, elementwise, the shape of ``tokens``."""
    return (tokens >= 0) & (tokens < vocab_size)


def _rank(model: NGramModel, gram: jax.Array):
    """rank(gram) in the table of order len(gram), and whether the gram was seen.

    gram: (k,) int32 -> (rank (), seen ()). The empty gram has rank 0 and is always seen.
    """
    V = model.vocab_size
    rank = jnp.zeros((), jnp.int32)
    seen = jnp.ones((), bool)
    for j in range(gram.shape[0]):
        w = gram[j]
        index, found = find(model.gram_ids[j], rank * V + jnp.clip(w, 0, V - 1))
        seen = seen & found & in_vocab(w, V)
        rank = jnp.where(seen, index, 0)
    return rank, seen


@functools.partial(jax.jit, static_argnames=("continuation",))
def _lookup_counts(model: NGramModel, grams: jax.Array, continuation: bool) -> jax.Array:
    k = grams.shape[-1]
    table = model.gram_continuations if continuation else model.gram_counts

    def one(g):  # g: (k,)
        rank, seen = _rank(model, g)
        return jnp.where(seen, table[k - 1][rank], 0)

    flat = grams.reshape(-1, k)  # (B, k)
    return jax.vmap(one)(flat).reshape(grams.shape[:-1])


def counts(model: NGramModel, grams: jax.Array) -> jax.Array:
    """Raw counts c(g) of k-grams, 1 <= k <= n.

    Args:
      model: a fitted :class:`NGramModel`.
      grams: (..., k) int token ids.

    Returns:
      (...,) int32 counts (0 for unseen or out-of-vocabulary grams).
    """
    grams = jnp.asarray(grams)
    checks.integer_array("grams", grams)  # a float id would be truncated silently
    grams = grams.astype(jnp.int32)
    if grams.ndim < 1 or not 1 <= grams.shape[-1] <= model.n:
        raise ValueError(f"grams.shape[-1] must be in [1, n={model.n}], got {grams.shape}")
    return _lookup_counts(model, grams, False)


def continuation_counts(model: NGramModel, grams: jax.Array) -> jax.Array:
    """Continuation counts N1+(. g) of k-grams, 1 <= k < n: distinct words seen before g.

    grams: (..., k) int -> (...,) int32.
    """
    grams = jnp.asarray(grams)
    checks.integer_array("grams", grams)
    grams = grams.astype(jnp.int32)
    if grams.ndim < 1 or not 1 <= grams.shape[-1] < model.n:
        raise ValueError(f"grams.shape[-1] must be in [1, n={model.n}), got {grams.shape}")
    return _lookup_counts(model, grams, True)


def context_lookups(model: NGramModel, history: jax.Array, w: jax.Array):
    """For every order k: the context's rank and whether it was seen, and each target's slot.

    The context of order k is ``history[n - k:]`` (its last k - 1 tokens). Its rank comes
    from a chain of lookups, one per table 1..k-1; all chains step together, so table j is
    searched once, for the j-th step of every longer context and for the targets of order
    j (whose contexts are complete by then): n ``searchsorted`` calls in all.

    history: (n - 1,) int32; w: (m,) in-vocabulary targets. Returns a list over k of
    (rank (), seen (), target_index (m,), target_found (m,)).
    """
    n, V = model.n, model.vocab_size
    ranks = [jnp.zeros((), jnp.int32) for _ in range(n)]  # by order k - 1; empty prefix: 0
    seen = [jnp.ones((), bool) for _ in range(n)]
    out = []
    for j in range(1, n + 1):
        longer = range(j + 1, n + 1)  # orders whose context still has its j-th token to go
        tokens = [history[n - k + j - 1] for k in longer]  # context_k[j - 1]
        queries = [ranks[j - 1] * V + w]  # (m,) targets of order j
        for k, t in zip(longer, tokens, strict=True):
            queries.append((ranks[k - 1] * V + jnp.clip(t, 0, V - 1))[None])  # (1,)
        index, found = find(model.gram_ids[j - 1], jnp.concatenate(queries))
        m = w.shape[0]
        out.append((ranks[j - 1], seen[j - 1], index[:m], found[:m] & seen[j - 1]))
        for i, (k, t) in enumerate(zip(longer, tokens, strict=True)):
            seen[k - 1] = seen[k - 1] & found[m + i] & in_vocab(t, V)
            ranks[k - 1] = jnp.where(seen[k - 1], index[m + i], 0)
    return out
