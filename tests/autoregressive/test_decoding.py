"""Filters, sample_token and generate against the NumPy oracle, hand-built kept sets,
cached = uncached decoding, EOS handling, validation and extremes.

Kept sets are compared exactly (they are discrete); kept logit values to the float32
single-op tolerance (one subtraction and one division away from the float64 oracle).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import autoregressive as ar
from genjax.autoregressive import decoding as dec
from genjax.autoregressive import oracle
from genjax.autoregressive.decoding import generation
from genjax.testing import assert_close_to_oracle

NEG32 = float(np.finfo(np.float32).min)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TableModel:
    """A tiny model with the cached interface: logits of x_{t+1} = table[t % 2, x_t].

    Depends on the absolute position, so a wrong ``pos`` in the cached loop shows.
    """

    table: jax.Array  # (2, V, V)
    vocab_size: int = dataclasses.field(metadata=dict(static=True))
    max_len: int = dataclasses.field(metadata=dict(static=True))

    def __call__(self, tokens):
        par = jnp.arange(tokens.shape[1]) % 2  # (L,)
        return self.table[par[None, :], tokens]  # (B, L, V)

    def init_cache(self, batch_size, max_len=None, dtype=jnp.float32):
        return jnp.zeros((batch_size,), jnp.int32)  # tokens seen (unused by the logits)

    def decode(self, tokens, cache, pos):
        par = (pos + jnp.arange(tokens.shape[1])) % 2  # (S,)
        return self.table[par[None, :], tokens], cache + tokens.shape[1]

    def np_next_logits(self, seq):
        """NumPy twin: next-token logits given the whole sequence (L,)."""
        return np.asarray(self.table, np.float64)[(len(seq) - 1) % 2, seq[-1]]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class HistoryModel:
    """A cheap model with a real cache: logits of x_{t+1} = table[(x_0 + .. + x_t) % V].

    The cache holds the tokens by absolute position and ``decode`` reads positions
    ``<= pos + i`` only, the Transformer's causal-mask semantics: stale entries past the
    current position (after a speculative roll-back) are never seen.
    """

    table: jax.Array  # (V, V)
    vocab_size: int = dataclasses.field(metadata=dict(static=True))
    max_len: int = dataclasses.field(metadata=dict(static=True))

    def __call__(self, tokens):
        return self.table[jnp.cumsum(tokens, axis=1) % self.vocab_size]  # (B, L, V)

    def init_cache(self, batch_size, max_len=None, dtype=jnp.float32):
        return jnp.zeros((batch_size, max_len or self.max_len), jnp.int32)

    def decode(self, tokens, cache, pos):
        cache = jax.lax.dynamic_update_slice(cache, tokens, (jnp.zeros((), jnp.int32), pos))
        T = cache.shape[1]
        query = pos + jnp.arange(tokens.shape[1])  # (S,)
        seen = jnp.arange(T)[None, :] <= query[:, None]  # (S, T)
        h = jnp.sum(jnp.where(seen[None], cache[:, None, :], 0), axis=-1)  # (B, S)
        return self.table[h % self.vocab_size], cache


def table_model(seed=0, V=5, max_len=32, scale=1.5):
    table = scale * jax.random.normal(jax.random.key(seed), (2, V, V))
    return TableModel(table, V, max_len)


# ---------------------------------------------------------------------------------------
# Filters: hand-built kept sets
# ---------------------------------------------------------------------------------------


def kept(filtered):
    return [int(i) for i in np.flatnonzero(np.asarray(filtered) > NEG32)]


def test_top_p_hand_cases():
    eq8 = jnp.zeros((8,))  # probabilities exactly 1/8: every cumulative sum is exact
    assert kept(dec.top_p_filter(eq8, 3 / 8)) == [0, 1, 2]  # p equal to a cumulative sum
    assert kept(dec.top_p_filter(eq8, 3 / 8 + 1e-3)) == [0, 1, 2, 3]  # boundary token in
    assert kept(dec.top_p_filter(eq8, 1e-6)) == [0]  # never empty; tie -> lowest id
    assert kept(dec.top_p_filter(eq8, 1.0)) == list(range(8))
    # probs 0.4, 0.2, 0.2, 0.2 in shuffled order: ties at the boundary go to lower ids
    l = jnp.log(jnp.array([0.2, 0.4, 0.2, 0.2]))
    assert kept(dec.top_p_filter(l, 0.5)) == [0, 1]
    assert kept(dec.top_p_filter(l, 0.3)) == [1]
    assert kept(dec.top_p_filter(l, 0.7)) == [0, 1, 2]
    # top_p = 1 keeps tokens of vanishing probability too
    assert kept(dec.top_p_filter(jnp.array([0.0, -200.0, -1e4]), 1.0)) == [0, 1, 2]
    # the removed value is finfo.min, kept logits are untouched
    out = dec.top_p_filter(l, 0.5)
    assert float(out[2]) == NEG32 and float(out[1]) == pytest.approx(math.log(0.4))



def test_top_p_search_matches_oracle_at_vocabulary_512():
    """The threshold search (no sort) keeps exactly the oracle's nucleus at the decoding
    workload's V = 512: spread and sharp rows, integer logits (ties everywhere, nucleus
    boundaries inside ties), removed entries, several p."""
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(48, 512)) * rng.uniform(0.1, 6.0, size=(48, 1))
    logits[:16] = np.round(logits[:16])  # exact ties in every row
    logits[40:, ::3] = NEG32  # removed by an earlier filter
    logits = logits.astype(np.float32)
    for p in (0.05, 0.5, 0.9, 0.99):
        got = np.asarray(dec.top_p_filter(jnp.asarray(logits), p)) > NEG32
        want = np.stack([oracle.top_p_keep(row.astype(np.float64), p) for row in logits])
        np.testing.assert_array_equal(got, want, err_msg=f"p={p}")
        assert got.sum(axis=1).min() >= 1  # never empty

def test_top_k_hand_cases():
    l = jnp.array([1.0, 3.0, 3.0, 2.0, 3.0])
    assert kept(dec.top_k_filter(l, 1)) == [1]  # k = 1: the first of the tied maxima
    assert kept(dec.top_k_filter(l, 2)) == [1, 2]
    assert kept(dec.top_k_filter(l, 4)) == [1, 2, 3, 4]
    assert kept(dec.top_k_filter(l, 5)) == [0, 1, 2, 3, 4]  # k = V
    assert kept(dec.top_k_filter(l, 50)) == [0, 1, 2, 3, 4]


def test_min_p_and_temperature_hand_cases():
    l = jnp.log(jnp.array([0.5, 0.3, 0.15, 0.05]))
    assert kept(dec.min_p_filter(l, 0.3)) == [0, 1, 2]  # 0.15 >= 0.3 * 0.5
    assert kept(dec.min_p_filter(l, 0.0)) == [0, 1, 2, 3]
    assert kept(dec.min_p_filter(l, 1.0)) == [0]
    # temperature 0: only the (first) argmax
    assert kept(dec.temperature(jnp.array([1.0, 5.0, 5.0]), 0.0)) == [1]
    np.testing.assert_allclose(dec.temperature(jnp.array([1.0, 3.0]), 0.5), [-4.0, 0.0])


def test_filters_match_oracle_on_random_logits():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(64, 16)) * 2.0
    logits[:8, :4] = logits[:8, :1]  # exact ties in some rows
    cases = [dict(temperature=0.7), dict(temperature=1.0, top_k=3),
             dict(temperature=1.3, top_p=0.8), dict(temperature=0.9, min_p=0.1),
             dict(temperature=0.8, top_k=10, top_p=0.9, min_p=0.05), dict(temperature=0.0)]
    for opts in cases:
        got = np.asarray(dec.filter_logits(jnp.asarray(logits, jnp.float32), **opts))
        want = np.stack([oracle.filter_logits(row, **opts) for row in logits])
        np.testing.assert_array_equal(got > NEG32, want > oracle.NEG, err_msg=str(opts))
        keep = want > oracle.NEG
        assert_close_to_oracle(got[keep], want[keep], err_msg=str(opts))


def test_extreme_logits_stay_finite():
    l = jnp.array([[1e4, -1e4, 0.0, 1e4 - 1.0]])
    for t in (1.0, 1e-3, 1e-30):
        out = dec.filter_logits(l, temperature=t, top_p=0.9, top_k=3, min_p=0.01)
        assert bool(jnp.all(jnp.isfinite(out)))
        assert kept(out) == ([0] if t < 1.0 else [0, 3])
    tok = dec.sample_token(jax.random.key(0), l, temperature=1e-30, top_p=0.5)
    assert int(tok[0]) == 0
    assert int(dec.sample_token(jax.random.key(0), -l, temperature=0.0)[0]) == 1


def test_sample_token_greedy_and_oracle_shared_noise():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(32, 9))
    g = rng.gumbel(size=(32, 9))
    for opts in (dict(temperature=0.0), dict(temperature=0.8, top_p=0.7),
                 dict(temperature=1.0, top_k=4, min_p=0.1)):
        got = dec.sample_token_from_noise(jnp.asarray(logits, jnp.float32),
                                          jnp.asarray(g, jnp.float32), **opts)
        want = [oracle.sample_from_gumbel(g[i], logits[i], **opts) for i in range(32)]
        np.testing.assert_array_equal(np.asarray(got), want, err_msg=str(opts))
    greedy = dec.sample_token(jax.random.key(3), jnp.asarray(logits), temperature=0.0)
    np.testing.assert_array_equal(np.asarray(greedy), logits.argmax(-1))


def test_sampling_law_matches_oracle():
    """softmax(filtered logits) -- the law Gumbel-max draws from -- equals the oracle's;
    the sampler's draws are tested by chi-square in test_constrained / test_speculative."""
    logits = jnp.array([[2.0, 1.5, 1.0, 0.2, -0.5, -1.0], [0.0, 0.0, 3.0, -2.0, 1.0, 1.0]])
    opts = dict(temperature=0.8, top_k=5, top_p=0.9)
    got = np.asarray(jax.nn.softmax(dec.filter_logits(logits, **opts), axis=-1))
    want = np.stack([oracle.sampling_probs(np.asarray(r, np.float64), **opts)
                     for r in logits])
    assert (want[0, 4:] == 0).all()  # removed by top-k and top-p
    assert_close_to_oracle(got, want)


@pytest.mark.parametrize("bad, match", [
    (dict(temperature=-0.1), "temperature"), (dict(top_k=0), "top_k"),
    (dict(top_p=0.0), "top_p"), (dict(top_p=1.5), "top_p"), (dict(min_p=-0.1), "min_p"),
])
def test_sampling_options_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        dec.sample_token(jax.random.key(0), jnp.zeros((2, 3)), **bad)
    with pytest.raises(ValueError, match=match):
        dec.generate(jax.random.key(0), table_model(), jnp.zeros((1, 2), jnp.int32),
                     max_new_tokens=2, **bad)


def test_generate_rejects_bad_lengths():
    m = table_model(max_len=8)
    with pytest.raises(ValueError, match="prompt"):
        dec.generate(jax.random.key(0), m, jnp.zeros((1, 9), jnp.int32), max_new_tokens=1)
    with pytest.raises(ValueError, match="max_new_tokens"):
        dec.generate(jax.random.key(0), m, jnp.zeros((1, 4), jnp.int32), max_new_tokens=5)
    with pytest.raises(ValueError, match="max_new_tokens"):
        dec.generate(jax.random.key(0), m, jnp.zeros((1, 4), jnp.int32), max_new_tokens=0)
    with pytest.raises(ValueError, match="prompt"):
        dec.generate(jax.random.key(0), m, jnp.zeros((4,), jnp.int32), max_new_tokens=1)


# ---------------------------------------------------------------------------------------
# generate
# ---------------------------------------------------------------------------------------


def test_generate_matches_oracle_on_shared_noise():
    m = table_model(seed=2, V=6)
    B, N = 8, 7
    rng = np.random.default_rng(2)
    prompt = rng.integers(0, 6, size=(B, 3))
    g = rng.gumbel(size=(N, B, 6))
    opts = dict(temperature=0.9, top_p=0.85, min_p=0.02)
    got = dec.generate_from_noise(m, jnp.asarray(prompt), jnp.asarray(g), max_new_tokens=N,
                                  eos_id=5, **opts)
    want = oracle.generate(g, m.np_next_logits, prompt, N, eos_id=5, **opts)
    np.testing.assert_array_equal(np.asarray(got), want)
    assert (want == 5).any() and (want != 5).any()  # EOS both emitted and not


def test_cached_equals_uncached():
    """HistoryModel's cache is real (tokens by position, masked reads); the Transformer is
    held to the same equality in test_decoding_recipe, on the recipe's trained model.
    17 new tokens: the cached loop runs as two loops, the cache grown between them."""
    m = HistoryModel(1.5 * jax.random.normal(jax.random.key(5), (7, 7)), 7, 24)
    prompt = jax.random.randint(jax.random.key(1), (4, 5), 0, 7)
    assert generation._segment_ends(m, 4, 5, 17) == (9, 17)  # caches of 13, then 21 rows
    opts = dict(temperature=0.8, top_p=0.9, return_log_probs=True, max_new_tokens=17)
    a, la = dec.generate(jax.random.key(7), m, prompt, **opts)
    b, lb = dec.generate(jax.random.key(7), m, prompt, use_cache=False, **opts)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert_close_to_oracle(la, np.asarray(lb, np.float64))
    # the log-probs are the model's own: the first step against a full forward pass
    full = jax.jit(lambda m, x: jax.nn.log_softmax(m(x)[:, -2]))(
        m, jnp.concatenate([prompt, a[:, :1]], 1))
    want = np.take_along_axis(np.asarray(full), np.asarray(a[:, :1]), 1)[:, 0]
    assert_close_to_oracle(la[:, 0], want.astype(np.float64))
    assert bool(jnp.all(la < 0))


def test_generate_eos_pads_and_stops():
    m = table_model(seed=4, V=4)
    prompt = jnp.zeros((16, 1), jnp.int32)
    toks, lps = dec.generate(jax.random.key(1), m, prompt, max_new_tokens=10, eos_id=3,
                             pad_id=0, return_log_probs=True)
    toks, lps = np.asarray(toks), np.asarray(lps)
    for row, lp in zip(toks, lps, strict=True):
        hit = np.flatnonzero(row == 3)
        if hit.size:
            assert (row[hit[0] + 1:] == 0).all() and (lp[hit[0] + 1:] == 0).all()
            assert (lp[:hit[0] + 1] < 0).all()
    assert (toks == 3).any() and (toks[:, -1] == 0).any()


def test_generate_greedy_is_argmax_chain():
    m = table_model(seed=6, V=5)
    out = np.asarray(dec.generate(jax.random.key(0), m, jnp.array([[2]]), max_new_tokens=6,
                                  temperature=0.0))[0]
    seq = [2]
    for _ in range(6):
        seq.append(int(np.argmax(m.np_next_logits(np.asarray(seq)))))
    np.testing.assert_array_equal(out, seq[1:])


def test_exports():
    for name in ("temperature", "top_k_filter", "top_p_filter", "min_p_filter",
                 "sample_token", "generate", "beam_search", "speculative_verify",
                 "speculative_generate"):
        assert callable(getattr(ar.decoding, name))
    assert ar.constrained.from_regex is not None
