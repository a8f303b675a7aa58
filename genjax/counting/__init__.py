"""The counting family: n-gram language models and naive Bayes, fitted by counting.

* :mod:`genjax.counting.ngram` — the n-gram language model: ``fit``, add-k and
  interpolated Kneser-Ney smoothing, ``log_prob``, ``next_token_probs``, perplexity,
  ``sample(key, model, prefix, length)``.
* :mod:`genjax.counting.ngram_tables` — the table engine under it: counts of every order as
  sorted id tables (jit-compiled sorts and scatter-adds) and their lookups.
* :mod:`genjax.counting.naive_bayes` — Gaussian, multinomial and Bernoulli naive Bayes:
  fit, posterior class probabilities, class-conditional generation.
* :mod:`genjax.counting.oracle` — the NumPy float64 twin of both.
"""

from genjax.counting import naive_bayes, ngram, ngram_tables

__all__ = ["naive_bayes", "ngram", "ngram_tables"]
