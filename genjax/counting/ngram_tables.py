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
``cap_k = max(min(num_tokens - k + 1, V**k), 1)`` slots (an upper bound on the distinct
k-grams), padded with int32-max, so shapes depend only on the corpus length and counting is
one jitted program.

Counting (:mod:`genjax.counting.ngram_orders`; the tables are the same whichever way): the
lowest orders whose ``V**m`` codes fit :data:`DENSE_BUDGET` from one scatter-add of the
m-grams' base-V codes, lower orders by summing that table over its last word; higher orders
by a scatter-add into a table of ``D * V`` entries (D the distinct (k-1)-grams, sized at
run time when only the corpus knows D) or, past the budget, by a sort. The sorted distinct
ids and each position's rank come from the table's occupancy bits
(:mod:`genjax.counting.bit_ranks`), not a sort: on XLA:CPU sorting 10**6 ids costs ~20
times a scatter-add of them.

What is derived rather than counted: the context totals ``c(u .) = c(u)`` less one for the
(k-1)-gram that ends the corpus; the context types ``N1+(u .)`` as the occupied entries of
each table row; the continuation types ``#{w: N1+(. u w) > 0}`` as ``N1+(u .)`` less the
k-gram at position 0 when it occurs nowhere else. The continuation counts and their totals
are scatter-adds over the distinct (k+1)-grams only, each finding the k-gram it ends in
from the rank of its own prefix's suffix (a chain over the orders, no pass over the
corpus): the tables have a static capacity but their real entries are a prefix, walked in
chunks by a loop whose trip count is known at run time (:func:`over_prefix`).

References:
  Chen & Goodman, "An Empirical Study of Smoothing Techniques for Language Modeling",
  Harvard TR-10-98 (1999).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.counting.bit_ranks import over_prefix, rank_of
from genjax.counting.ngram_orders import (
    DENSE_BUDGET,
    SENTINEL,
    count_by_codes,
    counting_plan,
    no_occupancy,
    table_sizes,
    unique_dense,
    unique_sort,
)

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

_SENTINEL = SENTINEL  # pads the sorted id tables; larger than every real id


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
    indexed by ``k - 1`` for the order ``k``; ``cap_k = max(min(N - k + 1, V**k), 1)`` for a
    corpus of ``N`` tokens (``cap_0 = 1``: the empty context).

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
# counting one order
# --------------------------------------------------------------------------------------


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
        :func:`counting_plan`); 0 counts every order by sorting.

    Returns:
      The seven count fields of :class:`NGramModel`, by name.
    """
    num_tokens = tokens.shape[0]
    V = vocab_size
    caps = [1] + [max(min(num_tokens - k + 1, V**k), 1) for k in range(1, n + 1)]
    plan = counting_plan(n, num_tokens, V, budget)
    m = sum(how == "codes" for how, _ in plan)
    ids_, counts_, types, distinct_, finders = [], [], [], [], []
    slots = None
    if m:
        by_codes, slots = count_by_codes(tokens, m, V, caps, need_slots=m < n)
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
        sizes = table_sizes(table_size, V) if how == "cond" else [table_size]
        num_words = -(-sizes[-1] // 32)
        dense = jnp.asarray(how == "dense")  # whether the occupancy below answers lookups
        if num_positions == 0:  # no k-grams: empty tables, found by searching
            how = "sort"
            result = (jnp.full((cap,), _SENTINEL, jnp.int32), jnp.zeros((cap,), jnp.int32),
                      jnp.zeros((0,), jnp.int32), jnp.zeros((cap_context,), jnp.int32),
                      jnp.zeros((), jnp.int32), no_occupancy(num_words))  # fmt: skip
        else:
            if k == 1:
                ids = tokens  # rank(empty context) = 0, so id = w
            else:  # id(x_i .. x_{i+k-1}) = rank(x_i .. x_{i+k-2}) * V + x_{i+k-1}
                ids = slots[:num_positions] * V + tokens[k - 1 : k - 1 + num_positions]
            args = (ids, cap, table_size, V, cap_context, k < n, num_words)
            if how == "dense":
                result = unique_dense(*args)
            elif how == "sort":
                result = unique_sort(*args)
            else:  # the ids lie below (number of distinct (k-1)-grams) * V, known at run time
                branches = [
                    lambda i, a=(cap, size, V, cap_context, k < n, num_words): unique_dense(i, *a)
                    for size in sizes
                ]
                branches.append(lambda i, a=args[1:]: unique_sort(i, *a))
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
                lambda q: rank_of(occ, q),
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
        cont, cont_total, suffix_rank = over_prefix(caps[k + 1], distinct_[k],
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
