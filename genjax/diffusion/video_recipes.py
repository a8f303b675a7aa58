"""``genjax train video-dit``: video diffusion on spacetime patches, on moving digits.

The built-in clips (:mod:`genjax.diffusion.video_data`: an 8x8 digit moving at a constant
integer velocity over 8 frames of 16x16) are mapped to [-1, 1] and learnt with the
simplified DDPM objective (Ho et al. 2020, eq. 14; :func:`genjax.diffusion.loss`) by a
:class:`genjax.nn.VideoDiT` — DiT's adaLN-Zero blocks over (2, 4, 4) tubelets with
factorised space-time attention (Peebles & Xie 2023; Arnab et al. 2021; Ma et al. 2024) —
and sampled by the family's DDIM (50 steps by default), DPM-Solver++ or DDPM, whichever
``genjax sample RUN --sampler`` names. The network is the model every sampler takes.

The report writes

* ``samples.png``: a strip of sampled clips, one clip per row, frames left to right, and
  ``samples.gif``: the same clips side by side, animated (one GIF frame per video frame);
* ``data.png``: the same strip of held-out real clips;
* ``motion.png``: the motion-consistency figure — the distribution (CDF) of the residual of
  a constant-velocity fit to each clip's centre of mass (:mod:`genjax.diffusion.video_motion`)
  for sampled clips, real clips (0: they move exactly linearly) and shuffled clips (frames
  of different real clips: no motion);

and returns, for samples, real and shuffled clips, the mean centre-of-mass residual
(pixels) and the mean frame-to-frame shift error, plus the fraction of sampled clips that
are consistent with a constant velocity by both (``GOOD_FIT``, ``GOOD_SHIFT``).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from genjax import diffusion as d
from genjax import plotting
from genjax.diffusion import video_data, video_motion
from genjax.diffusion.recipes import run_sampler, sampler_steps
from genjax.nn.video_dit import VideoDiT
from genjax.recipe import Recipe

SCHEDULE = d.cosine(1000)
# The network: (2, 4, 4) tubelets of the 8 x 16 x 16 clips make a 4 x 16 token grid; two
# spatial-temporal stages of width 64 (~0.2M parameters) train in minutes on two cores.
NET = {"tubelet": (2, 4, 4), "dim": 64, "depth": 2, "num_heads": 4, "frequency_dim": 64}
SAMPLERS = ("ddim", "dpm_solver_pp", "ddpm")
DEFAULT_STEPS = {"ddim": 50, "dpm_solver_pp": 20}
REPORT_CLIPS = 200  # sampled clips scored by the motion figures
STRIP_CLIPS = 8  # clips drawn in samples.png / samples.gif
# A sampled clip is "consistent" when a constant velocity explains it: its centre of mass
# stays within GOOD_FIT pixels of a line AND each frame is within GOOD_SHIFT (relative
# squared error) of a whole-pixel shift of the previous one. The first alone is met by a
# static blur (its centre never moves); the second rules that out. Real clips: 0 and 0.
GOOD_FIT = 0.5
GOOD_SHIFT = 0.25


def _net(key: jax.Array) -> VideoDiT:
    return VideoDiT(1, **NET, rngs=nnx.Rngs(key))


def video_init(key: jax.Array, train_data: np.ndarray) -> dict:
    """``{"net": VideoDiT}``; clips are mapped to [-1, 1] (no data statistics)."""
    del train_data
    return {"net": _net(key)}


def video_loss(params: dict, batch: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
    """DDPM eps-prediction loss on ``batch (b, T, H, W, 1)`` clips in [0, 1]."""
    x0 = 2.0 * batch - 1.0  # [0, 1] -> [-1, 1]
    return d.loss(params["net"], x0, key, schedule=SCHEDULE)


def video_sample(
    key: jax.Array,
    params: dict,
    n: int,
    *,
    sampler: str = "ddim",
    steps: int | None = None,
    shape: tuple[int, int, int] = (video_data.NUM_FRAMES, video_data.CANVAS, video_data.CANVAS),
) -> jax.Array:
    """``n`` clips ``(n, T, H, W, 1)`` in [0, 1].

    ``sampler``: ``"ddim"`` (50 steps by default), ``"dpm_solver_pp"`` (20) or ``"ddpm"``
    (all 1000); ``steps`` overrides the count (not for ddpm). Every sampler clips the
    predicted clean clip to the data range [-1, 1] (:func:`genjax.diffusion.recipes.run_sampler`).
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    full = (int(n), *shape, 1)
    if steps is None and sampler != "ddpm":
        steps = DEFAULT_STEPS[sampler]
    steps = sampler_steps(sampler, steps, SCHEDULE)  # checked before the model is read
    # every sampler clips its x0 estimate to the data range (diffusion.recipes.run_sampler)
    x = run_sampler(key, params["net"], full, SCHEDULE, sampler, steps, clip_x0=1.0)
    return jnp.clip((x + 1.0) / 2.0, 0.0, 1.0)


def _strip(clips: np.ndarray, path: Path, title: str) -> None:
    """One clip per row, frames left to right."""
    n, T = clips.shape[:2]
    plotting.image_grid(clips.reshape(n * T, *clips.shape[2:]), path, nrow=T, title=title)


def _gif(clips: np.ndarray, path: Path) -> None:
    """The clips side by side, one GIF frame per video frame (4x nearest-neighbour zoom)."""
    from PIL import Image

    frames = []
    for t in range(clips.shape[1]):
        row = plotting.tile_images(clips[:, t], nrow=clips.shape[0])[..., 0]  # (h, w)
        big = np.kron(row, np.ones((4, 4)))  # nearest-neighbour zoom, for viewing
        frames.append(Image.fromarray((255 * big).astype(np.uint8), mode="L"))
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=250, loop=0)


def video_report(key, params, train_data, test_data, out_dir: Path) -> dict:
    """The pictures and figures of the module docstring."""
    del train_data
    out_dir = Path(out_dir)
    test = np.asarray(test_data)
    T, H, W = test.shape[1:4]
    clips = np.asarray(video_sample(key, params, REPORT_CLIPS, shape=(T, H, W)))
    _strip(
        clips[:STRIP_CLIPS],
        out_dir / "samples.png",
        "video-dit: sampled clips (rows), frames left to right",
    )
    _gif(clips[:STRIP_CLIPS], out_dir / "samples.gif")
    _strip(test[:STRIP_CLIPS], out_dir / "data.png", "held-out real clips")
    real = test[: min(REPORT_CLIPS, len(test))]
    groups = {"samples": clips, "real": real, "shuffled": video_motion.shuffled_frames(real)}
    out: dict = {}
    curves = {}
    for name, group in groups.items():
        _, residual = video_motion.constant_velocity_fit(video_motion.centre_of_mass(group))
        figures = video_motion.motion_consistency(group)
        out[f"com_residual_{name}"] = figures["com_residual_mean"]
        out[f"shift_error_{name}"] = figures["shift_error_mean"]
        ordered = np.sort(residual)
        curves[f"{name} (mean {figures['com_residual_mean']:.2f} px)"] = (
            ordered,
            np.arange(1, ordered.size + 1) / ordered.size,
        )
        if name == "samples":
            consistent = (residual < GOOD_FIT) & (video_motion.shift_error(group) < GOOD_SHIFT)
            out["fraction_samples_consistent"] = float(np.mean(consistent))
    plotting.line_plot(
        curves,
        out_dir / "motion.png",
        xlabel="residual of a constant-velocity fit to the centre of mass (pixels)",
        ylabel="fraction of clips at or below",
        title="motion consistency: sampled vs real vs shuffled clips",
    )
    return out


RECIPES: tuple[Recipe, ...] = (
    Recipe(
        name="video-dit",
        family="diffusion",
        summary="video DiT over tubelets (factorised space-time attention) on moving digits",
        data="moving-digits",
        init=video_init,
        loss=video_loss,
        sample=video_sample,
        report=video_report,
        steps=2000,
        batch_size=64,
        learning_rate=1e-3,
        ema_decay=0.99,
        load_data=video_data.load_clips,
        sample_options=("sampler", "steps"),
    ),
)
