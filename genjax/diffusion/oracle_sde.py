"""NumPy float64 oracle for the SDE, likelihood and consistency-model parts of diffusion.

Written from the papers' equations (Song et al. 2021, "Score-based generative modeling
through SDEs", eqs. 9, 11, 13, 17, 29, 46-47, Algorithms 4-5; Song et al. 2023,
"Consistency models", eq. 7, Appendix C), independently of the JAX code. Imports NumPy
and the standard library only.

SDEs are named by a string ``kind`` in {"vp", "subvp", "ve"} with a parameter tuple
``(beta_min, beta_max)`` or ``(sigma_min, sigma_max)``. A score model is a NumPy callable
``score(x (n, d), t (float)) -> (n, d)``.
"""

from __future__ import annotations

import math

import numpy as np


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


# --------------------------------------------------------------------------------------
# SDE coefficients
# --------------------------------------------------------------------------------------


def beta_integral(t: float, beta_min: float, beta_max: float) -> float:
    """int_0^t beta(s) ds for beta(s) = beta_min + s (beta_max - beta_min)."""
    return beta_min * t + 0.5 * (beta_max - beta_min) * t * t


def coefficients(kind: str, params: tuple[float, float], t: float) -> dict[str, float]:
    """f-coefficient, g, alpha, sigma of one SDE at time ``t``.

    The drift is ``f(x, t) = f_coef * x``.
    """
    if kind in ("vp", "subvp"):
        bmin, bmax = params
        beta = bmin + t * (bmax - bmin)
        B = beta_integral(t, bmin, bmax)
        alpha = math.exp(-0.5 * B)  # eq. 29: mean coefficient
        if kind == "vp":
            g2 = beta  # eq. 11
            sigma = math.sqrt(1.0 - math.exp(-B))
        else:
            g2 = beta * (1.0 - math.exp(-2.0 * B))  # eq. 17
            sigma = 1.0 - math.exp(-B)
        return {"f_coef": -0.5 * beta, "g": math.sqrt(g2), "alpha": alpha, "sigma": sigma}
    if kind == "ve":
        smin, smax = params
        s = smin * (smax / smin) ** t
        g = math.sqrt(2.0 * s * s * math.log(smax / smin))  # d s(t)^2 / dt = 2 s^2 log(r)
        sigma = math.sqrt(s * s - smin * smin)  # int_0^t g^2 = s(t)^2 - s(0)^2
        return {"f_coef": 0.0, "g": g, "alpha": 1.0, "sigma": sigma, "s": s}
    raise ValueError(kind)


def prior_std(kind: str, params: tuple[float, float]) -> float:
    """The standard deviation of the SDE's prior at ``t = 1``: ``s_max`` (VE) or 1 (VP, sub-VP)."""
    return params[1] if kind == "ve" else 1.0


def prior_log_prob(kind: str, params: tuple[float, float], x) -> np.ndarray:
    """``log N(x; 0, prior_std^2 I)`` per row of ``x: (n, d)``."""
    x = _f64(x)
    s = prior_std(kind, params)
    d = x.shape[1]
    return -0.5 * np.sum(x * x, axis=1) / s**2 - d * math.log(s) - 0.5 * d * math.log(2 * math.pi)


def discretization(kind: str, params, x, t: float, h: float):
    """Forward step from ``t - h`` to ``t`` as ``x + f_i + G_i z`` (eq. 46)."""
    x = _f64(x)
    if kind == "vp":
        bmin, bmax = params
        # 1 - b_i = exp(-int_{t-h}^t beta)
        one_minus_b = math.exp(-(beta_integral(t, bmin, bmax) - beta_integral(t - h, bmin, bmax)))
        return (math.sqrt(one_minus_b) - 1.0) * x, math.sqrt(1.0 - one_minus_b)
    if kind == "ve":
        s_t = coefficients("ve", params, t)["s"]
        s_prev = coefficients("ve", params, t - h)["s"]
        return np.zeros_like(x), math.sqrt(s_t * s_t - s_prev * s_prev)
    c = coefficients(kind, params, t)
    return c["f_coef"] * x * h, c["g"] * math.sqrt(h)


def langevin_a(kind: str, params, t: float, h: float) -> float:
    """The corrector's ``alpha_i = exp(-int_{t-h}^t beta)`` (VP, sub-VP), 1 (VE).

    Song et al. (2021), Algorithm 5.
    """
    if kind == "ve":
        return 1.0
    bmin, bmax = params
    return math.exp(-(beta_integral(t, bmin, bmax) - beta_integral(t - h, bmin, bmax)))


# --------------------------------------------------------------------------------------
# One predictor-corrector step and the loop
# --------------------------------------------------------------------------------------


def pc_step(kind, params, score, x, t, h, z_pred, z_corr, *, predictor, snr):
    """Langevin correctors at ``t`` (Algorithms 4/5), then one predictor to ``t - h``.

    Returns ``(x_next, x_mean)``.
    """
    x = _f64(x)
    for z in _f64(z_corr):
        s = score(x, t)
        s_norm = np.mean(np.linalg.norm(s, axis=1))
        z_norm = np.mean(np.linalg.norm(z, axis=1))
        step = 2.0 * langevin_a(kind, params, t, h) * (snr * z_norm / s_norm) ** 2
        x = x + step * s + math.sqrt(2.0 * step) * z
    c = coefficients(kind, params, t)
    s = score(x, t)
    if predictor == "euler_maruyama":
        # reverse SDE dx = [f - g^2 s] dt + g dw, dt = -h
        x_mean = x - (c["f_coef"] * x - c["g"] ** 2 * s) * h
        return x_mean + c["g"] * math.sqrt(h) * _f64(z_pred), x_mean
    if predictor == "reverse_diffusion":
        f, G = discretization(kind, params, x, t, h)
        x_mean = x - f + G * G * s  # eq. 47
        return x_mean + G * _f64(z_pred), x_mean
    raise ValueError(predictor)


def pc_sample_from_noise(kind, params, score, x_T, z_pred, z_corr, *, predictor, snr, eps):
    """N steps on the grid t_i = 1 - i (1 - eps)/N; returns the last mean."""
    x = _f64(x_T)
    n = len(z_pred)
    h = (1.0 - eps) / n
    x_mean = x
    for i in range(n):
        t = 1.0 - i * h
        x, x_mean = pc_step(kind, params, score, x, t, h, z_pred[i], z_corr[i],
                            predictor=predictor, snr=snr)
    return x_mean


def probability_flow_drift(kind, params, score, x, t):
    """dx/dt = f(x, t) - 1/2 g(t)^2 score(x, t)  (eq. 13)."""
    c = coefficients(kind, params, t)
    x = _f64(x)
    return c["f_coef"] * x - 0.5 * c["g"] ** 2 * score(x, t)


# --------------------------------------------------------------------------------------
# Gaussian-mixture score (for the exact tests) and consistency models
# --------------------------------------------------------------------------------------


def isotropic_mixture_score(weights, means, var, x) -> np.ndarray:
    """Score of sum_k w_k N(mu_k, var I): -sum_k r_k (x - mu_k) / var."""
    x, means = _f64(x), _f64(means)
    diff = x[:, None, :] - means[None, :, :]  # (n, K, d)
    logits = np.log(_f64(weights))[None, :] - 0.5 * np.sum(diff**2, axis=-1) / var
    logits -= logits.max(axis=1, keepdims=True)
    r = np.exp(logits)
    r /= r.sum(axis=1, keepdims=True)
    return -np.einsum("nk,nkd->nd", r, diff) / var


def consistency_scalings(sigma, sigma_data: float, eps: float):
    """c_skip, c_out of Song et al. (2023), Appendix C:

    c_skip = sigma_data^2 / ((sigma - eps)^2 + sigma_data^2),
    c_out  = sigma_data (sigma - eps) / sqrt(sigma_data^2 + sigma^2).
    """
    sigma = _f64(sigma)
    c_skip = sigma_data**2 / ((sigma - eps) ** 2 + sigma_data**2)
    c_out = sigma_data * (sigma - eps) / np.sqrt(sigma_data**2 + sigma**2)
    return c_skip, c_out


def karras_boundaries(n: int, sigma_min: float, sigma_max: float, rho: float) -> np.ndarray:
    """t_i = (eps^(1/rho) + (i-1)/(N-1) (T^(1/rho) - eps^(1/rho)))^rho, i = 1..N (eq. 5 / CM)."""
    i = np.arange(n, dtype=np.float64)
    a, b = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return (a + i / (n - 1) * (b - a)) ** rho


def ct_num_scales(k: int, total: int, s0: float, s1: float) -> int:
    """N(k) = ceil(sqrt(k/K ((s1 + 1)^2 - s0^2) + s0^2) - 1) + 1 (Consistency models, App. C)."""
    return int(math.ceil(math.sqrt(k / total * ((s1 + 1) ** 2 - s0**2) + s0**2) - 1) + 1)


def consistency_function(F, x, t, sigma_data: float, eps: float) -> np.ndarray:
    """f(x, t) = c_skip x + c_out F(x / sqrt(t^2 + sigma_data^2), log(t)/4)  (CM eq. 7)."""
    x, t = _f64(x), _f64(t)
    c_skip, c_out = consistency_scalings(t, sigma_data, eps)
    x_in = x / np.sqrt(t**2 + sigma_data**2)[:, None]
    return c_skip[:, None] * x + c_out[:, None] * F(x_in, 0.25 * np.log(t))


def ct_loss(F_online, F_target, x0, n, z, num_scales, *, sigma_min, sigma_max, rho, sigma_data,
            distance="l2", weighting="uniform"):
    """Consistency training (CM Algorithm 3) with 1-based indices n in [1, N-1].

    ``distance="pseudo_huber"``: sqrt(|a-b|^2 + c^2) - c, c = 0.00054 sqrt(d);
    ``weighting="inverse_step"``: lambda = 1/(t_{n+1} - t_n) (improved CT, 2023).
    """
    ts = karras_boundaries(num_scales, sigma_min, sigma_max, rho)  # ts[i-1] = t_i
    t_n, t_n1 = ts[np.asarray(n) - 1], ts[np.asarray(n)]
    x0, z = _f64(x0), _f64(z)
    a = consistency_function(F_online, x0 + t_n1[:, None] * z, t_n1, sigma_data, sigma_min)
    b = consistency_function(F_target, x0 + t_n[:, None] * z, t_n, sigma_data, sigma_min)
    sq = np.sum((a - b) ** 2, axis=1)
    if distance == "pseudo_huber":
        c = 0.00054 * math.sqrt(x0.shape[1])
        sq = np.sqrt(sq + c * c) - c
    lam = 1.0 / (t_n1 - t_n) if weighting == "inverse_step" else np.ones_like(t_n)
    return float(np.mean(lam * sq))


def cd_loss(F_online, F_target, denoise, x0, n, z, num_scales, *, solver, sigma_min,
            sigma_max, rho, sigma_data):
    """Consistency distillation (CM Algorithm 2): teacher ODE step dx/dt = (x - D(x, t))/t."""
    ts = karras_boundaries(num_scales, sigma_min, sigma_max, rho)
    t_n, t_n1 = ts[np.asarray(n) - 1], ts[np.asarray(n)]
    x0, z = _f64(x0), _f64(z)
    x1 = x0 + t_n1[:, None] * z
    d1 = (x1 - denoise(x1, t_n1)) / t_n1[:, None]
    h = (t_n - t_n1)[:, None]
    x_hat = x1 + h * d1
    if solver == "heun":
        d0 = (x_hat - denoise(x_hat, t_n)) / t_n[:, None]
        x_hat = x1 + h * (d1 + d0) / 2
    a = consistency_function(F_online, x1, t_n1, sigma_data, sigma_min)
    b = consistency_function(F_target, x_hat, t_n, sigma_data, sigma_min)
    return float(np.mean(np.sum((a - b) ** 2, axis=1)))


def consistency_multistep(f, noise, sigmas, sigma_min: float) -> np.ndarray:
    """CM Algorithm 1 with a NumPy consistency function f(x, t (n,))."""
    noise = _f64(noise)
    n = noise.shape[1]
    x = f(sigmas[0] * noise[0], np.full(n, sigmas[0]))
    for s, z in zip(sigmas[1:], noise[1:], strict=True):
        x = f(x + math.sqrt(s * s - sigma_min**2) * z, np.full(n, s))
    return x
