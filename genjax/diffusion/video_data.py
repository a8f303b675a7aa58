"""Moving digits: short built-in video clips of 8x8 digits moving at a constant velocity.

The video data of the ``video-dit`` recipe, generated from scikit-learn's bundled 8x8
digits (:func:`genjax.data.load`, nothing downloaded), in the spirit of Moving MNIST
(Srivastava, Mansimov & Salakhutdinov 2015) shrunk to what two CPU cores train in minutes:
one digit per clip, on a ``canvas x canvas`` black frame, moving in a straight line at an
integer velocity and never leaving the frame (no bounces, so the motion is exactly linear):

    p_t = p_0 + v t,            t = 0 .. T - 1,  v in {-s, .., s}^2 (pixels per frame)
    clip[t, p_t[0] + i, p_t[1] + j] = digit[i, j],  i, j in 0 .. 7, zero elsewhere

``p_0`` is drawn uniformly among the starts that keep every frame inside the canvas
(``0 <= p_t <= canvas - 8`` for every t), so ``canvas - 8 >= s (T - 1)`` is required.
Because each frame is the same digit translated by whole pixels, the intensity-weighted
centre of mass moves exactly as ``c_t = c_0 + v t`` — the fact the motion-consistency
figure of :mod:`genjax.diffusion.video_motion` measures samples against.

References:
  Srivastava, Mansimov, Salakhutdinov, "Unsupervised Learning of Video Representations
  using LSTMs", ICML 2015 (Moving MNIST).
"""

from __future__ import annotations

import zlib

import numpy as np

from genjax import checks
from genjax import data as builtin_data

__all__ = ["DIGIT_SIZE", "moving_digit_clips", "load_clips"]

DIGIT_SIZE = 8  # scikit-learn's digits are 8x8
NUM_FRAMES = 8  # T of the built-in clips
CANVAS = 16  # the frame is CANVAS x CANVAS pixels
MAX_SPEED = 1  # |v| <= 1 pixel per frame on each axis: 7 pixels of travel over 8 frames
CLIPS_PER_DIGIT = 2  # each digit image appears in this many clips (different v and p_0)


def moving_digit_clips(
    digits: np.ndarray,
    *,
    num_frames: int = NUM_FRAMES,
    canvas: int = CANVAS,
    max_speed: int = MAX_SPEED,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One clip per digit: the digit moving at a constant integer velocity.

        v ~ Uniform({-s, .., s}^2),  p_0 ~ Uniform{starts keeping p_t in [0, canvas - 8]^2}
        clip[t] = the digit pasted at p_t = p_0 + v t on a zero canvas

    Args:
      digits: (n, 8, 8, 1) images in [0, 1] (e.g. ``genjax.data.load("digits")``), n >= 1.
      num_frames: T >= 2, frames per clip.
      canvas: side of the square frame, >= 8 + max_speed (T - 1).
      max_speed: s >= 0, the largest speed per axis in pixels per frame.
      seed: integer >= 0; draws the velocities and starts (NumPy's generator, explicit).

    Returns:
      ``(clips, positions, velocities)``: clips (n, T, canvas, canvas, 1) float32 in [0, 1];
      positions (n, T, 2) int32, the top-left corner ``p_t`` (row, column) of the digit in
      each frame; velocities (n, 2) int32, ``v`` (rows, columns per frame).

    Example:
      >>> digits = np.ones((3, 8, 8, 1), np.float32)
      >>> clips, pos, vel = moving_digit_clips(digits, num_frames=4, canvas=12, max_speed=1)
      >>> clips.shape, bool(np.all(pos[:, 1:] - pos[:, :-1] == vel[:, None]))
      ((3, 4, 12, 12, 1), True)
    """
    digits = np.asarray(digits, np.float32)
    if digits.ndim != 4 or digits.shape[1:] != (DIGIT_SIZE, DIGIT_SIZE, 1) or not digits.size:
        raise ValueError(
            f"digits must have shape (n, {DIGIT_SIZE}, {DIGIT_SIZE}, 1) with n >= 1, "
            f"got {digits.shape}"
        )
    num_frames = checks.int_in_range("num_frames", num_frames, 2, 10_000)
    max_speed = checks.nonnegative_int("max_speed", max_speed)
    canvas = checks.positive_int("canvas", canvas)
    travel = max_speed * (num_frames - 1)  # the longest path along one axis
    if canvas < DIGIT_SIZE + travel:
        raise ValueError(
            f"canvas must be >= {DIGIT_SIZE} + max_speed * (num_frames - 1) = "
            f"{DIGIT_SIZE + travel} so that the digit stays inside every frame, got {canvas}"
        )
    seed = checks.nonnegative_int("seed", seed)
    rng = np.random.default_rng([seed, zlib.crc32(b"moving-digits")])
    n = digits.shape[0]
    room = canvas - DIGIT_SIZE  # p_t must lie in [0, room] on each axis
    velocities = rng.integers(-max_speed, max_speed + 1, size=(n, 2))  # (n, 2)
    # Starts keeping p_0 + v t in [0, room] for t = 0 and t = T-1: p_0 in [lo, hi].
    lo = np.maximum(0, -velocities * (num_frames - 1))  # (n, 2)
    hi = room - np.maximum(0, velocities * (num_frames - 1))  # (n, 2)
    starts = lo + np.floor(rng.random((n, 2)) * (hi - lo + 1)).astype(np.int64)  # (n, 2)
    t = np.arange(num_frames)  # (T,)
    positions = starts[:, None, :] + velocities[:, None, :] * t[None, :, None]  # (n, T, 2)
    clips = np.zeros((n, num_frames, canvas, canvas, 1), np.float32)
    for i in range(n):
        for f in range(num_frames):
            r, c = positions[i, f]
            clips[i, f, r : r + DIGIT_SIZE, c : c + DIGIT_SIZE] = digits[i]  # paste at p_t
    return clips, positions.astype(np.int32), velocities.astype(np.int32)


def load_clips(name: str = "moving-digits", split: str = "train", seed: int = 0) -> np.ndarray:
    """The built-in clips: ``CLIPS_PER_DIGIT`` clips of every digit image of a split.

    The signature matches ``Recipe.load_data`` ``(name, split, seed)``. Train and test
    clips are made from disjoint digit images (the stratified split of
    :func:`genjax.data.load`), so held-out clips show held-out digits.

    Args:
      name: ``"moving-digits"`` (the only built-in video set).
      split: ``"train"`` or ``"test"``.
      seed: integer >= 0; the digit split's shuffle and the clips' motions.

    Returns:
      float32 (n, 8, 16, 16, 1) clips in [0, 1]: 2 x 1438 train or 2 x 359 test clips.

    Example:
      >>> load_clips("moving-digits", "test").shape
      (718, 8, 16, 16, 1)
    """
    checks.one_of("name", name, ("moving-digits",))
    digits = builtin_data.load("digits", split=split, seed=seed)  # (n, 8, 8, 1)
    repeated = np.concatenate([digits] * CLIPS_PER_DIGIT, axis=0)  # (k n, 8, 8, 1)
    split_seed = 2 * checks.nonnegative_int("seed", seed) + (split == "test")
    clips, _, _ = moving_digit_clips(repeated, seed=split_seed)
    return clips
