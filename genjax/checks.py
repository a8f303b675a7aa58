"""Argument checks shared by every family: one message format, ``(name, value)`` order.

DESIGN.md, "Bad input gets a clear error": an argument that is checkable at trace time raises
``ValueError`` naming the argument, the value and what is allowed. Every public function of
every family checks through this module, so messages read alike:

    ValueError: top_p must be in (0, 1], got 1.5

Values that are tracers (an argument traced by ``jax.jit``, ``vmap`` or ``grad``) cannot be
inspected at trace time; the value checks below skip them (a traced step size is the caller's
responsibility) while shape and dtype checks, which only need the abstract value, always run.
Each check returns its (converted) value so that it can be used inline:

    num_steps = checks.positive_int("num_steps", num_steps)
"""

from __future__ import annotations

import functools
import inspect
import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "is_concrete",
    "positive",
    "nonnegative",
    "in_range",
    "probability",
    "positive_int",
    "nonnegative_int",
    "int_in_range",
    "one_of",
    "finite",
    "shape",
    "ndim",
    "floating",
    "integer_array",
    "token_ids",
    "same_shape",
    "int_array_in_range",
    "covariance",
    "PSD_RTOL",
    "sigma_sequence",
    "model_output",
    "instance",
    "before_jit",
]


def is_concrete(value: Any) -> bool:
    """True when ``value`` holds no tracer, so that its numbers can be read at trace time."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(value))


def _numbers(value: Any) -> np.ndarray | None:
    """``value`` as a float64 NumPy array, or None when it is traced (not checkable now)."""
    if not is_concrete(value):
        return None
    return np.asarray(value, dtype=np.float64)


def _show(value: Any) -> str:
    arr = np.asarray(value)
    if arr.ndim == 0:
        return repr(value) if isinstance(value, int | float | bool) else repr(arr.item())
    flat = arr.ravel()
    head = ", ".join(f"{v:.6g}" for v in flat[:4])
    return f"array of shape {arr.shape} [{head}{', ...' if flat.size > 4 else ''}]"


def in_range(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> Any:
    """Checks ``low <= value <= high`` elementwise (``<`` on an open end) and finiteness.

    Args:
      name: the argument's name, as the caller spells it.
      value: a number or array (skipped when traced).
      low, high: the allowed interval's ends; ``inf`` for none.
      low_open, high_open: whether each end is excluded.

    Returns:
      ``value``, unchanged.

    Raises:
      ValueError: naming the argument, the value and the allowed interval.
    """
    arr = _numbers(value)
    if arr is None:
        return value
    lo_ok = operator.gt if low_open else operator.ge
    hi_ok = operator.lt if high_open else operator.le
    # NaN and inf are never in range: a value must be a finite number inside the interval.
    ok = np.all(np.isfinite(arr)) and np.all(lo_ok(arr, low)) and np.all(hi_ok(arr, high))
    if not ok:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"{name} must be in {lo}{low:g}, {high:g}{hi}, got {_show(value)}")
    return value


def positive(name: str, value: Any) -> Any:
    """``value > 0`` and finite (elementwise); returns ``value``."""
    arr = _numbers(value)
    if arr is not None and not (np.all(np.isfinite(arr)) and np.all(arr > 0)):
        raise ValueError(f"{name} must be positive and finite, got {_show(value)}")
    return value


def nonnegative(name: str, value: Any) -> Any:
    """``value >= 0`` and finite (elementwise); returns ``value``."""
    arr = _numbers(value)
    if arr is not None and not (np.all(np.isfinite(arr)) and np.all(arr >= 0)):
        raise ValueError(f"{name} must be non-negative and finite, got {_show(value)}")
    return value


def probability(name: str, value: Any, *, low_open: bool = False, high_open: bool = False) -> Any:
    """``value`` in ``[0, 1]`` (ends excluded as asked); returns ``value``."""
    return in_range(name, value, 0.0, 1.0, low_open=low_open, high_open=high_open)


def _as_int(name: str, value: Any, what: str) -> int:
    if isinstance(value, jax.core.Tracer):
        raise ValueError(f"{name} must be a Python int (it sets a shape or a loop length), got a "
                         "traced value; mark it static")
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        arr = np.asarray(value)
        if arr.ndim != 0 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def positive_int(name: str, value: Any) -> int:
    """An integer ``>= 1``; returns it as a Python ``int``."""
    out = _as_int(name, value, "an integer >= 1")
    if out < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return out


def nonnegative_int(name: str, value: Any) -> int:
    """An integer ``>= 0``; returns it as a Python ``int``."""
    out = _as_int(name, value, "an integer >= 0")
    if out < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return out


def int_in_range(name: str, value: Any, low: int, high: int) -> int:
    """An integer in ``[low, high]`` (both included); returns it as a Python ``int``."""
    out = _as_int(name, value, f"an integer in [{low}, {high}]")
    if not low <= out <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return out


def one_of(name: str, value: Any, allowed: Sequence[Any]) -> Any:
    """``value`` is one of ``allowed``; returns ``value``."""
    if value not in tuple(allowed):
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return value


def finite(name: str, value: Any) -> Any:
    """Every entry finite (no NaN, no inf); returns ``value``. Skipped when traced.

    The message counts the non-finite entries and gives the first one's index, so that a
    user can find it in their data.
    """
    arr = _numbers(value)
    if arr is not None:
        bad = ~np.isfinite(arr)
        if np.any(bad):
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{name} must be finite: {int(bad.sum())} of {arr.size} entries are NaN or inf "
                f"(the first at index {first if len(first) != 1 else first[0]})"
            )
    return value


def shape(name: str, value: Any, expected: Sequence[int | None | str]) -> tuple[int, ...]:
    """``value.shape`` matches ``expected``, where ``None`` (or a name string) is any size.

    Works on tracers (the shape is static). Returns the actual shape.
    """
    got = tuple(jnp.shape(value))
    ok = len(got) == len(expected) and all(
        e is None or isinstance(e, str) or g == e for g, e in zip(got, expected, strict=False)
    )
    if not ok:
        want = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        raise ValueError(f"{name} must have shape {want}, got {got}")
    return got


def ndim(name: str, value: Any, allowed: int | Sequence[int], what: str = "") -> int:
    """``value.ndim`` is (one of) ``allowed``; ``what`` names the axes, e.g. ``"(batch, dim)"``."""
    allowed_t = (allowed,) if isinstance(allowed, int) else tuple(allowed)
    got = jnp.ndim(value)
    if got not in allowed_t:
        axes = f" {what}" if what else ""
        rank = " or ".join(str(a) for a in allowed_t)
        raise ValueError(f"{name} must have {rank} dimensions{axes}, got shape {jnp.shape(value)}")
    return got


def floating(name: str, value: Any) -> Any:
    """A floating-point array; returns ``value``."""
    if not jnp.issubdtype(jnp.result_type(value), jnp.floating):
        dtype = jnp.result_type(value)
        raise ValueError(f"{name} must be a floating-point array, got dtype {dtype}")
    return value


def integer_array(name: str, value: Any) -> Any:
    """An integer array (token ids, labels, timesteps); returns ``value``."""
    if not jnp.issubdtype(jnp.result_type(value), jnp.integer):
        raise ValueError(f"{name} must be an integer array, got dtype {jnp.result_type(value)}")
    return value


def token_ids(name: str, value: Any, vocab_size: int) -> Any:
    """Integer ids in ``[0, vocab_size)``; skipped (but dtype-checked) when traced."""
    integer_array(name, value)
    arr = _numbers(value)
    if arr is not None and arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
        bad = (arr < 0) | (arr >= vocab_size)
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} must hold token ids in [0, {vocab_size}), got "
            f"{int(arr.ravel()[bad.ravel()][0])} at index {first if len(first) != 1 else first[0]}"
        )
    return value


def same_shape(name: str, value: Any, reference_name: str, reference: Any) -> Any:
    """``value`` has the shape of ``reference`` (a model's output against its input, say)."""
    if tuple(jnp.shape(value)) != tuple(jnp.shape(reference)):
        raise ValueError(
            f"{name} must have the shape of {reference_name} {tuple(jnp.shape(reference))}, "
            f"got {tuple(jnp.shape(value))}"
        )
    return value


def int_array_in_range(name: str, value: Any, low: int, high: int) -> Any:
    """Integers in ``[low, high)`` (times ``t`` of a discrete diffusion, class labels).

    The dtype is always checked; the values only when concrete (under ``jax.jit`` a traced
    array cannot be read, and the caller documents what happens then). The message gives
    the first offending value and its index.
    """
    integer_array(name, value)
    arr = _numbers(value)
    if arr is not None and arr.size:
        bad = (arr < low) | (arr >= high)
        if np.any(bad):
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            where = "" if arr.ndim == 0 else (
                f" at index {first if len(first) != 1 else first[0]}"
            )
            raise ValueError(
                f"{name} must hold integers in [{low}, {high}), got "
                f"{int(arr.ravel()[bad.ravel()][0])}{where}"
            )
    return value


# A covariance is accepted as positive semi-definite when its smallest eigenvalue is at
# least -PSD_RTOL * (its largest |eigenvalue|) and it is symmetric to the same relative
# tolerance. sqrt(eps) of the value's dtype is used when larger: rounding in forming a
# covariance (a sum of outer products) errs by ~D eps |S|, far below sqrt(eps) |S| for any
# D a covariance is formed at, while a genuinely indefinite matrix (an eigenvalue of -1
# against +1) is far outside it.
PSD_RTOL = 1e-6


def covariance(name: str, value: Any) -> Any:
    """A symmetric positive semi-definite ``(..., D, D)`` matrix (up to rounding), finite.

    Skipped (but shape-checked) when traced. Returns ``value``.
    """
    shp = tuple(jnp.shape(value))
    if len(shp) < 2 or shp[-1] != shp[-2]:
        raise ValueError(f"{name} must be a square matrix (..., D, D), got shape {shp}")
    finite(name, value)
    arr = _numbers(value)
    if arr is None or arr.size == 0:
        return value
    dtype = jnp.result_type(value)
    eps = float(jnp.finfo(dtype).eps) if jnp.issubdtype(dtype, jnp.floating) else 0.0
    rtol = max(PSD_RTOL, math.sqrt(eps))
    sym = 0.5 * (arr + np.swapaxes(arr, -1, -2))
    lam = np.linalg.eigvalsh(sym)  # (..., D) ascending
    scale = np.maximum(np.max(np.abs(lam), axis=-1), np.finfo(np.float64).tiny)  # (...,)
    asym = np.max(np.abs(arr - np.swapaxes(arr, -1, -2)), axis=(-1, -2))
    if np.any(asym > rtol * scale):
        raise ValueError(
            f"{name} must be a symmetric matrix, got |S - S^T| up to {float(np.max(asym)):.3g}"
        )
    if np.any(lam[..., 0] < -rtol * scale):
        raise ValueError(
            f"{name} must be positive semi-definite (a covariance), got smallest eigenvalue "
            f"{float(np.min(lam[..., 0])):.6g}"
        )
    return value


def sigma_sequence(name: str, value: Any) -> Any:
    """EDM noise levels ``sigma_0 >= sigma_1 >= ... >= sigma_{N-1} > sigma_N = 0``.

    A 1-D sequence of at least two levels: finite, non-negative, decreasing (a repeated
    level is a step of size 0, harmless), with exactly one trailing 0 (the clean data).
    Shape always checked; values when concrete.
    Returns ``value``.
    """
    shp = tuple(jnp.shape(value))
    if len(shp) != 1 or shp[0] < 2:
        raise ValueError(
            f"{name} must be a 1-D sequence of at least two noise levels ending in 0, "
            f"got shape {shp}"
        )
    arr = _numbers(value)
    if arr is None:
        return value
    if not np.all(np.isfinite(arr)):
        finite(name, value)
    if np.any(arr < 0):
        first = int(np.argmax(arr < 0))
        raise ValueError(f"{name} must be non-negative, got {arr[first]:.6g} at index {first}")
    if arr[-1] != 0:
        raise ValueError(f"{name} must end with exactly one 0 (the clean data), got last "
                         f"value {arr[-1]:.6g}")
    if arr[-2] == 0:
        raise ValueError(
            f"{name} must end with exactly one 0, got {int(np.sum(arr == 0))} zeros at the "
            "end (karras_sigmas already appends the final 0; do not append another)"
        )
    steps = np.diff(arr)
    if np.any(steps > 0):
        first = int(np.argmax(steps > 0))
        raise ValueError(
            f"{name} must be decreasing, got {arr[first]:.6g} then "
            f"{arr[first + 1]:.6g} at index {first}"
        )
    return value


def model_output(
    value: Any, expected: Sequence[int], what: str = "x", name: str = "model"
) -> Any:
    """A model's output has the shape the caller needs, e.g. ``(batch, D)`` like ``x``.

    The message names the model argument (``name``: the argument that is wrong): a network
    returning ``(batch, 1)`` for ``(batch, D)`` would otherwise broadcast silently. Works on
    tracers and on ``jax.eval_shape`` results.
    """
    got = tuple(jnp.shape(value))
    if got != tuple(expected):
        raise ValueError(
            f"{name} must return an array of shape {tuple(expected)} (that of {what}), "
            f"got {got}"
        )
    return value


def instance(name: str, value: Any, types: type | tuple[type, ...], what: str = "") -> Any:
    """``value`` is an instance of ``types`` (a schedule, an SDE, a target); returns it.

    Raises ``TypeError`` naming the argument, what it must be and what it got.
    """
    if not isinstance(value, types):
        names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise TypeError(f"{name} must be {what or 'a ' + names}, got {type(value).__name__}")
    return value


def before_jit(check: Callable[[dict[str, Any]], None]) -> Callable[[Any], Any]:
    """Runs ``check(arguments)`` on the caller's values, then the compiled function.

    Inside a compiled function every array argument is a tracer, so a value check there
    (an EDM sigma sequence, a time index) is skipped. This decorator, placed above
    ``jax.jit``/``model_jit``, runs ``check`` on the bound arguments as the caller passed
    them (concrete unless the caller is itself traced), so that such values are checked
    before compiling. ``check`` receives ``{name: value}`` with defaults applied.
    """

    def decorate(fun: Any) -> Any:
        sig = inspect.signature(fun)

        @functools.wraps(fun)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            check(dict(bound.arguments))
            return fun(*args, **kwargs)

        return wrapper

    return decorate
