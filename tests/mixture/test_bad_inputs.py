"""Bad and extreme inputs for every public function of the mixture family (issue 16).

Each :class:`BadInput` names the argument a call gets wrong; ``assert_handled`` requires a
``ValueError``/``TypeError`` naming it, or a finite, correct answer for a valid extreme.
(``tests/mixture/test_errors.py`` checks the messages of ``fit`` in detail; these cases
cover every public function.) Tiny data, at most 3 EM iterations.

Finding 13 of issue 16 (``fit`` with ``reg_covar=0`` on duplicate points gave NaN): the
``fit: reg_covar = 0 on duplicate points`` extremes, whose answer must be finite and put a
component on each distinct point.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import mixture
from genjax.testing import BadInput, assert_handled

KEY = jax.random.key(0)
X = jnp.asarray(np.random.default_rng(0).normal(size=(12, 2)), jnp.float32)
POINTS = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]], np.float32)
DUPLICATES = jnp.asarray(np.repeat(POINTS, 4, axis=0))  # (12, 2): each point 4 times


def _params(k: int = 2, covariance_type: str = "full") -> mixture.GMMParams:
    covs = {"full": np.stack([np.eye(2)] * k), "diag": np.ones((k, 2)), "spherical": np.ones(k)}
    return mixture.GMMParams(jnp.full(k, 1.0 / k), jnp.asarray([[0.0, 0.0], [1.0, 1.0]][:k]),
                             jnp.asarray(covs[covariance_type], jnp.float32), covariance_type)


P = _params()
NEG_WEIGHTS = mixture.GMMParams(jnp.array([1.5, -0.5]), P.means, P.covs)
INDEFINITE = mixture.GMMParams(P.weights, P.means,
                               P.covs.at[1].set(jnp.array([[1.0, 2.0], [2.0, 1.0]])))
NAN_X = X.at[3, 1].set(jnp.nan)


def _one_component_per_point(params: mixture.GMMParams) -> bool:
    found = np.sort(np.asarray(params.means)[:, 0])
    return bool(np.allclose(found, POINTS[:, 0], atol=1e-3))


def _cases() -> list[BadInput]:
    return [
        BadInput("fit: k > n", lambda: mixture.fit(KEY, X, k=13), "k"),
        BadInput("fit: NaN in x", lambda: mixture.fit(KEY, NAN_X, k=2), "x"),
        BadInput("fit: reg_covar < 0", lambda: mixture.fit(KEY, X, k=2, reg_covar=-1.0),
                 "reg_covar"),
        BadInput("fit: tol NaN", lambda: mixture.fit(KEY, X, k=2, tol=float("nan")), "tol"),
        BadInput("fit: init of another k", lambda: mixture.fit(KEY, X, k=3, init=P), "init"),
        BadInput("fit: init with negative weights",
                 lambda: mixture.fit(KEY, X, k=2, init=NEG_WEIGHTS), "init.weights"),
        BadInput("fit: init with an indefinite covariance",
                 lambda: mixture.fit(KEY, X, k=2, init=INDEFINITE), "init.covs"),
        BadInput("fit: sample_weight with NaN",
                 lambda: mixture.fit(KEY, X, k=2, sample_weight=jnp.ones(12).at[0].set(jnp.nan)),
                 "sample_weight"),
        BadInput("fit: integer x (counts) of one column, 1-D",
                 lambda: mixture.fit(KEY, jnp.arange(12), k=2), "x"),
        BadInput("initialize: method 'random_points'",
                 lambda: mixture.initialize(KEY, X, k=2, method="random_points"), "method"),
        BadInput("initialize: k = 0", lambda: mixture.initialize(KEY, X, k=0), "k"),
        BadInput("kmeans_plusplus: x with inf",
                 lambda: mixture.kmeans_plusplus(KEY, X.at[0, 0].set(jnp.inf), 2), "x"),
        BadInput("kmeans_plusplus_from_noise: uniforms outside [0, 1)",
                 lambda: mixture.kmeans_plusplus_from_noise(X, jnp.full((2,), 1.5), jnp.ones(12)),
                 "uniforms"),
        BadInput("kmeans_plusplus_from_noise: sample_weight of another n",
                 lambda: mixture.kmeans_plusplus_from_noise(X, jnp.full((2,), 0.5), jnp.ones(5)),
                 "sample_weight"),
        BadInput("random_from_noise: k > n",
                 lambda: mixture.random_from_noise(jnp.ones(12), jnp.zeros((12,)), 13), "k"),
        BadInput("random_from_noise: gumbels of another n",
                 lambda: mixture.random_from_noise(jnp.ones(12), jnp.zeros((5,)), 2), "gumbels"),
        BadInput("params_from_centres: centres of another dimension",
                 lambda: mixture.params_from_centres(X, jnp.zeros((2, 3))), "centres"),
        BadInput("e_step: x of another dimension",
                 lambda: mixture.e_step(P, jnp.zeros((4, 3))), "x"),
        BadInput("e_step: NaN in x", lambda: mixture.e_step(P, NAN_X), "x"),
        BadInput("m_step: log_resp of another n",
                 lambda: mixture.m_step(X, jnp.zeros((5, 2))), "log_resp"),
        BadInput("m_step: log_resp positive (not log-probabilities)",
                 lambda: mixture.m_step(X, jnp.ones((12, 2))), "log_resp"),
        BadInput("em_step: params with an indefinite covariance",
                 lambda: mixture.em_step(INDEFINITE, X), "covs"),
        BadInput("log_prob: NaN in x", lambda: mixture.log_prob(P, NAN_X), "x"),
        BadInput("log_prob: params with negative weights",
                 lambda: mixture.log_prob(NEG_WEIGHTS, X), "weights"),
        BadInput("component_log_prob: x 1-D", lambda: mixture.component_log_prob(P, X[0]), "x"),
        BadInput("predict: x of another dimension",
                 lambda: mixture.predict(P, jnp.zeros((4, 3))), "x"),
        BadInput("predict_proba: NaN in x", lambda: mixture.predict_proba(P, NAN_X), "x"),
        BadInput("bic: x of another dimension", lambda: mixture.bic(P, jnp.zeros((4, 3))), "x"),
        BadInput("sample: n = 0", lambda: mixture.sample(KEY, P, 0), "n"),
        BadInput("sample: params with negative weights",
                 lambda: mixture.sample(KEY, NEG_WEIGHTS, 4), "weights"),
        BadInput("sample_from_noise: components out of range",
                 lambda: mixture.sample_from_noise(P, jnp.array([0, 2]), jnp.zeros((2, 2))),
                 "components"),
        BadInput("sample_from_noise: eps of another shape",
                 lambda: mixture.sample_from_noise(P, jnp.array([0, 1]), jnp.zeros((2, 3))),
                 "eps"),
        BadInput("GMMParams: covariance_type 'tied'",
                 lambda: mixture.GMMParams(P.weights, P.means, P.covs, "tied"),
                 "covariance_type"),
        BadInput("full_covariances: covs of the wrong shape",
                 lambda: mixture.full_covariances(mixture.GMMParams(
                     P.weights, P.means, jnp.ones((2, 3)), "diag")), "covs"),
        BadInput("precision_cholesky: indefinite covariance",
                 lambda: mixture.precision_cholesky(INDEFINITE), "covs"),
        BadInput("n_parameters: means 1-D",
                 lambda: mixture.n_parameters(mixture.GMMParams(
                     P.weights, jnp.zeros(2), P.covs)), "means"),
        BadInput("fit: reg_covar = 0 on duplicate points (full)",
                 lambda: mixture.fit(KEY, DUPLICATES, k=3, reg_covar=0.0, max_iter=3)[0],
                 kind="extreme", check=_one_component_per_point),
        BadInput("fit: reg_covar = 0 on duplicate points (spherical)",
                 lambda: mixture.fit(KEY, DUPLICATES, k=3, covariance_type="spherical",
                                     reg_covar=0.0, max_iter=3)[0],
                 kind="extreme", check=_one_component_per_point),
        BadInput("fit: reg_covar = 0, every point the same",
                 lambda: mixture.fit(KEY, jnp.ones((6, 2)), k=1, reg_covar=0.0, max_iter=3)[0],
                 kind="extreme"),
        BadInput("log_prob: x at 1e18 (valid, far from every mode)",
                 lambda: mixture.log_prob(P, jnp.full((1, 2), 1e18)), kind="extreme"),
    ]


CASES: list[BadInput] = _cases()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_handled(case: BadInput) -> None:
    assert_handled(case)
