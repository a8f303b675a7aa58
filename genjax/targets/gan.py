"""GAN pairs of known densities: the optimal discriminator and the value of the game at it.

Goodfellow et al. (2014), "Generative adversarial nets": for a fixed generator with density
``p_g`` the discriminator maximising ``V(D, G)`` is (Proposition 1)

    D*(x) = p_data(x) / (p_data(x) + p_g(x)) = sigmoid(log p_data(x) - log p_g(x))

and at it the game's value is (Theorem 1)

    V(D*, G) = E_{p_data}[log D*] + E_{p_g}[log(1 - D*)] = -log 4 + 2 JSD(p_data || p_g).

With both densities exact (:class:`genjax.targets.GaussianMixture`), a GAN's discriminator
and losses can be held against these numbers. The float64 twin is
:func:`genjax.oracle_targets.gan_value_at_optimum_1d` (quadrature of the JSD).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.targets.mixture import GaussianMixture

__all__ = ["optimal_discriminator", "gan_value_at_optimum"]


@jax.jit
def optimal_discriminator(log_p_data: jax.Array, log_p_g: jax.Array) -> jax.Array:
    """The optimal discriminator ``D*(x) = p_data / (p_data + p_g)`` (Goodfellow et al. 2014,
    Proposition 1), from log-densities: ``D* = sigmoid(log p_data - log p_g)``.

    Args:
      log_p_data: ``(...)`` log-densities of the data distribution at x.
      log_p_g: ``(...)`` log-densities of the generator distribution at the same x.

    Returns:
      ``(...)`` probabilities in [0, 1].
    """
    log_p_data, log_p_g = jnp.asarray(log_p_data), jnp.asarray(log_p_g)
    checks.same_shape("log_p_g", log_p_g, "log_p_data", log_p_data)
    return jax.nn.sigmoid(log_p_data - log_p_g)


@functools.partial(jax.jit, static_argnames="n")
def gan_value_at_optimum(
    p: GaussianMixture, q: GaussianMixture, key: jax.Array, n: int
) -> jax.Array:
    """Monte Carlo value of the GAN game at the optimal discriminator.

    ``V(D*, G) = E_{x~p}[log D*(x)] + E_{x~q}[log(1 - D*(x)] = -log 4 + 2 JSD(p || q)``
    (Goodfellow et al. 2014, Theorem 1), with ``p`` the data and ``q`` the generator.

    Estimator: ``n`` independent draws from each of ``p`` and ``q``;
    ``log D*(x) = log_sigmoid(log p(x) - log q(x))`` and
    ``log(1 - D*(x)) = log_sigmoid(log q(x) - log p(x))`` (stable forms); the two sample
    averages are summed. Unbiased, standard error ``O(1/sqrt(n))``; exactly ``-log 4``
    when ``p == q``. The result lies in ``[-log 4, 0]`` in expectation.

    ``p`` and ``q`` are traced pytrees: new mixtures of the same shapes reuse the program.

    Args:
      p: data distribution, any target with ``sample(key, n) -> (n, D)`` and ``log_prob``.
      q: generator distribution (same dimension).
      key: a PRNG key.
      n: number of samples from each (static).

    Returns:
      ``()`` the estimate.
    """
    if p.dim != q.dim:
        raise ValueError(f"q must have the dimension of p ({p.dim}), got {q.dim}")
    n = checks.positive_int("n", n)
    kp, kq = jax.random.split(key)
    xp = p.sample(kp, n)  # (n, D)
    xq = q.sample(kq, n)  # (n, D)
    term_p = jnp.mean(jax.nn.log_sigmoid(p.log_prob(xp) - q.log_prob(xp)))  # E_p log D*
    term_q = jnp.mean(jax.nn.log_sigmoid(q.log_prob(xq) - p.log_prob(xq)))  # E_q log(1-D*)
    return term_p + term_q
