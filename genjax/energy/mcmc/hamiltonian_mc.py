"""Hamiltonian Monte Carlo with a unit mass matrix and a fixed path length.

Neal (2011), "MCMC using Hamiltonian dynamics", Handbook of MCMC, ch. 5: augment ``x`` with
a momentum ``p ~ N(0, I)``, follow the dynamics of

    H(x, p) = -log pi(x) + |p|^2 / 2                                   (eqs. 5.13-5.14)

for ``L = num_leapfrog`` leapfrog steps of size ``eps = step_size`` (sec. 5.2.3, eqs.
5.18-5.20),

    p <- p + eps/2 grad log pi(x);   x <- x + eps p;   p <- p + eps/2 grad log pi(x),

and accept the end point ``(x*, p*)`` with probability ``min(1, exp(H(x, p) - H(x*, p*)))``
(sec. 5.3.2.1). Leapfrog is volume-preserving and reversible after a momentum flip
(sec. 5.2.3.3), which makes this acceptance exact.

Cost: ``L`` fused evaluations of ``log pi`` and its gradient per step (the half kicks of
consecutive leapfrog steps merged; the gradient at the start is the cached one of the
:class:`~genjax.energy.mcmc.metropolis.ChainState`). With ``L = 1`` HMC is MALA with
``h = eps^2 / 2`` (tested on shared noise).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.energy.mcmc import metropolis
from genjax.energy.mcmc.metropolis import ChainInfo, ChainState, MetropolisNoise
from genjax.model import Model

__all__ = ["hamiltonian", "leapfrog", "hmc_step", "hmc", "hmc_from_noise"]


def hamiltonian(log_prob: jax.Array, p: jax.Array) -> jax.Array:
    """``H(x, p) = -log pi(x) + |p|^2 / 2`` (Neal 2011, eqs. 5.13-5.14).

    Args:
      log_prob: ``(chains,)`` ``log pi(x)``.
      p: ``(chains, *event)`` momenta.

    Returns:
      ``(chains,)``.
    """
    log_prob, p = jnp.asarray(log_prob), jnp.asarray(p)
    checks.ndim("log_prob", log_prob, 1, "(chains,)")
    checks.shape("p", p, (log_prob.shape[0], *p.shape[1:]))
    kinetic = 0.5 * jnp.sum(jnp.square(p).reshape(p.shape[0], -1), axis=-1)  # |p|^2 / 2
    return -log_prob + kinetic


def _trajectory(
    model: Model, state: ChainState, p: jax.Array, step_size: Any, num_leapfrog: int
) -> tuple[ChainState, jax.Array]:
    """``L`` leapfrog steps from ``state`` (its cached gradient starts the first kick).

    Returns the end point as a :class:`ChainState` (position, ``log pi``, gradient) and its
    momentum ``p*``.
    """
    # The half kicks of consecutive steps merged (Neal 2011, eqs. 5.18-5.20):
    #   p <- p + eps/2 g(x);  L times { x <- x + eps p;  p <- p + eps g(x) }, the last kick
    #   a half one.
    p = p + 0.5 * step_size * state.grad

    def body(i, carry):
        end, p = carry
        x = end.position + step_size * p  # x <- x + eps p
        end = metropolis.init(model, x)  # log pi(x), grad log pi(x): one fused pass
        kick = jnp.where(i == num_leapfrog - 1, 0.5 * step_size, step_size)
        return end, p + kick * end.grad  # p <- p + eps g(x) (eps/2 at the last step)

    return jax.lax.fori_loop(0, num_leapfrog, body, (state, p))


def leapfrog(
    model: Model, x: jax.Array, p: jax.Array, *, step_size: Any, num_leapfrog: int
) -> tuple[jax.Array, jax.Array]:
    """``num_leapfrog`` leapfrog steps of Hamilton's equations for ``H = -log pi + |p|^2/2``.

    The map is volume-preserving and reversible (flipping ``p`` and integrating again
    returns to the start; Neal 2011, sec. 5.2.3.3) -- the two facts that make the HMC
    acceptance of :func:`hmc_step` exact.

    Args:
      model: ``model(x (chains, *event)) -> (chains,)``, ``log pi`` up to a constant.
      x, p: ``(chains, *event)`` positions and momenta.
      step_size: ``eps > 0``.
      num_leapfrog: ``L >= 1``.

    Returns:
      ``(x*, p*)``, both ``(chains, *event)``.
    """
    num_leapfrog = checks.positive_int("num_leapfrog", num_leapfrog)
    x, p = jnp.asarray(x), jnp.asarray(p)
    checks.same_shape("p", p, "x", x)
    checks.positive("step_size", step_size)
    end, p = _trajectory(model, metropolis.init(model, x), p, step_size, num_leapfrog)
    return end.position, p


def hmc_step(model: Model, state: ChainState, noise: MetropolisNoise, *, step_size: Any,
             num_leapfrog: int) -> tuple[ChainState, ChainInfo]:  # fmt: skip
    """One HMC step (Neal 2011, sec. 5.3.2.1) on given momentum and uniforms.

        (x*, p*) = leapfrog^L(x, p);   accept iff log u < H(x, p) - H(x*, p*)

    Args:
      model: ``model(x (chains, *event)) -> (chains,)``, ``log pi`` up to a constant.
      state: :class:`ChainState` at ``x``.
      noise: ``(p (chains, *event), u (chains,))``: momenta ``p ~ N(0, I)`` and uniforms.
      step_size: ``eps > 0``.
      num_leapfrog: ``L >= 1`` (static).

    Returns:
      ``(new_state, info)``; ``info.num_evals`` is ``L``.

    Example:
      >>> log_prob = jax.tree_util.Partial(lambda x: -0.5 * jnp.sum(x**2, axis=1))
      >>> state = init_state(log_prob, jnp.ones((3, 2)))
      >>> noise = MetropolisNoise(jnp.zeros((3, 2)), jnp.zeros(3))  # p = 0, u = 0
      >>> state, info = hmc_step(log_prob, state, noise, step_size=0.1, num_leapfrog=5)
      >>> bool(info.accepted.all()), bool(jnp.all(state.position < 1.0))  # rolls toward the mode
      (True, True)
    """
    metropolis.check_step(state, noise, step_size)
    num_leapfrog = checks.positive_int("num_leapfrog", num_leapfrog)
    p, u = noise
    end, p_end = _trajectory(model, state, p, step_size, num_leapfrog)
    log_ratio = hamiltonian(state.log_prob, p) - hamiltonian(end.log_prob, p_end)  # -dH
    return metropolis.accept_reject(state, end, log_ratio, u, num_evals=num_leapfrog)


_KERNEL = metropolis.Kernel(init=metropolis.init, step=hmc_step)


def hmc(key: jax.Array, model: Model, x0: jax.Array, *, step_size: Any, num_leapfrog: int,
        num_steps: int, return_trajectory: bool = False,
        ) -> tuple[jax.Array, jax.Array]:  # fmt: skip
    """Hamiltonian Monte Carlo over many chains, fixed path length ``L * eps``.

    Args:
      key: a PRNG key (momenta and uniforms of step ``t`` from ``fold_in(key, t)``).
      model: callable pytree ``model(x (chains, *event)) -> (chains,)``, ``log pi`` up to a
        constant (traced; a plain function is static and compiles per function object).
      x0: ``(chains, dim)`` starting points.
      step_size: leapfrog step ``eps > 0`` (traced).
      num_leapfrog: ``L >= 1`` leapfrog steps per proposal (static).
      num_steps: ``>= 1`` (static).
      return_trajectory: return every step's positions.

    Returns:
      ``(samples, acceptance_rate)`` as :func:`genjax.energy.mala`.

    Example:
      >>> log_prob = jax.tree_util.Partial(lambda x: -0.5 * jnp.sum(x**2, axis=1))
      >>> x, acceptance = hmc(jax.random.key(0), log_prob, jnp.zeros((4, 2)), step_size=0.1,
      ...                     num_leapfrog=5, num_steps=10)
      >>> x.shape, bool(float(acceptance.mean()) > 0.9)  # leapfrog nearly conserves H at h = 0.1
      ((4, 2), True)
    """
    options = (("num_leapfrog", checks.positive_int("num_leapfrog", num_leapfrog)),)
    return metropolis.sample(_KERNEL, model, x0, key=key, step_size=step_size, options=options,
                             num_steps=num_steps, return_trajectory=return_trajectory)


def hmc_from_noise(model: Model, x0: jax.Array, noise: MetropolisNoise, *, step_size: Any,
                   num_leapfrog: int, return_trajectory: bool = False,
                   ) -> tuple[jax.Array, jax.Array]:  # fmt: skip
    """:func:`hmc` on given noise ``(p (num_steps, chains, *event), u (num_steps, chains))``.

    Example:
      >>> log_prob = jax.tree_util.Partial(lambda x: -0.5 * jnp.sum(x**2, axis=1))
      >>> noise = draw_noise(jax.random.key(0), 10, (4, 2))
      >>> x, acceptance = hmc_from_noise(log_prob, jnp.zeros((4, 2)), noise, step_size=0.1,
      ...                                num_leapfrog=5)
      >>> x.shape
      (4, 2)
    """
    options = (("num_leapfrog", checks.positive_int("num_leapfrog", num_leapfrog)),)
    return metropolis.sample(_KERNEL, model, x0, noise=noise, step_size=step_size,
                             options=options, return_trajectory=return_trajectory)
