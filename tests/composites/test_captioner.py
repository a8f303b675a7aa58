"""The captioning VLM: prefix-LM mask and attention against the NumPy oracle, the projector,
the attention pattern by Jacobian, cached = uncached decoding with the visual prefix (greedy
and beam), the loss against a direct computation, the recipe on a tiny configuration, and
bad arguments."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import data, registry
from genjax.composites import captioner as cap
from genjax.composites import oracle_vision_language as oracle
from genjax.composites import vision_language_recipes as vl
from genjax.contrastive import captions
from genjax.nn.attention import MultiHeadAttention, prefix_lm_mask
from genjax.testing import BadInput, assert_handled

P, C, D = 4, 12, 16  # patches, feature size, width: tiny


@pytest.fixture(scope="module")
def model() -> cap.Captioner:
    # one block: the prefix-LM pattern of a stack is that of one block (the mask is
    # transitively closed), and every compile is shorter
    return jax.jit(lambda: cap.Captioner(C, P, dim=D, num_heads=2, num_layers=1,
                                         max_text_len=12, rngs=nnx.Rngs(0)))()


@pytest.fixture(scope="module")
def features() -> jax.Array:
    return jax.random.normal(jax.random.key(1), (3, P, C))


def test_prefix_lm_mask_matches_oracle():
    for L, p in ((6, 0), (6, 1), (6, 3), (5, 5)):
        np.testing.assert_array_equal(np.asarray(prefix_lm_mask(L, p)),
                                      oracle.prefix_lm_mask(L, p))
    # P = 0 is the causal mask; P = L lets everything see everything
    assert not bool(prefix_lm_mask(4, 0)[0, 1]) and bool(prefix_lm_mask(4, 4).all())
    with pytest.raises(ValueError, match="prefix_length"):
        prefix_lm_mask(4, 5)


def test_prefix_lm_attention_matches_oracle():
    L, p, H = 7, 3, 2
    mha = MultiHeadAttention(D, H, rngs=nnx.Rngs(3))
    x = np.random.default_rng(0).normal(size=(1, L, D)).astype(np.float32)
    got = mha(jnp.asarray(x), mask=prefix_lm_mask(L, p))[0]
    want = oracle.masked_self_attention(
        x[0], np.asarray(mha.query.kernel[...], np.float64), np.asarray(mha.query.bias[...]),
        np.asarray(mha.key_value.kernel[...], np.float64), np.asarray(mha.key_value.bias[...]),
        np.asarray(mha.out.kernel[...], np.float64), np.asarray(mha.out.bias[...]), H,
        oracle.prefix_lm_mask(L, p))
    # float32 against float64 through two matmuls and a softmax: ~1e-6 relative
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-5)
    # the mask matters: the causal attention differs on the prefix rows
    causal = mha(jnp.asarray(x), mask=prefix_lm_mask(L, 0))[0]
    assert float(jnp.abs(causal[:p - 1] - got[:p - 1]).max()) > 1e-4


def test_projector_matches_oracle(model, features):
    proj = model.projector
    w1, w2 = proj.layers[0], proj.layers[1]
    want = oracle.projector(np.asarray(features, np.float64),
                            np.asarray(w1.kernel[...]), np.asarray(w1.bias[...]),
                            np.asarray(w2.kernel[...]), np.asarray(w2.bias[...]))
    np.testing.assert_allclose(np.asarray(proj(features)), want, rtol=1e-4, atol=1e-5)
    # image tokens = projection + positions 0 .. P-1
    pos = np.asarray(model.lm.position_embedding(0, P))
    np.testing.assert_allclose(np.asarray(model.image_tokens(features)), want + pos[None],
                               rtol=1e-4, atol=1e-5)


def test_attention_pattern_by_jacobian(model):
    L = 5
    h = jax.random.normal(jax.random.key(2), (1, P + L, D))
    jac = jax.jit(jax.jacfwd(lambda e: model.logits_from_embeddings(e)[0]))(h)  # (P+L,V,1,P+L,D)
    depends = np.asarray(jnp.abs(jac).sum(axis=(1, 2, 4)) > 0)  # [i, j]: out i on input j
    # exactly the prefix-LM pattern: no image token on text, no text token on later text;
    # image tokens see each other both ways, text sees every image token and earlier text
    np.testing.assert_array_equal(depends, oracle.prefix_lm_mask(P + L, P))


@jax.jit
def _cached_and_uncached(model, features, tokens):
    lm = cap.VisualPrefixLM(model, model.image_tokens(features))
    full = lm(tokens)  # (3, 12, V)
    cache = lm.init_cache(3, 12)
    first, cache = lm.decode(tokens[:, :5], cache, 0)  # prefill 5 text tokens
    step, _ = lm.decode(tokens[:, 5:6], cache, 5)  # one token at text position 5
    other = cap.VisualPrefixLM(model, model.image_tokens(features[::-1]))(tokens)
    return full, first, step, other, model(features, tokens)


def test_decode_rows_equal_uncached_forward(model, features):
    tokens = jnp.asarray(captions.tokenize(["a one", "two", "digit 3"], length=12))
    full, first, step, other, direct = _cached_and_uncached(model, features, tokens)
    np.testing.assert_allclose(np.asarray(full), np.asarray(direct), atol=1e-6)
    # float32, the same operations in another order (cache vs one pass): ~1e-6
    np.testing.assert_allclose(np.asarray(first), np.asarray(full[:, :5]), atol=2e-5)
    np.testing.assert_allclose(np.asarray(step[:, 0]), np.asarray(full[:, 5]), atol=2e-5)
    # the prefix is used: other images change the text logits
    assert float(jnp.abs(other[0] - full[0]).max()) > 1e-3


def test_greedy_and_beam_cached_equal_uncached(model, features):
    kw = dict(max_new_tokens=4)
    cached = cap.greedy_captions(model, features, **kw)
    uncached = cap.greedy_captions(model, features, use_cache=False, **kw)
    np.testing.assert_array_equal(np.asarray(cached), np.asarray(uncached))
    assert cached.shape == (3, 4)
    # greedy = argmax of the uncached logits, step by step
    # greedy = argmax of the uncached logits at the first step
    lm = cap.VisualPrefixLM(model, model.image_tokens(features))
    first = jnp.argmax(lm(jnp.full((3, 1), captions.BOS, jnp.int32))[:, -1], -1)
    np.testing.assert_array_equal(np.asarray(cached[:, 0]), np.asarray(first))
    seqs, scores = cap.beam_captions(model, features, num_beams=3, **kw)
    seqs_u, scores_u = cap.beam_captions(model, features, num_beams=3, use_cache=False, **kw)
    np.testing.assert_array_equal(np.asarray(seqs), np.asarray(seqs_u))
    np.testing.assert_allclose(np.asarray(scores), np.asarray(scores_u), rtol=1e-5, atol=1e-5)
    assert seqs.shape == (3, 3, 4) and bool(jnp.all(scores[:, :-1] >= scores[:, 1:]))


def test_loss_matches_direct_computation(model, features):
    tokens = jnp.asarray(captions.tokenize(["a one", "two", "digit 3"], length=12))
    (loss, metrics), grads = jax.value_and_grad(cap.captioning_loss, has_aux=True)(
        model, (features, tokens))
    logits = np.asarray(jax.jit(lambda m: m(features, tokens[:, :-1]))(model), np.float64)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    targets = np.asarray(tokens[:, 1:])
    nll = [-logp[b, t, targets[b, t]] for b in range(3) for t in range(11)
           if targets[b, t] != captions.PAD]
    np.testing.assert_allclose(float(loss), np.mean(nll), rtol=1e-5)
    assert 0.0 <= float(metrics["token_accuracy"]) <= 1.0
    g = jnp.abs(grads.projector.layers[0].kernel[...]).max()
    assert np.isfinite(float(g)) and float(g) > 0  # the loss reaches the projector


def test_caption_scores():
    assert vl.named_digit("a handwritten seven") == 7 and vl.named_digit("the digit 4") == 4
    assert vl.named_digit("a drawing of a") is None
    s = vl.caption_scores(["a handwritten seven", "the digit 7", "a sevn", "the digit 3"],
                          np.array([7, 7, 7, 7]))
    assert s == {"exact_caption_accuracy": 0.5, "digit_word_accuracy": 0.5}


@pytest.mark.slow
def test_captioner_recipe_tiny(tmp_path, monkeypatch):
    monkeypatch.setattr(vl, "CAP_DIM", 16)
    monkeypatch.setattr(vl, "CAP_LAYERS", 1)
    monkeypatch.setattr(vl, "CAP_BEAMS", 2)
    monkeypatch.setattr(vl, "REPORT_IMAGES", 4)
    recipe = registry.get("captioner")
    assert recipe.family == "composites" and recipe.sample_options == ("sampler",)
    train_data = tuple(a[:32] for a in data.load_with_labels("digits", "train", 0))
    test_data = tuple(a[:4] for a in data.load_with_labels("digits", "test", 0))
    # the loss forward only (the trainer's step is the shared trainer's, tested there): one
    # compile of the whole model's gradient would double this test's time
    params = recipe.init(jax.random.key(0), train_data)
    batch = tuple(jnp.asarray(a[:16]) for a in train_data)
    loss, metrics = jax.jit(recipe.loss)(params, batch, jax.random.key(1))
    assert np.isfinite(float(loss)) and float(metrics["caption_loss"]) > 0
    figures = recipe.report(jax.random.key(1), params, train_data, test_data, tmp_path)
    for k in ("exact_caption_accuracy_greedy", "digit_word_accuracy_beam"):
        assert 0.0 <= figures[k] <= 1.0
    assert (tmp_path / "samples.png").stat().st_size > 0
    texts = recipe.sample(jax.random.key(2), params, 4, sampler="beam")  # report's shapes
    assert len(texts) == 4 and texts[0].startswith("label ")
    with pytest.raises(ValueError, match="sampler"):
        recipe.sample(jax.random.key(2), params, 4, sampler="nucleus")


def _cases() -> list[BadInput]:
    m = cap.Captioner(C, P, dim=D, num_heads=2, num_layers=1, max_text_len=8, rngs=nnx.Rngs(0))
    f = jnp.zeros((2, P, C))
    tok = jnp.asarray(captions.tokenize(["a one", "two"], length=8))
    return [
        BadInput("captioner.Captioner: projector 'conv'",
                 lambda: cap.Captioner(C, P, projector="conv", rngs=nnx.Rngs(0)), "projector"),
        BadInput("captioner.Captioner: num_patches 0",
                 lambda: cap.Captioner(C, 0, rngs=nnx.Rngs(0)), "num_patches"),
        BadInput("captioner.captioning_loss: features of the wrong patch count",
                 lambda: cap.captioning_loss(m, (jnp.zeros((2, P + 1, C)), tok)), "features"),
        BadInput("captioner.captioning_loss: one token column",
                 lambda: cap.captioning_loss(m, (f, tok[:, :1])), "tokens"),
        BadInput("captioner.captioning_loss: token id out of the vocabulary",
                 lambda: cap.captioning_loss(m, (f, tok.at[0, 1].set(99))), "tokens"),
        BadInput("captioner.greedy_captions: max_new_tokens 0",
                 lambda: cap.greedy_captions(m, f, max_new_tokens=0), "max_new_tokens"),
        BadInput("captioner.greedy_captions: max_new_tokens past the context",
                 lambda: cap.greedy_captions(m, f, max_new_tokens=8), "max_new_tokens"),
        BadInput("captioner.greedy_captions: negative temperature",
                 lambda: cap.greedy_captions(m, f, temperature=-1.0), "temperature"),
        BadInput("captioner.greedy_captions: sampling without a key",
                 lambda: cap.greedy_captions(m, f, temperature=1.0), "key"),
        BadInput("captioner.beam_captions: num_beams 0",
                 lambda: cap.beam_captions(m, f, num_beams=0, max_new_tokens=2), "num_beams"),
        BadInput("captioner.patch_features: images of the wrong size",
                 lambda: cap.patch_features(
                     vl.clip_recipes.init_clip(jax.random.key(0)).image_encoder,
                     jnp.zeros((1, 6, 6, 1))), "images"),
        BadInput("attention.prefix_lm_mask: prefix longer than the sequence",
                 lambda: prefix_lm_mask(3, 4), "prefix_length"),
        BadInput("captioner.beam_captions: an extreme (all-zero) image is captioned finitely",
                 lambda: cap.beam_captions(m, f, num_beams=2, max_new_tokens=3)[1],
                 kind="extreme", check=lambda s: bool(np.all(np.isfinite(np.asarray(s))))),
    ]


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_inputs(case):
    assert_handled(case)

