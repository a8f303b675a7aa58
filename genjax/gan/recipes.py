"""``genjax train gan | wgan-gp | gan-r1 | dcgan | cgan | cyclegan``: the GAN family's jobs.

* ``gan`` — the original GAN (Goodfellow et al. 2014) with the non-saturating generator
  loss, MLPs on the 8-mode ring: the textbook case of mode collapse. ``gan-r1`` is the same
  game with the R1 penalty (Mescheder et al. 2018), ``wgan-gp`` the Wasserstein critic with
  the gradient penalty and ``n_critic = 5`` (Gulrajani et al. 2017), its critic on a 10x
  faster learning rate than the generator (two time-scale updates, Heusel et al. 2017: in
  2000 steps, equal rates of 2e-4 left the critic behind and the generator circled the
  ring as one blob, ending collapsed at the centre). Their reports scatter
  the generator's samples over the data every few hundred steps (``snapshots.png``, a grid
  of scatter plots; the snapshots are taken inside the jitted step into a buffer in the
  parameters) and measure mode collapse: ``mode_coverage`` (fraction of the 8 modes with a
  sample within 3 std, :func:`genjax.metrics.mode_coverage`), ``high_quality_fraction``
  (fraction of samples within 3 std of some mode), ``mode_kl_from_uniform`` (how unevenly
  the high-quality samples share the modes) and the energy distance to held-out data.
* ``dcgan`` — DCGAN (Radford et al. 2016) on the 8x8 digits with one-sided label smoothing
  (Salimans et al. 2016) and an EMA of the generator; ``cgan`` — its class-conditional
  version (Mirza & Osindero 2014) with a projection discriminator (Miyato & Koyama 2018);
  the report draws one row per class. Both report the MMD to the test images (and the
  train-test MMD as the floor) and, through a nearest-class-mean classifier fitted on the
  training digits, how many classes the samples cover (dcgan) or how often a sample is
  classified as the class it was drawn for (cgan).
* ``cyclegan`` — CycleGAN (Zhu et al. 2017) between two unpaired domains built from the
  digits: X = digits, Y = inverted digits ``1 - x`` of *other* images. The true translation
  is known (``G(x) = 1 - x``), so the report gives the translation error
  ``mean |G(x) - (1 - x)|`` on test digits next to the identity map's error.

Parameters are pytrees of arrays holding the networks themselves: a
:class:`genjax.gan.GANState` (the generator and critic Modules, their optimiser states and
the generator's EMA) -- the trainer checkpoints it leaf by leaf, and the public functions
(``gan.sample``, the trainer's step) take the Modules as traced arguments.
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

from genjax import checks, data, metrics, targets
from genjax.gan import network
from genjax.gan.sample import sample as gan_sample
from genjax.gan.step import cyclegan_trainer, gan_trainer
from genjax.recipe import Recipe

PyTree = Any

RING_MODES, RING_RADIUS, RING_STD = 8, 4.0, 0.3  # genjax.data's "ring" (targets.ring())
HIT_RADIUS = 3 * RING_STD  # a sample within 3 std of a mode "hits" it / is high quality
RING_LATENT = 8
RING_HIDDEN = (128, 128, 128)
SNAPSHOT_EVERY = 250  # steps between scatter snapshots
SNAPSHOT_SLOTS = 16  # a ring buffer: the most recent 16 snapshots (step 0 included early on)
SNAPSHOT_POINTS = 512
REPORT_SAMPLES = 4000


# --------------------------------------------------------------------------------------
# 2-D GANs on the ring: gan, gan-r1, wgan-gp
# --------------------------------------------------------------------------------------


def _snapshot_latents() -> jax.Array:
    # the same latents at every snapshot, so the panels show one cloud moving
    return jax.random.normal(jax.random.key(1234), (SNAPSHOT_POINTS, RING_LATENT))


def _ring_recipe(name: str, summary: str, *, steps: int, batch_size: int, lr: float,
                 betas: tuple[float, float], d_lr: float | None = None,
                 **trainer_kwargs) -> Recipe:
    d_lr = lr if d_lr is None else d_lr  # a faster critic: two time-scale updates (TTUR)

    def make_trainer():
        return gan_trainer(
            g_optimizer=optax.adam(lr, b1=betas[0], b2=betas[1]),
            d_optimizer=optax.adam(d_lr, b1=betas[0], b2=betas[1]),
            **trainer_kwargs,
        )

    def init(key: jax.Array, train_data: jax.Array) -> dict:
        g_key, d_key = jax.random.split(key)
        x = jnp.asarray(train_data, jnp.float32)
        shift, scale = jnp.mean(x, axis=0), jnp.std(x) + 1e-6  # data standardised for the nets
        g = network.MLPGenerator(RING_LATENT, RING_HIDDEN, 2, rngs=nnx.Rngs(g_key))
        d = network.MLPDiscriminator(2, RING_HIDDEN, rngs=nnx.Rngs(d_key))
        first = g(_snapshot_latents()) * scale + shift[None]  # (S, 2) at step 0
        snapshots = jnp.zeros((SNAPSHOT_SLOTS, SNAPSHOT_POINTS, 2)).at[0].set(first)
        snapshot_steps = jnp.full((SNAPSHOT_SLOTS,), -1, jnp.int32).at[0].set(0)
        return {
            "gan": make_trainer().init(g, d),
            "shift": shift, "scale": scale,
            "step": jnp.zeros((), jnp.int32),
            "snapshots": snapshots, "snapshot_steps": snapshot_steps,
        }

    def step(params: dict, batch: jax.Array, key: jax.Array) -> tuple[dict, dict]:
        x = (batch - params["shift"][None]) / params["scale"]
        state, info = make_trainer().step(params["gan"], x, key)
        done = params["step"] + 1
        slot = (done // SNAPSHOT_EVERY) % SNAPSHOT_SLOTS
        take = done % SNAPSHOT_EVERY == 0
        cloud = state.g(_snapshot_latents()) * params["scale"] + params["shift"][None]
        snapshots = jnp.where(take, params["snapshots"].at[slot].set(cloud), params["snapshots"])
        steps = jnp.where(take, params["snapshot_steps"].at[slot].set(done),
                          params["snapshot_steps"])
        new = {**params, "gan": state, "step": done, "snapshots": snapshots,
               "snapshot_steps": steps}
        return new, info.metrics()

    return Recipe(
        name=name, family="gan", summary=summary, data="ring",
        init=init, step=step, sample=ring_sample, report=functools.partial(ring_report, name=name),
        steps=steps, batch_size=batch_size, learning_rate=lr, checkpoint_every=1000,
        # measured against the ring's 8 modes
        data_figures=("mode_coverage", "high_quality_fraction", "mode_kl_from_uniform",
                      "samples_per_mode"),
    )


def ring_sample(key: jax.Array, params: dict, n: int) -> jax.Array:
    """``n`` samples ``(n, 2)``: ``G(z)``, ``z ~ N(0, I)``, in data coordinates."""
    return gan_sample(key, params["gan"].g, int(n)) * params["scale"] + params["shift"][None]


def ring_quality(samples: jax.Array, test: jax.Array) -> dict:
    """Mode collapse on the ring: coverage, high-quality fraction, energy distance."""

    means = targets.ring(RING_MODES, RING_RADIUS, RING_STD).means  # (8, 2)
    samples = jnp.asarray(samples, jnp.float32)
    dist = jnp.linalg.norm(samples[:, None, :] - means[None], axis=-1)  # (n, 8)
    nearest = jnp.argmin(dist, axis=1)
    hits = jnp.min(dist, axis=1) <= HIT_RADIUS
    counts = np.bincount(np.asarray(nearest)[np.asarray(hits)], minlength=RING_MODES)
    n = min(samples.shape[0], test.shape[0])
    # NaN when no sample lies near any mode: the occupancy has no distribution then
    kl = float(metrics.occupancy_kl(counts))
    return {
        "mode_coverage": float(metrics.mode_coverage(samples, means, HIT_RADIUS)),
        "high_quality_fraction": float(jnp.mean(hits)),
        "energy_distance": float(metrics.energy_distance(samples[:n], jnp.asarray(test)[:n])),
        # KL(high-quality samples' mode shares || uniform): 0 for balanced modes, log 8 =
        # 2.08 for total collapse onto one mode -- the partial collapse coverage misses
        "mode_kl_from_uniform": kl,
        "samples_per_mode": [int(c) for c in counts],
    }


def _snapshot_figure(snapshots, steps, data, path: Path, title: str) -> None:
    from matplotlib.figure import Figure

    order = [i for i in np.argsort(steps) if steps[i] >= 0]
    cols = 4
    rows = -(-len(order) // cols)
    fig = Figure(figsize=(3 * cols, 3 * rows + 0.4), dpi=90)
    lim = RING_RADIUS + 1.5
    for panel, i in enumerate(order):
        ax = fig.add_subplot(rows, cols, panel + 1)
        ax.scatter(data[:, 0], data[:, 1], s=2, c="0.75", rasterized=True)
        ax.scatter(snapshots[i, :, 0], snapshots[i, :, 1], s=3, c="C3", rasterized=True)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"step {int(steps[i])}", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)


def ring_report(key, params, train_data, test_data, out_dir: Path, *, name: str) -> dict:
    """``samples.png`` (samples over the data), ``snapshots.png`` (samples every
    ``SNAPSHOT_EVERY`` steps) and the mode-collapse figures of :func:`ring_quality`."""
    from genjax import plotting

    out_dir = Path(out_dir)
    samples = ring_sample(key, params, REPORT_SAMPLES)
    data = np.asarray(train_data)[:4000]
    quality = ring_quality(samples, test_data)
    plotting.scatter_2d(samples, data, out_dir / "samples.png",
                        title=f"{name} on ring: modes covered {quality['mode_coverage']:.2f}, "
                              f"high quality {quality['high_quality_fraction']:.2f}")
    _snapshot_figure(np.asarray(params["snapshots"]), np.asarray(params["snapshot_steps"]), data,
                     out_dir / "snapshots.png", f"{name}: generator samples (red) during training")
    return quality


# --------------------------------------------------------------------------------------
# dcgan and cgan on the 8x8 digits
# --------------------------------------------------------------------------------------

DIGITS_SHAPE = (8, 8, 1)
DIGITS_LATENT = 32
NUM_CLASSES = 10
DIGITS_EMA = 0.999


def _dc_modules(key: jax.Array, num_classes: int | None):
    g_key, d_key = jax.random.split(key)
    # the generator's transposed convolutions are most of a step's cost: 64 -> 32 -> 1
    # channels keep a step at a few ms on a CPU; the critic is cheap at 32 -> 64
    g = network.DCGANGenerator(DIGITS_LATENT, DIGITS_SHAPE, base_channels=16,
                               num_classes=num_classes, rngs=nnx.Rngs(g_key))
    d = network.DCGANDiscriminator(DIGITS_SHAPE, base_channels=32, feature_dim=128,
                                   num_classes=num_classes, rngs=nnx.Rngs(d_key))
    return g, d


def dcgan_trainer(num_classes: int | None):
    """DCGAN's game: non-saturating loss, one-sided label smoothing 0.1, Adam(2e-4, 0.5)
    for both players (Radford et al. 2016, sec. 4), EMA of the generator."""
    return gan_trainer(
        g_optimizer=optax.adam(2e-4, b1=0.5), d_optimizer=optax.adam(2e-4, b1=0.5),
        loss="nonsaturating", label_smoothing=0.1, ema_decay=DIGITS_EMA,
        conditional=num_classes is not None,
    )


def _dc_init(num_classes):
    def init(key: jax.Array, train_data: Any) -> dict:
        del train_data
        return dcgan_trainer(num_classes).init(*_dc_modules(key, num_classes))

    return init


def _dc_step(num_classes):
    def step(params: dict, batch: Any, key: jax.Array) -> tuple[dict, dict]:
        if num_classes is None:
            batch = 2.0 * batch - 1.0  # [0, 1] -> [-1, 1], the generator's tanh range
        else:
            batch = (2.0 * batch[0] - 1.0, batch[1])
        state, info = dcgan_trainer(num_classes).step(params, batch, key)
        return state, info.metrics()

    return step


def dcgan_sample(key: jax.Array, params: Any, n: int) -> jax.Array:
    """``n`` digits ``(n, 8, 8, 1)`` in [0, 1] from the EMA generator."""
    return jnp.clip((gan_sample(key, params.g_ema, int(n)) + 1.0) / 2.0, 0.0, 1.0)


def cgan_sample(key: jax.Array, params: Any, n: int, *, labels: Any = None) -> jax.Array:
    """``n`` digits ``(n, 8, 8, 1)``; class ``labels (n,)`` (default ``i mod 10``)."""
    labels = jnp.arange(int(n)) % NUM_CLASSES if labels is None else jnp.asarray(labels, jnp.int32)
    checks.shape("labels", labels, (int(n),))
    checks.token_ids("labels", labels, NUM_CLASSES)
    x = gan_sample(key, params.g_ema, int(n), labels)
    return jnp.clip((x + 1.0) / 2.0, 0.0, 1.0)


def _class_means(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    flat = np.asarray(images, np.float64).reshape(len(images), -1)
    return np.stack([flat[labels == k].mean(axis=0) for k in range(NUM_CLASSES)])  # (10, 64)


def _nearest_class(images, means: np.ndarray) -> np.ndarray:
    flat = np.asarray(images, np.float64).reshape(len(images), -1)
    return np.argmin(((flat[:, None, :] - means[None]) ** 2).sum(-1), axis=1)


def _train_labels(train_data) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(train_data, (tuple, list)):
        return np.asarray(train_data[0]), np.asarray(train_data[1])
    ref, labels = data.load_with_labels("digits")
    images = np.asarray(train_data)
    if images.shape == ref.shape and np.array_equal(images, ref):
        return images, np.asarray(labels)
    raise ValueError("the digits reports need the built-in digits (labels for the classifier)")


def _mmd(samples, test) -> float:
    n = min(len(samples), len(test), 500)
    flat = lambda a: jnp.asarray(a[:n], jnp.float32).reshape(n, -1)  # noqa: E731
    return float(metrics.mmd(flat(samples), flat(test)))


def dcgan_report(key, params, train_data, test_data, out_dir: Path) -> dict:
    """``samples.png`` (64 samples); MMD to the test digits (and the train-test floor); the
    number of classes among 1000 samples by the nearest-class-mean classifier."""
    from genjax import plotting

    images, labels = _train_labels(train_data)
    test = np.asarray(test_data[0] if isinstance(test_data, (tuple, list)) else test_data)
    samples = np.asarray(dcgan_sample(key, params, 1000))
    plotting.image_grid(samples[:64], Path(out_dir) / "samples.png", nrow=8,
                        title="dcgan: samples (EMA generator)")
    predicted = _nearest_class(samples, _class_means(images, labels))
    share = np.bincount(predicted, minlength=NUM_CLASSES) / len(predicted)
    return {
        "mmd_samples_test": _mmd(samples, test),
        "mmd_train_test": _mmd(images, test),
        "classes_covered": int(np.sum(share >= 0.02)),  # a class with >= 2% of the samples
        "class_shares": [float(s) for s in share],
    }


def cgan_report(key, params, train_data, test_data, out_dir: Path) -> dict:
    """``samples.png``: one row per class (10 x 10); the nearest-class-mean classifier's
    agreement with the conditioning label, next to its accuracy on real test digits."""
    from genjax import plotting

    images, labels = _train_labels(train_data)
    test_x, test_y = (np.asarray(a) for a in test_data)
    grid = np.asarray(cgan_sample(key, params, 100, labels=np.repeat(np.arange(10), 10)))
    plotting.image_grid(grid, Path(out_dir) / "samples.png", nrow=10,
                        title="cgan: one row per class (0-9)")
    wanted = np.arange(1000) % NUM_CLASSES
    samples = np.asarray(cgan_sample(jax.random.fold_in(key, 1), params, 1000, labels=wanted))
    means = _class_means(images, labels)
    return {
        "label_accuracy": float(np.mean(_nearest_class(samples, means) == wanted)),
        "classifier_accuracy_test_digits": float(np.mean(_nearest_class(test_x, means) == test_y)),
        "mmd_samples_test": _mmd(samples, test_x),
        "mmd_train_test": _mmd(images, test_x),
    }


# --------------------------------------------------------------------------------------
# cyclegan: digits <-> inverted digits
# --------------------------------------------------------------------------------------


def load_digit_domains(name: str, split: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two unpaired domains of equal size ``(n//2, 8, 8, 1)`` each, in [0, 1]: X = images
    of one half of the set, Y = ``1 - image`` of the other half (inverted digits)."""
    images = data.load(name, split=split, seed=seed)
    half = len(images) // 2
    return images[:half], 1.0 - images[half: 2 * half]


def _cycle_modules(key: jax.Array):
    kg, kf, kx, ky = jax.random.split(key, 4)
    # no skip connection: with one, G and F start near the identity, which already has a
    # cycle loss of 0, and 1500 steps left the translation half done (error 0.57 against
    # 0.02 without; the identity map's is 0.79)
    gen = {"G": network.Translator(1, hidden=32, residual=False, rngs=nnx.Rngs(kg)),
           "F": network.Translator(1, hidden=32, residual=False, rngs=nnx.Rngs(kf))}
    disc = {"D_X": network.DCGANDiscriminator(DIGITS_SHAPE, base_channels=16, feature_dim=64,
                                              rngs=nnx.Rngs(kx)),
            "D_Y": network.DCGANDiscriminator(DIGITS_SHAPE, base_channels=16, feature_dim=64,
                                              rngs=nnx.Rngs(ky))}
    return gen, disc


def _cycle_trainer():
    return cyclegan_trainer(
        g_optimizer=optax.adam(1e-3, b1=0.5), d_optimizer=optax.adam(1e-3, b1=0.5),
        cycle_weight=10.0,  # Zhu et al. (2017), sec. 4
    )


def cyclegan_init(key: jax.Array, train_data: Any) -> dict:
    """The CycleGAN recipe's initial state: both translators, both critics, their optimisers."""
    del train_data
    return _cycle_trainer().init(*_cycle_modules(key))


def cyclegan_step(params: Any, batch: Any, key: jax.Array) -> tuple[Any, dict]:
    """One CycleGAN update on an unpaired batch ``(x, y)`` of images in [0, 1]."""
    x, y = batch
    state, info = _cycle_trainer().step(params, (2.0 * x - 1.0, 2.0 * y - 1.0), key)
    return state, info.metrics()


@jax.jit
def _translate(translator: Any, images: jax.Array) -> jax.Array:
    """A translator Module (traced) on ``[0, 1]`` images: ``(B, 8, 8, 1) -> (B, 8, 8, 1)``."""
    return (translator(2.0 * images - 1.0) + 1.0) / 2.0


def cyclegan_sample(key: jax.Array, params: dict, n: int) -> jax.Array:
    """``G(x)`` ``(n, 8, 8, 1)`` for ``n`` random test digits ``x``: digits turned inverted."""
    test = data.load("digits", split="test")
    idx = jax.random.choice(key, test.shape[0], (int(n),), replace=int(n) > test.shape[0])
    return _translate(params.gen["G"], jnp.asarray(test)[idx])


def cyclegan_report(key, params, train_data, test_data, out_dir: Path) -> dict:
    """``samples.png``: rows of x, G(x), F(G(x)), then y, F(y), G(F(y)); the translation
    error against the known map ``1 - x`` and the cycle loss, on test data."""
    from genjax import plotting

    del key, train_data
    x, y = (jnp.asarray(a, jnp.float32) for a in test_data)
    G, F = params.gen["G"], params.gen["F"]
    gx, fy = _translate(G, x), _translate(F, y)
    fgx, gfy = _translate(F, gx), _translate(G, fy)
    rows = [a[:10] for a in (x, gx, fgx, y, fy, gfy)]
    plotting.image_grid(jnp.clip(jnp.concatenate(rows), 0.0, 1.0), Path(out_dir) / "samples.png",
                        nrow=10, title="cyclegan rows: x, G(x), F(G(x)), y, F(y), G(F(y))")
    return {
        "translation_error_x_to_y": float(jnp.mean(jnp.abs(gx - (1.0 - x)))),
        "translation_error_y_to_x": float(jnp.mean(jnp.abs(fy - (1.0 - y)))),
        "identity_map_error": float(jnp.mean(jnp.abs(x - (1.0 - x)))),  # doing nothing
        "cycle_loss_test": float(jnp.mean(jnp.abs(fgx - x)) + jnp.mean(jnp.abs(gfy - y))),
    }


# --------------------------------------------------------------------------------------

RECIPES: tuple[Recipe, ...] = (
    _ring_recipe(
        "gan", "original GAN (non-saturating) on the 8-mode ring; snapshots, mode coverage",
        steps=3000, batch_size=256, lr=2e-4, betas=(0.5, 0.999), loss="nonsaturating",
    ),
    _ring_recipe(
        "gan-r1", "GAN with the R1 penalty (gamma=1) on the ring; mode coverage",
        steps=3000, batch_size=256, lr=2e-4, betas=(0.5, 0.999), loss="nonsaturating",
        r1_weight=1.0,
    ),
    _ring_recipe(
        "wgan-gp", "WGAN-GP (lambda=10, n_critic=5, TTUR) on the ring; snapshots, mode coverage",
        steps=2000, batch_size=640, lr=1e-4, d_lr=1e-3, betas=(0.5, 0.9), loss="wasserstein",
        n_critic=5, gp_weight=10.0,
    ),
    Recipe(
        name="dcgan", family="gan", summary="DCGAN on the 8x8 digits (label smoothing, EMA)",
        data="digits", init=_dc_init(None), step=_dc_step(None), sample=dcgan_sample,
        report=dcgan_report, steps=1500, batch_size=64, learning_rate=2e-4,
        checkpoint_every=1000,
    ),
    Recipe(
        name="cgan", family="gan",
        summary="conditional DCGAN with a projection discriminator on the digits; grid by class",
        data="digits", init=_dc_init(NUM_CLASSES), step=_dc_step(NUM_CLASSES),
        sample=cgan_sample, report=cgan_report, steps=1500, batch_size=64, learning_rate=2e-4,
        load_data=data.load_with_labels, checkpoint_every=1000,
    ),
    Recipe(
        name="cyclegan", family="gan",
        summary="CycleGAN between digits and inverted digits (unpaired); translation error",
        data="digits", init=cyclegan_init, step=cyclegan_step, sample=cyclegan_sample,
        report=cyclegan_report, steps=1500, batch_size=32, learning_rate=1e-3,
        load_data=load_digit_domains, checkpoint_every=500,
    ),
)
