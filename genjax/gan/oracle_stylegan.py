"""NumPy float64 oracle of StyleGAN's generator, written from the papers' equations.

Imports NumPy and the standard library only. Independent of :mod:`genjax.gan.stylegan`'s
implementation choices: the modulated convolution forms one kernel per example (eqs. 1-3 of
Karras et al. 2020, the "fused" form) and convolves it by explicit sums over the kernel taps,
where the JAX code scales activations and calls XLA's convolution.

Weights enter as a dict of arrays (the layout of
:func:`genjax.gan.stylegan.generator_weights`):

* ``"mapping"``: a list of ``(W (d_in, d_out), b (d_out,))``;
* ``"const"``: ``(r0, r0, C)``;
* ``"convs"``: one dict per synthesis layer with ``A (w_dim, C_in)``, ``a (C_in,)`` (the
  affine map to the styles), ``weight (k, k, C_in, C_out)`` (unit scale; the layer uses
  ``weight / sqrt(k k C_in)``), ``noise_strength (C_out,)``, ``bias (C_out,)``, ``up``;
* ``"to_rgb"``: one dict per resolution with ``A``, ``a``, ``weight (1, 1, C, C_img)``
  (scaled by ``1 / sqrt(C)``), ``bias``;
* ``"w_avg"``: ``(w_dim,)``.

References:
  Karras, Laine & Aila (2019), "A Style-Based Generator Architecture for GANs", CVPR.
  Karras et al. (2020), "Analyzing and Improving the Image Quality of StyleGAN", CVPR.
"""

from __future__ import annotations

import math

import numpy as np

LEAK = 0.2


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def lrelu(x, gain: float = 1.0) -> np.ndarray:
    """``gain * max(x, 0.2 x)``."""
    x = _f64(x)
    return gain * np.where(x >= 0, x, LEAK * x)


def mapping(z, layers) -> np.ndarray:
    """``f(z)``: ``z / sqrt(mean(z^2) + 1e-8)`` (pixel norm), then ``lrelu(h W + b)`` per layer."""
    h = _f64(z)
    h = h / np.sqrt(np.mean(h * h, axis=-1, keepdims=True) + 1e-8)
    for W, b in layers:
        h = lrelu(h @ _f64(W) + _f64(b))
    return h


def modulated_weights(weight, styles, demodulate: bool = True, eps: float = 1e-8):
    """``w''_{b,k,i,j} = s_{b,i} w_{k,i,j} / sqrt(sum_{k,i} (s_{b,i} w_{k,i,j})^2 + eps)``.

    Args:
      weight: ``(kh, kw, C_in, C_out)``; styles: ``(B, C_in)``.

    Returns:
      ``(B, kh, kw, C_in, C_out)``.
    """
    weight, styles = _f64(weight), _f64(styles)
    B = styles.shape[0]
    out = np.empty((B, *weight.shape))
    for b in range(B):
        w1 = weight * styles[b][None, None, :, None]  # eq. 1
        if demodulate:
            for j in range(weight.shape[3]):
                sigma2 = np.sum(w1[..., j] ** 2)  # sigma_j^2 (eq. 2)
                w1[..., j] = w1[..., j] / math.sqrt(sigma2 + eps)  # eq. 3
        out[b] = w1
    return out


def demodulated_output_variance(weight, styles, eps: float = 1e-8) -> np.ndarray:
    """``Var[y_{b,j}] = sum_{k,i} w''^2_{b,k,i,j}`` for i.i.d. unit-variance inputs, in
    closed form ``S / (S + eps)`` with ``S = sum_{k,i} (s_i w_{k,i,j})^2``: ``(B, C_out)``."""
    weight, styles = _f64(weight), _f64(styles)
    S = np.einsum("bi,klij->bj", styles**2, weight**2)
    return S / (S + eps)


def conv_same(x, kernel) -> np.ndarray:
    """``y[h, w, j] = sum_{p, q, i} x[h + p - ph, w + q - pw, i] kernel[p, q, i, j]`` with zero
    padding (``ph = (kh - 1) // 2``, XLA's "SAME" for odd kernels); ``x (H, W, C_in)``."""
    x, kernel = _f64(x), _f64(kernel)
    kh, kw, _, c_out = kernel.shape
    H, W, _ = x.shape
    ph, pw = (kh - 1) // 2, (kw - 1) // 2
    padded = np.zeros((H + kh - 1, W + kw - 1, x.shape[2]))
    padded[ph : ph + H, pw : pw + W] = x
    y = np.zeros((H, W, c_out))
    for p in range(kh):
        for q in range(kw):
            y += padded[p : p + H, q : q + W] @ kernel[p, q]  # tap (p, q): (H, W, C_out)
    return y


def modulated_conv(x, weight, styles, demodulate: bool = True, eps: float = 1e-8):
    """Each example convolved with its own kernel ``w''_b``: ``(B, H, W, C_in) -> (B, H, W,
    C_out)``."""
    kernels = modulated_weights(weight, styles, demodulate, eps)
    return np.stack([conv_same(xb, kb) for xb, kb in zip(_f64(x), kernels, strict=True)])


def upsample(x) -> np.ndarray:
    """Nearest neighbour: ``y[b, h, w] = x[b, h // 2, w // 2]``."""
    x = _f64(x)
    B, H, W, C = x.shape
    y = np.empty((B, 2 * H, 2 * W, C))
    for h in range(2 * H):
        for w in range(2 * W):
            y[:, h, w] = x[:, h // 2, w // 2]
    return y


def synthesis_layer(p, x, w, noise) -> np.ndarray:
    """``sqrt(2) lrelu(modconv(up(x)) + strength * noise + bias)``."""
    x = upsample(x) if p["up"] else _f64(x)
    s = _f64(w) @ _f64(p["A"]) + _f64(p["a"])  # styles s = A(w)
    k = _f64(p["weight"])
    y = modulated_conv(x, k / math.sqrt(k.shape[0] * k.shape[1] * k.shape[2]), s)
    y = y + _f64(p["noise_strength"]) * _f64(noise)  # noise (B, H, W, 1) over channels
    return lrelu(y + _f64(p["bias"]), math.sqrt(2.0))


def to_rgb(p, x, w) -> np.ndarray:
    """Modulated 1x1 convolution without demodulation, plus bias."""
    s = _f64(w) @ _f64(p["A"]) + _f64(p["a"])
    k = _f64(p["weight"])
    return modulated_conv(x, k / math.sqrt(k.shape[2]), s, demodulate=False) + _f64(p["bias"])


def synthesis(weights, ws, noise_images) -> np.ndarray:
    """The skip generator: ``ws (B, num_ws, w_dim)``, noise images (one per layer) ->
    ``(B, H, W, C_img)``. Block ``b`` reads ``ws[:, 2b]`` (its first convolution) and
    ``ws[:, 2b + 1]`` (its second convolution and its toRGB)."""
    ws = _f64(ws)
    B = ws.shape[0]
    x = np.repeat(_f64(weights["const"])[None], B, axis=0)
    convs, rgbs = weights["convs"], weights["to_rgb"]
    x = synthesis_layer(convs[0], x, ws[:, 0], noise_images[0])
    img = to_rgb(rgbs[0], x, ws[:, 1])
    for b in range(1, len(rgbs)):
        x = synthesis_layer(convs[2 * b - 1], x, ws[:, 2 * b], noise_images[2 * b - 1])
        x = synthesis_layer(convs[2 * b], x, ws[:, 2 * b + 1], noise_images[2 * b])
        img = upsample(img) + to_rgb(rgbs[b], x, ws[:, 2 * b + 1])
    return img


def generator(weights, z, noise_images, psi: float = 1.0, z_mix=None, crossover=None):
    """``G(z)``: mapping, style mixing (layers ``i >= crossover[b]`` from ``f(z_mix)``),
    truncation ``w_avg + psi (w - w_avg)``, synthesis."""
    num_ws = 2 * len(weights["to_rgb"])
    w = mapping(z, weights["mapping"])  # (B, w_dim)
    ws = np.repeat(w[:, None, :], num_ws, axis=1)
    if z_mix is not None:
        w2 = mapping(z_mix, weights["mapping"])
        for b in range(ws.shape[0]):
            ws[b, int(crossover[b]) :] = w2[b]
    w_avg = _f64(weights["w_avg"])
    return synthesis(weights, w_avg + psi * (ws - w_avg), noise_images)
