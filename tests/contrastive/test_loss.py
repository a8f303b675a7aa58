"""CLIP and SigLIP losses: the NumPy oracle, exact values, invariances, bad and extreme input."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import contrastive as c
from genjax.contrastive import oracle
from genjax.testing import assert_close_to_oracle

N, D = 16, 8


def _pair(seed: int, n: int = N, d: int = D, dtype=np.float32):
    rng = np.random.default_rng(seed)
    # Correlated pairs, so the positives stand out and the loss is far from log N.
    a = rng.normal(size=(n, d))
    b = a + 0.7 * rng.normal(size=(n, d))
    return a.astype(dtype), b.astype(dtype)


# One compiled program per function, shared by every test (compiles dominate the run time).
_jit_loss = jax.jit(c.clip_loss)
_jit_terms = jax.jit(c.clip_loss_terms)
_jit_sigmoid = jax.jit(c.sigmoid_loss)
_jit_grad = jax.jit(jax.grad(c.clip_loss, argnums=(0, 1, 2)))


@pytest.mark.parametrize("jit", [False, True])
def test_clip_loss_matches_oracle(jit):
    a, b = _pair(0)
    loss = (_jit_loss if jit else c.clip_loss)(a, b, jnp.float32(5.0))
    terms = (_jit_terms if jit else c.clip_loss_terms)(a, b, jnp.float32(5.0))
    # float32 vs float64 for one loss evaluation: genjax.testing's single_op (1e-5 rel).
    assert_close_to_oracle(loss, oracle.clip_loss(a, b, 5.0))
    assert_close_to_oracle(jnp.stack(terms), np.array(oracle.clip_loss_terms(a, b, 5.0)))
    # Correlated pairs are better than chance: a loss returning 0 or log N fails here.
    assert 0.1 < float(loss) < math.log(N) - 0.1


def test_clip_gradient_matches_oracle(x64):
    a, b = _pair(1, dtype=np.float64)
    ga, gb, gs = jax.jit(jax.grad(c.clip_loss, argnums=(0, 1, 2)))(a, b, 3.0)
    oa, ob, os_ = oracle.clip_loss_grad(a, b, 3.0)
    # float64 on both sides: single_op float64 (1e-10 rel).
    assert_close_to_oracle(ga, oa)
    assert_close_to_oracle(gb, ob)
    assert_close_to_oracle(gs, np.asarray(os_))
    # Raising s sharpens correct pairings: the loss must fall as s grows.
    assert float(gs) < 0


def test_clip_gradient_float32_jit():
    a, b = _pair(2)
    grads = _jit_grad(a, b, jnp.float32(3.0))
    for g, o in zip(grads, oracle.clip_loss_grad(a, b, 3.0), strict=True):
        # Gradient entries are small differences of O(1) softmax terms: allow 1e-6 absolute
        # on top of single_op's 1e-5 relative (float32 rounding of the (N, N) sums).
        np.testing.assert_allclose(np.asarray(g), o, rtol=1e-4, atol=1e-6)


def test_oracle_gradient_matches_finite_differences():
    a, b = _pair(3, n=5, d=3, dtype=np.float64)
    ga, gb, gs = oracle.clip_loss_grad(a, b, 2.0)
    h = 1e-6
    num_a = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        ap, am = a.copy(), a.copy()
        ap[idx] += h
        am[idx] -= h
        num_a[idx] = (oracle.clip_loss(ap, b, 2.0) - oracle.clip_loss(am, b, 2.0)) / (2 * h)
    num_s = (oracle.clip_loss(a, b, 2.0 + h) - oracle.clip_loss(a, b, 2.0 - h)) / (2 * h)
    # Central differences in float64: O(h^2) truncation + O(eps/h) rounding ~ 1e-9.
    np.testing.assert_allclose(ga, num_a, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gs, num_s, rtol=1e-6, atol=1e-8)
    assert gb.shape == b.shape


@pytest.mark.parametrize("scale", [1.0, 100.0])
def test_identical_embeddings_give_log_n(scale):
    # Every pair equally similar: each softmax is uniform over N, so each term is log N.
    e = np.tile(np.arange(1.0, D + 1.0, dtype=np.float32), (N, 1))
    assert_close_to_oracle(_jit_loss(e, e * 3.0, jnp.float32(scale)), np.asarray(math.log(N)))
    i2t, t2i = _jit_terms(e, e, jnp.float32(scale))
    np.testing.assert_allclose([float(i2t), float(t2i)], [math.log(N)] * 2, rtol=1e-6)


def test_invariant_to_a_consistent_permutation():
    a, b = _pair(4)
    perm = np.random.default_rng(5).permutation(N)
    s = jnp.float32(4.0)
    # Permuting only one side breaks the pairing (the loss changes) ...
    assert abs(float(_jit_loss(a, b[perm], s)) - float(_jit_loss(a, b, s))) > 0.1
    # ... permuting both keeps it: sums over i and j are order-free (single_op tolerance).
    np.testing.assert_allclose(_jit_loss(a[perm], b[perm], s), _jit_loss(a, b, s), rtol=1e-5)


def test_terms_swap_when_roles_swap():
    a, b = _pair(6)
    s = jnp.float32(6.0)
    i2t, t2i = _jit_terms(a, b, s)
    i2t_swapped, t2i_swapped = _jit_terms(b, a, s)
    # The two terms differ for a generic batch, so the check below is not vacuous.
    assert abs(float(i2t) - float(t2i)) > 1e-3
    np.testing.assert_allclose([i2t_swapped, t2i_swapped], [t2i, i2t], rtol=1e-5)


def test_perfect_pairing_at_high_scale_is_near_zero():
    e = np.eye(N, dtype=np.float32)
    assert float(_jit_loss(e, e, jnp.float32(100.0))) < 1e-6
    # The same embeddings paired wrongly: the loss is large (wrong sign or zeros fail).
    assert float(_jit_loss(e, np.roll(e, 1, axis=0), jnp.float32(100.0))) > 50


def test_extreme_inputs_stay_finite_and_correct():
    a, b = _pair(7)
    s = jnp.float32(c.MAX_LOGIT_SCALE)
    expected = oracle.clip_loss(a, b, 100.0)
    for scale_by in (1e30, 1e-30):  # normalisation must neither overflow nor underflow
        loss = _jit_loss(a * scale_by, b * scale_by, s)
        grads = _jit_grad(a * scale_by, b * scale_by, s)
        # Scale-invariance: the same loss as at unit scale (single_op at s = 100 logits).
        np.testing.assert_allclose(float(loss), expected, rtol=1e-4)
        assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)
    # A zero embedding is legal (an untrained network can output one) and stays finite.
    z = a.copy()
    z[0] = 0.0
    assert np.isfinite(float(_jit_loss(z, b, s)))


def test_bad_arguments_raise():
    a, b = _pair(8)
    with pytest.raises(ValueError, match="text_emb.*batch size"):
        c.clip_loss(a, b[:-1], 1.0)
    with pytest.raises(ValueError, match="text_emb.*dimension"):
        c.clip_loss(a, b[:, :-1], 1.0)
    with pytest.raises(ValueError, match="image_emb"):
        c.clip_loss(a[0], b, 1.0)
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="logit_scale must be positive"):
            c.clip_loss(a, b, bad)
        with pytest.raises(ValueError, match="logit_scale must be positive"):
            c.sigmoid_loss(a, b, bad, 0.0)
    with pytest.raises(ValueError, match="logit_scale must be a scalar"):
        c.clip_loss(a, b, jnp.ones(2))
    with pytest.raises(ValueError, match="logit_bias"):
        c.sigmoid_loss(a, b, 1.0, jnp.ones(2))


def test_clipped_logit_scale():
    log100 = math.log(100.0)
    np.testing.assert_allclose(c.clipped_logit_scale(c.INIT_LOG_LOGIT_SCALE), 1 / 0.07, rtol=1e-6)
    np.testing.assert_allclose(c.clipped_logit_scale(log100 + 3.0), 100.0, rtol=1e-6)
    grad = jax.grad(c.clipped_logit_scale)
    # d exp(t)/dt = exp(t) below the clip; no gradient above it.
    np.testing.assert_allclose(grad(1.0), math.e, rtol=1e-6)
    assert float(grad(log100 + 1.0)) == 0.0
    with pytest.raises(ValueError, match="max_logit_scale"):
        c.clipped_logit_scale(0.0, max_logit_scale=0.0)


def test_sigmoid_loss_matches_oracle():
    a, b = _pair(9)
    loss = _jit_sigmoid(a, b, jnp.float32(10.0), jnp.float32(-10.0))
    assert_close_to_oracle(loss, np.asarray(oracle.sigmoid_loss(a, b, 10.0, -10.0)))


def test_sigmoid_loss_exact_value_and_extremes():
    # Identical embeddings: every logit is s + b, so the loss is
    # -(1/N) [N log sig(s+b) + (N^2 - N) log sig(-(s+b))]  (closed form).
    e = np.ones((N, D), np.float32)
    s, b = 3.0, -1.0
    log_sig = lambda z: -np.logaddexp(0.0, -z)  # noqa: E731
    exact = -(N * log_sig(s + b) + (N * N - N) * log_sig(-(s + b))) / N
    np.testing.assert_allclose(float(_jit_sigmoid(e, e, s, b)), exact, rtol=1e-5)
    # Logits of +-1e4 (a huge bias) stay finite: log sigma is computed stably.
    a, bb = _pair(10)
    loss = _jit_sigmoid(a * 1e30, bb, jnp.float32(100.0), jnp.float32(1e4))
    np.testing.assert_allclose(float(loss), oracle.sigmoid_loss(a, bb, 100.0, 1e4), rtol=1e-5)
