"""genjax.nn: MLP and time embeddings, against hand-written NumPy formulas."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import nn


def _numpy_mlp(net: nn.MLP, x: np.ndarray, act) -> np.ndarray:
    """h_l = act(h W_l + b_l), read-out linear, from the module's own weights."""
    h = np.asarray(x, np.float64)
    layers = list(net.layers)
    for i, layer in enumerate(layers):
        h = h @ np.asarray(layer.kernel[...], np.float64) + np.asarray(layer.bias[...], np.float64)
        if i < len(layers) - 1:
            h = act(h)
    return h


def test_mlp_shapes_and_values():
    net = nn.MLP(3, [16, 8], 2, rngs=nnx.Rngs(0), activation=jax.nn.relu)
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    y = net(jnp.asarray(x))
    assert y.shape == (5, 2) and y.dtype == jnp.float32
    # float32 forward pass vs float64 NumPy: ~1e-6 relative for three small matmuls.
    np.testing.assert_allclose(
        y, _numpy_mlp(net, x, lambda h: np.maximum(h, 0.0)), rtol=1e-5, atol=1e-5
    )
    assert len(net.layers) == 3


def test_mlp_default_activation_is_silu_and_extra_leading_axes():
    net = nn.MLP(2, [4], 3, rngs=nnx.Rngs(1))
    x = np.random.default_rng(1).normal(size=(2, 3, 2)).astype(np.float32)
    y = net(jnp.asarray(x))
    assert y.shape == (2, 3, 3)
    silu = lambda h: h / (1.0 + np.exp(-h))
    np.testing.assert_allclose(y, _numpy_mlp(net, x, silu), rtol=1e-5, atol=1e-5)


def test_mlp_without_hidden_layers_is_affine():
    net = nn.MLP(4, [], 2, rngs=nnx.Rngs(2))
    assert len(net.layers) == 1
    x = jnp.ones((3, 4))
    np.testing.assert_allclose(net(2 * x) - net(x), net(x) - net(0 * x), rtol=1e-5, atol=1e-5)


def test_mlp_passed_whole_to_jit_and_grad():
    net = nn.MLP(2, [8], 1, rngs=nnx.Rngs(3))
    x = jnp.linspace(-1.0, 1.0, 6).reshape(3, 2)
    eager = net(x)
    np.testing.assert_allclose(jax.jit(lambda m, x: m(x))(net, x), eager, rtol=1e-6)
    # The module is the pytree jax.grad differentiates: no split / merge.
    grads = jax.jit(jax.grad(lambda m: jnp.sum(m(x) ** 2)))(net)
    assert isinstance(grads, nn.MLP)
    # The read-out bias gradient of sum(y^2) is sum(2 y) -- nonzero, correct sign.
    np.testing.assert_allclose(grads.layers[1].bias[...], 2.0 * jnp.sum(eager, axis=0), rtol=1e-5)


def test_every_public_name_of_the_nn_modules_is_exported():
    import importlib
    import inspect
    import pkgutil

    missing = []
    for info in pkgutil.iter_modules(nn.__path__):
        if info.name.startswith("oracle"):
            continue  # NumPy twins for the tests (oracle_lora), not part of the API
        module = importlib.import_module(f"genjax.nn.{info.name}")
        for name, value in vars(module).items():
            defined_here = getattr(value, "__module__", None) == module.__name__
            if name.startswith("_") or not defined_here or not callable(value):
                continue
            if inspect.isclass(value) or inspect.isfunction(value):
                if getattr(nn, name, None) is not value or name not in nn.__all__:
                    missing.append(f"{info.name}.{name}")
    assert not missing, f"not re-exported by genjax.nn: {missing}"


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, [4], 2), "in_features"),
        ((2, [4], 0), "out_features"),
        ((2, [4, 0], 1), r"hidden_sizes\[1\]"),
        ((2, [-3], 1), r"hidden_sizes\[0\]"),
        ((2, [2.5], 1), r"hidden_sizes\[0\]"),
    ],
)
def test_mlp_bad_sizes(args, match):
    with pytest.raises(ValueError, match=match):
        nn.MLP(*args, rngs=nnx.Rngs(0))


def _numpy_sinusoidal(t, dim, max_period=10_000.0):
    half = dim // 2
    out = np.zeros((len(t), dim))
    for b, tb in enumerate(np.asarray(t, np.float64)):
        for i in range(half):
            w = max_period ** (-i / half)  # Vaswani et al. (2017): 1 / 10000^(2i/d)
            out[b, i] = math.sin(tb * w)
            out[b, half + i] = math.cos(tb * w)
    return out


@pytest.mark.parametrize("dim", [2, 6, 32])
def test_sinusoidal_embedding_matches_formula(dim):
    t = jnp.array([0.0, 0.5, 3.0, 17.25, 999.0])
    emb = nn.sinusoidal_embedding(t, dim)
    assert emb.shape == (5, dim) and emb.dtype == jnp.float32
    # float32 sin/cos of arguments up to ~1e3: absolute error ~ 1e3 * eps32 ~ 1e-4.
    np.testing.assert_allclose(emb, _numpy_sinusoidal(np.asarray(t), dim), atol=2e-4)


def test_sinusoidal_embedding_integer_t_jit_and_max_period(x64):
    t = jnp.arange(0, 1000, 97)  # integer diffusion steps
    emb = jax.jit(nn.sinusoidal_embedding, static_argnames=("dim", "max_period"))(
        t, dim=8, max_period=100.0
    )
    assert emb.dtype == jnp.float32  # integers are cast to float32
    np.testing.assert_allclose(emb, _numpy_sinusoidal(np.asarray(t), 8, 100.0), atol=2e-4)
    emb64 = nn.sinusoidal_embedding(t.astype(jnp.float64), 8)
    assert emb64.dtype == jnp.float64
    np.testing.assert_allclose(emb64, _numpy_sinusoidal(np.asarray(t), 8), atol=1e-12)


def test_sinusoidal_embedding_extreme_t_is_finite():
    emb = nn.sinusoidal_embedding(jnp.array([0.0, 1e6, -1e6]), 16)
    assert bool(jnp.all(jnp.isfinite(emb)))
    assert bool(jnp.all(jnp.abs(emb) <= 1.0))


@pytest.mark.parametrize("dim", [0, 1, 3, 2.0 + 0.5])
def test_sinusoidal_embedding_bad_dim(dim):
    with pytest.raises(ValueError, match="dim"):
        nn.sinusoidal_embedding(jnp.zeros(3), dim)


def test_sinusoidal_embedding_bad_shape():
    with pytest.raises(ValueError, match="t must have shape"):
        nn.sinusoidal_embedding(jnp.zeros((2, 3)), 4)


def test_gaussian_fourier_features_formula_and_fixed_frequencies():
    emb = nn.GaussianFourierFeatures(2000, rngs=nnx.Rngs(0), scale=3.0)
    w = np.asarray(emb.freqs[...], np.float64)
    assert w.shape == (1000,)
    # W ~ N(0, 3^2): the sample std of 1000 draws is within 10% of 3 (~4.5 sigma).
    assert abs(w.std() - 3.0) < 0.3
    t = jnp.array([0.0, 0.1, 0.73])
    out = emb(t)
    assert out.shape == (3, 2000)
    args = 2 * np.pi * np.asarray(t, np.float64)[:, None] * w[None, :]
    # float32 arguments up to ~2*pi*0.73*12 ~ 55: absolute error ~ 55 * eps32 ~ 1e-5.
    np.testing.assert_allclose(out, np.concatenate([np.sin(args), np.cos(args)], -1), atol=5e-5)
    # The frequencies are not trainable: absent from the Param state, zero gradient.
    assert not jax.tree_util.tree_leaves(nnx.state(emb, nnx.Param))
    grads = jax.grad(lambda m: jnp.sum(m(t) ** 2))(emb)
    np.testing.assert_array_equal(grads.freqs[...], 0.0)


def test_gaussian_fourier_features_bad_arguments():
    with pytest.raises(ValueError, match="dim"):
        nn.GaussianFourierFeatures(5, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="scale"):
        nn.GaussianFourierFeatures(4, rngs=nnx.Rngs(0), scale=0.0)
