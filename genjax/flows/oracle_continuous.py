"""NumPy-only (float64) twin of the continuous flows: CNF log-densities, flow matching, OT.

Written from the equations, independently of the JAX code:

* probability paths ``x_t = alpha_t x1 + sigma_t x0`` (Lipman et al. 2023, eq. 18-23) and
  the conditional flow matching loss on given draws (eq. 9);
* the marginal velocity of a Gaussian target by conditioning the joint Gaussian of
  ``(u, x_t)`` — ``E[u | x_t] = E u + Cov(u, x_t) Cov(x_t)^{-1} (x_t - E x_t)`` with
  ``u = alpha' x1 + sigma' x0`` — built from the block covariance of ``(x0, x1)``;
* the linear assignment problem by brute force over all ``n!`` permutations (n <= 8) and
  by a Jonker-Volgenant shortest-augmenting-path solver with explicit Python loops
  (Dijkstra over columns with row/column potentials);
* the CNF log-density by the classical RK4 integration of the augmented ODE
  ``d[x, l]/dt = [f(x, t), -tr(df/dx)]`` backwards from data (``t1``) to noise (``t0``)
  with a field whose Jacobian is written out by hand (a one-hidden-layer tanh network),
  the trace exact or ``v^T J v`` averaged over given probes;
* the matrix exponential pushforward of a linear field ``dx/dt = A x`` (scaling and
  squaring with a Taylor series): ``log p(x) = log N(exp(-A dt) x) - dt tr(A)``.

This module imports numpy and the standard library only.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

VP_BETA_MIN = 0.1
VP_BETA_MAX = 20.0
VP_T_MAX = 1.0 - 1e-5


# --------------------------------------------------------------------------- paths


def path_coefficients(t, path="condot", sigma_min=0.0):
    """(alpha, sigma, d alpha/dt, d sigma/dt) of x_t = alpha x1 + sigma x0, float64."""
    t = np.asarray(t, np.float64)
    if path == "condot":
        # Lipman eq. 20: mu_t = t x1, sigma_t = 1 - (1 - sigma_min) t
        return t, 1.0 - (1.0 - sigma_min) * t, np.ones_like(t), -(1.0 - sigma_min) * np.ones_like(t)
    if path != "vp":
        raise ValueError(path)
    s = 1.0 - np.minimum(t, VP_T_MAX)
    # alpha(s) = exp(-1/2 int_0^s beta(r) dr), beta(r) = b0 + (b1 - b0) r   (Lipman eq. 18)
    integral = VP_BETA_MIN * s + 0.5 * (VP_BETA_MAX - VP_BETA_MIN) * s * s
    a = np.exp(-0.5 * integral)
    sig = np.sqrt(1.0 - a * a)
    beta = VP_BETA_MIN + (VP_BETA_MAX - VP_BETA_MIN) * s
    # chain rule with ds/dt = -1: d a/dt = -(-beta/2 a) ; d sig/dt = -a (da/dt) / sig
    da = 0.5 * beta * a
    dsig = -a * da / sig
    return a, sig, da, dsig


def sample_path(x0, x1, t, path="condot", sigma_min=0.0):
    """``(x_t, u_t)`` on the path from noise ``x0`` to data ``x1`` at times ``t: (n,)``."""
    a, s, da, ds = (c[:, None] for c in path_coefficients(t, path, sigma_min))
    return a * x1 + s * x0, da * x1 + ds * x0


def cfm_loss(field, x0, x1, t, path="condot", sigma_min=0.0):
    """mean over the batch of |v(x_t, t) - u_t|^2 (Lipman eq. 9), field(x, t) numpy."""
    x_t, u = sample_path(np.asarray(x0, np.float64), np.asarray(x1, np.float64), t, path,
                         sigma_min)
    v = field(x_t, np.asarray(t, np.float64))
    return float(np.mean(np.sum((v - u) ** 2, axis=1)))


def gaussian_marginal_velocity(x, t, mean, cov, path="condot", sigma_min=0.0):
    """E[alpha' x1 + sigma' x0 | x_t = x] for x0 ~ N(0, I), x1 ~ N(mean, cov), by conditioning
    the joint Gaussian of (x0, x1) mapped linearly to (u, x_t)."""
    x = np.asarray(x, np.float64)
    mean = np.asarray(mean, np.float64)
    cov = np.asarray(cov, np.float64)
    d = mean.shape[0]
    out = np.empty_like(x)
    # joint of w = (x0, x1): mean (0, m), covariance blockdiag(I, S)
    w_mean = np.concatenate([np.zeros(d), mean])
    w_cov = np.zeros((2 * d, 2 * d))
    w_cov[:d, :d] = np.eye(d)
    w_cov[d:, d:] = cov
    alphas, sigmas, dalphas, dsigmas = path_coefficients(np.asarray(t), path, sigma_min)
    for b in range(x.shape[0]):
        a, s, da, ds = alphas[b], sigmas[b], dalphas[b], dsigmas[b]
        m_xt = np.hstack([s * np.eye(d), a * np.eye(d)])  # x_t = M_x w
        m_u = np.hstack([ds * np.eye(d), da * np.eye(d)])  # u = M_u w
        c_xx = m_xt @ w_cov @ m_xt.T
        c_ux = m_u @ w_cov @ m_xt.T
        out[b] = m_u @ w_mean + c_ux @ np.linalg.solve(c_xx, x[b] - m_xt @ w_mean)
    return out


# --------------------------------------------------------------------------- assignment


def brute_force_assignment(cost):
    """(col, best) minimising sum_i cost[i, col[i]] over all n! permutations."""
    cost = np.asarray(cost, np.float64)
    n = cost.shape[0]
    perms = np.array(list(itertools.permutations(range(n))), dtype=np.int64)  # (n!, n)
    totals = cost[np.arange(n)[None, :], perms].sum(axis=1)
    k = int(np.argmin(totals))
    return perms[k], float(totals[k])


def hungarian(cost):
    """Jonker-Volgenant shortest augmenting paths; returns col with row i -> col[i]."""
    cost = np.asarray(cost, np.float64)
    n = cost.shape[0]
    row_pot = np.zeros(n)
    col_pot = np.zeros(n)
    row_of_col = np.full(n, -1)
    col_of_row = np.full(n, -1)
    for start in range(n):
        dist = np.full(n, np.inf)  # shortest reduced distance from `start` to each column
        prev_row = np.full(n, -1)  # the row from which each column was reached
        done = np.zeros(n, bool)
        row, spent = start, 0.0
        while True:
            # relax every column not yet finalised from the current row
            for j in range(n):
                if not done[j]:
                    cand = spent + cost[row, j] - row_pot[row] - col_pot[j]
                    if cand < dist[j]:
                        dist[j] = cand
                        prev_row[j] = row
            j_best, d_best = -1, np.inf
            for j in range(n):
                if not done[j] and dist[j] < d_best:
                    j_best, d_best = j, dist[j]
            done[j_best] = True
            spent = d_best
            if row_of_col[j_best] == -1:
                break
            row = row_of_col[j_best]
        # potentials: keep reduced costs >= 0 and tight on the new matching
        for j in range(n):
            if done[j] and j != j_best:
                r = row_of_col[j]
                row_pot[r] += spent - dist[j]
                col_pot[j] -= spent - dist[j]
        row_pot[start] += spent
        # flip the augmenting path back from j_best to start
        j = j_best
        while True:
            r = prev_row[j]
            nxt = col_of_row[r]
            row_of_col[j] = r
            col_of_row[r] = j
            if r == start:
                break
            j = nxt
    return col_of_row


# --------------------------------------------------------------------------- CNF


def tanh_field(params, x, t):
    """f(x, t) = W2 tanh(W1 x + b1 + c t) + b2; x: (batch, D), t: (batch,)."""
    w1, b1, c, w2, b2 = (np.asarray(params[k], np.float64) for k in ("w1", "b1", "c", "w2", "b2"))
    h = np.tanh(x @ w1.T + b1[None] + np.asarray(t, np.float64)[:, None] * c[None])
    return h @ w2.T + b2[None]


def tanh_field_jacobian(params, x, t):
    """df/dx = W2 diag(1 - tanh^2) W1 per example: (batch, D, D)."""
    w1, b1, c, w2 = (np.asarray(params[k], np.float64) for k in ("w1", "b1", "c", "w2"))
    h = np.tanh(x @ w1.T + b1[None] + np.asarray(t, np.float64)[:, None] * c[None])
    return np.einsum("oh,bh,hi->boi", w2, 1.0 - h * h, w1)


def cnf_log_prob(field, jacobian, x, t0=0.0, t1=1.0, num_steps=100, probes=None):
    """log N(z) - int_t0^t1 tr(df/dx) dt by RK4 on d[x, l]/dt = [f, -tr] from t1 back to t0.

    ``probes``: (K, batch, D) Hutchinson probes (tr -> mean_k v^T J v), or None (exact).
    Returns (log_p (batch,), z (batch, D)).
    """
    x = np.asarray(x, np.float64)

    def tr(y, t):
        jac = jacobian(y, np.full(y.shape[0], t))  # (batch, D, D)
        if probes is None:
            return np.trace(jac, axis1=1, axis2=2)
        v = np.asarray(probes, np.float64)
        return np.mean(np.einsum("kbi,bij,kbj->kb", v, jac, v), axis=0)

    def rhs(t, y):
        return field(y, np.full(y.shape[0], t)), -tr(y, t)

    h = (t0 - t1) / num_steps  # negative: data -> noise
    y, l = x.copy(), np.zeros(x.shape[0])
    for i in range(num_steps):
        t = t1 + i * h
        k1 = rhs(t, y)
        k2 = rhs(t + h / 2, y + h / 2 * k1[0])
        k3 = rhs(t + h / 2, y + h / 2 * k2[0])
        k4 = rhs(t + h, y + h * k3[0])
        y = y + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        l = l + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
    d = x.shape[1]
    log_n = -0.5 * np.sum(y * y, axis=1) - 0.5 * d * math.log(2 * math.pi)
    # l(t0) = int_t0^t1 tr dt; log p(x) = log N(z) - l(t0)
    return log_n - l, y


def expm(a):
    """Matrix exponential by scaling and squaring with a 20-term Taylor series."""
    a = np.asarray(a, np.float64)
    norm = np.linalg.norm(a, 1)
    k = max(0, int(math.ceil(math.log2(norm))) + 1) if norm > 0 else 0
    b = a / 2.0**k
    out, term = np.eye(a.shape[0]), np.eye(a.shape[0])
    for i in range(1, 21):
        term = term @ b / i
        out = out + term
    for _ in range(k):
        out = out @ out
    return out


def linear_flow_log_prob(a, x, duration):
    """log p(x) for x = exp(duration A) z, z ~ N(0, I):
    log N(exp(-duration A) x) - duration tr A."""
    x = np.asarray(x, np.float64)
    z = x @ expm(-duration * np.asarray(a, np.float64)).T
    d = x.shape[1]
    log_n = -0.5 * np.sum(z * z, axis=1) - 0.5 * d * math.log(2 * math.pi)
    return log_n - duration * np.trace(a)
