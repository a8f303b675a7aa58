"""Suite ``counting``: naive Bayes fit + predict on digits, n-gram counting of 1M tokens.

* naive Bayes (Gaussian, multinomial, Bernoulli): fit on the 1,438 training digits and
  ``predict_log_proba`` on the 359 test digits, as one jitted program, against
  scikit-learn's GaussianNB / MultinomialNB / BernoulliNB and the NumPy oracle; ``extra``
  holds the test accuracy and the largest difference from scikit-learn's log-posteriors.
* n-gram counting: every order 1..n plus the Kneser-Ney continuation counts of 1,000,000
  character tokens (the built-in text, repeated), with :func:`genjax.counting.ngram.fit`
  against a vectorised NumPy baseline (n-grams as base-V int64 ids, ``np.unique`` with
  counts per order, the continuation counts by ``np.unique`` of the distinct (k+1)-grams'
  suffixes) — the same tables — and, for n = 3, the oracle's Counter. nltk is not timed:
  its counting is pure Python (like the oracle) and it is not a dependency. A second
  genjax row forces the sort path for every order (``_dense_budget=0``), the counting
  used before the dense scatter-add path, so both are timed under the same load. genjax
  and NumPy alternate (:func:`genjax.bench.harness.time_paired`: 3 pairs of 3 calls each);
  the NumPy row's ``ratio`` is the median of the per-pair ratios numpy / genjax.
"""

from __future__ import annotations

import numpy as np

from genjax.bench.harness import Row, time_host, time_jax, time_paired

SUITE = "counting"
NOTES = (
    "naive Bayes: fit on 1438 digits + predict_log_proba on 359. n-gram: all count tables of "
    "orders 1..n and the Kneser-Ney continuation counts; numpy = np.unique over base-V int64 "
    "ids. The oracle (collections.Counter over tuples) is the float64 reference, not a "
    "fast baseline. 'genjax (sort every order)' forces the sort path (_dense_budget=0) for "
    "comparison with the default dense scatter-add counting."
)


def _naive_bayes_rows(quick: bool) -> list[Row]:
    import jax

    from genjax import data
    from genjax.counting import naive_bayes as nb
    from genjax.counting import oracle

    x = data.load("digits", split="train")
    y = data.load_labels("digits", split="train")
    x_test = data.load("digits", split="test")
    y_test = data.load_labels("digits", split="test")
    flat, flat_test = x.reshape(len(x), -1), x_test.reshape(len(x_test), -1)
    k = 10
    repeats = 3 if quick else 7

    variants = {
        "gaussian": (
            lambda a, b: nb.fit_gaussian(a, b, num_classes=k),
            lambda a, b, t: oracle.gaussian_nb_log_proba(*oracle.gaussian_nb(a, b, k), t),
            "GaussianNB",
        ),
        "multinomial": (
            lambda a, b: nb.fit_multinomial(a, b, num_classes=k),
            lambda a, b, t: oracle.multinomial_nb_log_proba(*oracle.multinomial_nb(a, b, k), t),
            "MultinomialNB",
        ),
        "bernoulli": (
            lambda a, b: nb.fit_bernoulli(a, b, num_classes=k),
            lambda a, b, t: oracle.bernoulli_nb_log_proba(*oracle.bernoulli_nb(a, b, k), t),
            "BernoulliNB",
        ),
    }
    try:
        from sklearn import naive_bayes as sk
    except ImportError:
        sk = None

    rows = []
    for name, (fit, oracle_fn, sk_name) in variants.items():
        case = f"naive-bayes {name} fit+predict digits"

        @jax.jit
        def fit_predict(a, b, t, fit=fit):
            return nb.predict_log_proba(fit(a, b), t)

        timing = time_jax(fit_predict, x, y, x_test, repeats=repeats)
        got = np.asarray(fit_predict(x, y, x_test))
        extra = {"test_accuracy": float(np.mean(got.argmax(1) == y_test))}
        peer_rows = []
        if sk is not None:
            model = getattr(sk, sk_name)
            kwargs = {"binarize": 0.5} if name == "bernoulli" else {}
            ref = model(**kwargs).fit(flat, y).predict_log_proba(flat_test)
            # float32 genjax against float64 scikit-learn (x64 agreement is a test)
            extra["max_abs_diff_vs_sklearn"] = float(np.abs(got - ref).max())
            sk_timing = time_host(
                lambda m=model, kw=kwargs: m(**kw).fit(flat, y).predict_log_proba(flat_test),
                repeats=repeats,
            )
            peer_rows.append(Row(SUITE, case, "scikit-learn", sk_timing.compile_s,
                                 sk_timing.run_s))
        rows.append(Row(SUITE, case, "genjax", timing.compile_s, timing.run_s, extra))
        rows += peer_rows
        o = time_host(oracle_fn, flat, y, flat_test, repeats=repeats)
        rows.append(Row(SUITE, case, "oracle (numpy)", o.compile_s, o.run_s))
    return rows


def _numpy_count_tables(tokens: np.ndarray, n: int, vocab_size: int):
    """The same tables with NumPy: counts of every order and continuation counts."""
    t = tokens.astype(np.int64)
    tables, ids_by_order = [], []
    for k in range(1, n + 1):
        num = len(t) - k + 1
        ids = np.zeros(num, np.int64)
        for j in range(k):  # id = sum_j t[i + j] * V**(k - 1 - j)
            ids = ids * vocab_size + t[j : j + num]
        unique, counts = np.unique(ids, return_counts=True)
        tables.append((unique, counts))
        ids_by_order.append(unique)
    continuations = []
    for k in range(1, n):
        suffix = ids_by_order[k] % vocab_size**k  # drop the first word of each (k+1)-gram
        continuations.append(np.unique(suffix, return_counts=True))
    return tables, continuations


def _ngram_rows(quick: bool) -> list[Row]:
    from genjax import data
    from genjax.counting import ngram

    vocab_size = len(data.text_vocabulary())
    text = data.load("text", split="train")
    num_tokens = 100_000 if quick else 1_000_000
    tokens = np.resize(text, num_tokens).astype(np.int32)  # the corpus repeated
    rows = []
    for n in (3, 5):
        case = f"ngram n={n} counting {num_tokens // 1000}k tokens"

        def count(t, n=n):
            return ngram.fit(t, n=n, vocab_size=vocab_size)

        # genjax and np.unique alternated: the ratio is the median of the per-pair ratios
        paired = time_paired(lambda count=count: count(tokens),
                             lambda n=n: _numpy_count_tables(tokens, n, vocab_size),
                             pairs=3, repeats=1 if quick else 3)
        model = count(tokens)
        tables, _ = _numpy_count_tables(tokens, n, vocab_size)
        distinct = int(np.sum(np.asarray(model.gram_ids[-1]) != np.iinfo(np.int32).max))
        assert distinct == len(tables[-1][0]), "genjax and numpy disagree on distinct n-grams"
        rows.append(Row(SUITE, case, "genjax", paired.a.compile_s, paired.a.run_s,
                        {f"distinct_{n}grams": distinct}))
        # the same tables counted by sorting every order (the path above the dense budget)
        s = time_jax(lambda t, n=n: ngram.fit(t, n=n, vocab_size=vocab_size, _dense_budget=0),
                     tokens, repeats=1)  # a comparison row, ~10x the default: one call
        rows.append(Row(SUITE, case, "genjax (sort every order)", s.compile_s, s.run_s))
        rows.append(Row(SUITE, case, "numpy (np.unique)", paired.b.compile_s, paired.b.run_s,
                        {"ratio": paired.ratio, "pairs": paired.pairs}))
        if not quick and n == 3:
            from genjax.counting import oracle

            o = time_host(
                lambda n=n: oracle.continuation_counts(oracle.count_ngrams(tokens, n)), repeats=1
            )
            rows.append(Row(SUITE, case, "oracle (Counter)", o.compile_s, o.run_s))
    return rows


def run(quick: bool = False) -> list[Row]:
    return _naive_bayes_rows(quick) + _ngram_rows(quick)
