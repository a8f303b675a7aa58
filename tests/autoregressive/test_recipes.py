"""The recipes, shrunk: char-lm, pixelcnn and wavenet train a few steps through
genjax.train.fit (or their own pieces) and report; speculative trains jointly a few steps,
samples and reports."""

import math

import jax
import numpy as np
import optax
import pytest

from genjax import autoregressive as ar
from genjax import train
from genjax.autoregressive import recipes as rn


@pytest.fixture
def small(monkeypatch):
    # tiny data and few report samples: this checks the plumbing, not the quality
    monkeypatch.setattr(rn, "EVAL_WINDOWS", 16)
    monkeypatch.setattr(rn, "TEMPERATURES", ())  # one setting: one compiled loop
    monkeypatch.setattr(rn, "TOP_PS", (0.9,))
    monkeypatch.setattr(rn, "WAVE_TRAIN", 64)
    monkeypatch.setattr(rn, "WAVE_TEST", 16)
    monkeypatch.setattr(rn, "PIX_REPORT_SAMPLES", 2)
    # tiny networks, the shapes of the other tests' (their compiled pieces are shared)
    for name, value in (("LM_CONTEXT", 8), ("LM_DIM", 8), ("LM_HEADS", 2), ("LM_LAYERS", 1),
                        ("PIX_FEATURES", 8), ("PIX_LAYERS", 2), ("WAVE_CHANNELS", 8),
                        ("WAVE_DILATIONS", (1, 2)), ("WAVE_LENGTH", 16)):
        monkeypatch.setattr(rn, name, value)


def _recipe(name):
    # the family's own table (genjax.registry imports every family's recipes)
    return {recipe.name: recipe for recipe in rn.RECIPES}[name]


def _run(tmp_path, name, n_train=64, n_test=16):
    recipe = _recipe(name)
    train_data = recipe.load_data(recipe.data, "train", 0)[:n_train]
    test_data = recipe.load_data(recipe.data, "test", 0)[:n_test]
    res = train.fit(recipe, train_data, key=jax.random.key(0), out_dir=tmp_path, steps=3,
                    batch_size=8, progress=False, test_data=test_data)
    assert all(np.isfinite(v) for k, v in res.history[-1].items() if k != "step")
    assert (tmp_path / "samples.png").stat().st_size > 0
    assert all(np.isfinite(v) for v in res.summary.values() if isinstance(v, float))
    return recipe, res


def test_char_lm_recipe(tmp_path, small):
    recipe, res = _run(tmp_path, "char-lm")
    bpc = res.summary["test_bits_per_char"]
    # 3 steps from a random start: near log2(97) = 6.6, certainly not below 3
    assert 3.0 < bpc < 8.0
    # the report's compiled loop (2 samples, 4-character prompt, top-p 0.9) is reused
    texts = recipe.sample(jax.random.key(1), res.params, 2, prompt="def ", top_p=0.9)
    assert len(texts) == 2 and all(t.startswith("def ") and len(t) == rn.LM_CONTEXT for t in texts)
    assert (tmp_path / "samples.txt").read_text().count("top_p=0.9") == 2


@pytest.mark.slow
def test_pixelcnn_and_wavenet_recipes(tmp_path, small):
    # the recipes' own pieces (init, sample, report; the report's likelihoods are the
    # losses', which test_conformance checks), without the trainer's compile
    for name, family_loss in (("pixelcnn", ar.pixelcnn_loss), ("wavenet", ar.wavenet_loss)):
        recipe = _recipe(name)
        assert recipe.loss is family_loss
        train_data = recipe.load_data(recipe.data, "train", 0)[:16]
        test_data = recipe.load_data(recipe.data, "test", 0)[:8]
        params = recipe.init(jax.random.key(0), train_data)
        out = tmp_path / name
        out.mkdir()
        figures = recipe.report(jax.random.key(2), params, train_data, test_data, out)
        assert (out / "samples.png").stat().st_size > 0
        assert all(np.isfinite(v) for v in figures.values())
        if name == "pixelcnn":
            # an untrained network is near uniform: about log2(4) = 2 bits per dimension
            assert 1.0 < figures["test_bits_per_dim"] < 4.0
            images = recipe.sample(jax.random.key(3), params, 2)
            assert images.shape == (2, 8, 8, 1)
            assert set(np.unique(np.asarray(images) * 3).round(6)) <= {0.0, 1.0, 2.0, 3.0}
        else:
            assert 2.0 < figures["test_bits_per_sample"] < 8.0  # near log2(32) = 5
            # the report's program (3 signals of the test length), another key
            signals = recipe.sample(jax.random.key(3), params, 3, length=rn.WAVE_LENGTH)
            assert signals.shape == (3, rn.WAVE_LENGTH) and float(np.abs(signals).max()) <= 1.0


def test_speculative_recipe_trains_samples_reports(tmp_path, monkeypatch):
    monkeypatch.setattr(rn, "TARGET", dict(dim=16, num_heads=2, num_layers=1))
    monkeypatch.setattr(rn, "DRAFT", dict(dim=8, num_heads=2, num_layers=1))
    monkeypatch.setattr(rn, "SPEC_CONTEXT", 24)
    monkeypatch.setattr(rn, "NEW_TOKENS", 12)
    # greedy speculative = greedy target is tested on a position-masked cache in
    # test_speculative; here the two extra compiled programs would double the test's time
    monkeypatch.setattr(rn, "GREEDY_CHECK", False)
    # the sweep's plumbing on the sampling length only (each length is a compiled loop)
    monkeypatch.setattr(rn, "DRAFT_LENGTHS", (rn.NUM_DRAFT,))
    recipe = _recipe("speculative")
    assert recipe.family == "autoregressive" and "top_p" in recipe.sample_options
    train = recipe.load_data("text", "train", 0)[:256]
    test = recipe.load_data("text", "test", 0)[:64]
    assert train.shape[1] == 25 and (train[:, 1:] == np.roll(train, -1, 1)[:, :-1]).all()
    params = recipe.init(jax.random.key(0), train)
    opt = optax.adam(1e-2)
    state = opt.init(params)

    @jax.jit
    def step(params, state, batch):
        (value, metrics), grads = jax.value_and_grad(recipe.loss, has_aux=True)(
            params, batch, jax.random.key(0))
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    losses = []
    for i in range(8):
        params, state, value = step(params, state, train[i * 16:(i + 1) * 16])
        losses.append(float(value))
    # two cross-entropies start near 2 log(97) = 9.1 nats and must fall
    assert abs(losses[0] - 2 * math.log(97)) < 1.0 and losses[-1] < losses[0] - 0.5
    summary = recipe.report(jax.random.key(1), params, train, test, tmp_path)
    assert (tmp_path / "samples.txt").stat().st_size > 0
    by_k = summary.pop("by_num_draft")
    assert list(by_k) == [str(rn.NUM_DRAFT)] and summary["best_num_draft"] == rn.NUM_DRAFT
    assert all(math.isfinite(v) for v in summary.values())
    assert all(math.isfinite(v) for row in by_k.values() for v in row.values())
    assert 0.0 <= summary["acceptance_rate"] <= 1.0 and summary["speedup"] > 0
    assert all(0.0 <= row["acceptance_rate"] <= 1.0 for row in by_k.values())
    # the report's compiled program (same prompt, batch and options): no new compile
    texts = recipe.sample(jax.random.key(2), params, 1)
    assert len(texts) == 1 and texts[0].startswith(rn.PROMPT)
    assert len(texts[0]) == len(rn.PROMPT) + 12
