"""NumPy-only float64 oracle of pix2pix's losses and PatchGAN (Isola et al. 2017).

Imports NumPy and the standard library only, written from the equations:

* the losses — eq. 1 negated and halved for the discriminator (sec. 3.3), the
  non-saturating generator term plus lambda times eq. 3's L1, every patch logit one
  binary verdict;
* the PatchGAN forward: the pair ``[x, y]`` stacked on the channel axis, then
  cross-correlations ``h[i, j, o] = b[o] + sum_{a, c, q} pad(h)[s i + a, s j + c, q]
  w[a, c, q, o]`` (kernel layout ``(k, k, C_in, C_out)``) with leaky ReLU 0.2 between them;
* the patch an output sees, by brute force from the definition of a convolution: output
  ``i`` of a layer reads its padded input at ``s i + a`` for ``a = 0 .. k - 1``, i.e. the
  unpadded rows ``s i + a - p``; walking these index sets from the last layer back to the
  image gives the support without any closed-form formula.
"""

from __future__ import annotations

import numpy as np

LEAK = 0.2


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def log_sigmoid(a) -> np.ndarray:
    """``log sigma(a) = -log(1 + e^-a)``, by logaddexp (finite at |a| = 1e4)."""
    return -np.logaddexp(0.0, -_f64(a))


def pix2pix_d(real_logits, fake_logits) -> float:
    """``1/2 [-mean log sigma(l_real) - mean log(1 - sigma(l_fake))]`` over batch and patches."""
    real, fake = _f64(real_logits), _f64(fake_logits)
    return float(0.5 * (-log_sigmoid(real).mean() - log_sigmoid(-fake).mean()))  # 1 - s(l) = s(-l)


def l1_loss(outputs, targets) -> float:
    """``mean |y - G(x)|`` over every element."""
    return float(np.abs(_f64(targets) - _f64(outputs)).mean())


def pix2pix_g(fake_logits, outputs, targets, l1_weight: float = 100.0) -> float:
    """``-mean log sigma(l_fake) + lambda mean |y - G(x)|`` (eq. 4, non-saturating)."""
    return float(-log_sigmoid(fake_logits).mean() + l1_weight * l1_loss(outputs, targets))


def conv2d(h, w, b, stride: int, padding: int) -> np.ndarray:
    """Cross-correlation of ``h (B, H, W, C_in)`` with ``w (k, k, C_in, C_out)``, zero
    padding ``padding`` on each side, then ``+ b (C_out,)``: ``(B, H_out, W_out, C_out)``."""
    h, w, b = _f64(h), _f64(w), _f64(b)
    k = w.shape[0]
    hp = np.pad(h, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    H_out = (hp.shape[1] - k) // stride + 1
    W_out = (hp.shape[2] - k) // stride + 1
    out = np.zeros((h.shape[0], H_out, W_out, w.shape[3]))
    for i in range(H_out):
        for j in range(W_out):
            patch = hp[
                :, stride * i : stride * i + k, stride * j : stride * j + k, :
            ]  # (B, k, k, C)
            out[:, i, j, :] = np.einsum("bacq,acqo->bo", patch, w)
    return out + b


def patchgan(layers, x, y) -> np.ndarray:
    """The PatchGAN's logits ``(B, h, w)`` for the pair ``x (B, H, W, C_x)``, ``y (B, H, W,
    C_y)``; ``layers`` is a list of ``(kernel (k, k, C_in, C_out), bias (C_out,), stride,
    padding)``, leaky ReLU after every layer but the last."""
    h = np.concatenate([_f64(x), _f64(y)], axis=-1)
    for n, (w, b, stride, padding) in enumerate(layers):
        h = conv2d(h, w, b, stride, padding)
        if n < len(layers) - 1:
            h = np.where(h > 0, h, LEAK * h)
    return h[..., 0]


def patch_support(index: int, kernel_sizes, strides, paddings, size: int) -> np.ndarray:
    """Boolean ``(size,)``: the input rows that output ``index`` depends on, by walking the
    layers backwards (no closed form)."""
    rows = {int(index)}
    for k, s, p in reversed(list(zip(kernel_sizes, strides, paddings, strict=True))):
        rows = {s * i + a - p for i in rows for a in range(k)}  # padded s i + a = row + p
    mask = np.zeros(size, dtype=bool)
    for r in rows:
        if 0 <= r < size:  # rows in the zero padding carry no input
            mask[r] = True
    return mask
