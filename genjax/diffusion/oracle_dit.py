"""NumPy-only float64 oracle of the diffusion transformer (Peebles & Xie 2023).

Written from the paper's equations (sec. 3.2 and Fig. 3) with loops over patches, tokens and
heads where the JAX network reshapes and contracts; it imports NumPy and the standard library
only. ``tests/nn/test_dit.py`` holds :class:`genjax.nn.DiT` to :func:`dit_forward`.

The forward pass, for images ``x (B, H, W, C)``, times ``t (B,)`` and labels ``y (B,)``:

    tokens_n = W_patch vec(patch_n(x)) + b_patch + pos_n        n = 0 .. N-1 (raster order)
    c = W_t2 SiLU(W_t1 emb(t * time_scale) + b_t1) + b_t2 [+ E[y]]
    per block:
      (s1, a1, g1, s2, a2, g2) = W_ada SiLU(c) + b_ada          six chunks of D
      tokens += g1 * MHA(LN(tokens) * (1 + a1) + s1)
      tokens += g2 * W_2 GELU_tanh(W_1 (LN(tokens) * (1 + a2) + s2) + b_1) + b_2
    final: (s, a) = W_fa SiLU(c) + b_fa;  out_n = W_o (LN(tokens_n) (1 + a) + s) + b_o
    image[b, i p + u, j p + v, ch] = out[b, i (W/p) + j, (u p + v) C_out + ch]

with ``emb(t) = [sin(t w_k), cos(t w_k)]``, ``w_k = 10000^(-k/half)`` and
``pos_{i (W/p) + j} = [emb(i; D/2), emb(j; D/2)]``; ``LN`` has no learned affine and eps 1e-6;
``GELU_tanh(u) = u/2 (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3)))`` (Hendrycks & Gimpel 2016).

Parameters are a plain dict (the test builds it from the network's weights)::

    {"patch": {"w": (p p C, D), "b": (D,)},
     "time": [{"w": (F, D), "b": (D,)}, {"w": (D, D), "b": (D,)}],
     "class": (K + 1, D) or None,
     "blocks": [{"ada": {...: (D, 6 D)}, "q", "k", "v", "o": {"w": (D, D), "b": (D,)},
                 "mlp1": {"w": (D, M), "b": (M,)}, "mlp2": {"w": (M, D), "b": (D,)}}, ...],
     "final": {"ada": {"w": (D, 2 D), "b": (2 D,)}, "out": {"w": (D, p p C_out), ...}}}

a linear map being ``u -> u @ w + b``.

References:
  Peebles, Xie, "Scalable Diffusion Models with Transformers", ICCV 2023.
  Vaswani et al., "Attention Is All You Need", NeurIPS 2017 (eq. 1; sec. 3.5).
  Ba, Kiros, Hinton, "Layer Normalization", 2016.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "patchify",
    "unpatchify",
    "timestep_embedding",
    "position_embedding_2d",
    "adaln_block",
    "final_layer",
    "dit_forward",
    "params_from_dit",
]

LN_EPS = 1e-6


def _affine(u: np.ndarray, layer: dict) -> np.ndarray:
    """u @ w + b for a (..., d_in) input."""
    return u @ np.asarray(layer["w"], np.float64) + np.asarray(layer["b"], np.float64)


def _silu(u: np.ndarray) -> np.ndarray:
    # SiLU(u) = u sigmoid(u) = u / (1 + e^{-u})
    return u / (1.0 + np.exp(-u))


def _gelu_tanh(u: np.ndarray) -> np.ndarray:
    # GELU(u) ~ u/2 (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3)))  (Hendrycks & Gimpel 2016)
    return 0.5 * u * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (u + 0.044715 * u**3)))


def _layer_norm(u: np.ndarray) -> np.ndarray:
    # LN(u) = (u - mean(u)) / sqrt(var(u) + eps), over the last axis, no learned affine
    mean = u.mean(axis=-1, keepdims=True)
    var = ((u - mean) ** 2).mean(axis=-1, keepdims=True)
    return (u - mean) / np.sqrt(var + LN_EPS)


def patchify(x: np.ndarray, p: int) -> np.ndarray:
    """tokens[b, i (W/p) + j, (u p + v) C + c] = x[b, i p + u, j p + v, c]; x (B, H, W, C)."""
    x = np.asarray(x)
    B, H, W, C = x.shape
    gh, gw = H // p, W // p
    out = np.zeros((B, gh * gw, p * p * C), x.dtype)
    for i in range(gh):
        for j in range(gw):
            for u in range(p):
                for v in range(p):
                    out[:, i * gw + j, (u * p + v) * C : (u * p + v + 1) * C] = x[
                        :, i * p + u, j * p + v, :
                    ]
    return out


def unpatchify(tokens: np.ndarray, p: int, H: int, W: int) -> np.ndarray:
    """The inverse map: image[b, i p + u, j p + v, c] = tokens[b, i (W/p) + j, (u p + v) C + c]."""
    tokens = np.asarray(tokens)
    B, _, F = tokens.shape
    C = F // (p * p)
    gw = W // p
    out = np.zeros((B, H, W, C), tokens.dtype)
    for r in range(H):
        for s in range(W):
            i, u = divmod(r, p)
            j, v = divmod(s, p)
            out[:, r, s, :] = tokens[:, i * gw + j, (u * p + v) * C : (u * p + v + 1) * C]
    return out


def timestep_embedding(t: np.ndarray, dim: int, max_period: float = 10_000.0) -> np.ndarray:
    """emb(t)_k = sin(t w_k), emb(t)_{half + k} = cos(t w_k), w_k = max_period^(-k/half)."""
    t = np.asarray(t, np.float64)
    half = dim // 2
    out = np.zeros((t.shape[0], dim))
    for k in range(half):
        w = max_period ** (-k / half)
        out[:, k] = np.sin(t * w)
        out[:, half + k] = np.cos(t * w)
    return out


def position_embedding_2d(gh: int, gw: int, dim: int) -> np.ndarray:
    """pos[i gw + j] = [emb(i; D/2), emb(j; D/2)], (gh gw, D)."""
    out = np.zeros((gh * gw, dim))
    for i in range(gh):
        for j in range(gw):
            out[i * gw + j, : dim // 2] = timestep_embedding(np.array([i]), dim // 2)[0]
            out[i * gw + j, dim // 2 :] = timestep_embedding(np.array([j]), dim // 2)[0]
    return out


def _attention(h: np.ndarray, block: dict, num_heads: int) -> np.ndarray:
    """MHA(h) = concat_heads(softmax(Q_h K_h^T / sqrt(d_k)) V_h) W_o + b_o; h (B, N, D)."""
    q, k, v = (_affine(h, block[name]) for name in ("q", "k", "v"))  # (B, N, D) each
    B, N, D = h.shape
    dk = D // num_heads
    heads = np.zeros((B, N, D))
    for b in range(B):
        for head in range(num_heads):
            sl = slice(head * dk, (head + 1) * dk)  # head h holds channels h dk .. (h+1) dk
            scores = q[b, :, sl] @ k[b, :, sl].T / math.sqrt(dk)  # (N, N)
            scores = scores - scores.max(axis=-1, keepdims=True)  # softmax is shift-invariant
            weights = np.exp(scores)
            weights /= weights.sum(axis=-1, keepdims=True)
            heads[b, :, sl] = weights @ v[b, :, sl]
    return _affine(heads, block["o"])


def adaln_block(tokens: np.ndarray, cond: np.ndarray, block: dict, num_heads: int) -> np.ndarray:
    """One adaLN-Zero block (Fig. 3 of Peebles & Xie): tokens (B, N, D), cond (B, Dc)."""
    tokens = np.asarray(tokens, np.float64)
    D = tokens.shape[-1]
    mods = _affine(_silu(np.asarray(cond, np.float64)), block["ada"])  # (B, 6 D)
    s1, a1, g1, s2, a2, g2 = (mods[:, None, m * D : (m + 1) * D] for m in range(6))
    h = _layer_norm(tokens) * (1.0 + a1) + s1
    tokens = tokens + g1 * _attention(h, block, num_heads)
    h = _layer_norm(tokens) * (1.0 + a2) + s2
    return tokens + g2 * _affine(_gelu_tanh(_affine(h, block["mlp1"])), block["mlp2"])


def final_layer(tokens: np.ndarray, cond: np.ndarray, final: dict) -> np.ndarray:
    """out = W_o (LN(tokens) (1 + a) + s) + b_o with (s, a) = W_fa SiLU(c) + b_fa."""
    tokens = np.asarray(tokens, np.float64)
    D = tokens.shape[-1]
    mods = _affine(_silu(np.asarray(cond, np.float64)), final["ada"])  # (B, 2 D)
    shift, scale = mods[:, None, :D], mods[:, None, D:]
    return _affine(_layer_norm(tokens) * (1.0 + scale) + shift, final["out"])


def dit_forward(
    params: dict,
    x: np.ndarray,
    t: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    patch_size: int,
    num_heads: int,
    frequency_dim: int,
    time_scale: float = 1.0,
    position_embedding: bool = True,
) -> np.ndarray:
    """The DiT forward pass of the module docstring, float64.

    Args:
      params: the dict of the module docstring.
      x: (B, H, W, C) images; t: (B,) times; labels: (B,) ints or None.
      patch_size, num_heads, frequency_dim, time_scale, position_embedding: as in
        :class:`genjax.nn.DiT`.

    Returns:
      (B, H, W, C_out) float64.
    """
    x = np.asarray(x, np.float64)
    B, H, W, _ = x.shape
    p = patch_size
    tokens = _affine(patchify(x, p), params["patch"])  # (B, N, D)
    D = tokens.shape[-1]
    if position_embedding:
        tokens = tokens + position_embedding_2d(H // p, W // p, D)[None]
    emb = timestep_embedding(np.asarray(t, np.float64) * time_scale, frequency_dim)
    cond = _affine(_silu(_affine(emb, params["time"][0])), params["time"][1])  # (B, D)
    if labels is not None:
        cond = cond + np.asarray(params["class"], np.float64)[np.asarray(labels)]
    for block in params["blocks"]:
        tokens = adaln_block(tokens, cond, block, num_heads)
    return unpatchify(final_layer(tokens, cond, params["final"]), p, H, W)


def params_from_dit(net) -> dict:
    """The weights of a ``genjax.nn.DiT`` in this oracle's layout, as float64 NumPy arrays.

    Reads attributes only (no JAX import): each linear map's ``kernel`` (d_in, d_out) and
    ``bias``; the attention's fused ``key_value`` kernel holds ``[W^K | W^V]`` side by side.
    """

    def lin(layer) -> dict:
        return {
            "w": np.asarray(layer.kernel[...], np.float64),
            "b": np.asarray(layer.bias[...], np.float64),
        }

    blocks = []
    for block in net.blocks:
        kv = lin(block.attn.key_value)  # (D, 2 D): keys then values
        D = kv["w"].shape[1] // 2
        blocks.append(
            {
                "ada": lin(block.adaln),
                "q": lin(block.attn.query),
                "k": {"w": kv["w"][:, :D], "b": kv["b"][:D]},
                "v": {"w": kv["w"][:, D:], "b": kv["b"][D:]},
                "o": lin(block.attn.out),
                "mlp1": lin(block.mlp.layers[0]),
                "mlp2": lin(block.mlp.layers[1]),
            }
        )
    table = None if net.class_embed is None else np.asarray(net.class_embed.embedding[...])
    return {
        "patch": lin(net.patch_embed),
        "time": [lin(layer) for layer in net.time_mlp.layers],
        "class": None if table is None else table.astype(np.float64),
        "blocks": blocks,
        "final": {"ada": lin(net.final.adaln), "out": lin(net.final.linear)},
    }
