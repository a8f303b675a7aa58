"""genjax.ode against exact solutions: matrix exponentials, measured orders, pytrees."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import expm

from genjax import ode

# A damped, non-normal 3-D linear system dy/dt = A y: exact y(t) = expm(A t) y0.
A = np.array([[-0.4, 1.5, 0.0], [-1.5, -0.4, 0.3], [0.2, 0.0, -0.8]])
Y0 = np.array([1.0, -0.5, 2.0])
T0, T1 = 0.3, 2.3


def linear_field(t, y):
    return jnp.asarray(A, dtype=y.dtype) @ y


def exact(t0, t1, y0=Y0):
    return expm(A * (t1 - t0)) @ y0


# Global error at h = (T1 - T0) / 200 = 0.01 is ~ C h^p; these bounds are 5-10x the
# errors measured on this system (euler 6.7e-3, heun 4.0e-5, rk4 4.8e-10), leaving room
# for platform differences while failing for a method of lower order than claimed.
FIXED_BOUNDS = {"euler": 4e-2, "heun": 2e-4, "rk4": 5e-9}


@pytest.mark.parametrize("method", ode.FIXED_STEP_METHODS)
def test_fixed_step_matches_expm(x64, method):
    y1 = ode.solve(linear_field, jnp.asarray(Y0), T0, T1, num_steps=200, method=method)
    assert y1.dtype == jnp.float64
    np.testing.assert_allclose(y1, exact(T0, T1), rtol=0, atol=FIXED_BOUNDS[method])


@pytest.mark.parametrize("rtol", [1e-5, 1e-9])
def test_dopri5_matches_expm_to_tolerance(x64, rtol):
    y1, stats = ode.solve(
        linear_field,
        jnp.asarray(Y0),
        T0,
        T1,
        method="dopri5",
        rtol=rtol,
        atol=rtol,
        return_stats=True,
    )
    # The controller bounds the local error per step by ~tol; the global error of a
    # contracting linear system stays within a small multiple of it (here 10x).
    np.testing.assert_allclose(y1, exact(T0, T1), rtol=0, atol=10 * rtol)
    assert 0 < int(stats["num_accepted"]) < 200


def test_dopri5_tighter_tolerance_takes_more_steps(x64):
    counts = []
    for tol in (1e-4, 1e-8):
        _, stats = ode.solve(
            linear_field,
            jnp.asarray(Y0),
            T0,
            T1,
            method="dopri5",
            rtol=tol,
            atol=tol,
            return_stats=True,
        )
        counts.append(int(stats["num_accepted"]))
    assert counts[1] > counts[0]


@pytest.mark.parametrize("method", ode.FIXED_STEP_METHODS)
def test_measured_convergence_order(x64, method):
    steps = np.array([16, 32, 64, 128])
    errors = [
        np.max(
            np.abs(
                ode.solve(linear_field, jnp.asarray(Y0), T0, T1, num_steps=int(n), method=method)
                - exact(T0, T1)
            )
        )
        for n in steps
    ]
    # Least-squares slope of log(error) against log(h), h = (T1 - T0) / n.
    slope = np.polyfit(np.log((T1 - T0) / steps), np.log(errors), 1)[0]
    # The order each tableau declares beside its coefficients.
    assert abs(slope - ode.TABLEAUS[method].order) < 0.3, (method, slope, errors)


@pytest.mark.parametrize("name", list(ode.TABLEAUS))
def test_rk_step_measured_order_every_tableau(x64, name):
    # The public step, (model, state, h) -> (state, info), looped at fixed h: every tableau
    # (dopri5's fifth-order solution included) converges at the order it declares.
    tableau = ode.TABLEAUS[name]

    def run(n):
        h = jnp.asarray((T1 - T0) / n)

        def body(state, _):
            state, info = ode.rk_step(linear_field, state, h, tableau=tableau)
            return state, info.num_evals

        init = ode.rk_init(linear_field, jnp.asarray(T0), jnp.asarray(Y0), tableau=tableau)
        state, evals = jax.lax.scan(body, init, None, length=n)
        return state, evals

    steps = np.array([8, 16, 32, 64])
    errors = [np.max(np.abs(np.asarray(run(int(n))[0].y) - exact(T0, T1))) for n in steps]
    slope = np.polyfit(np.log((T1 - T0) / steps), np.log(errors), 1)[0]
    assert abs(slope - tableau.order) < 0.3, (name, slope, errors)
    state, evals = run(4)
    np.testing.assert_allclose(float(state.t), T1, rtol=1e-14)
    assert np.all(np.asarray(evals) == tableau.num_evals)
    assert (state.k is None) == (not tableau.fsal)


def test_save_trajectory_is_a_deprecated_name_of_return_trajectory():
    y0 = jnp.asarray(Y0, jnp.float32)
    with pytest.warns(DeprecationWarning, match="return_trajectory"):
        old = ode.solve(linear_field, y0, T0, T1, num_steps=5, save_trajectory=True)
    new = ode.solve(linear_field, y0, T0, T1, num_steps=5, return_trajectory=True)
    np.testing.assert_array_equal(old[1], new[1])


@pytest.mark.parametrize("name", ["euler", "heun", "rk4", "dopri5"])
def test_tableau_consistency(name):
    tab = ode.TABLEAUS[name]
    # Row sums equal the nodes: c_i = sum_j a_ij.
    for c_i, row in zip(tab.c[1:], tab.a, strict=True):
        assert abs(sum(row) - c_i) < 1e-14
    # Quadrature order conditions sum_i b_i c_i^(k-1) = 1/k for k <= order.
    for k in range(1, tab.order + 1):
        assert abs(sum(b * c ** (k - 1) for b, c in zip(tab.b, tab.c, strict=True)) - 1 / k) < 1e-14
    if tab.b_error is not None:
        assert abs(sum(tab.b_error)) < 1e-14  # both weight sets sum to 1


def test_float32_default_dtype():
    y1 = ode.solve(linear_field, jnp.asarray(Y0, jnp.float32), T0, T1, num_steps=50)
    assert y1.dtype == jnp.float32
    # float32 round-off over 50 RK4 steps (~1e-6 relative); truncation error ~1e-8.
    np.testing.assert_allclose(y1, exact(T0, T1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["rk4", "dopri5"])
def test_pytree_state(x64, method):
    # Two decoupled systems in one pytree: a linear 3-vector and y' = -2 y on (2, 1).
    y0 = {"lin": jnp.asarray(Y0), "decay": (jnp.array([[1.0], [-3.0]]),)}

    def f(t, y):
        return {"lin": linear_field(t, y["lin"]), "decay": (-2.0 * y["decay"][0],)}

    y1 = ode.solve(f, y0, T0, T1, num_steps=100, method=method, rtol=1e-9, atol=1e-9)
    assert jax.tree_util.tree_structure(y1) == jax.tree_util.tree_structure(y0)
    np.testing.assert_allclose(y1["lin"], exact(T0, T1), atol=1e-7)
    np.testing.assert_allclose(
        y1["decay"][0], np.exp(-2.0 * (T1 - T0)) * np.array([[1.0], [-3.0]]), atol=1e-7
    )


@pytest.mark.parametrize("method", ["euler", "rk4", "dopri5"])
def test_backward_integration(x64, method):
    y_end = exact(T0, T1)
    back = ode.solve(
        linear_field, jnp.asarray(y_end), T1, T0, num_steps=400, method=method, rtol=1e-9, atol=1e-9
    )
    # Backwards the system expands (expm(-A T)), so errors grow; measured: euler 8e-3
    # (first order, h = 5e-3), rk4 7e-11, dopri5 1.7e-9 (tolerance 1e-9); bounds ~6-100x.
    atol = {"euler": 5e-2, "rk4": 1e-8, "dopri5": 1e-7}[method]
    np.testing.assert_allclose(back, Y0, atol=atol)


def test_time_dependent_field(x64):
    # y' = cos(t) y  =>  y(t1) = y0 exp(sin t1 - sin t0): checks stage times t + c_i h.
    f = lambda t, y: jnp.cos(t) * y
    want = 2.0 * np.exp(np.sin(T1) - np.sin(T0))
    for method in ("rk4", "dopri5"):
        got = ode.solve(
            f, jnp.array(2.0), T0, T1, num_steps=100, method=method, rtol=1e-10, atol=1e-10
        )
        np.testing.assert_allclose(got, want, rtol=1e-8)


@pytest.mark.parametrize("method", ["heun", "dopri5"])
def test_return_trajectory(x64, method):
    n = 40
    ts, ys = ode.solve(
        linear_field,
        jnp.asarray(Y0),
        T0,
        T1,
        num_steps=n,
        method=method,
        return_trajectory=True,
        rtol=1e-9,
        atol=1e-9,
    )
    assert ts.shape == (n + 1,) and ys.shape == (n + 1, 3)
    np.testing.assert_allclose(ts, np.linspace(T0, T1, n + 1), atol=1e-14)
    assert float(ts[-1]) == T1
    np.testing.assert_array_equal(ys[0], Y0)
    want = np.stack([exact(T0, float(t)) for t in ts])
    # heun at h = 0.05: global error ~ C h^2 ~ 4e-4 (C from test_fixed_step_matches_expm);
    # dopri5 steps onto every output time and meets its tolerance there.
    np.testing.assert_allclose(ys, want, atol=4e-3 if method == "heun" else 1e-7)
    # The saved end point is the plain solve's answer.
    y1 = ode.solve(
        linear_field, jnp.asarray(Y0), T0, T1, num_steps=n, method=method, rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(ys[-1], y1, atol=1e-8)


@pytest.mark.parametrize("method", ["rk4", "dopri5"])
def test_jit_equals_eager_and_compiles_once(method):
    traces = []

    def f(t, y):
        traces.append(None)
        return linear_field(t, y)

    run = jax.jit(lambda y0: ode.solve(f, y0, T0, T1, num_steps=20, method=method))
    y0 = jnp.asarray(Y0, jnp.float32)
    first = run(y0)
    n_traced = len(traces)
    second = run(2.0 * y0)
    assert len(traces) == n_traced  # the second call reuses the compiled program
    eager = ode.solve(linear_field, y0, T0, T1, num_steps=20, method=method)
    np.testing.assert_allclose(first, eager, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(second, 2.0 * np.asarray(first), rtol=1e-5, atol=1e-6)


def test_grad_through_fixed_step(x64):
    # y' = -k y  =>  y(1) = y0 exp(-k);  d y(1) / dk = -y0 exp(-k).
    def final(k):
        return ode.solve(lambda t, y: -k * y, jnp.array(1.5), 0.0, 1.0, num_steps=100)

    k = 0.7
    np.testing.assert_allclose(jax.grad(final)(k), -1.5 * np.exp(-k), rtol=1e-8)
    # The Jacobian of the flow map of a linear system is expm(A T).
    jac = jax.jacrev(lambda y0: ode.solve(linear_field, y0, T0, T1, num_steps=100, method="rk4"))(
        jnp.asarray(Y0)
    )
    np.testing.assert_allclose(jac, expm(A * (T1 - T0)), atol=1e-8)


def test_forward_mode_through_dopri5(x64):
    jvp = jax.jvp(
        lambda y0: ode.solve(linear_field, y0, T0, T1, method="dopri5", rtol=1e-9, atol=1e-9),
        (jnp.asarray(Y0),),
        (jnp.array([1.0, 0.0, 0.0]),),
    )[1]
    np.testing.assert_allclose(jvp, expm(A * (T1 - T0))[:, 0], atol=1e-6)


def test_zero_length_interval_returns_y0():
    for method in ("euler", "rk4", "dopri5"):
        y = ode.solve(linear_field, jnp.asarray(Y0, jnp.float32), 1.0, 1.0, method=method)
        np.testing.assert_array_equal(y, np.asarray(Y0, np.float32))


def test_max_steps_exhausted_is_nan():
    y = ode.solve(
        linear_field, jnp.asarray(Y0, jnp.float32), T0, T1, method="dopri5", rtol=1e-6, max_steps=2
    )
    assert np.all(np.isnan(y))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "rk45"}, "method"),
        ({"num_steps": 0}, "num_steps"),
        ({"num_steps": 2.5}, "num_steps"),
        ({"rtol": 0.0}, "rtol"),
        ({"atol": -1e-6}, "atol"),
        ({"max_steps": 0}, "max_steps"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ode.solve(linear_field, jnp.asarray(Y0, jnp.float32), 0.0, 1.0, **kwargs)


def test_integer_state_rejected():
    with pytest.raises(ValueError, match="y0"):
        ode.solve(lambda t, y: y, jnp.arange(3), 0.0, 1.0)


def test_dopri5_nonlinear_matches_scipy(x64):
    from scipy.integrate import solve_ivp

    # Van der Pol oscillator (mu = 1): no closed form; reference from scipy's DOP853 at 1e-13.
    def vdp(t, y):
        return jnp.stack([y[1], (1.0 - y[0] ** 2) * y[1] - y[0]])

    vdp_np = lambda t, y: np.array([y[1], (1.0 - y[0] ** 2) * y[1] - y[0]])
    ref = solve_ivp(vdp_np, (0.0, 5.0), [2.0, 0.0], method="DOP853", rtol=1e-13, atol=1e-13)
    tol = 1e-6
    y1, stats = ode.solve(
        vdp,
        jnp.array([2.0, 0.0]),
        0.0,
        5.0,
        method="dopri5",
        rtol=tol,
        atol=tol,
        return_stats=True,
    )
    # The controller bounds local, not global, error: measured 3.8e-6 here (scipy's RK45,
    # the same Dormand-Prince pair, 4.0e-6); 20x tol leaves room without hiding a bug.
    np.testing.assert_allclose(y1, ref.y[:, -1], atol=20 * tol)
    # Same pair, same controller: the same number of accepted steps as scipy's RK45 (+-10%).
    scipy_steps = solve_ivp(vdp_np, (0.0, 5.0), [2.0, 0.0], method="RK45", rtol=tol, atol=tol)
    n_scipy = scipy_steps.t.size - 1
    assert abs(int(stats["num_accepted"]) - n_scipy) <= max(2, 0.1 * n_scipy)


def test_dopri5_non_finite_field_stops_with_nan():
    # f is NaN from the start: the step size turns NaN, the loop stops at once (not after
    # max_steps iterations) and the result is NaN rather than a silently wrong value.
    y, stats = ode.solve(
        lambda t, y: y * jnp.nan, jnp.ones(2), 0.0, 1.0, method="dopri5", return_stats=True
    )
    assert np.all(np.isnan(y))
    assert int(stats["num_accepted"]) + int(stats["num_rejected"]) <= 1
