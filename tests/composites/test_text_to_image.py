"""Caption dropout, guided sampling on a text context and the loss, with fake models."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import diffusion
from genjax.composites import text_to_image
from genjax.contrastive import captions


def test_caption_dropout():
    tokens = jnp.asarray(captions.tokenize(["a one"] * 64))
    null = jnp.asarray(captions.empty_caption())
    key = jax.random.key(0)
    np.testing.assert_array_equal(text_to_image.caption_dropout(key, tokens, 0.0, null), tokens)
    all_null = text_to_image.caption_dropout(key, tokens, 1.0, null)
    np.testing.assert_array_equal(all_null, jnp.broadcast_to(null, tokens.shape))
    half = np.asarray(text_to_image.caption_dropout(key, tokens, 0.5, null))
    is_null = (half == np.asarray(null)).all(axis=1)
    assert 10 < is_null.sum() < 54  # Binomial(64, 1/2): far inside +-5.5 sd
    assert ((half == np.asarray(tokens)).all(axis=1) | is_null).all()
    with pytest.raises(ValueError, match="p_uncond"):
        text_to_image.caption_dropout(key, tokens, 1.5, null)


def _fake_eps(x_t, t, *, context):
    # A model whose answer is known: eps = x_t * mean(context) per example.
    del t
    return x_t * jnp.mean(context, axis=(1, 2))[:, None, None, None]


def test_guided_context_eps_fn_mixes_as_cfg():
    x = jnp.ones((3, 2, 2, 1))
    t = jnp.zeros((3,), jnp.int32)
    ctx = jnp.full((3, 4, 5), 2.0)
    null = jnp.full((1, 4, 5), 0.5)
    for scale, expected in ((0.0, 0.5), (1.0, 2.0), (3.0, 0.5 + 3.0 * 1.5)):
        out = text_to_image.guided_context_eps_fn(_fake_eps, ctx, null, scale)(x, t)
        np.testing.assert_allclose(out, expected * x, rtol=1e-6)


def test_guided_sampling_depends_on_the_prompt_only_when_guided():
    sched = diffusion.schedules.cosine(50)
    null = jnp.zeros((1, 4, 5))
    ctx_a, ctx_b = jnp.full((2, 4, 5), 0.1), jnp.full((2, 4, 5), -0.2)
    run = jax.jit(
        lambda ctx, scale: text_to_image.sample(
            jax.random.key(0), _fake_eps, ctx, null, (2, 2, 1), sched, num_steps=5,
            guidance_scale=scale,
        )
    )
    uncond_a, uncond_b = run(ctx_a, 0.0), run(ctx_b, 0.0)
    cond_a, cond_b = run(ctx_a, 1.0), run(ctx_b, 1.0)
    assert uncond_a.shape == (2, 2, 2, 1) and bool(jnp.all(jnp.isfinite(cond_a)))
    np.testing.assert_allclose(uncond_a, uncond_b, rtol=1e-6)  # scale 0 ignores the text
    assert float(jnp.abs(cond_a - cond_b).max()) > 1e-3
    assert float(jnp.max(jnp.abs(cond_a))) <= 1.0 + 1e-6  # clip_x0 = 1 keeps the data range


def test_text_to_image_loss_checks_context():
    x0 = jnp.zeros((2, 2, 2, 1))
    sched = diffusion.schedules.cosine(10)
    with pytest.raises(ValueError, match="context"):
        text_to_image.text_to_image_loss(lambda x, t, *, context: x, (x0, jnp.zeros((3, 4, 5))),
                                         jax.random.key(0), schedule=sched)
    # A model predicting zeros scores E|eps|^2 = 1 per dimension: the loss is the noise's
    # mean square (8 numbers, so only roughly 1).
    loss, _ = text_to_image.text_to_image_loss(
        lambda x, t, *, context: jnp.zeros_like(x), (x0, jnp.zeros((2, 4, 5))),
        jax.random.key(0), schedule=sched,
    )
    assert 0.1 < float(loss) < 4.0
