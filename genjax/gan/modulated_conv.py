"""Modulated convolution with weight demodulation (Karras et al. 2020, StyleGAN2, sec. 2.2).

A style ``s`` (one scale per input channel) modulates the convolution weight ``w_{ijk}``
(``i`` input channel, ``j`` output channel, ``k`` kernel tap), and demodulation rescales
each output channel so that i.i.d. unit-variance inputs give unit-variance outputs:

    w'_{ijk}  = s_i w_{ijk}                                                   (eq. 1)
    sigma_j   = sqrt(sum_{i,k} w'_{ijk}^2)                                    (eq. 2)
    w''_{ijk} = w'_{ijk} / sqrt(sum_{i,k} w'_{ijk}^2 + eps)                   (eq. 3)

``Var[y_j] = sum_{i,k} w''^2_{ijk} = S_j / (S_j + eps)`` with ``S_j = sigma_j^2``: 1 up to
``eps``. :func:`modulated_conv` computes ``conv(x * s, w) * d_j`` with ``d_j = 1 / sqrt(sum_i
s_i^2 sum_k w_{ijk}^2 + eps)`` -- the paper's non-fused implementation, the same sums as
eq. 3 without one kernel per example; :func:`demodulated_weights` forms those kernels.

References:
  Karras, Laine, Aittala, Hellsten, Lehtinen & Aila (2020), "Analyzing and Improving the
  Image Quality of StyleGAN", CVPR.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from genjax import checks


def demodulated_weights(
    weight: jax.Array, styles: jax.Array, *, demodulate: bool = True, eps: float = 1e-8
) -> jax.Array:
    """The per-example kernels ``w''`` of eqs. 1-3 (StyleGAN2, sec. 2.2).

    Args:
      weight: ``(kh, kw, C_in, C_out)`` the convolution's weight ``w_{ijk}`` (HWIO).
      styles: ``(B, C_in)`` the styles ``s_i``.
      demodulate: divide by ``sqrt(sum_{i,k} w'^2 + eps)`` (eq. 3); False gives ``w'`` (eq. 1).
      eps: ``> 0``, keeps a zero style finite.

    Returns:
      ``(B, kh, kw, C_in, C_out)``.

    Example:
      >>> w = demodulated_weights(jnp.ones((3, 3, 2, 4)), jnp.ones((5, 2)))
      >>> w.shape, round(float(jnp.sum(w[0, ..., 0] ** 2)), 6)  # unit norm per output
      ((5, 3, 3, 2, 4), 1.0)
    """
    checks.ndim("weight", weight, 4, "(kh, kw, C_in, C_out)")
    checks.shape("styles", styles, (None, weight.shape[2]))
    checks.positive("eps", eps)
    w1 = styles[:, None, None, :, None] * weight[None]  # w'_{ijk} = s_i w_{ijk}   (eq. 1)
    if not demodulate:
        return w1
    norm2 = jnp.sum(jnp.square(w1), axis=(1, 2, 3), keepdims=True)  # (B, 1, 1, 1, C_out)
    return w1 * jax.lax.rsqrt(norm2 + eps)  # w'' = w' / sqrt(sum_{i,k} w'^2 + eps)  (eq. 3)


def modulated_conv(
    x: jax.Array,
    weight: jax.Array,
    styles: jax.Array,
    *,
    demodulate: bool = True,
    eps: float = 1e-8,
) -> jax.Array:
    """Modulated convolution ``y_b = conv(x_b, w''_b)``, ``"SAME"`` padding (StyleGAN2, eq. 1-3).

    Computed as ``conv(x * s, w) * d`` with ``d_{bj} = 1 / sqrt(sum_{i,k} s_{bi}^2 w_{ijk}^2 +
    eps)``: the kernel is shared by the batch, the styles scale activations instead.

    Args:
      x: ``(B, H, W, C_in)``.
      weight: ``(kh, kw, C_in, C_out)``.
      styles: ``(B, C_in)``.
      demodulate: apply eq. 3 (False for toRGB layers).
      eps: ``> 0``.

    Returns:
      ``(B, H, W, C_out)``.

    Example:
      >>> y = modulated_conv(jnp.ones((2, 4, 4, 3)), jnp.ones((3, 3, 3, 5)), jnp.ones((2, 3)))
      >>> y.shape
      (2, 4, 4, 5)
    """
    checks.ndim("x", x, 4, "(B, H, W, C_in)")
    checks.ndim("weight", weight, 4, "(kh, kw, C_in, C_out)")
    B, _, _, C_in = x.shape
    checks.shape("weight", weight, (None, None, C_in, None))
    checks.shape("styles", styles, (B, C_in))
    checks.positive("eps", eps)
    y = jax.lax.conv_general_dilated(
        x * styles[:, None, None, :],
        weight,
        window_strides=(1, 1),
        padding="SAME",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )  # sum_{i,k} s_i w_{ijk} x_{ik}: eq. 1 applied to the activations
    if not demodulate:
        return y
    # sum_{i,k} (s_i w_{ijk})^2 = sum_i s_i^2 (sum_k w_{ijk}^2): (B, C_out)
    norm2 = jnp.square(styles) @ jnp.sum(jnp.square(weight), axis=(0, 1))
    return y * jax.lax.rsqrt(norm2 + eps)[:, None, None, :]  # eq. 3
