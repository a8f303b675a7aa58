"""Moving-digit clips (constant-velocity motion, exact pasting) and the motion figures
(centre of mass, least-squares line, shift error) against independent computations."""

from __future__ import annotations

import numpy as np

from genjax.diffusion import video_data, video_motion


def _digits(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.random((n, 8, 8, 1)).astype(np.float32)


def test_clips_move_at_constant_velocity_inside_the_canvas():
    digits = _digits(64)
    clips, pos, vel = video_data.moving_digit_clips(digits, num_frames=6, canvas=14, max_speed=1)
    assert clips.shape == (64, 6, 14, 14, 1) and clips.dtype == np.float32
    t = np.arange(6)
    np.testing.assert_array_equal(pos, pos[:, :1] + vel[:, None] * t[None, :, None])  # p0 + v t
    assert pos.min() >= 0 and pos.max() <= 14 - 8  # the digit never leaves the frame
    assert np.abs(vel).max() <= 1 and len({tuple(v) for v in vel}) == 9  # all 9 velocities
    for i in (0, 17, 63):
        for f in range(6):
            r, c = pos[i, f]
            np.testing.assert_array_equal(clips[i, f, r : r + 8, c : c + 8], digits[i])
            outside = np.ones((14, 14), bool)
            outside[r : r + 8, c : c + 8] = False
            assert np.all(clips[i, f, outside] == 0.0)  # zero elsewhere
    again, _, _ = video_data.moving_digit_clips(digits, num_frames=6, canvas=14, max_speed=1)
    np.testing.assert_array_equal(clips, again)  # same seed, same clips


def test_built_in_clips_are_the_digits_split():
    test = video_data.load_clips("moving-digits", "test")
    assert test.shape == (718, 8, 16, 16, 1) and 0.0 <= test.min() and test.max() <= 1.0
    assert not np.array_equal(test, video_data.load_clips("moving-digits", "test", seed=1))


def test_centre_of_mass_and_line_fit_against_numpy_polyfit():
    # A single bright pixel: the centre of mass is that pixel, exactly.
    x = np.zeros((1, 5, 9, 9, 1))
    path = np.array([[0, 0], [1, 2], [4, 4], [5, 6], [8, 8]])  # not a line
    for f, (r, c) in enumerate(path):
        x[0, f, r, c] = 0.7
    centres = video_motion.centre_of_mass(x)
    np.testing.assert_allclose(centres[0], path, atol=1e-12)
    velocity, residual = video_motion.constant_velocity_fit(centres)
    # Independent: NumPy's least-squares polynomial fit of degree 1, per axis.
    t = np.arange(5.0)
    coef = [np.polyfit(t, path[:, k].astype(float), 1) for k in range(2)]
    fitted = np.stack([np.polyval(c, t) for c in coef], axis=1)  # (T, 2)
    np.testing.assert_allclose(velocity[0], [c[0] for c in coef], rtol=1e-12)
    want = np.sqrt(np.mean(np.sum((path - fitted) ** 2, axis=1)))
    np.testing.assert_allclose(residual[0], want, rtol=1e-12)
    assert want > 0.3  # the path is not a line: a fit that always returned 0 would fail


def test_real_clips_are_exactly_linear_shuffled_ones_are_not():
    clips, _, vel = video_data.moving_digit_clips(_digits(40), seed=3)
    centres = video_motion.centre_of_mass(clips)
    velocity, residual = video_motion.constant_velocity_fit(centres)
    np.testing.assert_allclose(velocity, vel, atol=1e-9)  # the fit recovers v (float64)
    assert residual.max() < 1e-9
    np.testing.assert_array_equal(video_motion.shift_error(clips), 0.0)
    shuffled = video_motion.shuffled_frames(clips, seed=1)
    figures = video_motion.motion_consistency(shuffled)
    assert figures["com_residual_mean"] > 0.5 and figures["shift_error_mean"] > 0.3
