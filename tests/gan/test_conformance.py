"""The GAN family under genjax.testing's conformance suites.

Samplers (``assert_sampler_conforms``): ``gan.sample`` with an unconditional MLP generator and
with a
class-conditional DCGAN generator, two inits each; the noise twin is
``gan.sample_from_noise`` on ``z = normal(key, (n, latent_dim))``.

Losses (``assert_loss_conforms``): the GAN losses are functions of logits (DESIGN.md), so the
model-taking objectives are checked through thin wrappers ``(model, batch, key) -> (value,
metrics)``: the gradient penalty and R1 with the critic Module as the model (a second
derivative: the penalty's gradient with respect to the critic's weights), the cycle loss
with two (affine) translators, and the discriminator's minimax loss of the critic's logits.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from genjax import gan
from genjax.testing import (
    LossCase,
    SamplerCase,
    assert_loss_conforms,
    assert_sampler_conforms,
    count_compilations,
)

N = 4


def _mlp_generator(seed: int) -> gan.MLPGenerator:
    return gan.MLPGenerator(3, (8,), 2, rngs=nnx.Rngs(seed))


def _dcgan_generator(seed: int) -> gan.DCGANGenerator:
    return gan.DCGANGenerator(4, (8, 8, 1), base_channels=2, num_classes=3, rngs=nnx.Rngs(seed))


def test_mlp_generator_sample_conforms():
    models = [_mlp_generator(0), _mlp_generator(1)]
    assert_sampler_conforms(SamplerCase(
        name="gan.sample[mlp]",
        sample=lambda key, m: gan.sample(key, m, N),
        models=models,
        from_noise=lambda key, m: gan.sample_from_noise(m, jax.random.normal(key, (N, 3))),
        bad_arguments=[(lambda: gan.sample(jax.random.key(0), models[0], 0), "n"),
                       (lambda: gan.sample(jax.random.key(0), lambda z: z, 2), "model"),
                       (lambda: gan.sample_from_noise(models[0], jnp.zeros((3,))), "noise")],
    ))


def test_conditional_generator_sample_conforms():
    models = [_dcgan_generator(0), _dcgan_generator(1)]
    labels = jnp.asarray([0, 2, 1, 2])
    assert_sampler_conforms(SamplerCase(
        name="gan.sample[dcgan, conditional]",
        sample=lambda key, m: gan.sample(key, m, N, labels),
        models=models,
        from_noise=lambda key, m: gan.sample_from_noise(m, jax.random.normal(key, (N, 4)), labels),
        bad_arguments=[(lambda: gan.sample(jax.random.key(0), models[0], N, labels[:2]),
                        "labels"),
                       (lambda: gan.sample(jax.random.key(0), models[0], N, labels * 0.5),
                        "labels")],
    ))


def test_ten_generators_compile_once():
    models = [gan.MLPGenerator(3, (7,), 2, rngs=nnx.Rngs(i)) for i in range(10)]
    key = jax.random.key(0)
    with count_compilations() as compiled:
        outs = [gan.sample(key, m, N) for m in models]
    assert compiled[0] == 1, compiled[0]
    assert len({float(jnp.sum(o)) for o in outs}) == 10


def _critic(seed: int) -> gan.MLPDiscriminator:
    return gan.MLPDiscriminator(2, (8,), rngs=nnx.Rngs(seed))


REAL = jax.random.normal(jax.random.key(10), (5, 2))
FAKE = 0.5 * jax.random.normal(jax.random.key(11), (5, 2)) + 1.0


def _gp_loss(critic, batch, key):
    real, fake = batch
    gp = gan.gradient_penalty(key, critic, real, fake)
    return gp, {"gradient_penalty": gp}


def _r1_loss(critic, batch, key):
    del key
    r1 = gan.r1_penalty(critic, batch[0])
    return r1, {"r1_penalty": r1}


def _critic_loss(critic, batch, key):
    del key
    real, fake = batch
    value = gan.minimax_d(critic(real), critic(fake), label_smoothing=0.1)
    return value, {"d_loss": value}


@pytest.mark.parametrize("name", ["gradient_penalty", "r1_penalty", "minimax_d"])
def test_critic_objectives_conform(name):
    loss = {"gradient_penalty": _gp_loss, "r1_penalty": _r1_loss, "minimax_d": _critic_loss}[name]
    critic = _critic(0)
    bad = {
        "gradient_penalty": [(lambda: gan.gradient_penalty(jax.random.key(0), critic, REAL,
                                                           FAKE[:3]), "fake")],
        "r1_penalty": [(lambda: gan.r1_penalty(critic, REAL[:, 0]), "real")],
        "minimax_d": [(lambda: gan.minimax_d(REAL[:, 0], REAL[:, 1], label_smoothing=1.0),
                       "label_smoothing")],
    }[name]
    assert_loss_conforms(LossCase(name=name, loss=loss, model=critic, batch=(REAL, FAKE),
                        stochastic=name == "gradient_penalty", bad_arguments=bad))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class _Affine:
    """A translator ``v -> a v + b`` (per pixel): a tiny model pytree."""

    a: jax.Array
    b: jax.Array

    def __call__(self, v):
        return self.a * v + self.b


def test_cycle_loss_conforms():
    # two affine translators near (not at) the exact inverses v -> 1 - v
    translators = {"G": _Affine(jnp.asarray(-0.9), jnp.asarray(1.1)),
                   "F": _Affine(jnp.asarray(-1.2), jnp.asarray(0.8))}
    x = jax.random.uniform(jax.random.key(0), (2, 4, 4, 1))
    y = 1.0 - jax.random.uniform(jax.random.key(1), (2, 4, 4, 1))

    def loss(model, batch, key):
        del key
        value = gan.cycle_consistency_loss(*batch, model["G"], model["F"])
        return value, {"cycle_loss": value}

    assert_loss_conforms(LossCase(name="cycle_consistency_loss", loss=loss, model=translators,
                        batch=(x, y), stochastic=False))
