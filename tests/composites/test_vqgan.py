"""VQGAN (genjax.composites.vqgan): the adaptive weight of Esser et al. (2021, eq. 7) against the
NumPy float64 oracle (central differences at the decoder's read-out layer), the patch critic
and the hinge losses against the oracle's critic, and bad arguments."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import data
from genjax.composites import oracle_vqgan as oracle
from genjax.composites import vqgan as vg
from genjax.digit_classifier import DigitClassifier
from genjax.nn.mlp import MLP
from genjax.testing.bad_inputs import BadInput, assert_handled
from genjax.vae import VQVAE

PERCEPTUAL = 0.5  # large enough that the feature term moves the gradient visibly


def _layers(mlp: MLP) -> list:
    return [(np.asarray(layer.kernel[...]), np.asarray(layer.bias[...])) for layer in mlp.layers]


@pytest.fixture(scope="module")
def tiny():
    vq = VQVAE(
        (8, 8, 1), num_latents=2, code_dim=2, num_codes=4, rngs=nnx.Rngs(0), hidden_sizes=(3,)
    )
    disc = vg.PatchDiscriminator((8, 8, 1), hidden_sizes=(5,), rngs=nnx.Rngs(1))
    clf = DigitClassifier(MLP(64, [7, 7], 10, rngs=nnx.Rngs(2)))
    x = jnp.asarray(data.load("digits")[:3])  # (3, 8, 8, 1) real digits
    params = {
        "encoder": _layers(vq.encoder.net),
        "decoder": _layers(vq.decoder.net),
        "codebook": np.asarray(vq.codebook[...]),
        "num_latents": 2,
        "classifier": _layers(clf.net),
        "disc": _layers(disc.net),
        "patch": 4,
        "stride": 2,
    }
    lam, g_rec, g_gan = oracle.adaptive_weight(params, np.asarray(x), perceptual_weight=PERCEPTUAL)
    return {
        "vq": vq,
        "disc": disc,
        "clf": clf,
        "x": x,
        "params": params,
        "lam": lam,
        "g_rec": g_rec,
        "g_gan": g_gan,
        "jax": _jax_side(vq, disc, x, clf),
    }


@jax.jit
def _jax_side(vq, disc, x, clf):
    """Every JAX quantity the oracle tests compare, in one compiled program."""

    def rec(m):
        return jnp.mean(vg.reconstruction_terms(m, x, clf, perceptual_weight=PERCEPTUAL)["rec"])

    def gan(m):
        return vg.generator_adversarial_loss(disc, vg.reconstruction_terms(m, x)["x_hat"])

    out = {}
    for name, factor in (("on", 1.0), ("warmup", 0.0)):
        grads, m = vg.generator_gradients(
            vq, disc, x, clf, perceptual_weight=PERCEPTUAL, disc_factor=factor
        )
        out[name] = {
            "kernel": vg.last_layer_kernel(grads),
            "lam": m["adaptive_weight"],
            "loss": m["loss"],
            "rec": m["rec"],
            "commitment": m["commitment"],
        }
    out["g_rec"] = vg.last_layer_kernel(jax.grad(rec)(vq))
    out["g_gan"] = vg.last_layer_kernel(jax.grad(gan)(vq))
    return out


def _close(got, want):
    # float32 forward/backward against float64 central differences: ~1e-5 relative per entry
    np.testing.assert_allclose(np.asarray(got), want, rtol=2e-4, atol=2e-5 * np.abs(want).max())


def test_adaptive_weight_matches_oracle(tiny):
    on = tiny["jax"]["on"]
    # the norms' ratio is a smooth function of the entries: the same relative accuracy
    np.testing.assert_allclose(float(on["lam"]), tiny["lam"], rtol=2e-4)
    assert 1e-3 < tiny["lam"] < 1e3  # neither clip is active: the ratio itself is checked
    # the total read-out gradient is grad L_rec + lambda grad L_GAN
    _close(on["kernel"], tiny["g_rec"] + tiny["lam"] * tiny["g_gan"])


def test_warmup_drops_the_adversarial_gradient(tiny):
    w = tiny["jax"]["warmup"]
    _close(w["kernel"], tiny["g_rec"])
    assert float(w["loss"]) == pytest.approx(
        float(w["rec"]) + 0.25 * float(w["commitment"]), rel=1e-5
    )


def test_read_out_gradients_match_oracle_each(tiny):
    _close(tiny["jax"]["g_rec"], tiny["g_rec"])
    _close(tiny["jax"]["g_gan"], tiny["g_gan"])
    assert np.abs(tiny["g_gan"]).max() > 1e-6 and np.abs(tiny["g_rec"]).max() > 1e-6


def test_patch_critic_and_hinge_losses_match_oracle(tiny):
    x = tiny["x"]
    fake = jnp.clip(x[::-1] * 0.5 + 0.2, 0, 1)
    want = oracle.critic(tiny["params"], np.asarray(x, np.float64))
    got = np.asarray(tiny["disc"](x))
    assert got.shape == (3, 3, 3)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    f = oracle.critic(tiny["params"], np.asarray(fake, np.float64))
    d_want = np.mean(np.maximum(0, 1 - want)) + np.mean(np.maximum(0, 1 + f))
    np.testing.assert_allclose(
        float(vg.discriminator_loss(tiny["disc"], x, fake)), d_want, rtol=1e-5
    )
    np.testing.assert_allclose(
        float(vg.generator_adversarial_loss(tiny["disc"], fake)), -np.mean(f), rtol=1e-5, atol=1e-7
    )


def test_image_patches_windows():
    x = jnp.arange(2 * 6 * 6 * 1, dtype=jnp.float32).reshape(2, 6, 6, 1)
    p = vg.image_patches(x, 4, 2)  # rows/cols 0, 2
    assert p.shape == (2, 2, 2, 16)
    np.testing.assert_array_equal(p[1, 1, 0], np.asarray(x[1, 2:6, 0:4, 0]).ravel())


def test_adaptive_weight_clips_and_stops_gradient():
    g = jnp.ones((3, 4))
    lam = vg.adaptive_weight(g, jnp.zeros((3, 4)), delta=1e-4, max_weight=50.0)
    assert float(lam) == 50.0  # ||g|| / delta = 3.5e4, clipped
    np.testing.assert_allclose(
        float(vg.adaptive_weight(2 * g, g, delta=1e-4)),
        2 * np.sqrt(12) / (np.sqrt(12) + 1e-4),
        rtol=1e-6,
    )
    assert float(jax.grad(lambda s: vg.adaptive_weight(s * g, g))(1.0)) == 0.0


def _vq():  # the fixture's shapes: its eager initialisation is compiled already
    return VQVAE(
        (8, 8, 1), num_latents=2, code_dim=2, num_codes=4, rngs=nnx.Rngs(0), hidden_sizes=(3,)
    )


def _disc():
    return vg.PatchDiscriminator((8, 8, 1), hidden_sizes=(5,), rngs=nnx.Rngs(1))


CASES = [
    BadInput(
        "vqgan.adaptive_weight: delta = 0",
        lambda: vg.adaptive_weight(jnp.ones(3), jnp.ones(3), delta=0.0),
        "delta",
    ),
    BadInput(
        "vqgan.adaptive_weight: max_weight < 0",
        lambda: vg.adaptive_weight(jnp.ones(3), jnp.ones(3), max_weight=-1.0),
        "max_weight",
    ),
    BadInput(
        "vqgan.adaptive_weight: shapes differ",
        lambda: vg.adaptive_weight(jnp.ones(3), jnp.ones(4)),
        "grad_gan",
    ),
    BadInput(
        "vqgan.PatchDiscriminator: patch larger than the image",
        lambda: vg.PatchDiscriminator((8, 8, 1), patch=9, rngs=nnx.Rngs(0)),
        "patch",
    ),
    BadInput(
        "vqgan.PatchDiscriminator: stride 0",
        lambda: vg.PatchDiscriminator((8, 8, 1), stride=0, rngs=nnx.Rngs(0)),
        "stride",
    ),
    BadInput(
        "vqgan.PatchDiscriminator: images of the wrong shape",
        lambda: _disc()(jnp.zeros((2, 6, 6, 1))),
        "x",
    ),
    BadInput(
        "vqgan.reconstruction_terms: negative perceptual weight",
        lambda: vg.reconstruction_terms(_vq(), jnp.zeros((2, 8, 8, 1)), perceptual_weight=-1.0),
        "perceptual_weight",
    ),
    BadInput(
        "vqgan.generator_gradients: negative beta",
        lambda: vg.generator_gradients(_vq(), _disc(), jnp.zeros((2, 8, 8, 1)), beta=-0.1),
        "beta",
    ),
    BadInput(
        "vqgan.adaptive_weight: vanishing adversarial gradient",
        lambda: vg.adaptive_weight(jnp.full(4, 1e30), jnp.zeros(4)),
        kind="extreme",
        check=lambda lam: float(lam) == 1e4,
    ),
    BadInput(
        "vqgan.adaptive_weight: tiny gradients",
        lambda: vg.adaptive_weight(jnp.full(4, 1e-30), jnp.full(4, 1e-30)),
        kind="extreme",
        check=lambda lam: 0.0 <= float(lam) < 1e-20,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_inputs(case):
    assert_handled(case)
