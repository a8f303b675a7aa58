"""The diffusion samplers, one module each, gathered here (the family's ``sample`` spine).

===============================  =======================  =============================  =====
sampler                          module                   model                          order
===============================  =======================  =============================  =====
DDPM ancestral (Ho et al. 2020)  :mod:`.ddpm`             ``eps(x_t, t)``, integer t     1 (weak)
DDIM (Song et al. 2021)          :mod:`.ddim`             ``eps(x_t, t)``                1
DPM-Solver++ 1/2M/3M/2S          :mod:`.dpm_solver`       ``eps(x_t, t)``                1/2/3/2
EDM Euler, Heun (Karras 2022)    :mod:`.edm`              denoiser ``D(x, sigma)``       1, 2
reverse-SDE predictor-corrector  :mod:`.pc_sampler`       score ``s(x, t)``, t in [0,1]  --
probability-flow ODE             :mod:`.likelihood`       score ``s(x, t)``              solver's
consistency (Song et al. 2023)   :mod:`.consistency`      ``f(x, sigma)``                --
===============================  =======================  =============================  =====

Every sampler follows one signature: ``name(key, model, shape, ...)``, compiled whole (one
``jax.jit`` around one ``lax.scan``) with the model a *traced* argument -- a callable pytree
(an ``nnx.Module``, an analytic model such as :func:`genjax.diffusion.analytic_eps_fn`, a
``jax.tree_util.Partial``), so new weights of the same shapes reuse the compiled program. A
plain Python function is accepted too: it is static, and each new function object compiles
anew. Each stochastic sampler is a loop over a deterministic step that receives its noise;
``name_from_noise(model, x_T, noise, ...)`` runs that loop on given noise (so tests share
noise with the NumPy oracle :mod:`genjax.diffusion.oracle`), and the keyed sampler draws the
noise as its docstring says. Every sampler takes ``return_trajectory=True`` to also return
the states it visited. The steps are ``step(model, state, noise, *, ...) -> (state, info)``
with ``info`` a :class:`StepInfo` (the model's output, ``x0_hat``, the number of model
evaluations).

Zero terminal SNR. With ``alpha_bar[T-1] = 0`` (:func:`schedules.rescale_zero_terminal_snr`),
``x_0 = (x_t - sigma_t eps) / alpha_t`` is ``0/0`` at ``t = T-1``. The discrete samplers then
take ``x0_hat = 0`` -- the limit of that expression for the exact ``eps = x_t``, i.e. the
prior mean of centred data -- and stay finite; a noise-prediction network carries no
information about ``x_0`` at SNR 0 (Lin et al. 2024 use v-prediction there).
"""

from __future__ import annotations

from genjax.diffusion._common import DiscreteState, StepInfo
from genjax.diffusion.ddim import (
    DDIM_ORDER,
    ddim_sample,
    ddim_sample_from_noise,
    ddim_step,
    ddim_timesteps,
)
from genjax.diffusion.ddpm import (
    DDPM_ORDER,
    ddpm_noise,
    ddpm_sample,
    ddpm_sample_from_noise,
    ddpm_step,
)
from genjax.diffusion.dpm_solver import (
    DPM_SOLVER_PP_ORDER,
    dpm_solver_pp_orders,
    dpm_solver_pp_sample,
    dpm_solver_pp_sample_from_noise,
)
from genjax.diffusion.edm import (
    EULER_ORDER,
    HEUN_ORDER,
    EDMState,
    euler_sample,
    euler_sample_from_noise,
    euler_step,
    heun_sample,
    heun_sample_from_noise,
    heun_step,
)

__all__ = [
    "StepInfo",
    "DiscreteState",
    "EDMState",
    "DDPM_ORDER",
    "DDIM_ORDER",
    "DPM_SOLVER_PP_ORDER",
    "EULER_ORDER",
    "HEUN_ORDER",
    "ddpm_step",
    "ddpm_sample",
    "ddpm_sample_from_noise",
    "ddpm_noise",
    "ddim_timesteps",
    "ddim_step",
    "ddim_sample",
    "ddim_sample_from_noise",
    "dpm_solver_pp_orders",
    "dpm_solver_pp_sample",
    "dpm_solver_pp_sample_from_noise",
    "euler_step",
    "euler_sample",
    "euler_sample_from_noise",
    "heun_step",
    "heun_sample",
    "heun_sample_from_noise",
]
