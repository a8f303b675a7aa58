"""Annealed Langevin dynamics over a ladder of noise levels.

Song & Ermon (2019), "Generative modeling by estimating gradients of the data
distribution", Algorithm 1: unadjusted Langevin steps (:func:`genjax.energy.langevin_step`)
with a noise-conditional score ``s(x, sigma) ~ grad log p_sigma(x)`` (``p_sigma = p *
N(0, sigma^2 I)``), ``T`` steps at each level of a decreasing ladder
``sigma_1 > ... > sigma_L``, with the step size scaled to the level,

    h_i = step_size * sigma_i^2 / sigma_L^2                      (Algorithm 1, line 3)
    x <- x + h_i s(x, sigma_i) + sqrt(2 h_i) z,   z ~ N(0, I)   (line 6, alpha_i = 2 h_i)

and, optionally, one denoising step at the end,
``E[x_0 | x] = x + sigma_L^2 s(x, sigma_L)`` (Tweedie's formula; Jolicoeur-Martineau et al.
2021, "Adversarial score matching and improved sampling for image generation", sec. 3),
which removes the last level's noise.

The model is ``model(x (chains, *event), sigma (chains,)) -> (chains, *event)`` -- the same
call as in training (:func:`genjax.energy.ncsn_loss`), the level repeated for every chain.
Each level's steps are ULA steps, biased to first order in ``h_i``
(:data:`genjax.energy.LANGEVIN_ORDER`).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from genjax import checks
from genjax.energy.mcmc import metropolis
from genjax.energy.mcmc.unadjusted import langevin_step
from genjax.model import Model, model_jit

__all__ = ["annealed_langevin_step_sizes", "annealed_langevin", "annealed_langevin_from_noise"]


def annealed_langevin_step_sizes(sigmas: jax.Array, step_size: Any) -> jax.Array:
    """``h_i = step_size * sigma_i^2 / sigma_L^2`` (Song & Ermon 2019, Algorithm 1, line 3,
    ``alpha_i = eps sigma_i^2 / sigma_L^2`` with ``alpha_i = 2 h_i``), ``sigmas: (L,)``.

    Example:
      >>> h = annealed_langevin_step_sizes(jnp.array([1.0, 0.1]), 0.01)  # eps sigma_i^2 / sigma_L^2
      >>> [round(v, 4) for v in h.tolist()]
      [1.0, 0.01]
    """
    sigmas = jnp.asarray(sigmas)
    checks.ndim("sigmas", sigmas, 1, "(L,)")
    checks.positive("sigmas", sigmas)
    checks.positive("step_size", step_size)
    return step_size * sigmas**2 / sigmas[-1] ** 2


@functools.partial(
    model_jit, static_argnames=("num_steps_per_level", "denoise", "return_trajectory")
)
def _run(model, x0, key, noise, sigmas, step_size, *, num_steps_per_level, denoise,
         return_trajectory):  # fmt: skip
    sigmas = sigmas.astype(x0.dtype)
    steps = annealed_langevin_step_sizes(sigmas, jnp.asarray(step_size, x0.dtype))  # (L,)
    total = sigmas.shape[0] * num_steps_per_level
    chains = x0.shape[0]
    if noise is None:  # keyed: step t's z from fold_in(key, t), drawn inside the loop
        noise_at = lambda t, _: metropolis.step_noise(key, t, x0.shape, x0.dtype).normal  # noqa: E731
        xs = (jnp.arange(total), jnp.arange(total))
    else:
        noise_at = lambda _, z: z  # noqa: E731
        xs = (jnp.arange(total), noise)

    def at_level(sigma):  # the score of p_sigma: the model with sigma repeated per chain
        return lambda z: model(z, jnp.full((chains,), sigma, z.dtype))

    def body(x, inp):
        t, z = inp
        level = t // num_steps_per_level  # T steps per level, in decreasing sigma
        x, _ = langevin_step(at_level(sigmas[level]), x, noise_at(t, z), step_size=steps[level])
        return x, (x if return_trajectory else None)

    x, trajectory = jax.lax.scan(body, x0, xs)
    if denoise:
        # Tweedie: E[x_0 | x] = x + sigma_L^2 s(x, sigma_L)
        x = x + sigmas[-1] ** 2 * at_level(sigmas[-1])(x)
        if return_trajectory:
            trajectory = trajectory.at[-1].set(x)
    return trajectory if return_trajectory else x


def _check(model: Model, x0: Any, sigmas: Any, step_size: Any, num_steps_per_level: Any):
    x0 = metropolis.check_x0(x0)
    sigmas = jnp.asarray(sigmas)
    checks.ndim("sigmas", sigmas, 1, "(L,)")
    if sigmas.shape[0] < 1:
        raise ValueError("sigmas must hold at least one noise level, got shape (0,)")
    checks.positive("sigmas", sigmas)
    if checks.is_concrete(sigmas) and np.any(np.diff(np.asarray(sigmas, np.float64)) > 0):
        raise ValueError(f"sigmas must be non-increasing (sigma_1 > ... > sigma_L), got {sigmas}")
    checks.positive("step_size", step_size)
    t = checks.positive_int("num_steps_per_level", num_steps_per_level)
    sigma = jax.ShapeDtypeStruct((x0.shape[0],), x0.dtype)
    metropolis.check_model(model, x0, sigma, returns="score")
    return x0, sigmas, t


def annealed_langevin(key: jax.Array, model: Model, x0: jax.Array, *, sigmas: Any,
                      step_size: Any, num_steps_per_level: int, denoise: bool = True,
                      return_trajectory: bool = False) -> jax.Array:  # fmt: skip
    """Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1).

        for i = 1..L:  h_i = step_size sigma_i^2 / sigma_L^2
          for t = 1..T:  x <- x + h_i s(x, sigma_i) + sqrt(2 h_i) z_t

    followed (``denoise=True``) by the Tweedie step ``x + sigma_L^2 s(x, sigma_L)``.

    Args:
      key: a PRNG key (step ``t``'s ``z`` from ``fold_in(key, t)``, as
        :func:`genjax.energy.langevin`).
      model: callable pytree ``model(x (chains, *event), sigma (chains,)) -> (chains,
        *event)``, the noise-conditional score ``grad log p_sigma`` (e.g. a
        :class:`genjax.energy.NoiseConditionalScore`). Traced; a plain function is static.
      x0: ``(chains, dim)`` start (Song & Ermon: uniform noise).
      sigmas: ``(L,)`` positive, non-increasing noise levels.
      step_size: ``h_L > 0`` (Song & Ermon's ``eps / 2``).
      num_steps_per_level: ``T >= 1`` (static).
      denoise: add the final Tweedie step.
      return_trajectory: return every step's positions ``(L * T, chains, dim)``.

    Returns:
      ``(chains, dim)`` samples, or the trajectory.

    Example:
      >>> score = jax.tree_util.Partial(lambda x, sigma: -x / (1 + sigma[:, None] ** 2))
      >>> x = annealed_langevin(jax.random.key(0), score, jnp.zeros((4, 2)),
      ...                       sigmas=jnp.array([1.0, 0.1]), step_size=0.01, num_steps_per_level=3)
      >>> x.shape
      (4, 2)
    """
    x0, sigmas, t = _check(model, x0, sigmas, step_size, num_steps_per_level)
    return _run(model, x0, key, None, sigmas, step_size, num_steps_per_level=t,
                denoise=bool(denoise), return_trajectory=bool(return_trajectory))  # fmt: skip


def annealed_langevin_from_noise(model: Model, x0: jax.Array, noise: jax.Array, *,
                                 sigmas: Any, step_size: Any, num_steps_per_level: int,
                                 denoise: bool = True, return_trajectory: bool = False,
                                 ) -> jax.Array:  # fmt: skip
    """:func:`annealed_langevin` on given noise ``noise (L * T, chains, *event)``.

    Example:
      >>> score = jax.tree_util.Partial(lambda x, sigma: -x / (1 + sigma[:, None] ** 2))
      >>> noise = jnp.zeros((6, 4, 2))  # (levels * steps per level, chains, dim)
      >>> x = annealed_langevin_from_noise(score, jnp.zeros((4, 2)), noise,
      ...                                  sigmas=jnp.array([1.0, 0.1]), step_size=0.01,
      ...                                  num_steps_per_level=3)
      >>> x.tolist() == jnp.zeros((4, 2)).tolist()  # at the mode with the noise off, it stays
      True
    """
    x0, sigmas, t = _check(model, x0, sigmas, step_size, num_steps_per_level)
    noise = jnp.asarray(noise, x0.dtype)
    checks.shape("noise", noise, (sigmas.shape[0] * t, *x0.shape))
    return _run(model, x0, None, noise, sigmas, step_size, num_steps_per_level=t,
                denoise=bool(denoise), return_trajectory=bool(return_trajectory))  # fmt: skip
