"""Conditional VAE (Sohn et al. 2015): oracle agreement and the exact linear-Gaussian checks.

The conditional linear-Gaussian model ``z | y ~ N(m_y, diag v)``,
``x | z, y ~ N(W z + o_y, s^2 I)`` has ``log p(x | y)`` and ``p(z | x, y)`` in closed form.
With ``W``'s columns orthogonal the exact posterior is diagonal, so a linear CVAE's encoder
can equal it (:func:`exact_posterior_cvae`) and then the ELBO is ``log p(x | y)``; any other
encoder falls short by exactly ``KL(q(z|x,y) || p(z|x,y))``.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from genjax.testing import (
    BadInput,
    LossCase,
    SamplerCase,
    assert_handled,
    assert_loss_conforms,
    assert_sampler_conforms,
)
from genjax.testing.conformance import count_compilations
from genjax.vae import conditional as cv
from genjax.vae import oracle
from genjax.vae import oracle_conditional as oc
from tests.vae._helpers import np_layers

D, L, C, S = 4, 2, 3, 0.5


def _problem():
    """W (D, L) with orthogonal columns, class offsets (C, D), prior means (C, L), log v (L,)."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(D, D)))
    w = q[:, :L] * np.array([1.5, 0.8])
    return w, rng.normal(size=(C, D)), rng.normal(size=(C, L)), np.log([0.7, 1.6])


def _class_data(key, n_per_class=4):
    """Pairs (x (C n, D), y (C n,)) drawn from the true conditional model, float64."""
    w, offsets, means, lv = _problem()
    y = np.repeat(np.arange(C), n_per_class)
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
    z = means[y] + np.exp(0.5 * lv) * rng.normal(size=(len(y), L))
    x = z @ w.T + offsets[y] + S * rng.normal(size=(len(y), D))
    return jnp.asarray(x), jnp.asarray(y, jnp.int32)  # float64 under x64, else float32


def _oracle_exact(x, y):
    """log p(x|y), posterior means (B, L) and covariances (B, L, L) from the oracle."""
    w, offsets, means, lv = _problem()
    x, y = np.asarray(x), np.asarray(y)
    log_p, post_m, post_c = [], [], []
    for b in range(len(x)):
        args = (w, offsets[y[b]], means[y[b]], np.exp(lv), S)
        log_p.append(oc.conditional_linear_gaussian_log_prob(x[b:b + 1], *args)[0])
        m, c = oc.conditional_linear_gaussian_posterior(x[b:b + 1], *args)
        post_m.append(m[0])
        post_c.append(c)
    return np.array(log_p), np.array(post_m), np.array(post_c)


@pytest.fixture(scope="module")
def bernoulli_cvae():
    return cv.mlp_cvae((3, 2, 1), C, L, rngs=nnx.Rngs(0), hidden_sizes=(5,),
                       prior_hidden_sizes=(4,))


def test_terms_match_the_oracle(bernoulli_cvae, keys):
    model = bernoulli_cvae
    x = jax.random.uniform(keys[0], (7, 3, 2, 1))
    y = jnp.array([0, 1, 2, 2, 1, 0, 1], jnp.int32)
    eps = jax.random.normal(keys[1], (7, L))
    got = jax.jit(cv.cvae_terms)(model, x, y, eps)
    want = oc.cvae_elbo(
        np.asarray(x).reshape(7, -1), np.asarray(y), np.asarray(eps),
        encode=lambda h: oracle.mlp(h, np_layers(model.encoder)),
        prior=lambda h: oracle.mlp(h, np_layers(model.prior)),
        decode=lambda h: oracle.mlp(h, np_layers(model.decoder)),
        num_classes=C, likelihood="bernoulli")
    for k in ("log_likelihood", "kl", "elbo"):
        # float32 network against float64: ~1e-6 relative on sums of ~6 terms
        np.testing.assert_allclose(got[k], want[k], rtol=2e-5, atol=2e-5, err_msg=k)
    assert np.all(np.asarray(got["kl"]) > 0)
    # the loss is the batch mean of -ELBO for its own key's noise
    loss, metrics = cv.cvae_loss(model, (x, y), keys[2])
    eps2 = jax.random.normal(keys[2], (7, L))
    np.testing.assert_allclose(loss, -np.mean(cv.cvae_terms(model, x, y, eps2)["elbo"]),
                               rtol=1e-5)
    np.testing.assert_allclose(metrics["elbo"], -loss, rtol=1e-6)


def test_sampler_is_its_noise_twin_and_compiles_once(bernoulli_cvae, keys):
    model = bernoulli_cvae
    labels = jnp.array([2, 0, 1, 1], jnp.int32)
    noise = jax.random.normal(keys[3], (4, L))
    got = cv.cvae_sample_from_noise(model, labels, noise)
    e = oc.one_hot(np.asarray(labels), C)
    hp = oracle.mlp(e, np_layers(model.prior))
    z = hp[:, :L] + np.exp(0.5 * hp[:, L:]) * np.asarray(noise)  # z ~ p(z | y)
    logits = oracle.mlp(np.concatenate([z, e], 1), np_layers(model.decoder))
    np.testing.assert_allclose(got.reshape(4, -1), 1 / (1 + np.exp(-logits)), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_array_equal(cv.cvae_sample(keys[4], model, labels),
                                  cv.cvae_sample_from_noise(model, labels,
                                                            jax.random.normal(keys[4], (4, L))))
    other = jax.tree.map(lambda a: a + 0.1, model)  # new weights, same shapes
    with count_compilations() as n:
        out = cv.cvae_sample(keys[5], other, labels)
    assert n[0] == 0 and not np.allclose(out, cv.cvae_sample(keys[5], model, labels))


def test_exact_posterior_encoder_closes_the_gap(x64, keys):
    w, offsets, means, lv = _problem()
    model = cv.exact_posterior_cvae(w, offsets, means, lv, S)
    x, y = _class_data(keys[0])
    log_p, post_m, post_c = _oracle_exact(x, y)
    mu, logvar = model.encode(x, y)
    # float32 weights: posterior moments to ~1e-6
    np.testing.assert_allclose(mu, post_m, atol=2e-6)
    np.testing.assert_allclose(np.exp(logvar), np.diagonal(post_c, axis1=1, axis2=2), rtol=1e-6)
    # q = p(z|x,y): log p(x|z,y) + log p(z|y) - log q(z|x,y) = log p(x|y) for *every* z, so the
    # one-sample ELBO's expectation term plus the KL equals log p(x|y) up to the sampled
    # KL's difference from the closed form; the closed-form ELBO equals it exactly.
    for c in range(C):
        lg = cv.class_linear_gaussian(model, c)
        rows = np.asarray(y) == c
        np.testing.assert_allclose(lg.log_prob(x[rows]), log_p[rows], rtol=1e-6)
        m_y, lv_y = (np.asarray(a) for a in model.prior_params(jnp.asarray([c])))
        u_mean = (np.asarray(mu)[rows] - m_y) * np.exp(-0.5 * lv_y)  # u = (z - m_y) / sqrt(v_y)
        u_logvar = np.asarray(logvar)[rows] - lv_y
        np.testing.assert_allclose(lg.elbo(x[rows], u_mean, u_logvar), log_p[rows], atol=2e-5)
    # importance weights log p(x, z | y) - log q(z | x, y) are log p(x | y) at every draw
    eps = jax.random.normal(keys[1], (len(x), L), jnp.float64)
    z = mu + jnp.exp(0.5 * logvar) * eps
    mu_p, lv_p = model.prior_params(y)
    log_joint = (oc.gaussian_log_pdf(np.asarray(x), np.asarray(model.decode(z, y)),
                                     S**2 * np.eye(D))
                 + np.array([oc.gaussian_log_pdf(np.asarray(z[b:b + 1]), np.asarray(mu_p[b]),
                                                 np.diag(np.exp(np.asarray(lv_p[b]))))[0]
                             for b in range(len(x))]))
    log_q = np.array([oc.gaussian_log_pdf(np.asarray(z[b:b + 1]), np.asarray(mu[b]),
                                          np.diag(np.exp(np.asarray(logvar[b]))))[0]
                      for b in range(len(x))])
    np.testing.assert_allclose(log_joint - log_q, log_p, atol=2e-5)


def _worse_encoder(model, key):
    enc = model.encoder.layers[0]
    out = jax.tree.map(lambda a: a, model)
    e = out.encoder.layers[0]
    mask = jnp.concatenate([jnp.ones((D + C, L)), jnp.zeros((D + C, L))], axis=1)
    dtype = enc.kernel[...].dtype  # float32 weights, also under x64
    e.kernel[...] = (enc.kernel[...] + 0.4 * jax.random.normal(key, (D + C, 2 * L)) * mask
                     ).astype(dtype)
    e.bias[...] = (enc.bias[...] + jnp.concatenate([jnp.zeros(L), jnp.log(2.5) * jnp.ones(L)])
                   ).astype(dtype)
    return out


def test_elbo_gap_is_kl_to_the_exact_conditional_posterior(x64, keys):
    w, offsets, means, lv = _problem()
    model = _worse_encoder(cv.exact_posterior_cvae(w, offsets, means, lv, S), keys[2])
    x, y = _class_data(keys[0])
    log_p, post_m, post_c = _oracle_exact(x, y)
    mu, logvar = (np.asarray(a) for a in model.encode(x, y))
    yy = np.asarray(y)
    elbo = oc.np.array([oc.conditional_linear_gaussian_elbo(
        np.asarray(x[b:b + 1]), w, offsets[yy[b]], means[yy[b]], np.exp(lv), S, mu[b:b + 1],
        logvar[b:b + 1])[0] for b in range(len(x))])
    kl_post = np.array([oc.kl_gaussians(mu[b], np.diag(np.exp(logvar[b])), post_m[b], post_c[b])
                        for b in range(len(x))])
    # the oracle's two independent computations obey log p(x|y) - ELBO = KL(q || p(z|x,y))
    np.testing.assert_allclose(log_p - elbo, kl_post, rtol=1e-9, atol=1e-11)
    assert np.all(kl_post > 0.05)  # really a worse encoder
    # the JAX side (through LinearGaussian's public API per class) agrees with the oracle
    for c in range(C):
        lg = cv.class_linear_gaussian(model, c)
        rows = yy == c
        m_y, lv_y = (np.asarray(a) for a in model.prior_params(jnp.asarray([c])))
        u_mean, u_logvar = (mu[rows] - m_y) * np.exp(-0.5 * lv_y), logvar[rows] - lv_y
        np.testing.assert_allclose(lg.elbo(x[rows], u_mean, u_logvar), elbo[rows], atol=1e-5)
        np.testing.assert_allclose(lg.kl_to_posterior(x[rows], u_mean, u_logvar),
                                   kl_post[rows], rtol=1e-5, atol=1e-6)
    # the CVAE's one-sample ELBO is unbiased for it: 20000 draws, mean within 5 SE
    eps = jax.random.normal(keys[3], (20000, len(x), L), jnp.float64)
    draws = jax.jit(jax.vmap(lambda e: cv.cvae_terms(model, x, y, e)["elbo"]))(eps)
    se = np.asarray(draws.std(0)) / np.sqrt(len(draws))
    assert np.all(np.abs(np.asarray(draws.mean(0)) - elbo) < 5 * se + 1e-5)


def test_training_the_encoder_closes_the_gap(keys):
    # decoder and prior fixed at the truth, the encoder trained from a worse one by Adam on
    # the negative ELBO: the mean gap KL(q || p(z|x,y)) falls from > 0.3 nats to < 0.02
    # (the optimum is 0; 600 steps of SGD noise with batch 96 leave ~0.01)
    w, offsets, means, lv = _problem()
    exact = cv.exact_posterior_cvae(w, offsets, means, lv, S)
    model = _worse_encoder(exact, keys[2])
    x, y = _class_data(keys[0], n_per_class=32)

    def mean_gap(m):
        mu, logvar = (np.asarray(a, np.float64) for a in m.encode(x, y))
        _, post_m, post_c = _oracle_exact(x, y)
        return np.mean([oc.kl_gaussians(mu[b], np.diag(np.exp(logvar[b])), post_m[b], post_c[b])
                        for b in range(len(x))])

    before = mean_gap(model)
    opt = optax.adam(optax.cosine_decay_schedule(2e-2, 600))
    enc0 = model.encoder

    @jax.jit
    def train(enc, key):
        def step(carry, k):
            e, s = carry

            def objective(e):
                m = jax.tree.map(lambda a: a, model)
                m.encoder = e
                return cv.cvae_loss(m, (x.astype(jnp.float32), y), k)[0]

            g = jax.grad(objective)(e)
            u, s = opt.update(g, s, e)
            return (optax.apply_updates(e, u), s), None

        (e, _), _ = jax.lax.scan(step, (enc, opt.init(enc)), jax.random.split(key, 600))
        return e

    trained = jax.tree.map(lambda a: a, model)
    trained.encoder = train(enc0, keys[4])
    after = mean_gap(trained)
    assert before > 0.3 and after < 0.02, (before, after)


def test_cvae_loss_and_sampler_conform(bernoulli_cvae):
    model = bernoulli_cvae
    batch = (jax.random.uniform(jax.random.key(5), (3, 3, 2, 1)), jnp.array([0, 2, 1]))
    assert_loss_conforms(LossCase(
        name="cvae_loss", loss=functools.partial(cv.cvae_loss, beta=0.5), model=model,
        batch=batch,
        bad_arguments=[(lambda: cv.cvae_loss(model, batch, jax.random.key(0), beta=-1.0),
                        "beta")]))
    other = cv.mlp_cvae((3, 2, 1), C, L, rngs=nnx.Rngs(1), hidden_sizes=(5,),
                        prior_hidden_sizes=(4,))
    labels = jnp.array([1, 0, 2], jnp.int32)
    assert_sampler_conforms(SamplerCase(
        name="cvae_sample", sample=lambda key, m: cv.cvae_sample(key, m, labels),
        models=[model, other],
        from_noise=lambda key, m: cv.cvae_sample_from_noise(m, labels,
                                                            jax.random.normal(key, (3, L))),
        bad_arguments=[(lambda: cv.cvae_sample(jax.random.key(0), model, jnp.array([C])),
                        "labels")]))


@functools.cache
def _linear():
    w, offsets, means, lv = _problem()
    return cv.exact_posterior_cvae(w, offsets, means, lv, S)


_X = jnp.zeros((2, D))
_Y = jnp.array([0, 1], jnp.int32)

CASES = [
    BadInput("cvae_loss: label >= num_classes",
             lambda: cv.cvae_loss(_linear(), (_X, jnp.array([0, C])), jax.random.key(0)), "y"),
    BadInput("cvae_loss: float labels",
             lambda: cv.cvae_loss(_linear(), (_X, jnp.array([0.0, 1.0])), jax.random.key(0)),
             "y"),
    BadInput("cvae_loss: x of the wrong shape",
             lambda: cv.cvae_loss(_linear(), (jnp.zeros((2, D + 1)), _Y), jax.random.key(0)),
             "x"),
    BadInput("cvae_loss: labels and x of different lengths",
             lambda: cv.cvae_loss(_linear(), (_X, jnp.array([0], jnp.int32)),
                                  jax.random.key(0)), "y"),
    BadInput("cvae_loss: batch not a pair",
             lambda: cv.cvae_loss(_linear(), _X, jax.random.key(0)), "batch"),
    BadInput("cvae_loss: beta < 0",
             lambda: cv.cvae_loss(_linear(), (_X, _Y), jax.random.key(0), beta=-1.0), "beta"),
    BadInput("cvae_sample: negative label",
             lambda: cv.cvae_sample(jax.random.key(0), _linear(), jnp.array([-1])), "labels"),
    BadInput("cvae_sample: no labels",
             lambda: cv.cvae_sample(jax.random.key(0), _linear(), jnp.zeros((0,), jnp.int32)),
             "labels"),
    BadInput("cvae_sample_from_noise: noise of the wrong latent size",
             lambda: cv.cvae_sample_from_noise(_linear(), _Y, jnp.zeros((2, L + 1))), "noise"),
    BadInput("mlp_cvae: one class", lambda: cv.mlp_cvae((4,), 1, 2, rngs=nnx.Rngs(0)),
             "num_classes"),
    BadInput("mlp_cvae: latent_dim 0", lambda: cv.mlp_cvae((4,), 3, 0, rngs=nnx.Rngs(0)),
             "latent_dim"),
    BadInput("mlp_cvae: unknown likelihood",
             lambda: cv.mlp_cvae((4,), 3, 2, rngs=nnx.Rngs(0), likelihood="poisson"),
             "likelihood"),
    BadInput("exact_posterior_cvae: W with non-orthogonal columns",
             lambda: cv.exact_posterior_cvae(np.ones((D, L)), *_problem()[1:], S), "W"),
    BadInput("exact_posterior_cvae: prior_means of the wrong shape",
             lambda: cv.exact_posterior_cvae(_problem()[0], _problem()[1], np.zeros((C, L + 1)),
                                             _problem()[3], S), "prior_means"),
    BadInput("class_linear_gaussian: class out of range",
             lambda: cv.class_linear_gaussian(_linear(), C), "y"),
    BadInput("cvae_terms: saturated Bernoulli decoder (logits ~1e3) on binary data",
             lambda: jax.jit(cv.cvae_terms)(_saturated(), jnp.array([[0.0, 1.0, 1.0, 0.0]]),
                                            jnp.array([2]), jnp.ones((1, 2))),
             kind="extreme", check=lambda t: bool(np.all(np.asarray(t["elbo"]) < 0))),
]


def _saturated():
    model = cv.mlp_cvae((4,), 3, 2, rngs=nnx.Rngs(1), hidden_sizes=(8,))
    model.decoder = jax.tree.map(lambda a: 1e3 * a, model.decoder)  # logits of size ~1e3
    return model


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_inputs(case):
    assert_handled(case)
