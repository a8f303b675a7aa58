"""Bad and extreme inputs of the video diffusion part (issue 18, item 2): the tubelet
rearrangements, VideoDiT, the moving-digits clips, the motion figures and the recipe's
sampler. Every reject fires before anything compiles (the network is built abstractly)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax.diffusion import video_data, video_motion, video_recipes
from genjax.nn.video_dit import VideoDiT, tubelet_patchify, tubelet_unpatchify
from genjax.testing import BadInput, assert_handled

X = jnp.zeros((1, 4, 4, 4, 1))  # (B, T, H, W, C)
DIGITS = np.ones((3, 8, 8, 1), np.float32)
CLIP = np.zeros((2, 3, 6, 6, 1))  # (n, T, H, W, 1)


def _abstract_net() -> VideoDiT:
    # Shapes only (nothing initialised or compiled): every checked argument is read before
    # any weight is touched.
    return nnx.eval_shape(
        lambda: VideoDiT(
            1, tubelet=(2, 2, 2), dim=8, depth=1, num_heads=2, frequency_dim=8, rngs=nnx.Rngs(0)
        )
    )


def _video_dit(**kwargs) -> VideoDiT:
    args = {"tubelet": (2, 2, 2), "dim": 8, "depth": 1, "num_heads": 2, "frequency_dim": 8}
    return nnx.eval_shape(lambda: VideoDiT(1, **{**args, **kwargs}, rngs=nnx.Rngs(0)))


def _zero_frame_com() -> np.ndarray:
    return video_motion.centre_of_mass(np.zeros((1, 2, 4, 4, 1)))


CASES: list[BadInput] = [
    # tubelets
    BadInput(
        "video_dit.tubelet_patchify: T = 3 not divisible by pt = 2",
        lambda: tubelet_patchify(jnp.zeros((1, 3, 4, 4, 1)), (2, 2, 2)),
        "tubelet",
    ),
    BadInput(
        "video_dit.tubelet_patchify: tubelet side 0",
        lambda: tubelet_patchify(X, (2, 0, 2)),
        "tubelet[1]",
    ),
    BadInput(
        "video_dit.tubelet_patchify: two sides", lambda: tubelet_patchify(X, (2, 2)), "tubelet"
    ),
    BadInput("video_dit.tubelet_patchify: 4-D x", lambda: tubelet_patchify(X[0], (2, 2, 2)), "x"),
    BadInput(
        "video_dit.tubelet_unpatchify: wrong token count",
        lambda: tubelet_unpatchify(jnp.zeros((1, 3, 8)), (2, 2, 2), (4, 4, 4)),
        "tokens",
    ),
    BadInput(
        "video_dit.tubelet_unpatchify: video_shape of two sides",
        lambda: tubelet_unpatchify(jnp.zeros((1, 8, 8)), (2, 2, 2), (4, 4)),
        "video_shape",
    ),
    BadInput(
        "video_dit.tubelet_patchify: tubelet (1, 1, 1) is a plain reshape",
        lambda: tubelet_patchify(jnp.arange(8.0).reshape(1, 2, 2, 2, 1), (1, 1, 1)),
        kind="extreme",
        check=lambda y: bool(jnp.all(y.reshape(-1) == jnp.arange(8.0))),
    ),
    # VideoDiT
    BadInput(
        "video_dit.VideoDiT: attention 'spatial'",
        lambda: _video_dit(attention="spatial"),
        "attention",
    ),
    BadInput(
        "video_dit.VideoDiT: num_heads 3 does not divide dim 8",
        lambda: _video_dit(num_heads=3),
        "num_heads",
    ),
    BadInput(
        "video_dit.VideoDiT: dim 6 not divisible by 4",
        lambda: _video_dit(dim=6, num_heads=2),
        "dim",
    ),
    BadInput(
        "video_dit.VideoDiT: odd frequency_dim",
        lambda: _video_dit(frequency_dim=7),
        "frequency_dim",
    ),
    BadInput("video_dit.VideoDiT: depth 0", lambda: _video_dit(depth=0), "depth"),
    BadInput(
        "video_dit.VideoDiT.__call__: 3 channels for a 1-channel net",
        lambda: _abstract_net()(jnp.zeros((1, 4, 4, 4, 3)), jnp.zeros((1,))),
        "x",
    ),
    BadInput(
        "video_dit.VideoDiT.__call__: H = 5 not divisible by ph = 2",
        lambda: _abstract_net()(jnp.zeros((1, 4, 5, 4, 1)), jnp.zeros((1,))),
        "tubelet",
    ),
    BadInput(
        "video_dit.VideoDiT.__call__: t of shape (3,) for B = 2",
        lambda: _abstract_net()(jnp.zeros((2, 4, 4, 4, 1)), jnp.zeros((3,))),
        "t",
    ),
    # clips
    BadInput(
        "video_data.moving_digit_clips: canvas too small for the travel",
        lambda: video_data.moving_digit_clips(DIGITS, num_frames=8, canvas=12),
        "canvas",
    ),
    BadInput(
        "video_data.moving_digit_clips: one frame",
        lambda: video_data.moving_digit_clips(DIGITS, num_frames=1),
        "num_frames",
    ),
    BadInput(
        "video_data.moving_digit_clips: max_speed -1",
        lambda: video_data.moving_digit_clips(DIGITS, max_speed=-1),
        "max_speed",
    ),
    BadInput(
        "video_data.moving_digit_clips: 28x28 digits",
        lambda: video_data.moving_digit_clips(np.ones((2, 28, 28, 1))),
        "digits",
    ),
    BadInput("video_data.load_clips: name 'mnist'", lambda: video_data.load_clips("mnist"), "name"),
    BadInput(
        "video_data.load_clips: split 'val'",
        lambda: video_data.load_clips("moving-digits", "val"),
        "split",
    ),
    BadInput(
        "video_data.moving_digit_clips: max_speed 0 (still digits)",
        lambda: video_data.moving_digit_clips(DIGITS, max_speed=0, seed=1),
        kind="extreme",
        check=lambda out: bool(np.all(out[0] == out[0][:, :1])),
    ),
    # motion figures
    BadInput(
        "video_motion.centre_of_mass: 4-D clips",
        lambda: video_motion.centre_of_mass(CLIP[0]),
        "clips",
    ),
    BadInput(
        "video_motion.constant_velocity_fit: T = 1",
        lambda: video_motion.constant_velocity_fit(np.zeros((2, 1, 2))),
        "centres",
    ),
    BadInput(
        "video_motion.shift_error: max_shift -1",
        lambda: video_motion.shift_error(CLIP, max_shift=-1),
        "max_shift",
    ),
    BadInput(
        "video_motion.shuffled_frames: one clip",
        lambda: video_motion.shuffled_frames(CLIP[:1]),
        "clips",
    ),
    BadInput(
        "video_motion.centre_of_mass: an empty (all-zero) frame",
        _zero_frame_com,
        kind="extreme",
        check=lambda c: bool(np.all(c == 0.0)),
    ),
    BadInput(
        "video_motion.shift_error: all-zero clips",
        lambda: video_motion.shift_error(CLIP),
        kind="extreme",
        check=lambda e: bool(np.all(e == 0.0)),
    ),
    # the recipe's sampler (checked before the network is called)
    BadInput(
        "video_recipes.video_sample: sampler 'nope'",
        lambda: video_recipes.video_sample(jax.random.key(0), {}, 2, sampler="nope"),
        "sampler",
    ),
    BadInput(
        "video_recipes.video_sample: steps 0",
        lambda: video_recipes.video_sample(jax.random.key(0), {}, 2, steps=0),
        "steps",
    ),
    BadInput(
        "video_recipes.video_sample: ddpm with 10 steps",
        lambda: video_recipes.video_sample(jax.random.key(0), {}, 2, sampler="ddpm", steps=10),
        "steps",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_handled(case: BadInput) -> None:
    assert_handled(case)
