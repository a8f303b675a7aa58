"""EBM and score-matching losses: NumPy oracle on shared noise, closed-form optima.

Models. A small nonlinear score ``s(x) = -A x + W2^T tanh(W1 x + b)`` and energy
``E(x) = w . tanh(W1 x + b) + c |x|^2 / 2`` whose Jacobian / gradient the oracle writes
analytically (so the exact-trace and JVP code paths are held against closed forms), and the
linear-Gaussian score family ``s(x) = -A (x - mu)`` whose score-matching optimum on data
``x`` is closed form: ``mu = mean(x)``, ``A = (S + sigma^2 I)^{-1}`` (``S`` the 1/n sample
covariance; ``sigma = 0`` for exact and sliced SM, the noise level for denoising SM).

Exact expectations. The denoising and sliced objectives average over noise ``eps`` or
projections ``v``; both are quadratic in them, so their expectation depends only on the
first two moments. Using the "sigma points" ``eps in {+-sqrt(D) e_i}`` (mean 0, second
moment I) makes the finite average *equal* to the expectation, so the optimum of the
averaged objective is the closed form exactly (checked to float64 rounding).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import energy as e
from genjax.energy import oracle
from genjax.testing import assert_close_to_oracle

D, H, B = 3, 5, 8


def _params(seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(D, D)) * 0.3 + np.eye(D)
    return {"A": a, "W1": rng.normal(size=(H, D)), "b": rng.normal(size=H) * 0.5,
            "W2": rng.normal(size=(H, D)) * 0.5, "w": rng.normal(size=H), "c": 0.7}  # fmt: skip


P = _params()


def score_model(params, x):  # (batch, D) -> (batch, D)
    h = jnp.tanh(x @ params["W1"].T + params["b"][None])  # (batch, H)
    return -x @ params["A"].T + h @ params["W2"]


def np_score(x):
    return -P["A"] @ x + P["W2"].T @ np.tanh(P["W1"] @ x + P["b"])


def np_jac(x):
    d = 1 - np.tanh(P["W1"] @ x + P["b"]) ** 2
    return -P["A"] + P["W2"].T @ (d[:, None] * P["W1"])


def energy_model(params, x):  # (batch, D) -> (batch,)
    h = jnp.tanh(x @ params["W1"].T + params["b"][None])
    return h @ params["w"] + 0.5 * params["c"] * jnp.sum(x**2, axis=-1)


def np_energy(x):
    return float(P["w"] @ np.tanh(P["W1"] @ x + P["b"]) + 0.5 * P["c"] * x @ x)


def np_energy_score(x):  # -grad E
    d = 1 - np.tanh(P["W1"] @ x + P["b"]) ** 2
    return -(P["W1"].T @ (P["w"] * d) + P["c"] * x)


def _data(seed=1, n=B):
    return np.random.default_rng(seed).normal(size=(n, D))


def _jp(dtype=jnp.float64):
    return jax.tree.map(lambda a: jnp.asarray(a, dtype), P)


def S(params, fn=score_model):
    """The score model over ``params``: a callable pytree (the losses' ``model``)."""
    return jax.tree_util.Partial(fn, params)


def E(params):
    """The energy model over ``params``: a callable pytree."""
    return jax.tree_util.Partial(energy_model, params)


def test_score_matching_losses_match_oracle(x64):
    """Every score-matching loss on shared noise / projections equals its oracle: one
    jitted program computes them all; the denoising loss also runs un-jitted."""
    x = _data()
    rng = np.random.default_rng(2)
    eps, v = rng.normal(size=(B, D)), rng.normal(size=(4, B, D))
    sig = rng.uniform(0.2, 2.0, size=B)
    p = _jp()

    def ncsn_model(params, x, sigma):  # a noise-conditional score: s(x) / sigma
        return score_model(params, x) / sigma[:, None]

    def all_losses(p, x, eps, v, sig):
        return (
            e.exact_score_matching_loss(S(p, score_model), x)[0],
            jnp.mean(e.denoising_score_matching_terms(S(p, score_model), x, eps,
                                                      sigma=0.3)),
            jnp.mean(e.sliced_score_matching_terms(S(p, score_model), x, v)),
            jnp.mean(e.sliced_score_matching_terms(S(p, score_model), x, v,
                                                   variance_reduced=True)),
            jnp.mean(e.ncsn_terms(S(p, ncsn_model), x, eps, sig)),
        )  # fmt: skip

    esm, dsm, ssm, ssm_vr, ncsn = jax.jit(all_losses)(p, x, eps, v, sig)
    assert_close_to_oracle(esm, oracle.exact_score_matching(np_score, np_jac, x))
    ref_dsm = oracle.denoising_score_matching(np_score, x, eps, 0.3)
    assert_close_to_oracle(dsm, ref_dsm)
    assert_close_to_oracle(ssm, oracle.sliced_score_matching(np_score, np_jac, x, v, False))
    assert_close_to_oracle(ssm_vr, oracle.sliced_score_matching(np_score, np_jac, x, v, True))
    ref = oracle.ncsn_objective(lambda z, s: np_score(z) / s, x, eps, sig)
    assert_close_to_oracle(ncsn, ref)
    eager = e.denoising_score_matching_terms(S(_jp()), x, eps, sigma=0.3)
    assert_close_to_oracle(jnp.mean(eager), ref_dsm)


def test_cd_objective_and_negatives_match_oracle(x64):
    x_pos, x0 = _data(3), _data(4)
    noise = np.random.default_rng(5).normal(size=(6, B, D))
    p = _jp()

    @jax.jit
    def run(p, x0, noise, x_pos):  # one program: negatives, loss, gradient
        neg = e.cd_negatives(E(p), x0, noise, step_size=0.05, noise_scale=0.1)
        loss, _ = e.cd_objective(E(p), x_pos, neg, alpha=0.5)
        g = jax.grad(lambda q: e.cd_objective(E(q), x_pos, neg, alpha=0.0)[0])(p)
        return neg, loss, g

    neg, loss, g = run(p, x0, noise, x_pos)
    ref_neg = oracle.langevin_loop(np_energy_score, x0, noise, 0.05, noise_scale=0.1)[-1]
    assert_close_to_oracle(neg, ref_neg, kind="long_loop")
    assert_close_to_oracle(loss, oracle.cd_objective(np_energy, x_pos, ref_neg, 0.5),
                           kind="long_loop")  # fmt: skip
    # The surrogate's gradient ignores the negatives' dependence on params (stop_gradient):
    # d/dc of mean E(x+) - mean E(x-) = (mean |x+|^2 - mean |x-|^2) / 2 at alpha = 0.
    want = 0.5 * (np.mean(np.sum(x_pos**2, -1)) - np.mean(np.sum(np.asarray(neg) ** 2, -1)))
    np.testing.assert_allclose(float(g["c"]), want, rtol=1e-12)


def test_cd_k_and_persistent_cd_losses(key):
    x = jnp.asarray(_data(6), jnp.float32)
    p = _jp(jnp.float32)
    kw = dict(num_steps=3, step_size=0.05, alpha=0.1)

    @jax.jit
    def cd_k_and_ref(p, x, key):
        # CD-k is the CD objective on the chain started at the data, noise from the key.
        noise = jax.random.normal(key, (3, *x.shape), x.dtype)
        neg = e.cd_negatives(E(p), x, noise, step_size=0.05)
        ref = e.cd_objective(E(p), x, neg, alpha=0.1)[0]
        return e.contrastive_divergence_loss(E(p), x, key, **kw)[0], ref

    loss, ref = cd_k_and_ref(p, x, key)
    np.testing.assert_allclose(float(loss), float(ref), rtol=1e-5)

    buf = e.replay_buffer_init(key, 64, (D,), low=-2.0, high=2.0)
    assert buf.shape == (64, D) and float(buf.min()) >= -2 and float(buf.max()) <= 2
    sample = jax.jit(functools.partial(e.replay_buffer_sample, n=1000, reinit_prob=0.05,
                                       low=5.0, high=6.0))  # fmt: skip
    starts, idx = sample(jax.random.key(1), buf)
    fresh = np.asarray(starts[:, 0] >= 5.0)  # fresh draws live on [5, 6], the buffer on [-2, 2]
    assert 0.02 < fresh.mean() < 0.09  # ~5% reinitialised (1000 draws: sd 0.7%)
    from_buffer = np.asarray(buf)[np.asarray(idx)]
    np.testing.assert_array_equal(np.asarray(starts)[~fresh], from_buffer[~fresh])
    pcd = functools.partial(e.persistent_contrastive_divergence_loss, low=-2.0, high=2.0, **kw)
    pcd_of_params = lambda q, *args: pcd(E(q), *args)  # noqa: E731
    (loss, (m, new_buf)), grads = jax.jit(jax.value_and_grad(pcd_of_params, has_aux=True))(
        p, x, key, buf)
    assert np.isfinite(float(loss)) and all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
    assert float(jnp.abs(grads["c"])) > 0
    changed = np.any(np.asarray(new_buf) != np.asarray(buf), axis=1)
    assert 1 <= changed.sum() <= B  # the chains' end points were written back
    with pytest.raises(ValueError, match="num_steps"):
        e.contrastive_divergence_loss(E(p), x, key, **{**kw, "num_steps": 0})
    with pytest.raises(ValueError, match="step_size"):
        e.contrastive_divergence_loss(E(p), x, key, **{**kw, "step_size": -1.0})
    with pytest.raises(ValueError, match="reinit_prob"):
        e.replay_buffer_sample(key, buf, 4, reinit_prob=1.5, low=0.0, high=1.0)


def linear_score(params, x):  # s(x) = -A (x - mu)
    return -(x - params["mu"][None]) @ params["A"].T


def _sigma_points(x, d):
    """Each example paired with eps in {+-sqrt(D) e_i}: mean 0, second moment I."""
    pts = np.concatenate([np.eye(d), -np.eye(d)]) * np.sqrt(d)  # (2D, D)
    return np.repeat(x, 2 * d, axis=0), np.tile(pts, (x.shape[0], 1))


def test_gaussian_family_shares_the_closed_form_optimum(x64):
    """Exact and sliced SM are minimised at ``A = S^{-1}``, denoising SM at
    ``(S + sigma^2 I)^{-1}`` (the score of the noised data): zero gradient there to
    float64 rounding, a positive loss increase at perturbations; the DSM optimum tends to
    the exact one as sigma -> 0, with gap ``~ sigma^2 S^{-2}`` (its known bias)."""
    x = np.random.default_rng(7).normal(size=(40, 2)) @ np.array([[1.0, 0.4], [0.0, 0.6]]) + 1.0
    mu, a_exact = oracle.gaussian_sm_optimum(x)
    opt = {"A": jnp.asarray(a_exact), "mu": jnp.asarray(mu)}
    d = x.shape[1]

    v = np.sqrt(d) * np.eye(d)[:, None, :].repeat(x.shape[0], axis=1)  # (D, n, D)

    def esm(q):
        return e.exact_score_matching_loss(S(q, linear_score), x)[0]

    def ssm(q):
        return jnp.mean(e.sliced_score_matching_terms(S(q, linear_score), x, v))

    @jax.jit
    def check(q):  # (loss at q, loss at a perturbed q, gradient at q) of both objectives
        bumped = {**q, "A": q["A"] + 0.05 * jnp.eye(d)}
        return [(f(q), f(bumped), jax.grad(f)(q)) for f in (esm, ssm)]

    for name, (at, off, g) in zip(("exact", "sliced"), check(opt), strict=True):
        assert max(float(jnp.max(jnp.abs(a))) for a in jax.tree.leaves(g)) < 1e-12, name
        assert float(off) > float(at) + 1e-4, name
    # With projections sqrt(D) e_i, sliced SM equals exact SM for any model.
    p = _jp()
    xx = _data(8)
    vv = np.sqrt(D) * np.eye(D)[:, None, :].repeat(B, axis=1)
    both = jax.jit(lambda p: (
        jnp.mean(e.sliced_score_matching_terms(S(p, score_model), xx, vv)),
        e.exact_score_matching_loss(S(p, score_model), xx)[0]))  # fmt: skip
    sliced, exact = both(p)
    np.testing.assert_allclose(float(sliced), float(exact), rtol=1e-12)

    xr, eps = _sigma_points(x, d)

    @jax.jit
    def dsm_grad(q, sigma):  # one program for every sigma
        return jax.grad(lambda r: jnp.mean(e.denoising_score_matching_terms(
            S(r, linear_score), xr, eps, sigma=sigma)))(q)  # fmt: skip

    gaps = []
    for sigma in (0.2, 0.1, 0.05):
        mu_s, a_s = oracle.gaussian_sm_optimum(x, sigma)
        opt_s = {"A": jnp.asarray(a_s), "mu": jnp.asarray(mu_s)}
        g = dsm_grad(opt_s, sigma)
        assert max(float(jnp.max(jnp.abs(a))) for a in jax.tree.leaves(g)) < 1e-12
        assert float(jnp.max(jnp.abs(dsm_grad(opt, sigma)["A"]))) > 1e-3  # biased vs exact
        gaps.append(np.abs(a_s - a_exact).max())
    # the bias is O(sigma^2): halving sigma divides it by ~4
    assert 3.5 < gaps[0] / gaps[1] < 4.5 and 3.5 < gaps[1] / gaps[2] < 4.5
