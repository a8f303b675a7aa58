"""MALA: the Metropolis-adjusted Langevin algorithm.

Roberts & Tweedie (1996), "Exponential convergence of Langevin distributions and their
discrete approximations", Bernoulli 2(4), sec. 1.4.2: the unadjusted Langevin move as a
Metropolis-Hastings proposal,

    y = x + h grad log pi(x) + sqrt(2 h) xi,        xi ~ N(0, I)
    q(y | x) = N(y; x + h grad log pi(x), 2 h I)
    a(x, y)  = min(1, pi(y) q(x | y) / (pi(x) q(y | x)))

with ``h = step_size``. The chain is exact (``pi`` is invariant) at every ``h``; ``h``
trades acceptance against move length.

.. warning:: Mind the order inside ``q``: the *forward* density ``q(y | x)`` is centred at
   the drift of the current point ``x``, the reverse one ``q(x | y)`` at the drift of ``y``.
   blackjax (PR 653) had the two swapped, which leaves the chain invariant for another law;
   the tests hold :func:`mala_proposal_log_density` against this closed form on an
   asymmetric target and check detailed balance exactly.

Cost: one fused evaluation of ``log pi`` and its gradient per step, at the proposal
(:func:`genjax.energy.mcmc.metropolis.value_and_grad`); the current point's are cached in the
:class:`~genjax.energy.mcmc.metropolis.ChainState`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.energy.mcmc import metropolis
from genjax.energy.mcmc.metropolis import ChainInfo, ChainState, MetropolisNoise
from genjax.gaussian import isotropic_normal_log_prob
from genjax.model import Model

__all__ = [
    "mala_proposal_log_density",
    "mala_log_acceptance",
    "mala_step",
    "mala",
    "mala_from_noise",
]


def mala_proposal_log_density(
    y: jax.Array, x: jax.Array, grad_x: jax.Array, step_size: Any
) -> jax.Array:
    """``log q(y | x) = log N(y; x + h grad log pi(x), 2 h I)``, the MALA proposal density.

    Args:
      y: ``(chains, *event)`` proposed points.
      x: ``(chains, *event)`` current points.
      grad_x: ``(chains, *event)`` ``grad log pi(x)`` at the *current* points.
      step_size: ``h > 0``.

    Returns:
      ``(chains,)`` normalised log-densities (summed over the event axes).
    """
    x, y, grad_x = jnp.asarray(x), jnp.asarray(y), jnp.asarray(grad_x)
    checks.same_shape("y", y, "x", x)
    checks.same_shape("grad_x", grad_x, "x", x)
    checks.positive("step_size", step_size)
    chains = x.shape[0]
    mean = x + step_size * grad_x  # the Langevin drift of x
    std = jnp.sqrt(2.0 * jnp.asarray(step_size, x.dtype))  # proposal covariance 2 h I
    return isotropic_normal_log_prob(y.reshape(chains, -1), mean.reshape(chains, -1), std)


def _log_ratio(state: ChainState, proposal: ChainState, step_size: Any) -> jax.Array:
    # log [pi(y) q(x | y)] - log [pi(x) q(y | x)]: forward density at x's drift, reverse at y's
    log_q_fwd = mala_proposal_log_density(proposal.position, state.position, state.grad,
                                          step_size)  # fmt: skip
    log_q_rev = mala_proposal_log_density(state.position, proposal.position, proposal.grad,
                                          step_size)  # fmt: skip
    return proposal.log_prob - state.log_prob + log_q_rev - log_q_fwd


def mala_log_acceptance(model: Model, x: jax.Array, y: jax.Array, *, step_size: Any) -> jax.Array:
    """``log a(x, y) = min(0, log pi(y) q(x|y) - log pi(x) q(y|x))`` for MALA.

    Args:
      model: ``model(x (chains, *event)) -> (chains,)``, ``log pi`` up to a constant.
      x, y: ``(chains, *event)`` current and proposed points.
      step_size: ``h > 0``.

    Returns:
      ``(chains,)`` log acceptance probabilities (``<= 0``).
    """
    x, y = metropolis.check_pair(x, y)
    ratio = _log_ratio(metropolis.init(model, x), metropolis.init(model, y), step_size)
    return jnp.minimum(0.0, ratio)


def mala_step(
    model: Model, state: ChainState, noise: MetropolisNoise, *, step_size: Any
) -> tuple[ChainState, ChainInfo]:
    """One MALA step on given noise (Roberts & Tweedie 1996, sec. 1.4.2).

        y = x + h grad log pi(x) + sqrt(2 h) xi                  (y ~ q(. | x))
        accept iff log u < log pi(y) q(x|y) - log pi(x) q(y|x)   (probability a(x, y))

    Args:
      model: ``model(x (chains, *event)) -> (chains,)``, ``log pi`` up to a constant.
      state: the :class:`ChainState` at ``x`` (``log pi`` and its gradient cached).
      noise: :class:`MetropolisNoise` (or a pair) ``(xi (chains, *event), u (chains,))``.
      step_size: ``h > 0``.

    Returns:
      ``(new_state, info)``; ``info.num_evals`` is 1.

    Example:
      >>> log_prob = jax.tree_util.Partial(lambda x: -0.5 * jnp.sum(x**2, axis=1))  # N(0, I)
      >>> state = init_state(log_prob, jnp.ones((3, 2)))
      >>> noise = MetropolisNoise(jnp.zeros((3, 2)), jnp.zeros(3))  # u = 0: always accept
      >>> state, info = mala_step(log_prob, state, noise, step_size=0.1)
      >>> bool(info.accepted.all()), state.position.shape
      (True, (3, 2))
    """
    metropolis.check_step(state, noise, step_size)
    xi, u = noise
    x = state.position
    y = x + step_size * state.grad + jnp.sqrt(2.0 * step_size) * xi  # the ULA move
    log_p, grad = metropolis.value_and_grad(model, y)  # log pi(y), grad log pi(y): one pass
    proposal = ChainState(y, log_p, grad)
    # The proposal densities from quantities in hand (their normalisers cancel):
    #   log q(y | x) = -|y - x - h g(x)|^2 / (4 h) = -|xi|^2 / 2      (y - x - h g(x) = sqrt(2h) xi)
    #   log q(x | y) = -|x - y - h g(y)|^2 / (4 h)
    # the closed form mala_proposal_log_density computes (held to it by the tests).
    chains = x.shape[0]
    back = (x - y - step_size * grad).reshape(chains, -1)  # (chains, event size)
    log_q_rev_minus_fwd = 0.5 * jnp.sum(xi.reshape(chains, -1) ** 2, axis=1) - jnp.sum(
        back * back, axis=1
    ) / (4.0 * step_size)  # (chains,)
    log_ratio = log_p - state.log_prob + log_q_rev_minus_fwd
    return metropolis.accept_reject(state, proposal, log_ratio, u, num_evals=1)


_KERNEL = metropolis.Kernel(init=metropolis.init, step=mala_step)


def mala(key: jax.Array, model: Model, x0: jax.Array, *, step_size: Any, num_steps: int,
         return_trajectory: bool = False) -> tuple[jax.Array, jax.Array]:  # fmt: skip
    """Metropolis-adjusted Langevin algorithm over many chains, one compiled loop.

    Args:
      key: a PRNG key; step ``t`` draws its noise by
        :func:`~genjax.energy.mcmc.metropolis.step_noise` from ``fold_in(key, t)``.
      model: callable pytree ``model(x (chains, *event)) -> (chains,)``, the log-density
        ``log pi`` up to a constant, e.g. ``target.log_prob`` of a
        :class:`genjax.targets.GaussianMixture` or an ``nnx.Module``. Traced: new weights
        or another target of the same shapes reuse the compiled program. A plain function
        is accepted but static (a new function object compiles anew).
      x0: ``(chains, dim)`` (or ``(chains, *event)``) starting points.
      step_size: ``h > 0`` (proposal ``N(x + h grad log pi(x), 2 h I)``); traced, so one
        program serves every step size.
      num_steps: ``>= 1`` (static).
      return_trajectory: return every step's positions instead of the last.

    Returns:
      ``(samples, acceptance_rate)``: ``samples (chains, dim)`` (final) or
      ``(num_steps, chains, dim)``; ``acceptance_rate (chains,)``, the fraction of accepted
      proposals of each chain.

    Raises:
      ValueError: ``step_size <= 0``, ``num_steps < 1``, a bad ``x0``, or a model not
        returning ``(chains,)``.

    Example:
      >>> log_prob = jax.tree_util.Partial(lambda x: -0.5 * jnp.sum(x**2, axis=1))
      >>> x, acc = mala(jax.random.key(0), log_prob, jnp.zeros((4, 2)), step_size=0.05,
      ...               num_steps=20)
      >>> x.shape, bool(float(acc.mean()) > 0.9)  # small steps on N(0, I): nearly all accepted
      ((4, 2), True)
    """
    return metropolis.sample(_KERNEL, model, x0, key=key, step_size=step_size,
                             num_steps=num_steps, return_trajectory=return_trajectory)


def mala_from_noise(model: Model, x0: jax.Array, noise: MetropolisNoise, *, step_size: Any,
                    return_trajectory: bool = False) -> tuple[jax.Array, jax.Array]:  # fmt: skip
    """:func:`mala` on given noise: ``noise = (xi (num_steps, chains, *event), u (num_steps,
    chains))`` (a :class:`MetropolisNoise`; ``draw_noise(key, num_steps, x0.shape, x0.dtype)``
    is what ``mala(key, ...)`` draws). Other arguments and the returns as :func:`mala`.

    Example:
      >>> log_prob = jax.tree_util.Partial(lambda x: -0.5 * jnp.sum(x**2, axis=1))
      >>> noise = draw_noise(jax.random.key(0), 20, (4, 2))
      >>> x, acceptance = mala_from_noise(log_prob, jnp.zeros((4, 2)), noise, step_size=0.1)
      >>> x.shape, bool(0.0 <= float(acceptance.mean()) <= 1.0)
      ((4, 2), True)
    """
    return metropolis.sample(_KERNEL, model, x0, noise=noise, step_size=step_size,
                             return_trajectory=return_trajectory)

