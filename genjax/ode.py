"""Explicit Runge-Kutta ODE solvers over pytrees, one XLA program per solve.

Solves the initial value problem

    dy/dt = f(t, y),    y(t0) = y0,    for y(t1)

where ``y`` is any pytree of floating arrays (the probability-flow ODE of a
diffusion model, a continuous normalising flow's ``(x, log_det)`` pair, ...).
``t1 < t0`` integrates backwards in time.

Every method is an explicit Runge-Kutta scheme given by its Butcher tableau
(Butcher 2016; Hairer, Norsett & Wanner 1993, sec. II.1), written out below:

    k_i = f(t + c_i h, y + h sum_{j<i} a_ij k_j),    i = 1 .. s
    y'  = y + h sum_i b_i k_i
    err = h sum_i (b_i - b*_i) k_i                (embedded pairs only)

=========== ===== ===================================== =========================
method      order stepping                              loop
=========== ===== ===================================== =========================
``euler``   1     fixed, ``num_steps`` equal steps      ``lax.scan``
``heun``    2     fixed (explicit trapezoid rule)       ``lax.scan``
``rk4``     4     fixed (the classical Runge-Kutta)     ``lax.scan``
``dopri5``  5     adaptive, Dormand-Prince 5(4), FSAL   ``lax.while_loop``
=========== ===== ===================================== =========================

The solvers follow diffrax's shape (Kidger 2021): a solver is a tableau with its
order declared beside it (``RK4.order``) plus an ``init``/``step`` pair,
:func:`rk_init` and :func:`rk_step` (``(model, state, h) -> (state, info)``, the
step shape of every genjax family); the integration loops are separate functions.

The right-hand side is a *model* (DESIGN.md, "One model protocol"): a callable
pytree (an ``nnx.Module``, ``jax.tree_util.Partial(apply, params)``) traced by
:func:`genjax.model.model_jit`, so a vector field with new weights of the same
shapes reuses the compiled solve; a plain function is static (a new function
object compiles anew).

``dopri5`` uses the standard step-size controller (Hairer et al. 1993, sec. II.4,
eq. 4.11-4.13):

    sc_i   = atol + rtol * max(|y_i|, |y'_i|)
    ||e||  = sqrt(mean_i (err_i / sc_i)^2)       (RMS over every element of the pytree)
    accept the step  iff  ||e|| <= 1
    h_new  = h * clip(0.9 * ||e||^(-1/5), 0.2, 10)     (never growing after a rejection)

with Hairer's initial-step heuristic (ibid., p. 169), and clips the last step
so that the solve ends exactly at ``t1``.

Differentiation: the fixed-step methods are ``lax.scan`` loops and support
``jax.grad`` (discretise-then-optimise). ``dopri5`` runs in ``lax.while_loop``,
which JAX differentiates in forward mode only (``jax.jvp`` / ``jax.jacfwd``).

References:
  Dormand & Prince, "A family of embedded Runge-Kutta formulae", J. Comp. Appl.
  Math. 6(1), 1980.
  Hairer, Norsett & Wanner, "Solving Ordinary Differential Equations I",
  2nd ed., Springer 1993.
  Kidger, "On Neural Differential Equations", PhD thesis, 2021 (diffrax).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from genjax import checks
from genjax.model import model_jit
from genjax.ode_tableaus import (
    ADAPTIVE_METHODS,
    DOPRI5,
    EULER,
    FIXED_STEP_METHODS,
    HEUN,
    ORDERS,
    RK4,
    TABLEAUS,
    ButcherTableau,
)

__all__ = [
    "ButcherTableau", "EULER", "HEUN", "RK4", "DOPRI5", "TABLEAUS", "ORDERS",
    "FIXED_STEP_METHODS", "ADAPTIVE_METHODS", "RKState", "RKInfo", "rk_init", "rk_step", "solve",
]

PyTree = Any
VectorField = Callable[[jax.Array, PyTree], PyTree]
"""A model ``f(t, y) -> dy/dt``: ``t`` a scalar array, ``y`` and the result alike pytrees."""


# Step-size controller constants (Hairer et al. 1993, sec. II.4).
DOPRI5_ERROR_ORDER = 4  # q: order of the embedded solution that the error estimate measures
SAFETY = 0.9
MIN_FACTOR = 0.2
MAX_FACTOR = 10.0


# --------------------------------------------------------------------------- pytree algebra


def _lincomb(y: PyTree, h: jax.Array, coeffs: tuple[float, ...], ks: list[PyTree]) -> PyTree:
    """y + h * sum_j coeffs[j] * ks[j], skipping zero coefficients."""
    terms = [(c, k) for c, k in zip(coeffs, ks, strict=False) if c != 0.0]
    if not terms:
        return y

    def leaf(y_leaf, *k_leaves):
        acc = sum(c * k for (c, _), k in zip(terms, k_leaves, strict=True))
        return y_leaf + (h * acc).astype(y_leaf.dtype)

    return jax.tree_util.tree_map(leaf, y, *(k for _, k in terms))


def _rms_norm(err: PyTree, y0: PyTree, y1: PyTree, rtol: float, atol: float) -> jax.Array:
    """sqrt(mean((err / (atol + rtol max(|y0|, |y1|)))^2)) over all elements."""
    sq = jax.tree_util.tree_map(
        lambda e, a, b: jnp.sum((e / (atol + rtol * jnp.maximum(jnp.abs(a), jnp.abs(b)))) ** 2),
        err,
        y0,
        y1,
    )
    size = sum(leaf.size for leaf in jax.tree_util.tree_leaves(y0))
    return jnp.sqrt(sum(jax.tree_util.tree_leaves(sq)) / size)


# --------------------------------------------------------------------------- one RK step


class RKState(NamedTuple):
    """The state of a Runge-Kutta solve between steps.

    Attributes:
      t: () the current time.
      y: the solution at ``t``, a pytree of floating arrays.
      k: ``f(t, y)`` for an FSAL method (the next step's first stage, computed by the
        previous step), else ``None``.
    """

    t: jax.Array
    y: PyTree
    k: PyTree | None


class RKInfo(NamedTuple):
    """Diagnostics of one Runge-Kutta step.

    Attributes:
      error: ``h sum_i (b_i - b*_i) k_i``, the embedded estimate of the step's local error
        (a pytree like ``y``), or ``None`` for a method without an embedded pair.
      num_evals: () int32, evaluations of ``f`` the step made (``s``, or ``s - 1`` for FSAL).
    """

    error: PyTree | None
    num_evals: jax.Array


def rk_init(model: VectorField, t0: jax.Array, y0: PyTree, *, tableau: ButcherTableau) -> RKState:
    """The state before the first step: ``(t0, y0, f(t0, y0))`` (FSAL) or ``(t0, y0, None)``.

    ``t0``: () initial time; ``y0``: initial state; the rest as :func:`rk_step`.
    """
    return RKState(t0, y0, model(t0, y0) if tableau.fsal else None)


def rk_step(
    model: VectorField, state: RKState, h: jax.Array, *, tableau: ButcherTableau
) -> tuple[RKState, RKInfo]:
    """One explicit Runge-Kutta step of size ``h`` (negative: backwards) from ``state``.

        k_i = f(t + c_i h, y + h sum_{j<i} a_ij k_j)
        y'  = y + h sum_i b_i k_i,    err = h sum_i (b_i - b*_i) k_i

    A pure function, meant to be called under ``jax.jit`` (:func:`solve` runs it in
    ``lax.scan`` / ``lax.while_loop``).

    Args:
      model: the vector field ``f(t, y)`` (a callable pytree or a function).
      state: from :func:`rk_init` or the previous step.
      h: () step size.
      tableau: the method.

    Returns:
      ``(RKState(t + h, y', k'), RKInfo(err, num_evals))``; ``k'`` is ``f(t + h, y')`` for
      an FSAL method (the last stage), else ``None``.
    """
    t, y, k = state
    k0 = k if tableau.fsal else model(t, y)
    ks = [k0]
    y_stage = y
    for c_i, a_i in zip(tableau.c[1:], tableau.a, strict=True):
        y_stage = _lincomb(y, h, a_i, ks)
        ks.append(model(t + c_i * h, y_stage))
    # With FSAL the last stage was evaluated at y' itself (a[-1] == b), so reuse it.
    y1 = y_stage if tableau.fsal else _lincomb(y, h, tableau.b, ks)
    err = None
    if tableau.b_error is not None:
        zeros = jax.tree_util.tree_map(jnp.zeros_like, y)
        err = _lincomb(zeros, h, tableau.b_error, ks)
    new_state = RKState(t + h, y1, ks[-1] if tableau.fsal else None)
    return new_state, RKInfo(err, jnp.asarray(tableau.num_evals, jnp.int32))


# --------------------------------------------------------------------------- loops


def _fixed_solve(tableau, f, y0, t0, t1, num_steps, return_trajectory):
    h = (t1 - t0) / num_steps

    def body(state, i):
        t = t0 + i.astype(t0.dtype) * h  # t_i = t0 + i h, no accumulated round-off
        state, _ = rk_step(f, state._replace(t=t), h, tableau=tableau)
        return state, (state.y if return_trajectory else None)

    state, ys = lax.scan(body, rk_init(f, t0, y0, tableau=tableau), jnp.arange(num_steps))
    if not return_trajectory:
        return state.y
    ts = t0 + jnp.arange(num_steps + 1, dtype=t0.dtype) * h
    ts = ts.at[-1].set(t1)
    ys = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b], axis=0), y0, ys)
    return ts, ys


def _initial_step(f, t0, y0, f0, t1, order, rtol, atol):
    """Hairer et al. (1993), sec. II.4, 'automatic step size selection' (p. 169).

    ``order`` is the exponent's ``p`` in ``h1^(p+1) max(d1, d2) = 0.01``: the order
    of the local error estimate (4 for dopri5, as ``iord = 5`` in Hairer's DOPRI5).
    """
    d0 = _rms_norm(y0, y0, y0, rtol, atol)  # ||y0||
    d1 = _rms_norm(f0, y0, y0, rtol, atol)  # ||f(t0, y0)||
    h0 = jnp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / jnp.maximum(d1, 1e-30))
    direction = jnp.sign(t1 - t0)
    y_euler = _lincomb(y0, direction * h0, (1.0,), [f0])
    f1 = f(t0 + direction * h0, y_euler)
    diff = jax.tree_util.tree_map(jnp.subtract, f1, f0)
    d2 = _rms_norm(diff, y0, y0, rtol, atol) / h0  # ~ ||y''||
    big = jnp.maximum(d1, d2)
    h1 = jnp.where(
        big <= 1e-15,
        jnp.maximum(1e-6, h0 * 1e-3),
        (0.01 / jnp.maximum(big, 1e-30)) ** (1.0 / (order + 1)),
    )
    h = jnp.minimum(jnp.minimum(100.0 * h0, h1), jnp.abs(t1 - t0))
    return (direction * h).astype(t0.dtype)


class _Adaptive(NamedTuple):
    """The carry of the adaptive loop."""

    state: RKState  # (t, y, f(t, y)): where the solve stands
    h: jax.Array  # () the proposed next step (signed)
    num_accepted: jax.Array  # () int32
    num_rejected: jax.Array  # () int32


def _adaptive_segment(tableau, f, carry: _Adaptive, t_end, rtol, atol, max_steps) -> _Adaptive:
    """Step adaptively from carry's time to exactly ``t_end``."""
    direction = jnp.sign(t_end - carry.state.t)
    error_exponent = -1.0 / (DOPRI5_ERROR_ORDER + 1)  # -1/(q+1) = -1/5

    def cond(c: _Adaptive) -> jax.Array:
        # Stop at t_end, when the budget is spent, or when the step size has collapsed
        # or turned NaN (a non-finite f): the caller then sees t != t_end and returns NaN.
        alive = jnp.isfinite(c.h) & (c.h != 0)
        steps = c.num_accepted + c.num_rejected
        return (direction * (t_end - c.state.t) > 0) & (steps < max_steps) & alive

    def body(c: _Adaptive) -> _Adaptive:
        state, h = c.state, c.h
        remaining = t_end - state.t
        last = jnp.abs(h) >= jnp.abs(remaining)
        h_used = jnp.where(last, remaining, h)  # clip the last step onto t_end
        proposal, info = rk_step(f, state, h_used, tableau=tableau)
        norm = _rms_norm(info.error, state.y, proposal.y, rtol, atol)
        accept = norm <= 1.0
        # h_new = h clip(0.9 ||e||^(-1/5), 0.2, 10); no growth right after a rejection.
        factor = SAFETY * jnp.where(norm > 0, norm, 1e-10) ** error_exponent
        factor = jnp.clip(factor, MIN_FACTOR, jnp.where(accept, MAX_FACTOR, 1.0))
        h_next = h_used * factor
        # A clipped final step says little about the natural step size: keep the larger.
        h_next = jnp.where(accept & last & (jnp.abs(h) > jnp.abs(h_next)), h, h_next)
        # Land exactly on t_end (t + h_used may round past or short of it).
        proposal = proposal._replace(t=jnp.where(last, t_end, proposal.t))
        new_state = jax.tree_util.tree_map(lambda a, b: jnp.where(accept, a, b), proposal, state)
        return _Adaptive(
            new_state,
            h_next.astype(h.dtype),
            c.num_accepted + accept.astype(jnp.int32),
            c.num_rejected + (~accept).astype(jnp.int32),
        )

    return lax.while_loop(cond, body, carry)


def _nan_unless(ok: jax.Array, tree: PyTree) -> PyTree:
    return jax.tree_util.tree_map(lambda a: jnp.where(ok, a, jnp.nan), tree)


def _adaptive_solve(tableau, f, y0, t0, t1, num_steps, rtol, atol, max_steps, return_trajectory):
    state = rk_init(f, t0, y0, tableau=tableau)
    h0 = _initial_step(f, t0, y0, state.k, t1, DOPRI5_ERROR_ORDER, rtol, atol)
    zero = jnp.zeros((), jnp.int32)
    carry = _Adaptive(state, h0, zero, zero)
    if not return_trajectory:
        carry = _adaptive_segment(tableau, f, carry, t1, rtol, atol, max_steps)
        stats = {"num_accepted": carry.num_accepted, "num_rejected": carry.num_rejected}
        return _nan_unless(carry.state.t == t1, carry.state.y), stats
    # Step to each of the num_steps + 1 evenly spaced output times in turn.
    ts = t0 + (t1 - t0) * jnp.arange(num_steps + 1, dtype=t0.dtype) / num_steps
    ts = ts.at[-1].set(t1)

    def body(c: _Adaptive, t_out: jax.Array) -> tuple[_Adaptive, PyTree]:
        c = _adaptive_segment(tableau, f, c, t_out, rtol, atol, max_steps)
        return c, _nan_unless(c.state.t == t_out, c.state.y)

    carry, ys = lax.scan(body, carry, ts[1:])
    ys = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b], axis=0), y0, ys)
    stats = {"num_accepted": carry.num_accepted, "num_rejected": carry.num_rejected}
    return (ts, ys), stats


# --------------------------------------------------------------------------- public API


def _check_field(f: VectorField, t0: jax.Array, y0: PyTree) -> None:
    """``f(t0, y0)`` must return a pytree shaped like ``y0`` (checked abstractly, no FLOPs).

    This catches the argument order ``f(y, t)`` whenever the swap changes a shape: called
    as ``f(t, y)``, a field written ``lambda y, t: -y`` returns ``()``-shaped ``-t`` for a
    ``(3,)`` state, which would otherwise broadcast into a wrong answer. It cannot catch a
    swap that keeps every shape: a scalar state ``y0: ()``, or a field whose result has
    ``y``'s shape either way (``lambda y, t: y * t`` computes the same thing in both orders).
    """
    try:
        out = jax.eval_shape(f, t0, y0)
    except (TypeError, ValueError, IndexError, AttributeError) as err:
        raise ValueError(
            f"f failed when called as f(t, y) with t: () and y shaped like y0 (the order is "
            f"f(t, y), not f(y, t)): {type(err).__name__}: {err}"
        ) from err
    want = jax.tree_util.tree_structure(y0)
    got = jax.tree_util.tree_structure(out)
    shapes = lambda tree: [tuple(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree)]
    if got != want or shapes(out) != shapes(y0):
        hint = " (did you write f(y, t)? the order is f(t, y))" if got == want else ""
        raise ValueError(
            f"f must return dy/dt shaped like y0 {shapes(y0)} when called as f(t, y), got "
            f"{shapes(out) if got == want else got}{hint}"
        )


@functools.partial(
    model_jit,
    model_argnames=("f",),
    static_argnames=("num_steps", "method", "rtol", "atol", "max_steps", "return_trajectory",
                     "return_stats", "save_trajectory"),
)
def solve(
    f: VectorField,
    y0: PyTree,
    t0: float | jax.Array,
    t1: float | jax.Array,
    *,
    num_steps: int = 100,
    method: str = "rk4",
    rtol: float = 1e-5,
    atol: float = 1e-6,
    max_steps: int = 10_000,
    return_trajectory: bool = False,
    return_stats: bool = False,
    save_trajectory: bool | None = None,
) -> Any:
    """Integrate ``dy/dt = f(t, y)`` from ``t0`` to ``t1``, in one compiled program.

    Fixed-step methods take ``num_steps`` steps of ``h = (t1 - t0) / num_steps``;
    ``dopri5`` chooses its own steps to meet ``rtol``/``atol`` (``num_steps`` only
    sets the output grid when ``return_trajectory=True``).

    The vector field is a model (module docstring): a callable pytree (an
    ``nnx.Module``, a ``jax.tree_util.Partial``) is traced by its array leaves, so new
    weights of the same shapes reuse the compiled solve; a plain function is static
    and each new function object compiles anew (a closure made inside an outer
    ``jax.jit`` is traced into that program, as before).

    Args:
      f: the model ``f(t, y) -> dy/dt``: ``t`` a () array, ``y`` and the result
        pytrees shaped like ``y0``. Checked at trace time by one abstract call
        ``f(t0, y0)``: a result of another structure or shape raises ``ValueError`` --
        which detects a field written ``f(y, t)`` whenever the swap changes a shape
        (e.g. ``lambda y, t: -y`` on a ``(D,)`` state), though not a swap that keeps
        every shape (a scalar state, or ``y * t``).
      y0: initial state, a pytree of floating arrays (e.g. ``x: (batch, dim)`` or a
        CNF's ``(x (batch, dim), log_det (batch,))``).
      t0: () initial time.
      t1: () final time; ``t1 < t0`` integrates backwards.
      num_steps: number of fixed steps, or of output intervals of a ``dopri5``
        trajectory; >= 1.
      method: one of ``"euler"``, ``"heun"``, ``"rk4"``, ``"dopri5"``.
      rtol: relative tolerance of ``dopri5``, > 0.
      atol: absolute tolerance of ``dopri5``, > 0.
      max_steps: budget of ``dopri5`` steps (accepted + rejected), >= 1. A solve
        that runs out before reaching ``t1`` returns NaN (loud, not silently
        short).
      return_trajectory: also return the solution at ``num_steps + 1`` evenly
        spaced times ``t0 .. t1`` (for ``dopri5`` the solver steps exactly
        onto each of them).
      return_stats: also return a dict of step counts (``num_accepted``,
        ``num_rejected`` int32 scalars; for fixed steps ``num_steps`` and 0).
      save_trajectory: deprecated name of ``return_trajectory`` (one trajectory flag
        in every family); it warns and will be removed.

    Returns:
      ``y1`` (pytree like ``y0``), or ``(ts, ys)`` with ``ts: (num_steps + 1,)``
      and every leaf of ``ys`` stacked as ``(num_steps + 1, ...)`` when
      ``return_trajectory``; followed by the stats dict when ``return_stats``.

    Example:
      >>> y1 = solve(lambda t, y: -y, jnp.ones(3), 0.0, 1.0, num_steps=20)
      >>> [round(v, 4) for v in y1.tolist()]  # exp(-1)
      [0.3679, 0.3679, 0.3679]
    """
    if save_trajectory is not None:
        warnings.warn("ode.solve: save_trajectory is deprecated, use return_trajectory",
                      DeprecationWarning, stacklevel=2)
        return_trajectory = return_trajectory or bool(save_trajectory)
    checks.one_of("method", method, tuple(TABLEAUS))
    num_steps = checks.positive_int("num_steps", num_steps)
    rtol = float(checks.positive("rtol", rtol))
    atol = float(checks.positive("atol", atol))
    max_steps = checks.positive_int("max_steps", max_steps)
    leaves = jax.tree_util.tree_leaves(y0)
    if not leaves:
        raise ValueError("y0 must contain at least one array")
    y0 = jax.tree_util.tree_map(jnp.asarray, y0)
    leaves = jax.tree_util.tree_leaves(y0)
    for leaf in leaves:
        checks.floating("y0", leaf)
    # Times in the widest floating dtype of the state (float64 under x64 with float64 y0).
    t_dtype = jnp.result_type(*(leaf.dtype for leaf in leaves))
    t0 = jnp.asarray(t0, dtype=t_dtype)
    t1 = jnp.asarray(t1, dtype=t_dtype)
    checks.ndim("t0", t0, 0, "(a scalar)")
    checks.ndim("t1", t1, 0, "(a scalar)")
    _check_field(f, t0, y0)
    tableau = TABLEAUS[method]
    if method in FIXED_STEP_METHODS:
        out = _fixed_solve(tableau, f, y0, t0, t1, num_steps, return_trajectory)
        stats = {
            "num_accepted": jnp.asarray(num_steps, jnp.int32),
            "num_rejected": jnp.zeros((), jnp.int32),
        }
    else:
        out, stats = _adaptive_solve(
            tableau, f, y0, t0, t1, num_steps, rtol, atol, max_steps, return_trajectory
        )
    return (out, stats) if return_stats else out
