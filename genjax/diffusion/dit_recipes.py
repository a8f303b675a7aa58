"""``genjax train dit-digits``: a class-conditional diffusion transformer on the 8x8 digits.

The same job as ``ddpm-digits`` (:mod:`genjax.diffusion.recipes`) with the U-Net replaced by
a :class:`genjax.nn.DiT` (Peebles & Xie 2023): the simplified DDPM objective (Ho et al. 2020,
eq. 14) on the cosine schedule, label dropout for classifier-free guidance (Ho & Salimans
2022), an EMA of the weights, sampled by DDPM (or DDIM / DPM-Solver++:
``genjax sample RUN --sampler ddim --steps 50``). The network cuts each 8x8 digit into 16
patches of 2x2 pixels and runs four adaLN-Zero blocks of width 64 over them.

The training steps are chosen so that the run takes about the wall-clock time of
``ddpm-digits`` on the same machine (measured side by side; see the issue 18 report).

The report draws 10 guided samples per class (one row per class, ``samples.png``) and gives
the figures of ``ddpm-digits`` — the accuracy of a logistic-regression classifier of real
digits on guided and conditional samples (was each sample drawn as the class it looks
like?) — and the Fréchet distance of the features of the shared digit classifier
(:func:`genjax.digit_classifier.frechet_features`, FID's formula of Heusel et al. 2017 on its
penultimate layer) between guided samples and the held-out digits, next to the same
distance between the training and held-out digits (the floor a perfect model reaches).
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
from flax import nnx

from genjax import data
from genjax.diffusion import recipes as unet_recipes
from genjax.diffusion.recipes import digits_loss, digits_sample
from genjax.digit_classifier import digit_classifier, frechet_features
from genjax.nn import DiT
from genjax.recipe import Recipe

__all__ = [
    "RECIPES",
    "dit_digits_init",
    "dit_digits_loss",
    "dit_digits_sample",
    "dit_digits_report",
]

# The diffusion choices of ddpm-digits, so that the two recipes differ by the network only.
# the U-Net recipe's (ddpm-digits) choices, shared: same schedule, classes, dropout, guidance
SCHEDULE = unet_recipes.DIGITS_SCHEDULE
NUM_CLASSES = unet_recipes.NUM_CLASSES
NULL_LABEL = unet_recipes.NULL_LABEL  # the DiT's extra class-embedding row
P_UNCOND = unet_recipes.P_UNCOND
GUIDANCE_SCALE = unet_recipes.GUIDANCE_SCALE
IMAGE_SHAPE = (8, 8, 1)
# ddpm-digits trains 1500 steps; a DiT step took 0.77x a U-Net step (batch 64, both jitted,
# alternated: median of 5 pairs; load ~18 on 2 cores, and 0.78x at load ~3), so 1950 steps
# take the same time.
DIT_STEPS = 1950
FRECHET_SAMPLES = 360  # guided samples for the Fréchet distance (36 per class, ~ the test split)


def _net(key: jax.Array) -> DiT:
    # 8x8 digits in 2x2 patches: N = 16 tokens of width D = 64; 4 blocks of 4 heads.
    # frequency_dim 64 (DiT uses 256 for 1000 steps; 64 frequencies resolve them as well).
    return DiT(
        1,
        patch_size=2,
        dim=64,
        depth=4,
        num_heads=4,
        mlp_ratio=4.0,
        num_classes=NUM_CLASSES,
        frequency_dim=64,
        rngs=nnx.Rngs(key),
    )


def dit_digits_init(key: jax.Array, train_data: tuple) -> dict:
    """``{"net": DiT (the nnx module)}``; images are mapped to [-1, 1] (no statistics)."""
    del train_data
    return {"net": _net(key)}


# The U-Net recipe's objective and guided sampler, unchanged: a DiT takes the U-Net's
# arguments ``(x_t, t, labels)``, and the comparison needs the same schedule, label dropout,
# guidance and x0 clipping on both sides.
dit_digits_loss = digits_loss
dit_digits_sample = digits_sample


def dit_digits_report(
    key: jax.Array,
    params: dict,
    train_data: tuple,
    test_data: tuple,
    out_dir: Path,
    *,
    frechet_samples: int = FRECHET_SAMPLES,
    sampler: str = "ddpm",
    steps: int | None = None,
) -> dict:
    """``samples.png`` (10 guided samples per class) and the figures of ddpm-digits.

    Returns ``classifier_test_accuracy`` (the logistic-regression judge on held-out digits),
    ``class_accuracy_guided`` / ``class_accuracy_conditional`` (the judge on 100 samples drawn
    with guidance scale 2 / 1), ``frechet_guided_vs_test`` (Fréchet distance of the shared
    digit classifier's features, ``frechet_samples`` guided samples against the held-out
    digits) and ``frechet_train_vs_test`` (the same between real digits: the floor).
    Samples are drawn by ``sampler`` in ``steps`` (DDPM's 1000 by default, as ddpm-digits).
    """
    from sklearn.linear_model import LogisticRegression

    from genjax import plotting

    train_x, train_y = (np.asarray(a) for a in train_data)
    test_x, test_y = (np.asarray(a) for a in test_data)
    clf = LogisticRegression(max_iter=2000).fit(train_x.reshape(len(train_x), -1), train_y)
    grid_key, frechet_key = jax.random.split(key)
    labels = np.repeat(np.arange(NUM_CLASSES), 10)  # (100,): one row per class
    out = {"classifier_test_accuracy": float(clf.score(test_x.reshape(len(test_x), -1), test_y))}
    how = dict(sampler=sampler, steps=steps)
    for name, scale in (("guided", GUIDANCE_SCALE), ("conditional", 1.0)):
        images = np.asarray(
            dit_digits_sample(grid_key, params, 100, labels=labels, guidance_scale=scale, **how)
        )
        out[f"class_accuracy_{name}"] = float(clf.score(images.reshape(100, -1), labels))
        if name == "guided":
            plotting.image_grid(
                images,
                Path(out_dir) / "samples.png",
                nrow=10,
                title=f"dit-digits, one row per class (guidance {scale})",
            )
    judge = digit_classifier(0)
    guided = dit_digits_sample(frechet_key, params, int(frechet_samples), **how)
    out["frechet_guided_vs_test"] = frechet_features(judge, guided, test_x)
    out["frechet_train_vs_test"] = frechet_features(judge, train_x, test_x)
    return out


#: ``genjax train dit-digits``: the class-conditional DiT beside the U-Net recipe.
RECIPES: tuple[Recipe, ...] = (
    Recipe(
        name="dit-digits",
        family="diffusion",
        summary="class-conditional diffusion transformer (DiT, adaLN-Zero) on 8x8 digits, "
        "classifier-free guidance",
        data="digits",
        init=dit_digits_init,
        loss=dit_digits_loss,
        sample=dit_digits_sample,
        report=dit_digits_report,
        steps=DIT_STEPS,
        batch_size=64,
        learning_rate=1e-3,
        ema_decay=0.99,
        load_data=data.load_with_labels,
        sample_options=("sampler", "steps"),
        data_figures=("class_accuracy", "classifier_test_accuracy", "frechet"),
    ),
)
