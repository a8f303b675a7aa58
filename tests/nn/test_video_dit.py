"""VideoDiT: tubelet round trip, the factorised attention's structure by Jacobian, the
NumPy float64 oracle, and the sampler path through DDIM (genjax.diffusion)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import diffusion as d
from genjax.diffusion import oracle as diffusion_oracle
from genjax.diffusion import oracle_video
from genjax.nn.dit import AdaLNZeroBlock
from genjax.nn.video_dit import (
    VideoDiT,
    spatial_attention,
    temporal_attention,
    tubelet_patchify,
    tubelet_unpatchify,
)

TUBELET = (2, 2, 2)
SHAPE = (2, 4, 4, 6, 1)  # (B, T, H, W, C): a 2 x 2 x 3 grid of tubelets, Nt = 2, Ns = 6
HEADS = 2
# float32 network against the float64 oracle: each of the ~12 layers rounds at a relative
# 6e-8 (float32 eps / 2) on values of size <= ~10, softmaxes and LayerNorms amplify by at
# most a few: 1e-4 absolute leaves a margin of ~10 over the largest error measured (1e-5).
TOL = 1e-4


def _randomised(build, seed: int, scale: float = 0.3):
    """The module ``build()`` makes, with every weight drawn from N(0, scale^2): nothing zero
    (adaLN-Zero's gates included), so a structural zero in a Jacobian is the architecture's,
    not the initialisation's. The shape is built abstractly and filled from NumPy's seeded
    generator (eager initialisers compile one program per weight shape: seconds on 2 cores)."""
    leaves, tree = jax.tree.flatten(nnx.eval_shape(build))
    rng = np.random.default_rng(seed)
    return jax.tree.unflatten(
        tree, [jnp.asarray(scale * rng.standard_normal(v.shape), v.dtype) for v in leaves]
    )


_oracle_params = oracle_video.params_from_video_dit  # the weights in the oracle's layout


def _net(attention: str, seed: int = 0, scale: float = 0.3) -> VideoDiT:
    return _randomised(
        lambda: VideoDiT(
            1,
            tubelet=TUBELET,
            dim=8,
            depth=1,
            num_heads=HEADS,
            frequency_dim=8,
            attention=attention,
            rngs=nnx.Rngs(seed),
        ),
        seed + 10,
        scale,
    )


@pytest.fixture(scope="module")
def nets() -> dict[str, VideoDiT]:
    return {attention: _net(attention) for attention in ("factorised", "joint")}


APPLY = jax.jit(lambda model, x, t: model(x, t))  # the model is traced: one compile per shape


# ----------------------------------------------------------------------------- tubelets


@pytest.mark.parametrize("jit", [False, True])
def test_tubelet_round_trip_and_layout(jit):
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 4, 8, 6, 3)), jnp.float32)
    tub = (2, 4, 3)
    patch = jax.jit(tubelet_patchify, static_argnums=1) if jit else tubelet_patchify
    unpatch = jax.jit(tubelet_unpatchify, static_argnums=(1, 2)) if jit else tubelet_unpatchify
    tokens = patch(x, tub)
    assert tokens.shape == (2, 2 * 2 * 2, 2 * 4 * 3 * 3)
    # The layout of the docstring, by the oracle's explicit loops (exact: pure data movement).
    np.testing.assert_array_equal(
        np.asarray(tokens), oracle_video.tubelet_patchify(np.asarray(x), tub)
    )
    # Both compositions are the identity, exactly.
    np.testing.assert_array_equal(np.asarray(unpatch(tokens, tub, (4, 8, 6))), np.asarray(x))
    np.testing.assert_array_equal(
        np.asarray(patch(unpatch(tokens, tub, (4, 8, 6)), tub)), np.asarray(tokens)
    )


# ------------------------------------------------------------ attention structure by Jacobian


def _token_jacobian(fn, tokens: jax.Array) -> np.ndarray:
    """|d out[0, i, s, :] / d in[0, i', s', :]| summed over features: (Nt, Ns, Nt, Ns)."""
    jac = jax.jit(jax.jacrev(fn))(tokens)  # (1, Nt, Ns, D, 1, Nt, Ns, D)
    return np.asarray(jnp.abs(jac[0, :, :, :, 0]).sum(axis=(2, 5)))


@pytest.fixture(scope="module")
def grid_inputs():
    block = _randomised(lambda: AdaLNZeroBlock(8, HEADS, 4, rngs=nnx.Rngs(0)), 1)
    tokens = jax.random.normal(jax.random.key(2), (1, 3, 4, 8))  # (B, Nt, Ns, D)
    cond = jax.random.normal(jax.random.key(3), (1, 4))
    return block, tokens, cond


def test_spatial_attention_sees_only_its_own_frame(grid_inputs):
    block, tokens, cond = grid_inputs
    jac = _token_jacobian(lambda h: spatial_attention(block, h, cond), tokens)
    same_time = np.eye(3, dtype=bool)[:, None, :, None] & np.ones((1, 4, 1, 4), bool)
    assert np.all(jac[~same_time] == 0.0)  # another time slot: exactly no influence
    assert np.all(jac[same_time] > 1e-6)  # every place of its own slot: some influence


def test_temporal_attention_sees_only_its_own_place(grid_inputs):
    block, tokens, cond = grid_inputs
    jac = _token_jacobian(lambda h: temporal_attention(block, h, cond), tokens)
    same_place = np.ones((3, 1, 3, 1), bool) & np.eye(4, dtype=bool)[None, :, None, :]
    assert np.all(jac[~same_place] == 0.0)
    assert np.all(jac[same_place] > 1e-6)


def test_one_space_time_pair_connects_every_tubelet(nets):
    # Moving the pixels of one tubelet (time slot 1, the last place) moves the output at
    # every tubelet: one hop in space, then one in time. Checked on the oracle by a finite
    # difference in float64 (the network equals the oracle, test below); cheap in NumPy.
    params = _oracle_params(nets["factorised"])
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, *SHAPE[1:]))
    moved = x.copy()
    moved[0, 2:4, 2:4, 4:6] += 1e-3  # the last tubelet of the second time slot

    def forward(v):
        return oracle_video.video_dit_forward(
            params, v, np.array([5]), tubelet=TUBELET, num_heads=HEADS
        )

    change = np.abs(oracle_video.tubelet_patchify(forward(moved) - forward(x), TUBELET))
    assert np.all(change.sum(-1) > 1e-9)  # (1, Nt Ns): every output tubelet responds


# ----------------------------------------------------------------------------- oracle


@pytest.mark.parametrize("attention", ["factorised", "joint"])
def test_forward_matches_oracle(nets, attention):
    # Under jit only: the network run eagerly compiles each of its ~200 operations apart
    # (7 CPU-s); eager equals jit for the shared block in tests/nn/test_dit.py, and the
    # tubelet rearrangements are run both ways above.
    net = nets[attention]
    x = jax.random.normal(jax.random.key(5), SHAPE)
    t = jnp.array([0, 17])
    got = np.asarray(APPLY(net, x, t))
    want = oracle_video.video_dit_forward(
        _oracle_params(net),
        np.asarray(x),
        np.asarray(t),
        tubelet=TUBELET,
        num_heads=HEADS,
        attention=attention,
    )
    assert np.abs(want).max() > 0.1  # a network that returned zeros would fail
    np.testing.assert_allclose(got, want, atol=TOL, rtol=TOL)


def test_ddim_sampler_path_matches_oracle():
    # The network as the model of the existing DDIM sampler, against the diffusion oracle's
    # DDIM loop driving the video oracle: the same x_T, eta = 0 (deterministic).
    net = _net("factorised", seed=1, scale=0.2)
    schedule = d.linear(20)
    x_T = jax.random.normal(jax.random.key(6), SHAPE)
    got = np.asarray(d.ddim_sample_from_noise(net, x_T, None, schedule, num_steps=4))
    params = _oracle_params(net)

    def eps_fn(x, t):
        return oracle_video.video_dit_forward(params, x, t, tubelet=TUBELET, num_heads=HEADS)

    want = diffusion_oracle.ddim_loop(
        eps_fn, np.asarray(schedule.betas, np.float64), np.asarray(x_T), 4
    )
    assert np.abs(want - np.asarray(x_T)).max() > 0.05  # the steps moved the state
    # Four steps of x0-prediction multiply the per-call error by ~1/sqrt(alpha_bar) <= ~1.1
    # for this short linear schedule: the forward's tolerance, doubled.
    np.testing.assert_allclose(got, want, atol=2 * TOL, rtol=2 * TOL)
