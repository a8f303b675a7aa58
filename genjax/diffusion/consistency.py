"""Consistency models (Song, Dhariwal, Chen, Sutskever 2023).

A consistency function maps any point of a probability-flow ODE trajectory to the
trajectory's origin: ``f(x_t, t) = x_eps`` for all ``t in [eps, T]``. The paper works in
the EDM parameterisation (Karras et al. 2022): ``x_t = x_0 + t z`` (``t`` is the noise
std ``sigma``), ``eps = 0.002``, ``T = 80``, and the PF-ODE ``dx/dt = -t score(x, t)``.

Parameterisation (eq. 7 and Appendix C), which makes the boundary condition
``f(x, eps) = x`` hold exactly for any network ``F``:

    f_theta(x, t) = c_skip(t) x + c_out(t) F_theta(c_in(t) x, c_noise(t))
    c_skip(t) = sigma_data^2 / ((t - eps)^2 + sigma_data^2)
    c_out(t)  = sigma_data (t - eps) / sqrt(sigma_data^2 + t^2)
    c_in(t)   = 1 / sqrt(t^2 + sigma_data^2),   c_noise(t) = log(t) / 4   (EDM's choices)

Discretisation: the Karras boundaries (Karras et al. 2022, eq. 5; CM sec. 3)

    t_i = (eps^(1/rho) + (i - 1)/(N - 1) (T^(1/rho) - eps^(1/rho)))^rho,   i = 1 .. N.

Losses (``d`` the squared L2 distance, averaged over the batch; ``theta^-`` the target
network, under ``stop_gradient``), with ``n ~ U{1, ..., N - 1}``, ``z ~ N(0, I)``:

* consistency distillation (CD, Algorithm 2, eq. 7):
  ``d(f_theta(x + t_{n+1} z, t_{n+1}), f_theta^-(x_hat_{t_n}, t_n))``, with ``x_hat_{t_n}``
  one Euler or Heun step of the teacher's PF-ODE from ``t_{n+1}`` to ``t_n``;
* consistency training (CT, Algorithm 3, eq. 10): the teacher's step replaced by the
  unbiased one-sample estimate ``x_hat_{t_n} = x + t_n z`` (same ``x``, same ``z``).

CT's schedule (Appendix C): ``N(k) = ceil(sqrt(k/K ((s_1 + 1)^2 - s_0^2) + s_0^2) - 1) + 1``
and the target EMA rate ``mu(k) = exp(s_0 log(mu_0) / N(k))``.

Sampling (Algorithm 1): ``x = f(T z, T)``, then for each ``tau`` of a decreasing list
``x <- f(x + sqrt(tau^2 - eps^2) z, tau)``; one step is one network evaluation.

This module holds the parameterisation, the discretisation and the sampler; the CT and CD
losses are in :mod:`genjax.diffusion.consistency_losses`. The model of the sampler is the
consistency function ``f(x, sigma)``, a callable pytree -- a network wrapped by
:func:`consistency_model` (:class:`ConsistencyFunction`), or an exact one -- traced by the
compiled sampler (new weights of the same shapes reuse the program); a plain Python function
is static and compiles anew per function object.

References:
  Song, Dhariwal, Chen, Sutskever, "Consistency Models", ICML 2023.
  Karras, Aittala, Aila, Laine, "Elucidating the Design Space of Diffusion-Based
  Generative Models", NeurIPS 2022.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from genjax import checks
from genjax.diffusion._common import bcast, call_model, check_noises, check_shape, check_x
from genjax.model import Model, model_jit

__all__ = [
    "SIGMA_MIN",
    "SIGMA_MAX",
    "RHO",
    "SIGMA_DATA",
    "consistency_scalings",
    "consistency_fn",
    "ConsistencyFunction",
    "consistency_model",
    "karras_boundaries",
    "sample_indices",
    "ct_schedule",
    "consistency_sample",
    "consistency_sample_from_noise",
]

SIGMA_MIN = 0.002
"""The smallest noise level ``sigma_min = epsilon`` (Song et al. 2023, sec. 5)."""
SIGMA_MAX = 80.0
"""The largest noise level ``sigma_max = T`` (Karras et al. 2022)."""
RHO = 7.0
"""The exponent ``rho`` of the Karras discretisation of ``[sigma_min, sigma_max]``."""
SIGMA_DATA = 0.5
"""The data standard deviation ``sigma_data`` of the skip and output scalings."""


def consistency_scalings(
    sigma: jax.Array, *, sigma_data: float = SIGMA_DATA, eps: float = SIGMA_MIN
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """``(c_skip, c_out, c_in, c_noise)`` at noise level ``sigma`` (CM Appendix C).

        c_skip = sigma_data^2 / ((sigma - eps)^2 + sigma_data^2)
        c_out  = sigma_data (sigma - eps) / sqrt(sigma_data^2 + sigma^2)
        c_in   = 1 / sqrt(sigma^2 + sigma_data^2),   c_noise = log(sigma) / 4

    Args:
      sigma: (batch,) noise levels >= eps.

    Returns:
      four (batch,) arrays; ``c_skip(eps) = 1`` and ``c_out(eps) = 0`` exactly.
    """
    checks.positive("sigma_data", sigma_data)
    checks.positive("eps", eps)
    # sigma >= eps (checked when concrete), up to float32 rounding of eps itself.
    checks.in_range("sigma", sigma, eps * (1.0 - 1e-6))
    sigma = jnp.asarray(sigma)
    c_skip = sigma_data**2 / ((sigma - eps) ** 2 + sigma_data**2)
    c_out = sigma_data * (sigma - eps) / jnp.sqrt(sigma_data**2 + sigma**2)
    c_in = jax.lax.rsqrt(sigma**2 + sigma_data**2)
    c_noise = 0.25 * jnp.log(sigma)
    return c_skip, c_out, c_in, c_noise


def consistency_fn(
    model: Model,
    x: jax.Array,
    sigma: jax.Array,
    *,
    sigma_data: float = SIGMA_DATA,
    eps: float = SIGMA_MIN,
) -> jax.Array:
    """``f_theta(x, sigma) = c_skip x + c_out F_theta(c_in x, c_noise)`` (CM eq. 7).

    Args:
      model: the raw network ``F``, a callable pytree ``model(x_in (batch, ...), c_noise
        (batch,)) -> (batch, ...)``.
      x: (batch, ...) noisy points.
      sigma: (batch,) noise levels in [eps, T] (or a scalar).
      sigma_data, eps: the parameterisation's constants.

    Returns:
      (batch, ...) estimates of the trajectory origin; exactly ``x`` where ``sigma = eps``.

    Example:
      >>> net = jax.tree_util.Partial(lambda x, c: jnp.ones_like(x))
      >>> x = jnp.full((2, 1), 3.0)
      >>> consistency_fn(net, x, jnp.full(2, 0.002)).tolist()  # f(x, eps) = x, the boundary
      [[3.0], [3.0]]
    """
    sigma = jnp.broadcast_to(jnp.asarray(sigma, x.dtype), x.shape[:1])
    c_skip, c_out, c_in, c_noise = consistency_scalings(sigma, sigma_data=sigma_data, eps=eps)
    out = call_model(model, bcast(c_in, x) * x, c_noise)
    return bcast(c_skip, x) * x + bcast(c_out, x) * out


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity (arrays inside)
class ConsistencyFunction:
    """A network ``F`` as the consistency function ``f(x, sigma)`` of CM eq. 7, a model pytree.

    Attributes:
      model: the raw network ``F(x_in (batch, ...), c_noise (batch,)) -> (batch, ...)``
        (its arrays are this pytree's leaves).
      sigma_data, eps: the parameterisation's constants (static).

    Example:
      >>> f = ConsistencyFunction(jax.tree_util.Partial(lambda x, c: jnp.ones_like(x)))
      >>> f(jnp.full((2, 1), 3.0), jnp.full(2, 0.002)).tolist()  # f(x, eps) = x
      [[3.0], [3.0]]
    """

    model: Model
    sigma_data: float = dataclasses.field(default=SIGMA_DATA, metadata={"static": True})
    eps: float = dataclasses.field(default=SIGMA_MIN, metadata={"static": True})

    def __call__(self, x: jax.Array, sigma: jax.Array) -> jax.Array:
        """``f(x (batch, ...), sigma (batch,)) -> (batch, ...)``."""
        return consistency_fn(self.model, x, sigma, sigma_data=self.sigma_data, eps=self.eps)


def consistency_model(
    model: Model, *, sigma_data: float = SIGMA_DATA, eps: float = SIGMA_MIN
) -> ConsistencyFunction:
    """The :class:`ConsistencyFunction` of a raw network: the model of
    :func:`consistency_sample`.

    Example:
      >>> f = consistency_model(jax.tree_util.Partial(lambda x, c: jnp.zeros_like(x)))
      >>> consistency_sample(jax.random.key(0), f, (3, 2), sigmas=(80.0, 0.8)).shape
      (3, 2)
    """
    return ConsistencyFunction(model, float(checks.positive("sigma_data", sigma_data)),
                               float(checks.positive("eps", eps)))


def _check_karras(sigma_min: float, sigma_max: float, rho: float) -> None:
    checks.positive("sigma_min", sigma_min)
    checks.in_range("sigma_max", sigma_max, sigma_min, low_open=True)
    checks.positive("rho", rho)


def karras_boundaries(
    i: jax.Array, num_scales: jax.Array | int, *, sigma_min: float = SIGMA_MIN,
    sigma_max: float = SIGMA_MAX, rho: float = RHO,
) -> jax.Array:
    """Karras boundary ``t_i`` for a 1-based index ``i`` in ``1 .. N`` (N may be traced).

        t_i = (eps^(1/rho) + (i - 1)/(N - 1) (T^(1/rho) - eps^(1/rho)))^rho

    Args:
      i: integer array of indices (any shape), 1 <= i <= N.
      num_scales: N >= 2 (a Python int or a traced integer).

    Returns:
      float32 (or float64 under x64) array shaped like ``i``; ``t_1 = eps``, ``t_N = T``.

    Example:
      >>> b = karras_boundaries(jnp.array([1, 18]), 18)  # i = 1 .. N
      >>> [round(float(v), 4) for v in b]
      [0.002, 80.0]
    """
    if checks.is_concrete(num_scales):
        checks.int_in_range("num_scales", int(np.asarray(num_scales)), 2, 2**31 - 1)
        checks.int_array_in_range("i", jnp.asarray(i), 1, int(np.asarray(num_scales)) + 1)
    _check_karras(sigma_min, sigma_max, rho)
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64)
    u = (jnp.asarray(i, dtype) - 1.0) / (jnp.asarray(num_scales, dtype) - 1.0)  # in [0, 1]
    a, b = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    return (a + u * (b - a)) ** rho


def ct_schedule(
    step: jax.Array | int, total_steps: int, *, s0: int = 2, s1: int = 150, mu0: float = 0.9
) -> tuple[jax.Array, jax.Array]:
    """The CT discretisation ``N(k)`` and target EMA rate ``mu(k)`` (CM Appendix C).

        N(k)  = ceil(sqrt(k/K ((s1 + 1)^2 - s0^2) + s0^2) - 1) + 1
        mu(k) = exp(s0 log(mu0) / N(k))

    Args:
      step: training step k in [0, K] (may be traced).
      total_steps: K >= 1.

    Returns:
      ``(N (int32 scalar), mu (float scalar))``.

    Example:
      >>> n, mu = ct_schedule(0, 1000)  # N(0) = s0, mu(0) = mu0
      >>> int(n), round(float(mu), 4)
      (2, 0.9)
    """
    checks.positive_int("total_steps", total_steps)
    k = jnp.asarray(step, jnp.float32)
    n = jnp.ceil(jnp.sqrt(k / total_steps * ((s1 + 1) ** 2 - s0**2) + s0**2) - 1.0) + 1.0
    mu = jnp.exp(s0 * jnp.log(mu0) / n)
    return n.astype(jnp.int32), mu


def sample_indices(
    key: jax.Array,
    batch: int,
    num_scales: jax.Array | int,
    *,
    noise_sampling: str = "uniform",
    p_mean: float = -1.1,
    p_std: float = 2.0,
    sigma_min: float = SIGMA_MIN,
    sigma_max: float = SIGMA_MAX,
    rho: float = RHO,
) -> jax.Array:
    """Draw the discretisation indices ``n`` in ``{1, ..., N - 1}``: (batch,) int32.

    ``"uniform"``: ``n ~ U{1, ..., N-1}`` (CM, Algorithms 2-3). ``"lognormal"``: the
    improved-CT choice (Song & Dhariwal 2023, sec. 3.5)

        p(n) ∝ erf((log t_{n+1} - P_mean) / (sqrt2 P_std))
               - erf((log t_n - P_mean) / (sqrt2 P_std)),

    i.e. ``P(t_n <= sigma < t_{n+1})`` for ``log sigma ~ N(P_mean, P_std^2)`` truncated to
    ``[t_1, t_N]``: drawn exactly by inverting the truncated normal CDF and reading off the
    Karras interval that ``sigma`` falls in.
    """
    checks.one_of("noise_sampling", noise_sampling, ("uniform", "lognormal"))
    batch = checks.positive_int("batch", batch)
    if checks.is_concrete(num_scales):
        checks.int_in_range("num_scales", int(np.asarray(num_scales)), 2, 2**31 - 1)
    _check_karras(sigma_min, sigma_max, rho)
    checks.positive("p_std", p_std)
    if noise_sampling == "uniform":
        return jax.random.randint(key, (batch,), 1, num_scales)
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64)
    lo = jax.scipy.special.ndtr((jnp.log(jnp.asarray(sigma_min, dtype)) - p_mean) / p_std)
    hi = jax.scipy.special.ndtr((jnp.log(jnp.asarray(sigma_max, dtype)) - p_mean) / p_std)
    u = jax.random.uniform(key, (batch,), dtype, minval=lo, maxval=hi)
    log_sigma = p_mean + p_std * jax.scipy.special.ndtri(u)  # truncated lognormal sigma
    # Invert t(u) = (a + u (b - a))^rho: the position of sigma on the Karras grid in [0, 1].
    a, b = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    pos = (jnp.exp(log_sigma / rho) - a) / (b - a)
    n = jnp.floor(pos * (jnp.asarray(num_scales, dtype) - 1.0)).astype(jnp.int32) + 1
    return jnp.clip(n, 1, jnp.asarray(num_scales, jnp.int32) - 1)  # t_n <= sigma < t_{n+1}


def _check_sigmas(sigmas: tuple[float, ...], sigma_min: float) -> tuple[float, ...]:
    sigmas = tuple(float(s) for s in sigmas)
    if not sigmas:
        raise ValueError("sigmas must hold at least one noise level")
    decreasing = all(a > b for a, b in zip(sigmas, sigmas[1:], strict=False))
    if any(s <= sigma_min for s in sigmas) or not decreasing:
        raise ValueError(
            f"sigmas must be strictly decreasing and > sigma_min={sigma_min}, got {sigmas}"
        )
    return sigmas


def _multistep(model, x_T, noises, sigmas, sigma_min, return_trajectory):
    levels = jnp.asarray(sigmas, x_T.dtype)  # (S,)
    x = call_model(model, x_T, levels[0])  # x = f(sigma_0 z_0, sigma_0)

    def body(x, inputs):
        sigma, z = inputs
        x_sigma = x + jnp.sqrt(sigma**2 - sigma_min**2) * z  # re-noise to level sigma
        x = call_model(model, x_sigma, sigma)
        return x, (x if return_trajectory else None)

    if len(sigmas) == 1:  # one-step sampling: no re-noising loop
        return (x, x[None]) if return_trajectory else x
    out, path = jax.lax.scan(body, x, (levels[1:], noises))
    if not return_trajectory:
        return out
    return out, jnp.concatenate([x[None], path], axis=0)  # (S, batch, ...)


@functools.partial(model_jit, static_argnames=("sigmas", "sigma_min", "return_trajectory"))
def consistency_sample_from_noise(
    model: Model,
    x_T: jax.Array,
    noises: jax.Array,
    *,
    sigmas: tuple[float, ...] = (SIGMA_MAX,),
    sigma_min: float = SIGMA_MIN,
    return_trajectory: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Multistep consistency sampling on given noise (CM Algorithm 1).

        x = f(x_T, sigma_0),   x_T = sigma_0 z_0
        x = f(x + sqrt(sigma_k^2 - eps^2) z_k, sigma_k),   k = 1 .. S-1

    Args:
      model: the consistency function ``model(x (batch, ...), sigma (batch,))`` (traced; a
        plain function is static).
      x_T: (batch, ...) the starting point ``sigma_0 z_0``.
      noises: (S - 1, batch, ...) standard normal ``z_1 .. z_{S-1}`` (``(0, batch, ...)``
        for one-step sampling).
      sigmas: S decreasing noise levels, ``sigmas[0] = T`` (one-step sampling: ``(T,)``;
        static).
      sigma_min: eps (static).
      return_trajectory: also return the ``(S, batch, ...)`` outputs of every step.

    Returns:
      (batch, ...) samples (and the trajectory).

    Example:
      >>> f = consistency_model(jax.tree_util.Partial(lambda x, c: jnp.zeros_like(x)))
      >>> x_T = 80.0 * jnp.ones((3, 2))
      >>> consistency_sample_from_noise(f, x_T, jnp.zeros((1, 3, 2)), sigmas=(80.0, 0.8)).shape
      (3, 2)
    """
    sigmas = _check_sigmas(sigmas, sigma_min)
    x_T = check_x("x_T", x_T)
    noises = check_noises("noises", noises, x_T, len(sigmas) - 1)
    return _multistep(model, x_T, noises, sigmas, sigma_min, return_trajectory)


@functools.partial(
    model_jit, static_argnames=("shape", "sigmas", "sigma_min", "dtype", "return_trajectory")
)
def consistency_sample(
    key: jax.Array,
    model: Model,
    shape: tuple[int, ...],
    *,
    sigmas: tuple[float, ...] = (SIGMA_MAX,),
    sigma_min: float = SIGMA_MIN,
    dtype: Any = jnp.float32,
    return_trajectory: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """One-step (``sigmas=(T,)``) or multistep consistency sampling (CM Algorithm 1).

    ``z = normal(key, (S, *shape))``: ``x_T = sigmas[0] z[0]`` and the re-noising draws
    ``z[1:]``, as :func:`consistency_sample_from_noise` takes them.

    Args:
      key: PRNG key.
      model: the consistency function ``model(x (batch, ...), sigma (batch,))``, e.g.
        :func:`consistency_model` of a network (traced: new weights do not recompile; a plain
        function is static and compiles once per function object).
      shape: (batch, ...) of the samples.
      sigmas: decreasing noise levels, the first being T.
      sigma_min: eps.
      dtype: floating dtype.
      return_trajectory: also return the ``(S, *shape)`` outputs of every step.

    Returns:
      (batch, ...) samples (and the trajectory).

    Example:
      >>> net = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
      >>> f = consistency_model(jax.tree_util.Partial(lambda n, x, c: n(x), net))
      >>> consistency_sample(jax.random.key(0), f, (512, 2), sigmas=(80.0, 0.8)).shape
      (512, 2)
    """
    sigmas = _check_sigmas(sigmas, sigma_min)
    shape = check_shape(shape)
    z = jax.random.normal(key, (len(sigmas), *shape), dtype)
    return _multistep(model, sigmas[0] * z[0], z[1:], sigmas, sigma_min, return_trajectory)
