"""NumPy float64 oracle for :mod:`genjax.metrics`, written from the definitions.

Imports NumPy and the standard library only. Distances are taken coordinate-wise (no Gram
expansion); the 1-D 2-Wasserstein distance between unequal sample sizes replicates each
sorted sample to ``lcm(n, m)`` points (an empirical law with ``n`` atoms of mass ``1/n`` is
the same law as ``lcm/n`` copies of each); the Frechet distance takes ``Tr((S_a S_b)^{1/2})``
from the (real, non-negative) eigenvalues of the non-symmetric product ``S_a S_b``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "pairwise_sq_dists",
    "median_bandwidth",
    "mmd",
    "energy_distance",
    "sliced_wasserstein",
    "mode_coverage",
    "occupancy_kl",
    "bits_per_dim",
    "frechet_distance",
    "frechet_distance_gaussian",
]

_MEDIAN_POINTS = 128


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def pairwise_sq_dists(x, y) -> np.ndarray:
    """``|x_i - y_j|^2`` for ``x: (n, D)``, ``y: (m, D)`` -> ``(n, m)``."""
    x, y = _f64(x), _f64(y)
    return np.sum((x[:, None, :] - y[None, :, :]) ** 2, axis=-1)


def _subsample(a: np.ndarray) -> np.ndarray:
    idx = np.arange(0, a.shape[0], max(1, a.shape[0] // _MEDIAN_POINTS))[:_MEDIAN_POINTS]
    return a[idx]


def median_bandwidth(x, y) -> float:
    """Median distance over distinct pairs of a pooled subsample: 128 rows of each set at
    stride ``n // 128`` (all rows when fewer)."""
    z = np.concatenate([_subsample(_f64(x)), _subsample(_f64(y))])
    d = np.sqrt(pairwise_sq_dists(z, z))
    h = float(np.median(d[np.triu_indices(z.shape[0], k=1)]))
    return h if h > 0 else 1.0


def mmd(x, y, bandwidth: float | None = None, unbiased: bool = False) -> float:
    """Squared MMD with ``k = exp(-|a-b|^2 / (2 h^2))``; V-statistic unless ``unbiased``."""
    h = median_bandwidth(x, y) if bandwidth is None else float(bandwidth)
    kxx = np.exp(-pairwise_sq_dists(x, x) / (2 * h * h))
    kyy = np.exp(-pairwise_sq_dists(y, y) / (2 * h * h))
    kxy = np.exp(-pairwise_sq_dists(x, y) / (2 * h * h))
    if unbiased:
        n, m = kxx.shape[0], kyy.shape[0]
        off_x = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
        off_y = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        return float(off_x + off_y - 2 * kxy.mean())
    return float(kxx.mean() + kyy.mean() - 2 * kxy.mean())


def energy_distance(x, y) -> float:
    """``2 E|X-Y| - E|X-X'| - E|Y-Y'|`` over the empirical distributions."""
    dxy = np.sqrt(pairwise_sq_dists(x, y)).mean()
    dxx = np.sqrt(pairwise_sq_dists(x, x)).mean()
    dyy = np.sqrt(pairwise_sq_dists(y, y)).mean()
    return float(2 * dxy - dxx - dyy)


def _w2_squared_1d(a: np.ndarray, b: np.ndarray) -> float:
    n, m = a.shape[0], b.shape[0]
    big = n * m // math.gcd(n, m)
    qa = np.repeat(np.sort(a), big // n)  # same law, lcm atoms
    qb = np.repeat(np.sort(b), big // m)
    return float(np.mean((qa - qb) ** 2))


def sliced_wasserstein(x, y, directions) -> float:
    """``(mean_p W_2^2(<theta_p, X>, <theta_p, Y>))^{1/2}`` over ``directions: (P, D)``."""
    x, y, directions = _f64(x), _f64(y), _f64(directions)
    w2 = [_w2_squared_1d(x @ t, y @ t) for t in directions]
    return float(np.sqrt(np.mean(w2)))


def mode_coverage(samples, means, radius: float) -> float:
    """Fraction of ``means`` with some sample within Euclidean ``radius``."""
    samples, means = _f64(samples), _f64(means)
    hits = [np.any(np.linalg.norm(samples - mu, axis=1) <= radius) for mu in means]
    return float(np.mean(hits))


def occupancy_kl(counts) -> float:
    """``sum_k q_k log(K q_k)``, ``q = counts / sum(counts)``, ``0 log 0 = 0``; NaN if no counts."""
    counts = _f64(counts)
    if counts.sum() == 0:
        return float("nan")
    q = counts / counts.sum()
    nz = q > 0
    return float(np.sum(q[nz] * np.log(len(q) * q[nz])))


def bits_per_dim(nll_nats, num_dims: int):
    """``nll / (num_dims ln 2)``."""
    return _f64(nll_nats) / (num_dims * math.log(2.0))


def frechet_distance_gaussian(mu_a, cov_a, mu_b, cov_b) -> float:
    """``|mu_a - mu_b|^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^{1/2})``.

    ``S_a S_b`` is similar to the PSD matrix ``S_a^{1/2} S_b S_a^{1/2}``, so its
    eigenvalues are real and non-negative; ``Tr((S_a S_b)^{1/2})`` is the sum of their
    square roots.
    """
    mu_a, cov_a, mu_b, cov_b = map(_f64, (mu_a, cov_a, mu_b, cov_b))
    lam = np.linalg.eigvals(cov_a @ cov_b)
    tr_cross = float(np.sum(np.sqrt(np.clip(lam.real, 0.0, None))))
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_cross)


def frechet_distance(feats_a, feats_b) -> float:
    """Frechet distance between Gaussians fitted with ``ddof=1`` covariances."""
    a, b = _f64(feats_a), _f64(feats_b)
    return frechet_distance_gaussian(
        a.mean(0),
        np.cov(a, rowvar=False, ddof=1).reshape(a.shape[1], a.shape[1]),
        b.mean(0),
        np.cov(b, rowvar=False, ddof=1).reshape(b.shape[1], b.shape[1]),
    )
