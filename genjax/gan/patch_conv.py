"""Strided convolutions of small feature maps as patch matrix products (im2col).

The DCGAN networks (:mod:`genjax.gan.network`) hold their weights in ``nnx.Conv`` /
``nnx.ConvTranspose`` layers with ``padding="SAME"`` and call these functions with the
layers' kernels. They compute the same linear maps as ``lax.conv_general_dilated`` and
``lax.conv_transpose`` (what the flax layers call), summed in another order, so they agree
to float32 rounding; what changes is the lowering. On XLA:CPU a transposed convolution is
a convolution of the zero-dilated input (``lhs_dilation``), and the gradients of a strided
convolution are dilated convolutions too; at the DCGAN's 2x2 - 8x8 maps these ran 2-4x
slower than the same arithmetic as matrix products (measured on 2 cores, batch 64: the
64 -> 32 channel transposed convolution's forward 0.8-1.3 ms against 0.3-0.4 ms, its
value-and-gradients 2.6-3.1 ms against 1.5 ms; the 32 -> 64 convolution's gradients
3.9 ms against 1.1 ms), and the whole training step ran 3-4x slower
(``genjax/bench/gan.py``). Written with slices, concatenations and matrix products, the
forward pass and both gradients (transposes of slices: pads; of a product: products) are
all matrix products and copies.

Cross-correlation with stride ``s`` and "SAME" padding ``(p_lo, p_hi)`` (per axis,
``H_out = ceil(H / s)``, ``p_lo + p_hi = max((H_out - 1) s + k - H, 0)``, ``p_lo`` the
floor half, as ``lax.padtype_to_pads``):

    y[b, i, j, o] = bias[o] + sum_{a, c, q} pad(x)[b, s i + a, s j + c, q] W[a, c, q, o]

is one product of the patch matrix ``P[(b, i, j), (a, c, q)]`` (``k^2`` strided slices of
the padded input, side by side) with ``W`` reshaped to ``(k^2 C_in, C_out)``.

The transposed convolution of ``lax.conv_transpose(x, W, s, "SAME")`` (kernel not flipped,
flax's default) is the stride-1 cross-correlation of the input dilated by ``s``
(``x_d[s i] = x[i]``, zeros between) padded by ``p_a = ceil((k + s - 2) / 2)`` before
(``k - 1`` when ``s > k - 1``):

    y[b, u, v, o] = bias[o] + sum_{a, c, q} x_d[b, u + a - p_a, v + c - p_a, q] W[a, c, q, o]

Only the taps that land on a non-zero of ``x_d`` count: for the output phase
``r = u mod s`` they are ``a`` with ``(r + a - p_a) mod s = 0``, reading ``x`` at
``u // s + (r + a - p_a) / s`` (the sub-pixel form, Shi et al. 2016, fig. 1). Each of the
``s^2`` phases is then a small stride-1 correlation of ``x`` with ``(k / s)^2`` taps, and the
``s^2`` patch products are interleaved back (depth to space).
This skips the ``1 - 1 / s^2`` of the arithmetic that the dilated form spends on zeros.

References:
  Chellapilla, Puri & Simard (2006), "High Performance Convolutional Neural Networks for
  Document Processing" (convolution as unrolled patches times a matrix).
  Dumoulin & Visin (2016), "A guide to convolution arithmetic for deep learning",
  arXiv:1603.07285, sec. 4 (transposed convolution as the convolution of the dilated input).
  Shi et al. (2016), "Real-Time Single Image and Video Super-Resolution Using an Efficient
  Sub-Pixel Convolutional Neural Network", CVPR.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from genjax import checks


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """``(p_lo, p_hi)`` of "SAME" padding along one axis (as ``lax.padtype_to_pads``):
    ``ceil(size / stride)`` outputs, the total padding split with the extra on the high side."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _check(x: jax.Array, kernel: jax.Array, bias: jax.Array, stride: int) -> int:
    stride = checks.positive_int("stride", stride)
    if x.ndim != 4:
        raise ValueError(f"x must be (B, H, W, C_in), got shape {x.shape}")
    if kernel.ndim != 4 or kernel.shape[0] != kernel.shape[1] or kernel.shape[2] != x.shape[3]:
        raise ValueError(
            f"kernel must be (k, k, C_in={x.shape[3]}, C_out), got shape {kernel.shape}"
        )
    checks.shape("bias", bias, (kernel.shape[3],))
    return stride


def conv2d(x: jax.Array, kernel: jax.Array, bias: jax.Array, stride: int) -> jax.Array:
    """Strided "SAME" cross-correlation as one patch product (``nnx.Conv``'s map).

    Args:
      x: ``(B, H, W, C_in)``.
      kernel: ``(k, k, C_in, C_out)``.
      bias: ``(C_out,)``.
      stride: ``s >= 1`` on both spatial axes.

    Returns:
      ``(B, ceil(H / s), ceil(W / s), C_out)``.
    """
    s = _check(x, kernel, bias, stride)
    _, H, W, C = x.shape
    k, _, _, O = kernel.shape
    (h_lo, h_hi), (w_lo, w_hi) = same_padding(H, k, s), same_padding(W, k, s)
    xp = jnp.pad(x, ((0, 0), (h_lo, h_hi), (w_lo, w_hi), (0, 0)))
    Ho, Wo = -(-H // s), -(-W // s)
    # P[b, i, j, (a, c, q)] = pad(x)[b, s i + a, s j + c, q], taps in W's (a, c, q) order
    cols = [
        xp[:, a : a + s * (Ho - 1) + 1 : s, c : c + s * (Wo - 1) + 1 : s, :]
        for a in range(k)
        for c in range(k)
    ]
    patches = jnp.concatenate(cols, axis=-1)  # (B, Ho, Wo, k^2 C_in)
    return patches @ kernel.reshape(k * k * C, O) + bias.reshape(1, 1, 1, O)  # y = P W + bias


def _phase_taps(kernel: int, stride: int, pad: int) -> list[list[tuple[int, int]]]:
    """For each output phase ``r`` in ``0 .. s-1``: the taps ``(a, d)`` with
    ``(r + a - pad) mod s = 0`` and ``d = (r + a - pad) / s``, the input offset they read."""
    return [
        [(a, (r + a - pad) // stride) for a in range(kernel) if (r + a - pad) % stride == 0]
        for r in range(stride)
    ]


def conv_transpose2d(x: jax.Array, kernel: jax.Array, bias: jax.Array, stride: int) -> jax.Array:
    """``lax.conv_transpose(x, kernel, (s, s), "SAME") + bias`` in sub-pixel form: ``s^2``
    patch products (``nnx.ConvTranspose``'s map with ``transpose_kernel=False``).

    Args:
      x: ``(B, H, W, C_in)``.
      kernel: ``(k, k, C_in, C_out)`` with ``k`` a multiple of ``s``.
      bias: ``(C_out,)``.
      stride: ``s >= 1`` on both spatial axes.

    Returns:
      ``(B, s H, s W, C_out)``.
    """
    s = _check(x, kernel, bias, stride)
    B, H, W, C = x.shape
    k, _, _, O = kernel.shape
    if k % s:
        raise ValueError(f"the kernel size ({k}) must be a multiple of stride ({s})")
    pad_len = k + s - 2
    p_a = k - 1 if s > k - 1 else -(-pad_len // 2)  # lax.conv_transpose's "SAME" (before)
    taps = _phase_taps(k, s, p_a)  # k / s taps in every phase
    offsets = [d for phase in taps for _, d in phase]
    lo, hi = max(0, -min(offsets)), max(0, max(offsets))
    xp = jnp.pad(x, ((0, 0), (lo, hi), (lo, hi), (0, 0)))
    phases = []
    for r in range(s):
        for t in range(s):
            # phase (r, t): y[b, s i + r, s j + t] = sum x[b, i + d_a, j + d_c, q] W[a, c, q]
            cols = [
                xp[:, lo + da : lo + da + H, lo + dc : lo + dc + W, :]
                for _, da in taps[r]
                for _, dc in taps[t]
            ]
            weight = jnp.concatenate([kernel[a, c] for a, _ in taps[r] for c, _ in taps[t]])
            phases.append(jnp.concatenate(cols, axis=-1).reshape(B * H * W, -1) @ weight)
    y = (
        jnp.stack(phases).reshape(s, s, B, H, W, O).transpose(2, 3, 0, 4, 1, 5)
    )  # (B, H, r, W, t, O)
    return y.reshape(B, s * H, s * W, O) + bias.reshape(
        1, 1, 1, O
    )  # depth to space: row s i + r, column s j + t
