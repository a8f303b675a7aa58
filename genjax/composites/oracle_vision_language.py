"""NumPy float64 oracle of the vision-language pieces: the prefix-LM attention, the
projector, and CLIP guidance's spherical distance loss.

Written from the equations, not from the JAX code (no jax import; the tests hold
:mod:`genjax.composites.captioner` and :mod:`genjax.composites.clip_guided` to it).

* Prefix-LM mask (Raffel et al. 2020, sec. 3.2.1; PaliGemma, Beyer et al. 2024, sec. 3.2):
  ``M[i, j] = 1`` iff ``j < P`` or ``j <= i`` -- the ``P`` prefix (image) tokens attend to
  each other in both directions, and every text token to the whole prefix and to the
  text before it.
* Multi-head self-attention under a mask (Vaswani et al. 2017, eq. 1 and sec. 3.2.2)::

      Q = x W_q + b_q,  [K V] = x W_kv + b_kv      split in H heads of size d = D / H
      A_h = softmax_j(Q_h K_h^T / sqrt(d) masked)  (masked scores removed)
      out = concat_h(A_h V_h) W_o + b_o

* The projector of LLaVA-1.5 (Liu et al. 2024, sec. 3.1): a two-layer MLP with GELU,
  ``H = GELU(F W_1 + b_1) W_2 + b_2`` for patch features ``F (P, C)``; the GELU is the
  tanh form ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (Hendrycks & Gimpel 2016,
  sec. 2), the one flax's ``nnx.gelu`` computes by default.
* CLIP guidance's loss (Crowson et al. 2022, sec. 3): the squared spherical (great-circle)
  distance between the normalised embeddings ``u^ = u / |u|``, ``v^ = v / |v|``::

      d(u, v) = 2 arcsin(|u^ - v^| / 2)^2 = theta^2 / 2,   theta = angle(u, v)

  and its gradient in ``u`` by the chain rule: with ``c = |u^ - v^|``, ``a = arcsin(c/2)``,
  ``dd/dc = 2 a / sqrt(1 - c^2/4)``, ``dc/du^ = (u^ - v^) / c`` and
  ``du^/du = (I - u^ u^T) / |u|``.

References:
  Raffel et al., "Exploring the Limits of Transfer Learning with a Unified Text-to-Text
    Transformer", JMLR 2020.
  Beyer et al., "PaliGemma: A versatile 3B VLM for transfer", arXiv:2407.07726, 2024.
  Liu, Li, Li, Lee, "Improved Baselines with Visual Instruction Tuning" (LLaVA-1.5),
    CVPR 2024.
  Vaswani et al., "Attention Is All You Need", NeurIPS 2017.
  Hendrycks & Gimpel, "Gaussian Error Linear Units (GELUs)", arXiv:1606.08415, 2016.
  Crowson et al., "VQGAN-CLIP: Open Domain Image Generation and Editing with Natural
    Language Guidance", ECCV 2022.
"""

from __future__ import annotations

import numpy as np


def prefix_lm_mask(length: int, prefix_length: int) -> np.ndarray:
    """``(L, L)`` bool: ``M[i, j] = (j < P) or (j <= i)``."""
    M = np.zeros((length, length), bool)
    for i in range(length):
        for j in range(length):
            M[i, j] = j < prefix_length or j <= i
    return M


def masked_self_attention(x: np.ndarray, w_q: np.ndarray, b_q: np.ndarray, w_kv: np.ndarray,
                          b_kv: np.ndarray, w_o: np.ndarray, b_o: np.ndarray, num_heads: int,
                          mask: np.ndarray) -> np.ndarray:
    """Multi-head self-attention of one sequence under a boolean mask.

    Args:
      x: (L, D) tokens.
      w_q: (D, D), b_q: (D,); w_kv: (D, 2D) (keys then values), b_kv: (2D,);
      w_o: (D, D), b_o: (D,).
      num_heads: H, dividing D.
      mask: (L, L) bool, True where query i may attend to key j (every row has a True).

    Returns:
      (L, D).
    """
    x = np.asarray(x, np.float64)
    L, D = x.shape
    d = D // num_heads
    q = x @ w_q + b_q  # (L, D)
    kv = x @ w_kv + b_kv  # (L, 2D)
    k, v = kv[:, :D], kv[:, D:]
    heads = []
    for h in range(num_heads):
        sl = slice(h * d, (h + 1) * d)
        scores = q[:, sl] @ k[:, sl].T / np.sqrt(d)  # (L, L)
        out = np.zeros((L, d))
        for i in range(L):
            allowed = np.flatnonzero(mask[i])
            s = scores[i, allowed]
            w = np.exp(s - s.max())
            w /= w.sum()  # softmax over the allowed keys only
            out[i] = w @ v[allowed, sl]
        heads.append(out)
    return np.concatenate(heads, axis=1) @ w_o + b_o


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``."""
    x = np.asarray(x, np.float64)
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def projector(features: np.ndarray, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray,
              b2: np.ndarray) -> np.ndarray:
    """LLaVA-1.5's projector ``GELU(F W_1 + b_1) W_2 + b_2``: (..., C) -> (..., D)."""
    return gelu_tanh(np.asarray(features, np.float64) @ w1 + b1) @ w2 + b2


def spherical_distance(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``2 arcsin(|u^ - v^| / 2)^2`` row by row: (n, E), (n, E) -> (n,)."""
    u = np.asarray(u, np.float64)
    v = np.asarray(v, np.float64)
    uh = u / np.linalg.norm(u, axis=-1, keepdims=True)
    vh = v / np.linalg.norm(v, axis=-1, keepdims=True)
    c = np.linalg.norm(uh - vh, axis=-1)
    return 2.0 * np.arcsin(c / 2.0) ** 2


def spherical_distance_grad_u(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``d/du`` of :func:`spherical_distance` by the chain rule (module docstring), (n, E)."""
    u = np.asarray(u, np.float64)
    v = np.asarray(v, np.float64)
    nu = np.linalg.norm(u, axis=-1, keepdims=True)
    uh = u / nu
    vh = v / np.linalg.norm(v, axis=-1, keepdims=True)
    diff = uh - vh
    c = np.linalg.norm(diff, axis=-1, keepdims=True)
    a = np.arcsin(c / 2.0)
    dd_dc = 2.0 * a / np.sqrt(1.0 - c**2 / 4.0)  # d/dc [2 arcsin(c/2)^2]
    g_uh = dd_dc * diff / c  # (n, E) gradient in u^
    # pull back through u^ = u / |u|: (I - u^ u^T) / |u|
    return (g_uh - np.sum(g_uh * uh, axis=-1, keepdims=True) * uh) / nu
