"""The model protocol: a model is a callable pytree, passed to ``jax.jit`` as a traced argument.

DESIGN.md, "One model protocol, in every family". A *model* is anything callable whose weights
are the array leaves of a pytree:

* an ``nnx.Module`` (a pytree since flax 0.12): ``model(x, t)``;
* ``jax.tree_util.Partial(apply, params)``: the params are its leaves;
* an analytic model: a frozen dataclass registered as a pytree (the exact eps of a
  ``GaussianMixture``), whose arrays are its leaves;
* a bound method of a pytree (``target.log_prob``): traced through its instance's arrays;
* a plain Python function (or a closure): it has no array leaves, so it is *static* -- a new
  function object compiles anew, exactly as ``static_argnames`` would.

:func:`model_jit` is ``jax.jit`` for functions that take models. It splits each model
argument into its array leaves (traced: new weights of the same shapes and dtypes reuse the
compiled program, and the weights are arguments of that program, never constants baked into
it) and everything else (functions, strings, Python numbers, the tree structure: static,
hashed into the compilation cache key). This is the "filter" rule of Equinox's
``filter_jit`` applied to the named model arguments only; every other argument follows
``jax.jit``'s own rules and ``static_argnames``.

    @functools.partial(model_jit, static_argnames=("num_steps",))
    def ddim_sample(key, model, shape, schedule, *, num_steps): ...

Two modules with different weights -> one compilation; two different closures -> two.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import jax
import numpy as np

__all__ = ["Model", "model_jit", "is_array", "as_pytree", "partition", "combine"]

Model = Any
"""A callable pytree (see the module docstring); annotated as ``Any`` for readability."""

F = TypeVar("F", bound=Callable[..., Any])


def is_array(leaf: Any) -> bool:
    """The leaves that are traced: JAX and NumPy arrays (typed PRNG keys included)."""
    return isinstance(leaf, jax.Array | np.ndarray | np.generic)


class _Static:
    """A non-array leaf held in the compilation cache key.

    Hashable leaves (functions, strings, numbers, dtypes) hash by value; an unhashable one is
    keyed by identity, so a new object compiles anew rather than failing.
    """

    __slots__ = ("value", "_key")

    def __init__(self, value: Any) -> None:
        self.value = value
        try:
            hash(value)
            self._key = (True, value)
        except TypeError:
            self._key = (False, id(value))

    def __hash__(self) -> int:
        return hash(self._key) if self._key[0] else hash(self._key[1])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Static):
            return NotImplemented
        if self._key[0] != other._key[0]:
            return False
        if self._key[0]:
            return type(self.value) is type(other.value) and self.value == other.value
        return self.value is other.value


def as_pytree(model: Any) -> Any:
    """A bound method of a pytree (``target.log_prob``) as ``Partial(method, instance)``.

    A bound method is not itself a pytree, and a new method object is made at every
    attribute access; as a ``Partial`` its instance's arrays are traced like any weights, so
    ``mala(key, target.log_prob, x0, ...)`` compiles once for every target of those shapes.
    """
    if isinstance(model, types.MethodType) and not isinstance(model.__self__, type):
        instance = model.__self__
        if any(is_array(leaf) for leaf in jax.tree_util.tree_leaves(instance)):
            return jax.tree_util.Partial(model.__func__, instance)
    return model


def partition(model: Any) -> tuple[list[Any], tuple[Any, tuple[Any, ...]]]:
    """Splits ``model`` into ``(array_leaves, static)``; :func:`combine` inverts it.

    ``array_leaves`` is a list with ``None`` where a leaf is static; ``static`` holds the tree
    structure and the non-array leaves (hashable, so it can be a static argument of jit).
    A bound method of a pytree is first turned into a ``Partial`` (:func:`as_pytree`).
    """
    leaves, treedef = jax.tree_util.tree_flatten(as_pytree(model))
    arrays = [leaf if is_array(leaf) else None for leaf in leaves]
    statics = tuple(None if is_array(leaf) else _Static(leaf) for leaf in leaves)
    return arrays, (treedef, statics)


def combine(arrays: Sequence[Any], static: tuple[Any, tuple[Any, ...]]) -> Any:
    """The model that :func:`partition` split (inside a trace, with traced arrays)."""
    treedef, statics = static
    leaves = [a if s is None else s.value for a, s in zip(arrays, statics, strict=True)]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def model_jit(
    fun: F | None = None,
    *,
    model_argnames: Sequence[str] | str = ("model",),
    static_argnames: Sequence[str] | str = (),
    donate_argnames: Sequence[str] | str = (),
) -> F | Callable[[F], F]:
    """``jax.jit`` with the model arguments traced by their array leaves (module docstring).

    Args:
      fun: the function; usable as ``@model_jit`` or ``@functools.partial(model_jit, ...)``.
      model_argnames: the arguments that are models (default ``"model"``); each may be a
        pytree, a plain function, or ``None``.
      static_argnames: other static arguments, as in ``jax.jit``.
      donate_argnames: as in ``jax.jit``.

    Returns:
      The compiled function, with ``fun``'s signature and docstring. Its ``lower`` method
      and ``_cache_size`` come from the inner ``jax.jit`` (tests count compilations with the
      latter, see :func:`genjax.testing.count_compilations`).
    """
    if fun is None:
        return functools.partial(
            model_jit,
            model_argnames=model_argnames,
            static_argnames=static_argnames,
            donate_argnames=donate_argnames,
        )
    model_names = (model_argnames,) if isinstance(model_argnames, str) else tuple(model_argnames)
    static_names = (
        (static_argnames,) if isinstance(static_argnames, str) else tuple(static_argnames)
    )
    donate = (donate_argnames,) if isinstance(donate_argnames, str) else tuple(donate_argnames)
    sig = inspect.signature(fun)
    for name in (*model_names, *static_names):
        if name not in sig.parameters:
            raise ValueError(f"model_jit: {fun.__name__} has no argument {name!r}")

    def inner(bound_arrays: dict[str, Any], bound_static: dict[str, Any], **others: Any) -> Any:
        kwargs = dict(others)
        for name in model_names:
            kwargs[name] = combine(bound_arrays[name], bound_static[name])
        args, kw = _split_bound(sig, kwargs)
        return fun(*args, **kw)

    jitted = jax.jit(
        inner,
        static_argnames=("bound_static", *static_names),
        donate_argnames=donate,
    )

    @functools.wraps(fun)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        arrays, statics = {}, {}
        for name in model_names:
            arrays[name], statics[name] = partition(values.pop(name))
        return jitted(arrays, _FrozenDict(statics), **values)

    wrapper._cache_size = jitted._cache_size  # type: ignore[attr-defined]
    wrapper.jitted = jitted  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


class _FrozenDict(dict):
    """A hashable dict of static parts (for ``static_argnames``)."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))


def _split_bound(sig: inspect.Signature, values: dict[str, Any]) -> tuple[list[Any], dict]:
    """Re-splits named values into positional and keyword arguments for ``sig``."""
    args, kwargs = [], {}
    for name, param in sig.parameters.items():
        if name not in values:
            continue
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            args.extend(values[name])
        elif param.kind is inspect.Parameter.VAR_KEYWORD:
            kwargs.update(values[name])
        elif param.kind is inspect.Parameter.KEYWORD_ONLY:
            kwargs[name] = values[name]
        else:
            args.append(values[name])
    return args, kwargs
