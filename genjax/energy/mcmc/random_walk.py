"""Random-walk Metropolis-Hastings.

Metropolis, Rosenbluth, Rosenbluth, Teller & Teller (1953), "Equation of state calculations
by fast computing machines", J. Chem. Phys. 21(6): propose a Gaussian step and accept it
with the ratio of densities,

    y = x + s xi,   xi ~ N(0, I)             (q(y | x) = N(y; x, s^2 I), symmetric)
    a(x, y) = min(1, pi(y) / pi(x))          (the proposal densities cancel)

with ``s = step_size`` the proposal's standard deviation. No gradient is needed: one
evaluation of ``log pi`` per step, at the proposal; ``log pi(x)`` is cached in the
:class:`~genjax.energy.mcmc.metropolis.ChainState` (its ``grad`` field stays zero).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from genjax.energy.mcmc import metropolis
from genjax.energy.mcmc.metropolis import ChainInfo, ChainState, MetropolisNoise
from genjax.model import Model

__all__ = [
    "rwmh_init",
    "rwmh_log_acceptance",
    "rwmh_step",
    "metropolis_hastings",
    "metropolis_hastings_from_noise",
]


def rwmh_init(model: Model, x0: jax.Array) -> ChainState:
    """The :class:`ChainState` at ``x0`` without a gradient (``grad`` is zeros, unused)."""
    x0 = metropolis.check_x0(x0)
    metropolis.check_model(model, x0)
    return ChainState(x0, model(x0), jnp.zeros_like(x0))


def rwmh_log_acceptance(model: Model, x: jax.Array, y: jax.Array) -> jax.Array:
    """``log a(x, y) = min(0, log pi(y) - log pi(x))``, ``x, y: (chains, *event)`` ->
    ``(chains,)``: the proposal ``N(x, s^2 I)`` is symmetric, so its densities cancel."""
    x, y = metropolis.check_pair(x, y)
    metropolis.check_model(model, x)
    return jnp.minimum(0.0, model(y) - model(x))


def rwmh_step(
    model: Model, state: ChainState, noise: MetropolisNoise, *, step_size: Any
) -> tuple[ChainState, ChainInfo]:
    """One random-walk Metropolis step: ``y = x + s xi``; accept iff
    ``log u < log pi(y) - log pi(x)``.

    Args:
      model: ``model(x (chains, *event)) -> (chains,)``, ``log pi`` up to a constant.
      state: the :class:`ChainState` at ``x`` (``grad`` is carried unchanged, unused).
      noise: ``(xi (chains, *event), u (chains,))``.
      step_size: ``s > 0``, the proposal's standard deviation.

    Returns:
      ``(new_state, info)``; ``info.num_evals`` is 1.

    Example:
      >>> log_prob = jax.tree_util.Partial(lambda x: -0.5 * jnp.sum(x**2, axis=1))
      >>> state = rwmh_init(log_prob, jnp.ones((3, 2)))
      >>> noise = MetropolisNoise(jnp.zeros((3, 2)), jnp.full(3, 0.5))  # propose y = x
      >>> state, info = rwmh_step(log_prob, state, noise, step_size=0.5)
      >>> bool(info.accepted.all()), state.position.tolist() == jnp.ones((3, 2)).tolist()
      (True, True)
    """
    metropolis.check_step(state, noise, step_size)
    xi, u = noise
    y = state.position + step_size * xi  # y ~ N(x, s^2 I)
    proposal = ChainState(y, model(y), state.grad)
    log_ratio = proposal.log_prob - state.log_prob  # pi(y) / pi(x): q cancels
    return metropolis.accept_reject(state, proposal, log_ratio, u, num_evals=1)


_KERNEL = metropolis.Kernel(init=rwmh_init, step=rwmh_step)


def metropolis_hastings(key: jax.Array, model: Model, x0: jax.Array, *, step_size: Any,
                        num_steps: int, return_trajectory: bool = False,
                        ) -> tuple[jax.Array, jax.Array]:  # fmt: skip
    """Random-walk Metropolis-Hastings over many chains; proposal ``N(x, step_size^2 I)``.

    Args:
      key: a PRNG key (step ``t``'s noise from ``fold_in(key, t)``).
      model: callable pytree ``model(x (chains, *event)) -> (chains,)``, ``log pi`` up to a
        constant (traced; a plain function is static and compiles per function object).
      x0: ``(chains, dim)`` starting points.
      step_size: ``s > 0``, the proposal's standard deviation (traced).
      num_steps: ``>= 1`` (static).
      return_trajectory: return every step's positions.

    Returns:
      ``(samples, acceptance_rate)`` as :func:`genjax.energy.mala`.

    Example:
      >>> log_prob = jax.tree_util.Partial(lambda x: -0.5 * jnp.sum(x**2, axis=1))
      >>> x, acceptance = metropolis_hastings(jax.random.key(0), log_prob, jnp.zeros((4, 2)),
      ...                                     step_size=0.5, num_steps=20)
      >>> x.shape, bool(0.0 < float(acceptance.mean()) < 1.0)
      ((4, 2), True)
    """
    return metropolis.sample(_KERNEL, model, x0, key=key, step_size=step_size,
                             num_steps=num_steps, return_trajectory=return_trajectory)


def metropolis_hastings_from_noise(model: Model, x0: jax.Array, noise: MetropolisNoise, *,
                                   step_size: Any, return_trajectory: bool = False,
                                   ) -> tuple[jax.Array, jax.Array]:  # fmt: skip
    """:func:`metropolis_hastings` on given noise ``(xi (num_steps, chains, *event),
    u (num_steps, chains))`` (shapes as :func:`genjax.energy.mala_from_noise`).

    Example:
      >>> log_prob = jax.tree_util.Partial(lambda x: -0.5 * jnp.sum(x**2, axis=1))
      >>> noise = draw_noise(jax.random.key(0), 20, (4, 2))
      >>> x, acceptance = metropolis_hastings_from_noise(log_prob, jnp.zeros((4, 2)), noise,
      ...                                                step_size=0.5)
      >>> x.shape
      (4, 2)
    """
    return metropolis.sample(_KERNEL, model, x0, noise=noise, step_size=step_size,
                             return_trajectory=return_trajectory)
