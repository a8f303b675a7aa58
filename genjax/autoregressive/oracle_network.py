"""NumPy-only (float64) twins of the autoregressive networks' math.

Written from the equations, with explicit loops where the papers state a sum, so that
they share no code path with the JAX versions (einsum, lax.conv, masked kernels):

* scaled dot-product attention with a boolean mask (Vaswani et al. 2017, eq. 1), per
  batch row and head, removed keys dropped from the softmax by selection;
* multi-head attention from its projection matrices (sec. 3.2.2);
* masked 2-D convolutions (van den Oord et al. 2016a): the masks stated as "the input
  pixel comes before the output pixel in raster order", not as kernel patterns;
* the gated PixelCNN layer with vertical and horizontal stacks (van den Oord et al. 2016b,
  fig. 2) and the whole gated / plain PixelCNN;
* WaveNet's dilated causal convolution and gated residual stack (van den Oord et al. 2016c);
* the categorical negative log-likelihood with a mask.

Imports NumPy and the standard library only.
"""

from __future__ import annotations

import math

import numpy as np


def causal_mask(length: int) -> np.ndarray:
    """(L, L) bool, True where key j <= query i."""
    return np.array([[j <= i for j in range(length)] for i in range(length)], dtype=bool)


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, float64."""
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask=None) -> np.ndarray:
    """softmax(q k^T / sqrt(d_k)) v for each batch row and head.

    Args:
      q: (B, L, H, d_k); k: (B, S, H, d_k); v: (B, S, H, d_v).
      mask: bool broadcastable to (B, H, L, S), True = may attend, or None.

    Returns:
      (B, L, H, d_v). A query whose keys are all removed averages every value uniformly.
    """
    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    B, L, H, d = q.shape
    S = k.shape[1]
    allowed = (np.ones((B, H, L, S), bool) if mask is None
               else np.broadcast_to(np.asarray(mask, bool), (B, H, L, S)))
    out = np.zeros((B, L, H, v.shape[-1]))
    for b in range(B):
        for h in range(H):
            for i in range(L):
                keep = [s for s in range(S) if allowed[b, h, i, s]]
                if keep:
                    scores = np.array([q[b, i, h] @ k[b, s, h] for s in keep]) / math.sqrt(d)
                    w = softmax(scores)
                else:  # no key allowed: equal weights on all of them
                    keep = list(range(S))
                    w = np.full(S, 1.0 / S)
                out[b, i, h] = sum(w[n] * v[b, s, h] for n, s in enumerate(keep))
    return out


def multi_head_attention(x, context, wq, bq, wkv, bkv, wo, bo, num_heads, mask=None):
    """MultiHead(x, c) = concat_h(attention(x W^Q_h, c W^K_h, c W^V_h)) W^O (+ biases).

    Args:
      x: (B, L, D); context: (B, S, Dc) (x itself for self-attention).
      wq: (D, D), bq: (D,); wkv: (Dc, 2D) = [W^K | W^V], bkv: (2D,); wo: (D, D), bo: (D,).
      num_heads: H, dividing D.
      mask: as in :func:`attention`.

    Returns:
      (B, L, D).
    """
    x, context = np.asarray(x, np.float64), np.asarray(context, np.float64)
    B, L, D = x.shape
    S = context.shape[1]
    d = D // num_heads
    q = x @ wq + bq
    kv = context @ wkv + bkv
    k, v = kv[..., :D], kv[..., D:]
    heads = attention(q.reshape(B, L, num_heads, d), k.reshape(B, S, num_heads, d),
                      v.reshape(B, S, num_heads, d), mask)
    return heads.reshape(B, L, D) @ wo + bo


# --- masked convolutions -----------------------------------------------------------------


def _allowed(mask_type: str, i: int, j: int, r: int, s: int) -> bool:
    """May input pixel (r, s) feed output pixel (i, j)? (raster order: row, then column)."""
    before = r < i or (r == i and s < j)
    if mask_type == "A":
        return before
    if mask_type == "B":
        return before or (r, s) == (i, j)
    if mask_type == "vertical":
        return r <= i
    if mask_type == "horizontal_A":
        return r == i and s < j
    if mask_type == "horizontal_B":
        return r == i and s <= j
    raise ValueError(f"unknown mask_type {mask_type!r}")


def masked_conv2d(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, mask_type: str
                  ) -> np.ndarray:
    """y[b, i, j] = bias + sum over allowed (r, s) in the k x k window of
    kernel[r - i + c, s - j + c] . x[b, r, s]   (zero padding outside the image).

    Args:
      x: (B, H, W, C_in); kernel: (k, k, C_in, C_out) (cross-correlation, centre c = k // 2);
      bias: (C_out,); mask_type: "A", "B", "vertical", "horizontal_A" or "horizontal_B".

    Returns:
      (B, H, W, C_out).
    """
    x, kernel = np.asarray(x, np.float64), np.asarray(kernel, np.float64)
    B, H, W, _ = x.shape
    k = kernel.shape[0]
    c = k // 2
    y = np.zeros((B, H, W, kernel.shape[-1])) + np.asarray(bias, np.float64)
    for i in range(H):
        for j in range(W):
            for r in range(max(0, i - c), min(H, i + c + 1)):
                for s in range(max(0, j - c), min(W, j + c + 1)):
                    if _allowed(mask_type, i, j, r, s):
                        y[:, i, j] += x[:, r, s] @ kernel[r - i + c, s - j + c]
    return y


def gate(features: np.ndarray) -> np.ndarray:
    """tanh(f) * sigmoid(g) with [f, g] the two halves of the last axis (2016b, eq. 2)."""
    half = features.shape[-1] // 2
    f, g = features[..., :half], features[..., half:]
    return np.tanh(f) / (1.0 + np.exp(-g))


def gated_layer(v, h, layer: dict, first: bool):
    """One gated PixelCNN layer (2016b, fig. 2).

    ``layer`` holds numpy arrays: ``v_kernel, v_bias`` (vertical conv), ``h_kernel,
    h_bias`` (horizontal conv), ``link_w, link_b`` (1x1 vertical -> horizontal, (2F, 2F)),
    ``out_w, out_b`` (1x1 after the horizontal gate, (F, F)).

    The vertical features at row i - 1 join the horizontal stack at row i.
    """
    v_feat = masked_conv2d(v, layer["v_kernel"], layer["v_bias"], "vertical")
    above = np.zeros_like(v_feat)
    above[:, 1:] = v_feat[:, :-1]  # row i gets the vertical features of row i - 1
    h_feat = (masked_conv2d(h, layer["h_kernel"], layer["h_bias"],
                            "horizontal_A" if first else "horizontal_B")
              + above @ layer["link_w"] + layer["link_b"])
    h_new = gate(h_feat) @ layer["out_w"] + layer["out_b"]
    if not first:
        h_new = h + h_new
    return gate(v_feat), h_new


def _relu(x):
    return np.maximum(x, 0.0)


def read_out(x, head: dict):
    """logits = W_2 ReLU(W_1 ReLU(x) + b_1) + b_2 (1x1 layers)."""
    return _relu(_relu(x) @ head["hidden_w"] + head["hidden_b"]) @ head["out_w"] + head["out_b"]


def gated_pixelcnn(x, layers: list[dict], head: dict) -> np.ndarray:
    """Gated PixelCNN: v = h = x, the gated layers, the read-out of h: (B,H,W,1) -> (B,H,W,K)."""
    v = h = np.asarray(x, np.float64)
    for n, layer in enumerate(layers):
        v, h = gated_layer(v, h, layer, first=n == 0)
    return read_out(h, head)


def pixelcnn(x, first: dict, layers: list[dict], head: dict) -> np.ndarray:
    """The plain PixelCNN: ReLU(conv_A), residual ReLU(conv_B) layers, the read-out."""
    h = _relu(masked_conv2d(x, first["kernel"], first["bias"], "A"))
    for layer in layers:
        h = h + _relu(masked_conv2d(h, layer["kernel"], layer["bias"], "B"))
    return read_out(h, head)


# --- WaveNet -------------------------------------------------------------------------------


def causal_conv1d(x: np.ndarray, w: np.ndarray, b: np.ndarray, dilation: int) -> np.ndarray:
    """y_t = W_0 x_{t-d} + W_1 x_t + b with x_{t-d} = 0 for t < d.

    Args:
      x: (B, T, C_in); w: (2 C_in, C_out) = [W_0; W_1]; b: (C_out,); dilation: d.
    """
    x = np.asarray(x, np.float64)
    B, T, C = x.shape
    w0, w1 = w[:C], w[C:]
    y = np.zeros((B, T, w.shape[1]))
    for t in range(T):
        y[:, t] = x[:, t] @ w1 + b
        if t - dilation >= 0:
            y[:, t] += x[:, t - dilation] @ w0
    return y


def wavenet(x, first: dict, layers: list[dict], head: dict) -> np.ndarray:
    """WaveNet logits of x_t given x_{<t}: (B, T, C) -> (B, T, K).

    ``first``: ``w, b`` of the width-2 first convolution, applied to x delayed by one step;
    ``layers``: per layer ``w, b, dilation`` (filter + gate conv), ``res_w, res_b``,
    ``skip_w, skip_b``; ``head``: as in :func:`read_out`.
    """
    x = np.asarray(x, np.float64)
    delayed = np.zeros_like(x)
    delayed[:, 1:] = x[:, :-1]  # x_{t-1}
    h = causal_conv1d(delayed, first["w"], first["b"], 1)
    skips = 0.0
    for layer in layers:
        z = gate(causal_conv1d(h, layer["w"], layer["b"], layer["dilation"]))
        h = h + z @ layer["res_w"] + layer["res_b"]
        skips = skips + z @ layer["skip_w"] + layer["skip_b"]
    return read_out(skips, head)


# --- likelihoods ---------------------------------------------------------------------------


def categorical_nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """-log softmax(logits)[target], elementwise: logits (..., K), targets (...) -> (...)."""
    logits = np.asarray(logits, np.float64)
    flat = logits.reshape(-1, logits.shape[-1])
    t = np.asarray(targets).reshape(-1)
    out = np.empty(len(t))
    for n in range(len(t)):
        m = flat[n].max()
        out[n] = m + math.log(sum(math.exp(z - m) for z in flat[n])) - flat[n, t[n]]
    return out.reshape(np.shape(targets))


def next_token_nll(logits: np.ndarray, tokens: np.ndarray, mask=None) -> float:
    """Mean over counted targets of -log p(x_{t+1} | x_{<=t}).

    Args:
      logits: (B, L, V) from the inputs tokens[:, :-1]; tokens: (B, L + 1);
      mask: (B, L + 1) 0/1, which tokens count as targets (column 0 is never a target).
    """
    nll = categorical_nll(logits, np.asarray(tokens)[:, 1:])
    w = np.ones(nll.shape) if mask is None else np.asarray(mask, np.float64)[:, 1:]
    return float((nll * w).sum() / max(w.sum(), 1.0))
