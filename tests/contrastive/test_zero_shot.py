"""Zero-shot classification (oracle, orthonormal classes, ensembling) and the captions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import contrastive as c
from genjax.contrastive import captions, oracle
from genjax.testing import assert_close_to_oracle

_jit_logits = jax.jit(c.zero_shot_logits)
_jit_classify = jax.jit(c.zero_shot_classify)


@pytest.mark.parametrize("jit", [False, True])
def test_zero_shot_matches_oracle_with_ensembling(jit):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(32, 6)).astype(np.float32)
    classes = rng.normal(size=(5, 3, 6)).astype(np.float32)  # 5 classes x 3 templates
    logits = (_jit_logits if jit else c.zero_shot_logits)(images, classes, 2.0)
    # One evaluation in float32 against float64: single_op tolerance.
    assert_close_to_oracle(logits, oracle.zero_shot_logits(images, classes, 2.0))
    pred = (_jit_classify if jit else c.zero_shot_classify)(images, classes)
    np.testing.assert_array_equal(pred, oracle.zero_shot_classify(images, classes))
    assert pred.dtype == jnp.int32 and len(set(np.asarray(pred).tolist())) > 1


def test_ensemble_is_the_normalised_mean_of_unit_templates():
    # Templates of very different norms: each must count equally after normalisation.
    t = np.array([[[10.0, 0.0], [0.0, 0.1]]])  # one class, two templates
    w = c.ensemble_class_embeddings(t)
    np.testing.assert_allclose(w, [[2**-0.5, 2**-0.5]], rtol=1e-6)
    # A single template (K, D) is just normalised.
    np.testing.assert_allclose(c.ensemble_class_embeddings(np.array([[3.0, 4.0]])), [[0.6, 0.8]])


def test_orthonormal_classes_classify_perfectly():
    k, d = 8, 8
    rng = np.random.default_rng(1)
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0].T[:k]  # (K, D) orthonormal rows
    labels = rng.integers(0, k, size=64)
    # Each image: its class vector at a random positive scale plus a smaller off-class part.
    images = basis[labels] * rng.uniform(0.5, 50.0, size=(64, 1))
    images = images + 0.3 * np.abs(images).max(1, keepdims=True) * rng.uniform(
        -1, 1, size=(64, k)
    ) @ basis / k
    pred = _jit_classify(images.astype(np.float32), basis.astype(np.float32))
    np.testing.assert_array_equal(pred, labels)
    # Templates that are noisy copies of the class vector: ensembling still classifies all.
    templates = basis[:, None, :] + 0.2 * rng.normal(size=(k, 4, d))
    np.testing.assert_array_equal(_jit_classify(images, templates), labels)


def test_prompt_helpers_and_bad_input():
    prompts = c.format_prompts(["cat", "dog"], ["a {}", "the {} here"])
    assert prompts == [["a cat", "the cat here"], ["a dog", "the dog here"]]
    seen = []

    def encode(texts):
        seen.extend(texts)
        return jnp.asarray([[len(t), 1.0] for t in texts])

    emb = c.class_text_embeddings(encode, prompts)
    assert emb.shape == (2, 2, 2) and seen == ["a cat", "the cat here", "a dog", "the dog here"]
    np.testing.assert_allclose(emb[1, 1], [12.0, 1.0])
    with pytest.raises(ValueError, match="prompts"):
        c.class_text_embeddings(encode, [["a cat", ""], ["a dog", "b"]])
    with pytest.raises(ValueError, match="prompts"):
        c.class_text_embeddings(encode, [["a cat"], ["a dog", "b"]])
    with pytest.raises(ValueError, match="templates"):
        c.format_prompts(["cat"], ["no slot"])
    with pytest.raises(ValueError, match="class_names"):
        c.format_prompts(["  "], ["a {}"])
    with pytest.raises(ValueError, match="image_emb"):
        c.zero_shot_classify(np.ones((3, 4)), np.ones((2, 5)))
    with pytest.raises(ValueError, match="logit_scale"):
        c.zero_shot_logits(np.ones((3, 4)), np.ones((2, 4)), 0.0)


def test_tokenizer_round_trip_and_errors():
    ids = captions.tokenize("A handwritten Seven ")
    assert ids.shape == (captions.MAX_LENGTH,) and ids.dtype == np.int32
    assert ids[0] == captions.BOS and captions.decode(ids) == "a handwritten seven"
    assert int(captions.eos_position(jnp.asarray(ids))) == 1 + len("a handwritten seven")
    np.testing.assert_array_equal(captions.tokenize("a two")[:7], [1, 4, 3, 23, 26, 18, 2])
    assert captions.decode(captions.empty_caption()) == ""
    assert int(captions.eos_position(jnp.asarray(captions.empty_caption()))) == 1
    for bad, match in (("", "non-empty"), ("   ", "non-empty"), ("seven!", "outside"),
                       ("x" * 40, "at most")):
        with pytest.raises(ValueError, match=f"text.*{match}"):
            captions.tokenize(bad)
    with pytest.raises(ValueError, match="digit"):
        captions.caption(10, "{word}")


def test_caption_table_and_sampling():
    table = captions.caption_table()
    assert table.shape == (10, len(captions.TEMPLATES), captions.MAX_LENGTH)
    assert captions.decode(table[7, 0]) == "a handwritten seven"
    assert captions.decode(table[7, 1]) == "the digit 7"
    # Every template of every digit (seen and unseen) fits the length and is distinct.
    both = captions.caption_table(captions.TEMPLATES + captions.UNSEEN_TEMPLATES)
    texts = {captions.decode(row) for row in both.reshape(-1, captions.MAX_LENGTH)}
    assert len(texts) == both.shape[0] * both.shape[1]
    labels = jnp.asarray([3, 3, 3, 3, 9, 0, 5, 5])
    tokens = captions.sample_captions(jax.random.key(0), labels, jnp.asarray(table))
    words = [captions.decode(t) for t in np.asarray(tokens)]
    for lab, w in zip(np.asarray(labels), words, strict=True):
        assert w in {captions.caption(int(lab), t) for t in captions.TEMPLATES}
    assert len(set(words[:4])) > 1  # templates are drawn at random
