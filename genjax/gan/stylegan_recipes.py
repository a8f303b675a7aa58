"""``genjax train stylegan-digits | stylegan-digits-sn``: StyleGAN2 on the 8x8 digits.

* ``stylegan-digits`` — :class:`genjax.gan.StyleGANGenerator` (mapping network, learned
  4x4 constant, modulated/demodulated convolutions at 4x4 and 8x8, per-layer noise, skip
  toRGB outputs) against :class:`genjax.gan.StyleGANDiscriminator`, StyleGAN's logistic
  (non-saturating) loss with the R1 penalty on the discriminator (Mescheder et al. 2018;
  StyleGAN sec. 4), style-mixing regularisation with probability 0.9 (StyleGAN sec. 3.1),
  Adam(2e-3, beta1 = 0, beta2 = 0.99) for both players (StyleGAN2's optimiser), an EMA of
  the generator, and ``w_avg`` tracked with decay 0.995 for the truncation trick.
* ``stylegan-digits-sn`` — the same generator against the discriminator with spectral
  normalisation on every layer (Miyato et al. 2018) and the hinge loss, no R1: the
  power-iteration vectors ``u`` live in the trainer's state and advance once per critic
  update. Its report gives, per critic layer, the carried estimate ``sigma = ||W^T u||``
  against the top singular value from an SVD.

Both reports draw ``samples.png`` (64 samples of the EMA generator), ``style_mixing.png``
(row sources give the coarse 4x4 styles, column sources the fine 8x8 ones, StyleGAN fig. 3)
and ``truncation.png`` (one row per ``z``, columns ``psi = 1, 0.75, 0.5, 0.25, 0, -0.5``;
the ``psi = 0`` column is the image of ``w_avg`` in every row), and measure the MMD to the
test digits at ``psi = 1`` and ``0.7`` (next to the train-test floor) and the spread of the
samples (mean per-pixel standard deviation) at ``psi = 1, 0.5, 0``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from genjax import metrics
from genjax.gan import stylegan
from genjax.gan.spectral import SpectralNorm
from genjax.gan.step import GANState, gan_trainer, keep_buffers
from genjax.gan.stylegan_critic import StyleGANDiscriminator
from genjax.recipe import Recipe

DIGITS_SHAPE = (8, 8, 1)
LATENT = 32
W_DIM = 32
MAPPING_LAYERS = 4  # 8 in the paper; 4 suffice for 10 classes of 8x8 digits
CHANNELS = 32
EMA = 0.999
W_AVG_DECAY = 0.995  # StyleGAN2's w_avg_beta
MIXING_PROB = 0.9  # StyleGAN sec. 3.1
R1_GAMMA = 0.1  # small images, small gamma (StyleGAN2 uses 0.01-10 by resolution)
PSIS = (1.0, 0.75, 0.5, 0.25, 0.0, -0.5)
REPORT_SAMPLES = 500  # one sample size: the sampler compiles once for the report
MIX_CROSSOVER = 2  # ws[:, :2] drive the 4x4 block (coarse), ws[:, 2:] the 8x8 block (fine)


def _modules(key: jax.Array, spectral_norm: bool):
    g_key, d_key = jax.random.split(key)
    g = stylegan.StyleGANGenerator(
        LATENT,
        DIGITS_SHAPE,
        w_dim=W_DIM,
        mapping_layers=MAPPING_LAYERS,
        channels=CHANNELS,
        rngs=nnx.Rngs(g_key),
    )
    d = StyleGANDiscriminator(
        DIGITS_SHAPE, channels=CHANNELS, spectral_norm=spectral_norm, rngs=nnx.Rngs(d_key)
    )
    return g, d


def _trainer(spectral_norm: bool):
    adam = optax.adam(2e-3, b1=0.0, b2=0.99)  # StyleGAN2's Adam
    noise = functools.partial(stylegan.stylegan_noise, mixing_prob=MIXING_PROB)
    if spectral_norm:
        return gan_trainer(
            g_optimizer=adam, d_optimizer=adam, loss="hinge", ema_decay=EMA, g_noise=noise
        )
    return gan_trainer(
        g_optimizer=adam,
        d_optimizer=adam,
        loss="nonsaturating",
        r1_weight=R1_GAMMA,
        ema_decay=EMA,
        g_noise=noise,
    )


def _init(spectral_norm: bool):
    def init(key: jax.Array, train_data: Any) -> GANState:
        del train_data
        return _trainer(spectral_norm).init(*_modules(key, spectral_norm))

    return init


def _step(spectral_norm: bool):
    def step(state: GANState, batch: jax.Array, key: jax.Array) -> tuple[GANState, dict]:
        train_key, w_key = jax.random.split(key)
        state, info = _trainer(spectral_norm).step(state, 2.0 * batch - 1.0, train_key)
        # w_avg <- 0.995 w_avg + 0.005 mean f(z) on this step's latents, copied to the EMA
        z = jax.random.normal(w_key, (batch.shape[0], LATENT))
        g = stylegan.track_w_avg(state.g, z, decay=W_AVG_DECAY)
        return state._replace(g=g, g_ema=keep_buffers(state.g_ema, g)), info.metrics()

    return step


def _to_unit(x: jax.Array) -> np.ndarray:
    return np.clip((np.asarray(x) + 1.0) / 2.0, 0.0, 1.0)  # [-1, 1] -> [0, 1]


def stylegan_digits_sample(
    key: jax.Array, params: GANState, n: int, *, psi: float = 1.0
) -> np.ndarray:
    """``n`` digits ``(n, 8, 8, 1)`` in [0, 1] from the EMA generator with truncation ``psi``."""
    return _to_unit(stylegan.stylegan_sample(key, params.g_ema, int(n), psi=float(psi)))


@jax.jit
def _grid_images(
    g: stylegan.StyleGANGenerator,
    z: jax.Array,
    noise: tuple,
    psis: jax.Array,
    coarse: jax.Array,
    fine: jax.Array,
) -> tuple:
    """The truncation sweep ``(len(z), len(psis), H, W, C)`` and the mixing grid
    ``(len(coarse), len(fine), H, W, C)``, each image with the same noise images."""
    rows = z.shape[0]
    ws = g.ws(z)  # (rows, num_ws, w_dim)

    def tiled(n):
        return tuple(jnp.broadcast_to(im[:1], (n, *im.shape[1:])) for im in noise)

    sweep = jax.vmap(
        lambda psi: g.synthesize(stylegan.truncate(ws, g.w_avg[...], psi), tiled(rows)), out_axes=1
    )(psis)
    wc, wf = g.ws(coarse), g.ws(fine)  # (R, num_ws, w_dim), (C, num_ws, w_dim)
    R, C = wc.shape[0], wf.shape[0]
    pairs_c = jnp.repeat(wc, C, axis=0)  # (R C, num_ws, w_dim): row-major (r, c)
    pairs_f = jnp.tile(wf, (R, 1, 1))
    cut = jnp.full((R * C,), MIX_CROSSOVER, jnp.int32)
    mixed = g.synthesize(stylegan.mix_styles(pairs_c, pairs_f, cut), tiled(R * C))
    sources = g.synthesize(jnp.concatenate([wc, wf]), tiled(R + C))
    return sweep, mixed.reshape(R, C, *mixed.shape[1:]), sources


def spectral_sigma_errors(d: nnx.Module) -> list[float]:
    """Per :class:`genjax.gan.SpectralNorm` layer of ``d``: ``| ||W^T u|| - sigma_max(W) | /
    sigma_max(W)``, the carried ``u``'s estimate of the top singular value against an SVD."""
    errors = []
    for _, layer in nnx.iter_modules(d):
        if isinstance(layer, SpectralNorm):
            kernel = np.asarray(layer.layer.kernel[...], np.float64)
            mat = kernel.reshape(-1, kernel.shape[-1]).T  # (out, in'): rows are outputs
            u = np.asarray(layer.u[...], np.float64)
            top = np.linalg.svd(mat, compute_uv=False)[0]
            errors.append(float(abs(np.linalg.norm(mat.T @ u) - top) / top))
    return errors


def stylegan_digits_report(
    key, params: GANState, train_data, test_data, out_dir: Path, *, name: str
) -> dict:
    """The three pictures and the figures of the module docstring."""
    from genjax import plotting

    out_dir = Path(out_dir)
    g = params.g_ema
    keys = jax.random.split(key, 6)
    samples = stylegan_digits_sample(keys[0], params, REPORT_SAMPLES)
    plotting.image_grid(
        samples[:64],
        out_dir / "samples.png",
        nrow=8,
        title=f"{name}: samples (EMA generator, psi = 1)",
    )
    noise = stylegan.stylegan_noise(keys[1], g, 1).images
    z, coarse, fine = (
        jax.random.normal(k, (n, LATENT)) for k, n in ((keys[2], 8), (keys[3], 6), (keys[4], 6))
    )
    sweep, mixed, sources = _grid_images(g, z, noise, jnp.asarray(PSIS), coarse, fine)
    plotting.image_grid(
        _to_unit(sweep).reshape(-1, *DIGITS_SHAPE),
        out_dir / "truncation.png",
        nrow=len(PSIS),
        title="truncation: psi = " + ", ".join(map(str, PSIS)),
    )
    sources = _to_unit(sources)
    top = np.concatenate([np.zeros((1, *DIGITS_SHAPE)), sources[6:]])  # blank, fine sources
    body = [np.concatenate([sources[r : r + 1], _to_unit(mixed[r])]) for r in range(6)]
    plotting.image_grid(
        np.concatenate([top, *body]),
        out_dir / "style_mixing.png",
        nrow=7,
        title="style mixing: 4x4 styles from the row, 8x8 from the column",
    )
    test = np.asarray(test_data)
    n = min(len(test), REPORT_SAMPLES)

    def mmd(a):
        return float(
            metrics.mmd(
                jnp.asarray(a[:n]).reshape(n, -1), jnp.asarray(test[:n], jnp.float32).reshape(n, -1)
            )
        )

    summary = {
        "mmd_samples_test": mmd(samples),
        "mmd_samples_test_psi_0.7": mmd(
            stylegan_digits_sample(keys[5], params, REPORT_SAMPLES, psi=0.7)
        ),
        "mmd_train_test": mmd(np.asarray(train_data, np.float32)),
    }
    for psi in (1.0, 0.5, 0.0):  # spread shrinks with psi; exactly 0 at psi = 0 (same noise)
        col = PSIS.index(psi)
        summary[f"pixel_std_psi_{psi:g}"] = float(np.mean(np.std(_to_unit(sweep[:, col]), axis=0)))
    errors = spectral_sigma_errors(params.d)
    if errors:
        summary["spectral_sigma_max_relative_error"] = max(errors)
    return summary


def _recipe(name: str, summary: str, spectral_norm: bool, steps: int) -> Recipe:
    return Recipe(
        name=name,
        family="gan",
        summary=summary,
        data="digits",
        init=_init(spectral_norm),
        step=_step(spectral_norm),
        sample=stylegan_digits_sample,
        report=functools.partial(stylegan_digits_report, name=name),
        steps=steps,
        batch_size=32,
        learning_rate=2e-3,
        checkpoint_every=500,
        sample_options=("psi",),
    )


RECIPES: tuple[Recipe, ...] = (
    _recipe(
        "stylegan-digits",
        "StyleGAN2 (modulated conv, noise, style mixing, R1) on the "
        "8x8 digits; mixing grid, truncation sweep",
        False,
        steps=2000,
    ),
    _recipe(
        "stylegan-digits-sn",
        "StyleGAN2 generator vs a spectral-norm hinge critic (u "
        "carried in the state) on the digits",
        True,
        steps=2000,
    ),
)
