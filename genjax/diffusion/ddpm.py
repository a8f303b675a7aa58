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


#: ``ddpm_sample`` draws its noise in chunks of whole steps holding about this many numbers
#: (1 MB of float32: a chunk and its Threefry intermediates stay in cache), one chunk before
#: each run of that many loop steps (:func:`noise_chunk_steps`).
NOISE_CHUNK_NUMBERS = 1 << 18


def noise_chunk_steps(shape: tuple[int, ...], num_steps: int) -> int:
    """``B``, the number of steps whose noise ``ddpm_sample`` draws in one call.

    ``B = clip(NOISE_CHUNK_NUMBERS // prod(shape), 1, num_steps)``: 32 for the
    ``(4096, 2)`` ring, 1 for a batch of 64 RGB 64x64 images.
    """
    size = 1
    for n in shape:
        size *= n
    return max(1, min(num_steps, NOISE_CHUNK_NUMBERS // size))


def _draw_chunk(
    noise_key: jax.Array, c: Any, steps: int, shape: tuple[int, ...], dtype: Any
) -> jax.Array:
    """Chunk ``c`` of the keyed sampler's noise: ``normal(fold_in(noise_key, c), (B, *shape))``.

    With Threefry's original bit layout -- each Threefry-2x32 block gives two draws (JAX's
    default "partitionable" layout hashes one block per draw) -- fixed here whatever the
    global ``jax_threefry_partitionable`` setting, so the same key gives the same numbers.
    Why chunks: the random numbers were over half of a DDPM step's cost on CPU. Drawn all
    at once (``(T, *shape)``, 33 MB for the 4096-point ring) Threefry's rounds stream that
    array through memory five times; drawn one step at a time, each draw pays the
    generator's loop overhead. A cache-sized chunk measured 3x cheaper than either (39 vs
    118 ms of CPU time for the ring's 8.2M numbers, 2-core CPU).
    """
    with jax.threefry_partitionable(False):
        return jax.random.normal(jax.random.fold_in(noise_key, c), (steps, *shape), dtype)


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
    None, row ``i % B`` of chunk ``i // B`` drawn from ``noise_key`` (:func:`_draw_chunk`,
    ``B = noise_chunk_steps``) just before the chunk's steps run: an outer loop over the
    chunks around an inner loop over their steps (no ``T`` noise arrays held in memory)."""
    num_t = schedule.num_steps
    ts = jnp.arange(num_t - 1, -1, -1, dtype=jnp.int32)  # (T,): T-1, ..., 0
    coefs = tuple(c[::-1] for c in _ddpm_coefficients(schedule, x_T.dtype, variance))

    def body(x: jax.Array, step: tuple[Any, ...]) -> tuple[jax.Array, Any]:
        t, c, z = step
        x, _, _ = _ddpm_update(model, x, t, c, z, clip_x0)
        return x, (x if return_trajectory else None)

    if noises is not None:
        x0, trajectory = jax.lax.scan(body, x_T, (ts, coefs, noises))
        return (x0, trajectory) if return_trajectory else x0

    b = noise_chunk_steps(x_T.shape, num_t)
    full = num_t // b  # chunks of b steps; the last num_t - full * b steps use chunk `full`

    def chunk(x: jax.Array, inputs: tuple[Any, ...]) -> tuple[jax.Array, Any]:
        c, steps = inputs
        z = _draw_chunk(noise_key, c, b, x.shape, x.dtype)  # (b, *shape)
        return jax.lax.scan(body, x, (*steps, z))

    def head(a: jax.Array) -> jax.Array:  # (T, ...) -> (full, b, ...): the whole chunks
        return a[: full * b].reshape(full, b, *a.shape[1:])

    steps = (ts, coefs)
    x0, trajectory = jax.lax.scan(
        chunk, x_T, (jnp.arange(full, dtype=jnp.int32), jax.tree_util.tree_map(head, steps))
    )
    if return_trajectory:
        trajectory = trajectory.reshape(full * b, *x_T.shape)
    rest = num_t - full * b
    if rest:  # the last chunk's first `rest` rows
        z = _draw_chunk(noise_key, full, b, x_T.shape, x_T.dtype)[:rest]
        tail = jax.tree_util.tree_map(lambda a: a[full * b :], steps)
        x0, more = jax.lax.scan(body, x0, (*tail, z))
        if return_trajectory:
            trajectory = jnp.concatenate([trajectory, more], axis=0)
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
    and the noise of loop step ``i`` (at ``t = T-1-i``) is row ``i % B`` of chunk ``i // B``,
    ``normal(fold_in(noise_key, i // B), (B, *shape))`` with Threefry's original bit layout
    (``jax.threefry_partitionable(False)``: two draws per Threefry block, whatever the global
    setting), each chunk drawn just before its ``B = noise_chunk_steps(shape, T)`` steps
    (about 2^18 numbers: cache-sized, see :func:`_draw_chunk`)
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
    return _ddpm_loop(model, x_T, schedule, None, noise_key, variance, clip_x0,
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
    b = noise_chunk_steps(shape, num_steps)
    chunks = -(-num_steps // b)  # ceil(T / B)
    draw = lambda c: _draw_chunk(noise_key, c, b, shape, dtype)  # noqa: E731
    noises = jax.vmap(draw)(jnp.arange(chunks, dtype=jnp.int32))  # (chunks, B, *shape)
    return x_T, noises.reshape(chunks * b, *shape)[:num_steps]
