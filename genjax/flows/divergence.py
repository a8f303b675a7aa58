"""The divergence ``tr(dv/dx)`` of a vector field: exactly, or by Hutchinson's estimator.

What a continuous normalizing flow integrates along its trajectory (:mod:`genjax.flows.cnf`).
For ``v: (batch, D) -> (batch, D)`` acting on each example independently, the batch
Jacobian is block diagonal, so one JVP with a tangent shared by the whole batch returns
every example's ``J u`` at once:

* exact: ``tr(J) = sum_i e_i^T J e_i``, ``D`` JVPs (one per basis vector ``e_i``);
* Hutchinson (1989; FFJORD sec. 3.1): ``tr(J) = E[u^T J u]`` for any probe with
  ``E[u u^T] = I`` — Rademacher (+-1 entries, the lower-variance choice) or standard
  Gaussian — averaged over ``num_probes`` probes, one JVP each. FFJORD computes ``u^T J``
  by a VJP; ``J u`` by a JVP gives the same number without a tape.

References:
  Hutchinson, "A stochastic estimator of the trace of the influence matrix for
  Laplacian smoothing splines", 1989.
  Grathwohl et al., "FFJORD", ICLR 2019, sec. 3.1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from genjax import checks

__all__ = ["TRACES", "PROBES", "divergence", "trace_exact", "trace_hutchinson", "draw_probes"]

TRACES = ("exact", "hutchinson")
"""How the divergence is computed: ``"exact"`` (D Jacobian-vector products) or ``"hutchinson"``."""
PROBES = ("rademacher", "gaussian")
"""Hutchinson probe distributions: ``"rademacher"`` (+-1) or ``"gaussian"``."""


def divergence(jvp_fn: Callable[[jax.Array], jax.Array], x: jax.Array, trace: str,
               probes: jax.Array | None) -> jax.Array:
    """``tr(J)`` per example from ``jvp_fn(u) = J u``: exact or Hutchinson's estimate.

    Args:
      jvp_fn: ``(batch, D) -> (batch, D)``, the linear map ``u -> J u`` of a function that
        acts on each example independently (so the batch Jacobian is block diagonal).
      x: (batch, D) the point (for its shape and dtype).
      trace: ``"exact"`` or ``"hutchinson"``.
      probes: (num_probes, batch, D) for ``"hutchinson"``.

    Returns:
      (batch,) traces (exact) or their unbiased estimates.
    """
    if trace == "exact":
        eye = jnp.eye(x.shape[1], dtype=x.dtype)  # (D, D): row i = e_i
        tangents = jnp.broadcast_to(eye[:, None, :], (x.shape[1], *x.shape))  # (D, batch, D)
        cols = jax.vmap(jvp_fn)(tangents)  # (D, batch, D): [i] = J e_i for every example
        return jnp.sum(cols * tangents, axis=(0, 2))  # (batch,) = sum_i e_i^T J e_i
    jv = jax.vmap(jvp_fn)(probes)  # (num_probes, batch, D) = J v_k
    return jnp.mean(jnp.sum(probes * jv, axis=-1), axis=0)  # (batch,) = mean_k v_k^T J v_k


def trace_exact(fn: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
    """Exact ``tr(d fn / d x)`` per example: ``sum_i [J e_i]_i`` by ``D`` JVPs.

    Args:
      fn: ``(batch, D) -> (batch, D)``, acting on each example independently.
      x: (batch, D) points.

    Returns:
      (batch,) traces of the per-example Jacobians.
    """
    x = jnp.asarray(x)
    out, jvp_fn = jax.linearize(fn, x)
    checks.model_output(out, x.shape, "x", name="fn")  # (batch, D), not broadcast
    return divergence(jvp_fn, x, "exact", None)


def trace_hutchinson(
    fn: Callable[[jax.Array], jax.Array], x: jax.Array, probes: jax.Array
) -> jax.Array:
    """Hutchinson's estimate ``mean_k v_k^T (d fn / d x) v_k`` per example.

    Args:
      fn: ``(batch, D) -> (batch, D)``, acting on each example independently.
      x: (batch, D) points.
      probes: (num_probes, batch, D) probes with ``E[v v^T] = I``.

    Returns:
      (batch,) unbiased estimates of the traces.
    """
    x, probes = jnp.asarray(x), jnp.asarray(probes)
    checks.shape("probes", probes, (None, *x.shape))
    out, jvp_fn = jax.linearize(fn, x)
    checks.model_output(out, x.shape, "x", name="fn")
    return divergence(jvp_fn, x, "hutchinson", probes.astype(x.dtype))


def draw_probes(
    key: jax.Array,
    shape: tuple[int, int],
    *,
    probe: str = "rademacher",
    num_probes: int = 1,
    dtype: Any = jnp.float32,
) -> jax.Array:
    """Hutchinson probes ``(num_probes, batch, D)``: Rademacher (+-1) or N(0, 1) entries."""
    checks.one_of("probe", probe, PROBES)
    full = (checks.positive_int("num_probes", num_probes), *shape)
    if probe == "rademacher":
        return jax.random.rademacher(key, full, dtype=dtype)
    return jax.random.normal(key, full, dtype)
