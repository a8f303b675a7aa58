"""ELBO, beta/capacity objectives, IWAE and the ladder VAE against the NumPy oracle.

The networks' weights are copied into NumPy (``_helpers``) and the oracle evaluates the
equations on the same standard-normal draws. With float64 enabled the only difference is
summation order: 1e-9 relative.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import gaussian, vae
from genjax.vae import oracle
from tests.vae._helpers import np_layers, np_linear

RTOL64 = 1e-9
SHAPE = (4, 4, 1)


def _data(key, n=5):
    return jax.random.uniform(key, (n, *SHAPE), jnp.float64)


def _np_vae(model):
    enc, dec = np_layers(model.encoder.net), np_layers(model.decoder.net)
    lat = model.latent_dim

    def encode(x):
        h = oracle.mlp(np.asarray(x).reshape(len(x), -1), enc)
        return h[:, :lat], h[:, lat:]

    def decode(z):
        return oracle.mlp(z, dec).reshape(len(z), *SHAPE)

    return encode, decode


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_elbo_terms_match_oracle(x64, keys, likelihood):
    model = vae.mlp_vae(SHAPE, 3, rngs=nnx.Rngs(0), hidden_sizes=(16,), likelihood=likelihood)
    model.log_std[...] = jnp.asarray(-0.4)
    x = _data(keys[0])
    eps = jax.random.normal(keys[1], (5, 3), jnp.float64)
    got = jax.jit(vae.elbo_terms)(model, x, eps)
    encode, decode = _np_vae(model)
    mu, lv = encode(x)
    want = oracle.vae_elbo(x, mu, lv, eps, decode, likelihood=likelihood,
                           log_std=float(model.log_std[...]))  # the float32 value
    for name in ("log_likelihood", "kl", "elbo"):
        np.testing.assert_allclose(got[name], want[name], rtol=RTOL64, err_msg=name)
    assert np.all(want["elbo"] < 0)  # sign check: an ELBO of data in [0, 1] is negative here


def test_elbo_loss_reduction_beta_and_capacity(keys):
    model = vae.mlp_vae(SHAPE, 2, rngs=nnx.Rngs(1), hidden_sizes=(16,))
    x = jax.random.uniform(keys[0], (6, *SHAPE))
    eps = jax.random.normal(keys[1], (6, 2))  # what elbo_loss draws from keys[1]
    t = jax.jit(vae.elbo_terms)(model, x, eps)
    loss_fn = vae.elbo_loss  # compiled at its boundary; beta traced: one program for every beta
    loss, metrics = loss_fn(model, x, keys[1])
    # reduction: sum over dims (inside the terms), mean over the batch, in nats
    np.testing.assert_allclose(loss, -jnp.mean(t["elbo"]), rtol=1e-5)
    np.testing.assert_allclose(metrics["bits_per_dim"], -jnp.mean(t["elbo"]) / (16 * np.log(2)),
                               rtol=1e-5)
    loss_b1, _ = vae.elbo_loss(model, x, keys[1], beta=1.0)
    np.testing.assert_allclose(loss_b1, loss, rtol=1e-6)  # beta = 1 is the plain VAE
    loss_b4, _ = loss_fn(model, x, keys[1], beta=4.0)
    np.testing.assert_allclose(loss_b4, jnp.mean(-t["log_likelihood"] + 4.0 * t["kl"]), rtol=1e-5)
    c = vae.capacity_schedule(50, c_max=10.0, num_steps=100)
    np.testing.assert_allclose(c, 5.0)
    loss_c, _ = vae.elbo_loss(model, x, keys[1], capacity=c, gamma=30.0)
    want = jnp.mean(-t["log_likelihood"]) + 30.0 * jnp.abs(jnp.mean(t["kl"]) - 5.0)
    np.testing.assert_allclose(loss_c, want, rtol=1e-5)


def test_iwae_bound_matches_oracle(x64, keys):
    # iwae_bound is compiled at its public boundary (model_jit): no separate jit case
    model = vae.mlp_vae(SHAPE, 2, rngs=nnx.Rngs(2), hidden_sizes=(16,))
    x = _data(keys[0], 3)
    k = 7
    got = vae.iwae_bound(model, x, keys[1], k=k)
    eps = jax.random.normal(keys[1], (k, 3, 2), jnp.float64)  # the draws iwae_bound makes
    encode, decode = _np_vae(model)
    mu, lv = encode(x)
    log_w = oracle.vae_log_weights(x, mu, lv, eps, decode, likelihood="bernoulli")
    np.testing.assert_allclose(vae.iwae_log_weights(model, x, eps), log_w, rtol=RTOL64)
    np.testing.assert_allclose(got, oracle.iwae_bound(log_w), rtol=RTOL64)
    # chunk c draws its noise from fold_in(key, c) (documented): the chunked bound is the
    # log-mean-exp of the concatenated draws, which the oracle computes in one go
    chunked = vae.iwae_bound(model, x, keys[1], k=6, chunk_size=2)
    eps6 = jnp.concatenate([jax.random.normal(jax.random.fold_in(keys[1], c), (2, 3, 2),
                                              jnp.float64) for c in range(3)])
    log_w6 = oracle.vae_log_weights(x, mu, lv, eps6, decode, likelihood="bernoulli")
    np.testing.assert_allclose(chunked, oracle.iwae_bound(log_w6), rtol=RTOL64)


def _np_hvae(model):
    bu1, bu2 = np_layers(model.bu1.net), np_layers(model.bu2)
    q2, q1 = np_linear(model.q2_head), np_linear(model.q1_head)
    prior, dec = np_layers(model.prior1), np_layers(model.decoder.net)
    l1, l2 = model.latent_dims

    def bottom_up(x):
        d1 = oracle.silu(oracle.mlp(np.asarray(x).reshape(len(x), -1), bu1))
        d2 = oracle.silu(oracle.mlp(d1, bu2))
        a, b = oracle.mlp(d2, q2), oracle.mlp(d1, q1)
        return a[:, :l2], a[:, l2:], b[:, :l1], b[:, l1:]

    def prior_fn(z2):
        h = oracle.mlp(z2, prior)
        return h[:, :l1], h[:, l1:]

    return bottom_up, prior_fn, lambda z1: oracle.mlp(z1, dec).reshape(len(z1), *SHAPE)


def test_hierarchical_terms_and_weights_match_oracle(x64, keys):
    model = vae.HierarchicalVAE(SHAPE, (3, 2), rngs=nnx.Rngs(3), hidden=16)
    x = _data(keys[0], 4)
    eps2 = jax.random.normal(keys[1], (5, 4, 2), jnp.float64)
    eps1 = jax.random.normal(keys[2], (5, 4, 3), jnp.float64)
    terms, log_w = oracle.hvae_elbo_and_log_weights(x, *_np_hvae(model), eps2, eps1,
                                                    likelihood="bernoulli")
    got = jax.jit(vae.hvae_terms)(model, x, eps2[0], eps1[0])
    for name in ("log_likelihood", "kl2", "kl1", "elbo"):
        np.testing.assert_allclose(got[name], terms[name], rtol=RTOL64, err_msg=name)
    np.testing.assert_allclose(vae.iwae_log_weights(model, x, (eps2, eps1)), log_w, rtol=RTOL64)
    # the ELBO loss draws (eps2, eps1) from split(key), as documented
    k2, k1 = jax.random.split(keys[3])
    e2 = jax.random.normal(k2, (4, 2), jnp.float64)
    e1 = jax.random.normal(k1, (4, 3), jnp.float64)
    loss, m = vae.elbo_loss(model, x, keys[3])
    np.testing.assert_allclose(loss, -jnp.mean(vae.hvae_terms(model, x, e2, e1)["elbo"]),
                               rtol=RTOL64)
    np.testing.assert_allclose(m["kl"], m["kl1"] + m["kl2"], rtol=RTOL64)


def test_precision_weighting_matches_oracle_and_shrinks_variance(x64, keys):
    a, b, c, d = (jax.random.normal(k, (3, 4), jnp.float64) for k in keys[:4])
    mu, lv = vae.precision_weighted(a, b, c, d)
    mu_o, lv_o = oracle.precision_weighted(a, b, c, d)
    np.testing.assert_allclose(mu, mu_o, rtol=RTOL64)
    np.testing.assert_allclose(lv, lv_o, rtol=RTOL64)
    assert np.all(lv < jnp.minimum(b, d))  # combining two sources is more certain than either


def test_dreg_decoder_gradient_equals_iwae_and_value_equal(keys):
    model = vae.mlp_vae(SHAPE, 2, rngs=nnx.Rngs(4), hidden_sizes=(16,))
    x = jax.random.uniform(keys[0], (4, *SHAPE))

    def grads(est):
        return jax.jit(jax.value_and_grad(
            lambda m: vae.iwae_loss(m, x, keys[1], k=5, estimator=est)[0]))(model)

    (v_iwae, g_iwae), (v_dreg, g_dreg) = grads("iwae"), grads("dreg")
    np.testing.assert_allclose(v_dreg, v_iwae, rtol=1e-6)
    # decoder: both are sum_i w~_i grad_theta log w_i (float32 reassociation: 1e-4)
    for a, b in zip(jax.tree.leaves(g_iwae.decoder), jax.tree.leaves(g_dreg.decoder), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    enc_diff = sum(float(jnp.sum(jnp.abs(a - b))) for a, b in zip(
        jax.tree.leaves(g_iwae.encoder), jax.tree.leaves(g_dreg.encoder), strict=True))
    assert enc_diff > 1e-4  # the encoder estimators do differ


def test_dreg_encoder_gradient_is_squared_weight_path_derivative(keys):
    # Tucker et al. (2019), eq. 7: the encoder gradient of -mean_b L_k is
    #   -1/B sum_b sum_i w~_bi^2 (d log w_bi / d z_bi) (d z_bi / d phi),
    # with d log w / d z taken with q's parameters held fixed. Built here by hand: the
    # gradient in z of the log weight at fixed (mu, logvar), then pulled back through
    # z = mu(phi) + exp(logvar(phi)/2) eps. Squared (not plain) normalised weights, and
    # no score term of q, are what this pins down.
    model = vae.mlp_vae(SHAPE, 2, rngs=nnx.Rngs(5), hidden_sizes=(16,))
    x = jax.random.uniform(keys[0], (3, *SHAPE))
    k, b = 4, 3
    eps = jax.random.normal(keys[1], (k, b, 2))  # the draws iwae_loss makes from keys[1]
    mu, logvar = model.encode(x)

    def log_w_at(z):  # (k, B, L) -> (k, B), q's parameters fixed at their values
        def one(zi):
            ll = vae.decoder_log_likelihood(model, x, model.decode(zi))
            return (ll + gaussian.standard_normal_log_prob(zi)
                    - gaussian.diag_normal_log_prob(zi, mu, logvar))
        return jax.vmap(one)(z)

    z = mu[None] + jnp.exp(0.5 * logvar)[None] * eps  # (k, B, L)
    log_w = log_w_at(z)
    w = jax.nn.softmax(log_w, axis=0)  # (k, B), w~_i
    dlogw_dz = jax.grad(lambda zz: jnp.sum(log_w_at(zz)))(z)  # (k, B, L), per-sample
    cot = -(w**2)[:, :, None] * dlogw_dz / b  # (k, B, L), cotangent of the loss wrt z_i

    def z_of(encoder):  # z(phi), the encoder's (mu, logvar) halves as VAE.encode splits them
        h = encoder(x)  # (B, 2L)
        return h[None, :, :2] + jnp.exp(0.5 * h[:, 2:])[None] * eps

    _, pullback = jax.vjp(z_of, model.encoder)
    (want,) = pullback(cot)
    got = jax.grad(lambda m: vae.iwae_loss(m, x, keys[1], k=k, estimator="dreg")[0])(model)
    # float32 reassociation of a few hundred products: 1e-4 relative
    for a, c in zip(jax.tree.leaves(got.encoder), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-6)
    assert max(float(jnp.max(jnp.abs(a))) for a in jax.tree.leaves(want)) > 1e-3  # not zero


def test_bad_arguments_raise(keys):
    model = vae.mlp_vae(SHAPE, 2, rngs=nnx.Rngs(0), hidden_sizes=(8,))
    x = jnp.zeros((2, *SHAPE))
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        vae.iwae_bound(model, x, keys[0], k=0)
    with pytest.raises(ValueError, match="chunk_size"):
        vae.iwae_bound(model, x, keys[0], k=5, chunk_size=2)
    with pytest.raises(ValueError, match="beta must be non-negative"):
        vae.elbo_loss(model, x, keys[0], beta=-0.5)
    with pytest.raises(ValueError, match="beta must be non-negative"):
        jax.jit(vae.elbo_loss, static_argnames=("beta",))(model, x, keys[0], beta=-0.5)
    with pytest.raises(ValueError, match="estimator"):
        vae.iwae_loss(model, x, keys[0], k=2, estimator="vimco")
    with pytest.raises(ValueError, match="latent_dim must be"):
        vae.mlp_vae(SHAPE, 0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="latent_dims"):
        vae.HierarchicalVAE(SHAPE, (0, 2), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="batch must have shape"):
        vae.elbo_loss(model, jnp.zeros((2, 5, 5, 1)), keys[0])
    with pytest.raises(ValueError, match="likelihood"):
        vae.mlp_vae(SHAPE, 2, rngs=nnx.Rngs(0), likelihood="poisson")
    with pytest.raises(ValueError, match="gamma must be non-negative"):
        vae.elbo_loss(model, x, keys[0], capacity=1.0, gamma=-1.0)
    with pytest.raises(ValueError, match="capacity must be non-negative"):
        vae.elbo_loss(model, x, keys[0], capacity=-1.0)
    with pytest.raises(ValueError, match="c_max must be non-negative"):
        vae.capacity_schedule(0, c_max=-1.0, num_steps=10)
    with pytest.raises(ValueError, match="num_steps must be an integer >= 1"):
        vae.capacity_schedule(0, c_max=1.0, num_steps=0)
    with pytest.raises(ValueError, match="model must be a VAE"):
        vae.elbo_loss(object(), x, keys[0])
    hvae = vae.HierarchicalVAE(SHAPE, (2, 2), rngs=nnx.Rngs(0), hidden=8)
    with pytest.raises(ValueError, match="estimator='dreg' needs a VAE"):
        vae.iwae_loss(hvae, x, keys[0], k=2, estimator="dreg")
    with pytest.raises(ValueError, match="mean must have the shape"):
        vae.gaussian_log_likelihood(x, jnp.zeros((2, 16)), jnp.asarray(0.0))
    with pytest.raises(ValueError, match="logvar must have the shape"):
        vae.reparameterize(keys[0], jnp.zeros((2, 3)), jnp.zeros((3,)))
    with pytest.raises(ValueError, match="num must be"):
        vae.interpolate(model, x, x, num=1)


def test_capacity_schedule_ramps_then_holds():
    # C(step) = c_max min(1, step / num_steps): 0 at the start, linear, then flat at c_max
    got = [float(vae.capacity_schedule(s, c_max=8.0, num_steps=4)) for s in (0, 1, 4, 10)]
    np.testing.assert_allclose(got, [0.0, 2.0, 8.0, 8.0], rtol=1e-7)
