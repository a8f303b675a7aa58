"""Bad and extreme inputs to the StyleGAN parts of the GAN family (issue 18, item 3)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from genjax import gan
from genjax.testing import BadInput, assert_handled

KEY = jax.random.key(0)
G = gan.StyleGANGenerator(2, (8, 8, 1), w_dim=2, mapping_layers=1, channels=2, rngs=nnx.Rngs(0))
X = jnp.ones((2, 4, 4, 3))
W = jnp.ones((3, 3, 3, 2))
S = jnp.ones((2, 3))
WS = jnp.zeros((1, 4, 2))
ADAM = optax.adam(1e-3)


def _case(name, call, argument="", kind="reject", check=None):
    return BadInput(name, call, argument, kind, check)


CASES = [
    _case(
        "modulated_conv.modulated_conv: styles of the wrong width",
        lambda: gan.modulated_conv(X, W, jnp.ones((2, 4))),
        "styles",
    ),
    _case(
        "modulated_conv.modulated_conv: weight for other input channels",
        lambda: gan.modulated_conv(X, jnp.ones((3, 3, 2, 2)), S),
        "weight",
    ),
    _case("modulated_conv.modulated_conv: x not NHWC", lambda: gan.modulated_conv(X[0], W, S), "x"),
    _case(
        "modulated_conv.modulated_conv: eps 0", lambda: gan.modulated_conv(X, W, S, eps=0.0), "eps"
    ),
    _case(
        "modulated_conv.demodulated_weights: weight 2-D",
        lambda: gan.demodulated_weights(jnp.ones((3, 2)), S),
        "weight",
    ),
    _case(
        "stylegan.truncate: w_avg of the wrong size",
        lambda: gan.truncate(WS, jnp.zeros(3), 0.5),
        "w_avg",
    ),
    _case("stylegan.truncate: psi NaN", lambda: gan.truncate(WS, jnp.zeros(2), jnp.nan), "psi"),
    _case(
        "stylegan.mix_styles: crossover beyond num_ws",
        lambda: gan.mix_styles(WS, WS, jnp.array([5])),
        "crossover",
    ),
    _case(
        "stylegan.mix_styles: float crossover",
        lambda: gan.mix_styles(WS, WS, jnp.array([1.0])),
        "crossover",
    ),
    _case(
        "stylegan.mix_styles: ws_fine of another shape",
        lambda: gan.mix_styles(WS, WS[:, :3], jnp.array([1])),
        "ws_fine",
    ),
    _case(
        "stylegan.StyleGANGenerator: image_shape not a power-of-2 multiple",
        lambda: gan.StyleGANGenerator(2, (12, 12, 1), rngs=nnx.Rngs(0)),
        "image_shape",
    ),
    _case(
        "stylegan.StyleGANGenerator: image_shape not square",
        lambda: gan.StyleGANGenerator(2, (8, 16, 1), rngs=nnx.Rngs(0)),
        "image_shape",
    ),
    _case(
        "stylegan.StyleGANGenerator: channels 0",
        lambda: gan.StyleGANGenerator(2, (8, 8, 1), channels=0, rngs=nnx.Rngs(0)),
        "channels",
    ),
    _case(
        "stylegan.StyleGANGenerator.synthesize: ws of the wrong num_ws",
        lambda: G.synthesize(jnp.zeros((1, 3, 2))),
        "ws",
    ),
    _case(
        "stylegan.StyleGANGenerator.synthesize: too few noise images",
        lambda: G.synthesize(WS, [jnp.zeros((1, 4, 4, 1))]),
        "noise_images",
    ),
    _case(
        "stylegan.StyleGANGenerator: z of the wrong latent size", lambda: G(jnp.zeros((2, 3))), "z"
    ),
    _case("stylegan.stylegan_sample: n 0", lambda: gan.stylegan_sample(KEY, G, 0), "n"),
    _case(
        "stylegan.stylegan_sample: psi inf",
        lambda: gan.stylegan_sample(KEY, G, 2, psi=jnp.inf),
        "psi",
    ),
    _case(
        "stylegan.stylegan_sample: mixing_prob 1.5",
        lambda: gan.stylegan_sample(KEY, G, 2, mixing_prob=1.5),
        "mixing_prob",
    ),
    _case(
        "stylegan.stylegan_sample: model not a StyleGANGenerator",
        lambda: gan.stylegan_sample(KEY, lambda z: z, 2),
        "model",
    ),
    _case(
        "stylegan.stylegan_noise: mixing_prob -0.1",
        lambda: gan.stylegan_noise(KEY, G, 2, mixing_prob=-0.1),
        "mixing_prob",
    ),
    _case(
        "stylegan.track_w_avg: decay 1",
        lambda: gan.track_w_avg(G, jnp.ones((1, 2)), decay=1.0),
        "decay",
    ),
    _case(
        "stylegan.generator_weights: not a StyleGANGenerator",
        lambda: gan.generator_weights(gan.MappingNetwork(2, 2, rngs=nnx.Rngs(0))),
        "model",
    ),
    _case(
        "stylegan_critic.StyleGANDiscriminator: image_shape (6, 6, 1)",
        lambda: gan.StyleGANDiscriminator((6, 6, 1), rngs=nnx.Rngs(0)),
        "image_shape",
    ),
    _case(
        "step.gan_trainer: g_noise with conditional",
        lambda: gan.gan_trainer(
            g_optimizer=ADAM, d_optimizer=ADAM, conditional=True, g_noise=gan.stylegan_noise
        ),
        "g_noise",
    ),
    _case(
        "step.gan_trainer: g_noise not callable",
        lambda: gan.gan_trainer(g_optimizer=ADAM, d_optimizer=ADAM, g_noise=3),
        "g_noise",
    ),
    _case(
        "step.keep_buffers: models of different structure",
        lambda: gan.keep_buffers({"a": jnp.ones(2)}, {"a": jnp.ones(2), "b": jnp.ones(1)}),
        "updated",
    ),
    # --- valid extremes ---------------------------------------------------------------
    _case(
        "modulated_conv.modulated_conv: all-zero styles give 0, not NaN",
        lambda: gan.modulated_conv(X, W, jnp.zeros((2, 3))),
        kind="extreme",
        check=lambda y: np.array_equal(np.asarray(y), np.zeros((2, 4, 4, 2))),
    ),
    _case(
        "modulated_conv.modulated_conv: styles of 1e6 stay demodulated",
        lambda: gan.demodulated_weights(W, jnp.full((2, 3), 1e6)),
        kind="extreme",
        check=lambda w: np.allclose(np.sum(np.asarray(w) ** 2, axis=(1, 2, 3)), 1.0, rtol=1e-5),
    ),
    _case(
        "stylegan.truncate: psi 0 gives w_avg",
        lambda: gan.truncate(WS + 3.0, jnp.array([1.0, -1.0]), 0.0),
        kind="extreme",
        check=lambda w: np.array_equal(np.asarray(w)[0, :, 1], -np.ones(4)),
    ),
    _case(
        "stylegan.mix_styles: crossover 0 takes every layer from ws_fine",
        lambda: gan.mix_styles(WS, WS + 1.0, jnp.array([0])),
        kind="extreme",
        check=lambda w: np.array_equal(np.asarray(w), np.ones((1, 4, 2))),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_handled(case):
    assert_handled(case)
