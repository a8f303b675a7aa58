"""Next-token cross-entropy (with masks), image and signal likelihoods against the oracle."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import autoregressive
from genjax.autoregressive import oracle_network as oracle
from genjax.testing import assert_close_to_oracle


def test_next_token_nll_matches_oracle(x64):
    rng = np.random.default_rng(0)  # NumPy draws: no JAX programs to compile for inputs
    logits = 3.0 * rng.standard_normal((3, 5, 7))
    tokens = rng.integers(0, 7, (3, 6))
    mask = rng.random((3, 6)) < 0.6
    nll = autoregressive.next_token_nll

    @jax.jit
    def all_masks(logits, tokens, mask):
        return nll(logits, tokens), nll(logits, tokens, mask), nll(logits, tokens, mask & False)

    (full, n_full), (masked, n_masked), (empty, n_empty) = all_masks(logits, tokens, mask)
    assert_close_to_oracle(full, oracle.next_token_nll(logits, tokens))
    assert_close_to_oracle(masked, oracle.next_token_nll(logits, tokens, np.asarray(mask)))
    assert int(n_full) == 15 and int(n_masked) == int(np.asarray(mask)[:, 1:].sum())
    assert abs(float(masked) - float(full)) > 1e-3  # the mask matters
    # an all-zero mask counts nothing: loss 0, not NaN
    assert float(empty) == 0.0 and int(n_empty) == 0
    # without jit: the same numbers
    assert_close_to_oracle(nll(logits, tokens)[0], oracle.next_token_nll(logits, tokens))


def test_categorical_nll_extreme_logits(x64):
    logits = jnp.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]])
    fn = jax.jit(autoregressive.categorical_nll)
    nll = fn(logits, jnp.array([0, 2]))
    np.testing.assert_allclose(nll, [0.0, math.log(3.0)], rtol=1e-12, atol=1e-12)
    nll = fn(logits, jnp.array([1, 1]))
    assert_close_to_oracle(nll, oracle.categorical_nll(np.asarray(logits), np.array([1, 1])))
    assert float(nll[0]) == pytest.approx(2e4)


class _Fixed:
    """A 'model' whose logits ignore the input: the loss is then known exactly."""

    num_levels = 3

    def __init__(self, logits):
        self.logits = logits

    def __call__(self, x):
        return jnp.broadcast_to(self.logits, (*x.shape[:-1], 3))


def test_pixelcnn_and_wavenet_losses_are_exact_for_a_fixed_model():
    p = jnp.array([0.5, 0.25, 0.25])
    model = _Fixed(jnp.log(p))
    images = jnp.zeros((2, 4, 4, 1), jnp.int32).at[:, 0, 0, 0].set(1)  # 15 zeros, one 1
    loss, metrics = jax.jit(lambda x: autoregressive.pixelcnn_loss(model, x, None))(images)
    nll = 15 * math.log(2.0) + math.log(4.0)  # nats per image
    np.testing.assert_allclose(metrics["nll_nats"], nll, rtol=1e-6)
    np.testing.assert_allclose(loss, nll / 16, rtol=1e-6)
    np.testing.assert_allclose(metrics["bits_per_dim"], (15 + 2) / 16, rtol=1e-6)
    signal = jnp.array([[0, 2, 1, 0]])
    loss, metrics = jax.jit(lambda x: autoregressive.wavenet_loss(model, x, None))(signal)
    np.testing.assert_allclose(loss, (2 * math.log(2.0) + 2 * math.log(4.0)) / 4, rtol=1e-6)
    np.testing.assert_allclose(metrics["bits_per_sample"], 1.5, rtol=1e-6)


def test_next_token_loss_gradient_lowers_the_loss():
    # one gradient step on the logits of a fixed 'model' must lower the loss
    table = np.random.default_rng(1).standard_normal((4, 4)).astype(np.float32)
    tokens = np.array([[0, 1, 2, 3, 0], [1, 2, 3, 0, 1]])

    def loss(t):
        return autoregressive.next_token_loss(lambda x: t[x], tokens, None)[0]

    value_and_grad = jax.jit(jax.value_and_grad(loss))
    value, grad = value_and_grad(table)
    assert bool(jnp.all(jnp.isfinite(grad))) and float(jnp.abs(grad).sum()) > 0
    assert float(value_and_grad(table - 0.5 * grad)[0]) < float(value)


def test_bad_arguments():
    with pytest.raises(ValueError, match="targets"):
        autoregressive.categorical_nll(np.zeros((2, 3, 4)), np.zeros((2, 4), np.int32))
    with pytest.raises(ValueError, match="tokens"):
        autoregressive.next_token_nll(np.zeros((2, 3, 4)), np.zeros((2, 3), np.int32))
    with pytest.raises(ValueError, match="mask"):
        autoregressive.next_token_nll(np.zeros((2, 3, 4)), np.zeros((2, 4), np.int32),
                                      np.ones((2, 3)))
