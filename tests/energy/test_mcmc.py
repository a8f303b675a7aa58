"""The MCMC kernels: oracle equivalence on shared noise, exact reversibility, moments.

Oracle comparisons run in float64 (x64 fixture) with genjax.testing's float64 tolerances;
the NumPy oracle gets the target from genjax.oracle_targets (an independent NumPy
implementation of the same mixture), the JAX kernels from genjax.targets. One float32 run
holds the float32 code path to the oracle with the float32 "long_loop" tolerance.

Target: an *asymmetric* 2-D two-component mixture (unequal weights, different, correlated
covariances), so that a MALA whose forward and reverse proposal densities were swapped
(blackjax PR 653) fails the detailed-balance and oracle tests: for a symmetric target
``q(y|x)`` and ``q(x|y)`` can coincide on the test points by symmetry.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import energy as e
from genjax import oracle_targets as ot
from genjax import targets
from genjax.energy import oracle
from genjax.testing import (
    assert_close_to_oracle,
    count_compilations,
    effective_sample_size,
    moment_ztest,
)
from tests.energy.test_conformance import NoisedScore  # the one test model of it

W = np.array([0.3, 0.7])
M = np.array([[-1.0, 0.5], [1.2, -0.3]])
C = np.array([[[0.6, 0.2], [0.2, 0.4]], [[0.5, -0.15], [-0.15, 0.9]]])
CHAINS, DIM = 6, 2


@functools.cache
def _target(dtype):
    return targets.GaussianMixture.create(W, M, C, dtype=dtype)


def _fns(dtype):
    """The models: the target's own log-density and score (bound methods of a pytree,
    traced by the samplers, so every target of these shapes shares one program)."""
    t = _target(dtype)
    return t.log_prob, t.score


def np_log_pi(x):
    return float(ot.mixture_log_prob(W, M, C, x[None])[0])


def np_grad(x):
    return ot.mixture_score(W, M, C, x[None])[0]


def _noise(seed, steps, chains=CHAINS, dim=DIM):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((steps, chains, dim)), rng.uniform(size=(steps, chains))


def _x0(seed=3):
    return np.random.default_rng(seed).normal(size=(CHAINS, DIM)) * 1.5


# ---------------------------------------------------------------------------------------
# One step, jitted and not, against the oracle
# ---------------------------------------------------------------------------------------


def test_steps_match_oracle_unjitted(x64):
    """One step of each kernel, called eagerly (op by op, no ``jax.jit``), equals the
    oracle's; the jitted loops below compare whole trajectories."""
    lp, sc = _fns(jnp.float64)
    x = _x0()
    xi, u = _noise(0, 1)
    xi, u = xi[0], u[0]
    ula, _ = e.langevin_step(sc, jnp.asarray(x), xi, step_size=0.1)
    assert_close_to_oracle(ula, oracle.langevin_step(np_grad, x, xi, 0.1))
    state = e.init_state(lp, jnp.asarray(x))
    new, info = e.mala_step(lp, state, (xi, u), step_size=0.3)
    ref = oracle.mala_step(np_log_pi, np_grad, x, xi, u, 0.3)
    np.testing.assert_array_equal(np.asarray(info.accepted), ref[1])
    assert int(info.num_evals) == 1
    assert_close_to_oracle(info.proposal_log_prob, ot.mixture_log_prob(
        W, M, C, x + 0.3 * np.stack([np_grad(r) for r in x]) + np.sqrt(0.6) * xi))
    assert 0 < ref[1].sum() < CHAINS  # both accepted and rejected proposals are compared
    assert_close_to_oracle(new.position, ref[0])
    assert_close_to_oracle(new.log_prob, ot.mixture_log_prob(W, M, C, ref[0]))


# ---------------------------------------------------------------------------------------
# Whole loops on shared noise
# ---------------------------------------------------------------------------------------

STEPS = 25


def test_loops_match_oracle(x64):
    lp, sc = _fns(jnp.float64)
    x0 = _x0()
    xi, u = _noise(1, STEPS)
    traj = e.langevin_from_noise(sc, x0, xi, step_size=0.05, return_trajectory=True)
    assert traj.dtype == jnp.float64
    assert_close_to_oracle(traj, oracle.langevin_loop(np_grad, x0, xi, 0.05), kind="long_loop")

    cases = {
        "mala": (functools.partial(e.mala_from_noise, lp, step_size=0.2),
                 functools.partial(oracle.mala_loop, np_log_pi, np_grad, h=0.2)),
        "rwmh": (functools.partial(e.metropolis_hastings_from_noise, lp, step_size=0.7),
                 functools.partial(oracle.rwmh_loop, np_log_pi, s=0.7)),
        "hmc": (functools.partial(e.hmc_from_noise, lp, step_size=0.25, num_leapfrog=3),
                functools.partial(oracle.hmc_loop, np_log_pi, np_grad, eps=0.25, L=3)),
    }  # fmt: skip
    for name, (fn, ref_fn) in cases.items():
        traj, acc = fn(x0, (xi, u), return_trajectory=True)
        ref_traj, ref_acc = ref_fn(x0, xi, u)
        assert_close_to_oracle(traj, ref_traj, kind="long_loop", err_msg=name)
        np.testing.assert_allclose(np.asarray(acc), ref_acc, err_msg=name)
        assert 0.2 < ref_acc.mean() < 1.0, (name, ref_acc)  # accepts and rejects both seen
        if name == "mala":  # the default returns only the last state (same loop for all)
            final, acc2 = fn(x0, (xi, u))
            np.testing.assert_array_equal(np.asarray(final), np.asarray(traj[-1]))
            np.testing.assert_array_equal(np.asarray(acc2), np.asarray(acc))


def test_mala_float32_matches_oracle():
    lp, sc = _fns(jnp.float32)
    x0 = _x0()
    xi, u = _noise(2, STEPS)
    noise = (jnp.asarray(xi, jnp.float32), jnp.asarray(u, jnp.float32))
    traj, acc = e.mala_from_noise(lp, jnp.asarray(x0, jnp.float32), noise, step_size=0.2,
                                  return_trajectory=True)  # fmt: skip
    assert traj.dtype == jnp.float32
    ref_traj, ref_acc = oracle.mala_loop(np_log_pi, np_grad, x0, xi, u, 0.2)
    np.testing.assert_allclose(np.asarray(acc), ref_acc)
    assert_close_to_oracle(traj, ref_traj, kind="long_loop")


def test_annealed_langevin_matches_oracle(x64):
    t = _target(jnp.float64)
    sigmas = np.array([2.0, 1.0, 0.5, 0.25])
    steps_per_level = 4
    x0 = _x0()
    noise = np.random.default_rng(4).standard_normal((16, CHAINS, DIM))

    score_fn = NoisedScore(t)  # the exact score of the noised mixture, a pytree model

    def np_score(x, sigma):
        return ot.mixture_score(*ot.mixture_noised(W, M, C, 1.0, sigma), x[None])[0]

    out = e.annealed_langevin_from_noise(score_fn, x0, noise, sigmas=sigmas, step_size=0.02,
                                         num_steps_per_level=steps_per_level)  # fmt: skip
    # Song & Ermon's eps (alpha_L) is twice genjax's step_size.
    ref = oracle.annealed_langevin_loop(np_score, x0, noise, sigmas, 0.04, steps_per_level)
    assert_close_to_oracle(out, ref, kind="long_loop")
    keyed = e.annealed_langevin(jax.random.key(0), score_fn, jnp.asarray(x0), sigmas=sigmas,
                                step_size=0.02, num_steps_per_level=steps_per_level)  # fmt: skip
    assert keyed.shape == (CHAINS, DIM) and bool(jnp.all(jnp.isfinite(keyed)))


# ---------------------------------------------------------------------------------------
# Exactness: proposal density, detailed balance, stationarity on a lattice
# ---------------------------------------------------------------------------------------


def test_mala_proposal_density_is_the_forward_closed_form(x64):
    """``log q(y|x) = log N(y; x + h grad log pi(x), 2h I)``: centred at the drift of the
    *current* point. The reversed density (drift at ``y``) differs on this asymmetric
    target by far more than the tolerance, so a swap (blackjax PR 653) fails here."""
    lp, sc = _fns(jnp.float64)
    rng = np.random.default_rng(5)
    x, y, h = rng.normal(size=(32, 2)), rng.normal(size=(32, 2)), 0.3
    got = jax.jit(lambda y, x: e.mala_proposal_log_density(y, x, sc(x), h))(y, x)
    ref = np.array([oracle.mala_proposal_log_density(y[i], x[i], np_grad, h) for i in range(32)])
    assert_close_to_oracle(got, ref)
    reversed_ = np.array([oracle.mala_proposal_log_density(x[i], y[i], np_grad, h)
                          for i in range(32)])  # fmt: skip
    assert np.min(np.abs(ref - reversed_)) > 1e-3  # the test can tell the two apart


def test_mala_and_rwmh_detailed_balance_on_random_pairs(x64):
    """For y != x the MH kernel has density ``K(x, y) = q(y|x) a(x, y)``; detailed balance
    ``pi(x) K(x, y) = pi(y) K(y, x)`` holds exactly (to float64 rounding) at 64 random
    pairs, with ``q`` the closed form from the oracle and ``a`` genjax's acceptance. The
    same check with the proposal densities swapped inside the acceptance fails."""
    lp, sc = _fns(jnp.float64)
    rng = np.random.default_rng(6)
    x, y, h = rng.normal(size=(64, 2)) * 1.5, rng.normal(size=(64, 2)) * 1.5, 0.4
    log_pi = lambda z: ot.mixture_log_prob(W, M, C, z)  # noqa: E731
    log_q = lambda b, a: np.array([oracle.mala_proposal_log_density(b[i], a[i], np_grad, h)  # noqa: E731
                                   for i in range(len(a))])  # fmt: skip

    @jax.jit
    def acceptances(x, y):  # MALA both ways, random-walk MH both ways: one program
        mala_a = functools.partial(e.mala_log_acceptance, lp, step_size=h)
        rw_a = functools.partial(e.rwmh_log_acceptance, lp)
        return mala_a(x, y), mala_a(y, x), rw_a(x, y), rw_a(y, x)

    a_xy, a_yx, r_xy, r_yx = (np.asarray(a) for a in acceptances(x, y))
    lhs = log_pi(x) + log_q(y, x) + a_xy  # log pi(x) q(y|x) a(x,y)
    rhs = log_pi(y) + log_q(x, y) + a_yx
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-11)
    assert np.all(a_xy <= 0) and np.any(a_xy < -0.1)  # some moves are partly rejected
    # The reversed-density acceptance of PR 653: min(0, log pi(y) + log q(y|x) - ...)
    bad = lambda a, b: np.minimum(0, log_pi(b) + log_q(b, a) - log_pi(a) - log_q(a, b))  # noqa: E731
    bad_lhs = log_pi(x) + log_q(y, x) + bad(x, y)
    bad_rhs = log_pi(y) + log_q(x, y) + bad(y, x)
    assert np.max(np.abs(bad_lhs - bad_rhs)) > 0.1

    np.testing.assert_allclose(log_pi(x) + r_xy, log_pi(y) + r_yx, rtol=0, atol=1e-11)


LATTICE = np.linspace(-3.5, 4.5, 81)  # 1-D lattice, spacing 0.1
W1, M1, S1 = np.array([0.35, 0.65]), np.array([-1.0, 1.5]), np.array([0.6, 0.9])


@functools.cache
def _target_1d():
    return targets.mixture_1d(W1, M1, S1, dtype=jnp.float64)


def _np_1d(x):
    return float(ot.mixture_log_prob(W1, M1[:, None], S1[:, None, None] ** 2, x[None])[0])


def _np_1d_grad(x):
    return ot.mixture_score(W1, M1[:, None], S1[:, None, None] ** 2, x[None])[0]


@functools.partial(jax.jit, static_argnames=("kind",))
def _kernel_offdiag(target, kind, h):
    g = jnp.asarray(LATTICE)[:, None]  # (n, 1)
    n = g.shape[0]
    xi = jnp.repeat(g, n, axis=0)  # (n*n, 1): x_i for every pair (i, j)
    xj = jnp.tile(g, (n, 1))  # (n*n, 1): x_j
    if kind == "mala":
        log_q = e.mala_proposal_log_density(xj, xi, target.score(xi), h)
        log_a = e.mala_log_acceptance(target.log_prob, xi, xj, step_size=h)
    else:
        log_q = -0.5 * jnp.log(2 * math.pi * h**2) - 0.5 * (xj - xi)[:, 0] ** 2 / h**2
        log_a = e.rwmh_log_acceptance(target.log_prob, xi, xj)
    return jnp.exp(log_q + log_a).reshape(n, n)


def _jax_kernel_matrix(target, kind, h):
    """The lattice MH chain built from genjax's proposal density and acceptance:
    ``K_ij = q(x_j | x_i) dx a(x_i, x_j)`` for ``i != j``, the rest of the mass on ``K_ii``."""
    off = np.asarray(_kernel_offdiag(target, kind, h)) * (LATTICE[1] - LATTICE[0])
    np.fill_diagonal(off, 0.0)
    stay = 1.0 - off.sum(axis=1)
    assert np.all(stay > 0)
    return off + np.diag(stay)


@pytest.mark.parametrize("kind,h", [("mala", 0.15), ("rwmh", 0.6)])
def test_lattice_kernel_is_reversible_and_stationary(x64, kind, h):
    """Exact statement proved: the discrete chain on an 81-point lattice whose move
    ``x_i -> x_j`` has probability ``q(x_j | x_i) dx a(x_i, x_j)`` (genjax's proposal
    density and acceptance; rejected and unproposed mass stays put) satisfies
    ``pi_i K_ij = pi_j K_ji`` for every pair, with ``pi_i ∝ pi(x_i)``; hence ``pi K = pi``,
    and ``K^n`` from a point mass converges to ``pi``. The matrix equals the oracle's
    (built pair by pair from the equations). Target: an asymmetric 1-D mixture."""
    k = _jax_kernel_matrix(_target_1d(), kind, h)
    ref = (oracle.mala_kernel_matrix(_np_1d, _np_1d_grad, LATTICE, h) if kind == "mala"
           else oracle.rwmh_kernel_matrix(_np_1d, LATTICE, h))  # fmt: skip
    np.testing.assert_allclose(k, ref, rtol=1e-10, atol=1e-14)
    log_pi = np.array([_np_1d(np.array([v])) for v in LATTICE])
    pi = np.exp(log_pi - log_pi.max())
    pi /= pi.sum()
    flow = pi[:, None] * k  # pi_i K_ij
    np.testing.assert_allclose(flow, flow.T, rtol=0, atol=1e-15)
    np.testing.assert_allclose(pi @ k, pi, rtol=1e-12, atol=1e-15)
    p = np.zeros_like(pi)
    p[0] = 1.0
    p = p @ np.linalg.matrix_power(k, 4096)
    np.testing.assert_allclose(p, pi, atol=1e-6)


def test_hmc_leapfrog_is_reversible_volume_preserving_and_exact(x64):
    """HMC is exact because leapfrog is an involution after a momentum flip and has unit
    Jacobian, and the acceptance is ``min(1, exp(-dH))`` (Neal 2011, sec. 5.3.1): checked
    here; then one-leapfrog HMC equals MALA with ``h = eps^2 / 2`` on shared noise."""
    lp, sc = _fns(jnp.float64)
    x = jnp.asarray(_x0())
    p = jnp.asarray(np.random.default_rng(8).standard_normal((CHAINS, DIM)))
    lf = functools.partial(e.leapfrog, lp, step_size=0.2, num_leapfrog=5)
    u = jnp.asarray(np.random.default_rng(9).uniform(size=CHAINS))

    def flat(z):  # one chain's (x, p) -> (x*, p*), for the Jacobian
        xs, ps = lf(z[None, :DIM], z[None, DIM:])
        return jnp.concatenate([xs[0], ps[0]])

    @jax.jit
    def checks(x, p, u):  # one program: the round trip, the Jacobians, one HMC step
        x1, p1 = lf(x, p)
        x2, p2 = lf(x1, -p1)
        jac = jax.vmap(jax.jacfwd(flat))(jnp.concatenate([x, p], axis=1))  # (C, 4, 4)
        state = e.init_state(lp, x)
        _, info = e.hmc_step(lp, state, (p, u), step_size=0.2, num_leapfrog=5)
        d_h = e.hamiltonian(state.log_prob, p) - e.hamiltonian(lp(x1), p1)
        return x1, x2, p2, jac, info, d_h

    x1, x2, p2, jac, info, d_h = checks(x, p, u)
    acc = info.accepted
    assert int(info.num_evals) == 5
    np.testing.assert_allclose(np.asarray(info.acceptance_prob),
                               np.exp(np.minimum(np.asarray(d_h), 0.0)), rtol=1e-12)
    assert_close_to_oracle(x2, np.asarray(x), kind="long_loop")
    assert_close_to_oracle(-p2, np.asarray(p), kind="long_loop")
    assert float(jnp.max(jnp.abs(x1 - x))) > 0.1  # it moved
    np.testing.assert_allclose(np.linalg.det(np.asarray(jac)), 1.0, rtol=1e-10)
    np.testing.assert_array_equal(np.asarray(acc), np.asarray(jnp.log(u) < d_h))

    eps = 0.4
    xi, uu = _noise(10, STEPS)
    hmc_x, hmc_acc = e.hmc_from_noise(lp, x, (xi, uu), step_size=eps, num_leapfrog=1,
                                      return_trajectory=True)  # fmt: skip
    mala_x, mala_acc = e.mala_from_noise(lp, x, (xi, uu), step_size=eps**2 / 2,
                                         return_trajectory=True)  # fmt: skip
    np.testing.assert_array_equal(np.asarray(hmc_acc), np.asarray(mala_acc))
    assert_close_to_oracle(hmc_x, np.asarray(mala_x), kind="long_loop")


# ---------------------------------------------------------------------------------------
# Bad input, compile once
# ---------------------------------------------------------------------------------------


def test_bad_arguments_raise_value_error():
    lp, sc = _fns(jnp.float32)
    x0 = jnp.zeros((4, 2))
    key = jax.random.key(0)
    samplers = [
        functools.partial(e.mala, key, lp),
        functools.partial(e.metropolis_hastings, key, lp),
        functools.partial(e.hmc, key, lp, num_leapfrog=2),
    ]
    for sampler in samplers:
        for bad in (0.0, -0.1, float("nan")):
            with pytest.raises(ValueError, match="step_size"):
                sampler(x0, step_size=bad, num_steps=3)
        with pytest.raises(ValueError, match="num_steps"):
            sampler(x0, step_size=0.1, num_steps=0)
        with pytest.raises(ValueError, match="x0"):
            sampler(jnp.zeros(2), step_size=0.1, num_steps=3)
    wrong = lambda x: lp(x)[:, None]  # noqa: E731  (chains, 1) instead of (chains,)
    for fn in (e.mala, e.metropolis_hastings):
        with pytest.raises(ValueError, match=r"model must map x \(4, 2\) to log-densities"):
            fn(key, wrong, x0, step_size=0.1, num_steps=3)
    with pytest.raises(ValueError, match="model must map"):
        e.hmc(key, lambda x: jnp.sum(lp(x)), x0, step_size=0.1, num_leapfrog=2,
              num_steps=3)  # fmt: skip
    with pytest.raises(ValueError, match="num_leapfrog"):
        e.hmc(key, lp, x0, step_size=0.1, num_leapfrog=0, num_steps=3)
    with pytest.raises(ValueError, match="step_size"):
        e.langevin(key, sc, x0, step_size=0.0, num_steps=3)
    with pytest.raises(ValueError, match="num_steps"):
        e.langevin(key, sc, x0, step_size=0.1, num_steps=0)
    with pytest.raises(ValueError, match="model must map x .* to a score"):
        e.langevin(key, lp, x0, step_size=0.1, num_steps=3)
    with pytest.raises(ValueError, match="noise.uniform"):
        e.mala_from_noise(lp, x0, (jnp.zeros((3, 4, 2)), jnp.zeros((3, 5))), step_size=0.1)
    score2 = lambda x, s: sc(x)  # noqa: E731
    with pytest.raises(ValueError, match="sigmas"):
        e.annealed_langevin(key, score2, x0, sigmas=[0.1, 1.0], step_size=0.1,
                            num_steps_per_level=2)  # fmt: skip
    with pytest.raises(ValueError, match="num_steps_per_level"):
        e.annealed_langevin(key, score2, x0, sigmas=[1.0, 0.1], step_size=0.1,
                            num_steps_per_level=0)  # fmt: skip


def test_extreme_inputs_stay_finite_and_compile_once():
    """Chains started 1e3 away from every mode (log-density ~ -1e7) stay finite; a new
    step size reuses the compiled program (step_size is traced)."""
    lp, _ = _fns(jnp.float32)
    far = jnp.full((CHAINS, 2), 1e3, jnp.float32)
    xi, u = (jnp.asarray(a, jnp.float32) for a in _noise(2, STEPS))
    # the shapes and static arguments of test_mala_float32_matches_oracle: no new program
    x, acc = e.mala_from_noise(lp, far, (xi, u), step_size=1e-4, return_trajectory=True)
    assert bool(jnp.all(jnp.isfinite(x))) and bool(jnp.all(jnp.isfinite(acc)))
    with count_compilations() as compiled:
        e.mala_from_noise(lp, far, (xi, u), step_size=2e-4, return_trajectory=True)
    assert compiled[0] == 0


# ---------------------------------------------------------------------------------------
# Statistics (slow): moments within Monte Carlo error, ULA's step-size bias
# ---------------------------------------------------------------------------------------


def _augment(x, mean, cov):
    """Append the coordinate ``(x1 + x2)/sqrt 2``: its variance ``v^T Sigma v`` involves the
    off-diagonal covariance, which moment_ztest's per-dimension check would miss."""
    v = np.array([1.0, 1.0]) / math.sqrt(2.0)
    xa = np.concatenate([x, x @ v[:, None]], axis=-1)
    ma = np.concatenate([mean, [mean @ v]])
    ca = np.zeros((3, 3))
    ca[:2, :2] = cov
    ca[2, 2] = v @ cov @ v
    return xa, ma, ca


@pytest.mark.slow
def test_mala_mh_hmc_hit_mean_and_covariance():
    """16 chains x 1000 steps after 200 of burn-in from an over-dispersed start; the
    effective sample size is the sum of the chains' ESS (Geyer); mean and variance z-tests
    at alpha = 1e-3 (Bonferroni) on two targets of one shape (so one program per
    sampler): a correlated Gaussian (two equal components) and the asymmetric mixture."""
    gauss = targets.GaussianMixture.create([0.5, 0.5], [[1.0, -2.0]] * 2, [C[0] * 2] * 2,
                                           dtype=jnp.float32)  # fmt: skip
    mixture = _target(jnp.float32)
    chains, burn, keep = 16, 200, 1000
    x0 = jnp.asarray(np.random.default_rng(0).normal(size=(chains, 2)) * 3)
    n = burn + keep
    samplers = {
        "mala": lambda k, t: e.mala(k, t.log_prob, x0, step_size=0.25, num_steps=n,
                                    return_trajectory=True),
        "mh": lambda k, t: e.metropolis_hastings(k, t.log_prob, x0, step_size=1.0,
                                                 num_steps=n, return_trajectory=True),
        "hmc": lambda k, t: e.hmc(k, t.log_prob, x0, step_size=0.3, num_leapfrog=4,
                                  num_steps=n, return_trajectory=True),
    }  # fmt: skip
    for name, run in samplers.items():
        for tname, t in (("gaussian", gauss), ("mixture", mixture)):
            # The target's own density, traced: one program for both targets.
            traj, acc = run(jax.random.key(11), t)
            assert 0.3 < float(acc.mean()) < 0.99, (name, tname, acc.mean())
            x = np.asarray(traj[burn:], np.float64)  # (keep, chains, 2)
            xa, ma, ca = _augment(x, np.asarray(t.mean(), np.float64),
                                  np.asarray(t.covariance(), np.float64))  # fmt: skip
            ess = sum(effective_sample_size(xa[:, c]) for c in range(chains))
            moment_ztest(xa.reshape(-1, 3), ma, ca, ess=ess, check_variance=True)


@pytest.mark.slow
def test_ula_stationary_variance_and_its_step_size_bias():
    """ULA on N(0, s^2) is the AR(1) chain ``x' = (1 - h/s^2) x + sqrt(2h) xi`` with
    stationary variance ``2h / (1 - (1 - h/s^2)^2) = s^2 + h/2 + O(h^2)`` (s = 1). 8192
    independent chains run 400 steps from 0 (mixing factor (1-h)^400 < 1e-18), so the
    final states are i.i.d. draws: their variance matches the closed form at every h, the
    true variance s^2 is rejected at the two larger steps, and the bias halves with h."""
    s2 = 1.0
    score = lambda x: -x / s2  # noqa: E731
    run = jax.jit(lambda k, h: e.langevin(k, score, jnp.zeros((8192, 1)), step_size=h,
                                          num_steps=400))  # fmt: skip
    bias = []
    for i, h in enumerate((0.4, 0.2, 0.1)):
        v_h = oracle.ula_gaussian_stationary_variance(h, s2)
        x = np.asarray(run(jax.random.key(i), h), np.float64)
        moment_ztest(x, [0.0], [[v_h]], check_variance=True)
        if h >= 0.2:
            assert not moment_ztest(x, [0.0], [[s2]], check_variance=True,
                                    raise_on_failure=False)  # fmt: skip
        bias.append(v_h - s2)
    # bias of order h**LANGEVIN_ORDER: bias(h) / bias(h/2) -> 2**order from above (the
    # O(h^2) term of h / (2 - h) is positive)
    want = 2.0**e.LANGEVIN_ORDER
    assert want < bias[0] / bias[1] < 1.15 * want and want < bias[1] / bias[2] < 1.1 * want
