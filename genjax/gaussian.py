"""Gaussian log-densities and KL divergences, written once for every family.

Used by flows and CNFs (the base density), VAEs (the encoder's KL, the Gaussian decoder),
MALA (the proposal density) and the analytic targets. Each function is written for one
example's last axis and sums over it; leading axes are batch axes.

    log N(x; 0, I)            = -1/2 sum_d (x_d^2 + log 2 pi)
    log N(x; mu, diag(e^lv))  = -1/2 sum_d ((x_d - mu_d)^2 e^{-lv_d} + lv_d + log 2 pi)
    KL(N(mu, diag(e^lv)) || N(0, I))
                              = 1/2 sum_d (mu_d^2 + e^{lv_d} - 1 - lv_d)     (Kingma & Welling
                                                                             2014, App. B)
    KL(N(mu_q, e^lq) || N(mu_p, e^lp))
                              = 1/2 sum_d (lp - lq + (e^lq + (mu_q - mu_p)^2) e^{-lp} - 1)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from genjax import checks

__all__ = [
    "LOG_2PI",
    "standard_normal_log_prob",
    "diag_normal_log_prob",
    "isotropic_normal_log_prob",
    "kl_diag_standard_normal",
    "kl_diag_normals",
]

LOG_2PI = math.log(2.0 * math.pi)
"""``log(2 pi)``, the constant of every Gaussian log-density."""


def _events(name: str, x: jax.Array) -> jax.Array:
    # ``x``: ``(..., D)`` with at least the event axis (shape only: free under jit).
    if x.ndim < 1:
        raise ValueError(f"{name} must have shape (..., D) with at least one axis, got ()")
    return x


def _broadcasts(name: str, value: jax.Array, ref_name: str, ref: jax.Array) -> None:
    # ``value`` and ``ref`` broadcast together (a (batch, 1) mean against (batch, D) is
    # allowed, as documented; (3,) against (2,) is not).
    try:
        jnp.broadcast_shapes(jnp.shape(value), jnp.shape(ref))
    except ValueError as err:
        raise ValueError(
            f"{name} must broadcast against {ref_name} {tuple(jnp.shape(ref))}, got shape "
            f"{tuple(jnp.shape(value))}"
        ) from err


def standard_normal_log_prob(x: jax.Array) -> jax.Array:
    """``log N(x; 0, I)`` summed over the last axis.

    Args:
      x: ``(..., D)``.

    Returns:
      ``(...)``.
    """
    x = _events("x", jnp.asarray(x))
    return -0.5 * (jnp.sum(jnp.square(x), axis=-1) + x.shape[-1] * LOG_2PI)


def diag_normal_log_prob(x: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """``log N(x; mean, diag(exp(logvar)))`` summed over the last axis.

    Args:
      x: ``(..., D)``.
      mean, logvar: broadcastable to ``x``.

    Returns:
      ``(...)``.
    """
    x, mean, logvar = _events("x", jnp.asarray(x)), jnp.asarray(mean), jnp.asarray(logvar)
    _broadcasts("mean", mean, "x", x)
    _broadcasts("logvar", logvar, "x", x)
    sq = jnp.square(x - mean) * jnp.exp(-logvar)  # (x - mu)^2 / var, without dividing by 0
    return -0.5 * jnp.sum(sq + logvar + LOG_2PI, axis=-1)


def isotropic_normal_log_prob(x: jax.Array, mean: jax.Array, std: jax.Array) -> jax.Array:
    """``log N(x; mean, std^2 I)`` summed over the last axis; ``std`` a scalar or ``(...)``.

    Args:
      x: ``(..., D)``.
      mean: broadcastable to ``x``.
      std: positive, a scalar or with ``x``'s leading shape ``(...)``.

    Returns:
      ``(...)``.
    """
    x, mean, std = _events("x", jnp.asarray(x)), jnp.asarray(mean), jnp.asarray(std)
    _broadcasts("mean", mean, "x", x)
    _broadcasts("std", std, "x.shape[:-1]", x[..., 0])
    checks.positive("std", std)  # when concrete
    d = x.shape[-1]
    sq = jnp.sum(jnp.square(x - mean), axis=-1)
    return -0.5 * sq / jnp.square(std) - d * jnp.log(std) - 0.5 * d * LOG_2PI


def kl_diag_standard_normal(mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """``KL(N(mean, diag(exp(logvar))) || N(0, I))`` summed over the last axis.

    Args:
      mean, logvar: ``(..., D)``.

    Returns:
      ``(...)``, non-negative.
    """
    mean, logvar = _events("mean", jnp.asarray(mean)), jnp.asarray(logvar)
    _broadcasts("logvar", logvar, "mean", mean)
    # e^lv - 1 - lv by expm1: exact near lv = 0, where the three terms nearly cancel.
    return 0.5 * jnp.sum(jnp.square(mean) + jnp.expm1(logvar) - logvar, axis=-1)


def kl_diag_normals(
    mean_q: jax.Array, logvar_q: jax.Array, mean_p: jax.Array, logvar_p: jax.Array
) -> jax.Array:
    """``KL(N(mean_q, diag(e^logvar_q)) || N(mean_p, diag(e^logvar_p)))`` over the last axis.

    Args:
      mean_q, logvar_q, mean_p, logvar_p: broadcastable ``(..., D)``.

    Returns:
      ``(...)``, non-negative.
    """
    mean_q = _events("mean_q", jnp.asarray(mean_q))
    for name, value in (("logvar_q", logvar_q), ("mean_p", mean_p), ("logvar_p", logvar_p)):
        _broadcasts(name, jnp.asarray(value), "mean_q", mean_q)
    dl = jnp.asarray(logvar_q) - jnp.asarray(logvar_p)
    sq = jnp.square(jnp.asarray(mean_q) - jnp.asarray(mean_p)) * jnp.exp(-jnp.asarray(logvar_p))
    # e^dl - 1 - dl by expm1 (exact where the variances agree), plus the mean term.
    return 0.5 * jnp.sum(jnp.expm1(dl) - dl + sq, axis=-1)
