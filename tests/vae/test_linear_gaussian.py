"""Exact answers from probabilistic PCA (genjax.targets.LinearGaussian).

A linear VAE's generative model is pPCA, whose ``log p(x)`` and posterior are known in
closed form. ``W`` below has **orthogonal columns**, so the exact posterior
``N(M^{-1} W^T (x - b), s^2 M^{-1})`` is diagonal and a diagonal encoder can equal it.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from genjax import targets, vae
from genjax.vae import oracle

D, L, S = 4, 2, 0.5


def _orthogonal_w():
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(D, D)))
    return q[:, :L] * np.array([2.0, 0.7])  # orthogonal columns of lengths 2 and 0.7


def _setup(n=6):
    w, b = _orthogonal_w(), np.array([0.5, -1.0, 0.0, 2.0])
    target = targets.LinearGaussian.create(w, b, S, dtype=jnp.float64)
    x, _ = target.sample(jax.random.key(3), n)
    return w, b, target, x


def test_exact_posterior_encoder_gives_log_p_exactly(x64, keys):
    w, b, target, x = _setup()
    model = vae.exact_posterior_vae(w, b, S)
    log_p = target.log_prob(x)
    np.testing.assert_allclose(log_p, oracle.ppca_log_prob(x, w, b, S), rtol=1e-12)
    mu, logvar = model.encode(x)
    post_mean, post_cov = target.posterior(x)
    np.testing.assert_allclose(mu, post_mean, rtol=1e-6, atol=1e-6)  # float32 weights
    np.testing.assert_allclose(jnp.exp(logvar[0]), jnp.diag(post_cov), rtol=1e-6)
    # with q = posterior every importance weight is p(x): log w_i = log p(x) for all draws
    eps = jax.random.normal(keys[0], (9, len(x), L), jnp.float64)
    log_w = vae.iwae_log_weights(model, x, eps)
    # the encoder's weights are float32 roundings of the posterior: 1e-5 nats
    np.testing.assert_allclose(log_w, jnp.broadcast_to(log_p, log_w.shape), atol=1e-5)
    np.testing.assert_allclose(target.elbo(x, mu, logvar), log_p, atol=1e-5)  # ELBO = log p(x)
    np.testing.assert_allclose(vae.iwae_bound(model, x, keys[1], k=50), log_p, atol=1e-5)


def test_elbo_gap_is_kl_to_posterior_and_iwae_grows_with_k(x64, keys):
    w, b, target, x = _setup(3)
    exact = vae.exact_posterior_vae(w, b, S)
    enc = exact.encoder.net.layers[0]
    # a worse encoder: perturbed mean weights, variances 3x too large
    model = vae.set_linear_vae(
        exact, enc_kernel=enc.kernel[...] + 0.3 * jax.random.normal(keys[0], (D, 2 * L)) *
        jnp.concatenate([jnp.ones((D, L)), jnp.zeros((D, L))], axis=1),
        enc_bias=enc.bias[...] + jnp.concatenate([jnp.zeros(L), jnp.log(3.0) * jnp.ones(L)]))
    mu, logvar = model.encode(x)
    log_p = target.log_prob(x)
    elbo = target.elbo(x, mu, logvar)
    gap = target.kl_to_posterior(x, mu, logvar)
    np.testing.assert_allclose(log_p - elbo, gap, rtol=1e-10)
    assert np.all(gap > 0.1)  # really a worse encoder
    # our one-sample ELBO is unbiased for the closed form: mean of 20000 draws within 5 SE
    eps = jax.random.normal(keys[1], (20000, len(x), L), jnp.float64)
    draws = jax.jit(jax.vmap(lambda e: vae.elbo_terms(model, x, e)["elbo"]))(eps)  # (20000, 3)
    se = draws.std(0) / np.sqrt(len(draws))
    assert np.all(np.abs(draws.mean(0) - elbo) < 5 * se)
    # IWAE: E[L_k] increases with k towards log p(x); averaged over 200 repeats
    means = []
    for k in (1, 8, 64, 512):
        bounds = jax.jit(jax.vmap(lambda kk, k=k: vae.iwae_bound(model, x, kk, k=k)))(
            jax.random.split(keys[2], 200))
        means.append(np.asarray(bounds.mean(0)))
    means = np.stack(means)  # (4, 3)
    assert np.all(np.diff(means, axis=0) > 0)
    assert np.all(means[-1] < log_p + 1e-3) and np.all(means[-1] > log_p - 0.05 * gap)
    np.testing.assert_allclose(means[0], elbo, atol=0.1 * float(gap.min()))  # L_1 is the ELBO


def test_dreg_encoder_gradient_vanishes_at_exact_posterior(x64, keys):
    # At q = p(z|x), log w does not depend on z, so every DReG encoder term is exactly 0;
    # the IWAE estimator keeps the score term's noise (Tucker et al. 2019, §3).
    w, b, _, x = _setup(5)
    model = vae.exact_posterior_vae(w, b, S)

    def enc_grad(est):
        g = jax.jit(jax.grad(lambda m: vae.iwae_loss(m, x, keys[0], k=4, estimator=est)[0]))(model)
        return np.concatenate([np.ravel(a) for a in jax.tree.leaves(g.encoder)])

    np.testing.assert_allclose(enc_grad("dreg"), 0.0, atol=1e-5)  # float32 weights: 1e-5
    assert np.max(np.abs(enc_grad("iwae"))) > 1e-2


@pytest.mark.slow
def test_trained_linear_vae_recovers_the_likelihood():
    # Data from a pPCA with a non-orthogonal W; a linear VAE with a diagonal encoder reaches
    # the pPCA maximum likelihood (Lucas et al. 2019: its global optimum is pPCA's, with W
    # rotated to orthogonal columns). Held-out mean log p(x) of the learned model within
    # 0.05 nats of the true model's: the MLE's excess risk is ~#params/(2n) = 0.005 nats
    # and the training leaves SGD noise of the order of 0.01.
    rng = np.random.default_rng(1)
    w_true = rng.normal(size=(D, L))
    b_true = rng.normal(size=D)
    target = targets.LinearGaussian.create(w_true, b_true, S)
    x_train, _ = target.sample(jax.random.key(10), 2000)
    x_test, _ = target.sample(jax.random.key(11), 2000)
    model = vae.linear_vae(D, L, rngs=nnx.Rngs(0), noise_std=1.0)
    opt = optax.adam(optax.cosine_decay_schedule(2e-2, 3000))

    @jax.jit
    def train(model, key):
        def step(carry, k):
            m, s = carry
            g = jax.grad(lambda m: vae.elbo_loss(m, x_train, k)[0])(m)
            u, s = opt.update(g, s, m)
            return (optax.apply_updates(m, u), s), None

        (m, _), _ = jax.lax.scan(step, (model, opt.init(model)), jax.random.split(key, 3000))
        return m

    model = train(model, jax.random.key(5))
    learned = targets.LinearGaussian.create(
        np.asarray(model.decoder.net.layers[0].kernel[...]).T,
        np.asarray(model.decoder.net.layers[0].bias[...]),
        float(jnp.exp(model.log_std[...])))
    true_ll = float(target.log_prob(x_test).mean())
    learned_ll = float(learned.log_prob(x_test).mean())
    assert abs(learned_ll - true_ll) < 0.05, (learned_ll, true_ll)
    mu, logvar = model.encode(x_test)
    elbo = float(learned.elbo(x_test, mu, logvar).mean())
    assert learned_ll - 0.05 < elbo <= learned_ll + 1e-4  # the encoder is (near) exact too
