"""DDPM: ancestral sampling of a discrete diffusion (Ho, Jain & Abbeel 2020, Algorithm 2).

Written through the predicted ``x_0`` and the forward posterior (eq. 7) so that ``x_0`` may
be clipped:

    eps     = model(x_t, t)
    x0_hat  = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)             (eq. 15)
    x_{t-1} = mu_tilde(x_t, x0_hat) + sigma_t z,   z ~ N(0, I),  z = 0 at t = 0  (eq. 7, Alg. 2)

Without clipping ``mu_tilde(x_t, x0_hat) = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) /
sqrt(1 - beta_t)``, Algorithm 2 line 4 exactly. ``sigma_t^2`` is ``beta_t`` or the
posterior's ``beta_tilde_t`` -- the two choices of Ho et al. (2020), sec. 3.2.

* :func:`ddpm_step` -- one step ``(model, state, noise) -> (state, info)``;
* :func:`ddpm_sample_from_noise` -- the loop ``t = T-1, ..., 0`` on given noise;
* :func:`ddpm_sample` -- the same loop with the noise drawn from a key, one compiled program.

The model is a callable pytree ``model(x_t, t) -> eps`` with ``x_t: (batch, ...)`` and
integer ``t: (batch,)`` (an ``nnx.Module``, the exact
:func:`genjax.diffusion.analytic_eps_fn` of a mixture, a ``jax.tree_util.Partial``); it is a
traced argument of the compiled samplers, so new weights of the same shapes reuse the
program. A plain Python function is accepted too; it is static, and each new function object
compiles anew.

References:
  Ho, Jain & Abbeel (2020), "Denoising diffusion probabilistic models", NeurIPS.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.diffusion._common import (
    DiscreteState,
    StepInfo,
    check_clip,
    check_noises,
    check_shape,
    check_x,
    evals,
    predict_x0,
)
from genjax.diffusion.schedules import Schedule
from genjax.model import Model, model_jit

__all__ = ["DDPM_ORDER", "ddpm_step", "ddpm_sample", "ddpm_sample_from_noise", "ddpm_noise"]

DDPM_ORDER = 1
"""Weak convergence order of ancestral sampling as a discretisation of the reverse SDE
(an exponential-integrator Euler-Maruyama step); stated, not measured by the tests."""

_VARIANCES = ("beta", "beta_tilde")


def _ddpm_coefficients(schedule: Schedule, dtype: Any, variance: str) -> tuple[jax.Array, ...]:
    """The per-step constants of the DDPM update for every ``t = 0 .. T-1``, each ``(T,)``.

    Computed once, outside the sampling loop (the timestep grid is static):
    ``sqrt(alpha_bar_t)``, ``sqrt(1 - alpha_bar_t)`` (eq. 15), the two weights of the
    posterior mean ``mu_tilde`` (eq. 7) and the noise scale ``sigma_t`` (0 at ``t = 0``).
    """
    ab = schedule.alpha_bars.astype(dtype)
    om = schedule.one_minus_alpha_bars.astype(dtype)  # 1 - ab_t, no cancellation
    ab_prev = jnp.concatenate([jnp.ones((1,), dtype), ab[:-1]])  # alpha_bar_{-1} = 1
    om_prev = jnp.concatenate([jnp.zeros((1,), dtype), om[:-1]])
    beta = schedule.betas.astype(dtype)
    alpha = schedule.alphas.astype(dtype)
    # mu_tilde = sqrt(ab_{t-1}) beta_t / (1 - ab_t) x0 + sqrt(alpha_t)(1 - ab_{t-1})/(1 - ab_t) x_t
    c_x0 = jnp.sqrt(ab_prev) * beta / om  # eq. 7
    c_x = jnp.sqrt(alpha) * om_prev / om  # eq. 7
    var = beta if variance == "beta" else om_prev / om * beta  # beta_t or beta_tilde_t (eq. 7)
    first = jnp.arange(ab.shape[0]) == 0
    std = jnp.where(first, 0.0, jnp.sqrt(var)).astype(dtype)  # Alg. 2 line 3: z = 0 at t = 0
    return jnp.sqrt(ab), jnp.sqrt(om), c_x0, c_x, std


def _ddpm_update(
    model: Model,
    x: jax.Array,
    t: jax.Array,
    coefs: tuple[jax.Array, ...],
    z: jax.Array,
    clip_x0: float | None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One DDPM step given its constants (scalars of :func:`_ddpm_coefficients`).

    Returns ``(x_{t-1}, eps, x0_hat)``, each ``(batch, ...)``.
    """
    sqrt_ab, sqrt_om, c_x0, c_x, std = coefs
    eps, x0 = predict_x0(model, x, t, sqrt_ab, sqrt_om, clip_x0)  # eq. 15, optionally clipped
    return c_x0 * x0 + c_x * x + std * z, eps, x0  # mu_tilde(x_t, x0_hat) + sigma_t z, eq. 7


def _check_args(variance: str, clip_x0: float | None) -> None:
    checks.one_of("variance", variance, _VARIANCES)
    check_clip(clip_x0)


def ddpm_step(
    model: Model,
    state: DiscreteState,
    noise: jax.Array,
    *,
    schedule: Schedule,
    variance: str = "beta",
    clip_x0: float | None = None,
) -> tuple[DiscreteState, StepInfo]:
    """One ancestral step ``x_t -> x_{t-1}`` given its noise (module docstring's equations).

    Args:
      model: callable pytree, ``model(x_t, t) -> eps`` with ``x_t: (batch, ...)``,
        ``t: (batch,)`` int.
      state: :class:`DiscreteState` ``(x (batch, ...), t ())`` with ``t`` in ``[0, T)``.
      noise: ``(batch, ...)`` standard normal ``z`` (ignored at ``t = 0``).
      schedule: the noise schedule.
      variance: ``"beta"`` (``sigma_t^2 = beta_t``) or ``"beta_tilde"`` (``sigma_t^2 =
        beta_tilde_t``, eq. 7).
      clip_x0: if given, ``x0_hat`` is clipped to ``[-clip_x0, clip_x0]``.

    Returns:
      ``(DiscreteState(x_{t-1}, t - 1), StepInfo(eps, x0_hat, num_evals=1))``.

    Example:
      >>> s = linear(50)
      >>> model = analytic_eps_fn(genjax.targets.mixture_1d([1.0], [3.0], [0.1]), s)
      >>> state = DiscreteState(jnp.zeros((4, 1)), jnp.asarray(49))
      >>> for i in range(50):
      ...     state, info = ddpm_step(model, state, jnp.zeros((4, 1)), schedule=s)
      >>> int(state.t), bool(jnp.all(jnp.abs(state.x - 3.0) < 0.5))  # the target's mode
      (-1, True)
    """
    _check_args(variance, clip_x0)
    x, t = state
    checks.int_array_in_range("state.t", jnp.asarray(t), 0, schedule.num_steps)
    checks.same_shape("noise", jnp.asarray(noise), "state.x", x)
    t = jnp.asarray(t, jnp.int32)
    coefs = tuple(c[t] for c in _ddpm_coefficients(schedule, x.dtype, variance))
    x_prev, eps, x0 = _ddpm_update(model, x, t, coefs, jnp.asarray(noise, x.dtype), clip_x0)
    return DiscreteState(x_prev, t - 1), StepInfo(eps, x0, evals(1))


#: ``ddpm_sample`` draws all of a trajectory's noise before its loop, in one call, when it
#: holds at most this many numbers (64 MB of float32; the 4096-point 2-D ring at T = 1000
#: needs 8.2M); larger ones draw each step's inside the loop (:func:`ddpm_noise`).
PREDRAW_MAX = 1 << 24


def _draw_noises(noise_key: jax.Array, num_t: int, shape: tuple[int, ...], dtype: Any) -> Any:
    """The keyed sampler's noise: ``(T, *shape)`` drawn at once, or None (drawn per step).

    In one call and with Threefry's original bit layout -- each Threefry-2x32 block gives
    two draws (JAX's default "partitionable" layout hashes one block per draw): the random
    numbers were about half of a DDPM step's cost on CPU; this draw makes the 4096-point
    ring's ``ddpm_sample`` about 12% faster than a ``jax.random.normal`` per step. The
    layout is fixed here whatever the global ``jax_threefry_partitionable`` setting, so the
    same key gives the same numbers.
    """
    size = num_t
    for n in shape:
        size *= n
    if size > PREDRAW_MAX:
        return None
    with jax.threefry_partitionable(False):
        return jax.random.normal(noise_key, (num_t, *shape), dtype)


def _ddpm_loop(
    model: Model,
    x_T: jax.Array,
    schedule: Schedule,
    noises: jax.Array | None,
    noise_key: jax.Array | None,
    variance: str,
    clip_x0: float | None,
    return_trajectory: bool,
) -> Any:
    """The loop ``t = T-1, ..., 0``; step ``i`` uses ``noises[i]``, or, when ``noises`` is
    None, ``normal(fold_in(noise_key, i))`` drawn inside the loop (no ``T`` noise arrays held
    in memory)."""
    num_t = schedule.num_steps
    ts = jnp.arange(num_t - 1, -1, -1, dtype=jnp.int32)  # (T,): T-1, ..., 0
    coefs = tuple(c[::-1] for c in _ddpm_coefficients(schedule, x_T.dtype, variance))

    def body(x: jax.Array, step: tuple[Any, ...]) -> tuple[jax.Array, Any]:
        i, t, c, z = step
        if z is None:
            z = jax.random.normal(jax.random.fold_in(noise_key, i), x.shape, x.dtype)
        x, _, _ = _ddpm_update(model, x, t, c, z, clip_x0)
        return x, (x if return_trajectory else None)

    steps = (jnp.arange(num_t, dtype=jnp.int32), ts, coefs, noises)
    x0, trajectory = jax.lax.scan(body, x_T, steps)
    return (x0, trajectory) if return_trajectory else x0


@functools.partial(model_jit, static_argnames=("variance", "clip_x0", "return_trajectory"))
def ddpm_sample_from_noise(
    model: Model,
    x_T: jax.Array,
    noises: jax.Array,
    schedule: Schedule,
    *,
    variance: str = "beta",
    clip_x0: float | None = None,
    return_trajectory: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Runs the DDPM loop ``t = T-1, ..., 0`` on given noise.

    Args:
      model: callable pytree ``model(x_t, t) -> eps`` (traced; a plain function is static).
      x_T: ``(batch, ...)`` the starting state, ``N(0, I)`` draws.
      noises: ``(T, batch, ...)``; ``noises[i]`` is used by the step at ``t = T-1-i``
        (``noises[T-1]``, at ``t = 0``, is ignored).
      schedule: the noise schedule.
      variance, clip_x0: see :func:`ddpm_step` (static).
      return_trajectory: also return the state after every step (static).

    Returns:
      ``(batch, ...)`` samples; with ``return_trajectory``, ``(samples, trajectory)`` where
      ``trajectory: (T, batch, ...)`` holds ``x_{t-1}`` after the step at ``t = T-1-i``.

    Example:
      >>> s = linear(50)
      >>> model = analytic_eps_fn(genjax.targets.mixture_1d([1.0], [3.0], [0.1]), s)
      >>> x = ddpm_sample_from_noise(model, jnp.zeros((4, 1)), jnp.zeros((50, 4, 1)), s)
      >>> bool(jnp.all(jnp.abs(x - 3.0) < 0.5))  # the target's mode
      True
    """
    _check_args(variance, clip_x0)
    x_T = check_x("x_T", x_T)
    noises = check_noises("noises", noises, x_T, schedule.num_steps)
    return _ddpm_loop(model, x_T, schedule, noises, None, variance, clip_x0, return_trajectory)


@functools.partial(
    model_jit, static_argnames=("shape", "variance", "clip_x0", "dtype", "return_trajectory")
)
def ddpm_sample(
    key: jax.Array,
    model: Model,
    shape: tuple[int, ...],
    schedule: Schedule,
    *,
    variance: str = "beta",
    clip_x0: float | None = None,
    dtype: Any = jnp.float32,
    return_trajectory: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Ancestral sampling of Ho et al. (2020), Algorithm 2, in one compiled loop.

        x_{T-1} ~ N(0, I)
        for t = T-1, ..., 0:  x_{t-1} = mu_tilde(x_t, x0_hat(x_t, t)) + sigma_t z

    With ``init_key, noise_key = jax.random.split(key)``: ``x_T = normal(init_key, shape)``
    and the noise of loop step ``i`` (at ``t = T-1-i``) is
    row ``i`` of ``normal(noise_key, (T, *shape))`` drawn in one call before the loop with
    Threefry's original bit layout (``jax.threefry_partitionable(False)``: two draws per
    Threefry block, whatever the global setting) when ``T * prod(shape) <=``
    :data:`PREDRAW_MAX`, else ``normal(fold_in(noise_key, i), shape)`` drawn inside the loop
    -- the numbers :func:`ddpm_noise` returns, so ``ddpm_sample_from_noise(model,
    *ddpm_noise(key, shape, T), schedule)`` is this sampler. Same key, same output.

    Args:
      key: PRNG key.
      model: callable pytree ``model(x_t, t) -> eps``, ``x_t: (batch, ...)``, ``t: (batch,)``
        int (traced: new weights do not recompile; a plain function is static and compiles
        once per function object).
      shape: ``(batch, ...)`` of the samples (static).
      schedule: the noise schedule, T steps.
      variance: ``"beta"`` or ``"beta_tilde"`` (see :func:`ddpm_step`).
      clip_x0: optional clipping of the predicted ``x_0``.
      dtype: floating dtype of the samples.
      return_trajectory: also return the ``(T, *shape)`` states after every step.

    Returns:
      ``shape`` samples (and the trajectory, see :func:`ddpm_sample_from_noise`).

    Example:
      >>> from genjax import diffusion, targets
      >>> s = diffusion.schedules.linear(100)
      >>> model = diffusion.analytic_eps_fn(targets.ring(), s)
      >>> diffusion.ddpm_sample(jax.random.key(0), model, (512, 2), s).shape
      (512, 2)

    References:
      Ho, Jain & Abbeel (2020), "Denoising diffusion probabilistic models".
    """
    shape = check_shape(shape)
    _check_args(variance, clip_x0)
    init_key, noise_key = jax.random.split(key)
    x_T = jax.random.normal(init_key, shape, dtype)
    noises = _draw_noises(noise_key, schedule.num_steps, shape, dtype)  # None: drawn per step
    return _ddpm_loop(model, x_T, schedule, noises, noise_key, variance, clip_x0,
                      return_trajectory)  # fmt: skip


def ddpm_noise(
    key: jax.Array, shape: tuple[int, ...], num_steps: int, dtype: Any = jnp.float32
) -> tuple[jax.Array, jax.Array]:
    """The draws ``ddpm_sample(key, model, shape, schedule, dtype=dtype)`` makes, stacked.

    ``ddpm_sample_from_noise(model, *ddpm_noise(key, shape, T, dtype), schedule)`` equals
    ``ddpm_sample(key, model, shape, schedule, dtype=dtype)`` for a ``T``-step schedule.

    Args:
      key: the sampler's PRNG key.
      shape: ``(batch, ...)`` of the samples.
      num_steps: ``T``, the schedule's number of steps.
      dtype: floating dtype of the draws.

    Returns:
      ``(x_T (batch, ...), noises (T, batch, ...))``.
    """
    shape = check_shape(shape)
    num_steps = checks.positive_int("num_steps", num_steps)
    init_key, noise_key = jax.random.split(key)
    x_T = jax.random.normal(init_key, shape, dtype)
    noises = _draw_noises(noise_key, num_steps, shape, dtype)
    if noises is None:  # step i's own draw, as the loop makes it
        per_step = lambda i: jax.random.normal(jax.random.fold_in(noise_key, i), shape, dtype)  # noqa: E731
        noises = jax.vmap(per_step)(jnp.arange(num_steps))
    return x_T, noises
