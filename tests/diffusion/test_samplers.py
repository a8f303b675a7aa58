"""Every sampler against the NumPy oracle on shared noise, identities, validation, extremes.

Oracle comparisons run in float64 (x64 fixture) with the "long_loop" float64 tolerance of
genjax.testing, and one float32 run per family with the float32 "long_loop" tolerance. The
oracle gets its own exact model from genjax.oracle_targets (NumPy), the JAX samplers the
analytic model: two independent implementations of the same mathematics.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import diffusion as d
from genjax import oracle_targets as ot
from genjax import targets
from genjax.diffusion import oracle
from genjax.testing import assert_close_to_oracle

T = 40
BETAS = oracle.linear_betas(T, 1e-3, 0.2)  # short schedule: every step visible
B = 8


def _ring_np():
    r = targets.ring(n_modes=4, radius=2.0, std=0.5)
    return tuple(np.asarray(a, np.float64) for a in (r.weights, r.means, r.covs))


W, M, C = _ring_np()
AB = oracle.alpha_bars(BETAS)


def np_eps(x, t):
    out = np.empty_like(x)
    for tt in np.unique(t):
        a, s = np.sqrt(AB[tt]), np.sqrt(1 - AB[tt])
        idx = t == tt
        out[idx] = -s * ot.mixture_score(*ot.mixture_noised(W, M, C, a, s), x[idx])
    return out


def np_den(x, sigma):
    return ot.mixture_posterior_mean_x0(W, M, C, x, 1.0, float(sigma[0]))


def _models(dtype):
    target = targets.GaussianMixture(
        jnp.asarray(W, dtype), jnp.asarray(M, dtype), jnp.asarray(C, dtype)
    )
    s = d.from_betas(BETAS, dtype=dtype)
    return s, d.analytic_eps_fn(target, s), d.analytic_denoiser(target)


def _noise(seed=0, n=T):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((B, 2)), rng.standard_normal((n, B, 2))


def test_discrete_samplers_match_oracle_float64(x64):
    s, eps, _ = _models(jnp.float64)
    x_T, noises = _noise()
    for variance in ("beta", "beta_tilde"):
        got = d.ddpm_sample_from_noise(eps, x_T, noises, s, variance=variance)
        want = oracle.ddpm_loop(np_eps, BETAS, x_T, noises, variance)
        assert_close_to_oracle(got, want, kind="long_loop", err_msg=f"ddpm {variance}")
    for eta in (0.0, 1.0):
        got = d.ddim_sample_from_noise(eps, x_T, noises[:7], s, num_steps=7, eta=eta)
        want = oracle.ddim_loop(np_eps, BETAS, x_T, 7, eta, noises[:7])
        assert_close_to_oracle(got, want, kind="long_loop", err_msg=f"ddim eta={eta}")
    for order, method in ((1, "multistep"), (2, "multistep"), (3, "multistep"), (2, "singlestep")):
        for steps in (6, 9):
            got = d.dpm_solver_pp_sample_from_noise(
                eps, x_T, s, num_steps=steps, order=order, method=method
            )
            want = oracle.dpm_solver_pp_loop(np_eps, BETAS, x_T, steps, order, method)
            assert_close_to_oracle(
                got, want, kind="long_loop", err_msg=f"dpm++ {order} {method} S={steps}"
            )


def test_edm_samplers_match_oracle_float64(x64):
    _, _, den = _models(jnp.float64)
    z, noises = _noise(1, 6)
    sig = oracle.karras_sigmas(6, 0.002, 20.0)
    x_T = sig[0] * z
    assert_close_to_oracle(
        d.euler_sample_from_noise(den, x_T, sig), oracle.euler_loop(np_den, x_T, sig),
        kind="long_loop",
    )  # fmt: skip
    assert_close_to_oracle(
        d.heun_sample_from_noise(den, x_T, None, sig), oracle.heun_loop(np_den, x_T, sig),
        kind="long_loop",
    )  # fmt: skip
    churn = dict(s_churn=2.0, s_tmin=0.05, s_tmax=10.0, s_noise=1.003)
    got = d.heun_sample_from_noise(den, x_T, noises, sig, **churn)
    want = oracle.heun_loop(np_den, x_T, sig, noises, *churn.values())
    assert_close_to_oracle(got, want, kind="long_loop", err_msg="heun churn")
    assert not np.allclose(got, oracle.heun_loop(np_den, x_T, sig)), "churn had no effect"


def test_samplers_match_oracle_float32():
    s, eps, den = _models(jnp.float32)
    x_T, noises = _noise(2)
    x32, n32 = x_T.astype(np.float32), noises.astype(np.float32)
    got = d.ddpm_sample_from_noise(eps, x32, n32, s, variance="beta")
    want = oracle.ddpm_loop(np_eps, BETAS, x32, n32, "beta")
    assert_close_to_oracle(got, want, kind="long_loop", err_msg="ddpm float32")
    got = d.dpm_solver_pp_sample_from_noise(eps, x32, s, num_steps=8)
    want = oracle.dpm_solver_pp_loop(np_eps, BETAS, x32, 8, 2, "multistep")
    assert_close_to_oracle(got, want, kind="long_loop", err_msg="dpm++ 2M float32")
    sig = oracle.karras_sigmas(5, 0.002, 20.0)
    got = d.heun_sample_from_noise(den, sig[0] * x32, None, sig)
    assert_close_to_oracle(
        got, oracle.heun_loop(np_den, sig[0] * x32, sig), kind="long_loop", err_msg="heun f32"
    )


def test_identities(x64):
    s, eps, _ = _models(jnp.float64)
    x_T, noises = _noise(3)
    # DDIM(eta = 0) is first-order DPM-Solver(++) (Lu et al. 2022a, sec. 4.1).
    for steps in (1, 5, 13):
        np.testing.assert_allclose(
            d.ddim_sample_from_noise(eps, x_T, None, s, num_steps=steps),
            d.dpm_solver_pp_sample_from_noise(eps, x_T, s, num_steps=steps, order=1),
            rtol=1e-10, atol=1e-10,
        )  # fmt: skip
    # DDIM(eta = 1) over all T steps is DDPM ancestral with beta_tilde (Song et al. 2021).
    np.testing.assert_allclose(
        d.ddim_sample_from_noise(eps, x_T, noises, s, num_steps=T, eta=1.0),
        d.ddpm_sample_from_noise(eps, x_T, noises, s, variance="beta_tilde"),
        rtol=1e-10, atol=1e-10,
    )  # fmt: skip
    # ... and not with the other variance: the identity is specific.
    assert not np.allclose(
        d.ddim_sample_from_noise(eps, x_T, noises, s, num_steps=T, eta=1.0),
        d.ddpm_sample_from_noise(eps, x_T, noises, s, variance="beta"),
        atol=1e-3,
    )


def test_public_samplers_use_documented_noise_and_do_not_recompile():
    s, eps, den = _models(jnp.float32)
    traces = []

    def counting_eps(x, t):
        traces.append(1)
        return eps(x, t)

    key = jax.random.key(7)
    out = d.ddim_sample(key, counting_eps, (B, 2), s, num_steps=5, eta=0.5)
    init_key, noise_key = jax.random.split(key)
    x_T = jax.random.normal(init_key, (B, 2))
    noises = jax.random.normal(noise_key, (5, B, 2))
    np.testing.assert_allclose(
        out, d.ddim_sample_from_noise(counting_eps, x_T, noises, s, num_steps=5, eta=0.5),
        rtol=1e-6, atol=1e-6,
    )  # fmt: skip
    n = len(traces)
    again = d.ddim_sample(jax.random.key(8), counting_eps, (B, 2), s, num_steps=5, eta=0.5)
    assert len(traces) == n, "second call with a new key retraced"
    assert not np.allclose(out, again)
    # Same key, same output.
    np.testing.assert_array_equal(
        out, d.ddim_sample(key, counting_eps, (B, 2), s, num_steps=5, eta=0.5)
    )


def test_steps_without_jit_equal_jitted():
    s, eps, _ = _models(jnp.float32)
    x = jnp.asarray(_noise(4)[0], jnp.float32)
    z = jnp.ones_like(x)
    state = d.DiscreteState(x, jnp.asarray(17))
    for fn in (
        lambda st: d.ddpm_step(eps, st, z, schedule=s, variance="beta_tilde", clip_x0=3.0),
        lambda st: d.ddim_step(eps, st, z, schedule=s, t_prev=9, clip_x0=0.5),
        lambda st: d.ddim_step(eps, st, z, schedule=s, t_prev=9, eta=0.3),
    ):  # the last one is also run without jit below
        (x_new, t_new), info = fn(state)
        (x_jit, t_jit), info_jit = jax.jit(fn)(state)
        np.testing.assert_allclose(x_new, x_jit, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(info.x0, info_jit.x0, rtol=1e-5, atol=1e-6)
        assert int(t_new) == int(t_jit) and int(info.num_evals) == 1
    assert int(t_new) == 9
    with jax.disable_jit():  # one step of each family outside any jit
        plain, _ = d.ddim_step(eps, state, z, schedule=s, t_prev=9, eta=0.3)
    np.testing.assert_allclose(plain.x, fn(state)[0].x, rtol=1e-5, atol=1e-6)


def test_steps_compose_to_the_samplers(x64):
    """T ddpm_steps (S ddim_steps) over the sampler's noise and grid are the sampler, and
    the info's x0 is the clean-data estimate the step used."""
    s, eps, den = _models(jnp.float64)
    x_T, noises = _noise(6)
    x_T, noises = jnp.asarray(x_T), jnp.asarray(noises)
    # Each step jitted once (a Python loop of eager steps dispatches op by op: slow).
    ddpm_step = jax.jit(functools.partial(d.ddpm_step, schedule=s, variance="beta_tilde"))
    ddim_step = jax.jit(functools.partial(d.ddim_step, schedule=s, eta=0.5))
    state = d.DiscreteState(x_T, jnp.asarray(T - 1))
    for i in range(T):
        state, info = ddpm_step(eps, state, noises[i])
    assert int(state.t) == -1
    want = d.ddpm_sample_from_noise(eps, x_T, noises, s, variance="beta_tilde")
    np.testing.assert_allclose(state.x, want, rtol=1e-10, atol=1e-10)
    # The last step (t = 0) lands on its own x0 estimate: no noise, mu_tilde = x0_hat.
    np.testing.assert_allclose(info.x0, state.x, rtol=1e-10, atol=1e-10)
    ts = d.ddim_timesteps(T, 7)
    state = d.DiscreteState(x_T, jnp.asarray(ts[0]))
    for i, t_prev in enumerate([*ts[1:], -1]):
        state, info = ddim_step(eps, state, noises[i], t_prev=t_prev)
    want = d.ddim_sample_from_noise(eps, x_T, noises[:7], s, num_steps=7, eta=0.5)
    np.testing.assert_allclose(state.x, want, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(info.x0, state.x, rtol=1e-10, atol=1e-10)
    # EDM: Euler and Heun steps over a Karras grid are the samplers.
    sig = jnp.asarray(oracle.karras_sigmas(5, 0.002, 20.0))
    for step, sampler, nfe in ((d.euler_step, d.euler_sample_from_noise, 5),
                               (d.heun_step, None, 9)):
        step = jax.jit(step)
        state, total = d.EDMState(sig[0] * x_T, sig[0]), 0
        for i in range(5):
            state, info = step(den, state, None, sigma_next=sig[i + 1])
            total += int(info.num_evals)
        want = (sampler(den, sig[0] * x_T, sig) if sampler is not None
                else d.heun_sample_from_noise(den, sig[0] * x_T, None, sig))
        np.testing.assert_allclose(state.x, want, rtol=1e-10, atol=1e-10)
        assert total == nfe  # Heun: 2 evaluations a step, 1 on the step into sigma = 0


def _bad_eps(x, t):
    return x[:, :1]


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda s, e, k: d.ddim_sample(k, e, (4, 2), s, num_steps=0), "num_steps"),
        (lambda s, e, k: d.ddim_sample(k, e, (4, 2), s, num_steps=T + 1), "num_steps"),
        (lambda s, e, k: d.ddim_sample(k, e, (4, 2), s, num_steps=5, eta=-0.1), "eta"),
        (lambda s, e, k: d.ddpm_sample(k, e, (4, 2), s, variance="large"), "variance"),
        (lambda s, e, k: d.ddpm_sample(k, e, (0, 2), s), "shape"),
        (lambda s, e, k: d.dpm_solver_pp_sample(k, e, (4, 2), s, num_steps=5, order=4), "order"),
        (lambda s, e, k: d.dpm_solver_pp_sample(k, e, (4, 2), s, num_steps=0), "num_steps"),
        (lambda s, e, k: d.dpm_solver_pp_sample(k, e, (4, 2), s, num_steps=3, clip_x0=-1.0),
         "clip_x0"),
        (lambda s, e, k: d.ddim_sample(k, e, (4, 2), s, num_steps=3, clip_x0=0.0), "clip_x0"),
        (lambda s, e, k: d.dpm_solver_pp_sample(k, e, (4, 2), s, num_steps=5, method="x"),
         "method"),
        (lambda s, e, k: d.ddpm_sample_from_noise(e, jnp.zeros((4, 2)), jnp.zeros((T, 3, 2)), s),
         "noises"),
        (lambda s, e, k: d.ddim_sample_from_noise(e, jnp.zeros((4, 2)), None, s, num_steps=3,
                                                  eta=1.0), "noises"),
        (lambda s, e, k: d.ddim_sample(k, _bad_eps, (4, 2), s, num_steps=3), "model"),
        (lambda s, e, k: d.ddim_step(e, d.DiscreteState(jnp.zeros((4, 2)), 3), None, schedule=s,
                                     t_prev=1, eta=0.5), "noise"),
        (lambda s, e, k: d.heun_sample(k, lambda x, sg: x, (4, 2), jnp.ones((1,))), "sigmas"),
        (lambda s, e, k: d.heun_sample(k, lambda x, sg: x, (4, 2), jnp.ones((3,)), s_churn=-1.0),
         "s_churn"),
    ],
)  # fmt: skip
def test_bad_arguments_raise(call, name):
    s, eps, _ = _models(jnp.float32)
    with pytest.raises(ValueError, match=name):
        call(s, eps, jax.random.key(0))


def test_extreme_valid_inputs_finite():
    s, eps, den = _models(jnp.float32)
    key = jax.random.key(0)
    outs = [
        d.ddim_sample(key, eps, (B, 2), s, num_steps=1),  # a single step
        d.dpm_solver_pp_sample(key, eps, (B, 2), s, num_steps=1),
        d.dpm_solver_pp_sample(key, eps, (B, 2), s, num_steps=2, method="singlestep"),
        d.heun_sample(key, den, (B, 2), d.karras_sigmas(1, sigma_max=20.0)),
        d.euler_sample(key, den, (B, 2), d.karras_sigmas(1, sigma_max=20.0)),
        d.ddpm_step(eps, d.DiscreteState(jnp.ones((B, 2)), 0), jnp.ones((B, 2)), schedule=s)[0].x,
        d.ddpm_step(eps, d.DiscreteState(jnp.ones((B, 2)), T - 1), jnp.ones((B, 2)),
                    schedule=s)[0].x,
    ]
    for out in outs:
        assert np.all(np.isfinite(np.asarray(out)))
    # A single DDIM step from pure noise lands on E[x0 | x_T]: near the (zero) data mean.
    assert float(jnp.max(jnp.abs(outs[0]))) < 0.5


def test_zero_terminal_snr_schedule_finite():
    """alpha_bar[T-1] = 0: the samplers take x0_hat = 0 there (sample.py) and stay finite."""
    target = targets.ring(n_modes=4, radius=2.0, std=0.5)
    z = d.rescale_zero_terminal_snr(d.from_betas(BETAS))
    eps = d.analytic_eps_fn(target, z)
    key = jax.random.key(1)
    outs = [
        d.ddpm_sample(key, eps, (B, 2), z),
        d.ddim_sample(key, eps, (B, 2), z, num_steps=10, eta=1.0),
        d.dpm_solver_pp_sample(key, eps, (B, 2), z, num_steps=10, order=3),
        d.dpm_solver_pp_sample(key, eps, (B, 2), z, num_steps=10, method="singlestep"),
    ]
    for out in outs:
        assert np.all(np.isfinite(np.asarray(out)))
        assert float(jnp.max(jnp.abs(out))) < 10.0


def test_clip_x0_matches_oracle_float64(x64):
    """Clipped DDIM and DPM-Solver++ against the oracle; clip 1.0 is active on this ring."""
    s, eps, _ = _models(jnp.float64)
    x_T, noises = _noise(5, n=7)
    runs = [
        ("ddim eta=0", lambda c: d.ddim_sample_from_noise(eps, x_T, None, s, num_steps=7,
                                                          clip_x0=c),
         lambda c: oracle.ddim_loop(np_eps, BETAS, x_T, 7, clip_x0=c)),
        ("ddim eta=0.5", lambda c: d.ddim_sample_from_noise(eps, x_T, noises, s, num_steps=7,
                                                            eta=0.5, clip_x0=c),
         lambda c: oracle.ddim_loop(np_eps, BETAS, x_T, 7, 0.5, noises, clip_x0=c)),
    ] + [
        (f"dpm++ {o}{m}", functools.partial(
            lambda c, o, m: d.dpm_solver_pp_sample_from_noise(eps, x_T, s, num_steps=7, order=o,
                                                              method=m, clip_x0=c), o=o, m=m),
         functools.partial(lambda c, o, m: oracle.dpm_solver_pp_loop(np_eps, BETAS, x_T, 7, o, m,
                                                                     clip_x0=c), o=o, m=m))
        for o, m in ((2, "multistep"), (3, "multistep"), (2, "singlestep"))
    ]  # fmt: skip
    for name, got, want in runs:
        clipped = got(1.0)
        assert_close_to_oracle(clipped, want(1.0), kind="long_loop", err_msg=name)
        # The clip must have acted (else this test would not test it); every sampler's last
        # step lands on a (clipped) x0 prediction, so the result is bounded by the clip.
        assert not np.allclose(clipped, got(None), atol=1e-3), name
        assert float(jnp.max(jnp.abs(clipped))) <= 1.0 + 1e-12, name


def test_clip_x0_bounds_a_wrong_model_at_tiny_terminal_alpha():
    """cosine(1000): alpha_{T-1} ~ 5e-5, so an eps error of 0.1 becomes an x0 error ~2e3.

    Unclipped, DDIM and DPM-Solver++ land far outside the data (radius 2, std 0.5); with
    clip_x0 = 4 the deterministic samplers end on a clipped x0 prediction, so |x| <= 4.
    With the exact model the clip at 4 does not act (its samples stay within |x| < 4).
    """
    target = targets.ring(n_modes=4, radius=2.0, std=0.5)
    s = d.cosine(1000)
    assert float(s.alpha(999)) < 1e-4  # the premise: a tiny terminal alpha
    exact = d.analytic_eps_fn(target, s)

    def wrong(x, t):
        return exact(x, t) + 0.1

    x_T = jax.random.normal(jax.random.key(0), (64, 2))
    for name, run in (
        ("ddim", lambda f, c: d.ddim_sample_from_noise(f, x_T, None, s, num_steps=20, clip_x0=c)),
        ("dpm++", lambda f, c: d.dpm_solver_pp_sample_from_noise(f, x_T, s, num_steps=20,
                                                                 clip_x0=c)),
    ):  # fmt: skip
        assert float(jnp.max(jnp.abs(run(wrong, None)))) > 20.0, name  # explodes unclipped
        clipped = run(wrong, 4.0)
        assert np.all(np.isfinite(np.asarray(clipped))) and float(jnp.max(jnp.abs(clipped))) <= 4.0
        np.testing.assert_allclose(run(exact, 4.0), run(exact, None), atol=1e-5, err_msg=name)


def test_ddpm_sample_draws_documented_noise(x64):
    """ddpm_sample: x_T from split(key)[0], the steps' noise one chunk (T * B * 2 numbers fit
    one), normal(fold_in(split(key)[1], 0), (T, B, 2)), with threefry's original
    (non-partitionable) layout."""
    s, eps, _ = _models(jnp.float64)
    key = jax.random.key(11)
    f64 = jnp.float64
    out = d.ddpm_sample(key, eps, (B, 2), s, variance="beta_tilde", clip_x0=2.0, dtype=f64)
    init_key, noise_key = jax.random.split(key)
    x_T = jax.random.normal(init_key, (B, 2), f64)
    assert d.ddpm.noise_chunk_steps((B, 2), T) == T
    with jax.threefry_partitionable(False):
        noises = jax.random.normal(jax.random.fold_in(noise_key, 0), (T, B, 2), f64)
    want = d.ddpm_sample_from_noise(eps, x_T, noises, s, variance="beta_tilde", clip_x0=2.0)
    # Same noise and steps, two compiled programs: float64 rounding only (one wrong noise
    # draw would move the result by ~sqrt(beta_tilde) ~ 0.1).
    np.testing.assert_allclose(out, want, rtol=1e-10, atol=1e-10)
    assert float(jnp.max(jnp.abs(out - x_T))) > 0.1  # it moved
