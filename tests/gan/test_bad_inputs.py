"""Bad and extreme inputs to every public function of the GAN family (issue 16).

Finding 9 (the cycle-consistency loss broadcast a translator output of the wrong shape)
and finding 13 (``spectral_norm`` of an all-zero kernel gave NaN) are covered here.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from genjax import gan
from genjax.gan import patch_conv
from genjax.testing import BadInput, assert_handled

KEY = jax.random.key(0)
REAL = jnp.array([0.5, -1.0, 2.0])
FAKE = jnp.array([-0.5, 1.0, 0.0])
X = jax.random.normal(jax.random.key(1), (4, 3))
G = gan.MLPGenerator(2, (8,), 3, rngs=nnx.Rngs(0))
D = gan.MLPDiscriminator(3, (8,), rngs=nnx.Rngs(0))
IMG = jnp.zeros((2, 4, 4, 1))
ADAM = optax.adam(1e-3)


def identity(x):
    return x


def widen(v):  # the identity on (batch, 3), a (batch, 1) -> (batch, 3) map otherwise
    return v if v.shape[1] == 3 else jnp.tile(v, (1, 3))


def first_column(x):  # a translator that returns (batch, 1) instead of (batch, D)
    return x[:, :1]


def _case(name, call, argument="", kind="reject", check=None):
    return BadInput(name, call, argument, kind, check)


CASES = [
    # --- losses -----------------------------------------------------------------------
    _case("loss.minimax_d: real_logits 2-D",
          lambda: gan.minimax_d(REAL[:, None], FAKE), "real_logits"),
    _case("loss.minimax_d: fake_logits empty",
          lambda: gan.minimax_d(REAL, jnp.zeros((0,))), "fake_logits"),
    _case("loss.minimax_d: label_smoothing 1",
          lambda: gan.minimax_d(REAL, FAKE, label_smoothing=1.0), "label_smoothing"),
    _case("loss.minimax_d: integer logits",
          lambda: gan.minimax_d(jnp.array([1, 2]), FAKE), "real_logits"),
    _case("loss.minimax_g: fake_logits 2-D", lambda: gan.minimax_g(FAKE[:, None]),
          "fake_logits"),
    _case("loss.nonsaturating_g: fake_logits 0-D", lambda: gan.nonsaturating_g(jnp.array(1.0)),
          "fake_logits"),
    _case("loss.least_squares_d: a NaN", lambda: gan.least_squares_d(REAL, FAKE, a=jnp.nan),
          "a"),
    _case("loss.least_squares_g: c inf", lambda: gan.least_squares_g(FAKE, c=jnp.inf), "c"),
    _case("loss.hinge_d: fake_logits 2-D", lambda: gan.hinge_d(REAL, FAKE[None]),
          "fake_logits"),
    _case("loss.wasserstein_d: real_logits 2-D", lambda: gan.wasserstein_d(REAL[None], FAKE),
          "real_logits"),
    _case("loss.wasserstein_g: fake_logits 3-D", lambda: gan.wasserstein_g(jnp.zeros((2, 2, 2))),
          "fake_logits"),
    # --- penalties --------------------------------------------------------------------
    _case("penalties.weight_clip: clip_value 0",
          lambda: gan.weight_clip({"w": jnp.ones(3)}, 0.0), "clip_value"),
    _case("penalties.weight_clip: clip_value NaN",
          lambda: gan.weight_clip({"w": jnp.ones(3)}, jnp.nan), "clip_value"),
    _case("penalties.critic_input_grad: critic returns (batch, 1)",
          lambda: gan.critic_input_grad(lambda x: x[:, :1], X), "critic"),
    _case("penalties.interpolate: fake shape differs",
          lambda: gan.interpolate(X, X[:2], jnp.zeros(4)), "fake"),
    _case("penalties.interpolate: eps of the wrong shape",
          lambda: gan.interpolate(X, X, jnp.zeros(3)), "eps"),
    _case("penalties.interpolate: eps outside [0, 1]",
          lambda: gan.interpolate(X, X, jnp.full(4, 2.0)), "eps"),
    _case("penalties.gradient_penalty: fake shape differs",
          lambda: gan.gradient_penalty(KEY, D, X, X[:, :2]), "fake"),
    _case("penalties.gradient_penalty_at: critic returns (batch, 1)",
          lambda: gan.gradient_penalty_at(lambda x: x[:, :1], X), "critic"),
    _case("penalties.r1_penalty: real 1-D", lambda: gan.r1_penalty(D, jnp.zeros(3)), "real"),
    _case("penalties.cycle_consistency_loss: G returns (batch, 1) (finding 9)",
          lambda: gan.cycle_consistency_loss(X, X, first_column, identity), "f(g(x))"),
    _case("penalties.cycle_consistency_loss: F returns (batch, 1) (finding 9)",
          lambda: gan.cycle_consistency_loss(X, X, identity, first_column), "f(g(x))"),
    _case("penalties.cycle_consistency_loss: y round trip of the wrong shape (finding 9)",
          lambda: gan.cycle_consistency_loss(X, jnp.ones((4, 1)), identity, widen), "g(f(y))"),
    # --- spectral normalisation ------------------------------------------------------
    _case("spectral.spectral_norm: u of the wrong shape",
          lambda: gan.spectral_norm(jnp.ones((3, 4)), jnp.ones(3)), "u"),
    _case("spectral.spectral_norm: w 1-D", lambda: gan.spectral_norm(jnp.ones(4), jnp.ones(4)),
          "w"),
    _case("spectral.spectral_norm: num_iters 0",
          lambda: gan.spectral_norm(jnp.ones((3, 4)), jnp.ones(4), num_iters=0), "num_iters"),
    _case("spectral.spectral_norm: u all zero",
          lambda: gan.spectral_norm(jnp.ones((3, 4)), jnp.zeros(4)), "u"),
    _case("spectral.spectral_norm: w with NaN",
          lambda: gan.spectral_norm(jnp.ones((3, 4)).at[0, 0].set(jnp.nan), jnp.ones(4)), "w"),
    _case("spectral.power_iteration: eps < 0",
          lambda: gan.power_iteration(jnp.ones((3, 4)), jnp.ones(4), eps=-1.0), "eps"),
    _case("spectral.SpectralNorm: layer not Linear/Conv",
          lambda: gan.SpectralNorm(nnx.LayerNorm(3, rngs=nnx.Rngs(0)), rngs=nnx.Rngs(0)),
          "layer"),
    _case("spectral.SpectralNorm: num_iters 0",
          lambda: gan.SpectralNorm(nnx.Linear(3, 2, rngs=nnx.Rngs(0)), num_iters=0,
                                   rngs=nnx.Rngs(0)), "num_iters"),
    # --- networks ---------------------------------------------------------------------
    _case("network.MLPGenerator: latent_dim 0",
          lambda: gan.MLPGenerator(0, (8,), 3, rngs=nnx.Rngs(0)), "latent_dim"),
    _case("network.MLPDiscriminator: data_dim 0",
          lambda: gan.MLPDiscriminator(0, (8,), rngs=nnx.Rngs(0)), "data_dim"),
    _case("network.DCGANGenerator: image_shape 2-D",
          lambda: gan.DCGANGenerator(2, (8, 8), rngs=nnx.Rngs(0)), "image_shape"),
    _case("network.DCGANDiscriminator: base_channels 0",
          lambda: gan.DCGANDiscriminator((8, 8, 1), base_channels=0, rngs=nnx.Rngs(0)),
          "base_channels"),
    _case("network.MappingNetwork: num_layers 0",
          lambda: gan.MappingNetwork(2, 4, num_layers=0, rngs=nnx.Rngs(0)), "num_layers"),
    _case("network.AdaIN: channels 0", lambda: gan.AdaIN(4, 0, rngs=nnx.Rngs(0)), "channels"),
    _case("network.adain: style_scale of the wrong shape",
          lambda: gan.adain(IMG, jnp.ones((2, 3)), jnp.zeros((2, 1))), "style_scale"),
    _case("network.adain: x not (B, H, W, C)",
          lambda: gan.adain(jnp.ones((2, 4)), jnp.ones((2, 4)), jnp.zeros((2, 4))), "x"),
    _case("network.pixel_norm: eps < 0", lambda: gan.pixel_norm(X, eps=-1.0), "eps"),
    _case("network.Translator: channels 0", lambda: gan.Translator(0, rngs=nnx.Rngs(0)),
          "channels"),
    # --- sampling ---------------------------------------------------------------------
    _case("sample.sample: n 0", lambda: gan.sample(KEY, G, 0), "n"),
    _case("sample.sample: model without latent_dim", lambda: gan.sample(KEY, identity, 2),
          "model"),
    _case("sample.sample: labels for an unconditional generator",
          lambda: gan.sample(KEY, G, 2, labels=jnp.zeros(2, int)), "labels"),
    _case("sample.sample_from_noise: noise 1-D", lambda: gan.sample_from_noise(G, jnp.zeros(2)),
          "noise"),
    _case("sample.sample_from_noise: noise of the wrong latent size",
          lambda: gan.sample_from_noise(G, jnp.zeros((2, 5))), "noise"),
    _case("sample.sample_from_noise: noise with NaN",
          lambda: gan.sample_from_noise(G, jnp.full((2, 2), jnp.nan)), "noise"),
    # --- trainers ---------------------------------------------------------------------
    _case("step.gan_trainer: n_critic 0",
          lambda: gan.gan_trainer(g_optimizer=ADAM, d_optimizer=ADAM, n_critic=0), "n_critic"),
    _case("step.gan_trainer: unknown loss",
          lambda: gan.gan_trainer(g_optimizer=ADAM, d_optimizer=ADAM, loss="relativistic"),
          "loss"),
    _case("step.gan_trainer: gp_weight < 0",
          lambda: gan.gan_trainer(g_optimizer=ADAM, d_optimizer=ADAM, gp_weight=-1.0),
          "gp_weight"),
    _case("step.gan_trainer: ema_decay 1",
          lambda: gan.gan_trainer(g_optimizer=ADAM, d_optimizer=ADAM, ema_decay=1.0),
          "ema_decay"),
    _case("step.gan_trainer: g_optimizer not an optax transformation",
          lambda: gan.gan_trainer(g_optimizer=1e-3, d_optimizer=ADAM), "g_optimizer"),
    _case("step.gan_trainer: step with a batch not divisible by n_critic",
          lambda: (lambda t: t.step(t.init(G, D), X[:3], KEY))(
              gan.gan_trainer(g_optimizer=ADAM, d_optimizer=ADAM, n_critic=2)), "n_critic"),
    _case("step.cyclegan_trainer: cycle_weight < 0",
          lambda: gan.cyclegan_trainer(g_optimizer=ADAM, d_optimizer=ADAM, cycle_weight=-1.0),
          "cycle_weight"),
    _case("step.cyclegan_trainer: identity_weight NaN",
          lambda: gan.cyclegan_trainer(g_optimizer=ADAM, d_optimizer=ADAM,
                                       identity_weight=jnp.nan), "identity_weight"),
    # --- valid extremes ---------------------------------------------------------------
    _case("spectral.spectral_norm: all-zero kernel gives 0 (finding 13)",
          lambda: gan.spectral_norm(jnp.zeros((3, 4)), jnp.ones(4) / 2), kind="extreme",
          check=lambda r: np.array_equal(np.asarray(r[0]), np.zeros((3, 4)))),
    _case("spectral.spectral_norm: gradient at the zero kernel is finite (finding 13)",
          lambda: jax.grad(lambda w: jnp.sum(gan.spectral_norm(w, jnp.ones(4) / 2)[0]))(
              jnp.zeros((3, 4))), kind="extreme"),
    _case("spectral.SpectralNorm: zero kernel layer, update=False (finding 13)",
          lambda: (lambda sn: sn(jnp.ones((2, 3)), update=False))(
              _zero_kernel_layer()), kind="extreme",
          check=lambda y: np.array_equal(np.asarray(y), np.zeros((2, 2)))),
    _case("spectral.spectral_norm: kernel of scale 1e-6 still has sigma 1",
          lambda: gan.spectral_norm(1e-6 * jnp.eye(3), jnp.ones(3), num_iters=5),
          kind="extreme", check=lambda r: np.allclose(np.asarray(r[0]), np.eye(3), rtol=1e-4)),
    _case("loss.minimax_d: logits +-1e4",
          lambda: gan.minimax_d(jnp.array([1e4, -1e4]), jnp.array([-1e4, 1e4])), kind="extreme"),
    _case("loss.nonsaturating_g: logits -1e4 (saturated D)",
          lambda: gan.nonsaturating_g(jnp.array([-1e4])), kind="extreme",
          check=lambda v: np.isclose(float(v), 1e4, rtol=1e-6)),
    _case("network.pixel_norm: all-zero latent", lambda: gan.pixel_norm(jnp.zeros((2, 3))),
          kind="extreme"),
    _case("penalties.cycle_consistency_loss: identity translators give 0",
          lambda: gan.cycle_consistency_loss(X, X, identity, identity), kind="extreme",
          check=lambda v: float(v) == 0.0),
    # --- patch_conv (the DCGAN networks' inner layers) ---------------------------------
    _case("patch_conv.conv2d: stride 0",
          lambda: patch_conv.conv2d(IMG, jnp.zeros((4, 4, 1, 2)), jnp.zeros(2), 0), "stride"),
    _case("patch_conv.conv2d: kernel C_in 3 for 1 input channel",
          lambda: patch_conv.conv2d(IMG, jnp.zeros((4, 4, 3, 2)), jnp.zeros(2), 2), "kernel"),
    _case("patch_conv.conv2d: bias of the wrong length",
          lambda: patch_conv.conv2d(IMG, jnp.zeros((4, 4, 1, 2)), jnp.zeros(3), 2), "bias"),
    _case("patch_conv.conv_transpose2d: kernel 3 not a multiple of stride 2",
          lambda: patch_conv.conv_transpose2d(IMG, jnp.zeros((3, 3, 1, 2)), jnp.zeros(2), 2),
          "stride"),
    _case("patch_conv.conv_transpose2d: 1x1 map, large values stay finite and exact",
          lambda: patch_conv.conv_transpose2d(1e15 * jnp.ones((1, 1, 1, 1)),
                                              jnp.ones((4, 4, 1, 1)), jnp.zeros(1), 2),
          kind="extreme",
          check=lambda y: np.array_equal(np.asarray(y), np.full((1, 2, 2, 1), np.float32(1e15)))),
]


def _zero_kernel_layer():
    sn = gan.SpectralNorm(nnx.Linear(3, 2, use_bias=False, rngs=nnx.Rngs(0)), rngs=nnx.Rngs(0))
    sn.layer.kernel[...] = jnp.zeros((3, 2))
    return sn


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_handled(case):
    assert_handled(case)
