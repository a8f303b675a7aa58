"""Every public sampler and loss of the energy family through genjax.testing's suites.

Samplers (``assert_sampler_conforms``): ``langevin``, ``mala``, ``metropolis_hastings``, ``hmc`` and
``annealed_langevin``, each with its ``*_from_noise`` twin, over two analytic models of the
same shapes (two Gaussian-mixture targets with different means: their bound methods
``target.log_prob`` / ``target.score``, or the exact noise-conditional score); MALA also
over an ``nnx`` energy network (two initialisations). Losses (``assert_loss_conforms``):
``contrastive_divergence_loss``, ``persistent_contrastive_divergence_loss``,
``exact_score_matching_loss``, ``denoising_score_matching_loss``,
``sliced_score_matching_loss`` and ``ncsn_loss``, over small ``nnx`` networks. Steps: the
four kernels' ``step(model, state, noise) -> (state, info)``. Tiny shapes, three steps.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import energy as e
from genjax import targets
from genjax.nn import MLP
from genjax.testing import (
    LossCase,
    SamplerCase,
    assert_loss_conforms,
    assert_sampler_conforms,
    count_compilations,
)

CHAINS, DIM, STEPS = 4, 2, 3
W = np.array([0.3, 0.7])
M = np.array([[-1.0, 0.5], [1.2, -0.3]])
C = np.array([[[0.6, 0.2], [0.2, 0.4]], [[0.5, -0.15], [-0.15, 0.9]]])
X0 = jnp.asarray(np.random.default_rng(0).normal(size=(CHAINS, DIM)), jnp.float32)
SIGMAS = jnp.asarray([1.0, 0.5], jnp.float32)
KEY = jax.random.key(0)


def _mixture(shift: float) -> targets.GaussianMixture:
    return targets.GaussianMixture.create(W, M + shift, C, dtype=jnp.float32)


TARGETS = (_mixture(0.0), _mixture(0.7))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class NoisedScore:
    """The exact noise-conditional score ``grad log (p * N(0, sigma^2 I))`` of a mixture."""

    target: targets.GaussianMixture

    def __call__(self, x, sigma):  # x (chains, D), sigma (chains,): p * N(0, sigma^2 I)
        return self.target.noised_score(x, 1.0, sigma)


def _noise(key):
    return e.draw_noise(key, STEPS, X0.shape, X0.dtype)


def _bad(sampler, model, **kwargs):
    """The ``(call, name)`` pairs every sampler must refuse (keyword arguments are the good
    ones; each pair replaces one)."""
    cases = [({"step_size": 0.0}, "step_size"), ({"step_size": float("nan")}, "step_size"),
             ({"num_steps": 0}, "num_steps")]
    out = [(functools.partial(sampler, KEY, model, X0, **{**kwargs, **bad}), name)
           for bad, name in cases]  # fmt: skip
    out.append((functools.partial(sampler, KEY, model, X0[0], **kwargs), "x0"))
    out.append((functools.partial(sampler, KEY, lambda x: x, X0, **kwargs)
                if sampler is not e.langevin else
                functools.partial(sampler, KEY, lambda x: x[:, 0], X0, **kwargs), "model"))
    return out


def _metropolis_case(name, sampler, twin, models, **kwargs):
    return SamplerCase(
        name=name,
        sample=lambda k, m: sampler(k, m, X0, num_steps=STEPS, **kwargs),
        models=models,
        from_noise=lambda k, m: twin(m, X0, _noise(k), **kwargs),
        bad_arguments=_bad(sampler, models[0], num_steps=STEPS, **kwargs),
    )


def _energy_net(seed: int) -> nnx.Module:
    return e.MLPEnergy(DIM, (8,), rngs=nnx.Rngs(seed))


SAMPLER_CASES = [
    SamplerCase(
        name="langevin",
        sample=lambda k, m: e.langevin(k, m, X0, step_size=0.1, num_steps=STEPS),
        models=[t.score for t in TARGETS],
        from_noise=lambda k, m: e.langevin_from_noise(m, X0, _noise(k).normal, step_size=0.1),
        bad_arguments=_bad(e.langevin, TARGETS[0].score, step_size=0.1, num_steps=STEPS),
    ),
    _metropolis_case("mala", e.mala, e.mala_from_noise, [t.log_prob for t in TARGETS],
                     step_size=0.2),
    _metropolis_case("metropolis_hastings", e.metropolis_hastings,
                     e.metropolis_hastings_from_noise, [t.log_prob for t in TARGETS],
                     step_size=0.7),
    dataclasses.replace(
        _metropolis_case("hmc", e.hmc, e.hmc_from_noise, [t.log_prob for t in TARGETS],
                         step_size=0.25, num_leapfrog=2),
        bad_arguments=_bad(e.hmc, TARGETS[0].log_prob, num_steps=STEPS, step_size=0.25,
                           num_leapfrog=2)
        + [(lambda: e.hmc(KEY, TARGETS[0].log_prob, X0, step_size=0.1, num_leapfrog=0,
                          num_steps=STEPS), "num_leapfrog"),
           (lambda: e.hmc_from_noise(TARGETS[0].log_prob, X0, (_noise(KEY)[0], X0[:, 0]),
                                     step_size=0.1, num_leapfrog=2), "noise.uniform")]),
    _metropolis_case("mala, nnx energy", e.mala, e.mala_from_noise,
                     [e.energy_log_prob(_energy_net(s)) for s in (1, 2)], step_size=0.2),
    SamplerCase(
        name="annealed_langevin",
        sample=lambda k, m: e.annealed_langevin(k, m, X0, sigmas=SIGMAS, step_size=0.05,
                                                num_steps_per_level=2),
        models=[NoisedScore(t) for t in TARGETS],
        from_noise=lambda k, m: e.annealed_langevin_from_noise(
            m, X0, e.draw_noise(k, 4, X0.shape, X0.dtype).normal, sigmas=SIGMAS,
            step_size=0.05, num_steps_per_level=2),
        bad_arguments=[
            (lambda: e.annealed_langevin(KEY, NoisedScore(TARGETS[0]), X0, sigmas=SIGMAS[::-1],
                                         step_size=0.05, num_steps_per_level=2), "sigmas"),
            (lambda: e.annealed_langevin(KEY, NoisedScore(TARGETS[0]), X0, sigmas=SIGMAS,
                                         step_size=0.05, num_steps_per_level=0),
             "num_steps_per_level"),
            (lambda: e.annealed_langevin(KEY, NoisedScore(TARGETS[0]), X0, sigmas=SIGMAS,
                                         step_size=-1.0, num_steps_per_level=2), "step_size"),
        ],
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", SAMPLER_CASES, ids=lambda c: c.name)
def test_sampler_conformance(case):
    assert_sampler_conforms(case)


def test_ten_targets_compile_once():
    """MALA over ten targets of one shape: one program (the targets are traced), and every
    target gives its own chains."""
    ten = [_mixture(0.1 * i) for i in range(10)]
    with count_compilations() as compiled:
        outs = [e.mala(KEY, t.log_prob, X0, step_size=0.2, num_steps=5)[0] for t in ten]
    assert compiled[0] == 1, compiled[0]
    assert len({np.asarray(x).tobytes() for x in outs}) == 10


def test_steps_return_state_and_info():
    """Each kernel's step is ``(model, state, noise, *, ...) -> (state, info)``."""
    t = TARGETS[0]
    noise = e.step_noise(KEY, 0, X0.shape, X0.dtype)
    state = e.init_state(t.log_prob, X0)

    @jax.jit
    def steps(state, noise):
        return (e.mala_step(t.log_prob, state, noise, step_size=0.2),
                e.rwmh_step(t.log_prob, e.rwmh_init(t.log_prob, X0), noise, step_size=0.7),
                e.hmc_step(t.log_prob, state, noise, step_size=0.25, num_leapfrog=3))  # fmt: skip

    for (new, info), evals in zip(steps(state, noise), (1, 1, 3), strict=True):
        assert isinstance(new, e.ChainState) and isinstance(info, e.ChainInfo)
        assert new.position.shape == X0.shape and info.accepted.shape == (CHAINS,)
        assert int(info.num_evals) == evals
        np.testing.assert_allclose(np.asarray(new.log_prob), np.asarray(t.log_prob(new.position)),
                                   rtol=1e-5)  # the cache holds log pi of the new position
    x, info = e.langevin_step(t.score, X0, noise.normal, step_size=0.1)
    assert isinstance(info, e.LangevinInfo) and x.shape == X0.shape
    np.testing.assert_allclose(np.asarray(info.score), np.asarray(t.score(X0)), rtol=1e-6)


# ---------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------

BATCH = jnp.asarray(np.random.default_rng(1).normal(size=(6, DIM)), jnp.float32)
BUFFER = jax.random.uniform(jax.random.key(2), (16, DIM), jnp.float32, -2.0, 2.0)
CD = dict(num_steps=2, step_size=0.05, alpha=0.1)


def _score_net() -> nnx.Module:
    return MLP(DIM, (8,), DIM, rngs=nnx.Rngs(3))


def _pcd(model, batch, key, **kwargs):  # (loss, (metrics, buffer)) -> (loss, metrics)
    options = {**CD, "low": -2.0, "high": 2.0, **kwargs}
    loss, (metrics, _) = e.persistent_contrastive_divergence_loss(model, batch, key, BUFFER,
                                                                  **options)  # fmt: skip
    return loss, metrics


def _bad_loss(loss, model, **kwargs):
    return [(functools.partial(loss, model, BATCH, KEY, **kwargs), next(iter(kwargs)))]


LOSS_CASES = [
    # The CD losses are surrogates whose gradient ignores the negatives' dependence on the
    # weights (stop_gradient): finite differences of the value do not match it by design.
    LossCase("contrastive_divergence_loss",
             functools.partial(e.contrastive_divergence_loss, **CD), _energy_net(4), BATCH,
             check_grads=False,
             bad_arguments=_bad_loss(e.contrastive_divergence_loss, _energy_net(4),
                                     num_steps=0, step_size=0.1)),
    LossCase("persistent_contrastive_divergence_loss", _pcd, _energy_net(5), BATCH,
             check_grads=False,
             bad_arguments=_bad_loss(_pcd, _energy_net(5), reinit_prob=1.5)),
    LossCase("exact_score_matching_loss", e.exact_score_matching_loss, _score_net(), BATCH,
             stochastic=False,
             bad_arguments=[(lambda: e.exact_score_matching_loss(_score_net(), BATCH[0]),
                             "batch")]),
    LossCase("denoising_score_matching_loss",
             functools.partial(e.denoising_score_matching_loss, sigma=0.5), _score_net(), BATCH,
             bad_arguments=_bad_loss(e.denoising_score_matching_loss, _score_net(), sigma=0.0)),
    LossCase("sliced_score_matching_loss",
             functools.partial(e.sliced_score_matching_loss, num_projections=2), _score_net(),
             BATCH,
             bad_arguments=_bad_loss(e.sliced_score_matching_loss, _score_net(),
                                     num_projections=0)
             + _bad_loss(e.sliced_score_matching_loss, _score_net(), distribution="uniform")),
    LossCase("ncsn_loss", functools.partial(e.ncsn_loss, sigmas=SIGMAS),
             e.NoiseConditionalScore(DIM, (8,), time_embed_dim=4, rngs=nnx.Rngs(6)), BATCH,
             bad_arguments=_bad_loss(e.ncsn_loss, _score_net(), sigmas=-SIGMAS)),
]  # fmt: skip


@pytest.mark.parametrize("case", LOSS_CASES, ids=lambda c: c.name)
def test_loss_conformance(case):
    assert_loss_conforms(case)


def test_every_public_sampler_and_loss_is_covered():
    """The suites above cover every public sampler (with its twin) and every public loss."""
    sampled = {c.name.split(",")[0] for c in SAMPLER_CASES}
    assert sampled == {"langevin", "mala", "metropolis_hastings", "hmc", "annealed_langevin"}
    assert all(c.from_noise is not None for c in SAMPLER_CASES)
    losses = {name for name in dir(e) if name.endswith("_loss")}
    assert losses == {c.name for c in LOSS_CASES}


def test_no_public_name_shadows_a_module():
    """``energy.loss``, ``energy.mcmc`` and every kernel file stay reachable as modules (no
    function of the same name replaces them in the package namespace)."""
    import importlib
    import pkgutil

    for package in (e, e.mcmc):
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            assert getattr(package, info.name) is module, f"{package.__name__}.{info.name}"
