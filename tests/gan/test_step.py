"""The alternating update: wiring against hand-computed gradients, n_critic, clipping, EMA.

A step with plain SGD is recomputed here from the losses and ``jax.grad`` directly; the
two share every operation, so float32 agreement is at rounding level (1e-6).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from genjax import gan
from genjax.testing import count_compilations

LATENT, LR = 3, 0.05


def _nets(seed=0):
    g = gan.MLPGenerator(LATENT, (8,), 2, rngs=nnx.Rngs(seed))
    d = gan.MLPDiscriminator(2, (8,), rngs=nnx.Rngs(seed + 1))
    return g, d


def _trainer(**kw):
    return gan.gan_trainer(g_optimizer=optax.sgd(LR), d_optimizer=optax.sgd(LR), **kw)


@pytest.fixture(scope="module")
def setup():
    g, d = _nets()
    trainer = _trainer(loss="nonsaturating", n_critic=2, gp_weight=10.0, ema_decay=0.9)
    return g, d, trainer, jax.jit(trainer.step)


def _reference_step(g0, d0, batch, key):
    """Two critic updates on the two halves of the batch, then one generator update."""
    d_key, g_key = jax.random.split(key)
    d = d0
    for t, k in enumerate(jax.random.split(d_key, 2)):
        z_key, gp_key = jax.random.split(k)
        fake = g0(jax.random.normal(z_key, (4, LATENT)))
        real = batch[4 * t: 4 * t + 4]

        def objective(critic, real=real, fake=fake, gp_key=gp_key):
            return gan.minimax_d(critic(real), critic(fake)) + 10.0 * gan.gradient_penalty(
                gp_key, critic, real, fake)

        d = jax.tree.map(lambda p, g: p - LR * g, d, jax.grad(objective)(d))
    z = jax.random.normal(g_key, (4, LATENT))
    g_grad = jax.grad(lambda g: gan.nonsaturating_g(d(g(z))))(g0)
    return d, jax.tree.map(lambda p, gr: p - LR * gr, g0, g_grad)


def test_step_is_algorithm_1(setup, keys):
    # jitted here (the un-jitted step runs in test_weight_clipping_wgan): eager execution of
    # a scan over grad-of-grad costs tens of seconds on a busy 2-core machine
    g0, d0, trainer, step_jit = setup
    state = trainer.init(g0, d0)
    batch = jax.random.normal(keys[0], (8, 2))
    new, info = step_jit(state, batch, keys[1])
    d, g = jax.jit(_reference_step)(g0, d0, batch, keys[1])
    for got, want in ((new.d, d), (new.g, g)):
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # the EMA moved 10% of the way from the initial weights to the new ones
    for e, p0, p1 in zip(jax.tree.leaves(new.g_ema), jax.tree.leaves(g0), jax.tree.leaves(g),
                         strict=True):
        np.testing.assert_allclose(e, 0.9 * p0 + 0.1 * p1, rtol=1e-5, atol=1e-6)
    assert float(info.gradient_penalty) > 0 and np.isfinite(float(info.g_loss))
    assert info.r1_penalty is None and set(info.metrics()) == {
        "loss", "d_loss", "d_real", "d_fake", "g_loss", "gradient_penalty"}
    # the generator moved: a step that returned its input would fail here
    assert max(float(jnp.max(jnp.abs(a - b))) for a, b in
               zip(jax.tree.leaves(new.g), jax.tree.leaves(g0), strict=True)) > 1e-6
    # the Modules are traced leaves of the state: other weights, no new compilation
    with count_compilations() as compiled:
        again, _ = step_jit(trainer.init(*_nets(5)), batch, keys[1])
    assert compiled[0] == 0
    assert float(jnp.max(jnp.abs(again.g.net.layers[0].kernel[...]
                                 - new.g.net.layers[0].kernel[...]))) > 1e-3


def test_weight_clipping_wgan(keys):
    g, d = _nets(3)
    trainer = _trainer(loss="wasserstein", clip_value=0.01)
    new, _ = trainer.step(trainer.init(g, d), jax.random.normal(keys[0], (4, 2)), keys[1])
    assert max(float(jnp.max(jnp.abs(w))) for w in jax.tree.leaves(new.d)) <= 0.01


def test_bad_trainer_arguments():
    for kwargs, name in (({"n_critic": 0}, "n_critic"), ({"gp_weight": -1.0}, "gp_weight"),
                         ({"r1_weight": -0.1}, "r1_weight"), ({"clip_value": 0.0}, "clip_value"),
                         ({"loss": "nope"}, "loss"), ({"ema_decay": 1.0}, "ema_decay"),
                         ({"label_smoothing": 1.0}, "label_smoothing")):
        with pytest.raises(ValueError, match=name):
            _trainer(**kwargs)
    trainer = _trainer(n_critic=3)
    with pytest.raises(ValueError, match="n_critic"):
        trainer.step(trainer.init(*_nets()), jnp.zeros((4, 2)), jax.random.key(0))
    with pytest.raises(ValueError, match="cycle_weight"):
        gan.cyclegan_trainer(g_optimizer=optax.sgd(1.0), d_optimizer=optax.sgd(1.0),
                             cycle_weight=-1.0)


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class _Affine:
    """A translator ``v -> a v + b`` as a pytree model."""

    a: jax.Array
    b: jax.Array

    def __call__(self, v):
        return self.a * v + self.b


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class _Linear:
    """A discriminator ``v -> sum(v * w)`` per example as a pytree model."""

    w: jax.Array

    def __call__(self, v):
        return jnp.sum(v * self.w[None], axis=(1, 2, 3))


def test_cyclegan_step_with_exact_inverse_translators(keys):
    # affine translators: G = F = (v -> 1 - v) invert each other exactly
    trainer = gan.cyclegan_trainer(g_optimizer=optax.sgd(0.01), d_optimizer=optax.sgd(0.01))
    inv = _Affine(jnp.asarray(-1.0), jnp.asarray(1.0))
    disc = {"D_X": _Linear(jnp.full((4, 4, 1), 0.1)), "D_Y": _Linear(jnp.full((4, 4, 1), -0.1))}
    x = jax.random.uniform(keys[0], (4, 4, 4, 1))
    y = jax.random.uniform(keys[1], (4, 4, 4, 1))
    state = trainer.init({"G": inv, "F": inv}, disc)
    new, info = jax.jit(trainer.step)(state, (x, y), keys[2])
    assert float(info.cycle_loss) == 0.0
    assert float(info.g_adv) > 0 and np.isfinite(float(info.d_loss))
    # the discriminators moved, and so did the translators (the adversarial gradient)
    assert float(jnp.max(jnp.abs(new.disc["D_X"].w - 0.1))) > 0
    assert abs(float(new.gen["G"].a) + 1.0) > 0
