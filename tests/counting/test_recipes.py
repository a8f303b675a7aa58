"""The counting recipes run end to end through the trainer on small built-in data."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from genjax import data, registry, train
from genjax.counting import ngram, recipes


def test_recipes_are_registered():
    table = registry.recipes()
    for name in ("ngram", "naive-bayes"):
        assert name in table
        recipe = table[name]
        assert recipe.family == "counting" and recipe.full_batch and recipe.steps == 1
        assert recipe.step is not None and recipe.loss is None


@pytest.mark.slow  # ~10 s: compiles the 5-gram counting, perplexity and sampler programs
def test_ngram_recipe_trains_reports_and_samples(tmp_path):
    recipe = registry.get("ngram")
    corpus = data.load("text")[:20_000]  # a slice keeps the test fast
    held_out = data.load("text", split="test")[:2_000]
    result = train.fit(
        recipe, corpus, key=jax.random.key(0), out_dir=tmp_path, test_data=held_out,
        progress=False,
    )
    model = result.params
    direct = ngram.fit(
        corpus, n=recipes.NGRAM_ORDER, vocab_size=len(data.text_vocabulary()),
        smoothing="kneser_ney",
    )
    for got, want in zip(jax.tree.leaves(model), jax.tree.leaves(direct), strict=True):
        np.testing.assert_array_equal(got, want)  # the step is exactly the counting
    summary = json.loads((tmp_path / "summary.json").read_text())
    vocab = len(data.text_vocabulary())
    assert 1.0 < summary["test_perplexity"] < vocab / 4  # far better than uniform
    assert (tmp_path / "samples.txt").read_text().count("--- sample") == 4
    texts = recipe.sample(jax.random.key(1), model, 2, steps=30)
    assert len(texts) == 2 and all(isinstance(t, str) and len(t) == 30 for t in texts)
    # the checkpoint restores into init's shapes
    restored = train.load_params(recipe, tmp_path, jax.random.key(0), corpus)
    np.testing.assert_array_equal(restored.gram_counts[-1], model.gram_counts[-1])


def test_naive_bayes_recipe_trains_reports_and_samples(tmp_path):
    recipe = registry.get("naive-bayes")
    train_data = recipe.load_data("digits", "train", 0)
    test_data = recipe.load_data("digits", "test", 0)
    result = train.fit(
        recipe, train_data, key=jax.random.key(0), out_dir=tmp_path, test_data=test_data,
        progress=False,
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    for variant in recipes.VARIANTS:
        assert summary[f"test_accuracy_{variant}"] > 0.8
    assert (tmp_path / "samples.png").stat().st_size > 0
    images = recipe.sample(jax.random.key(2), result.params, 12, sampler="gaussian")
    assert images.shape == (12, 8, 8, 1) and 0.0 <= images.min() and images.max() <= 1.0
