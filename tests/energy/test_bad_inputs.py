"""Bad and extreme inputs for every public function of the energy family (issue 16).

MCMC kernels (unadjusted and annealed Langevin, MALA, random-walk MH, HMC), the losses
(contrastive divergence, the replay buffer, exact / denoising / sliced / noise-conditional
score matching) and the energy-model wrappers. Each :class:`BadInput` names the argument a
call gets wrong; ``assert_handled`` requires a ``ValueError``/``TypeError`` naming it, or a
finite, correct answer for a valid extreme. Tiny shapes, at most 2 steps.

Finding 9 of issue 16 (a model returning ``(batch, 1)`` for ``(batch, D)``, broadcast
instead of rejected) is covered by the ``model output`` cases of the denoising, sliced,
exact and noise-conditional score-matching losses and of the CD objective.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import energy as e
from genjax.testing import BadInput, assert_handled

KEY = jax.random.key(0)
X = jnp.array([[0.5, -0.25], [1.0, 0.0], [-1.0, 2.0], [0.0, 0.0]])  # (4, 2)


def _log_prob(p, x):
    return -0.5 * p * jnp.sum(x**2, axis=-1)  # (chains,): N(0, I / p) up to a constant


def _score(p, x):
    return -p * x  # (chains, D)


def _nc_score(p, x, sigma):
    return -p * x / (1.0 + sigma[:, None] ** 2)  # (chains, D)


def _energy(p, x):
    return 0.5 * p * jnp.sum(x**2, axis=-1)  # (batch,)


LOG_PROB = jax.tree_util.Partial(_log_prob, jnp.asarray(1.0))
SCORE = jax.tree_util.Partial(_score, jnp.asarray(1.0))
NC_SCORE = jax.tree_util.Partial(_nc_score, jnp.asarray(1.0))
ENERGY = jax.tree_util.Partial(_energy, jnp.asarray(1.0))
NARROW_SCORE = jax.tree_util.Partial(lambda p, x: -p * x[:, :1], jnp.asarray(1.0))
NARROW_NC = jax.tree_util.Partial(lambda p, x, s: -p * x[:, :1], jnp.asarray(1.0))
WIDE_ENERGY = jax.tree_util.Partial(lambda p, x: p * x**2, jnp.asarray(1.0))  # (batch, D)
NARROW_ENERGY = jax.tree_util.Partial(lambda p, x: p * x[:, :1] ** 2, jnp.asarray(1.0))
SIGMAS = jnp.array([1.0, 0.5, 0.1])


def _kernels() -> list[BadInput]:
    state = e.init_state(LOG_PROB, X)
    return [
        BadInput("langevin: step_size = 0",
                 lambda: e.langevin(KEY, SCORE, X, step_size=0.0, num_steps=2), "step_size"),
        BadInput("langevin: num_steps = 0",
                 lambda: e.langevin(KEY, SCORE, X, step_size=0.1, num_steps=0), "num_steps"),
        BadInput("langevin: model output (batch, 1)",
                 lambda: e.langevin(KEY, NARROW_SCORE, X, step_size=0.1, num_steps=2), "model"),
        BadInput("langevin: x0 1-D",
                 lambda: e.langevin(KEY, SCORE, X[0], step_size=0.1, num_steps=2), "x0"),
        BadInput("langevin: noise_scale < 0",
                 lambda: e.langevin(KEY, SCORE, X, step_size=0.1, num_steps=2, noise_scale=-1.0),
                 "noise_scale"),
        BadInput("langevin: clip low > high",
                 lambda: e.langevin(KEY, SCORE, X, step_size=0.1, num_steps=2,
                                    clip=(1.0, -1.0)), "clip"),
        BadInput("langevin_from_noise: noise of the wrong shape",
                 lambda: e.langevin_from_noise(SCORE, X, jnp.zeros((2, 4, 3)), step_size=0.1),
                 "noise"),
        BadInput("langevin_step: model output (batch, 1)",
                 lambda: e.langevin_step(NARROW_SCORE, X, X, step_size=0.1), "model"),
        BadInput("langevin_step: step_size NaN",
                 lambda: e.langevin_step(SCORE, X, X, step_size=float("nan")), "step_size"),
        BadInput("langevin_step: noise of the wrong shape",
                 lambda: e.langevin_step(SCORE, X, X[:, :1], step_size=0.1), "noise"),
        BadInput("mala: step_size < 0",
                 lambda: e.mala(KEY, LOG_PROB, X, step_size=-0.1, num_steps=2), "step_size"),
        BadInput("mala: model returns a score, not log-densities",
                 lambda: e.mala(KEY, SCORE, X, step_size=0.1, num_steps=2), "model"),
        BadInput("mala_from_noise: noise of the wrong shape",
                 lambda: e.mala_from_noise(LOG_PROB, X, e.draw_noise(KEY, 2, (4, 3)),
                                           step_size=0.1), "noise"),
        BadInput("mala_step: step_size = 0",
                 lambda: e.mala_step(LOG_PROB, state, e.step_noise(KEY, 0, X.shape),
                                     step_size=0.0), "step_size"),
        BadInput("mala_log_acceptance: y of the wrong shape",
                 lambda: e.mala_log_acceptance(LOG_PROB, X, X[:, :1], step_size=0.1), "y"),
        BadInput("mala_proposal_log_density: step_size = 0",
                 lambda: e.mala_proposal_log_density(X, X, X, 0.0), "step_size"),
        BadInput("metropolis_hastings: num_steps = -1",
                 lambda: e.metropolis_hastings(KEY, LOG_PROB, X, step_size=0.1, num_steps=-1),
                 "num_steps"),
        BadInput("metropolis_hastings: model output (chains, 1)",
                 lambda: e.metropolis_hastings(KEY, NARROW_SCORE, X, step_size=0.1, num_steps=2),
                 "model"),
        BadInput("rwmh_step: step_size = inf",
                 lambda: e.rwmh_step(LOG_PROB, state, e.step_noise(KEY, 0, X.shape),
                                     step_size=float("inf")), "step_size"),
        BadInput("rwmh_log_acceptance: y of the wrong shape",
                 lambda: e.rwmh_log_acceptance(LOG_PROB, X, X[:2]), "y"),
        BadInput("rwmh_init: x0 integer",
                 lambda: e.rwmh_init(LOG_PROB, jnp.ones((4, 2), jnp.int32)), "x0"),
        BadInput("init_state: model output (chains, 1)",
                 lambda: e.init_state(NARROW_SCORE, X), "model"),
        BadInput("hmc: num_leapfrog = 0",
                 lambda: e.hmc(KEY, LOG_PROB, X, step_size=0.1, num_leapfrog=0, num_steps=2),
                 "num_leapfrog"),
        BadInput("hmc_from_noise: noise steps disagree",
                 lambda: e.hmc_from_noise(LOG_PROB, X, e.MetropolisNoise(
                     jnp.zeros((2, 4, 2)), jnp.zeros((3, 4))), step_size=0.1, num_leapfrog=2),
                 "noise"),
        BadInput("hmc_step: step_size = 0",
                 lambda: e.hmc_step(LOG_PROB, state, e.step_noise(KEY, 0, X.shape),
                                    step_size=0.0, num_leapfrog=2), "step_size"),
        BadInput("leapfrog: p of the wrong shape",
                 lambda: e.leapfrog(LOG_PROB, X, X[:, :1], step_size=0.1, num_leapfrog=2), "p"),
        BadInput("hamiltonian: p of the wrong batch",
                 lambda: e.hamiltonian(jnp.zeros(4), jnp.zeros((3, 2))), "p"),
        BadInput("draw_noise: num_steps = 0", lambda: e.draw_noise(KEY, 0, (4, 2)), "num_steps"),
        BadInput("step_noise: shape (0, 2)", lambda: e.step_noise(KEY, 0, (0, 2)), "shape"),
        BadInput("annealed_langevin: sigmas increasing",
                 lambda: e.annealed_langevin(KEY, NC_SCORE, X, sigmas=SIGMAS[::-1],
                                             step_size=0.01, num_steps_per_level=1), "sigmas"),
        BadInput("annealed_langevin: model output (batch, 1)",
                 lambda: e.annealed_langevin(KEY, NARROW_NC, X, sigmas=SIGMAS, step_size=0.01,
                                             num_steps_per_level=1), "model"),
        BadInput("annealed_langevin_from_noise: noise of the wrong shape",
                 lambda: e.annealed_langevin_from_noise(NC_SCORE, X, jnp.zeros((2, 4, 2)),
                                                        sigmas=SIGMAS, step_size=0.01,
                                                        num_steps_per_level=1), "noise"),
        BadInput("annealed_langevin_step_sizes: sigma 0",
                 lambda: e.annealed_langevin_step_sizes(jnp.array([1.0, 0.0]), 0.1), "sigmas"),
        BadInput("annealed_langevin_step_sizes: step_size < 0",
                 lambda: e.annealed_langevin_step_sizes(SIGMAS, -0.1), "step_size"),
        BadInput("mala: x0 at |x| = 1e15 (valid, far out)",
                 lambda: e.mala(KEY, LOG_PROB, X * 1e15, step_size=0.1, num_steps=2),
                 kind="extreme"),
    ]


def _losses() -> list[BadInput]:
    buf = jnp.zeros((8, 2))
    return [
        BadInput("denoising_score_matching_loss: model output (batch, 1)",
                 lambda: e.denoising_score_matching_loss(NARROW_SCORE, X, KEY, sigma=0.1),
                 "model"),
        BadInput("denoising_score_matching_loss: sigma = 0",
                 lambda: e.denoising_score_matching_loss(SCORE, X, KEY, sigma=0.0), "sigma"),
        BadInput("denoising_score_matching_terms: eps of the wrong shape",
                 lambda: e.denoising_score_matching_terms(SCORE, X, X[:, :1], sigma=0.1), "eps"),
        BadInput("sliced_score_matching_loss: model output (batch, 1)",
                 lambda: e.sliced_score_matching_loss(NARROW_SCORE, X, KEY), "model"),
        BadInput("sliced_score_matching_loss: num_projections = 0",
                 lambda: e.sliced_score_matching_loss(SCORE, X, KEY, num_projections=0),
                 "num_projections"),
        BadInput("sliced_score_matching_loss: distribution 'uniform'",
                 lambda: e.sliced_score_matching_loss(SCORE, X, KEY, distribution="uniform"),
                 "distribution"),
        BadInput("sliced_score_matching_terms: v of the wrong shape",
                 lambda: e.sliced_score_matching_terms(SCORE, X, jnp.ones((1, 4, 3))), "v"),
        BadInput("exact_score_matching_loss: model output (batch, 1)",
                 lambda: e.exact_score_matching_loss(NARROW_SCORE, X), "model"),
        BadInput("exact_score_matching_loss: batch 1-D",
                 lambda: e.exact_score_matching_loss(SCORE, X[0]), "batch"),
        BadInput("ncsn_loss: model output (batch, 1)",
                 lambda: e.ncsn_loss(NARROW_NC, X, KEY, sigmas=SIGMAS), "model"),
        BadInput("ncsn_loss: sigmas with 0",
                 lambda: e.ncsn_loss(NC_SCORE, X, KEY, sigmas=jnp.array([1.0, 0.0])), "sigmas"),
        BadInput("ncsn_terms: sigma of the wrong batch",
                 lambda: e.ncsn_terms(NC_SCORE, X, X, jnp.ones(3)), "sigma"),
        BadInput("contrastive_divergence_loss: energy output (batch, D)",
                 lambda: e.contrastive_divergence_loss(WIDE_ENERGY, X, KEY, num_steps=1,
                                                       step_size=0.1), "model"),
        BadInput("contrastive_divergence_loss: energy output (batch, 1)",
                 lambda: e.contrastive_divergence_loss(NARROW_ENERGY, X, KEY, num_steps=1,
                                                       step_size=0.1), "model"),
        BadInput("contrastive_divergence_loss: alpha < 0",
                 lambda: e.contrastive_divergence_loss(ENERGY, X, KEY, num_steps=1,
                                                       step_size=0.1, alpha=-1.0), "alpha"),
        BadInput("contrastive_divergence_loss: num_steps = 0",
                 lambda: e.contrastive_divergence_loss(ENERGY, X, KEY, num_steps=0,
                                                       step_size=0.1), "num_steps"),
        BadInput("cd_objective: x_neg of another dimension",
                 lambda: e.cd_objective(ENERGY, X, jnp.ones((4, 3)), alpha=0.1), "x_neg"),
        BadInput("cd_negatives: noise of the wrong shape",
                 lambda: e.cd_negatives(ENERGY, X, jnp.zeros((1, 4, 3)), step_size=0.1),
                 "noise"),
        BadInput("persistent_contrastive_divergence_loss: reinit_prob = 2",
                 lambda: e.persistent_contrastive_divergence_loss(
                     ENERGY, X, KEY, buf, num_steps=1, step_size=0.1, reinit_prob=2.0),
                 "reinit_prob"),
        BadInput("persistent_contrastive_divergence_loss: buffer of another dimension",
                 lambda: e.persistent_contrastive_divergence_loss(
                     ENERGY, X, KEY, jnp.zeros((8, 3)), num_steps=1, step_size=0.1), "buffer"),
        BadInput("replay_buffer_init: buffer_size = 0",
                 lambda: e.replay_buffer_init(KEY, 0, (2,), low=-1.0, high=1.0), "buffer_size"),
        BadInput("replay_buffer_init: low > high",
                 lambda: e.replay_buffer_init(KEY, 8, (2,), low=1.0, high=-1.0), "high"),
        BadInput("replay_buffer_sample: n = 0",
                 lambda: e.replay_buffer_sample(KEY, buf, 0, low=-1.0, high=1.0), "n"),
        BadInput("replay_buffer_sample: buffer 1-D",
                 lambda: e.replay_buffer_sample(KEY, jnp.zeros(8), 2, low=-1.0, high=1.0),
                 "buffer"),
        BadInput("replay_buffer_update: idx out of range",
                 lambda: e.replay_buffer_update(buf, jnp.array([8]), X[:1]), "idx"),
        BadInput("replay_buffer_update: x of the wrong shape",
                 lambda: e.replay_buffer_update(buf, jnp.array([0]), X[:1, :1]), "x"),
        BadInput("energy_score: energy output (batch, 1)",
                 lambda: e.energy_score(NARROW_ENERGY)(X), "model"),
        BadInput("energy_log_prob: energy output (batch, D)",
                 lambda: e.energy_log_prob(WIDE_ENERGY)(X), "model"),
        BadInput("MLPEnergy: dim = 0", lambda: e.MLPEnergy(0, (4,), rngs=nnx.Rngs(0)), "dim"),
        BadInput("denoising_score_matching_loss: sigma = 1e-4 (valid, tiny)",
                 lambda: e.denoising_score_matching_loss(SCORE, X, KEY, sigma=1e-4),
                 kind="extreme"),
        BadInput("energy_score: |x| = 1e18 (valid)",
                 lambda: e.energy_score(ENERGY)(X * 1e18), kind="extreme",
                 check=lambda s: bool(np.allclose(np.asarray(s), -np.asarray(X) * 1e18,
                                                  rtol=1e-6))),
    ]


CASES: list[BadInput] = [*_kernels(), *_losses()]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_handled(case: BadInput) -> None:
    assert_handled(case)
