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
# counting
# --------------------------------------------------------------------------------------


def _unique_sort(ids: jax.Array, cap: int, vocab_size: int, cap_context: int):
    """Sorted distinct ids and their counts, by one sort and scatter-adds.

    ids: (P,) int32 -> unique_ids (cap,) padded with the sentinel, counts (cap,) int32,
    slot_of_position (P,) (the index of each position's id in unique_ids), the context
    types N1+(u .) (cap_context,) by rank(u), and the number of distinct ids (). A plain
    sort and a search back, because a sort that carries the permutation (argsort) is ~10x
    slower on XLA:CPU.
    """
    sorted_ids = jnp.sort(ids)
    first = jnp.concatenate([jnp.ones((1,), bool), sorted_ids[1:] != sorted_ids[:-1]])
    slot = jnp.cumsum(first.astype(jnp.int32)) - 1  # (P,) index among the distinct ids
    unique_ids = jnp.full((cap,), _SENTINEL, jnp.int32).at[slot].set(sorted_ids)
    counts = jnp.zeros((cap,), jnp.int32).at[slot].add(1)  # c(gram): scatter-add of ones
    slot_of_position = jnp.searchsorted(unique_ids, ids).astype(jnp.int32)  # exact hits
    valid = unique_ids != _SENTINEL
    parent = jnp.where(valid, unique_ids // vocab_size, cap_context)  # rank(u); padding: dropped
    types = jnp.zeros((cap_context,), jnp.int32).at[parent].add(1, mode="drop")  # N1+(u .)
    return unique_ids, counts, slot_of_position, types, slot[-1] + 1


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


def _unique_dense(ids: jax.Array, cap: int, table_size: int, vocab_size: int, cap_context: int):
    """:func:`_unique_sort` without a sort, for ids known to lie in ``[0, table_size)``.

    A dense table of counts, one row of V entries per context rank, is filled by one
    scatter-add (a histogram). The rank of an id among the distinct ones is the number of
    occupied entries below it, read from the occupancy as bits: the table packed into
    ``ceil(table_size / 32)`` uint32 words, an exclusive prefix sum of their population
    counts (a scan 32 times shorter than the table), and for each id the popcount of its
    own word left of its bit -- two gathers per position, no table-wide prefix sum. The
    distinct ids come out in increasing order by a scatter to their ranks, from the table's
    occupied entries when the table is 8 times smaller than the corpus, else from the positions
    (all occurrences of an id write the same value); their counts are gathered back. The
    context types N1+(u .) are differences of the ranks of the rows' first entries.
    ids: (P,) int32 -> the same five values as :func:`_unique_sort`.
    """
    V = vocab_size
    num_words = -(-table_size // 32)
    table = jnp.zeros((table_size,), jnp.int32).at[ids].add(1, mode="promise_in_bounds")
    occupied = jnp.pad(table > 0, (0, num_words * 32 - table_size)).reshape(num_words, 32)
    bits = jnp.sum(  # (num_words,): bit b of word j is table entry 32 j + b
        occupied.astype(jnp.uint32) << jnp.arange(32, dtype=jnp.uint32)[None, :],
        axis=1,
        dtype=jnp.uint32,
    )
    word_offset = _exclusive_cumsum(jax.lax.population_count(bits).astype(jnp.int32))

    def rank(query):  # (Q,) ids in [0, table_size) -> (Q,) rank among the distinct ids
        word, bit = query >> 5, (query & 31).astype(jnp.uint32)
        below = bits.at[word].get(mode="promise_in_bounds") & ((jnp.uint32(1) << bit) - 1)
        offset = word_offset.at[word].get(mode="promise_in_bounds")
        return offset + jax.lax.population_count(below).astype(jnp.int32)

    num_distinct = word_offset[-1] + jax.lax.population_count(bits[-1]).astype(jnp.int32)
    # N1+(u .) = the distinct ids in row u = rank(u V + V) - rank(u V), rows (D,)
    row_start = jnp.append(rank(jnp.arange(0, table_size, V, dtype=jnp.int32)), num_distinct)
    types = _fit_length(jnp.diff(row_start), cap_context)
    unique_ids = jnp.full((cap,), _SENTINEL, jnp.int32)
    if table_size * 8 <= ids.shape[0]:  # a small table: rank every entry, one gather each
        every_id = jnp.arange(table_size, dtype=jnp.int32)
        rank_of_id = rank(every_id)
        slot_of_position = rank_of_id.at[ids].get(mode="promise_in_bounds")
        # scatter the (fewer) occupied table entries to their ranks; cap: dropped
        target = jnp.where(table > 0, rank_of_id, cap)
        unique_ids = unique_ids.at[target].set(every_id, mode="drop")
    else:  # scatter from the positions: all occurrences of an id write the same value
        slot_of_position = rank(ids)
        unique_ids = unique_ids.at[slot_of_position].set(ids, mode="promise_in_bounds")

    def gather_counts(counts, start, size, valid):  # c(gram) of the distinct ids in a chunk
        chunk = jax.lax.dynamic_slice(unique_ids, (start,), (size,))
        got = table.at[chunk].get(mode="fill", fill_value=0)  # the sentinel reads 0
        return jax.lax.dynamic_update_slice(counts, jnp.where(valid, got, 0), (start,))

    counts = _over_prefix(cap, num_distinct, gather_counts, jnp.zeros((cap,), jnp.int32))
    return unique_ids, counts, slot_of_position, types, num_distinct


_CHUNK = 2**14  # entries per step of _over_prefix


def _over_prefix(length: int, num_valid: jax.Array, body, init):
    """Runs ``body(carry, start, size, valid)`` over the chunks of ``[0, num_valid)``.

    The tables of distinct grams have a static capacity (the corpus length) but only their
    first ``num_valid`` entries are real; a loop over chunks of :data:`_CHUNK` entries
    with a trip count known at run time touches those only (a 10**6-slot table of 60,000
    distinct 5-grams: 4 steps, not 62). ``valid`` (size,) marks entries in range that
    no earlier chunk saw (the last chunk's start is clamped to stay inside the table).
    """
    size = min(length, _CHUNK)

    def step(c, carry):
        start = jnp.minimum(c * size, length - size)
        position = start + jnp.arange(size, dtype=jnp.int32)
        return body(carry, start, size, (position >= c * size) & (position < num_valid))

    return jax.lax.fori_loop(0, (num_valid + size - 1) // size, step, init)


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


def _unique(ids: jax.Array, k: int, caps: list[int], vocab_size: int, budget: int):
    """The distinct k-gram ids, their counts and each position's slot (see _unique_sort)."""
    cap, cap_context = caps[k], caps[k - 1]
    if ids.shape[0] == 0:
        return (
            jnp.full((cap,), _SENTINEL, jnp.int32),
            jnp.zeros((cap,), jnp.int32),
            jnp.zeros((0,), jnp.int32),
            jnp.zeros((cap_context,), jnp.int32),
            jnp.zeros((), jnp.int32),
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
    ids_, counts_, slots_, types, distinct_ = [], [], [], [], []
    totals = [jnp.full((1,), num_tokens, jnp.int32)]  # c(.) of the empty context: N
    for k in range(1, n + 1):
        num_positions = max(num_tokens - k + 1, 0)  # k-grams start at 0 .. N - k
        if k == 1:
            ids = tokens  # rank(empty context) = 0, so id = w
        else:
            # id(x_i .. x_{i+k-1}) = rank(x_i .. x_{i+k-2}) * V + x_{i+k-1}
            prefix_rank = slots_[-1][:num_positions]
            ids = prefix_rank * V + tokens[k - 1 : k - 1 + num_positions]
            # c(u .) = c(u) but for the (k-1)-gram that ends the corpus: no word follows it
            last = slots_[-1][-1:] if slots_[-1].shape[0] else jnp.zeros((0,), jnp.int32)
            totals.append(counts_[-1].at[last].add(-1))  # (cap_{k-1},) by rank(u)
        unique_ids, counts, slots, type_count, num_distinct = _unique(ids, k, caps, V, budget)
        ids_.append(unique_ids)
        counts_.append(counts)
        slots_.append(slots)
        types.append(type_count)
        distinct_.append(num_distinct)

    continuations, cont_totals, cont_types = [], [], []
    for k in range(1, n):
        # N1+(. g) for a k-gram g: one for each distinct (k+1)-gram ending in g. The
        # (k+1)-gram starting at position i ends in the k-gram starting at i + 1.
        num_longer = max(num_tokens - k, 0)
        longer_slot = slots_[k][:num_longer]  # (k+1)-gram at i
        suffix_slot = slots_[k - 1][1 : 1 + num_longer]  # its last k tokens
        # every occurrence of a (k+1)-gram writes the same suffix: (cap_{k+1},)
        suffix_of = (
            jnp.zeros((caps[k + 1],), jnp.int32)
            .at[longer_slot]
            .set(suffix_slot, mode="promise_in_bounds")
        )

        def add_continuations(carry, start, size, valid, k=k, suffix_of=suffix_of):
            # over the distinct (k+1)-grams (a u w): N1+(. u w) += 1 and N1+(. u .) += 1
            cont, cont_total = carry
            suffix = jax.lax.dynamic_slice(suffix_of, (start,), (size,))  # slot of (u w)
            parent = ids_[k - 1].at[suffix].get(mode="promise_in_bounds") // V  # rank(u)
            cont = cont.at[jnp.where(valid, suffix, caps[k])].add(1, mode="drop")
            cont_total = cont_total.at[jnp.where(valid, parent, caps[k - 1])].add(1, mode="drop")
            return cont, cont_total

        init = (jnp.zeros((caps[k],), jnp.int32), jnp.zeros((caps[k - 1],), jnp.int32))
        cont, cont_total = _over_prefix(caps[k + 1], distinct_[k], add_continuations, init)
        continuations.append(cont)
        cont_totals.append(cont_total)
        # #{w: N1+(. u w) > 0} = N1+(u .) less the k-gram at position 0 when it occurs
        # nowhere else: every other k-gram has a word before one of its occurrences
        type_count = types[k - 1]
        if num_tokens >= k:
            first = slots_[k - 1][0]  # the k-gram at position 0
            parent = slots_[k - 2][0] if k > 1 else 0  # rank of its (k-1)-prefix
            alone = (counts_[k - 1][first] == 1).astype(jnp.int32)
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
