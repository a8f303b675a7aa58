"""Forward process and prediction conversions against the oracle and closed forms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.diffusion import forward, oracle, schedules
from genjax.testing import assert_close_to_oracle

T = 50
BETAS = oracle.linear_betas(T, 1e-3, 0.1)


def _data(seed=0, b=6):
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal((b, 3, 2)).astype(np.float32)
    eps = rng.standard_normal((b, 3, 2)).astype(np.float32)
    t = np.array([0, 1, 10, 25, 48, T - 1], dtype=np.int32)[:b]
    return x0, eps, t


@pytest.mark.parametrize("jit", [False, True])
def test_q_sample_and_posterior_match_oracle(jit):
    s = schedules.from_betas(BETAS)
    x0, eps, t = _data()
    qs = jax.jit(forward.q_sample) if jit else forward.q_sample
    qp = jax.jit(forward.q_posterior) if jit else forward.q_posterior
    x_t = qs(s, x0, t, eps)
    assert_close_to_oracle(x_t, oracle.q_sample(BETAS, x0, t, eps))
    mean, var_tilde, var_beta = qp(s, x0, x_t, t)
    o_mean, o_tilde, o_beta = oracle.q_posterior(BETAS, x0, np.asarray(x_t, np.float64), t)
    assert_close_to_oracle((mean, var_tilde, var_beta), (o_mean, o_tilde, o_beta))
    # At t = 0 the posterior is the point mass at x0.
    np.testing.assert_allclose(mean[0], x0[0], rtol=1e-5, atol=1e-6)
    assert float(var_tilde[0]) == 0.0


def test_posterior_is_the_conditional_of_the_joint(x64):
    """Monte Carlo-free check: mean is the regression of x_{t-1} on (x_t, x0).

    For the Markov chain, Cov(x_{t-1}, x_t | x0) = sqrt(alpha_t) (1 - ab_{t-1}) and
    Var(x_t | x0) = 1 - ab_t, so E[x_{t-1} | x_t, x0] = sqrt(ab_{t-1}) x0 +
    sqrt(alpha_t)(1 - ab_{t-1})/(1 - ab_t) (x_t - sqrt(ab_t) x0).
    """
    s = schedules.from_betas(BETAS, dtype=jnp.float64)
    x0, _, t = _data()
    x_t = np.random.default_rng(3).standard_normal(x0.shape)
    ab = oracle.alpha_bars(BETAS)
    ab_prev = np.where(t > 0, ab[np.maximum(t - 1, 0)], 1.0)[:, None, None]
    ab_t = ab[t][:, None, None]
    alpha_t = (1 - BETAS[t])[:, None, None]
    expect = np.sqrt(ab_prev) * x0 + np.sqrt(alpha_t) * (1 - ab_prev) / (1 - ab_t) * (
        x_t - np.sqrt(ab_t) * x0
    )
    mean, var_tilde, _ = forward.q_posterior(s, x0.astype(np.float64), x_t, t)
    np.testing.assert_allclose(mean, expect, rtol=1e-12, atol=1e-12)
    # Conditional variance: Var(x_{t-1}|x0) - Cov^2 / Var(x_t|x0)
    var = (1 - ab_prev) - alpha_t * (1 - ab_prev) ** 2 / (1 - ab_t)
    np.testing.assert_allclose(var_tilde, var[:, 0, 0], rtol=1e-10, atol=1e-14)


def test_conversions_round_trip_and_agree(x64):
    s = schedules.from_betas(BETAS, dtype=jnp.float64)
    x0, eps, t = _data()
    x0, eps = x0.astype(np.float64), eps.astype(np.float64)
    x_t = forward.q_sample(s, x0, t, eps)
    np.testing.assert_allclose(forward.eps_to_x0(s, x_t, t, eps), x0, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(forward.x0_to_eps(s, x_t, t, x0), eps, rtol=1e-9, atol=1e-9)
    a = np.sqrt(oracle.alpha_bars(BETAS)[t])[:, None, None]
    v = a * eps - np.sqrt(1 - a**2) * x0  # Salimans & Ho 2022
    np.testing.assert_allclose(forward.eps_to_v(s, x_t, t, eps), v, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(forward.x0_to_v(s, x_t, t, x0), v, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(forward.v_to_eps(s, x_t, t, v), eps, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(forward.v_to_x0(s, x_t, t, v), x0, rtol=1e-12, atol=1e-12)
    score = forward.eps_to_score(s, t, eps)
    np.testing.assert_allclose(forward.score_to_eps(s, t, score), eps, rtol=1e-12)


def test_eps_to_score_is_the_gaussian_score(x64):
    """x0 ~ N(m, c^2 I): the exact score of x_t is -(x - alpha m)/(alpha^2 c^2 + sigma^2) and
    the exact E[eps | x_t] = sigma (x - alpha m)/(alpha^2 c^2 + sigma^2); a sign error fails."""
    s = schedules.from_betas(BETAS, dtype=jnp.float64)
    m, c = 1.5, 0.4
    t = np.array([3, 30], np.int32)
    x = np.array([[2.0, -1.0], [0.5, 0.2]])
    ab = oracle.alpha_bars(BETAS)[t][:, None]
    alpha, sigma = np.sqrt(ab), np.sqrt(1 - ab)
    var = alpha**2 * c**2 + sigma**2
    eps = sigma * (x - alpha * m) / var
    np.testing.assert_allclose(
        forward.eps_to_score(s, t, eps), -(x - alpha * m) / var, rtol=1e-12
    )


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda s, x: forward.q_sample(s, x, jnp.zeros((3,), jnp.int32), x), "t"),
        (lambda s, x: forward.q_sample(s, x, jnp.zeros((4,), jnp.float32), x), "t"),
        (lambda s, x: forward.q_sample(s, x, jnp.zeros((4,), jnp.int32), x[:, :1]), "eps"),
        (lambda s, x: forward.q_posterior(s, x, x[:2], jnp.zeros((4,), jnp.int32)), "x_t"),
        (lambda s, x: forward.eps_to_x0(s, x, jnp.zeros((4, 1), jnp.int32), x), "t"),
    ],
)
def test_bad_shapes_raise(call, name):
    with pytest.raises(ValueError, match=name):
        call(schedules.linear(10), jnp.ones((4, 2)))


def test_extreme_times_finite():
    s = schedules.linear(1000)
    x = jnp.ones((2, 2))
    t = jnp.array([0, 999], jnp.int32)
    for out in (
        forward.q_sample(s, x, t, x),
        *forward.q_posterior(s, x, x, t),
        forward.eps_to_x0(s, x, t, x),
        forward.eps_to_score(s, t, x),
        forward.eps_to_v(s, x, t, x),
    ):
        assert np.all(np.isfinite(np.asarray(out)))
