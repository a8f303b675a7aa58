"""The ``distill`` recipe end to end on a tiny configuration: phases, stages, report."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import data, registry
from genjax.diffusion import distill_recipes as dr

TINY = dr.DistillConfig(
    hidden=(16,), time_embed_dim=8, teacher_steps=2, teacher_ddim_steps=4, stage_steps=2
)


def test_registered():
    recipe = registry.get("distill")
    assert recipe.family == "diffusion" and recipe.step is not None
    assert recipe.steps == dr.DistillConfig().total_steps
    assert dr.DistillConfig().stages == (16, 8, 4, 2, 1)


def test_tiny_run_stages_and_report(tmp_path, monkeypatch):
    """Teacher phase, two stages, the report. Each student starts as a copy of its teacher:
    Adam's first update moves every weight by at most the learning rate (|m_hat / sqrt(v_hat)|
    <= 1 at step 1), and by more than 0."""
    monkeypatch.setattr(dr, "REPORT_SAMPLES", 64)
    recipe = dr.make_recipe(TINY)
    assert TINY.stages == (2, 1) and recipe.steps == 2 + 2 * 2
    x = jnp.asarray(data.load("ring", split="train")[:64])
    params = recipe.init(jax.random.key(0), x)
    step = jax.jit(recipe.step)

    def leaves(p, s=None):
        tree = p["teacher"] if s is None else jax.tree.map(lambda a: a[s], p["students"])
        return jax.tree.leaves(tree)

    def max_diff(a, b):
        return max(float(jnp.max(jnp.abs(u - v))) for u, v in zip(a, b, strict=True))

    stages, starts = [], {0: lambda p: leaves(p), 1: lambda p: leaves(p, 0)}
    for k in range(recipe.steps):
        before = params
        params, metrics = step(params, x, jax.random.key(k))
        stages.append(int(metrics["stage"]))
        assert np.isfinite(float(metrics["loss"]))
        s = (k - TINY.teacher_steps) // TINY.stage_steps
        if k >= TINY.teacher_steps and (k - TINY.teacher_steps) % TINY.stage_steps == 0:
            moved = max_diff(leaves(params, s), starts[s](before))
            assert 0.0 < moved <= TINY.student_lr * (1 + 1e-5), (k, moved)
    assert stages == [-1, -1, 0, 0, 1, 1]
    assert max_diff(leaves(params, 1), leaves(params, 0)) > 0  # the last stage trained on
    figures = recipe.report(jax.random.key(1), params, np.asarray(x), x, tmp_path)
    for c in (2, 1):
        for who in ("student", "ddim"):
            assert np.isfinite(figures[f"{who}_{c}_steps_energy_distance"])
    assert (tmp_path / "samples.png").stat().st_size > 0
    assert (tmp_path / "distill_steps.png").stat().st_size > 0
    with pytest.raises(ValueError, match="steps"):
        recipe.sample(jax.random.key(1), params, 8, sampler="student", steps=3)
    with pytest.raises(ValueError, match="sampler"):
        recipe.sample(jax.random.key(1), params, 8, sampler="ddpm", steps=1)
