"""The argument checks and the NaN rule shared by every sample-set metric.

Used by :mod:`genjax.metrics` and :mod:`genjax.frechet`: sample sets are ``(n, D)`` floating
arrays (integers become the default float); a NaN or inf anywhere in a sample set makes the
metric NaN -- never a score (a 0.0 would read as a perfect match).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from genjax import checks

__all__ = ["as_float", "check_samples", "check_pair", "all_finite", "nan_unless_finite"]


def as_float(x: Any) -> jax.Array:
    """``x`` as a JAX array; integers become the default float (float32, or float64 under x64)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jax.dtypes.canonicalize_dtype(jnp.float64))
    return x


def check_samples(name: str, x: jax.Array, min_n: int = 1) -> None:
    """``x``: (n, D) floating with ``n >= min_n`` and ``D >= 1``."""
    checks.ndim(name, x, 2, "(n, D)")
    if x.shape[0] < min_n:
        raise ValueError(f"{name} needs at least {min_n} samples (rows), got {x.shape[0]}")
    if x.shape[1] < 1:
        raise ValueError(f"{name} must have D >= 1 columns, got {x.shape}")
    checks.floating(name, x)


def check_pair(
    x: Any, y: Any, min_n: int = 1, names: tuple[str, str] = ("x", "y")
) -> tuple[jax.Array, jax.Array]:
    """Two sample sets ``(n, D)`` and ``(m, D)`` (same ``D``, ``n, m >= min_n``), as floating
    arrays of their common dtype; ``names`` are the caller's argument names for messages."""
    x, y = as_float(x), as_float(y)
    check_samples(names[0], x, min_n)
    check_samples(names[1], y, min_n)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"{names[1]} must have the dimension of {names[0]} ({x.shape[1]}), got {y.shape}"
        )
    dtype = jnp.result_type(x.dtype, y.dtype)
    return x.astype(dtype), y.astype(dtype)


def all_finite(*arrays: jax.Array) -> jax.Array:
    """``()`` bool: every entry of every array finite."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in arrays]))


def nan_unless_finite(value: jax.Array, *inputs: jax.Array) -> jax.Array:
    """``value`` where every input is finite, else NaN (of ``value``'s shape and dtype)."""
    # A NaN or inf sample has no distance to anything: report NaN, never a score
    # (a 0.0 would read as a perfect match).
    return jnp.where(all_finite(*inputs), value, jnp.full_like(value, jnp.nan))
