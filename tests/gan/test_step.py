"""The alternating update: wiring against hand-computed gradients, n_critic, clipping, EMA.

A step with plain SGD is recomputed here from the losses and ``jax.grad`` directly; the
two share every operation, so float32 agreement is at rounding level (1e-6).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from genjax import gan

LATENT, LR = 3, 0.05


def _nets(seed=0):
    g = gan.MLPGenerator(LATENT, (8,), 2, rngs=nnx.Rngs(seed))
    d = gan.MLPDiscriminator(2, (8,), rngs=nnx.Rngs(seed + 1))
    (gg, gs), (dg, ds) = nnx.split(g), nnx.split(d)
    g_apply = lambda s, z, y=None: nnx.merge(gg, s)(z)  # noqa: E731
    d_apply = lambda s, x, y=None: nnx.merge(dg, s)(x)  # noqa: E731
    return gs, ds, g_apply, d_apply


def _trainer(g_apply, d_apply, **kw):
    return gan.gan_trainer(g_apply=g_apply, d_apply=d_apply, latent_dim=LATENT,
                           g_optimizer=optax.sgd(LR), d_optimizer=optax.sgd(LR), **kw)


@pytest.fixture(scope="module")
def setup():
    gs, ds, g_apply, d_apply = _nets()
    trainer = _trainer(g_apply, d_apply, loss="nonsaturating", n_critic=2, gp_weight=10.0,
                       ema_decay=0.9)
    return gs, ds, g_apply, d_apply, trainer, jax.jit(trainer.step)


def _reference_step(gs, ds, g_apply, d_apply, batch, key):
    """Two critic updates on the two halves of the batch, then one generator update."""
    d_key, g_key = jax.random.split(key)
    d = ds
    for t, k in enumerate(jax.random.split(d_key, 2)):
        z_key, gp_key = jax.random.split(k)
        fake = g_apply(gs, jax.random.normal(z_key, (4, LATENT)))
        real = batch[4 * t: 4 * t + 4]

        def objective(dp, real=real, fake=fake, gp_key=gp_key):
            critic = lambda v: d_apply(dp, v)  # noqa: E731
            return gan.minimax_d(critic(real), critic(fake)) + 10.0 * gan.gradient_penalty(
                gp_key, critic, real, fake)

        d = jax.tree.map(lambda p, g: p - LR * g, d, jax.grad(objective)(d))
    z = jax.random.normal(g_key, (4, LATENT))
    g_grad = jax.grad(lambda gp: gan.nonsaturating_g(d_apply(d, g_apply(gp, z))))(gs)
    return d, jax.tree.map(lambda p, gr: p - LR * gr, gs, g_grad)


def test_step_is_algorithm_1(setup, keys):
    # jitted here (the un-jitted step runs in test_weight_clipping_wgan): eager execution of
    # a scan over grad-of-grad costs tens of seconds on a busy 2-core machine
    gs, ds, g_apply, d_apply, trainer, step_jit = setup
    state = trainer.init(gs, ds)
    batch = jax.random.normal(keys[0], (8, 2))
    new, metrics = step_jit(state, batch, keys[1])
    d, g = jax.jit(_reference_step, static_argnums=(2, 3))(gs, ds, g_apply, d_apply, batch, keys[1])
    for got, want in ((new["d"], d), (new["g"], g)):
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # the EMA moved 10% of the way from the initial weights to the new ones
    for e, p0, p1 in zip(jax.tree.leaves(new["g_ema"]), jax.tree.leaves(gs), jax.tree.leaves(g),
                         strict=True):
        np.testing.assert_allclose(e, 0.9 * p0 + 0.1 * p1, rtol=1e-5, atol=1e-6)
    assert float(metrics["gradient_penalty"]) > 0 and np.isfinite(float(metrics["g_loss"]))
    # the generator moved: a step that returned its input would fail here
    assert max(float(jnp.max(jnp.abs(a - b))) for a, b in
               zip(jax.tree.leaves(new["g"]), jax.tree.leaves(gs), strict=True)) > 1e-6


def test_weight_clipping_wgan(keys):
    gs, ds, g_apply, d_apply = _nets(3)
    trainer = _trainer(g_apply, d_apply, loss="wasserstein", clip_value=0.01)
    new, _ = trainer.step(trainer.init(gs, ds), jax.random.normal(keys[0], (4, 2)), keys[1])
    assert max(float(jnp.max(jnp.abs(w))) for w in jax.tree.leaves(new["d"])) <= 0.01


def test_bad_trainer_arguments():
    gs, ds, g_apply, d_apply = _nets()
    for kwargs, name in (({"n_critic": 0}, "n_critic"), ({"gp_weight": -1.0}, "gp_weight"),
                         ({"r1_weight": -0.1}, "r1_weight"), ({"clip_value": 0.0}, "clip_value"),
                         ({"loss": "nope"}, "loss"), ({"ema_decay": 1.0}, "ema_decay"),
                         ({"label_smoothing": 1.0}, "label_smoothing")):
        with pytest.raises(ValueError, match=name):
            _trainer(g_apply, d_apply, **kwargs)
    trainer = _trainer(g_apply, d_apply, n_critic=3)
    with pytest.raises(ValueError, match="n_critic"):
        trainer.step(trainer.init(gs, ds), jnp.zeros((4, 2)), jax.random.key(0))
    with pytest.raises(ValueError, match="cycle_weight"):
        gan.cyclegan_trainer(translate=None, discriminate=None, g_optimizer=optax.sgd(1.0),
                             d_optimizer=optax.sgd(1.0), cycle_weight=-1.0)


def test_cyclegan_step_with_exact_inverse_translators(keys):
    # affine "translators" v -> a v + b: G = F = (v -> 1 - v) invert each other exactly
    translate = lambda p, v: p["a"] * v + p["b"]  # noqa: E731
    discriminate = lambda p, v: jnp.sum(v * p["w"][None], axis=(1, 2, 3))  # noqa: E731
    trainer = gan.cyclegan_trainer(translate=translate, discriminate=discriminate,
                                   g_optimizer=optax.sgd(0.01), d_optimizer=optax.sgd(0.01))
    inv = {"a": jnp.asarray(-1.0), "b": jnp.asarray(1.0)}
    disc = {"D_X": {"w": jnp.full((4, 4, 1), 0.1)}, "D_Y": {"w": jnp.full((4, 4, 1), -0.1)}}
    x = jax.random.uniform(keys[0], (4, 4, 4, 1))
    y = jax.random.uniform(keys[1], (4, 4, 4, 1))
    state = trainer.init({"G": inv, "F": inv}, disc)
    new, metrics = jax.jit(trainer.step)(state, (x, y), keys[2])
    assert float(metrics["cycle_loss"]) == 0.0
    assert float(metrics["g_adv"]) > 0 and np.isfinite(float(metrics["d_loss"]))
    # the discriminators moved, and so did the translators (the adversarial gradient)
    assert float(jnp.max(jnp.abs(new["disc"]["D_X"]["w"] - 0.1))) > 0
    assert abs(float(new["gen"]["G"]["a"]) + 1.0) > 0
