"""The densities a VAE is made of: diagonal Gaussians, Bernoulli and Gaussian likelihoods.

Every function is written for the closed form of one example and returns **one value per
example**, summed over the event (latent or data) dimensions — the reduction genjax uses
throughout the VAE family (DESIGN.md: sum over data and latent dimensions, mean over the
batch, the mean being taken by the losses). Units are nats.

References:
  Kingma & Welling (2014), Auto-Encoding Variational Bayes, appendix B (the Gaussian KL).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

_LOG_2PI = math.log(2.0 * math.pi)


def _event_sum(a: jax.Array, batch_ndim: int) -> jax.Array:
    """Sum over every axis after the first ``batch_ndim``."""
    return jnp.sum(a, axis=tuple(range(batch_ndim, a.ndim)))


def reparameterize(key: jax.Array, mu: jax.Array, logvar: jax.Array) -> jax.Array:
    """Draw ``z ~ N(mu, diag(exp(logvar)))`` by the reparameterisation trick.

    ``z = mu + exp(logvar / 2) * eps``, ``eps ~ N(0, I)`` (Kingma & Welling 2014, eq. 10), so
    that ``z`` is a differentiable function of ``(mu, logvar)``.

    Args:
      key: PRNG key.
      mu: (..., L) means.
      logvar: (..., L) log-variances.

    Returns:
      (..., L) samples, dtype of ``mu``.
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"logvar must have the shape of mu {mu.shape}, got {logvar.shape}")
    eps = jax.random.normal(key, mu.shape, mu.dtype)
    return mu + jnp.exp(0.5 * logvar) * eps  # z = mu + sigma * eps


def kl_diag_gaussian(mu: jax.Array, logvar: jax.Array) -> jax.Array:
    """``KL(N(mu, diag(exp(logvar))) || N(0, I))`` in closed form, one value per example.

    ``KL = 1/2 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j)`` (Kingma & Welling 2014,
    appendix B), summed over the latent axis.

    Args:
      mu: (..., L).
      logvar: (..., L).

    Returns:
      (...) non-negative KLs in nats.
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"logvar must have the shape of mu {mu.shape}, got {logvar.shape}")
    # expm1(logvar) - logvar = exp(logvar) - 1 - logvar without cancellation near logvar = 0
    return 0.5 * jnp.sum(mu**2 + jnp.expm1(logvar) - logvar, axis=-1)


def kl_diag_gaussians(
    mu_q: jax.Array, logvar_q: jax.Array, mu_p: jax.Array, logvar_p: jax.Array
) -> jax.Array:
    """``KL(N(mu_q, diag v_q) || N(mu_p, diag v_p))``, one value per example.

    ``KL = 1/2 sum_j [logvar_p - logvar_q + (v_q + (mu_q - mu_p)^2) / v_p - 1]``.

    Args:
      mu_q, logvar_q, mu_p, logvar_p: (..., L), all the same shape.

    Returns:
      (...) non-negative KLs in nats.
    """
    for name, a in (("logvar_q", logvar_q), ("mu_p", mu_p), ("logvar_p", logvar_p)):
        if a.shape != mu_q.shape:
            raise ValueError(f"{name} must have the shape of mu_q {mu_q.shape}, got {a.shape}")
    d = logvar_q - logvar_p
    # v_q / v_p - 1 - log(v_q / v_p) = expm1(d) - d, stable when q is close to p
    return 0.5 * jnp.sum(jnp.expm1(d) - d + (mu_q - mu_p) ** 2 * jnp.exp(-logvar_p), axis=-1)


def log_normal_diag(z: jax.Array, mu: jax.Array, logvar: jax.Array) -> jax.Array:
    """``log N(z; mu, diag(exp(logvar)))`` summed over the last axis.

    Args:
      z, mu, logvar: (..., L), broadcast against each other only by equal shapes.

    Returns:
      (...).
    """
    # log N = -1/2 sum_j [log 2 pi + logvar_j + (z_j - mu_j)^2 / v_j]
    return -0.5 * jnp.sum(_LOG_2PI + logvar + (z - mu) ** 2 * jnp.exp(-logvar), axis=-1)


def log_standard_normal(z: jax.Array) -> jax.Array:
    """``log N(z; 0, I)`` summed over the last axis: (..., L) -> (...)."""
    return -0.5 * jnp.sum(_LOG_2PI + z**2, axis=-1)


def bernoulli_log_likelihood(x: jax.Array, logits: jax.Array, *, batch_ndim: int = 1) -> jax.Array:
    """``log p(x | logits) = sum_i [x_i log sigmoid(l_i) + (1 - x_i) log sigmoid(-l_i)]``.

    Written as ``x l - softplus(l)``, finite for logits of any size. ``x`` in ``[0, 1]``
    (greyscale data give the continuous cross-entropy, the usual practice on greyscale
    images; it is a density only for binary ``x``).

    Args:
      x: (*batch, *event) targets.
      logits: same shape.
      batch_ndim: number of leading batch axes; the rest are summed.

    Returns:
      (*batch) log-likelihoods in nats.
    """
    if x.shape != logits.shape:
        raise ValueError(f"logits must have the shape of x {x.shape}, got {logits.shape}")
    return _event_sum(x * logits - jax.nn.softplus(logits), batch_ndim)


def gaussian_log_likelihood(
    x: jax.Array, mean: jax.Array, log_std: jax.Array, *, batch_ndim: int = 1
) -> jax.Array:
    """``log N(x; mean, exp(log_std)^2 I)`` with one scalar ``log_std``, summed over events.

    ``= -1/2 sum_i [(x_i - m_i)^2 / s^2] - D log s - D/2 log 2 pi``.

    Args:
      x: (*batch, *event).
      mean: same shape.
      log_std: () log of the observation standard deviation.
      batch_ndim: number of leading batch axes.

    Returns:
      (*batch) log-likelihoods in nats.
    """
    if x.shape != mean.shape:
        raise ValueError(f"mean must have the shape of x {x.shape}, got {mean.shape}")
    num_dims = math.prod(x.shape[batch_ndim:])
    log_std = jnp.asarray(log_std).astype(jnp.result_type(x, mean))  # compute in the data's dtype
    sq = _event_sum((x - mean) ** 2, batch_ndim)
    return -0.5 * sq * jnp.exp(-2.0 * log_std) - num_dims * (log_std + 0.5 * _LOG_2PI)
