"""A U-Net noise-prediction network (NHWC) as flax.nnx modules, used functionally.

The architecture of DDPM (Ho et al. 2020, appendix B), itself the PixelCNN++ U-Net
(Salimans et al. 2017) with the changes of the later diffusion U-Nets:

* residual blocks ``GroupNorm -> SiLU -> Conv3x3`` twice, the time (and class)
  embedding added between the two convolutions (Ho et al. 2020);
* self-attention blocks at the low resolutions (``attention_levels``), and, when a
  context sequence is given, a cross-attention layer after each self-attention — the
  text conditioning of latent diffusion (Rombach et al. 2022, sec. 3.3);
* an optional learned class embedding added to the time embedding, with one extra
  null row for classifier-free guidance (Ho & Salimans 2022);
* skip connections from every block of the down path to the matching block of the up
  path; stride-2 convolutions down, nearest-neighbour upsampling + conv up.

With ``L = len(channel_mults)`` levels the image is halved ``L - 1`` times, so the
height and width must be divisible by ``2 ** (L - 1)``: (1, 2) fits 8x8 digits,
(1, 2, 2) fits 28x28 (28 -> 14 -> 7) and 32x32.

Only stateless normalisation (GroupNorm, LayerNorm) is used, so the network is a pure
function of its parameters.

References:
  Ho, Jain, Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020.
  Salimans et al., "PixelCNN++", ICLR 2017.
  Rombach et al., "High-Resolution Image Synthesis with Latent Diffusion Models", CVPR 2022.
  Ho, Salimans, "Classifier-Free Diffusion Guidance", 2022.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import checks
from genjax.nn.attention import dot_product_attention
from genjax.nn.embeddings import sinusoidal_embedding
from genjax.nn.mlp import MLP

__all__ = ["ResBlock", "AttentionBlock", "UNet"]

# DDPM's initialiser (its code's ``default_init``): variance scaling, fan_avg, uniform.
# Uniform draws also compile much faster than flax's truncated-normal default, which
# matters when a U-Net with ~60 weight shapes is built eagerly on a small CPU.
_INIT = nnx.initializers.variance_scaling(1.0, "fan_avg", "uniform")


def _conv(c_in: int, c_out: int, kernel: int, *, rngs: nnx.Rngs, strides: int = 1) -> nnx.Conv:
    return nnx.Conv(c_in, c_out, (kernel, kernel), strides=strides, kernel_init=_INIT, rngs=rngs)


def _linear(d_in: int, d_out: int, *, rngs: nnx.Rngs) -> nnx.Linear:
    return nnx.Linear(d_in, d_out, kernel_init=_INIT, rngs=rngs)


def _check_groups(channels: int, num_groups: int) -> None:
    if channels % num_groups:
        raise ValueError(
            f"num_groups={num_groups} must divide every channel count; got {channels} channels"
        )


class ResBlock(nnx.Module):
    """Residual block with a time/class embedding (Ho et al. 2020, appendix B).

        h = Conv3x3(SiLU(GN(x)))
        h = h + Linear(SiLU(emb))              (broadcast over H, W)
        h = Conv3x3(SiLU(GN(h)))
        out = skip(x) + h                      (skip = 1x1 conv when channels change)

    Args:
      in_channels, out_channels: channel counts, each divisible by ``num_groups``.
      embed_dim: size of the conditioning embedding.
      num_groups: GroupNorm groups.
      rngs: ``nnx.Rngs`` for initialisation.

    Example:
      >>> block = ResBlock(4, 8, 16, num_groups=2, rngs=nnx.Rngs(0))
      >>> block(jnp.zeros((2, 4, 4, 4)), jnp.zeros((2, 16))).shape
      (2, 4, 4, 8)
    """

    def __init__(
        self, in_channels: int, out_channels: int, embed_dim: int, *, num_groups: int,
        rngs: nnx.Rngs,
    ):
        _check_groups(in_channels, num_groups)
        _check_groups(out_channels, num_groups)
        self.norm1 = nnx.GroupNorm(in_channels, num_groups, rngs=rngs)
        self.conv1 = _conv(in_channels, out_channels, 3, rngs=rngs)
        self.embed_proj = _linear(embed_dim, out_channels, rngs=rngs)
        self.norm2 = nnx.GroupNorm(out_channels, num_groups, rngs=rngs)
        self.conv2 = _conv(out_channels, out_channels, 3, rngs=rngs)
        self.skip = (
            None
            if in_channels == out_channels
            else _conv(in_channels, out_channels, 1, rngs=rngs)
        )

    def __call__(self, x: jax.Array, emb: jax.Array) -> jax.Array:
        """x: (B, H, W, in_channels), emb: (B, embed_dim) -> (B, H, W, out_channels)."""
        h = self.conv1(nnx.silu(self.norm1(x)))  # (B, H, W, out)
        h = h + self.embed_proj(nnx.silu(emb))[:, None, None, :]  # + (B, 1, 1, out)
        h = self.conv2(nnx.silu(self.norm2(h)))  # (B, H, W, out)
        skip = x if self.skip is None else self.skip(x)
        return skip + h


def _heads(x: jax.Array, num_heads: int) -> jax.Array:
    """(B, N, C) -> (B, N, heads, C / heads): the layout of :func:`dot_product_attention`."""
    B, N, C = x.shape
    return x.reshape(B, N, num_heads, C // num_heads)


def _multi_head_attention(q: jax.Array, k: jax.Array, v: jax.Array, num_heads: int) -> jax.Array:
    """softmax(Q K^T / sqrt(d)) V per head (Vaswani et al. 2017, eq. 1), unmasked.

    q: (B, Nq, C), k and v: (B, Nk, C) -> (B, Nq, C); the heads are ``C / num_heads``
    consecutive channels. Computed by the shared :func:`genjax.nn.dot_product_attention`.
    """
    B, Nq, C = q.shape
    out = dot_product_attention(_heads(q, num_heads), _heads(k, num_heads), _heads(v, num_heads))
    return out.reshape(B, Nq, C)  # (B, Nq, heads, d) -> (B, Nq, C)


class AttentionBlock(nnx.Module):
    """Self-attention over the pixels, then (optionally) cross-attention to a context.

        h = x + Proj(MHA(GN(x)))                       (self-attention, DDPM)
        h = h + Proj(MHA(LN(h), context, context))     (cross-attention, LDM sec. 3.3)

    Args:
      channels: C, divisible by ``num_groups`` and ``num_heads``.
      num_heads: attention heads.
      num_groups: GroupNorm groups.
      context_dim: size of the context tokens, or None for self-attention only.
      rngs: ``nnx.Rngs`` for initialisation.

    Example:
      >>> block = AttentionBlock(4, num_heads=2, num_groups=2, context_dim=None, rngs=nnx.Rngs(0))
      >>> block(jnp.ones((2, 4, 4, 4))).shape
      (2, 4, 4, 4)
    """

    def __init__(
        self, channels: int, *, num_heads: int, num_groups: int, context_dim: int | None,
        rngs: nnx.Rngs,
    ):
        _check_groups(channels, num_groups)
        if channels % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide channels={channels}")
        self.num_heads = num_heads
        self.norm = nnx.GroupNorm(channels, num_groups, rngs=rngs)
        self.qkv = _linear(channels, 3 * channels, rngs=rngs)
        self.proj = _linear(channels, channels, rngs=rngs)
        if context_dim is None:
            self.cross = None
        else:
            self.cross = nnx.Dict(
                norm=nnx.LayerNorm(channels, rngs=rngs),
                q=_linear(channels, channels, rngs=rngs),
                kv=_linear(context_dim, 2 * channels, rngs=rngs),
                proj=_linear(channels, channels, rngs=rngs),
            )

    def __call__(self, x: jax.Array, context: jax.Array | None = None) -> jax.Array:
        """x: (B, H, W, C), context: (B, L, context_dim) or None -> (B, H, W, C)."""
        B, H, W, C = x.shape
        h = self.norm(x).reshape(B, H * W, C)  # (B, HW, C)
        q, k, v = jnp.split(self.qkv(h), 3, axis=-1)  # 3 x (B, HW, C)
        out = x + self.proj(_multi_head_attention(q, k, v, self.num_heads)).reshape(B, H, W, C)
        if self.cross is not None:
            if context is None:
                raise ValueError("context must be given: the network was built with context_dim")
            h = self.cross["norm"](out.reshape(B, H * W, C))  # (B, HW, C)
            kc, vc = jnp.split(self.cross["kv"](context), 2, axis=-1)  # 2 x (B, L, C)
            attended = _multi_head_attention(self.cross["q"](h), kc, vc, self.num_heads)
            out = out + self.cross["proj"](attended).reshape(B, H, W, C)
        return out


class UNet(nnx.Module):
    """U-Net ``(x (B, H, W, C), t (B,)[, labels, context]) -> (B, H, W, out_channels)``.

    Args:
      in_channels: image channels C.
      base_channels: channels at the first level.
      channel_mults: per-level channel multipliers; ``L = len(channel_mults)`` levels,
        the image is halved between consecutive levels (``L - 1`` times).
      num_res_blocks: residual blocks per level on the way down (one more on the way up).
      attention_levels: indices of the levels (0 = full resolution) that get attention
        blocks; the middle block always has one.
      time_embed_dim: embedding size (default ``4 * base_channels``).
      num_classes: classes for class conditioning or None; row ``num_classes`` of the
        embedding is the null label (classifier-free guidance).
      context_dim: size of the context tokens for cross-attention, or None.
      num_heads: attention heads.
      num_groups: GroupNorm groups (must divide every channel count).
      out_channels: output channels (default ``in_channels``).
      time_scale: ``t`` is multiplied by this before the sinusoidal embedding.
      rngs: ``nnx.Rngs`` for initialisation.

    Example:
      >>> net = UNet(1, base_channels=16, channel_mults=(1, 2), rngs=nnx.Rngs(0))
      >>> net(jnp.zeros((2, 8, 8, 1)), jnp.array([3, 7])).shape
      (2, 8, 8, 1)
    """

    def __init__(
        self,
        in_channels: int,
        *,
        base_channels: int = 32,
        channel_mults: Sequence[int] = (1, 2),
        num_res_blocks: int = 1,
        attention_levels: Sequence[int] = (1,),
        time_embed_dim: int | None = None,
        num_classes: int | None = None,
        context_dim: int | None = None,
        num_heads: int = 4,
        num_groups: int = 8,
        out_channels: int | None = None,
        time_scale: float = 1.0,
        rngs: nnx.Rngs,
    ):
        channel_mults = tuple(int(m) for m in channel_mults)
        if not channel_mults or min(channel_mults) < 1:
            raise ValueError(f"channel_mults must be non-empty positive ints, got {channel_mults}")
        checks.positive_int("num_res_blocks", num_res_blocks)
        levels = len(channel_mults)
        attention_levels = tuple(int(a) for a in attention_levels)
        for a in attention_levels:
            checks.int_in_range("attention_levels entry", a, 0, levels - 1)
        if num_classes is not None:
            checks.positive_int("num_classes", num_classes)
        for mult in channel_mults:  # fail before building anything
            _check_groups(base_channels * mult, num_groups)
        temb = int(time_embed_dim or 4 * base_channels)
        self.in_channels = int(in_channels)
        self.base_channels = int(base_channels)
        self.num_levels = levels
        self.num_classes = num_classes
        self.context_dim = context_dim
        self.time_scale = float(time_scale)
        out_channels = int(out_channels or in_channels)

        self.time_mlp = MLP(base_channels, [temb], temb, rngs=rngs)
        self.class_embed = (
            None if num_classes is None else nnx.Embed(num_classes + 1, temb, rngs=rngs)
        )
        self.conv_in = _conv(in_channels, base_channels, 3, rngs=rngs)

        def attn(ch):
            return AttentionBlock(
                ch, num_heads=num_heads, num_groups=num_groups, context_dim=context_dim, rngs=rngs
            )

        # Down path: every block's output is kept as a skip for the up path.
        down, skip_channels, ch = [], [base_channels], base_channels
        for level, mult in enumerate(channel_mults):
            for _ in range(num_res_blocks):
                block = nnx.Dict(
                    res=ResBlock(ch, base_channels * mult, temb, num_groups=num_groups, rngs=rngs)
                )
                ch = base_channels * mult
                if level in attention_levels:
                    block["attn"] = attn(ch)
                down.append(block)
                skip_channels.append(ch)
            if level < levels - 1:
                # Stride-2 conv halves H and W.
                down.append(nnx.Dict(down=_conv(ch, ch, 3, strides=2, rngs=rngs)))
                skip_channels.append(ch)
        self.down = nnx.List(down)

        self.mid_res1 = ResBlock(ch, ch, temb, num_groups=num_groups, rngs=rngs)
        self.mid_attn = attn(ch)
        self.mid_res2 = ResBlock(ch, ch, temb, num_groups=num_groups, rngs=rngs)

        # Up path: num_res_blocks + 1 blocks per level, each eats one skip.
        up = []
        for level in reversed(range(levels)):
            out_ch = base_channels * channel_mults[level]
            for _ in range(num_res_blocks + 1):
                skip_ch = skip_channels.pop()
                block = nnx.Dict(
                    res=ResBlock(ch + skip_ch, out_ch, temb, num_groups=num_groups, rngs=rngs)
                )
                ch = out_ch
                if level in attention_levels:
                    block["attn"] = attn(ch)
                up.append(block)
            if level > 0:
                up.append(nnx.Dict(up=_conv(ch, ch, 3, rngs=rngs)))
        self.up = nnx.List(up)

        self.norm_out = nnx.GroupNorm(ch, num_groups, rngs=rngs)
        self.conv_out = _conv(ch, out_channels, 3, rngs=rngs)

    def __call__(
        self,
        x: jax.Array,
        t: jax.Array,
        labels: jax.Array | None = None,
        context: jax.Array | None = None,
    ) -> jax.Array:
        """Apply the network.

        Args:
          x: (B, H, W, in_channels) images, H and W divisible by ``2 ** (L - 1)``.
          t: (B,) times (integer steps or floats).
          labels: (B,) int labels in ``[0, num_classes]``; required iff ``num_classes``.
          context: (B, L_ctx, context_dim) tokens; required iff ``context_dim``.

        Returns:
          (B, H, W, out_channels) prediction in ``x``'s dtype.
        """
        checks.shape("x", x, ("B", "H", "W", self.in_channels))
        factor = 2 ** (self.num_levels - 1)
        B, H, W, _ = x.shape
        if H % factor or W % factor:
            raise ValueError(
                f"image size {H}x{W} must be divisible by 2**(levels-1) = {factor} "
                f"(levels = len(channel_mults) = {self.num_levels})"
            )
        if (labels is None) != (self.class_embed is None):
            raise ValueError(
                f"labels must be given iff num_classes is set (num_classes={self.num_classes})"
            )
        if (context is None) != (self.context_dim is None):
            raise ValueError(
                f"context must be given iff context_dim is set (context_dim={self.context_dim})"
            )
        if labels is not None:  # labels in [0, num_classes]: num_classes is the null label
            checks.shape("labels", labels, (B,))
            checks.token_ids("labels", jnp.asarray(labels), self.num_classes + 1)
        if jnp.ndim(t) > 1 or (jnp.ndim(t) == 1 and jnp.shape(t)[0] not in (1, B)):
            raise ValueError(f"t must be a scalar or have shape (B,) = ({B},), got {jnp.shape(t)}")
        t = jnp.broadcast_to(jnp.asarray(t), (B,)).astype(jnp.float32)
        emb = self.time_mlp(sinusoidal_embedding(t * self.time_scale, self.base_channels))
        if self.class_embed is not None:
            emb = emb + self.class_embed(labels)  # (B, temb)

        h = self.conv_in(x)  # (B, H, W, base)
        skips = [h]
        for block in self.down:
            if "down" in block:
                h = block["down"](h)  # (B, H/2, W/2, ch)
            else:
                h = block["res"](h, emb)
                if "attn" in block:
                    h = block["attn"](h, context)
            skips.append(h)

        h = self.mid_res2(self.mid_attn(self.mid_res1(h, emb), context), emb)

        for block in self.up:
            if "up" in block:
                h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)  # nearest x2: (B, 2H, 2W, ch)
                h = block["up"](h)
            else:
                h = jnp.concatenate([h, skips.pop()], axis=-1)  # (B, H, W, ch + skip_ch)
                h = block["res"](h, emb)
                if "attn" in block:
                    h = block["attn"](h, context)
        return self.conv_out(nnx.silu(self.norm_out(h))).astype(x.dtype)
