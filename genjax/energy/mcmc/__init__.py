"""MCMC kernels over a log-density or a score, each one compiled loop over many chains.

One kernel a file, over one shared Metropolis loop:

* :mod:`.metropolis` -- the chain state (:class:`ChainState`) and step diagnostics
  (:class:`ChainInfo`), the noise (:func:`step_noise`, :func:`draw_noise`), the fused
  log-density-and-gradient pass, the accept/reject decision and the one ``lax.scan`` that
  MALA, random-walk Metropolis and HMC run;
* :mod:`.unadjusted` -- the unadjusted Langevin algorithm (:func:`langevin`), biased to
  first order in the step (:data:`LANGEVIN_ORDER`);
* :mod:`.adjusted` -- MALA (:func:`mala`), Roberts & Tweedie (1996);
* :mod:`.random_walk` -- random-walk Metropolis-Hastings (:func:`metropolis_hastings`);
* :mod:`.hamiltonian_mc` -- HMC (:func:`hmc`), Neal (2011);
* :mod:`.annealed` -- annealed Langevin dynamics (:func:`annealed_langevin`), Song & Ermon
  (2019).

Every kernel is a deterministic step ``step(model, state, noise, *, step_size, ...) ->
(state, info)`` and a keyed sampler ``name(key, model, x0, *, step_size, num_steps, ...)``
with its twin ``name_from_noise(model, x0, noise, ...)``. Positions are ``(chains, dim)``
(or ``(chains, *event)``); the model is a callable pytree, batched over chains: a
log-density ``(chains, dim) -> (chains,)`` for MALA, random-walk Metropolis and HMC, a
score ``(chains, dim) -> (chains, dim)`` for the Langevin samplers. It is a traced argument
of the compiled program: another target or new weights of the same shapes never recompile.

Returns. By default only what a sampler's user needs leaves the loop: the final positions
and, for the Metropolis kernels, each chain's acceptance rate ``(chains,)``; with
``return_trajectory=True`` the positions after every step, ``(num_steps, chains, dim)``.
"""

from genjax.energy.mcmc import adjusted as adjusted
from genjax.energy.mcmc import annealed as annealed
from genjax.energy.mcmc import hamiltonian_mc as hamiltonian_mc
from genjax.energy.mcmc import metropolis as metropolis
from genjax.energy.mcmc import random_walk as random_walk
from genjax.energy.mcmc import unadjusted as unadjusted
from genjax.energy.mcmc.adjusted import mala as mala
from genjax.energy.mcmc.adjusted import mala_from_noise as mala_from_noise
from genjax.energy.mcmc.adjusted import mala_log_acceptance as mala_log_acceptance
from genjax.energy.mcmc.adjusted import mala_proposal_log_density as mala_proposal_log_density
from genjax.energy.mcmc.adjusted import mala_step as mala_step
from genjax.energy.mcmc.annealed import annealed_langevin as annealed_langevin
from genjax.energy.mcmc.annealed import (
    annealed_langevin_from_noise as annealed_langevin_from_noise,
)
from genjax.energy.mcmc.annealed import (
    annealed_langevin_step_sizes as annealed_langevin_step_sizes,
)
from genjax.energy.mcmc.hamiltonian_mc import hamiltonian as hamiltonian
from genjax.energy.mcmc.hamiltonian_mc import hmc as hmc
from genjax.energy.mcmc.hamiltonian_mc import hmc_from_noise as hmc_from_noise
from genjax.energy.mcmc.hamiltonian_mc import hmc_step as hmc_step
from genjax.energy.mcmc.hamiltonian_mc import leapfrog as leapfrog
from genjax.energy.mcmc.metropolis import ChainInfo as ChainInfo
from genjax.energy.mcmc.metropolis import ChainState as ChainState
from genjax.energy.mcmc.metropolis import MetropolisNoise as MetropolisNoise
from genjax.energy.mcmc.metropolis import draw_noise as draw_noise
from genjax.energy.mcmc.metropolis import init as init_state  # noqa: F401  (energy.init_state)
from genjax.energy.mcmc.metropolis import step_noise as step_noise
from genjax.energy.mcmc.random_walk import metropolis_hastings as metropolis_hastings
from genjax.energy.mcmc.random_walk import (
    metropolis_hastings_from_noise as metropolis_hastings_from_noise,
)
from genjax.energy.mcmc.random_walk import rwmh_init as rwmh_init
from genjax.energy.mcmc.random_walk import rwmh_log_acceptance as rwmh_log_acceptance
from genjax.energy.mcmc.random_walk import rwmh_step as rwmh_step
from genjax.energy.mcmc.unadjusted import LANGEVIN_ORDER as LANGEVIN_ORDER
from genjax.energy.mcmc.unadjusted import LangevinInfo as LangevinInfo
from genjax.energy.mcmc.unadjusted import langevin as langevin
from genjax.energy.mcmc.unadjusted import langevin_from_noise as langevin_from_noise
from genjax.energy.mcmc.unadjusted import langevin_step as langevin_step
