"""NumPy float64 oracle of the unCLIP cascade (no JAX): written from the equations.

* the exact prior of class-conditional Gaussian embeddings ``z | c ~ N(mu_c, Sigma_c)``:
  ``z_t = alpha z + sigma eps`` is ``N(alpha mu_c, C)``, ``C = alpha^2 Sigma_c + sigma^2 I``,
  so ``score = -C^{-1} (z_t - alpha mu_c)`` and Tweedie gives the optimal noise prediction
  ``E[eps | z_t, c] = -sigma score = sigma C^{-1} (z_t - alpha mu_c)`` (Vincent 2011);
* deterministic DDIM (Song, Meng, Ermon 2021, eq. 12, eta = 0) over the trailing timesteps
  ``t_i = T - 1 - floor(i T / S)`` down to ``alpha_bar = 1``, with optional clipping of
  ``x0_hat``;
* guidance against a second condition (the null one, or a negative prompt),
  ``eps = eps_neg + w (eps_cond - eps_neg)`` (Ho & Salimans 2022, eq. 6);
* the cascade of Ramesh et al. 2022 (eq. 1): prior DDIM on the text embedding, the result
  rescaled to norm ``sqrt(E)``, decoder DDIM on that embedding (null: zeros).

Models are NumPy callables; the tests give the JAX implementation the same maps.
"""

from __future__ import annotations

import numpy as np


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def gaussian_class_eps(mean, cov, z_t, alpha: float, sigma: float) -> np.ndarray:
    """``E[eps | z_t]`` for ``z ~ N(mean (E,), cov (E, E))``, ``z_t = alpha z + sigma eps``:
    ``sigma (alpha^2 cov + sigma^2 I)^{-1} (z_t - alpha mean)``; ``z_t: (N, E)`` -> ``(N, E)``."""
    mean, cov, z_t = _f64(mean), _f64(cov), _f64(z_t)
    c = alpha**2 * cov + sigma**2 * np.eye(mean.shape[0])
    return sigma * np.linalg.solve(c, (z_t - alpha * mean).T).T


def ddim_timesteps(num_train_steps: int, num_steps: int) -> np.ndarray:
    """``t_i = T - 1 - floor(i T / S)``, ``i = 0 .. S-1``."""
    return np.array([num_train_steps - 1 - (i * num_train_steps) // num_steps
                     for i in range(num_steps)])


def ddim(eps_fn, x_T, alpha_bars, num_steps: int, clip_x0: float | None = None) -> np.ndarray:
    """DDIM, eta = 0: ``x0 = (x - sqrt(1 - ab_t) eps) / sqrt(ab_t)`` (clipped if asked),
    ``x <- sqrt(ab_t') x0 + sqrt(1 - ab_t') eps``; ``eps_fn(x, t (N,) int) -> eps``."""
    alpha_bars = _f64(alpha_bars)
    x = _f64(x_T).copy()
    ts = ddim_timesteps(len(alpha_bars), num_steps)
    for i, t in enumerate(ts):
        ab = alpha_bars[t]
        ab_prev = alpha_bars[ts[i + 1]] if i + 1 < len(ts) else 1.0
        eps = _f64(eps_fn(x, np.full(x.shape[0], t)))
        x0 = (x - np.sqrt(1.0 - ab) * eps) / np.sqrt(ab)
        if clip_x0 is not None:
            x0 = np.clip(x0, -clip_x0, clip_x0)
        x = np.sqrt(ab_prev) * x0 + np.sqrt(1.0 - ab_prev) * eps
    return x


def guided(eps_cond, eps_neg, scale: float) -> np.ndarray:
    """``eps_neg + scale (eps_cond - eps_neg)``."""
    return _f64(eps_neg) + scale * (_f64(eps_cond) - _f64(eps_neg))


def unclip_from_noise(prior_eps, decoder_eps, text, negative, z_T, x_T, prior_alpha_bars,
                      decoder_alpha_bars, prior_steps: int, decoder_steps: int,
                      prior_scale: float, decoder_scale: float,
                      clip_x0: float | None = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The cascade. ``prior_eps(z (B, E), t, text (B, E))``, ``decoder_eps(x (B, H, W, C), t,
    emb (B, E))``; ``negative``: ``(B, E)`` (zeros for the null condition). Returns
    ``(images, z)``."""
    text, negative = _f64(text), _f64(negative)

    def prior_guided(z, t):
        return guided(prior_eps(z, t, text), prior_eps(z, t, negative), prior_scale)

    z = ddim(prior_guided, z_T, prior_alpha_bars, prior_steps)
    z = np.sqrt(z.shape[1]) * z / np.linalg.norm(z, axis=1, keepdims=True)
    null = np.zeros_like(z)

    def decoder_guided(x, t):
        return guided(decoder_eps(x, t, z), decoder_eps(x, t, null), decoder_scale)

    return ddim(decoder_guided, x_T, decoder_alpha_bars, decoder_steps, clip_x0), z
