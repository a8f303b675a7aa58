"""EDM samplers over a denoiser: Euler and Heun (Karras et al. 2022).

Karras, Aittala, Aila & Laine (2022), "Elucidating the design space of diffusion-based
generative models". The data are noised as ``x = x_0 + sigma eps`` (variance exploding,
``s(t) = 1``, ``sigma(t) = t``), and the probability flow ODE reads (eq. 4 / Algorithm 1)

    dx / dsigma = (x - D(x, sigma)) / sigma,

with ``D(x, sigma) ~ E[x_0 | x]`` the denoiser. Both samplers start from
``x_0 = sigmas[0] * z`` and step through the decreasing noise levels ``sigmas`` (e.g.
:func:`genjax.diffusion.schedules.karras_sigmas`, ending in 0):

* :func:`euler_sample` -- the explicit Euler method, one denoiser call per step;
* :func:`heun_sample` -- Algorithm 2: optional "churn" (add noise to raise ``sigma_i`` to
  ``sigma_hat = (1 + gamma_i) sigma_i``), an Euler step, and Heun's second-order correction
  except on the step into ``sigma = 0`` -- ``2N - 1`` denoiser calls for ``N`` steps.

``denoise_fn(x, sigma)`` takes ``x: (batch, ...)`` and ``sigma: (batch,)`` and returns the
denoised ``(batch, ...)`` -- a preconditioned network (:func:`genjax.diffusion.loss.
edm_precondition`) or the exact :func:`genjax.diffusion.analytic.analytic_denoiser`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from genjax.diffusion.sample import _call_model, _check_noises, _check_shape, _check_x

__all__ = ["euler_sample", "euler_sample_from_noise", "heun_sample", "heun_sample_from_noise"]

DenoiseFn = Callable[[jax.Array, jax.Array], jax.Array]


def _check_sigmas(sigmas: Any, dtype: Any) -> jax.Array:
    sigmas = jnp.asarray(sigmas)
    if sigmas.ndim != 1 or sigmas.shape[0] < 2:
        raise ValueError(f"sigmas must have shape (num_steps + 1,) >= (2,), got {sigmas.shape}")
    return sigmas.astype(dtype)


def _ode_direction(denoise_fn: DenoiseFn, x: jax.Array, sigma: jax.Array) -> jax.Array:
    # d = (x - D(x, sigma)) / sigma                     (Karras et al. 2022, Alg. 2, line 8)
    return (x - _call_model(denoise_fn, x, sigma, "denoise_fn")) / sigma


@functools.partial(jax.jit, static_argnames=("denoise_fn",))
def euler_sample_from_noise(denoise_fn: DenoiseFn, x_T: jax.Array, sigmas: jax.Array) -> jax.Array:
    """Euler steps ``x <- x + (sigma_{i+1} - sigma_i) (x - D(x, sigma_i)) / sigma_i``.

    Args:
      denoise_fn: the denoiser (static).
      x_T: ``(batch, ...)`` the starting state, ``sigmas[0] * z``.
      sigmas: ``(N + 1,)`` decreasing noise levels, ``sigmas[i] > 0`` for ``i < N``.

    Returns:
      ``(batch, ...)`` samples.
    """
    x_T = _check_x(x_T)
    sigmas = _check_sigmas(sigmas, x_T.dtype)

    def step(x, s):
        s_cur, s_next = s
        return x + (s_next - s_cur) * _ode_direction(denoise_fn, x, s_cur), None

    x, _ = jax.lax.scan(step, x_T, (sigmas[:-1], sigmas[1:]))
    return x


@functools.partial(jax.jit, static_argnames=("denoise_fn", "shape", "dtype"))
def euler_sample(
    key: jax.Array,
    denoise_fn: DenoiseFn,
    shape: tuple[int, ...],
    sigmas: jax.Array,
    *,
    dtype: Any = jnp.float32,
) -> jax.Array:
    """Euler sampling of the EDM probability flow ODE (Karras et al. 2022, eq. 4).

    Args:
      key: PRNG key (draws ``x_T = sigmas[0] z``).
      denoise_fn: ``denoise_fn(x, sigma)`` (static).
      shape: ``(batch, ...)`` (static).
      sigmas: ``(N + 1,)`` decreasing noise levels ending in 0.
      dtype: floating dtype of the samples.

    Returns:
      ``shape`` samples.
    """
    shape = _check_shape(shape)
    sigmas = _check_sigmas(sigmas, dtype)
    x_T = sigmas[0] * jax.random.normal(key, shape, dtype)
    return euler_sample_from_noise(denoise_fn, x_T, sigmas)


def _check_churn(s_churn: float, s_tmin: float, s_tmax: float, s_noise: float) -> None:
    if not (math.isfinite(s_churn) and s_churn >= 0):
        raise ValueError(f"s_churn must be finite and >= 0, got {s_churn!r}")
    if not (s_tmin >= 0 and s_tmax >= s_tmin):
        raise ValueError(f"need 0 <= s_tmin <= s_tmax, got s_tmin={s_tmin!r}, s_tmax={s_tmax!r}")
    if not (math.isfinite(s_noise) and s_noise >= 0):
        raise ValueError(f"s_noise must be finite and >= 0, got {s_noise!r}")


@functools.partial(
    jax.jit, static_argnames=("denoise_fn", "s_churn", "s_tmin", "s_tmax", "s_noise")
)
def heun_sample_from_noise(
    denoise_fn: DenoiseFn,
    x_T: jax.Array,
    noises: jax.Array | None,
    sigmas: jax.Array,
    *,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = math.inf,
    s_noise: float = 1.0,
) -> jax.Array:
    """Karras et al. (2022), Algorithm 2, on given noise.

    Args:
      denoise_fn: the denoiser (static).
      x_T: ``(batch, ...)`` the starting state, ``sigmas[0] * z``.
      noises: ``(N, batch, ...)`` standard normal, ``noises[i]`` for the churn of step i;
        may be ``None`` when ``s_churn = 0``.
      sigmas: ``(N + 1,)`` decreasing noise levels.
      s_churn, s_tmin, s_tmax, s_noise: Algorithm 2's stochasticity (static).

    Returns:
      ``(batch, ...)`` samples.
    """
    _check_churn(s_churn, s_tmin, s_tmax, s_noise)
    x_T = _check_x(x_T)
    sigmas = _check_sigmas(sigmas, x_T.dtype)
    n = sigmas.shape[0] - 1
    if noises is None:
        if s_churn != 0.0:
            raise ValueError("noises must be given when s_churn > 0")
        noises = jnp.zeros((n, *x_T.shape), x_T.dtype)
    noises = _check_noises(noises, x_T, n)
    gamma_max = min(s_churn / n, math.sqrt(2.0) - 1.0)  # Alg. 2, line 5

    def step(x, inputs):
        s_cur, s_next, z = inputs
        in_range = (s_cur >= s_tmin) & (s_cur <= s_tmax)
        gamma = jnp.where(in_range, gamma_max, 0.0).astype(x.dtype)  # line 5
        s_hat = s_cur * (1.0 + gamma)  # line 6
        # line 7; sqrt(s_hat^2 - s^2) written as s sqrt(gamma (2 + gamma)): exactly 0 at
        # gamma = 0 (a fused multiply-add may leave s_hat^2 - s^2 a hair below 0).
        x_hat = x + s_cur * jnp.sqrt(gamma * (2.0 + gamma)) * s_noise * z
        d = _ode_direction(denoise_fn, x_hat, s_hat)  # line 8
        x_euler = x_hat + (s_next - s_hat) * d  # line 8

        def correct(_):  # lines 9-11: Heun's correction, skipped when sigma_{i+1} = 0
            d_next = _ode_direction(denoise_fn, x_euler, s_next)
            return x_hat + (s_next - s_hat) * (0.5 * d + 0.5 * d_next)

        x_next = jax.lax.cond(s_next > 0, correct, lambda _: x_euler, None)
        return x_next, None

    x, _ = jax.lax.scan(step, x_T, (sigmas[:-1], sigmas[1:], noises))
    return x


@functools.partial(
    jax.jit,
    static_argnames=("denoise_fn", "shape", "s_churn", "s_tmin", "s_tmax", "s_noise", "dtype"),
)
def heun_sample(
    key: jax.Array,
    denoise_fn: DenoiseFn,
    shape: tuple[int, ...],
    sigmas: jax.Array,
    *,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = math.inf,
    s_noise: float = 1.0,
    dtype: Any = jnp.float32,
) -> jax.Array:
    """Heun sampling with optional churn, Karras et al. (2022), Algorithm 2.

        gamma_i = min(S_churn / N, sqrt(2) - 1) if S_tmin <= sigma_i <= S_tmax else 0
        sigma_hat = (1 + gamma_i) sigma_i
        x_hat = x_i + sqrt(sigma_hat^2 - sigma_i^2) S_noise z
        d = (x_hat - D(x_hat, sigma_hat)) / sigma_hat
        x_{i+1} = x_hat + (sigma_{i+1} - sigma_hat) d
        if sigma_{i+1} != 0:  d' = (x_{i+1} - D(x_{i+1}, sigma_{i+1})) / sigma_{i+1}
                              x_{i+1} = x_hat + (sigma_{i+1} - sigma_hat) (d + d') / 2

    Args:
      key: PRNG key.
      denoise_fn: ``denoise_fn(x, sigma)`` (static).
      shape: ``(batch, ...)`` (static).
      sigmas: ``(N + 1,)`` decreasing noise levels ending in 0.
      s_churn: total churn >= 0 (0: the deterministic Heun ODE solver).
      s_tmin, s_tmax: the noise-level window where churn applies.
      s_noise: scale of the added noise.
      dtype: floating dtype of the samples.

    Returns:
      ``shape`` samples.

    References:
      Karras, Aittala, Aila & Laine (2022), "Elucidating the design space of
      diffusion-based generative models", NeurIPS, Algorithm 2.
    """
    shape = _check_shape(shape)
    _check_churn(s_churn, s_tmin, s_tmax, s_noise)
    sigmas = _check_sigmas(sigmas, dtype)
    init_key, noise_key = jax.random.split(key)
    x_T = sigmas[0] * jax.random.normal(init_key, shape, dtype)
    n = sigmas.shape[0] - 1
    noises = jax.random.normal(noise_key, (n, *shape), dtype) if s_churn > 0 else None
    return heun_sample_from_noise(
        denoise_fn,
        x_T,
        noises,
        sigmas,
        s_churn=s_churn,
        s_tmin=s_tmin,
        s_tmax=s_tmax,
        s_noise=s_noise,
    )
