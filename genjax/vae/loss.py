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

The model protocol (DESIGN.md): ``model`` is the VAE Module itself (a pytree of arrays,
see ``model.py``), the first argument of every loss, ``(model, batch, key)``; ``jax.grad``
differentiates it directly. :func:`iwae_bound`, an evaluation, is compiled once per shape
(``genjax.model.model_jit``): new weights never recompile it.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp

from genjax import checks, gaussian
from genjax.metrics import bits_per_dim
from genjax.model import model_jit
from genjax.vae.distributions import kl_diag_gaussian
from genjax.vae.hierarchical import HierarchicalVAE, hvae_log_weights, hvae_terms
from genjax.vae.model import VAE, Autoencoder, decoder_log_likelihood

ESTIMATORS = ("iwae", "dreg")


def _check_batch(model: Any, x: jax.Array) -> None:
    checks.shape("batch", x, (None, *model.data_shape))
    checks.finite("batch", x)  # when concrete: a NaN pixel would make the loss NaN


def _check_model(model: Any, kinds: tuple) -> None:
    if not isinstance(model, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise ValueError(f"model must be a {names}, got {type(model).__name__}")


def _check_eps(model: Any, x: jax.Array, eps: Any, k: bool) -> None:
    """Noise shapes: (B, L) per draw, with a leading k axis when ``k``."""
    lead = (None, x.shape[0]) if k else (x.shape[0],)
    if isinstance(model, HierarchicalVAE):
        if not isinstance(eps, tuple | list) or len(eps) != 2:
            raise ValueError("eps must be the pair (eps2, eps1) for a HierarchicalVAE")
        l1, l2 = model.latent_dims
        checks.shape("eps2", eps[0], (*lead, l2))
        checks.shape("eps1", eps[1], (*lead[:-1], jnp.shape(eps[0])[-2], l1))
    else:
        checks.shape("eps", eps, (*lead, model.latent_dim))


def _num_dims(model: Any) -> int:
    return math.prod(model.data_shape)


def elbo_terms(model: VAE, x: jax.Array, eps: jax.Array) -> dict[str, jax.Array]:
    """One-sample ELBO of each example, with its noise given.

    ``z = mu(x) + exp(logvar(x)/2) eps``; ``ELBO = log p(x|z) - KL(q(z|x) || N(0, I))``.

    Args:
      model: a :class:`VAE`.
      x: (B, *data_shape).
      eps: (B, L) standard normal.

    Returns:
      dict of (B,) arrays: ``log_likelihood``, ``kl``, ``elbo``.

    Example:
      >>> model = mlp_vae((4,), 2, rngs=nnx.Rngs(0), hidden_sizes=(8,))
      >>> t = elbo_terms(model, jnp.ones((3, 4)) / 2, jnp.zeros((3, 2)))
      >>> bool(jnp.allclose(t["elbo"], t["log_likelihood"] - t["kl"]))
      True
    """
    _check_model(model, (VAE,))
    _check_batch(model, x)
    _check_eps(model, x, eps, k=False)
    mu, logvar = model.encode(x)  # (B, L) each
    z = mu + jnp.exp(0.5 * logvar) * eps  # reparameterisation, eq. 10
    log_lik = decoder_log_likelihood(model, x, model.decode(z))  # log p(x|z), (B,)
    kl = kl_diag_gaussian(mu, logvar)  # closed form, appendix B, (B,)
    return {"log_likelihood": log_lik, "kl": kl, "elbo": log_lik - kl}


def capacity_schedule(step: Any, *, c_max: float, num_steps: int) -> jax.Array:
    """``C(step) = c_max * min(1, step / num_steps)``, the linear capacity ramp of Burgess et al.

    Args:
      step: () current step (int or array).
      c_max: final capacity in nats, >= 0.
      num_steps: steps to reach it, >= 1.

    Example:
      >>> [float(capacity_schedule(s, c_max=25.0, num_steps=100)) for s in (0, 50, 200)]
      [0.0, 12.5, 25.0]
    """
    checks.nonnegative("c_max", c_max)
    num_steps = checks.positive_int("num_steps", num_steps)
    return c_max * jnp.minimum(1.0, jnp.asarray(step, jnp.float32) / num_steps)


def elbo_loss(model: VAE | HierarchicalVAE, batch: jax.Array, key: jax.Array, *,
              beta: float = 1.0, capacity: Any = None,
              gamma: float = 1.0) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Negative (beta-)ELBO, mean over the batch, in nats.

    ``loss = mean_b [-log p(x_b|z_b) + beta KL_b]``, or with ``capacity=C``
    ``loss = mean_b[-log p(x_b|z_b)] + gamma |mean_b KL_b - C|`` (Burgess et al. 2018).

    Args:
      model: a :class:`VAE` or :class:`HierarchicalVAE` (its KL is ``kl1 + kl2``); the
        Module is the differentiated pytree.
      batch: (B, *data_shape).
      key: noise of the one reparameterised sample.
      beta: KL weight, >= 0 (1 is the VAE; ignored when ``capacity`` is given).
      capacity: ``C`` in nats (scalar, may be traced), or None.
      gamma: weight of ``|KL - C|``, >= 0.

    Returns:
      ``(loss, metrics)``; metrics: ``elbo``, ``log_likelihood``, ``kl`` (nats, batch
      means) and ``bits_per_dim`` (``-elbo / (D log 2)``).

    One compiled program per model structure and shapes: the model, ``beta``, ``gamma``
    and ``capacity`` are traced (checked here first when they are concrete).

    Example:
      >>> model = mlp_vae((4, 4, 1), 2, rngs=nnx.Rngs(0), hidden_sizes=(8,))
      >>> images = jnp.full((3, 4, 4, 1), 0.5)
      >>> loss, metrics = elbo_loss(model, images, jax.random.key(0))
      >>> bool(jnp.isclose(loss, -metrics["elbo"])), sorted(metrics)[:2]
      (True, ['bits_per_dim', 'elbo'])
    """
    checks.nonnegative("beta", beta)
    checks.nonnegative("gamma", gamma)
    if capacity is not None:
        checks.nonnegative("capacity", capacity)
    _check_model(model, (VAE, HierarchicalVAE))
    _check_batch(model, batch)
    return _elbo_loss(model, batch, key, beta=beta, capacity=capacity, gamma=gamma)


@model_jit
def _elbo_loss(model: Any, batch: jax.Array, key: jax.Array, *, beta: Any, capacity: Any,
               gamma: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
    x = batch
    if isinstance(model, HierarchicalVAE):
        eps2, eps1 = _draw_noise(model, key, None, x.shape[0], x.dtype)
        terms = hvae_terms(model, x, eps2, eps1)
        terms["kl"] = terms["kl1"] + terms["kl2"]
    elif isinstance(model, VAE):
        terms = elbo_terms(model, x, _draw_noise(model, key, None, x.shape[0], x.dtype))
    else:
        raise ValueError(f"model must be a VAE or HierarchicalVAE, got {type(model).__name__}")
    log_lik, kl = terms["log_likelihood"], terms["kl"]
    if capacity is None:
        loss = jnp.mean(-log_lik + beta * kl)  # -(E log p(x|z) - beta KL)
    else:
        loss = jnp.mean(-log_lik) + gamma * jnp.abs(jnp.mean(kl) - capacity)  # Burgess eq. 8
    elbo = jnp.mean(terms["elbo"])
    metrics = {k: jnp.mean(v) for k, v in terms.items()}
    metrics["bits_per_dim"] = bits_per_dim(-elbo, _num_dims(model))
    return loss, metrics


def autoencoder_loss(model: Autoencoder, batch: jax.Array,
                     key: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Squared reconstruction error ``mean_b sum_d (x - g(f(x)))^2`` (``key`` unused).

    Args:
      model: an :class:`Autoencoder`.
      batch: (B, *data_shape).
      key: accepted for the common loss signature; the autoencoder is deterministic.

    Example:
      >>> model = mlp_autoencoder((4,), 2, rngs=nnx.Rngs(0), hidden_sizes=(8,))
      >>> loss, metrics = autoencoder_loss(model, jnp.full((3, 4), 0.5), jax.random.key(0))
      >>> loss.shape, bool(loss > 0)
      ((), True)
    """
    del key
    _check_model(model, (Autoencoder,))
    _check_batch(model, batch)  # finiteness too, while batch is concrete
    return _autoencoder_loss(model, batch)


@model_jit
def _autoencoder_loss(model: Autoencoder, batch: jax.Array
                      ) -> tuple[jax.Array, dict[str, jax.Array]]:
    x_hat = model.decode(model.encode(batch))
    sq = jnp.sum((batch - x_hat).reshape(batch.shape[0], -1) ** 2, axis=-1)  # (B,)
    loss = jnp.mean(sq)
    return loss, {"mse_per_dim": loss / _num_dims(model)}


# --- importance weighting -------------------------------------------------------------------


def _vae_log_weights(model: VAE, x: jax.Array, eps: jax.Array, *,
                     decoder_model: VAE | None = None, dreg_path: str | None = None) -> jax.Array:
    """Log weights ``log p(x, z_i) - log q(z_i | x)`` of ``z_i = mu + sigma eps_i``: (k, B).

    ``z`` comes from ``model``'s encoder and ``p(x|z)`` from ``decoder_model`` (default
    ``model``). The DReG surrogate's two paths (Tucker et al. 2019, eq. 7): ``"phi"`` stops
    the gradient through ``q``'s parameters in ``log q(z|x)`` (only ``z_i(phi)`` carries
    it), ``"theta"`` also stops ``z_i`` itself (only the decoder is differentiated).
    """
    decoder_model = model if decoder_model is None else decoder_model
    mu, logvar = model.encode(x)  # (B, L), shared by the k draws
    q_mu, q_logvar = mu, logvar
    if dreg_path is not None:
        q_mu, q_logvar = jax.lax.stop_gradient(mu), jax.lax.stop_gradient(logvar)

    def one(e: jax.Array) -> jax.Array:
        z = mu + jnp.exp(0.5 * logvar) * e  # (B, L), z_i ~ q(z|x)
        if dreg_path == "theta":
            z = jax.lax.stop_gradient(z)
        log_p = (decoder_log_likelihood(decoder_model, x, decoder_model.decode(z))
                 + gaussian.standard_normal_log_prob(z))  # log p(x, z_i)
        return log_p - gaussian.diag_normal_log_prob(z, q_mu, q_logvar)  # - log q(z_i|x)

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
    _check_model(model, (VAE, HierarchicalVAE))
    _check_batch(model, x)
    _check_eps(model, x, eps, k=True)
    if isinstance(model, HierarchicalVAE):
        return hvae_log_weights(model, x, *eps)
    if isinstance(model, VAE):
        return _vae_log_weights(model, x, eps)
    raise ValueError(f"model must be a VAE or HierarchicalVAE, got {type(model).__name__}")


def _draw_noise(model: Any, key: jax.Array, k: int | None, batch: int, dtype: Any) -> Any:
    """The standard normal draws of ``k`` samples per example (``k=None``: one, no k axis)."""
    lead = (batch,) if k is None else (k, batch)
    if isinstance(model, HierarchicalVAE):
        l1, l2 = model.latent_dims
        k2, k1 = jax.random.split(key)
        return (jax.random.normal(k2, (*lead, l2), dtype),
                jax.random.normal(k1, (*lead, l1), dtype))
    return jax.random.normal(key, (*lead, model.latent_dim), dtype)


@functools.partial(model_jit, static_argnames=("k", "chunk_size"))
def iwae_bound(model: VAE | HierarchicalVAE, batch: jax.Array, key: jax.Array, *, k: int,
               chunk_size: int | None = None) -> jax.Array:
    """The IWAE bound ``L_k(x) = logsumexp_i(log w_i) - log k`` of each example (nats).

    One compiled program per (model structure, shapes, ``k``, ``chunk_size``): the model is
    traced, so new weights reuse it.

    Args:
      model: a :class:`VAE` or :class:`HierarchicalVAE`.
      batch: (B, *data_shape).
      key: noise of the ``k`` samples.
      k: number of importance samples, >= 1 (``k = 1`` is the ELBO with a sampled KL).
      chunk_size: evaluate the samples ``chunk_size`` at a time (a ``lax.scan`` with a
        running log-sum-exp; memory O(chunk_size)); must divide ``k``. The chunks draw
        their noise from ``fold_in(key, chunk)``, so the estimate differs from the unchunked
        one in its noise only.

    Returns:
      (B,) bounds. Differentiating gives Burda et al.'s estimator (module docstring).

    Example:
      >>> model = mlp_vae((4,), 2, rngs=nnx.Rngs(0), hidden_sizes=(8,))
      >>> x = jnp.full((3, 4), 0.5)
      >>> iwae_bound(model, x, jax.random.key(0), k=8).shape
      (3,)
    """
    k = checks.positive_int("k", k)
    x = batch
    if chunk_size is None or chunk_size >= k:
        log_w = iwae_log_weights(model, x, _draw_noise(model, key, k, x.shape[0], x.dtype))
        return jax.nn.logsumexp(log_w, axis=0) - math.log(k)  # log (1/k) sum_i w_i
    chunk_size = checks.positive_int("chunk_size", chunk_size)
    if k % chunk_size:
        raise ValueError(f"chunk_size must divide k, got k={k}, chunk_size={chunk_size}")

    def body(acc: jax.Array, c: jax.Array) -> tuple[jax.Array, None]:
        noise = _draw_noise(model, jax.random.fold_in(key, c), chunk_size, x.shape[0], x.dtype)
        lse = jax.nn.logsumexp(iwae_log_weights(model, x, noise), axis=0)  # (B,)
        return jnp.logaddexp(acc, lse), None  # running log sum_i w_i

    init = jnp.full((x.shape[0],), -jnp.inf, x.dtype)
    total, _ = jax.lax.scan(body, init, jnp.arange(k // chunk_size))
    return total - math.log(k)


def iwae_loss(model: VAE | HierarchicalVAE, batch: jax.Array, key: jax.Array, *, k: int,
              estimator: str = "iwae") -> tuple[jax.Array, dict[str, jax.Array]]:
    """``-mean_b L_k(x_b)`` with the gradient estimator of choice.

    Args:
      model: a :class:`VAE` (either estimator) or :class:`HierarchicalVAE` (``"iwae"``).
      batch: (B, *data_shape).
      key: noise of the ``k`` samples.
      k: >= 1.
      estimator: ``"iwae"`` (Burda et al. 2016, eq. 14) or ``"dreg"`` (Tucker et al. 2019).
        The loss *value* is the same; only the gradient differs.

    Returns:
      ``(loss, metrics)`` with ``iwae_bound`` (nats) and ``bits_per_dim``. One compiled
      program per model structure, shapes, ``k`` and estimator (the model traced).

    Example:
      >>> model = mlp_vae((4,), 2, rngs=nnx.Rngs(0), hidden_sizes=(8,))
      >>> loss, metrics = iwae_loss(model, jnp.full((3, 4), 0.5), jax.random.key(0), k=4)
      >>> loss.shape, bool(jnp.isfinite(loss))
      ((), True)
    """
    k = checks.positive_int("k", k)
    checks.one_of("estimator", estimator, ESTIMATORS)
    _check_model(model, (VAE, HierarchicalVAE))
    _check_batch(model, batch)
    return _iwae_loss(model, batch, key, k=k, estimator=estimator)


@functools.partial(model_jit, static_argnames=("k", "estimator"))
def _iwae_loss(model: Any, batch: jax.Array, key: jax.Array, *, k: int,
               estimator: str) -> tuple[jax.Array, dict[str, jax.Array]]:
    x = batch
    if estimator == "iwae":
        bound = iwae_bound(model, x, key, k=k)
        loss = -jnp.mean(bound)
    else:
        if not isinstance(model, VAE):
            raise ValueError(f"estimator='dreg' needs a VAE model, got {type(model).__name__}")
        _check_batch(model, x)
        eps = _draw_noise(model, key, k, x.shape[0], x.dtype)
        frozen = jax.tree.map(jax.lax.stop_gradient, model)  # decoder theta held fixed
        # phi-path: gradient only through z_i(phi), q's parameters stopped (Tucker eq. 7)
        log_w_phi = _vae_log_weights(model, x, eps, decoder_model=frozen, dreg_path="phi")
        # theta-path: z_i and q stopped, so only the decoder is differentiated
        log_w_theta = _vae_log_weights(model, x, eps, dreg_path="theta")
        w = jax.nn.softmax(jax.lax.stop_gradient(log_w_theta), axis=0)  # (k, B), w~_i
        surrogate = jnp.sum(w * log_w_theta + w**2 * log_w_phi, axis=0)  # (B,)
        bound = jax.nn.logsumexp(jax.lax.stop_gradient(log_w_theta), axis=0) - math.log(k)
        # value: -mean bound; gradient: -mean grad(surrogate)
        loss = -jnp.mean(bound) - jnp.mean(surrogate - jax.lax.stop_gradient(surrogate))
    metrics = {"iwae_bound": jnp.mean(bound),
               "bits_per_dim": bits_per_dim(-jnp.mean(bound), _num_dims(model))}
    return loss, metrics
