"""NumPy float64 oracle of the diffusion core, written from the papers.

Imports NumPy and the standard library only. Every function mirrors one of
:mod:`genjax.diffusion` (schedules, forward process, losses, one step of every sampler and
its loop) but is derived independently and, where the papers allow, in a different form:

* ``alpha_bar`` as ``exp(cumsum(log(1 - beta)))`` rather than a running product;
* the DDPM step as Algorithm 2, line 4 of Ho et al. (2020) (the noise form), not through
  the predicted ``x_0`` and the posterior;
* DPM-Solver++ from the exponential-integrator Taylor expansion of Lu et al. (2022b),
  eq. (9): ``x_t = (sigma_t / sigma_s) x_s + sigma_t sum_n x0^{(n)}(lambda_s)
  int_{lambda_s}^{lambda_t} e^lambda (lambda - lambda_s)^n / n! dlambda``, with the
  derivatives estimated by Newton divided differences of earlier predictions (2M instead
  follows Algorithm 2 of the paper verbatim);
* Heun as Algorithm 2 of Karras et al. (2022), line by line.

Models are plain NumPy callables: ``eps_fn(x, t)`` with ``x: (batch, ...)`` and integer
``t: (batch,)``; ``denoise_fn(x, sigma)`` with ``sigma: (batch,)``. The data end of every
discrete sampler is the virtual time ``t = -1`` with ``alpha_bar = 1``; trailing timesteps
``t_i = T - 1 - floor(i T / S)``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "linear_betas",
    "cosine_betas",
    "sigmoid_betas",
    "alpha_bars",
    "zero_terminal_snr_betas",
    "karras_sigmas",
    "q_sample",
    "q_posterior",
    "eps_loss_terms",
    "edm_precondition",
    "ddpm_step",
    "ddpm_loop",
    "ddim_timesteps",
    "ddim_step",
    "ddim_loop",
    "dpm_solver_pp_loop",
    "euler_loop",
    "heun_step",
    "heun_loop",
]


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


# ---------------------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------------------


def linear_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """Ho et al. (2020), sec. 4: ``beta_t = beta_start + t (beta_end - beta_start)/(T-1)``."""
    if T == 1:
        return np.array([beta_start])
    return np.array([beta_start + t * (beta_end - beta_start) / (T - 1) for t in range(T)])


def cosine_betas(T: int, s: float = 0.008) -> np.ndarray:
    """Nichol & Dhariwal (2021), eq. 17, betas clipped at 0.999."""

    def abar(t: float) -> float:
        f = math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
        f0 = math.cos(s / (1 + s) * math.pi / 2) ** 2
        return f / f0

    return np.array([min(1 - abar(t + 1) / abar(t), 0.999) for t in range(T)])


def sigmoid_betas(T: int, start: float = -3.0, end: float = 3.0, tau: float = 1.0) -> np.ndarray:
    """Chen (2023), Algorithm 1 (sigmoid schedule), discretised as the cosine one."""

    def sig(z: float) -> float:
        return 1.0 / (1.0 + math.exp(-z))

    def gamma(u: float) -> float:
        v0, v1 = sig(start / tau), sig(end / tau)
        return (v1 - sig((u * (end - start) + start) / tau)) / (v1 - v0)

    return np.array([min(1 - gamma((t + 1) / T) / gamma(t / T), 0.999) for t in range(T)])


def alpha_bars(betas) -> np.ndarray:
    """``alpha_bar_t = prod_{s<=t} (1 - beta_s) = exp(sum_{s<=t} log(1 - beta_s))``."""
    return np.exp(np.cumsum(np.log1p(-_f64(betas))))


def zero_terminal_snr_betas(betas) -> np.ndarray:
    """Lin et al. (2024), Algorithm 1: rescale ``sqrt(alpha_bar)`` to end at 0."""
    sab = np.sqrt(alpha_bars(betas))
    first, last = sab[0], sab[-1]
    sab = (sab - last) / (first - last) * first
    ab = sab**2
    alphas = np.empty_like(ab)
    alphas[0] = ab[0]
    alphas[1:] = ab[1:] / ab[:-1]
    return 1.0 - alphas


def karras_sigmas(N: int, sigma_min=0.002, sigma_max=80.0, rho=7.0) -> np.ndarray:
    """Karras et al. (2022), eq. 5, and ``sigma_N = 0``."""
    out = []
    for i in range(N):
        frac = i / (N - 1) if N > 1 else 0.0
        out.append(
            (sigma_max ** (1 / rho) + frac * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho)))
            ** rho
        )
    return np.array(out + [0.0])


# ---------------------------------------------------------------------------------------
# Forward process
# ---------------------------------------------------------------------------------------


def _per_example(c: np.ndarray, x: np.ndarray) -> np.ndarray:
    return c.reshape((-1,) + (1,) * (x.ndim - 1))


def q_sample(betas, x0, t, eps) -> np.ndarray:
    """Ho et al. (2020), eq. 4: ``x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps``."""
    ab = alpha_bars(betas)[np.asarray(t)]
    x0, eps = _f64(x0), _f64(eps)
    return _per_example(np.sqrt(ab), x0) * x0 + _per_example(np.sqrt(1 - ab), x0) * eps


def q_posterior(betas, x0, x_t, t):
    """Ho et al. (2020), eqs. 6-7: ``(mean, beta_tilde, beta)``, variances per example."""
    betas = _f64(betas)
    ab = alpha_bars(betas)
    t = np.asarray(t)
    ab_t = ab[t]
    ab_prev = np.array([ab[s - 1] if s > 0 else 1.0 for s in t])
    beta = betas[t]
    x0, x_t = _f64(x0), _f64(x_t)
    c0 = np.sqrt(ab_prev) * beta / (1 - ab_t)
    ct = np.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab_t)
    mean = _per_example(c0, x0) * x0 + _per_example(ct, x0) * x_t
    return mean, (1 - ab_prev) / (1 - ab_t) * beta, beta


# ---------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------


def eps_loss_terms(betas, x0, t, eps, pred, prediction: str, min_snr_gamma=None):
    """Per-example squared errors of Ho et al. (2020) eq. 14 for each prediction target.

    ``pred`` is the model output at ``x_t = q_sample(x0, t, eps)``. The target is ``eps``,
    ``x0`` or ``v = alpha eps - sigma x0`` (Salimans & Ho 2022). With ``min_snr_gamma``
    the weight is that of Hang et al. (2023), eq. 9: ``min(SNR, gamma)`` on the x0-space
    error. At fixed ``x_t``, ``|eps - eps_hat|^2 = SNR |x0 - x0_hat|^2`` and
    ``|v - v_hat|^2 = (SNR + 1) |x0 - x0_hat|^2``, so the weight on each target's error is
    ``min(SNR, gamma) / SNR`` (eps), ``min(SNR, gamma)`` (x0), ``min(SNR, gamma)/(SNR + 1)`` (v).

    Returns:
      ``(batch,)`` weighted mean-over-dimensions squared errors.
    """
    ab = alpha_bars(betas)[np.asarray(t)]
    x0, eps, pred = _f64(x0), _f64(eps), _f64(pred)
    a, s = np.sqrt(ab), np.sqrt(1 - ab)
    if prediction == "eps":
        target = eps
    elif prediction == "x0":
        target = x0
    else:
        target = _per_example(a, x0) * eps - _per_example(s, x0) * x0
    err = np.mean(((pred - target) ** 2).reshape(x0.shape[0], -1), axis=1)
    if min_snr_gamma is None:
        return err
    snr = ab / (1 - ab)
    clipped = np.minimum(snr, min_snr_gamma)
    weight = {"eps": clipped / snr, "x0": clipped, "v": clipped / (snr + 1)}[prediction]
    return weight * err


def edm_precondition(sigma, sigma_data: float = 0.5):
    """Karras et al. (2022), Table 1: ``(c_skip, c_out, c_in, c_noise, lambda)``."""
    sigma = _f64(sigma)
    c_skip = sigma_data**2 / (sigma**2 + sigma_data**2)
    c_out = sigma * sigma_data / np.sqrt(sigma**2 + sigma_data**2)
    c_in = 1 / np.sqrt(sigma**2 + sigma_data**2)
    c_noise = np.log(sigma) / 4
    weight = (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2
    return c_skip, c_out, c_in, c_noise, weight


# ---------------------------------------------------------------------------------------
# DDPM (Ho et al. 2020, Algorithm 2)
# ---------------------------------------------------------------------------------------


def _full(x: np.ndarray, t) -> np.ndarray:
    return np.full((x.shape[0],), t, dtype=np.int64)


def ddpm_step(eps_fn, betas, x, t: int, z, variance: str = "beta") -> np.ndarray:
    """Algorithm 2, line 4: ``x_{t-1} = (x_t - beta_t / sqrt(1-ab_t) eps) / sqrt(1-beta_t)
    + sigma_t z`` with ``sigma_t^2 = beta_t`` or ``beta_tilde_t``; ``z = 0`` at ``t = 0``."""
    betas = _f64(betas)
    ab = alpha_bars(betas)
    x = _f64(x)
    eps = _f64(eps_fn(x, _full(x, t)))
    mean = (x - betas[t] / math.sqrt(1 - ab[t]) * eps) / math.sqrt(1 - betas[t])
    if t == 0:
        return mean
    var = betas[t] if variance == "beta" else (1 - ab[t - 1]) / (1 - ab[t]) * betas[t]
    return mean + math.sqrt(var) * _f64(z)


def ddpm_loop(eps_fn, betas, x_T, noises, variance: str = "beta") -> np.ndarray:
    """Runs ``t = T-1, ..., 0``; ``noises[i]`` at ``t = T-1-i``."""
    T = len(betas)
    x = _f64(x_T)
    for i in range(T):
        x = ddpm_step(eps_fn, betas, x, T - 1 - i, noises[i], variance)
    return x


# ---------------------------------------------------------------------------------------
# DDIM (Song et al. 2021, eq. 12)
# ---------------------------------------------------------------------------------------


def ddim_timesteps(T: int, S: int) -> list[int]:
    """Trailing, evenly spaced: ``t_i = T - 1 - floor(i T / S)``."""
    return [T - 1 - (i * T) // S for i in range(S)]


def _clip(x0: np.ndarray, clip_x0) -> np.ndarray:
    """The optional clipping of a predicted ``x0`` to ``[-clip_x0, clip_x0]``."""
    return x0 if clip_x0 is None else np.minimum(np.maximum(x0, -clip_x0), clip_x0)


def ddim_step(
    eps_fn, ab_t: float, ab_next: float, x, t: int, z, eta: float, clip_x0=None
) -> np.ndarray:
    """Eq. 12 with ``sigma`` of eq. 16: from ``t`` (``ab_t``) to the next time (``ab_next``).

    With ``clip_x0``, the predicted ``x0`` is clipped before use; the direction term keeps
    the model's ``eps``."""
    x = _f64(x)
    eps = _f64(eps_fn(x, _full(x, t)))
    x0 = _clip((x - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t), clip_x0)  # "predicted x0"
    sig = eta * math.sqrt((1 - ab_next) / (1 - ab_t)) * math.sqrt(1 - ab_t / ab_next)
    direction = math.sqrt(max(1 - ab_next - sig**2, 0.0)) * eps  # "direction pointing to x_t"
    return math.sqrt(ab_next) * x0 + direction + sig * _f64(z)


def ddim_loop(
    eps_fn, betas, x_T, S: int, eta: float = 0.0, noises=None, clip_x0=None
) -> np.ndarray:
    """DDIM over ``S`` of the ``T`` steps (eq. 12); ``noises[i]`` at the i-th step (``eta > 0``)."""
    ab = alpha_bars(betas)
    ts = ddim_timesteps(len(betas), S)
    x = _f64(x_T)
    for i, t in enumerate(ts):
        ab_next = ab[ts[i + 1]] if i + 1 < S else 1.0
        z = np.zeros_like(x) if noises is None else noises[i]
        x = ddim_step(eps_fn, ab[t], ab_next, x, t, z, eta, clip_x0)
    return x


# ---------------------------------------------------------------------------------------
# DPM-Solver++ (Lu et al. 2022b), data prediction, in lambda = log(alpha / sigma)
# ---------------------------------------------------------------------------------------


def _taylor_update(x_s, a_t, s_t, s_s, h, derivs) -> np.ndarray:
    """``x_t = (s_t/s_s) x_s + alpha_t sum_n d_n int_0^h e^{u-h} u^n / n! du``.

    The integrals: n=0: ``1 - e^{-h}``; n=1: ``h - 1 + e^{-h}``;
    n=2: ``(h^2 - 2h + 2 - 2 e^{-h}) / 2``.
    """
    em = math.exp(-h)
    ints = [1 - em, h - 1 + em, (h * h - 2 * h + 2 - 2 * em) / 2]
    out = (s_t / s_s) * x_s
    for n, d in enumerate(derivs):
        out = out + a_t * ints[n] * d
    return out


def dpm_solver_pp_loop(
    eps_fn, betas, x_T, S: int, order: int = 2, method: str = "multistep", clip_x0=None
) -> np.ndarray:
    """DPM-Solver++ over the trailing grid of S integer times, then into the data.

    Multistep (Lu et al. 2022b, Algorithm 2 for order 2): step i uses order
    ``min(order, i + 1, S - i)``, so the first steps warm up and the last step (into
    ``sigma = 0``, ``lambda = +inf``) is first order: ``x = x0_hat``. Singlestep (2S,
    Algorithm 1 with ``r_i`` from the grid): the final step is first order; of the other
    S - 1 grid intervals, a leading odd one is a first-order step and the rest are taken
    in pairs ``t_j -> t_{j+2}`` through the intermediate point ``t_{j+1}``. With
    ``clip_x0`` every data prediction is clipped to ``[-clip_x0, clip_x0]`` when made.
    """
    ab = alpha_bars(betas)
    T = len(betas)
    grid = ddim_timesteps(T, S)
    alpha = [math.sqrt(ab[t]) for t in grid]
    sigma = [math.sqrt(1 - ab[t]) for t in grid]
    lam = [math.log(a / s) for a, s in zip(alpha, sigma, strict=True)]

    def x0_pred(x, i):
        eps = _f64(eps_fn(x, _full(x, grid[i])))
        return _clip((x - sigma[i] * eps) / alpha[i], clip_x0)

    x = _f64(x_T)
    if method == "multistep":
        preds: list[np.ndarray] = []  # x0 predictions at grid[0..i]
        for i in range(S):
            preds.append(x0_pred(x, i))
            if i == S - 1:
                return preds[-1]  # lambda_t = inf: x_t = x0_hat(x_s)
            o = min(order, i + 1, S - i)
            h = lam[i + 1] - lam[i]
            m0 = preds[i]
            if o == 1:
                x = _taylor_update(x, alpha[i + 1], sigma[i + 1], sigma[i], h, [m0])
            elif o == 2:
                # Algorithm 2: D = (1 + 1/(2r)) m0 - 1/(2r) m1, r = h_{i-1} / h_i
                r = (lam[i] - lam[i - 1]) / h
                d = (1 + 1 / (2 * r)) * m0 - 1 / (2 * r) * preds[i - 1]
                x = (sigma[i + 1] / sigma[i]) * x - alpha[i + 1] * (math.exp(-h) - 1) * d
            else:
                # quadratic through (lam_{i-2}, m2), (lam_{i-1}, m1), (lam_i, m0)
                l0, l1, l2 = lam[i], lam[i - 1], lam[i - 2]
                m1, m2 = preds[i - 1], preds[i - 2]
                f01 = (m0 - m1) / (l0 - l1)
                f12 = (m1 - m2) / (l1 - l2)
                f012 = (f01 - f12) / (l0 - l2)
                d1 = f01 + f012 * (l0 - l1)  # p'(lam_i)
                d2 = 2 * f012  # p''
                x = _taylor_update(x, alpha[i + 1], sigma[i + 1], sigma[i], h, [m0, d1, d2])
        return x
    # singlestep 2S
    i = 0
    n_inner = S - 1
    if n_inner % 2 == 1:
        m0 = x0_pred(x, 0)
        x = _taylor_update(x, alpha[1], sigma[1], sigma[0], lam[1] - lam[0], [m0])
        i = 1
    while i < S - 1:
        m_s = x0_pred(x, i)
        h = lam[i + 2] - lam[i]
        rh = lam[i + 1] - lam[i]
        r = rh / h
        # u = first-order step to the intermediate time (Algorithm 1, line 4)
        u = (sigma[i + 1] / sigma[i]) * x - alpha[i + 1] * (math.exp(-rh) - 1) * m_s
        m_u = x0_pred(u, i + 1)
        d = (1 - 1 / (2 * r)) * m_s + 1 / (2 * r) * m_u  # Algorithm 1, line 5
        x = (sigma[i + 2] / sigma[i]) * x - alpha[i + 2] * (math.exp(-h) - 1) * d
        i += 2
    return x0_pred(x, S - 1)


# ---------------------------------------------------------------------------------------
# EDM samplers (Karras et al. 2022) over denoise_fn(x, sigma)
# ---------------------------------------------------------------------------------------


def _den(denoise_fn, x: np.ndarray, sigma: float) -> np.ndarray:
    return _f64(denoise_fn(x, np.full((x.shape[0],), sigma)))


def euler_loop(denoise_fn, x_T, sigmas) -> np.ndarray:
    """Euler on ``dx/dsigma = (x - D(x, sigma)) / sigma`` (Karras et al. 2022, eq. 4 with
    ``sigma(t) = t``), from ``x_T = sigmas[0] * z``."""
    x = _f64(x_T)
    for i in range(len(sigmas) - 1):
        d = (x - _den(denoise_fn, x, sigmas[i])) / sigmas[i]
        x = x + (sigmas[i + 1] - sigmas[i]) * d
    return x


def heun_step(denoise_fn, x, s_cur, s_next, z, gamma, s_noise=1.0) -> np.ndarray:
    """Karras et al. (2022), Algorithm 2, lines 4-11."""
    x = _f64(x)
    s_hat = s_cur * (1 + gamma)  # line 6
    x_hat = x + math.sqrt(max(s_hat**2 - s_cur**2, 0.0)) * s_noise * _f64(z)  # line 7
    d = (x_hat - _den(denoise_fn, x_hat, s_hat)) / s_hat  # line 8
    x_next = x_hat + (s_next - s_hat) * d  # line 8
    if s_next != 0:  # lines 9-11: second-order correction
        d2 = (x_next - _den(denoise_fn, x_next, s_next)) / s_next
        x_next = x_hat + (s_next - s_hat) * (0.5 * d + 0.5 * d2)
    return x_next


def heun_loop(
    denoise_fn,
    x_T,
    sigmas,
    noises=None,
    s_churn=0.0,
    s_tmin=0.0,
    s_tmax=float("inf"),
    s_noise=1.0,
) -> np.ndarray:
    """Algorithm 2 over ``N = len(sigmas) - 1`` steps, ``noises[i]`` used at step i."""
    n = len(sigmas) - 1
    x = _f64(x_T)
    for i in range(n):
        gamma = min(s_churn / n, math.sqrt(2) - 1) if s_tmin <= sigmas[i] <= s_tmax else 0.0
        z = np.zeros_like(x) if noises is None else noises[i]
        x = heun_step(denoise_fn, x, sigmas[i], sigmas[i + 1], z, gamma, s_noise)
    return x
