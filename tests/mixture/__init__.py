"""Tests of genjax.mixture; the small data sets they share (fixed seeds, float64 NumPy)."""

from __future__ import annotations

import numpy as np

COVARIANCE_TYPES = ("full", "diag", "spherical")


def three_blobs(n: int = 240, seed: int = 0) -> np.ndarray:
    """Three overlapping, anisotropic 2-D clusters: EM needs tens of iterations on them."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [2.5, 1.0], [0.5, 3.0]])
    shapes = np.array(  # (3, 2, 2) square roots of the cluster covariances
        [[[1.0, 0.0], [0.6, 0.5]], [[0.7, 0.3], [0.0, 0.4]], [[0.5, 0.0], [0.0, 1.2]]]
    )
    labels = rng.integers(0, 3, size=n)
    eps = rng.standard_normal((n, 2))
    return centres[labels] + np.einsum("nde,ne->nd", shapes[labels], eps)


def initial_params(x: np.ndarray, k: int, covariance_type: str, seed: int = 1):
    """A deliberately rough start: K random points as means, the data variance everywhere."""
    rng = np.random.default_rng(seed)
    means = x[rng.choice(len(x), size=k, replace=False)]
    weights = np.full(k, 1.0 / k)
    var = x.var(axis=0)
    dim = x.shape[1]
    covs = {
        "full": np.stack([np.diag(var)] * k),
        "diag": np.stack([var] * k),
        "spherical": np.full(k, var.mean()),
    }[covariance_type]
    assert means.shape == (k, dim)
    return weights, means, covs
