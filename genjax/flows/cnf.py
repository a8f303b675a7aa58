"""Continuous normalizing flows (Chen et al. 2018; FFJORD, Grathwohl et al. 2019).

A continuous normalizing flow transports base noise ``z ~ N(0, I)`` to data by the ODE

    dx/dt = f(x(t), t),    x(t0) = z,    x = x(t1).

**Direction convention** (the one every genjax flow uses): base noise lives at
``t = t0`` (default 0) and data at ``t = t1`` (default 1); ``forward`` integrates
``t0 -> t1`` (noise -> data, the sampling direction), ``inverse`` integrates
``t1 -> t0`` (data -> noise). Flow matching's fields (``flow_matching.py``) use the same
convention, so a trained flow-matching field is a CNF and gets its likelihood here.

The log-density along a trajectory obeys the instantaneous change of variables
(Chen et al. 2018, Theorem 1; Grathwohl et al. 2019, eq. 2)

    d log p_t(x(t)) / dt = -tr(df/dx (x(t), t)),

so we integrate the augmented state ``[x, l]`` with

    d[x, l]/dt = [f(x, t), -tr(df/dx)]                            (FFJORD eq. 4)

through :func:`genjax.ode.solve` (one XLA program). Started at ``l = 0``:

    forward  (t0 -> t1):  l(t1) = -int_t0^t1 tr dt = -log|det dx/dz|
    inverse  (t1 -> t0):  l(t0) = +int_t0^t1 tr dt = -log|det dz/dx|
    log p(x) = log N(z; 0, I) + log|det dz/dx| = log N(z) - int_t0^t1 tr dt    (eq. 3)

For a linear field ``f = A x`` the flow is ``x = exp((t1 - t0) A) z`` and
``log|det dx/dz| = (t1 - t0) tr(A)`` exactly (Jacobi's formula) — the first test.

The trace:

* ``trace="exact"``: ``tr(J) = sum_i e_i^T J e_i`` with one forward-mode JVP per basis
  vector ``e_i``, applied to the whole batch at once (the field acts on each example
  independently, so the batch Jacobian is block diagonal and ``[J e_i]_i`` is the
  ``i``-th diagonal entry of every example's Jacobian). ``D`` JVPs: for small ``D``.
* ``trace="hutchinson"``: ``tr(J) = E[v^T J v]`` for any probe with ``E[v v^T] = I``
  (Hutchinson 1989; FFJORD sec. 3.1), ``v`` Rademacher or standard Gaussian. FFJORD
  computes ``v^T J`` by a VJP; we compute ``J v`` by a JVP (the same number
  ``v^T J v``, one forward-mode pass, no tape). The probes are drawn ONCE per solve
  and held fixed along the whole trajectory (FFJORD's choice), which keeps the
  estimate of the integral — and hence of ``log p(x)`` — unbiased. They are injectable
  (``probes=``) so tests share them with the NumPy oracle.

``field_fn(x, t)`` takes ``x: (batch, D)`` and ``t: (batch,)`` (the network convention
of the rest of genjax, e.g. ``eps_fn(x, t)``) and must act on each example
independently. :func:`mlp_field` builds a trainable one.

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
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import ode

__all__ = [
    "FieldFn",
    "TRACES",
    "PROBES",
    "trace_exact",
    "trace_hutchinson",
    "draw_probes",
    "augmented_field",
    "forward",
    "inverse",
    "log_prob",
    "sample",
    "sample_and_log_prob",
    "standard_normal_log_prob",
    "mlp_field",
]

FieldFn = Callable[[jax.Array, jax.Array], jax.Array]  # (x (batch, D), t (batch,)) -> (batch, D)

TRACES = ("exact", "hutchinson")
PROBES = ("rademacher", "gaussian")
METHODS = tuple(ode.TABLEAUS)
FIELD_TIME_SCALE = 4.0  # t in [0, 1] -> sinusoidal features with periods >= 2 pi / 4 ~ 1.6


# --------------------------------------------------------------------------- trace


def _trace(jvp_fn: Callable[[jax.Array], jax.Array], x: jax.Array, trace: str,
           probes: jax.Array | None) -> jax.Array:
    """tr(J) per example from ``jvp_fn(v) = J v`` (the batch Jacobian is block diagonal)."""
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
    _, jvp_fn = jax.linearize(fn, x)
    return _trace(jvp_fn, x, "exact", None)


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
    _, jvp_fn = jax.linearize(fn, x)
    return _trace(jvp_fn, x, "hutchinson", probes)


def draw_probes(
    key: jax.Array,
    shape: tuple[int, int],
    *,
    probe: str = "rademacher",
    num_probes: int = 1,
    dtype: Any = jnp.float32,
) -> jax.Array:
    """Hutchinson probes ``(num_probes, batch, D)``: Rademacher (+-1) or N(0, 1) entries."""
    if probe not in PROBES:
        raise ValueError(f"probe must be one of {PROBES}, got {probe!r}")
    full = (int(num_probes), *shape)
    if probe == "rademacher":
        return jax.random.rademacher(key, full, dtype=dtype)
    return jax.random.normal(key, full, dtype)


def augmented_field(
    field_fn: FieldFn, *, trace: str = "exact", probes: jax.Array | None = None
) -> Callable[[jax.Array, tuple[jax.Array, jax.Array]], tuple[jax.Array, jax.Array]]:
    """The right-hand side ``(t, (x, l)) -> (f(x, t), -tr(df/dx))`` of FFJORD eq. 4."""

    def rhs(t: jax.Array, state: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        x, _ = state
        tb = jnp.broadcast_to(t, x.shape[:1])  # (batch,)
        fn = lambda y: field_fn(y, tb)  # (batch, D) -> (batch, D) at fixed t
        dx, jvp_fn = jax.linearize(fn, x)  # f(x, t) once; v -> J v by the linearised map
        tr = _trace(jvp_fn, x, trace, probes)  # (batch,)
        return dx, (-tr).astype(x.dtype)  # d[x, l]/dt = [f, -tr(df/dx)]

    return rhs


def standard_normal_log_prob(z: jax.Array) -> jax.Array:
    """``log N(z; 0, I)`` per example: ``-|z|^2 / 2 - D/2 log(2 pi)``; z: (batch, D)."""
    return -0.5 * jnp.sum(z**2, axis=-1) - 0.5 * z.shape[-1] * math.log(2.0 * math.pi)


# --------------------------------------------------------------------------- checks


def _check(x, t0, t1, trace, probe, num_probes, num_steps, method, key, probes, name="x"):
    if trace not in TRACES:
        raise ValueError(f"trace must be one of {TRACES}, got {trace!r}")
    if probe not in PROBES:
        raise ValueError(f"probe must be one of {PROBES}, got {probe!r}")
    if isinstance(num_probes, bool) or int(num_probes) != num_probes or num_probes < 1:
        raise ValueError(f"num_probes must be an integer >= 1, got {num_probes!r}")
    if isinstance(num_steps, bool) or int(num_steps) != num_steps or num_steps < 1:
        raise ValueError(f"num_steps must be an integer >= 1, got {num_steps!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    for nm, v in (("t0", t0), ("t1", t1)):
        if not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"{nm} must be in [0, 1], got {v!r}")
    if not float(t0) < float(t1):
        raise ValueError(f"t0 must be < t1 (noise at t0, data at t1), got t0={t0!r}, t1={t1!r}")
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (batch, dim), got {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"{name} must be a floating array, got dtype {x.dtype}")
    if trace == "hutchinson" and probes is None and key is None:
        raise ValueError("key must be given when trace='hutchinson' (or pass probes)")
    if probes is not None and probes.shape[1:] != x.shape:
        raise ValueError(
            f"probes must have shape (num_probes, {x.shape[0]}, {x.shape[1]}), got {probes.shape}"
        )


def _probes_for(x, trace, key, probes, probe, num_probes):
    if trace != "hutchinson":
        return None
    if probes is not None:
        return jnp.asarray(probes, x.dtype)
    return draw_probes(key, x.shape, probe=probe, num_probes=num_probes, dtype=x.dtype)


_STATIC = ("field_fn", "trace", "probe", "num_probes", "num_steps", "method",
           "rtol", "atol", "save_trajectory")


@functools.partial(jax.jit, static_argnames=_STATIC + ("direction",))
def _integrate(field_fn, y, key, probes, t0, t1, *, trace, probe, num_probes, num_steps, method,
               rtol, atol, save_trajectory, direction):
    probes = _probes_for(y, trace, key, probes, probe, num_probes)
    rhs = augmented_field(field_fn, trace=trace, probes=probes)
    start, end = (t0, t1) if direction == "forward" else (t1, t0)
    l0 = jnp.zeros(y.shape[:1], y.dtype)  # l = 0 at the start
    out = ode.solve(rhs, (y, l0), start, end, num_steps=num_steps, method=method, rtol=rtol,
                    atol=atol, save_trajectory=save_trajectory)
    if save_trajectory:
        ts, (ys, ls) = out
        return ys[-1], ls[-1], ts, ys
    y1, l1 = out
    return y1, l1, None, None


def _run(field_fn, y, direction, *, t0, t1, trace, key, probes, probe, num_probes, num_steps,
         method, rtol, atol, save_trajectory, name):
    y = jnp.asarray(y)
    probes = None if probes is None else jnp.asarray(probes)
    _check(y, t0, t1, trace, probe, num_probes, num_steps, method, key, probes, name)
    # t0, t1 are traced: one compiled solve serves every interval.
    t0 = jnp.asarray(t0, y.dtype)
    t1 = jnp.asarray(t1, y.dtype)
    return _integrate(field_fn, y, key, probes, t0, t1, trace=trace,
                      probe=probe, num_probes=int(num_probes), num_steps=int(num_steps),
                      method=method, rtol=float(rtol), atol=float(atol),
                      save_trajectory=bool(save_trajectory), direction=direction)


# --------------------------------------------------------------------------- public API


def forward(
    field_fn: FieldFn,
    z: jax.Array,
    *,
    t0: float = 0.0,
    t1: float = 1.0,
    trace: str = "exact",
    key: jax.Array | None = None,
    probes: jax.Array | None = None,
    probe: str = "rademacher",
    num_probes: int = 1,
    num_steps: int = 100,
    method: str = "rk4",
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> tuple[jax.Array, jax.Array]:
    """Noise -> data: integrate ``dx/dt = f`` from ``t0`` to ``t1`` with its log-determinant.

        x = z + int_t0^t1 f(x(t), t) dt,    log|det dx/dz| = int_t0^t1 tr(df/dx) dt

    Args:
      field_fn: ``field_fn(x (batch, D), t (batch,)) -> (batch, D)``.
      z: (batch, D) base points at ``t0``.
      t0, t1: base and data times, ``0 <= t0 < t1 <= 1``.
      trace: ``"exact"`` or ``"hutchinson"``.
      key: key for the Hutchinson probes (unused for the exact trace).
      probes: (num_probes, batch, D) Hutchinson probes to use instead of drawing them.
      probe: ``"rademacher"`` or ``"gaussian"``.
      num_probes: probes averaged per trace evaluation, >= 1.
      num_steps: fixed steps (``euler``/``heun``/``rk4``), >= 1.
      method: a :func:`genjax.ode.solve` method.
      rtol, atol: tolerances of ``dopri5``.

    Returns:
      ``(x (batch, D), log_det (batch,))`` with ``log_det = log|det dx/dz|``.
    """
    x, l1, _, _ = _run(field_fn, z, "forward", t0=t0, t1=t1, trace=trace, key=key,
                       probes=probes, probe=probe, num_probes=num_probes, num_steps=num_steps,
                       method=method, rtol=rtol, atol=atol, save_trajectory=False, name="z")
    return x, -l1  # l(t1) = -int tr dt = -log|det dx/dz|


def inverse(
    field_fn: FieldFn,
    x: jax.Array,
    *,
    t0: float = 0.0,
    t1: float = 1.0,
    trace: str = "exact",
    key: jax.Array | None = None,
    probes: jax.Array | None = None,
    probe: str = "rademacher",
    num_probes: int = 1,
    num_steps: int = 100,
    method: str = "rk4",
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> tuple[jax.Array, jax.Array]:
    """Data -> noise: integrate backwards from ``t1`` to ``t0``.

        z = x - int_t0^t1 f(x(t), t) dt,    log|det dz/dx| = -int_t0^t1 tr(df/dx) dt

    Args: as :func:`forward`, with ``x: (batch, D)`` data points at ``t1``.

    Returns:
      ``(z (batch, D), log_det (batch,))`` with ``log_det = log|det dz/dx|``.
    """
    z, l0, _, _ = _run(field_fn, x, "inverse", t0=t0, t1=t1, trace=trace, key=key,
                       probes=probes, probe=probe, num_probes=num_probes, num_steps=num_steps,
                       method=method, rtol=rtol, atol=atol, save_trajectory=False, name="x")
    return z, -l0  # l(t0) = +int tr dt = -log|det dz/dx|


def log_prob(
    field_fn: FieldFn,
    x: jax.Array,
    *,
    t0: float = 0.0,
    t1: float = 1.0,
    trace: str = "exact",
    key: jax.Array | None = None,
    probes: jax.Array | None = None,
    probe: str = "rademacher",
    num_probes: int = 1,
    num_steps: int = 100,
    method: str = "rk4",
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> jax.Array:
    """``log p(x)`` of the CNF with a standard normal base at ``t0`` (FFJORD eq. 3).

        log p(x) = log N(z; 0, I) - int_t0^t1 tr(df/dx (x(t), t)) dt,  z = x(t0)

    With ``trace="hutchinson"`` the result is an unbiased estimate of ``log p(x)``.

    Args: as :func:`inverse`.

    Returns:
      (batch,) log-densities in nats.

    Example:
      >>> log_p = log_prob(lambda x, t: -x, x, num_steps=50)   # the flow z -> z/e
    """
    z, log_det = inverse(field_fn, x, t0=t0, t1=t1, trace=trace, key=key, probes=probes,
                         probe=probe, num_probes=num_probes, num_steps=num_steps, method=method,
                         rtol=rtol, atol=atol)
    return standard_normal_log_prob(z) + log_det  # log N(z) + log|det dz/dx|


def sample(
    key: jax.Array,
    field_fn: FieldFn,
    shape: tuple[int, int],
    *,
    t0: float = 0.0,
    t1: float = 1.0,
    num_steps: int = 100,
    method: str = "rk4",
    rtol: float = 1e-5,
    atol: float = 1e-6,
    dtype: Any = jnp.float32,
    save_trajectory: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Draw ``z ~ N(0, I)`` at ``t0`` and integrate ``dx/dt = f`` to ``t1`` (no trace).

    Args:
      key: PRNG key (the only randomness: the base draw).
      field_fn: ``field_fn(x (batch, D), t (batch,)) -> (batch, D)``.
      shape: ``(batch, D)``.
      t0, t1, num_steps, method, rtol, atol: as :func:`forward`.
      dtype: floating dtype of the samples.
      save_trajectory: also return the path.

    Returns:
      (batch, D) samples, or ``(ts (num_steps + 1,), xs (num_steps + 1, batch, D))`` with
      ``xs[0] = z`` and ``xs[-1]`` the samples when ``save_trajectory``.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2:
        raise ValueError(f"shape must be (batch, dim), got {shape}")
    _check(jnp.zeros((1, 1), dtype), t0, t1, "exact", "rademacher", 1, num_steps, method, None,
           None, "z")
    dtype = jnp.dtype(dtype)
    return _sample_jit(key, field_fn, shape, jnp.asarray(t0, dtype), jnp.asarray(t1, dtype),
                       num_steps=int(num_steps),
                       method=method, rtol=float(rtol), atol=float(atol), dtype=dtype,
                       save_trajectory=bool(save_trajectory))


@functools.partial(jax.jit, static_argnames=("field_fn", "shape", "num_steps", "method", "rtol",
                                             "atol", "dtype", "save_trajectory"))
def _sample_jit(key, field_fn, shape, t0, t1, *, num_steps, method, rtol, atol, dtype,
                save_trajectory):
    z = jax.random.normal(key, shape, dtype)  # z ~ N(0, I) at t0

    def f(t, x):
        return field_fn(x, jnp.broadcast_to(t, x.shape[:1]))  # dx/dt = f(x, t)

    return ode.solve(f, z, t0, t1, num_steps=num_steps, method=method, rtol=rtol, atol=atol,
                     save_trajectory=save_trajectory)


def sample_and_log_prob(
    key: jax.Array,
    field_fn: FieldFn,
    shape: tuple[int, int],
    *,
    t0: float = 0.0,
    t1: float = 1.0,
    trace: str = "exact",
    probe: str = "rademacher",
    num_probes: int = 1,
    num_steps: int = 100,
    method: str = "rk4",
    rtol: float = 1e-5,
    atol: float = 1e-6,
    dtype: Any = jnp.float32,
) -> tuple[jax.Array, jax.Array]:
    """Samples and their log-densities in one forward solve (no inverse pass needed).

        log p(x) = log N(z) - log|det dx/dz| = log N(z) - int_t0^t1 tr dt

    Args:
      key: PRNG key, split into ``(base_key, probe_key)``.
      field_fn, shape, t0, t1, trace, probe, num_probes, num_steps, method, rtol, atol,
      dtype: as :func:`sample` and :func:`forward`.

    Returns:
      ``(x (batch, D), log_p (batch,))``.
    """
    base_key, probe_key = jax.random.split(key)
    shape = tuple(int(s) for s in shape)
    z = jax.random.normal(base_key, shape, jnp.dtype(dtype))
    x, log_det = forward(field_fn, z, t0=t0, t1=t1, trace=trace, key=probe_key, probe=probe,
                         num_probes=num_probes, num_steps=num_steps, method=method, rtol=rtol,
                         atol=atol)
    return x, standard_normal_log_prob(z) - log_det


# --------------------------------------------------------------------------- a trainable field


def mlp_field(
    key: jax.Array,
    dim: int,
    hidden: Sequence[int] = (64, 64, 64),
    *,
    time_embed_dim: int = 16,
    time_scale: float = FIELD_TIME_SCALE,
) -> nnx.Module:
    """A trainable velocity field ``v(x (batch, D), t (batch,)) -> (batch, D)``.

    The time-conditioned MLP of the diffusion recipes (:class:`genjax.nn.MLPDenoiser`:
    sinusoidal features of ``time_scale * t`` through a small MLP, concatenated with
    ``x``), with smooth SiLU activations so the trace of its Jacobian is smooth too. The
    returned nnx module is itself a ``field_fn``; split it with ``nnx.split`` to get a
    pytree of arrays for training and ``nnx.merge`` it back inside pure functions.

    ``time_scale`` is small (4, against ~1000 for diffusion's integer-like times): the
    field is integrated by a fixed-step ODE solver with as few as 10 steps, so its time
    features should not oscillate faster than the steps resolve.
    """
    from genjax.nn import MLPDenoiser

    return MLPDenoiser(int(dim), tuple(hidden), time_embed_dim=int(time_embed_dim),
                       time_scale=float(time_scale), rngs=nnx.Rngs(key))
