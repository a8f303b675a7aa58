"""NumPy-only float64 oracle of the strided "SAME" convolution and transposed convolution.

Imports NumPy and the standard library only, written from the definitions (Dumoulin &
Visin 2016, secs. 2 and 4), not from :mod:`genjax.gan.patch_conv`:

* the convolution is a gather: output ``(i, j)`` of stride ``s`` reads the zero-padded
  input at rows ``s i + a - p_lo`` for the kernel rows ``a = 0 .. k - 1`` (and the same for
  columns), ``ceil(H / s)`` outputs, ``p_lo = floor(P / 2)`` of the total padding
  ``P = max((ceil(H / s) - 1) s + k - H, 0)`` (TensorFlow's and XLA's "SAME");
* the transposed convolution is a scatter: input pixel ``(i, j)`` adds ``x[i, j] W[a, c]``
  to output ``(s i + p_a - a, s j + p_a - c)``, where it lands when the input, dilated by
  ``s``, is correlated with ``W`` after ``p_a = ceil((k + s - 2) / 2)`` rows of padding
  (``k - 1`` when ``s > k - 1``; XLA's ``conv_transpose`` "SAME"); ``s H`` outputs.

References:
  Dumoulin & Visin (2016), "A guide to convolution arithmetic for deep learning",
  arXiv:1603.07285.
"""

from __future__ import annotations

import numpy as np


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def conv2d_same(x, w, b, stride: int) -> np.ndarray:
    """``x (B, H, W, C_in)`` correlated with ``w (k, k, C_in, C_out)``, stride ``s``, "SAME",
    plus ``b (C_out,)``: ``(B, ceil(H / s), ceil(W / s), C_out)``."""
    x, w, b = _f64(x), _f64(w), _f64(b)
    B, H, W, _ = x.shape
    k = w.shape[0]
    out_h, out_w = -(-H // stride), -(-W // stride)
    pad_h = max((out_h - 1) * stride + k - H, 0) // 2
    pad_w = max((out_w - 1) * stride + k - W, 0) // 2
    y = np.zeros((B, out_h, out_w, w.shape[3]))
    for i in range(out_h):
        for j in range(out_w):
            for a in range(k):
                for c in range(k):
                    row, col = stride * i + a - pad_h, stride * j + c - pad_w
                    if 0 <= row < H and 0 <= col < W:  # outside: the zero padding
                        y[:, i, j] += x[:, row, col] @ w[a, c]
    return y + b


def conv_transpose2d_same(x, w, b, stride: int) -> np.ndarray:
    """The transposed convolution of ``x (B, H, W, C_in)`` with ``w (k, k, C_in, C_out)`` (not
    flipped), stride ``s``, "SAME", plus ``b (C_out,)``: ``(B, s H, s W, C_out)``."""
    x, w, b = _f64(x), _f64(w), _f64(b)
    B, H, W, _ = x.shape
    k = w.shape[0]
    p_a = k - 1 if stride > k - 1 else -(-(k + stride - 2) // 2)
    y = np.zeros((B, stride * H, stride * W, w.shape[3]))
    for i in range(H):
        for j in range(W):
            for a in range(k):
                for c in range(k):
                    row, col = stride * i + p_a - a, stride * j + p_a - c
                    if 0 <= row < stride * H and 0 <= col < stride * W:
                        y[:, row, col] += x[:, i, j] @ w[a, c]
    return y + b
