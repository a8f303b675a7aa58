"""The RBM (genjax.energy.rbm) held to its NumPy oracle and to exact enumeration.

* free energy, energy and conditionals = the float64 oracle; a Gibbs sweep and a chain
  bit for bit on shared uniforms; AIS log-weights on shared uniforms;
* log Z of a 10 x 8 RBM: the JAX enumeration (over either layer) = the oracle's sum of
  exp(-F(v)) = the brute-force sum of exp(-E(v, h)) over all 2^18 joint states;
* AIS converges to the exact log Z within a few standard errors;
* the v -> h -> v Gibbs kernel satisfies detailed balance against the exact marginal, and
  the sampler's one-step frequencies match that kernel;
* the CD-k surrogate's gradient is the CD gradient written from dF/dtheta.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.energy import oracle_rbm as O
from genjax.energy import rbm as R

JIT = [False, True]


def _params(v: int, h: int, scale: float, seed: int = 0) -> R.RBMParams:
    kw, kb, kc = jax.random.split(jax.random.key(seed), 3)
    return R.RBMParams(scale * jax.random.normal(kw, (v, h)), 0.5 * jax.random.normal(kb, (v,)),
                       0.5 * jax.random.normal(kc, (h,)))  # fmt: skip


def _np(p: R.RBMParams):
    return tuple(np.asarray(a, np.float64) for a in p)


def _maybe_jit(f, jit: bool):
    return jax.jit(f) if jit else f


@pytest.mark.parametrize("jit", JIT)
def test_free_energy_energy_and_conditionals_match_oracle(jit):
    p = _params(10, 8, 1.0)
    v = jax.random.bernoulli(jax.random.key(1), 0.5, (16, 10)).astype(jnp.float32)
    h = jax.random.bernoulli(jax.random.key(2), 0.5, (16, 8)).astype(jnp.float32)
    W, b, c = _np(p)
    vn, hn = np.asarray(v, np.float64), np.asarray(h, np.float64)
    # float32 against float64 on O(10)-sized sums: relative error ~1e-6; 1e-5 leaves margin
    tol = {"rtol": 1e-5, "atol": 1e-5}
    np.testing.assert_allclose(
        _maybe_jit(R.free_energy, jit)(p, v), O.free_energy(W, b, c, vn), **tol
    )
    np.testing.assert_allclose(_maybe_jit(R.energy, jit)(p, v, h), O.energy(W, b, c, vn, hn), **tol)
    np.testing.assert_allclose(
        _maybe_jit(R.hidden_probs, jit)(p, v), O.hidden_probs(W, b, c, vn), **tol
    )
    np.testing.assert_allclose(
        _maybe_jit(R.visible_probs, jit)(p, h), O.visible_probs(W, b, c, hn), **tol
    )
    # F(v) = -log sum_h exp(-E(v, h)) (the hidden layer summed out), by enumerating h
    hs = R.all_binary(8)
    e_all = jax.vmap(lambda vi: R.energy(p, jnp.broadcast_to(vi, (256, 10)), hs))(v)
    np.testing.assert_allclose(R.free_energy(p, v), -jax.nn.logsumexp(-e_all, axis=1), **tol)


@pytest.mark.parametrize("jit", JIT)
def test_gibbs_step_and_chain_match_oracle_on_shared_noise(jit):
    p = _params(10, 8, 1.0)
    W, b, c = _np(p)
    v0 = jax.random.bernoulli(jax.random.key(3), 0.5, (32, 10)).astype(jnp.float32)
    u_h, u_v = R.gibbs_noise(jax.random.key(4), 6, 32, 10, 8)
    v1, h1 = _maybe_jit(R.gibbs_step, jit)(p, v0, (u_h[0], u_v[0]))
    ov, oh = O.gibbs_step(W, b, c, np.asarray(v0), np.asarray(u_h[0]), np.asarray(u_v[0]))
    # exact: a unit flips only if a uniform falls within float32 rounding of its probability
    np.testing.assert_array_equal(np.asarray(h1), oh)
    np.testing.assert_array_equal(np.asarray(v1), ov)
    assert 0 < ov.sum() < ov.size  # not a degenerate all-off / all-on state
    vn = np.asarray(v0, np.float64)
    for t in range(6):
        vn, _ = O.gibbs_step(W, b, c, vn, np.asarray(u_h[t]), np.asarray(u_v[t]))
    chain = R.gibbs_sample_from_noise(p, v0, (u_h, u_v))  # one jitted scan already
    np.testing.assert_array_equal(np.asarray(chain), vn)
    # gibbs_sample draws exactly these uniforms from its key
    got = R.gibbs_sample(jax.random.key(4), p, v0, num_steps=6)
    np.testing.assert_array_equal(np.asarray(got), vn)


def test_log_partition_enumeration_equals_free_energy_sum_and_brute_force():
    p = _params(10, 8, 1.0)
    W, b, c = _np(p)
    exact_f = O.log_partition_free_energy(W, b, c)  # sum over 2^10 visible states of e^-F
    exact_e = O.log_partition_brute_force(W, b, c)  # sum over 2^18 (v, h) of e^-E
    assert abs(exact_f - exact_e) < 1e-9  # float64, two independent sums
    # the JAX enumeration sums the smaller layer: h for (10, 8), v for the transposed (8, 10)
    for jit in JIT:
        f = _maybe_jit(R.log_partition, jit)
        assert abs(float(f(p)) - exact_f) < 1e-4 * abs(exact_f)  # float32 logsumexp
        pt = R.RBMParams(p.W.T, p.c, p.b)  # swapping layers leaves Z unchanged
        assert abs(float(f(pt)) - exact_f) < 1e-4 * abs(exact_f)
    # and differs from a wrong model: flipping W's sign changes log Z
    assert abs(O.log_partition_free_energy(-W, b, c) - exact_f) > 0.1


def test_ais_matches_oracle_on_shared_noise_and_converges_to_exact_log_partition():
    # _ais is one jitted program (an outer jax.jit adds nothing); one shape, one compile.
    p = _params(10, 8, 1.0, seed=7)
    W, b, c = _np(p)
    exact = O.log_partition_free_energy(W, b, c)
    data = jax.random.bernoulli(jax.random.key(8), 0.3, (64, 10)).astype(jnp.float32)
    base = R.base_rate_bias(data)
    betas = jnp.linspace(0.0, 1.0, 201)
    noise = R.ais_noise(jax.random.key(9), 200, 200, 10, 8)
    got = R.ais_log_weights_from_noise(p, betas, noise, base_bias=base)
    want = O.ais_log_weights(W, b, c, np.asarray(base), np.asarray(betas), *map(np.asarray, noise))
    # same chain states on shared noise; float32 sums of 200 small increments: ~1e-5
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert np.std(want) > 1e-3  # the weights vary: a test of the chain, not of a constant
    # the public estimator draws exactly these uniforms from its key
    log_z, se = R.ais_log_partition(jax.random.key(9), p, num_chains=200, betas=betas,
                                    base_bias=base)  # fmt: skip
    want_z = O.ais_log_partition(W, b, c, np.asarray(base), np.asarray(betas),
                                 *map(np.asarray, noise))  # fmt: skip
    assert abs(float(log_z) - want_z) < 1e-4
    log_z, se = float(log_z), float(se)
    assert 0.0 < se < 0.05  # 200 chains x 200 temperatures: a tight estimate on 10 x 8
    # within 4 standard errors (+ the float32 sums' ~1e-4): a 4-sigma miss has p < 1e-4
    assert abs(log_z - exact) < 4 * se + 1e-3, (log_z, exact, se)


def test_gibbs_kernel_detailed_balance_and_sampler_frequencies():
    nv, nh = 4, 3
    p = _params(nv, nh, 1.5, seed=11)
    vs, hs = R.all_binary(nv), R.all_binary(nh)

    def bern(prob, x):  # prod_k prob_k^x_k (1 - prob_k)^(1 - x_k): rows of prob vs rows of x
        prob, x = np.asarray(prob, np.float64), np.asarray(x, np.float64)
        return np.prod(np.where(x[None] == 1, prob[:, None], 1 - prob[:, None]), axis=-1)

    # K[v, v'] = sum_h p(h|v) p(v'|h), from the JAX conditionals
    K = bern(R.hidden_probs(p, vs), hs) @ bern(R.visible_probs(p, hs), vs)
    log_pi = -np.asarray(R.free_energy(p, vs), np.float64) - float(R.log_partition(p))
    pi = np.exp(log_pi)
    np.testing.assert_allclose(K.sum(1), 1.0, atol=1e-5)  # float32 conditionals
    np.testing.assert_allclose(pi.sum(), 1.0, atol=1e-5)
    flow = pi[:, None] * K  # pi(v) K(v, v') must be symmetric (detailed balance)
    np.testing.assert_allclose(flow, flow.T, atol=1e-6)
    np.testing.assert_allclose(pi @ K, pi, atol=1e-6)  # hence pi is stationary
    np.testing.assert_allclose(K, O.gibbs_transition_matrix(*_np(p)), atol=1e-5)
    # a non-invariant distribution is moved: the check can fail
    uniform = np.full(len(pi), 1 / len(pi))
    assert np.abs(uniform @ K - uniform).max() > 1e-3
    # the sampler's one-step transition frequencies match K: 4000 chains from each v
    n = 4000
    v0 = jnp.repeat(vs, n, axis=0)
    v1 = np.asarray(R.gibbs_sample(jax.random.key(12), p, v0, num_steps=1))
    idx = (v1 @ (2 ** np.arange(nv - 1, -1, -1))).astype(int).reshape(len(vs), n)
    freq = np.stack([np.bincount(row, minlength=len(vs)) / n for row in idx])
    # binomial standard error <= sqrt(0.25 / 4000) = 0.0079; 5 sigma over 256 cells
    np.testing.assert_allclose(freq, K, atol=0.04)


def test_cd_gradient_is_the_contrastive_divergence_gradient():
    p = _params(10, 8, 0.5)
    batch = jax.random.bernoulli(jax.random.key(13), 0.4, (16, 10)).astype(jnp.float32)
    key = jax.random.key(14)
    # under jit only (the eager path of the same ops is tested above and in test_bad_inputs_rbm)
    loss_jit, g = jax.jit(jax.value_and_grad(lambda p: R.cd_loss(p, batch, key, k=2)[0]))(p)
    # the negatives the loss draws: 2 sweeps on gibbs_noise(key, 2, 16, 10, 8)
    W, b, c = _np(p)
    vn = np.asarray(batch, np.float64)
    u_h, u_v = R.gibbs_noise(key, 2, 16, 10, 8)
    neg = vn
    for t in range(2):
        neg, _ = O.gibbs_step(W, b, c, neg, np.asarray(u_h[t]), np.asarray(u_v[t]))
    # dF/dW = -v p(h|v)^T, dF/db = -v, dF/dc = -p(h|v): grad = <dF>_data - <dF>_negatives
    ph_d, ph_n = O.hidden_probs(W, b, c, vn), O.hidden_probs(W, b, c, neg)
    gW = -(vn.T @ ph_d) / 16 + (neg.T @ ph_n) / 16
    np.testing.assert_allclose(g.W, gW, atol=1e-5)
    np.testing.assert_allclose(g.b, -vn.mean(0) + neg.mean(0), atol=1e-5)
    np.testing.assert_allclose(g.c, -ph_d.mean(0) + ph_n.mean(0), atol=1e-5)
    assert np.abs(gW).max() > 1e-3
    # the loss is the free-energy gap F(data) - F(negatives), means over the batch
    want = np.mean(O.free_energy(W, b, c, vn)) - np.mean(O.free_energy(W, b, c, neg))
    assert abs(float(loss_jit) - want) < 1e-4


def test_pcd_advances_persistent_chains_and_training_raises_likelihood():
    nv, nh = 6, 4
    data = jnp.asarray(np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]] * 16, np.float32))
    p = R.init_params(jax.random.key(0), nv, nh, scale=0.1)
    chains = jnp.zeros((32, nv))
    step = jax.jit(jax.value_and_grad(lambda p, k, ch: R.pcd_loss(p, data, k, ch, k=1),
                                      has_aux=True))  # fmt: skip

    def ll(p):
        return float(jnp.mean(R.log_likelihood(p, data, R.log_partition(p))))

    before = ll(p)
    for i in range(150):
        (_, (_, new)), g = step(p, jax.random.key(i), chains)
        if i == 0:
            assert np.any(np.asarray(new) != np.asarray(chains))
        chains = new
        p = jax.tree.map(lambda a, d: a - 0.1 * d, p, g)
    after = ll(p)
    # two patterns: the optimum is log(1/2) = -0.69 a vector; from ~6 log 2 = -4.2 at init
    assert before < -3.5 and after > before + 1.5, (before, after)
    assert after < -math.log(2) + 1e-3  # log p(v) <= log 1/2 for two equally frequent patterns
