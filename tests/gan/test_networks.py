"""Spectral normalisation, AdaIN, the mapping network and the GAN networks' shapes.

Spectral norm: 200 power iterations on matrices with a clear gap between the top two
singular values converge to float64 precision (the error falls as (s2/s1)^(2k)), so the
estimate is held to numpy.linalg.svd at 1e-9 relative.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import gan
from genjax.gan import oracle
from genjax.testing import assert_close_to_oracle

# Modules are pytrees: one compiled program per network instead of op-by-op dispatch.
apply = jax.jit(lambda module, *args: module(*args))


def _top_singular(w):
    w = np.asarray(w, np.float64)
    return np.linalg.svd(w.reshape(-1, w.shape[-1]))[1][0]


@pytest.fixture(scope="module")
def sn_jit():
    return jax.jit(gan.spectral_norm, static_argnames="num_iters")


@pytest.mark.parametrize("shape", [(6, 4), (3, 3, 2, 5)])  # dense (in, out) and conv HWIO
@pytest.mark.parametrize("jit", [False, True])
def test_spectral_norm_converges_to_top_singular_value(x64, sn_jit, keys, shape, jit):
    w = jax.random.normal(keys[0], shape, jnp.float64)
    u0 = jax.random.normal(keys[1], (shape[-1],), jnp.float64)
    fn = sn_jit if jit else gan.spectral_norm
    w_sn, u = fn(w, u0, num_iters=200)
    sigma = _top_singular(w)
    np.testing.assert_allclose(np.asarray(w) / np.asarray(w_sn), sigma, rtol=1e-9)
    assert _top_singular(w_sn) == pytest.approx(1.0, rel=1e-9)
    # a few iterations from the same u: the oracle's Algorithm 1, step for step
    w3, u3 = fn(w, u0, num_iters=3)
    w3_ref, u3_ref, _ = oracle.spectral_norm(w, u0, 3)
    assert_close_to_oracle((w3, u3), (w3_ref, u3_ref))


def test_spectral_norm_gradient_flows_through_w_only(keys):
    w = jax.random.normal(keys[0], (5, 3))
    u = jax.random.normal(keys[1], (3,))
    g_w, g_u = jax.grad(lambda w, u: jnp.sum(gan.spectral_norm(w, u, num_iters=2)[0]),
                        argnums=(0, 1))(w, u)
    assert float(jnp.max(jnp.abs(g_w))) > 0 and float(jnp.max(jnp.abs(g_u))) == 0.0


def test_spectral_norm_layer_wrapper(keys):
    lin = nnx.Linear(6, 4, rngs=nnx.Rngs(0))
    sn = gan.SpectralNorm(lin, num_iters=50, rngs=nnx.Rngs(1))
    x = jax.random.normal(keys[0], (3, 6))
    y = nnx.jit(lambda m, v: m(v))(sn, x)  # advances u (nnx.jit carries the mutation out)
    sigma = _top_singular(lin.kernel[...])
    want = np.asarray(x) @ (np.asarray(lin.kernel[...]) / sigma) + np.asarray(lin.bias[...])
    np.testing.assert_allclose(y, want, rtol=2e-5, atol=1e-6)  # float32 matmuls
    np.testing.assert_allclose(sn(x, update=False), want, rtol=2e-5, atol=1e-6)  # eager too
    conv = nnx.Conv(2, 3, (3, 3), strides=(2, 2), rngs=nnx.Rngs(2))
    snc = gan.SpectralNorm(conv, num_iters=50, rngs=nnx.Rngs(3))
    img = jax.random.normal(keys[1], (2, 4, 4, 2))
    # bias is zero at init: the wrapped conv is the conv divided by sigma
    np.testing.assert_allclose(apply(snc, img), apply(conv, img) / _top_singular(conv.kernel[...]),
                               rtol=2e-5, atol=1e-6)


def test_adain_sets_the_styles_statistics(x64, keys):
    x = 3.0 + 2.0 * jax.random.normal(keys[0], (2, 5, 5, 3), jnp.float64)
    ys = jax.random.uniform(keys[1], (2, 3), jnp.float64, 0.5, 2.0)
    yb = jax.random.normal(keys[2], (2, 3), jnp.float64)
    out = jax.jit(gan.adain, static_argnames="eps")(x, ys, yb, eps=1e-12)
    np.testing.assert_allclose(jnp.mean(out, axis=(1, 2)), yb, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(jnp.std(out, axis=(1, 2)), ys, rtol=1e-9)
    assert_close_to_oracle(gan.adain(x, ys, yb), oracle.adain(x, ys, yb, 1e-5))


def test_mapping_network_and_adain_module(keys):
    mapping = gan.MappingNetwork(4, 16, num_layers=3, rngs=nnx.Rngs(0))
    z = jax.random.normal(keys[0], (5, 4))
    w = apply(mapping, z)
    assert w.shape == (5, 16) and bool(jnp.all(jnp.isfinite(w)))
    # pixel norm makes the mapping invariant to the scale of z
    np.testing.assert_allclose(apply(mapping, 3.0 * z), w, rtol=1e-5, atol=1e-6)
    mod = gan.AdaIN(16, 3, rngs=nnx.Rngs(1))
    x = jax.random.normal(keys[1], (5, 4, 4, 3))
    ys, yb = mod.styles(w)
    out = apply(mod, x, w)
    np.testing.assert_allclose(jnp.mean(out, axis=(1, 2)), yb, atol=1e-5)
    np.testing.assert_allclose(jnp.std(out, axis=(1, 2)), jnp.abs(ys), rtol=1e-3)  # eps=1e-5


@pytest.mark.parametrize("image_shape", [(8, 8, 1), (28, 28, 1)])
def test_dcgan_shapes_and_independence(keys, image_shape):
    g = gan.DCGANGenerator(8, image_shape, base_channels=8, rngs=nnx.Rngs(0))
    d = gan.DCGANDiscriminator(image_shape, base_channels=8, feature_dim=16, rngs=nnx.Rngs(1))
    x = apply(g, jax.random.normal(keys[0], (3, 8)))
    assert x.shape == (3, *image_shape) and float(jnp.max(jnp.abs(x))) <= 1.0
    logits = apply(d, x)
    assert logits.shape == (3,)
    # examples do not interact (what the gradient penalty's per-sample gradient needs)
    np.testing.assert_allclose(apply(d, x.at[1].set(0.0))[0], logits[0], rtol=1e-6)
    # the inner layers run as patch products (genjax.gan.patch_conv): the same networks as
    # through the flax layers' own calls, to float32 rounding (both sides float32)
    z = jax.random.normal(keys[0], (3, 8))
    image_flax, logits_flax = jax.jit(_dcgan_through_flax)(g, d, z)
    assert_close_to_oracle(x, image_flax)
    assert_close_to_oracle(logits, logits_flax)


def _dcgan_through_flax(g, d, z):
    h = jax.nn.relu(g.norm0(g.project(z).reshape(z.shape[0], *g.start)))
    image = jnp.tanh(g.up2(jax.nn.relu(g.norm1(g.up1(h)))))
    lrelu = lambda v: jax.nn.leaky_relu(v, 0.2)  # noqa: E731
    h = lrelu(d.conv2(lrelu(d.conv1(image))))
    return image, d.psi(lrelu(d.features(h.reshape(z.shape[0], -1))))[:, 0]


def test_conditional_networks_use_labels(keys):
    g = gan.DCGANGenerator(8, (8, 8, 1), base_channels=8, num_classes=10, rngs=nnx.Rngs(0))
    d = gan.DCGANDiscriminator((8, 8, 1), base_channels=8, feature_dim=16, num_classes=10,
                               rngs=nnx.Rngs(1))
    z = jnp.tile(jax.random.normal(keys[0], (1, 8)), (2, 1))
    y = jnp.asarray([1, 7])
    x = apply(g, z, y)
    assert float(jnp.max(jnp.abs(x[0] - x[1]))) > 1e-4  # same z, different class
    same = jnp.tile(x[:1], (2, 1, 1, 1))
    logits = apply(d, same, y)
    assert abs(float(logits[0] - logits[1])) > 1e-6  # projection term differs
    with pytest.raises(ValueError, match="labels"):
        d(x)


def test_small_networks_shapes(keys):
    g = gan.MLPGenerator(3, (16,), 2, rngs=nnx.Rngs(0))
    d = gan.MLPDiscriminator(2, (16,), rngs=nnx.Rngs(1))
    assert apply(d, apply(g, jnp.zeros((4, 3)))).shape == (4,)
    t = gan.Translator(1, hidden=8, rngs=nnx.Rngs(2))
    assert apply(t, jnp.zeros((2, 8, 8, 1))).shape == (2, 8, 8, 1)


def test_bad_network_and_spectral_arguments():
    with pytest.raises(ValueError, match="num_iters"):
        gan.spectral_norm(jnp.ones((3, 2)), jnp.ones((2,)), num_iters=0)
    with pytest.raises(ValueError, match="u must"):
        gan.spectral_norm(jnp.ones((3, 2)), jnp.ones((3,)), num_iters=1)
    with pytest.raises(ValueError, match="num_iters"):
        gan.SpectralNorm(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), num_iters=0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="image_shape"):
        gan.DCGANGenerator(4, (10, 10, 1), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="style_scale"):
        gan.adain(jnp.ones((1, 2, 2, 3)), jnp.ones((1, 2)), jnp.ones((1, 3)))
