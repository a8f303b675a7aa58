"""Continuous normalizing flows: exact log-determinants, the NumPy RK4 oracle, Hutchinson."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.flows import cnf
from genjax.flows import oracle_continuous as oracle
from genjax.testing import count_compilations

A = np.array([[0.3, -0.7, 0.1], [0.5, -0.2, 0.4], [-0.3, 0.2, 0.6]])  # tr A = 0.7


def _linear_field(a):
    # Constants are cast at call time: a float64 test must not see float32 weights.
    return lambda x, t: x @ jnp.asarray(a, x.dtype).T  # dx/dt = A x


def _tanh_params(dim=3, hidden=5, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "w1": rng.normal(size=(hidden, dim)),
        "b1": rng.normal(size=hidden) * 0.3,
        "c": rng.normal(size=hidden),
        "w2": rng.normal(size=(dim, hidden)) * 0.7,
        "b2": rng.normal(size=dim) * 0.1,
    }


TANH = _tanh_params()


def _tanh_field(params):
    def field(x, t):  # W2 tanh(W1 x + b1 + c t) + b2, the oracle's tanh_field
        p = {k: jnp.asarray(v, x.dtype) for k, v in params.items()}
        h = jnp.tanh(x @ p["w1"].T + p["b1"][None] + t[:, None].astype(x.dtype) * p["c"][None])
        return h @ p["w2"].T + p["b2"][None]

    return field


LINEAR = _linear_field(A)
TANH_FIELD = _tanh_field(TANH)


@pytest.mark.parametrize("t1", [0.3, 1.0])
def test_linear_field_log_det_is_t_trace(x64, t1):
    z = jax.random.normal(jax.random.key(0), (6, 3), jnp.float64)
    x, log_det = cnf.forward(LINEAR, z, t0=0.0, t1=t1, num_steps=40)
    # log|det dx/dz| = t tr(A) exactly (Jacobi); the trace is constant, so RK4 integrates
    # the log-det without error: only round-off remains.
    np.testing.assert_allclose(log_det, t1 * np.trace(A), rtol=1e-12, atol=1e-12)
    # x = exp(t A) z: RK4 with h = t/40 has local error ~ (h |A|)^5 / 120 ~ 1e-11.
    np.testing.assert_allclose(x, np.asarray(z) @ oracle.expm(t1 * A).T, rtol=1e-9, atol=1e-9)
    z_back, log_det_inv = cnf.inverse(LINEAR, x, t0=0.0, t1=t1, num_steps=40)
    np.testing.assert_allclose(z_back, z, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(log_det_inv, -log_det, rtol=1e-12, atol=1e-12)


def test_linear_field_log_prob_is_gaussian_pushforward(x64):
    x = jax.random.normal(jax.random.key(1), (5, 3), jnp.float64) * 2.0
    expected = oracle.linear_flow_log_prob(A, x, 1.0)
    got = cnf.log_prob(LINEAR, x, num_steps=40)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)
    # The divergence term is 0.7 nats: a dropped or sign-flipped trace is caught.
    assert np.min(np.abs(oracle.linear_flow_log_prob(A, x, 1.0) - got - 2 * 0.7)) > 1.0


def test_linear_field_float32_and_jit():
    x = jax.random.normal(jax.random.key(1), (5, 3))
    expected = oracle.linear_flow_log_prob(A, np.asarray(x, np.float64), 1.0)
    eager = cnf.log_prob(LINEAR, x, num_steps=20)
    jitted = jax.jit(lambda y: cnf.log_prob(LINEAR, y, num_steps=20))(x)
    assert eager.dtype == jnp.float32
    # float32 over 20 RK4 steps of a 3-D linear map: ~1e-6 relative round-off.
    np.testing.assert_allclose(eager, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(jitted, eager, rtol=1e-6, atol=1e-6)


def test_tanh_field_matches_numpy_rk4_oracle_exact_and_hutchinson(x64):
    x = jax.random.normal(jax.random.key(2), (4, 3), jnp.float64)
    kw = dict(t0=0.1, t1=0.9, num_steps=16)
    exp_exact, z_exact = oracle.cnf_log_prob(
        lambda y, t: oracle.tanh_field(TANH, y, t),
        lambda y, t: oracle.tanh_field_jacobian(TANH, y, t), x, **kw)
    np.testing.assert_allclose(cnf.log_prob(TANH_FIELD, x, **kw), exp_exact, rtol=1e-10,
                               atol=1e-10)
    z, _ = cnf.inverse(TANH_FIELD, x, **kw)
    np.testing.assert_allclose(z, z_exact, rtol=1e-10, atol=1e-10)
    probes = cnf.draw_probes(jax.random.key(3), (4, 3), probe="gaussian", num_probes=2,
                             dtype=jnp.float64)
    exp_h, _ = oracle.cnf_log_prob(
        lambda y, t: oracle.tanh_field(TANH, y, t),
        lambda y, t: oracle.tanh_field_jacobian(TANH, y, t), x, probes=np.asarray(probes), **kw)
    got_h = cnf.log_prob(TANH_FIELD, x, trace="hutchinson", probes=probes, **kw)
    np.testing.assert_allclose(got_h, exp_h, rtol=1e-10, atol=1e-10)
    # The probes matter (the Jacobian is not diagonal): estimate != exact.
    assert np.max(np.abs(exp_h - exp_exact)) > 1e-3


def test_hutchinson_is_unbiased(x64):
    x = jax.random.normal(jax.random.key(4), (4, 3), jnp.float64)
    exact = cnf.log_prob(TANH_FIELD, x, t0=0.1, t1=0.9, num_steps=16)
    n = 400

    @jax.jit
    def estimates(keys):
        one = lambda k: cnf.log_prob(TANH_FIELD, x, trace="hutchinson", key=k, t0=0.1, t1=0.9,
                                     num_steps=16)
        return jax.vmap(one)(keys)  # (n, batch)

    est = np.asarray(estimates(jax.random.split(jax.random.key(5), n)))
    mean, sem = est.mean(axis=0), est.std(axis=0, ddof=1) / np.sqrt(n)
    assert np.all(est.std(axis=0) > 1e-2)  # genuinely random
    z = (mean - np.asarray(exact)) / sem
    # Four per-example z-scores at |z| < 4: a false alarm has probability ~2.5e-4.
    assert np.all(np.abs(z) < 4.0), z


def test_sample_and_log_prob_agree_with_log_prob(x64):
    key = jax.random.key(6)
    x, log_p = cnf.sample_and_log_prob(key, TANH_FIELD, (4, 3), t0=0.1, t1=0.9, num_steps=16,
                                       dtype=jnp.float64)
    # Its noise twin: forward from z = normal(base_key), probes from probe_key (exact here).
    base_key, _ = jax.random.split(key)
    z = jax.random.normal(base_key, (4, 3), jnp.float64)
    x_twin, log_det = cnf.forward(TANH_FIELD, z, t0=0.1, t1=0.9, num_steps=16)
    np.testing.assert_allclose(x_twin, x, rtol=1e-12)
    log_n = -0.5 * np.sum(np.asarray(z) ** 2, axis=1) - 1.5 * np.log(2 * np.pi)  # log N(z)
    np.testing.assert_allclose(log_n - log_det, log_p, rtol=1e-12)
    # The forward and backward RK4 solves differ by O(h^4) ~ 1e-7 at 16 steps of 0.05.
    np.testing.assert_allclose(cnf.log_prob(TANH_FIELD, x, t0=0.1, t1=0.9, num_steps=16),
                               log_p, atol=1e-6)
    ts, xs = cnf.sample(key, TANH_FIELD, (4, 3), num_steps=10, return_trajectory=True)
    z = jax.random.normal(key, (4, 3), jnp.float32)  # sample draws z from its key directly
    np.testing.assert_allclose(xs[0], z)
    assert ts.shape == (11,) and xs.shape == (11, 4, 3)
    assert float(ts[0]) == 0.0 and float(ts[-1]) == 1.0
    assert np.all(np.isfinite(np.asarray(xs)))


def test_mlp_field_trace_equals_jacobian_trace():
    net = cnf.mlp_field(jax.random.key(0), 2, (8,), time_embed_dim=4)
    x = jax.random.normal(jax.random.key(1), (5, 2))
    t = jnp.full((5,), 0.3)
    # Hutchinson with all 4 Rademacher sign patterns of 2-D averages to the exact trace.
    signs = jnp.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    probes = jnp.broadcast_to(signs[:, None, :], (4, 5, 2))

    @jax.jit
    def traces(net, x):
        fn = lambda y: net(y, t)
        one = lambda xi: jax.jacfwd(lambda v: net(v[None], t[:1])[0])(xi)  # (2, 2)
        jac_trace = jnp.trace(jax.vmap(one)(x), axis1=1, axis2=2)  # (5,)
        return cnf.trace_exact(fn, x), cnf.trace_hutchinson(fn, x, probes), jac_trace

    exact, hutch, expected = traces(net, x)
    np.testing.assert_allclose(exact, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hutch, expected, rtol=1e-5, atol=1e-6)
    assert np.min(np.abs(np.asarray(expected))) > 1e-4  # a non-trivial divergence


def test_gradient_of_log_prob_by_finite_differences(x64):
    x = jax.random.normal(jax.random.key(8), (3, 3), jnp.float64)

    def nll(a):
        # Euler keeps the differentiated program small; the check is of the gradient of the
        # discretised solve, whatever the method.
        return -jnp.mean(cnf.log_prob(_linear_field(a), x, num_steps=10, method="euler"))

    a0 = jnp.asarray(A)
    grad = jax.grad(nll)(a0)
    direction = jax.random.normal(jax.random.key(9), A.shape, jnp.float64)
    eps = 1e-5
    fd = (nll(a0 + eps * direction) - nll(a0 - eps * direction)) / (2 * eps)
    # central differences in float64: O(eps^2) ~ 1e-10 truncation.
    np.testing.assert_allclose(jnp.sum(grad * direction), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("method, steps", [("euler", 16), ("heun", 8), ("rk4", 4)])
def test_sampler_converges_at_the_declared_order(x64, method, steps):
    # x(1) = expm(A) z exactly; halving h divides the error by 2^order (cnf.ORDERS, declared
    # beside the sampler and equal to the solver's).
    z = jax.random.normal(jax.random.key(0), (4, 3), jnp.float64)
    exact = np.asarray(z) @ oracle.expm(A).T
    errors = [np.max(np.abs(np.asarray(cnf.sample_from_noise(LINEAR, z, num_steps=n,
                                                              method=method)) - exact))
              for n in (steps, 2 * steps)]  # fmt: skip
    observed = np.log2(errors[0] / errors[1])
    assert abs(observed - cnf.ORDERS[method]) < 0.3, (method, observed, errors)


def test_compiles_once_for_new_points_and_intervals():
    x = jax.random.normal(jax.random.key(1), (5, 3))
    x2 = jax.random.normal(jax.random.key(2), (5, 3))
    cnf.log_prob(LINEAR, x, num_steps=7)
    with count_compilations() as compiled:
        cnf.log_prob(LINEAR, x2, num_steps=7)
        cnf.log_prob(LINEAR, x, num_steps=7, t0=0.2, t1=0.7)  # t0, t1 are traced
    assert compiled[0] == 0


def test_extreme_valid_inputs_are_finite():
    x = jnp.array([[1e3, -1e3, 0.0], [0.0, 0.0, 0.0]])
    # A vanishing interval: the identity map, log-det ~ 0.
    z, log_det = cnf.inverse(LINEAR, x, t0=0.5, t1=0.5 + 1e-6, num_steps=1)
    # z = x - 1e-6 A x (+ O(1e-12)); float32 spacing at 1e3 is 6e-5.
    np.testing.assert_allclose(z, x - 1e-6 * x @ A.T, atol=2e-4)
    assert np.all(np.abs(np.asarray(log_det)) < 1e-5)
    assert np.all(np.isfinite(cnf.log_prob(TANH_FIELD, x, num_steps=4)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"trace": "diag"}, "trace"),
        ({"num_steps": 0}, "num_steps"),
        ({"t0": -0.1}, "t0"),
        ({"t1": 1.5}, "t1"),
        ({"t0": 0.6, "t1": 0.4}, "t0 must be < t1"),
        ({"method": "rk45"}, "method"),
        ({"trace": "hutchinson"}, "key"),
        ({"trace": "hutchinson", "key": jax.random.key(0), "probe": "uniform"}, "probe"),
        ({"trace": "hutchinson", "probes": jnp.ones((1, 4, 3))}, "probes"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cnf.log_prob(LINEAR, jnp.ones((2, 3)), **kwargs)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="x must have 2 dimensions"):
        cnf.log_prob(LINEAR, jnp.ones((3,)))
    with pytest.raises(ValueError, match="shape"):
        cnf.sample(jax.random.key(0), LINEAR, (2, 3, 4))
