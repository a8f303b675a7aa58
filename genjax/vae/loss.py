"""Objectives of the VAE family: MSE autoencoder, ELBO (beta, capacity), IWAE (and DReG).

Reduction, one for the whole family: every quantity is computed **per example, summed
over data and latent dimensions**, then **averaged over the batch**; units are nats, and
the metrics also give bits per data dimension, ``-ELBO / (D log 2)``.

* ELBO (Kingma & Welling 2014, eq. 3 and 10):
  ``ELBO(x) = E_{q(z|x)}[log p(x|z)] - KL(q(z|x) || p(z))``, the expectation by one
  reparameterised sample, the KL in closed form.
* beta-VAE (Higgins et al. 2017): ``E[log p(x|z)] - beta KL``; ``beta = 1`` is the VAE.
* Capacity annealing (Burgess et al. 2018, eq. 8): ``E[log p(x|z)] - gamma |KL - C|`` with
  ``C`` raised linearly from 0 to ``C_max`` (:func:`capacity_schedule`); the KL inside the
  absolute value is the batch mean.
* IWAE (Burda et al. 2016, eq. 8): ``L_k(x) = log (1/k) sum_i w_i``,
  ``w_i = p(x, z_i) / q(z_i | x)``, ``z_i ~ q`` i.i.d.; ``L_1 = ELBO <= L_k <= log p(x)``,
  ``L_k -> log p(x)`` as ``k -> inf``. Computed by log-mean-exp.

Which gradient does the IWAE bound give? Differentiating :func:`iwae_bound` gives the
reparameterised estimator of Burda et al. (eq. 14): ``sum_i w~_i grad log w_i`` with
normalised weights ``w~_i = w_i / sum_j w_j`` (no stop-gradient: the weights' own
dependence is what makes it the gradient of the log-mean-exp). Its encoder part has a
signal-to-noise ratio that falls as ``k`` grows (Rainforth et al. 2018).
``iwae_loss(..., estimator="dreg")`` gives the doubly reparameterised estimator of
Tucker et al. (2019, eq. 7): the encoder gradient ``sum_i w~_i^2 d log w_i / d z_i
dz_i/dphi`` (the score term of ``log q`` removed by stopping the gradient through q's
parameters), the decoder gradient unchanged. Both are unbiased for the same gradient.

Noise is injectable: :func:`elbo_terms` and :func:`iwae_log_weights` take the standard
normal draws; the losses draw them from the key (``eps = normal(key, (B, L))``, as
:func:`reparameterize` does).

How params are carried: ``params`` is the model Module itself (see ``model.py``).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from genjax.metrics import bits_per_dim
from genjax.vae.distributions import (
    bernoulli_log_likelihood,
    gaussian_log_likelihood,
    kl_diag_gaussian,
    log_normal_diag,
    log_standard_normal,
)
from genjax.vae.hierarchical import HierarchicalVAE, hvae_log_weights, hvae_terms
from genjax.vae.model import VAE, Autoencoder


def _check_batch(model: Any, x: jax.Array) -> None:
    shape = model.data_shape
    if x.ndim != 1 + len(shape) or tuple(x.shape[1:]) != shape:
        raise ValueError(f"batch must have shape (B, *{shape}), got {x.shape}")


def _num_dims(model: Any) -> int:
    return math.prod(model.data_shape)


def decoder_log_likelihood(model: VAE, x: jax.Array, out: jax.Array) -> jax.Array:
    """``log p(x | z)`` from the decoder output ``out`` (logits or means): (B, ...) -> (B,)."""
    if model.likelihood == "bernoulli":
        return bernoulli_log_likelihood(x, out)
    return gaussian_log_likelihood(x, out, model.log_std[...])


def elbo_terms(model: VAE, x: jax.Array, eps: jax.Array) -> dict[str, jax.Array]:
    """One-sample ELBO of each example, with its noise given.

    ``z = mu(x) + exp(logvar(x)/2) eps``; ``ELBO = log p(x|z) - KL(q(z|x) || N(0, I))``.

    Args:
      model: a :class:`VAE`.
      x: (B, *data_shape).
      eps: (B, L) standard normal.

    Returns:
      dict of (B,) arrays: ``log_likelihood``, ``kl``, ``elbo``.
    """
    _check_batch(model, x)
    mu, logvar = model.encode(x)  # (B, L) each
    z = mu + jnp.exp(0.5 * logvar) * eps  # reparameterisation, eq. 10
    log_lik = decoder_log_likelihood(model, x, model.decode(z))  # log p(x|z), (B,)
    kl = kl_diag_gaussian(mu, logvar)  # closed form, appendix B, (B,)
    return {"log_likelihood": log_lik, "kl": kl, "elbo": log_lik - kl}


def _check_nonneg(name: str, value: Any) -> None:
    if isinstance(value, (int, float)) and not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


def capacity_schedule(step: Any, *, c_max: float, num_steps: int) -> jax.Array:
    """``C(step) = c_max * min(1, step / num_steps)``, the linear capacity ramp of Burgess et al.

    Args:
      step: () current step (int or array).
      c_max: final capacity in nats, >= 0.
      num_steps: steps to reach it, >= 1.
    """
    _check_nonneg("c_max", c_max)
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps!r}")
    return c_max * jnp.minimum(1.0, jnp.asarray(step, jnp.float32) / num_steps)


def elbo_loss(params: VAE | HierarchicalVAE, batch: jax.Array, key: jax.Array, *,
              beta: float = 1.0, capacity: Any = None,
              gamma: float = 1.0) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Negative (beta-)ELBO, mean over the batch, in nats.

    ``loss = mean_b [-log p(x_b|z_b) + beta KL_b]``, or with ``capacity=C``
    ``loss = mean_b[-log p(x_b|z_b)] + gamma |mean_b KL_b - C|`` (Burgess et al. 2018).

    Args:
      params: a :class:`VAE` or :class:`HierarchicalVAE` (its KL is ``kl1 + kl2``).
      batch: (B, *data_shape).
      key: noise of the one reparameterised sample.
      beta: KL weight, >= 0 (1 is the VAE; ignored when ``capacity`` is given).
      capacity: ``C`` in nats (scalar, may be traced), or None.
      gamma: weight of ``|KL - C|``, >= 0.

    Returns:
      ``(loss, metrics)``; metrics: ``elbo``, ``log_likelihood``, ``kl`` (nats, batch
      means) and ``bits_per_dim`` (``-elbo / (D log 2)``).

    Example:
      >>> model = mlp_vae((8, 8, 1), 2, rngs=nnx.Rngs(0))
      >>> loss, metrics = elbo_loss(model, images, jax.random.key(0))
    """
    _check_nonneg("beta", beta)
    _check_nonneg("gamma", gamma)
    _check_nonneg("capacity", capacity)
    x = batch
    if isinstance(params, HierarchicalVAE):
        l1, l2 = params.latent_dims
        k2, k1 = jax.random.split(key)
        eps2 = jax.random.normal(k2, (x.shape[0], l2), x.dtype)
        eps1 = jax.random.normal(k1, (x.shape[0], l1), x.dtype)
        terms = hvae_terms(params, x, eps2, eps1)
        terms["kl"] = terms["kl1"] + terms["kl2"]
    elif isinstance(params, VAE):
        eps = jax.random.normal(key, (x.shape[0], params.latent_dim), x.dtype)
        terms = elbo_terms(params, x, eps)
    else:
        raise ValueError(f"params must be a VAE or HierarchicalVAE, got {type(params).__name__}")
    log_lik, kl = terms["log_likelihood"], terms["kl"]
    if capacity is None:
        loss = jnp.mean(-log_lik + beta * kl)  # -(E log p(x|z) - beta KL)
    else:
        loss = jnp.mean(-log_lik) + gamma * jnp.abs(jnp.mean(kl) - capacity)  # Burgess eq. 8
    elbo = jnp.mean(terms["elbo"])
    metrics = {k: jnp.mean(v) for k, v in terms.items()}
    metrics["bits_per_dim"] = bits_per_dim(-elbo, _num_dims(params))
    return loss, metrics


def autoencoder_loss(params: Autoencoder, batch: jax.Array,
                     key: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Squared reconstruction error ``mean_b sum_d (x - g(f(x)))^2`` (``key`` unused).

    Args:
      params: an :class:`Autoencoder`.
      batch: (B, *data_shape).
      key: accepted for the common loss signature; the autoencoder is deterministic.
    """
    del key
    _check_batch(params, batch)
    x_hat = params.decode(params.encode(batch))
    sq = jnp.sum((batch - x_hat).reshape(batch.shape[0], -1) ** 2, axis=-1)  # (B,)
    loss = jnp.mean(sq)
    return loss, {"mse_per_dim": loss / _num_dims(params)}


# --- importance weighting -------------------------------------------------------------------


def _vae_log_weights(model: VAE, x: jax.Array, eps: jax.Array) -> jax.Array:
    mu, logvar = model.encode(x)  # (B, L), shared by the k draws

    def one(e: jax.Array) -> jax.Array:
        z = mu + jnp.exp(0.5 * logvar) * e  # (B, L), z_i ~ q(z|x)
        log_p = decoder_log_likelihood(model, x, model.decode(z)) + log_standard_normal(z)
        return log_p - log_normal_diag(z, mu, logvar)  # log w_i = log p(x,z_i) - log q(z_i|x)

    return jax.vmap(one)(eps)  # (k, B)


def iwae_log_weights(model: VAE | HierarchicalVAE, x: jax.Array, eps: Any) -> jax.Array:
    """Log importance weights ``log p(x, z_i) - log q(z_i | x)`` for given noise.

    Args:
      model: :class:`VAE` (``eps: (k, B, L)``) or :class:`HierarchicalVAE`
        (``eps = (eps2 (k, B, L2), eps1 (k, B, L1))``).
      x: (B, *data_shape).

    Returns:
      (k, B).
    """
    _check_batch(model, x)
    if isinstance(model, HierarchicalVAE):
        return hvae_log_weights(model, x, *eps)
    if isinstance(model, VAE):
        return _vae_log_weights(model, x, eps)
    raise ValueError(f"model must be a VAE or HierarchicalVAE, got {type(model).__name__}")


def _draw_noise(model: Any, key: jax.Array, k: int, batch: int, dtype: Any) -> Any:
    if isinstance(model, HierarchicalVAE):
        l1, l2 = model.latent_dims
        k2, k1 = jax.random.split(key)
        return (jax.random.normal(k2, (k, batch, l2), dtype),
                jax.random.normal(k1, (k, batch, l1), dtype))
    return jax.random.normal(key, (k, batch, model.latent_dim), dtype)


def _check_k(k: Any, name: str = "k") -> int:
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {k!r}")
    return int(k)


def iwae_bound(params: VAE | HierarchicalVAE, batch: jax.Array, key: jax.Array, *, k: int,
               chunk_size: int | None = None) -> jax.Array:
    """The IWAE bound ``L_k(x) = logsumexp_i(log w_i) - log k`` of each example (nats).

    Args:
      params: a :class:`VAE` or :class:`HierarchicalVAE`.
      batch: (B, *data_shape).
      key: noise of the ``k`` samples.
      k: number of importance samples, >= 1 (``k = 1`` is the ELBO with a sampled KL).
      chunk_size: evaluate the samples ``chunk_size`` at a time (a ``lax.scan`` with a
        running log-sum-exp; memory O(chunk_size)); must divide ``k``. The chunks draw
        their noise from ``fold_in(key, chunk)``, so the estimate differs from the unchunked
        one in its noise only.

    Returns:
      (B,) bounds. Differentiating gives Burda et al.'s estimator (module docstring).
    """
    k = _check_k(k)
    x = batch
    if chunk_size is None or chunk_size >= k:
        log_w = iwae_log_weights(params, x, _draw_noise(params, key, k, x.shape[0], x.dtype))
        return jax.nn.logsumexp(log_w, axis=0) - math.log(k)  # log (1/k) sum_i w_i
    chunk_size = _check_k(chunk_size, "chunk_size")
    if k % chunk_size:
        raise ValueError(f"chunk_size must divide k, got k={k}, chunk_size={chunk_size}")

    def body(acc: jax.Array, c: jax.Array) -> tuple[jax.Array, None]:
        noise = _draw_noise(params, jax.random.fold_in(key, c), chunk_size, x.shape[0], x.dtype)
        lse = jax.nn.logsumexp(iwae_log_weights(params, x, noise), axis=0)  # (B,)
        return jnp.logaddexp(acc, lse), None  # running log sum_i w_i

    init = jnp.full((x.shape[0],), -jnp.inf, x.dtype)
    total, _ = jax.lax.scan(body, init, jnp.arange(k // chunk_size))
    return total - math.log(k)


def iwae_loss(params: VAE | HierarchicalVAE, batch: jax.Array, key: jax.Array, *, k: int,
              estimator: str = "iwae") -> tuple[jax.Array, dict[str, jax.Array]]:
    """``-mean_b L_k(x_b)`` with the gradient estimator of choice.

    Args:
      params: a :class:`VAE` (either estimator) or :class:`HierarchicalVAE` (``"iwae"``).
      batch: (B, *data_shape).
      key: noise of the ``k`` samples.
      k: >= 1.
      estimator: ``"iwae"`` (Burda et al. 2016, eq. 14) or ``"dreg"`` (Tucker et al. 2019).
        The loss *value* is the same; only the gradient differs.

    Returns:
      ``(loss, metrics)`` with ``iwae_bound`` (nats) and ``bits_per_dim``.
    """
    k = _check_k(k)
    if estimator not in ("iwae", "dreg"):
        raise ValueError(f"estimator must be 'iwae' or 'dreg', got {estimator!r}")
    x = batch
    if estimator == "iwae":
        bound = iwae_bound(params, x, key, k=k)
        loss = -jnp.mean(bound)
    else:
        if not isinstance(params, VAE):
            raise ValueError(f"estimator='dreg' needs a VAE, got {type(params).__name__}")
        _check_batch(params, x)
        eps = _draw_noise(params, key, k, x.shape[0], x.dtype)
        frozen = jax.tree.map(jax.lax.stop_gradient, params)  # decoder theta held fixed
        # phi-path: gradient only through z_i(phi), q's parameters stopped (Tucker eq. 7)
        log_w_phi = _vae_log_weights_split(params, frozen, x, eps, through_z=True)
        # theta-path: z_i and q stopped, so only the decoder is differentiated
        log_w_theta = _vae_log_weights_split(params, params, x, eps, through_z=False)
        w = jax.nn.softmax(jax.lax.stop_gradient(log_w_theta), axis=0)  # (k, B), w~_i
        surrogate = jnp.sum(w * log_w_theta + w**2 * log_w_phi, axis=0)  # (B,)
        bound = jax.nn.logsumexp(jax.lax.stop_gradient(log_w_theta), axis=0) - math.log(k)
        # value: -mean bound; gradient: -mean grad(surrogate)
        loss = -jnp.mean(bound) - jnp.mean(surrogate - jax.lax.stop_gradient(surrogate))
    metrics = {"iwae_bound": jnp.mean(bound),
               "bits_per_dim": bits_per_dim(-jnp.mean(bound), _num_dims(params))}
    return loss, metrics


def _vae_log_weights_split(encoder_model: VAE, decoder_model: VAE, x: jax.Array, eps: jax.Array,
                           *, through_z: bool) -> jax.Array:
    """Log weights with ``z`` from ``encoder_model`` and ``p(x|z)`` from ``decoder_model``.

    ``q``'s parameters are always stopped in ``log q(z|x)``; ``through_z=False`` also stops
    ``z`` itself.
    """
    mu, logvar = encoder_model.encode(x)
    q_mu, q_logvar = jax.lax.stop_gradient(mu), jax.lax.stop_gradient(logvar)

    def one(e: jax.Array) -> jax.Array:
        z = mu + jnp.exp(0.5 * logvar) * e
        if not through_z:
            z = jax.lax.stop_gradient(z)
        log_p = decoder_log_likelihood(decoder_model, x, decoder_model.decode(z))
        return log_p + log_standard_normal(z) - log_normal_diag(z, q_mu, q_logvar)

    return jax.vmap(one)(eps)  # (k, B)

