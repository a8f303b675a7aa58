"""Losses against the oracle, at their optimum, and across prediction types."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import diffusion as d
from genjax.diffusion import forward, oracle
from genjax.diffusion.losses import loss_from_noise
from genjax.testing import assert_close_to_oracle

T = 100
BETAS = oracle.linear_betas(T, 1e-4, 0.05)
B = 8


def _apply(params, x_t, t):
    # a small model with both a data and a time dependence
    return params["w"] * x_t + params["b"] * (t.astype(x_t.dtype) / T)[:, None]


PARAMS = {"w": jnp.asarray(0.7), "b": jnp.asarray(-0.3)}
MODEL = jax.tree_util.Partial(_apply, PARAMS)  # the model: a callable pytree over PARAMS


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal((B, 2)).astype(np.float32)
    eps = rng.standard_normal((B, 2)).astype(np.float32)
    t = np.array([0, 1, 5, 30, 50, 80, 98, 99], np.int32)
    return x0, eps, t


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
@pytest.mark.parametrize("gamma", [None, 5.0])
def test_loss_matches_oracle(prediction, gamma):
    s = d.from_betas(BETAS)
    x0, eps, t = _batch()
    fn = functools.partial(
        loss_from_noise, schedule=s, prediction=prediction, min_snr_gamma=gamma
    )
    value, metrics = jax.jit(fn)(MODEL, x0, t, eps)
    x_t = oracle.q_sample(BETAS, x0, t, eps)
    pred = 0.7 * x_t - 0.3 * (t / T)[:, None]
    want = oracle.eps_loss_terms(BETAS, x0, t, eps, pred, prediction, gamma).mean()
    # A mean of 8 terms whose float32 inputs differ from float64 by ~1e-7 relative.
    assert_close_to_oracle(value, np.float64(want))
    assert float(metrics["loss"]) == float(value)
    value_nojit, _ = fn(MODEL, x0, t, eps)
    np.testing.assert_allclose(value_nojit, value, rtol=1e-6)


def test_exact_predictor_has_zero_loss_and_min_snr_is_one_objective(x64):
    """Data = one point c: the exact predictions are known; a sign or conversion error
    gives a positive loss. A fixed wrong x0 prediction, converted to eps and v, has the
    same min-SNR-weighted loss in all three parametrisations (Hang et al. 2023)."""
    s = d.from_betas(BETAS, dtype=jnp.float64)
    c = jnp.array([1.5, -0.5])
    x0 = jnp.broadcast_to(c, (B, 2))
    _, eps, t = _batch(1)
    eps = jnp.asarray(eps, jnp.float64)
    exact = {
        "eps": lambda x_t, t: forward.x0_to_eps(s, x_t, t, jnp.broadcast_to(c, x_t.shape)),
        "x0": lambda x_t, t: jnp.broadcast_to(c, x_t.shape),
        "v": lambda x_t, t: forward.x0_to_v(s, x_t, t, jnp.broadcast_to(c, x_t.shape)),
    }
    for prediction, fn in exact.items():
        value, _ = loss_from_noise(fn, x0, t, eps, schedule=s, prediction=prediction)
        assert float(value) < 1e-18, prediction
    wrong = c + jnp.array([0.3, 0.1])
    models = {
        "eps": lambda x_t, t: forward.x0_to_eps(s, x_t, t, jnp.broadcast_to(wrong, x_t.shape)),
        "x0": lambda x_t, t: jnp.broadcast_to(wrong, x_t.shape),
        "v": lambda x_t, t: forward.x0_to_v(s, x_t, t, jnp.broadcast_to(wrong, x_t.shape)),
    }
    values = [
        float(loss_from_noise(fn, x0, t, eps, schedule=s, prediction=k, min_snr_gamma=5.0)[0])
        for k, fn in models.items()
    ]
    np.testing.assert_allclose(values, values[0], rtol=1e-9)
    assert values[0] > 1e-3


def test_loss_draws_t_and_eps_from_key_and_has_finite_grads():
    s = d.from_betas(BETAS)
    x0, _, _ = _batch()
    key = jax.random.key(3)
    fn = functools.partial(d.loss, schedule=s, prediction="v", min_snr_gamma=5.0)
    value, _ = fn(MODEL, x0, key)
    t_key, eps_key = jax.random.split(key)
    t = jax.random.randint(t_key, (B,), 0, T)
    eps = jax.random.normal(eps_key, (B, 2))
    want, _ = loss_from_noise(MODEL, x0, t, eps, schedule=s, prediction="v", min_snr_gamma=5.0)
    np.testing.assert_allclose(value, want, rtol=1e-6)
    grads = jax.grad(lambda m: fn(m, x0, key)[0])(MODEL)
    assert all(np.isfinite(float(g)) and float(g) != 0.0 for g in jax.tree_util.tree_leaves(grads))


def test_min_snr_weights_finite_at_zero_snr():
    snr = jnp.array([0.0, 1.0, 5.0, 100.0])
    np.testing.assert_allclose(d.min_snr_weight(snr, 5.0, "eps"), [1.0, 1.0, 1.0, 0.05])
    np.testing.assert_allclose(d.min_snr_weight(snr, 5.0, "x0"), [0.0, 1.0, 5.0, 5.0])
    np.testing.assert_allclose(d.min_snr_weight(snr, 5.0, "v"), [0.0, 0.5, 5 / 6, 5 / 101])


def test_dsm_loss_zero_at_the_exact_score():
    """Point data c: the score of N(c, sigma^2 I) makes sigma s + z vanish; -score does not."""
    c = jnp.array([[0.5, 2.0]] * 512)

    def score(p, x, sigma):
        return p * (x - c) / (sigma**2)[:, None]

    key = jax.random.key(4)
    model = jax.tree_util.Partial(score, jnp.asarray(-1.0))
    value, _ = d.dsm_loss(model, c, key, sigma_min=0.01, sigma_max=10.0)
    assert float(value) < 1e-10
    wrong_model = jax.tree_util.Partial(score, jnp.asarray(1.0))
    wrong, _ = d.dsm_loss(wrong_model, c, key, sigma_min=0.01, sigma_max=10.0)
    # E 1/2 |2 z|^2 = 2 D = 4; over 512 examples the standard error is ~0.13.
    assert 3.4 < float(wrong) < 4.6


def test_edm_preconditioning_and_loss():
    sigma = jnp.array([0.002, 0.5, 80.0])
    got = d.edm_coefficients(sigma, 0.5)
    assert_close_to_oracle(got, oracle.edm_precondition(np.asarray(sigma, np.float64), 0.5))
    # D = c_skip x + c_out F; an F that makes D return the point c gives zero loss.
    c = jnp.array([[0.3, -0.7]] * B)

    def raw(p, x_in, c_noise):
        sig = jnp.exp(4.0 * c_noise)
        c_skip, c_out, c_in, _, _ = d.edm_coefficients(sig, 0.5)
        x = x_in / c_in[:, None]
        return p * (c - c_skip[:, None] * x) / c_out[:, None]

    exact = jax.tree_util.Partial(raw, jnp.asarray(1.0))
    value, metrics = d.edm_loss(exact, c, jax.random.key(5))
    assert float(metrics["mse"]) < 1e-8
    off, _ = d.edm_loss(jax.tree_util.Partial(raw, jnp.asarray(0.0)), c, jax.random.key(5))
    assert float(off) > 0.1
    den = d.edm_precondition(exact)
    np.testing.assert_allclose(den(c + 3.0, jnp.full((B,), 2.0)), c, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda s: d.loss(MODEL, jnp.ones((B, 2)), jax.random.key(0), schedule=s,
                          prediction="score"), "prediction"),
        (lambda s: d.loss(MODEL, jnp.ones((B, 2)), jax.random.key(0), schedule=s,
                          min_snr_gamma=0.0), "min_snr_gamma"),
        (lambda s: d.loss(lambda x, t: x[:, :1], jnp.ones((B, 2)), jax.random.key(0),
                          schedule=s), "model"),
        (lambda s: d.dsm_loss(MODEL, jnp.ones((B, 2)), jax.random.key(0), sigma_min=1.0,
                              sigma_max=0.1), "sigma_max"),
        (lambda s: d.dsm_loss(MODEL, jnp.ones((B, 2)), jax.random.key(0), sigma_min=0.0,
                              sigma_max=0.1), "sigma_min"),
        (lambda s: d.edm_loss(MODEL, jnp.ones((B, 2)), jax.random.key(0), sigma_data=0.0),
         "sigma_data"),
    ],
)  # fmt: skip
def test_bad_arguments_raise(call, name):
    with pytest.raises(ValueError, match=name):
        call(d.from_betas(BETAS))
