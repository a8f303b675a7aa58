"""Continuous normalizing flows (Chen et al. 2018; FFJORD, Grathwohl et al. 2019).

A continuous normalizing flow transports base noise ``z ~ N(0, I)`` to data by the ODE

    dx/dt = v(x(t), t),    x(t0) = z,    x = x(t1).

**The model** is the velocity network ``v``, a callable pytree in the network convention
of every genjax family (``eps(x, t)`` in diffusion): ``model(x, t) -> (batch, D)`` with
``x: (batch, D)`` and ``t: (batch,)``, acting on each example independently. It is traced
(DESIGN.md, "One model protocol"): an ``nnx.Module`` or ``jax.tree_util.Partial(apply,
params)`` with new weights of the same shapes reuses the compiled solve; a plain function
is accepted but static (each new function object compiles anew). The ODE right-hand side
handed to :func:`genjax.ode.solve` is, per DESIGN.md's convention, ``f(t, y)``:
:func:`ode_field` makes it, ``f(t, y) = model(y, t 1_batch)``.

**Direction convention** (the one every genjax flow uses): base noise lives at
``t = t0`` (default 0) and data at ``t = t1`` (default 1); ``forward`` integrates
``t0 -> t1`` (noise -> data, the sampling direction), ``inverse`` integrates
``t1 -> t0`` (data -> noise). Flow matching's fields (``flow_matching.py``) use the same
convention, so a trained flow-matching field is a CNF and gets its likelihood here.

The log-density along a trajectory obeys the instantaneous change of variables
(Chen et al. 2018, Theorem 1; Grathwohl et al. 2019, eq. 2)

    d log p_t(x(t)) / dt = -tr(dv/dx (x(t), t)),

so we integrate the augmented state ``[x, l]`` with

    d[x, l]/dt = [v(x, t), -tr(dv/dx)]                            (FFJORD eq. 4)

through :func:`genjax.ode.solve` (one XLA program). Started at ``l = 0``:

    forward  (t0 -> t1):  l(t1) = -int_t0^t1 tr dt = -log|det dx/dz|
    inverse  (t1 -> t0):  l(t0) = +int_t0^t1 tr dt = -log|det dz/dx|
    log p(x) = log N(z; 0, I) + log|det dz/dx| = log N(z) - int_t0^t1 tr dt    (eq. 3)

For a linear field ``v = A x`` the flow is ``x = exp((t1 - t0) A) z`` and
``log|det dx/dz| = (t1 - t0) tr(A)`` exactly (Jacobi's formula) — the first test.

The trace (:mod:`genjax.flows.divergence`): ``trace="exact"`` sums ``D`` JVPs;
``trace="hutchinson"`` estimates ``tr(J) = E[u^T J u]`` with Rademacher or Gaussian probes
drawn ONCE per solve and held fixed along the whole trajectory (FFJORD's choice), which keeps
the estimate of the integral — and hence of ``log p(x)`` — unbiased. The probes are
injectable (``probes=``) so tests share them with the NumPy oracle.

Options. :func:`forward`, :func:`inverse`, :func:`log_prob`, :func:`loss` and
:func:`sample_and_log_prob` take the keyword options of :class:`Options` (the interval,
the trace estimator and the ODE solver, defaults in :data:`DEFAULTS`); :func:`sample` and
:func:`sample_from_noise` those of :class:`SolverOptions`. ``t0`` and ``t1`` are traced:
one compiled solve serves every interval.

References:
  Chen, Rubanova, Bettencourt, Duvenaud, "Neural Ordinary Differential Equations",
  NeurIPS 2018.
  Grathwohl, Chen, Bettencourt, Sutskever, Duvenaud, "FFJORD: Free-form Continuous
  Dynamics for Scalable Reversible Generative Models", ICLR 2019.
  Hutchinson, "A stochastic estimator of the trace of the influence matrix for
  Laplacian smoothing splines", 1989.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, TypedDict, Unpack

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import checks, gaussian, ode
from genjax.flows.divergence import (
    PROBES,
    TRACES,
    divergence,
    draw_probes,
    trace_exact,
    trace_hutchinson,
)
from genjax.model import Model, model_jit

__all__ = [
    "TRACES", "PROBES", "METHODS", "ORDERS", "SolverOptions", "TraceOptions", "Options", "DEFAULTS",
    "trace_exact", "trace_hutchinson", "draw_probes", "ode_field", "augmented_field", "forward",
    "inverse", "log_prob", "loss", "sample", "sample_from_noise", "sample_and_log_prob",
    "mlp_field",
]  # fmt: skip

METHODS = tuple(ode.TABLEAUS)
"""The ODE solvers a CNF may use: the names of :data:`genjax.ode.TABLEAUS`."""
ORDERS = ode.ORDERS  # the convergence order of every solve here, by method: error O(h^order)
FIELD_TIME_SCALE = 4.0  # t in [0, 1] -> sinusoidal features with periods >= 2 pi / 4 ~ 1.6


class SolverOptions(TypedDict, total=False):
    """The interval and the ODE solver (defaults in :data:`DEFAULTS`).

    Attributes:
      t0: base time, ``0 <= t0 < t1`` (default 0).
      t1: data time, ``<= 1`` (default 1).
      num_steps: fixed steps (``euler``/``heun``/``rk4``) or output intervals (``dopri5``),
        >= 1 (default 100).
      method: a :func:`genjax.ode.solve` method (default ``"rk4"``); the solve's convergence
        order is :data:`ORDERS` ``[method]`` (the solver's).
      rtol, atol: tolerances of ``dopri5`` (defaults 1e-5, 1e-6).
    """

    t0: float
    t1: float
    num_steps: int
    method: str
    rtol: float
    atol: float


class TraceOptions(TypedDict, total=False):
    """The divergence estimator (defaults in :data:`DEFAULTS`).

    Attributes:
      trace: ``"exact"`` (default) or ``"hutchinson"``.
      key: key of the Hutchinson probes (needed for ``"hutchinson"`` unless ``probes``).
      probes: ``(num_probes, batch, D)`` Hutchinson probes to use instead of drawing them.
      probe: ``"rademacher"`` (default) or ``"gaussian"``.
      num_probes: probes averaged per trace evaluation, >= 1 (default 1).
    """

    trace: str
    key: jax.Array | None
    probes: jax.Array | None
    probe: str
    num_probes: int


class Options(SolverOptions, TraceOptions, total=False):
    """:class:`SolverOptions` and :class:`TraceOptions` together."""


DEFAULTS: Options = {
    "t0": 0.0, "t1": 1.0, "num_steps": 100, "method": "rk4", "rtol": 1e-5, "atol": 1e-6,
    "trace": "exact", "key": None, "probes": None, "probe": "rademacher", "num_probes": 1,
}  # fmt: skip
"""The default options of every CNF solve (interval, steps, solver, tolerances, trace)."""
_SOLVER_NAMES = tuple(SolverOptions.__annotations__)


# --------------------------------------------------------------------------- ODE fields


def _field_rhs(model: Model, t: jax.Array, x: jax.Array) -> jax.Array:
    v = model(x, jnp.broadcast_to(t, x.shape[:1]))  # dx/dt = v(x, t): (batch, D)
    # A (batch, 1) velocity would broadcast over D silently: reject it at trace time.
    return checks.model_output(v, x.shape)


def ode_field(model: Model) -> jax.tree_util.Partial:
    """The ODE right-hand side ``f(t, x) = model(x, t 1_batch)`` of a velocity model.

    A pytree (``jax.tree_util.Partial`` over the model), so :func:`genjax.ode.solve` traces
    the model's weights.

    Args:
      model: ``model(x (batch, D), t (batch,)) -> (batch, D)``.

    Returns:
      ``f(t (), x (batch, D)) -> (batch, D)``.
    """
    return jax.tree_util.Partial(_field_rhs, model)


def _augmented_rhs(model: Model, trace: str, probes: jax.Array | None, t: jax.Array,
                   state: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
    x, _ = state
    tb = jnp.broadcast_to(t, x.shape[:1])  # (batch,)
    dx, jvp_fn = jax.linearize(lambda y: model(y, tb), x)  # v(x, t) once; u -> J u
    checks.model_output(dx, x.shape)  # (batch, D), not (batch, 1) broadcast over D
    tr = divergence(jvp_fn, x, trace, probes)  # (batch,)
    return dx, (-tr).astype(x.dtype)  # d[x, l]/dt = [v, -tr(dv/dx)]


def augmented_field(
    model: Model, *, trace: str = "exact", probes: jax.Array | None = None
) -> jax.tree_util.Partial:
    """The right-hand side ``f(t, (x, l)) = (v(x, t), -tr(dv/dx))`` of FFJORD eq. 4.

    Args:
      model: ``model(x (batch, D), t (batch,)) -> (batch, D)``.
      trace: ``"exact"`` or ``"hutchinson"``.
      probes: ``(num_probes, batch, D)``, for ``"hutchinson"``.

    Returns:
      a pytree ``f(t (), (x (batch, D), l (batch,))) -> (dx (batch, D), dl (batch,))``.
    """
    checks.one_of("trace", trace, TRACES)
    return jax.tree_util.Partial(_augmented_rhs, model, trace, probes)


# --------------------------------------------------------------------------- checks


def _options(options: dict, names: Sequence[str] = tuple(DEFAULTS)) -> dict:
    """``options`` over :data:`DEFAULTS` (only ``names`` allowed), checked."""
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {unknown}; allowed: {tuple(names)}")
    o = {**{n: DEFAULTS[n] for n in names}, **options}
    checks.positive_int("num_steps", o["num_steps"])
    checks.one_of("method", o["method"], METHODS)
    checks.in_range("t0", o["t0"], 0.0, 1.0)
    checks.in_range("t1", o["t1"], 0.0, 1.0)
    if checks.is_concrete((o["t0"], o["t1"])) and not float(o["t0"]) < float(o["t1"]):
        raise ValueError(f"t0 must be < t1 (noise at t0, data at t1), got t0={o['t0']!r}, "
                         f"t1={o['t1']!r}")
    if "trace" in names:
        checks.one_of("trace", o["trace"], TRACES)
        checks.one_of("probe", o["probe"], PROBES)
        checks.positive_int("num_probes", o["num_probes"])
        if o["trace"] == "hutchinson" and o["probes"] is None and o["key"] is None:
            raise ValueError("key must be given when trace='hutchinson' (or pass probes)")
    return o


def _check_points(name: str, y: jax.Array) -> jax.Array:
    y = jnp.asarray(y)
    checks.ndim(name, y, 2, "(batch, dim)")
    checks.floating(name, y)
    return y


# --------------------------------------------------------------------------- compiled cores


@functools.partial(model_jit, static_argnames=("shape", "dtype", "direction", "trace", "probe",
                                               "num_probes", "num_steps", "method", "rtol",
                                               "atol"))
def _transport(model: Model, y: jax.Array | None, t0: jax.Array, t1: jax.Array, key: Any,
               probes: jax.Array | None, *, shape: tuple[int, ...], dtype: Any, direction: str,
               trace: str, probe: str, num_probes: int, num_steps: int, method: str,
               rtol: float, atol: float) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Solves the augmented ODE from ``y`` (or from ``z ~ N(0, I)``) in ``direction``.

    ``y = None`` (forward only): ``base_key, key = split(key)``, ``y = normal(base_key,
    shape, dtype)``. Returns ``(y_end, log|det d y_end / d y|, log N(z))`` with ``z`` the
    noise end (``y`` for ``"forward"``, ``y_end`` for ``"inverse"``).
    """
    if y is None:
        base_key, key = jax.random.split(key)
        y = jax.random.normal(base_key, shape, dtype)  # z ~ N(0, I): (batch, D)
    if trace == "hutchinson" and probes is None:
        probes = draw_probes(key, y.shape, probe=probe, num_probes=num_probes, dtype=y.dtype)
    rhs = augmented_field(model, trace=trace, probes=probes)
    start, end = (t0, t1) if direction == "forward" else (t1, t0)
    l0 = jnp.zeros(y.shape[:1], y.dtype)  # l = 0 at the start
    y_end, l_end = ode.solve(rhs, (y, l0), start, end, num_steps=num_steps, method=method,
                             rtol=rtol, atol=atol)
    z = y if direction == "forward" else y_end
    # forward: l(t1) = -log|det dx/dz|; inverse: l(t0) = -log|det dz/dx|.
    return y_end, -l_end, gaussian.standard_normal_log_prob(z)


def _run(model: Model, y: jax.Array | None, direction: str, options: dict, name: str,
         shape: tuple[int, ...] | None = None,
         dtype: Any = None) -> tuple[jax.Array, jax.Array, jax.Array]:
    if y is not None:
        y = _check_points(name, y)
        shape, dtype = y.shape, y.dtype
    o = _options(options)
    probes = o["probes"]
    if probes is not None:
        probes = jnp.asarray(probes, dtype)
        checks.shape("probes", probes, (None, *shape))
    # t0, t1 are traced: one compiled solve serves every interval.
    return _transport(model, y, jnp.asarray(o["t0"], dtype), jnp.asarray(o["t1"], dtype),
                      o["key"], probes, shape=shape, dtype=dtype, direction=direction,
                      trace=o["trace"], probe=o["probe"], num_probes=int(o["num_probes"]),
                      num_steps=int(o["num_steps"]), method=o["method"],
                      rtol=float(o["rtol"]), atol=float(o["atol"]))


@functools.partial(model_jit, static_argnames=("shape", "dtype", "num_steps", "method", "rtol",
                                               "atol", "return_trajectory"))
def _integrate(key: Any, model: Model, z: jax.Array | None, t0: jax.Array, t1: jax.Array, *,
               shape: tuple[int, ...], dtype: Any, num_steps: int, method: str, rtol: float,
               atol: float, return_trajectory: bool) -> Any:
    if z is None:
        z = jax.random.normal(key, shape, dtype)  # z ~ N(0, I) at t0: (batch, D)
    return ode.solve(ode_field(model), z, t0, t1, num_steps=num_steps, method=method,
                     rtol=rtol, atol=atol, return_trajectory=return_trajectory)


# --------------------------------------------------------------------------- public API


def forward(model: Model, z: jax.Array,
            **options: Unpack[Options]) -> tuple[jax.Array, jax.Array]:
    """Noise -> data: integrate ``dx/dt = v`` from ``t0`` to ``t1`` with its log-determinant.

        x = z + int_t0^t1 v(x(t), t) dt,    log|det dx/dz| = int_t0^t1 tr(dv/dx) dt

    Args:
      model: ``model(x (batch, D), t (batch,)) -> (batch, D)``, a callable pytree (a plain
        function is accepted but compiles per function object).
      z: (batch, D) base points at ``t0``.
      **options: :class:`Options` (interval, trace estimator, solver).

    Returns:
      ``(x (batch, D), log_det (batch,))`` with ``log_det = log|det dx/dz|``.
    """
    x, log_det, _ = _run(model, z, "forward", options, "z")
    return x, log_det


def inverse(model: Model, x: jax.Array,
            **options: Unpack[Options]) -> tuple[jax.Array, jax.Array]:
    """Data -> noise: integrate backwards from ``t1`` to ``t0``.

        z = x - int_t0^t1 v(x(t), t) dt,    log|det dz/dx| = -int_t0^t1 tr(dv/dx) dt

    Args:
      model: as :func:`forward`.
      x: (batch, D) data points at ``t1``.
      **options: :class:`Options`.

    Returns:
      ``(z (batch, D), log_det (batch,))`` with ``log_det = log|det dz/dx|``.
    """
    z, log_det, _ = _run(model, x, "inverse", options, "x")
    return z, log_det


def log_prob(model: Model, x: jax.Array, **options: Unpack[Options]) -> jax.Array:
    """``log p(x)`` of the CNF with a standard normal base at ``t0`` (FFJORD eq. 3).

        log p(x) = log N(z; 0, I) - int_t0^t1 tr(dv/dx (x(t), t)) dt,  z = x(t0)

    With ``trace="hutchinson"`` the result is an unbiased estimate of ``log p(x)``.

    Args:
      model: as :func:`forward`.
      x: (batch, D) data points.
      **options: :class:`Options`.

    Returns:
      (batch,) log-densities in nats.

    Example:
      >>> field = jax.tree_util.Partial(lambda x, t: -x)  # the flow z -> z / e
      >>> log_p = log_prob(field, jnp.zeros((1, 2)), num_steps=50)
      >>> round(float(log_p[0]), 3)  # log N(0; 0, I_2) + 2 (the volume shrinks by e^2)
      0.162
    """
    _, log_det, log_base = _run(model, x, "inverse", options, "x")
    return log_base + log_det  # log N(z) + log|det dz/dx|


def loss(model: Model, batch: jax.Array, key: jax.Array,
         **options: Unpack[Options]) -> tuple[jax.Array, dict]:
    """Maximum likelihood (FFJORD): ``mean_i -log p(x_i)`` over ``batch (B, D)``.

    The solve is differentiated through (discretise-then-optimise; a fixed-step method).
    ``trace`` defaults to ``"hutchinson"`` here (FFJORD's training estimator), its probes
    drawn from ``key``; with ``trace="exact"`` the key is unused.

    Args:
      model: as :func:`forward`.
      batch: (B, D) data.
      key: key of the Hutchinson probes.
      **options: :class:`Options` (``key`` is this function's argument).

    Returns:
      ``(nll, {"nll": nll})``.

    Example:
      >>> field = mlp_field(jax.random.key(0), 2, (8,))
      >>> value, metrics = loss(field, jnp.zeros((5, 2)), jax.random.key(1), num_steps=4,
      ...                       method="euler")
      >>> value.shape, bool(jnp.isfinite(value))
      ((), True)
    """
    options = {"trace": "hutchinson", **options}
    nll = -jnp.mean(log_prob(model, batch, key=key, **options))
    return nll, {"nll": nll}


def sample(
    key: jax.Array,
    model: Model,
    shape: tuple[int, int],
    *,
    dtype: Any = jnp.float32,
    return_trajectory: bool = False,
    **options: Unpack[SolverOptions],
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Draw ``z ~ N(0, I)`` at ``t0`` and integrate ``dx/dt = v`` to ``t1`` (no trace).

    One compiled program: the base draw ``z = jax.random.normal(key, shape, dtype)`` and the
    whole solve; :func:`sample_from_noise` on that ``z`` is its noise twin. The error is
    ``O(h^order)`` with ``order = ORDERS[method]``.

    Args:
      key: PRNG key (the only randomness: the base draw).
      model: as :func:`forward`.
      shape: ``(batch, D)``.
      dtype: floating dtype of the samples.
      return_trajectory: also return the path.
      **options: :class:`SolverOptions`.

    Returns:
      (batch, D) samples, or ``(ts (num_steps + 1,), xs (num_steps + 1, batch, D))`` with
      ``xs[0] = z`` and ``xs[-1]`` the samples when ``return_trajectory``.

    Example:
      >>> field = mlp_field(jax.random.key(0), 2, (8,))
      >>> sample(jax.random.key(1), field, (5, 2), num_steps=4, method="euler").shape
      (5, 2)
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (batch, dim) with sizes >= 1, got {shape}")
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"dtype must be a floating dtype, got {dtype}")
    return _solve_from(key, model, None, shape, dtype, return_trajectory, options)


def sample_from_noise(
    model: Model,
    z: jax.Array,
    *,
    return_trajectory: bool = False,
    **options: Unpack[SolverOptions],
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Integrate ``dx/dt = v`` from given base points ``z`` at ``t0`` to ``t1`` (no trace).

    Args:
      model: as :func:`forward`.
      z: (batch, D) base points.
      return_trajectory: also return the path.
      **options: :class:`SolverOptions`.

    Returns:
      as :func:`sample`.

    Example:
      >>> field = mlp_field(jax.random.key(0), 2, (8,))
      >>> x = sample_from_noise(field, jnp.zeros((5, 2)), num_steps=4, method="euler")
      >>> x.shape
      (5, 2)
    """
    z = _check_points("z", z)
    return _solve_from(None, model, z, z.shape, z.dtype, return_trajectory, options)


def _solve_from(key: Any, model: Model, z: jax.Array | None, shape: tuple[int, ...],
                dtype: Any, return_trajectory: bool, options: dict) -> Any:
    o = _options(options, _SOLVER_NAMES)
    return _integrate(key, model, z, jnp.asarray(o["t0"], dtype), jnp.asarray(o["t1"], dtype),
                      shape=shape, dtype=dtype, num_steps=int(o["num_steps"]),
                      method=o["method"], rtol=float(o["rtol"]), atol=float(o["atol"]),
                      return_trajectory=bool(return_trajectory))


def sample_and_log_prob(
    key: jax.Array,
    model: Model,
    shape: tuple[int, int],
    *,
    dtype: Any = jnp.float32,
    **options: Unpack[Options],
) -> tuple[jax.Array, jax.Array]:
    """Samples and their log-densities in one forward solve (no inverse pass needed).

        log p(x) = log N(z) - log|det dx/dz| = log N(z) - int_t0^t1 tr dt

    The key is split ``base_key, probe_key = jax.random.split(key)``; ``z =
    jax.random.normal(base_key, shape, dtype)`` and the Hutchinson probes come from
    ``probe_key``, so :func:`forward` on that ``z`` with ``key=probe_key`` is the noise twin.

    Args:
      key: PRNG key.
      model: as :func:`forward`.
      shape: ``(batch, D)``.
      dtype: floating dtype.
      **options: :class:`Options` without ``key``.

    Returns:
      ``(x (batch, D), log_p (batch,))``.

    Example:
      >>> field = mlp_field(jax.random.key(0), 2, (8,))
      >>> x, logp = sample_and_log_prob(jax.random.key(1), field, (5, 2), num_steps=4,
      ...                               method="euler")
      >>> x.shape, logp.shape
      ((5, 2), (5,))
    """
    if "key" in options:
        raise TypeError("sample_and_log_prob draws its probes from its own key; pass no key=")
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (batch, dim) with sizes >= 1, got {shape}")
    options = {**options, "key": key}  # split inside: base_key, probe_key = split(key)
    x, log_det, log_base = _run(model, None, "forward", options, "z", shape, jnp.dtype(dtype))
    return x, log_base - log_det


# --------------------------------------------------------------------------- a trainable field


def mlp_field(
    key: jax.Array,
    dim: int,
    hidden: Sequence[int] = (64, 64, 64),
    *,
    time_embed_dim: int = 16,
    time_scale: float = FIELD_TIME_SCALE,
) -> nnx.Module:
    """A trainable velocity model ``v(x (batch, D), t (batch,)) -> (batch, D)``.

    The time-conditioned MLP of the diffusion recipes (:class:`genjax.nn.MLPDenoiser`:
    sinusoidal features of ``time_scale * t`` through a small MLP, concatenated with
    ``x``), with smooth SiLU activations so the trace of its Jacobian is smooth too. The
    returned nnx module is itself the ``model`` of every function here (a pytree: its
    weights are traced, differentiated by ``jax.grad`` and updated by optax directly).

    ``time_scale`` is small (4, against ~1000 for diffusion's integer-like times): the
    field is integrated by a fixed-step ODE solver with as few as 10 steps, so its time
    features should not oscillate faster than the steps resolve.

    Example:
      >>> field = mlp_field(jax.random.key(0), 2, (8,))
      >>> field(jnp.zeros((3, 2)), jnp.zeros(3)).shape
      (3, 2)
    """
    from genjax.nn import MLPDenoiser

    return MLPDenoiser(int(dim), tuple(hidden), time_embed_dim=int(time_embed_dim),
                       time_scale=float(time_scale), rngs=nnx.Rngs(key))
