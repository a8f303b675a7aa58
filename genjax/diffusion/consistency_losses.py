"""Consistency training and distillation losses (Song, Dhariwal, Chen, Sutskever 2023).

With the Karras boundaries ``t_1 = eps < ... < t_N = T`` (:func:`karras_boundaries`),
``n ~ U{1, ..., N - 1}`` (or the improved-CT lognormal choice, :func:`sample_indices`),
``z ~ N(0, I)``, the consistency function ``f_theta`` of the online network and
``f_theta^-`` of the target network (under ``stop_gradient``) -- both the parameterisation
of CM eq. 7 (:func:`consistency_fn`) around a raw network ``F``:

* consistency training (CT, Algorithm 3, eq. 10):

      L = mean_b lambda(t_n) d(f_theta(x + t_{n+1} z, t_{n+1}), f_theta^-(x + t_n z, t_n))

* consistency distillation (CD, Algorithm 2, eq. 7): the target's input is one Euler or Heun
  step of a teacher's PF-ODE ``dx/dt = (x - D(x, t)) / t`` from ``x + t_{n+1} z`` down to
  ``t_n``.

``d`` is the squared L2 distance (CM) or the pseudo-Huber distance
``sqrt(||a - b||^2 + c^2) - c``, ``c = 0.00054 sqrt(dim)`` (Song & Dhariwal 2023, sec. 3.3);
``lambda = 1`` (CM) or ``1 / (t_{n+1} - t_n)`` (improved CT, sec. 3.4).

Argument order. The losses follow the family's loss protocol ``loss(model, batch, key, *,
...)``: the online network first (``jax.grad`` differentiates it), the data second, the key
third; the target network theta^- is the keyword ``target_model`` (``None``: the online
network itself under ``stop_gradient``, the improved-CT choice ``mu0 = 0``) and the CD
teacher the keyword ``teacher``. (Before, ``ct_loss(params, target_params, x0, key)`` put
the key fourth.) ``model`` and ``target_model`` are raw networks ``F(x_in (batch, ...),
c_noise (batch,)) -> (batch, ...)``, callable pytrees; ``teacher`` is a denoiser
``D(x (batch, ...), sigma (batch,))``.

References:
  Song, Dhariwal, Chen, Sutskever, "Consistency Models", ICML 2023.
  Song, Dhariwal, "Improved Techniques for Training Consistency Models", ICLR 2024.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.diffusion._common import bcast, check_x, sum_nonbatch
from genjax.diffusion.consistency import (
    RHO,
    SIGMA_DATA,
    SIGMA_MAX,
    SIGMA_MIN,
    consistency_fn,
    karras_boundaries,
    sample_indices,
)
from genjax.model import Model

__all__ = ["ct_loss", "ct_loss_from_noise", "cd_loss", "cd_loss_from_noise"]

_DISTANCES = ("l2", "pseudo_huber")
_WEIGHTINGS = ("uniform", "inverse_step")
_SOLVERS = ("euler", "heun")


def _distance(a: jax.Array, b: jax.Array, distance: str, huber_c: float | None) -> jax.Array:
    """Per-example distance ``d(a, b)``: (batch,) (module docstring)."""
    sq = sum_nonbatch(jnp.square(a - b))  # ||a - b||^2 per example
    if distance == "l2":
        return sq
    dim = a[0].size
    c = 0.00054 * dim**0.5 if huber_c is None else huber_c
    return jnp.sqrt(sq + c * c) - c


def _check_options(distance: str, weighting: str) -> None:
    checks.one_of("distance", distance, _DISTANCES)
    checks.one_of("weighting", weighting, _WEIGHTINGS)


def _boundaries(n, num_scales, dtype, sigma_min, sigma_max, rho):
    """``(t_n, t_{n+1})``, each (batch,), on the Karras grid of N = ``num_scales``."""
    kw = dict(sigma_min=sigma_min, sigma_max=sigma_max, rho=rho)
    t_cur = karras_boundaries(n, num_scales, **kw).astype(dtype)  # (batch,) t_n
    t_next = karras_boundaries(n + 1, num_scales, **kw).astype(dtype)  # (batch,) t_{n+1}
    return t_cur, t_next


def _consistency_loss(
    model, target_model, x_next, t_next, x_cur, t_cur, *, sigma_min, sigma_data, distance,
    weighting, huber_c,
):
    """``mean_b lambda(t_n) d(f_theta(x_next, t_{n+1}), sg f_theta^-(x_cur, t_n))``."""
    kw = dict(sigma_data=sigma_data, eps=sigma_min)
    online = consistency_fn(model, x_next, t_next, **kw)
    target_net = model if target_model is None else target_model
    target = jax.lax.stop_gradient(consistency_fn(target_net, x_cur, t_cur, **kw))
    # lambda(t_n) = 1 (CM) or 1 / (t_{n+1} - t_n) (improved CT, sec. 3.4).
    weight = jnp.ones_like(t_cur) if weighting == "uniform" else 1.0 / (t_next - t_cur)
    return jnp.mean(weight * _distance(online, target, distance, huber_c))


def ct_loss_from_noise(
    model: Model,
    batch: jax.Array,
    n: jax.Array,
    z: jax.Array,
    *,
    target_model: Model | None = None,
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

    Args:
      model: the online raw network ``F_theta`` (differentiated).
      batch: (batch, ...) data ``x``.
      n: (batch,) int indices in [1, N-1].
      z: (batch, ...) standard normal noise.
      target_model: the target raw network ``F_theta^-`` (an EMA of theta; no gradient);
        ``None``: ``model`` itself under ``stop_gradient``.
      num_scales: N >= 2 (may be traced, e.g. from :func:`ct_schedule`).
      sigma_min, sigma_max, rho: the Karras grid (eps, T, rho).
      sigma_data: the parameterisation's ``sigma_data``.
      distance: ``"l2"`` or ``"pseudo_huber"``; weighting: ``"uniform"`` or
        ``"inverse_step"``; huber_c: the pseudo-Huber ``c`` (default 0.00054 sqrt(dim)).

    Returns:
      ``(loss, {"loss": loss, "num_scales": N})``.
    """
    _check_options(distance, weighting)
    x0 = check_x("batch", batch)
    t_cur, t_next = _boundaries(n, num_scales, x0.dtype, sigma_min, sigma_max, rho)
    loss = _consistency_loss(
        model, target_model, x0 + bcast(t_next, x0) * z, t_next, x0 + bcast(t_cur, x0) * z,
        t_cur, sigma_min=sigma_min, sigma_data=sigma_data, distance=distance,
        weighting=weighting, huber_c=huber_c,
    )
    return loss, {"loss": loss, "num_scales": jnp.asarray(num_scales, jnp.float32)}


def _draw_n_z(key, x0, num_scales, noise_sampling, sigma_min, sigma_max, rho):
    """``n_key, z_key = split(key)``: ``n`` by :func:`sample_indices`, ``z ~ N(0, I)``."""
    x0 = check_x("batch", x0)
    n_key, z_key = jax.random.split(key)
    n = sample_indices(n_key, x0.shape[0], num_scales, noise_sampling=noise_sampling,
                       sigma_min=sigma_min, sigma_max=sigma_max, rho=rho)  # (batch,) in [1, N-1]
    z = jax.random.normal(z_key, x0.shape, x0.dtype)
    return n, z


def ct_loss(
    model: Model,
    batch: jax.Array,
    key: jax.Array,
    *,
    target_model: Model | None = None,
    num_scales: jax.Array | int,
    noise_sampling: str = "uniform",
    sigma_min: float = SIGMA_MIN,
    sigma_max: float = SIGMA_MAX,
    rho: float = RHO,
    sigma_data: float = SIGMA_DATA,
    distance: str = "l2",
    weighting: str = "uniform",
    huber_c: float | None = None,
) -> tuple[jax.Array, dict]:
    """Consistency-training loss (CM Algorithm 3): draws ``n`` and ``z``, then
    :func:`ct_loss_from_noise`.

    With ``n_key, z_key = jax.random.split(key)``: ``n = sample_indices(n_key, batch,
    num_scales, noise_sampling=...)`` and ``z = normal(z_key, batch.shape)``.

    Args:
      model: the online raw network ``F_theta(x_in, c_noise)``, a callable pytree
        (differentiated).
      batch: (batch, ...) data.
      key: PRNG key.
      noise_sampling: ``"uniform"`` or ``"lognormal"`` (:func:`sample_indices`).
      target_model, num_scales, others: as :func:`ct_loss_from_noise`.

    Returns:
      ``(loss, {"loss", "num_scales"})``.

    Example:
      >>> (value, metrics), grads = jax.value_and_grad(ct_loss, has_aux=True)(
      ...     net, x, key, target_model=ema_net, num_scales=18)
    """
    n, z = _draw_n_z(key, batch, num_scales, noise_sampling, sigma_min, sigma_max, rho)
    return ct_loss_from_noise(
        model, batch, n, z, target_model=target_model, num_scales=num_scales,
        sigma_min=sigma_min, sigma_max=sigma_max, rho=rho, sigma_data=sigma_data,
        distance=distance, weighting=weighting, huber_c=huber_c,
    )


def _teacher_step(teacher: Model, x: jax.Array, t_from, t_to, solver: str) -> jax.Array:
    """One step of the PF-ODE ``dx/dt = (x - D(x, t)) / t`` from ``t_from`` to ``t_to``.

    Euler, or Heun (Karras et al. 2022, Algorithm 1, lines 5-8; CM eq. 8 uses it).
    """
    h = bcast(t_to - t_from, x)  # negative
    d_from = (x - teacher(x, t_from)) / bcast(t_from, x)
    x_euler = x + h * d_from
    if solver == "euler":
        return x_euler
    d_to = (x_euler - teacher(x_euler, t_to)) / bcast(t_to, x)
    return x + h * 0.5 * (d_from + d_to)


def cd_loss_from_noise(
    model: Model,
    batch: jax.Array,
    n: jax.Array,
    z: jax.Array,
    *,
    teacher: Model,
    target_model: Model | None = None,
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
      model: the online raw network (differentiated).
      batch, n, z: as :func:`ct_loss_from_noise`.
      teacher: the teacher denoiser ``D(x (batch, ...), sigma (batch,))``, a callable pytree
        (no gradient flows into it).
      solver: ``"euler"`` or ``"heun"``.
      target_model, num_scales, others: as :func:`ct_loss_from_noise`.

    Returns:
      ``(loss, {"loss": loss})``.
    """
    checks.one_of("solver", solver, _SOLVERS)
    _check_options(distance, weighting)
    x0 = check_x("batch", batch)
    t_cur, t_next = _boundaries(n, num_scales, x0.dtype, sigma_min, sigma_max, rho)
    x_next = x0 + bcast(t_next, x0) * z
    x_hat = jax.lax.stop_gradient(_teacher_step(teacher, x_next, t_next, t_cur, solver))
    loss = _consistency_loss(
        model, target_model, x_next, t_next, x_hat, t_cur, sigma_min=sigma_min,
        sigma_data=sigma_data, distance=distance, weighting=weighting, huber_c=huber_c,
    )
    return loss, {"loss": loss}


def cd_loss(
    model: Model,
    batch: jax.Array,
    key: jax.Array,
    *,
    teacher: Model,
    target_model: Model | None = None,
    num_scales: jax.Array | int,
    solver: str = "heun",
    noise_sampling: str = "uniform",
    sigma_min: float = SIGMA_MIN,
    sigma_max: float = SIGMA_MAX,
    rho: float = RHO,
    sigma_data: float = SIGMA_DATA,
    distance: str = "l2",
    weighting: str = "uniform",
    huber_c: float | None = None,
) -> tuple[jax.Array, dict]:
    """Consistency-distillation loss (CM Algorithm 2): draws ``n`` and ``z`` as
    :func:`ct_loss` does, then :func:`cd_loss_from_noise`.

    Args:
      model: the online raw network (differentiated).
      batch: (batch, ...) data.
      key: PRNG key.
      teacher: the teacher denoiser ``D(x, sigma)``.
      noise_sampling: ``"uniform"`` or ``"lognormal"`` (:func:`sample_indices`).
      target_model, num_scales, solver, others: as :func:`cd_loss_from_noise`.

    Returns:
      ``(loss, {"loss"})``.
    """
    checks.one_of("solver", solver, _SOLVERS)
    n, z = _draw_n_z(key, batch, num_scales, noise_sampling, sigma_min, sigma_max, rho)
    return cd_loss_from_noise(
        model, batch, n, z, teacher=teacher, target_model=target_model, num_scales=num_scales,
        solver=solver, sigma_min=sigma_min, sigma_max=sigma_max, rho=rho,
        sigma_data=sigma_data, distance=distance, weighting=weighting, huber_c=huber_c,
    )
