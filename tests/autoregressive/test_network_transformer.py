"""The causal transformer: cached decoding equals the full forward pass, causality by
Jacobian, exact normalisation by enumeration, extreme and bad inputs."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import autoregressive


def _rngs(seed):
    # initialisation keys of the "rbg" generator: its random draws compile ~30% faster on
    # CPU than threefry's, and the tests hold structure and oracles, not particular weights
    return nnx.Rngs(jax.random.key(seed, impl="rbg"))


V, MAX_LEN, DIM, HEADS, LAYERS = 5, 8, 8, 2, 2
POSITIONS = ("learned", "sinusoidal")


@pytest.fixture(scope="module")
def models():
    return {p: autoregressive.Transformer(V, MAX_LEN, DIM, HEADS, LAYERS, rngs=_rngs(3),
                                          positions=p) for p in POSITIONS}


_TRACES = []


def _decode_impl(model, tokens, cache, pos):
    _TRACES.append(tokens.shape)  # runs once per trace: counts compilations
    return model.decode(tokens, cache, pos)


_forward = jax.jit(lambda model, tokens: model(tokens))
_decode = jax.jit(_decode_impl)


def _tokens(shape, seed=0):
    # NumPy draws: no JAX programs to compile just to make inputs
    return np.random.default_rng(seed).integers(0, V, shape).astype(np.int32)


@pytest.mark.parametrize("positions", POSITIONS)
def test_cached_decoding_equals_full_forward(models, positions):
    model = models[positions]
    tokens = _tokens((3, MAX_LEN))
    full = _forward(model, tokens)  # (3, L, V)
    assert full.shape == (3, MAX_LEN, V)
    cache = model.init_cache(3)
    assert cache[0]["k"].shape == (3, HEADS, MAX_LEN, DIM // HEADS)  # head-major
    before = len(_TRACES)
    # prefill with a 3-token prompt, then one token at a time
    logits, cache = _decode(model, tokens[:, :3], cache, jnp.int32(0))
    rows = [logits]
    for pos in range(3, MAX_LEN):
        logits, cache = _decode(model, tokens[:, pos:pos + 1], cache, jnp.int32(pos))
        rows.append(logits)
    # one trace for the prompt shape and one for the single-token shape, whatever pos is
    assert len(_TRACES) - before <= 2
    # float32; the cached pass sums over T masked keys in another order: ~1e-7 abs seen
    np.testing.assert_allclose(jnp.concatenate(rows, axis=1), full, rtol=1e-5, atol=1e-5)
    # the logits depend on the tokens: not a constant function
    assert float(jnp.std(full[:, -1] - full[:, 0])) > 1e-3


@pytest.mark.parametrize("positions", POSITIONS)
def test_probabilities_of_all_sequences_sum_to_one(models, positions):
    model = models[positions]
    n = 3  # all V^3 = 125 continuations of a start token 0
    seqs = np.array(list(itertools.product(range(V), repeat=n)), np.int32)  # (125, 3)
    tokens = np.concatenate([np.zeros((len(seqs), 1), np.int32), seqs], axis=1)  # (125, 4)
    logp = jax.nn.log_softmax(_forward(model, tokens[:, :-1]), axis=-1)  # (125, 3, V)
    seq_logp = jnp.sum(jnp.take_along_axis(logp, tokens[:, 1:, None], axis=-1), axis=(1, 2))
    # a sum of 125 float32 probabilities: ~1e-7 each, 1e-5 in all
    np.testing.assert_allclose(float(jnp.sum(jnp.exp(seq_logp))), 1.0, rtol=1e-5)
    assert float(jnp.max(seq_logp)) > float(jnp.min(seq_logp)) + 1e-3  # not uniform


def test_transformer_is_causal_by_jacobian(models):
    model = models["learned"]
    h = np.random.default_rng(1).standard_normal((1, 6, DIM)).astype(np.float32)  # h_0
    jac = jax.jit(jax.jacrev(lambda m, h: m.logits_from_embeddings(h)[0], argnums=1))(model, h)
    dependence = np.abs(np.asarray(jac[:, :, 0])).sum(axis=(1, 3))  # (L out, L in)
    # logits at t score token t + 1 from h_0 .. h_t: zero for s > t, nonzero for s <= t
    np.testing.assert_array_equal(dependence > 0, np.tril(np.ones((6, 6), bool)))


def test_large_embeddings_stay_finite(models):
    model = jax.tree.map(lambda a: a, models["learned"])  # a copy to modify
    model.token_embed.embedding[...] = model.token_embed.embedding[...] * 1e4
    tokens = _tokens((3, MAX_LEN), seed=2)
    logits = _forward(model, tokens)
    assert bool(jnp.all(jnp.isfinite(logits)))
    cached, _ = _decode(model, tokens[:, :3], model.init_cache(3), jnp.int32(0))
    np.testing.assert_allclose(cached, logits[:, :3], rtol=1e-4, atol=1e-4)


def test_bad_arguments(models):
    model = models["learned"]
    with pytest.raises(ValueError, match="max_len"):
        model(np.zeros((1, MAX_LEN + 1), np.int32))
    with pytest.raises(ValueError, match="num_heads"):
        autoregressive.Transformer(V, MAX_LEN, 10, 3, 1, rngs=_rngs(0))
    for name, args in (("vocab_size", (0, 8, 8, 2, 1)), ("max_len", (5, -1, 8, 2, 1)),
                       ("num_layers", (5, 8, 8, 2, 0))):
        with pytest.raises(ValueError, match=name):
            autoregressive.Transformer(*args, rngs=_rngs(0))
    with pytest.raises(ValueError, match="positions"):
        autoregressive.Transformer(V, 8, 8, 2, 1, rngs=_rngs(0), positions="rotary")
    with pytest.raises(ValueError, match="max_len"):
        model.init_cache(2, MAX_LEN + 1)
    with pytest.raises(ValueError, match="batch_size"):
        model.init_cache(0)
    with pytest.raises(ValueError, match="cache length"):
        model.decode(np.zeros((1, 5), np.int32), model.init_cache(1, 4), 0)
    with pytest.raises(ValueError, match="tokens"):
        model(np.zeros((1, 3)))
