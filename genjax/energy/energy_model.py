"""An energy model as the samplers see it: its log-density and its score, as models.

An energy-based model ``p(x) ∝ exp(-E(x))`` (LeCun et al. 2006, "A tutorial on
energy-based learning") is given by its energy ``E: (batch, ...) -> (batch,)``, an
``nnx.Module`` such as :class:`genjax.energy.MLPEnergy`. The samplers want

    log p(x) = -E(x) + const             (MALA, random-walk Metropolis, HMC)
    score(x) = grad_x log p(x) = -grad_x E(x)   (Langevin dynamics)

:func:`energy_log_prob` and :func:`energy_score` return these as callable pytrees
(``jax.tree_util.Partial`` over the energy model), so the energy's weights stay traced
arguments of a sampler's compiled program: sampling a network after every training step
never recompiles.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.model import Model

__all__ = ["energy_log_prob", "energy_score"]


def _negative_energy(model: Model, x: jax.Array) -> jax.Array:
    # log p(x) = -E(x) + const: (batch,), one energy per example (never broadcast).
    return -checks.model_output(model(x), jnp.shape(x)[:1], "(batch,) of x")


def _energy_gradient_score(model: Model, x: jax.Array) -> jax.Array:
    # One reverse pass of the batched energy: examples are independent, so the gradient of
    # sum_b E(x_b) with respect to x_b is example b's own.
    def total(z: jax.Array) -> jax.Array:
        # A (batch, 1) energy would be summed all the same: check it is (batch,).
        return jnp.sum(checks.model_output(model(z), jnp.shape(z)[:1], "(batch,) of x"))

    return -jax.grad(total)(x)  # -grad_x E: (batch, ...)


def energy_log_prob(model: Model) -> jax.tree_util.Partial:
    """``x (batch, ...) -> -E(x) (batch,)``: the unnormalised log-density of ``exp(-E)``.

    Args:
      model: the energy, a callable pytree ``model(x (batch, ...)) -> (batch,)``.

    Returns:
      A callable pytree (its leaves are the model's), for :func:`genjax.energy.mala`,
      :func:`genjax.energy.metropolis_hastings` and :func:`genjax.energy.hmc`.
    """
    return jax.tree_util.Partial(_negative_energy, model)


def energy_score(model: Model) -> jax.tree_util.Partial:
    """``x (batch, ...) -> -grad_x E(x) (batch, ...)``, the score of ``exp(-E)``.

    Args:
      model: the energy, a callable pytree ``model(x (batch, ...)) -> (batch,)``.

    Returns:
      A callable pytree (its leaves are the model's), for :func:`genjax.energy.langevin`.
    """
    return jax.tree_util.Partial(_energy_gradient_score, model)
