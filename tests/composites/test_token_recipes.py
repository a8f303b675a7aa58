"""The token recipes (vq-prior, vqgan) at a tiny configuration: both phases train, the
samples and the report's pictures and figures come out, and the phases hand over."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import data, registry, train
from genjax.composites import token_recipes as tr


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(tr, "TOK", {"num_latents": 3, "code_dim": 2, "num_codes": 8})
    monkeypatch.setattr(tr, "HIDDEN", (16,))
    monkeypatch.setattr(tr, "PRIOR", {"dim": 16, "num_heads": 2, "num_layers": 1})
    monkeypatch.setattr(tr, "DISC_HIDDEN", (8,))
    monkeypatch.setattr(tr, "TOK_STEPS", 2)  # two tokenizer steps, then the prior's
    monkeypatch.setattr(tr, "DISC_START", 1)  # the adversarial terms on at step 1
    monkeypatch.setattr(tr, "REPORT_PER_CLASS", 2)
    images, labels = data.load_with_labels("digits", "train", 0)
    test_x, test_y = data.load_with_labels("digits", "test", 0)
    return (images[:64], labels[:64]), (test_x[:40], test_y[:40])


def test_registered():
    names = [r.name for r in tr.RECIPES]
    assert names == ["vq-prior", "vqgan"]
    for name in names:
        recipe = registry.get(name)
        assert recipe.family == "composites" and recipe.load_data is data.load_with_labels


def _run(name, tiny, tmp_path):
    train_data, test_data = tiny
    recipe = registry.get(name)
    res = train.fit(
        recipe,
        train_data,
        key=jax.random.key(0),
        out_dir=tmp_path,
        steps=4,
        batch_size=16,
        progress=False,
        report=False,
    )
    assert [h["tokenizer_phase"] for h in res.history] == [1.0, 1.0, 0.0, 0.0]
    assert all(np.isfinite(v) for h in res.history for v in h.values())
    samples = recipe.sample(jax.random.key(1), res.params, 10, top_k=4)
    assert samples.shape == (10, 8, 8, 1)
    assert 0.0 <= float(samples.min()) <= float(samples.max()) <= 1.0
    figures = recipe.report(jax.random.key(2), res.params, train_data, test_data, tmp_path)
    assert all(np.isfinite(v) for v in figures.values())
    for picture in ("samples.png", "reconstructions.png"):
        assert (tmp_path / picture).stat().st_size > 0
    return res, figures


@pytest.mark.slow
def test_vq_prior_trains_and_reports(tiny, tmp_path):
    _, f = _run("vq-prior", tiny, tmp_path)
    assert 0.0 <= f["requested_class_rate"] <= 1.0
    assert 0.0 < f["prior_bits_per_code_conditional"] < 10.0
    # the report's description lengths are bits per pixel of 17 grey levels plus the codes'
    assert f["test_bits_per_dim"] > 0.0


@pytest.mark.slow
def test_vqgan_trains_and_reports(tiny, tmp_path):
    res, f = _run("vqgan", tiny, tmp_path)
    metrics = res.history[1]  # step 2: the discriminator is on
    assert metrics["adaptive_weight"] > 0.0 and metrics["d_loss"] > 0.0
    for key in (
        "frechet_vqgan_reconstructions_judge0",
        "frechet_vqvae_reconstructions_judge0",
        "frechet_vqgan_reconstructions_judge1",
        "requested_class_rate",
    ):
        assert f[key] >= 0.0
    # the baseline VQ-VAE trained beside the VQGAN differs from it after its steps
    assert (
        float(jnp.abs(res.params["vq"].codebook[...] - res.params["base_vq"].codebook[...]).max())
        > 0.0
    )


def test_vqgan_tokenizers_step_size_decays_to_zero(monkeypatch):
    # Adam on a constant gradient moves each entry by exactly its step size (m_hat = v_hat = g^2
    # up to eps = 1e-8), so the updates read the schedule: 1e-3 (1 + cos(pi t / T)) / 2.
    monkeypatch.setattr(tr, "TOK_STEPS", 4)
    opt = tr._decaying_adam()
    x = jnp.ones(3)
    state = opt.init(x)
    sizes = []
    for _ in range(5):
        updates, state = opt.update(jnp.ones(3), state, x)
        sizes.append(float(jnp.max(jnp.abs(updates))))
    want = [1e-3 * (1 + np.cos(np.pi * t / 4)) / 2 for t in range(5)]
    np.testing.assert_allclose(sizes, want, rtol=1e-5, atol=1e-12)
    assert sizes[-1] == 0.0  # the tokenizer phase ends at a standstill
