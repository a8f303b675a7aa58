"""UNet: shapes at 8x8 / 28x28 / 32x32, conditioning paths, bad sizes."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import nn


@pytest.mark.parametrize("size, mults", [(28, (1, 2, 2)), (32, (1, 2, 2)), (32, (1, 2, 2, 2))])
def test_output_shape_large_images(size, mults):
    # Shape inference only (eval_shape compiles nothing): the sizes fit the levels.
    net = nnx.eval_shape(lambda: nn.UNet(1, base_channels=8, channel_mults=mults, num_heads=2,
                                         num_groups=4, rngs=nnx.Rngs(0)))
    x = jax.ShapeDtypeStruct((2, size, size, 1), jnp.float32)
    t = jax.ShapeDtypeStruct((2,), jnp.int32)
    y = jax.eval_shape(lambda model, x, t: model(x, t), net, x, t)
    assert y.shape == (2, size, size, 1) and y.dtype == jnp.float32


def _fill(leaf):
    # Deterministic, varied, nonzero weights in [-0.3, 0.3]: sin of a scrambled index.
    idx = jnp.arange(leaf.size, dtype=jnp.float32).reshape(leaf.shape)
    return (0.3 * jnp.sin(idx * 12.9898 + leaf.size * 0.61)).astype(leaf.dtype)


@pytest.fixture(scope="module")
def conditional_net():
    # One network for the value tests. Building a U-Net eagerly compiles one random
    # initialiser per weight shape (seconds on a small CPU); the shape is built abstractly
    # and filled with deterministic weights by one small compiled program instead (the
    # real initialisers run in the denoiser tests and the ddpm-digits recipe test).
    abstract = nnx.eval_shape(lambda: nn.UNet(1, base_channels=8, channel_mults=(1, 2),
                                              num_heads=2, num_groups=4, num_classes=4,
                                              context_dim=6, rngs=nnx.Rngs(0)))
    net = jax.jit(lambda: jax.tree.map(_fill, abstract))()  # the module, weights filled
    apply = jax.jit(lambda model, x, t, y, c: model(x, t, y, c))  # passed whole
    return net, apply


def test_output_values_and_time_dependence_8x8(conditional_net):
    net, apply = conditional_net
    x = jax.random.normal(jax.random.key(0), (2, 8, 8, 1))
    ctx = jax.random.normal(jax.random.key(2), (4, 5, 6))
    # The same image twice, at two times each.
    y = apply(net, jnp.concatenate([x, x]), jnp.array([1, 500, 2, 900]), jnp.full(4, 2), ctx)
    assert y.shape == (4, 8, 8, 1) and y.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(y)))
    # Nonzero and time-dependent.
    assert float(jnp.abs(y).max()) > 1e-4
    assert float(jnp.abs(y[:2] - y[2:]).max()) > 1e-4


def test_class_and_context_paths_under_jit(conditional_net):
    net, apply = conditional_net
    x = jax.random.normal(jax.random.key(1), (4, 8, 8, 1))
    ctx = jax.random.normal(jax.random.key(2), (4, 5, 6))
    t = jnp.full(4, 3)
    labels = jnp.array([0, 4, 1, 2])  # 4 = the null label
    out = apply(net, x, t, labels, ctx)
    assert out.shape == (4, 8, 8, 1)
    # The label and the context both change the output; other examples are untouched.
    other_label = apply(net, x, t, jnp.array([1, 4, 1, 2]), ctx)
    assert float(jnp.abs(other_label[0] - out[0]).max()) > 1e-5
    np.testing.assert_allclose(other_label[1:], out[1:], rtol=1e-5, atol=1e-6)
    other_ctx = apply(net, x, t, labels, 2.0 * ctx)
    assert float(jnp.abs(other_ctx - out).max()) > 1e-5


def test_bad_sizes_and_missing_conditioning_raise(conditional_net):
    net, apply = conditional_net
    ctx, t = jnp.ones((1, 5, 6)), jnp.zeros(1)
    label = jnp.zeros(1, jnp.int32)
    with pytest.raises(ValueError, match="divisible"):
        apply(net, jnp.ones((1, 9, 9, 1)), t, label, ctx)  # 9 not divisible by 2
    with pytest.raises(ValueError, match="x must have shape"):
        apply(net, jnp.ones((1, 8, 8, 3)), t, label, ctx)
    with pytest.raises(ValueError, match="labels"):
        apply(net, jnp.ones((1, 8, 8, 1)), t, None, ctx)
    with pytest.raises(ValueError, match="context"):
        apply(net, jnp.ones((1, 8, 8, 1)), t, label, None)
    with pytest.raises(ValueError, match="num_groups"):
        nn.UNet(1, base_channels=6, num_groups=4, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="attention_levels"):
        nn.UNet(1, base_channels=8, channel_mults=(1, 2), attention_levels=(2,),
                num_groups=4, rngs=nnx.Rngs(0))


def _einsum_attention(q, k, v, num_heads):
    # The U-Net's former private formula, kept here as the reference: softmax(Q K^T/sqrt d) V.
    B, Nq, C = q.shape
    d = C // num_heads
    q, k, v = (a.reshape(a.shape[0], a.shape[1], num_heads, d) for a in (q, k, v))
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(d)  # (B, heads, Nq, Nk)
    out = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(logits, axis=-1), v)
    return out.reshape(B, Nq, C)


def test_attention_is_the_shared_dot_product_attention():
    # The U-Net attends through genjax.nn.dot_product_attention (unmasked): the same outputs
    # as its own former einsum formula, for self- (Nq = Nk) and cross-attention shapes.
    from genjax.nn import unet

    for B, Nq, Nk, C, H in [(2, 16, 16, 16, 2), (3, 8, 5, 12, 3)]:
        rng = np.random.default_rng(Nq * C + Nk)
        q = rng.standard_normal((B, Nq, C), np.float32)
        k, v = rng.standard_normal((2, B, Nk, C), np.float32)
        both = jax.jit(lambda q, k, v, H=H: (unet._multi_head_attention(q, k, v, H),
                                             _einsum_attention(q, k, v, H)))
        got, want = both(q, k, v)
        assert got.shape == (B, Nq, C)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
