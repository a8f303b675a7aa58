"""Bad input raises a ValueError that names the argument."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import mixture

X = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
KEY = jax.random.key(0)


def _params(k=3, d=2, covariance_type="full"):
    covs = {"full": np.stack([np.eye(d)] * k), "diag": np.ones((k, d)), "spherical": np.ones(k)}
    return mixture.GMMParams(
        jnp.full(k, 1.0 / k), jnp.zeros((k, d)), jnp.asarray(covs[covariance_type]),
        covariance_type,
    )


def _bad_init(what: str) -> mixture.GMMParams:
    good = _params()
    if what == "weights":
        return mixture.GMMParams(jnp.asarray([0.5, 0.6, -0.1]), good.means, good.covs)
    if what == "covs":  # an indefinite matrix
        covs = good.covs.at[1].set(jnp.asarray([[1.0, 2.0], [2.0, 1.0]]))
        return mixture.GMMParams(good.weights, good.means, covs)
    return mixture.GMMParams(good.weights, good.means, jnp.asarray([[1.0, 1.0], [0.0, 1.0],
                                                                   [1.0, 1.0]]))


def _nan_data():
    x = X.copy()
    x[3, 1] = np.nan
    return x


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(k=21), r"k must be an integer in \[1, 20\], got 21"),  # more than the points
        (dict(k=0), r"k must be an integer in \[1, 20\]"),
        (dict(k=-2), r"k must be an integer in \[1, 20\]"),
        (dict(k=2.5), r"k must be an integer in \[1, 20\], got 2.5"),
        (dict(k=2, reg_covar=-1e-3), "reg_covar"),
        (dict(k=2, covariance_type="tied"), "covariance_type"),
        (dict(k=2, init="kmeans"), "init"),
        (dict(k=2, max_iter=0), "max_iter"),
        (dict(k=2, tol=-1.0), "tol"),
        (dict(k=2, sample_weight=np.ones(19)), "sample_weight"),
        (dict(k=2, sample_weight=-np.ones(20)), "sample_weight"),
        (dict(k=2, sample_weight=np.zeros(20)), "sample_weight"),
        (dict(k=2, init=_params(k=3)), "init"),  # k mismatch
        (dict(k=3, init=_params(k=3, d=3)), "init"),  # D mismatch
        (dict(k=3, init=_params(k=3, covariance_type="diag")), "covariance_type"),
        (dict(k=3, init=_bad_init("weights")), "init.weights"),
        (dict(k=3, init=_bad_init("covs")), "init.covs"),
        (dict(k=3, covariance_type="diag", init=_bad_init("variances")), "init.covs"),
    ],
)
def test_fit_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mixture.fit(KEY, X, **kwargs)


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (_nan_data(), "x must be finite"),
        (np.where(np.arange(40).reshape(20, 2) == 7, np.inf, X), "x must be finite"),
        (X[:, 0], r"x must have 2 dimensions \(n, D\) \(for 1-D data use x\[:, None\]\)"),
        (X[None], r"x must have 2 dimensions \(n, D\)"),
    ],
)
def test_fit_rejects_bad_data(x, match):
    with pytest.raises(ValueError, match=match):
        mixture.fit(KEY, x, k=2)


def test_functions_reject_mismatched_shapes():
    params = _params()
    x3 = np.zeros((5, 3), np.float32)
    with pytest.raises(ValueError, match="x has 3 features"):
        mixture.e_step(params, x3)
    with pytest.raises(ValueError, match="x has 3 features"):
        mixture.log_prob(params, x3)
    with pytest.raises(ValueError, match="x has 3 features"):
        mixture.bic(params, x3)
    with pytest.raises(ValueError, match="log_resp"):
        mixture.m_step(X, np.zeros((19, 3)))
    with pytest.raises(ValueError, match="covariance_type"):
        mixture.m_step(X, np.zeros((20, 3)), covariance_type="diagonal")
    with pytest.raises(ValueError, match="reg_covar"):
        mixture.m_step(X, np.zeros((20, 3)), reg_covar=-1.0)
    bad = mixture.GMMParams(jnp.ones(3) / 3, jnp.zeros((3, 2)), jnp.ones((3, 3)), "diag")
    with pytest.raises(ValueError, match=r"params.covs must have shape \(3, 2\)"):
        mixture.log_prob(bad, X)
    with pytest.raises(ValueError, match="covariance_type"):
        mixture.GMMParams(jnp.ones(3), jnp.zeros((3, 2)), jnp.ones(3), "tied")
    with pytest.raises(ValueError, match="n must be"):
        mixture.sample(KEY, params, 0)
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 20\]"):
        mixture.kmeans_plusplus(KEY, X, 25)
