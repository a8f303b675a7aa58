"""Exact optimal transport between two minibatches: a linear assignment solver in JAX.

Minibatch OT conditional flow matching (Tong et al. 2023, OT-CFM; Pooladian et al. 2023)
pairs a batch of source draws ``x0`` with a batch of data ``x1`` by the optimal
transport plan between the two empirical measures. For two uniform measures of equal
size ``n`` the plan is a permutation (Birkhoff-von Neumann), the solution of the linear
assignment problem

    pi* = argmin_{pi in S_n} sum_j C[j, pi(j)],    C[j, i] = |x1_j - x0_i|^2.

We solve it exactly with the Hungarian method in its shortest-augmenting-path form
(Kuhn 1955; Munkres 1957; the O(n^3) variant with row/column potentials of Jonker &
Volgenant 1987): rows are added one at a time; for each, a Dijkstra-like search over
reduced costs ``C[i, j] - u_i - v_j >= 0`` finds the cheapest augmenting path to a free
column while updating the dual potentials ``u, v`` so that every assigned edge stays
tight. ``n`` outer steps, each at most ``n`` search steps of ``O(n)`` vector work:
``O(n^3)``, all in ``lax.fori_loop`` / ``lax.while_loop`` — one XLA program, no host
round trip (scipy's ``linear_sum_assignment`` is only used by the tests).

**Which side is permuted** (torchcfm PR 178 fixed exactly this): :func:`ot_pair` keeps
``x1`` in its order — so labels or conditioning attached to ``x1`` stay aligned — and
reorders ``x0`` so that ``x0_paired[j]`` is the source point transported to ``x1[j]``.

References:
  Tong, Fatras, Malkin, Huguet, Zhang, Rector-Brooks, Wolf, Bengio, "Improving and
  generalizing flow-based generative models with minibatch optimal transport", TMLR 2024
  (arXiv 2302.00482, 2023).
  Kuhn, "The Hungarian method for the assignment problem", 1955.
  Jonker & Volgenant, "A shortest augmenting path algorithm for dense and sparse linear
  assignment problems", Computing 38, 1987.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from genjax import checks

__all__ = ["linear_sum_assignment", "squared_distances", "ot_pair"]


def _check_cost(args: dict[str, Any]) -> None:
    # Before compiling (inside, cost is a tracer): NaN/inf costs have no minimum matching.
    checks.finite("cost", args["cost"])


@checks.before_jit(_check_cost)
@jax.jit
def linear_sum_assignment(cost: jax.Array) -> jax.Array:
    """Exact minimum-cost perfect matching of a square cost matrix (Hungarian method).

        col = argmin_{permutation} sum_i cost[i, col[i]]

    Args:
      cost: (n, n) finite costs (any real values).

    Returns:
      (n,) int32 ``col``: row ``i`` is assigned column ``col[i]`` (a permutation).

    Example:
      >>> linear_sum_assignment(jnp.array([[4.0, 1.0], [2.0, 8.0]])).tolist()
      [1, 0]
    """
    if cost.ndim != 2 or cost.shape[0] != cost.shape[1]:
        raise ValueError(f"cost must be a square (n, n) matrix, got shape {cost.shape}")
    n = cost.shape[0]
    dtype = cost.dtype if jnp.issubdtype(cost.dtype, jnp.floating) else jnp.float32
    # 1-based rows and columns; row 0 / column 0 are the sentinel of the augmenting search.
    a = jnp.zeros((n + 1, n + 1), dtype).at[1:, 1:].set(cost.astype(dtype))
    inf = jnp.asarray(jnp.inf, dtype)
    cols = jnp.arange(n + 1)
    is_real = cols > 0  # column 0 is the sentinel

    def add_row(i, state):
        # u: (n+1,) row potentials; v: (n+1,) column potentials;
        # p: (n+1,) row assigned to each column (0 = free); way: (n+1,) previous column
        # on the shortest augmenting path.
        u, v, p, way = state
        p = p.at[0].set(i)  # the new row hangs off the sentinel column

        def searching(s):
            j0, *_ = s
            return p[j0] != 0  # stop on reaching a free column

        def search(s):
            # j0: the column just reached; minv: (n+1,) shortest reduced distance to each
            # column; used: (n+1,) columns on the search tree.
            j0, u, v, minv, used, way = s
            used = used.at[j0].set(True)
            i0 = p[j0]
            reduced = a[i0] - u[i0] - v  # (n+1,) reduced costs from row i0
            free = is_real & ~used
            better = free & (reduced < minv)
            minv = jnp.where(better, reduced, minv)
            way = jnp.where(better, j0, way)
            candidates = jnp.where(free, minv, inf)
            j1 = jnp.argmin(candidates)
            delta = candidates[j1]  # the Dijkstra step: nearest column not yet in the tree
            # Dual update keeping tree edges tight: u[p[j]] += delta, v[j] -= delta on the
            # tree, and the tentative distances of the other columns shrink by delta.
            u = u.at[p].add(jnp.where(used, delta, 0.0))
            v = jnp.where(used, v - delta, v)
            minv = jnp.where(free, minv - delta, minv)
            return j1, u, v, minv, used, way

        init = (jnp.zeros((), jnp.int32), u, v, jnp.full((n + 1,), inf),
                jnp.zeros((n + 1,), bool), way)
        j0, u, v, _, _, way = lax.while_loop(searching, search, init)

        def augmenting(s):
            return s[0] != 0

        def augment(s):
            # Flip the path: every column on it takes the row of its predecessor.
            j0, p = s
            j1 = way[j0]
            return j1, p.at[j0].set(p[j1])

        _, p = lax.while_loop(augmenting, augment, (j0, p))
        return u, v, p, way

    zeros_f = jnp.zeros((n + 1,), dtype)
    zeros_i = jnp.zeros((n + 1,), jnp.int32)
    _, _, p, _ = lax.fori_loop(1, n + 1, add_row, (zeros_f, zeros_f, zeros_i, zeros_i))
    # p[j] = row of column j (1-based) -> col[row] = column.
    col = jnp.zeros((n + 1,), jnp.int32).at[p[1:]].set(jnp.arange(1, n + 1, dtype=jnp.int32))
    return col[1:] - 1


def squared_distances(x1: jax.Array, x0: jax.Array) -> jax.Array:
    """``C[j, i] = |x1_j - x0_i|^2``; x1: (n, D), x0: (m, D) -> (n, m)."""
    x1, x0 = jnp.asarray(x1), jnp.asarray(x0)
    checks.ndim("x1", x1, 2, "(n, D)")
    checks.shape("x0", x0, (None, x1.shape[1]))
    diff = x1[:, None, :] - x0[None, :, :]  # (n, m, D)
    return jnp.sum(diff**2, axis=-1)


def ot_pair(x0: jax.Array, x1: jax.Array) -> jax.Array:
    """Reorder the source batch ``x0`` by the exact OT assignment to the data batch ``x1``.

        pi* = argmin_pi sum_j |x1_j - x0_{pi(j)}|^2,    x0_paired[j] = x0[pi*(j)]

    ``x1`` is NOT reordered (torchcfm PR 178): pair ``(x0_paired[j], x1[j])``.

    Args:
      x0: (n, D) source draws.
      x1: (n, D) data.

    Returns:
      (n, D) ``x0_paired``, a permutation of the rows of ``x0``.
    """
    checks.ndim("x1", x1, 2, "(batch, dim)")
    checks.same_shape("x0", x0, "x1", x1)
    cost = lax.stop_gradient(squared_distances(x1, x0))  # (n, n): rows x1, columns x0
    pi = linear_sum_assignment(cost)  # (n,): x1[j] <- x0[pi[j]]
    return x0[pi]
