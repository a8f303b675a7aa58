"""Naive Bayes: Gaussian, multinomial and Bernoulli, as generative classifiers.

Naive Bayes models the joint ``p(x, c) = p(c) prod_j p(x_j | c)`` — features independent
given the class — so it both classifies, through Bayes' rule

    log P(c | x) = log p(c) + sum_j log p(x_j | c) - logsumexp_c'(...),

and generates: draw each feature of a class-conditional ``x ~ p(x | c)`` independently.
Fitting is counting (maximum likelihood, smoothed); the three variants differ in
``p(x_j | c)``:

* **Gaussian**: ``N(x_j; mu_cj, sigma2_cj)`` with the ML mean and variance, plus
  ``var_smoothing * max_j Var[x_j]`` on every variance (scikit-learn's convention, so that
  constant pixels get a finite density).
* **multinomial** (McCallum & Nigam 1998; IIR eq. 13.7): x holds counts,
  ``theta_cj = (N_cj + alpha) / (N_c + alpha d)`` with ``N_cj = sum_{i in c} x_ij``.
* **Bernoulli** (IIR eq. 13.3 and Fig. 13.3): ``b_j = [x_j > binarize]``,
  ``p_cj = (#{i in c: b_ij = 1} + alpha) / (N_c + 2 alpha)``.

Class priors are the class frequencies. ``x`` is ``(n, d)`` features; images such as
``(n, 8, 8, 1)`` are flattened to ``(n, 64)``. Every result matches scikit-learn's
GaussianNB / MultinomialNB / BernoulliNB (tested on digits, rtol 1e-5 in float64).

References:
  McCallum & Nigam, "A Comparison of Event Models for Naive Bayes Text Classification",
  AAAI workshop (1998). Manning, Raghavan & Schütze, "Introduction to Information
  Retrieval" (2008), ch. 13.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from genjax import checks
from genjax.gaussian import diag_normal_log_prob


def _register(cls, data_fields):
    return jax.tree_util.register_dataclass(cls, data_fields=data_fields, meta_fields=[])


@dataclasses.dataclass(frozen=True)
class GaussianNB:
    """Gaussian naive Bayes: ``p(x | c) = prod_j N(x_j; mu_cj, sigma2_cj)``.

    Example:
      >>> prior = jnp.log(jnp.array([0.5, 0.5]))
      >>> params = GaussianNB(prior, jnp.array([[0.0, 0.0], [5.0, 5.0]]), jnp.ones((2, 2)))
      >>> predict(params, jnp.array([[0.5, -0.5], [4.0, 6.0]])).tolist()
      [0, 1]
    """

    class_log_prior: jax.Array  # (K,) log p(c)
    means: jax.Array  # (K, d) mu_cj
    variances: jax.Array  # (K, d) sigma2_cj, smoothing included


@dataclasses.dataclass(frozen=True)
class MultinomialNB:
    """Multinomial naive Bayes: ``p(x | c) ∝ prod_j theta_cj^x_j`` over count features.

    Example:
      >>> theta = jnp.log(jnp.array([[0.9, 0.1], [0.1, 0.9]]))  # (K, d) word probabilities
      >>> params = MultinomialNB(jnp.log(jnp.array([0.5, 0.5])), theta)
      >>> predict(params, jnp.array([[5.0, 1.0], [0.0, 3.0]])).tolist()
      [0, 1]
    """

    class_log_prior: jax.Array  # (K,) log p(c)
    feature_log_prob: jax.Array  # (K, d) log theta_cj; each row logsumexps to 0


@dataclasses.dataclass(frozen=True)
class BernoulliNB:
    """Bernoulli naive Bayes: ``p(b | c) = prod_j p_cj^b_j (1 - p_cj)^(1 - b_j)``, ``b = [x > t]``.

    Example:
      >>> p = jnp.log(jnp.array([[0.9, 0.1], [0.1, 0.9]]))  # (K, d) log P(b_j = 1 | c)
      >>> params = BernoulliNB(jnp.log(jnp.array([0.5, 0.5])), p, jnp.asarray(0.5))
      >>> predict(params, jnp.array([[1.0, 0.0], [0.0, 1.0]])).tolist()
      [0, 1]
    """

    class_log_prior: jax.Array  # (K,) log p(c)
    feature_log_prob: jax.Array  # (K, d) log p_cj = log P(b_j = 1 | c)
    binarize: jax.Array  # () threshold: b_j = [x_j > binarize]


_register(GaussianNB, ["class_log_prior", "means", "variances"])
_register(MultinomialNB, ["class_log_prior", "feature_log_prob"])
_register(BernoulliNB, ["class_log_prior", "feature_log_prob", "binarize"])

NaiveBayes = GaussianNB | MultinomialNB | BernoulliNB


# --------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------


def _flatten(x) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim < 2:  # any rank >= 2: genjax.checks.ndim takes a fixed list
        raise ValueError(f"x must be (n, d) features or (n, ...) images, got shape {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x.reshape(x.shape[0], math.prod(x.shape[1:]))  # (n, d), n = 0 allowed here


def _check_labels(name: str, labels, num_classes: int) -> jax.Array:
    """Integer class labels in ``[0, num_classes)`` (values skipped when traced)."""
    labels = jnp.asarray(labels)
    checks.integer_array(name, labels)
    if checks.is_concrete(labels) and labels.size:
        values = np.asarray(labels)
        if values.min() < 0 or values.max() >= num_classes:
            raise ValueError(
                f"{name} must lie in [0, num_classes) = [0, {num_classes}), got labels in "
                f"[{values.min()}, {values.max()}]: num_classes does not match {name}"
            )
    return labels.astype(jnp.int32)


def _check_xy(x, y, num_classes) -> tuple[jax.Array, jax.Array]:
    checks.positive_int("num_classes", num_classes)
    x = _flatten(x)
    if x.shape[0] < 1:
        raise ValueError("x must hold at least one example")
    checks.shape("y", y, (x.shape[0],))
    return x, _check_labels("y", y, num_classes)


def _check_features(params, x) -> jax.Array:
    """Features for a fitted model: (n, ...) with ``d`` entries each, finite (and >= 0 for
    the multinomial model). A NaN feature would otherwise give every class the same
    ``-inf``/NaN score and a uniform posterior, i.e. a silent guess of class 0."""
    if not isinstance(params, (GaussianNB, MultinomialNB, BernoulliNB)):
        raise TypeError(f"params must be GaussianNB, MultinomialNB or BernoulliNB, got {params!r}")
    x = _flatten(x)
    table = params.means if isinstance(params, GaussianNB) else params.feature_log_prob
    d = table.shape[1]
    if x.shape[1] != d:
        raise ValueError(f"x must have {d} features per example (as in fitting), got shape "
                         f"{x.shape}")
    checks.finite("x", x)
    if isinstance(params, MultinomialNB):
        checks.nonnegative("x", x)
    return x


def _check_scalar(name: str, value) -> None:
    """A finite scalar ``>= 0`` (the value skipped when traced)."""
    checks.ndim(name, value, 0, "(a scalar)")
    checks.nonnegative(name, value)


def _class_counts(y: jax.Array, num_classes: int, dtype) -> tuple[jax.Array, jax.Array]:
    onehot = jax.nn.one_hot(y, num_classes, dtype=dtype)  # (n, K)
    return onehot, onehot.sum(axis=0)  # N_c: (K,)


def _log_prior(class_count: jax.Array) -> jax.Array:
    # log p(c) = log(N_c / n); an absent class gets -inf (it is never predicted)
    return jnp.log(class_count) - jnp.log(class_count.sum())


# --------------------------------------------------------------------------------------
# fitting
# --------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("num_classes",))
def _fit_gaussian(x, y, var_smoothing, *, num_classes: int) -> GaussianNB:
    onehot, n_c = _class_counts(y, num_classes, x.dtype)  # (n, K), (K,)
    safe_n = jnp.maximum(n_c, 1.0)[:, None]  # (K, 1)
    means = onehot.T @ x / safe_n  # mu_cj = sum_{i in c} x_ij / N_c: (K, d)
    centred = x - means[y]  # (n, d), two passes for accuracy
    variances = onehot.T @ (centred * centred) / safe_n  # ML sigma2_cj: (K, d)
    # scikit-learn's epsilon: var_smoothing times the largest per-feature variance of x
    epsilon = var_smoothing * jnp.max(jnp.var(x, axis=0))
    return GaussianNB(_log_prior(n_c), means, variances + epsilon)


def fit_gaussian(
    x: jax.Array, y: jax.Array, *, num_classes: int, var_smoothing: float = 1e-9
) -> GaussianNB:
    """Gaussian naive Bayes by maximum likelihood.

    Args:
      x: (n, d) real features, or (n, ...) images (flattened).
      y: (n,) int labels in [0, num_classes).
      num_classes: K.
      var_smoothing: >= 0; ``var_smoothing * max_j Var[x_j]`` is added to every variance.

    Returns:
      :class:`GaussianNB`.
    """
    x, y = _check_xy(x, y, num_classes)
    checks.finite("x", x)
    _check_scalar("var_smoothing", var_smoothing)
    return _fit_gaussian(x, y, var_smoothing, num_classes=num_classes)


@functools.partial(jax.jit, static_argnames=("num_classes",))
def _fit_multinomial(x, y, alpha, *, num_classes: int) -> MultinomialNB:
    onehot, n_c = _class_counts(y, num_classes, x.dtype)
    smoothed = onehot.T @ x + alpha  # N_cj + alpha: (K, d)
    # IIR eq. 13.7: theta_cj = (N_cj + alpha) / sum_j' (N_cj' + alpha)
    log_theta = jnp.log(smoothed) - jnp.log(smoothed.sum(axis=1, keepdims=True))
    return MultinomialNB(_log_prior(n_c), log_theta)


def fit_multinomial(
    x: jax.Array, y: jax.Array, *, num_classes: int, alpha: float = 1.0
) -> MultinomialNB:
    """Multinomial naive Bayes with Lidstone smoothing alpha.

    Args:
      x: (n, d) non-negative counts (or intensities), or (n, ...) images (flattened).
      y: (n,) int labels in [0, num_classes).
      num_classes: K.
      alpha: >= 0 pseudo-count per feature and class.

    Returns:
      :class:`MultinomialNB`.
    """
    x, y = _check_xy(x, y, num_classes)
    _check_scalar("alpha", alpha)
    checks.nonnegative("x", x)  # counts (or intensities) for a multinomial model
    return _fit_multinomial(x, y, alpha, num_classes=num_classes)


@functools.partial(jax.jit, static_argnames=("num_classes",))
def _fit_bernoulli(x, y, alpha, binarize, *, num_classes: int) -> BernoulliNB:
    onehot, n_c = _class_counts(y, num_classes, x.dtype)
    b = (x > binarize).astype(x.dtype)  # b_ij = [x_ij > threshold]: (n, d)
    # p_cj = (#{i in c: b_ij = 1} + alpha) / (N_c + 2 alpha)
    log_p = jnp.log(onehot.T @ b + alpha) - jnp.log(n_c + 2 * alpha)[:, None]
    return BernoulliNB(_log_prior(n_c), log_p, jnp.asarray(binarize, x.dtype))


def fit_bernoulli(
    x: jax.Array, y: jax.Array, *, num_classes: int, alpha: float = 1.0, binarize: float = 0.5
) -> BernoulliNB:
    """Bernoulli naive Bayes over the binarized features ``x > binarize``.

    Args:
      x: (n, d) features, or (n, ...) images (flattened).
      y: (n,) int labels in [0, num_classes).
      num_classes: K.
      alpha: >= 0 pseudo-count per feature value and class.
      binarize: threshold; features already in {0, 1} pass unchanged with any value in
        [0, 1).

    Returns:
      :class:`BernoulliNB`.
    """
    x, y = _check_xy(x, y, num_classes)
    checks.finite("x", x)
    _check_scalar("alpha", alpha)
    checks.ndim("binarize", binarize, 0, "(a scalar threshold)")
    checks.finite("binarize", binarize)
    return _fit_bernoulli(x, y, alpha, binarize, num_classes=num_classes)


# --------------------------------------------------------------------------------------
# classification
# --------------------------------------------------------------------------------------


def _masked_dot(x: jax.Array, log_w: jax.Array) -> jax.Array:
    """sum_j x_ij log w_cj with 0 * log 0 = 0 (an unsmoothed zero probability).

    x: (n, d) >= 0, log_w: (K, d) -> (n, K); -inf where some x_ij > 0 meets log w_cj = -inf.
    """
    finite = jnp.isfinite(log_w)
    total = x @ jnp.where(finite, log_w, 0.0).T  # (n, K)
    hits_zero = (x > 0).astype(x.dtype) @ (~finite).astype(x.dtype).T  # (n, K)
    return jnp.where(hits_zero > 0, -jnp.inf, total)


def joint_log_likelihood(params: NaiveBayes, x: jax.Array) -> jax.Array:
    """log p(x, c) up to a constant in c, per example and class. x: (n, d) -> (n, K).

    ``x`` must be finite with the fitted number of features (checked when concrete).
    """
    x = _check_features(params, x)
    if isinstance(params, GaussianNB):
        # sum_j log N(x_j; mu_cj, sigma2_cj): a diagonal Gaussian per class, (n, K)
        log_lik = diag_normal_log_prob(x[:, None, :], params.means[None, :, :],
                                       jnp.log(params.variances)[None, :, :])  # fmt: skip
        return params.class_log_prior[None, :] + log_lik
    if isinstance(params, MultinomialNB):
        # sum_j x_j log theta_cj (the multinomial coefficient is the same for every c)
        return params.class_log_prior[None, :] + _masked_dot(x, params.feature_log_prob)
    if isinstance(params, BernoulliNB):
        b = (x > params.binarize).astype(x.dtype)  # (n, d)
        log_p = params.feature_log_prob  # log p_cj: (K, d)
        # log(1 - p_cj) = log1mexp(log p_cj) (Maechler 2012): log(-expm1(l)) near p = 1,
        # where exp(l) rounds to 1 and log1p(-exp(l)) loses every digit, log1p(-exp(l)) else
        log_not_p = jnp.where(
            log_p > -math.log(2.0),
            jnp.log(-jnp.expm1(jnp.minimum(log_p, 0.0))),
            jnp.log1p(-jnp.exp(jnp.minimum(log_p, -math.log(2.0)))),
        )
        # sum_j b_j log p_cj + (1 - b_j) log(1 - p_cj)
        return params.class_log_prior[None, :] + _masked_dot(b, log_p) + _masked_dot(
            1.0 - b, log_not_p
        )
    raise TypeError(f"params must be GaussianNB, MultinomialNB or BernoulliNB, got {params!r}")


def predict_log_proba(params: NaiveBayes, x: jax.Array) -> jax.Array:
    """log P(c | x) by Bayes' rule. x: (n, d) or (n, ...) images -> (n, K).

    With ``alpha = 0`` an example can have probability zero under every class (a feature
    value no class showed in training); its posterior is then 0 / 0, and we return the
    uniform ``-log K`` rather than NaN. A non-finite feature is an error (ValueError).
    """
    return _predict_log_proba(params, _check_features(params, x))


@jax.jit
def _predict_log_proba(params: NaiveBayes, x: jax.Array) -> jax.Array:
    jll = joint_log_likelihood(params, x)  # (n, K)
    possible = jnp.any(jll > -jnp.inf, axis=1, keepdims=True)  # (n, 1)
    jll = jnp.where(possible, jll, 0.0)
    return jll - jax.nn.logsumexp(jll, axis=1, keepdims=True)


def predict(params: NaiveBayes, x: jax.Array) -> jax.Array:
    """The most probable class. x: (n, d) or (n, ...) images -> (n,) int32 (finite x)."""
    return _predict(params, _check_features(params, x))


@jax.jit
def _predict(params: NaiveBayes, x: jax.Array) -> jax.Array:
    return jnp.argmax(joint_log_likelihood(params, x), axis=1).astype(jnp.int32)


# --------------------------------------------------------------------------------------
# generation
# --------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("num_trials",))
def _sample(key, params: NaiveBayes, labels, *, num_trials: int | None):
    if isinstance(params, GaussianNB):
        mean, var = params.means[labels], params.variances[labels]  # (m, d)
        return mean + jnp.sqrt(var) * jax.random.normal(key, mean.shape, mean.dtype)
    if isinstance(params, BernoulliNB):
        p = jnp.exp(params.feature_log_prob[labels])  # (m, d)
        return (jax.random.uniform(key, p.shape, p.dtype) < p).astype(p.dtype)
    logits = params.feature_log_prob[labels]  # (m, d)
    m, d = logits.shape
    # num_trials categorical draws per example, tallied by a scatter-add: (m, d) counts
    draws = jax.random.categorical(key, logits, axis=-1, shape=(num_trials, m))
    rows = jnp.broadcast_to(jnp.arange(m)[None, :], draws.shape)
    return jnp.zeros((m, d), logits.dtype).at[rows, draws].add(1.0)


def sample(
    key: jax.Array, params: NaiveBayes, labels: jax.Array, *, num_trials: int | None = None
) -> jax.Array:
    """Class-conditional draws ``x ~ p(x | c)``, one per label.

    Gaussian: ``x_j ~ N(mu_cj, sigma2_cj)``; Bernoulli: ``x_j ~ Bernoulli(p_cj)`` (the
    binarized features, 0.0 / 1.0); multinomial: counts of ``num_trials`` draws from
    ``Categorical(theta_c)`` — the model leaves the document length free, so the caller
    names it (required for multinomial, ignored otherwise).

    Args:
      key: a JAX key.
      params: fitted naive Bayes parameters.
      labels: (m,) int classes in [0, K).
      num_trials: the total count of each multinomial draw, >= 0.

    Returns:
      (m, d) features (flattened; reshape to images as needed).

    Example:
      >>> prior = jnp.log(jnp.array([0.5, 0.5]))
      >>> params = GaussianNB(prior, jnp.array([[0.0, 0.0], [5.0, 5.0]]), jnp.full((2, 2), 1e-6))
      >>> jnp.round(sample(jax.random.key(0), params, jnp.array([1, 0]))).tolist()
      [[5.0, 5.0], [0.0, 0.0]]
    """
    checks.ndim("labels", labels, 1, "(m,)")
    labels = _check_labels("labels", labels, params.class_log_prior.shape[0])
    if isinstance(params, MultinomialNB):
        num_trials = checks.nonnegative_int("num_trials", num_trials)
    elif not isinstance(params, (GaussianNB, BernoulliNB)):
        raise TypeError(f"params must be GaussianNB, MultinomialNB or BernoulliNB, got {params!r}")
    else:
        num_trials = None
    return _sample(key, params, labels, num_trials=num_trials)
