"""Energy-based models: MCMC samplers, contrastive divergence, score matching.

* :mod:`.mcmc` -- one kernel a file over one shared Metropolis loop: unadjusted Langevin,
  MALA, random-walk Metropolis-Hastings, HMC and annealed Langevin dynamics, each a
  deterministic step ``step(model, state, noise, ...) -> (state, info)`` plus one compiled
  loop over many chains, with a ``*_from_noise`` twin.
* :mod:`.loss` -- contrastive divergence (CD-k), persistent CD with a replay buffer, the
  L2 energy regulariser, and exact, denoising, sliced and noise-conditional score matching,
  each ``name(model, batch, key, *, ...) -> (loss, metrics)``.
* :mod:`.energy_model` -- an energy network's log-density ``-E`` and score ``-grad E`` as
  models for the samplers.
* :mod:`.network` -- an MLP energy for 2-D data, a small convolutional energy for digits,
  and a noise-conditional score network.
* :mod:`.rbm` -- the binary restricted Boltzmann machine: block Gibbs on explicit noise,
  CD-k and persistent CD, exact log Z by enumeration and log Z by annealed importance
  sampling (Hinton 2002; Tieleman 2008; Salakhutdinov & Murray 2008); its NumPy twin is
  :mod:`.oracle_rbm`.
* :mod:`.oracle` -- the NumPy float64 twin of all of the above.

The model (DESIGN.md's protocol) is a callable pytree passed as a traced argument: a
log-density ``(chains, dim) -> (chains,)`` (e.g. ``target.log_prob`` of a
:class:`genjax.targets.GaussianMixture`), a score ``(chains, dim) -> (chains, dim)``
(``target.score``), or a network.
"""

from genjax.energy import energy_model as energy_model
from genjax.energy import loss as loss
from genjax.energy import mcmc as mcmc
from genjax.energy import network as network
from genjax.energy import rbm as rbm
from genjax.energy.energy_model import energy_log_prob as energy_log_prob
from genjax.energy.energy_model import energy_score as energy_score
from genjax.energy.loss import cd_negatives as cd_negatives
from genjax.energy.loss import cd_objective as cd_objective
from genjax.energy.loss import contrastive_divergence_loss as contrastive_divergence_loss
from genjax.energy.loss import denoising_score_matching_loss as denoising_score_matching_loss
from genjax.energy.loss import denoising_score_matching_terms as denoising_score_matching_terms
from genjax.energy.loss import exact_score_matching_loss as exact_score_matching_loss
from genjax.energy.loss import ncsn_loss as ncsn_loss
from genjax.energy.loss import ncsn_terms as ncsn_terms
from genjax.energy.loss import (
    persistent_contrastive_divergence_loss as persistent_contrastive_divergence_loss,
)
from genjax.energy.loss import replay_buffer_init as replay_buffer_init
from genjax.energy.loss import replay_buffer_sample as replay_buffer_sample
from genjax.energy.loss import replay_buffer_update as replay_buffer_update
from genjax.energy.loss import sliced_score_matching_loss as sliced_score_matching_loss
from genjax.energy.loss import sliced_score_matching_terms as sliced_score_matching_terms
from genjax.energy.mcmc import LANGEVIN_ORDER as LANGEVIN_ORDER
from genjax.energy.mcmc import ChainInfo as ChainInfo
from genjax.energy.mcmc import ChainState as ChainState
from genjax.energy.mcmc import LangevinInfo as LangevinInfo
from genjax.energy.mcmc import MetropolisNoise as MetropolisNoise
from genjax.energy.mcmc import annealed_langevin as annealed_langevin
from genjax.energy.mcmc import annealed_langevin_from_noise as annealed_langevin_from_noise
from genjax.energy.mcmc import annealed_langevin_step_sizes as annealed_langevin_step_sizes
from genjax.energy.mcmc import draw_noise as draw_noise
from genjax.energy.mcmc import hamiltonian as hamiltonian
from genjax.energy.mcmc import hmc as hmc
from genjax.energy.mcmc import hmc_from_noise as hmc_from_noise
from genjax.energy.mcmc import hmc_step as hmc_step
from genjax.energy.mcmc import init_state as init_state
from genjax.energy.mcmc import langevin as langevin
from genjax.energy.mcmc import langevin_from_noise as langevin_from_noise
from genjax.energy.mcmc import langevin_step as langevin_step
from genjax.energy.mcmc import leapfrog as leapfrog
from genjax.energy.mcmc import mala as mala
from genjax.energy.mcmc import mala_from_noise as mala_from_noise
from genjax.energy.mcmc import mala_log_acceptance as mala_log_acceptance
from genjax.energy.mcmc import mala_proposal_log_density as mala_proposal_log_density
from genjax.energy.mcmc import mala_step as mala_step
from genjax.energy.mcmc import metropolis_hastings as metropolis_hastings
from genjax.energy.mcmc import metropolis_hastings_from_noise as metropolis_hastings_from_noise
from genjax.energy.mcmc import rwmh_init as rwmh_init
from genjax.energy.mcmc import rwmh_log_acceptance as rwmh_log_acceptance
from genjax.energy.mcmc import rwmh_step as rwmh_step
from genjax.energy.mcmc import step_noise as step_noise
from genjax.energy.network import ConvEnergy as ConvEnergy
from genjax.energy.network import MLPEnergy as MLPEnergy
from genjax.energy.network import NoiseConditionalScore as NoiseConditionalScore
from genjax.energy.rbm import RBMParams as RBMParams
