"""NumPy-only float64 oracle for the counting family, written from the textbook equations.

Independent of the JAX code: n-grams are counted with :class:`collections.Counter` over
tuples, the smoothers are written as the recursions of Chen & Goodman (1999) and Jurafsky &
Martin (ch. 3), and naive Bayes from the class-conditional likelihoods of Manning, Raghavan &
Schütze (2008, ch. 13) and McCallum & Nigam (1998). It imports NumPy and the standard
library only.

Conventions shared with :mod:`genjax.counting.ngram` (they define the model, so both sides
state them; the code is not shared):

* token ``i`` is predicted from the ``min(i, n - 1)`` tokens before it, by the model of
  order ``min(i, n - 1) + 1`` on the same counts;
* a context holding an out-of-vocabulary id (``< 0`` or ``>= vocab_size``) was never seen;
* add-k on a context with ``c(u .) + k V = 0`` is uniform (the ``k -> 0`` limit);
* Kneser-Ney on a context with no counts at its level backs off wholly to the level below,
  and the recursion ends in the uniform distribution (Chen & Goodman 1999, sec. 3).

References:
  Chen & Goodman, "An Empirical Study of Smoothing Techniques for Language Modeling",
  Harvard TR-10-98 (1999). Jurafsky & Martin, "Speech and Language Processing", 3rd ed.
  draft, ch. 3. Manning, Raghavan & Schütze, "Introduction to Information Retrieval", ch. 13.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

# --------------------------------------------------------------------------------------
# n-gram counts
# --------------------------------------------------------------------------------------


def count_ngrams(tokens, n: int) -> list[Counter]:
    """``counts[k - 1][(w_1, ..., w_k)] = c(w_1 ... w_k)`` for every order k = 1..n."""
    tokens = [int(t) for t in tokens]
    counts = []
    for k in range(1, n + 1):
        counts.append(Counter(tuple(tokens[i : i + k]) for i in range(len(tokens) - k + 1)))
    return counts


def continuation_counts(counts: list[Counter]) -> list[Counter]:
    """``N1+(. w_1 ... w_k)``: how many distinct words precede the k-gram (k < n).

    Chen & Goodman (1999) eq. (17)'s numerator: the number of distinct (k+1)-grams that end
    in the k-gram.
    """
    out = []
    for k in range(1, len(counts)):
        cont: Counter = Counter()
        for gram in counts[k]:  # the distinct (k+1)-grams
            cont[gram[1:]] += 1
        out.append(cont)
    return out


# --------------------------------------------------------------------------------------
# smoothed next-token distributions
# --------------------------------------------------------------------------------------


def _add_k(counts: list[Counter], context: tuple, vocab_size: int, alpha: float) -> np.ndarray:
    # Jurafsky & Martin eq. 3.26 (add-k): P(w | u) = (c(u w) + k) / (c(u .) + k V)
    table = counts[len(context)]
    c = np.array([table.get(context + (w,), 0) for w in range(vocab_size)], dtype=np.float64)
    total = c.sum() + alpha * vocab_size
    if total == 0.0:
        return np.full(vocab_size, 1.0 / vocab_size)
    return (c + alpha) / total


def _kneser_ney(
    counts: list[Counter],
    cont: list[Counter],
    context: tuple,
    vocab_size: int,
    discount: float,
    highest: bool,
) -> np.ndarray:
    """Interpolated Kneser-Ney, Chen & Goodman (1999) eqs. (16)-(17), recursively.

    P(w | u) = max(a(u w) - D, 0) / sum_w' a(u w') + D N1+(u .) / sum_w' a(u w') * P(w | u')
    with u' = u without its first word, a = c at the highest order and a = N1+(. u w) below
    it, N1+(u .) the number of w with a(u w) > 0, and the uniform 1/V below order 1.
    """
    if highest:
        table = counts[len(context)]
    else:
        table = cont[len(context)]
    a = np.array([table.get(context + (w,), 0) for w in range(vocab_size)], dtype=np.float64)
    if len(context) == 0:
        lower = np.full(vocab_size, 1.0 / vocab_size)  # the order-0 uniform distribution
    else:
        lower = _kneser_ney(counts, cont, context[1:], vocab_size, discount, highest=False)
    total = a.sum()
    if total == 0.0:
        return lower
    types = float(np.count_nonzero(a))  # N1+(u .)
    return np.maximum(a - discount, 0.0) / total + discount * types / total * lower


class NGramOracle:
    """Counts of one corpus and the smoothed next-token distributions over them."""

    def __init__(
        self,
        tokens,
        *,
        n: int,
        vocab_size: int,
        alpha: float = 1.0,
        smoothing: str = "add_k",
        discount: float = 0.75,
    ):
        self.n = n
        self.vocab_size = vocab_size
        self.alpha = float(alpha)
        self.discount = float(discount)
        self.smoothing = smoothing
        self.counts = count_ngrams(tokens, n)
        self.continuations = continuation_counts(self.counts)

    def next_token_probs(self, history) -> np.ndarray:
        """(vocab_size,) float64: P(w | the last min(len(history), n - 1) tokens)."""
        history = tuple(int(t) for t in history)
        context = history[len(history) - min(len(history), self.n - 1) :]
        if self.smoothing == "add_k":
            return _add_k(self.counts, context, self.vocab_size, self.alpha)
        return _kneser_ney(
            self.counts, self.continuations, context, self.vocab_size, self.discount, True
        )

    def log_prob(self, tokens) -> np.ndarray:
        """(T,) float64: log P(x_i | x_<i); out-of-vocabulary targets get -inf."""
        tokens = [int(t) for t in tokens]
        out = np.empty(len(tokens))
        for i, t in enumerate(tokens):
            if 0 <= t < self.vocab_size:
                with np.errstate(divide="ignore"):
                    out[i] = np.log(self.next_token_probs(tokens[:i])[t])
            else:
                out[i] = -np.inf
        return out

    def perplexity(self, tokens) -> float:
        return float(np.exp(-np.mean(self.log_prob(tokens))))

    def sample_from_noise(self, prefix, gumbel: np.ndarray, temperature: float = 1.0):
        """Gumbel-max sampling with the noise given: gumbel (length, vocab_size) -> (length,)."""
        history = [int(t) for t in prefix]
        out = []
        for g in gumbel:
            p = self.next_token_probs(history)
            with np.errstate(divide="ignore"):
                logits = np.log(p) / temperature
            token = int(np.argmax(logits + g))
            out.append(token)
            history.append(token)
        return np.array(out)


# --------------------------------------------------------------------------------------
# naive Bayes
# --------------------------------------------------------------------------------------


def _log_softmax_rows(jll: np.ndarray) -> np.ndarray:
    m = jll.max(axis=1, keepdims=True)
    return jll - (m + np.log(np.exp(jll - m).sum(axis=1, keepdims=True)))


def gaussian_nb(x: np.ndarray, y: np.ndarray, num_classes: int, var_smoothing: float = 1e-9):
    """Class priors, per-class means and variances (ML, plus var_smoothing * max_j Var[x_j])."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    prior, means, variances = [], [], []
    epsilon = var_smoothing * np.var(x, axis=0).max()
    for c in range(num_classes):
        xc = x[y == c]
        prior.append(len(xc) / len(x))
        means.append(xc.mean(axis=0))
        variances.append(xc.var(axis=0) + epsilon)
    return np.array(prior), np.array(means), np.array(variances)


def gaussian_nb_log_proba(prior, means, variances, x) -> np.ndarray:
    """log P(c | x) with log p(x | c) = sum_j log N(x_j; mu_cj, sigma2_cj)."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    jll = np.empty((len(x), len(prior)))
    for c in range(len(prior)):
        log_normal = -0.5 * np.log(2 * np.pi * variances[c]) - 0.5 * (
            (x - means[c]) ** 2 / variances[c]
        )
        jll[:, c] = np.log(prior[c]) + log_normal.sum(axis=1)
    return _log_softmax_rows(jll)


def multinomial_nb(x: np.ndarray, y: np.ndarray, num_classes: int, alpha: float = 1.0):
    """Priors and theta_cj = (N_cj + alpha) / (N_c + alpha d) (IIR eq. 13.7, Lidstone)."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    prior, theta = [], []
    for c in range(num_classes):
        xc = x[y == c]
        prior.append(len(xc) / len(x))
        n_cj = xc.sum(axis=0)
        theta.append((n_cj + alpha) / (n_cj.sum() + alpha * x.shape[1]))
    return np.array(prior), np.array(theta)


def multinomial_nb_log_proba(prior, theta, x) -> np.ndarray:
    """log P(c | x) with log p(x | c) = sum_j x_j log theta_cj (+ a term free of c)."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    jll = np.log(prior)[None, :] + x @ np.log(theta).T
    return _log_softmax_rows(jll)


def bernoulli_nb(
    x: np.ndarray, y: np.ndarray, num_classes: int, alpha: float = 1.0, binarize: float = 0.5
):
    """Priors and p_cj = (N_cj + alpha) / (N_c + 2 alpha) over the binarized features."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    b = (x > binarize).astype(np.float64)
    prior, p = [], []
    for c in range(num_classes):
        bc = b[y == c]
        prior.append(len(bc) / len(b))
        p.append((bc.sum(axis=0) + alpha) / (len(bc) + 2 * alpha))
    return np.array(prior), np.array(p)


def bernoulli_nb_log_proba(prior, p, x, binarize: float = 0.5) -> np.ndarray:
    """log P(c | x), log p(x | c) = sum_j b_j log p_cj + (1 - b_j) log(1 - p_cj) (IIR 13.3)."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    b = (x > binarize).astype(np.float64)
    jll = np.empty((len(x), len(prior)))
    for c in range(len(prior)):
        jll[:, c] = np.log(prior[c]) + (b * np.log(p[c]) + (1 - b) * np.log(1 - p[c])).sum(1)
    return _log_softmax_rows(jll)
