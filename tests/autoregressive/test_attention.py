"""genjax.nn.attention against the NumPy oracle; masks, causality by Jacobian, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax.autoregressive import oracle_network as oracle
from genjax.nn import MultiHeadAttention, TransformerBlock, causal_mask, dot_product_attention
from genjax.testing import assert_close_to_oracle


def _rngs(seed):
    # initialisation keys of the "rbg" generator: its random draws compile ~30% faster on
    # CPU than threefry's, and the tests hold structure and oracles, not particular weights
    return nnx.Rngs(jax.random.key(seed, impl="rbg"))


def _qkv(seed=0, B=2, L=5, S=5, H=2, d=4, dtype=np.float32):
    # NumPy draws: no JAX programs to compile just to make inputs
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal(shape).astype(dtype)
                 for shape in ((B, L, H, d), (B, S, H, d), (B, S, H, d)))


def test_causal_mask():
    np.testing.assert_array_equal(np.asarray(causal_mask(4)), oracle.causal_mask(4))
    assert causal_mask(4).dtype == jnp.bool_


@pytest.mark.parametrize("jit", [False, True])
def test_dot_product_attention_matches_oracle(x64, jit):
    q, k, v = _qkv(dtype=np.float64)
    padding = jnp.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)[:, None, None, :]  # (B,1,1,S)
    fn = jax.jit(dot_product_attention) if jit else dot_product_attention
    for mask in (None, causal_mask(5), jnp.logical_and(causal_mask(5)[None, None], padding)):
        out = fn(q, k, v, mask=mask)
        expected = oracle.attention(q, k, v, None if mask is None else np.asarray(mask))
        assert out.dtype == jnp.float64
        assert_close_to_oracle(out, expected)


def test_attention_float32_and_masked_rows():
    q, k, v = _qkv()
    # a mask whose row 0 is empty: finfo.min by where gives a uniform average, never NaN
    mask = causal_mask(5).at[0, 0].set(False)
    out = dot_product_attention(q, k, v, mask=mask)
    assert bool(jnp.all(jnp.isfinite(out)))
    assert_close_to_oracle(out, oracle.attention(q, k, v, np.asarray(mask)))
    np.testing.assert_allclose(out[:, 0], jnp.mean(v, axis=1), rtol=1e-5, atol=1e-6)


def test_attention_extreme_scores():
    q, k, v = _qkv()
    # scores of order 1e4 / sqrt(4) saturate the softmax to one-hot, still finite and exact
    out = dot_product_attention(q * 100.0, k * 100.0, v, mask=causal_mask(5))
    assert bool(jnp.all(jnp.isfinite(out)))
    scores = jnp.einsum("blhd,bshd->bhls", q, k)
    scores = jnp.where(causal_mask(5)[None, None], scores, -jnp.inf)
    winner = jnp.argmax(scores, axis=-1)  # (B, H, L)
    expected = jnp.take_along_axis(v.transpose(0, 2, 1, 3), winner[..., None], axis=2)
    np.testing.assert_allclose(out, expected.transpose(0, 2, 1, 3), rtol=0, atol=1e-5)


def _linear(layer):
    return np.asarray(layer.kernel[...], np.float64), np.asarray(layer.bias[...], np.float64)


@pytest.mark.parametrize("cross", [False, True])
def test_multi_head_attention_matches_oracle(x64, cross):
    rng = np.random.default_rng(1)
    mha = MultiHeadAttention(8, 2, rngs=_rngs(0), context_features=4 if cross else None)
    x = rng.standard_normal((2, 4, 8))
    context = rng.standard_normal((2, 6, 4)) if cross else None
    mask = None if cross else causal_mask(4)
    out = jax.jit(lambda m, x, c: m(x, context=c, mask=mask))(mha, x, context)
    wq, bq = _linear(mha.query)
    wkv, bkv = _linear(mha.key_value)
    wo, bo = _linear(mha.out)
    expected = oracle.multi_head_attention(x, x if context is None else context, wq, bq, wkv,
                                           bkv, wo, bo, 2, None if mask is None else
                                           np.asarray(mask))
    assert_close_to_oracle(out, expected)


def test_transformer_block_is_causal_by_jacobian(x64):
    block = TransformerBlock(8, 2, rngs=_rngs(1), causal=True)
    x = np.random.default_rng(2).standard_normal((1, 6, 8))
    jac = jax.jit(jax.jacrev(lambda m, x: m(x)[0], argnums=1))(block, x)[:, :, 0]  # (L,D,L,D)
    dependence = np.abs(np.asarray(jac)).sum(axis=(1, 3))  # (L out, L in)
    # d out_t / d x_s = 0 exactly for s > t; nonzero for every s <= t
    np.testing.assert_array_equal(dependence > 0, np.tril(np.ones((6, 6), bool)))


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_heads"):
        MultiHeadAttention(10, 3, rngs=_rngs(0))
    with pytest.raises(ValueError, match="in_features"):
        MultiHeadAttention(0, 1, rngs=_rngs(0))
    with pytest.raises(ValueError, match="length"):
        causal_mask(0)
    with pytest.raises(ValueError, match="mlp_ratio"):
        TransformerBlock(8, 2, rngs=_rngs(0), mlp_ratio=0)
    q = np.zeros((1, 3, 2, 4), np.float32)
    with pytest.raises(ValueError, match="mask"):
        dot_product_attention(q, q, q, mask=np.ones((3, 3)))  # not bool
    with pytest.raises(ValueError, match="mask"):
        dot_product_attention(q, q, q, mask=np.ones((4, 3), bool))
    mha = MultiHeadAttention(8, 2, rngs=_rngs(0), context_features=4)
    with pytest.raises(ValueError, match="context"):
        mha(np.zeros((1, 2, 8), np.float32))
