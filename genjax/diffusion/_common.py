"""Helpers shared by the diffusion family's modules (private: not re-exported).

One copy of what every sampler, step and loss of the family needs: broadcasting a
per-example coefficient over the trailing axes, reductions over the non-batch axes, the
argument checks of a sampler (through :mod:`genjax.checks`), calling a model at one time for
the whole batch with its output shape checked, and the :class:`StepInfo` that every sampler
step returns.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.model import Model

__all__ = [
    "StepInfo",
    "bcast",
    "sum_nonbatch",
    "mean_nonbatch",
    "check_shape",
    "check_x",
    "check_noises",
    "call_model",
    "evals",
    "DiscreteState",
    "check_clip",
    "alpha_bar_at",
    "x0_from_eps",
    "predict_x0",
]


class StepInfo(NamedTuple):
    """Diagnostics of one sampler step, returned as ``(state, info)``.

    Attributes:
      model_output: ``(batch, ...)`` what the model returned at the step's first evaluation
        (the noise prediction ``eps`` of a discrete-time sampler, the denoised ``D(x, sigma)``
        of an EDM sampler).
      x0: ``(batch, ...)`` the step's estimate of the clean data ``x0_hat`` (after any
        clipping) -- the quantity a user plots to watch a sampler converge.
      num_evals: ``()`` int32, the number of model evaluations the step made.
    """

    model_output: jax.Array
    x0: jax.Array
    num_evals: jax.Array


def evals(n: Any) -> jax.Array:
    """A model-evaluation count as a () int32 array (a field of :class:`StepInfo`)."""
    return jnp.asarray(n, jnp.int32)


def bcast(c: jax.Array, x: jax.Array) -> jax.Array:
    """``(batch,)`` (or a scalar) -> ``(batch, 1, ..., 1)``, to multiply ``x: (batch, ...)``."""
    c = jnp.asarray(c)
    return c.reshape(c.shape + (1,) * (x.ndim - c.ndim))


def sum_nonbatch(v: jax.Array) -> jax.Array:
    """``(batch, ...) -> (batch,)``: the sum over every non-batch axis."""
    return jnp.sum(v.reshape(v.shape[0], -1), axis=-1)


def mean_nonbatch(v: jax.Array) -> jax.Array:
    """``(batch, ...) -> (batch,)``: the mean over every non-batch axis."""
    return jnp.mean(v.reshape(v.shape[0], -1), axis=-1)


def check_shape(shape: Any) -> tuple[int, ...]:
    """A sampler's ``shape`` argument: ``(batch, ...)`` with every size an integer >= 1."""
    try:
        sizes = tuple(shape)
    except TypeError as err:
        raise ValueError(f"shape must be a tuple of ints (batch, ...), got {shape!r}") from err
    if not sizes:
        raise ValueError(f"shape must be (batch, ...) with at least one axis, got {shape!r}")
    return tuple(checks.positive_int("shape", s) for s in sizes)


def check_x(name: str, x: Any) -> jax.Array:
    """A starting state ``(batch, ...)``: a floating array with a non-empty batch axis."""
    x = jnp.asarray(x)
    if x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(f"{name} must have shape (batch, ...) with batch >= 1, got {x.shape}")
    return checks.floating(name, x)


def check_noises(name: str, noises: Any, x: jax.Array, num_steps: int) -> jax.Array:
    """Per-step noise ``(num_steps, *x.shape)``, cast to ``x``'s dtype."""
    noises = jnp.asarray(noises)
    checks.shape(name, noises, (num_steps, *x.shape))
    return noises.astype(x.dtype)


def call_model(model: Model, x: jax.Array, t: jax.Array) -> jax.Array:
    """``model(x, t)`` with ``t`` broadcast to ``(batch,)`` and the output shape checked.

    Args:
      model: the callable pytree.
      x: ``(batch, ...)`` the state.
      t: a scalar time (integer step or noise level), broadcast to ``(batch,)``, or one
        time per example ``(batch,)``.

    Returns:
      ``(batch, ...)`` the model's output, in ``x``'s dtype.
    """
    out = model(x, jnp.broadcast_to(jnp.asarray(t), (x.shape[0],)))
    checks.same_shape("the model's output", out, "x", x)
    return out.astype(x.dtype)


# ---------------------------------------------------------------------------------------
# Discrete time (integer t in [0, T), t = -1 the clean data): DDPM, DDIM, DPM-Solver++
# ---------------------------------------------------------------------------------------


class DiscreteState(NamedTuple):
    """The state of a discrete-time sampler step (:func:`ddpm_step`, :func:`ddim_step`).

    Attributes:
      x: ``(batch, ...)`` the sample at time ``t``.
      t: ``()`` int32, the integer time of ``x`` in ``[0, T)``; ``-1`` is the clean data
        (``alpha_bar_{-1} = 1``), where a sampler ends.
    """

    x: jax.Array
    t: jax.Array


def check_clip(clip_x0: float | None) -> float | None:
    """``clip_x0``: ``None`` (no clipping) or a positive bound."""
    return None if clip_x0 is None else checks.positive("clip_x0", clip_x0)


def alpha_bar_at(schedule: Any, t: Any, dtype: Any) -> tuple[jax.Array, jax.Array]:
    """``(alpha_bar_t, 1 - alpha_bar_t)`` at integer times ``t`` (any shape, may be traced).

    ``t = -1`` (the clean data) gives ``(1, 0)``; ``1 - alpha_bar`` comes from
    :attr:`Schedule.one_minus_alpha_bars`, without cancellation.
    """
    t = jnp.asarray(t)
    data = t < 0
    safe = jnp.maximum(t, 0)
    ab = jnp.where(data, 1.0, schedule.alpha_bars[safe])
    om = jnp.where(data, 0.0, schedule.one_minus_alpha_bars[safe])
    return ab.astype(dtype), om.astype(dtype)


def x0_from_eps(x: jax.Array, eps: jax.Array, alpha: jax.Array, sigma: jax.Array) -> jax.Array:
    """``x0 = (x - sigma eps) / alpha`` (Ho et al. 2020, eq. 15), and 0 where ``alpha = 0``.

    ``alpha = 0`` only at the first step of a zero-terminal-SNR schedule; there the
    expression is 0/0 and 0 is its limit for the exact ``eps = x`` (:mod:`.sample`).
    """
    positive = alpha > 0
    safe_alpha = jnp.where(positive, alpha, 1.0)
    return jnp.where(positive, (x - sigma * eps) / safe_alpha, jnp.zeros_like(x))


def predict_x0(
    model: Model,
    x: jax.Array,
    t: jax.Array,
    alpha: jax.Array,
    sigma: jax.Array,
    clip_x0: float | None,
) -> tuple[jax.Array, jax.Array]:
    """The model's noise prediction at integer time ``t`` and the data prediction from it.

        eps = model(x_t, t),   x0_hat = clip((x_t - sigma_t eps) / alpha_t, -c, c)

    Args:
      model: ``model(x_t, t) -> eps``.
      x: ``(batch, ...)`` the state ``x_t``.
      t: the scalar integer time of ``x``.
      alpha, sigma: scalars ``sqrt(alpha_bar_t)``, ``sqrt(1 - alpha_bar_t)``.
      clip_x0: ``c`` or ``None`` (no clipping).

    Returns:
      ``(eps, x0_hat)``, each ``(batch, ...)``.
    """
    eps = call_model(model, x, t)
    x0 = x0_from_eps(x, eps, alpha, sigma)  # Ho et al. 2020, eq. 15
    return eps, (x0 if clip_x0 is None else jnp.clip(x0, -clip_x0, clip_x0))
