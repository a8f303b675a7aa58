"""``genjax train pix2pix``: paired translation of blurred 8x8 digits to clean digits.

The task (built in, deterministic, nothing downloaded): the input ``x`` is a digit of the
bundled scikit-learn set blurred by a Gaussian of standard deviation ``BLUR_SIGMA`` pixels
(:func:`blur_digits`), the target ``y`` the digit itself — pairs ``(x, y)`` of the same
image, the setting of pix2pix (Isola et al. 2017) rather than CycleGAN's unpaired one.

One step trains two generators side by side on the same batch: pix2pix
(:class:`genjax.gan.UNetGenerator` against a :class:`genjax.gan.PatchGAN`, adversarial +
lambda L1, lambda = 100) and the same U-Net on lambda L1 alone (the paper's "L1"
baseline). The report draws input / L1-only output / pix2pix output / target rows and
gives the test L1 of both against the identity baseline (output = input), plus how sharp
the outputs are: the mean absolute difference of neighbouring pixels relative to the
targets' (L1 regression averages the plausible outputs and blurs them, the paper's
motivation for the adversarial term, sec. 3.1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from genjax import data
from genjax.gan.pix2pix import PatchGAN, UNetGenerator
from genjax.gan.pix2pix_step import pix2pix_trainer
from genjax.recipe import Recipe

BLUR_SIGMA = 1.5  # pixels; a 5-tap kernel at 8x8 (identity error 0.22 at 1.5, 0.18 at 1.0)
L1_WEIGHT = 100.0  # lambda of eq. 4 (Isola et al. 2017, sec. 4)
LEARNING_RATE = 1e-3
REPORT_ROWS = 12
G_CHANNELS = (16, 32, 64)  # 8 -> 4 -> 2 -> 1: a 1x1 bottleneck, as pix2pix's at 256x256
D_CHANNELS = (16, 32)


def blur_digits(images: Any, sigma: float = BLUR_SIGMA) -> np.ndarray:
    """Separable Gaussian blur with zero padding: ``(n, H, W, 1)`` in [0, 1] -> same shape.

    ``x[i, j] = sum_{a, b} k[a] k[b] y[i + a, j + b]``, ``k[a] ∝ exp(-a^2 / (2 sigma^2))``
    for ``|a| <= 2`` (normalised to sum 1); pixels outside the image count as 0 (the
    digits' background).
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    y = np.asarray(images, np.float64)
    taps = np.arange(-2, 3)
    k = np.exp(-(taps**2) / (2.0 * sigma**2))
    k /= k.sum()
    pad = np.pad(y, ((0, 0), (2, 2), (2, 2), (0, 0)))  # (n, H + 4, W + 4, 1)
    H, W = y.shape[1:3]
    rows = sum(k[a + 2] * pad[:, 2 + a : 2 + a + H] for a in taps)  # (n, H, W + 4, 1)
    out = sum(k[b + 2] * rows[:, :, 2 + b : 2 + b + W] for b in taps)  # (n, H, W, 1)
    return out.astype(np.float32)


def load_blurred_pairs(name: str, split: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(blurred (n, 8, 8, 1), clean (n, 8, 8, 1))`` of the same digits, in [0, 1]."""
    clean = np.asarray(data.load(name, split=split, seed=seed), np.float32)
    return blur_digits(clean, BLUR_SIGMA), clean


def _trainers():
    adam = optax.adam(LEARNING_RATE, b1=0.5)  # beta1 = 0.5 as the paper (sec. 4)
    return (
        pix2pix_trainer(g_optimizer=adam, d_optimizer=adam, l1_weight=L1_WEIGHT),
        pix2pix_trainer(g_optimizer=adam, l1_weight=L1_WEIGHT, adversarial=False),
    )


def pix2pix_init(key: jax.Array, train_data: Any) -> dict:
    """Both runs' states: pix2pix (U-Net + PatchGAN) and the L1-only U-Net, same init."""
    del train_data
    g_key, d_key = jax.random.split(key)
    adversarial, l1_only = _trainers()
    g = UNetGenerator(1, 1, channels=G_CHANNELS, rngs=nnx.Rngs(g_key))
    d = PatchGAN(2, channels=D_CHANNELS, rngs=nnx.Rngs(d_key))
    # the same initial generator for both, so the comparison isolates the adversarial term
    return {"pix2pix": adversarial.init(g, d), "l1_only": l1_only.init(jax.tree.map(jnp.copy, g))}


def pix2pix_step(params: dict, batch: Any, key: jax.Array) -> tuple[dict, dict]:
    """One update of each generator on the batch ``(blurred, clean)`` of [0, 1] images."""
    x, y = (2.0 * jnp.asarray(a) - 1.0 for a in batch)  # [0, 1] -> [-1, 1], tanh's range
    adversarial, l1_only = _trainers()
    state, info = adversarial.step(params["pix2pix"], (x, y), key)
    base, base_info = l1_only.step(params["l1_only"], (x, y), key)
    return {"pix2pix": state, "l1_only": base}, {**info.metrics(), "l1_only": base_info.l1}


@jax.jit
def translate(generator: Any, images: jax.Array) -> jax.Array:
    """A generator Module (traced) on ``[0, 1]`` images ``(B, 8, 8, 1) -> (B, 8, 8, 1)``."""
    return (generator(2.0 * images - 1.0) + 1.0) / 2.0


def pix2pix_sample(key: jax.Array, params: dict, n: int) -> jax.Array:
    """pix2pix's outputs ``(n, 8, 8, 1)`` in [0, 1] for ``n`` random blurred test digits."""
    blurred, _ = load_blurred_pairs("digits", "test", 0)
    idx = jax.random.choice(key, blurred.shape[0], (int(n),), replace=int(n) > len(blurred))
    return translate(params["pix2pix"].g, jnp.asarray(blurred)[idx])


def sharpness(images: Any) -> float:
    """Mean absolute difference of horizontally and vertically neighbouring pixels."""
    a = np.asarray(images, np.float64)
    return float(0.5 * (np.abs(np.diff(a, axis=1)).mean() + np.abs(np.diff(a, axis=2)).mean()))


def pix2pix_report(key, params, train_data, test_data, out_dir: Path) -> dict:
    """``samples.png``: rows of input, L1-only output, pix2pix output, target (12 test
    pairs); the test L1 of pix2pix, L1-only and the identity, and each one's sharpness
    relative to the targets'."""
    from genjax import plotting

    del key, train_data
    x, y = (jnp.asarray(a, jnp.float32) for a in test_data)
    out = translate(params["pix2pix"].g, x)
    base = translate(params["l1_only"].g, x)
    rows = [a[:REPORT_ROWS] for a in (x, base, out, y)]
    plotting.image_grid(
        jnp.clip(jnp.concatenate(rows), 0.0, 1.0),
        Path(out_dir) / "samples.png",
        nrow=REPORT_ROWS,
        title="pix2pix rows: blurred input, L1-only, pix2pix, target",
    )
    l1 = lambda a: float(jnp.mean(jnp.abs(a - y)))  # noqa: E731  (pixel units, [0, 1])
    ref = sharpness(y)
    return {
        "test_l1_pix2pix": l1(out),
        "test_l1_l1_only": l1(base),
        "test_l1_identity": l1(x),  # output = input: doing nothing
        "sharpness_ratio_pix2pix": sharpness(out) / ref,  # 1 = as sharp as the targets
        "sharpness_ratio_l1_only": sharpness(base) / ref,
        "sharpness_ratio_identity": sharpness(x) / ref,
    }


RECIPES: tuple[Recipe, ...] = (
    Recipe(
        name="pix2pix",
        family="gan",
        summary="pix2pix (U-Net + PatchGAN, adversarial + L1) deblurring digits; vs L1-only",
        data="digits",
        init=pix2pix_init,
        step=pix2pix_step,
        sample=pix2pix_sample,
        report=pix2pix_report,
        steps=3000,
        batch_size=64,
        learning_rate=LEARNING_RATE,
        load_data=load_blurred_pairs,
        checkpoint_every=1000,
    ),
)
