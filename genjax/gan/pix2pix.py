"""pix2pix: paired image-to-image translation with a conditional GAN (Isola et al. 2017).

The generator ``G`` maps an input image ``x`` to an output ``G(x)`` meant to look like the
paired target ``y``; the discriminator ``D`` sees the input together with a candidate
output and judges, patch by patch, whether the pair is real ``(x, y)`` or fake
``(x, G(x))``. The objective is (Isola et al. 2017, eqs. 1, 3 and 4)

    L_cGAN(G, D) = E_{x,y}[log D(x, y)] + E_x[log(1 - D(x, G(x)))]              (eq. 1)
    L_L1(G)      = E_{x,y} ||y - G(x)||_1                                        (eq. 3)
    G*           = arg min_G max_D L_cGAN(G, D) + lambda L_L1(G)                 (eq. 4)

trained as the paper does (sec. 3.3): alternate one step on ``D`` with one on ``G``, ``G``
with the non-saturating loss ``-log D(x, G(x))``, ``D``'s objective divided by 2, lambda
= 100, Adam(2e-4, beta1 = 0.5). Each of ``D``'s logits is one patch's verdict; the losses
average the binary cross-entropy over patches and batch, as the paper's code does.

* :class:`UNetGenerator` — the encoder-decoder with skip connections of sec. 3.2.1 and
  appendix 6.1.1: 4x4 stride-2 convolutions down (leaky ReLU 0.2), 4x4 stride-2
  transposed convolutions up (ReLU), the feature map of encoder layer ``i`` concatenated to
  decoder layer ``n - i``, ``tanh`` out. The paper's noise is dropout in the decoder; the
  paper reports that the generator learns to ignore noise, and here there is none: ``G``
  is deterministic. No BatchNorm: its batch statistics would be hidden state
  (STYLE.md), and at 8x8 the network trains without normalisation.
* :class:`PatchGAN` — the Markovian discriminator of sec. 3.2.2: a fully convolutional
  stack whose every output logit sees one ``N x N`` patch of the (input, output) pair, ``N``
  the receptive field of :func:`receptive_field`. It has no normalisation layer on
  purpose: instance or group normalisation pools statistics over the whole image, so every
  logit would depend on every pixel and the patch would be the whole image.
* :func:`pix2pix_d`, :func:`pix2pix_g`, :func:`l1_loss` — the losses, as functions of the
  patch logits and images (the adversarial part reuses :mod:`genjax.gan.loss`);
* the alternating update is :func:`genjax.gan.pix2pix_step.pix2pix_trainer`.

Images are NHWC in ``[-1, 1]``; ``x`` and ``y`` may have different channel counts.

References:
  Isola, Zhu, Zhou & Efros (2017), "Image-to-Image Translation with Conditional
  Adversarial Networks", CVPR.
  Ronneberger, Fischer & Brox (2015), "U-Net", MICCAI.
  Araujo, Norris & Sim (2019), "Computing Receptive Fields of Convolutional Neural
  Networks", Distill (the receptive-field and window formulas, eqs. 2 and 5).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import checks
from genjax.gan import loss as L

LEAK = 0.2  # leaky-ReLU slope of pix2pix's encoder and discriminator (appendix 6.1)
# "Weights were initialized from a Gaussian distribution with mean 0 and standard deviation
# 0.02" (Isola et al. 2017, appendix 6.2); a plain normal also compiles far faster on a CPU
# than flax's truncated-normal default when the modules are built eagerly.
INIT = nnx.initializers.normal(0.02)


# --------------------------------------------------------------------------------------
# Receptive field of a stack of convolutions (Araujo et al. 2019)
# --------------------------------------------------------------------------------------


def _layer_lists(kernel_sizes: Sequence[int], strides: Sequence[int]) -> tuple[tuple, tuple]:
    ks = tuple(checks.positive_int("kernel_sizes", k) for k in kernel_sizes)
    ss = tuple(checks.positive_int("strides", s) for s in strides)
    if len(ks) != len(ss) or not ks:
        raise ValueError(
            f"kernel_sizes and strides must be non-empty and of equal length, got "
            f"{len(ks)} and {len(ss)}"
        )
    for k, s in zip(ks, ss, strict=True):
        if s > k:  # a stride past the kernel skips pixels: the patch would have holes
            raise ValueError(f"strides must not exceed kernel_sizes, got stride {s} > kernel {k}")
    return ks, ss


def receptive_field(kernel_sizes: Sequence[int], strides: Sequence[int]) -> int:
    """The side ``N`` of the patch one output of a stack of convolutions sees.

    .. math::
      N = 1 + \\sum_{l=1}^{L} (k_l - 1) \\prod_{i=1}^{l-1} s_i     (Araujo et al. 2019, eq. 2)

    Args:
      kernel_sizes: ``(k_1, ..., k_L)``, each >= 1.
      strides: ``(s_1, ..., s_L)``, each in ``[1, k_l]`` (a larger stride leaves holes).

    Returns:
      ``N`` (an int).

    Example:
      >>> receptive_field((4, 4, 4, 4, 4), (2, 2, 2, 1, 1))  # pix2pix's 70x70 PatchGAN
      70
    """
    ks, ss = _layer_lists(kernel_sizes, strides)
    n, jump = 1, 1
    for k, s in zip(ks, ss, strict=True):
        n += (k - 1) * jump  # each layer widens the patch by (k - 1) input-pixel jumps
        jump *= s  # distance in input pixels between neighbouring outputs of this layer
    return n


def patch_window(
    index: int, kernel_sizes: Sequence[int], strides: Sequence[int], paddings: Sequence[int]
) -> tuple[int, int]:
    """The input rows ``[start, start + N)`` that output row ``index`` sees (one axis).

    .. math::
      start = index \\prod_l s_l - \\sum_{l=1}^{L} p_l \\prod_{i=1}^{l-1} s_i
      (Araujo et al. 2019, eq. 5), \\quad N = receptive\\_field

    The window may reach into the zero padding; the pixels it sees are its intersection
    with ``[0, H)``.

    Args:
      index: output position along the axis, >= 0.
      kernel_sizes, strides: as :func:`receptive_field`.
      paddings: ``(p_1, ..., p_L)`` zeros added before each layer's input, each >= 0.

    Returns:
      ``(start, stop)``, half-open, in input coordinates (``stop - start = N``).

    Example:
      >>> patch_window(0, (3, 3, 1), (1, 2, 1), (1, 1, 0))
      (-2, 3)
    """
    ks, ss = _layer_lists(kernel_sizes, strides)
    ps = tuple(checks.nonnegative_int("paddings", p) for p in paddings)
    if len(ps) != len(ks):
        raise ValueError(f"paddings must have one entry per layer ({len(ks)}), got {len(ps)}")
    index = checks.nonnegative_int("index", index)
    start, jump = 0, 1
    for p, s in zip(ps, ss, strict=True):
        start -= p * jump  # padding shifts the window left by p jumps of this layer
        jump *= s
    start += index * jump
    return start, start + receptive_field(ks, ss)


# --------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------


class UNetGenerator(nnx.Module):
    """pix2pix's U-Net generator ``(B, H, W, C_in) -> (B, H, W, C_out)`` in ``[-1, 1]``.

    With encoder channels ``(c_1, ..., c_n)`` (Isola et al. 2017, appendix 6.1.1):

        e_1 = Conv4x4/2(x)                            (no activation before the first layer)
        e_i = Conv4x4/2(lrelu(e_{i-1}))               i = 2 .. n (e_n: the bottleneck)
        u_n = ConvT4x4/2(relu(e_n))                   c_{n-1} channels
        u_i = ConvT4x4/2(relu([u_{i+1}, e_i]))        i = n-1 .. 1 (skip: concatenation)
        G(x) = tanh(u_1)                              C_out channels

    so ``H`` and ``W`` must be divisible by ``2 ** n`` (8x8 and ``n = 3`` gives a 1x1
    bottleneck, as pix2pix's 256x256 with ``n = 8``).

    Args:
      in_channels: ``C_in``.
      out_channels: ``C_out``.
      channels: ``(c_1, ..., c_n)``, encoder widths, ``n >= 1``.
      rngs: initialisation only.

    Example:
      >>> g = UNetGenerator(1, 1, channels=(4,), rngs=nnx.Rngs(0))  # 8x8 -> 4x4 -> 8x8
      >>> jax.jit(g)(jnp.zeros((2, 8, 8, 1))).shape
      (2, 8, 8, 1)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        channels: Sequence[int] = (32, 64, 128),
        rngs: nnx.Rngs,
    ):
        c_in = checks.positive_int("in_channels", in_channels)
        c_out = checks.positive_int("out_channels", out_channels)
        widths = tuple(checks.positive_int("channels", c) for c in channels)
        if not widths:
            raise ValueError("channels must name at least one encoder layer, got ()")
        self.levels = len(widths)
        self.in_channels, self.out_channels = c_in, c_out
        conv = dict(kernel_size=(4, 4), strides=(2, 2), padding="SAME", kernel_init=INIT, rngs=rngs)
        self.down = nnx.List(
            [nnx.Conv(a, b, **conv) for a, b in zip((c_in, *widths[:-1]), widths, strict=True)]
        )
        # decoder layer i takes u_{i+1} (c_i channels) and e_i (c_i) -> c_{i-1} (C_out at i=1)
        ups = [nnx.ConvTranspose(widths[-1], widths[-2] if len(widths) > 1 else c_out, **conv)]
        for i in range(len(widths) - 2, -1, -1):
            ups.append(nnx.ConvTranspose(2 * widths[i], widths[i - 1] if i else c_out, **conv))
        self.up = nnx.List(ups)

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: (B, H, W, C_in), H and W divisible by ``2 ** len(channels)`` -> (B, H, W, C_out)."""
        checks.ndim("x", x, 4, "(B, H, W, C_in)")
        B, H, W, C = x.shape
        side = 2**self.levels
        if H % side or W % side or C != self.in_channels:
            raise ValueError(
                f"x must have shape (B, H, W, {self.in_channels}) with H and W "
                f"divisible by {side}, got {x.shape}"
            )
        skips = []
        h = self.down[0](x)  # (B, H/2, W/2, c_1)
        for conv in self.down[1:]:
            skips.append(h)
            h = conv(jax.nn.leaky_relu(h, LEAK))  # (B, H/2^i, W/2^i, c_i)
        h = self.up[0](jax.nn.relu(h))  # bottleneck -> (B, H/2^(n-1), W/2^(n-1), c_{n-1})
        for deconv, skip in zip(self.up[1:], reversed(skips), strict=True):
            h = deconv(jax.nn.relu(jnp.concatenate([h, skip], axis=-1)))  # [u, e_i]: 2 c_i
        return jnp.tanh(h)  # (B, H, W, C_out)


class PatchGAN(nnx.Module):
    """The conditional Markovian discriminator ``D(x, y) -> (B, h, w)`` patch logits.

        h_0 = [x, y]                                   (channel concatenation, sec. 2.1)
        h_l = lrelu(Conv_{k_l}/s_l(h_{l-1}))           l = 1 .. L-1, padding (k_l - 1) // 2
        D   = Conv_{k_L}/s_L(h_{L-1}) -> 1 channel     the logits, one per patch

    Logit ``(i, j)`` depends on the input pixels in rows ``[a_i, a_i + N)`` and columns
    ``[a_j, a_j + N)`` only (intersected with the image), where ``N = patch_size`` is
    :func:`receptive_field` of the kernels and strides and ``a_i`` is the start of
    :func:`patch_window` — pix2pix's "70x70 PatchGAN" is this with kernels ``(4,) * 5``,
    strides ``(2, 2, 2, 1, 1)``. The default, for 8x8 images, sees 5x5 patches on a 4x4 grid
    of logits. There is no normalisation layer (see the module docstring).

    Args:
      in_channels: channels of ``x`` plus channels of ``y``.
      channels: widths of the hidden layers ``(c_1, ..., c_{L-1})``.
      kernel_sizes: ``(k_1, ..., k_L)``, one more than ``channels``.
      strides: ``(s_1, ..., s_L)``, each in ``[1, k_l]``.
      rngs: initialisation only.

    Example:
      >>> d = PatchGAN(2, channels=(4,), kernel_sizes=(3, 1), strides=(1, 1), rngs=nnx.Rngs(1))
      >>> d.patch_size, jax.jit(d)(jnp.zeros((3, 8, 8, 1)), jnp.zeros((3, 8, 8, 1))).shape
      (3, (3, 8, 8))
    """

    def __init__(
        self,
        in_channels: int,
        *,
        channels: Sequence[int] = (32, 64),
        kernel_sizes: Sequence[int] = (3, 3, 1),
        strides: Sequence[int] = (1, 2, 1),
        rngs: nnx.Rngs,
    ):
        c_in = checks.positive_int("in_channels", in_channels)
        widths = tuple(checks.positive_int("channels", c) for c in channels)
        ks, ss = _layer_lists(kernel_sizes, strides)
        if len(ks) != len(widths) + 1:
            raise ValueError(
                f"kernel_sizes must have len(channels) + 1 = {len(widths) + 1} "
                f"entries (the last layer gives the logits), got {len(ks)}"
            )
        self.in_channels = c_in
        self.kernel_sizes, self.strides = ks, ss
        self.paddings = tuple((k - 1) // 2 for k in ks)  # "same"-like: k3 -> 1, k4 -> 1, k1 -> 0
        self.patch_size = receptive_field(ks, ss)
        self.convs = nnx.List(
            [
                nnx.Conv(
                    a,
                    b,
                    (k, k),
                    strides=(s, s),
                    padding=((p, p), (p, p)),
                    kernel_init=INIT,
                    rngs=rngs,
                )
                for a, b, k, s, p in zip(
                    (c_in, *widths), (*widths, 1), ks, ss, self.paddings, strict=True
                )
            ]
        )

    def __call__(self, x: jax.Array, y: jax.Array) -> jax.Array:
        """x: (B, H, W, C_x) input image, y: (B, H, W, C_y) real or generated output ->
        logits (B, h, w), one per patch."""
        checks.ndim("x", x, 4, "(B, H, W, C_x)")
        checks.ndim("y", y, 4, "(B, H, W, C_y)")
        if x.shape[:3] != y.shape[:3] or x.shape[-1] + y.shape[-1] != self.in_channels:
            raise ValueError(
                f"y must have the batch and image size of x {x.shape[:3]} and "
                f"C_x + C_y = in_channels = {self.in_channels}; got x {x.shape}, "
                f"y {y.shape}"
            )
        h = jnp.concatenate([x, y], axis=-1)  # (B, H, W, C_x + C_y): D sees the pair
        for conv in self.convs[:-1]:
            h = jax.nn.leaky_relu(conv(h), LEAK)  # (B, H_l, W_l, c_l)
        return self.convs[-1](h)[..., 0]  # (B, h, w)


# --------------------------------------------------------------------------------------
# Losses (Isola et al. 2017, eqs. 1, 3, 4)
# --------------------------------------------------------------------------------------


def _patch_logits(name: str, logits: jax.Array) -> jax.Array:
    logits = jnp.asarray(logits)
    checks.ndim(name, logits, 3, "(batch, h, w)")
    return logits.reshape(-1)  # (batch * h * w,): every patch is one verdict


def pix2pix_d(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """The discriminator's loss: minus eq. 1, halved (Isola et al. 2017, sec. 3.3).

    .. math::
      L_D = \\frac12 \\left[ -\\text{mean}_{b,i,j} \\log \\sigma(l^{real}_{bij})
            - \\text{mean}_{b,i,j} \\log(1 - \\sigma(l^{fake}_{bij})) \\right]

    with ``l^real = D(x, y)`` and ``l^fake = D(x, G(x))`` the patch logits; the mean over
    patches is pix2pix's (its code averages the BCE over the logit map). The 1/2 "slows
    down the rate at which D learns relative to G" (sec. 3.3).

    Args:
      real_logits: ``(batch, h, w)`` logits of real pairs.
      fake_logits: ``(batch_f, h, w)`` logits of generated pairs.

    Returns:
      ``()`` the loss.

    Example:
      >>> float(pix2pix_d(jnp.zeros((1, 2, 2)), jnp.zeros((1, 2, 2))))  # log 2
      0.6931...
    """
    real, fake = (
        _patch_logits("real_logits", real_logits),
        _patch_logits("fake_logits", fake_logits),
    )
    return 0.5 * L.minimax_d(real, fake)


def l1_loss(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """``L_L1 = mean |y - G(x)|`` over batch, pixels and channels (Isola et al., eq. 3).

    Args:
      outputs: ``(B, H, W, C)`` generated images ``G(x)``.
      targets: ``(B, H, W, C)`` the paired targets ``y``.

    Returns:
      ``()`` the mean absolute error.

    Example:
      >>> float(l1_loss(jnp.zeros((1, 2, 2, 1)), jnp.ones((1, 2, 2, 1))))
      1.0
    """
    outputs = checks.floating("outputs", jnp.asarray(outputs))
    checks.same_shape("targets", targets, "outputs", outputs)
    return jnp.mean(jnp.abs(jnp.asarray(targets) - outputs))


def pix2pix_g(
    fake_logits: jax.Array, outputs: jax.Array, targets: jax.Array, *, l1_weight: float = 100.0
) -> jax.Array:
    """The generator's loss of eq. 4 with the non-saturating adversarial term (sec. 3.3).

    .. math::
      L_G = -\\text{mean}_{b,i,j} \\log \\sigma(l^{fake}_{bij})
            + \\lambda\\, \\text{mean} |y - G(x)|

    Args:
      fake_logits: ``(batch, h, w)`` patch logits ``D(x, G(x))``.
      outputs: ``(batch, H, W, C)`` ``G(x)``.
      targets: ``(batch, H, W, C)`` ``y``.
      l1_weight: ``lambda >= 0`` (100 in the paper).

    Returns:
      ``()`` the loss.

    Example:
      >>> y = jnp.ones((1, 2, 2, 1))
      >>> float(pix2pix_g(jnp.zeros((1, 2, 2)), 0.5 * y, y, l1_weight=2.0))  # log 2 + 1
      1.6931...
    """
    checks.nonnegative("l1_weight", l1_weight)
    adversarial = L.nonsaturating_g(_patch_logits("fake_logits", fake_logits))
    return adversarial + l1_weight * l1_loss(outputs, targets)  # eq. 4
