"""The contrastive family under genjax.testing's conformance suites.

The family has no sampler (a contrastive model ranks, it does not draw; text-to-image
lives in genjax.composites). Losses (``assert_loss_conforms``): ``clip_model_loss`` through the CLIP
encoders with both objectives (CLIP's InfoNCE and SigLIP's sigmoid loss); ``clip_loss`` and
``sigmoid_loss`` themselves are over embeddings (DESIGN.md) and are held to the oracle in
test_loss.py. The model-taking functions (``zero_shot_predict``, ``image_text_similarity``)
compile once for ten CLIPs with different weights.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from genjax import contrastive as c
from genjax.contrastive import captions
from genjax.testing import LossCase, assert_loss_conforms, count_compilations

LENGTH = 16  # tokens per caption


def _clip(seed: int, hidden: int = 8) -> c.CLIP:
    return c.CLIP(embed_dim=4, image_widths=(8, 8), image_hidden=hidden, text_width=8,
                  text_depth=1, num_heads=2, max_length=LENGTH, rngs=nnx.Rngs(seed))


def _batch():
    images = 2.0 * jax.random.uniform(jax.random.key(0), (4, 8, 8, 1)) - 1.0
    tokens = jnp.asarray(captions.tokenize(["a one", "the digit 2", "a three", "four"],
                                           length=LENGTH))
    return images, tokens


@pytest.mark.parametrize("objective", c.OBJECTIVES)
def test_clip_model_loss_conforms(objective):
    model, batch = _clip(0), _batch()
    assert_loss_conforms(LossCase(
        name=f"clip_model_loss[{objective}]",
        loss=functools.partial(c.clip_model_loss, objective=objective), model=model,
        batch=batch, stochastic=False,  # the pairing is given: the key is unused
        bad_arguments=[(lambda: c.clip_model_loss(model, batch, None, objective="triplet"),
                        "objective"),
                       (lambda: c.clip_model_loss(model, (batch[0], batch[1][0]), None),
                        "tokens")],
    ))


def test_model_taking_functions_compile_once_and_match_the_embedding_layer():
    images, tokens = _batch()
    classes = jnp.asarray(captions.caption_table(("a {word}", "digit {digit}"), length=LENGTH))
    models = [_clip(i, hidden=7) for i in range(10)]  # a structure no other test compiles
    with count_compilations() as compiled:
        sims = [c.image_text_similarity(m, images, tokens) for m in models]
    assert compiled[0] == 1, compiled[0]
    assert len({float(jnp.sum(s)) for s in sims}) == 10
    # the model-taking layer is the embedding layer applied to the encoders' outputs
    @jax.jit
    def reference(m):
        u, v = m.encode_image(images), m.encode_text(tokens)[0]
        return c.zero_shot_logits(u, v), c.zero_shot_classify(u, c.encode_classes(m, classes))

    want_sims, want_pred = reference(models[0])
    assert sims[0].shape == (4, 4)
    assert jnp.allclose(sims[0], want_sims, rtol=1e-5, atol=1e-6)
    pred = c.zero_shot_predict(models[0], images, classes)
    assert pred.dtype == jnp.int32 and jnp.array_equal(pred, want_pred)
    with pytest.raises(ValueError, match="class_tokens"):
        c.zero_shot_predict(models[0], images, classes[0])
