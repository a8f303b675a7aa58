"""Progressive distillation: eq. 8 against the NumPy oracle, the one-step = two-steps
identity, the loss and its weightings, the time grid, traced stages.

The teacher is the exact eps of a Gaussian mixture (genjax.diffusion.analytic_eps_fn) for
JAX and the NumPy mixture eps of genjax.oracle_targets for the oracle: two independent
implementations of the same mathematics (as tests/diffusion/test_samplers.py).
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
from genjax.diffusion import distillation as pd
from genjax.diffusion import oracle as doracle
from genjax.diffusion import oracle_distillation as oracle
from genjax.testing import assert_close_to_oracle

T = 40
BETAS = doracle.linear_betas(T, 1e-3, 0.2)  # short schedule: SNR from ~1e3 down to ~1e-3
AB = doracle.alpha_bars(BETAS)
RING = targets.ring(n_modes=4, radius=2.0, std=0.5)
W, M, C = (np.asarray(a, np.float64) for a in (RING.weights, RING.means, RING.covs))


def np_eps(x, t):
    """The exact eps of the mixture, NumPy float64, each example at its own time."""
    out = np.empty_like(x)
    for tt in np.unique(t):
        idx = t == tt
        out[idx] = ot.mixture_eps(W, M, C, x[idx], np.sqrt(AB[tt]), np.sqrt(1 - AB[tt]))
    return out


def _teacher(dtype):
    mix = targets.GaussianMixture(*(jnp.asarray(a, dtype) for a in (W, M, C)))
    s = d.from_betas(BETAS, dtype=dtype)
    return s, d.analytic_eps_fn(mix, s)


def _z_and_index(n_student, batch=8, seed=0):
    rng = np.random.default_rng(seed)
    index = np.arange(batch) % n_student  # every student step, the last (t'' = -1) too
    return rng.standard_normal((batch, 2)) * 2.0, index


# Float64: two DDIM steps and eq. 8's division by alpha'' - sigma'' alpha / sigma, which is
# ~sigma'' (SNR''^1/2 - SNR^1/2) and small for N = T/2 (adjacent times) -- it scales the
# ~1e-15 disagreement of the two mixture-eps implementations by up to ~1e3: "long_loop".
@functools.partial(jax.jit, static_argnames="n_student")
def _target_and_steps(teacher, s, z, index, n_student):
    """``x~`` (the public function under jit) and, per example, the student's one DDIM step
    with ``x_hat = x~``, the teacher's two steps and its one direct step ``t -> t''``."""
    x_tilde = pd.distillation_target(teacher, z, index, s, num_student_steps=n_student)
    t, t_mid, t_next = pd.distillation_timesteps(T, n_student, index)

    def each(zb, xb, a, b, c):
        state = d.DiscreteState(zb[None], a)
        mid, _ = d.ddim_step(teacher, state, None, schedule=s, t_prev=b)
        two, _ = d.ddim_step(teacher, mid, None, schedule=s, t_prev=c)
        const = jax.tree_util.Partial(lambda v, x, tt: jnp.broadcast_to(v, x.shape), xb[None])
        student = pd.as_eps_model(const, s, prediction="x0")  # x_hat = x~ at every input
        one, _ = d.ddim_step(student, state, None, schedule=s, t_prev=c)
        direct, _ = d.ddim_step(teacher, state, None, schedule=s, t_prev=c)
        return one.x[0], two.x[0], direct.x[0]

    return (x_tilde, *jax.vmap(each)(z, x_tilde, t, t_mid, t_next))


# N = 4 over all four student steps (the last ends at t'' = -1, the data); N = T/2: t, t',
# t'' adjacent, the smallest denominator of eq. 8.
@pytest.mark.parametrize("n_student", [4, T // 2])
def test_target_matches_oracle_and_one_step_equals_two_float64(x64, n_student):
    s, teacher = _teacher(jnp.float64)
    z, index = _z_and_index(n_student)
    got, one, two, direct = _target_and_steps(
        teacher, s, jnp.asarray(z), jnp.asarray(index), n_student
    )
    want = oracle.distillation_target(np_eps, z, index, AB, n_student)
    # Two DDIM steps, then eq. 8 divides by alpha'' - sigma'' alpha / sigma, which is
    # ~sigma'' (SNR''^1/2 - SNR^1/2) and small for adjacent times: it scales the ~1e-15
    # disagreement of the two mixture-eps implementations up to ~1e3 -- "long_loop".
    assert_close_to_oracle(got, want, kind="long_loop")
    # Not vacuous: the target is not the data prediction of one teacher step at t.
    t = np.array([oracle.student_times(T, n_student, i)[0] for i in index])
    one_step_x0 = (z - np.sqrt(1 - AB[t])[:, None] * np_eps(z, t)) / np.sqrt(AB[t])[:, None]
    assert np.max(np.abs(want - one_step_x0)) > 1e-2
    # One student DDIM step t -> t'' with x_hat = x~ lands where the teacher's two do: an
    # algebraic identity, a few float64 roundings (~1e-16 each) of O(1) values.
    np.testing.assert_allclose(one, two, rtol=0, atol=1e-13)
    assert float(jnp.min(jnp.max(jnp.abs(direct - two), axis=1))) > 1e-6  # 2 steps != 1


def test_target_without_jit_float32_matches_oracle():
    s, teacher = _teacher(jnp.float32)
    z, index = _z_and_index(1, batch=2, seed=1)
    got = pd.distillation_target(
        teacher, jnp.asarray(z, jnp.float32), jnp.asarray(index), s, num_student_steps=1
    )
    assert got.dtype == jnp.float32
    # A few float32 operations per step, two steps and eq. 8: the float32 "long_loop" bound.
    assert_close_to_oracle(
        got, oracle.distillation_target(np_eps, z, index, AB, 1), kind="long_loop"
    )


def _linear_net(a, b):
    """A student with a NumPy twin: ``x @ a + b t / T``."""
    return jax.tree_util.Partial(lambda a, b, x, t: x @ a + b[None] * (t[:, None] / T), a, b)


# Every prediction and both weightings, in one compiled program.
COMBOS = (
    ("v", "truncated_snr"),
    ("x0", "snr_plus_one"),
    ("eps", "truncated_snr"),
    ("v", "snr_plus_one"),
)


@jax.jit
def _losses(teacher, s, a, b, x0, eps, index):
    net = _linear_net(a, b)
    out = {}
    for prediction, weighting in COMBOS:
        out[f"{prediction}-{weighting}"] = pd.distillation_loss_from_noise(
            net,
            x0,
            eps,
            index=index,
            teacher=teacher,
            schedule=s,
            num_student_steps=4,
            prediction=prediction,
            weighting=weighting,
        )[0]
    # (SNR + 1) |x~ - x_hat|^2 = |v~ - v_hat|^2 with v = (alpha z - x) / sigma (sec. 4).
    t, _, _ = pd.distillation_timesteps(T, 4, index)
    z = d.q_sample(s, x0, t, eps)
    v_tilde = d.x0_to_v(s, z, t, pd.distillation_target(teacher, z, index, s, num_student_steps=4))
    out["v_error"] = jnp.mean(jnp.mean(jnp.square(v_tilde - net(z, t)), axis=1))
    return out


@jax.jit
def _traced_stage(teacher_means, a, b, x0, eps, index, n):
    """The recipe passes N traced (one program for every stage); and d loss / d teacher."""

    def by_teacher(means):
        mix = targets.GaussianMixture(jnp.asarray(W), means, jnp.asarray(C))
        s = d.from_betas(BETAS, dtype=jnp.float64)
        return pd.distillation_loss_from_noise(
            _linear_net(a, b),
            x0,
            eps,
            index=index,
            teacher=d.analytic_eps_fn(mix, s),
            schedule=s,
            num_student_steps=n,
        )[0]

    return jax.value_and_grad(by_teacher)(teacher_means)


def test_loss_matches_oracle_float64(x64):
    s, teacher = _teacher(jnp.float64)
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 2)) * 0.5, rng.standard_normal(2)
    x0, eps = rng.standard_normal((8, 2)) * 2.0, rng.standard_normal((8, 2))
    index = np.arange(8) % 4
    args = tuple(jnp.asarray(v) for v in (a, b, x0, eps, index))
    got = _losses(teacher, s, *args)
    for prediction, weighting in COMBOS:
        want = oracle.distillation_loss(
            lambda x, t: x @ a + b[None] * (t[:, None] / T),
            x0,
            eps,
            index,
            np_eps,
            AB,
            4,
            prediction,
            weighting,
        )
        # eq. 8 amplifies as in the target test; a mean of 8 weighted squares after.
        assert_close_to_oracle(
            got[f"{prediction}-{weighting}"],
            np.asarray(want),
            kind="long_loop",
            err_msg=f"{prediction}, {weighting}",
        )
    # The SNR + 1 weighting is the v-error: one identity in float64 rounding.
    np.testing.assert_allclose(got["v-snr_plus_one"], got["v_error"], rtol=1e-10)
    assert float(got["v-truncated_snr"]) < float(got["v-snr_plus_one"])  # max(SNR,1)
    value, grad = _traced_stage(jnp.asarray(M), *args, 4)
    np.testing.assert_allclose(value, got["v-truncated_snr"], rtol=1e-12)
    assert float(jnp.max(jnp.abs(grad))) == 0.0  # no gradient into the teacher


def test_timesteps_nest_in_the_ddim_grid():
    for big_t, n in ((1000, 1), (1000, 16), (37, 4), (37, 16)):
        t, t_mid, t_next = pd.distillation_timesteps(big_t, n, np.arange(n))
        fine = np.append(d.ddim_timesteps(big_t, 2 * n), -1)
        np.testing.assert_array_equal(t, d.ddim_timesteps(big_t, n))
        np.testing.assert_array_equal(t, fine[0:-1:2])
        np.testing.assert_array_equal(t_mid, fine[1::2])
        np.testing.assert_array_equal(t_next, fine[2::2])
    assert pd.distillation_stages(32) == (16, 8, 4, 2, 1)
