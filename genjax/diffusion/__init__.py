"""Diffusion models: schedules, forward process, losses, samplers, exact models.

Core (this file's first block): noise schedules (:mod:`.schedules`), the forward process
and prediction conversions (:mod:`.forward`), training losses (:mod:`.loss`), samplers
(:mod:`.sample`: DDPM, DDIM, DPM-Solver++, EDM Euler/Heun) and exact models of
Gaussian-mixture data (:mod:`.analytic`). Extensions (SDEs, likelihood, consistency
models, guidance, networks, recipes) append their exports below.
"""

from genjax.diffusion import analytic, forward, sample, schedules
from genjax.diffusion.analytic import (
    analytic_denoiser,
    analytic_eps_fn,
    fast_analytic_denoiser,
    fast_analytic_eps_fn,
)
from genjax.diffusion.forward import (
    eps_to_score,
    eps_to_v,
    eps_to_x0,
    q_posterior,
    q_sample,
    score_to_eps,
    v_to_eps,
    v_to_x0,
    x0_to_eps,
    x0_to_v,
)
from genjax.diffusion.sample import (
    ddim_sample,
    ddim_sample_from_noise,
    ddim_step,
    ddim_timesteps,
    ddpm_sample,
    ddpm_sample_from_noise,
    ddpm_step,
)
from genjax.diffusion.schedules import (
    Schedule,
    cosine,
    from_betas,
    karras_sigmas,
    linear,
    rescale_zero_terminal_snr,
    sigmoid,
)
