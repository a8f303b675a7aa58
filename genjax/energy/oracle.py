"""NumPy float64 oracle of the energy family: MCMC kernels and EBM / score-matching losses.

Imports NumPy and the standard library only, and is written from the papers, one chain at a
time where the JAX code is batched:

* ULA and MALA from Roberts & Tweedie (1996), sec. 1.4; MALA's acceptance from the
  Metropolis-Hastings ratio ``pi(y) q(x|y) / (pi(x) q(y|x))`` with the Gaussian proposal
  density written out (``gaussian_log_density``), not through a drift helper;
* random-walk Metropolis (Metropolis et al. 1953);
* HMC from Neal (2011), Figure 5.2 (the R function ``HMC``), line by line: a half step for
  the momentum, alternating full steps, a final half step, negate the momentum;
* annealed Langevin dynamics from Song & Ermon (2019), Algorithm 1, with
  ``alpha_i = eps sigma_i^2 / sigma_L^2`` and the update ``x + alpha/2 s + sqrt(alpha) z``;
* contrastive divergence (Hinton 2002) with the L2 energy regulariser of Du & Mordatch
  (2019, eq. 4 / sec. 3.3);
* exact score matching (Hyvarinen 2005, Theorem 1, eq. 4), denoising score matching
  (Vincent 2011, eq. 7 of sec. 4.2) and sliced score matching (Song et al. 2019, eq. 7 and
  the variance-reduced eq. 8).

Log-densities and scores are NumPy callables on one point ``x: (dim,)``; the oracle loops
over chains.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "gaussian_log_density",
    "langevin_step",
    "langevin_loop",
    "mala_proposal_log_density",
    "mala_step",
    "mala_loop",
    "rwmh_step",
    "rwmh_loop",
    "hmc_step",
    "hmc_loop",
    "annealed_langevin_loop",
    "ula_gaussian_stationary_variance",
    "mala_kernel_matrix",
    "rwmh_kernel_matrix",
    "cd_objective",
    "exact_score_matching",
    "denoising_score_matching",
    "sliced_score_matching",
    "ncsn_objective",
    "gaussian_sm_optimum",
]


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def gaussian_log_density(y, mean, var: float) -> float:
    """``log N(y; mean, var I)`` for ``y, mean: (dim,)``."""
    y, mean = _f64(y), _f64(mean)
    d = y.shape[0]
    return float(-0.5 * d * math.log(2 * math.pi * var) - 0.5 * np.dot(y - mean, y - mean) / var)


# ---------------------------------------------------------------------------------------
# Kernels (per chain)
# ---------------------------------------------------------------------------------------


def langevin_step(score, x, xi, h: float, noise_scale: float | None = None) -> np.ndarray:
    """ULA, ``x' = x + h s(x) + sqrt(2h) xi`` for ``x: (chains, dim)``; ``score`` on one point."""
    x, xi = _f64(x), _f64(xi)
    scale = math.sqrt(2 * h) if noise_scale is None else noise_scale
    return np.stack([x[c] + h * score(x[c]) + scale * xi[c] for c in range(x.shape[0])])


def langevin_loop(score, x0, noise, h: float, noise_scale: float | None = None) -> np.ndarray:
    """``len(noise)`` ULA steps; returns the trajectory ``(num_steps, chains, dim)``."""
    x = _f64(x0)
    out = []
    for xi in _f64(noise):
        x = langevin_step(score, x, xi, h, noise_scale)
        out.append(x)
    return np.stack(out)


def mala_proposal_log_density(y, x, grad_log_pi, h: float) -> float:
    """``log q(y | x)``: the proposal from ``x`` is ``N(x + h grad log pi(x), 2h I)``."""
    x = _f64(x)
    return gaussian_log_density(y, x + h * _f64(grad_log_pi(x)), 2 * h)


def mala_step(log_pi, grad_log_pi, x, xi, u, h: float) -> tuple[np.ndarray, np.ndarray]:
    """One MALA step per chain; returns ``(x' (chains, dim), accepted (chains,))``."""
    x, xi, u = _f64(x), _f64(xi), _f64(u)
    out, acc = x.copy(), np.zeros(x.shape[0], bool)
    for c in range(x.shape[0]):
        xc = x[c]
        y = xc + h * grad_log_pi(xc) + math.sqrt(2 * h) * xi[c]
        # Metropolis-Hastings ratio with the forward and reverse proposal densities
        log_r = (log_pi(y) + mala_proposal_log_density(xc, y, grad_log_pi, h)) - (
            log_pi(xc) + mala_proposal_log_density(y, xc, grad_log_pi, h)
        )
        if math.log(u[c]) < log_r:
            out[c], acc[c] = y, True
    return out, acc


def _mh_loop(step, x0, xis, us):
    x = _f64(x0)
    traj, count = [], np.zeros(x.shape[0])
    for xi, u in zip(_f64(xis), _f64(us), strict=True):
        x, acc = step(x, xi, u)
        count += acc
        traj.append(x)
    return np.stack(traj), count / len(traj)


def mala_loop(log_pi, grad_log_pi, x0, xis, us, h: float):
    """MALA trajectory ``(num_steps, chains, dim)`` and acceptance rates ``(chains,)``."""
    return _mh_loop(lambda x, xi, u: mala_step(log_pi, grad_log_pi, x, xi, u, h), x0, xis, us)


def rwmh_step(log_pi, x, xi, u, s: float):
    """Random-walk Metropolis per chain: ``y = x + s xi``, accept if ``u < pi(y)/pi(x)``."""
    x, xi, u = _f64(x), _f64(xi), _f64(u)
    out, acc = x.copy(), np.zeros(x.shape[0], bool)
    for c in range(x.shape[0]):
        y = x[c] + s * xi[c]
        if u[c] < math.exp(min(0.0, log_pi(y) - log_pi(x[c]))):
            out[c], acc[c] = y, True
    return out, acc


def rwmh_loop(log_pi, x0, xis, us, s: float):
    """Random-walk Metropolis trajectory and acceptance rates."""
    return _mh_loop(lambda x, xi, u: rwmh_step(log_pi, x, xi, u, s), x0, xis, us)


def hmc_step(log_pi, grad_log_pi, x, p0, u, eps: float, L: int):
    """Neal (2011), Figure 5.2, per chain, with ``U = -log pi`` and ``K = |p|^2 / 2``."""
    x, p0, u = _f64(x), _f64(p0), _f64(u)
    out, acc = x.copy(), np.zeros(x.shape[0], bool)
    for c in range(x.shape[0]):
        q, p = x[c].copy(), p0[c].copy()
        p = p - eps * (-grad_log_pi(q)) / 2  # half step for momentum
        for i in range(L):
            q = q + eps * p  # full step for position
            if i != L - 1:
                p = p - eps * (-grad_log_pi(q))  # full step for momentum
        p = p - eps * (-grad_log_pi(q)) / 2  # final half step
        p = -p  # negate momentum (symmetric proposal; K is even so H is unchanged)
        current_h = -log_pi(x[c]) + np.sum(p0[c] ** 2) / 2
        proposed_h = -log_pi(q) + np.sum(p**2) / 2
        if u[c] < math.exp(min(0.0, current_h - proposed_h)):
            out[c], acc[c] = q, True
    return out, acc


def hmc_loop(log_pi, grad_log_pi, x0, ps, us, eps: float, L: int):
    """HMC trajectory and acceptance rates."""
    return _mh_loop(lambda x, p, u: hmc_step(log_pi, grad_log_pi, x, p, u, eps, L), x0, ps, us)


def annealed_langevin_loop(score, x0, noise, sigmas, eps: float, T: int, denoise: bool = True):
    """Song & Ermon (2019), Algorithm 1 (``score(x, sigma)`` on one point), with
    ``alpha_i = eps sigma_i^2 / sigma_L^2`` and ``x <- x + alpha_i/2 s + sqrt(alpha_i) z``;
    then optionally ``x + sigma_L^2 s(x, sigma_L)``. Returns ``(chains, dim)``."""
    x = _f64(x0).copy()
    noise = _f64(noise)
    sigmas = _f64(sigmas)
    t = 0
    for sigma in sigmas:
        alpha = eps * sigma**2 / sigmas[-1] ** 2
        for _ in range(T):
            for c in range(x.shape[0]):
                x[c] = x[c] + alpha / 2 * score(x[c], sigma) + math.sqrt(alpha) * noise[t, c]
            t += 1
    if denoise:
        for c in range(x.shape[0]):
            x[c] = x[c] + sigmas[-1] ** 2 * score(x[c], sigmas[-1])
    return x


def ula_gaussian_stationary_variance(h: float, s2: float) -> float:
    """ULA on ``N(0, s2)``: ``x' = (1 - h/s2) x + sqrt(2h) xi`` is AR(1), so its stationary
    variance solves ``v = (1 - h/s2)^2 v + 2h``: ``v = 2h / (1 - (1 - h/s2)^2)`` (finite iff
    ``0 < h < 2 s2``)."""
    a = 1.0 - h / s2
    return 2.0 * h / (1.0 - a * a)


# ---------------------------------------------------------------------------------------
# Transition matrices of the kernels restricted to a 1-D lattice
# ---------------------------------------------------------------------------------------


def _kernel_from_offdiag(off: np.ndarray) -> np.ndarray:
    k = off.copy()
    np.fill_diagonal(k, 0.0)
    stay = 1.0 - k.sum(axis=1)
    if np.any(stay < 0):
        raise ValueError("the lattice is too coarse: a row's move mass exceeds 1")
    k[np.diag_indices_from(k)] = stay
    return k


def mala_kernel_matrix(log_pi, grad_log_pi, grid, h: float) -> np.ndarray:
    """The discrete MH chain on the 1-D lattice ``grid (n,)`` with proposal mass
    ``q(x_j | x_i) dx`` and MALA's acceptance ``a(x_i, x_j)``; rejected and unproposed
    mass stays at ``x_i``. ``K (n, n)``, rows summing to one."""
    grid = _f64(grid)
    dx = grid[1] - grid[0]
    n = grid.shape[0]
    lp = [log_pi(grid[i : i + 1]) for i in range(n)]  # log pi and its drift, once per site
    drift = [grid[i : i + 1] + h * _f64(grad_log_pi(grid[i : i + 1])) for i in range(n)]
    off = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            log_fwd = gaussian_log_density(grid[j : j + 1], drift[i], 2 * h)  # q(x_j | x_i)
            log_rev = gaussian_log_density(grid[i : i + 1], drift[j], 2 * h)  # q(x_i | x_j)
            a = math.exp(min(0.0, lp[j] + log_rev - lp[i] - log_fwd))
            off[i, j] = math.exp(log_fwd) * dx * a
    return _kernel_from_offdiag(off)


def rwmh_kernel_matrix(log_pi, grid, s: float) -> np.ndarray:
    """As :func:`mala_kernel_matrix` for random-walk Metropolis with ``N(x, s^2)``."""
    grid = _f64(grid)
    dx = grid[1] - grid[0]
    n = grid.shape[0]
    lp = [log_pi(grid[i : i + 1]) for i in range(n)]
    off = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                q = math.exp(gaussian_log_density(grid[j : j + 1], grid[i : i + 1], s * s))
                a = math.exp(min(0.0, lp[j] - lp[i]))
                off[i, j] = q * dx * a
    return _kernel_from_offdiag(off)


# ---------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------


def cd_objective(energy, x_pos, x_neg, alpha: float) -> float:
    """Contrastive divergence surrogate with the L2 regulariser of Du & Mordatch (2019):

        L = mean_i E(x+_i) - mean_j E(x-_j) + alpha (mean_i E(x+_i)^2 + mean_j E(x-_j)^2)

    ``energy`` maps one point to a float."""
    e_pos = np.array([energy(x) for x in _f64(x_pos)])
    e_neg = np.array([energy(x) for x in _f64(x_neg)])
    return float(e_pos.mean() - e_neg.mean() + alpha * (np.mean(e_pos**2) + np.mean(e_neg**2)))


def exact_score_matching(score, jacobian, x) -> float:
    """Hyvarinen (2005), eq. 4: ``J = mean_x [ tr(d s / d x) + |s(x)|^2 / 2 ]``,
    ``jacobian(x) -> (dim, dim)`` given analytically."""
    vals = [np.trace(jacobian(xi)) + 0.5 * np.sum(score(xi) ** 2) for xi in _f64(x)]
    return float(np.mean(vals))


def denoising_score_matching(score, x, eps, sigma: float) -> float:
    """Vincent (2011), sec. 4.2: ``x~ = x + sigma eps``,
    ``J = mean 1/2 |s(x~) - grad_x~ log q(x~ | x)|^2`` with
    ``grad_x~ log N(x~; x, sigma^2 I) = -(x~ - x) / sigma^2``."""
    vals = []
    for xi, ei in zip(_f64(x), _f64(eps), strict=True):
        xt = xi + sigma * ei
        target = -(xt - xi) / sigma**2
        vals.append(0.5 * np.sum((score(xt) - target) ** 2))
    return float(np.mean(vals))


def sliced_score_matching(score, jacobian, x, v, variance_reduced: bool = False) -> float:
    """Song et al. (2019), eq. 7: ``mean_{x, v} [ v^T (ds/dx) v + (v^T s)^2 / 2 ]``, or
    eq. 8 (``variance_reduced``): ``|s|^2 / 2`` in place of ``(v^T s)^2 / 2``.
    ``v: (num_projections, batch, dim)``."""
    v = _f64(v)
    vals = []
    for n, xi in enumerate(_f64(x)):
        s, jac = score(xi), jacobian(xi)
        for m in range(v.shape[0]):
            vm = v[m, n]
            second = 0.5 * np.sum(s**2) if variance_reduced else 0.5 * np.dot(vm, s) ** 2
            vals.append(vm @ jac @ vm + second)
    return float(np.mean(vals))


def ncsn_objective(score, x, eps, sigma) -> float:
    """Song & Ermon (2019), eqs. 5-6 with ``lambda(sigma) = sigma^2``:
    ``mean_i sigma_i^2 / 2 |s(x_i + sigma_i eps_i, sigma_i) + eps_i / sigma_i|^2``,
    ``score(x, sigma)`` on one point, ``sigma: (batch,)``."""
    vals = []
    for xi, ei, si in zip(_f64(x), _f64(eps), _f64(sigma), strict=True):
        xt = xi + si * ei
        vals.append(si**2 / 2 * np.sum((score(xt, si) + ei / si) ** 2))
    return float(np.mean(vals))


def gaussian_sm_optimum(x, sigma: float = 0.0):
    """The minimiser of the score-matching objective over the linear scores
    ``s(x) = -A (x - mu)`` on data ``x (n, dim)``: ``mu = mean(x)``,
    ``A = (S + sigma^2 I)^{-1}`` with ``S`` the (1/n) sample covariance -- exact SM at
    ``sigma = 0``; denoising SM with noise ``sigma`` targets the noised data's score."""
    x = _f64(x)
    mu = x.mean(axis=0)
    s = (x - mu).T @ (x - mu) / x.shape[0]
    return mu, np.linalg.inv(s + sigma**2 * np.eye(x.shape[1]))
