"""The ELBO and IWAE bound of a VAE with a flow posterior (planar or IAF).

With ``z_K`` the flow posterior's sample of base noise ``eps``
(:mod:`genjax.composites.flow_posterior`):

    ELBO(x) = E_eps[log p(x|z_K) + log p(z_K) - log q_0(z_0|x) + sum_k log|det dz_k/dz_{k-1}|]
                                                              (Rezende & Mohamed 2015, eq. 15)
    L_k(x) = E[log (1/k) sum_i p(x, z_K^i) / q_K(z_K^i|x)]   (Burda et al. 2016, eq. 8)

References:
  Rezende, Mohamed (2015). Variational Inference with Normalizing Flows. ICML.
  Kingma, Salimans, Jozefowicz, Chen, Sutskever, Welling (2016). Improved Variational
  Inference with Inverse Autoregressive Flow. NeurIPS.
  Burda, Grosse, Salakhutdinov (2016). Importance Weighted Autoencoders. ICLR.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from genjax import checks, gaussian
from genjax.composites.flow_posterior import (
    FlowPosteriorVAE,
    check_batch,
    check_model,
    posterior_terms,
)
from genjax.metrics import bits_per_dim
from genjax.model import model_jit
from genjax.vae.model import decoder_log_likelihood


def flow_elbo_terms(model: FlowPosteriorVAE, x: jax.Array, eps: jax.Array) -> dict[str, jax.Array]:
    """One-sample ELBO of each example with the flow posterior, its noise given (R&M eq. 15).

    ``ELBO = log p(x|z_K) + log p(z_K) - log q_0(z_0|x) + sum_k log|det dz_k/dz_{k-1}|``.

    Args:
      model: a :class:`FlowPosteriorVAE`.
      x: (B, *data_shape).
      eps: (B, L) standard normal, ``z_0 = mu + sigma eps``.

    Returns:
      dict of (B,) arrays: ``log_likelihood`` (``log p(x|z_K)``), ``log_prior``
      (``log p(z_K)``), ``log_q0``, ``log_det`` (the sum over steps), ``kl`` (the one-sample
      ``log q_K(z_K|x) - log p(z_K)``) and ``elbo``.

    Example:
      >>> model = mlp_flow_vae((4,), 2, flow="planar", num_flows=2, rngs=nnx.Rngs(0),
      ...                      hidden_sizes=(8,))
      >>> t = flow_elbo_terms(model, jnp.ones((3, 4)) / 2, jnp.zeros((3, 2)))
      >>> bool(jnp.allclose(t["elbo"], t["log_likelihood"] - t["kl"]))
      True
    """
    check_model(model)
    check_batch(model, x)
    checks.shape("eps", eps, (x.shape[0], model.latent_dim))
    z, log_q0, log_det, _ = posterior_terms(model, x, eps)
    log_lik = decoder_log_likelihood(model.vae, x, model.vae.decode(z))  # log p(x|z_K)
    log_prior = gaussian.standard_normal_log_prob(z)  # log N(z_K; 0, I)
    kl = log_q0 - log_det - log_prior  # log q_K(z_K|x) - log p(z_K), one sample
    return {
        "log_likelihood": log_lik,
        "log_prior": log_prior,
        "log_q0": log_q0,
        "log_det": log_det,
        "kl": kl,
        "elbo": log_lik - kl,
    }


def flow_elbo_loss(
    model: FlowPosteriorVAE, batch: jax.Array, key: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Negative one-sample ELBO of the flow posterior, mean over the batch, in nats.

    ``loss = -mean_b ELBO(x_b)`` with one ``eps`` per example (:func:`flow_elbo_terms`).
    One compiled program per model structure and shapes (the model traced).

    Args:
      model: a :class:`FlowPosteriorVAE` (the differentiated pytree).
      batch: (B, *data_shape).
      key: the base noise's key.

    Returns:
      ``(loss, metrics)``; metrics: batch means of ``elbo``, ``log_likelihood``, ``kl``,
      ``log_det`` and ``bits_per_dim`` (``-elbo / (D log 2)``).

    Example:
      >>> model = mlp_flow_vae((4, 4, 1), 2, flow="iaf", num_flows=2, rngs=nnx.Rngs(0),
      ...                      hidden_sizes=(8,), context_dim=2, made_hidden=(4,))
      >>> loss, metrics = flow_elbo_loss(model, jnp.full((3, 4, 4, 1), 0.5), jax.random.key(0))
      >>> bool(jnp.isclose(loss, -metrics["elbo"])), loss.shape
      (True, ())
    """
    check_model(model)
    check_batch(model, batch)
    return _flow_elbo_loss(model, batch, key)


@model_jit
def _flow_elbo_loss(
    model: FlowPosteriorVAE, batch: jax.Array, key: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array]]:
    eps = jax.random.normal(key, (batch.shape[0], model.latent_dim), batch.dtype)
    terms = flow_elbo_terms(model, batch, eps)
    elbo = jnp.mean(terms["elbo"])
    metrics = {k: jnp.mean(terms[k]) for k in ("elbo", "log_likelihood", "kl", "log_det")}
    metrics["bits_per_dim"] = bits_per_dim(-elbo, math.prod(model.data_shape))
    return -elbo, metrics


def flow_log_weights(model: FlowPosteriorVAE, x: jax.Array, eps: jax.Array) -> jax.Array:
    """Log importance weights ``log p(x, z_K^i) - log q_K(z_K^i|x)`` for given noise.

    Args:
      model: a :class:`FlowPosteriorVAE`.
      x: (B, *data_shape).
      eps: (k, B, L) standard normal, one base draw per sample and example.

    Returns:
      (k, B).
    """
    check_model(model)
    check_batch(model, x)
    checks.shape("eps", eps, (None, x.shape[0], model.latent_dim))
    return jax.vmap(lambda e: flow_elbo_terms(model, x, e)["elbo"])(eps)  # (k, B)


@functools.partial(model_jit, static_argnames=("k", "chunk_size"))
def flow_iwae_bound(
    model: FlowPosteriorVAE,
    batch: jax.Array,
    key: jax.Array,
    *,
    k: int,
    chunk_size: int | None = None,
) -> jax.Array:
    """The IWAE bound ``L_k(x) = logsumexp_i(log w_i) - log k`` with the flow posterior.

    ``w_i = p(x, z_K^i) / q_K(z_K^i|x)``; ``L_1`` is the ELBO, ``L_k`` rises to ``log p(x)``
    (Burda et al. 2016, Theorem 1). One compiled program per (model structure, shapes,
    ``k``, ``chunk_size``).

    Args:
      model: a :class:`FlowPosteriorVAE`.
      batch: (B, *data_shape).
      key: noise of the ``k`` samples.
      k: >= 1.
      chunk_size: evaluate ``chunk_size`` samples at a time (a ``lax.scan`` with a running
        log-sum-exp); must divide ``k``; chunk ``c`` draws from ``fold_in(key, c)``.

    Returns:
      (B,) bounds in nats.

    Example:
      >>> model = mlp_flow_vae((4,), 2, flow="planar", num_flows=2, rngs=nnx.Rngs(0),
      ...                      hidden_sizes=(8,))
      >>> flow_iwae_bound(model, jnp.full((3, 4), 0.5), jax.random.key(0), k=8).shape
      (3,)
    """
    k = checks.positive_int("k", k)
    check_model(model)
    x = batch
    shape = (x.shape[0], model.latent_dim)
    if chunk_size is None or chunk_size >= k:
        eps = jax.random.normal(key, (k, *shape), x.dtype)
        return jax.nn.logsumexp(flow_log_weights(model, x, eps), axis=0) - math.log(k)
    chunk_size = checks.positive_int("chunk_size", chunk_size)
    if k % chunk_size:
        raise ValueError(f"chunk_size must divide k, got k={k}, chunk_size={chunk_size}")

    def body(acc: jax.Array, c: jax.Array) -> tuple[jax.Array, None]:
        eps = jax.random.normal(jax.random.fold_in(key, c), (chunk_size, *shape), x.dtype)
        lse = jax.nn.logsumexp(flow_log_weights(model, x, eps), axis=0)  # (B,)
        return jnp.logaddexp(acc, lse), None  # running log sum_i w_i

    init = jnp.full((x.shape[0],), -jnp.inf, x.dtype)
    total, _ = jax.lax.scan(body, init, jnp.arange(k // chunk_size))
    return total - math.log(k)


__all__ = [
    "flow_elbo_loss",
    "flow_elbo_terms",
    "flow_iwae_bound",
    "flow_log_weights",
]
