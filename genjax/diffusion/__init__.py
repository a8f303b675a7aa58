"""Diffusion models: schedules, forward process, losses, samplers, exact models.

==========================  ===================================================================
module                      holds
==========================  ===================================================================
:mod:`.schedules`           noise schedules (linear, cosine, sigmoid, zero terminal SNR, Karras)
:mod:`.forward`             ``q_sample``, ``q_posterior`` and the eps / x0 / v / score conversions
:mod:`.losses`              the DDPM objective :func:`loss`, DSM, EDM preconditioning and loss
:mod:`.sample`              the samplers' index, :class:`StepInfo`; one module per sampler:
:mod:`.ddpm`                DDPM ancestral sampling (Ho et al. 2020)
:mod:`.ddim`                DDIM (Song et al. 2021)
:mod:`.dpm_solver`          DPM-Solver++ 1, 2M, 3M, 2S (Lu et al. 2022b)
:mod:`.edm`                 EDM Euler and Heun over a denoiser (Karras et al. 2022)
:mod:`.sde`                 VP / sub-VP / VE SDEs, their priors, the exact mixture score
:mod:`.pc_sampler`          reverse-SDE predictor-corrector sampling (Song et al. 2021)
:mod:`.likelihood`          probability-flow ODE likelihoods and sampling
:mod:`.guidance`            classifier-free guidance (Ho & Salimans 2022)
:mod:`.consistency`         consistency models: parameterisation, grid, sampling (Song et al. 2023)
:mod:`.consistency_losses`  consistency training and distillation losses
:mod:`.distillation`        progressive distillation of DDIM (Salimans & Ho 2022); its NumPy
                            twin is :mod:`.oracle_distillation`
:mod:`.analytic`            the exact eps / denoiser of Gaussian-mixture data
:mod:`.oracle`              the NumPy float64 twins of the above
:mod:`.oracle_sde`          the NumPy float64 twins of the SDE samplers
==========================  ===================================================================

Every sampler is ``name(key, model, shape, ...)`` with the model a traced callable pytree
(:mod:`genjax.model`); every loss is ``name(model, batch, key, *, ...) -> (loss, metrics)``;
every step is ``step(model, state, noise, *, ...) -> (state, info)``. Each sampler declares
its convergence order beside it (``DDIM_ORDER``, ``DPM_SOLVER_PP_ORDER``, ``EULER_ORDER``,
``HEUN_ORDER``, ``DDPM_ORDER``). ``genjax.diffusion.loss`` is the function :func:`loss` (the
module of objectives is :mod:`genjax.diffusion.losses`).
"""

from genjax.diffusion import analytic as analytic
from genjax.diffusion import consistency as consistency
from genjax.diffusion import consistency_losses as consistency_losses
from genjax.diffusion import ddim as ddim
from genjax.diffusion import ddpm as ddpm
from genjax.diffusion import distillation as distillation
from genjax.diffusion import dpm_solver as dpm_solver
from genjax.diffusion import edm as edm
from genjax.diffusion import forward as forward
from genjax.diffusion import guidance as guidance
from genjax.diffusion import likelihood as likelihood
from genjax.diffusion import losses as losses
from genjax.diffusion import pc_sampler as pc_sampler
from genjax.diffusion import sample as sample
from genjax.diffusion import schedules as schedules
from genjax.diffusion import sde as sde

# isort: split
from genjax.diffusion.analytic import AnalyticDenoiser as AnalyticDenoiser
from genjax.diffusion.analytic import AnalyticEps as AnalyticEps
from genjax.diffusion.analytic import AnalyticScore as AnalyticScore
from genjax.diffusion.analytic import analytic_denoiser as analytic_denoiser
from genjax.diffusion.analytic import analytic_eps_fn as analytic_eps_fn
from genjax.diffusion.analytic import analytic_score_fn as analytic_score_fn
from genjax.diffusion.consistency import RHO as RHO
from genjax.diffusion.consistency import SIGMA_DATA as SIGMA_DATA
from genjax.diffusion.consistency import SIGMA_MAX as SIGMA_MAX
from genjax.diffusion.consistency import SIGMA_MIN as SIGMA_MIN
from genjax.diffusion.consistency import ConsistencyFunction as ConsistencyFunction
from genjax.diffusion.consistency import consistency_fn as consistency_fn
from genjax.diffusion.consistency import consistency_model as consistency_model
from genjax.diffusion.consistency import consistency_sample as consistency_sample
from genjax.diffusion.consistency import (
    consistency_sample_from_noise as consistency_sample_from_noise,
)
from genjax.diffusion.consistency import consistency_scalings as consistency_scalings
from genjax.diffusion.consistency import ct_schedule as ct_schedule
from genjax.diffusion.consistency import karras_boundaries as karras_boundaries
from genjax.diffusion.consistency import sample_indices as sample_indices
from genjax.diffusion.consistency_losses import cd_loss as cd_loss
from genjax.diffusion.consistency_losses import cd_loss_from_noise as cd_loss_from_noise
from genjax.diffusion.consistency_losses import ct_loss as ct_loss
from genjax.diffusion.consistency_losses import ct_loss_from_noise as ct_loss_from_noise
from genjax.diffusion.ddim import DDIM_ORDER as DDIM_ORDER
from genjax.diffusion.ddim import ddim_sample as ddim_sample
from genjax.diffusion.ddim import ddim_sample_from_noise as ddim_sample_from_noise
from genjax.diffusion.ddim import ddim_step as ddim_step
from genjax.diffusion.ddim import ddim_timesteps as ddim_timesteps
from genjax.diffusion.ddpm import DDPM_ORDER as DDPM_ORDER
from genjax.diffusion.ddpm import ddpm_noise as ddpm_noise
from genjax.diffusion.ddpm import ddpm_sample as ddpm_sample
from genjax.diffusion.ddpm import ddpm_sample_from_noise as ddpm_sample_from_noise
from genjax.diffusion.ddpm import ddpm_step as ddpm_step
from genjax.diffusion.distillation import WEIGHTINGS as WEIGHTINGS
from genjax.diffusion.distillation import EpsFromPrediction as EpsFromPrediction
from genjax.diffusion.distillation import as_eps_model as as_eps_model
from genjax.diffusion.distillation import distillation_loss as distillation_loss
from genjax.diffusion.distillation import (
    distillation_loss_from_noise as distillation_loss_from_noise,
)
from genjax.diffusion.distillation import distillation_stages as distillation_stages
from genjax.diffusion.distillation import distillation_target as distillation_target
from genjax.diffusion.distillation import distillation_timesteps as distillation_timesteps
from genjax.diffusion.distillation import distillation_weight as distillation_weight
from genjax.diffusion.dpm_solver import DPM_SOLVER_PP_ORDER as DPM_SOLVER_PP_ORDER
from genjax.diffusion.dpm_solver import dpm_solver_pp_orders as dpm_solver_pp_orders
from genjax.diffusion.dpm_solver import dpm_solver_pp_sample as dpm_solver_pp_sample
from genjax.diffusion.dpm_solver import (
    dpm_solver_pp_sample_from_noise as dpm_solver_pp_sample_from_noise,
)
from genjax.diffusion.edm import EULER_ORDER as EULER_ORDER
from genjax.diffusion.edm import HEUN_ORDER as HEUN_ORDER
from genjax.diffusion.edm import euler_sample as euler_sample
from genjax.diffusion.edm import euler_sample_from_noise as euler_sample_from_noise
from genjax.diffusion.edm import euler_step as euler_step
from genjax.diffusion.edm import heun_sample as heun_sample
from genjax.diffusion.edm import heun_sample_from_noise as heun_sample_from_noise
from genjax.diffusion.edm import heun_step as heun_step
from genjax.diffusion.forward import eps_to_score as eps_to_score
from genjax.diffusion.forward import eps_to_v as eps_to_v
from genjax.diffusion.forward import eps_to_x0 as eps_to_x0
from genjax.diffusion.forward import q_posterior as q_posterior
from genjax.diffusion.forward import q_sample as q_sample
from genjax.diffusion.forward import score_to_eps as score_to_eps
from genjax.diffusion.forward import v_to_eps as v_to_eps
from genjax.diffusion.forward import v_to_x0 as v_to_x0
from genjax.diffusion.forward import x0_to_eps as x0_to_eps
from genjax.diffusion.forward import x0_to_v as x0_to_v
from genjax.diffusion.guidance import GuidedModel as GuidedModel
from genjax.diffusion.guidance import LabelledModel as LabelledModel
from genjax.diffusion.guidance import guided as guided
from genjax.diffusion.guidance import guided_eps_fn as guided_eps_fn
from genjax.diffusion.guidance import label_dropout as label_dropout
from genjax.diffusion.guidance import with_labels as with_labels
from genjax.diffusion.likelihood import divergence_exact as divergence_exact
from genjax.diffusion.likelihood import divergence_hutchinson as divergence_hutchinson
from genjax.diffusion.likelihood import log_likelihood as log_likelihood
from genjax.diffusion.likelihood import pf_ode_sample as pf_ode_sample
from genjax.diffusion.likelihood import pf_ode_sample_from_noise as pf_ode_sample_from_noise
from genjax.diffusion.losses import EDMDenoiser as EDMDenoiser
from genjax.diffusion.losses import dsm_loss as dsm_loss
from genjax.diffusion.losses import edm_coefficients as edm_coefficients
from genjax.diffusion.losses import edm_loss as edm_loss
from genjax.diffusion.losses import edm_precondition as edm_precondition
from genjax.diffusion.losses import loss as loss
from genjax.diffusion.losses import loss_from_noise as loss_from_noise
from genjax.diffusion.losses import min_snr_weight as min_snr_weight
from genjax.diffusion.pc_sampler import PCInfo as PCInfo
from genjax.diffusion.pc_sampler import SDEState as SDEState
from genjax.diffusion.pc_sampler import euler_maruyama_step as euler_maruyama_step
from genjax.diffusion.pc_sampler import langevin_corrector_step as langevin_corrector_step
from genjax.diffusion.pc_sampler import pc_sample as pc_sample
from genjax.diffusion.pc_sampler import pc_sample_from_noise as pc_sample_from_noise
from genjax.diffusion.pc_sampler import pc_step as pc_step
from genjax.diffusion.pc_sampler import reverse_diffusion_step as reverse_diffusion_step
from genjax.diffusion.sample import DiscreteState as DiscreteState
from genjax.diffusion.sample import EDMState as EDMState
from genjax.diffusion.sample import StepInfo as StepInfo
from genjax.diffusion.schedules import Schedule as Schedule
from genjax.diffusion.schedules import cosine as cosine
from genjax.diffusion.schedules import from_betas as from_betas
from genjax.diffusion.schedules import karras_sigmas as karras_sigmas
from genjax.diffusion.schedules import linear as linear
from genjax.diffusion.schedules import rescale_zero_terminal_snr as rescale_zero_terminal_snr
from genjax.diffusion.schedules import sigmoid as sigmoid
from genjax.diffusion.sde import SDE as SDE
from genjax.diffusion.sde import VESDE as VESDE
from genjax.diffusion.sde import VPSDE as VPSDE
from genjax.diffusion.sde import SubVPSDE as SubVPSDE
from genjax.diffusion.sde import prior_log_prob as prior_log_prob
from genjax.diffusion.sde import prior_sample as prior_sample
from genjax.diffusion.sde import probability_flow_drift as probability_flow_drift
from genjax.diffusion.sde import reverse_drift as reverse_drift

