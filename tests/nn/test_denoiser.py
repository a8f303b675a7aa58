"""MLPDenoiser: shapes, dtypes, time and label conditioning, bad arguments."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import nn
from genjax.testing import count_compilations


def test_shapes_and_time_dependence():
    net = nn.MLPDenoiser(2, [32, 32], time_embed_dim=16, rngs=nnx.Rngs(0))
    x = jnp.ones((5, 2))
    y0 = net(x, jnp.zeros(5, jnp.int32))
    y1 = net(x, jnp.full(5, 500, jnp.int32))
    assert y0.shape == (5, 2) and y0.dtype == jnp.float32
    # The output must depend on t (time embedding wired in) and on x.
    assert float(jnp.abs(y0 - y1).max()) > 1e-4
    assert float(jnp.abs(net(2 * x, jnp.zeros(5, jnp.int32)) - y0).max()) > 1e-4
    assert bool(jnp.all(jnp.isfinite(y0)))


def test_passed_whole_under_jit_matches_eager_and_compiles_once():
    net = nn.MLPDenoiser(2, 32, time_embed_dim=8, rngs=nnx.Rngs(1))
    other = nn.MLPDenoiser(2, 32, time_embed_dim=8, rngs=nnx.Rngs(2))
    x = jax.random.normal(jax.random.key(0), (7, 2))
    t = jnp.arange(7)
    apply = jax.jit(lambda model, x, t: model(x, t))  # the module is a traced argument
    np.testing.assert_allclose(apply(net, x, t), net(x, t), rtol=1e-5, atol=1e-6)
    with count_compilations() as compiled:
        out = apply(other, x, t)  # new weights, same shapes: the same program
    assert compiled[0] == 0
    np.testing.assert_allclose(out, other(x, t), rtol=1e-5, atol=1e-6)


def test_class_conditioning_and_null_label():
    net = nn.MLPDenoiser(2, [32], time_embed_dim=16, num_classes=3, rngs=nnx.Rngs(0))
    x, t = jnp.ones((4, 2)), jnp.full(4, 10)
    out = net(x, t, jnp.array([0, 1, 2, 3]))  # 3 = the null label
    assert out.shape == (4, 2)
    # Identical inputs, different labels -> different outputs (the label is used).
    assert float(jnp.abs(out[0] - out[1]).max()) > 1e-4
    assert float(jnp.abs(out[2] - out[3]).max()) > 1e-4


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="time_embed_dim"):
        nn.MLPDenoiser(2, [8], time_embed_dim=7, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="dim"):
        nn.MLPDenoiser(0, [8], time_embed_dim=8, rngs=nnx.Rngs(0))
    net = nn.MLPDenoiser(2, [8], time_embed_dim=8, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="x must have shape"):
        net(jnp.ones((3, 3)), jnp.zeros(3))
    with pytest.raises(ValueError, match="labels"):
        net(jnp.ones((3, 2)), jnp.zeros(3), jnp.zeros(3, jnp.int32))
