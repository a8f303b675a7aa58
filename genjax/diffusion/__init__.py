"""Diffusion models: schedules, forward process, losses, samplers, exact models.

Core (this file's first block): noise schedules (:mod:`.schedules`), the forward process
and prediction conversions (:mod:`.forward`), training losses (:mod:`.loss`), samplers
(:mod:`.sample`: DDPM, DDIM, DPM-Solver++, EDM Euler/Heun) and exact models of
Gaussian-mixture data (:mod:`.analytic`). Extensions (SDEs, likelihood, consistency
models, guidance, networks, recipes) append their exports below.
"""


from genjax.diffusion import analytic as analytic
from genjax.diffusion import forward as forward
from genjax.diffusion import sample as sample
from genjax.diffusion import sample_dpm as sample_dpm
from genjax.diffusion import sample_edm as sample_edm
from genjax.diffusion import schedules as schedules
from genjax.diffusion.analytic import analytic_denoiser as analytic_denoiser
from genjax.diffusion.analytic import analytic_eps_fn as analytic_eps_fn
from genjax.diffusion.analytic import fast_analytic_denoiser as fast_analytic_denoiser
from genjax.diffusion.analytic import fast_analytic_eps_fn as fast_analytic_eps_fn
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
from genjax.diffusion.loss import dsm_loss as dsm_loss
from genjax.diffusion.loss import edm_coefficients as edm_coefficients
from genjax.diffusion.loss import edm_loss as edm_loss
from genjax.diffusion.loss import edm_precondition as edm_precondition
from genjax.diffusion.loss import loss as loss  # the function shadows the module name
from genjax.diffusion.loss import loss_from_noise as loss_from_noise
from genjax.diffusion.loss import min_snr_weight as min_snr_weight
from genjax.diffusion.sample import ddim_sample as ddim_sample
from genjax.diffusion.sample import ddim_sample_from_noise as ddim_sample_from_noise
from genjax.diffusion.sample import ddim_step as ddim_step
from genjax.diffusion.sample import ddim_timesteps as ddim_timesteps
from genjax.diffusion.sample import ddpm_sample as ddpm_sample
from genjax.diffusion.sample import ddpm_sample_from_noise as ddpm_sample_from_noise
from genjax.diffusion.sample import ddpm_step as ddpm_step
from genjax.diffusion.sample_dpm import dpm_solver_pp_orders as dpm_solver_pp_orders
from genjax.diffusion.sample_dpm import dpm_solver_pp_sample as dpm_solver_pp_sample
from genjax.diffusion.sample_dpm import (
    dpm_solver_pp_sample_from_noise as dpm_solver_pp_sample_from_noise,
)
from genjax.diffusion.sample_edm import euler_sample as euler_sample
from genjax.diffusion.sample_edm import euler_sample_from_noise as euler_sample_from_noise
from genjax.diffusion.sample_edm import heun_sample as heun_sample
from genjax.diffusion.sample_edm import heun_sample_from_noise as heun_sample_from_noise
from genjax.diffusion.schedules import Schedule as Schedule
from genjax.diffusion.schedules import cosine as cosine
from genjax.diffusion.schedules import from_betas as from_betas
from genjax.diffusion.schedules import karras_sigmas as karras_sigmas
from genjax.diffusion.schedules import linear as linear
from genjax.diffusion.schedules import rescale_zero_terminal_snr as rescale_zero_terminal_snr
from genjax.diffusion.schedules import sigmoid as sigmoid

# isort: split
# Extensions: SDEs, likelihood, consistency models, guidance.
from genjax.diffusion import consistency as consistency
from genjax.diffusion import guidance as guidance
from genjax.diffusion import likelihood as likelihood
from genjax.diffusion import sde as sde
from genjax.diffusion.consistency import cd_loss as cd_loss
from genjax.diffusion.consistency import consistency_fn as consistency_fn
from genjax.diffusion.consistency import consistency_sample as consistency_sample
from genjax.diffusion.consistency import ct_loss as ct_loss
from genjax.diffusion.guidance import guided as guided
from genjax.diffusion.guidance import guided_eps_fn as guided_eps_fn
from genjax.diffusion.guidance import label_dropout as label_dropout
from genjax.diffusion.likelihood import log_likelihood as log_likelihood
from genjax.diffusion.likelihood import pf_ode_sample as pf_ode_sample
from genjax.diffusion.likelihood import pf_ode_sample_from_noise as pf_ode_sample_from_noise
from genjax.diffusion.sde import VESDE as VESDE
from genjax.diffusion.sde import VPSDE as VPSDE
from genjax.diffusion.sde import SubVPSDE as SubVPSDE
from genjax.diffusion.sde import exact_score_fn as exact_score_fn
from genjax.diffusion.sde import pc_sample as pc_sample
from genjax.diffusion.sde import pc_sample_from_noise as pc_sample_from_noise
from genjax.diffusion.sde import pc_step as pc_step
from genjax.diffusion.sde import probability_flow_drift as probability_flow_drift
