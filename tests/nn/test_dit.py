"""DiT (Peebles & Xie 2023): exact checks and the float64 oracle.

* patchify and unpatchify are inverse, and patchify is the oracle's loop over patches;
* adaLN-Zero: every block (and the whole network's output layer) is the identity (zero) at
  initialisation, exactly, and stops being so once the modulation weights move;
* without position embeddings the network is equivariant to a permutation of the patches
  (and with them it is not: the check can fail);
* the forward pass equals the NumPy float64 oracle (written from the equations) under
  ``jax.jit`` and without, with and without labels.

Weights are drawn from a NumPy generator (no compiled initialisers), std 0.3 so that every
adaLN gate and the zero-initialised output layer are far from zero.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import nn
from genjax.diffusion import oracle_dit
from genjax.testing import BadInput, assert_close_to_oracle, assert_handled, count_compilations

P, D, HEADS, FREQ, K = 2, 8, 2, 6, 3  # patch, width, heads, time features, classes


def _dit(**kw) -> nn.DiT:
    return nn.DiT(
        1,
        patch_size=P,
        dim=D,
        depth=2,
        num_heads=HEADS,
        mlp_ratio=2.0,
        frequency_dim=FREQ,
        rngs=nnx.Rngs(0),
        **kw,
    )


def _randomise(module, seed: int, dtype=jnp.float32):
    """The module with every weight replaced by an N(0, 0.3^2) draw (float leaves only)."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda w: jnp.asarray(0.3 * rng.standard_normal(w.shape), dtype), module)


APPLY = jax.jit(lambda model, x, t, y: model(x, t, y))  # the model passed whole (traced)


# --- patchify -----------------------------------------------------------------------------


@pytest.mark.parametrize("shape, p", [((2, 8, 8, 1), 2), ((1, 6, 4, 3), 2), ((1, 9, 6, 2), 3)])
def test_patchify_is_the_oracle_and_unpatchify_inverts_it(shape, p):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    tokens = nn.patchify(jnp.asarray(x), p)
    np.testing.assert_array_equal(tokens, oracle_dit.patchify(x, p))  # a permutation: exact
    H, W = shape[1:3]
    np.testing.assert_array_equal(nn.unpatchify(tokens, p, H, W), x)  # unpatchify o patchify
    # patchify o unpatchify on arbitrary tokens
    other = jnp.asarray(np.random.default_rng(1).standard_normal(tokens.shape), jnp.float32)
    np.testing.assert_array_equal(nn.patchify(nn.unpatchify(other, p, H, W), p), other)
    np.testing.assert_array_equal(
        nn.unpatchify(other, p, H, W), oracle_dit.unpatchify(np.asarray(other), p, H, W)
    )


def test_position_embedding_is_the_oracle():
    pos = nn.sincos_position_embedding_2d(3, 5, 8)
    np.testing.assert_allclose(pos, oracle_dit.position_embedding_2d(3, 5, 8), atol=1e-6)
    assert np.unique(np.asarray(pos).round(5), axis=0).shape[0] == 15  # every patch distinct


# --- adaLN-Zero -----------------------------------------------------------------------------


def test_every_block_is_the_identity_at_initialisation():
    net = _dit(num_classes=K)
    rng = np.random.default_rng(0)
    tokens = jnp.asarray(rng.standard_normal((3, 16, D)), jnp.float32)
    cond = jnp.asarray(rng.standard_normal((3, D)), jnp.float32)
    x = jnp.asarray(rng.standard_normal((3, 8, 8, 1)), jnp.float32)

    @jax.jit
    def every_part(net):
        blocks = [block(tokens, cond) for block in net.blocks]
        return blocks, net.final(tokens, cond), net(x, jnp.array([0, 5, 9]), jnp.array([0, 1, K]))

    blocks, final, out = every_part(net)
    for block_out in blocks:
        np.testing.assert_array_equal(block_out, tokens)  # gates are exactly 0
    np.testing.assert_array_equal(final, 0.0)  # zero output layer
    np.testing.assert_array_equal(out, 0.0)
    # The check can fail: once the weights move, no block is the identity.
    blocks, final, out = every_part(_randomise(net, 1))
    for block_out in blocks:
        assert float(jnp.abs(block_out - tokens).max()) > 1e-2
    assert float(jnp.abs(out).max()) > 1e-2


def test_adaln_zero_block_standalone_signature_and_mask():
    block = nn.AdaLNZeroBlock(8, 2, 5, mlp_ratio=2.0, rngs=nnx.Rngs(0))
    tokens = jnp.asarray(np.random.default_rng(3).standard_normal((2, 4, 8)), jnp.float32)
    cond = jnp.ones((2, 5))
    causal = nn.causal_mask(4)
    apply = jax.jit(lambda block, tokens: block(tokens, cond, mask=causal))
    np.testing.assert_array_equal(apply(block, tokens), tokens)
    moved = _randomise(block, 2)
    out = apply(moved, tokens)
    # causal: token 0 sees only itself, so changing token 3 leaves it unchanged
    changed = apply(moved, tokens.at[:, 3].add(1.0))
    np.testing.assert_allclose(out[:, 0], changed[:, 0], rtol=1e-6, atol=1e-6)
    assert float(jnp.abs(out[:, 3] - changed[:, 3]).max()) > 1e-3


# --- permutation equivariance ---------------------------------------------------------------


# The equivariance and oracle tests share shapes (3 images of 8 x 6, time_scale 0.01) so that
# the network with position embeddings compiles once for both.
TIME_SCALE = 0.01
X_SHAPE = (3, 8, 6, 1)  # non-square: a swap of rows and columns would show
T_TEST = np.array([0, 17, 999])


@pytest.mark.parametrize("position_embedding", [False, True])
def test_equivariant_to_patch_permutations_exactly_without_position_embeddings(
    x64, position_embedding
):
    net = _dit(num_classes=K, position_embedding=position_embedding, time_scale=TIME_SCALE)
    net = _randomise(net, 4, jnp.float64)
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.standard_normal(X_SHAPE))
    t, y = jnp.asarray(T_TEST), jnp.array([1, K, 0])
    perm = rng.permutation(12)  # a permutation of the 4 x 3 patches

    def permute(img):  # move patch perm[n] to place n
        return nn.unpatchify(nn.patchify(img, P)[:, perm], P, 8, 6)

    out_of_permuted = APPLY(net, permute(x), t, y)
    permuted_out = permute(APPLY(net, x, t, y))
    gap = float(jnp.abs(out_of_permuted - permuted_out).max())
    if position_embedding:
        assert gap > 1e-3  # the positions break the symmetry
    else:
        # float64 rounding of the same sums in another order (attention over 12 tokens)
        assert gap < 1e-12
        assert float(jnp.abs(permuted_out).max()) > 1e-2  # and the output is not zero


# --- the float64 oracle ---------------------------------------------------------------------


@pytest.mark.parametrize("jit, conditional", [(True, True), (False, False)])
def test_forward_equals_the_float64_oracle(x64, jit, conditional):
    net = _dit(num_classes=K if conditional else None, time_scale=TIME_SCALE)
    net = _randomise(net, 6, jnp.float64)
    rng = np.random.default_rng(7)
    x, t = rng.standard_normal(X_SHAPE), T_TEST
    y = np.array([0, 2, K]) if conditional else None  # K: the null label
    call = APPLY if jit else (lambda m, x, t, y: m(x, t, y))
    out = call(net, jnp.asarray(x), jnp.asarray(t), None if y is None else jnp.asarray(y))
    expected = oracle_dit.dit_forward(
        oracle_dit.params_from_dit(net),
        x,
        t,
        y,
        patch_size=P,
        num_heads=HEADS,
        frequency_dim=FREQ,
        time_scale=TIME_SCALE,
    )
    assert out.dtype == jnp.float64
    assert np.abs(expected).max() > 1e-2  # not the zero of an untrained output layer
    assert_close_to_oracle(out, expected)


def test_float32_dtype_kept_labels_change_only_their_example_new_weights_compile_nothing():
    net = _randomise(_dit(num_classes=K), 8)
    x = jnp.asarray(np.random.default_rng(9).standard_normal((3, 8, 8, 1)), jnp.float32)
    t = jnp.array([5, 5, 5])
    out = APPLY(net, x, t, jnp.array([0, 1, 2]))
    assert out.dtype == jnp.float32 and out.shape == x.shape
    other = APPLY(net, x, t, jnp.array([1, 1, 2]))
    assert float(jnp.abs(other[0] - out[0]).max()) > 1e-3
    np.testing.assert_allclose(other[1:], out[1:], rtol=1e-6, atol=1e-6)
    # The weights are traced leaves of the module: new weights reuse the program.
    with count_compilations() as compiled:
        new = APPLY(_randomise(net, 11), x, t, jnp.array([0, 1, 2]))
    assert compiled[0] == 0 and float(jnp.abs(new - out).max()) > 1e-3


# --- bad and extreme inputs (the shared BadInput format) ------------------------------------

NET = _dit(num_classes=K)
IMG = jnp.zeros((2, 8, 8, 1))
IMG3 = jnp.full((3, 8, 8, 1), 1e3)  # the float32 test's shapes: no new program


def _case(name, call, argument="", kind="reject", check=None):
    return BadInput(name, call, argument, kind, check)


CASES = [
    _case("dit.patchify: patch_size 0", lambda: nn.patchify(IMG, 0), "patch_size"),
    _case(
        "dit.patchify: image not divisible", lambda: nn.patchify(jnp.zeros((1, 5, 4, 1)), 2), "x"
    ),
    _case("dit.patchify: x 3-D", lambda: nn.patchify(jnp.zeros((8, 8, 1)), 2), "x"),
    _case(
        "dit.unpatchify: wrong number of tokens",
        lambda: nn.unpatchify(jnp.zeros((1, 5, 4)), 2, 4, 4),
        "tokens",
    ),
    _case(
        "dit.unpatchify: height not divisible",
        lambda: nn.unpatchify(jnp.zeros((1, 4, 4)), 2, 5, 4),
        "height",
    ),
    _case(
        "dit.sincos_position_embedding_2d: dim not divisible by 4",
        lambda: nn.sincos_position_embedding_2d(2, 2, 6),
        "dim",
    ),
    _case(
        "dit.AdaLNZeroBlock: heads does not divide dim",
        lambda: nn.AdaLNZeroBlock(6, 4, 3, rngs=nnx.Rngs(0)),
        "heads",
    ),
    _case(
        "dit.AdaLNZeroBlock: mlp_ratio 0",
        lambda: nn.AdaLNZeroBlock(4, 2, 3, mlp_ratio=0.0, rngs=nnx.Rngs(0)),
        "mlp_ratio",
    ),
    _case(
        "dit.AdaLNZeroBlock: cond of the wrong width",
        lambda: NET.blocks[0](jnp.zeros((2, 16, D)), jnp.zeros((2, D + 1))),
        "cond",
    ),
    _case(
        "dit.AdaLNZeroBlock: tokens of the wrong width",
        lambda: NET.blocks[0](jnp.zeros((2, 16, D + 2)), jnp.zeros((2, D))),
        "tokens",
    ),
    _case(
        "dit.FinalLayer: out_features 0",
        lambda: nn.FinalLayer(4, 3, 0, rngs=nnx.Rngs(0)),
        "out_features",
    ),
    _case(
        "dit.DiT: dim not divisible by num_heads",
        lambda: nn.DiT(1, dim=10, num_heads=4, rngs=nnx.Rngs(0)),
        "num_heads",
    ),
    _case(
        "dit.DiT: odd frequency_dim",
        lambda: nn.DiT(1, dim=8, num_heads=2, frequency_dim=5, rngs=nnx.Rngs(0)),
        "frequency_dim",
    ),
    _case(
        "dit.DiT: image not divisible by patch_size",
        lambda: NET(jnp.zeros((1, 7, 8, 1)), jnp.zeros(1), jnp.zeros(1, jnp.int32)),
        "x",
    ),
    _case(
        "dit.DiT: x with the wrong channels",
        lambda: NET(jnp.zeros((2, 8, 8, 3)), jnp.zeros(2), jnp.array([0, 1])),
        "x",
    ),
    _case(
        "dit.DiT: label out of range",
        lambda: NET(IMG, jnp.zeros(2), jnp.array([0, K + 1])),
        "labels",
    ),
    _case("dit.DiT: labels missing", lambda: NET(IMG, jnp.zeros(2)), "labels"),
    _case("dit.DiT: t of the wrong length", lambda: NET(IMG, jnp.zeros(3), jnp.array([0, 1])), "t"),
    # --- valid extremes -----------------------------------------------------------------
    _case(
        "dit.DiT: the null label and t = 0 and t = 999 with moved weights",
        lambda: APPLY(_randomise(NET, 10), IMG3, jnp.array([0, 999, 5]), jnp.array([K, K, 0])),
        kind="extreme",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_handled(case):
    assert_handled(case)
