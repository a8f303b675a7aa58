"""NumPy-only float64 oracle of the GAN family, written from the papers' equations.

Imports NumPy and the standard library only. Critics enter as NumPy functions together
with their input gradients written by hand (:func:`tanh_critic` and
:func:`tanh_critic_grad` for a one-hidden-layer network), noise (the interpolation
weights) as arguments, so the JAX code and this file are held together on the same draws.

* losses: binary cross-entropy with one-sided label smoothing (Goodfellow et al. 2014,
  eq. 1; Salimans et al. 2016, sec. 3.4), the non-saturating generator loss, least
  squares (Mao et al. 2017, eq. 2), hinge (Lim & Ye 2017), Wasserstein (Arjovsky et al.
  2017, eq. 3);
* regularisers: weight clipping, the gradient penalty on interpolates with one weight per
  example and one norm per example (Gulrajani et al. 2017, eq. 3), R1 (Mescheder et al.
  2018, eq. 9), spectral normalisation by power iteration (Miyato et al. 2018, Algorithm 1);
* AdaIN (Huang & Belongie 2017, eq. 8), the cycle loss (Zhu et al. 2017, eq. 2);
* the optimal discriminator ``p / (p + q)`` and the Jensen-Shannon divergence of two 1-D
  densities by quadrature (Goodfellow et al. 2014, Proposition 1 and Theorem 1).
"""

from __future__ import annotations

import math

import numpy as np


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def log_sigmoid(a) -> np.ndarray:
    """``log(1 / (1 + e^-a)) = -log(1 + e^-a)``, by logaddexp (no overflow at |a| = 1e4)."""
    return -np.logaddexp(0.0, -_f64(a))


# --- losses ---------------------------------------------------------------------------------


def minimax_d(real_logits, fake_logits, label_smoothing: float = 0.0) -> float:
    """``-mean[t log D(x) + (1 - t) log(1 - D(x))] - mean log(1 - D(G(z)))``, ``t = 1 - s``."""
    r, f = _f64(real_logits), _f64(fake_logits)
    t = 1.0 - label_smoothing
    bce_real = -(t * log_sigmoid(r) + (1.0 - t) * log_sigmoid(-r))  # 1 - D = sigmoid(-l)
    bce_fake = -log_sigmoid(-f)
    return float(bce_real.mean() + bce_fake.mean())


def minimax_g(fake_logits) -> float:
    """``(1/m) sum log(1 - D(G(z)))``."""
    return float(log_sigmoid(-_f64(fake_logits)).mean())


def nonsaturating_g(fake_logits) -> float:
    """``-(1/m) sum log D(G(z))``."""
    return float(-log_sigmoid(_f64(fake_logits)).mean())


def least_squares_d(real_logits, fake_logits, a: float = 0.0, b: float = 1.0) -> float:
    """``1/2 mean (l_real - b)^2 + 1/2 mean (l_fake - a)^2``."""
    r, f = _f64(real_logits), _f64(fake_logits)
    return float(0.5 * ((r - b) ** 2).mean() + 0.5 * ((f - a) ** 2).mean())


def least_squares_g(fake_logits, c: float = 1.0) -> float:
    """``1/2 mean (l_fake - c)^2``."""
    return float(0.5 * ((_f64(fake_logits) - c) ** 2).mean())


def hinge_d(real_logits, fake_logits) -> float:
    """``mean max(0, 1 - f_real) + mean max(0, 1 + f_fake)``."""
    r, f = _f64(real_logits), _f64(fake_logits)
    return float(np.maximum(0.0, 1.0 - r).mean() + np.maximum(0.0, 1.0 + f).mean())


def hinge_g(fake_logits) -> float:
    """``-mean f_fake``."""
    return float(-_f64(fake_logits).mean())


def wasserstein_d(real_logits, fake_logits) -> float:
    """``mean f_fake - mean f_real``."""
    return float(_f64(fake_logits).mean() - _f64(real_logits).mean())


def wasserstein_g(fake_logits) -> float:
    """``-mean f_fake``."""
    return float(-_f64(fake_logits).mean())


# --- critics with hand-written input gradients ------------------------------------------------


def tanh_critic(params, x) -> np.ndarray:
    """``f(x) = tanh(vec(x) W1 + b1) . w2 + b2`` per example; x: (B, ...) -> (B,).

    ``params = (W1 (D, H), b1 (H,), w2 (H,), b2 ())``, ``D`` the number of elements of an example.
    """
    w1, b1, w2, b2 = (_f64(p) for p in params)
    x = _f64(x)
    h = np.tanh(x.reshape(x.shape[0], -1) @ w1 + b1)  # (B, H)
    return h @ w2 + b2


def tanh_critic_grad(params, x) -> np.ndarray:
    """``grad_x f = W1 (w2 * (1 - tanh^2(vec(x) W1 + b1)))`` per example; (B, ...) -> (B, ...)."""
    w1, b1, w2, _ = (_f64(p) for p in params)
    x = _f64(x)
    h = np.tanh(x.reshape(x.shape[0], -1) @ w1 + b1)  # (B, H)
    g = (w2 * (1.0 - h**2)) @ w1.T  # chain rule: (B, H) @ (H, D) = (B, D)
    return g.reshape(x.shape)


# --- regularisers ----------------------------------------------------------------------------


def weight_clip(weights, clip_value: float) -> list[np.ndarray]:
    """``w <- min(max(w, -c), c)`` for each array of ``weights``."""
    return [np.minimum(np.maximum(_f64(w), -clip_value), clip_value) for w in weights]


def gradient_penalty(grad_fn, real, fake, eps) -> float:
    """``(1/B) sum_i (||grad f(xhat_i)|| - 1)^2``, ``xhat_i = eps_i x_i + (1 - eps_i) x~_i``.

    ``eps``: (B,), one weight per example; the norm of example ``i``'s gradient runs over all
    of its elements (pixels and channels alike).
    """
    real, fake, eps = _f64(real), _f64(fake), _f64(eps)
    total = 0.0
    for i in range(real.shape[0]):
        x_hat = eps[i] * real[i] + (1.0 - eps[i]) * fake[i]
        g = grad_fn(x_hat[None])[0]
        norm = math.sqrt(float(np.sum(g * g)))
        total += (norm - 1.0) ** 2
    return total / real.shape[0]


def r1_penalty(grad_fn, real) -> float:
    """``(1/B) sum_i ||grad D(x_i)||^2`` over data."""
    g = _f64(grad_fn(_f64(real)))
    return float(np.mean(np.sum(g.reshape(g.shape[0], -1) ** 2, axis=1)))


def spectral_norm(w, u, num_iters: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Miyato et al. (2018), Algorithm 1, on ``W = w.reshape(-1, out).T`` (rows = outputs).

    Returns ``(w / sigma, u, sigma)`` with ``sigma = u^T W v`` after ``num_iters`` rounds of
    ``v = W^T u / ||W^T u||``, ``u = W v / ||W v||``.
    """
    w = _f64(w)
    mat = w.reshape(-1, w.shape[-1]).T  # (out, in')
    u = _f64(u)
    v = np.zeros(mat.shape[1])
    for _ in range(num_iters):
        v = mat.T @ u
        v = v / np.linalg.norm(v)
        u = mat @ v
        u = u / np.linalg.norm(u)
    sigma = float(u @ mat @ v)
    return w / sigma, u, sigma


# --- StyleGAN, CycleGAN ----------------------------------------------------------------------


def adain(x, style_scale, style_bias, eps: float = 1e-5) -> np.ndarray:
    """``y_s (x - mu) / sqrt(var + eps) + y_b``, statistics per example and channel over H, W."""
    x = _f64(x)
    out = np.empty_like(x)
    for b in range(x.shape[0]):
        for c in range(x.shape[-1]):
            plane = x[b, :, :, c]
            mu = plane.mean()
            var = ((plane - mu) ** 2).mean()
            normalized = (plane - mu) / math.sqrt(var + eps)
            out[b, :, :, c] = style_scale[b][c] * normalized + style_bias[b][c]
    return out


def cycle_consistency_loss(x, y, g_fn, f_fn) -> float:
    """``mean |F(G(x)) - x| + mean |G(F(y)) - y|`` (means over all elements)."""
    x, y = _f64(x), _f64(y)
    return float(np.abs(f_fn(g_fn(x)) - x).mean() + np.abs(g_fn(f_fn(y)) - y).mean())


# --- the optimal discriminator and the value of the game -------------------------------------


def normal_mixture_pdf(x, weights, means, stds) -> np.ndarray:
    """``sum_k w_k N(x; m_k, s_k^2)`` of a 1-D mixture at ``x`` (any shape)."""
    x = _f64(x)[..., None]
    w, m, s = _f64(weights), _f64(means), _f64(stds)
    dens = np.exp(-0.5 * ((x - m) / s) ** 2) / (s * math.sqrt(2.0 * math.pi))
    return (w * dens).sum(axis=-1)


def optimal_discriminator(p_data, p_g) -> np.ndarray:
    """``D*(x) = p_data(x) / (p_data(x) + p_g(x))`` from densities (Goodfellow et al., Prop. 1)."""
    p, q = _f64(p_data), _f64(p_g)
    return p / (p + q)


def jsd_quadrature(p, q, dx: float) -> float:
    """``JSD(p || q) = 1/2 KL(p || m) + 1/2 KL(q || m)``, ``m = (p + q)/2``, by a Riemann sum.

    ``p``, ``q``: densities on a uniform grid of spacing ``dx`` wide enough to hold their mass.
    Terms where a density is 0 contribute 0 (``0 log 0 = 0``).
    """
    p, q = _f64(p), _f64(q)
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0)
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0)
    return float(0.5 * kl_p.sum() * dx + 0.5 * kl_q.sum() * dx)
