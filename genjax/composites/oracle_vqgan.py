"""NumPy float64 oracle of VQGAN's adaptive weight (Esser et al. 2021, eq. 7). No jax import.

Written from the equations, not from :mod:`genjax.composites.vqgan`:

    x_hat(W) = h(x) W + b                 (h: the decoder's last hidden activations at the
                                           quantised codes; W, b: its read-out layer G_L)
    L_rec(W) = mean_b [ |x - x_hat|^2 + w_p |phi(x) - phi(x_hat)|^2 ]
    L_GAN(W) = -mean_{b, patches} D(x_hat)
    lambda   = min(||dL_rec/dW|| / (||dL_GAN/dW|| + delta), max_weight)

The gradients are central differences of the float64 losses, entry by entry:

    dL/dW_ij ~ (L(W + h E_ij) - L(W - h E_ij)) / (2 h),   error O(h^2 L''')

(only the read-out layer moves, so the encoder and the nearest-code choice are fixed and the
losses are smooth in ``W``, apart from the critic's leaky-ReLU kinks, which a step of
``h = 1e-6`` crosses with negligible probability).

Networks are lists of ``(kernel (in, out), bias (out,))``; every MLP applies its activation
after each layer but the last (silu for the autoencoder and the feature extractor, leaky
ReLU 0.2 for the critic); ``phi`` is the feature extractor's activations before its last
layer; the critic scores every ``patch x patch`` window at the given stride (row-major
flattening of the window, channels last).
"""

from __future__ import annotations

import numpy as np

LEAK = 0.2


def silu(x: np.ndarray) -> np.ndarray:
    """x * sigmoid(x)."""
    return x / (1.0 + np.exp(-x))


def leaky_relu(x: np.ndarray) -> np.ndarray:
    """x for x >= 0, 0.2 x otherwise."""
    return np.where(x >= 0, x, LEAK * x)


def _f64(layers):
    return [(np.asarray(w, np.float64), np.asarray(b, np.float64)) for w, b in layers]


def mlp_hidden(layers, x: np.ndarray, activation) -> np.ndarray:
    """The activations after every layer but the last: ``(n, in) -> (n, hidden)``."""
    h = x
    for w, b in _f64(layers)[:-1]:
        h = activation(h @ w + b)
    return h


def mlp(layers, x: np.ndarray, activation) -> np.ndarray:
    """The whole MLP, the last layer affine."""
    w, b = _f64(layers)[-1]
    return mlp_hidden(layers, x, activation) @ w + b


def quantised_hidden(params: dict, x: np.ndarray) -> np.ndarray:
    """The decoder's last hidden activations at the nearest codes: ``(n, P)``.

    ``z_e = E(x)`` reshaped to ``(n, M, D)``, ``k = argmin_k |z_e - e_k|^2`` (the lowest index
    on ties), ``z_q = e_k``, then the decoder's layers but the read-out.
    """
    n = x.shape[0]
    codebook = np.asarray(params["codebook"], np.float64)  # (K, D)
    z_e = mlp(params["encoder"], x.reshape(n, -1), silu).reshape(n, params["num_latents"], -1)
    dist = np.sum((z_e[:, :, None, :] - codebook[None, None]) ** 2, axis=-1)  # (n, M, K)
    z_q = codebook[np.argmin(dist, axis=-1)]  # (n, M, D)
    return mlp_hidden(params["decoder"], z_q.reshape(n, -1), silu)


def critic(params: dict, images: np.ndarray) -> np.ndarray:
    """Patch logits ``(n, P_h, P_w)`` of images ``(n, H, W, C)``."""
    n, h, w, _ = images.shape
    p, s = params["patch"], params["stride"]
    rows = list(range(0, h - p + 1, s))
    cols = list(range(0, w - p + 1, s))
    windows = np.stack(
        [
            np.stack([images[:, i : i + p, j : j + p, :].reshape(n, -1) for j in cols], axis=1)
            for i in rows
        ],
        axis=1,
    )  # (n, P_h, P_w, p p C)
    return mlp(params["disc"], windows, leaky_relu)[..., 0]


def _x_hat(params: dict, hidden: np.ndarray, kernel: np.ndarray, shape) -> np.ndarray:
    bias = np.asarray(params["decoder"][-1][1], np.float64)
    return (hidden @ kernel + bias).reshape(shape)


def reconstruction_loss(
    params: dict, x: np.ndarray, hidden: np.ndarray, kernel: np.ndarray, perceptual_weight: float
) -> float:
    """``mean_b |x - x_hat|^2 + w_p |phi(x) - phi(x_hat)|^2`` with read-out ``kernel``."""
    n = x.shape[0]
    x_hat = _x_hat(params, hidden, kernel, x.shape)
    sq = np.sum((x - x_hat).reshape(n, -1) ** 2, axis=1)
    loss = sq
    if params.get("classifier") is not None:
        phi_x = mlp_hidden(params["classifier"], x.reshape(n, -1), silu)
        phi_hat = mlp_hidden(params["classifier"], x_hat.reshape(n, -1), silu)
        loss = loss + perceptual_weight * np.sum((phi_x - phi_hat) ** 2, axis=1)
    return float(np.mean(loss))


def adversarial_loss(params: dict, x: np.ndarray, hidden: np.ndarray, kernel: np.ndarray) -> float:
    """``-mean_{b, patches} D(x_hat)`` with read-out ``kernel``."""
    return float(-np.mean(critic(params, _x_hat(params, hidden, kernel, x.shape))))


def numerical_gradient(loss, kernel: np.ndarray, step: float = 1e-6) -> np.ndarray:
    """Central differences of ``loss(kernel)`` in every entry of ``kernel``."""
    kernel = np.asarray(kernel, np.float64)
    grad = np.zeros_like(kernel)
    for idx in np.ndindex(kernel.shape):
        plus, minus = kernel.copy(), kernel.copy()
        plus[idx] += step
        minus[idx] -= step
        grad[idx] = (loss(plus) - loss(minus)) / (2.0 * step)
    return grad


def adaptive_weight(
    params: dict,
    x,
    *,
    perceptual_weight: float = 1.0,
    delta: float = 1e-4,
    max_weight: float = 1e4,
    step: float = 1e-6,
):
    """``(lambda, dL_rec/dW, dL_GAN/dW)`` of eq. 7 at the read-out layer ``W``.

    Args:
      params: ``encoder``, ``decoder``, ``classifier`` (or None), ``disc``: lists of
        ``(kernel, bias)``; ``codebook (K, D)``; ``num_latents`` M; ``patch``, ``stride``.
      x: ``(n, H, W, C)`` images.
    """
    x = np.asarray(x, np.float64)
    hidden = quantised_hidden(params, x)
    kernel = np.asarray(params["decoder"][-1][0], np.float64)
    g_rec = numerical_gradient(
        lambda k: reconstruction_loss(params, x, hidden, k, perceptual_weight), kernel, step
    )
    g_gan = numerical_gradient(lambda k: adversarial_loss(params, x, hidden, k), kernel, step)
    lam = np.linalg.norm(g_rec) / (np.linalg.norm(g_gan) + delta)
    return float(min(max(lam, 0.0), max_weight)), g_rec, g_gan
