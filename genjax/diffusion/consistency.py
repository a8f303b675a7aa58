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

References:
  Song, Dhariwal, Chen, Sutskever, "Consistency Models", ICML 2023.
  Karras, Aittala, Aila, Laine, "Elucidating the Design Space of Diffusion-Based
  Generative Models", NeurIPS 2022.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = [
    "consistency_scalings",
    "consistency_fn",
    "karras_boundaries",
    "sample_indices",
    "ct_schedule",
    "ct_loss",
    "ct_loss_from_noise",
    "cd_loss",
    "cd_loss_from_noise",
    "consistency_sample",
    "consistency_sample_from_noise",
]

PyTree = Any
# model_fn(params, x_in (batch, ...), c_noise (batch,)) -> (batch, ...): the raw network F.
ModelFn = Callable[[PyTree, jax.Array, jax.Array], jax.Array]
# denoise_fn(x (batch, ...), sigma (batch,)) -> (batch, ...): a teacher's E[x_0 | x_sigma].
DenoiseFn = Callable[[jax.Array, jax.Array], jax.Array]

SIGMA_MIN = 0.002
SIGMA_MAX = 80.0
RHO = 7.0
SIGMA_DATA = 0.5


def _bc(c: jax.Array, x: jax.Array) -> jax.Array:
    c = jnp.asarray(c)
    return c.reshape(c.shape + (1,) * (x.ndim - c.ndim))


def _mean_sq(a: jax.Array, b: jax.Array) -> jax.Array:
    """Squared L2 distance per example, summed over non-batch axes: (batch,)."""
    d = (a - b).reshape(a.shape[0], -1)
    return jnp.sum(d * d, axis=-1)


def _distance(a: jax.Array, b: jax.Array, distance: str, huber_c: float | None) -> jax.Array:
    """Per-example distance ``d(a, b)``: (batch,).

    ``"l2"``: ``||a - b||^2`` (CM sec. 3). ``"pseudo_huber"``:
    ``sqrt(||a - b||^2 + c^2) - c`` with ``c = 0.00054 sqrt(dim)`` by default (Song &
    Dhariwal 2023, "Improved techniques for training consistency models", sec. 3.3).
    """
    sq = _mean_sq(a, b)
    if distance == "l2":
        return sq
    dim = a[0].size
    c = 0.00054 * dim**0.5 if huber_c is None else huber_c
    return jnp.sqrt(sq + c * c) - c


def _check_loss_options(distance: str, weighting: str) -> None:
    if distance not in ("l2", "pseudo_huber"):
        raise ValueError(f"distance must be 'l2' or 'pseudo_huber', got {distance!r}")
    if weighting not in ("uniform", "inverse_step"):
        raise ValueError(f"weighting must be 'uniform' or 'inverse_step', got {weighting!r}")


def _weight(weighting: str, t_cur: jax.Array, t_next: jax.Array) -> jax.Array:
    # lambda(t_n) = 1 (CM) or 1 / (t_{n+1} - t_n) (improved CT, sec. 3.4).
    return jnp.ones_like(t_cur) if weighting == "uniform" else 1.0 / (t_next - t_cur)


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
    sigma = jnp.asarray(sigma)
    c_skip = sigma_data**2 / ((sigma - eps) ** 2 + sigma_data**2)
    c_out = sigma_data * (sigma - eps) / jnp.sqrt(sigma_data**2 + sigma**2)
    c_in = jax.lax.rsqrt(sigma**2 + sigma_data**2)
    c_noise = 0.25 * jnp.log(sigma)
    return c_skip, c_out, c_in, c_noise


def consistency_fn(
    model_fn: ModelFn,
    params: PyTree,
    x: jax.Array,
    sigma: jax.Array,
    *,
    sigma_data: float = SIGMA_DATA,
    eps: float = SIGMA_MIN,
) -> jax.Array:
    """``f_theta(x, sigma) = c_skip x + c_out F_theta(c_in x, c_noise)`` (CM eq. 7).

    Args:
      model_fn: the raw network ``model_fn(params, x_in, c_noise)``.
      params: its parameters.
      x: (batch, ...) noisy points.
      sigma: (batch,) noise levels in [eps, T].

    Returns:
      (batch, ...) estimates of the trajectory origin; exactly ``x`` where ``sigma = eps``.
    """
    sigma = jnp.broadcast_to(jnp.asarray(sigma, x.dtype), x.shape[:1])
    c_skip, c_out, c_in, c_noise = consistency_scalings(sigma, sigma_data=sigma_data, eps=eps)
    out = model_fn(params, _bc(c_in, x) * x, c_noise)
    return _bc(c_skip, x) * x + _bc(c_out, x) * out


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
    """
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
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
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
    if noise_sampling == "uniform":
        return jax.random.randint(key, (batch,), 1, num_scales)
    if noise_sampling != "lognormal":
        raise ValueError(f"noise_sampling must be 'uniform' or 'lognormal', got {noise_sampling!r}")
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


def _draw_n_z(key, x0, num_scales, noise_sampling, sampling_kw):
    n_key, z_key = jax.random.split(key)
    n = sample_indices(n_key, x0.shape[0], num_scales, noise_sampling=noise_sampling,
                       **sampling_kw)  # (batch,) in [1, N-1]
    z = jax.random.normal(z_key, x0.shape, x0.dtype)
    return n, z


def _grid_kw(kwargs: dict) -> dict:
    return {k: kwargs[k] for k in ("sigma_min", "sigma_max", "rho") if k in kwargs}


def ct_loss_from_noise(
    params: PyTree,
    target_params: PyTree,
    x0: jax.Array,
    n: jax.Array,
    z: jax.Array,
    *,
    model_fn: ModelFn,
    num_scales: jax.Array | int,
    sigma_min: float = SIGMA_MIN,
    sigma_max: float = SIGMA_MAX,
    rho: float = RHO,
    sigma_data: float = SIGMA_DATA,
    distance: str = "l2",
    weighting: str = "uniform",
    huber_c: float | None = None,
) -> tuple[jax.Array, dict]:
    """Consistency-training loss on given ``n`` and ``z`` (CM Algorithm 3, eq. 10).

        L = mean_b lambda(t_n) d(f_theta(x + t_{n+1} z, t_{n+1}), f_theta^-(x + t_n z, t_n))

    (CM: ``d = ||.||^2``, ``lambda = 1``; the improved-CT choices are the pseudo-Huber
    distance and ``lambda = 1 / (t_{n+1} - t_n)``.)

    Args:
      params: online parameters theta (differentiated).
      target_params: target parameters theta^- (EMA of theta; no gradient).
      x0: (batch, ...) data.
      n: (batch,) int indices in [1, N-1].
      z: (batch, ...) standard normal noise.
      model_fn, num_scales, sigma_min, sigma_max, rho, sigma_data: see module docstring.
      distance: ``"l2"`` or ``"pseudo_huber"``; weighting: ``"uniform"`` or
        ``"inverse_step"``; huber_c: the pseudo-Huber ``c`` (default 0.00054 sqrt(dim)).

    Returns:
      ``(loss, {"loss": loss, "num_scales": N})``.
    """
    _check_loss_options(distance, weighting)
    kw = dict(sigma_min=sigma_min, sigma_max=sigma_max, rho=rho)
    t_next = karras_boundaries(n + 1, num_scales, **kw).astype(x0.dtype)  # (batch,) t_{n+1}
    t_cur = karras_boundaries(n, num_scales, **kw).astype(x0.dtype)  # (batch,) t_n
    f = functools.partial(consistency_fn, model_fn, sigma_data=sigma_data, eps=sigma_min)
    online = f(params, x0 + _bc(t_next, x0) * z, t_next)
    target = jax.lax.stop_gradient(f(target_params, x0 + _bc(t_cur, x0) * z, t_cur))
    per_example = _weight(weighting, t_cur, t_next) * _distance(online, target, distance, huber_c)
    loss = jnp.mean(per_example)
    return loss, {"loss": loss, "num_scales": jnp.asarray(num_scales)}


def ct_loss(
    params: PyTree,
    target_params: PyTree,
    x0: jax.Array,
    key: jax.Array,
    *,
    noise_sampling: str = "uniform",
    **kwargs: Any,
) -> tuple[jax.Array, dict]:
    """Consistency-training loss: draws ``n`` (:func:`sample_indices` with
    ``noise_sampling``) and ``z``, then :func:`ct_loss_from_noise` (same keyword arguments)."""
    n, z = _draw_n_z(key, x0, kwargs["num_scales"], noise_sampling, _grid_kw(kwargs))
    return ct_loss_from_noise(params, target_params, x0, n, z, **kwargs)


def _teacher_step(denoise_fn: DenoiseFn, x: jax.Array, t_from, t_to, solver: str) -> jax.Array:
    """One step of the PF-ODE ``dx/dt = (x - D(x, t)) / t`` from ``t_from`` to ``t_to``.

    Euler, or Heun (Karras et al. 2022, Algorithm 1, lines 5-8; CM eq. 8 uses it).
    """
    h = _bc(t_to - t_from, x)  # negative
    d_from = (x - denoise_fn(x, t_from)) / _bc(t_from, x)
    x_euler = x + h * d_from
    if solver == "euler":
        return x_euler
    d_to = (x_euler - denoise_fn(x_euler, t_to)) / _bc(t_to, x)
    return x + h * 0.5 * (d_from + d_to)


def cd_loss_from_noise(
    params: PyTree,
    target_params: PyTree,
    x0: jax.Array,
    n: jax.Array,
    z: jax.Array,
    *,
    model_fn: ModelFn,
    denoise_fn: DenoiseFn,
    num_scales: jax.Array | int,
    solver: str = "heun",
    sigma_min: float = SIGMA_MIN,
    sigma_max: float = SIGMA_MAX,
    rho: float = RHO,
    sigma_data: float = SIGMA_DATA,
    distance: str = "l2",
    weighting: str = "uniform",
    huber_c: float | None = None,
) -> tuple[jax.Array, dict]:
    """Consistency-distillation loss on given ``n`` and ``z`` (CM Algorithm 2, eq. 7).

        x_{n+1} = x + t_{n+1} z
        x_hat_n = ODE step of the teacher from t_{n+1} to t_n     (Euler or Heun)
        L = mean_b lambda(t_n) d(f_theta(x_{n+1}, t_{n+1}), f_theta^-(x_hat_n, t_n))

    Args:
      denoise_fn: the teacher ``D(x (batch, ...), sigma (batch,))``.
      solver: ``"euler"`` or ``"heun"``.
      others: as :func:`ct_loss_from_noise`.

    Returns:
      ``(loss, {"loss": loss})``.
    """
    if solver not in ("euler", "heun"):
        raise ValueError(f"solver must be 'euler' or 'heun', got {solver!r}")
    _check_loss_options(distance, weighting)
    kw = dict(sigma_min=sigma_min, sigma_max=sigma_max, rho=rho)
    t_next = karras_boundaries(n + 1, num_scales, **kw).astype(x0.dtype)
    t_cur = karras_boundaries(n, num_scales, **kw).astype(x0.dtype)
    x_next = x0 + _bc(t_next, x0) * z
    x_hat = jax.lax.stop_gradient(_teacher_step(denoise_fn, x_next, t_next, t_cur, solver))
    f = functools.partial(consistency_fn, model_fn, sigma_data=sigma_data, eps=sigma_min)
    online = f(params, x_next, t_next)
    target = jax.lax.stop_gradient(f(target_params, x_hat, t_cur))
    per_example = _weight(weighting, t_cur, t_next) * _distance(online, target, distance, huber_c)
    loss = jnp.mean(per_example)
    return loss, {"loss": loss}


def cd_loss(
    params: PyTree,
    target_params: PyTree,
    x0: jax.Array,
    key: jax.Array,
    *,
    noise_sampling: str = "uniform",
    **kwargs: Any,
) -> tuple[jax.Array, dict]:
    """Consistency-distillation loss: draws ``n`` (:func:`sample_indices`) and ``z``, then
    :func:`cd_loss_from_noise`."""
    n, z = _draw_n_z(key, x0, kwargs["num_scales"], noise_sampling, _grid_kw(kwargs))
    return cd_loss_from_noise(params, target_params, x0, n, z, **kwargs)


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


@functools.partial(jax.jit, static_argnames=("f", "sigmas", "sigma_min"))
def consistency_sample_from_noise(
    f: DenoiseFn,
    noise: jax.Array,
    *,
    sigmas: tuple[float, ...] = (SIGMA_MAX,),
    sigma_min: float = SIGMA_MIN,
) -> jax.Array:
    """Multistep consistency sampling on given noise (CM Algorithm 1).

        x = f(sigma_0 z_0, sigma_0)
        x = f(x + sqrt(sigma_k^2 - eps^2) z_k, sigma_k),   k = 1 .. S-1

    Args:
      f: the consistency function ``f(x (batch, ...), sigma (batch,))`` (static).
      noise: (S, batch, ...) standard normal noise, one slice per step.
      sigmas: S decreasing noise levels, ``sigmas[0] = T`` (one-step sampling: ``(T,)``).
      sigma_min: eps.

    Returns:
      (batch, ...) samples.
    """
    sigmas = _check_sigmas(sigmas, sigma_min)
    if noise.shape[0] != len(sigmas):
        raise ValueError(f"noise must have {len(sigmas)} slices (one per sigma), got {noise.shape}")
    batch = noise.shape[1]
    levels = jnp.asarray(sigmas, noise.dtype)  # (S,)
    x = f(levels[0] * noise[0], jnp.full((batch,), levels[0]))

    def body(x, inputs):
        sigma, z = inputs
        x_sigma = x + jnp.sqrt(sigma**2 - sigma_min**2) * z  # re-noise to level sigma
        return f(x_sigma, jnp.full((batch,), sigma)), None

    x, _ = jax.lax.scan(body, x, (levels[1:], noise[1:]))
    return x


@functools.partial(jax.jit, static_argnames=("f", "shape", "sigmas", "sigma_min", "dtype"))
def consistency_sample(
    key: jax.Array,
    f: DenoiseFn,
    shape: tuple[int, ...],
    *,
    sigmas: tuple[float, ...] = (SIGMA_MAX,),
    sigma_min: float = SIGMA_MIN,
    dtype: Any = jnp.float32,
) -> jax.Array:
    """One-step (``sigmas=(T,)``) or multistep consistency sampling (CM Algorithm 1).

    Args:
      key: PRNG key.
      f: consistency function ``f(x, sigma)``.
      shape: (batch, ...) of the samples.
      sigmas: decreasing noise levels, the first being T.
      sigma_min: eps.
      dtype: floating dtype.

    Returns:
      (batch, ...) samples.
    """
    sigmas = _check_sigmas(sigmas, sigma_min)
    noise = jax.random.normal(key, (len(sigmas), *shape), dtype)
    return consistency_sample_from_noise(f, noise, sigmas=sigmas, sigma_min=sigma_min)
