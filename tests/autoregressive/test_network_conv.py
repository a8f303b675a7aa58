"""PixelCNN, gated PixelCNN and WaveNet: NumPy oracle, causality by Jacobian (and the blind
spot), samplers on injected noise, mu-law, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import autoregressive
from genjax.autoregressive import oracle_network as oracle
from genjax.testing import assert_close_to_oracle


def _rngs(seed):
    # initialisation keys of the "rbg" generator: its random draws compile ~30% faster on
    # CPU than threefry's, and the tests hold structure and oracles, not particular weights
    return nnx.Rngs(jax.random.key(seed, impl="rbg"))


K, F, LAYERS, SIDE = 4, 8, 4, 5  # levels, features, layers, image side for the Jacobians


@pytest.fixture(scope="module")
def nets():
    return {
        "plain": autoregressive.PixelCNN(K, rngs=_rngs(0), features=F, num_layers=LAYERS),
        "gated": autoregressive.GatedPixelCNN(K, rngs=_rngs(1), features=F,
                                              num_layers=LAYERS),
        "wavenet": autoregressive.WaveNet(K, rngs=_rngs(2), residual_channels=F,
                                          skip_channels=F, dilations=(1, 2, 4)),
    }


_apply = jax.jit(lambda model, x: model(x))


def _np(a):
    return np.asarray(a[...], np.float64)


def _lin(layer, prefix):
    return {f"{prefix}_w": _np(layer.kernel), f"{prefix}_b": _np(layer.bias)}


def _head(model):
    return {**_lin(model.hidden, "hidden"), **_lin(model.out, "out")}


def _pixel_dependence(model, x):
    """|d logits(pixel t) / d x(pixel s)| summed over levels: (HW out, HW in) > 0."""
    jac = jax.jit(jax.jacrev(lambda m, x: m(x)[0], argnums=1))(model, x)  # (H,W,K,1,H,W,1)
    n = x.shape[1] * x.shape[2]
    dep = np.abs(np.asarray(jac)).sum(axis=2).reshape(n, n)
    return dep > 0


def test_conv_masks():
    # the raster-order predicates of the oracle, on a 5x5 kernel centred at (2, 2)
    for mask_type in autoregressive.MASK_TYPES:
        expected = np.array([[oracle._allowed(mask_type, 2, 2, r, s) for s in range(5)]
                             for r in range(5)], np.float32)
        np.testing.assert_array_equal(autoregressive.conv_mask(5, mask_type), expected)


def _normal(shape, seed=0):
    # NumPy draws: no JAX programs to compile just to make inputs
    return np.random.default_rng(seed).standard_normal(shape)


def test_masked_conv_matches_oracle(x64):
    x = _normal((2, 4, 5, 3))
    for mask_type in autoregressive.MASK_TYPES:
        conv = autoregressive.MaskedConv2d(3, 2, 3, mask_type, rngs=_rngs(4))
        conv.bias[...] = jnp.array([0.5, -0.25])  # a nonzero bias is part of the check
        expected = oracle.masked_conv2d(x, _np(conv.kernel), _np(conv.bias), mask_type)
        assert_close_to_oracle(_apply(conv, x), expected)


def test_pixelcnns_and_wavenet_match_oracle(nets, x64):
    x = _normal((2, 4, 4, 1))
    plain = nets["plain"]
    expected = oracle.pixelcnn(
        x, {"kernel": _np(plain.first.kernel), "bias": _np(plain.first.bias)},
        [{"kernel": _np(c.kernel), "bias": _np(c.bias)} for c in plain.layers], _head(plain))
    assert_close_to_oracle(_apply(plain, x), expected)

    gated = nets["gated"]
    layers = [{"v_kernel": _np(g.vertical.kernel), "v_bias": _np(g.vertical.bias),
               "h_kernel": _np(g.horizontal.kernel), "h_bias": _np(g.horizontal.bias),
               **_lin(g.link, "link"), **_lin(g.h_out, "out")} for g in gated.layers]
    out = _apply(gated, x)
    assert out.shape == (2, 4, 4, K)
    assert_close_to_oracle(out, oracle.gated_pixelcnn(x, layers, _head(gated)))

    wave = nets["wavenet"]
    s = _normal((2, 12, 1), seed=1)
    layers = [{"w": _np(c.linear.kernel), "b": _np(c.linear.bias), "dilation": c.dilation,
               "res_w": _np(r.kernel), "res_b": _np(r.bias), "skip_w": _np(k.kernel),
               "skip_b": _np(k.bias)}
              for c, r, k in zip(wave.filter_gate, wave.residual, wave.skip, strict=True)]
    first = {"w": _np(wave.first.linear.kernel), "b": _np(wave.first.linear.bias)}
    assert_close_to_oracle(_apply(wave, s), oracle.wavenet(s, first, layers, _head(wave)))


def test_pixelcnn_causality_and_blind_spot(nets, x64):
    x = _normal((1, SIDE, SIDE, 1))
    n = SIDE * SIDE
    before = np.tril(np.ones((n, n), bool), -1)  # before[t, s]: s < t in raster order
    plain = _pixel_dependence(nets["plain"], x)
    gated = _pixel_dependence(nets["gated"], x)
    # causal: no output depends on its own pixel or a later one
    assert not np.any(plain & ~before)
    assert not np.any(gated & ~before)
    # the gated stacks see every earlier pixel (4 layers of 3x3 cover a 5x5 image) ...
    np.testing.assert_array_equal(gated, before)
    # ... the stacked masked convolutions do not: pixel (2, 1) is blind to (0, 4), the
    # upper right, although it comes first and lies within 4 layers of 3x3 kernels
    t, s = 2 * SIDE + 1, 0 * SIDE + 4
    assert before[t, s] and not plain[t, s]
    assert (before & ~plain).sum() > 0
    # the one-layer masks themselves: type A excludes the centre, type B keeps it
    a = autoregressive.MaskedConv2d(1, 1, 3, "A", rngs=_rngs(5))
    b = autoregressive.MaskedConv2d(1, 1, 3, "B", rngs=_rngs(5))
    centre = jax.jit(jax.grad(lambda m, x: m(x)[0, 2, 2, 0], argnums=1))
    jac_a, jac_b = centre(a, x)[0, :, :, 0], centre(b, x)[0, :, :, 0]
    assert jac_a[2, 2] == 0 and jac_b[2, 2] != 0
    np.testing.assert_array_equal(np.asarray(jac_a[1:4, 1:4]) != 0,
                                  autoregressive.conv_mask(3, "A") > 0)
    np.testing.assert_array_equal(np.asarray(jac_b[1:4, 1:4]) != 0,
                                  autoregressive.conv_mask(3, "B") > 0)


def test_wavenet_causality_and_receptive_field(nets, x64):
    wave = nets["wavenet"]
    T = 14
    x = _normal((1, T, 1))
    jac = jax.jit(jax.jacrev(lambda m, x: m(x)[0], argnums=1))(wave, x)  # (T, K, 1, T, 1)
    dep = np.abs(np.asarray(jac)).sum(axis=1)[:, 0, :, 0] > 0  # (t, s)
    R = wave.receptive_field  # 2 + 1 + 2 + 4 = 9
    assert R == 9
    expected = np.array([[t - R <= s < t for s in range(T)] for t in range(T)])
    np.testing.assert_array_equal(dep, expected)


def test_made_is_autoregressive_by_jacobian():
    made = autoregressive.MADE(5, [16, 16], 2, rngs=_rngs(6), order=[3, 1, 5, 2, 4])
    x = _normal((8, 5)).astype(np.float32)
    jacobian = jax.vmap(jax.jacrev(lambda m, x: m(x[None])[0], argnums=1), in_axes=(None, 0))
    jac = jax.jit(jacobian)(made, x)  # (8, D, P, D)
    # ReLU units can be off at one input: a dependence is one seen at any of 8 inputs
    dep = np.abs(np.asarray(jac)).sum(axis=(0, 2)) > 0  # (d out, d' in)
    order = np.array([3, 1, 5, 2, 4])
    # output d sees exactly the inputs earlier in the order
    np.testing.assert_array_equal(dep, order[None, :] < order[:, None])


def test_pixelcnn_sampler_on_injected_noise(nets):
    model = nets["gated"]
    gumbel = np.random.default_rng(2).gumbel(size=(3, 4, 4, K)).astype(np.float32)
    canvas = np.zeros((3, 4, 4, 1), np.int32)
    levels = autoregressive.pixelcnn_sample_from_noise(model, canvas, gumbel)  # (3, 4, 4, 1)
    assert levels.shape == (3, 4, 4, 1) and levels.dtype == jnp.int32
    # by causality the logits of the finished image at pixel t are the ones pixel t was
    # drawn from, so every pixel must be the Gumbel-max of them with its own noise
    logits = _apply(model, autoregressive.levels_to_input(levels, K))  # (3, 4, 4, K)
    redraw = np.argmax(np.asarray(logits) + gumbel, axis=-1)
    np.testing.assert_array_equal(redraw, levels[..., 0])
    assert 0 <= int(levels.min()) and int(levels.max()) < K
    # completion from raster index 6: the first 6 pixels are kept from the canvas, the
    # others are again the Gumbel-max of the finished image's logits
    given = (np.arange(16).reshape(4, 4) % K).astype(np.int32)[None, :, :, None]
    done = autoregressive.pixelcnn_sample_from_noise(model, np.repeat(given, 3, 0), gumbel,
                                                     start=6)
    flat = np.asarray(done).reshape(3, 16)
    np.testing.assert_array_equal(flat[:, :6], np.repeat(given.reshape(1, 16)[:, :6], 3, 0))
    logits = _apply(model, autoregressive.levels_to_input(done, K))
    redraw = np.argmax(np.asarray(logits) + gumbel, axis=-1).reshape(3, 16)
    np.testing.assert_array_equal(redraw[:, 6:], flat[:, 6:])


def test_wavenet_sampler_on_injected_noise(nets):
    model = nets["wavenet"]
    gumbel = np.random.default_rng(3).gumbel(size=(3, 10, K)).astype(np.float32)
    seq = autoregressive.wavenet_sample_from_noise(model, np.zeros((3, 10), np.int32), gumbel,
                                                   temperature=0.5)  # (3, 10)
    logits = _apply(model, autoregressive.levels_to_input(seq, K)[..., None])  # (3, 10, K)
    redraw = np.argmax(np.asarray(logits) / 0.5 + gumbel, axis=-1)
    np.testing.assert_array_equal(redraw, seq)


def test_mu_law_round_trip():
    x = np.linspace(-1.0, 1.0, 101)
    levels = np.asarray(autoregressive.mu_law_encode(x, 256))
    assert int(levels.min()) == 0 and int(levels.max()) == 255
    assert np.all(np.diff(levels) >= 0)  # monotone
    # the quantisation error of 256 mu-law levels is below 1/mu near 0, ~0.03 near +-1
    err = np.abs(np.asarray(autoregressive.mu_law_decode(levels, 256)) - x)
    assert float(err.max()) < 0.035 and float(err[45:56].max()) < 4e-3


def test_bad_arguments(nets):
    with pytest.raises(ValueError, match="kernel_size"):
        autoregressive.conv_mask(4, "A")
    with pytest.raises(ValueError, match="mask_type"):
        autoregressive.conv_mask(3, "C")
    with pytest.raises(ValueError, match="num_levels"):
        autoregressive.PixelCNN(0, rngs=_rngs(0))
    with pytest.raises(ValueError, match="dilations"):
        autoregressive.WaveNet(4, rngs=_rngs(0), dilations=(1, 0))
    with pytest.raises(ValueError, match="x must"):
        nets["gated"](np.zeros((1, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="temperature"):
        autoregressive.pixelcnn_sample(jax.random.key(0), nets["gated"], 2, temperature=0.0)
    with pytest.raises(ValueError, match="num_levels"):
        autoregressive.mu_law_encode(np.zeros(3), 1)
