"""NumPy float64 oracle of the video diffusion transformer (:class:`genjax.nn.VideoDiT`).

Written from the equations of Peebles & Xie (2023, sec. 3.2: patchify, adaLN-Zero blocks,
final layer), Vaswani et al. (2017, eq. 1 and sec. 3.2.2: multi-head attention) and ViViT /
Latte (tubelets; factorised space-time attention, Arnab et al. 2021, Ma et al. 2024), one
example and one token sequence at a time, with explicit loops where the JAX code reshapes.
It imports NumPy and the standard library only (no jax, no genjax).

The weights come as a plain dict (``x @ W + b`` convention, ``W`` of shape (in, out))::

    {"patch_embed": (W (P, D), b (D,)),
     "time_mlp": [(W1 (F, D), b1), (W2 (D, D), b2)],
     "blocks": [block, ...],                      # spatial blocks (or the joint blocks)
     "time_blocks": [block, ...],                 # temporal blocks; [] for joint attention
     "final": {"adaln": (W (D, 2D), b), "linear": (W (D, P), b)}}
    block = {"adaln": (W (D, 6D), b), "query": (W (D, D), b), "key_value": (W (D, 2D), b),
             "out": (W (D, D), b), "mlp": [(W1 (D, rD), b1), (W2 (rD, D), b2)]}

with ``P = pt ph pw C`` values per tubelet and ``F`` the size of the sinusoidal time features.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "tubelet_patchify",
    "tubelet_unpatchify",
    "sinusoidal",
    "position_embedding",
    "layer_norm",
    "multi_head_attention",
    "adaln_zero_block",
    "video_dit_forward",
    "params_from_video_dit",
]

LN_EPS = 1e-6  # DiT's LayerNorm epsilon
MAX_PERIOD = 10_000.0  # Vaswani et al. sec. 3.5


def tubelet_patchify(x: np.ndarray, tubelet: tuple[int, int, int]) -> np.ndarray:
    """(B, T, H, W, C) -> (B, Nt Ns, pt ph pw C), token ``(i, j, k)`` = tubelet at
    ``x[i pt : (i+1) pt, j ph : (j+1) ph, k pw : (k+1) pw]`` flattened in (u, v, w, c) order."""
    x = np.asarray(x, np.float64)
    pt, ph, pw = tubelet
    B, T, H, W, C = x.shape
    gt, gh, gw = T // pt, H // ph, W // pw
    out = np.zeros((B, gt * gh * gw, pt * ph * pw * C))
    for i in range(gt):
        for j in range(gh):
            for k in range(gw):
                block = x[:, i * pt : (i + 1) * pt, j * ph : (j + 1) * ph, k * pw : (k + 1) * pw, :]
                out[:, (i * gh + j) * gw + k] = block.reshape(B, -1)  # C-order: u, v, w, c
    return out


def tubelet_unpatchify(
    tokens: np.ndarray, tubelet: tuple[int, int, int], video_shape: tuple[int, int, int]
) -> np.ndarray:
    """The inverse of :func:`tubelet_patchify`: put each token's values back in its tubelet."""
    tokens = np.asarray(tokens, np.float64)
    pt, ph, pw = tubelet
    T, H, W = video_shape
    B = tokens.shape[0]
    C = tokens.shape[-1] // (pt * ph * pw)
    gh, gw = H // ph, W // pw
    x = np.zeros((B, T, H, W, C))
    for i in range(T // pt):
        for j in range(gh):
            for k in range(gw):
                x[:, i * pt : (i + 1) * pt, j * ph : (j + 1) * ph, k * pw : (k + 1) * pw, :] = (
                    tokens[:, (i * gh + j) * gw + k].reshape(B, pt, ph, pw, C)
                )
    return x


def sinusoidal(position: float, dim: int) -> np.ndarray:
    """``[sin(p w_0) .. sin(p w_{h-1}), cos(p w_0) .. cos(p w_{h-1})]``, ``w_k =
    10000^(-k/h)``, ``h = dim/2`` (Vaswani et al. sec. 3.5, sines first as DDPM's code)."""
    half = dim // 2
    w = np.array([MAX_PERIOD ** (-k / half) for k in range(half)])
    return np.concatenate([np.sin(position * w), np.cos(position * w)])


def position_embedding(grid: tuple[int, int, int], dim: int) -> np.ndarray:
    """(Nt, Ns, D): ``[sinusoidal(row, D/2), sinusoidal(col, D/2)] + sinusoidal(time, D)``."""
    gt, gh, gw = grid
    pos = np.zeros((gt, gh * gw, dim))
    for i in range(gt):
        for j in range(gh):
            for k in range(gw):
                space = np.concatenate([sinusoidal(j, dim // 2), sinusoidal(k, dim // 2)])
                pos[i, j * gw + k] = space + sinusoidal(i, dim)
    return pos


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))  # x sigmoid(x)


def _gelu(x: np.ndarray) -> np.ndarray:
    # GELU, tanh form (Hendrycks & Gimpel 2016, sec. 2), as DiT's MLP
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def _affine(x: np.ndarray, wb) -> np.ndarray:
    w, b = wb
    return x @ np.asarray(w, np.float64) + np.asarray(b, np.float64)


def layer_norm(x: np.ndarray) -> np.ndarray:
    """LayerNorm without scale or bias over the last axis: ``(x - mean) / sqrt(var + 1e-6)``."""
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + LN_EPS)


def multi_head_attention(h: np.ndarray, block: dict, num_heads: int) -> np.ndarray:
    """Self-attention of one sequence ``h (L, D)``:
    ``concat_h softmax(Q_h K_h^T / sqrt(d)) V_h W_O`` (Vaswani et al. eq. 1, sec. 3.2.2)."""
    L, D = h.shape
    d = D // num_heads
    q = _affine(h, block["query"])  # (L, D)
    kv = _affine(h, block["key_value"])  # (L, 2D): [K | V]
    k, v = kv[:, :D], kv[:, D:]
    heads = []
    for n in range(num_heads):
        cols = slice(n * d, (n + 1) * d)
        scores = q[:, cols] @ k[:, cols].T / math.sqrt(d)  # (L, L)
        scores = scores - scores.max(axis=1, keepdims=True)  # softmax is shift invariant
        weights = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
        heads.append(weights @ v[:, cols])  # (L, d)
    return _affine(np.concatenate(heads, axis=1), block["out"])  # (L, D)


def adaln_zero_block(h: np.ndarray, c: np.ndarray, block: dict, num_heads: int) -> np.ndarray:
    """One DiT block on one sequence ``h (L, D)`` with condition ``c (D,)`` (sec. 3.2):

    (a1, s1, g1, a2, s2, g2) = W SiLU(c) + b
    h = h + g1 MHA(LN(h) (1 + s1) + a1);  h = h + g2 MLP(LN(h) (1 + s2) + a2)
    """
    D = h.shape[1]
    mods = _affine(_silu(c), block["adaln"])  # (6D,)
    a1, s1, g1, a2, s2, g2 = (mods[n * D : (n + 1) * D] for n in range(6))
    h = h + g1 * multi_head_attention(layer_norm(h) * (1.0 + s1) + a1, block, num_heads)
    m = layer_norm(h) * (1.0 + s2) + a2
    (w1, b1), (w2, b2) = block["mlp"]
    return h + g2 * _affine(_gelu(_affine(m, (w1, b1))), (w2, b2))


def video_dit_forward(
    params: dict,
    x: np.ndarray,
    t: np.ndarray,
    *,
    tubelet: tuple[int, int, int],
    num_heads: int,
    attention: str = "factorised",
    time_scale: float = 1.0,
) -> np.ndarray:
    """The network, one video at a time: ``x (B, T, H, W, C), t (B,) -> eps (B, T, H, W, C)``.

    Factorised attention runs each spatial block on the ``Ns`` tokens of every time slot
    separately, then each temporal block on the ``Nt`` tokens of every place; joint attention
    runs each block on all ``Nt Ns`` tokens.
    """
    x = np.asarray(x, np.float64)
    B, T, H, W, _ = x.shape
    pt, ph, pw = tubelet
    grid = (T // pt, H // ph, W // pw)
    gt, ns = grid[0], grid[1] * grid[2]
    D = np.asarray(params["patch_embed"][1]).shape[0]
    freq = np.asarray(params["time_mlp"][0][0]).shape[0]
    pos = position_embedding(grid, D)  # (Nt, Ns, D)
    tokens = _affine(tubelet_patchify(x, tubelet), params["patch_embed"])  # (B, N, D)
    out = np.zeros_like(x)
    for b in range(B):
        (w1, b1), (w2, b2) = params["time_mlp"]
        e = sinusoidal(float(t[b]) * time_scale, freq)  # (F,)
        c = _affine(_silu(_affine(e, (w1, b1))), (w2, b2))  # (D,)
        h = tokens[b].reshape(gt, ns, D) + pos  # token (i, s) at row i, column s
        if attention == "factorised":
            for space, time in zip(params["blocks"], params["time_blocks"], strict=True):
                h = np.stack([adaln_zero_block(h[i], c, space, num_heads) for i in range(gt)])
                h = np.stack(
                    [adaln_zero_block(h[:, s], c, time, num_heads) for s in range(ns)], axis=1
                )
        else:
            flat = h.reshape(gt * ns, D)
            for block in params["blocks"]:
                flat = adaln_zero_block(flat, c, block, num_heads)
            h = flat.reshape(gt, ns, D)
        final = params["final"]
        shift_scale = _affine(_silu(c), final["adaln"])  # (2D,)
        shift, scale = shift_scale[:D], shift_scale[D:]
        y = _affine(layer_norm(h.reshape(gt * ns, D)) * (1.0 + scale) + shift, final["linear"])
        out[b] = tubelet_unpatchify(y[None], tubelet, (T, H, W))[0]
    return out


def params_from_video_dit(net) -> dict:
    """The weights of a ``genjax.nn.VideoDiT`` in this oracle's layout (float64 NumPy).

    Reads attributes only (no JAX import): each linear map's ``kernel`` (d_in, d_out) and
    ``bias``; the attention's fused ``key_value`` kernel holds ``[W^K | W^V]`` side by side.
    """

    def wb(layer) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(layer.kernel[...], np.float64), np.asarray(layer.bias[...], np.float64)

    def block(b) -> dict:
        return {
            "adaln": wb(b.adaln),
            "query": wb(b.attn.query),
            "key_value": wb(b.attn.key_value),
            "out": wb(b.attn.out),
            "mlp": [wb(layer) for layer in b.mlp.layers],
        }

    return {
        "patch_embed": wb(net.patch_embed),
        "time_mlp": [wb(layer) for layer in net.time_mlp.layers],
        "blocks": [block(b) for b in net.blocks],
        "time_blocks": [block(b) for b in net.time_blocks],
        "final": {"adaln": wb(net.final.adaln), "linear": wb(net.final.linear)},
    }
