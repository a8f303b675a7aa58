"""Score SDEs: coefficients, one PC step and the PC loop against the NumPy oracle,
the exact mixture score, the sampler covering the ring."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import metrics, targets
from genjax.diffusion import analytic_score_fn, oracle_sde, pc_sampler, sde
from genjax.testing import assert_close_to_oracle

SDES = [
    ("vp", (0.1, 20.0), sde.VPSDE(0.1, 20.0)),
    ("subvp", (0.1, 20.0), sde.SubVPSDE(0.1, 20.0)),
    ("ve", (0.01, 50.0), sde.VESDE(0.01, 50.0)),
]
TS = [1e-3, 0.1, 0.5, 1.0]


@pytest.mark.parametrize("kind, params, s", SDES)
def test_coefficients_match_oracle(x64, kind, params, s):
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    for t in TS:
        c = oracle_sde.coefficients(kind, params, t)
        tb = jnp.full(2, t)
        assert_close_to_oracle(s.drift(jnp.asarray(x), tb), c["f_coef"] * x)
        assert_close_to_oracle(s.diffusion(tb), np.full(2, c["g"]))
        assert_close_to_oracle(s.alpha(tb), np.full(2, c["alpha"]))
        assert_close_to_oracle(s.sigma(tb), np.full(2, c["sigma"]))
    expected = oracle_sde.prior_log_prob(kind, params, x)
    assert_close_to_oracle(s.prior_log_prob(jnp.asarray(x)), expected)


@pytest.mark.parametrize("kind, params, s", SDES)
def test_marginal_solves_the_moment_odes(x64, kind, params, s):
    # Independent of the formulas: for dx = f_coef(t) x dt + g dw the mean coefficient and the
    # variance obey d alpha/dt = f_coef alpha and d sigma^2/dt = 2 f_coef sigma^2 + g^2.
    for t in (0.05, 0.3, 0.9):
        t = jnp.asarray(t)
        f_coef = s.drift(jnp.ones((1, 1)), t[None])[0, 0]
        dalpha = jax.grad(s.alpha)(t)
        dvar = jax.grad(lambda u: s.sigma(u) ** 2)(t)
        np.testing.assert_allclose(dalpha, f_coef * s.alpha(t), rtol=1e-10)
        np.testing.assert_allclose(dvar, 2 * f_coef * s.sigma(t) ** 2 + s.diffusion(t) ** 2,
                                   rtol=1e-10)


def _ring_scores(kind, params, s):
    target = targets.ring(n_modes=8, radius=4.0, std=0.3)
    means = np.asarray(target.means, np.float64)

    def np_score(x, t):
        c = oracle_sde.coefficients(kind, params, t)
        var = c["alpha"] ** 2 * 0.3**2 + c["sigma"] ** 2
        return oracle_sde.isotropic_mixture_score(np.full(8, 1 / 8), c["alpha"] * means, var, x)

    return analytic_score_fn(target, s), np_score


@pytest.mark.parametrize("kind, params, s", SDES)
def test_exact_score_and_pf_drift_match_oracle(x64, kind, params, s):
    score_fn, np_score = _ring_scores(kind, params, s)
    x = np.random.default_rng(0).normal(size=(6, 2)) * 3
    for t in (0.01, 0.4):
        tb = jnp.full(6, t)
        assert_close_to_oracle(score_fn(jnp.asarray(x), tb), np_score(x, t))
        assert_close_to_oracle(
            sde.probability_flow_drift(score_fn, s, jnp.asarray(x), tb),
            oracle_sde.probability_flow_drift(kind, params, np_score, x, t),
        )


@pytest.mark.parametrize("predictor", ["euler_maruyama", "reverse_diffusion"])
@pytest.mark.parametrize("kind, params, s", SDES)
def test_pc_step_matches_oracle(x64, kind, params, s, predictor):
    score_fn, np_score = _ring_scores(kind, params, s)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 2)) * 2
    zp, zc = rng.normal(size=(5, 2)), rng.normal(size=(2, 5, 2))
    t, h = 0.6, 0.01
    expected = oracle_sde.pc_step(kind, params, np_score, x, t, h, zp, zc,
                                  predictor=predictor, snr=0.16)
    state, info = pc_sampler.pc_step(
        score_fn, pc_sampler.SDEState(jnp.asarray(x), jnp.asarray(t)),
        (jnp.asarray(zp), jnp.asarray(zc)), sde=s, h=jnp.asarray(h), predictor=predictor,
        snr=0.16,
    )
    assert_close_to_oracle((state.x, info.x_mean), expected)
    np.testing.assert_allclose(state.t, t - h, rtol=1e-12)
    assert int(info.num_evals) == 3  # two corrector steps and the predictor
    # The step moves the point (not an identity) and the noise enters.
    assert np.abs(np.asarray(state.x) - x).max() > 1e-3
    assert np.abs(np.asarray(state.x) - np.asarray(info.x_mean)).max() > 1e-3


@pytest.mark.parametrize("kind, params, s", [SDES[0], SDES[2]])
def test_pc_loop_matches_oracle_on_shared_noise(x64, kind, params, s):
    score_fn, np_score = _ring_scores(kind, params, s)
    rng = np.random.default_rng(2)
    n, batch = 12, 8
    x_T = rng.normal(size=(batch, 2)) * s.prior_std()
    zp, zc = rng.normal(size=(n, batch, 2)), rng.normal(size=(n, 1, batch, 2))
    expected = oracle_sde.pc_sample_from_noise(kind, params, np_score, x_T, zp, zc,
                                               predictor="reverse_diffusion", snr=0.1, eps=1e-3)
    actual = pc_sampler.pc_sample_from_noise(score_fn, jnp.asarray(x_T),
                                             (jnp.asarray(zp), jnp.asarray(zc)), s,
                                             predictor="reverse_diffusion", snr=0.1, eps=1e-3)
    assert_close_to_oracle(actual, expected, kind="long_loop")


@pytest.mark.slow
def test_pc_sampler_covers_the_ring():
    target = targets.ring(n_modes=8, radius=4.0, std=0.3)
    s = sde.VPSDE()
    x = pc_sampler.pc_sample(jax.random.key(0), analytic_score_fn(target, s), (512, 2), s,
                             num_steps=100, predictor="euler_maruyama", corrector_steps=1,
                             snr=0.05)
    assert x.shape == (512, 2) and x.dtype == jnp.float32
    # Every one of the 8 modes is hit (within 3 std of its centre).
    assert float(metrics.mode_coverage(x, target.means, 0.9)) == 1.0
    # Samples sit on the ring: radius 4 +- noise (a sign error would give the prior's ~1.25).
    radius = jnp.linalg.norm(x, axis=1)
    assert abs(float(jnp.median(radius)) - 4.0) < 0.15
    # Energy distance to fresh target samples is small (target vs itself at n=512 ~ 0.01).
    ref = target.sample(jax.random.key(1), 512)
    assert float(metrics.energy_distance(x, ref)) < 0.05


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="beta_max"):
        sde.VPSDE(1.0, 0.5)
    with pytest.raises(ValueError, match="sigma_max"):
        sde.VESDE(1.0, 0.5)
    score = analytic_score_fn(targets.ring(), sde.VPSDE())
    run = lambda **kw: pc_sampler.pc_sample(jax.random.key(0), score, (4, 2), sde.VPSDE(), **kw)
    with pytest.raises(ValueError, match="predictor"):
        run(num_steps=3, predictor="x")
    with pytest.raises(ValueError, match="num_steps"):
        run(num_steps=0)
    with pytest.raises(ValueError, match="eps"):
        run(num_steps=3, eps=0.0)
    with pytest.raises(ValueError, match="corrector_noise"):
        noises = (jnp.zeros((3, 4, 2)), jnp.zeros((2, 1, 4, 2)))  # 3 predictor steps, 2 corrector
        pc_sampler.pc_sample_from_noise(score, jnp.zeros((4, 2)), noises, sde.VPSDE())


def test_prior_sample_key_first():
    s = sde.VESDE(0.01, 50.0)
    x = sde.prior_sample(jax.random.key(0), s, (4000, 2))
    assert x.shape == (4000, 2) and x.dtype == jnp.float32
    # N(0, 50^2 I): the sample std within 5% (SE of a std over 8000 draws ~ 0.8%).
    np.testing.assert_allclose(float(jnp.std(x)), 50.0, rtol=0.05)
    np.testing.assert_array_equal(x, s.prior_sample(jax.random.key(0), (4000, 2)))
