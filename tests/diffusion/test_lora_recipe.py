"""``lora-digits`` (genjax.diffusion.lora_recipes): the style, the two phases, ``--base``, the
report -- on a tiny class-conditional denoiser standing in for the U-Net (CI time)."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import checkpoint, cli, data, nn, train
from genjax.diffusion import lora_recipes as lr
from genjax.diffusion import recipes as base_recipes


class TinyDenoiser(nnx.Module):
    """``eps(x_t, t, labels)``: a one-hidden-layer MLP over the 64 pixels with a class and a
    time embedding (dense layers compile in a fraction of a U-Net's time)."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.hidden = nnx.Linear(64, 16, rngs=rngs)
        self.label = nnx.Embed(11, 16, rngs=rngs)
        self.time = nnx.Linear(1, 16, rngs=rngs)
        self.out = nnx.Linear(16, 64, rngs=rngs)

    def __call__(self, x, t, labels):
        emb = self.label(labels) + self.time(t[:, None] / 1000.0)  # (B, 16)
        h = nnx.silu(self.hidden(x.reshape(x.shape[0], 64)) + emb)  # (B, 16)
        return self.out(h).reshape(x.shape)  # (B, 8, 8, 1)


DIGITS = next(r for r in base_recipes.RECIPES if r.name == "ddpm-digits")
TINY_BASE = dataclasses.replace(
    DIGITS, name="tiny-digits", init=lambda key, d: {"net": TinyDenoiser(nnx.Rngs(key))}
)


def _hidden_and_out(path, layer):
    return path in ("hidden", "out")


def _recipe(**kw):
    return lr.make_recipe(
        pretrain_steps=1,
        adapt_steps=2,
        rank=1,
        base_recipe=TINY_BASE,
        where=_hidden_and_out,
        report_samples=20,
        report_sampler="ddim",  # 2 steps: the report's code path at a fraction of DDPM's cost
        report_steps=2,
        **kw,
    )


@pytest.fixture(scope="module")
def digits():
    """300 training and 100 test digits with labels (the report's classifiers fit fast)."""
    train_split = data.load_with_labels("digits", "train", 0)
    test_split = data.load_with_labels("digits", "test", 0)
    return (tuple(a[:300] for a in train_split), tuple(a[:100] for a in test_split))


def test_thicken_is_the_plus_dilation():
    x = np.asarray(jax.random.uniform(jax.random.key(0), (2, 5, 4, 1)))
    want = np.zeros_like(x)
    for i in range(5):
        for j in range(4):
            for di, dj in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)):
                if 0 <= i + di < 5 and 0 <= j + dj < 4:
                    want[:, i, j] = np.maximum(want[:, i, j], x[:, i + di, j + dj])
    np.testing.assert_array_equal(lr.thicken(jnp.asarray(x)), want)


def test_pretrain_then_adapt_phases(digits):
    recipe = _recipe()
    (images, labels), _ = digits
    params = recipe.init(jax.random.key(0), (images, labels))
    batch = (jnp.asarray(images[:16]), jnp.asarray(labels[:16]))
    step = jax.jit(recipe.step)
    p1, m1 = step(params, batch, jax.random.key(1))  # pretraining: base moves, B stays 0
    p2, m2 = step(p1, batch, jax.random.key(2))  # adaptation: only A and B move
    assert float(m1["pretraining"]) == 1.0 and float(m2["pretraining"]) == 0.0
    labels_tree = jax.tree.leaves(nn.lora_labels(params["model"]))
    leaves = [jax.tree.leaves(p["model"]) for p in (params, p1, p2)]
    moved1 = [not np.array_equal(a, b) for a, b in zip(leaves[0], leaves[1], strict=True)]
    moved2 = [not np.array_equal(a, b) for a, b in zip(leaves[1], leaves[2], strict=True)]
    assert not any(m for m, lab in zip(moved1, labels_tree, strict=True) if lab == "lora")
    assert any(m for m, lab in zip(moved1, labels_tree, strict=True) if lab == "frozen")
    assert not any(m for m, lab in zip(moved2, labels_tree, strict=True) if lab == "frozen")
    # B moves (A's gradient is zero while B = 0: dL/dA = x^T (dL/dh) B^T)
    assert any(m for m, lab in zip(moved2, labels_tree, strict=True) if lab == "lora")


def test_train_end_to_end_and_base_run(digits, tmp_path):
    (train_data, test_data) = digits
    result = train.fit(
        _recipe(),
        train_data,
        key=jax.random.key(0),
        out_dir=tmp_path / "run",
        test_data=test_data,
        progress=False,
    )
    s = result.summary
    assert (tmp_path / "run" / "samples.png").is_file()
    model = result.params["model"]
    assert (s["trainable_parameters"], s["total_parameters"]) == nn.lora_parameter_counts(model)
    # rank 1 on the two layers: A (64, 1) + B (1, 16), A (16, 1) + B (1, 64)
    assert s["trainable_parameters"] == 64 + 16 + 16 + 64
    assert s["stroke_mass_real_thick"] > 1.5 * s["stroke_mass_real_plain"]
    assert s["thick_score_real_thick"] > 0.95 and s["thick_score_real_plain"] < 0.05
    for k in (
        "stroke_mass_before",
        "stroke_mass_after",
        "thick_score_after",
        "class_accuracy_after",
        "stroke_mass_shift_fraction",
    ):
        assert np.isfinite(s[k]), k

    # --base: a run directory of the base recipe, its checkpoint written directly (loading
    # needs no training), with EMA weights unlike its raw ones: the EMA must be what is adapted
    base_run = tmp_path / "base"
    state = train.init_state(TINY_BASE, jax.random.key(5), train_data, 1)
    ema = jax.tree.map(lambda a: 2.0 * a + 0.5, state.params)
    state = dataclasses.replace(state, step=jnp.ones((), jnp.int32), ema_params=ema)
    manager = checkpoint.open_manager(base_run)
    train.save_checkpoint(manager, state)
    manager.close()
    config = {"recipe": "tiny-digits", "steps": 1, "seed": 3, "data": "digits"}
    (base_run / "config.json").write_text(json.dumps(config))
    tuned = _recipe().with_base(base_run)
    assert tuned.steps == 2  # adaptation only
    params = tuned.init(jax.random.key(4), train_data)
    assert "base_opt" not in params
    net = ema["net"]
    x, t, y = jnp.ones((2, 8, 8, 1)), jnp.array([3.0, 700.0]), jnp.array([1, 10])
    np.testing.assert_array_equal(params["model"](x, t, y), net(x, t, y))  # B = 0: the base
    np.testing.assert_array_equal(params["model"].hidden.base.kernel[...], net.hidden.kernel[...])


def test_bad_base_runs(tmp_path):
    with pytest.raises(ValueError, match="base"):
        lr.load_base(tmp_path)  # no config.json
    (tmp_path / "config.json").write_text(json.dumps({"recipe": "ddpm", "seed": 0}))
    with pytest.raises(ValueError, match="base.*ddpm-digits"):
        lr.load_base(tmp_path)
    # a recipe without a base: the command line says so in one line, exit status 2
    assert cli.main(["train", "ddpm", "--base", str(tmp_path)]) == cli.EXIT_USAGE


def test_registered_recipe_trains_under_two_percent():
    recipe = next(r for r in lr.RECIPES if r.name == "lora-digits")
    assert recipe.family == "diffusion" and recipe.with_base is not None
    adapted = nnx.eval_shape(
        lambda: nn.apply_lora(
            jax.random.key(1),
            base_recipes.digits_init(jax.random.key(0), None)["net"],
            rank=lr.RANK,
            where=lr.adapted_layers,
        )
    )
    trainable, total = nn.lora_parameter_counts(adapted)
    assert 0 < trainable / total < 0.02
