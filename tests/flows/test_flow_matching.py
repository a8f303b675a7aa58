"""Flow matching: paths and loss against the NumPy oracle, the exact Gaussian marginal
velocity (its regression optimality, its ODE and its likelihood), the exact OT coupling,
a short training run, and the recipes."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genjax import targets, testing
from genjax.flows import cnf, ot
from genjax.flows import flow_matching as fm
from genjax.flows import oracle_continuous as oracle

MEAN = np.array([1.0, -2.0])
COV = np.array([[2.0, 0.6], [0.6, 0.5]])  # anisotropic and correlated
T_GRID = np.array([0.0, 0.1, 0.37, 0.5, 0.9, 1.0])  # both ends exactly
CASES = [("condot", 0.0), ("condot", 0.05), ("vp", 0.0)]


def _linear_apply(params, x, t):
    # v(x, t) = A x + t b: an affine field the oracle evaluates in NumPy.
    return x @ params["A"].T + t[:, None] * params["b"][None]


LINEAR = {"A": np.array([[0.4, -0.3], [0.2, 0.9]]), "b": np.array([0.5, -1.0])}


def _linear_model(dtype):
    """The affine field as a model: a ``Partial`` whose leaves are A and b."""
    params = {k: jnp.asarray(v, dtype) for k, v in LINEAR.items()}
    return jax.tree_util.Partial(_linear_apply, params)


def _linear_np(x, t):
    return x @ LINEAR["A"].T + t[:, None] * LINEAR["b"][None]


def _exact_field(path="condot", sigma_min=0.0):
    return lambda x, t: fm.gaussian_marginal_velocity(
        x, t, jnp.asarray(MEAN, x.dtype), jnp.asarray(COV, x.dtype), path=path,
        sigma_min=sigma_min)


# --------------------------------------------------------------------------- paths and loss


@pytest.mark.parametrize("path, sigma_min", CASES)
def test_path_coefficients_match_oracle_and_derivatives(x64, path, sigma_min):
    t = jnp.asarray(T_GRID)
    got = fm.path_coefficients(t, path=path, sigma_min=sigma_min)
    want = oracle.path_coefficients(T_GRID, path, sigma_min)
    testing.assert_close_to_oracle(got, want)
    # alpha', sigma' are the time derivatives of alpha, sigma (inside (0, 1)).
    inner = jnp.asarray([0.1, 0.37, 0.5, 0.9])
    d_alpha = jax.vmap(jax.grad(lambda s: fm.path_coefficients(s, path=path,
                                                               sigma_min=sigma_min)[0]))(inner)
    d_sigma = jax.vmap(jax.grad(lambda s: fm.path_coefficients(s, path=path,
                                                               sigma_min=sigma_min)[1]))(inner)
    _, _, da, ds = fm.path_coefficients(inner, path=path, sigma_min=sigma_min)
    np.testing.assert_allclose(d_alpha, da, rtol=1e-12)
    np.testing.assert_allclose(d_sigma, ds, rtol=1e-12)
    a, s, _, _ = got
    if path == "condot":  # the path ends: source at t = 0, data (+ sigma_min x0) at t = 1
        np.testing.assert_allclose([a[0], s[0], a[-1], s[-1]], [0.0, 1.0, 1.0, sigma_min])
    assert np.all(np.isfinite(np.asarray(got)))


@pytest.mark.parametrize("path, sigma_min", CASES)
def test_conditional_loss_matches_oracle_on_shared_noise(x64, path, sigma_min):
    k0, k1, kt = jax.random.split(jax.random.key(0), 3)
    x0 = jax.random.normal(k0, (6, 2), jnp.float64)
    x1 = jax.random.normal(k1, (6, 2), jnp.float64) * 2.0 + 1.0
    t = jnp.asarray(T_GRID)
    got, metrics = fm.conditional_loss(_linear_model(jnp.float64), x0, x1, t, path=path,
                                       sigma_min=sigma_min)
    want = oracle.cfm_loss(_linear_np, np.asarray(x0), np.asarray(x1), T_GRID, path, sigma_min)
    testing.assert_close_to_oracle(got, np.asarray(want))
    assert float(metrics["cfm"]) == float(got) and float(got) > 1.0
    x_t, u_t = fm.sample_path(x0, x1, t, path=path, sigma_min=sigma_min)
    testing.assert_close_to_oracle((x_t, u_t), oracle.sample_path(
        np.asarray(x0), np.asarray(x1), T_GRID, path, sigma_min))


@pytest.mark.parametrize("coupling_name", ["independent", "ot"])
def test_loss_draws_documented_noise_jit_and_eager(coupling_name):
    key = jax.random.key(3)
    x1 = jax.random.normal(jax.random.key(4), (8, 2)) * 3.0
    model = _linear_model(jnp.float32)
    eager, _ = fm.loss(model, x1, key, coupling=coupling_name)
    # The documented draws: x0_key, t_key = split(key); x0 ~ N(0, I), t ~ U[0, 1).
    x0_key, t_key = jax.random.split(key)
    x0 = jax.random.normal(x0_key, x1.shape)
    t = jax.random.uniform(t_key, (8,))
    x0_np = np.asarray(x0, np.float64)
    if coupling_name == "ot":
        cost = ((np.asarray(x1, np.float64)[:, None] - x0_np[None]) ** 2).sum(-1)
        x0_np = x0_np[oracle.brute_force_assignment(cost)[0]]
    want = oracle.cfm_loss(_linear_np, x0_np, np.asarray(x1), np.asarray(t, np.float64))
    testing.assert_close_to_oracle(eager, np.asarray(want))
    if coupling_name == "ot":  # the same under jit (the assignment is one XLA program)
        jitted, _ = jax.jit(lambda m, x, k: fm.loss(m, x, k, coupling="ot"))(model, x1, key)
        np.testing.assert_allclose(jitted, eager, rtol=1e-6)


# --------------------------------------------------------------------------- OT coupling

PERMUTATION_SIZE = 8


def test_assignment_equals_brute_force_on_batches_of_8():
    rng = np.random.default_rng(0)
    perms = np.array(list(itertools.permutations(range(PERMUTATION_SIZE))))
    lsa = jax.jit(ot.linear_sum_assignment)
    for _ in range(5):
        x0 = rng.normal(size=(8, 2))
        x1 = rng.normal(size=(8, 2)) * 2.0
        cost = ((x1[:, None] - x0[None]) ** 2).sum(-1)  # (8, 8): rows x1, columns x0
        col = np.asarray(lsa(jnp.asarray(cost, jnp.float32)))
        _, best = oracle.brute_force_assignment(cost)
        assert sorted(col) == list(range(8))
        assert cost[np.arange(8), col].sum() == pytest.approx(best, rel=1e-6)
        # ... and it is the unique optimum here (no ties among the 8! permutations).
        totals = cost[np.arange(8)[None], perms].sum(1)
        assert np.sum(totals <= best * (1 + 1e-9)) == 1
        np.testing.assert_array_equal(col, oracle.brute_force_assignment(cost)[0])
    # Larger and with negative costs, against the oracle's own Jonker-Volgenant solver.
    cost = rng.normal(size=(24, 24))
    col = np.asarray(ot.linear_sum_assignment(jnp.asarray(cost, jnp.float32)))
    ref = oracle.hungarian(cost)
    assert cost[np.arange(24), col].sum() == pytest.approx(cost[np.arange(24), ref].sum(),
                                                           abs=1e-4)


def test_ot_pair_reorders_x0_to_match_x1():
    # x0 is x1 shuffled by a 3-cycle (not an involution: its inverse is a different
    # permutation), plus a little noise. The right pairing sends each x1[j] its own copy.
    rng = np.random.default_rng(1)
    x1 = rng.normal(size=(8, 2)) * 3.0
    perm = np.array([1, 2, 0, 3, 4, 5, 7, 6])
    x0 = x1[perm] + 0.01 * rng.normal(size=(8, 2))
    paired = np.asarray(ot.ot_pair(jnp.asarray(x0), jnp.asarray(x1)))
    np.testing.assert_allclose(paired, x1, atol=0.05)  # pairs (x0_paired[j], x1[j])
    # The reverse convention (permuting x1 instead, or applying the inverse permutation)
    # would pair wrong points: torchcfm PR 178.
    assert np.max(np.abs(x0[np.argsort(np.argsort(perm))] - x1)) > 1.0
    assert np.max(np.abs(x0 - x1)) > 1.0


# --------------------------------------------------------------------------- exact field


@pytest.mark.parametrize("path, sigma_min", CASES)
def test_gaussian_marginal_velocity_matches_oracle_and_mixture_form(x64, path, sigma_min):
    x = jax.random.normal(jax.random.key(5), (6, 2), jnp.float64) * 2.0
    t = jnp.asarray(T_GRID)
    got = fm.gaussian_marginal_velocity(x, t, MEAN, COV, path=path, sigma_min=sigma_min)
    want = oracle.gaussian_marginal_velocity(np.asarray(x), T_GRID, MEAN, COV, path, sigma_min)
    testing.assert_close_to_oracle(got, want)
    target = targets.GaussianMixture.create(np.ones(1), MEAN[None], COV[None])
    mixed = fm.mixture_marginal_velocity(target, x, t, path=path, sigma_min=sigma_min)
    testing.assert_close_to_oracle(mixed, want)
    # At t = 0 on CondOT: u_0(x) = m - (1 - sigma_min) x (E[x1 | x0] = m): finite and correct.
    if path == "condot":
        np.testing.assert_allclose(got[0], MEAN - (1 - sigma_min) * np.asarray(x[0]))


def test_marginal_velocity_minimises_the_cfm_loss_by_regression(x64):
    # Regress the conditional target u on (x_t, 1) at fixed t over many draws: the least
    # squares solution is E[u | x_t], which for Gaussians is affine — the closed form.
    n = 200_000
    k0, k1 = jax.random.split(jax.random.key(6))
    x0 = jax.random.normal(k0, (n, 2), jnp.float64)
    x1 = MEAN[None] + jax.random.normal(k1, (n, 2), jnp.float64) @ np.linalg.cholesky(COV).T
    probe = np.array([[0.0, 0.0], [1.0, -1.0], [-1.0, 2.0]])
    for t_val in (0.3, 0.8):
        x_t, u = fm.sample_path(x0, x1, jnp.full((n,), t_val))
        design = np.concatenate([np.asarray(x_t), np.ones((n, 1))], axis=1)  # (n, 3)
        coef, *_ = np.linalg.lstsq(design, np.asarray(u), rcond=None)  # (3, 2)
        fitted = np.concatenate([probe, np.ones((3, 1))], axis=1) @ coef
        exact = fm.gaussian_marginal_velocity(jnp.asarray(probe), jnp.full((3,), t_val),
                                              MEAN, COV)
        # Residual noise has std <~ 1.5; coefficients have Monte Carlo error ~ 1.5/sqrt(n)
        # ~ 3e-3 per unit of |x|: 0.03 is ~5 standard errors at the probe points.
        np.testing.assert_allclose(fitted, exact, atol=0.03)
        # The field is far from trivial here (a zero or sign-flipped field fails).
        assert np.min(np.linalg.norm(np.asarray(exact), axis=1)) > 0.5


@pytest.mark.parametrize("sigma_min", [0.0, 0.1])
def test_ode_with_exact_field_maps_source_to_target_moments(x64, sigma_min):
    # The exact field is affine in x, so the flow map is affine: x(1) = c + Phi z. Pushing
    # 0 and the basis vectors gives c and Phi; the law of x(1) is N(c, Phi Phi^T).
    field = _exact_field(sigma_min=sigma_min)
    pts = jnp.concatenate([jnp.zeros((1, 2)), jnp.eye(2)]).astype(jnp.float64)  # (3, 2)
    out = np.asarray(fm.sample_from_noise(field, pts, num_steps=50))
    c, phi = out[0], (out[1:] - out[0]).T
    # p_1 = N(m, S + sigma_min^2 I) (the CondOT path ends with width sigma_min).
    # RK4 with 50 steps on a smooth linear ODE: error ~ 1e-8.
    np.testing.assert_allclose(c, MEAN, atol=1e-6)
    np.testing.assert_allclose(phi @ phi.T, COV + sigma_min**2 * np.eye(2), atol=1e-6)


def test_exact_field_samples_and_likelihood(x64):
    field = _exact_field()
    target = targets.GaussianMixture.create(np.ones(1), MEAN[None], COV[None])
    x = target.sample(jax.random.key(7), 6)
    # Likelihood through the CNF log-prob equals the target's exact density (RK4 error).
    np.testing.assert_allclose(fm.log_prob(field, x, num_steps=50), target.log_prob(x),
                               atol=1e-6)
    samples = fm.sample(jax.random.key(8), field, (2000, 2), num_steps=20, dtype=jnp.float64)
    assert testing.moment_ztest(np.asarray(samples), MEAN, COV)


def test_extreme_times_are_finite():
    x = jnp.array([[1e3, -1e3], [0.0, 0.0]])
    t = jnp.array([0.0, 1.0])
    for path in fm.PATHS:
        x_t, u_t = fm.sample_path(x, x, t, path=path)
        assert np.all(np.isfinite(np.asarray(x_t))) and np.all(np.isfinite(np.asarray(u_t)))
    # CondOT at t = 1: u_1(x) = x - E[x0 | x1 = x] = x (x0 is independent of x1); at t = 0:
    # u_0(x) = E[x1] - x. A scalar t shares one noised mixture across the batch.
    target = targets.ring()
    pts = jnp.array([[4.0, 0.0], [0.5, -0.5]])
    v1 = jax.jit(lambda p, s: fm.mixture_marginal_velocity(target, p, s))
    np.testing.assert_allclose(v1(pts, jnp.float32(1.0)), pts, atol=1e-5)
    np.testing.assert_allclose(v1(pts, jnp.float32(0.0)), -pts, atol=1e-5)


# --------------------------------------------------------------------------- bad input


def test_bad_arguments_raise():
    x = jnp.ones((4, 2))
    model = _linear_model(jnp.float32)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="path"):
        fm.loss(model, x, key, path="cosine")
    with pytest.raises(ValueError, match="coupling"):
        fm.loss(model, x, key, coupling="sinkhorn")
    with pytest.raises(ValueError, match="batch"):
        fm.loss(model, jnp.ones((4,)), key)
    with pytest.raises(ValueError, match="sigma_min"):
        fm.path_coefficients(jnp.array([0.5]), sigma_min=1.0)
    with pytest.raises(ValueError, match="t must be in"):
        fm.path_coefficients(jnp.array([0.5, 1.5]))
    with pytest.raises(ValueError, match="t must be in"):
        fm.sample_path(x, x, jnp.array([-0.1, 0.0, 0.5, 1.0]))
    with pytest.raises(ValueError, match="x0 must have the shape of x1"):
        ot.ot_pair(jnp.ones((4, 2)), jnp.ones((5, 2)))
    with pytest.raises(ValueError, match="cost"):
        ot.linear_sum_assignment(jnp.ones((3, 4)))
    with pytest.raises(ValueError, match="num_steps"):
        fm.sample(key, _exact_field(), (4, 2), num_steps=0)
    with pytest.raises(ValueError, match="method"):
        fm.sample_from_noise(_exact_field(), x, method="rk45")
    with pytest.raises(ValueError, match="t must have shape"):
        fm.conditional_loss(model, x, x, jnp.ones((3,)))


# --------------------------------------------------------------------------- training


@pytest.mark.slow
def test_learned_field_approaches_the_exact_marginal_velocity():
    target = targets.GaussianMixture.create(np.ones(1), MEAN[None], COV[None])
    net = cnf.mlp_field(jax.random.key(0), 2, (32, 32))  # the model: an nnx module, trained whole
    opt = optax.adam(2e-2)

    @jax.jit
    def train(net, key):
        def step(carry, k):
            m, o = carry
            data_key, loss_key = jax.random.split(k)
            x1 = target.sample(data_key, 256)
            g = jax.grad(lambda m: fm.loss(m, x1, loss_key)[0])(m)
            upd, o = opt.update(g, o, m)
            return (optax.apply_updates(m, upd), o), None

        (net, _), _ = jax.lax.scan(step, (net, opt.init(net)), jax.random.split(key, 150))
        return net

    @jax.jit
    def field_error(net, key):
        # Relative L2 error of v_theta against u_t on x_t ~ p_t at t = 0.2 .. 0.8.
        k0, k1 = jax.random.split(key)
        t = jnp.repeat(jnp.array([0.2, 0.5, 0.8]), 200)
        x_t, _ = fm.sample_path(jax.random.normal(k0, (600, 2)), target.sample(k1, 600), t)
        exact = fm.gaussian_marginal_velocity(x_t, t, MEAN, COV)
        err = net(x_t, t) - exact
        return jnp.sqrt(jnp.sum(err**2) / jnp.sum(exact**2))

    before = float(field_error(net, jax.random.key(1)))
    trained = train(net, jax.random.key(2))
    after = float(field_error(trained, jax.random.key(1)))
    # 150 Adam steps: the field is within ~10% of the exact marginal velocity (from ~100%).
    assert after < 0.15 and after < 0.2 * before, (before, after)


# --------------------------------------------------------------------------- recipes


@pytest.mark.slow
def test_flow_matching_recipe_trains_samples_and_reports(tmp_path, monkeypatch):
    from genjax import data
    from genjax.flows import recipes as rc

    recipe = next(r for r in rc.RECIPES if r.name == "flow-matching")
    train = jnp.asarray(data.load("ring", split="train")[:256])
    params = recipe.init(jax.random.key(0), train)
    opt = optax.adam(recipe.learning_rate)

    @jax.jit
    def step(params, opt_state, key):
        (loss, _), grads = jax.value_and_grad(recipe.loss, has_aux=True)(params, train[:64], key)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    opt_state = opt.init(params)
    losses = []
    for i in range(8):
        params, opt_state, loss = step(params, opt_state, jax.random.key(i))
        losses.append(float(loss))
    assert np.all(np.isfinite(losses)) and np.mean(losses[-3:]) < np.mean(losses[:3])
    # Small report: fewer samples, one step count (the compiled sampler is shared).
    monkeypatch.setattr(rc, "REPORT_SAMPLES", 64)
    monkeypatch.setattr(rc, "FM_REPORT_STEPS", (rc.FM_SAMPLE_STEPS,))
    x = recipe.sample(jax.random.key(1), params, 64)
    assert x.shape == (64, 2) and bool(jnp.all(jnp.isfinite(x)))
    with pytest.raises(ValueError, match="steps"):
        recipe.sample(jax.random.key(1), params, 4, steps=0)
    out = recipe.report(jax.random.key(2), params, train, train[:64], tmp_path)
    for name in ("samples.png", "trajectories.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert np.isfinite(out["test_log_likelihood"]) and out["test_log_likelihood"] < 0
    assert np.isfinite(out[f"energy_distance_{rc.FM_SAMPLE_STEPS}_steps"])
