"""NumPy float64 oracle for :mod:`genjax.targets`, written from the equations.

Imports NumPy and the standard library only. Where the JAX module uses Cholesky factors,
this one uses ``slogdet`` and ``solve``; where the JAX module writes the probabilistic-PCA
posterior through ``M = W^T W + s^2 I`` (Tipping & Bishop 1999, eq. 7), this one
conditions the joint Gaussian of ``(z, x)`` directly (Bishop 2006, PRML eqs. 2.81-2.82);
the ELBO is ``log p(x) - KL(q || p(z|x))`` rather than the three expectations; and the
denoiser is Tweedie's formula itself. Agreement is therefore evidence, not transcription.

Mixture parameters are passed as ``weights (K,)``, ``means (K, D)``, ``covs (K, D, D)``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "gaussian_log_pdf",
    "mixture_component_log_probs",
    "mixture_responsibilities",
    "mixture_log_prob",
    "mixture_score",
    "mixture_eps",
    "mixture_noised",
    "mixture_posterior_mean_x0",
    "mixture_posterior_mean_x0_by_conditioning",
    "mixture_mean",
    "mixture_covariance",
    "linear_gaussian_marginal",
    "linear_gaussian_log_prob",
    "linear_gaussian_posterior",
    "gaussian_kl",
    "linear_gaussian_elbo",
    "gan_value_at_optimum_1d",
]


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(a, axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(a - m), axis=axis))


def gaussian_log_pdf(x, mean, cov) -> np.ndarray:
    """``log N(x; mean, cov)`` for ``x: (N, D)``, ``mean: (D,)``, ``cov: (D, D)`` -> ``(N,)``."""
    x, mean, cov = _f64(x), _f64(mean), _f64(cov)
    d = mean.shape[0]
    diff = x - mean
    sign, logdet = np.linalg.slogdet(cov)
    assert sign > 0, "covariance must be positive definite"
    maha = np.einsum("ni,ni->n", diff, np.linalg.solve(cov, diff.T).T)
    return -0.5 * (d * math.log(2 * math.pi) + logdet + maha)


def mixture_component_log_probs(weights, means, covs, x) -> np.ndarray:
    """``log w_k + log N(x; mu_k, Sigma_k)``, ``x: (N, D)`` -> ``(N, K)``."""
    weights, means, covs, x = map(_f64, (weights, means, covs, x))
    return np.stack(
        [
            np.log(w) + gaussian_log_pdf(x, m, c)
            for w, m, c in zip(weights, means, covs, strict=True)
        ],
        axis=1,
    )


def mixture_responsibilities(weights, means, covs, x) -> np.ndarray:
    """Bayes' rule ``p(k | x) = w_k N(x; mu_k, Sigma_k) / sum_j w_j N(x; mu_j, Sigma_j)``.

    ``x: (N, D)`` -> ``(N, K)``, by normalising the joint in log space.
    """
    joint = mixture_component_log_probs(weights, means, covs, x)  # (N, K)
    return np.exp(joint - _logsumexp(joint, axis=1)[:, None])


def mixture_log_prob(weights, means, covs, x) -> np.ndarray:
    """``log sum_k w_k N(x; mu_k, Sigma_k)``, ``x: (N, D)`` -> ``(N,)``."""
    return _logsumexp(mixture_component_log_probs(weights, means, covs, x), axis=1)


def mixture_score(weights, means, covs, x) -> np.ndarray:
    """``grad log p(x) = sum_k r_k(x) (-Sigma_k^{-1} (x - mu_k))``, ``x: (N, D)`` -> ``(N, D)``."""
    weights, means, covs, x = map(_f64, (weights, means, covs, x))
    resp = mixture_responsibilities(weights, means, covs, x)  # (N, K), r_k = p(k | x)
    out = np.zeros_like(x)
    for k in range(weights.shape[0]):
        grad_k = -np.linalg.solve(covs[k], (x - means[k]).T).T  # grad log N_k
        out += resp[:, k : k + 1] * grad_k
    return out


def mixture_noised(weights, means, covs, alpha: float, sigma: float):
    """Law of ``alpha x0 + sigma eps``: ``(w, alpha mu_k, alpha^2 Sigma_k + sigma^2 I)``."""
    weights, means, covs = map(_f64, (weights, means, covs))
    d = means.shape[1]
    return weights, alpha * means, alpha**2 * covs + sigma**2 * np.eye(d)


def mixture_eps(weights, means, covs, x_t, alpha: float, sigma: float) -> np.ndarray:
    """``E[eps | x_t] = -sigma grad log p_t(x_t)`` for ``x_t = alpha x0 + sigma eps``.

    Tweedie's formula for the noise (Vincent 2011): with ``p_t`` the law of ``x_t``
    (:func:`mixture_noised`), ``grad log p_t(x_t) = -E[eps | x_t] / sigma``.
    """
    noised = mixture_noised(weights, means, covs, alpha, sigma)
    return -sigma * mixture_score(*noised, _f64(x_t))


def mixture_posterior_mean_x0(weights, means, covs, x_t, alpha: float, sigma: float):
    """Tweedie's formula ``E[x0 | x_t] = (x_t + sigma^2 grad log p_t(x_t)) / alpha``."""
    noised = mixture_noised(weights, means, covs, alpha, sigma)
    x_t = _f64(x_t)
    return (x_t + sigma**2 * mixture_score(*noised, x_t)) / alpha


def mixture_posterior_mean_x0_by_conditioning(
    weights, means, covs, x_t, alpha: float, sigma: float
) -> np.ndarray:
    """``E[x0 | x_t] = sum_k p(k | x_t) E[x0 | x_t, k]``, each term by Gaussian conditioning.

    Given component k, ``(x0, x_t)`` is jointly Gaussian with ``Cov(x0, x_t) = alpha
    Sigma_k`` and ``Cov(x_t) = C_k = alpha^2 Sigma_k + sigma^2 I``, so (PRML eq. 2.81)
    ``E[x0 | x_t, k] = mu_k + alpha Sigma_k C_k^{-1} (x_t - alpha mu_k)``; ``p(k | x_t)`` is
    Bayes' rule under the noised mixture. Unlike Tweedie's form, no ``x_t + sigma^2 score``
    cancellation and no division by ``alpha``: the reference far from the modes.
    """
    weights, means, covs, x_t = map(_f64, (weights, means, covs, x_t))
    noised = mixture_noised(weights, means, covs, alpha, sigma)
    resp = mixture_responsibilities(*noised, x_t)  # (N, K), p(k | x_t)
    out = np.zeros_like(x_t)
    for k in range(weights.shape[0]):
        gain = np.linalg.solve(noised[2][k], (x_t - alpha * means[k]).T).T  # C_k^{-1}(...)
        out += resp[:, k : k + 1] * (means[k] + alpha * gain @ covs[k].T)
    return out


def mixture_mean(weights, means) -> np.ndarray:
    """``sum_k w_k mu_k`` -> ``(D,)``."""
    return _f64(weights) @ _f64(means)


def mixture_covariance(weights, means, covs) -> np.ndarray:
    """``E[x x^T] - E[x] E[x]^T`` with ``E[x x^T] = sum_k w_k (Sigma_k + mu_k mu_k^T)``."""
    weights, means, covs = map(_f64, (weights, means, covs))
    second = sum(w * (c + np.outer(m, m)) for w, m, c in zip(weights, means, covs, strict=True))
    mu = mixture_mean(weights, means)
    return second - np.outer(mu, mu)


def linear_gaussian_marginal(W, b, noise_std: float):
    """Marginal of ``x = W z + b + s eps``: ``(b, W W^T + s^2 I)``."""
    W, b = _f64(W), _f64(b)
    return b, W @ W.T + noise_std**2 * np.eye(W.shape[0])


def linear_gaussian_log_prob(W, b, noise_std: float, x) -> np.ndarray:
    """``log N(x; b, W W^T + s^2 I)``, ``x: (N, D)`` -> ``(N,)``."""
    mean, cov = linear_gaussian_marginal(W, b, noise_std)
    return gaussian_log_pdf(x, mean, cov)


def linear_gaussian_posterior(W, b, noise_std: float, x):
    """``p(z | x)`` by conditioning the joint Gaussian of ``(z, x)``.

    ``[z; x] ~ N([0; b], [[I, W^T], [W, C]])``, ``C = W W^T + s^2 I``, so
    ``E[z | x] = W^T C^{-1} (x - b)`` and ``Cov[z | x] = I - W^T C^{-1} W``
    (PRML eqs. 2.81-2.82).

    Returns:
      ``(mean (N, L), cov (L, L))``.
    """
    W, b, x = _f64(W), _f64(b), _f64(x)
    _, c = linear_gaussian_marginal(W, b, noise_std)
    gain = np.linalg.solve(c, W).T  # W^T C^{-1}  (L, D); C symmetric
    mean = (x - b) @ gain.T
    cov = np.eye(W.shape[1]) - gain @ W
    return mean, 0.5 * (cov + cov.T)


def gaussian_kl(mean_q, cov_q, mean_p, cov_p) -> float:
    """``KL(N(mean_q, cov_q) || N(mean_p, cov_p))`` for full covariances (one pair)."""
    mean_q, cov_q, mean_p, cov_p = map(_f64, (mean_q, cov_q, mean_p, cov_p))
    d = mean_q.shape[0]
    p_inv = np.linalg.inv(cov_p)
    delta = mean_p - mean_q
    _, logdet_p = np.linalg.slogdet(cov_p)
    _, logdet_q = np.linalg.slogdet(cov_q)
    return 0.5 * (np.trace(p_inv @ cov_q) + delta @ p_inv @ delta - d + logdet_p - logdet_q)


def linear_gaussian_elbo(W, b, noise_std: float, x, q_mean, q_logvar):
    """``ELBO = log p(x) - KL(q || p(z | x))`` per row, and the KL.

    Args:
      x: ``(N, D)``; q_mean, q_logvar: ``(N, L)``.

    Returns:
      ``(elbo (N,), kl (N,))``.
    """
    x, q_mean, q_logvar = map(_f64, (x, q_mean, q_logvar))
    log_px = linear_gaussian_log_prob(W, b, noise_std, x)
    post_mean, post_cov = linear_gaussian_posterior(W, b, noise_std, x)
    kl = np.array(
        [
            gaussian_kl(m, np.diag(np.exp(lv)), pm, post_cov)
            for m, lv, pm in zip(q_mean, q_logvar, post_mean, strict=True)
        ]
    )
    return log_px - kl, kl


def gan_value_at_optimum_1d(p, q, lo: float, hi: float, num: int = 200_001) -> float:
    """``-log 4 + 2 JSD(p || q)`` for two 1-D mixtures by trapezoidal quadrature.

    Args:
      p, q: ``(weights (K,), means (K, 1), covs (K, 1, 1))`` triples.
      lo, hi: integration box, wide enough that both densities vanish outside it.
      num: grid points.

    Returns:
      the value of the GAN game at the optimal discriminator.
    """
    grid = np.linspace(lo, hi, num)[:, None]
    lp = mixture_log_prob(*p, grid)
    lq = mixture_log_prob(*q, grid)
    pp, pq = np.exp(lp), np.exp(lq)
    lm = np.logaddexp(lp, lq) - math.log(2.0)  # log of the midpoint density (p + q) / 2
    # JSD = 1/2 KL(p || m) + 1/2 KL(q || m)
    integrand = 0.5 * pp * (lp - lm) + 0.5 * pq * (lq - lm)
    dx = grid[1, 0] - grid[0, 0]
    jsd = dx * (np.sum(integrand) - 0.5 * (integrand[0] + integrand[-1]))
    return -math.log(4.0) + 2.0 * jsd
