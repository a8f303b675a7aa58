"""DDIM: denoising diffusion implicit models (Song, Meng & Ermon 2021, eq. 12).

One step from integer time ``t`` to an earlier ``t'`` (``ab = alpha_bar``):

    eps     = model(x_t, t)
    x0_hat  = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t)                              (eq. 12)
    sigma   = eta sqrt((1 - ab_t') / (1 - ab_t)) sqrt(1 - ab_t / ab_t')             (eq. 16)
    x_{t'}  = sqrt(ab_t') x0_hat + sqrt(1 - ab_t' - sigma^2) eps + sigma z          (eq. 12)

``eta = 0`` integrates the probability-flow ODE with a first-order exponential integrator
(it equals first-order DPM-Solver, Lu et al. 2022a, sec. 4.1: order :data:`DDIM_ORDER`);
``eta = 1`` with every timestep visited is DDPM ancestral sampling with the
``beta_tilde`` variance.

Timesteps: ``num_steps`` integer times of the schedule, evenly spaced and *trailing*
(Lin et al. 2024, "Common diffusion noise schedules and sample steps are flawed", Table 2):
``t_i = T - 1 - floor(i T / S)``, ``i = 0 .. S-1`` (:func:`ddim_timesteps`), so the first
step starts at ``T - 1`` and ``S = T`` visits every timestep; the last step goes from
``t_{S-1}`` to the clean data, the virtual ``t = -1`` with ``alpha_bar = 1``. The model is
only evaluated at integer ``t``.

* :func:`ddim_step` -- one step ``(model, state, noise) -> (state, info)``;
* :func:`ddim_sample_from_noise`, :func:`ddim_sample` -- the compiled loops.

The model is a callable pytree ``model(x_t, t) -> eps`` (``x_t: (batch, ...)``,
``t: (batch,)`` int), a traced argument: new weights of the same shapes reuse the program;
a plain Python function is static and compiles anew per function object.

References:
  Song, Meng & Ermon (2021), "Denoising diffusion implicit models", ICLR.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from genjax import checks
from genjax.diffusion._common import (
    DiscreteState,
    StepInfo,
    alpha_bar_at,
    check_clip,
    check_noises,
    check_shape,
    check_x,
    evals,
    predict_x0,
)
from genjax.diffusion.schedules import Schedule
from genjax.model import Model, model_jit

__all__ = [
    "DDIM_ORDER",
    "ddim_timesteps",
    "ddim_step",
    "ddim_sample",
    "ddim_sample_from_noise",
]

DDIM_ORDER = 1
"""Global convergence order of deterministic DDIM (``eta = 0``) as a solver of the
probability-flow ODE (first-order DPM-Solver; measured in tests/diffusion/test_orders.py)."""


def _check_num_steps(num_steps: Any, num_train_steps: int) -> int:
    return checks.int_in_range("num_steps", num_steps, 1, num_train_steps)


def ddim_timesteps(num_train_steps: int, num_steps: int) -> np.ndarray:
    """Evenly spaced, trailing integer timesteps ``t_i = T - 1 - floor(i T / S)``.

    Args:
      num_train_steps: T, the schedule's length.
      num_steps: S in ``[1, T]``.

    Returns:
      ``(S,)`` int32, strictly decreasing, ``t_0 = T - 1``; ``S = T`` gives ``T-1, ..., 0``.

    Example:
      >>> ddim_timesteps(1000, 4).tolist()
      [999, 749, 499, 249]
    """
    num_steps = _check_num_steps(num_steps, num_train_steps)
    i = np.arange(num_steps, dtype=np.int64)
    return (num_train_steps - 1 - (i * num_train_steps) // num_steps).astype(np.int32)


def _ddim_update(
    model: Model,
    x: jax.Array,
    t: jax.Array,
    ab_t: jax.Array,
    om_t: jax.Array,
    ab_prev: jax.Array,
    om_prev: jax.Array,
    z: jax.Array | None,
    eta: float,
    clip_x0: float | None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Eq. 12 given ``alpha_bar`` and ``1 - alpha_bar`` at both ends (scalars).

    Returns ``(x_{t'}, eps, x0_hat)``, each ``(batch, ...)``.
    """
    eps, x0 = predict_x0(model, x, t, jnp.sqrt(ab_t), jnp.sqrt(om_t), clip_x0)  # eq. 12
    sigma = eta * jnp.sqrt(om_prev / om_t * (1.0 - ab_t / ab_prev))  # eq. 16
    # Rounding may push 1 - ab' - sigma^2 a hair below 0 at eta = 1.
    direction = jnp.sqrt(jnp.maximum(om_prev - sigma**2, 0.0))  # eq. 12, middle term
    x_prev = jnp.sqrt(ab_prev) * x0 + direction * eps
    if z is not None:
        x_prev = x_prev + sigma * z  # eq. 12, the random term
    return x_prev, eps, x0


def _check_eta(eta: float) -> float:
    return float(checks.nonnegative("eta", eta))


def ddim_step(
    model: Model,
    state: DiscreteState,
    noise: jax.Array | None,
    *,
    schedule: Schedule,
    t_prev: int | jax.Array,
    eta: float = 0.0,
    clip_x0: float | None = None,
) -> tuple[DiscreteState, StepInfo]:
    """One DDIM step ``x_t -> x_{t'}``, ``t' < t`` (module docstring, eq. 12).

    Args:
      model: callable pytree, ``model(x_t, t) -> eps`` with ``x_t: (batch, ...)``,
        ``t: (batch,)`` int.
      state: :class:`DiscreteState` ``(x (batch, ...), t ())``, ``t`` in ``[0, T)``.
      noise: ``(batch, ...)`` standard normal ``z``; may be ``None`` when ``eta = 0``.
      schedule: the noise schedule.
      t_prev: ``()`` int, the time ``t'`` stepped to, ``-1 <= t' < t`` (``-1``: clean data).
      eta: >= 0; 0 is deterministic DDIM, 1 the DDPM posterior variance.
      clip_x0: if given, ``x0_hat`` is clipped to ``[-clip_x0, clip_x0]`` before it is used
        (see :func:`ddim_sample`); ``eps`` itself is not changed.

    Returns:
      ``(DiscreteState(x_{t'}, t'), StepInfo(eps, x0_hat, num_evals=1))``.

    Example:
      >>> s = linear(100)
      >>> model = analytic_eps_fn(genjax.targets.mixture_1d([1.0], [3.0], [0.1]), s)
      >>> state, info = ddim_step(model, DiscreteState(jnp.zeros((4, 1)), jnp.asarray(99)), None,
      ...                         schedule=s, t_prev=49)
      >>> state.x.shape, int(state.t)
      ((4, 1), 49)
    """
    eta = _check_eta(eta)
    check_clip(clip_x0)
    if noise is None and eta != 0.0:
        raise ValueError("noise must be given when eta > 0")
    x, t = state
    checks.int_array_in_range("state.t", jnp.asarray(t), 0, schedule.num_steps)
    if noise is not None:
        checks.same_shape("noise", jnp.asarray(noise), "state.x", x)
    if checks.is_concrete((t, t_prev)):
        checks.int_in_range("t_prev", int(np.asarray(t_prev)), -1, int(np.asarray(t)) - 1)
    t = jnp.asarray(t, jnp.int32)
    t_prev = jnp.asarray(t_prev, jnp.int32)
    ab_t, om_t = alpha_bar_at(schedule, t, x.dtype)
    ab_prev, om_prev = alpha_bar_at(schedule, t_prev, x.dtype)
    z = None if noise is None else jnp.asarray(noise, x.dtype)
    x_prev, eps, x0 = _ddim_update(model, x, t, ab_t, om_t, ab_prev, om_prev, z, eta, clip_x0)
    return DiscreteState(x_prev, t_prev), StepInfo(eps, x0, evals(1))


@functools.partial(
    model_jit, static_argnames=("num_steps", "eta", "clip_x0", "return_trajectory")
)
def ddim_sample_from_noise(
    model: Model,
    x_T: jax.Array,
    noises: jax.Array | None,
    schedule: Schedule,
    *,
    num_steps: int,
    eta: float = 0.0,
    clip_x0: float | None = None,
    return_trajectory: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Runs the DDIM loop over :func:`ddim_timesteps` on given noise.

    Args:
      model: callable pytree ``model(x_t, t) -> eps`` (traced; a plain function is static).
      x_T: ``(batch, ...)`` the starting state at ``t = T-1``.
      noises: ``(num_steps, batch, ...)``, ``noises[i]`` used by step i; may be ``None``
        when ``eta = 0``.
      schedule: the noise schedule.
      num_steps: S in ``[1, T]`` (static).
      eta: >= 0 (static).
      clip_x0: optional clipping of the predicted ``x_0`` (static; see :func:`ddim_sample`).
      return_trajectory: also return the state after every step (static).

    Returns:
      ``(batch, ...)`` samples; with ``return_trajectory``, ``(samples, trajectory)`` with
      ``trajectory: (S, batch, ...)`` the state after each step (the last is the sample).

    Example:
      >>> s = linear(100)
      >>> model = analytic_eps_fn(genjax.targets.mixture_1d([1.0], [3.0], [0.1]), s)
      >>> x = ddim_sample_from_noise(model, jnp.zeros((4, 1)), None, s, num_steps=10)
      >>> bool(jnp.all(jnp.abs(x - 3.0) < 0.5))  # the target's one mode
      True
    """
    eta = _check_eta(eta)
    check_clip(clip_x0)
    x_T = check_x("x_T", x_T)
    ts = ddim_timesteps(schedule.num_steps, num_steps)  # (S,)
    prev = np.concatenate([ts[1:], [-1]]).astype(np.int32)  # (S,): the next time, -1 = data
    if noises is None:
        if eta != 0.0:
            raise ValueError("noises must be given when eta > 0")
    else:
        noises = check_noises("noises", noises, x_T, num_steps)
    ab_t, om_t = alpha_bar_at(schedule, ts, x_T.dtype)  # (S,) each
    ab_prev, om_prev = alpha_bar_at(schedule, prev, x_T.dtype)  # (S,) each

    def body(x: jax.Array, step: tuple[Any, ...]) -> tuple[jax.Array, Any]:
        t, a, o, a_prev, o_prev, z = step
        x, _, _ = _ddim_update(model, x, t, a, o, a_prev, o_prev, z, eta, clip_x0)
        return x, (x if return_trajectory else None)

    xs = (jnp.asarray(ts), ab_t, om_t, ab_prev, om_prev, noises)
    x0, trajectory = jax.lax.scan(body, x_T, xs)
    return (x0, trajectory) if return_trajectory else x0


@functools.partial(
    model_jit,
    static_argnames=("shape", "num_steps", "eta", "clip_x0", "dtype", "return_trajectory"),
)
def ddim_sample(
    key: jax.Array,
    model: Model,
    shape: tuple[int, ...],
    schedule: Schedule,
    *,
    num_steps: int,
    eta: float = 0.0,
    clip_x0: float | None = None,
    dtype: Any = jnp.float32,
    return_trajectory: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """DDIM sampling (Song, Meng & Ermon 2021, eq. 12) over S trailing timesteps.

    With ``init_key, noise_key = jax.random.split(key)``: ``x_T = normal(init_key, shape)``
    and, when ``eta > 0``, ``noises = normal(noise_key, (num_steps, *shape))`` for
    :func:`ddim_sample_from_noise`.

    Args:
      key: PRNG key.
      model: callable pytree ``model(x_t, t) -> eps``, ``x_t: (batch, ...)``, ``t: (batch,)``
        int (traced: new weights do not recompile; a plain function is static and compiles
        once per function object).
      shape: ``(batch, ...)`` (static).
      schedule: the noise schedule, T steps.
      num_steps: S in ``[1, T]`` (static); timesteps as in :func:`ddim_timesteps`.
      eta: >= 0 (static).
      clip_x0: ``None`` (the default: no clipping, the exact eq. 12) or ``c > 0``: clip the
        predicted ``x0_hat`` to ``[-c, c]`` before it is used (static). Why: ``x0_hat =
        (x_t - sigma_t eps) / alpha_t`` multiplies the model's error in ``eps`` by
        ``sigma_t / alpha_t``, which is huge where ``alpha_t`` is tiny -- e.g. ``t = T-1`` of
        :func:`schedules.cosine`, ``alpha_{T-1} ~ 5e-5``: a factor ~2e4 -- so a network's
        small error becomes a wild ``x0_hat`` and the sample explodes. Clipping to the data
        range (e.g. ``c = 1`` for data in ``[-1, 1]``) bounds it, as in Ho et al.'s DDPM code
        and diffusers' ``clip_sample``. Off by default because it changes the sampler
        whenever ``|x0_hat| > c``: with an exact model it only removes correct mass.
      dtype: floating dtype of the samples.
      return_trajectory: also return the ``(S, *shape)`` states after every step.

    Returns:
      ``shape`` samples (and the trajectory, see :func:`ddim_sample_from_noise`).

    Example:
      >>> s = linear(100)
      >>> model = analytic_eps_fn(genjax.targets.ring(), s)
      >>> ddim_sample(jax.random.key(0), model, (512, 2), s, num_steps=10).shape
      (512, 2)

    References:
      Song, Meng & Ermon (2021), "Denoising diffusion implicit models", ICLR.
    """
    shape = check_shape(shape)
    eta = _check_eta(eta)
    check_clip(clip_x0)
    _check_num_steps(num_steps, schedule.num_steps)
    init_key, noise_key = jax.random.split(key)
    x_T = jax.random.normal(init_key, shape, dtype)
    noises = jax.random.normal(noise_key, (num_steps, *shape), dtype) if eta > 0 else None
    return ddim_sample_from_noise(
        model, x_T, noises, schedule, num_steps=num_steps, eta=eta, clip_x0=clip_x0,
        return_trajectory=return_trajectory,
    )
