"""Probability-flow ODE: exact log-likelihoods of known densities, Hutchinson, sampling."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import metrics, targets
from genjax.diffusion import analytic_score_fn, likelihood, sde

EPS = 1e-3


def _exact_logp(target, s, x, t):
    return target.noised(s.alpha(jnp.asarray(t)), s.sigma(jnp.asarray(t))).log_prob(x)


@pytest.mark.parametrize("s", [sde.VPSDE(), sde.VESDE(0.01, 10.0)])
def test_log_likelihood_equals_true_density_2d(x64, s):
    target = targets.ring(n_modes=8, radius=4.0, std=0.3)
    x = target.sample(jax.random.key(0), 8)
    score = analytic_score_fn(target, s)
    # Exact p_1 as the prior: the only error left is the ODE solver's (dopri5, rtol 1e-6),
    # so 1e-3 nats is a loose bound on it.
    p1 = target.noised(s.alpha(jnp.asarray(1.0)), s.sigma(jnp.asarray(1.0)))
    log_p, z = likelihood.log_likelihood(None, score, x, s, eps=EPS, method="dopri5",
                                         rtol=1e-6, atol=1e-6, prior_log_prob_fn=p1.log_prob)
    expected = _exact_logp(target, s, x, EPS)
    np.testing.assert_allclose(log_p, expected, atol=1e-3)
    # The divergence integral is large (0.9-1.7 nats here, ~1000x the tolerance), so a
    # wrong sign or a missing divergence term is caught.
    assert float(jnp.min(jnp.abs(p1.log_prob(z) - expected))) > 0.5


def test_log_likelihood_default_prior_and_fixed_steps(x64):
    # VP with the standard N(0, I) prior: p_1 differs from N(0, I) by alpha(1) ~ 7e-3 in the
    # mean, so log N(z) - log p_1(z) ~ alpha(1) * 4 * |z| ~ 0.05 nats; rk4 with 200 steps.
    target = targets.ring(n_modes=8, radius=4.0, std=0.3)
    s = sde.VPSDE()
    x = target.sample(jax.random.key(1), 8)
    log_p, _ = likelihood.log_likelihood(None, analytic_score_fn(target, s), x, s, eps=EPS,
                                         num_steps=200, method="rk4")
    np.testing.assert_allclose(log_p, _exact_logp(target, s, x, EPS), atol=0.1)


def _gaussian_8d():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    cov = q @ np.diag(np.linspace(0.2, 2.0, 8)) @ q.T  # anisotropic: Hutchinson is not exact
    return targets.GaussianMixture.create(np.ones(1), rng.normal(size=(1, 8)), cov[None])


def test_log_likelihood_8d_exact_trace_and_hutchinson(x64):
    target = _gaussian_8d()
    s = sde.VPSDE()
    score = analytic_score_fn(target, s)
    x = target.sample(jax.random.key(2), 16)
    p1 = target.noised(s.alpha(jnp.asarray(1.0)), s.sigma(jnp.asarray(1.0)))
    expected = _exact_logp(target, s, x, EPS)
    kw = dict(eps=EPS, num_steps=100, method="rk4", prior_log_prob_fn=p1.log_prob)
    exact, _ = likelihood.log_likelihood(None, score, x, s, **kw)
    # rk4 with 100 steps on this smooth linear ODE: error << 1e-3 nats.
    np.testing.assert_allclose(exact, expected, atol=1e-3)
    for probe in ("rademacher", "gaussian"):
        hutch, _ = likelihood.log_likelihood(jax.random.key(3), score, x, s, trace="hutchinson",
                                             probe=probe, num_probes=4, **kw)
        err = np.asarray(hutch - expected)
        # The probes make it noisy (std > 0: not secretly the exact trace) but unbiased:
        # the mean error over 16 points is within 4 standard errors of 0.
        assert err.std() > 1e-3
        assert abs(err.mean()) < 4 * err.std() / np.sqrt(len(err)) + 1e-3


@pytest.mark.slow
def test_round_trip_and_pf_sampler_covers_ring():
    target = targets.ring(n_modes=8, radius=4.0, std=0.3)
    s = sde.VPSDE()
    score = analytic_score_fn(target, s)
    x = target.sample(jax.random.key(4), 64)
    _, z = likelihood.log_likelihood(None, score, x, s, eps=EPS, num_steps=100)
    x_back = likelihood.pf_ode_sample_from_noise(score, z, s, eps=EPS, num_steps=100)
    # Encoding then decoding with rk4 (100 steps each way) returns the data (float32).
    np.testing.assert_allclose(x_back, x, atol=2e-2)
    samples = likelihood.pf_ode_sample(jax.random.key(5), score, (512, 2), s, num_steps=50)
    assert float(metrics.mode_coverage(samples, target.means, 0.9)) == 1.0
    assert abs(float(jnp.median(jnp.linalg.norm(samples, axis=1))) - 4.0) < 0.15


def test_bad_arguments_raise():
    s = sde.VPSDE()
    score = analytic_score_fn(targets.ring(), s)
    x = jnp.ones((2, 2))
    with pytest.raises(ValueError, match="trace"):
        likelihood.log_likelihood(None, score, x, s, trace="bad")
    with pytest.raises(ValueError, match="key"):
        likelihood.log_likelihood(None, score, x, s, trace="hutchinson")
    with pytest.raises(ValueError, match="eps"):
        likelihood.log_likelihood(None, score, x, s, eps=1.5)
    with pytest.raises(ValueError, match="num_probes"):
        likelihood.log_likelihood(jax.random.key(0), score, x, s, trace="hutchinson",
                                  num_probes=0)
