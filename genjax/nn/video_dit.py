"""A diffusion transformer over spacetime patches (tubelets), with factorised attention.

A video ``x (B, T, H, W, C)`` is cut into non-overlapping ``pt x ph x pw`` *tubelets*
(ViViT's "tubelet embedding", Arnab et al. 2021, sec. 3.2; the "spacetime patches" of
Sora, Brooks et al. 2024), each flattened and linearly embedded into a token of size D, on
a grid of ``Nt = T/pt`` times by ``Ns = (H/ph)(W/pw)`` places. Fixed sine-cosine position
embeddings are added, the 2-D one of the place plus the 1-D one of the time (Latte's
separate spatial and temporal embeddings, Ma et al. 2024)::

    tokens[b, i, s] = W_e tubelet(x)[b, i, s] + b_e + pos2d(s) + sinusoidal(i)    (B, Nt, Ns, D)
    c = MLP_t(sinusoidal(t))                                                      (B, D)

The transformer blocks are the adaLN-Zero blocks of DiT (:class:`genjax.nn.dit.AdaLNZeroBlock`,
Peebles & Xie 2023, sec. 3.2), conditioned on ``c``; the output is DiT's
:class:`~genjax.nn.dit.FinalLayer` and the inverse rearrangement (:func:`tubelet_unpatchify`).

**Which attention, and why: factorised space-time** (``attention="factorised"``, the
default). Each of the ``depth`` stages is a *spatial* block, in which a token attends only
to the tokens of its own time slot, followed by a *temporal* block, in which it attends only
to the tokens at its own place (ViViT's factorised self-attention, Model 3, and Latte's
variant 1, interleaved spatial and temporal blocks)::

    spatial:  h[b, i, :] <- Block_s(h[b, i, :], c)      (a sequence of Ns tokens per (b, i))
    temporal: h[b, :, s] <- Block_t(h[b, :, s], c)      (a sequence of Nt tokens per (b, s))

Why: (1) attention over all ``N = Nt Ns`` tokens costs ``O(N^2) = O(Nt^2 Ns^2)`` per layer,
the factorised pair ``O(Nt Ns^2 + Ns Nt^2)`` — the difference that lets a video model train
on two CPU cores; (2) the split is the inductive bias of the data: a frame's appearance
(space) and the motion of a place across frames (time) are learnt by separate weights; (3)
it gives an exact, checkable structure — a spatial block's output at ``(i, s)`` does not
depend on any token of another time slot, a temporal block's not on any other place — which
the tests hold by Jacobian. One spatial-temporal pair already connects every token to every
other (through one hop in space, then one in time), so nothing is out of reach.
``attention="joint"`` (every block over all N tokens, the plain DiT on the flattened
sequence) is kept as the reference the factorised model is compared with.

The network predicts ``eps`` with the call signature of every genjax diffusion sampler and
loss, ``net(x_t (B, T, H, W, C), t (B,)) -> (B, T, H, W, C)``: a drop-in denoiser for video.

References:
  Peebles, Xie, "Scalable Diffusion Models with Transformers", ICCV 2023.
  Arnab et al., "ViViT: A Video Vision Transformer", ICCV 2021 (tubelets; factorised
    self-attention).
  Ma et al., "Latte: Latent Diffusion Transformer for Video Generation", 2024 (interleaved
    spatial and temporal blocks, separate position embeddings).
  Brooks et al., "Video generation models as world simulators" (Sora), OpenAI 2024.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import checks
from genjax.nn.dit import AdaLNZeroBlock, FinalLayer, sincos_position_embedding_2d
from genjax.nn.embeddings import sinusoidal_embedding
from genjax.nn.mlp import MLP

__all__ = [
    "tubelet_patchify",
    "tubelet_unpatchify",
    "spacetime_position_embedding",
    "spatial_attention",
    "temporal_attention",
    "VideoDiT",
]

ATTENTIONS = ("factorised", "joint")


def _tubelet(tubelet: Sequence[int]) -> tuple[int, int, int]:
    if len(tuple(tubelet)) != 3:
        raise ValueError(f"tubelet must be (pt, ph, pw), three integers >= 1, got {tubelet!r}")
    pt, ph, pw = (checks.positive_int(f"tubelet[{k}]", v) for k, v in enumerate(tubelet))
    return pt, ph, pw


def _grid(name: str, shape: Sequence[int], tubelet: tuple[int, int, int]) -> tuple[int, int, int]:
    T, H, W = shape
    pt, ph, pw = tubelet
    if T % pt or H % ph or W % pw:
        raise ValueError(
            f"{name}: the video size (T, H, W) = {(T, H, W)} must be divisible by the "
            f"tubelet (pt, ph, pw) = {tubelet}"
        )
    return T // pt, H // ph, W // pw


def tubelet_patchify(x: jax.Array, tubelet: Sequence[int]) -> jax.Array:
    """Cut videos into non-overlapping tubelets, one flattened tubelet per token.

        tokens[b, (i Gh + j) Gw + k, ((u ph + v) pw + w) C + c]
            = x[b, i pt + u, j ph + v, k pw + w, c]

    Tokens are numbered time-major (all places of time slot 0, then time slot 1, ...), places
    in raster order; inside a tubelet the values are ordered ``(u, v, w, channel)``.

    Args:
      x: (B, T, H, W, C) videos, ``T, H, W`` divisible by ``pt, ph, pw``.
      tubelet: (pt, ph, pw), each >= 1.

    Returns:
      (B, Nt Ns, pt ph pw C) tokens, ``Nt = T/pt``, ``Ns = (H/ph)(W/pw)``.

    Example:
      >>> tubelet_patchify(jnp.zeros((2, 4, 8, 8, 1)), (2, 4, 4)).shape
      (2, 8, 32)
    """
    pt, ph, pw = _tubelet(tubelet)
    checks.ndim("x", x, 5, "(B, T, H, W, C)")
    B, T, H, W, C = x.shape
    gt, gh, gw = _grid("x", (T, H, W), (pt, ph, pw))
    h = x.reshape(B, gt, pt, gh, ph, gw, pw, C)  # (B, Gt, pt, Gh, ph, Gw, pw, C)
    h = h.transpose(0, 1, 3, 5, 2, 4, 6, 7)  # (B, Gt, Gh, Gw, pt, ph, pw, C)
    return h.reshape(B, gt * gh * gw, pt * ph * pw * C)  # (B, N, pt ph pw C)


def tubelet_unpatchify(
    tokens: jax.Array, tubelet: Sequence[int], video_shape: Sequence[int]
) -> jax.Array:
    """Rearrange tubelet tokens back into videos: the inverse of :func:`tubelet_patchify`.

    Args:
      tokens: (B, Nt Ns, pt ph pw C).
      tubelet: (pt, ph, pw), each >= 1.
      video_shape: (T, H, W), each divisible by the tubelet's side.

    Returns:
      (B, T, H, W, C) videos.

    Example:
      >>> x = jnp.arange(128.0).reshape(1, 2, 8, 8, 1)
      >>> bool(jnp.all(tubelet_unpatchify(tubelet_patchify(x, (2, 4, 4)), (2, 4, 4),
      ...                                 (2, 8, 8)) == x))
      True
    """
    pt, ph, pw = _tubelet(tubelet)
    if len(tuple(video_shape)) != 3:
        raise ValueError(f"video_shape must be (T, H, W), got {video_shape!r}")
    T, H, W = (checks.positive_int(f"video_shape[{k}]", v) for k, v in enumerate(video_shape))
    gt, gh, gw = _grid("video_shape", (T, H, W), (pt, ph, pw))
    checks.ndim("tokens", tokens, 3, "(B, N, pt ph pw C)")
    B, N, F = tokens.shape
    if N != gt * gh * gw or F % (pt * ph * pw):
        raise ValueError(
            f"tokens must have shape (B, N={gt * gh * gw}, pt*ph*pw*C) for a {(T, H, W)} video "
            f"in {(pt, ph, pw)} tubelets, got {tokens.shape}"
        )
    C = F // (pt * ph * pw)
    h = tokens.reshape(B, gt, gh, gw, pt, ph, pw, C)  # (B, Gt, Gh, Gw, pt, ph, pw, C)
    h = h.transpose(0, 1, 4, 2, 5, 3, 6, 7)  # (B, Gt, pt, Gh, ph, Gw, pw, C)
    return h.reshape(B, T, H, W, C)  # (B, T, H, W, C)


def spacetime_position_embedding(grid_t: int, grid_h: int, grid_w: int, dim: int) -> jax.Array:
    """Fixed position embeddings of a ``grid_t x grid_h x grid_w`` grid of tubelets.

        pos[i, (j Gw + k)] = pos2d(j, k) + sinusoidal(i, dim)

    with ``pos2d`` DiT's 2-D sine-cosine embedding (half the features for the row, half for
    the column) and ``sinusoidal`` the 1-D one of the time slot (Latte adds the two).

    Args:
      grid_t, grid_h, grid_w: the grid, each >= 1.
      dim: D, divisible by 4.

    Returns:
      (grid_t, grid_h grid_w, dim) float32.

    Example:
      >>> spacetime_position_embedding(2, 2, 2, 8).shape
      (2, 4, 8)
    """
    grid_t = checks.positive_int("grid_t", grid_t)
    space = sincos_position_embedding_2d(grid_h, grid_w, dim)  # (Ns, D)
    time = sinusoidal_embedding(jnp.arange(grid_t, dtype=jnp.float32), dim)  # (Nt, D)
    return time[:, None, :] + space[None, :, :]  # (Nt, Ns, D)


def _check_grid_tokens(tokens: jax.Array, cond: jax.Array) -> tuple[int, int, int, int]:
    checks.ndim("tokens", tokens, 4, "(B, Nt, Ns, D)")
    B, Nt, Ns, D = tokens.shape
    checks.shape("cond", cond, (B, None))
    return B, Nt, Ns, D


def spatial_attention(block: AdaLNZeroBlock, tokens: jax.Array, cond: jax.Array) -> jax.Array:
    """A block applied within each time slot: ``h[b, i, :] <- block(h[b, i, :], c_b)``.

    Args:
      block: an :class:`~genjax.nn.dit.AdaLNZeroBlock` of token size D.
      tokens: (B, Nt, Ns, D) the token grid.
      cond: (B, C) conditioning vectors, the same for every time slot of a video.

    Returns:
      (B, Nt, Ns, D); the output at ``(i, s)`` depends on time slot ``i`` only.

    Example:
      >>> from genjax.nn.dit import AdaLNZeroBlock
      >>> block = AdaLNZeroBlock(8, 2, 4, rngs=nnx.Rngs(0))
      >>> spatial_attention(block, jnp.ones((2, 3, 4, 8)), jnp.ones((2, 4))).shape
      (2, 3, 4, 8)
    """
    B, Nt, Ns, D = _check_grid_tokens(tokens, cond)
    seqs = tokens.reshape(B * Nt, Ns, D)  # one sequence of Ns places per (b, i), b-major
    out = block(seqs, jnp.repeat(cond, Nt, axis=0))  # cond row b -> rows b Nt .. b Nt + Nt-1
    return out.reshape(B, Nt, Ns, D)


def temporal_attention(block: AdaLNZeroBlock, tokens: jax.Array, cond: jax.Array) -> jax.Array:
    """A block applied along time at each place: ``h[b, :, s] <- block(h[b, :, s], c_b)``.

    Args:
      block: an :class:`~genjax.nn.dit.AdaLNZeroBlock` of token size D.
      tokens: (B, Nt, Ns, D) the token grid.
      cond: (B, C) conditioning vectors.

    Returns:
      (B, Nt, Ns, D); the output at ``(i, s)`` depends on place ``s`` only.

    Example:
      >>> from genjax.nn.dit import AdaLNZeroBlock
      >>> block = AdaLNZeroBlock(8, 2, 4, rngs=nnx.Rngs(0))
      >>> temporal_attention(block, jnp.ones((2, 3, 4, 8)), jnp.ones((2, 4))).shape
      (2, 3, 4, 8)
    """
    B, Nt, Ns, D = _check_grid_tokens(tokens, cond)
    seqs = tokens.transpose(0, 2, 1, 3).reshape(B * Ns, Nt, D)  # (B Ns, Nt, D), b-major
    out = block(seqs, jnp.repeat(cond, Ns, axis=0))  # (B Ns, Nt, D)
    return out.reshape(B, Ns, Nt, D).transpose(0, 2, 1, 3)  # (B, Nt, Ns, D)


class VideoDiT(nnx.Module):
    """Video diffusion transformer ``(x (B, T, H, W, C), t (B,)) -> (B, T, H, W, C)``.

        tokens = W_e tubelet_patchify(x) + b_e + pos                  (B, Nt, Ns, D)
        c      = MLP_t(sinusoidal(t * time_scale))                    (B, D)
        factorised: tokens = temporal_k(spatial_k(tokens, c), c),  k = 1 .. depth
        joint:      tokens = Block_k(tokens as (B, Nt Ns, D), c),  k = 1 .. depth
        out    = tubelet_unpatchify(FinalLayer(tokens, c))            (B, T, H, W, C)

    See the module docstring for the choice of factorised attention. Every block is
    adaLN-Zero, so the network is 0 at initialisation (DiT's zero-initialised final layer).

    Args:
      in_channels: C, channels per frame.
      tubelet: (pt, ph, pw), the spacetime patch.
      dim: D, divisible by ``num_heads`` and by 4 (position embeddings).
      depth: stages, >= 1: spatial-temporal pairs (factorised) or blocks (joint).
      num_heads: attention heads.
      mlp_ratio: MLP width in units of D.
      frequency_dim: size of the sinusoidal time features, even.
      attention: ``"factorised"`` (default) or ``"joint"``.
      time_scale: ``t`` is multiplied by this before the sinusoidal embedding.
      rngs: ``nnx.Rngs`` for initialisation only.

    Example:
      >>> net = VideoDiT(1, tubelet=(2, 4, 4), dim=16, depth=1, num_heads=2,
      ...                frequency_dim=16, rngs=nnx.Rngs(0))
      >>> net(jnp.zeros((2, 4, 8, 8, 1)), jnp.array([3, 7])).shape
      (2, 4, 8, 8, 1)
    """

    def __init__(
        self,
        in_channels: int,
        *,
        tubelet: Sequence[int] = (2, 4, 4),
        dim: int = 64,
        depth: int = 2,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        frequency_dim: int = 64,
        attention: str = "factorised",
        time_scale: float = 1.0,
        rngs: nnx.Rngs,
    ):
        self.in_channels = checks.positive_int("in_channels", in_channels)
        self.tubelet = _tubelet(tubelet)
        dim = checks.positive_int("dim", dim)
        depth = checks.positive_int("depth", depth)
        num_heads = checks.positive_int("num_heads", num_heads)
        if dim % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide dim={dim}")
        if dim % 4:
            raise ValueError(f"dim must be divisible by 4 for position embeddings, got {dim}")
        self.frequency_dim = checks.positive_int("frequency_dim", frequency_dim)
        if frequency_dim % 2:
            raise ValueError(f"frequency_dim must be an even integer >= 2, got {frequency_dim}")
        self.attention = checks.one_of("attention", attention, ATTENTIONS)
        self.time_scale = float(checks.positive("time_scale", time_scale))
        self.dim = dim
        pt, ph, pw = self.tubelet
        values = pt * ph * pw * self.in_channels  # values per tubelet
        self.patch_embed = nnx.Linear(  # a Conv3d of stride = kernel = tubelet (ViViT)
            values,
            dim,
            kernel_init=nnx.initializers.xavier_uniform(),
            bias_init=nnx.initializers.zeros_init(),
            rngs=rngs,
        )
        self.time_mlp = MLP(self.frequency_dim, [dim], dim, rngs=rngs)  # Linear, SiLU, Linear

        def block() -> AdaLNZeroBlock:
            return AdaLNZeroBlock(dim, num_heads, dim, mlp_ratio=mlp_ratio, rngs=rngs)

        factorised = self.attention == "factorised"
        self.blocks = nnx.List([block() for _ in range(depth)])  # spatial (or joint) blocks
        self.time_blocks = nnx.List([block() for _ in range(depth)] if factorised else [])
        self.final = FinalLayer(dim, dim, values, rngs=rngs)

    def __call__(self, x: jax.Array, t: jax.Array) -> jax.Array:
        """Predict ``eps`` for a batch of noisy videos.

        Args:
          x: (B, T, H, W, in_channels), ``T, H, W`` divisible by the tubelet.
          t: (B,) times (integer steps or floats), or a scalar for the whole batch.

        Returns:
          (B, T, H, W, in_channels) in ``x``'s dtype.
        """
        checks.shape("x", x, ("B", "T", "H", "W", self.in_channels))
        B, T, H, W, _ = x.shape
        gt, gh, gw = _grid("x", (T, H, W), self.tubelet)
        if jnp.ndim(t) > 1 or (jnp.ndim(t) == 1 and jnp.shape(t)[0] not in (1, B)):
            raise ValueError(f"t must be a scalar or have shape (B,) = ({B},), got {jnp.shape(t)}")
        t = jnp.broadcast_to(jnp.asarray(t), (B,)).astype(jnp.float32)  # (B,)
        cond = self.time_mlp(sinusoidal_embedding(t * self.time_scale, self.frequency_dim))
        tokens = self.patch_embed(tubelet_patchify(x, self.tubelet))  # (B, N, D)
        tokens = tokens.reshape(B, gt, gh * gw, self.dim)  # (B, Nt, Ns, D), time-major
        tokens = tokens + spacetime_position_embedding(gt, gh, gw, self.dim)[None]
        if self.attention == "factorised":
            for space_block, time_block in zip(self.blocks, self.time_blocks, strict=True):
                tokens = spatial_attention(space_block, tokens, cond)  # within each frame
                tokens = temporal_attention(time_block, tokens, cond)  # along each place
            tokens = tokens.reshape(B, gt * gh * gw, self.dim)  # (B, N, D)
        else:
            tokens = tokens.reshape(B, gt * gh * gw, self.dim)  # (B, N, D)
            for block in self.blocks:
                tokens = block(tokens, cond)  # every token attends to every token
        out = self.final(tokens, cond)  # (B, N, pt ph pw C)
        return tubelet_unpatchify(out, self.tubelet, (T, H, W)).astype(x.dtype)
