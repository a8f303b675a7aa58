"""Agreement with scikit-learn's ``GaussianMixture`` from the same initial parameters.

scikit-learn runs the same EM (its M-step adds ``10 eps`` to ``N_k`` and ``reg_covar`` to
the variances; it stops in iteration t when the change of the mean log-likelihood per
sample, its "lower bound", is below ``tol``), so in float64 the two must give the same
iteration count, the same per-iteration log-likelihoods (``lower_bounds_``) and the same
parameters up to summation order: rtol 1e-8 after tens of iterations.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import mixture
from tests.mixture import COVARIANCE_TYPES, initial_params, three_blobs

sklearn_mixture = pytest.importorskip("sklearn.mixture")


def _precisions(covs: np.ndarray, covariance_type: str) -> np.ndarray:
    return np.linalg.inv(covs) if covariance_type == "full" else 1.0 / covs


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_same_iterates_as_sklearn(x64, covariance_type):
    x = three_blobs(300, seed=9)
    w0, m0, c0 = initial_params(x, 3, covariance_type, seed=2)
    tol, reg_covar = 1e-5, 1e-4
    reference = sklearn_mixture.GaussianMixture(
        n_components=3, covariance_type=covariance_type, tol=tol, reg_covar=reg_covar,
        max_iter=200, weights_init=w0, means_init=m0,
        precisions_init=_precisions(c0, covariance_type), random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a ConvergenceWarning would be a test failure below
        reference.fit(x)
    init = mixture.GMMParams(
        jnp.asarray(w0), jnp.asarray(m0), jnp.asarray(c0), covariance_type
    )
    params, hist = mixture.fit(
        jax.random.key(0), jnp.asarray(x), k=3, covariance_type=covariance_type, init=init,
        max_iter=200, tol=tol, reg_covar=reg_covar,
    )
    assert reference.converged_ and bool(hist.converged)
    assert int(hist.n_iter) == reference.n_iter_ > 5
    n = int(hist.n_iter)
    np.testing.assert_allclose(hist.log_likelihood[:n], reference.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(params.weights, reference.weights_, rtol=1e-8)
    np.testing.assert_allclose(params.means, reference.means_, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(params.covs, reference.covariances_, rtol=1e-8, atol=1e-12)
    xq = jnp.asarray(x)
    np.testing.assert_allclose(mixture.log_prob(params, xq), reference.score_samples(x),
                               rtol=1e-10)
    np.testing.assert_allclose(mixture.bic(params, xq), reference.bic(x), rtol=1e-10)
    np.testing.assert_array_equal(mixture.predict(params, xq), reference.predict(x))
