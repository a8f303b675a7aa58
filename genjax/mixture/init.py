"""Initialisation of EM: k-means++ seeding or random data points, then one M-step.

Both initialisers pick K data points as centres, assign every point to its nearest centre
(hard responsibilities ``gamma_nk = 1[k = argmin_j ||x_n - c_j||^2]``), and turn that
assignment into mixture parameters by one M-step (``genjax.mixture.em.m_step``) -- the
scheme of scikit-learn's ``init_params="k-means++"`` (which adds greedy local trials to
each draw; we draw plainly, as the paper) and ``"random_from_data"``.

* **k-means++** (Arthur & Vassilvitskii 2007, "k-means++: the advantages of careful
  seeding", §2.2): the first centre is a data point drawn with probability proportional
  to its sample weight; each next centre is drawn with probability proportional to
  ``w_n D(x_n)^2``, ``D(x_n)`` the distance to the nearest centre chosen so far.
* **random**: K distinct data points drawn without replacement with probabilities
  proportional to the sample weights, by the Gumbel-top-k trick (Kool, van Hoof &
  Welling 2019, "Stochastic beams and where to find them", §3): the K largest
  ``log w_n + G_n``, ``G_n ~ Gumbel(0, 1)``.

Noise is injectable: :func:`kmeans_plusplus_from_noise` and :func:`random_from_noise` are
deterministic in the uniforms / Gumbel variables they are handed, so the NumPy oracle can
follow the same draws.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.mixture.em import _m_step
from genjax.mixture.params import (
    GMMParams,
    check_data,
    check_fit_arguments,
    check_k,
    check_sample_weight,
)

__all__ = [
    "INIT_METHODS",
    "initialize",
    "kmeans_plusplus",
    "kmeans_plusplus_from_noise",
    "params_from_centres",
    "random_from_noise",
]

#: The named initialisations :func:`initialize` (and ``fit``) accept.
INIT_METHODS: tuple[str, ...] = ("kmeans++", "random")


def _squared_distances(x: jax.Array, centres: jax.Array) -> jax.Array:
    # ||x_n - c_k||^2: (n, D), (K, D) -> (n, K)
    return jnp.sum(jnp.square(x[:, None, :] - centres[None, :, :]), axis=-1)


def _inverse_cdf(p: jax.Array, u: jax.Array) -> jax.Array:
    """The index ``i`` with ``P_{i-1} <= u P_n < P_i`` (``P`` the cumulative sum of ``p``).

    A point of zero mass is never picked (its cumulative sum equals its predecessor's);
    if all mass is zero the last index is returned.
    """
    cdf = jnp.cumsum(p)  # (n,)
    index = jnp.searchsorted(cdf, u * cdf[-1], side="right")
    return jnp.minimum(index, p.shape[0] - 1).astype(jnp.int32)


def kmeans_plusplus_from_noise(
    x: jax.Array, uniforms: jax.Array, sample_weight: jax.Array
) -> jax.Array:
    """k-means++ seeding driven by given uniforms (Arthur & Vassilvitskii 2007, §2.2).

    Centre ``j`` is the data point at which the cumulative sum of ``p_n`` first exceeds
    ``u_j sum_n p_n``, with ``p_n = w_n`` for ``j = 0`` and ``p_n = w_n D(x_n)^2`` after.

    Args:
      x: ``(n, D)`` points.
      uniforms: ``(K,)`` numbers in ``[0, 1)``, one per centre.
      sample_weight: ``(n,)`` non-negative weights.

    Returns:
      ``(K,)`` int32 indices into ``x`` of the chosen centres.
    """
    x = check_data(x)
    uniforms = jnp.asarray(uniforms)
    checks.ndim("uniforms", uniforms, 1, "(K,)")
    checks.in_range("uniforms", uniforms, 0.0, 1.0, high_open=True)
    sample_weight = check_sample_weight(sample_weight, x.shape[0], x.dtype)
    k = uniforms.shape[0]
    first = _inverse_cdf(sample_weight, uniforms[0])
    # D(x_n)^2 to the nearest centre so far: (n,)
    d2 = jnp.sum(jnp.square(x - x[first][None, :]), axis=-1)
    indices = jnp.zeros((k,), jnp.int32).at[0].set(first)

    def add_centre(j, carry):
        indices, d2 = carry
        index = _inverse_cdf(sample_weight * d2, uniforms[j])  # P(n) ~ w_n D(x_n)^2
        d2 = jnp.minimum(d2, jnp.sum(jnp.square(x - x[index][None, :]), axis=-1))
        return indices.at[j].set(index), d2

    indices, _ = jax.lax.fori_loop(1, k, add_centre, (indices, d2))
    return indices


def random_from_noise(sample_weight: jax.Array, gumbels: jax.Array, k: int) -> jax.Array:
    """K distinct indices drawn without replacement, ``P ~ w_n``, by Gumbel-top-k.

    Args:
      sample_weight: ``(n,)`` non-negative weights.
      gumbels: ``(n,)`` standard Gumbel variables.
      k: the number of indices.

    Returns:
      ``(K,)`` int32 indices, in decreasing order of ``log w_n + G_n``.
    """
    sample_weight = jnp.asarray(sample_weight)
    checks.ndim("sample_weight", sample_weight, 1, "(n,)")
    gumbels = jnp.asarray(gumbels)
    checks.shape("gumbels", gumbels, sample_weight.shape)
    sample_weight = check_sample_weight(sample_weight, gumbels.shape[0], gumbels.dtype)
    k = check_k(k, gumbels.shape[0])
    _, indices = jax.lax.top_k(jnp.log(sample_weight) + gumbels, k)
    return indices.astype(jnp.int32)


def params_from_centres_(
    x: jax.Array, centres: jax.Array, w: jax.Array, reg_covar, covariance_type: str
) -> GMMParams:
    labels = jnp.argmin(_squared_distances(x, centres), axis=-1)  # (n,), nearest centre
    resp = jax.nn.one_hot(labels, centres.shape[0], dtype=x.dtype)  # (n, K) hard gamma_nk
    return _m_step(x, resp, w, reg_covar, covariance_type)


def params_from_centres(x: jax.Array, centres: jax.Array, *, covariance_type: str = "full",
                        reg_covar: float = 1e-6, sample_weight: jax.Array | None = None,
                        ) -> GMMParams:  # fmt: skip
    """Mixture parameters from a hard assignment of each point to its nearest centre.

    Args:
      x: ``(n, D)`` points.
      centres: ``(K, D)`` centres.
      covariance_type: ``"full"``, ``"diag"`` or ``"spherical"``.
      reg_covar: non-negative number added to every variance.
      sample_weight: optional ``(n,)`` non-negative weights.

    Returns:
      The :class:`GMMParams` of one M-step on the hard assignment.
    """
    x, w = check_fit_arguments(x, covariance_type=covariance_type, reg_covar=reg_covar,
                               sample_weight=sample_weight)  # fmt: skip
    centres = check_data(centres, "centres", dim=x.shape[1])
    return _params_from_centres_jit(x, centres, w, reg_covar, covariance_type=covariance_type)


_params_from_centres_jit = jax.jit(params_from_centres_, static_argnames=("covariance_type",))


def initialize_(
    key: jax.Array,
    x: jax.Array,
    w: jax.Array,
    reg_covar,
    *,
    k: int,
    covariance_type: str,
    method: str,
) -> GMMParams:
    """Unchecked, jit-able body of :func:`initialize` (used inside ``fit``)."""
    if method == "kmeans++":
        uniforms = jax.random.uniform(key, (k,), x.dtype)  # one u_j per centre
        indices = kmeans_plusplus_from_noise(x, uniforms, w)
    else:
        gumbels = jax.random.gumbel(key, (x.shape[0],), x.dtype)  # G_n
        indices = random_from_noise(w, gumbels, k)
    return params_from_centres_(x, x[indices], w, reg_covar, covariance_type)


@functools.partial(jax.jit, static_argnames=("k",))
def _kmeans_plusplus_jit(key, x, w, *, k):
    return kmeans_plusplus_from_noise(x, jax.random.uniform(key, (k,), x.dtype), w)


def kmeans_plusplus(
    key: jax.Array, x: jax.Array, k: int, *, sample_weight: jax.Array | None = None
) -> jax.Array:
    """k-means++ seeding: the indices of K data points chosen as centres.

    Args:
      key: a JAX key.
      x: ``(n, D)`` points.
      k: the number of centres, ``1 <= k <= n``.
      sample_weight: optional ``(n,)`` non-negative weights.

    Returns:
      ``(K,)`` int32 indices into ``x``.
    """
    x = check_data(x)
    k = check_k(k, x.shape[0])
    w = check_sample_weight(sample_weight, x.shape[0], x.dtype)
    return _kmeans_plusplus_jit(key, x, w, k=k)


_initialize_jit = jax.jit(initialize_, static_argnames=("k", "covariance_type", "method"))


def initialize(
    key: jax.Array,
    x: jax.Array,
    *,
    k: int,
    covariance_type: str = "full",
    method: str = "kmeans++",
    reg_covar: float = 1e-6,
    sample_weight: jax.Array | None = None,
) -> GMMParams:
    """Initial mixture parameters: K centres (``method``) then one M-step on hard labels.

    Args:
      key: a JAX key.
      x: ``(n, D)`` points.
      k: the number of components, ``1 <= k <= n``.
      covariance_type: ``"full"``, ``"diag"`` or ``"spherical"``.
      method: ``"kmeans++"`` or ``"random"`` (see the module docstring).
      reg_covar: non-negative number added to every variance.
      sample_weight: optional ``(n,)`` non-negative weights.

    Returns:
      A :class:`GMMParams`.
    """
    if method not in INIT_METHODS:
        raise ValueError(f"method must be one of {INIT_METHODS}, got {method!r}")
    x, w = check_fit_arguments(x, covariance_type=covariance_type, reg_covar=reg_covar,
                               sample_weight=sample_weight)  # fmt: skip
    k = check_k(k, x.shape[0])
    return _initialize_jit(
        key, x, w, reg_covar, k=k, covariance_type=covariance_type, method=method
    )
