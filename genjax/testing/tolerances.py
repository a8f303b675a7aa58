"""The one tolerance table (float32 / float64, one op / a long loop) and oracle comparison."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

__all__ = ["TOLERANCES", "tolerance", "assert_close_to_oracle"]


# ---------------------------------------------------------------------------------------
# Tolerances
# ---------------------------------------------------------------------------------------

# (dtype name, kind) -> (rtol, atol). "single_op": one function evaluation (a density, a
# loss, one sampler step) compared with the float64 oracle; "long_loop": a whole sampler
# or solver trajectory (tens to thousands of steps) compared with the oracle's.
TOLERANCES: dict[tuple[str, str], tuple[float, float]] = {
    # eps = 2.2e-16. Different but equivalent algorithms (Cholesky vs solve, log-sum-exp
    # orderings) on matrices with condition numbers up to ~1e4 lose ~4-5 digits.
    ("float64", "single_op"): (1e-10, 1e-12),
    # Rounding compounds over up to ~1e3 steps and is amplified by each step's Lipschitz
    # constant; 1e-8 still catches any error in the mathematics.
    ("float64", "long_loop"): (1e-8, 1e-10),
    # eps = 1.2e-7. Reductions over ~1e2-1e3 terms and float32 transcendental functions
    # leave ~1e-6 relative error; 1e-5 leaves room without hiding a wrong term.
    ("float32", "single_op"): (1e-5, 1e-6),
    # ~1e-6 per step over hundreds of steps, amplified by the dynamics (e.g. the 1/sigma
    # factors of a diffusion sampler near t = 0).
    ("float32", "long_loop"): (1e-3, 1e-4),
    # eps = 9.8e-4: a few ulps for one operation; loops accumulate an order more.
    ("float16", "single_op"): (5e-3, 1e-3),
    ("float16", "long_loop"): (5e-2, 1e-2),
    # eps = 7.8e-3 (8-bit mantissa).
    ("bfloat16", "single_op"): (4e-2, 1e-2),
    ("bfloat16", "long_loop"): (2e-1, 5e-2),
}

_KINDS = ("single_op", "long_loop")


def tolerance(dtype: Any, kind: str = "single_op") -> tuple[float, float]:
    """``(rtol, atol)`` for comparing a result of floating ``dtype`` with a float64 oracle.

    Args:
      dtype: the dtype of the result under test (anything ``np.dtype`` accepts, or an array).
      kind: ``"single_op"`` (one evaluation) or ``"long_loop"`` (a trajectory of steps).

    Returns:
      ``(rtol, atol)``; ``(0.0, 0.0)`` for integer and boolean dtypes (must match exactly).
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    if not isinstance(dtype, (type, np.dtype, str)) and hasattr(dtype, "dtype"):  # an array
        dtype = dtype.dtype
    dtype = np.dtype(dtype)
    name = dtype.name
    if np.issubdtype(dtype, np.integer) or name == "bool":
        return 0.0, 0.0
    if np.issubdtype(dtype, np.complexfloating):
        name = {"complex64": "float32", "complex128": "float64"}[name]
    if (name, kind) not in TOLERANCES:
        raise ValueError(f"dtype must be a float, integer or bool dtype, got {name!r}")
    return TOLERANCES[(name, kind)]


def assert_close_to_oracle(
    actual: Any, expected: Any, *, kind: str = "single_op", err_msg: str = ""
) -> None:
    """Assert that ``actual`` (JAX) matches ``expected`` (oracle) to the table's tolerance.

    The tolerance is read from the dtype of each leaf of ``actual``. Both may be arrays or
    pytrees of arrays with the same number of leaves; shapes must be equal (no silent
    broadcasting), values finite where the oracle's are.

    Args:
      actual: array or pytree -- the result under test.
      expected: array or pytree -- the oracle's (usually float64) result.
      kind: ``"single_op"`` or ``"long_loop"``.
      err_msg: prefix for the failure message.

    Raises:
      AssertionError: on a shape or value mismatch.
    """
    a_leaves = jax.tree_util.tree_leaves(actual)
    e_leaves = jax.tree_util.tree_leaves(expected)
    prefix = f"{err_msg}: " if err_msg else ""
    if len(a_leaves) != len(e_leaves):
        raise AssertionError(
            f"{prefix}actual has {len(a_leaves)} leaves, expected has {len(e_leaves)}"
        )
    for i, (a, e) in enumerate(zip(a_leaves, e_leaves, strict=True)):
        a_np = np.asarray(a)
        e_np = np.asarray(e)
        where = f"{prefix}leaf {i}: " if len(a_leaves) > 1 else prefix
        if a_np.shape != e_np.shape:
            raise AssertionError(f"{where}shape {a_np.shape} != expected shape {e_np.shape}")
        rtol, atol = tolerance(a_np.dtype, kind)
        np.testing.assert_allclose(
            a_np.astype(np.float64) if a_np.dtype.kind == "f" else a_np,
            e_np,
            rtol=rtol,
            atol=atol,
            err_msg=f"{where}({a_np.dtype}, {kind}: rtol={rtol}, atol={atol})",
        )
