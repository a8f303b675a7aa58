"""Motion consistency of video clips: how well does a constant velocity explain the frames?

The quality figures of the ``video-dit`` recipe. A real clip of
:mod:`genjax.diffusion.video_data` is one digit translated by ``v`` pixels per frame, so

1. **centre-of-mass line fit.** The intensity-weighted centre of mass of frame t,

       c_t = sum_{i,j} x_t[i, j] (i, j) / sum_{i,j} x_t[i, j]          (2,)

   moves exactly on a line, ``c_t = a + b t``. The least-squares line (ordinary
   regression on ``t`` for each axis),

       b = sum_t (t - tbar)(c_t - cbar) / sum_t (t - tbar)^2,   a = cbar - b tbar

   leaves the residual ``r = sqrt(mean_t ||c_t - a - b t||^2)`` in pixels: 0 for a real
   clip, large for frames that jump about.
2. **frame-to-frame shift error.** Each frame should be the previous one shifted by a
   whole number of pixels: ``e = mean_t min_{|s|_inf <= m} ||x_{t+1} - shift_s(x_t)||^2 /
   ||x_{t+1}||^2`` (zero filled where the shift uncovers the canvas): 0 for a real clip,
   near 1 or more when the digit changes shape or appears from nowhere.

Both are NumPy (report-time figures, not part of any jitted program). The reference
points are the real clips (0 up to rounding) and *shuffled* clips, whose frames come from
different real clips (no motion at all): a sampler's figure between the two says how
much of the motion it learnt.
"""

from __future__ import annotations

import numpy as np

from genjax import checks

__all__ = [
    "centre_of_mass",
    "constant_velocity_fit",
    "shift_error",
    "shuffled_frames",
    "motion_consistency",
]

MASS_FLOOR = 1e-6  # a frame lighter than this has no centre of mass; counted as mass 1e-6


def _clips(name: str, clips: np.ndarray) -> np.ndarray:
    clips = np.asarray(clips, np.float64)
    if clips.ndim != 5 or clips.shape[-1] != 1 or clips.shape[1] < 2:
        raise ValueError(f"{name} must have shape (n, T >= 2, H, W, 1), got {clips.shape}")
    return clips


def centre_of_mass(clips: np.ndarray) -> np.ndarray:
    """The intensity-weighted centre of mass of every frame, ``c_t`` (rows, columns).

    Intensities are clipped to [0, 1] first (a sampled pixel may stray below 0).

    Args:
      clips: (n, T, H, W, 1) frames.

    Returns:
      (n, T, 2) float64 centres in pixel coordinates.

    Example:
      >>> x = np.zeros((1, 2, 4, 4, 1)); x[0, 0, 1, 2] = 1.0; x[0, 1, 3, 0] = 1.0
      >>> centre_of_mass(x)[0].tolist()
      [[1.0, 2.0], [3.0, 0.0]]
    """
    x = np.clip(_clips("clips", clips)[..., 0], 0.0, 1.0)  # (n, T, H, W)
    rows = np.arange(x.shape[2], dtype=np.float64)  # (H,)
    cols = np.arange(x.shape[3], dtype=np.float64)  # (W,)
    mass = np.maximum(x.sum(axis=(2, 3)), MASS_FLOOR)  # (n, T)
    c_row = np.einsum("ntij,i->nt", x, rows) / mass  # sum x i / sum x
    c_col = np.einsum("ntij,j->nt", x, cols) / mass  # sum x j / sum x
    return np.stack([c_row, c_col], axis=-1)  # (n, T, 2)


def constant_velocity_fit(centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The least-squares line ``c_t = a + b t`` through each clip's centres, and its residual.

        b = sum_t (t - tbar)(c_t - cbar) / sum_t (t - tbar)^2,   a = cbar - b tbar
        r = sqrt(mean_t ||c_t - a - b t||^2)

    Args:
      centres: (n, T, 2) with T >= 2 (e.g. :func:`centre_of_mass`).

    Returns:
      ``(velocity (n, 2), residual (n,))``, in pixels per frame and pixels.

    Example:
      >>> c = np.array([[[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]]])  # moving down, 1 px/frame
      >>> v, r = constant_velocity_fit(c)
      >>> v.tolist(), r.tolist()
      ([[1.0, 0.0]], [0.0])
    """
    c = np.asarray(centres, np.float64)
    if c.ndim != 3 or c.shape[-1] != 2 or c.shape[1] < 2:
        raise ValueError(f"centres must have shape (n, T >= 2, 2), got {c.shape}")
    t = np.arange(c.shape[1], dtype=np.float64)  # (T,)
    dt = t - t.mean()  # t - tbar
    dc = c - c.mean(axis=1, keepdims=True)  # c_t - cbar, (n, T, 2)
    b = np.einsum("t,ntk->nk", dt, dc) / np.sum(dt**2)  # (n, 2)
    fitted = b[:, None, :] * dt[None, :, None]  # a + b t - cbar = b (t - tbar), (n, T, 2)
    residual = np.sqrt(np.mean(np.sum((dc - fitted) ** 2, axis=-1), axis=1))  # (n,)
    return b, residual


def _shift(frames: np.ndarray, dr: int, dc: int) -> np.ndarray:
    """frames (..., H, W) moved by (dr, dc) pixels, zero filled."""
    out = np.zeros_like(frames)
    h, w = frames.shape[-2:]
    src_r = slice(max(0, -dr), h - max(0, dr))
    dst_r = slice(max(0, dr), h - max(0, -dr))
    src_c = slice(max(0, -dc), w - max(0, dc))
    dst_c = slice(max(0, dc), w - max(0, -dc))
    out[..., dst_r, dst_c] = frames[..., src_r, src_c]
    return out


def shift_error(clips: np.ndarray, *, max_shift: int = 2) -> np.ndarray:
    """Per clip, how far each frame is from a whole-pixel shift of the previous one.

        e = mean_{t < T-1} min_{|s|_inf <= m} ||x_{t+1} - shift_s(x_t)||^2 / ||x_{t+1}||^2

    Args:
      clips: (n, T, H, W, 1) frames (clipped to [0, 1]).
      max_shift: m >= 0, the largest shift tried per axis.

    Returns:
      (n,) float64 relative errors (0 for a rigidly translating clip).

    Example:
      >>> x = np.zeros((1, 3, 6, 6, 1)); x[0, 0, 1, 1] = x[0, 1, 2, 2] = x[0, 2, 3, 3] = 1.0
      >>> shift_error(x).tolist()
      [0.0]
    """
    x = np.clip(_clips("clips", clips)[..., 0], 0.0, 1.0)  # (n, T, H, W)
    max_shift = checks.nonnegative_int("max_shift", max_shift)
    prev, nxt = x[:, :-1], x[:, 1:]  # (n, T-1, H, W) each
    best = np.full(prev.shape[:2], np.inf)  # (n, T-1)
    for dr in range(-max_shift, max_shift + 1):
        for dc in range(-max_shift, max_shift + 1):
            err = np.sum((nxt - _shift(prev, dr, dc)) ** 2, axis=(2, 3))  # (n, T-1)
            best = np.minimum(best, err)
    energy = np.maximum(np.sum(nxt**2, axis=(2, 3)), MASS_FLOOR)  # ||x_{t+1}||^2
    return np.mean(best / energy, axis=1)  # (n,)


def shuffled_frames(clips: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Clips whose frame t comes from a random other clip: the no-motion reference.

    Args:
      clips: (n, T, H, W, 1) real clips, n >= 2.
      seed: integer >= 0 for the permutations (NumPy's generator, explicit).

    Returns:
      (n, T, H, W, 1): frame t of clip i is frame t of clip ``perm_t[i]``.

    Example:
      >>> shuffled_frames(np.zeros((4, 3, 5, 5, 1))).shape
      (4, 3, 5, 5, 1)
    """
    x = _clips("clips", clips)
    if x.shape[0] < 2:
        raise ValueError(f"clips must hold n >= 2 clips to shuffle, got {x.shape[0]}")
    rng = np.random.default_rng(checks.nonnegative_int("seed", seed))
    frames = [x[rng.permutation(x.shape[0]), t] for t in range(x.shape[1])]  # T x (n, H, W, 1)
    return np.stack(frames, axis=1)


def motion_consistency(clips: np.ndarray) -> dict[str, float]:
    """The two figures of the module docstring, summarised over clips.

    Args:
      clips: (n, T, H, W, 1) frames in [0, 1].

    Returns:
      ``{"com_residual_mean", "com_residual_median"}`` (pixels) and
      ``{"shift_error_mean"}`` (relative), as floats.

    Example:
      >>> x = np.zeros((2, 3, 6, 6, 1)); x[:, 0, 1, 1] = x[:, 1, 2, 2] = x[:, 2, 3, 3] = 1.0
      >>> motion_consistency(x)["com_residual_mean"]
      0.0
    """
    _, residual = constant_velocity_fit(centre_of_mass(clips))
    return {
        "com_residual_mean": float(np.mean(residual)),
        "com_residual_median": float(np.median(residual)),
        "shift_error_mean": float(np.mean(shift_error(clips))),
    }
