"""Ancestral sampling from a Gaussian mixture (Bishop 2006, §8.1.2 and §9.2).

Draw the component ``z_n ~ Categorical(pi)``, then ``x_n = mu_{z_n} + L_{z_n} eps_n`` with
``eps_n ~ N(0, I_D)`` and ``Sigma_k = L_k L_k^T`` (Cholesky; ``sqrt`` of the variances for
diagonal and spherical covariances). :func:`sample_from_noise` is the deterministic map
from ``(z, eps)`` to ``x``, so the oracle can reproduce a draw exactly.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.mixture.params import GMMParams, check_params

__all__ = ["sample", "sample_from_noise"]


def sample_from_noise(params: GMMParams, components: jax.Array, eps: jax.Array) -> jax.Array:
    """``x_n = mu_{z_n} + L_{z_n} eps_n``.

    Args:
      params: a :class:`GMMParams` with K components in D dimensions.
      components: ``(n,)`` int component indices ``z_n`` in ``[0, K)``.
      eps: ``(n, D)`` standard normal noise.

    Returns:
      ``(n, D)`` samples.

    Example:
      >>> params = GMMParams(jnp.array([0.5, 0.5]), jnp.array([[-5.0], [5.0]]), jnp.ones(2))
      >>> sample_from_noise(params, jnp.array([0, 1]), jnp.zeros((2, 1))).tolist()
      [[-5.0], [5.0]]
    """
    check_params(params)
    components, eps = jnp.asarray(components), jnp.asarray(eps)
    checks.ndim("components", components, 1, "(n,)")
    checks.int_array_in_range("components", components, 0, params.num_components)
    checks.shape("eps", eps, (components.shape[0], params.dim))
    covs = jnp.asarray(params.covs)
    means = params.means[components]  # (n, D)
    if params.covariance_type == "full":
        chol = jnp.linalg.cholesky(covs)  # (K, D, D), Sigma_k = L_k L_k^T
        return means + jnp.einsum("nde,ne->nd", chol[components], eps)  # (n, D)
    if params.covariance_type == "diag":
        return means + jnp.sqrt(covs)[components] * eps  # (n, D) * (n, D)
    return means + jnp.sqrt(covs)[components][:, None] * eps  # (n, 1) * (n, D)


@functools.partial(jax.jit, static_argnames=("n",))
def _sample(key, params, *, n):
    component_key, eps_key = jax.random.split(key)
    dtype = params.means.dtype
    components = jax.random.categorical(component_key, jnp.log(params.weights), shape=(n,))
    eps = jax.random.normal(eps_key, (n, params.dim), dtype)  # eps_n ~ N(0, I_D)
    return sample_from_noise(params, components, eps)


def sample(key: jax.Array, params: GMMParams, n: int) -> jax.Array:
    """``n`` independent draws from the mixture.

    Args:
      key: a JAX key.
      params: a :class:`GMMParams` with K components in D dimensions.
      n: the number of samples, ``>= 1``.

    Returns:
      ``(n, D)`` samples, in the dtype of ``params.means``.

    Example:
      >>> params = GMMParams(jnp.array([0.5, 0.5]), jnp.zeros((2, 3)), jnp.ones(2))
      >>> sample(jax.random.key(0), params, 5).shape
      (5, 3)
    """
    check_params(params)
    return _sample(key, params, n=checks.positive_int("n", n))
