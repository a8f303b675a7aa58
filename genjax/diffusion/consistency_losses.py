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

Options, the keyword arguments shared by every loss here:

* ``target_model``: the target raw network ``F_theta^-`` (an EMA of theta; no gradient);
  ``None`` (default): the online ``model`` itself under ``stop_gradient``.
* ``num_scales``: N >= 2, the number of Karras boundaries (may be traced, e.g. from
  :func:`ct_schedule`); required.
* ``sigma_min``, ``sigma_max``, ``rho``: the Karras grid (eps = 0.002, T = 80, rho = 7).
* ``sigma_data``: the parameterisation's ``sigma_data`` (0.5).
* ``distance``: ``"l2"`` (default) or ``"pseudo_huber"``; ``huber_c``: the pseudo-Huber
  ``c`` (default ``0.00054 sqrt(dim)``).
* ``weighting``: ``"uniform"`` (default) or ``"inverse_step"``.

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

from typing import Any

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.diffusion._common import bcast, call_model, check_x, sum_nonbatch
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


def _boundaries(n, num_scales, dtype, sigma_min, sigma_max, rho):
    """``(t_n, t_{n+1})``, each (batch,), on the Karras grid of N = ``num_scales``."""
    kw = dict(sigma_min=sigma_min, sigma_max=sigma_max, rho=rho)
    t_cur = karras_boundaries(n, num_scales, **kw).astype(dtype)  # (batch,) t_n
    t_next = karras_boundaries(n + 1, num_scales, **kw).astype(dtype)  # (batch,) t_{n+1}
    return t_cur, t_next


def _loss_from_noise(
    model: Model,
    batch: jax.Array,
    n: jax.Array,
    z: jax.Array,
    *,
    teacher: Model | None,
    solver: str,
    num_scales: jax.Array | int,
    target_model: Model | None = None,
    sigma_min: float = SIGMA_MIN,
    sigma_max: float = SIGMA_MAX,
    rho: float = RHO,
    sigma_data: float = SIGMA_DATA,
    distance: str = "l2",
    weighting: str = "uniform",
    huber_c: float | None = None,
) -> jax.Array:
    """CT (``teacher = None``: ``x_hat_n = x + t_n z``) or CD (one teacher step) on given
    ``n``, ``z``; the options are the module docstring's."""
    checks.one_of("solver", solver, _SOLVERS)
    checks.one_of("distance", distance, _DISTANCES)
    checks.one_of("weighting", weighting, _WEIGHTINGS)
    x0 = check_x("batch", batch)
    t_cur, t_next = _boundaries(n, num_scales, x0.dtype, sigma_min, sigma_max, rho)
    x_next = x0 + bcast(t_next, x0) * z  # x_{n+1} = x + t_{n+1} z
    if teacher is None:
        x_hat = x0 + bcast(t_cur, x0) * z  # CT: the one-sample estimate of x_{t_n} (eq. 10)
    else:  # CD: one step of the teacher's PF-ODE from t_{n+1} to t_n (eq. 7)
        x_hat = jax.lax.stop_gradient(_teacher_step(teacher, x_next, t_next, t_cur, solver))
    kw = dict(sigma_data=sigma_data, eps=sigma_min)
    online = consistency_fn(model, x_next, t_next, **kw)
    target_net = model if target_model is None else target_model
    target = jax.lax.stop_gradient(consistency_fn(target_net, x_hat, t_cur, **kw))
    # lambda(t_n) = 1 (CM) or 1 / (t_{n+1} - t_n) (improved CT, sec. 3.4).
    weight = jnp.ones_like(t_cur) if weighting == "uniform" else 1.0 / (t_next - t_cur)
    return jnp.mean(weight * _distance(online, target, distance, huber_c))


def _teacher_step(teacher: Model, x: jax.Array, t_from, t_to, solver: str) -> jax.Array:
    """One step of the PF-ODE ``dx/dt = (x - D(x, t)) / t`` from ``t_from`` to ``t_to``.

    Euler, or Heun (Karras et al. 2022, Algorithm 1, lines 5-8; CM eq. 8 uses it).
    """
    h = bcast(t_to - t_from, x)  # negative
    d_from = (x - call_model(teacher, x, t_from)) / bcast(t_from, x)
    x_euler = x + h * d_from
    if solver == "euler":
        return x_euler
    d_to = (x_euler - call_model(teacher, x_euler, t_to)) / bcast(t_to, x)
    return x + h * 0.5 * (d_from + d_to)


def _draw_n_z(key: jax.Array, batch: jax.Array, noise_sampling: str, options: dict):
    """``n_key, z_key = split(key)``: ``n`` by :func:`sample_indices`, ``z ~ N(0, I)``."""
    x0 = check_x("batch", batch)
    if "num_scales" not in options:
        raise ValueError("num_scales must be given (the number of Karras boundaries N >= 2)")
    grid = {k: options[k] for k in ("sigma_min", "sigma_max", "rho") if k in options}
    n_key, z_key = jax.random.split(key)
    n = sample_indices(n_key, x0.shape[0], options["num_scales"],
                       noise_sampling=noise_sampling, **grid)  # (batch,) in [1, N-1]
    z = jax.random.normal(z_key, x0.shape, x0.dtype)
    return n, z


def ct_loss_from_noise(
    model: Model, batch: jax.Array, n: jax.Array, z: jax.Array, **options: Any
) -> tuple[jax.Array, dict]:
    """Consistency-training loss on given ``n`` and ``z`` (CM Algorithm 3, eq. 10).

        L = mean_b lambda(t_n) d(f_theta(x + t_{n+1} z, t_{n+1}), f_theta^-(x + t_n z, t_n))

    Args:
      model: the online raw network ``F_theta(x_in, c_noise)`` (differentiated).
      batch: (batch, ...) data ``x``.
      n: (batch,) int indices in [1, N-1].
      z: (batch, ...) standard normal noise.
      **options: ``num_scales`` (required), ``target_model``, ``sigma_min``, ``sigma_max``,
        ``rho``, ``sigma_data``, ``distance``, ``weighting``, ``huber_c`` (module docstring).

    Returns:
      ``(loss, {"loss": loss, "num_scales": N})``.

    Example:
      >>> net = nnx.Linear(1, 1, rngs=nnx.Rngs(0))
      >>> model = jax.tree_util.Partial(lambda f, x, c: f(x), net)
      >>> value, metrics = ct_loss_from_noise(model, jnp.ones((2, 1)), jnp.array([1, 5]),
      ...                                     jnp.zeros((2, 1)), num_scales=18)
      >>> value.shape, int(metrics["num_scales"])
      ((), 18)
    """
    loss = _loss_from_noise(model, batch, n, z, teacher=None, solver="euler", **options)
    return loss, {"loss": loss, "num_scales": jnp.asarray(options["num_scales"], jnp.float32)}


def ct_loss(
    model: Model, batch: jax.Array, key: jax.Array, *, noise_sampling: str = "uniform",
    **options: Any,
) -> tuple[jax.Array, dict]:
    """Consistency-training loss (CM Algorithm 3): draws ``n`` and ``z``, then
    :func:`ct_loss_from_noise`.

    With ``n_key, z_key = jax.random.split(key)``: ``n = sample_indices(n_key, batch,
    num_scales, noise_sampling=...)`` and ``z = normal(z_key, batch.shape)``.

    Args:
      model: the online raw network ``F_theta(x_in (batch, ...), c_noise (batch,))``, a
        callable pytree (differentiated).
      batch: (batch, ...) data.
      key: PRNG key.
      noise_sampling: ``"uniform"`` or ``"lognormal"`` (:func:`sample_indices`).
      **options: as :func:`ct_loss_from_noise` (``num_scales`` required).

    Returns:
      ``(loss, {"loss", "num_scales"})``.

    Example:
      >>> net = nnx.Linear(1, 1, rngs=nnx.Rngs(0))
      >>> model = jax.tree_util.Partial(lambda n, x, c: n(x), net)  # F(x_in, c_noise)
      >>> (value, metrics), grads = jax.value_and_grad(ct_loss, has_aux=True)(
      ...     model, jnp.ones((4, 1)), jax.random.key(0), target_model=model, num_scales=18)
      >>> value.shape, len(jax.tree_util.tree_leaves(grads))  # the Linear's kernel and bias
      ((), 2)
    """
    n, z = _draw_n_z(key, batch, noise_sampling, options)
    return ct_loss_from_noise(model, batch, n, z, **options)


def cd_loss_from_noise(
    model: Model, batch: jax.Array, n: jax.Array, z: jax.Array, *, teacher: Model,
    solver: str = "heun", **options: Any,
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
      **options: as :func:`ct_loss_from_noise` (``num_scales`` required).

    Returns:
      ``(loss, {"loss": loss})``.

    Example:
      >>> model = jax.tree_util.Partial(lambda x, c: jnp.zeros_like(x))
      >>> teacher = analytic_denoiser(genjax.targets.mixture_1d([1.0], [0.0], [1.0]))
      >>> value, metrics = cd_loss_from_noise(model, jnp.ones((2, 1)), jnp.array([1, 5]),
      ...                                     jnp.zeros((2, 1)), teacher=teacher, num_scales=18)
      >>> value.shape, bool(value >= 0)
      ((), True)
    """
    loss = _loss_from_noise(model, batch, n, z, teacher=teacher, solver=solver, **options)
    return loss, {"loss": loss}


def cd_loss(
    model: Model, batch: jax.Array, key: jax.Array, *, teacher: Model, solver: str = "heun",
    noise_sampling: str = "uniform", **options: Any,
) -> tuple[jax.Array, dict]:
    """Consistency-distillation loss (CM Algorithm 2): draws ``n`` and ``z`` as
    :func:`ct_loss` does, then :func:`cd_loss_from_noise`.

    Args:
      model: the online raw network (differentiated).
      batch: (batch, ...) data.
      key: PRNG key.
      teacher: the teacher denoiser ``D(x, sigma)``, a callable pytree.
      solver: ``"euler"`` or ``"heun"``.
      noise_sampling: ``"uniform"`` or ``"lognormal"`` (:func:`sample_indices`).
      **options: as :func:`ct_loss_from_noise` (``num_scales`` required).

    Returns:
      ``(loss, {"loss"})``.

    Example:
      >>> model = jax.tree_util.Partial(lambda x, c: jnp.zeros_like(x))
      >>> teacher = analytic_denoiser(genjax.targets.mixture_1d([1.0], [0.0], [1.0]))
      >>> value, metrics = cd_loss(model, jnp.ones((2, 1)), jax.random.key(0), teacher=teacher,
      ...                          num_scales=18)
      >>> value.shape, bool(value >= 0)
      ((), True)
    """
    checks.one_of("solver", solver, _SOLVERS)
    n, z = _draw_n_z(key, batch, noise_sampling, options)
    return cd_loss_from_noise(model, batch, n, z, teacher=teacher, solver=solver, **options)
