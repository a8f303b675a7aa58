"""Naive Bayes against scikit-learn, the NumPy oracle, and the moments of its own samples."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import data
from genjax.counting import naive_bayes as nb
from genjax.counting import oracle
from genjax.testing import assert_close_to_oracle, moment_ztest

sk_nb = pytest.importorskip("sklearn.naive_bayes")
K = 10


@pytest.fixture(scope="module")
def digits():
    x = data.load("digits", split="train")  # (n, 8, 8, 1) in [0, 1]
    y = data.load_labels("digits", split="train")
    x_test = data.load("digits", split="test")
    return x, y, x_test


def _flat(x):
    return np.asarray(x, np.float64).reshape(len(x), -1)


VARIANTS = {
    "gaussian": (
        lambda x, y: nb.fit_gaussian(x, y, num_classes=K),
        lambda: sk_nb.GaussianNB(),
    ),
    "multinomial": (
        lambda x, y: nb.fit_multinomial(x, y, num_classes=K, alpha=0.5),
        lambda: sk_nb.MultinomialNB(alpha=0.5),
    ),
    "bernoulli": (
        lambda x, y: nb.fit_bernoulli(x, y, num_classes=K, alpha=1.0, binarize=0.3),
        lambda: sk_nb.BernoulliNB(alpha=1.0, binarize=0.3),
    ),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_matches_scikit_learn_on_digits_x64(x64, digits, variant):
    x, y, x_test = digits
    fit, make_sklearn = VARIANTS[variant]
    params = fit(x.astype(np.float64), y)
    ref = make_sklearn().fit(_flat(x), y)
    got = np.asarray(nb.predict_log_proba(params, x_test.astype(np.float64)))
    want = ref.predict_log_proba(_flat(x_test))
    # rtol 1e-5 as the issue asks; atol 1e-10 for log-probabilities of ~-1e-14 (posteriors
    # of 1 - 1e-14), where the two libraries' last-ulp roundings differ in relative terms
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-10)
    np.testing.assert_array_equal(nb.predict(params, x_test.astype(np.float64)), ref.predict(
        _flat(x_test)
    ))
    np.testing.assert_allclose(np.exp(params.class_log_prior), ref.class_prior_ if variant ==
                               "gaussian" else np.exp(ref.class_log_prior_), rtol=1e-12)
    if variant == "gaussian":
        np.testing.assert_allclose(params.means, ref.theta_, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(params.variances, ref.var_, rtol=1e-10)
    else:
        np.testing.assert_allclose(params.feature_log_prob, ref.feature_log_prob_, rtol=1e-10)


@pytest.mark.parametrize("variant", VARIANTS)
def test_matches_oracle_float32_and_under_jit(digits, variant):
    x, y, x_test = digits
    fit, _ = VARIANTS[variant]
    params = fit(x, y)
    jitted = jax.jit(fit)(jnp.asarray(x), jnp.asarray(y))
    flat, flat_test = _flat(x), _flat(x_test)
    if variant == "gaussian":
        prior, means, variances = oracle.gaussian_nb(flat, y, K)
        want_params = (np.log(prior), means, variances)
        want = oracle.gaussian_nb_log_proba(prior, means, variances, flat_test)
    elif variant == "multinomial":
        prior, theta = oracle.multinomial_nb(flat, y, K, alpha=0.5)
        want_params = (np.log(prior), np.log(theta))
        want = oracle.multinomial_nb_log_proba(prior, theta, flat_test)
    else:
        prior, p = oracle.bernoulli_nb(flat, y, K, alpha=1.0, binarize=0.3)
        want_params = (np.log(prior), np.log(p), np.float64(0.3))
        want = oracle.bernoulli_nb_log_proba(prior, p, flat_test, binarize=0.3)
    for got in (params, jitted):
        assert got.class_log_prior.dtype == jnp.float32
        # float32 single_op (1e-5): means and sums over <= 1438 examples. The Gaussian
        # variances of near-constant pixels are ~1e-9 * max Var, built from sums of
        # squares that lose more digits in float32: compared at 1e-3 with a reason.
        leaves = jax.tree.leaves(got)
        for i, (a, e) in enumerate(zip(leaves, want_params, strict=True)):
            if variant == "gaussian" and i == 2:
                np.testing.assert_allclose(a, e, rtol=1e-3)
            else:
                assert_close_to_oracle(a, e, err_msg=f"{variant} leaf {i}")
    if variant != "gaussian":
        # posteriors from 64 log-probability terms: float32 error ~1e-5 of the largest term
        lp = np.asarray(nb.predict_log_proba(params, x_test))
        np.testing.assert_allclose(lp, want, rtol=1e-4, atol=1e-3)
    agree = np.mean(np.asarray(nb.predict(params, x_test)) == np.argmax(want, axis=1))
    assert agree > 0.99


def test_images_and_flat_features_agree(digits):
    x, y, x_test = digits
    a = nb.fit_bernoulli(x, y, num_classes=K)
    b = nb.fit_bernoulli(x.reshape(len(x), -1), y, num_classes=K)
    np.testing.assert_array_equal(a.feature_log_prob, b.feature_log_prob)
    np.testing.assert_array_equal(
        nb.predict_log_proba(a, x_test), nb.predict_log_proba(b, x_test.reshape(len(x_test), -1))
    )


def test_accuracy_on_held_out_digits(digits):
    x, y, x_test = digits
    y_test = data.load_labels("digits", split="test")
    for variant, (fit, _) in VARIANTS.items():
        acc = np.mean(np.asarray(nb.predict(fit(x, y), x_test)) == y_test)
        assert acc > 0.8, variant  # chance is 0.1; scikit-learn reaches 0.88-0.91 here


# ---------------------------------------------------------------------------------------
# generation
# ---------------------------------------------------------------------------------------


def test_class_conditional_samples_have_the_class_moments(digits, keys):
    x, y, _ = digits
    num = 3000
    for c in (0, 7):
        labels = jnp.full((num,), c, jnp.int32)
        g = nb.fit_gaussian(x, y, num_classes=K)
        draws = nb.sample(keys[0], g, labels)
        assert draws.shape == (num, 64)
        moment_ztest(draws, g.means[c], jnp.diag(g.variances[c]), check_variance=True)
        b = nb.fit_bernoulli(x, y, num_classes=K)
        p = np.exp(np.asarray(b.feature_log_prob[c], np.float64))
        draws = nb.sample(keys[1], b, labels)
        assert set(np.unique(np.asarray(draws))) <= {0.0, 1.0}
        moment_ztest(draws, p, np.diag(p * (1 - p)))
        m = nb.fit_multinomial(x, y, num_classes=K)
        theta = np.exp(np.asarray(m.feature_log_prob[c], np.float64))
        draws = nb.sample(keys[2], m, labels, num_trials=50)
        np.testing.assert_array_equal(np.asarray(draws).sum(axis=1), 50.0)
        moment_ztest(draws, 50 * theta, np.diag(50 * theta * (1 - theta)))
    # different classes give different images (a sampler ignoring labels would fail)
    zeros = nb.sample(keys[3], g, jnp.zeros((500,), jnp.int32)).mean(axis=0)
    ones = nb.sample(keys[3], g, jnp.ones((500,), jnp.int32)).mean(axis=0)
    assert float(jnp.abs(zeros - ones).max()) > 0.3


# ---------------------------------------------------------------------------------------
# bad and extreme inputs
# ---------------------------------------------------------------------------------------


def test_bad_arguments_raise(digits, key):
    x, y, _ = digits
    with pytest.raises(ValueError, match="num_classes"):
        nb.fit_gaussian(x, y, num_classes=5)  # labels up to 9
    with pytest.raises(ValueError, match="num_classes"):
        nb.fit_multinomial(x, y, num_classes=0)
    with pytest.raises(ValueError, match="y must have shape"):
        nb.fit_bernoulli(x, y[:-1], num_classes=K)
    with pytest.raises(ValueError, match="integer"):
        nb.fit_bernoulli(x, y.astype(np.float32), num_classes=K)
    with pytest.raises(ValueError, match="alpha"):
        nb.fit_multinomial(x, y, num_classes=K, alpha=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        nb.fit_bernoulli(x, y, num_classes=K, alpha=float("inf"))
    with pytest.raises(ValueError, match="var_smoothing"):
        nb.fit_gaussian(x, y, num_classes=K, var_smoothing=-1e-9)
    with pytest.raises(ValueError, match="non-negative"):
        nb.fit_multinomial(x - 0.5, y, num_classes=K)
    with pytest.raises(ValueError, match="x must be"):
        nb.fit_gaussian(np.zeros(5), np.zeros(5, np.int32), num_classes=2)
    m = nb.fit_multinomial(x, y, num_classes=K)
    with pytest.raises(ValueError, match="num_trials"):
        nb.sample(key, m, jnp.zeros((3,), jnp.int32))
    with pytest.raises(ValueError, match="labels"):
        nb.sample(key, m, jnp.array([0, 10]), num_trials=5)


def test_alpha_zero_and_degenerate_features_stay_finite(digits):
    x, y, x_test = digits
    for params in (
        nb.fit_multinomial(x, y, num_classes=K, alpha=0.0),
        nb.fit_bernoulli(x, y, num_classes=K, alpha=0.0),
        nb.fit_gaussian(x, y, num_classes=K, var_smoothing=1e-12),
    ):
        lp = np.asarray(nb.predict_log_proba(params, x_test))
        assert not np.isnan(lp).any()
        # each row is a distribution: its logsumexp is 0 (some classes may be impossible)
        np.testing.assert_allclose(np.logaddexp.reduce(lp, axis=1), 0.0, atol=1e-5)
        assert np.isfinite(lp.max(axis=1)).all()
    # a training example's own class can never be impossible (all its features were seen)
    for params in (
        nb.fit_multinomial(x, y, num_classes=K, alpha=0.0),
        nb.fit_bernoulli(x, y, num_classes=K, alpha=0.0),
    ):
        lp = np.asarray(nb.predict_log_proba(params, x))
        assert np.isfinite(lp[np.arange(len(y)), y]).all()
        assert np.isneginf(lp).any()  # unsmoothed: other classes can be impossible
    # an example no class can produce (a pixel lit that was dark in all training images)
    first_pixel = x.reshape(len(x), -1)[:, :1]  # (n, 1), always 0 in the digits
    dark = nb.fit_multinomial(first_pixel, y, num_classes=K, alpha=0.0)
    lp = nb.predict_log_proba(dark, np.ones((1, 1), np.float32))
    np.testing.assert_allclose(lp, np.full((1, K), -np.log(K)), rtol=1e-6)


def test_single_class_and_single_example():
    x = np.array([[0.0, 1.0, 2.0]], np.float32)
    y = np.array([0], np.int32)
    for params in (
        nb.fit_gaussian(x, y, num_classes=1),
        nb.fit_multinomial(x, y, num_classes=1),
        nb.fit_bernoulli(x, y, num_classes=1),
    ):
        np.testing.assert_allclose(nb.predict_log_proba(params, x), [[0.0]], atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bernoulli_feature_almost_always_on_keeps_its_off_probability(x64, dtype):
    # P(b_j = 1 | c) = exp(l) with l just below 0: log(1 - p) = log(-expm1(l)) ~ log(-l).
    # Through log1p(-exp(l)), exp(l) is rounded to within an ulp of 1 first: float32 is 1%
    # off at l = -1e-7 (and -inf, the class impossible, above l = -3e-8); float64 is 1e-6
    # off at l = -1e-12.
    tiny = {np.float32: 1e-7, np.float64: 1e-12}[dtype]
    params = nb.BernoulliNB(
        class_log_prior=jnp.log(jnp.array([0.5, 0.5], dtype)),
        feature_log_prob=jnp.array([[-tiny], [np.log(0.5)]], dtype),  # (K=2, d=1)
        binarize=jnp.asarray(0.5, dtype),
    )
    x = jnp.zeros((1, 1), dtype)  # the feature off
    jll = nb.joint_log_likelihood(params, x)
    want = np.log(0.5) + np.array([[np.log(-np.expm1(-np.float64(dtype(tiny)))), np.log(0.5)]])
    # float32: one rounding of l and of expm1/log, 1e-6 relative; float64: 1e-12
    np.testing.assert_allclose(jll, want, rtol={np.float32: 1e-6, np.float64: 1e-12}[dtype])
    assert float(jll[0, 0]) < float(jll[0, 1])  # off is far likelier under class 1
