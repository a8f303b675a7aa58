"""Bad and extreme inputs to every public function of the counting family (issue 16).

Finding 11 (naive Bayes turned a NaN feature into a uniform posterior and predicted class
0) is covered by the ``naive_bayes.predict*`` cases. n-gram contexts may hold
out-of-vocabulary ids by design (``next_token_probs``: an unseen context), so those are
valid extremes here, not rejections.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.counting import naive_bayes as nb
from genjax.counting import ngram
from genjax.testing import BadInput, assert_handled

KEY = jax.random.key(0)
TOKENS = jnp.array([0, 1, 2, 1, 0, 2, 2, 1], jnp.int32)
LM = ngram.fit(TOKENS, n=2, vocab_size=3)
X = jnp.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
Y = jnp.array([0, 0, 1, 1])
GNB = nb.fit_gaussian(X, Y, num_classes=2)
MNB = nb.fit_multinomial(X, Y, num_classes=2)
BNB = nb.fit_bernoulli(X, Y, num_classes=2)
NAN_ROW = jnp.array([[jnp.nan, 1.0]])


def _case(name, call, argument="", kind="reject", check=None):
    return BadInput(name, call, argument, kind, check)


CASES = [
    # --- n-gram -----------------------------------------------------------------------
    _case("ngram.fit: token id >= vocab_size", lambda: ngram.fit(TOKENS, n=2, vocab_size=2),
          "tokens"),
    _case("ngram.fit: negative token id",
          lambda: ngram.fit(jnp.array([0, -1]), n=2, vocab_size=3), "tokens"),
    _case("ngram.fit: float tokens", lambda: ngram.fit(jnp.array([0.0, 1.0]), n=2,
                                                       vocab_size=3), "tokens"),
    _case("ngram.fit: tokens 2-D", lambda: ngram.fit(TOKENS[None], n=2, vocab_size=3),
          "tokens"),
    _case("ngram.fit: n 0", lambda: ngram.fit(TOKENS, n=0, vocab_size=3), "n"),
    _case("ngram.fit: vocab_size 0", lambda: ngram.fit(TOKENS, n=2, vocab_size=0),
          "vocab_size"),
    _case("ngram.fit: unknown smoothing",
          lambda: ngram.fit(TOKENS, n=2, vocab_size=3, smoothing="witten_bell"), "smoothing"),
    _case("ngram.fit: alpha < 0", lambda: ngram.fit(TOKENS, n=2, vocab_size=3, alpha=-1.0),
          "alpha"),
    _case("ngram.fit: alpha NaN", lambda: ngram.fit(TOKENS, n=2, vocab_size=3, alpha=jnp.nan),
          "alpha"),
    _case("ngram.fit: discount > 1",
          lambda: ngram.fit(TOKENS, n=2, vocab_size=3, smoothing="kneser_ney", discount=1.5),
          "discount"),
    _case("ngram.next_token_probs: context 2-D",
          lambda: ngram.next_token_probs(LM, jnp.zeros((1, 2), int)), "context"),
    _case("ngram.next_token_probs: float context",
          lambda: ngram.next_token_probs(LM, jnp.array([0.5])), "context"),
    _case("ngram.next_token_probs: model not an NGramModel",
          lambda: ngram.next_token_probs({"n": 2}, jnp.array([0])), "model"),
    _case("ngram.log_prob: tokens 2-D", lambda: ngram.log_prob(LM, TOKENS[None]), "tokens"),
    _case("ngram.perplexity: no tokens", lambda: ngram.perplexity(LM, jnp.zeros(0, int)),
          "tokens"),
    _case("ngram.sample: length -1", lambda: ngram.sample(KEY, LM, TOKENS[:1], -1), "length"),
    _case("ngram.sample: temperature 0",
          lambda: ngram.sample(KEY, LM, TOKENS[:1], 3, temperature=0.0), "temperature"),
    _case("ngram.sample: temperature NaN",
          lambda: ngram.sample(KEY, LM, TOKENS[:1], 3, temperature=jnp.nan), "temperature"),
    _case("ngram.sample: prefix of floats",
          lambda: ngram.sample(KEY, LM, jnp.array([0.0]), 3), "prefix"),
    _case("ngram.sample_from_noise: gumbel of the wrong vocabulary size",
          lambda: ngram.sample_from_noise(LM, TOKENS[:1], jnp.zeros((3, 5))), "gumbel"),
    _case("ngram.sample_from_noise: gumbel with NaN",
          lambda: ngram.sample_from_noise(LM, TOKENS[:1], jnp.full((3, 3), jnp.nan)), "gumbel"),
    _case("ngram.sample_from_noise: temperature < 0",
          lambda: ngram.sample_from_noise(LM, TOKENS[:1], jnp.zeros((3, 3)), -1.0),
          "temperature"),
    _case("ngram.sample_step: history of the wrong length",
          lambda: ngram.sample_step(LM, jnp.zeros(4, jnp.int32), 1, jnp.zeros(3)), "history"),
    _case("ngram.sample_step: num_valid > n - 1",
          lambda: ngram.sample_step(LM, jnp.zeros(1, jnp.int32), 5, jnp.zeros(3)), "num_valid"),
    _case("ngram.sample_step: gumbel of the wrong size",
          lambda: ngram.sample_step(LM, jnp.zeros(1, jnp.int32), 1, jnp.zeros(4)), "gumbel"),
    _case("ngram.counts: grams longer than n", lambda: ngram.counts(LM, jnp.zeros((2, 3), int)),
          "grams"),
    _case("ngram.counts: float grams", lambda: ngram.counts(LM, jnp.array([[0.5, 1.5]])),
          "grams"),
    _case("ngram.continuation_counts: grams of length n",
          lambda: ngram.continuation_counts(LM, jnp.zeros((2, 2), int)), "grams"),
    # --- naive Bayes ------------------------------------------------------------------
    _case("naive_bayes.predict: NaN feature (finding 11)", lambda: nb.predict(GNB, NAN_ROW),
          "x"),
    _case("naive_bayes.predict_log_proba: NaN feature (finding 11)",
          lambda: nb.predict_log_proba(GNB, NAN_ROW), "x"),
    _case("naive_bayes.predict_log_proba: inf feature, multinomial (finding 11)",
          lambda: nb.predict_log_proba(MNB, jnp.array([[jnp.inf, 1.0]])), "x"),
    _case("naive_bayes.predict: NaN feature, Bernoulli (finding 11)",
          lambda: nb.predict(BNB, NAN_ROW), "x"),
    _case("naive_bayes.joint_log_likelihood: NaN feature (finding 11)",
          lambda: nb.joint_log_likelihood(GNB, NAN_ROW), "x"),
    _case("naive_bayes.predict: wrong number of features",
          lambda: nb.predict(GNB, jnp.zeros((2, 3))), "x"),
    _case("naive_bayes.predict: x 1-D", lambda: nb.predict(GNB, jnp.zeros(2)), "x"),
    _case("naive_bayes.predict_log_proba: negative counts for a multinomial model",
          lambda: nb.predict_log_proba(MNB, jnp.array([[-1.0, 1.0]])), "x"),
    _case("naive_bayes.predict: params of an unknown kind",
          lambda: nb.predict({"means": 0}, X), "params"),
    _case("naive_bayes.fit_gaussian: NaN feature",
          lambda: nb.fit_gaussian(X.at[0, 0].set(jnp.nan), Y, num_classes=2), "x"),
    _case("naive_bayes.fit_gaussian: label >= num_classes",
          lambda: nb.fit_gaussian(X, Y, num_classes=1), "y"),
    _case("naive_bayes.fit_gaussian: y length differs",
          lambda: nb.fit_gaussian(X, Y[:3], num_classes=2), "y"),
    _case("naive_bayes.fit_gaussian: float labels",
          lambda: nb.fit_gaussian(X, Y.astype(float), num_classes=2), "y"),
    _case("naive_bayes.fit_gaussian: var_smoothing < 0",
          lambda: nb.fit_gaussian(X, Y, num_classes=2, var_smoothing=-1.0), "var_smoothing"),
    _case("naive_bayes.fit_gaussian: num_classes 0",
          lambda: nb.fit_gaussian(X, Y, num_classes=0), "num_classes"),
    _case("naive_bayes.fit_gaussian: no examples",
          lambda: nb.fit_gaussian(jnp.zeros((0, 2)), jnp.zeros(0, int), num_classes=2), "x"),
    _case("naive_bayes.fit_multinomial: negative counts",
          lambda: nb.fit_multinomial(-X, Y, num_classes=2), "x"),
    _case("naive_bayes.fit_multinomial: alpha NaN",
          lambda: nb.fit_multinomial(X, Y, num_classes=2, alpha=jnp.nan), "alpha"),
    _case("naive_bayes.fit_bernoulli: NaN feature",
          lambda: nb.fit_bernoulli(X.at[1, 1].set(jnp.nan), Y, num_classes=2), "x"),
    _case("naive_bayes.fit_bernoulli: binarize inf",
          lambda: nb.fit_bernoulli(X, Y, num_classes=2, binarize=jnp.inf), "binarize"),
    _case("naive_bayes.fit_bernoulli: alpha < 0",
          lambda: nb.fit_bernoulli(X, Y, num_classes=2, alpha=-0.5), "alpha"),
    _case("naive_bayes.sample: label out of range",
          lambda: nb.sample(KEY, GNB, jnp.array([0, 2])), "labels"),
    _case("naive_bayes.sample: labels 2-D", lambda: nb.sample(KEY, GNB, jnp.zeros((2, 1), int)),
          "labels"),
    _case("naive_bayes.sample: multinomial without num_trials",
          lambda: nb.sample(KEY, MNB, jnp.array([0])), "num_trials"),
    _case("naive_bayes.sample: num_trials -1",
          lambda: nb.sample(KEY, MNB, jnp.array([0]), num_trials=-1), "num_trials"),
    # --- valid extremes ---------------------------------------------------------------
    _case("ngram.next_token_probs: out-of-vocabulary context is an unseen context",
          lambda: ngram.next_token_probs(LM, jnp.array([7])), kind="extreme",
          check=lambda p: np.isclose(float(jnp.sum(p)), 1.0, rtol=1e-6)),
    _case("ngram.next_token_probs: empty context is the unigram model",
          lambda: ngram.next_token_probs(LM, jnp.zeros(0, int)), kind="extreme",
          check=lambda p: np.isclose(float(jnp.sum(p)), 1.0, rtol=1e-6)),
    _case("ngram.sample: temperature 1e-6 (near greedy)",
          lambda: ngram.sample(KEY, LM, TOKENS[:1], 4, temperature=1e-6), kind="extreme",
          check=lambda t: bool(np.all((np.asarray(t) >= 0) & (np.asarray(t) < 3)))),
    _case("ngram.fit: empty corpus", lambda: ngram.perplexity(
        ngram.fit(jnp.zeros(0, jnp.int32), n=2, vocab_size=3), TOKENS), kind="extreme",
          check=lambda v: np.isclose(float(v), 3.0, rtol=1e-5)),
    _case("naive_bayes.predict_log_proba: features of scale 1e6 (certain posterior)",
          lambda: nb.predict_log_proba(GNB, jnp.array([[1e6, 1e6]])), kind="extreme",
          check=lambda lp: np.isclose(float(jax.nn.logsumexp(lp[0])), 0.0, atol=1e-5)),
    _case("naive_bayes.predict_log_proba: alpha 0, a feature no class showed",
          lambda: nb.predict_log_proba(nb.fit_multinomial(X[:, :1] * 0 + jnp.array([[0.0]]),
                                                          Y, num_classes=2, alpha=0.0),
                                       jnp.array([[1.0]])), kind="extreme"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_handled(case):
    assert_handled(case)
