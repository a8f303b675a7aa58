"""The unadjusted Langevin algorithm (ULA).

The Euler-Maruyama discretisation of the Langevin diffusion
``dx = grad log pi(x) dt + sqrt(2) dW``, with genjax's convention (DESIGN.md)

    x' = x + h score(x) + sqrt(2 h) xi,      xi ~ N(0, I),   score = grad log pi   (ULA)

(Roberts & Tweedie 1996, "Exponential convergence of Langevin distributions and their
discrete approximations", Bernoulli 2(4), sec. 1.4). Song & Ermon (2019) write
``x + alpha/2 score + sqrt(alpha) z``: ``alpha = 2 h``.

.. warning:: ULA is biased: its stationary law is not ``pi`` but a perturbation of order
   ``h`` (:data:`LANGEVIN_ORDER`; on ``N(0, s^2)`` it is ``N(0, 2 s^2 / (2 - h / s^2))``).
   MALA (:func:`genjax.energy.mala`) removes the bias with a Metropolis correction.

The model is the *score*: ``model(x (chains, *event)) -> (chains, *event)`` (an analytic
target's ``target.score``, a score network, or the score of an energy model,
:func:`genjax.energy.energy_score`). One evaluation per step, no density needed.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from genjax import checks
from genjax.energy.mcmc import metropolis
from genjax.model import Model, model_jit

__all__ = ["LANGEVIN_ORDER", "LangevinInfo", "langevin_step", "langevin", "langevin_from_noise"]

#: The bias of ULA's stationary law is of order ``h**LANGEVIN_ORDER`` (first order: halving
#: the step size halves the bias; Talay & Tubaro 1990, weak order 1 of Euler-Maruyama).
LANGEVIN_ORDER = 1


class LangevinInfo(NamedTuple):
    """What one unadjusted Langevin step saw.

    Attributes:
      score: ``(chains, *event)`` the model's score at the step's starting point, the drift
        direction (``h * score`` is the deterministic part of the move).
    """

    score: jax.Array


def langevin_step(model: Model, x: jax.Array, noise: jax.Array, *, step_size: Any,
                  noise_scale: Any = None, clip: tuple[Any, Any] | None = None,
                  ) -> tuple[jax.Array, LangevinInfo]:  # fmt: skip
    """One unadjusted Langevin step ``x' = x + h score(x) + sqrt(2 h) xi``.

    The state of an unadjusted chain is its position.

    Args:
      model: ``model(x (chains, *event)) -> (chains, *event)``, the score ``grad log pi``.
      x: ``(chains, *event)``.
      noise: ``(chains, *event)`` standard normal ``xi``.
      step_size: ``h > 0`` (scalar).
      noise_scale: the noise's standard deviation; default ``sqrt(2 h)`` (exact ULA).
        EBM training often decouples it (Du & Mordatch 2019, sec. 3.1, use a smaller one):
        the chain then targets a tempered density, not ``pi``.
      clip: optional ``(low, high)``: the new point is clipped to this box (image data kept
        in the pixel range, Du & Mordatch 2019).

    Returns:
      ``(x', info)``: the new positions ``(chains, *event)`` and a :class:`LangevinInfo`.

    Example:
      >>> score = jax.tree_util.Partial(lambda x: -x)  # N(0, I)
      >>> x, info = langevin_step(score, jnp.ones((2, 1)), jnp.zeros((2, 1)), step_size=0.1)
      >>> x.tolist()  # x + h s(x) with the noise off
      [[0.9], [0.9]]
    """
    checks.positive("step_size", step_size)
    if noise_scale is not None:
        checks.nonnegative("noise_scale", noise_scale)
    x, noise = jnp.asarray(x), jnp.asarray(noise)
    checks.same_shape("noise", noise, "x", x)
    check_clip(clip)
    scale = jnp.sqrt(2.0 * step_size) if noise_scale is None else noise_scale
    # The score has x's shape: a (chains, 1) output would broadcast over the event.
    score = checks.model_output(model(x), x.shape)
    x = x + step_size * score + scale * noise  # Euler-Maruyama of the Langevin SDE
    if clip is not None:
        x = jnp.clip(x, clip[0], clip[1])
    return x, LangevinInfo(score)


@functools.partial(model_jit, static_argnames=("num_steps", "return_trajectory"))
def _run(model, x0, key, noise, step_size, noise_scale, clip, *, num_steps, return_trajectory):
    step_size = jnp.asarray(step_size, x0.dtype)
    if noise is None:  # keyed: step t's xi from fold_in(key, t), drawn inside the loop
        xs = jnp.arange(num_steps)
        noise_at = lambda t: metropolis.step_noise(key, t, x0.shape, x0.dtype).normal  # noqa: E731
    else:
        xs, noise_at = noise, lambda n: n  # noqa: E731

    def body(x, inp):
        x, _ = langevin_step(model, x, noise_at(inp), step_size=step_size,
                             noise_scale=noise_scale, clip=clip)  # fmt: skip
        return x, (x if return_trajectory else None)

    x, trajectory = jax.lax.scan(body, x0, xs)
    return trajectory if return_trajectory else x


def check_clip(clip: Any) -> None:
    """``clip``: ``None`` or a box ``(low, high)`` with ``low < high`` (when concrete)."""
    if clip is None:
        return
    if len(clip) != 2:
        raise ValueError(f"clip must be None or a pair (low, high), got {clip!r}")
    low, high = clip
    if checks.is_concrete((low, high)) and not np.all(np.asarray(low) < np.asarray(high)):
        raise ValueError(f"clip must be a box (low, high) with low < high, got {clip!r}")


def _check(model: Model, x0: Any, step_size: Any, noise_scale: Any) -> jax.Array:
    x0 = metropolis.check_x0(x0)
    checks.positive("step_size", step_size)
    if noise_scale is not None:
        checks.nonnegative("noise_scale", noise_scale)
    metropolis.check_model(model, x0, returns="score")
    return x0


def langevin(key: jax.Array, model: Model, x0: jax.Array, *, step_size: Any, num_steps: int,
             noise_scale: Any = None, clip: tuple[Any, Any] | None = None,
             return_trajectory: bool = False) -> jax.Array:  # fmt: skip
    """Unadjusted Langevin algorithm: ``num_steps`` steps of :func:`langevin_step`.

        x_{t+1} = x_t + h score(x_t) + sqrt(2 h) xi_t,   xi_t from step_noise(key, t)

    Args:
      key: a PRNG key; step ``t``'s ``xi`` is the ``normal`` of
        :func:`~genjax.energy.mcmc.metropolis.step_noise` ``(key, t)``.
      model: callable pytree ``model(x (chains, *event)) -> (chains, *event)``, the score
        ``grad log pi`` (e.g. ``target.score``, or ``energy_score(net)`` for an energy
        network). Traced: new weights of the same shapes reuse the compiled program; a plain
        function is accepted but static (a new function object compiles anew).
      x0: ``(chains, dim)`` (or ``(chains, *event)``, e.g. images) starting points.
      step_size: ``h > 0``; traced (one program serves every step size).
      num_steps: ``>= 1`` (static).
      noise_scale, clip: see :func:`langevin_step`.
      return_trajectory: return every step's positions instead of the last.

    Returns:
      ``(chains, *event)`` final positions, or ``(num_steps, chains, *event)``.

    Raises:
      ValueError: ``step_size <= 0``, ``num_steps < 1``, bad ``x0``, or a model whose output
        is not of ``x0``'s shape.

    Example:
      >>> score = jax.tree_util.Partial(lambda x: -x)
      >>> langevin(jax.random.key(0), score, jnp.zeros((4, 2)), step_size=0.1, num_steps=10).shape
      (4, 2)
    """
    x0 = _check(model, x0, step_size, noise_scale)
    check_clip(clip)
    num_steps = checks.positive_int("num_steps", num_steps)
    return _run(model, x0, key, None, step_size, noise_scale, clip, num_steps=num_steps,
                return_trajectory=bool(return_trajectory))  # fmt: skip


def langevin_from_noise(model: Model, x0: jax.Array, noise: jax.Array, *, step_size: Any,
                        noise_scale: Any = None, clip: tuple[Any, Any] | None = None,
                        return_trajectory: bool = False) -> jax.Array:  # fmt: skip
    """:func:`langevin` on given noise ``noise (num_steps, chains, *event)`` (``xi_t`` of
    step ``t``; ``draw_noise(key, T, x0.shape, x0.dtype).normal`` is what ``langevin(key,
    ...)`` draws).

    Example:
      >>> score = jax.tree_util.Partial(lambda x: -x)
      >>> langevin_from_noise(score, jnp.ones((2, 1)), jnp.zeros((2, 2, 1)), step_size=0.5).tolist()
      [[0.25], [0.25]]
    """
    x0 = _check(model, x0, step_size, noise_scale)
    check_clip(clip)
    noise = jnp.asarray(noise, x0.dtype)
    checks.shape("noise", noise, (None, *x0.shape))
    return _run(model, x0, None, noise, step_size, noise_scale, clip, num_steps=noise.shape[0],
                return_trajectory=bool(return_trajectory))  # fmt: skip
