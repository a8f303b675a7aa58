"""NumPy float64 oracle of the binary-binary RBM (no jax), written from the equations.

Hinton (2002) for the conditionals and Gibbs sweep; Salakhutdinov & Murray (2008), sec. 3-4,
for annealed importance sampling from a base-rate RBM. With ``W (V, H)``, ``b (V,)``,
``c (H,)``::

    E(v, h) = -v^T W h - b^T v - c^T h
    F(v)    = -b^T v - sum_j log(1 + exp(c_j + sum_i v_i W_ij))
    p(h_j = 1 | v) = 1 / (1 + exp(-(c_j + sum_i v_i W_ij)))
    p(v_i = 1 | h) = 1 / (1 + exp(-(b_i + sum_j W_ij h_j)))

Uniform noise is shared with :mod:`genjax.energy.rbm`: a unit is on when its uniform is
below its conditional probability.
"""

from __future__ import annotations

import itertools

import numpy as np


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + e^-x), stable for either sign


def _log1pexp(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)  # log(1 + e^x)


def _logsumexp(x: np.ndarray) -> float:
    m = np.max(x)
    return float(m + np.log(np.sum(np.exp(x - m))))


def energy(W, b, c, v, h) -> np.ndarray:
    """``E(v, h)`` for ``v`` ``(n, V)``, ``h`` ``(n, H)`` -> ``(n,)``, summed term by term."""
    n = v.shape[0]
    out = np.zeros(n)
    for k in range(n):
        inter = sum(
            v[k, i] * W[i, j] * h[k, j] for i in range(W.shape[0]) for j in range(W.shape[1])
        )
        out[k] = -inter - np.dot(b, v[k]) - np.dot(c, h[k])
    return out


def free_energy(W, b, c, v) -> np.ndarray:
    """``F(v) = -b^T v - sum_j log(1 + exp(c_j + v^T W_j))``: ``(n, V)`` -> ``(n,)``."""
    v = np.asarray(v, np.float64)
    return -v @ b - np.sum(_log1pexp(c[None] + v @ W), axis=1)


def hidden_probs(W, b, c, v) -> np.ndarray:
    """``p(h = 1 | v)``: ``(n, V)`` -> ``(n, H)``."""
    return _sigmoid(c[None] + np.asarray(v, np.float64) @ W)


def visible_probs(W, b, c, h) -> np.ndarray:
    """``p(v = 1 | h)``: ``(n, H)`` -> ``(n, V)``."""
    return _sigmoid(b[None] + np.asarray(h, np.float64) @ W.T)


def gibbs_step(W, b, c, v, u_h, u_v) -> tuple[np.ndarray, np.ndarray]:
    """One sweep ``h = [u_h < p(h|v)]``, ``v' = [u_v < p(v|h)]``; returns ``(v', h)``."""
    h = (u_h < hidden_probs(W, b, c, v)).astype(np.float64)
    return (u_v < visible_probs(W, b, c, h)).astype(np.float64), h


def states(n: int) -> np.ndarray:
    """All ``2^n`` binary vectors ``(2^n, n)`` (row ``i`` = the bits of ``i``, MSB first)."""
    return np.array(list(itertools.product((0.0, 1.0), repeat=n)), np.float64).reshape(-1, n)


def log_partition_free_energy(W, b, c) -> float:
    """``log Z = log sum_v exp(-F(v))`` over all ``2^V`` visible states."""
    return _logsumexp(-free_energy(W, b, c, states(W.shape[0])))


def log_partition_brute_force(W, b, c) -> float:
    """``log Z = log sum_{v, h} exp(-E(v, h))`` over all ``2^(V+H)`` joint states."""
    vs, hs = states(W.shape[0]), states(W.shape[1])
    # -E for every pair: v^T W h + b^T v + c^T h, a (2^V, 2^H) table
    neg_e = vs @ W @ hs.T + (vs @ b)[:, None] + (hs @ c)[None, :]
    return _logsumexp(neg_e.ravel())


def gibbs_transition_matrix(W, b, c) -> np.ndarray:
    """``K[v, v'] = sum_h p(h | v) p(v' | h)`` of the sweep v -> h -> v', ``(2^V, 2^V)``."""
    vs, hs = states(W.shape[0]), states(W.shape[1])

    def bern(p, x):  # prod_k p_k^x_k (1 - p_k)^(1 - x_k), rows of p against rows of x
        return np.prod(np.where(x[None] == 1.0, p[:, None], 1.0 - p[:, None]), axis=-1)

    p_h_given_v = bern(hidden_probs(W, b, c, vs), hs)  # (2^V, 2^H)
    p_v_given_h = bern(visible_probs(W, b, c, hs), vs)  # (2^H, 2^V)
    return p_h_given_v @ p_v_given_h


def ais_log_weights(W, b, c, base_bias, betas, u0, u_h, u_v) -> np.ndarray:
    """AIS log-weights ``(chains,)`` (Salakhutdinov & Murray 2008, sec. 3.2 and eq. 15).

    Intermediate ``k`` at inverse temperature ``beta_k``: the RBM with weights ``beta W``,
    hidden biases ``beta c`` and visible biases ``(1 - beta) b_A + beta b``, whose
    unnormalised marginal is ``p*_k(v) = exp(((1 - beta) b_A + beta b)^T v)
    prod_j (1 + exp(beta (c_j + v^T W_j)))``. ``v_1 ~ p_0`` from ``u0``; then
    ``log w += log p*_k(v_k) - log p*_{k-1}(v_k)`` and ``v_{k+1} ~ T_k(v_k, .)``.
    """
    betas = np.asarray(betas, np.float64)
    W, b, c, base_bias = (np.asarray(a, np.float64) for a in (W, b, c, base_bias))

    def log_p_star(beta, v):
        vb = (1.0 - beta) * base_bias + beta * b
        return v @ vb + np.sum(_log1pexp(beta * (c[None] + v @ W)), axis=1)

    v = (u0 < _sigmoid(base_bias)[None]).astype(np.float64)
    logw = np.zeros(v.shape[0])
    K = len(betas) - 1
    for k in range(1, K + 1):
        logw += log_p_star(betas[k], v) - log_p_star(betas[k - 1], v)
        if k < K:  # a sweep at beta_k: v_{k+1} ~ T_k(v_k, .)
            beta = betas[k]
            h = (u_h[k - 1] < _sigmoid(beta * (c[None] + v @ W))).astype(np.float64)
            vb = (1.0 - beta) * base_bias[None] + beta * (b[None] + h @ W.T)
            v = (u_v[k - 1] < _sigmoid(vb)).astype(np.float64)
    return logw


def ais_log_partition(W, b, c, base_bias, betas, u0, u_h, u_v) -> float:
    """``log Z_0 + log mean w`` with ``log Z_0 = H log 2 + sum_i log(1 + exp(b_A,i))``."""
    logw = ais_log_weights(W, b, c, base_bias, betas, u0, u_h, u_v)
    log_z0 = W.shape[1] * np.log(2.0) + np.sum(_log1pexp(np.asarray(base_bias, np.float64)))
    return float(log_z0 + _logsumexp(logw) - np.log(len(logw)))
