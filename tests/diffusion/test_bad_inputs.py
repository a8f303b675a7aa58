"""Bad and extreme inputs for every public function of the diffusion family (issue 16).

Each :class:`BadInput` names the argument a call gets wrong; ``assert_handled`` requires a
``ValueError``/``TypeError`` naming it (``kind="reject"``), or a finite, correct answer for
a valid extreme. ``python -m genjax.testing.probe`` counts these cases. Tiny shapes, an
8-step schedule, and checks that fire before any sampler compiles keep the module cheap.

Findings of issue 16 covered here: 8 (``t`` outside ``[0, T)`` rejected at trace time:
the ``*: t = T`` / ``t = -1`` cases), 9 (a model returning ``(batch, 1)`` for ``(batch, D)``:
the ``model output (batch, 1)`` cases) and 10 (EDM sigma sequences: the ``sigmas ...``
cases of the Euler and Heun samplers).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import diffusion as d
from genjax import targets
from genjax.testing import BadInput, assert_handled

KEY = jax.random.key(0)
T = 8
S = d.linear(T)
X = jnp.ones((4, 2)) * 0.5
EPS = jnp.ones((4, 2)) * 0.1
T_OK = jnp.array([0, 1, 2, 7], jnp.int32)
T_HIGH = jnp.array([0, 1, 2, T], jnp.int32)
T_NEG = jnp.array([-1, 1, 2, 3], jnp.int32)
T_FLOAT = jnp.array([0.0, 1.0, 2.0, 3.0])
SIGMAS = d.karras_sigmas(3, 0.01, 10.0)  # (4,): decreasing, one trailing 0
VP = d.VPSDE()


def _scaled(p, x, t):
    return p * x  # (batch, ...): the shape of x, as every diffusion model must return


def _narrow(p, x, t):
    return p * x[:, :1]  # (batch, 1): the mistake of finding 9


MODEL = jax.tree_util.Partial(_scaled, jnp.asarray(0.3))
NARROW = jax.tree_util.Partial(_narrow, jnp.asarray(0.3))


def _cm(p, x, sigma):
    return p * x


CONSISTENCY = jax.tree_util.Partial(_cm, jnp.asarray(0.5))


def _finite(out) -> bool:
    return all(bool(np.all(np.isfinite(np.asarray(v)))) for v in jax.tree_util.tree_leaves(out))


def _cases_schedules() -> list[BadInput]:
    return [
        BadInput("schedules.linear: num_steps = 0", lambda: d.linear(0), "num_steps"),
        BadInput("schedules.linear: beta_start < 0", lambda: d.linear(8, -0.1, 0.02), "beta_start"),
        BadInput("schedules.linear: beta_end = 1.5", lambda: d.linear(8, 1e-4, 1.5), "beta_end"),
        BadInput("schedules.linear: beta_end NaN", lambda: d.linear(8, 1e-4, float("nan")),
                 "beta_end"),
        BadInput("schedules.cosine: s < 0", lambda: d.cosine(8, s=-1.0), "s"),
        BadInput("schedules.cosine: num_steps = 2.5", lambda: d.cosine(2.5), "num_steps"),
        BadInput("schedules.sigmoid: tau = 0", lambda: d.sigmoid(8, tau=0.0), "tau"),
        BadInput("schedules.from_betas: NaN beta", lambda: d.from_betas([0.1, float("nan")]),
                 "betas"),
        BadInput("schedules.from_betas: beta > 1", lambda: d.from_betas([0.1, 1.5]), "betas"),
        BadInput("schedules.from_betas: 2-D", lambda: d.from_betas([[0.1, 0.2]]), "betas"),
        BadInput("schedules.karras_sigmas: num_steps = 0", lambda: d.karras_sigmas(0),
                 "num_steps"),
        BadInput("schedules.karras_sigmas: sigma_min < 0", lambda: d.karras_sigmas(4, -1.0),
                 "sigma_min"),
        BadInput("schedules.karras_sigmas: rho = 0", lambda: d.karras_sigmas(4, rho=0.0), "rho"),
        BadInput("schedules.rescale_zero_terminal_snr: not a Schedule",
                 lambda: d.rescale_zero_terminal_snr(jnp.ones(3)), "schedule"),
    ]


def _cases_forward() -> list[BadInput]:
    f = d.forward
    cases = [
        BadInput("forward.q_sample: t = T", lambda: d.q_sample(S, X, T_HIGH, EPS), "t"),
        BadInput("forward.q_sample: t = -1", lambda: d.q_sample(S, X, T_NEG, EPS), "t"),
        BadInput("forward.q_sample: float t", lambda: d.q_sample(S, X, T_FLOAT, EPS), "t"),
        BadInput("forward.q_sample: t of the wrong batch", lambda: d.q_sample(S, X, T_OK[:3], EPS),
                 "t"),
        BadInput("forward.q_sample: eps of the wrong shape",
                 lambda: d.q_sample(S, X, T_OK, EPS[:, :1]), "eps"),
        BadInput("forward.q_posterior: t = T", lambda: d.q_posterior(S, X, X, T_HIGH), "t"),
        BadInput("forward.q_posterior: x_t of the wrong shape",
                 lambda: d.q_posterior(S, X, X[:2], T_OK), "x_t"),
    ]
    for name in ("eps_to_x0", "x0_to_eps", "v_to_eps", "v_to_x0", "eps_to_v", "x0_to_v"):
        fn = getattr(f, name)
        cases.append(BadInput(f"forward.{name}: t = T",
                              lambda fn=fn: fn(S, X, T_HIGH, EPS), "t"))
        cases.append(BadInput(f"forward.{name}: other of the wrong shape",
                              lambda fn=fn: fn(S, X, T_OK, EPS[:, :1]), name.split("_to_")[0]))
    cases += [
        BadInput("forward.eps_to_score: t = -1", lambda: d.eps_to_score(S, T_NEG, EPS), "t"),
        BadInput("forward.score_to_eps: t = T", lambda: d.score_to_eps(S, T_HIGH, EPS), "t"),
        BadInput("forward.q_sample: t at both ends", lambda: d.q_sample(
            S, X[:2], jnp.array([0, T - 1]), EPS[:2]), kind="extreme"),
        BadInput("forward.q_posterior: t = 0 (point mass)", lambda: d.q_posterior(
            S, X[:1], X[:1], jnp.array([0])),
            kind="extreme", check=lambda out: float(out[1][0]) == 0.0),
    ]
    return cases


def _cases_losses() -> list[BadInput]:
    return [
        BadInput("losses.loss_from_noise: t = T",
                 lambda: d.loss_from_noise(MODEL, X, T_HIGH, EPS, schedule=S), "t"),
        BadInput("losses.loss_from_noise: model output (batch, 1)",
                 lambda: d.loss_from_noise(NARROW, X, T_OK, EPS, schedule=S), "model"),
        BadInput("losses.loss: model output (batch, 1)",
                 lambda: d.loss(NARROW, X, KEY, schedule=S), "model"),
        BadInput("losses.loss: prediction 'x'",
                 lambda: d.loss(MODEL, X, KEY, schedule=S, prediction="x"), "prediction"),
        BadInput("losses.loss: min_snr_gamma < 0",
                 lambda: d.loss(MODEL, X, KEY, schedule=S, min_snr_gamma=-1.0), "min_snr_gamma"),
        BadInput("losses.loss: integer batch",
                 lambda: d.loss(MODEL, jnp.ones((4, 2), jnp.int32), KEY, schedule=S), "batch"),
        BadInput("losses.min_snr_weight: gamma = 0",
                 lambda: d.min_snr_weight(jnp.ones(3), 0.0, "eps"), "gamma"),
        BadInput("losses.min_snr_weight: prediction 'x'",
                 lambda: d.min_snr_weight(jnp.ones(3), 5.0, "x"), "prediction"),
        BadInput("losses.dsm_loss: sigma_min = 0",
                 lambda: d.dsm_loss(MODEL, X, KEY, sigma_min=0.0, sigma_max=1.0), "sigma_min"),
        BadInput("losses.dsm_loss: sigma_max < sigma_min",
                 lambda: d.dsm_loss(MODEL, X, KEY, sigma_min=1.0, sigma_max=0.5), "sigma_max"),
        BadInput("losses.dsm_loss: model output (batch, 1)",
                 lambda: d.dsm_loss(NARROW, X, KEY, sigma_min=0.1, sigma_max=1.0), "model"),
        BadInput("losses.edm_loss: sigma_data = 0",
                 lambda: d.edm_loss(MODEL, X, KEY, sigma_data=0.0), "sigma_data"),
        BadInput("losses.edm_loss: p_std < 0",
                 lambda: d.edm_loss(MODEL, X, KEY, p_std=-1.0), "p_std"),
        BadInput("losses.edm_loss: model output (batch, 1)",
                 lambda: d.edm_loss(NARROW, X, KEY), "model"),
        BadInput("losses.edm_coefficients: sigma < 0",
                 lambda: d.edm_coefficients(jnp.array([-1.0])), "sigma"),
        BadInput("losses.edm_precondition: sigma_data NaN",
                 lambda: d.edm_precondition(MODEL, float("nan")), "sigma_data"),
        BadInput("losses.edm_coefficients: sigma = 0", lambda: d.edm_coefficients(
            jnp.array([0.0, 1.0])), "sigma"),
        BadInput("losses.edm_coefficients: sigma = 1e-6 and 1e4", lambda: d.edm_coefficients(
            jnp.array([1e-6, 1e4])), kind="extreme"),
    ]


def _cases_discrete_samplers() -> list[BadInput]:
    state = d.DiscreteState(X, jnp.asarray(T, jnp.int32))
    ok_state = d.DiscreteState(X, jnp.asarray(3, jnp.int32))
    return [
        BadInput("ddpm.ddpm_step: state.t = T",
                 lambda: d.ddpm_step(MODEL, state, EPS, schedule=S), "t"),
        BadInput("ddpm.ddpm_step: variance 'small'",
                 lambda: d.ddpm_step(MODEL, ok_state, EPS, schedule=S, variance="small"),
                 "variance"),
        BadInput("ddpm.ddpm_step: model output (batch, 1)",
                 lambda: d.ddpm_step(NARROW, ok_state, EPS, schedule=S), "model"),
        BadInput("ddpm.ddpm_step: noise of the wrong shape",
                 lambda: d.ddpm_step(MODEL, ok_state, EPS[:, :1], schedule=S), "noise"),
        BadInput("ddpm.ddpm_sample: shape (0, 2)",
                 lambda: d.ddpm_sample(KEY, MODEL, (0, 2), S), "shape"),
        BadInput("ddpm.ddpm_sample: clip_x0 = 0",
                 lambda: d.ddpm_sample(KEY, MODEL, (4, 2), S, clip_x0=0.0), "clip_x0"),
        BadInput("ddpm.ddpm_sample: model output (batch, 1)",
                 lambda: d.ddpm_sample(KEY, NARROW, (4, 2), S), "model"),
        BadInput("ddpm.ddpm_sample_from_noise: noises of the wrong shape",
                 lambda: d.ddpm_sample_from_noise(MODEL, X, jnp.zeros((T - 1, 4, 2)), S),
                 "noises"),
        BadInput("ddim.ddim_timesteps: num_steps > num_train_steps",
                 lambda: d.ddim_timesteps(8, 20), "num_steps"),
        BadInput("ddim.ddim_step: t_prev >= t",
                 lambda: d.ddim_step(MODEL, ok_state, None, schedule=S, t_prev=5), "t_prev"),
        BadInput("ddim.ddim_step: state.t = T",
                 lambda: d.ddim_step(MODEL, state, None, schedule=S, t_prev=2), "t"),
        BadInput("ddim.ddim_sample: num_steps = 0",
                 lambda: d.ddim_sample(KEY, MODEL, (4, 2), S, num_steps=0), "num_steps"),
        BadInput("ddim.ddim_sample: eta < 0",
                 lambda: d.ddim_sample(KEY, MODEL, (4, 2), S, num_steps=4, eta=-1.0), "eta"),
        BadInput("ddim.ddim_sample_from_noise: model output (batch, 1)",
                 lambda: d.ddim_sample_from_noise(NARROW, X, None, S, num_steps=2), "model"),
        BadInput("dpm_solver.dpm_solver_pp_orders: order 4",
                 lambda: d.dpm_solver_pp_orders(4, 4), "order"),
        BadInput("dpm_solver.dpm_solver_pp_sample: method 'linear'",
                 lambda: d.dpm_solver_pp_sample(KEY, MODEL, (4, 2), S, num_steps=4,
                                                method="linear"), "method"),
        BadInput("dpm_solver.dpm_solver_pp_sample: num_steps > T",
                 lambda: d.dpm_solver_pp_sample(KEY, MODEL, (4, 2), S, num_steps=20), "num_steps"),
        BadInput("dpm_solver.dpm_solver_pp_sample_from_noise: model output (batch, 1)",
                 lambda: d.dpm_solver_pp_sample_from_noise(NARROW, X, S, num_steps=2), "model"),
    ]


def _cases_edm() -> list[BadInput]:
    st = d.EDMState(X, jnp.asarray(1.0))
    return [
        BadInput("edm.euler_sample: sigmas increasing",
                 lambda: d.euler_sample(KEY, MODEL, (4, 2), SIGMAS[::-1]), "sigmas"),
        BadInput("edm.euler_sample: sigmas with NaN",
                 lambda: d.euler_sample(KEY, MODEL, (4, 2), SIGMAS.at[1].set(jnp.nan)), "sigmas"),
        BadInput("edm.euler_sample: negative sigma",
                 lambda: d.euler_sample(KEY, MODEL, (4, 2), jnp.array([1.0, -0.5, 0.0])),
                 "sigmas"),
        BadInput("edm.euler_sample: sigmas with two trailing 0s (karras_sigmas + [0])",
                 lambda: d.euler_sample(KEY, MODEL, (4, 2), jnp.append(SIGMAS, 0.0)), "sigmas"),
        BadInput("edm.euler_sample: sigmas not ending in 0",
                 lambda: d.euler_sample(KEY, MODEL, (4, 2), SIGMAS[:-1]), "sigmas"),
        BadInput("edm.euler_sample: sigmas 2-D",
                 lambda: d.euler_sample(KEY, MODEL, (4, 2), SIGMAS[None]), "sigmas"),
        BadInput("edm.euler_sample_from_noise: model output (batch, 1)",
                 lambda: d.euler_sample_from_noise(NARROW, X, SIGMAS), "model"),
        BadInput("edm.heun_sample: sigmas with two trailing 0s",
                 lambda: d.heun_sample(KEY, MODEL, (4, 2), jnp.append(SIGMAS, 0.0)), "sigmas"),
        BadInput("edm.heun_sample: sigmas increasing",
                 lambda: d.heun_sample(KEY, MODEL, (4, 2), SIGMAS[::-1]), "sigmas"),
        BadInput("edm.heun_sample: s_churn < 0",
                 lambda: d.heun_sample(KEY, MODEL, (4, 2), SIGMAS, s_churn=-1.0), "s_churn"),
        BadInput("edm.heun_sample_from_noise: sigmas with NaN",
                 lambda: d.heun_sample_from_noise(MODEL, X, None, SIGMAS.at[0].set(jnp.nan)),
                 "sigmas"),
        BadInput("edm.euler_step: sigma_next > sigma",
                 lambda: d.euler_step(MODEL, st, sigma_next=2.0), "sigma_next"),
        BadInput("edm.euler_step: sigma_next < 0",
                 lambda: d.euler_step(MODEL, st, sigma_next=-0.1), "sigma_next"),
        BadInput("edm.heun_step: gamma < 0",
                 lambda: d.heun_step(MODEL, st, None, sigma_next=0.5, gamma=-1.0), "gamma"),
        BadInput("edm.heun_step: state sigma = 0",
                 lambda: d.heun_step(MODEL, d.EDMState(X, jnp.asarray(0.0)), None,
                                     sigma_next=0.0), "sigma"),
        BadInput("edm.euler_sample: karras_sigmas(1) (one level then 0)",
                 lambda: d.euler_sample(KEY, MODEL, (4, 2), d.karras_sigmas(1)), kind="extreme"),
    ]


def _cases_sde() -> list[BadInput]:
    sst = d.SDEState(X, jnp.asarray(0.5))
    return [
        BadInput("sde.VPSDE: beta_min < 0", lambda: d.VPSDE(beta_min=-1.0), "beta_min"),
        BadInput("sde.VESDE: sigma_max < sigma_min",
                 lambda: d.VESDE(sigma_min=1.0, sigma_max=0.1), "sigma_max"),
        BadInput("sde.prior_sample: shape (0,)", lambda: d.prior_sample(KEY, VP, (0,)), "shape"),
        BadInput("sde.reverse_drift: model output (batch, 1)",
                 lambda: d.reverse_drift(NARROW, VP, X, jnp.full((4,), 0.5)), "model"),
        BadInput("sde.probability_flow_drift: model output (batch, 1)",
                 lambda: d.probability_flow_drift(NARROW, VP, X, jnp.full((4,), 0.5)), "model"),
        BadInput("sde.reverse_drift: t = 2 (outside [0, 1])",
                 lambda: d.reverse_drift(MODEL, VP, X, jnp.full((4,), 2.0)), "t"),
        BadInput("pc_sampler.pc_sample: num_steps = 0",
                 lambda: d.pc_sample(KEY, MODEL, (4, 2), VP, num_steps=0), "num_steps"),
        BadInput("pc_sampler.pc_sample: snr < 0",
                 lambda: d.pc_sample(KEY, MODEL, (4, 2), VP, num_steps=2, snr=-1.0), "snr"),
        BadInput("pc_sampler.pc_sample: predictor 'heun'",
                 lambda: d.pc_sample(KEY, MODEL, (4, 2), VP, num_steps=2, predictor="heun"),
                 "predictor"),
        BadInput("pc_sampler.pc_sample: eps = 1.5",
                 lambda: d.pc_sample(KEY, MODEL, (4, 2), VP, num_steps=2, eps=1.5), "eps"),
        BadInput("pc_sampler.pc_sample: model output (batch, 1)",
                 lambda: d.pc_sample(KEY, NARROW, (4, 2), VP, num_steps=2), "model"),
        BadInput("pc_sampler.euler_maruyama_step: h < 0",
                 lambda: d.euler_maruyama_step(MODEL, sst, EPS, sde=VP, h=-0.1), "h"),
        BadInput("pc_sampler.langevin_corrector_step: snr NaN",
                 lambda: d.langevin_corrector_step(MODEL, sst, EPS, sde=VP, h=0.1,
                                                   snr=float("nan")), "snr"),
        BadInput("pc_sampler.reverse_diffusion_step: noise of the wrong shape",
                 lambda: d.reverse_diffusion_step(MODEL, sst, EPS[:, :1], sde=VP, h=0.1),
                 "noise"),
        BadInput("likelihood.log_likelihood: method 'rk2'",
                 lambda: d.log_likelihood(None, MODEL, X, VP, method="rk2"), "method"),
        BadInput("likelihood.log_likelihood: trace 'hutchinson' without a key",
                 lambda: d.log_likelihood(None, MODEL, X, VP, trace="hutchinson"), "key"),
        BadInput("likelihood.log_likelihood: eps = 0",
                 lambda: d.log_likelihood(None, MODEL, X, VP, eps=0.0), "eps"),
        BadInput("likelihood.log_likelihood: model output (batch, 1)",
                 lambda: d.log_likelihood(None, NARROW, X, VP, num_steps=2), "model"),
        BadInput("likelihood.pf_ode_sample: num_steps = 0",
                 lambda: d.pf_ode_sample(KEY, MODEL, (4, 2), VP, num_steps=0), "num_steps"),
        BadInput("likelihood.pf_ode_sample_from_noise: model output (batch, 1)",
                 lambda: d.pf_ode_sample_from_noise(NARROW, X, VP, num_steps=2), "model"),
        BadInput("likelihood.divergence_exact: fn output (batch, 1)",
                 lambda: d.divergence_exact(lambda x: x[:, :1], X), "fn"),
        BadInput("likelihood.divergence_hutchinson: probes of the wrong shape",
                 lambda: d.divergence_hutchinson(lambda x: x, X, jnp.ones((1, 4, 3))), "probes"),
    ]


def _cases_consistency_guidance() -> list[BadInput]:
    labelled = d.with_labels(jax.tree_util.Partial(lambda p, x, t, y: p * x, jnp.asarray(1.0)),
                             jnp.zeros(4, jnp.int32))
    return [
        BadInput("consistency.consistency_scalings: sigma_data = 0",
                 lambda: d.consistency_scalings(jnp.ones(2), sigma_data=0.0), "sigma_data"),
        BadInput("consistency.consistency_scalings: eps < 0",
                 lambda: d.consistency_scalings(jnp.ones(2), eps=-1.0), "eps"),
        BadInput("consistency.consistency_fn: model output (batch, 1)",
                 lambda: d.consistency_fn(NARROW, X, jnp.ones(4)), "model"),
        BadInput("consistency.consistency_sample: sigmas empty",
                 lambda: d.consistency_sample(KEY, CONSISTENCY, (4, 2), sigmas=()), "sigmas"),
        BadInput("consistency.consistency_sample: sigma below sigma_min",
                 lambda: d.consistency_sample(KEY, CONSISTENCY, (4, 2), sigmas=(80.0, 1e-4)),
                 "sigmas"),
        BadInput("consistency.karras_boundaries: num_scales = 1",
                 lambda: d.karras_boundaries(jnp.arange(2), 1), "num_scales"),
        BadInput("consistency.ct_schedule: total_steps = 0",
                 lambda: d.ct_schedule(0, 0), "total_steps"),
        BadInput("consistency.sample_indices: batch = 0",
                 lambda: d.sample_indices(KEY, 0, 10), "batch"),
        BadInput("consistency.sample_indices: noise_sampling 'gaussian'",
                 lambda: d.sample_indices(KEY, 4, 10, noise_sampling="gaussian"),
                 "noise_sampling"),
        BadInput("consistency_losses.ct_loss: noise_sampling 'gaussian'",
                 lambda: d.ct_loss(CONSISTENCY, X, KEY, noise_sampling="gaussian", num_scales=10),
                 "noise_sampling"),
        BadInput("consistency_losses.cd_loss: solver 'rk4'",
                 lambda: d.cd_loss(CONSISTENCY, X, KEY, teacher=MODEL, solver="rk4", num_scales=10),
                 "solver"),
        BadInput("consistency_losses.ct_loss: num_scales = 1",
                 lambda: d.ct_loss(CONSISTENCY, X, KEY, num_scales=1), "num_scales"),
        BadInput("guidance.guided: scale NaN",
                 lambda: d.guided(EPS, EPS, float("nan")), "scale"),
        BadInput("guidance.guided: eps_uncond of the wrong shape",
                 lambda: d.guided(EPS, EPS[:, :1], 2.0), "eps_uncond"),
        BadInput("guidance.label_dropout: p_uncond = 1.5",
                 lambda: d.label_dropout(KEY, jnp.zeros(4, jnp.int32), 1.5, 10), "p_uncond"),
        BadInput("guidance.with_labels: float labels",
                 lambda: d.with_labels(MODEL, jnp.zeros(4)), "labels"),
        BadInput("guidance.guided_eps_fn: null_label = -1",
                 lambda: d.guided_eps_fn(labelled, jnp.zeros(4, jnp.int32), -1, 2.0),
                 "null_label"),
        BadInput("analytic.analytic_eps_fn: not a schedule",
                 lambda: d.analytic_eps_fn(targets.ring(), VP), "schedule"),
        BadInput("analytic.analytic_denoiser: not a GaussianMixture",
                 lambda: d.analytic_denoiser(S), "target"),
    ]


CASES: list[BadInput] = [
    *_cases_schedules(),
    *_cases_forward(),
    *_cases_losses(),
    *_cases_discrete_samplers(),
    *_cases_edm(),
    *_cases_sde(),
    *_cases_consistency_guidance(),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_handled(case: BadInput) -> None:
    assert_handled(case)
