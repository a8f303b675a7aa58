"""The CLIP encoders (genjax.nn.clip_encoders): pooling at <eos>, causality, shapes, errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax.contrastive import captions
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
