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
counted without a sort: a scatter-add of ones into a dense table of counts (one
row of V per context rank), then each id's rank among the occupied entries -- by a prefix
sum over a table no larger than the corpus, else by a prefix sum over the rows plus a
popcount of the row's occupancy bits left of the id -- and a scatter of the ids to their
ranks gives the sorted distinct ids; c(u .) and N1+(u .) are row sums. Above the bound, a
``lax.cond`` uses a budget-sized dense table when the corpus's own ``D`` is small enough
and the sort (``jnp.sort`` plus ``jnp.searchsorted``) otherwise; on XLA:CPU these are
3-4x slower than the dense pass on 10**6 tokens. Continuation counts are scatter-adds
over each position's slot, whichever path built them.

References:
  Chen & Goodman, "An Empirical Study of Smoothing Techniques for Language Modeling",
  Harvard TR-10-98 (1999).
"""

from __future__ import annotations

import dataclasses
import functools

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
# counting
# --------------------------------------------------------------------------------------


def _unique_sort(ids: jax.Array, cap: int, vocab_size: int, cap_context: int):
    """Sorted distinct ids and their counts, by one sort and scatter-adds.

    ids: (P,) int32 -> unique_ids (cap,) padded with the sentinel, counts (cap,) int32,
    slot_of_position (P,) (the index of each position's id in unique_ids), and the context
    totals c(u .) and types N1+(u .), (cap_context,) by rank(u). A plain sort and a search
    back, because a sort that carries the permutation (argsort) is ~10x slower on XLA:CPU.
    """
    sorted_ids = jnp.sort(ids)
    first = jnp.concatenate([jnp.ones((1,), bool), sorted_ids[1:] != sorted_ids[:-1]])
    slot = jnp.cumsum(first.astype(jnp.int32)) - 1  # (P,) index among the distinct ids
    unique_ids = jnp.full((cap,), _SENTINEL, jnp.int32).at[slot].set(sorted_ids)
    counts = jnp.zeros((cap,), jnp.int32).at[slot].add(1)  # c(gram): scatter-add of ones
    slot_of_position = jnp.searchsorted(unique_ids, ids).astype(jnp.int32)  # exact hits
    totals, types = _per_context(unique_ids, counts, vocab_size, cap_context)
    return unique_ids, counts, slot_of_position, totals, types


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


def _unique_dense(ids: jax.Array, cap: int, table_size: int, vocab_size: int,
                  cap_context: int):
    """:func:`_unique_sort` without a sort, for ids known to lie in ``[0, table_size)``.

    A dense table of counts, one row of V entries per context rank, is filled by one
    scatter-add. The rank of an id among the distinct ones is the number of occupied
    entries below it. A table no larger than the corpus gets it by a prefix sum over the
    table (every entry's rank, then the table entries are scattered to their ranks). A
    larger table counts, for each position's id, the occupied entries of the rows before
    its row (a prefix sum over the rows only) plus those left of it in its row, as bits
    (each row packed into ``ceil(V / 32)`` uint32 words and ``population_count``): half
    the time of the table-wide prefix sum for a 2**22-entry table. Either way the
    distinct ids come out in increasing order by a scatter to their ranks.
    ids: (P,) int32 -> the same five arrays as :func:`_unique_sort`.
    """
    V = vocab_size
    num_rows, num_words = table_size // V, -(-V // 32)
    table = jnp.zeros((table_size,), jnp.int32).at[ids].add(1)  # c(gram) by id
    rows = table.reshape(num_rows, V)
    totals = _fit_length(rows.sum(axis=1), cap_context)  # rows are contexts: c(u .)
    unique_ids = jnp.full((cap,), _SENTINEL, jnp.int32)
    counts = jnp.zeros((cap,), jnp.int32)
    if table_size <= ids.shape[0]:  # scatter the (fewer) table entries to their ranks
        occupied = (table > 0).astype(jnp.int32)
        rank_of_id = _exclusive_cumsum(occupied)  # (table_size,) rank among distinct ids
        target = jnp.where(occupied > 0, rank_of_id, cap)  # cap: out of bounds, dropped
        every_id = jnp.arange(table_size, dtype=jnp.int32)
        unique_ids = unique_ids.at[target].set(every_id, mode="drop")
        counts = counts.at[target].set(table, mode="drop")
        types = _fit_length(jnp.sum(rows > 0, axis=1, dtype=jnp.int32), cap_context)
        return unique_ids, counts, rank_of_id[ids], totals, types

    occupied = jnp.pad(rows > 0, ((0, 0), (0, num_words * 32 - V)))
    shifts = jnp.arange(32, dtype=jnp.uint32)[None, None, :]
    bits = jnp.sum(  # (num_rows, num_words): bit b of word j is entry 32 j + b of the row
        occupied.reshape(num_rows, num_words, 32).astype(jnp.uint32) << shifts,
        axis=-1,
        dtype=jnp.uint32,
    )
    row_types = jnp.sum(jax.lax.population_count(bits), axis=1, dtype=jnp.int32)  # N1+(u .)
    row_offset = jnp.cumsum(row_types) - row_types  # distinct grams in the rows before

    def rank(query):  # (Q,) ids -> (Q,) rank among the distinct ids
        row, column = query // V, query % V
        word, bit = column // 32, (column % 32).astype(jnp.uint32)
        words = bits[row]  # (Q, num_words)
        before = jnp.arange(num_words)[None, :] < word[:, None]
        left = jnp.sum(jnp.where(before, jax.lax.population_count(words), 0), axis=1)
        partial = jnp.take_along_axis(words, word[:, None], axis=1)[:, 0]
        mask = (jnp.ones((), jnp.uint32) << bit) - 1  # the bits left of this entry
        within = jax.lax.population_count(partial & mask).astype(jnp.int32)
        return row_offset[row] + left.astype(jnp.int32) + within

    slot_of_position = rank(ids)
    # scatter from the positions: all occurrences of an id write the same values
    unique_ids = unique_ids.at[slot_of_position].set(ids)
    counts = counts.at[slot_of_position].set(table[ids])
    return unique_ids, counts, slot_of_position, totals, _fit_length(row_types, cap_context)


def _fit_length(x: jax.Array, length: int) -> jax.Array:
    """x cut or zero-padded to ``length`` entries (ranks past the distinct grams are 0)."""
    return x[:length] if x.shape[0] >= length else jnp.pad(x, (0, length - x.shape[0]))


def _dense_table_size(k: int, caps: list[int], vocab_size: int, budget: int):
    """How order k is counted: ``(table_size, static)``; table_size 0 means by sorting.

    The ids of order k are ``rank(u) * V + w < D * V`` with D the number of distinct
    (k-1)-grams, and ``D <= min(cap_{k-1}, V**(k-1))``. When that bound times V fits the
    budget the dense table always suffices (static); otherwise a table of ``budget`` entries
    (rounded down to a multiple of V) is used when the corpus's D turns out small enough,
    decided at run time by ``lax.cond``, and the sort when not. The budget is also held to
    :data:`_DENSE_PER_POSITION` entries per k-gram position (but at least
    :data:`_DENSE_FLOOR`): a table much larger than a short corpus costs more to clear and
    scan than sorting the corpus.
    """
    budget = min(budget, max(_DENSE_PER_POSITION * caps[k], _DENSE_FLOOR))
    bound = min(caps[k - 1], vocab_size ** (k - 1)) * vocab_size
    if bound <= budget:
        return bound, True
    return (budget // vocab_size) * vocab_size, False


def _per_context(unique_ids: jax.Array, values: jax.Array, vocab_size: int, cap_context: int):
    """Sums of ``values`` and counts of ``values > 0`` over the grams of each context rank."""
    valid = unique_ids != _SENTINEL
    parent = jnp.where(valid, unique_ids // vocab_size, 0)  # rank(u) of gram (u, w)
    values = jnp.where(valid, values, 0)
    totals = jnp.zeros((cap_context,), jnp.int32).at[parent].add(values)  # sum_w a(u w)
    types = jnp.zeros((cap_context,), jnp.int32).at[parent].add((values > 0).astype(jnp.int32))
    return totals, types


def _unique(ids: jax.Array, k: int, caps: list[int], vocab_size: int, budget: int):
    """The distinct k-gram ids, their counts and each position's slot (see _unique_sort)."""
    cap, cap_context = caps[k], caps[k - 1]
    if ids.shape[0] == 0:
        return (
            jnp.full((cap,), _SENTINEL, jnp.int32),
            jnp.zeros((cap,), jnp.int32),
            jnp.zeros((0,), jnp.int32),
            jnp.zeros((cap_context,), jnp.int32),
            jnp.zeros((cap_context,), jnp.int32),
        )
    table_size, static = _dense_table_size(k, caps, vocab_size, budget)
    if static:
        return _unique_dense(ids, cap, table_size, vocab_size, cap_context)
    if table_size == 0:
        return _unique_sort(ids, cap, vocab_size, cap_context)
    # the ids lie below (number of distinct (k-1)-grams) * V, known only at run time
    return jax.lax.cond(
        jnp.max(ids) < table_size,
        lambda i: _unique_dense(i, cap, table_size, vocab_size, cap_context),
        lambda i: _unique_sort(i, cap, vocab_size, cap_context),
        ids,
    )


# Entries of the largest dense counting table. 2**22 int32 counts are 16 MiB; with the
# occupancy and its bit words an order's temporaries are a few times that (tens of MiB).
# It holds e.g. the 5-grams of a 10**6-character corpus with V = 97 (32,599 distinct
# 4-gram contexts * 97 = 3.2M ids); a larger D falls back to the sort.
DENSE_BUDGET = 2**22
_DENSE_PER_POSITION = 8  # at most this many table entries per k-gram position ...
_DENSE_FLOOR = 2**16  # ... unless the table is this small anyway (256 KiB)


@functools.partial(jax.jit, static_argnames=("n", "vocab_size", "budget"))
def count_tables(tokens: jax.Array, *, n: int, vocab_size: int, budget: int = DENSE_BUDGET,
                 ) -> dict:  # fmt: skip
    """All count tables of :class:`NGramModel` (the smoother does not change them).

    Args:
      tokens: ``(N,)`` int32 ids in ``[0, vocab_size)`` (checked by the caller).
      n: the highest order (static).
      vocab_size: V (static).
      budget: the most entries of a dense counting table (static; see
        :func:`_dense_table_size`); 0 counts every order by sorting.

    Returns:
      The seven count fields of :class:`NGramModel`, by name.
    """
    num_tokens = tokens.shape[0]
    V = vocab_size
    caps = [1] + [max(num_tokens - k + 1, 1) for k in range(1, n + 1)]  # cap_0 .. cap_n
    ids_, counts_, slots_, totals, types = [], [], [], [], []
    for k in range(1, n + 1):
        num_positions = max(num_tokens - k + 1, 0)  # k-grams start at 0 .. N - k
        if k == 1:
            ids = tokens  # rank(empty context) = 0, so id = w
        else:
            # id(x_i .. x_{i+k-1}) = rank(x_i .. x_{i+k-2}) * V + x_{i+k-1}
            prefix_rank = slots_[-1][:num_positions]
            ids = prefix_rank * V + tokens[k - 1 : k - 1 + num_positions]
        unique_ids, counts, slots, total, type_count = _unique(ids, k, caps, V, budget)
        ids_.append(unique_ids)
        counts_.append(counts)
        slots_.append(slots)
        totals.append(total)
        types.append(type_count)

    continuations = []
    for k in range(1, n):
        # N1+(. g) for a k-gram g: one for each distinct (k+1)-gram ending in g. The
        # (k+1)-gram starting at position i ends in the k-gram starting at i + 1.
        num_longer = max(num_tokens - k, 0)
        longer_slot = slots_[k][:num_longer]  # (k+1)-gram at i
        suffix_slot = slots_[k - 1][1 : 1 + num_longer]  # its last k tokens
        # every occurrence of a (k+1)-gram writes the same suffix: (cap_{k+1},)
        suffix_of = jnp.zeros((caps[k + 1],), jnp.int32).at[longer_slot].set(suffix_slot)
        distinct = ids_[k] != _SENTINEL
        cont = jnp.zeros((caps[k],), jnp.int32).at[jnp.where(distinct, suffix_of, 0)].add(
            distinct.astype(jnp.int32)
        )
        continuations.append(cont)

    cont_totals, cont_types = [], []
    for k in range(1, n):
        t, ty = _per_context(ids_[k - 1], continuations[k - 1], V, caps[k - 1])
        cont_totals.append(t)
        cont_types.append(ty)

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
