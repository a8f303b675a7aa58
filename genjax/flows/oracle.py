"""NumPy float64 oracle of the discrete flows, written from the papers.

Imports NumPy and the standard library only. Derived independently of
:mod:`genjax.flows.bijectors`, and where the papers allow in a different form:

* couplings by explicit binary masks ``b`` (Dinh et al. 2017, eq. 9:
  ``y = b * x + (1 - b) * (x * exp(s(b * x)) + t(b * x))``) instead of split/concatenate;
* ActNorm from its definition per channel, its data-dependent initialisation from the
  first batch's moments (Kingma & Dhariwal 2018, sec. 3.1);
* the 1x1 convolution by assembling ``W = P L (U + diag(s))`` and applying ``W`` and
  ``np.linalg.inv(W)`` at every pixel, the log-determinant by ``np.linalg.slogdet`` (not
  by summing ``log s``);
* the rational-quadratic spline bin by bin with a Python loop over elements, the inverse
  by the quadratic formula of Durkan et al. (2019), Appendix A, solved with ``np.roots``
  and the root in [0, 1] selected;
* MADE's masks from the connectivity definition: unit k of layer l may see unit k' of
  layer l - 1 iff ``m^l(k) >= m^{l-1}(k')`` (output: ``>``), looped element by element;
* squeeze by explicit index arithmetic;
* a central finite-difference Jacobian for any batched map.

Everything is float64. Networks are plain lists of ``(W (in, out), b (out,))`` pairs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

__all__ = [
    "mlp",
    "standard_normal_log_prob",
    "coupling_mask",
    "affine_coupling",
    "additive_coupling",
    "actnorm",
    "actnorm_data_init",
    "lu_weight",
    "conv1x1",
    "rq_spline_scalar",
    "rq_spline",
    "spline_knots",
    "made_hidden_degrees",
    "made_masks",
    "squeeze",
    "planar",
    "radial",
    "numerical_jacobian",
]


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _silu(a):
    return a / (1.0 + np.exp(-a))


def mlp(x, layers: Sequence[tuple], activation: Callable = _silu) -> np.ndarray:
    """``x (..., in)`` through ``[(W_1, b_1), ..., (W_L, b_L)]``; no activation at the end."""
    h = _f64(x)
    for i, (w, b) in enumerate(layers):
        h = h @ _f64(w) + _f64(b)
        if i < len(layers) - 1:
            h = activation(h)
    return h


def standard_normal_log_prob(z) -> np.ndarray:
    """``(B, D) -> (B,)``."""
    z = _f64(z).reshape(len(z), -1)
    return -0.5 * np.sum(z**2, axis=1) - 0.5 * z.shape[1] * math.log(2 * math.pi)


# ---------------------------------------------------------------------------------------
# Coupling (Dinh et al. 2015, 2017)
# ---------------------------------------------------------------------------------------


def coupling_mask(dim: int, swap: bool) -> np.ndarray:
    """``b (dim,)``: 1 on the conditioning (untouched) half, 0 on the transformed half."""
    b = np.zeros(dim)
    if swap:
        b[dim // 2 :] = 1.0
    else:
        b[: dim // 2] = 1.0
    return b


def affine_coupling(x, net: Callable, swap: bool, scale_clamp: float, inverse: bool = False):
    """RealNVP, eq. 9 with the masks of :func:`coupling_mask`, vectors ``(B, D)``.

    ``net`` maps the conditioning coordinates ``(B, D/2)`` (in their order) to
    ``(B, D/2, 2)`` = (shift, raw log-scale) of the transformed ones; the log-scale is
    ``c tanh(raw / c)``. Returns ``(y, log|det dy/dx|)``.
    """
    x = _f64(x)
    d = x.shape[1]
    b = coupling_mask(d, swap).astype(bool)
    out = _f64(net(x[:, b]))
    t = np.zeros_like(x)
    s = np.zeros_like(x)
    t[:, ~b] = out[..., 0]
    s[:, ~b] = scale_clamp * np.tanh(out[..., 1] / scale_clamp)
    if inverse:
        y = np.where(b, x, (x - t) * np.exp(-s))
        return y, -s.sum(1)
    y = np.where(b, x, x * np.exp(s) + t)  # eq. 9
    return y, s.sum(1)


def additive_coupling(x, net: Callable, swap: bool, inverse: bool = False):
    """NICE, eq. 5: ``y = x + (1 - b) m(b x)``; log-det 0. ``net``: ``(B, D/2) -> (B, D/2)``."""
    x = _f64(x)
    b = coupling_mask(x.shape[1], swap).astype(bool)
    m = np.zeros_like(x)
    m[:, ~b] = _f64(net(x[:, b]))
    return (x - m if inverse else x + m), np.zeros(len(x))


# ---------------------------------------------------------------------------------------
# Glow (Kingma & Dhariwal 2018)
# ---------------------------------------------------------------------------------------


def actnorm(x, bias, log_scale, inverse: bool = False):
    """``y = x * exp(log_scale) + bias`` per channel (last axis); ``x (B, ..., C)``."""
    x = _f64(x)
    positions = int(np.prod(x.shape[1:-1]))
    ls, bias = _f64(log_scale), _f64(bias)
    if inverse:
        return (x - bias) / np.exp(ls), np.full(len(x), -positions * ls.sum())
    return x * np.exp(ls) + bias, np.full(len(x), positions * ls.sum())


def actnorm_data_init(x) -> tuple[np.ndarray, np.ndarray]:
    """``(bias, log_scale)`` with which ``actnorm(x, inverse=True)`` has zero mean and unit
    variance per channel."""
    flat = _f64(x).reshape(-1, np.shape(x)[-1])
    mean = flat.mean(0)
    std = np.sqrt(((flat - mean) ** 2).mean(0))
    return mean, np.log(std + 1e-6)


def lu_weight(lower, upper, log_s, perm: Sequence[int]) -> np.ndarray:
    """``W = P L (U + diag(exp(log_s)))`` (Glow eq. 10); ``(P v)_i = v_{perm[i]}``.

    ``lower``/``upper`` are full matrices of which only the strict lower/upper parts count.
    """
    c = len(log_s)
    L = np.eye(c)
    U = np.diag(np.exp(_f64(log_s)))
    for i in range(c):
        for j in range(c):
            if i > j:
                L[i, j] = lower[i, j]
            elif i < j:
                U[i, j] = upper[i, j]
    P = np.zeros((c, c))
    for i, p in enumerate(perm):
        P[i, p] = 1.0
    return P @ L @ U


def conv1x1(x, weight, inverse: bool = False):
    """``y = W x`` at every pixel of ``x (B, ..., C)``; log-det ``positions * log|det W|``."""
    x = _f64(x)
    w = _f64(weight)
    positions = int(np.prod(x.shape[1:-1]))
    logdet = np.linalg.slogdet(w)[1]
    if inverse:
        w, logdet = np.linalg.inv(w), -logdet
    y = np.einsum("ij,...j->...i", w, x)
    return y, np.full(len(x), positions * logdet)


def squeeze(x) -> np.ndarray:
    """Space-to-depth: ``y[b, i, j, (2 di + dj) C + c] = x[b, 2i + di, 2j + dj, c]``."""
    x = _f64(x)
    b, h, w, c = x.shape
    y = np.empty((b, h // 2, w // 2, 4 * c))
    for i in range(h // 2):
        for j in range(w // 2):
            for di in range(2):
                for dj in range(2):
                    k = (2 * di + dj) * c
                    y[:, i, j, k : k + c] = x[:, 2 * i + di, 2 * j + dj, :]
    return y


# ---------------------------------------------------------------------------------------
# Rational-quadratic spline (Durkan et al. 2019)
# ---------------------------------------------------------------------------------------


def spline_knots(widths, heights, derivatives, bound: float):
    """Knots ``(xs (K+1,), ys (K+1,), ds (K+1,))`` of one spline; boundary derivatives 1."""
    xs = np.concatenate([[-bound], -bound + np.cumsum(_f64(widths))])
    ys = np.concatenate([[-bound], -bound + np.cumsum(_f64(heights))])
    xs[-1], ys[-1] = bound, bound
    ds = np.concatenate([[1.0], _f64(derivatives), [1.0]])
    return xs, ys, ds


def rq_spline_scalar(x: float, xs, ys, ds, inverse: bool = False) -> tuple[float, float]:
    """One element: ``(y, log|dy/dx|)`` (for ``inverse``, of the inverse map)."""
    if x <= xs[0] or x >= xs[-1]:
        return float(x), 0.0  # linear (identity) tails
    knots = ys if inverse else xs
    k = max(i for i in range(len(knots) - 1) if knots[i] <= x)
    w, h = xs[k + 1] - xs[k], ys[k + 1] - ys[k]
    s = h / w
    d0, d1 = ds[k], ds[k + 1]
    if inverse:
        # y - y_k = h [s xi^2 + d0 xi(1-xi)] / [s + (d0 + d1 - 2s) xi(1-xi)], a quadratic in xi
        dy = x - ys[k]
        e = d0 + d1 - 2 * s
        # (h s - h d0 + dy e) xi^2 + (h d0 - dy e) xi - s dy = 0, i.e. h (s xi^2 + d0 xi(1-xi))
        # = dy (s + e xi (1 - xi)) expanded.
        coeffs = [h * (s - d0) + dy * e, h * d0 - dy * e, -s * dy]
        roots = np.roots(coeffs) if abs(coeffs[0]) > 1e-300 else np.array([-coeffs[2] / coeffs[1]])
        real = [r.real for r in np.atleast_1d(roots) if abs(r.imag) < 1e-9]
        xi = min(real, key=lambda r: abs(r - min(max(r, 0.0), 1.0)))
        xi = min(max(xi, 0.0), 1.0)
    else:
        xi = (x - xs[k]) / w
    denom = s + (d1 + d0 - 2 * s) * xi * (1 - xi)
    y = ys[k] + h * (s * xi**2 + d0 * xi * (1 - xi)) / denom
    deriv = s**2 * (d1 * xi**2 + 2 * s * xi * (1 - xi) + d0 * (1 - xi) ** 2) / denom**2
    if inverse:
        return xs[k] + xi * w, -math.log(deriv)
    return y, math.log(deriv)


def rq_spline(x, widths, heights, derivatives, bound: float, inverse: bool = False):
    """Elementwise spline over ``x (...)`` with per-element knots ``widths (..., K)`` etc."""
    x = _f64(x)
    w = np.broadcast_to(_f64(widths), (*x.shape, np.shape(widths)[-1]))
    h = np.broadcast_to(_f64(heights), (*x.shape, np.shape(heights)[-1]))
    d = np.broadcast_to(_f64(derivatives), (*x.shape, np.shape(derivatives)[-1]))
    y, logd = np.empty_like(x), np.empty_like(x)
    for idx in np.ndindex(*x.shape):
        xs, ys, ds = spline_knots(w[idx], h[idx], d[idx], bound)
        y[idx], logd[idx] = rq_spline_scalar(x[idx], xs, ys, ds, inverse)
    return y, logd


# ---------------------------------------------------------------------------------------
# MADE (Germain et al. 2015)
# ---------------------------------------------------------------------------------------


def made_hidden_degrees(dim: int, width: int) -> list[int]:
    """Cyclic hidden degrees ``1, 2, ..., D-1, 1, 2, ...`` (``1`` when D = 1)."""
    period = max(dim - 1, 1)
    return [k % period + 1 for k in range(width)]


def made_masks(order: Sequence[int], hidden_sizes: Sequence[int], num_params: int):
    """Masks ``(fan_in, fan_out)`` by the connectivity rule, element by element."""
    dim = len(order)
    degrees = [list(order)] + [made_hidden_degrees(dim, w) for w in hidden_sizes]
    masks = []
    for prev, cur in zip(degrees[:-1], degrees[1:], strict=True):
        m = np.zeros((len(prev), len(cur)))
        for i, dp in enumerate(prev):
            for j, dc in enumerate(cur):
                m[i, j] = 1.0 if dc >= dp else 0.0
        masks.append(m)
    last = degrees[-1]
    out = np.zeros((len(last), dim * num_params))
    for i, dp in enumerate(last):
        for d in range(dim):
            for p in range(num_params):
                out[i, d * num_params + p] = 1.0 if order[d] > dp else 0.0
    masks.append(out)
    return masks


# ---------------------------------------------------------------------------------------
# Planar and radial (Rezende & Mohamed 2015)
# ---------------------------------------------------------------------------------------


def planar(z, w, u, b):
    """Forward planar flow with the ``u_hat`` reparameterisation: ``(x, log|det|)``."""
    z, w, u = _f64(z), _f64(w), _f64(u)
    wu = w @ u
    u_hat = u + (-1 + np.log1p(np.exp(wu)) - wu) * w / (w @ w)
    a = z @ w + b
    x = z + np.outer(np.tanh(a), u_hat)
    return x, np.log(np.abs(1 + (1 - np.tanh(a) ** 2) * (u_hat @ w)))


def radial(z, z0, alpha_raw, beta_raw):
    """Forward radial flow: ``(x, log|det|)`` from the determinant lemma, eq. 14."""
    z = _f64(z)
    alpha = np.log1p(np.exp(alpha_raw))
    beta = -alpha + np.log1p(np.exp(beta_raw))
    diff = z - _f64(z0)
    r = np.linalg.norm(diff, axis=1)
    h = 1 / (alpha + r)
    x = z + (beta * h)[:, None] * diff
    d = z.shape[1]
    det = (1 + beta * h) ** (d - 1) * (1 + beta * h - beta * r / (alpha + r) ** 2)
    return x, np.log(det)


# ---------------------------------------------------------------------------------------
# Numerical Jacobian
# ---------------------------------------------------------------------------------------


def numerical_jacobian(f: Callable, x, eps: float = 1e-6) -> np.ndarray:
    """Central differences ``J[i, j] = (f(x + eps e_j) - f(x - eps e_j))_i / (2 eps)``.

    ``f`` maps a batch ``(n, D)`` to ``(n, D')``; all ``2 D`` perturbed points go through
    it in one batch. Returns ``(D', D)``.
    """
    x = _f64(x).reshape(-1)
    d = x.size
    eye = np.eye(d) * eps
    batch = np.concatenate([x[None] + eye, x[None] - eye], axis=0)  # (2D, D)
    out = _f64(f(batch)).reshape(2 * d, -1)
    return ((out[:d] - out[d:]) / (2 * eps)).T
