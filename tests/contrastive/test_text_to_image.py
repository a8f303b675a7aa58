"""Encoders, caption dropout and guided sampling on a text context, with fake models."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax.contrastive import captions, text_to_image
from genjax.diffusion import schedules
from genjax.nn import CharTextEncoder, ConvImageEncoder


@pytest.fixture(scope="module")
def text_encoder():
    return CharTextEncoder(captions.VOCAB_SIZE, captions.MAX_LENGTH, 8, width=16, depth=1,
                           num_heads=2, rngs=nnx.Rngs(0))


def test_text_encoder_pools_at_eos_and_is_causal(text_encoder):
    tokens = captions.tokenize(["a handwritten three", "a handwritten three", "the digit 3"])
    changed_pad = tokens.copy()
    changed_pad[1, -1] = captions.tokenize("z")[1]  # a character after <eos>, in the padding
    enc = jax.jit(lambda m, t: m(t))
    pooled, feats = enc(text_encoder, jnp.asarray(np.concatenate([tokens, changed_pad[1:2]])))
    assert pooled.shape == (4, 8) and feats.shape == (4, captions.MAX_LENGTH, 16)
    # Causal attention: what follows <eos> cannot change the pooled feature (float32 exact
    # up to rounding of identical computations) ...
    np.testing.assert_allclose(pooled[3], pooled[0], rtol=1e-6, atol=1e-6)
    # ... but it does change that padding position's own feature, and other text changes
    # the pooled one.
    assert float(jnp.abs(feats[3, -1] - feats[0, -1]).max()) > 1e-4
    assert float(jnp.abs(pooled[2] - pooled[0]).max()) > 1e-4
    with pytest.raises(ValueError, match="tokens"):
        text_encoder(jnp.zeros((2, captions.MAX_LENGTH + 1), jnp.int32))


def test_image_encoder_shapes_and_errors():
    enc = ConvImageEncoder(1, 8, widths=(8, 16), hidden=16, rngs=nnx.Rngs(1))
    out = enc(jnp.linspace(0, 1, 2 * 64).reshape(2, 8, 8, 1))
    assert out.shape == (2, 8) and float(jnp.abs(out[0] - out[1]).max()) > 0
    with pytest.raises(ValueError, match="images"):
        enc(jnp.zeros((2, 4, 4, 1)))
    with pytest.raises(ValueError, match="image_size"):
        ConvImageEncoder(1, 8, image_size=(6, 6), widths=(8, 16), rngs=nnx.Rngs(1))


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


def _fake_eps(x_t, t, context):
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
    sched = schedules.cosine(50)
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
    with pytest.raises(ValueError, match="context"):
        text_to_image.text_to_image_loss(
            None, x0, jnp.zeros((3, 4, 5)), jax.random.key(0),
            apply_fn=lambda n, x, t, c: x, schedule=schedules.cosine(10),
        )
    # A model predicting zeros scores E|eps|^2 = 1 per dimension: the loss is the noise's
    # mean square (8 numbers, so only roughly 1).
    loss, _ = text_to_image.text_to_image_loss(
        None, x0, jnp.zeros((2, 4, 5)), jax.random.key(0),
        apply_fn=lambda n, x, t, c: jnp.zeros_like(x), schedule=schedules.cosine(10),
    )
    assert 0.1 < float(loss) < 4.0
