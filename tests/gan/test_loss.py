"""Every GAN loss and regulariser against the NumPy oracle and against its closed form.

Tolerances: with float64 enabled the JAX and NumPy computations differ only in summation
order and in the transcendental functions' last bits, so the table's float64 "single_op"
tolerance (1e-10 relative) applies; float32 results use the float32 row (1e-5).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import gan, targets
from genjax.gan import oracle
from genjax.testing import assert_close_to_oracle

# name -> (JAX loss, oracle, number of logit arguments)
LOSSES = {
    "minimax_d": (gan.minimax_d, oracle.minimax_d, 2),
    "minimax_g": (gan.minimax_g, oracle.minimax_g, 1),
    "nonsaturating_g": (gan.nonsaturating_g, oracle.nonsaturating_g, 1),
    "least_squares_d": (gan.least_squares_d, oracle.least_squares_d, 2),
    "least_squares_g": (gan.least_squares_g, oracle.least_squares_g, 1),
    "hinge_d": (gan.hinge_d, oracle.hinge_d, 2),
    "hinge_g": (gan.hinge_g, oracle.hinge_g, 1),
    "wasserstein_d": (gan.wasserstein_d, oracle.wasserstein_d, 2),
    "wasserstein_g": (gan.wasserstein_g, oracle.wasserstein_g, 1),
}


def _logits(seed, n, scale=3.0):
    return np.random.default_rng(seed).normal(0.0, scale, n)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_matches_oracle(x64, name, jit):
    fn, ref, arity = LOSSES[name]
    # unequal batch sizes for real and fake, and logits far into both tails
    real = np.concatenate([_logits(0, 6), [1e4, -1e4]])
    fake = np.concatenate([_logits(1, 5), [-1e4, 1e4]])
    args = (real, fake) if arity == 2 else (fake,)
    f = jax.jit(fn) if jit else fn
    got = f(*(jnp.asarray(a) for a in args))
    want = ref(*args)
    assert got.dtype == jnp.float64 and got.shape == ()
    assert_close_to_oracle(got, np.asarray(want), err_msg=name)
    assert abs(want) > 0.1  # every loss is far from 0 here: returning zeros would fail


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_finite_at_extreme_logits_float32(name):
    fn, ref, arity = LOSSES[name]
    real = jnp.asarray([1e4, -1e4, 0.0], jnp.float32)
    fake = jnp.asarray([-1e4, 1e4, 0.0], jnp.float32)
    args = (real, fake) if arity == 2 else (fake,)
    value, grads = jax.value_and_grad(lambda *a: fn(*a), argnums=tuple(range(arity)))(*args)
    assert np.isfinite(value) and all(bool(jnp.all(jnp.isfinite(g))) for g in grads)
    assert_close_to_oracle(value, np.asarray(ref(*(np.asarray(a) for a in args))), err_msg=name)


def test_minimax_d_label_smoothing_and_saturation(x64):
    real, fake = _logits(2, 7), _logits(3, 7)
    for s in (0.0, 0.1, 0.3):
        got = jax.jit(gan.minimax_d, static_argnames="label_smoothing")(
            jnp.asarray(real), jnp.asarray(fake), label_smoothing=s)
        assert_close_to_oracle(got, np.asarray(oracle.minimax_d(real, fake, s)))
    # one-sided: a confident real logit now costs s * l; fakes are untouched
    big = jnp.asarray([50.0])
    smoothed = float(gan.minimax_d(big, -big, label_smoothing=0.1))
    assert smoothed == pytest.approx(0.1 * 50.0, rel=1e-6)
    # signs: the discriminator's loss falls as it separates real from fake
    assert float(gan.minimax_d(big, -big)) < float(gan.minimax_d(-big, big))
    # the saturating generator loss is flat where D rejects fakes; the non-saturating is not
    g_sat = jax.grad(gan.minimax_g)(jnp.asarray([-20.0]))
    g_ns = jax.grad(gan.nonsaturating_g)(jnp.asarray([-20.0]))
    assert abs(float(g_sat[0])) < 1e-8 and float(g_ns[0]) == pytest.approx(-1.0, rel=1e-6)


# --- the optimal discriminator and the value of the game -----------------------------------

P_DATA = ([0.3, 0.7], [-1.0, 1.5], [0.5, 0.8])
P_G = ([0.5, 0.5], [-0.5, 2.5], [1.0, 0.4])


def test_optimal_discriminator_and_value_of_the_game(x64, key):
    p = targets.mixture_1d(*P_DATA, dtype=jnp.float64)
    q = targets.mixture_1d(*P_G, dtype=jnp.float64)
    xs = np.linspace(-12.0, 12.0, 24_001)  # both densities < 1e-30 at the ends
    dx = xs[1] - xs[0]
    pd, qd = oracle.normal_mixture_pdf(xs, *P_DATA), oracle.normal_mixture_pdf(xs, *P_G)
    d_star = gan.optimal_discriminator(p.log_prob(xs[:, None]), q.log_prob(xs[:, None]))
    np.testing.assert_allclose(d_star, oracle.optimal_discriminator(pd, qd), rtol=1e-10, atol=1e-14)
    # V(D*, G) = E_p log D* + E_q log(1 - D*) = 2 JSD(p || q) - log 4 (Goodfellow, Theorem 1)
    jsd = oracle.jsd_quadrature(pd, qd, dx)
    assert 0.05 < jsd < math.log(2.0)  # a genuinely different pair, below the JSD's bound
    value = 2.0 * jsd - math.log(4.0)
    logit = p.log_prob(xs[:, None]) - q.log_prob(xs[:, None])  # logit D* = log p - log q
    v_quad = float(np.sum(pd * jax.nn.log_sigmoid(logit) + qd * jax.nn.log_sigmoid(-logit)) * dx)
    assert v_quad == pytest.approx(value, rel=1e-8)  # Riemann sums of smooth tails: ~1e-12
    # minimax_d on samples is -V: Monte Carlo within 5 standard errors of the exact value
    kp, kq = jax.random.split(key)
    n = 20_000
    xp, xq = p.sample(kp, n), q.sample(kq, n)
    lp = p.log_prob(xp) - q.log_prob(xp)
    lq = p.log_prob(xq) - q.log_prob(xq)
    loss = float(jax.jit(gan.minimax_d)(lp, lq))
    se = math.sqrt((np.var(jax.nn.log_sigmoid(lp)) + np.var(jax.nn.log_sigmoid(-lq))) / n)
    assert abs(-loss - value) < 5 * se
    # D* is the discriminator's best response: any other logits do worse on average
    for shift in (-0.5, 0.5):
        assert float(gan.minimax_d(lp + shift, lq + shift)) > loss + 0.01
    assert float(gan.gan_value_at_optimum(p, q, kp, 20_000)) == pytest.approx(value, abs=5 * se)


# --- gradient penalty, R1 ------------------------------------------------------------------


def _tanh_critic_params(seed, d, h=8):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 0.7, (d, h)), rng.normal(0, 0.3, h), rng.normal(0, 1.0, h), 0.2)


def _jax_tanh_critic(params):
    w1, b1, w2, b2 = (jnp.asarray(p) for p in params)

    def critic(x):
        return jnp.tanh(x.reshape(x.shape[0], -1) @ w1 + b1[None]) @ w2 + b2

    return critic


@pytest.fixture(scope="module")
def gp_jit():
    return jax.jit(gan.gradient_penalty, static_argnums=1)


# (eager = jit for the penalties is checked by test_conformance.py's assert_loss_conforms)
def test_gradient_penalty_of_linear_critic_is_exact(gp_jit, keys):
    w = jnp.asarray([0.3, -2.0, 0.7])
    critic = lambda x: x @ w  # noqa: E731  f(x) = w . x, ||grad f|| = ||w|| everywhere
    real = jax.random.normal(keys[0], (16, 3))
    fake = 3.0 + jax.random.normal(keys[1], (16, 3))
    gp = gp_jit(keys[2], critic, real, fake)
    exact = (float(jnp.linalg.norm(w)) - 1.0) ** 2
    assert_close_to_oracle(gp, np.asarray(exact))
    lam = 10.0
    assert float(lam * gp) == pytest.approx(lam * exact, rel=1e-5)  # lambda (||w|| - 1)^2


def test_gradient_penalty_norm_is_per_sample_over_all_axes_of_an_image(keys):
    # f(x) = <W, x> over (H, W, C): the gradient of each example is W, of Frobenius norm ||W||.
    W = jax.random.normal(keys[0], (4, 4, 2)) * 0.5  # ||W|| ~ 2.8
    critic = lambda x: jnp.sum(x * W[None], axis=(1, 2, 3))  # noqa: E731
    real = jax.random.uniform(keys[1], (8, 4, 4, 2))
    fake = jax.random.uniform(keys[2], (8, 4, 4, 2))
    gp = jax.jit(lambda k: gan.gradient_penalty(k, critic, real, fake))(keys[3])
    per_sample = (float(jnp.linalg.norm(W)) - 1.0) ** 2
    per_element = float(jnp.mean((jnp.abs(W) - 1.0) ** 2))  # what a wrong implementation gives
    assert_close_to_oracle(gp, np.asarray(per_sample))
    assert abs(per_sample - per_element) > 0.1  # so the test tells the two apart


def test_gradient_penalty_and_r1_match_oracle_on_a_tanh_critic(x64, keys):
    params = _tanh_critic_params(0, 4 * 4 * 1)
    critic = _jax_tanh_critic(params)
    real = jax.random.uniform(keys[0], (6, 4, 4, 1), jnp.float64)
    fake = jax.random.uniform(keys[1], (6, 4, 4, 1), jnp.float64)
    eps = jax.random.uniform(keys[2], (6,), jnp.float64)  # what gradient_penalty draws from keys[2]
    wrap = jax.jit
    gp = wrap(lambda r, f: gan.gradient_penalty(keys[2], critic, r, f))(real, fake)
    gp_at = wrap(lambda r, f, e: gan.gradient_penalty_at(critic, gan.interpolate(r, f, e)))(
        real, fake, eps)
    grad_fn = lambda x: oracle.tanh_critic_grad(params, x)  # noqa: E731
    want = oracle.gradient_penalty(grad_fn, real, fake, eps)
    assert_close_to_oracle(gp, np.asarray(want))
    assert_close_to_oracle(gp_at, np.asarray(want))
    r1 = wrap(lambda r: gan.r1_penalty(critic, r))(real)
    assert_close_to_oracle(r1, np.asarray(oracle.r1_penalty(grad_fn, real)))
    assert float(r1) > 0.01
    np.testing.assert_allclose(critic(real), oracle.tanh_critic(params, real), rtol=1e-12)


def test_gradient_penalty_finite_where_the_critic_is_flat(keys):
    critic = lambda x: 0.0 * jnp.sum(x, axis=1)  # noqa: E731  grad = 0: norm 0, GP = 1
    real, fake = jax.random.normal(keys[0], (4, 2)), jax.random.normal(keys[1], (4, 2))
    gp, g = jax.value_and_grad(lambda r: gan.gradient_penalty(keys[2], critic, r, fake))(real)
    assert float(gp) == pytest.approx(1.0) and bool(jnp.all(jnp.isfinite(g)))


def test_r1_of_linear_critic(keys):
    w = jnp.asarray([[1.5], [-0.5]])
    r1 = gan.r1_penalty(lambda x: (x @ w)[:, 0], jax.random.normal(keys[0], (5, 2)))
    assert float(r1) == pytest.approx(2.5, rel=1e-6)  # ||w||^2


def test_weight_clip_matches_oracle(keys):
    params = {"a": jax.random.normal(keys[0], (3, 4)), "b": jax.random.normal(keys[1], (4,)),
              "count": jnp.asarray(7, jnp.int32)}
    clipped = jax.jit(gan.weight_clip, static_argnums=1)(params, 0.5)
    want = oracle.weight_clip([params["a"], params["b"]], 0.5)
    assert_close_to_oracle([clipped["a"], clipped["b"]], want)
    assert int(clipped["count"]) == 7 and float(jnp.max(jnp.abs(clipped["a"]))) == 0.5


def test_cycle_loss_zero_for_inverse_translators_and_matches_oracle(keys):
    x = jax.random.uniform(keys[0], (5, 4, 4, 1))
    y = jax.random.uniform(keys[1], (3, 4, 4, 1))
    invert = lambda v: 1.0 - v  # noqa: E731  G = F = inversion: F(G(x)) = x exactly
    cycle = jax.jit(gan.cycle_consistency_loss, static_argnums=(2, 3))
    assert float(cycle(x, y, invert, invert)) == 0.0
    identity = lambda v: v  # noqa: E731  F = identity: F(G(x)) = 1 - x
    got = gan.cycle_consistency_loss(x, y, invert, identity)
    want = oracle.cycle_consistency_loss(np.asarray(x), np.asarray(y), lambda v: 1.0 - v,
                                         lambda v: v)
    assert float(got) > 0.1
    assert_close_to_oracle(got, np.asarray(want))


# --- bad input -----------------------------------------------------------------------------


def test_bad_arguments_raise_value_error_naming_them():
    r = jnp.zeros((3,))
    with pytest.raises(ValueError, match="label_smoothing"):
        gan.minimax_d(r, r, label_smoothing=1.0)
    with pytest.raises(ValueError, match="real_logits"):
        gan.hinge_d(jnp.zeros((3, 1)), r)
    with pytest.raises(ValueError, match="clip_value"):
        gan.weight_clip({"w": r}, 0.0)
    with pytest.raises(ValueError, match="clip_value"):
        gan.weight_clip({"w": r}, -1.0)
    with pytest.raises(ValueError, match="fake"):
        gan.gradient_penalty(jax.random.key(0), lambda x: x[:, 0], jnp.zeros((3, 2)),
                             jnp.zeros((4, 2)))
    with pytest.raises(ValueError, match="critic must map"):
        gan.r1_penalty(lambda x: x, jnp.zeros((3, 2)))
