"""Vector quantisation, the VQ-VAE loss and the EMA codebook against the oracle."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import vae
from genjax.vae import oracle


@pytest.mark.parametrize("jit", [False, True])
def test_quantize_matches_brute_force_and_straight_through(keys, jit):
    z = jax.random.normal(keys[0], (3, 5, 4))
    cb = jax.random.normal(keys[1], (7, 4))
    f = jax.jit(vae.vector_quantize) if jit else vae.vector_quantize
    z_q, idx = f(z, cb)
    e_o, idx_o = oracle.quantize(np.asarray(z).reshape(-1, 4), cb)
    np.testing.assert_array_equal(idx.reshape(-1), idx_o)
    np.testing.assert_allclose(z_q.reshape(-1, 4), e_o, rtol=1e-6, atol=1e-6)
    # straight-through by definition: d z_q / d z_e = I, nothing to the codebook
    v = jax.random.normal(keys[2], z.shape)
    gz, gcb = jax.grad(lambda z, cb: jnp.sum(v * vae.vector_quantize(z, cb)[0]), (0, 1))(z, cb)
    np.testing.assert_array_equal(gz, v)
    np.testing.assert_array_equal(gcb, jnp.zeros_like(cb))


def test_perplexity():
    np.testing.assert_allclose(vae.codebook_perplexity(jnp.array([0, 1, 2, 3]), 8), 4.0, rtol=1e-6)
    np.testing.assert_allclose(vae.codebook_perplexity(jnp.zeros(10, jnp.int32), 8), 1.0)
    idx = jnp.array([0, 0, 1, 5, 5, 5])
    np.testing.assert_allclose(vae.codebook_perplexity(idx, 6), oracle.perplexity(idx, 6),
                               rtol=1e-6)


@pytest.mark.parametrize("decay,epsilon", [(0.9, 1e-2), (0.5, 0.0)])
def test_ema_update_matches_oracle(x64, keys, decay, epsilon):
    z = jax.random.normal(keys[0], (30, 3), jnp.float64)
    cb = jax.random.normal(keys[1], (6, 3), jnp.float64)
    state = vae.EMAState(jax.random.uniform(keys[2], (6,), jnp.float64) * 5, cb * 2.0)
    idx = vae.nearest_code(z, cb)
    new_state, new_cb = jax.jit(vae.ema_update, static_argnames=("decay", "epsilon"))(
        state, cb, z, idx, decay=decay, epsilon=epsilon)
    size, msum, cb_o = oracle.ema_update(state.cluster_size, state.embed_sum, cb, z, idx,
                                         decay=decay, epsilon=epsilon)
    np.testing.assert_allclose(new_state.cluster_size, size, rtol=1e-12)
    np.testing.assert_allclose(new_state.embed_sum, msum, rtol=1e-12)
    np.testing.assert_allclose(new_cb, cb_o, rtol=1e-12)


def test_ema_with_decay_zero_is_a_kmeans_step(x64, keys):
    z = jax.random.normal(keys[0], (40, 2), jnp.float64)
    cb = jnp.concatenate([z[:4], jnp.array([[50.0, 50.0]])])  # last code gets no vectors
    idx = vae.nearest_code(z, cb)
    _, new_cb = vae.ema_update(vae.ema_init(cb), cb, z, idx, decay=0.0, epsilon=0.0)
    np.testing.assert_allclose(new_cb, oracle.kmeans_step(z, cb), rtol=1e-12)
    np.testing.assert_array_equal(new_cb[4], cb[4])  # an empty cluster keeps its centre


def test_dead_code_reset(keys):
    cb = jnp.zeros((4, 2))
    state = vae.EMAState(jnp.array([5.0, 0.1, 3.0, 0.0]), jnp.ones((4, 2)))
    z = jax.random.normal(keys[0], (10, 2)) + 100.0
    state2, cb2, n = vae.reset_dead_codes(keys[1], state, cb, z, threshold=1.0)
    assert int(n) == 2
    np.testing.assert_array_equal(cb2[jnp.array([0, 2])], 0.0)  # live codes untouched
    for k in (1, 3):  # dead codes moved onto batch vectors
        assert np.min(np.abs(np.asarray(z) - np.asarray(cb2[k])).sum(-1)) == 0.0
    np.testing.assert_array_equal(state2.cluster_size, [5.0, 1.0, 3.0, 1.0])


def test_vqvae_loss_matches_oracle_and_gradients(keys):
    model = vae.VQVAE((4, 4, 1), num_latents=3, code_dim=2, num_codes=5, rngs=nnx.Rngs(0),
                      hidden_sizes=(16,))
    x = jax.random.uniform(keys[0], (6, 4, 4, 1))
    loss, m = jax.jit(vae.vqvae_loss)(model, x, keys[1])
    t = vae.vqvae_terms(model, x)
    want = oracle.vqvae_terms(x, t["x_hat"], t["z_e"], model.codebook[...])
    np.testing.assert_array_equal(t["indices"], want["indices"])
    for name in ("reconstruction", "codebook", "commitment"):
        np.testing.assert_allclose(m[name], want[name].mean(), rtol=1e-5, err_msg=name)
    np.testing.assert_allclose(loss, np.mean(want["reconstruction"] + 1.25 * want["codebook"]),
                               rtol=1e-5)  # codebook + 0.25 commitment, equal in value
    # the codebook learns from the codebook term only: none without it (EMA variant)
    g = jax.grad(lambda mm: vae.vqvae_loss(mm, x, None, codebook_loss=False)[0])(model)
    np.testing.assert_array_equal(g.codebook[...], 0.0)
    g = jax.grad(lambda mm: vae.vqvae_loss(mm, x, None)[0])(model)
    assert float(jnp.abs(g.codebook[...]).sum()) > 0
    with pytest.raises(ValueError, match="beta"):
        vae.vqvae_loss(model, x, None, beta=-1.0)
    with pytest.raises(ValueError, match="codebook"):
        vae.vector_quantize(jnp.zeros((2, 3)), jnp.zeros((4, 2)))


def test_quantizer_and_ema_bad_arguments_raise(key):
    cb = jnp.zeros((4, 2))
    z = jnp.zeros((3, 2))
    idx = jnp.zeros((3,), jnp.int32)
    state = vae.ema_init(cb)
    with pytest.raises(ValueError, match="decay"):
        vae.ema_update(state, cb, z, idx, decay=1.0)  # gamma = 1 would never move
    with pytest.raises(ValueError, match="decay"):
        vae.ema_update(state, cb, z, idx, decay=-0.1)
    with pytest.raises(ValueError, match="epsilon"):
        vae.ema_update(state, cb, z, idx, epsilon=-1e-5)
    with pytest.raises(ValueError, match="threshold"):
        vae.reset_dead_codes(key, state, cb, z, threshold=-1.0)
    with pytest.raises(ValueError, match="codebook must have shape"):
        vae.nearest_code(z, jnp.zeros((0, 2)))  # an empty codebook
    with pytest.raises(ValueError, match="z_e must have shape"):
        vae.ema_update(state, cb, jnp.zeros((3, 5)), idx)
