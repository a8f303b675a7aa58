"""Bad and extreme inputs to every public function of the contrastive family (issue 16).

Finding 7 for the CLIP model: caption token ids are range-checked by its text encoder
(``genjax.nn.CharTextEncoder``, the vocabulary known) while they are concrete, and the
model-level entry points check them before their compiled programs run.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import contrastive as con
from genjax.contrastive import captions
from genjax.testing import BadInput, assert_handled

KEY = jax.random.key(0)
U = jax.random.normal(jax.random.key(1), (3, 4))
W = jax.random.normal(jax.random.key(2), (3, 4))
NAN_U = U.at[0, 0].set(jnp.nan)
CLIP = con.CLIP(embed_dim=4, image_widths=(8,), image_hidden=8, text_width=8, text_depth=1,
                num_heads=2, rngs=nnx.Rngs(0))
IMAGES = jnp.zeros((2, 8, 8, 1))
TOKENS = jnp.asarray(captions.tokenize(["the digit one", "a two"]))
BAD_TOKENS = TOKENS.at[0, 3].set(captions.VOCAB_SIZE + 5)
TABLE = jnp.asarray(captions.caption_table(("the digit {word}",)))


def _case(name, call, argument="", kind="reject", check=None):
    return BadInput(name, call, argument, kind, check)


CASES = [
    # --- losses -------------------------------------------------------------------------
    _case("loss.clip_loss: text_emb batch differs", lambda: con.clip_loss(U, W[:2], 10.0),
          "text_emb"),
    _case("loss.clip_loss: image_emb 1-D", lambda: con.clip_loss(U[0], W, 10.0), "image_emb"),
    _case("loss.clip_loss: logit_scale 0", lambda: con.clip_loss(U, W, 0.0), "logit_scale"),
    _case("loss.clip_loss: logit_scale NaN", lambda: con.clip_loss(U, W, jnp.nan),
          "logit_scale"),
    _case("loss.clip_loss: image_emb with NaN", lambda: con.clip_loss(NAN_U, W, 10.0),
          "image_emb"),
    _case("loss.clip_loss_terms: text_emb dimension differs",
          lambda: con.clip_loss_terms(U, W[:, :3], 10.0), "text_emb"),
    _case("loss.clip_logits: logit_scale a vector",
          lambda: con.clip_logits(U, W, jnp.ones(2)), "logit_scale"),
    _case("loss.sigmoid_loss: logit_bias a vector",
          lambda: con.sigmoid_loss(U, W, 10.0, jnp.zeros(2)), "logit_bias"),
    _case("loss.sigmoid_loss: logit_bias NaN", lambda: con.sigmoid_loss(U, W, 10.0, jnp.nan),
          "logit_bias"),
    _case("loss.sigmoid_loss: text_emb with NaN",
          lambda: con.sigmoid_loss(U, NAN_U, 10.0, -10.0), "text_emb"),
    _case("loss.clipped_logit_scale: max_logit_scale 0",
          lambda: con.clipped_logit_scale(1.0, max_logit_scale=0.0), "max_logit_scale"),
    _case("loss.clipped_logit_scale: log_logit_scale NaN",
          lambda: con.clipped_logit_scale(jnp.nan), "log_logit_scale"),
    _case("loss.l2_normalize: axis out of range", lambda: con.l2_normalize(U, axis=3), "axis"),
    _case("loss.sharded_clip_loss: unknown axis_name",
          lambda: con.sharded_clip_loss(U, W, 10.0, mesh=jax.make_mesh((1,), ("data",)),
                                        axis_name="batch"), "axis_name"),
    # --- zero-shot ----------------------------------------------------------------------
    _case("zero_shot.format_prompts: template without a slot",
          lambda: con.format_prompts(["one"], ["a digit"]), "templates"),
    _case("zero_shot.format_prompts: no classes", lambda: con.format_prompts([], ["{}"]),
          "class_names"),
    _case("zero_shot.ensemble_class_embeddings: 1-D",
          lambda: con.ensemble_class_embeddings(jnp.ones(3)), "class_text_emb"),
    _case("zero_shot.zero_shot_logits: image_emb dimension differs",
          lambda: con.zero_shot_logits(U[:, :3], W), "image_emb"),
    _case("zero_shot.zero_shot_logits: logit_scale < 0",
          lambda: con.zero_shot_logits(U, W, -1.0), "logit_scale"),
    _case("zero_shot.zero_shot_classify: image_emb with NaN",
          lambda: con.zero_shot_classify(NAN_U, W), "image_emb"),
    _case("zero_shot.zero_shot_classify: class_text_emb with NaN",
          lambda: con.zero_shot_classify(U, NAN_U), "class_text_emb"),
    _case("zero_shot.class_text_embeddings: no prompts",
          lambda: con.class_text_embeddings(lambda s: jnp.ones((len(s), 4)), []), "prompts"),
    _case("zero_shot.encode_classes: class_tokens 2-D",
          lambda: con.encode_classes(CLIP, TOKENS), "class_tokens"),
    _case("zero_shot.encode_classes: token id >= vocabulary (finding 7)",
          lambda: con.encode_classes(CLIP, BAD_TOKENS[None]), "tokens"),
    _case("zero_shot.zero_shot_predict: token id >= vocabulary (finding 7)",
          lambda: con.zero_shot_predict(CLIP, IMAGES, BAD_TOKENS[None]), "class_tokens"),
    _case("zero_shot.zero_shot_predict: images of the wrong size",
          lambda: con.zero_shot_predict(CLIP, jnp.zeros((2, 6, 6, 1)), TABLE), "images"),
    _case("zero_shot.image_text_similarity: token id >= vocabulary (finding 7)",
          lambda: con.image_text_similarity(CLIP, IMAGES, BAD_TOKENS), "tokens"),
    _case("zero_shot.image_text_similarity: tokens 3-D",
          lambda: con.image_text_similarity(CLIP, IMAGES, TOKENS[None]), "tokens"),
    # --- the model ----------------------------------------------------------------------
    _case("network.clip_model_loss: unknown objective",
          lambda: con.clip_model_loss(CLIP, (IMAGES, TOKENS), objective="triplet"),
          "objective"),
    _case("network.clip_model_loss: token id >= vocabulary (finding 7)",
          lambda: con.clip_model_loss(CLIP, (IMAGES, BAD_TOKENS)), "tokens"),
    _case("network.clip_model_loss: a caption without <eos>",
          lambda: con.clip_model_loss(CLIP, (IMAGES, jnp.full_like(TOKENS, 5))), "tokens"),
    _case("network.clip_model_loss: images and tokens batch differ",
          lambda: con.clip_model_loss(CLIP, (IMAGES, TOKENS[:1])), "tokens"),
    _case("network.clip_model_loss: images with NaN",
          lambda: con.clip_model_loss(CLIP, (IMAGES.at[0].set(jnp.nan), TOKENS)), "images"),
    # --- captions -----------------------------------------------------------------------
    _case("captions.caption: digit 10", lambda: captions.caption(10, "the digit {word}"), "digit"),
    _case("captions.tokenize: unknown character", lambda: captions.tokenize("digit #1"), "text"),
    _case("captions.tokenize: too long for length",
          lambda: captions.tokenize("the digit one", length=4), "text"),
    _case("captions.tokenize: length 1", lambda: captions.tokenize("a", length=1), "length"),
    _case("captions.decode: id >= vocabulary (finding 7)",
          lambda: captions.decode([1, captions.VOCAB_SIZE + 1, 2]), "ids"),
    _case("captions.empty_caption: length 1", lambda: captions.empty_caption(1), "length"),
    _case("captions.caption_table: no templates", lambda: captions.caption_table(()),
          "templates"),
    _case("captions.sample_captions: label 10",
          lambda: captions.sample_captions(KEY, jnp.array([10]), TABLE), "labels"),
    _case("captions.sample_captions: negative label",
          lambda: captions.sample_captions(KEY, jnp.array([-1]), TABLE), "labels"),
    _case("captions.sample_captions: float labels",
          lambda: captions.sample_captions(KEY, jnp.array([1.0]), TABLE), "labels"),
    _case("captions.eos_position: a caption without <eos>",
          lambda: captions.eos_position(jnp.full((1, 4), 5)), "tokens"),
    # --- valid extremes -----------------------------------------------------------------
    _case("loss.clip_loss: embeddings of scale 1e30 (normalised)",
          lambda: con.clip_loss(1e30 * U, W, 100.0), kind="extreme"),
    _case("loss.l2_normalize: the zero vector maps to 0",
          lambda: con.l2_normalize(jnp.zeros((1, 3))), kind="extreme",
          check=lambda y: np.array_equal(np.asarray(y), np.zeros((1, 3)))),
    _case("loss.sigmoid_loss: logit_scale 100, logit_bias -1e4",
          lambda: con.sigmoid_loss(U, W, 100.0, -1e4), kind="extreme"),
    _case("network.clip_model_loss: siglip objective on the empty captions",
          lambda: con.clip_model_loss(CLIP, (IMAGES, jnp.asarray(
              np.stack([captions.empty_caption()] * 2))), objective="siglip"), kind="extreme"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_handled(case):
    assert_handled(case)
