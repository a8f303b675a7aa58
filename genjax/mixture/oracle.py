"""NumPy float64 oracle for Gaussian-mixture EM, written from Bishop (2006), §9.2.

Imports NumPy only. Every function works one component at a time with dense covariance
matrices, a log-determinant from ``slogdet`` and a linear solve -- a deliberately
different route from the JAX code (Cholesky whitening, fused loops) to the same numbers.

Conventions shared with :mod:`genjax.mixture` (and scikit-learn's ``GaussianMixture``):
covariances stored as ``(K, D, D)`` / ``(K, D)`` / ``(K,)`` for full / diag / spherical;
``N_k`` gets ``10 * eps`` added; ``reg_covar`` is added to every variance; the loop stops
in iteration ``t`` when ``|L_t - L_{t-1}| < tol`` with ``L_t`` the mean log-likelihood of
the parameters entering iteration ``t`` and ``L_0 = -inf``.
"""

from __future__ import annotations

import math

import numpy as np

EPS64 = np.finfo(np.float64).eps


def dense_covariances(covs: np.ndarray, covariance_type: str, dim: int) -> np.ndarray:
    """``Sigma_k`` as ``(K, D, D)`` matrices from the compact storage."""
    covs = np.asarray(covs, np.float64)
    if covariance_type == "full":
        return covs
    if covariance_type == "diag":
        return np.stack([np.diag(c) for c in covs])
    return np.stack([c * np.eye(dim) for c in covs])


def gaussian_log_density(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """``log N(x_n; mu, Sigma) = -1/2 [D log 2 pi + log|Sigma| + (x-mu)^T Sigma^{-1} (x-mu)]``.

    Bishop eq. 2.43. ``x``: ``(n, D)``, ``mean``: ``(D,)``, ``cov``: ``(D, D)`` -> ``(n,)``.
    """
    dim = x.shape[1]
    sign, logdet = np.linalg.slogdet(cov)
    assert sign > 0, "covariance is not positive definite"
    centred = x - mean  # (n, D)
    quad = np.sum(centred * np.linalg.solve(cov, centred.T).T, axis=1)  # (n,)
    return -0.5 * (dim * math.log(2 * math.pi) + logdet + quad)


def weighted_log_densities(weights, means, covs, covariance_type, x) -> np.ndarray:
    """``log pi_k + log N(x_n; mu_k, Sigma_k)``: ``(n, K)``."""
    x = np.asarray(x, np.float64)
    dense = dense_covariances(covs, covariance_type, x.shape[1])
    cols = [
        math.log(weights[k]) if weights[k] > 0 else -np.inf for k in range(len(weights))
    ]
    return np.stack(
        [cols[k] + gaussian_log_density(x, means[k], dense[k]) for k in range(len(weights))],
        axis=1,
    )


def log_prob(weights, means, covs, covariance_type, x) -> np.ndarray:
    """``log p(x_n) = log sum_k pi_k N(x_n; mu_k, Sigma_k)`` (eq. 9.7): ``(n,)``."""
    a = weighted_log_densities(weights, means, covs, covariance_type, x)
    top = np.max(a, axis=1, keepdims=True)
    return top[:, 0] + np.log(np.sum(np.exp(a - top), axis=1))


def e_step(weights, means, covs, covariance_type, x, sample_weight=None):
    """Responsibilities (eq. 9.23) in the log domain and the weighted mean log-likelihood.

    Returns ``(log_resp (n, K), mean_log_lik)``.
    """
    x = np.asarray(x, np.float64)
    w = np.ones(len(x)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    a = weighted_log_densities(weights, means, covs, covariance_type, x)
    log_px = log_prob(weights, means, covs, covariance_type, x)  # (n,)
    return a - log_px[:, None], float(np.sum(w * log_px) / np.sum(w))


def m_step(x, resp, covariance_type, reg_covar, sample_weight=None):
    """Eqs. 9.24-9.27 with weights ``w_n``: returns ``(weights, means, covs)``.

    ``resp``: ``(n, K)`` responsibilities (not logs).
    """
    x = np.asarray(x, np.float64)
    resp = np.asarray(resp, np.float64)
    n, dim = x.shape
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
    num_k = resp.shape[1]
    means, covs, nks = [], [], []
    for k in range(num_k):
        r = w * resp[:, k]  # (n,), w_n gamma_nk
        nk = r.sum() + 10 * EPS64  # eq. 9.27
        mu = (r[:, None] * x).sum(axis=0) / nk  # eq. 9.24
        centred = x - mu
        sigma = (r[:, None, None] * centred[:, :, None] * centred[:, None, :]).sum(0) / nk
        sigma = sigma + reg_covar * np.eye(dim)  # eq. 9.25, regularised
        if covariance_type == "diag":
            sigma = np.diag(sigma).copy()
        elif covariance_type == "spherical":
            sigma = float(np.mean(np.diag(sigma)))
        means.append(mu)
        covs.append(sigma)
        nks.append(nk)
    nks = np.array(nks)
    return nks / nks.sum(), np.array(means), np.array(covs)  # eq. 9.26


def fit(
    x, weights, means, covs, covariance_type, *, max_iter, tol, reg_covar, sample_weight=None
):
    """EM from the given parameters; returns ``(weights, means, covs, lls, n_iter, converged)``.

    ``lls`` lists ``L_1 .. L_{n_iter}``, the mean log-likelihood entering each iteration.
    """
    params = (np.asarray(weights, np.float64), np.asarray(means, np.float64),
              np.asarray(covs, np.float64))
    lls = []
    prev = -np.inf
    converged = False
    for _ in range(max_iter):
        log_resp, ll = e_step(*params, covariance_type, x, sample_weight)
        params = m_step(x, np.exp(log_resp), covariance_type, reg_covar, sample_weight)
        lls.append(ll)
        if abs(ll - prev) < tol:
            converged = True
            break
        prev = ll
    return (*params, np.array(lls), len(lls), converged)


def kmeans_plusplus_from_noise(x, uniforms, sample_weight) -> np.ndarray:
    """k-means++ (Arthur & Vassilvitskii 2007): centre j by inverting the CDF of ``w D^2``.

    The first centre by the CDF of ``w`` alone. Returns ``(K,)`` indices.
    """
    x = np.asarray(x, np.float64)
    w = np.asarray(sample_weight, np.float64)
    chosen: list[int] = []
    for j, u in enumerate(np.asarray(uniforms, np.float64)):
        if j == 0:
            mass = w
        else:
            d2 = np.min(
                np.stack([np.sum((x - x[c]) ** 2, axis=1) for c in chosen]), axis=0
            )
            mass = w * d2
        cdf = np.cumsum(mass)
        # smallest i with cdf[i] > u * total
        above = np.nonzero(cdf > u * cdf[-1])[0]
        chosen.append(int(above[0]) if above.size else len(x) - 1)
    return np.array(chosen)


def random_from_noise(sample_weight, gumbels, k) -> np.ndarray:
    """Gumbel-top-k: the ``k`` indices of largest ``log w_n + G_n``, largest first."""
    with np.errstate(divide="ignore"):
        keys = np.log(np.asarray(sample_weight, np.float64)) + np.asarray(gumbels, np.float64)
    return np.argsort(-keys, kind="stable")[:k]


def params_from_centres(x, centres, covariance_type, reg_covar, sample_weight=None):
    """Hard-assign each point to its nearest centre, then one M-step."""
    x = np.asarray(x, np.float64)
    centres = np.asarray(centres, np.float64)
    d2 = np.stack([np.sum((x - c) ** 2, axis=1) for c in centres], axis=1)  # (n, K)
    resp = np.zeros_like(d2)
    resp[np.arange(len(x)), np.argmin(d2, axis=1)] = 1.0
    return m_step(x, resp, covariance_type, reg_covar, sample_weight)


def sample_from_noise(means, covs, covariance_type, components, eps) -> np.ndarray:
    """``x_n = mu_{z_n} + L_{z_n} eps_n`` with ``L L^T = Sigma`` (Cholesky)."""
    means = np.asarray(means, np.float64)
    dense = dense_covariances(covs, covariance_type, means.shape[1])
    out = np.empty((len(components), means.shape[1]))
    for i, (z, e) in enumerate(zip(components, np.asarray(eps, np.float64), strict=True)):
        out[i] = means[z] + np.linalg.cholesky(dense[z]) @ e
    return out


def n_parameters(num_components: int, dim: int, covariance_type: str) -> int:
    """Free parameters: weights ``K - 1``, means ``K D``, covariances by type."""
    cov = {
        "full": num_components * dim * (dim + 1) // 2,
        "diag": num_components * dim,
        "spherical": num_components,
    }[covariance_type]
    return num_components - 1 + num_components * dim + cov


def bic(weights, means, covs, covariance_type, x) -> float:
    """``-2 sum_n log p(x_n) + p log n`` (Schwarz 1978)."""
    x = np.asarray(x, np.float64)
    total = float(np.sum(log_prob(weights, means, covs, covariance_type, x)))
    p = n_parameters(len(weights), x.shape[1], covariance_type)
    return -2.0 * total + p * math.log(len(x))
