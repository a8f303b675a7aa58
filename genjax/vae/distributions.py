"""The densities a VAE is made of: diagonal Gaussians, Bernoulli and Gaussian likelihoods.

Every function is written for the closed form of one example and returns **one value per
example**, summed over the event (latent or data) dimensions -- the reduction genjax uses
throughout the VAE family (DESIGN.md: sum over data and latent dimensions, mean over the
batch, the mean being taken by the losses). Units are nats.

The Gaussian log-densities and KLs are :mod:`genjax.gaussian`'s (one implementation for
every family); this module adds the shape checks the VAE's public names promise
(:func:`kl_diag_gaussian`, DESIGN.md) and the decoder likelihoods, which sum over the
event axes of an image.

References:
  Kingma & Welling (2014), Auto-Encoding Variational Bayes, appendix B (the Gaussian KL).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from genjax import checks, gaussian


def _check_batch_ndim(batch_ndim: int, x: jax.Array) -> int:
    return checks.int_in_range("batch_ndim", batch_ndim, 0, jnp.ndim(x))


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
    checks.same_shape("logvar", logvar, "mu", mu)
    eps = jax.random.normal(key, mu.shape, mu.dtype)
    return mu + jnp.exp(0.5 * logvar) * eps  # z = mu + sigma * eps


def kl_diag_gaussian(mu: jax.Array, logvar: jax.Array) -> jax.Array:
    """``KL(N(mu, diag(exp(logvar))) || N(0, I))`` in closed form, one value per example.

    ``KL = 1/2 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j)`` (Kingma & Welling 2014,
    appendix B), summed over the latent axis: :func:`genjax.gaussian.kl_diag_standard_normal`
    (``expm1`` keeps it accurate where ``logvar`` is near 0) with ``logvar`` required to have
    ``mu``'s shape.

    Args:
      mu: (..., L).
      logvar: (..., L).

    Returns:
      (...) non-negative KLs in nats.

    Example:
      >>> kl_diag_gaussian(jnp.zeros((2, 3)), jnp.zeros((2, 3))).tolist()
      [0.0, 0.0]
      >>> round(float(kl_diag_gaussian(jnp.ones(4), jnp.zeros(4))), 4)  # 1/2 sum mu^2
      2.0
    """
    checks.same_shape("logvar", logvar, "mu", mu)
    return gaussian.kl_diag_standard_normal(mu, logvar)


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
    checks.same_shape("logits", logits, "x", x)
    batch_ndim = _check_batch_ndim(batch_ndim, x)
    return _event_sum(x * logits - jax.nn.softplus(logits), batch_ndim)


def gaussian_log_likelihood(
    x: jax.Array, mean: jax.Array, log_std: jax.Array, *, batch_ndim: int = 1
) -> jax.Array:
    """``log N(x; mean, exp(log_std)^2 I)`` with one scalar ``log_std``, summed over events.

    ``= -1/2 sum_i [(x_i - m_i)^2 / s^2] - D log s - D/2 log 2 pi``: the event axes are
    flattened into one and :func:`genjax.gaussian.isotropic_normal_log_prob` sums over it.

    Args:
      x: (*batch, *event).
      mean: same shape.
      log_std: () log of the observation standard deviation.
      batch_ndim: number of leading batch axes.

    Returns:
      (*batch) log-likelihoods in nats.
    """
    checks.same_shape("mean", mean, "x", x)
    batch_ndim = _check_batch_ndim(batch_ndim, x)
    checks.ndim("log_std", log_std, 0, "(one scalar for every dimension)")
    lead = x.shape[:batch_ndim]
    num_dims = math.prod(x.shape[batch_ndim:])
    std = jnp.exp(jnp.asarray(log_std).astype(jnp.result_type(x, mean)))  # the data's dtype
    flat = (*lead, num_dims)  # (*batch, D)
    return gaussian.isotropic_normal_log_prob(x.reshape(flat), mean.reshape(flat), std)
