"""The shared conformance suites (genjax.testing) over every public sampler and loss.

Each sampler runs with two tiny ``genjax.nn.MLPDenoiser`` networks initialised from
different keys (wrapped as the sampler's model where it needs one: the EDM denoiser, the
consistency function, the guided model), and must pass
:func:`genjax.testing.assert_sampler_conforms`:
same key same output, ``*_from_noise`` on the documented noise equals the sampler, new
weights compile nothing and change the output, dtype kept, finite, jit = eager, bad
arguments named. Each loss passes :func:`genjax.testing.assert_loss_conforms`. Ten weight sets of
``ddim_sample`` compile once.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from genjax import diffusion as d
from genjax.nn import MLPDenoiser
from genjax.testing import (
    LossCase,
    SamplerCase,
    assert_loss_conforms,
    assert_sampler_conforms,
    count_compilations,
)

T = 10  # a short schedule: every step is cheap, DDPM visits them all
SCHEDULE = d.linear(T, 1e-2, 0.3)
B = 8  # samples per call
SHAPE = (B, 2)
SIGMAS = d.karras_sigmas(4, sigma_max=10.0)  # (5,): 4 EDM steps ending in 0
SDE = d.VPSDE()
NUM_CLASSES = 3
LABELS = jnp.arange(B) % NUM_CLASSES


def _net(seed: int, **kw) -> MLPDenoiser:
    return MLPDenoiser(2, (8,), time_embed_dim=4, rngs=nnx.Rngs(seed), **kw)


def _pair(make):
    """Two models of one structure, weights from keys 0 and 1."""
    return [make(0), make(1)]


EPS_MODELS = _pair(_net)  # model(x_t, t) -> eps, integer t
EDM_MODELS = _pair(lambda s: d.edm_precondition(_net(s), sigma_data=1.0))  # D(x, sigma)
SCORE_MODELS = _pair(lambda s: _net(s, time_scale=100.0))  # s(x, t), t in [0, 1]
CM_MODELS = _pair(lambda s: d.consistency_model(_net(s, time_scale=100.0), sigma_data=1.0))
GUIDED_MODELS = _pair(
    lambda s: d.guided_eps_fn(_net(s, num_classes=NUM_CLASSES), LABELS, NUM_CLASSES,
                              jnp.asarray(2.0))
)  # fmt: skip


def _normal(key, shape=SHAPE):
    return jax.random.normal(key, shape)


def _split(key):
    return jax.random.split(key)


# --- the documented noise of each keyed sampler, fed to its *_from_noise twin ----------


def _ddpm_noise(key, model):
    x_T, noises = d.ddpm_noise(key, SHAPE, T)  # x_T from split(key)[0], step i's from fold_in
    return d.ddpm_sample_from_noise(model, x_T, noises, SCHEDULE, return_trajectory=True)


def _ddim_noise(key, model, *, num_steps, eta, **kw):
    init_key, noise_key = _split(key)
    noises = _normal(noise_key, (num_steps, *SHAPE)) if eta > 0 else None
    return d.ddim_sample_from_noise(model, _normal(init_key), noises, SCHEDULE,
                                    num_steps=num_steps, eta=eta, **kw)


def _heun_noise(key, model, **churn):
    init_key, noise_key = _split(key)
    noises = _normal(noise_key, (SIGMAS.shape[0] - 1, *SHAPE)) if churn else None
    return d.heun_sample_from_noise(model, SIGMAS[0] * _normal(init_key), noises, SIGMAS,
                                    return_trajectory=bool(churn), **churn)


def _pc_noise(key, model, *, num_steps, corrector_steps, **kw):
    prior_key, pred_key, corr_key = jax.random.split(key, 3)
    x_T = d.prior_sample(prior_key, SDE, SHAPE)
    noises = (_normal(pred_key, (num_steps, *SHAPE)),
              _normal(corr_key, (num_steps, corrector_steps, *SHAPE)))
    return d.pc_sample_from_noise(model, x_T, noises, SDE, **kw)


def _cm_noise(key, model, *, sigmas, **kw):
    z = _normal(key, (len(sigmas), *SHAPE))
    return d.consistency_sample_from_noise(model, sigmas[0] * z[0], z[1:], sigmas=sigmas, **kw)


def _dpm_case(order, method):
    kw = dict(num_steps=5, order=order, method=method, return_trajectory=True)
    return SamplerCase(
        f"dpm_solver_pp_sample {order} {method}",
        lambda k, m: d.dpm_solver_pp_sample(k, m, SHAPE, SCHEDULE, **kw),
        EPS_MODELS,
        from_noise=lambda k, m: d.dpm_solver_pp_sample_from_noise(m, _normal(k), SCHEDULE, **kw),
        bad_arguments=[
            (lambda: d.dpm_solver_pp_sample(jax.random.key(0), EPS_MODELS[0], SHAPE, SCHEDULE,
                                            num_steps=5, order=4), "order"),
            (lambda: d.dpm_solver_pp_sample(jax.random.key(0), EPS_MODELS[0], SHAPE, SCHEDULE,
                                            num_steps=T + 1), "num_steps"),
        ],
    )  # fmt: skip


X_DATA = jax.random.normal(jax.random.key(5), SHAPE)
PF = dict(num_steps=4, eps=1e-2)
PF_PATH = dict(PF, return_trajectory=True)

SAMPLERS = [
    SamplerCase(
        "ddpm_sample",
        lambda k, m: d.ddpm_sample(k, m, SHAPE, SCHEDULE, return_trajectory=True),
        EPS_MODELS,
        from_noise=_ddpm_noise,
        bad_arguments=[
            (lambda: d.ddpm_sample(jax.random.key(0), EPS_MODELS[0], SHAPE, SCHEDULE,
                                   variance="large"), "variance"),
            (lambda: d.ddpm_sample(jax.random.key(0), EPS_MODELS[0], (0, 2), SCHEDULE), "shape"),
            (lambda: d.ddpm_sample(jax.random.key(0), EPS_MODELS[0], SHAPE, SCHEDULE,
                                   clip_x0=-1.0), "clip_x0"),
        ],
    ),
    SamplerCase(
        "ddim_sample eta=0",
        lambda k, m: d.ddim_sample(k, m, SHAPE, SCHEDULE, num_steps=4),
        EPS_MODELS,
        from_noise=functools.partial(_ddim_noise, num_steps=4, eta=0.0),
        bad_arguments=[
            (lambda: d.ddim_sample(jax.random.key(0), EPS_MODELS[0], SHAPE, SCHEDULE,
                                   num_steps=0), "num_steps"),
            (lambda: d.ddim_sample(jax.random.key(0), EPS_MODELS[0], SHAPE, SCHEDULE,
                                   num_steps=4, eta=-1.0), "eta"),
            (lambda: d.ddim_sample(jax.random.key(0), lambda x, t: x[:, :1], SHAPE, SCHEDULE,
                                   num_steps=4), "model"),
        ],
    ),
    SamplerCase(
        "ddim_sample eta=1",
        lambda k, m: d.ddim_sample(k, m, SHAPE, SCHEDULE, num_steps=4, eta=1.0,
                                   return_trajectory=True),
        EPS_MODELS,
        from_noise=functools.partial(_ddim_noise, num_steps=4, eta=1.0, return_trajectory=True),
        bad_arguments=[
            (lambda: d.ddim_sample_from_noise(EPS_MODELS[0], jnp.zeros(SHAPE), None, SCHEDULE,
                                              num_steps=4, eta=1.0), "noises"),
        ],
    ),
    _dpm_case(1, "multistep"),
    _dpm_case(2, "multistep"),
    _dpm_case(3, "multistep"),
    _dpm_case(2, "singlestep"),
    SamplerCase(
        "euler_sample",
        lambda k, m: d.euler_sample(k, m, SHAPE, SIGMAS, return_trajectory=True),
        EDM_MODELS,
        from_noise=lambda k, m: d.euler_sample_from_noise(m, SIGMAS[0] * _normal(k), SIGMAS,
                                                          return_trajectory=True),
        bad_arguments=[
            (lambda: d.euler_sample(jax.random.key(0), EDM_MODELS[0], SHAPE, SIGMAS[:1]),
             "sigmas"),
        ],
    ),
    SamplerCase(
        "heun_sample",
        lambda k, m: d.heun_sample(k, m, SHAPE, SIGMAS),
        EDM_MODELS,
        from_noise=_heun_noise,
        bad_arguments=[
            (lambda: d.heun_sample(jax.random.key(0), EDM_MODELS[0], SHAPE, SIGMAS,
                                   s_churn=-1.0), "s_churn"),
        ],
    ),
    SamplerCase(
        "heun_sample churn",
        lambda k, m: d.heun_sample(k, m, SHAPE, SIGMAS, s_churn=2.0, s_tmin=0.05,
                                   return_trajectory=True),
        EDM_MODELS,
        from_noise=functools.partial(_heun_noise, s_churn=2.0, s_tmin=0.05),
    ),
    SamplerCase(
        "pc_sample euler_maruyama + langevin",
        lambda k, m: d.pc_sample(k, m, SHAPE, SDE, num_steps=4, corrector_steps=1, snr=0.05),
        SCORE_MODELS,
        from_noise=functools.partial(_pc_noise, num_steps=4, corrector_steps=1, snr=0.05),
        bad_arguments=[
            (lambda: d.pc_sample(jax.random.key(0), SCORE_MODELS[0], SHAPE, SDE, num_steps=4,
                                 predictor="x"), "predictor"),
            (lambda: d.pc_sample(jax.random.key(0), SCORE_MODELS[0], SHAPE, SDE, num_steps=4,
                                 snr=0.0), "snr"),
        ],
    ),
    SamplerCase(
        "pc_sample reverse_diffusion",
        lambda k, m: d.pc_sample(k, m, SHAPE, SDE, num_steps=4, corrector_steps=0,
                                 predictor="reverse_diffusion", return_trajectory=True),
        SCORE_MODELS,
        from_noise=functools.partial(_pc_noise, num_steps=4, corrector_steps=0,
                                     predictor="reverse_diffusion", return_trajectory=True),
    ),
    SamplerCase(
        "pf_ode_sample",
        lambda k, m: d.pf_ode_sample(k, m, SHAPE, SDE, **PF_PATH),
        SCORE_MODELS,
        from_noise=lambda k, m: d.pf_ode_sample_from_noise(m, d.prior_sample(k, SDE, SHAPE), SDE,
                                                           **PF_PATH),
        bad_arguments=[
            (lambda: d.pf_ode_sample(jax.random.key(0), SCORE_MODELS[0], SHAPE, SDE,
                                     method="midpoint"), "method"),
        ],
    ),
    SamplerCase(
        "log_likelihood hutchinson",
        lambda k, m: d.log_likelihood(k, m, X_DATA, SDE, trace="hutchinson", **PF),
        SCORE_MODELS,
        bad_arguments=[
            (lambda: d.log_likelihood(None, SCORE_MODELS[0], X_DATA, SDE, trace="hutchinson"),
             "key"),
            (lambda: d.log_likelihood(None, SCORE_MODELS[0], X_DATA, SDE, eps=1.5), "eps"),
        ],
    ),
    SamplerCase(
        "log_likelihood exact",
        lambda k, m: d.log_likelihood(k, m, X_DATA, SDE, **PF),
        SCORE_MODELS,
        deterministic=True,
    ),
    SamplerCase(
        "consistency_sample one step",
        lambda k, m: d.consistency_sample(k, m, SHAPE),
        CM_MODELS,
        from_noise=functools.partial(_cm_noise, sigmas=(d.SIGMA_MAX,)),
        bad_arguments=[
            (lambda: d.consistency_sample(jax.random.key(0), CM_MODELS[0], SHAPE,
                                          sigmas=(1.0, 2.0)), "sigmas"),
        ],
    ),
    SamplerCase(
        "consistency_sample multistep",
        lambda k, m: d.consistency_sample(k, m, SHAPE, sigmas=(d.SIGMA_MAX, 2.0, 0.5),
                                          return_trajectory=True),
        CM_MODELS,
        from_noise=functools.partial(_cm_noise, sigmas=(d.SIGMA_MAX, 2.0, 0.5),
                                     return_trajectory=True),
    ),
    SamplerCase(
        "ddim_sample guided (classifier-free)",
        lambda k, m: d.ddim_sample(k, m, SHAPE, SCHEDULE, num_steps=4),
        GUIDED_MODELS,
        from_noise=functools.partial(_ddim_noise, num_steps=4, eta=0.0),
        bad_arguments=[
            (lambda: d.guided_eps_fn(GUIDED_MODELS[0].model, LABELS[:, None], NUM_CLASSES, 2.0),
             "labels"),
        ],
    ),
]


@pytest.mark.parametrize("case", SAMPLERS, ids=[c.name for c in SAMPLERS])
def test_sampler_conformance(case):
    assert_sampler_conforms(case)


# Trajectory lengths of the cases above that ask for ``return_trajectory=True``.
TRAJECTORIES = {
    "ddpm_sample": T,
    "ddim_sample eta=1": 4,
    "dpm_solver_pp_sample 1 multistep": 5,
    "dpm_solver_pp_sample 2 multistep": 5,
    "dpm_solver_pp_sample 3 multistep": 5,
    "dpm_solver_pp_sample 2 singlestep": 3,  # one leading first-order step, a pair, the last
    "euler_sample": 4,
    "heun_sample churn": 4,
    "pc_sample reverse_diffusion": 4,
    "pf_ode_sample": PF["num_steps"] + 1,  # the grid from t = 1 to eps, both ends
    "consistency_sample multistep": 3,
}


def test_trajectories_end_in_the_sample():
    """``return_trajectory=True``: ``(samples, states)``, one state a step, the last of which
    is the sample (the PC sampler's last state still carries the noise its output drops)."""
    cases = {c.name: c for c in SAMPLERS}
    for name, length in TRAJECTORIES.items():
        x, path = cases[name].sample(jax.random.key(0), cases[name].models[0])
        assert path.shape == (length, *SHAPE), (name, path.shape)
        assert not jnp.allclose(path[0], path[-1]), name
        if name != "pc_sample reverse_diffusion":
            assert jnp.array_equal(path[-1], x), name


def test_the_sampler_suite_covers_every_public_sampler():
    names = {c.name.split()[0] for c in SAMPLERS}
    not_samplers = {"q_sample", "prior_sample"}  # draws of the forward process and the prior
    public = {n for n in d.__dict__ if n.endswith("_sample") or n == "log_likelihood"}
    public -= not_samplers
    assert public == names, public ^ names


# --- losses --------------------------------------------------------------------------------

X0 = jax.random.normal(jax.random.key(7), SHAPE)
RAW = _pair(lambda s: _net(s, time_scale=100.0))  # raw networks F(x_in, c_noise)
CT = dict(num_scales=6, sigma_max=10.0, sigma_data=1.0)


def _ddpm_loss_case(prediction, gamma):
    loss = functools.partial(d.loss, schedule=SCHEDULE, prediction=prediction,
                             min_snr_gamma=gamma)
    return LossCase(
        f"loss {prediction} min_snr={gamma}", loss, EPS_MODELS[0], X0,
        bad_arguments=[(lambda: loss(EPS_MODELS[0], X0[0], jax.random.key(0)), "batch"),
                       (lambda: d.loss(EPS_MODELS[0], X0, jax.random.key(0), schedule=SCHEDULE,
                                       prediction="score"), "prediction")],
    )  # fmt: skip


LOSSES = [
    _ddpm_loss_case("eps", None),
    _ddpm_loss_case("x0", 5.0),
    _ddpm_loss_case("v", 5.0),
    LossCase(
        "dsm_loss",
        functools.partial(d.dsm_loss, sigma_min=0.05, sigma_max=5.0),
        SCORE_MODELS[0], X0,
        bad_arguments=[(lambda: d.dsm_loss(SCORE_MODELS[0], X0, jax.random.key(0),
                                           sigma_min=1.0, sigma_max=0.5), "sigma_max")],
    ),
    LossCase(
        "edm_loss",
        functools.partial(d.edm_loss, sigma_data=1.0),
        RAW[0], X0,
        bad_arguments=[(lambda: d.edm_loss(RAW[0], X0, jax.random.key(0), p_std=0.0), "p_std")],
    ),
    LossCase(
        "ct_loss",
        functools.partial(d.ct_loss, target_model=RAW[1], **CT),
        RAW[0], X0,
        bad_arguments=[(lambda: d.ct_loss(RAW[0], X0, jax.random.key(0), weighting="x", **CT),
                        "weighting")],
    ),
    LossCase(
        "ct_loss improved (pseudo-Huber, 1/dt, lognormal, target = online)",
        functools.partial(d.ct_loss, distance="pseudo_huber", weighting="inverse_step",
                          noise_sampling="lognormal", **CT),
        RAW[0], X0,
        bad_arguments=[(lambda: d.ct_loss(RAW[0], X0, jax.random.key(0),
                                          noise_sampling="beta", **CT), "noise_sampling")],
    ),
    LossCase(
        "distillation_loss",
        functools.partial(d.distillation_loss, teacher=d.as_eps_model(EPS_MODELS[1], SCHEDULE),
                          schedule=SCHEDULE, num_student_steps=2),
        EPS_MODELS[0], X0,
        bad_arguments=[(lambda: d.distillation_loss(
            EPS_MODELS[0], X0, jax.random.key(0), teacher=EPS_MODELS[1], schedule=SCHEDULE,
            num_student_steps=T), "num_student_steps")],
    ),
    LossCase(
        "cd_loss",
        functools.partial(d.cd_loss, target_model=RAW[1], teacher=EDM_MODELS[1], **CT),
        RAW[0], X0,
        bad_arguments=[(lambda: d.cd_loss(RAW[0], X0, jax.random.key(0), teacher=EDM_MODELS[1],
                                          solver="rk4", **CT), "solver")],
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", LOSSES, ids=[c.name for c in LOSSES])
def test_loss_conformance(case):
    assert_loss_conforms(case)


def test_the_loss_suite_covers_every_public_loss():
    names = {c.name.split()[0] for c in LOSSES}
    public = {n for n in d.__dict__ if n.endswith("loss") and callable(getattr(d, n))}
    assert public == names, public ^ names


def test_ten_weight_sets_of_ddim_compile_once():
    base = EPS_MODELS[0]
    models = [jax.tree.map(lambda a, i=i: a + 0.01 * i, base) for i in range(10)]
    key = jax.random.key(3)
    run = lambda m: d.ddim_sample(key, m, SHAPE, SCHEDULE, num_steps=3)  # noqa: E731
    first = run(models[0])
    with count_compilations() as compiled:
        outs = [run(m) for m in models[1:]]
    assert compiled[0] == 0, f"{compiled[0]} compilations for 9 new weight sets"
    assert all(not jnp.array_equal(first, o) for o in outs)  # the weights are not constants


def test_the_package_reexports_every_public_name():
    import importlib

    for name in ("schedules", "forward", "losses", "sample", "ddpm", "ddim", "dpm_solver", "edm",
                 "analytic", "sde", "pc_sampler", "likelihood", "guidance", "consistency",
                 "consistency_losses"):  # fmt: skip
        module = importlib.import_module(f"genjax.diffusion.{name}")
        for public in module.__all__:
            assert getattr(d, public) is getattr(module, public), f"{name}.{public}"
    assert not [n for n in dir(d) if n.startswith("fast_")]
    assert callable(d.loss) and d.loss is d.losses.loss  # the function, not a module
