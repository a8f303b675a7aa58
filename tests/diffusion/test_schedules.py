"""Schedules against the NumPy oracle, their invariants, and argument validation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.diffusion import oracle, schedules
from genjax.testing import assert_close_to_oracle

CASES = [
    ("linear", lambda dt: schedules.linear(100, 1e-4, 0.02, dtype=dt),
     lambda: oracle.linear_betas(100, 1e-4, 0.02)),
    ("cosine", lambda dt: schedules.cosine(100, dtype=dt), lambda: oracle.cosine_betas(100)),
    ("sigmoid", lambda dt: schedules.sigmoid(100, -3.0, 3.0, 0.7, dtype=dt),
     lambda: oracle.sigmoid_betas(100, -3.0, 3.0, 0.7)),
]  # fmt: skip


@pytest.mark.parametrize("name,build,oracle_betas", CASES, ids=[c[0] for c in CASES])
def test_schedule_matches_oracle(name, build, oracle_betas):
    s = build(jnp.float32)
    betas = oracle_betas()
    # float32 fields computed in float64 and cast once: single_op tolerance.
    assert_close_to_oracle(s.betas, betas, err_msg=f"{name} betas")
    assert_close_to_oracle(s.alphas, 1 - betas, err_msg=f"{name} alphas")
    assert_close_to_oracle(s.alpha_bars, oracle.alpha_bars(betas), err_msg=f"{name} alpha_bars")
    assert s.betas.dtype == jnp.float32 and s.num_steps == 100


def test_schedule_float64_matches_oracle(x64):
    s = schedules.cosine(1000, dtype=jnp.float64)
    assert s.alpha_bars.dtype == jnp.float64
    assert_close_to_oracle(s.alpha_bars, oracle.alpha_bars(oracle.cosine_betas(1000)))


def test_accessors_and_monotonicity():
    s = schedules.linear(1000)
    t = jnp.arange(1000)
    a, sg = s.alpha(t), s.sigma(t)
    np.testing.assert_allclose(a**2 + sg**2, 1.0, rtol=2e-7)  # variance preserving
    # log SNR and sigma against float64 from the betas: accurate even at t = 0, where
    # 1 - alpha_bar_0 = beta_0 = 1e-4 (the stored float32 alpha_bar would lose 4 digits).
    ab64 = oracle.alpha_bars(oracle.linear_betas(1000))
    assert_close_to_oracle(s.log_snr(t), np.log(ab64) - np.log1p(-ab64))
    assert_close_to_oracle(sg, np.sqrt(1 - ab64))
    ab = np.asarray(s.alpha_bars, np.float64)
    assert np.all(np.diff(ab) < 0) and np.all(np.diff(np.asarray(s.log_snr(t))) < 0)
    # Known values of Ho et al.'s schedule: alpha_bar_0 = 1 - 1e-4, alpha_bar_999 ~ 4.0e-5.
    assert abs(float(s.alpha_bars[0]) - (1 - 1e-4)) < 1e-7
    assert 3.5e-5 < float(s.alpha_bars[-1]) < 4.5e-5


def test_schedule_is_a_pytree_under_jit():
    s = schedules.linear(50)

    @jax.jit
    def f(sched):
        return sched.alpha(jnp.array([0, 49])) * 2.0

    np.testing.assert_allclose(f(s), 2.0 * np.sqrt(np.asarray(s.alpha_bars)[[0, 49]]))
    leaves = jax.tree_util.tree_leaves(s)
    assert len(leaves) == 3


def test_zero_terminal_snr_matches_oracle():
    base = schedules.linear(200, dtype=jnp.float32)
    z = schedules.rescale_zero_terminal_snr(base)
    betas = oracle.zero_terminal_snr_betas(oracle.linear_betas(200))
    assert_close_to_oracle(z.betas, betas)
    assert float(z.alpha_bars[-1]) == 0.0 and float(z.betas[-1]) == 1.0
    # Algorithm 1 keeps the first alpha_bar.
    np.testing.assert_allclose(z.alpha_bars[0], base.alpha_bars[0], rtol=1e-6)
    snr = z.log_snr(jnp.arange(200))
    assert np.isneginf(float(snr[-1])) and np.all(np.isfinite(np.asarray(snr[:-1])))


def test_karras_sigmas_match_oracle():
    sig = schedules.karras_sigmas(18)
    assert sig.shape == (19,) and float(sig[-1]) == 0.0
    assert_close_to_oracle(sig, oracle.karras_sigmas(18))
    np.testing.assert_allclose([sig[0], sig[-2]], [80.0, 0.002], rtol=1e-6)
    one = schedules.karras_sigmas(1)
    np.testing.assert_array_equal(one, [80.0, 0.0])


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda: schedules.from_betas([0.1, 1.0]), "betas"),
        (lambda: schedules.from_betas([0.0, 0.1]), "betas"),
        (lambda: schedules.from_betas([[0.1]]), "betas"),
        (lambda: schedules.from_betas([0.1, np.nan]), "betas"),
        (lambda: schedules.linear(0), "num_steps"),
        (lambda: schedules.linear(10, beta_start=-1e-4), "beta_start"),
        (lambda: schedules.linear(10, beta_end=1.5), "beta_end"),
        (lambda: schedules.cosine(10, s=-0.1), "s"),
        (lambda: schedules.sigmoid(10, start=3.0, end=-3.0), "start"),
        (lambda: schedules.sigmoid(10, tau=0.0), "tau"),
        (lambda: schedules.karras_sigmas(0), "num_steps"),
        (lambda: schedules.karras_sigmas(5, sigma_min=0.0), "sigma_min"),
        (lambda: schedules.karras_sigmas(5, rho=-1.0), "rho"),
        (lambda: schedules.karras_sigmas(5, sigma_min=1.0, sigma_max=0.5), "sigma_max"),
        (lambda: schedules.rescale_zero_terminal_snr(schedules.linear(1)), "schedule"),
    ],
)
def test_bad_arguments_raise(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_extreme_valid_schedules_finite():
    for s in (schedules.linear(1), schedules.cosine(2), schedules.cosine(1000, s=0.0),
              schedules.sigmoid(3)):  # fmt: skip
        for field in (s.betas, s.alphas, s.alpha_bars):
            assert np.all(np.isfinite(np.asarray(field)))
        assert np.all((np.asarray(s.betas) > 0) & (np.asarray(s.betas) < 1))
