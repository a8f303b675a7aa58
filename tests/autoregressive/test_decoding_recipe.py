"""The ``speculative`` recipe, shrunk: a few joint training steps, sampling, the report."""

from __future__ import annotations

import math

import jax
import numpy as np
import optax

from genjax import registry
from genjax.autoregressive import recipes_decoding as rd


def test_speculative_recipe_trains_samples_reports(tmp_path, monkeypatch):
    monkeypatch.setattr(rd, "TARGET", dict(dim=16, num_heads=2, num_layers=1))
    monkeypatch.setattr(rd, "DRAFT", dict(dim=8, num_heads=2, num_layers=1))
    monkeypatch.setattr(rd, "CONTEXT", 24)
    monkeypatch.setattr(rd, "NEW_TOKENS", 12)
    # greedy speculative = greedy target is tested on a position-masked cache in
    # test_speculative; here the two extra compiled programs would double the test's time
    monkeypatch.setattr(rd, "GREEDY_CHECK", False)
    rd._graphdefs.cache_clear()
    recipe = registry.get("speculative")
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
    assert all(math.isfinite(v) for v in summary.values())
    assert 0.0 <= summary["acceptance_rate"] <= 1.0 and summary["speedup"] > 0
    # the report's compiled program (same prompt, batch and options): no new compile
    texts = recipe.sample(jax.random.key(2), params, 1)
    assert len(texts) == 1 and texts[0].startswith(rd.PROMPT)
    assert len(texts[0]) == len(rd.PROMPT) + 12
    rd._graphdefs.cache_clear()
