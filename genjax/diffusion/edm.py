"""EDM samplers over a denoiser: Euler and Heun (Karras et al. 2022).

Karras, Aittala, Aila & Laine (2022), "Elucidating the design space of diffusion-based
generative models". The data are noised as ``x = x_0 + sigma eps`` (variance exploding,
``s(t) = 1``, ``sigma(t) = t``), and the probability flow ODE reads (eq. 4 / Algorithm 1)

    dx / dsigma = (x - D(x, sigma)) / sigma,

with ``D(x, sigma) ~ E[x_0 | x]`` the denoiser. Both samplers start from
``x_0 = sigmas[0] * z`` and step through the decreasing noise levels ``sigmas`` (e.g.
:func:`genjax.diffusion.schedules.karras_sigmas`, ending in 0):

* :func:`euler_sample` -- the explicit Euler method, one denoiser call per step (order
  :data:`EULER_ORDER`);
* :func:`heun_sample` -- Algorithm 2: optional "churn" (add noise to raise ``sigma_i`` to
  ``sigma_hat = (1 + gamma_i) sigma_i``), an Euler step, and Heun's second-order correction
  except on the step into ``sigma = 0`` -- ``2N - 1`` denoiser calls for ``N`` steps (order
  :data:`HEUN_ORDER` without churn).

:func:`euler_step` and :func:`heun_step` are their steps, ``(model, state, noise) ->
(state, info)`` over an :class:`EDMState`.

The model is the denoiser, a callable pytree ``model(x, sigma) -> D`` with ``x: (batch, ...)``
and ``sigma: (batch,)``, returning ``(batch, ...)`` -- a preconditioned network
(:func:`genjax.diffusion.edm_precondition`) or the exact
:func:`genjax.diffusion.analytic_denoiser`. It is a traced argument of the compiled samplers
(new weights of the same shapes reuse the program); a plain Python function is static and
compiles anew per function object.

References:
  Karras, Aittala, Aila & Laine (2022), "Elucidating the design space of diffusion-based
  generative models", NeurIPS, Algorithms 1-2.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.diffusion._common import (
    StepInfo,
    call_model,
    check_noises,
    check_shape,
    check_x,
    evals,
)
from genjax.model import Model, model_jit

__all__ = [
    "EULER_ORDER",
    "HEUN_ORDER",
    "EDMState",
    "euler_step",
    "heun_step",
    "euler_sample",
    "euler_sample_from_noise",
    "heun_sample",
    "heun_sample_from_noise",
]

EULER_ORDER = 1
"""Global convergence order of :func:`euler_sample` (measured in tests/diffusion/test_orders.py)."""
HEUN_ORDER = 2
"""Global convergence order of :func:`heun_sample` without churn (Heun's method on every
step but the last; measured in tests/diffusion/test_orders.py)."""


class EDMState(NamedTuple):
    """The state of an EDM sampler step.

    Attributes:
      x: ``(batch, ...)`` the sample at noise level ``sigma``.
      sigma: ``()`` the noise level of ``x``.
    """

    x: jax.Array
    sigma: jax.Array


def _check_sigmas(sigmas: Any, dtype: Any) -> jax.Array:
    # (N + 1,): finite, non-negative, decreasing, exactly one trailing 0 -- checked when
    # concrete (checks.sigma_sequence); a traced sequence is the caller's responsibility.
    sigmas = jnp.asarray(sigmas)
    checks.sigma_sequence("sigmas", sigmas)
    return sigmas.astype(dtype)


def _precheck_sigmas(args: dict[str, Any]) -> None:
    # Before compiling (checks.before_jit): inside the program sigmas is a tracer. The churn
    # options first, as the compiled function checks them (its messages come in that order).
    if "s_churn" in args:
        _check_churn(args["s_churn"], args["s_tmin"], args["s_tmax"], args["s_noise"])
    checks.sigma_sequence("sigmas", args["sigmas"])


def _check_step_sigmas(sigma: Any, sigma_next: Any) -> None:
    # One step sigma -> sigma_next needs sigma > 0 and 0 <= sigma_next <= sigma (concrete).
    checks.positive("state.sigma", sigma)
    checks.nonnegative("sigma_next", sigma_next)
    if checks.is_concrete((sigma, sigma_next)) and float(sigma_next) > float(sigma):
        raise ValueError(
            f"sigma_next must be <= state.sigma ({float(sigma):g}), got {float(sigma_next):g}"
        )


def _euler_update(
    model: Model, x: jax.Array, sigma: jax.Array, sigma_next: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``x + (sigma' - sigma) d``, ``d = (x - D(x, sigma)) / sigma``; returns ``(x', D, d)``."""
    denoised = call_model(model, x, sigma)
    d = (x - denoised) / sigma  # Karras et al. 2022, Alg. 2, line 8
    return x + (sigma_next - sigma) * d, denoised, d


def euler_step(
    model: Model,
    state: EDMState,
    noise: jax.Array | None = None,
    *,
    sigma_next: float | jax.Array,
) -> tuple[EDMState, StepInfo]:
    """One Euler step of the EDM probability-flow ODE, ``sigma -> sigma_next``.

        x' = x + (sigma_next - sigma) (x - D(x, sigma)) / sigma

    Args:
      model: the denoiser, a callable pytree ``model(x, sigma) -> D`` (``x: (batch, ...)``,
        ``sigma: (batch,)``).
      state: :class:`EDMState` ``(x (batch, ...), sigma ())`` with ``sigma > 0``.
      noise: unused (the step is deterministic); ``None``.
      sigma_next: ``()`` the next noise level, ``0 <= sigma_next < sigma``.

    Returns:
      ``(EDMState(x', sigma_next), StepInfo(D(x, sigma), D(x, sigma), num_evals=1))``.

    Example:
      >>> target = genjax.targets.mixture_1d([1.0], [0.0], [1.0])
      >>> model = analytic_denoiser(target)  # D(x, s) = x / (1 + s^2)
      >>> state = EDMState(jnp.ones((1, 1)), jnp.asarray(1.0))
      >>> state, info = euler_step(model, state, sigma_next=0.0)
      >>> state.x.tolist()  # x + (0 - 1) (x - D) / 1 = D(x, 1)
      [[0.5]]
    """
    del noise
    x, sigma = state
    _check_step_sigmas(sigma, sigma_next)
    sigma = jnp.asarray(sigma, x.dtype)
    sigma_next = jnp.asarray(sigma_next, x.dtype)
    x_next, denoised, _ = _euler_update(model, x, sigma, sigma_next)
    return EDMState(x_next, sigma_next), StepInfo(denoised, denoised, evals(1))


def _heun_update(
    model: Model,
    x: jax.Array,
    sigma: jax.Array,
    sigma_next: jax.Array,
    z: jax.Array,
    gamma: jax.Array,
    s_noise: float,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Algorithm 2, lines 5-11, for one step; returns ``(x', D(x_hat, sigma_hat), nfe)``."""
    s_hat = sigma * (1.0 + gamma)  # line 6
    # line 7; sqrt(s_hat^2 - s^2) written as s sqrt(gamma (2 + gamma)): exactly 0 at
    # gamma = 0 (a fused multiply-add may leave s_hat^2 - s^2 a hair below 0).
    x_hat = x + sigma * jnp.sqrt(gamma * (2.0 + gamma)) * s_noise * z
    x_euler, denoised, d = _euler_update(model, x_hat, s_hat, sigma_next)  # line 8

    def correct(_):  # lines 9-11: Heun's correction, skipped when sigma_{i+1} = 0
        d_next = (x_euler - call_model(model, x_euler, sigma_next)) / sigma_next
        return x_hat + (sigma_next - s_hat) * (0.5 * d + 0.5 * d_next)

    x_next = jax.lax.cond(sigma_next > 0, correct, lambda _: x_euler, None)
    return x_next, denoised, evals(1) + (sigma_next > 0).astype(jnp.int32)


def heun_step(
    model: Model,
    state: EDMState,
    noise: jax.Array | None,
    *,
    sigma_next: float | jax.Array,
    gamma: float | jax.Array = 0.0,
    s_noise: float = 1.0,
) -> tuple[EDMState, StepInfo]:
    """One step of Karras et al. (2022), Algorithm 2 (lines 5-11), ``sigma -> sigma_next``.

        sigma_hat = (1 + gamma) sigma
        x_hat = x + sqrt(sigma_hat^2 - sigma^2) s_noise z
        d = (x_hat - D(x_hat, sigma_hat)) / sigma_hat;   x' = x_hat + (sigma_next - sigma_hat) d
        if sigma_next != 0:  d' = (x' - D(x', sigma_next)) / sigma_next
                             x' = x_hat + (sigma_next - sigma_hat) (d + d') / 2

    Args:
      model: the denoiser, a callable pytree ``model(x, sigma) -> D``.
      state: :class:`EDMState` ``(x (batch, ...), sigma ())``, ``sigma > 0``.
      noise: ``(batch, ...)`` standard normal ``z`` of the churn; may be ``None`` when
        ``gamma = 0``.
      sigma_next: ``()`` the next noise level, ``0 <= sigma_next < sigma``.
      gamma: ``()`` this step's churn ``gamma_i >= 0`` (0: the deterministic Heun step).
      s_noise: scale of the added noise.

    Returns:
      ``(EDMState(x', sigma_next), StepInfo(D(x_hat, sigma_hat), same, num_evals))`` with
      ``num_evals`` 2, or 1 on the step into ``sigma_next = 0``.

    Example:
      >>> model = analytic_denoiser(genjax.targets.mixture_1d([1.0], [0.0], [1.0]))
      >>> state, info = heun_step(model, EDMState(jnp.ones((1, 1)), jnp.asarray(1.0)), None,
      ...                         sigma_next=0.0)
      >>> state.x.tolist()  # the last step is Euler's (no correction at sigma = 0)
      [[0.5]]
    """
    x, sigma = state
    z = jnp.zeros_like(x) if noise is None else jnp.asarray(noise, x.dtype)
    if noise is None and checks.is_concrete(gamma) and float(gamma) != 0.0:
        raise ValueError("noise must be given when gamma > 0")
    checks.nonnegative("gamma", gamma)
    _check_step_sigmas(sigma, sigma_next)
    sigma = jnp.asarray(sigma, x.dtype)
    sigma_next = jnp.asarray(sigma_next, x.dtype)
    gamma = jnp.asarray(gamma, x.dtype)
    x_next, denoised, nfe = _heun_update(model, x, sigma, sigma_next, z, gamma, s_noise)
    return EDMState(x_next, sigma_next), StepInfo(denoised, denoised, nfe)


def _euler_loop(model: Model, x_T: jax.Array, sigmas: jax.Array, return_trajectory: bool):
    def body(x, s):
        x, _, _ = _euler_update(model, x, *s)
        return x, (x if return_trajectory else None)

    x, trajectory = jax.lax.scan(body, x_T, (sigmas[:-1], sigmas[1:]))
    return (x, trajectory) if return_trajectory else x


@checks.before_jit(_precheck_sigmas)
@functools.partial(model_jit, static_argnames=("return_trajectory",))
def euler_sample_from_noise(
    model: Model, x_T: jax.Array, sigmas: jax.Array, *, return_trajectory: bool = False
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Euler steps ``x <- x + (sigma_{i+1} - sigma_i) (x - D(x, sigma_i)) / sigma_i``.

    Args:
      model: the denoiser ``model(x, sigma) -> D`` (traced; a plain function is static).
      x_T: ``(batch, ...)`` the starting state, ``sigmas[0] * z`` (its only noise).
      sigmas: ``(N + 1,)`` decreasing noise levels, ``sigmas[i] > 0`` for ``i < N``, and
        exactly one trailing 0 (checked when concrete, see ``checks.sigma_sequence``).
      return_trajectory: also return the ``(N, batch, ...)`` states after every step.

    Returns:
      ``(batch, ...)`` samples (and the trajectory).

    Example:
      >>> model = analytic_denoiser(genjax.targets.mixture_1d([1.0], [3.0], [0.1]))
      >>> sigmas = karras_sigmas(10)
      >>> x = euler_sample_from_noise(model, sigmas[0] * jnp.ones((4, 1)), sigmas)
      >>> bool(jnp.all(jnp.abs(x - 3.0) < 0.5))  # the target's one mode
      True
    """
    x_T = check_x("x_T", x_T)
    sigmas = _check_sigmas(sigmas, x_T.dtype)
    return _euler_loop(model, x_T, sigmas, return_trajectory)


@checks.before_jit(_precheck_sigmas)
@functools.partial(model_jit, static_argnames=("shape", "dtype", "return_trajectory"))
def euler_sample(
    key: jax.Array,
    model: Model,
    shape: tuple[int, ...],
    sigmas: jax.Array,
    *,
    dtype: Any = jnp.float32,
    return_trajectory: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Euler sampling of the EDM probability flow ODE (Karras et al. 2022, eq. 4).

    Args:
      key: PRNG key (draws ``x_T = sigmas[0] normal(key, shape)``).
      model: the denoiser, a callable pytree ``model(x, sigma) -> D`` with ``x: (batch, ...)``,
        ``sigma: (batch,)`` (traced: new weights do not recompile; a plain function is static
        and compiles once per function object).
      shape: ``(batch, ...)`` (static).
      sigmas: ``(N + 1,)`` decreasing noise levels ending in exactly one 0 (as
        ``karras_sigmas`` returns them; checked when concrete).
      dtype: floating dtype of the samples.
      return_trajectory: also return the ``(N, *shape)`` states after every step.

    Returns:
      ``shape`` samples (and the trajectory).

    Example:
      >>> model = analytic_denoiser(genjax.targets.ring())
      >>> euler_sample(jax.random.key(0), model, (512, 2), karras_sigmas(10)).shape
      (512, 2)
    """
    shape = check_shape(shape)
    sigmas = _check_sigmas(sigmas, dtype)
    x_T = sigmas[0] * jax.random.normal(key, shape, dtype)
    return _euler_loop(model, x_T, sigmas, return_trajectory)


def _check_churn(s_churn: float, s_tmin: float, s_tmax: float, s_noise: float) -> None:
    checks.nonnegative("s_churn", s_churn)
    checks.nonnegative("s_tmin", s_tmin)
    if not s_tmax >= s_tmin:
        raise ValueError(f"s_tmax must be >= s_tmin={s_tmin!r}, got {s_tmax!r}")
    checks.nonnegative("s_noise", s_noise)


def _heun_loop(model, x_T, noises, sigmas, s_churn, s_tmin, s_tmax, s_noise, return_trajectory):
    n = sigmas.shape[0] - 1
    gamma_max = min(s_churn / n, math.sqrt(2.0) - 1.0)  # Alg. 2, line 5

    def body(x, inputs):
        s_cur, s_next, z = inputs
        in_window = (s_cur >= s_tmin) & (s_cur <= s_tmax)
        gamma = jnp.where(in_window, gamma_max, 0.0).astype(x.dtype)  # line 5
        if z is None:  # no churn: the noise term is exactly 0
            z = jnp.zeros((), x.dtype)
        x, _, _ = _heun_update(model, x, s_cur, s_next, z, gamma, s_noise)
        return x, (x if return_trajectory else None)

    x, trajectory = jax.lax.scan(body, x_T, (sigmas[:-1], sigmas[1:], noises))
    return (x, trajectory) if return_trajectory else x


@checks.before_jit(_precheck_sigmas)
@functools.partial(
    model_jit, static_argnames=("s_churn", "s_tmin", "s_tmax", "s_noise", "return_trajectory")
)
def heun_sample_from_noise(
    model: Model,
    x_T: jax.Array,
    noises: jax.Array | None,
    sigmas: jax.Array,
    *,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = math.inf,
    s_noise: float = 1.0,
    return_trajectory: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Karras et al. (2022), Algorithm 2, on given noise.

    Args:
      model: the denoiser ``model(x, sigma) -> D`` (traced; a plain function is static).
      x_T: ``(batch, ...)`` the starting state, ``sigmas[0] * z``.
      noises: ``(N, batch, ...)`` standard normal, ``noises[i]`` for the churn of step i;
        may be ``None`` when ``s_churn = 0``.
      sigmas: ``(N + 1,)`` decreasing noise levels ending in exactly one 0 (checked when
        concrete).
      s_churn, s_tmin, s_tmax, s_noise: Algorithm 2's stochasticity (static).
      return_trajectory: also return the ``(N, batch, ...)`` states after every step.

    Returns:
      ``(batch, ...)`` samples (and the trajectory).

    Example:
      >>> model = analytic_denoiser(genjax.targets.mixture_1d([1.0], [3.0], [0.1]))
      >>> sigmas = karras_sigmas(10)
      >>> x = heun_sample_from_noise(model, sigmas[0] * jnp.ones((4, 1)), None, sigmas)
      >>> bool(jnp.all(jnp.abs(x - 3.0) < 0.5))  # the target's one mode
      True
    """
    _check_churn(s_churn, s_tmin, s_tmax, s_noise)
    x_T = check_x("x_T", x_T)
    sigmas = _check_sigmas(sigmas, x_T.dtype)
    if noises is None:
        if s_churn != 0.0:
            raise ValueError("noises must be given when s_churn > 0")
    else:
        noises = check_noises("noises", noises, x_T, sigmas.shape[0] - 1)
    return _heun_loop(model, x_T, noises, sigmas, s_churn, s_tmin, s_tmax, s_noise,
                      return_trajectory)


@checks.before_jit(_precheck_sigmas)
@functools.partial(
    model_jit,
    static_argnames=("shape", "s_churn", "s_tmin", "s_tmax", "s_noise", "dtype",
                     "return_trajectory"),
)
def heun_sample(
    key: jax.Array,
    model: Model,
    shape: tuple[int, ...],
    sigmas: jax.Array,
    *,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = math.inf,
    s_noise: float = 1.0,
    dtype: Any = jnp.float32,
    return_trajectory: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Heun sampling with optional churn, Karras et al. (2022), Algorithm 2.

        gamma_i = min(S_churn / N, sqrt(2) - 1) if S_tmin <= sigma_i <= S_tmax else 0
        then :func:`heun_step` from sigma_i to sigma_{i+1} with gamma_i

    With ``init_key, noise_key = jax.random.split(key)``: ``x_T = sigmas[0]
    normal(init_key, shape)`` and, when ``s_churn > 0``, ``noises = normal(noise_key,
    (N, *shape))`` for :func:`heun_sample_from_noise`.

    Args:
      key: PRNG key.
      model: the denoiser, a callable pytree ``model(x, sigma) -> D`` with ``x: (batch, ...)``,
        ``sigma: (batch,)`` (traced: new weights do not recompile; a plain function is static
        and compiles once per function object).
      shape: ``(batch, ...)`` (static).
      sigmas: ``(N + 1,)`` decreasing noise levels ending in exactly one 0 (as
        ``karras_sigmas`` returns them; checked when concrete).
      s_churn: total churn >= 0 (0: the deterministic Heun ODE solver).
      s_tmin, s_tmax: the noise-level window where churn applies.
      s_noise: scale of the added noise.
      dtype: floating dtype of the samples.
      return_trajectory: also return the ``(N, *shape)`` states after every step.

    Returns:
      ``shape`` samples (and the trajectory).

    Example:
      >>> model = analytic_denoiser(genjax.targets.mixture_1d([1.0], [3.0], [0.1]))
      >>> x = heun_sample(jax.random.key(0), model, (4, 1), karras_sigmas(10))
      >>> bool(jnp.all(jnp.abs(x - 3.0) < 0.5))  # the target's one mode
      True
    """
    shape = check_shape(shape)
    _check_churn(s_churn, s_tmin, s_tmax, s_noise)
    sigmas = _check_sigmas(sigmas, dtype)
    init_key, noise_key = jax.random.split(key)
    x_T = sigmas[0] * jax.random.normal(init_key, shape, dtype)
    n = sigmas.shape[0] - 1
    noises = jax.random.normal(noise_key, (n, *shape), dtype) if s_churn > 0 else None
    return _heun_loop(model, x_T, noises, sigmas, s_churn, s_tmin, s_tmax, s_noise,
                      return_trajectory)
