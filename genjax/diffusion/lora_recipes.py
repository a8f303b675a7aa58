"""``genjax train lora-digits [--base RUN_DIR]``: LoRA fine-tuning of a digits diffusion model.

LoRA (Hu et al. 2021, :mod:`genjax.nn.lora`) adapts the class-conditional U-Net of
``ddpm-digits`` (:mod:`genjax.diffusion.recipes`; DDPM, Ho et al. 2020, with
classifier-free guidance, Ho & Salimans 2022) to a new style: **thicker digits**, the real
digits dilated by a plus-shaped 3x3 structuring element (:func:`thicken`), which doubles
their stroke mass. Rank-``r`` adapters are put on the convolutions of the decoder's
full-resolution blocks (``up.3``, ``up.4``: where the strokes are drawn) -- about 1.2% of
the parameters -- and only they are trained, by :func:`genjax.nn.lora_optimizer` (the
frozen U-Net gets no optimiser state), on the same DDPM loss with the styled digits as data.

* ``genjax train lora-digits --base RUN_DIR`` adapts the trained model of a ``ddpm-digits``
  run (its EMA weights, as ``genjax sample`` uses them) for ``ADAPT_STEPS`` steps;
* ``genjax train lora-digits`` first pretrains the base briefly itself (``PRETRAIN_STEPS``
  steps of the base recipe's loss on the plain digits, every non-adapter weight trained and
  the adapters, ``B = 0``, untouched), then adapts -- one training run, one checkpoint.

The report (``summary.json``) gives the trainable count and fraction, and the style shift
measured on samples drawn with the **same noise** before (the adapted model with ``B = 0``,
which is exactly the base model) and after adaptation: the mean stroke mass (mean pixel
value), the fraction a style classifier (logistic regression, plain vs thick real digits)
calls thick, and the class accuracy of a digit classifier -- each beside the same figure
for real plain and real thick digits. ``samples.png`` alternates rows: base, adapted.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from genjax import data, nn, train
from genjax.diffusion import recipes as base_recipes
from genjax.recipe import Recipe

__all__ = ["RECIPES", "make_recipe", "thicken", "adapted_layers", "load_base"]

BASE_RECIPE = "ddpm-digits"
RANK = 2  # r of every adapter
ALPHA = 4.0  # Delta W = (alpha / r) A B: scale 2, so B moves the output twice as fast
PRETRAIN_STEPS = 800  # base steps when no --base run is given (ddpm-digits trains 1500)
ADAPT_STEPS = 600
BASE_LR = 2e-3  # the base recipe's rate, cosine-decayed to 0 over the pretraining
LORA_LR = 5e-3  # adapters tolerate (and need) a larger rate than full fine-tuning
BATCH_SIZE = 64
REPORT_SAMPLES = 100  # 10 per class
# DDPM's 1000 steps with x0 clipped to [-1, 1], as ddpm-digits' own report: DDIM without
# clipping saturates every pixel of this cosine-schedule model to 0 or 1 (its first step
# divides by sqrt(alpha_bar[T-1]) ~ 0.03 and amplifies the network's eps error).
REPORT_SAMPLER = "ddpm"


def thicken(images: jax.Array) -> jax.Array:
    """Grey-level dilation by the plus-shaped 3x3 element: each pixel becomes the maximum of
    itself and its four neighbours (zero outside the image).

    Args:
      images: ``(n, h, w, c)`` in [0, 1].

    Returns:
      ``(n, h, w, c)``: ``max(x[i, j], x[i +- 1, j], x[i, j +- 1])``.
    """
    p = jnp.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)))  # (n, h + 2, w + 2, c)
    shifted = (p[:, 1:-1, 1:-1], p[:, :-2, 1:-1], p[:, 2:, 1:-1], p[:, 1:-1, :-2], p[:, 1:-1, 2:])
    return functools.reduce(jnp.maximum, shifted)


def adapted_layers(path: str, layer: nnx.Module) -> bool:
    """The layers that get adapters: the 3x3 convolutions of the decoder's full-resolution
    blocks (``up.3``, ``up.4``), not their 1x1 skips (a ``where`` for :func:`nn.apply_lora`)."""
    return (
        path.startswith(("up.3.", "up.4.")) and isinstance(layer, nnx.Conv) and "skip" not in path
    )


def _base_recipe() -> Recipe:
    return next(r for r in base_recipes.RECIPES if r.name == BASE_RECIPE)


def load_base(base_dir: str | Path, recipe: Recipe | None = None) -> nnx.Module:
    """The network ``params["net"]`` of a run of ``recipe`` (default ``ddpm-digits``) in
    ``base_dir``: its EMA weights when the recipe keeps an EMA (the ones it samples from)."""
    recipe = _base_recipe() if recipe is None else recipe
    base_dir = Path(base_dir)
    config_path = base_dir / "config.json"
    if not config_path.is_file():
        raise ValueError(
            f"base: {str(base_dir)!r} has no config.json; give the directory of "
            f"a `genjax train {BASE_RECIPE}` run"
        )
    config = json.loads(config_path.read_text("utf-8"))
    if config.get("recipe") != recipe.name:
        raise ValueError(
            f"base: {str(base_dir)!r} is a run of {config.get('recipe')!r}; "
            f"lora-digits adapts a run of {recipe.name!r}"
        )
    seed = int(config.get("seed", 0))
    base_data = recipe.load_data(config.get("data", recipe.data), "train", seed)
    return train.load_params(recipe, base_dir, jax.random.key(seed), base_data)["net"]


def _loss(model: nnx.Module, batch: tuple, key: jax.Array) -> tuple[jax.Array, dict]:
    """The base recipe's DDPM loss with label dropout, on ``batch = (images, labels)``."""
    return base_recipes.digits_loss({"net": model}, batch, key)


def _base_only(learning_rate: Any) -> optax.GradientTransformation:
    """Adam on every weight but the adapters (they stay at B = 0 during pretraining)."""
    return optax.multi_transform(
        {"lora": optax.set_to_zero(), "frozen": optax.adam(learning_rate)}, nn.lora_labels
    )


def make_recipe(
    *,
    base_dir: str | Path | None = None,
    pretrain_steps: int = PRETRAIN_STEPS,
    adapt_steps: int = ADAPT_STEPS,
    rank: int = RANK,
    alpha: float = ALPHA,
    base_recipe: Recipe | None = None,
    where: Callable[[str, nnx.Module], bool] = adapted_layers,
    report_samples: int = REPORT_SAMPLES,
    report_sampler: str = REPORT_SAMPLER,
    report_steps: int | None = None,
) -> Recipe:
    """The ``lora-digits`` recipe: adapt the run in ``base_dir``, or pretrain first.

    Args:
      base_dir: a ``ddpm-digits`` run directory; ``None`` pretrains the base in the recipe.
      pretrain_steps: base steps before adaptation when ``base_dir`` is None (>= 1).
      adapt_steps: LoRA steps (>= 1).
      rank, alpha: the adapters' ``r`` and ``alpha`` (:func:`genjax.nn.apply_lora`).
      base_recipe: the recipe whose ``init(key, data)["net"]`` is pretrained, or whose run
        ``base_dir`` is (default ``ddpm-digits``); its network is ``net(x_t, t, labels)``.
      where: selects the adapted layers (default :func:`adapted_layers`).
      report_samples, report_sampler, report_steps: samples per model, sampler and its steps
        (None: the sampler's default) of the report.
    """
    pretrain_steps = 0 if base_dir is not None else int(pretrain_steps)
    base_recipe = _base_recipe() if base_recipe is None else base_recipe
    lora_opt = nn.lora_optimizer(optax.adam(optax.cosine_decay_schedule(LORA_LR, adapt_steps)))
    base_opt = _base_only(optax.cosine_decay_schedule(BASE_LR, max(pretrain_steps, 1)))

    def init(key: jax.Array, train_data: Any) -> dict:
        """``{"model": LoRA U-Net, "lora_opt", "step"}`` (+ ``"base_opt"`` when pretraining)."""
        base_key, lora_key = jax.random.split(key)
        if base_dir is not None:
            net = load_base(base_dir, base_recipe)
        else:
            net = base_recipe.init(base_key, train_data)["net"]
        model = nn.apply_lora(lora_key, net, rank=rank, alpha=alpha, where=where)
        params = {
            "model": model,
            "lora_opt": lora_opt.init(model),
            "step": jnp.zeros((), jnp.int32),
        }
        if pretrain_steps:
            params["base_opt"] = base_opt.init(model)
        return params

    def adapt(p: dict, batch: tuple, key: jax.Array) -> tuple[dict, jax.Array]:
        images, labels = batch
        grad_fn = jax.value_and_grad(_loss, has_aux=True)
        (loss, _), grads = grad_fn(p["model"], (thicken(images), labels), key)
        updates, opt_state = lora_opt.update(grads, p["lora_opt"], p["model"])
        return {**p, "model": optax.apply_updates(p["model"], updates), "lora_opt": opt_state}, loss

    def pretrain(p: dict, batch: tuple, key: jax.Array) -> tuple[dict, jax.Array]:
        (loss, _), grads = jax.value_and_grad(_loss, has_aux=True)(p["model"], batch, key)
        updates, opt_state = base_opt.update(grads, p["base_opt"], p["model"])
        return {**p, "model": optax.apply_updates(p["model"], updates), "base_opt": opt_state}, loss

    def step(params: dict, batch: tuple, key: jax.Array) -> tuple[dict, dict]:
        """A base step while ``step < pretrain_steps``, then a LoRA step on thickened digits."""
        if pretrain_steps:
            in_pretrain = params["step"] < pretrain_steps
            new, loss = jax.lax.cond(in_pretrain, pretrain, adapt, params, batch, key)
        else:
            in_pretrain = jnp.zeros((), bool)
            new, loss = adapt(params, batch, key)
        new["step"] = params["step"] + 1
        return new, {"loss": loss, "pretraining": in_pretrain.astype(jnp.float32)}

    def sample(
        key: jax.Array, params: dict, n: int, *, sampler: str = "ddpm", steps: int | None = None
    ) -> jax.Array:
        """``n`` thick digits ``(n, 8, 8, 1)`` from the adapted model (classes 0..9 cycled)."""
        return base_recipes.digits_sample(
            key, {"net": params["model"]}, n, sampler=sampler, steps=steps
        )

    def report(key, params, train_data, test_data, out_dir: Path) -> dict:
        return lora_report(
            key,
            params["model"],
            train_data,
            test_data,
            Path(out_dir),
            n=report_samples,
            sampler=report_sampler,
            sampler_steps=report_steps,
        )

    where_from = (
        f"adapts the run in {base_dir}"
        if base_dir is not None
        else (f"pretrains {base_recipe.name} {pretrain_steps} steps, then adapts")
    )
    return Recipe(
        name="lora-digits",
        family="diffusion",
        summary=f"LoRA (rank {rank}) of a digits U-Net DDPM to thicker digits; {where_from} "
        "(--base RUN_DIR: adapt a ddpm-digits run)",
        data="digits",
        init=init,
        step=step,
        sample=sample,
        report=report,
        steps=pretrain_steps + int(adapt_steps),
        batch_size=BATCH_SIZE,
        learning_rate=LORA_LR,
        load_data=data.load_with_labels,
        sample_options=("sampler", "steps"),
        with_base=lambda run_dir: make_recipe(
            base_dir=run_dir,
            adapt_steps=adapt_steps,
            rank=rank,
            alpha=alpha,
            base_recipe=base_recipe,
            where=where,
            report_samples=report_samples,
            report_sampler=report_sampler,
            report_steps=report_steps,
        ),
    )


def lora_report(
    key,
    model: nnx.Module,
    train_data,
    test_data,
    out_dir: Path,
    *,
    n: int,
    sampler: str,
    sampler_steps: int | None,
) -> dict:
    """``samples.png`` and the figures of the module docstring."""
    from sklearn.linear_model import LogisticRegression

    from genjax import plotting

    base = nnx.clone(model)
    for _, layer in nnx.iter_graph(base):
        if isinstance(layer, (nn.LoRALinear, nn.LoRAConv)):
            layer.lora_b.set_value(jnp.zeros_like(layer.lora_b[...]))  # B = 0: the base model
    train_x, train_y = (np.asarray(a) for a in train_data)
    test_x, test_y = (np.asarray(a) for a in test_data)
    thick_train, thick_test = np.asarray(thicken(train_x)), np.asarray(thicken(test_x))

    def flat(x):
        return np.asarray(x).reshape(len(x), -1)

    # Style classifier: plain (0) vs thick (1) real digits; digit classifiers per style.
    style = LogisticRegression(max_iter=2000).fit(
        flat(np.concatenate([train_x, thick_train])),
        np.r_[np.zeros(len(train_x)), np.ones(len(train_x))],
    )
    plain_digits = LogisticRegression(max_iter=2000).fit(flat(train_x), train_y)
    thick_digits = LogisticRegression(max_iter=2000).fit(flat(thick_train), train_y)

    labels = np.arange(n) % base_recipes.NUM_CLASSES
    draw = functools.partial(
        base_recipes.digits_sample, key, n=n, labels=labels, sampler=sampler, steps=sampler_steps
    )
    before = np.asarray(draw(params={"net": base}))  # the same noise for both
    after = np.asarray(draw(params={"net": model}))
    trainable, total = nn.lora_parameter_counts(model)
    out = {
        "trainable_parameters": trainable,
        "total_parameters": total,
        "trainable_fraction": trainable / total,
        "stroke_mass_real_plain": float(test_x.mean()),
        "stroke_mass_real_thick": float(thick_test.mean()),
        "stroke_mass_before": float(before.mean()),
        "stroke_mass_after": float(after.mean()),
        "thick_score_real_plain": float(style.predict(flat(test_x)).mean()),
        "thick_score_real_thick": float(style.predict(flat(thick_test)).mean()),
        "thick_score_before": float(style.predict(flat(before)).mean()),
        "thick_score_after": float(style.predict(flat(after)).mean()),
        "class_accuracy_real_thick": float(thick_digits.score(flat(thick_test), test_y)),
        "class_accuracy_before": float(plain_digits.score(flat(before), labels)),
        "class_accuracy_after": float(thick_digits.score(flat(after), labels)),
    }
    # The share of the real plain -> thick stroke-mass gap that adaptation moved the samples.
    gap = out["stroke_mass_real_thick"] - out["stroke_mass_real_plain"]
    out["stroke_mass_shift_fraction"] = (out["stroke_mass_after"] - out["stroke_mass_before"]) / gap
    rows = min(n // 10, 3)  # base / adapted row pairs, 10 classes each
    grid = np.concatenate(
        [np.stack([before[10 * i : 10 * i + 10], after[10 * i : 10 * i + 10]]) for i in range(rows)]
    ).reshape(-1, *before.shape[1:])
    plotting.image_grid(
        grid,
        out_dir / "samples.png",
        nrow=10,
        title=f"rows: base, LoRA ({trainable / total:.1%} trained), ...",
    )
    return out


#: ``genjax train lora-digits [--base RUN_DIR]``: LoRA of a ddpm-digits U-Net to thicker digits.
RECIPES: tuple[Recipe, ...] = (make_recipe(),)
