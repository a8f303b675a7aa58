"""NumPy-only oracle (float64) of LoRA's forward pass and merge (Hu et al. 2021, eq. 3).

Written from the equations, independently of :mod:`genjax.nn.lora` (no jax, flax or genjax):

    linear:  h = x W0 + b + (alpha / r) (x A) B                     A (d_in, r), B (r, d_out)
    conv:    y = conv(x, W0) + b + (alpha / r) conv(x, A) B         A (kh, kw, c_in, r)
    merged:  W = W0 + (alpha / r) A B     (the kernel viewed as a (kh * kw * c_in, c_out) matrix)

``conv`` is the cross-correlation of deep-learning libraries, channels last, written as the
sum over the window of the definition

    conv(x, K)[n, i, j, o] = sum_{p, q, c} x_pad[n, i s_h + p d_h, j s_w + q d_w, c] K[p, q, c, o]

with strides ``s``, kernel dilation ``d``, and zero padding ``x_pad``: explicit pairs, or
``"SAME"`` (output ``ceil(size / s)``, the total padding split with the smaller half first,
as XLA does) or ``"VALID"`` (none).
"""

from __future__ import annotations

import numpy as np


def linear(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """``x W + b``: x ``(n, d_in)``, kernel ``(d_in, d_out)``, bias ``(d_out,)``."""
    y = np.asarray(x, np.float64) @ np.asarray(kernel, np.float64)
    return y if bias is None else y + np.asarray(bias, np.float64)


def lora_linear(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    a: np.ndarray,
    b: np.ndarray,
    alpha: float,
) -> np.ndarray:
    """``x W0 + b + (alpha / r) (x A) B`` with ``r = A.shape[1]`` (eq. 3), ``(n, d_out)``."""
    r = a.shape[1]
    x = np.asarray(x, np.float64)
    low_rank = (x @ np.asarray(a, np.float64)) @ np.asarray(b, np.float64)
    return linear(x, kernel, bias) + (alpha / r) * low_rank


def _pads(size: int, k: int, stride: int, dilation: int, padding) -> tuple[int, int]:
    """Zero padding ``(low, high)`` of one spatial axis."""
    if padding == "VALID":
        return 0, 0
    if padding == "SAME":
        extent = (k - 1) * dilation + 1  # the dilated window
        out = -(-size // stride)  # ceil(size / stride)
        total = max((out - 1) * stride + extent - size, 0)
        return total // 2, total - total // 2
    low, high = padding
    return int(low), int(high)


def conv2d(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    strides: tuple[int, int] = (1, 1),
    padding="SAME",
    dilation: tuple[int, int] = (1, 1),
) -> np.ndarray:
    """The 2-D cross-correlation above. x ``(n, h, w, c_in)``, kernel ``(kh, kw, c_in, c_out)``,
    padding ``"SAME"``, ``"VALID"`` or ``((lo_h, hi_h), (lo_w, hi_w))``; ``(n, h', w', c_out)``."""
    x = np.asarray(x, np.float64)
    kernel = np.asarray(kernel, np.float64)
    n, h, w, _ = x.shape
    kh, kw, _, c_out = kernel.shape
    per_axis = (padding, padding) if isinstance(padding, str) else tuple(padding)
    (lo_h, hi_h) = _pads(h, kh, strides[0], dilation[0], per_axis[0])
    (lo_w, hi_w) = _pads(w, kw, strides[1], dilation[1], per_axis[1])
    xp = np.pad(x, ((0, 0), (lo_h, hi_h), (lo_w, hi_w), (0, 0)))
    out_h = (xp.shape[1] - ((kh - 1) * dilation[0] + 1)) // strides[0] + 1
    out_w = (xp.shape[2] - ((kw - 1) * dilation[1] + 1)) // strides[1] + 1
    y = np.zeros((n, out_h, out_w, c_out))
    for i in range(out_h):
        for j in range(out_w):
            for p in range(kh):
                for q in range(kw):
                    pixel = xp[
                        :, i * strides[0] + p * dilation[0], j * strides[1] + q * dilation[1]
                    ]
                    y[:, i, j] += pixel @ kernel[p, q]  # sum over c_in: (n, c_in) @ (c_in, c_out)
    return y if bias is None else y + np.asarray(bias, np.float64)


def lora_conv2d(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    a: np.ndarray,
    b: np.ndarray,
    alpha: float,
    *,
    strides: tuple[int, int] = (1, 1),
    padding="SAME",
    dilation: tuple[int, int] = (1, 1),
) -> np.ndarray:
    """``conv(x, W0) + b + (alpha / r) conv(x, A) B``: A ``(kh, kw, c_in, r)``, B ``(r, c_out)``."""
    r = a.shape[-1]
    base = conv2d(x, kernel, bias, strides=strides, padding=padding, dilation=dilation)
    xa = conv2d(x, a, None, strides=strides, padding=padding, dilation=dilation)  # (n, h', w', r)
    return base + (alpha / r) * (xa @ np.asarray(b, np.float64))


def merged_kernel(kernel: np.ndarray, a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """``W0 + (alpha / r) A B`` in the kernel's shape: the matrix product over the last axes
    of ``A (..., d_in, r)`` flattened to ``(prod(...) * d_in, r)`` and ``B (r, d_out)``."""
    kernel = np.asarray(kernel, np.float64)
    a = np.asarray(a, np.float64)
    r = a.shape[-1]
    delta = a.reshape(-1, r) @ np.asarray(b, np.float64)  # (fan_in, d_out), rank <= r
    return kernel + (alpha / r) * delta.reshape(kernel.shape)
