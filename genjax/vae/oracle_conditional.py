"""NumPy-only float64 oracle of the conditional VAE and the denoising autoencoder.

Imports NumPy and the standard library only; networks enter as NumPy callables, noise as
arguments, so the JAX code (:mod:`genjax.vae.conditional`, :mod:`genjax.vae.denoising`) can
be held to it on identical draws. Written from the equations:

* conditional VAE (Sohn, Lee & Yan 2015, eq. 4): the one-sample
  ``ELBO = log p(x | z, y) - KL(q(z | x, y) || p(z | y))`` with the KL between two Gaussians
  by the general trace / log-determinant formula (full covariance matrices built from the
  diagonals), not the per-dimension closed form the JAX code uses;
* the conditional linear-Gaussian model ``z | y ~ N(m_y, V_y)``,
  ``x | z, y ~ N(W z + o_y, s^2 I)``: ``log p(x | y)`` from the marginal
  ``N(W m_y + o_y, W V_y W^T + s^2 I)`` by ``slogdet``/``solve``, the exact posterior by
  conditioning the joint Gaussian of ``(z, x)`` (Bishop 2006, eqs. 2.81-2.82), and the
  closed-form ELBO of a diagonal ``q`` from its two expectations (no use of the identity
  ``ELBO = log p - KL(q || posterior)``, which the tests check);
* denoising autoencoder (Vincent et al. 2008): Gaussian corruption ``x + sigma eps`` and
  masking corruption (each input zeroed with probability ``nu``), the squared-error loss to
  the *clean* input; the Bayes-optimal denoiser of a Gaussian mixture under Gaussian noise,
  ``E[x | x~]``, by conditioning each component's joint Gaussian of ``(x, x~)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

LOG_2PI = math.log(2.0 * math.pi)


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def one_hot(y, num_classes: int) -> np.ndarray:
    """labels (B,) -> (B, C) float64."""
    return np.eye(num_classes)[np.asarray(y)]


def gaussian_log_pdf(x, mean, cov) -> np.ndarray:
    """``log N(x; mean, cov)`` for x (B, D), mean (B, D) or (D,), cov (D, D): (B,)."""
    x, mean, cov = _f64(x), _f64(mean), _f64(cov)
    diff = x - mean
    _, logdet = np.linalg.slogdet(cov)
    maha = np.einsum("bi,bi->b", diff, np.linalg.solve(cov, diff.T).T)
    return -0.5 * (x.shape[-1] * LOG_2PI + logdet + maha)


def kl_gaussians(mean_q, cov_q, mean_p, cov_p) -> float:
    """``KL(N_q || N_p) = 1/2 [tr(S_p^-1 S_q) + d^T S_p^-1 d - k + log|S_p| - log|S_q|]``."""
    mean_q, cov_q, mean_p, cov_p = map(_f64, (mean_q, cov_q, mean_p, cov_p))
    d = mean_p - mean_q
    k = len(mean_q)
    _, ld_p = np.linalg.slogdet(cov_p)
    _, ld_q = np.linalg.slogdet(cov_q)
    return 0.5 * (np.trace(np.linalg.solve(cov_p, cov_q)) + d @ np.linalg.solve(cov_p, d) - k
                  + ld_p - ld_q)


# --- conditional VAE -------------------------------------------------------------------------


def cvae_elbo(x, y, eps, *, encode: Callable, prior: Callable, decode: Callable,
              num_classes: int, likelihood: str, log_std: float = 0.0) -> dict[str, np.ndarray]:
    """One-sample conditional ELBO of each example, float64.

    Args:
      x: (B, D) flattened data.
      y: (B,) int labels.
      eps: (B, L) standard normal.
      encode: ``[x, e_y] (B, D + C) -> (B, 2L)`` = ``[mu, logvar]`` of ``q(z | x, y)``.
      prior: ``e_y (B, C) -> (B, 2L)`` = ``[mu_p, logvar_p]`` of ``p(z | y)``.
      decode: ``[z, e_y] (B, L + C) -> (B, D)`` logits (Bernoulli) or means (Gaussian).
      likelihood: ``"bernoulli"`` or ``"gaussian"`` (std ``exp(log_std)``).

    Returns:
      ``log_likelihood``, ``kl``, ``elbo``: (B,) each.
    """
    x, eps = _f64(x), _f64(eps)
    e = one_hot(y, num_classes)
    l = eps.shape[-1]
    h = _f64(encode(np.concatenate([x, e], axis=1)))
    mu, logvar = h[:, :l], h[:, l:]
    hp = _f64(prior(e))
    mu_p, logvar_p = hp[:, :l], hp[:, l:]
    z = mu + np.sqrt(np.exp(logvar)) * eps  # z ~ q(z | x, y)
    out = _f64(decode(np.concatenate([z, e], axis=1)))
    if likelihood == "bernoulli":
        # log Bern(x; sigmoid(a)) = x log sigmoid(a) + (1 - x) log(1 - sigmoid(a))
        log_sig = -np.logaddexp(0.0, -out)
        log_one_minus = -np.logaddexp(0.0, out)
        log_lik = np.sum(x * log_sig + (1.0 - x) * log_one_minus, axis=1)
    else:
        s = math.exp(log_std)
        log_lik = gaussian_log_pdf(x, out, s**2 * np.eye(x.shape[1]))
    kl = np.array([kl_gaussians(mu[b], np.diag(np.exp(logvar[b])), mu_p[b],
                                np.diag(np.exp(logvar_p[b]))) for b in range(len(x))])
    return {"log_likelihood": log_lik, "kl": kl, "elbo": log_lik - kl}


def conditional_linear_gaussian_log_prob(x, W, offset, prior_mean, prior_var,
                                         noise_std: float) -> np.ndarray:
    """``log p(x | y) = log N(x; W m_y + o_y, W V_y W^T + s^2 I)``.

    Args:
      x: (B, D). W: (D, L). offset: (D,) ``o_y``. prior_mean: (L,) ``m_y``.
      prior_var: (L,) ``diag V_y``. noise_std: s.
    """
    W, m, v = _f64(W), _f64(prior_mean), _f64(prior_var)
    cov = W @ np.diag(v) @ W.T + noise_std**2 * np.eye(W.shape[0])
    return gaussian_log_pdf(x, W @ m + _f64(offset), cov)


def conditional_linear_gaussian_posterior(x, W, offset, prior_mean, prior_var,
                                          noise_std: float) -> tuple[np.ndarray, np.ndarray]:
    """``p(z | x, y)`` by conditioning the joint Gaussian of ``(z, x)``.

    ``Cov(z, x) = V W^T``, ``Cov(x) = W V W^T + s^2 I``:
    mean ``m + V W^T Cov(x)^-1 (x - W m - o)``, cov ``V - V W^T Cov(x)^-1 W V``.

    Returns:
      ``(mean (B, L), cov (L, L))``.
    """
    W, m, v = _f64(W), _f64(prior_mean), _f64(prior_var)
    V = np.diag(v)
    cov_x = W @ V @ W.T + noise_std**2 * np.eye(W.shape[0])
    gain = V @ W.T @ np.linalg.inv(cov_x)  # (L, D)
    mean = m[None, :] + (_f64(x) - (W @ m + _f64(offset))[None, :]) @ gain.T
    return mean, V - gain @ W @ V


def conditional_linear_gaussian_elbo(x, W, offset, prior_mean, prior_var, noise_std: float,
                                     q_mean, q_logvar) -> np.ndarray:
    """Closed-form ELBO of ``q(z) = N(q_mean, diag e^q_logvar)`` per example.

    ``E_q[log N(x; W z + o, s^2 I)] = log N(x; W m_q + o, s^2 I) - tr(W S_q W^T) / (2 s^2)``
    (the expectation of the quadratic form), minus ``KL(q || N(m_y, V_y))``.

    Args:
      x: (B, D). q_mean, q_logvar: (B, L). Others as in the log-probability.
    """
    x, W, q_mean, q_logvar = map(_f64, (x, W, q_mean, q_logvar))
    s2 = noise_std**2
    out = []
    for b in range(len(x)):
        s_q = np.diag(np.exp(q_logvar[b]))
        mean_x = W @ q_mean[b] + _f64(offset)
        e_lik = (gaussian_log_pdf(x[b:b + 1], mean_x, s2 * np.eye(len(mean_x)))[0]
                 - np.trace(W @ s_q @ W.T) / (2.0 * s2))
        out.append(e_lik - kl_gaussians(q_mean[b], s_q, prior_mean, np.diag(_f64(prior_var))))
    return np.array(out)


# --- denoising autoencoder ------------------------------------------------------------------


def corrupt_gaussian(x, eps, noise_std) -> np.ndarray:
    """``x~ = x + sigma eps``; ``noise_std`` a scalar or (B,) per example."""
    x = _f64(x)
    sigma = _f64(noise_std).reshape((-1,) + (1,) * (x.ndim - 1)) if np.ndim(noise_std) else \
        _f64(noise_std)
    return x + sigma * _f64(eps)


def corrupt_masking(x, uniform, rate) -> np.ndarray:
    """Vincent et al. 2008, sec. 2.3: each input zeroed where ``uniform < rate``."""
    x = _f64(x)
    r = _f64(rate).reshape((-1,) + (1,) * (x.ndim - 1)) if np.ndim(rate) else _f64(rate)
    return np.where(_f64(uniform) < r, 0.0, x)


def dae_loss(x, x_noisy, denoise: Callable) -> float:
    """``mean_b sum_d (x - g(f(x~)))^2``: squared error to the clean input."""
    x = _f64(x)
    err = (x - _f64(denoise(_f64(x_noisy)))).reshape(len(x), -1)
    return float(np.mean(np.sum(err**2, axis=1)))


def mixture_denoiser(x_noisy, weights, means, covs, noise_std: float) -> np.ndarray:
    """``E[x | x~]`` for ``x ~ sum_k w_k N(mu_k, S_k)``, ``x~ = x + sigma eps``.

    Per component, ``(x, x~)`` is jointly Gaussian with ``Cov(x, x~) = S_k`` and
    ``Cov(x~) = S_k + sigma^2 I``, so ``E[x | x~, k] = mu_k + S_k (S_k + sigma^2 I)^-1
    (x~ - mu_k)``; the components are weighted by ``p(k | x~) ∝ w_k N(x~; mu_k, S_k +
    sigma^2 I)``.

    Args:
      x_noisy: (B, D). weights: (K,). means: (K, D). covs: (K, D, D). noise_std: sigma > 0.

    Returns:
      (B, D).
    """
    xt = _f64(x_noisy)
    d = xt.shape[1]
    logits, cond = [], []
    for w, mu, cov in zip(_f64(weights), _f64(means), _f64(covs), strict=True):
        c = cov + noise_std**2 * np.eye(d)
        logits.append(math.log(w) + gaussian_log_pdf(xt, mu, c))
        cond.append(mu[None, :] + (xt - mu[None, :]) @ np.linalg.solve(c, cov))  # S C^-1 sym.
    logits = np.stack(logits)  # (K, B)
    r = np.exp(logits - logits.max(0, keepdims=True))
    r = r / r.sum(0, keepdims=True)
    return np.einsum("kb,kbd->bd", r, np.stack(cond))
