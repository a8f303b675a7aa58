"""Encoders/decoders' shapes and errors; samplers, reconstruction, interpolation."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import nn, vae


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1)])
def test_networks_fit_8x8_and_28x28(shape):
    x, z = jnp.zeros((2, *shape)), jnp.zeros((2, 3))

    def build():
        rngs = nnx.Rngs(0)
        return (nn.ConvEncoder(shape, 6, channels=(4, 8), rngs=rngs),
                nn.ConvDecoder(3, shape, channels=(8, 4), rngs=rngs),
                nn.MLPEncoder(shape, (8,), 6, rngs=rngs),
                nn.MLPDecoder(3, (8,), shape, rngs=rngs))

    # shapes only: abstract networks and calls, traced without compiling
    nets = nnx.eval_shape(build)
    outs = [jax.eval_shape(lambda n, a: n(a), net, a)
            for net, a in zip(nets, (x, z, x, z), strict=True)]
    assert [o.shape for o in outs] == [(2, 6), (2, *shape), (2, 6), (2, *shape)]


def test_networks_reject_shapes_they_cannot_take():
    rngs = nnx.Rngs(0)
    with pytest.raises(ValueError, match="multiples of 4"):
        nn.ConvEncoder((10, 10, 1), 4, rngs=rngs)
    with pytest.raises(ValueError, match="multiples of 4"):
        vae.conv_vae((6, 8, 1), 2, rngs=rngs)
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
        nn.ConvDecoder(2, (8, 8), rngs=rngs)
    enc = nn.ConvEncoder((8, 8, 1), 4, channels=(2, 2), rngs=rngs)
    with pytest.raises(ValueError, match="x must have shape"):
        jax.jit(lambda n, a: n(a))(enc, jnp.zeros((2, 28, 28, 1)))
    with pytest.raises(ValueError, match="z must have shape"):
        jax.eval_shape(lambda n, a: n(a), nn.MLPDecoder(3, (), (4,), rngs=rngs),
                       jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match="out_features"):
        nn.MLPEncoder((4,), (), 0, rngs=rngs)


@functools.cache
def _models():
    rngs = nnx.Rngs(0)
    shape = (8, 8, 1)
    # (the convolutional VAE samples through the same code as "vae"; its networks are
    # tested above)
    return {
        "vae": vae.mlp_vae(shape, 2, rngs=rngs, hidden_sizes=(16,)),
        "hvae": vae.HierarchicalVAE(shape, (3, 2), rngs=rngs, hidden=16),
        "vq": vae.VQVAE(shape, num_latents=2, code_dim=2, num_codes=4, rngs=rngs,
                        hidden_sizes=(16,)),
        "ae": vae.mlp_autoencoder(shape, 2, rngs=rngs, hidden_sizes=(16,)),
    }


def test_reconstruct_interpolate_every_model(keys):
    # (vae.sample of every model is under the conformance suite: test_conformance.py)
    x = jax.random.uniform(keys[0], (3, 8, 8, 1))
    for name, m in _models().items():
        assert vae.reconstruct(m, x).shape == x.shape
        line = vae.interpolate(m, x, x[::-1], num=4)
        assert line.shape == (3, 4, 8, 8, 1)
        if name == "hvae":
            continue  # it interpolates the top layer and decodes through p(z1|z2)'s mean
        # the ends of a segment are the reconstructions of its endpoints
        np.testing.assert_allclose(line[:, 0], vae.reconstruct(m, x), rtol=1e-5, atol=1e-6)


def test_sample_decodes_the_drawn_noise(keys):
    m = _models()["vae"]
    z = jax.random.normal(keys[3], (4, 2))  # what sample draws from keys[3]
    np.testing.assert_allclose(vae.sample(keys[3], m, 4), jax.nn.sigmoid(m.decode(z)), rtol=1e-6)
    h = _models()["hvae"]
    k2, k1 = jax.random.split(keys[3])
    eps2, eps1 = jax.random.normal(k2, (4, 2)), jax.random.normal(k1, (4, 3))
    np.testing.assert_allclose(vae.sample(keys[3], h, 4),
                               jax.nn.sigmoid(vae.hvae_generate(h, eps2, eps1)), rtol=1e-6)


def test_vq_samples_decode_codebook_rows(keys):
    m = _models()["vq"]
    s = vae.sample(keys[0], m, 64)
    # 2 positions x 4 codes: at most 16 distinct images, each a decoded codebook pair
    assert len(np.unique(np.asarray(s).reshape(64, -1).round(5), axis=0)) <= 16


def test_autoencoder_loss_and_latent_gaussian(keys):
    ae = _models()["ae"]
    x = jax.random.uniform(keys[0], (10, 8, 8, 1))
    loss, m = jax.jit(vae.autoencoder_loss)(ae, x, keys[1])
    want = jnp.mean(jnp.sum((x - ae.decode(ae.encode(x))) ** 2, axis=(1, 2, 3)))
    np.testing.assert_allclose(loss, want, rtol=1e-5)
    fitted = vae.fit_latent_gaussian(ae, x)
    z = ae.encode(x)
    np.testing.assert_allclose(fitted.latent_mean[...], z.mean(0), rtol=1e-5)
    np.testing.assert_allclose(ae.latent_mean[...], 0.0)  # the input model is left alone
