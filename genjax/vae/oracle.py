"""NumPy-only float64 oracle of the VAE family, written from the papers' equations.

Imports NumPy and the standard library only. Networks enter as NumPy callables (the
tests run the same weights through :func:`mlp`), noise as arguments, so the JAX code and
this file can be held together on identical draws.

* Gaussian KL (Kingma & Welling 2014, appendix B), Bernoulli and Gaussian log-likelihoods;
* the one-sample ELBO and the IWAE bound ``log (1/k) sum_i p(x, z_i) / q(z_i|x)``
  (Burda et al. 2016, eq. 8), computed from the log joint and log proposal directly;
* the ladder VAE's precision-weighted posterior (Sønderby et al. 2016) and log weights;
* vector quantisation by brute-force distances, the EMA codebook update with Laplace
  smoothing (van den Oord et al. 2017, appendix A.1), a k-means (Lloyd) step, perplexity;
* the probabilistic-PCA log-likelihood (Tipping & Bishop 1999, eq. 6).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

LOG_2PI = math.log(2.0 * math.pi)


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def silu(a: np.ndarray) -> np.ndarray:
    """``a * sigmoid(a)``."""
    return a / (1.0 + np.exp(-a))


def mlp(x: np.ndarray, layers: Sequence[tuple[np.ndarray, np.ndarray]],
        activation: Callable[[np.ndarray], np.ndarray] = silu) -> np.ndarray:
    """``h <- act(h W + b)`` for every layer but the last, which is affine."""
    h = _f64(x)
    for i, (w, b) in enumerate(layers):
        h = h @ _f64(w) + _f64(b)
        if i < len(layers) - 1:
            h = activation(h)
    return h


def log_sigmoid(a: np.ndarray) -> np.ndarray:
    """``log(1 / (1 + exp(-a)))`` without overflow."""
    return -np.logaddexp(0.0, -_f64(a))


def kl_diag_gaussian(mu, logvar) -> np.ndarray:
    """``KL(N(mu, diag e^logvar) || N(0, I)) = 1/2 sum(mu^2 + e^logvar - 1 - logvar)``."""
    mu, logvar = _f64(mu), _f64(logvar)
    return 0.5 * np.sum(mu**2 + np.exp(logvar) - 1.0 - logvar, axis=-1)


def kl_diag_gaussians(mu_q, logvar_q, mu_p, logvar_p) -> np.ndarray:
    """``KL(N_q || N_p)`` for diagonal Gaussians, by the trace/log-det formula per dimension."""
    mu_q, logvar_q, mu_p, logvar_p = map(_f64, (mu_q, logvar_q, mu_p, logvar_p))
    vq, vp = np.exp(logvar_q), np.exp(logvar_p)
    return 0.5 * np.sum(vq / vp + (mu_p - mu_q) ** 2 / vp - 1.0 + np.log(vp) - np.log(vq), axis=-1)


def log_normal_diag(z, mu, logvar) -> np.ndarray:
    """``log N(z; mu, diag e^logvar)`` summed over the last axis."""
    z, mu, logvar = map(_f64, (z, mu, logvar))
    var = np.exp(logvar)
    return np.sum(-0.5 * np.log(2.0 * np.pi * var) - (z - mu) ** 2 / (2.0 * var), axis=-1)


def bernoulli_log_likelihood(x, logits) -> np.ndarray:
    """``sum_i x_i log p_i + (1 - x_i) log(1 - p_i)``, ``p = sigmoid(logits)``; x: (B, ...)."""
    x, logits = _f64(x), _f64(logits)
    terms = x * log_sigmoid(logits) + (1.0 - x) * log_sigmoid(-logits)
    return terms.reshape(x.shape[0], -1).sum(axis=-1)


def gaussian_log_likelihood(x, mean, log_std) -> np.ndarray:
    """``sum_i log N(x_i; m_i, s^2)``, ``s = exp(log_std)``; x: (B, ...)."""
    x, mean = _f64(x), _f64(mean)
    s2 = math.exp(2.0 * float(log_std))
    terms = -0.5 * np.log(2.0 * np.pi * s2) - (x - mean) ** 2 / (2.0 * s2)
    return terms.reshape(x.shape[0], -1).sum(axis=-1)


def _log_lik(x, out, likelihood: str, log_std: float) -> np.ndarray:
    if likelihood == "bernoulli":
        return bernoulli_log_likelihood(x, out)
    return gaussian_log_likelihood(x, out, log_std)


def vae_elbo(x, mu, logvar, eps, decode: Callable, *, likelihood: str,
             log_std: float = 0.0) -> dict[str, np.ndarray]:
    """One-sample ELBO per example: ``log p(x | mu + sigma eps) - KL(q || N(0, I))``.

    Args:
      x: (B, ...); mu, logvar, eps: (B, L); decode: (B, L) -> (B, ...) logits or means.
    """
    z = _f64(mu) + np.exp(0.5 * _f64(logvar)) * _f64(eps)
    ll = _log_lik(x, decode(z), likelihood, log_std)
    kl = kl_diag_gaussian(mu, logvar)
    return {"log_likelihood": ll, "kl": kl, "elbo": ll - kl}


def vae_log_weights(x, mu, logvar, eps, decode: Callable, *, likelihood: str,
                    log_std: float = 0.0) -> np.ndarray:
    """``log p(x|z_i) + log N(z_i; 0, I) - log q(z_i|x)`` for eps: (k, B, L) -> (k, B)."""
    mu, logvar, eps = map(_f64, (mu, logvar, eps))
    out = []
    for e in eps:
        z = mu + np.exp(0.5 * logvar) * e
        log_joint = _log_lik(x, decode(z), likelihood, log_std) + log_normal_diag(
            z, np.zeros_like(z), np.zeros_like(z))
        out.append(log_joint - log_normal_diag(z, mu, logvar))
    return np.stack(out)


def iwae_bound(log_weights) -> np.ndarray:
    """``log (1/k) sum_i exp(log w_i)`` along axis 0, shifted by the max for stability."""
    lw = _f64(log_weights)
    m = np.max(lw, axis=0)
    return m + np.log(np.mean(np.exp(lw - m), axis=0))


def precision_weighted(mu_hat, logvar_hat, mu_p, logvar_p) -> tuple[np.ndarray, np.ndarray]:
    """Ladder combination: precision ``1/v_hat + 1/v_p``, mean weighted by precisions."""
    prec_hat, prec_p = np.exp(-_f64(logvar_hat)), np.exp(-_f64(logvar_p))
    var_q = 1.0 / (prec_hat + prec_p)
    mu_q = (_f64(mu_hat) * prec_hat + _f64(mu_p) * prec_p) * var_q
    return mu_q, np.log(var_q)


def hvae_elbo_and_log_weights(x, bottom_up: Callable, prior: Callable, decode: Callable,
                              eps2, eps1, *, likelihood: str,
                              log_std: float = 0.0) -> tuple[dict, np.ndarray]:
    """Two-level ladder VAE: the one-sample ELBO terms (first draw) and the log weights.

    Args:
      bottom_up: x -> (mu2, logvar2, mu_hat, logvar_hat); prior: z2 -> (mu_p, logvar_p);
      decode: z1 -> logits or means. eps2: (k, B, L2), eps1: (k, B, L1).

    Returns:
      (terms of draw 0: log_likelihood, kl2, kl1, elbo; log weights (k, B)).
    """
    mu2, lv2, mu_hat, lv_hat = bottom_up(x)
    terms, log_w = None, []
    for e2, e1 in zip(_f64(eps2), _f64(eps1), strict=True):
        z2 = mu2 + np.exp(0.5 * lv2) * e2
        mu_p, lv_p = prior(z2)
        mu_q, lv_q = precision_weighted(mu_hat, lv_hat, mu_p, lv_p)
        z1 = mu_q + np.exp(0.5 * lv_q) * e1
        ll = _log_lik(x, decode(z1), likelihood, log_std)
        if terms is None:
            kl2 = kl_diag_gaussian(mu2, lv2)
            kl1 = kl_diag_gaussians(mu_q, lv_q, mu_p, lv_p)
            terms = {"log_likelihood": ll, "kl2": kl2, "kl1": kl1, "elbo": ll - kl2 - kl1}
        zeros = np.zeros_like(z2)
        log_p = ll + log_normal_diag(z1, mu_p, lv_p) + log_normal_diag(z2, zeros, zeros)
        log_w.append(log_p - log_normal_diag(z1, mu_q, lv_q) - log_normal_diag(z2, mu2, lv2))
    return terms, np.stack(log_w)


def ppca_log_prob(x, W, b, noise_std) -> np.ndarray:
    """``log N(x; b, W W^T + s^2 I)`` (Tipping & Bishop 1999, eq. 6); x: (n, D)."""
    x, w, b = _f64(x), _f64(W), _f64(b)
    c = w @ w.T + float(noise_std) ** 2 * np.eye(w.shape[0])
    diff = x - b
    _, logdet = np.linalg.slogdet(c)
    maha = np.einsum("ni,ni->n", diff, np.linalg.solve(c, diff.T).T)
    return -0.5 * (w.shape[0] * LOG_2PI + logdet + maha)


# --- vector quantisation --------------------------------------------------------------------


def quantize(z_e, codebook) -> tuple[np.ndarray, np.ndarray]:
    """Nearest codebook vector by explicit Euclidean distances; z_e: (n, D), codebook (K, D)."""
    z, cb = _f64(z_e), _f64(codebook)
    dist = np.sqrt(((z[:, None, :] - cb[None, :, :]) ** 2).sum(-1))  # (n, K)
    idx = np.argmin(dist, axis=1)
    return cb[idx], idx


def ema_update(cluster_size, embed_sum, codebook, z_e, indices, *, decay: float,
               epsilon: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """van den Oord et al. (2017), appendix A.1, with Laplace-smoothed counts.

    ``N_k <- g N_k + (1-g) n_k``, ``m_k <- g m_k + (1-g) sum_{j: k_j = k} z_j``,
    ``e_k = m_k / N~_k``, ``N~_k = (N_k + eps) n / (n + K eps)``, ``n = sum_k N_k``; a code
    with ``N~_k = 0`` keeps ``e_k``. Loops over codes, as the equations read.
    """
    z, idx = _f64(z_e), np.asarray(indices)
    num_codes = len(cluster_size)
    size, msum, cb = _f64(cluster_size).copy(), _f64(embed_sum).copy(), _f64(codebook).copy()
    for k in range(num_codes):
        members = z[idx == k]
        size[k] = decay * size[k] + (1.0 - decay) * len(members)
        msum[k] = decay * msum[k] + (1.0 - decay) * members.sum(axis=0)
    total = size.sum()
    for k in range(num_codes):
        smoothed = (size[k] + epsilon) / (total + num_codes * epsilon) * total
        if smoothed > 0:
            cb[k] = msum[k] / smoothed
    return size, msum, cb


def kmeans_step(z_e, codebook) -> np.ndarray:
    """One Lloyd step: assign to the nearest centre, move each centre to its members' mean."""
    z, cb = _f64(z_e), _f64(codebook).copy()
    _, idx = quantize(z, cb)
    for k in range(len(cb)):
        if np.any(idx == k):
            cb[k] = z[idx == k].mean(axis=0)
    return cb


def perplexity(indices, num_codes: int) -> float:
    """``exp(H(p))`` of the empirical code distribution."""
    counts = np.bincount(np.asarray(indices).reshape(-1), minlength=num_codes).astype(np.float64)
    p = counts / counts.sum()
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


def vqvae_terms(x, x_hat, z_e, codebook) -> dict[str, np.ndarray]:
    """Values of eq. 3's three terms per example; z_e: (B, M, D)."""
    x, x_hat, z = _f64(x), _f64(x_hat), _f64(z_e)
    b, m, d = z.shape
    e, idx = quantize(z.reshape(-1, d), codebook)
    e = e.reshape(b, m, d)
    sq = ((z - e) ** 2).sum(axis=(1, 2))
    return {"reconstruction": ((x - x_hat) ** 2).reshape(b, -1).sum(-1), "codebook": sq,
            "commitment": sq, "indices": idx.reshape(b, m)}
