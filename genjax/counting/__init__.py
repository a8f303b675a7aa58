"""The counting family: n-gram language models and naive Bayes, fitted by counting.

* :mod:`genjax.counting.ngram` — counts of every order with jit-compiled sorts and
  scatter-adds, add-k and interpolated Kneser-Ney smoothing, perplexity, sampling.
* :mod:`genjax.counting.naive_bayes` — Gaussian, multinomial and Bernoulli naive Bayes:
  fit, posterior class probabilities, class-conditional generation.
* :mod:`genjax.counting.oracle` — the NumPy float64 twin of both.
"""

from genjax.counting import naive_bayes, ngram

__all__ = ["naive_bayes", "ngram"]
