"""The sampler and loss conformance suites, run by every family, and compile counting."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import numpy as np

__all__ = [
    "count_compilations",
    "SamplerCase",
    "assert_sampler_conforms",
    "LossCase",
    "assert_loss_conforms",
]


# ---------------------------------------------------------------------------------------
# Conformance suites: one per kind of thing, run by every family (as optax runs every
# optimiser through one list of checks).
# ---------------------------------------------------------------------------------------

_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_compile_counters: list[list[int]] = []


def _on_compile_event(event: str, duration: float, **_: Any) -> None:
    if event == _COMPILE_EVENT:
        for counter in _compile_counters:
            counter[0] += 1


_listener_installed = False


@contextlib.contextmanager
def count_compilations() -> Iterator[list[int]]:
    """Counts XLA compilations inside the ``with`` block: ``with count_compilations() as n``.

    ``n[0]`` is the number of programs XLA compiled (jitted functions and the small eager
    ops alike) while the block ran; a cached program costs nothing. Uses JAX's own
    monitoring event for backend compilation, so it sees every compile, whatever the entry
    point.
    """
    global _listener_installed
    if not _listener_installed:
        jax.monitoring.register_event_duration_secs_listener(_on_compile_event)
        _listener_installed = True
    counter = [0]
    _compile_counters.append(counter)
    try:
        yield counter
    finally:
        _compile_counters.remove(counter)


def _leaves_close(a: Any, b: Any, rtol: float, atol: float) -> bool:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    if len(la) != len(lb):
        return False
    for x, y in zip(la, lb, strict=True):
        x, y = np.asarray(x), np.asarray(y)
        if x.shape != y.shape:
            return False
        if np.issubdtype(x.dtype, np.inexact):
            if not np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=False):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def _floating_leaves(tree: Any) -> list[np.ndarray]:
    return [
        np.asarray(leaf)
        for leaf in jax.tree_util.tree_leaves(tree)
        if hasattr(leaf, "dtype") and np.issubdtype(np.asarray(leaf).dtype, np.inexact)
    ]


@dataclasses.dataclass(frozen=True)
class SamplerCase:
    """One sampler under the sampler conformance suite (:func:`assert_sampler_conforms`).

    Attributes:
      name: for messages.
      sample: ``sample(key, model) -> output`` -- the public sampler with every other
        argument bound (a ``functools.partial`` or a lambda calling it).
      models: at least two models of the same structure, shapes and dtypes but different
        weights (e.g. two inits with different keys).
      from_noise: ``from_noise(key, model) -> output`` that draws the noise from ``key`` the
        way the sampler documents and calls the ``*_from_noise`` twin; ``None`` for a
        sampler without one.
      bad_arguments: ``(call, name)`` pairs: ``call()`` must raise ``ValueError`` whose
        message names ``name``.
      deterministic: True when the output does not depend on the key (DDIM with eta = 0 from
        a fixed ``x_T``, beam search); then "another key changes the output" is skipped.
      dtype: the floating dtype every floating output leaf must have (None: not checked).
      eager: also check that the sampler run with ``jax.disable_jit()`` equals the compiled
        one (keep the case's step counts small).
      rtol, atol: for jit-vs-eager and from-noise comparisons (reordered float32 arithmetic
        between the compiled and eager programs: ``long_loop`` float32 by default).
    """

    name: str
    sample: Callable[[Any, Any], Any]
    models: Sequence[Any]
    from_noise: Callable[[Any, Any], Any] | None = None
    bad_arguments: Sequence[tuple[Callable[[], Any], str]] = ()
    deterministic: bool = False
    dtype: Any = "float32"
    eager: bool = True
    rtol: float = 1e-3
    atol: float = 1e-4


def assert_sampler_conforms(case: SamplerCase, key: Any = None) -> None:
    """The sampler conformance suite; raises ``AssertionError`` naming the failed check.

    1. Same key, same output (bit for bit).
    2. Another key, another output (unless ``deterministic``).
    3. ``*_from_noise`` on the noise the sampler draws equals the sampler.
    4. New weights of the same shapes do not recompile (no XLA compilation at all while
       the other models run), and they change the output -- so the weights are arguments
       of the compiled program, not constants baked into it.
    5. Every floating output has the expected dtype and is finite.
    6. The compiled sampler equals the sampler run eagerly (``jax.disable_jit``).
    7. Each bad argument raises ``ValueError`` naming the argument.
    """
    if len(case.models) < 2:
        raise ValueError("SamplerCase.models needs at least two models")
    key = jax.random.key(0) if key is None else key
    first, *others = case.models
    out = case.sample(key, first)
    again = case.sample(key, first)
    assert _leaves_close(out, again, 0.0, 0.0), f"{case.name}: same key gave another output"
    if not case.deterministic:
        other = case.sample(jax.random.fold_in(key, 1), first)
        assert not _leaves_close(out, other, 0.0, 0.0), (
            f"{case.name}: another key gave the same output"
        )
    if case.from_noise is not None:
        twin = case.from_noise(key, first)
        assert _leaves_close(out, twin, case.rtol, case.atol), (
            f"{case.name}: *_from_noise on the sampler's own noise differs from the sampler"
        )
    with count_compilations() as compiled:
        outs = [case.sample(key, m) for m in others]
    assert compiled[0] == 0, (
        f"{case.name}: {compiled[0]} compilation(s) for {len(others)} new weight set(s) of the "
        "same shapes (the model must be a traced argument, not static)"
    )
    for o in outs:
        assert not _leaves_close(out, o, 0.0, 0.0), (
            f"{case.name}: new weights gave the same output (weights baked in as constants?)"
        )
    for leaf in _floating_leaves(out):
        if case.dtype is not None:
            assert leaf.dtype == np.dtype(case.dtype), (
                f"{case.name}: output dtype {leaf.dtype}, expected {case.dtype}"
            )
        assert np.all(np.isfinite(leaf)), f"{case.name}: non-finite output"
    if case.eager:
        with jax.disable_jit():
            eager = case.sample(key, first)
        assert _leaves_close(out, eager, case.rtol, case.atol), (
            f"{case.name}: the compiled sampler differs from the eager one"
        )
    _check_bad_arguments(case.name, case.bad_arguments)


@dataclasses.dataclass(frozen=True)
class LossCase:
    """One loss under the loss conformance suite (:func:`assert_loss_conforms`).

    Attributes:
      name: for messages.
      loss: ``loss(model, batch, key) -> (value, metrics)`` with every option bound.
      model: the model (a pytree of arrays: its floating leaves are differentiated).
      batch: the batch pytree.
      check_grads: run ``jax.test_util.check_grads`` (first order, reverse mode) on the
        model's floating leaves; finite differences in float32 with ``grad_eps`` need
        ``grad_tol`` of ~1e-2 (truncation ~eps^2, rounding ~1e-7 / eps relative).
      stochastic: the value depends on the key (then another key must change it).
      bad_arguments: as in :class:`SamplerCase`.
    """

    name: str
    loss: Callable[[Any, Any, Any], tuple[Any, dict]]
    model: Any
    batch: Any
    check_grads: bool = True
    grad_eps: float = 1e-3
    grad_tol: float = 5e-2
    stochastic: bool = True
    bad_arguments: Sequence[tuple[Callable[[], Any], str]] = ()


def assert_loss_conforms(case: LossCase, key: Any = None) -> None:
    """The loss conformance suite; raises ``AssertionError`` naming the failed check.

    1. ``(value, metrics)``: a finite scalar and a dict of finite scalars.
    2. Same key, same value; another key, another value (if ``stochastic``).
    3. ``jax.jit`` of the loss equals the eager loss.
    4. The gradient with respect to the model is finite and not identically zero, and
       agrees with finite differences (``jax.test_util.check_grads``).
    5. Each bad argument raises ``ValueError`` naming the argument.
    """
    from jax import test_util as jtu

    key = jax.random.key(0) if key is None else key
    value, metrics = case.loss(case.model, case.batch, key)
    assert np.shape(value) == (), f"{case.name}: loss of shape {np.shape(value)}, not a scalar"
    assert np.isfinite(float(value)), f"{case.name}: non-finite loss {float(value)}"
    assert isinstance(metrics, dict), f"{case.name}: metrics is {type(metrics)}, not a dict"
    for k, v in metrics.items():
        assert np.shape(v) == () and np.isfinite(float(v)), f"{case.name}: metric {k} = {v}"
    again, _ = case.loss(case.model, case.batch, key)
    assert float(again) == float(value), f"{case.name}: same key gave another loss"
    if case.stochastic:
        other, _ = case.loss(case.model, case.batch, jax.random.fold_in(key, 1))
        assert float(other) != float(value), f"{case.name}: another key gave the same loss"
    jitted, _ = jax.jit(case.loss)(case.model, case.batch, key)
    np.testing.assert_allclose(
        float(jitted),
        float(value),
        rtol=1e-4,
        atol=1e-5,
        err_msg=f"{case.name}: jit differs from eager",
    )
    leaves, treedef = jax.tree_util.tree_flatten(case.model)
    where = [
        i
        for i, leaf in enumerate(leaves)
        if hasattr(leaf, "dtype") and np.issubdtype(np.asarray(leaf).dtype, np.floating)
    ]

    def of_leaves(*floats: Any) -> Any:
        full = list(leaves)
        for i, f in zip(where, floats, strict=True):
            full[i] = f
        return case.loss(jax.tree_util.tree_unflatten(treedef, full), case.batch, key)[0]

    grads = jax.grad(of_leaves, argnums=tuple(range(len(where))))(*[leaves[i] for i in where])
    flat = [np.asarray(g) for g in grads]
    assert all(np.all(np.isfinite(g)) for g in flat), f"{case.name}: non-finite gradient"
    assert any(np.any(g != 0) for g in flat), f"{case.name}: the gradient is identically zero"
    if case.check_grads:
        jtu.check_grads(
            of_leaves,
            tuple(leaves[i] for i in where),
            order=1,
            modes=("rev",),
            atol=case.grad_tol,
            rtol=case.grad_tol,
            eps=case.grad_eps,
        )
    _check_bad_arguments(case.name, case.bad_arguments)


def _check_bad_arguments(
    case_name: str, bad_arguments: Sequence[tuple[Callable[[], Any], str]]
) -> None:
    """Each ``call()`` raises ``ValueError`` whose message names its argument."""
    for call, name in bad_arguments:
        try:
            call()
        except ValueError as err:
            assert name in str(err), f"{case_name}: ValueError {err!s} does not name {name!r}"
        else:
            raise AssertionError(f"{case_name}: bad {name!r} raised no ValueError")
