"""The forward (noising) process of a discrete variance-preserving diffusion.

With ``alpha_t = sqrt(alpha_bar_t)`` and ``sigma_t = sqrt(1 - alpha_bar_t)`` (see
:mod:`genjax.diffusion.schedules`), Ho et al. (2020), "Denoising diffusion probabilistic
models", give

    q(x_t | x_0) = N(alpha_t x_0, sigma_t^2 I)                                  (eq. 4)
    q(x_{t-1} | x_t, x_0) = N(mu_tilde(x_t, x_0), beta_tilde_t I)               (eqs. 6-7)
    mu_tilde = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x_0
               + sqrt(1 - beta_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) x_t
    beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t

with ``alpha_bar_{-1} = 1`` (so at ``t = 0`` the posterior is a point mass at ``x_0``).

A network may predict the noise ``eps``, the data ``x_0``, or the velocity
``v = alpha_t eps - sigma_t x_0`` (Salimans & Ho 2022, "Progressive distillation", sec. 4);
the conversions below map between them given ``x_t = alpha_t x_0 + sigma_t eps``, and
``eps_to_score`` gives the score ``grad log q(x_t) = -E[eps | x_t] / sigma_t``
(Vincent 2011; Song et al. 2021, eq. 7 of "Score-based generative modeling through SDEs").

Every function takes integer times ``t: (batch,)`` in ``[0, T)`` and data
``x: (batch, ...)``; the per-example coefficients are broadcast over the trailing axes. A
concrete ``t`` outside ``[0, T)`` raises ``ValueError``; a traced one cannot be read at trace
time (JAX would clamp its index), so under ``jit`` the range is the caller's to keep.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.diffusion._common import bcast
from genjax.diffusion.schedules import Schedule

__all__ = [
    "q_sample",
    "q_posterior",
    "eps_to_x0",
    "x0_to_eps",
    "v_to_eps",
    "eps_to_v",
    "v_to_x0",
    "x0_to_v",
    "eps_to_score",
    "score_to_eps",
]


def _check_t(t: jax.Array, x: jax.Array, schedule: Schedule) -> jax.Array:
    """``t``: integer times ``(batch,)`` in ``[0, T)``, one per example of ``x: (batch, ...)``.

    The range is checked when ``t`` is concrete; a traced ``t`` outside it would index the
    schedule out of bounds, which JAX clamps -- the caller's responsibility under ``jit``.
    """
    t = jnp.asarray(t)
    checks.shape("t", t, (x.shape[0] if jnp.ndim(x) else 1,))
    return checks.int_array_in_range("t", t, 0, schedule.num_steps)


def _coefs(schedule: Schedule, t: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    alpha = schedule.alpha(t).astype(x.dtype)  # (batch,)
    sigma = schedule.sigma(t).astype(x.dtype)  # (batch,)
    return bcast(alpha, x), bcast(sigma, x)


def q_sample(schedule: Schedule, x0: jax.Array, t: jax.Array, eps: jax.Array) -> jax.Array:
    """Draws ``x_t ~ q(x_t | x_0)`` given the noise (Ho et al. 2020, eq. 4).

        x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps

    Args:
      schedule: the noise schedule.
      x0: ``(batch, ...)`` clean data.
      t: ``(batch,)`` integer times in ``[0, T)``.
      eps: ``(batch, ...)`` standard normal noise, the shape of ``x0``.

    Returns:
      ``(batch, ...)`` noised data.

    Example:
      >>> s = from_betas(jnp.array([0.36]))  # alpha_bar_0 = 0.64
      >>> q_sample(s, jnp.ones((1, 2)), jnp.array([0]), jnp.zeros((1, 2))).tolist()  # sqrt(0.64) x0
      [[0.8, 0.8]]
    """
    x0, eps = jnp.asarray(x0), jnp.asarray(eps)
    checks.same_shape("eps", eps, "x0", x0)
    t = _check_t(t, x0, schedule)
    alpha, sigma = _coefs(schedule, t, x0)
    return alpha * x0 + sigma * eps  # eq. 4


def q_posterior(
    schedule: Schedule, x0: jax.Array, x_t: jax.Array, t: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The forward-process posterior ``q(x_{t-1} | x_t, x_0)`` (Ho et al. 2020, eqs. 6-7).

        mean = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x_0
               + sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) x_t      (eq. 7)
        beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t             (eq. 7)

    Both reverse-process variances of Ho et al. (2020, sec. 3.2) are returned: the
    posterior's ``beta_tilde_t`` (optimal when ``x_0`` is a point mass) and ``beta_t``
    (optimal for ``x_0 ~ N(0, I)``). ``alpha_bar_{-1} = 1``, so at ``t = 0`` the mean is
    ``x_0`` and ``beta_tilde_0 = 0``.

    Args:
      schedule: the noise schedule.
      x0: ``(batch, ...)`` clean data (or a prediction of it).
      x_t: ``(batch, ...)`` noised data at time t.
      t: ``(batch,)`` integer times in ``[0, T)``.

    Returns:
      ``(mean, beta_tilde_var, beta_var)``: ``mean: (batch, ...)``, and the two variances
      as per-example ``(batch,)`` arrays (the covariances are these times ``I``).
    """
    x0, x_t = jnp.asarray(x0), jnp.asarray(x_t)
    checks.same_shape("x_t", x_t, "x0", x0)
    t = _check_t(t, x0, schedule)
    prev = jnp.maximum(t - 1, 0)
    ab_prev = jnp.where(t > 0, schedule.alpha_bars[prev], 1.0)  # alpha_bar_{t-1}, (batch,)
    om_t = schedule.one_minus_alpha_bars[t]  # 1 - alpha_bar_t, without cancellation
    om_prev = jnp.where(t > 0, schedule.one_minus_alpha_bars[prev], 0.0)  # 1 - alpha_bar_{t-1}
    beta_t = schedule.betas[t]
    coef_x0 = jnp.sqrt(ab_prev) * beta_t / om_t  # eq. 7, first term
    coef_xt = jnp.sqrt(schedule.alphas[t]) * om_prev / om_t  # eq. 7, second
    mean = bcast(coef_x0.astype(x0.dtype), x0) * x0 + bcast(coef_xt.astype(x0.dtype), x0) * x_t
    beta_tilde = (om_prev / om_t * beta_t).astype(x0.dtype)  # eq. 7
    return mean, beta_tilde, beta_t.astype(x0.dtype)


def eps_to_x0(schedule: Schedule, x_t: jax.Array, t: jax.Array, eps: jax.Array) -> jax.Array:
    """``x_0 = (x_t - sigma_t eps) / alpha_t`` (Ho et al. 2020, eq. 15 rearranged).

    Singular where ``alpha_bar_t = 0`` (zero terminal SNR): there noise carries no
    information about ``x_0``.

    Args: ``x_t, eps: (batch, ...)``, ``t: (batch,)``. Returns ``(batch, ...)``.
    """
    checks.same_shape("eps", eps, "x_t", x_t)
    t = _check_t(t, x_t, schedule)
    alpha, sigma = _coefs(schedule, t, x_t)
    return (x_t - sigma * eps) / alpha


def x0_to_eps(schedule: Schedule, x_t: jax.Array, t: jax.Array, x0: jax.Array) -> jax.Array:
    """``eps = (x_t - alpha_t x_0) / sigma_t``.

    Args: ``x_t, x0: (batch, ...)``, ``t: (batch,)``. Returns ``(batch, ...)``.
    """
    checks.same_shape("x0", x0, "x_t", x_t)
    t = _check_t(t, x_t, schedule)
    alpha, sigma = _coefs(schedule, t, x_t)
    return (x_t - alpha * x0) / sigma


def v_to_eps(schedule: Schedule, x_t: jax.Array, t: jax.Array, v: jax.Array) -> jax.Array:
    """``eps = sigma_t x_t + alpha_t v`` for ``v = alpha_t eps - sigma_t x_0``.

    (``sigma x_t + alpha v = sigma alpha x_0 + sigma^2 eps + alpha^2 eps - alpha sigma x_0
    = eps`` since ``alpha^2 + sigma^2 = 1``.)

    Args: ``x_t, v: (batch, ...)``, ``t: (batch,)``. Returns ``(batch, ...)``.
    """
    checks.same_shape("v", v, "x_t", x_t)
    t = _check_t(t, x_t, schedule)
    alpha, sigma = _coefs(schedule, t, x_t)
    return sigma * x_t + alpha * v


def v_to_x0(schedule: Schedule, x_t: jax.Array, t: jax.Array, v: jax.Array) -> jax.Array:
    """``x_0 = alpha_t x_t - sigma_t v`` (Salimans & Ho 2022, sec. 4); finite at SNR 0.

    Args: ``x_t, v: (batch, ...)``, ``t: (batch,)``. Returns ``(batch, ...)``.
    """
    checks.same_shape("v", v, "x_t", x_t)
    t = _check_t(t, x_t, schedule)
    alpha, sigma = _coefs(schedule, t, x_t)
    return alpha * x_t - sigma * v


def eps_to_v(schedule: Schedule, x_t: jax.Array, t: jax.Array, eps: jax.Array) -> jax.Array:
    """``v = alpha_t eps - sigma_t x_0 = (eps - sigma_t x_t) / alpha_t``.

    Singular where ``alpha_bar_t = 0``. Training targets are built from clean data as
    ``alpha eps - sigma x0`` directly (as :func:`genjax.diffusion.loss` does).

    Args: ``x_t, eps: (batch, ...)``, ``t: (batch,)``. Returns ``(batch, ...)``.
    """
    checks.same_shape("eps", eps, "x_t", x_t)
    t = _check_t(t, x_t, schedule)
    alpha, sigma = _coefs(schedule, t, x_t)
    return (eps - sigma * x_t) / alpha


def x0_to_v(schedule: Schedule, x_t: jax.Array, t: jax.Array, x0: jax.Array) -> jax.Array:
    """``v = (alpha_t x_t - x_0) / sigma_t`` (from ``x_0 = alpha_t x_t - sigma_t v``).

    Args: ``x_t, x0: (batch, ...)``, ``t: (batch,)``. Returns ``(batch, ...)``.
    """
    checks.same_shape("x0", x0, "x_t", x_t)
    t = _check_t(t, x_t, schedule)
    alpha, sigma = _coefs(schedule, t, x_t)
    return (alpha * x_t - x0) / sigma


def eps_to_score(schedule: Schedule, t: jax.Array, eps: jax.Array) -> jax.Array:
    """``grad_x log q_t(x) = -eps / sigma_t`` (Song et al. 2021, sec. 3.3; Vincent 2011).

    Args: ``t: (batch,)``, ``eps: (batch, ...)``. Returns ``(batch, ...)``.
    """
    t = _check_t(t, eps, schedule)
    _, sigma = _coefs(schedule, t, eps)
    return -eps / sigma


def score_to_eps(schedule: Schedule, t: jax.Array, score: jax.Array) -> jax.Array:
    """``eps = -sigma_t score`` (inverse of :func:`eps_to_score`).

    Args: ``t: (batch,)``, ``score: (batch, ...)``. Returns ``(batch, ...)``.
    """
    t = _check_t(t, score, schedule)
    _, sigma = _coefs(schedule, t, score)
    return -sigma * score
