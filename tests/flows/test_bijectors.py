"""Bijectors against the NumPy oracle, MADE's masks and autoregressive Jacobian, the flow's
parameters as a traced argument and as a model, bad arguments and extreme inputs.

The oracle comparisons run eagerly (without ``jax.jit``) in float64; the conformance suite
(``test_bijector_conformance.py``) checks round trips, log-dets and total mass of every
bijector and flow.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import flows as F
from genjax.flows import bijectors as bj
from genjax.flows import oracle
from genjax.model import model_jit
from genjax.nn import MADE, made_degrees, made_masks
from genjax.testing import count_compilations
from tests.flows.test_bijector_conformance import perturbed_params

# float64 JAX vs float64 NumPy doing the same arithmetic in another order: ~1e-14;
# 1e-10 leaves room for the different formulas (slogdet vs sum log s, np.roots vs the
# closed-form root).
TOL = dict(rtol=1e-10, atol=1e-10)


def _mlp_layers(net):
    """``[(W, b), ...]`` of a genjax.nn.MLP, for the oracle's NumPy MLP."""
    return [(np.asarray(layer.kernel[...]), np.asarray(layer.bias[...])) for layer in net.layers]


@pytest.mark.parametrize("swap", [False, True])
def test_couplings_match_oracle(swap, x64):
    x = jax.random.normal(jax.random.key(3), (5, 4), jnp.float64)
    aff = bj.AffineCoupling((4,), (8,), swap=swap, scale_clamp=2.0)
    p = perturbed_params(aff, 0.5, jnp.float64)
    layers = _mlp_layers(p["net"])

    def net(h):
        return oracle.mlp(h, layers).reshape(len(h), 2, 2)

    for inverse in (False, True):
        fn = aff.inverse if inverse else aff.forward
        y, ld = fn(p, x)
        y_o, ld_o = oracle.affine_coupling(np.asarray(x), net, swap, 2.0, inverse=inverse)
        np.testing.assert_allclose(y, y_o, **TOL)
        np.testing.assert_allclose(ld, ld_o, **TOL)
        assert np.max(np.abs(ld_o)) > 1e-2  # non-trivial scale
    add = bj.AdditiveCoupling((4,), (8,), swap=swap)
    p = perturbed_params(add, 0.5, jnp.float64)
    layers = _mlp_layers(p["net"])
    y, _ = add.forward(p, x)
    y_o, _ = oracle.additive_coupling(np.asarray(x), lambda h: oracle.mlp(h, layers), swap)
    np.testing.assert_allclose(y, y_o, **TOL)


def test_actnorm_and_data_init_match_oracle(x64):
    x = 3.0 + 2.0 * jax.random.normal(jax.random.key(4), (16, 2, 2, 3), jnp.float64)
    act = bj.ActNorm(3)
    params, z = act.data_init(act.init(None), x)
    bias, log_scale = oracle.actnorm_data_init(np.asarray(x))
    np.testing.assert_allclose(params["bias"], bias, **TOL)
    np.testing.assert_allclose(params["log_scale"], log_scale, **TOL)
    # After the data-dependent init the noise side has zero mean, unit variance per channel.
    np.testing.assert_allclose(jnp.mean(z, axis=(0, 1, 2)), 0.0, atol=1e-12)
    np.testing.assert_allclose(jnp.std(z, axis=(0, 1, 2)), 1.0, atol=1e-6)
    for inverse in (False, True):
        y, ld = (act.inverse if inverse else act.forward)(params, x)
        y_o, ld_o = oracle.actnorm(np.asarray(x), bias, log_scale, inverse=inverse)
        np.testing.assert_allclose(y, y_o, **TOL)
        np.testing.assert_allclose(ld, ld_o, **TOL)


@pytest.mark.parametrize("lu", [True, False])
def test_conv1x1_matches_oracle(lu, x64):
    conv = bj.Conv1x1(4, lu=lu)
    p = perturbed_params(conv, 0.3, jnp.float64)
    x = jax.random.normal(jax.random.key(5), (3, 2, 2, 4), jnp.float64)
    if lu:
        w = oracle.lu_weight(np.asarray(p["lower"]), np.asarray(p["upper"]),
                             np.asarray(p["log_s"]), perm=[3, 2, 1, 0])  # fmt: skip
    else:
        w = np.asarray(p["weight"])
    np.testing.assert_allclose(conv.weight(p), w, **TOL)
    for inverse in (False, True):
        y, ld = (conv.inverse if inverse else conv.forward)(p, x)
        y_o, ld_o = oracle.conv1x1(np.asarray(x), w, inverse=inverse)
        np.testing.assert_allclose(y, y_o, **TOL)
        np.testing.assert_allclose(ld, ld_o, **TOL)
        assert np.max(np.abs(ld_o)) > 1e-2


def test_squeeze_matches_oracle():
    x = jnp.arange(2 * 4 * 6 * 3, dtype=jnp.float32).reshape(2, 4, 6, 3)
    y, ld = bj.Squeeze().inverse({}, x)
    np.testing.assert_array_equal(y, oracle.squeeze(np.asarray(x)))
    np.testing.assert_array_equal(bj.Squeeze().forward({}, y)[0], x)
    assert y.shape == (2, 2, 3, 12) and float(jnp.abs(ld).max()) == 0.0


def _spline_knots(key, shape, k, bound):
    theta = jax.random.normal(key, (*shape, 3 * k - 1), jnp.float64)
    return bj.spline_params(theta, bound=bound)


def test_spline_matches_oracle(x64):
    bound, k = 2.0, 5
    x = jnp.concatenate([jnp.linspace(-2.5, 2.5, 23), jnp.array([-bound, bound, 0.0])])
    w, h, d = _spline_knots(jax.random.key(6), x.shape, k, bound)
    y, logd = bj.rational_quadratic_spline(x, w, h, d, bound=bound)
    y_o, logd_o = oracle.rq_spline(np.asarray(x), w, h, d, bound)
    np.testing.assert_allclose(y, y_o, **TOL)
    np.testing.assert_allclose(logd, logd_o, **TOL)
    xb, ilogd = bj.rational_quadratic_spline(y, w, h, d, bound=bound, inverse=True)
    xb_o, ilogd_o = oracle.rq_spline(y_o, w, h, d, bound, inverse=True)
    # The oracle's inverse goes through np.roots (eigenvalues): ~1e-12 absolute.
    np.testing.assert_allclose(xb_o, np.asarray(x), atol=1e-9)
    np.testing.assert_allclose(xb, xb_o, atol=1e-9)
    np.testing.assert_allclose(ilogd, ilogd_o, atol=1e-9)
    # Identity tails, and the derivative is continuous at the boundary (d_0 = d_K = 1).
    tails = np.abs(np.asarray(x)) > bound
    np.testing.assert_array_equal(np.asarray(y)[tails], np.asarray(x)[tails])
    assert np.any(np.abs(np.asarray(logd)[~tails]) > 1e-2)


def test_spline_extremes_stay_finite():
    bound = 3.0
    x = jnp.array([-1e30, -1e6, -bound, -bound + 1e-7, 0.0, bound - 1e-7, bound, 1e6, 1e30],
                  jnp.float32)  # fmt: skip
    # Extreme knots: one bin holds almost all the width, derivatives tiny and huge.
    theta = jnp.concatenate([jnp.array([30.0, 0, 0, 0]), jnp.array([0, 0, 0, -30.0]),
                             jnp.array([-30.0, 30.0, 0.0])])  # fmt: skip
    w, h, d = bj.spline_params(jnp.broadcast_to(theta, (x.shape[0], 11)), bound=bound)
    for inverse in (False, True):
        y, logd = jax.jit(bj.rational_quadratic_spline, static_argnames=("bound", "inverse"))(
            x, w, h, d, bound=bound, inverse=inverse
        )
        assert bool(jnp.all(jnp.isfinite(y))) and bool(jnp.all(jnp.isfinite(logd)))
        # Monotone in x, tails the identity.
        assert bool(jnp.all(jnp.diff(y) >= 0))
        assert float(y[0]) == float(x[0]) and float(y[-1]) == float(x[-1])


def test_made_masks_match_oracle_and_are_autoregressive(x64):
    order = (3, 1, 4, 2)
    # tanh, not ReLU: no unit is switched off at the test point, so every allowed entry
    # of the Jacobian is non-zero.
    made = MADE(4, [7, 5], 3, rngs=nnx.Rngs(0), order=order, activation=jnp.tanh)
    ours = made_masks(made_degrees(4, [7, 5], order), 3)
    theirs = oracle.made_masks(order, [7, 5], 3)
    assert len(ours) == len(theirs) == 3
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, b)
    # Autoregressive property on the Jacobian: output d depends on input d' iff
    # order[d'] < order[d] (strict: no self-dependence). Random (non-zero) weights and a
    # random input make every allowed entry non-zero.
    x = jax.random.normal(jax.random.key(7), (4,), jnp.float64)
    jac = jax.jit(jax.jacfwd(lambda m, v: m(v[None])[0], argnums=1))(made, x)  # (D, P, D)
    allowed = np.array([[order[j] < order[i] for j in range(4)] for i in range(4)])
    for p in range(3):
        assert np.all(np.abs(np.asarray(jac[:, p, :]))[~allowed] == 0.0)
        assert np.all(np.abs(np.asarray(jac[:, p, :]))[allowed] > 0.0)
    assert made(jnp.zeros((2, 5, 4))).shape == (2, 5, 4, 3)
    with pytest.raises(ValueError, match="order"):
        MADE(3, [8], rngs=nnx.Rngs(0), order=(1, 1, 2))
    rev = MADE(3, [8], rngs=nnx.Rngs(0), order="reverse")
    assert rev.order == (3, 2, 1)


def test_planar_radial_match_oracle(x64):
    z = jax.random.normal(jax.random.key(8), (6, 3), jnp.float64)
    pl = bj.Planar(3)
    p = perturbed_params(pl, 0.5, jnp.float64)
    x, ld = pl.forward(p, z)
    x_o, ld_o = oracle.planar(np.asarray(z), p["w"], p["u"], float(p["b"]))
    np.testing.assert_allclose(x, x_o, **TOL)
    np.testing.assert_allclose(ld, ld_o, **TOL)
    ra = bj.Radial(3)
    p = perturbed_params(ra, 0.5, jnp.float64)
    x, ld = ra.forward(p, z)
    x_o, ld_o = oracle.radial(np.asarray(z), p["z0"], float(p["alpha_raw"]),
                              float(p["beta_raw"]))  # fmt: skip
    np.testing.assert_allclose(x, x_o, **TOL)
    np.testing.assert_allclose(ld, ld_o, **TOL)


def test_planar_with_zero_w_is_a_finite_shift():
    # w = 0: x = z + u tanh(b), log|det| = 0 -- finite, with a finite gradient (the
    # invertibility correction u_hat divides by |w|^2)
    pl = bj.Planar(3)
    p = {"w": jnp.zeros(3), "u": jnp.array([0.5, -1.0, 2.0]), "b": jnp.array(0.3)}
    z = jax.random.normal(jax.random.key(2), (4, 3))
    for fn in (pl.forward, jax.jit(pl.forward)):
        x, ld = fn(p, z)
        np.testing.assert_allclose(x, np.asarray(z) + np.asarray(p["u"]) * np.tanh(0.3), rtol=1e-6)
        np.testing.assert_allclose(ld, 0.0, atol=1e-7)
    z_back, _ = pl.inverse(p, x)
    np.testing.assert_allclose(z_back, z, rtol=1e-5, atol=1e-6)
    grads = jax.grad(lambda q: jnp.sum(pl.forward(q, z)[0]) + jnp.sum(pl.forward(q, z)[1]))(p)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))


def test_flow_sample_matches_log_prob_and_is_deterministic(key):
    flow = F.realnvp(2, num_layers=2, hidden_sizes=(8,))
    params = perturbed_params(flow, 0.3)
    x1, lp1 = flow.sample_and_log_prob(key, params, 64)
    x2 = flow.sample(key, params, 64)
    np.testing.assert_array_equal(x1, x2)  # same key, same samples
    # log N(z) - log|det dx/dz| == log_prob(x) (float32 round trip): 1e-4.
    np.testing.assert_allclose(lp1, flow.log_prob(params, x1), atol=1e-4, rtol=1e-5)
    loss, metrics = flow.loss(params, x1, key)
    np.testing.assert_allclose(loss, -jnp.mean(lp1), rtol=1e-5)
    assert set(metrics) == {"nll", "bits_per_dim"}


def test_params_are_traced_and_a_flow_is_a_model():
    flow = F.realnvp(2, num_layers=2, hidden_sizes=(8,))
    p1, p2 = perturbed_params(flow, 0.3, seed=0), perturbed_params(flow, 0.3, seed=5)
    x = jax.random.normal(jax.random.key(3), (4, 2))
    key = jax.random.key(4)

    def every_method(p):
        return (flow.log_prob(p, x), flow.forward(p, x), flow.inverse(p, x),
                flow.sample(key, p, 4), flow.sample_and_log_prob(key, p, 4))

    first = every_method(p1)
    with count_compilations() as compiled:
        second = every_method(p2)
    assert compiled[0] == 0  # new parameters of the same shapes: no new program
    assert not np.allclose(first[0], second[0])  # ... and they are not baked in

    # Bound to its parameters, the flow's density is a model (a callable pytree).
    @model_jit
    def mean_log_density(model, x):
        return jnp.mean(model(x))

    a = mean_log_density(jax.tree_util.Partial(flow.log_prob, p1), x)
    with count_compilations() as compiled:
        b = mean_log_density(jax.tree_util.Partial(flow.log_prob, p2), x)
    assert compiled[0] == 0
    np.testing.assert_allclose([a, b], [jnp.mean(first[0]), jnp.mean(second[0])], rtol=1e-6)


def test_glow_data_init_normalises_the_first_activations():
    flow = F.glow((4, 4, 1), num_levels=1, num_steps=1, hidden_channels=4)
    x = 0.2 + 0.05 * jax.random.normal(jax.random.key(9), (32, 4, 4, 1))
    params = flow.init(jax.random.key(0, impl="rbg"), x)
    act = params[0][2]  # level 0, step 0: [coupling, conv, actnorm]; ActNorm sees data first
    squeezed = np.asarray(bj.Squeeze().inverse({}, x)[0])  # (32, 2, 2, 4)
    np.testing.assert_allclose(act["bias"], squeezed.mean(axis=(0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(act["log_scale"], np.log(squeezed.std(axis=(0, 1, 2)) + 1e-6),
                               rtol=1e-4)


# --- bad arguments ---------------------------------------------------------------------


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="event_shape.*even"):
        bj.AffineCoupling((3,), (8,))
    with pytest.raises(ValueError, match="event_shape.*even"):
        F.realnvp(5)
    with pytest.raises(ValueError, match="event_shape.*even"):
        bj.AdditiveCoupling((4, 4, 3), (8,))
    w = jnp.array([[1.0, 2.0, 3.0]])
    d = jnp.ones((1, 2))
    x = jnp.zeros(1)
    with pytest.raises(ValueError, match="widths must be positive"):
        bj.rational_quadratic_spline(x, jnp.array([[4.0, -1.0, 3.0]]), w, d, bound=3.0)
    with pytest.raises(ValueError, match="heights must sum"):
        bj.rational_quadratic_spline(x, w, jnp.array([[1.0, 1.0, 1.0]]), d, bound=3.0)
    with pytest.raises(ValueError, match="derivatives must be positive"):
        bj.rational_quadratic_spline(x, w, w, jnp.array([[1.0, 0.0]]), bound=3.0)
    with pytest.raises(ValueError, match="H and W"):
        bj.Squeeze().inverse({}, jnp.zeros((2, 3, 4, 1)))
    with pytest.raises(ValueError, match=r"\(B, H, W, C\)"):
        bj.Squeeze().inverse({}, jnp.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="image_shape"):
        F.glow((6, 6, 1), num_levels=2)
    with pytest.raises(ValueError, match="perm"):
        bj.Permutation((0, 0, 1))
    with pytest.raises(ValueError, match="num_layers"):
        F.maf(2, num_layers=0)
    with pytest.raises(ValueError, match="x must have shape"):
        F.realnvp(2, num_layers=1).log_prob(None, jnp.zeros((3, 4)))


def test_large_inputs_stay_finite():
    flow = F.realnvp(2, num_layers=2, hidden_sizes=(8,))
    params = perturbed_params(flow, 0.3)
    x = jnp.array([[1e4, -1e4], [0.0, 1e3], [-50.0, 50.0]], jnp.float32)
    lp = jax.jit(flow.log_prob)(params, x)
    # The clamped scale keeps log-dets bounded; the Gaussian term is large but finite.
    assert bool(jnp.all(jnp.isfinite(lp))) and float(lp[0]) < float(lp[2])
