"""Consistency models: boundary condition, CT/CD losses vs oracle and vs the exact
consistency function of a Gaussian, the CT schedule, one-step and multistep sampling."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import diffusion as cm
from genjax.diffusion import oracle_sde
from genjax.testing import assert_close_to_oracle

SD = 0.5  # sigma_data
EPS, T, RHO = 0.002, 80.0, 7.0


# A small fixed "network" with a known NumPy twin: F(x_in, c) = tanh(x_in W + c b).
W = np.array([[0.7, -0.3], [0.2, 0.9]])
B = np.array([0.5, -1.0])


def model_fn(params, x_in, c_noise):
    w, b = params
    return jnp.tanh(x_in @ w + c_noise[:, None] * b[None, :])


def net(w, b):
    """The raw network F as a model: a callable pytree over (w, b)."""
    return jax.tree_util.Partial(model_fn, (jnp.asarray(w), jnp.asarray(b)))


def np_model(w, b):
    return lambda x_in, c: np.tanh(x_in @ w + c[:, None] * b[None, :])


def test_boundary_condition_and_scalings(x64):
    x = jax.random.normal(jax.random.key(0), (5, 2))
    f = cm.consistency_model(net(W, B), sigma_data=SD, eps=EPS)
    for fn in (f, jax.jit(lambda x, s: f(x, s)), lambda x, s: cm.consistency_fn(net(W, B), x, s)):
        # f(x, eps) = x exactly, whatever the network.
        np.testing.assert_array_equal(fn(x, jnp.full(5, EPS)), x)
        # ... and not the identity away from eps.
        assert float(jnp.abs(fn(x, jnp.full(5, 1.0)) - x).max()) > 1e-2
    sig = np.array([EPS, 0.1, 1.0, 80.0])
    c_skip, c_out, _, _ = cm.consistency_scalings(jnp.asarray(sig), sigma_data=SD, eps=EPS)
    e_skip, e_out = oracle_sde.consistency_scalings(sig, SD, EPS)
    assert_close_to_oracle((c_skip, c_out), (e_skip, e_out))


def test_karras_boundaries_and_ct_schedule(x64):
    ts = cm.karras_boundaries(jnp.arange(1, 19), 18, sigma_min=EPS, sigma_max=T, rho=RHO)
    assert_close_to_oracle(ts, oracle_sde.karras_boundaries(18, EPS, T, RHO))
    np.testing.assert_allclose([ts[0], ts[-1]], [EPS, T], rtol=1e-12)
    for k in (0, 1, 500, 9999, 10000):
        n, mu = cm.ct_schedule(k, 10000, s0=2, s1=150, mu0=0.9)
        assert int(n) == oracle_sde.ct_num_scales(k, 10000, 2, 150)
        np.testing.assert_allclose(float(mu), np.exp(2 * np.log(0.9) / int(n)), rtol=1e-6)
    assert int(cm.ct_schedule(0, 10, s0=2, s1=150)[0]) == 2
    assert int(cm.ct_schedule(10, 10, s0=2, s1=150)[0]) == 151


def test_ct_and_cd_losses_match_oracle(x64):
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(6, 2))
    z = rng.normal(size=(6, 2))
    n = np.array([1, 2, 5, 9, 3, 8])  # in [1, N-1] with N = 10
    online, target = net(W, B), net(W * 0.9, B + 0.1)
    kw = dict(sigma_min=EPS, sigma_max=T, rho=RHO, sigma_data=SD)
    loss, _ = cm.ct_loss_from_noise(online, jnp.asarray(x0), jnp.asarray(n), jnp.asarray(z),
                                    target_model=target, num_scales=10, **kw)
    expected = oracle_sde.ct_loss(np_model(W, B), np_model(W * 0.9, B + 0.1), x0, n, z, 10, **kw)
    assert_close_to_oracle(loss, np.asarray(expected))
    assert expected > 1e-3
    # The improved-CT options: pseudo-Huber distance and lambda = 1/(t_{n+1} - t_n).
    opts = dict(distance="pseudo_huber", weighting="inverse_step")
    loss, _ = cm.ct_loss_from_noise(online, jnp.asarray(x0), jnp.asarray(n), jnp.asarray(z),
                                    target_model=target, num_scales=10, **kw, **opts)
    expected = oracle_sde.ct_loss(np_model(W, B), np_model(W * 0.9, B + 0.1), x0, n, z, 10,
                                  **kw, **opts)
    assert_close_to_oracle(loss, np.asarray(expected))

    def denoise(x, s):  # a teacher with a known NumPy twin
        return x / (1.0 + s[:, None] ** 2)

    for solver in ("euler", "heun"):
        loss, _ = cm.cd_loss_from_noise(online, jnp.asarray(x0), jnp.asarray(n), jnp.asarray(z),
                                        target_model=target, teacher=denoise, num_scales=10,
                                        solver=solver, **kw)
        expected = oracle_sde.cd_loss(np_model(W, B), np_model(W * 0.9, B + 0.1), denoise, x0,
                                      n, z, 10, solver=solver, **kw)
        assert_close_to_oracle(loss, np.asarray(expected))


# The exact consistency function of the EDM PF-ODE dx/dt = (x - D(x, t))/t for data
# N(mu, s^2 I): p_t = N(mu, (s^2 + t^2) I), D(x, t) = mu + s^2 (x - mu)/(s^2 + t^2), so
# d/dt [(x - mu) / sqrt(s^2 + t^2)] = 0 along trajectories and
#     f*(x, t) = mu + (x - mu) sqrt(s^2 + eps^2) / sqrt(s^2 + t^2)   (affine, f*(x, eps) = x).
MU, S = np.array([[1.0, -2.0]]), 0.7  # MU: (1, 2), broadcast explicitly over the batch


def exact_f(x, t):
    return MU + (x - MU) * jnp.sqrt(S**2 + EPS**2) / jnp.sqrt(S**2 + t[:, None] ** 2)


def exact_model_fn(x_in, c_noise):
    # The network F for which the parameterisation reproduces f*: F = (f* - c_skip x)/c_out
    # (c_out = 0 only at t = eps, where f* = x and any F works).
    t = jnp.exp(4.0 * c_noise)
    x = x_in * jnp.sqrt(t**2 + SD**2)[:, None]
    c_skip, c_out, _, _ = cm.consistency_scalings(t, sigma_data=SD, eps=EPS)
    safe = jnp.where(c_out > 0, c_out, 1.0)
    return jnp.where((c_out > 0)[:, None], (exact_f(x, t) - c_skip[:, None] * x) / safe[:, None],
                     0.0)


def exact_denoiser(x, t):
    return MU + S**2 * (x - MU) / (S**2 + t[:, None] ** 2)


def test_cd_loss_vanishes_for_exact_consistency_function(x64):
    x0 = MU + S * jax.random.normal(jax.random.key(0), (256, 2), jnp.float64)
    key = jax.random.key(1)
    kw = dict(teacher=exact_denoiser, sigma_min=EPS, sigma_max=T, rho=RHO, sigma_data=SD)
    losses = {}
    for solver in ("euler", "heun"):
        for num_scales in (200, 400):
            losses[solver, num_scales] = float(
                cm.cd_loss(exact_model_fn, x0, key, num_scales=num_scales, solver=solver, **kw)[0]
            )
    # The loss is only the teacher's one-step error, squared: Euler's local error O(h^2)
    # gives a loss O(h^4) (ratio 16 when N doubles), Heun's O(h^3) gives O(h^6) (ratio 64).
    # Same key, so the same n/N fractions and z at both N (up to the integer draws):
    # accept a ratio within a factor 2 of the ideal.
    assert 8 < losses["euler", 200] / losses["euler", 400] < 32
    assert 32 < losses["heun", 200] / losses["heun", 400] < 128
    assert losses["heun", 400] < 1e-6
    # A slightly wrong consistency function gives a loss orders of magnitude larger.
    wrong = lambda x_in, c: 1.05 * exact_model_fn(x_in, c)
    bad = float(cm.cd_loss(wrong, x0, key, num_scales=400, solver="heun", **kw)[0])
    assert bad > 1e3 * losses["heun", 400]


def test_sampling_one_and_multistep_exact(x64):
    f = lambda x, t: exact_f(x, t)
    key = jax.random.key(2)
    one = cm.consistency_sample(key, f, (4000, 2), sigmas=(T,), sigma_min=EPS,
                                dtype=jnp.float64)
    multi = cm.consistency_sample(key, f, (4000, 2), sigmas=(T, 2.0, 0.5), sigma_min=EPS,
                                  dtype=jnp.float64)
    # With the exact f the samples follow p_eps = N(mu, (s^2 + eps^2) I) in both cases:
    # mean within 5 standard errors (std/sqrt(4000) ~ 0.011), std within 5%.
    for x in (one, multi):
        np.testing.assert_allclose(x.mean(0), MU[0], atol=0.06)
        np.testing.assert_allclose(x.std(0), np.sqrt(S**2 + EPS**2), rtol=0.05)
    noise = np.random.default_rng(0).normal(size=(3, 5, 2))
    np_f = lambda x, t: MU + (x - MU) * np.sqrt(S**2 + EPS**2) / np.sqrt(S**2 + t[:, None] ** 2)
    expected = oracle_sde.consistency_multistep(np_f, noise, (T, 2.0, 0.5), EPS)
    actual = cm.consistency_sample_from_noise(f, T * jnp.asarray(noise[0]), jnp.asarray(noise[1:]),
                                              sigmas=(T, 2.0, 0.5), sigma_min=EPS)
    assert_close_to_oracle(actual, expected)


def test_bad_arguments_raise():
    f = lambda x, t: x
    with pytest.raises(ValueError, match="sigmas"):
        cm.consistency_sample(jax.random.key(0), f, (2, 2), sigmas=(1.0, 2.0))
    with pytest.raises(ValueError, match="sigmas"):
        cm.consistency_sample(jax.random.key(0), f, (2, 2), sigmas=(0.001,))
    with pytest.raises(ValueError, match="solver"):
        cm.cd_loss(net(W, B), jnp.ones((2, 2)), jax.random.key(0), teacher=f, num_scales=10,
                   solver="rk4")
    with pytest.raises(ValueError, match="distance"):
        cm.ct_loss(net(W, B), jnp.ones((2, 2)), jax.random.key(0), num_scales=10, distance="l1")
    with pytest.raises(ValueError, match="total_steps"):
        cm.ct_schedule(0, 0)


def test_lognormal_index_sampling_matches_ict_probabilities():
    from math import erf, log, sqrt

    from genjax.testing import chi_square_test

    num_scales, n_draws = 12, 20000
    n = cm.sample_indices(jax.random.key(0), n_draws, num_scales, noise_sampling="lognormal")
    assert int(n.min()) >= 1 and int(n.max()) <= num_scales - 1
    # Song & Dhariwal (2023): p(n) ∝ erf((log t_{n+1} - P_mean)/(sqrt2 P_std)) - erf(... t_n).
    ts = oracle_sde.karras_boundaries(num_scales, EPS, T, RHO)
    cdf = [erf((log(t) + 1.1) / (sqrt(2) * 2.0)) for t in ts]
    probs = np.diff(cdf)
    counts = np.bincount(np.asarray(n) - 1, minlength=num_scales - 1)
    chi_square_test(counts, probs / probs.sum())
    uniform = cm.sample_indices(jax.random.key(0), n_draws, num_scales)
    chi_square_test(np.bincount(np.asarray(uniform) - 1, minlength=num_scales - 1),
                    np.full(num_scales - 1, 1 / (num_scales - 1)))
    with pytest.raises(ValueError, match="noise_sampling"):
        cm.sample_indices(jax.random.key(0), 4, 10, noise_sampling="beta")
