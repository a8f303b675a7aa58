"""n-gram models against the NumPy oracle, hand-worked numbers and exact invariants."""

from __future__ import annotations

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.counting import bit_ranks, ngram, ngram_orders, oracle
from genjax.testing import assert_close_to_oracle, chi_square_test

V = 4  # small enough to enumerate every context
N_ORDER = 3
SMOOTHERS = [("add_k", {"alpha": 0.5}), ("kneser_ney", {"discount": 0.6})]


@pytest.fixture(scope="module")
def corpus() -> np.ndarray:
    # skewed, so that counts differ between grams; token 3 is rare, so that in-vocabulary
    # contexts such as (3, 3) are never seen
    rng = np.random.default_rng(0)
    head = rng.choice(V - 1, size=116, p=[0.5, 0.3, 0.2])
    return np.concatenate([head, [3, 0, 1, 3]]).astype(np.int32)


def contexts(length: int, ids) -> np.ndarray:
    """Every context of a given length over ``ids``: (len(ids)**length, length) int32."""
    grams = list(itertools.product(ids, repeat=length))
    return np.array(grams, np.int32).reshape(len(grams), length)


ALL_IDS = [-3, -1, *range(V), V, V + 7]  # the vocabulary plus out-of-vocabulary ids


# one compiled program per (smoothing, context shape), shared by the tests below
_batched_probs = jax.jit(jax.vmap(ngram.next_token_probs, in_axes=(None, 0)))


def batched_probs(model, ctx: np.ndarray) -> np.ndarray:
    """next_token_probs for a batch of contexts: (B, m) -> (B, V)."""
    return np.asarray(_batched_probs(model, jnp.asarray(ctx)))


# ---------------------------------------------------------------------------------------
# counts
# ---------------------------------------------------------------------------------------


def dense_budgets(corpus) -> dict[str, int]:
    """Budgets that force each way of counting the corpus's top order (see _counting_plan).

    Orders 1 and 2 are counted by their codes in all but "sort"; order 3's codes need
    V**3 = 64 entries, so a budget below it decides at run time: the largest table tried,
    ``V * d`` entries, holds every trigram id when d exceeds the largest rank of a bigram
    that starts a trigram, and one row less sends order 3 to the sort.
    """
    bigrams = sorted({tuple(corpus[i : i + 2]) for i in range(len(corpus) - 1)})
    prefixes = {tuple(corpus[i : i + 2]) for i in range(len(corpus) - 2)}
    d = max(bigrams.index(p) for p in prefixes) + 1
    assert 4 < d and V * d < 64  # so "cond-*" leave orders 1, 2 static and decide order 3
    return {"sort": 0, "dense": ngram.DENSE_BUDGET, "cond-dense": V * d, "cond-sort": V * d - 1}


PATHS = ["sort", "dense", "cond-dense", "cond-sort"]


def test_counting_paths_are_chosen_as_documented(corpus):
    budgets = dense_budgets(corpus)
    n_tokens = len(corpus)
    plan = {
        name: ngram_orders.counting_plan(N_ORDER, n_tokens, V, b) for name, b in budgets.items()
    }
    assert plan["sort"] == [("sort", 0)] * 3
    assert plan["dense"] == [("codes", 4), ("codes", 16), ("codes", 64)]
    assert plan["cond-dense"][:2] == plan["cond-sort"][:2] == [("codes", 4), ("codes", 16)]
    assert plan["cond-dense"][2] == ("cond", budgets["cond-dense"])
    assert plan["cond-sort"][2] == ("cond", budgets["cond-sort"] - V + 1)
    # V = 97: 10**6 tokens count the 3-grams' codes (orders 1-2 from them) and decide 4-5
    # in tables of up to 2**22 (// V); 20,000 tokens hold the tables to 8 entries per
    # position from order 3 on
    for num_tokens, want in [
        (10**6, [("codes", 97), ("codes", 97**2), ("codes", 97**3)]
         + [("cond", 2**22 // 97 * 97)] * 2),
        (20_000, [("codes", 97), ("codes", 97**2)]
         + [("cond", 8 * (20_000 - k + 1) // 97 * 97) for k in (3, 4, 5)]),
    ]:  # fmt: skip
        assert ngram_orders.counting_plan(5, num_tokens, 97, ngram.DENSE_BUDGET) == want
    # the run-time choice among table sizes: increasing multiples of V up to the budget
    sizes = ngram_orders.table_sizes(2**22 // 97 * 97, 97)
    assert sizes[-1] == 2**22 // 97 * 97 and sizes == sorted(set(sizes))
    assert all(s % 97 == 0 for s in sizes) and sizes[0] <= 2**20


@pytest.mark.parametrize("path", PATHS)
def test_counting_paths_give_identical_tables(corpus, path):
    reference = ngram.fit(corpus, n=N_ORDER, vocab_size=V, _dense_budget=0)
    model = ngram.fit(corpus, n=N_ORDER, vocab_size=V, _dense_budget=dense_budgets(corpus)[path])
    for field in dataclasses.fields(ngram.NGramModel):
        got, want = getattr(model, field.name), getattr(reference, field.name)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"{path}: {field.name}")


@pytest.mark.parametrize("vocab_size,num_tokens", [(4, 40), (70, 300)])
def test_dense_ranks_by_bits_match_sort_and_oracle(vocab_size, num_tokens, monkeypatch):
    """Dense tables larger than the corpus rank ids by row bitmasks (V = 70: three words).

    V = 70 also walks its ~290 distinct bigrams and trigrams in chunks of 128 (the only
    program with these shapes, so traced with the patched chunk): the last chunk starts
    inside the second (clamped to cap - 128), which must neither zero nor double-count the
    overlap.
    """
    monkeypatch.setattr(bit_ranks, "_CHUNK", 128)
    tokens = np.random.default_rng(5).integers(0, vocab_size, num_tokens).astype(np.int32)
    # order 3 is counted in a dense table larger than its positions (V = 4: by its codes,
    # V = 70: by rank(u) V + w)
    how, table_size = ngram_orders.counting_plan(N_ORDER, num_tokens, vocab_size,
                                                  ngram.DENSE_BUDGET)[2]  # fmt: skip
    assert how == ("codes" if vocab_size == 4 else "dense") and table_size > num_tokens - 2
    model = ngram.fit(tokens, n=N_ORDER, vocab_size=vocab_size)
    reference = ngram.fit(tokens, n=N_ORDER, vocab_size=vocab_size, _dense_budget=0)
    for a, b in zip(jax.tree.leaves(model), jax.tree.leaves(reference), strict=True):
        np.testing.assert_array_equal(a, b)
    expected = oracle.count_ngrams(tokens, N_ORDER)
    expected_cont = oracle.continuation_counts(expected)
    if vocab_size == 70:
        assert min(len(expected[1]), len(expected[2])) > 2 * 128  # three chunks, overlapping
    unseen = np.random.default_rng(6).integers(0, vocab_size, (50, N_ORDER)).astype(np.int32)
    for k in range(1, N_ORDER + 1):
        grams = np.concatenate([np.array(sorted(expected[k - 1]), np.int32), unseen[:, :k]])
        want = np.array([expected[k - 1].get(tuple(g), 0) for g in grams])
        np.testing.assert_array_equal(ngram.counts(model, grams), want)
        if k < N_ORDER:
            want_cont = np.array([expected_cont[k - 1].get(tuple(g), 0) for g in grams])
            np.testing.assert_array_equal(ngram.continuation_counts(model, grams), want_cont)


@pytest.mark.parametrize("path", PATHS)
def test_counts_match_oracle_exactly(corpus, path):
    budget = dense_budgets(corpus)[path]
    model = ngram.fit(corpus, n=N_ORDER, vocab_size=V, _dense_budget=budget)
    jitted = jax.jit(lambda t: ngram.fit(t, n=N_ORDER, vocab_size=V, _dense_budget=budget))(corpus)
    expected = oracle.count_ngrams(corpus, N_ORDER)
    expected_cont = oracle.continuation_counts(expected)
    for k in range(1, N_ORDER + 1):
        grams = contexts(k, [-1, *range(V), V])  # OOV grams have count 0
        want = np.array([expected[k - 1].get(tuple(g), 0) for g in grams])
        assert want.sum() == len(corpus) - k + 1  # the oracle saw every k-gram
        np.testing.assert_array_equal(ngram.counts(model, grams), want)
        np.testing.assert_array_equal(ngram.counts(jitted, grams), want)
        if k < N_ORDER:
            want_cont = np.array([expected_cont[k - 1].get(tuple(g), 0) for g in grams])
            assert want_cont.max() > 1  # some gram has several distinct predecessors
            np.testing.assert_array_equal(ngram.continuation_counts(model, grams), want_cont)


def test_kneser_ney_hand_worked_toy_corpus():
    # corpus a b a c a b (a, b, c = 0, 1, 2): bigrams ab x2, ba, ac, ca.
    # Continuation counts N1+(. w): a follows b and c -> 2; b follows a -> 1; c follows a -> 1.
    tokens = np.array([0, 1, 0, 2, 0, 1], np.int32)
    model = ngram.fit(tokens, n=2, vocab_size=3, smoothing="kneser_ney", discount=0.75)
    np.testing.assert_array_equal(ngram.continuation_counts(model, [[0], [1], [2]]), [2, 1, 1])
    bigrams = [[0, 1], [1, 0], [0, 2], [2, 0]]
    np.testing.assert_array_equal(ngram.counts(model, bigrams), [2, 1, 1, 1])
    # lower order: max(N1+ - D, 0) / 4 + D * 3 / 4 * 1/3  ->  [0.5, 0.25, 0.25]
    # P(w | b): c(b a) = 1 of c(b .) = 1, one type: (1 - D) [w = a] + D * P_lower(w)
    #   a: 0.25 + 0.75 * 0.5 = 0.625; b, c: 0.75 * 0.25 = 0.1875
    np.testing.assert_allclose(
        ngram.next_token_probs(model, jnp.array([1])), [0.625, 0.1875, 0.1875], rtol=1e-6
    )
    # P(w | a): c(a b) = 2, c(a c) = 1 of 3, two types:
    #   a: 0 + D*2/3 * 0.5 = 0.25; b: (2 - D)/3 + 0.5 * 0.25; c: (1 - D)/3 + 0.5 * 0.25
    np.testing.assert_allclose(
        ngram.next_token_probs(model, jnp.array([0])),
        [0.25, 1.25 / 3 + 0.125, 0.25 / 3 + 0.125],
        rtol=1e-6,
    )


# ---------------------------------------------------------------------------------------
# probabilities
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["sort", "dense"])
@pytest.mark.parametrize("smoothing,kwargs", SMOOTHERS)
def test_next_token_probs_match_oracle_float32(corpus, smoothing, kwargs, path):
    budget = dense_budgets(corpus)[path]
    model = ngram.fit(
        corpus, n=N_ORDER, vocab_size=V, smoothing=smoothing, _dense_budget=budget, **kwargs
    )
    ref = oracle.NGramOracle(corpus, n=N_ORDER, vocab_size=V, smoothing=smoothing, **kwargs)
    for length in range(N_ORDER + 1):  # shorter, full and longer-than-needed contexts
        ctx = contexts(length, ALL_IDS)
        got = batched_probs(model, ctx)
        assert got.dtype == np.float32
        want = np.stack([ref.next_token_probs(c) for c in ctx])
        # float32 single_op tolerance: a few products and sums of counts per probability
        assert_close_to_oracle(got, want, err_msg=f"context length {length}")


@pytest.mark.parametrize("path", ["sort", "dense"])
@pytest.mark.parametrize("smoothing,kwargs", SMOOTHERS)
def test_log_prob_matches_oracle_x64(x64, corpus, smoothing, kwargs, path):
    budget = dense_budgets(corpus)[path]
    model = ngram.fit(
        corpus, n=N_ORDER, vocab_size=V, smoothing=smoothing, _dense_budget=budget, **kwargs
    )
    ref = oracle.NGramOracle(corpus, n=N_ORDER, vocab_size=V, smoothing=smoothing, **kwargs)
    held_out = np.random.default_rng(1).integers(0, V, 40).astype(np.int32)
    held_out[[5, 17]] = [-1, V]  # out-of-vocabulary tokens as targets and in contexts
    want = ref.log_prob(held_out)
    got = ngram.log_prob(model, held_out)
    assert got.dtype == jnp.float64
    assert np.isneginf(np.asarray(got)[[5, 17]]).all()
    assert_close_to_oracle(got, want)  # float64: 1e-10
    assert_close_to_oracle(jax.jit(ngram.log_prob)(model, held_out), want)
    in_vocab = np.delete(held_out, [5, 17])
    np.testing.assert_allclose(
        ngram.perplexity(model, in_vocab), ref.perplexity(in_vocab), rtol=1e-10
    )


def _normalisation_models(corpus):
    for alpha in (0.0, 1e-3, 1.0, 50.0):
        yield f"add_k alpha={alpha}", ngram.fit(corpus, n=N_ORDER, vocab_size=V, alpha=alpha)
    for d in (0.0, 0.3, 0.75, 1.0):
        yield (
            f"kneser_ney D={d}",
            ngram.fit(corpus, n=N_ORDER, vocab_size=V, smoothing="kneser_ney", discount=d),
        )


def test_every_context_sums_to_one(corpus):
    """Seen, unseen and out-of-vocabulary contexts of every length (nltk #3065, #3211)."""
    seen = {tuple(corpus[i : i + N_ORDER - 1]) for i in range(len(corpus) - N_ORDER + 2)}
    full = contexts(N_ORDER - 1, ALL_IDS)
    assert any(tuple(c) not in seen and ((c >= 0) & (c < V)).all() for c in full)
    for name, model in _normalisation_models(corpus):
        for length in range(N_ORDER):
            probs = batched_probs(model, contexts(length, ALL_IDS))
            assert (probs >= 0).all(), name
            # float32 sum of V terms each within 1e-7 relative
            np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6, err_msg=name)


@pytest.mark.slow  # ~5 s: compiles the order-5 counting and both smoothers
def test_normalisation_order_5_sparse():
    # V**n = 3**5 contexts * 3 next tokens; the tables hold only what the corpus has
    tokens = np.random.default_rng(2).integers(0, 3, 50).astype(np.int32)
    counts = ngram.fit(tokens, n=5, vocab_size=3)
    for smoothing in ("add_k", "kneser_ney"):
        model = dataclasses.replace(counts, smoothing=smoothing)
        probs = batched_probs(model, contexts(4, [-1, 0, 1, 2]))
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)


def test_perplexity_of_uniform_model_is_vocab_size():
    # every token twice: the unigram model is exactly uniform under both smoothers
    tokens = np.tile(np.arange(V, dtype=np.int32), 2)
    held_out = np.random.default_rng(3).integers(0, V, 25).astype(np.int32)
    for smoothing in ("add_k", "kneser_ney"):
        model = ngram.fit(tokens, n=1, vocab_size=V, smoothing=smoothing)
        np.testing.assert_allclose(ngram.perplexity(model, held_out), V, rtol=1e-6)
    # a skewed model beats uniform on data like its own, and loses on other data
    skewed = ngram.fit(np.array([0] * 7 + [1], np.int32), n=1, vocab_size=V)
    assert ngram.perplexity(skewed, np.zeros(25, np.int32)) < 2.0
    assert ngram.perplexity(skewed, np.full(25, 3, np.int32)) > V


# ---------------------------------------------------------------------------------------
# sampling
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("smoothing,kwargs", SMOOTHERS)
@pytest.mark.parametrize("prefix", [[], [3, 0, 0, 2]])  # none, and more than n - 1
def test_sampler_follows_oracle_on_shared_noise(corpus, smoothing, kwargs, prefix):
    model = ngram.fit(corpus, n=N_ORDER, vocab_size=V, smoothing=smoothing, **kwargs)
    ref = oracle.NGramOracle(corpus, n=N_ORDER, vocab_size=V, smoothing=smoothing, **kwargs)
    gumbel = np.random.default_rng(4).gumbel(size=(30, V)).astype(np.float32)
    prefix = np.array(prefix, np.int32)
    for temperature in (1.0, 0.5):
        got = ngram.sample_from_noise(model, prefix, gumbel, temperature)
        want = ref.sample_from_noise(prefix, gumbel, temperature)
        np.testing.assert_array_equal(got, want)


def test_sample_frequencies_match_next_token_probs(corpus, key):
    model = ngram.fit(corpus, n=N_ORDER, vocab_size=V, smoothing="kneser_ney")
    prefix = jnp.array([0, 1], jnp.int32)
    keys = jax.random.split(key, 4000)
    draw = jax.jit(
        jax.vmap(lambda k, t: ngram.sample(k, model, prefix, 1, temperature=t), in_axes=(0, None))
    )  # one program for both temperatures
    for temperature in (1.0, 0.7):
        draws = draw(keys, jnp.float32(temperature))[:, 0]
        logits = np.log(np.asarray(ngram.next_token_probs(model, prefix), np.float64))
        probs = np.exp(logits / temperature - np.logaddexp.reduce(logits / temperature))
        result = chi_square_test(
            np.bincount(np.asarray(draws), minlength=V), probs, raise_on_failure=False
        )
        assert result, result  # false-alarm rate 1e-3 per temperature


def test_second_call_does_not_recompile(corpus):
    m1 = ngram.fit(corpus, n=N_ORDER, vocab_size=V, smoothing="kneser_ney", discount=0.5)
    m2 = ngram.fit(corpus[::-1].copy(), n=N_ORDER, vocab_size=V, smoothing="kneser_ney")
    tokens = jnp.asarray(corpus[:20])
    ngram.log_prob(m1, tokens)
    size = ngram._log_prob._cache_size()
    ngram.log_prob(m2, tokens)  # new counts and discount: same shapes, same program
    assert ngram._log_prob._cache_size() == size


# ---------------------------------------------------------------------------------------
# bad and extreme inputs
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"n": 0}, "n must"),
        ({"n": 2.5}, "n must"),
        ({"vocab_size": 0}, "vocab_size"),
        ({"alpha": -0.1}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
        ({"discount": 1.5, "smoothing": "kneser_ney"}, "discount"),
        ({"discount": -0.1}, "discount"),
        ({"smoothing": "witten_bell"}, "smoothing"),
        ({"tokens": np.array([0, 1, 4])}, r"tokens must hold token ids in \[0, 4\), got 4"),
        ({"tokens": np.array([0, -1, 2])}, r"tokens must hold token ids in \[0, 4\), got -1"),
        ({"tokens": np.zeros((2, 3), np.int32)}, "tokens must have 1 dimensions"),
        ({"tokens": np.zeros(3, np.float32)}, "integer"),
        ({"vocab_size": 2**30}, "vocab_size must be < 2"),
    ],
)
def test_fit_rejects_bad_arguments(kwargs, match):
    args = {"tokens": np.array([0, 1, 2, 3]), "n": 2, "vocab_size": 4, **kwargs}
    tokens = args.pop("tokens")
    with pytest.raises(ValueError, match=match):
        ngram.fit(tokens, **args)


def test_sample_and_queries_reject_bad_arguments(corpus, key):
    model = ngram.fit(corpus, n=2, vocab_size=V)
    with pytest.raises(ValueError, match="temperature"):
        ngram.sample(key, model, jnp.array([0]), 5, temperature=0.0)
    with pytest.raises(ValueError, match="length"):
        ngram.sample(key, model, jnp.array([0]), -1)
    with pytest.raises(ValueError, match="context"):
        ngram.next_token_probs(model, jnp.zeros((2, 2), jnp.int32))
    with pytest.raises(ValueError, match="grams"):
        ngram.counts(model, jnp.zeros((2, 3), jnp.int32))
    with pytest.raises(ValueError, match="at least one token"):
        ngram.perplexity(model, jnp.zeros((0,), jnp.int32))


def test_alpha_zero_is_finite_on_seen_contexts(corpus):
    model = ngram.fit(corpus, n=N_ORDER, vocab_size=V, alpha=0.0)
    lp = np.asarray(ngram.log_prob(model, corpus))  # every trigram of the corpus was seen
    assert np.isfinite(lp).all() and (lp <= 0).all() and (lp < 0).any()
    probs = np.asarray(ngram.next_token_probs(model, jnp.asarray(corpus[:2])))
    assert (probs == 0).any()  # maximum likelihood: unseen continuations get nothing
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-6)


def test_single_token_corpus(key):
    counts = ngram.fit(np.array([2], np.int32), n=3, vocab_size=V)
    np.testing.assert_array_equal(ngram.counts(counts, [[2], [0]]), [1, 0])
    for smoothing in ("add_k", "kneser_ney"):
        model = dataclasses.replace(counts, smoothing=smoothing)
        probs = batched_probs(model, contexts(2, ALL_IDS))
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
        assert np.argmax(ngram.next_token_probs(model, jnp.zeros((0,), jnp.int32))) == 2
        assert np.isfinite(ngram.log_prob(model, jnp.array([2, 2, 1]))).all()
        assert ngram.sample(key, model, jnp.zeros((0,), jnp.int32), 5).shape == (5,)
