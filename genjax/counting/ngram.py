"""n-gram language models: counting, add-k and interpolated Kneser-Ney smoothing.

An n-gram model predicts token ``x_i`` from the ``n - 1`` tokens before it,
``P(x_i | x_{i-n+1} ... x_{i-1})``, with probabilities estimated from counts ``c(.)`` of
a training corpus. Two smoothers are implemented:

* **add-k** (Lidstone; Laplace for k = 1), Jurafsky & Martin eq. 3.26::

      P(w | u) = (c(u w) + k) / (c(u .) + k V)

* **interpolated Kneser-Ney**, Chen & Goodman (1999) eqs. (16)-(17)::

      P_KN(w | u) = max(a(u w) - D, 0) / a(u .) + D N1+(u .) / a(u .) * P_KN(w | u')

  where ``u'`` drops the first word of ``u``; ``a = c`` (raw counts) at the highest order
  and ``a(u w) = N1+(. u w)`` (the number of distinct words seen before ``u w``; the
  *continuation* count) at every lower order; ``N1+(u .)`` is the number of distinct ``w``
  with ``a(u w) > 0``; and the recursion ends in the uniform ``1 / V`` (order 0).

Definitions that make every next-token distribution sum to one (tested exhaustively; nltk's
Kneser-Ney does not, nltk issues #3065 and #3211):

* a context that never occurred at a level (``a(u .) = 0``) backs off wholly to the level
  below under Kneser-Ney, and is uniform under add-k (the ``k -> 0`` limit of its formula);
* with ``0 <= D <= 1`` every seen count is ``>= 1 >= D``, so the discounted mass
  ``sum_w max(a(u w) - D, 0) = a(u .) - D N1+(u .)`` is exactly what the interpolation
  weight returns to the lower order;
* an **out-of-vocabulary id** (``< 0`` or ``>= vocab_size``) in a context makes every
  context that contains it unseen (Kneser-Ney then backs off to the suffix after it);
  as a *target* it has probability 0 (``log_prob`` gives ``-inf``): the model's mass lies
  on the ``vocab_size`` ids. :func:`fit` refuses out-of-range training tokens.
* **the first tokens**: token ``i < n - 1`` of a sequence is predicted from the ``i``
  tokens before it by the model of order ``i + 1`` on the same counts (raw counts at its
  top level); no padding symbol is invented.

Representation (why not a dense ``V**n`` table): for every order ``k = 1..n`` the distinct
k-grams are kept as a sorted int32 array of ids, looked up with ``jnp.searchsorted``. A
k-gram ``(u, w)`` gets the id ``rank(u) * V + w`` where ``rank(u)`` is the position of its
(k-1)-gram prefix ``u`` in the sorted table of order k - 1, so ids stay below
``num_tokens * V`` for any order (one int32 as long as that is < 2**31) and memory is
``O(n * num_tokens)`` whatever ``V**n`` is. Table ``k`` has a fixed capacity of
``max(num_tokens - k + 1, 1)`` slots (an upper bound on the distinct k-grams), padded with
int32-max, so shapes depend only on the corpus length and :func:`fit` is one jitted program.

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
  Harvard TR-10-98 (1999). Kneser & Ney, "Improved backing-off for M-gram language
  modeling", ICASSP (1995). Jurafsky & Martin, "Speech and Language Processing", 3rd ed.
  draft, ch. 3.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

SMOOTHINGS = ("add_k", "kneser_ney")
_INT32_MAX = int(np.iinfo(np.int32).max)
_SENTINEL = _INT32_MAX  # pads the sorted id tables; larger than every real id


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

    Tuples are indexed by ``k - 1`` for the order ``k``; ``cap_k = max(N - k + 1, 1)`` for
    a corpus of ``N`` tokens (``cap_0 = 1``: the empty context).
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
# argument checks (trace-time)
# --------------------------------------------------------------------------------------


def _concrete(x) -> np.ndarray | None:
    """The value of ``x`` when it is known at trace time, else None (a tracer)."""
    try:
        return np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def _check_order_vocab(n, vocab_size) -> None:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if not isinstance(vocab_size, (int, np.integer)) or vocab_size < 1:
        raise ValueError(f"vocab_size must be an integer >= 1, got {vocab_size!r}")


def _check_scalar_range(name: str, value, low: float, high: float) -> None:
    v = _concrete(value)
    if v is None:
        return
    if v.shape != () or not np.isfinite(v) or not low <= float(v) <= high:
        raise ValueError(f"{name} must be a finite scalar in [{low}, {high}], got {value!r}")


def _check_tokens(name: str, tokens) -> jax.Array:
    tokens = jnp.asarray(tokens)
    if tokens.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of token ids, got shape {tokens.shape}")
    if tokens.size and not jnp.issubdtype(tokens.dtype, jnp.integer):
        raise ValueError(f"{name} must hold integer token ids, got dtype {tokens.dtype}")
    return tokens.astype(jnp.int32)


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
def _count(tokens: jax.Array, *, n: int, vocab_size: int, budget: int = DENSE_BUDGET) -> dict:
    """All count tables of :class:`NGramModel` (the smoother does not change them).

    ``budget`` (static): the most entries of a dense counting table (see
    :func:`_dense_table_size`); 0 counts every order by sorting.
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


def fit(
    tokens: jax.Array,
    *,
    n: int,
    vocab_size: int,
    alpha: float = 1.0,
    smoothing: str = "add_k",
    discount: float = 0.75,
    _dense_budget: int = DENSE_BUDGET,
) -> NGramModel:
    """Counts every k-gram, k = 1..n, of a corpus (one jitted program).

    Args:
      tokens: (N,) integer token ids in ``[0, vocab_size)``; any N >= 0.
      n: the order: tokens are predicted from the n - 1 before them.
      vocab_size: V; ``N * V`` must be below 2**31 (the ids are int32).
      alpha: add-k's k >= 0 (1 is Laplace). Used when ``smoothing="add_k"``.
      smoothing: ``"add_k"`` or ``"kneser_ney"`` (interpolated, one discount).
      discount: Kneser-Ney's D in [0, 1]. Used when ``smoothing="kneser_ney"``.
      _dense_budget: private, for tests: the most entries of a dense counting table
        (0: sort every order). The tables do not depend on it.

    Returns:
      An :class:`NGramModel` (a pytree; n, vocab_size and smoothing are static).

    Example:
      >>> model = ngram.fit(tokens, n=3, vocab_size=97, smoothing="kneser_ney")
      >>> ngram.perplexity(model, held_out)
    """
    _check_order_vocab(n, vocab_size)
    if smoothing not in SMOOTHINGS:
        raise ValueError(f"smoothing must be one of {SMOOTHINGS}, got {smoothing!r}")
    _check_scalar_range("alpha", alpha, 0.0, np.inf)
    _check_scalar_range("discount", discount, 0.0, 1.0)
    tokens = _check_tokens("tokens", tokens)
    num_tokens = tokens.shape[0]
    if max(num_tokens, 1) * vocab_size >= _INT32_MAX:
        raise ValueError(
            f"len(tokens) * vocab_size must be < 2**31 - 1 for int32 n-gram ids, got "
            f"{num_tokens} * {vocab_size}"
        )
    values = _concrete(tokens)
    if values is not None and values.size and (values.min() < 0 or values.max() >= vocab_size):
        raise ValueError(
            f"tokens must lie in [0, vocab_size) = [0, {vocab_size}) to be counted, got ids "
            f"in [{values.min()}, {values.max()}]"
        )
    dtype = jnp.result_type(float)
    return NGramModel(
        **_count(tokens, n=n, vocab_size=vocab_size, budget=_dense_budget),
        alpha=jnp.asarray(alpha, dtype),
        discount=jnp.asarray(discount, dtype),
        n=n,
        vocab_size=vocab_size,
        smoothing=smoothing,
    )


# --------------------------------------------------------------------------------------
# lookups
# --------------------------------------------------------------------------------------


def _find(table: jax.Array, query: jax.Array):
    """Index of each query in a sorted table and whether it is there. query: (...)."""
    index = jnp.minimum(jnp.searchsorted(table, query), table.shape[0] - 1)
    return index, table[index] == query


def _in_vocab(tokens: jax.Array, vocab_size: int) -> jax.Array:
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
        index, found = _find(model.gram_ids[j], rank * V + jnp.clip(w, 0, V - 1))
        seen = seen & found & _in_vocab(w, V)
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
    grams = jnp.asarray(grams, jnp.int32)
    if grams.ndim < 1 or not 1 <= grams.shape[-1] <= model.n:
        raise ValueError(f"grams.shape[-1] must be in [1, n={model.n}], got {grams.shape}")
    return _lookup_counts(model, grams, False)


def continuation_counts(model: NGramModel, grams: jax.Array) -> jax.Array:
    """Continuation counts N1+(. g) of k-grams, 1 <= k < n: distinct words seen before g.

    grams: (..., k) int -> (...,) int32.
    """
    grams = jnp.asarray(grams, jnp.int32)
    if grams.ndim < 1 or not 1 <= grams.shape[-1] < model.n:
        raise ValueError(f"grams.shape[-1] must be in [1, n={model.n}), got {grams.shape}")
    return _lookup_counts(model, grams, True)


# --------------------------------------------------------------------------------------
# smoothed probabilities
# --------------------------------------------------------------------------------------


def _lookup_contexts_and_targets(model: NGramModel, history: jax.Array, w: jax.Array):
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
        index, found = _find(model.gram_ids[j - 1], jnp.concatenate(queries))
        m = w.shape[0]
        out.append((ranks[j - 1], seen[j - 1], index[:m], found[:m] & seen[j - 1]))
        for i, (k, t) in enumerate(zip(longer, tokens, strict=True)):
            seen[k - 1] = seen[k - 1] & found[m + i] & _in_vocab(t, V)
            ranks[k - 1] = jnp.where(seen[k - 1], index[m + i], 0)
    return out


def _probs(model: NGramModel, history: jax.Array, num_valid: jax.Array, targets: jax.Array):
    """P(target | history) for each target.

    history: (n - 1,) int32, of which the last ``num_valid`` are real tokens; targets: (m,).
    Returns (m,) floats. The model of order ``top = min(num_valid + 1, n)`` answers.
    """
    n, V = model.n, model.vocab_size
    dtype = model.alpha.dtype
    top = jnp.minimum(num_valid + 1, n)
    target_ok = _in_vocab(targets, V)
    w = jnp.clip(targets, 0, V - 1)
    uniform = jnp.full(targets.shape, 1.0 / V, dtype)  # order 0
    lower = uniform  # P at the order below k (Kneser-Ney recursion)
    answer = uniform  # add-k: the estimate at order `top`
    lookups = _lookup_contexts_and_targets(model, history, w)
    for k in range(1, n + 1):
        is_top = k == top
        rank, seen, index, found = lookups[k - 1]
        c = jnp.where(found, model.gram_counts[k - 1][index], 0).astype(dtype)  # c(u w)
        c_total = jnp.where(seen, model.context_totals[k - 1][rank], 0).astype(dtype)
        if model.smoothing == "add_k":
            # Jurafsky & Martin eq. 3.26: (c(u w) + k) / (c(u .) + k V); uniform if 0 / 0
            denom = c_total + model.alpha * V
            safe = jnp.where(denom > 0, denom, 1.0)
            p_k = jnp.where(denom > 0, (c + model.alpha) / safe, uniform)
            answer = jnp.where(is_top, p_k, answer)
            continue
        c_types = jnp.where(seen, model.context_types[k - 1][rank], 0).astype(dtype)
        if k < n:
            # below the top order, Kneser-Ney counts continuations N1+(. u w) (C&G eq. 17)
            cc = jnp.where(found, model.gram_continuations[k - 1][index], 0).astype(dtype)
            cc_total = jnp.where(seen, model.continuation_totals[k - 1][rank], 0)
            cc_types = jnp.where(seen, model.continuation_types[k - 1][rank], 0)
            a = jnp.where(is_top, c, cc)
            a_total = jnp.where(is_top, c_total, cc_total.astype(dtype))
            a_types = jnp.where(is_top, c_types, cc_types.astype(dtype))
        else:
            a, a_total, a_types = c, c_total, c_types
        d = model.discount
        safe = jnp.where(a_total > 0, a_total, 1.0)
        # C&G eq. (16): max(a - D, 0) / a(u .) + D N1+(u .) / a(u .) * P(w | u')
        p_k = jnp.maximum(a - d, 0.0) / safe + d * a_types / safe * lower
        p_k = jnp.where(a_total > 0, p_k, lower)  # unseen context: back off wholly
        lower = jnp.where(k <= top, p_k, lower)
        answer = lower
    return jnp.where(target_ok, answer, 0.0)


def _history(context: jax.Array, n: int):
    """The last n - 1 tokens of a context, left-padded, and how many are real."""
    m = context.shape[0]
    padded = jnp.concatenate([jnp.full((n - 1,), -1, jnp.int32), context.astype(jnp.int32)])
    return padded[padded.shape[0] - (n - 1) :], jnp.asarray(min(m, n - 1), jnp.int32)


@jax.jit
def _next_token_probs(model: NGramModel, context: jax.Array) -> jax.Array:
    history, num_valid = _history(context, model.n)
    return _probs(model, history, num_valid, jnp.arange(model.vocab_size, dtype=jnp.int32))


def next_token_probs(model: NGramModel, context: jax.Array) -> jax.Array:
    """P(w | context) for every w in the vocabulary.

    Args:
      model: a fitted :class:`NGramModel`.
      context: (m,) int token ids, any m >= 0; the last ``min(m, n - 1)`` are used, so a
        short context is answered by the model of order ``m + 1``. Out-of-vocabulary ids
        are allowed (contexts containing them count as unseen).

    Returns:
      (vocab_size,) floats that sum to 1.
    """
    return _next_token_probs(model, _check_tokens("context", context))


@jax.jit
def _log_prob(model: NGramModel, tokens: jax.Array) -> jax.Array:
    n = model.n
    T = tokens.shape[0]
    padded = jnp.concatenate([jnp.full((n - 1,), -1, jnp.int32), tokens])  # (T + n - 1,)
    windows = padded[jnp.arange(T)[:, None] + jnp.arange(n - 1)[None, :]]  # (T, n - 1)
    num_valid = jnp.minimum(jnp.arange(T, dtype=jnp.int32), n - 1)  # (T,)
    p = jax.vmap(lambda h, v, t: _probs(model, h, v, t[None])[0])(windows, num_valid, tokens)
    return jnp.log(p)  # log 0 = -inf for out-of-vocabulary targets


def log_prob(model: NGramModel, tokens: jax.Array) -> jax.Array:
    """Per-token log-probabilities ``log P(x_i | x_{i-n+1} .. x_{i-1})``.

    Args:
      model: a fitted :class:`NGramModel`.
      tokens: (T,) int token ids. Token ``i < n - 1`` is conditioned on the i tokens before
        it (the order-(i + 1) model); an out-of-vocabulary target gets ``-inf``.

    Returns:
      (T,) floats.
    """
    return _log_prob(model, _check_tokens("tokens", tokens))


def perplexity(model: NGramModel, tokens: jax.Array) -> jax.Array:
    """``exp(-mean_i log P(x_i | context))`` over all T tokens. tokens: (T,), T >= 1."""
    tokens = _check_tokens("tokens", tokens)
    if tokens.shape[0] < 1:
        raise ValueError("tokens must hold at least one token to have a perplexity")
    return jnp.exp(-jnp.mean(_log_prob(model, tokens)))


# --------------------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------------------


def sample_step(
    model: NGramModel,
    history: jax.Array,
    num_valid: jax.Array,
    gumbel: jax.Array,
    temperature: jax.Array | float = 1.0,
) -> jax.Array:
    """One deterministic sampling step given its noise (the Gumbel-max trick).

    ``argmax_w (log P(w | history) / T + g_w)`` with ``g ~ Gumbel(0, 1)`` is a draw from
    ``softmax(log P / T)`` (Gumbel 1954; Maddison et al. 2014).

    Args:
      history: (n - 1,) int32 of which the last ``num_valid`` are real tokens.
      num_valid: () int32.
      gumbel: (vocab_size,) standard Gumbel noise.
      temperature: T > 0.

    Returns:
      () int32, the next token.
    """
    p = _probs(model, history, num_valid, jnp.arange(model.vocab_size, dtype=jnp.int32))
    logp = jnp.log(jnp.where(p > 0, p, 1.0)) / temperature
    # a zero-probability token is removed with finfo.min, never -inf arithmetic
    logits = jnp.where(p > 0, logp, jnp.finfo(logp.dtype).min)
    return jnp.argmax(logits + gumbel).astype(jnp.int32)


@jax.jit
def sample_from_noise(
    model: NGramModel, prefix: jax.Array, gumbel: jax.Array, temperature: jax.Array | float = 1.0
) -> jax.Array:
    """The sampling loop over :func:`sample_step` with all noise given (one ``lax.scan``).

    prefix: (p,) int32; gumbel: (length, vocab_size) -> (length,) int32 new tokens.
    """
    n = model.n
    history, num_valid = _history(prefix, n)

    def step(carry, g):
        # carry: the last n - 1 tokens (n - 1,) and how many of them are real ()
        history, num_valid = carry
        token = sample_step(model, history, num_valid, g, temperature)
        history = jnp.concatenate([history, token[None]])[1:]  # shift the window
        return (history, jnp.minimum(num_valid + 1, n - 1)), token

    _, tokens = jax.lax.scan(step, (history, num_valid), gumbel)
    return tokens


def sample(
    key: jax.Array,
    model: NGramModel,
    prefix: jax.Array,
    length: int,
    *,
    temperature: float = 1.0,
) -> jax.Array:
    """Draws ``length`` tokens after ``prefix``, one jitted ``lax.scan``.

    Args:
      key: a JAX key.
      model: a fitted :class:`NGramModel`.
      prefix: (p,) int token ids to continue (p may be 0).
      length: number of new tokens, >= 0.
      temperature: T > 0; samples from ``softmax(log P / T)`` (T = 1: the model itself).

    Returns:
      (length,) int32 new tokens (the prefix not included).
    """
    prefix = _check_tokens("prefix", prefix)
    if not isinstance(length, (int, np.integer)) or length < 0:
        raise ValueError(f"length must be an integer >= 0, got {length!r}")
    t = _concrete(temperature)
    if t is not None and (t.shape != () or not np.isfinite(t) or float(t) <= 0.0):
        raise ValueError(f"temperature must be a finite scalar > 0, got {temperature!r}")
    gumbel = jax.random.gumbel(key, (length, model.vocab_size), model.alpha.dtype)
    return sample_from_noise(model, prefix, gumbel, temperature)
