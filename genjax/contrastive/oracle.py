"""NumPy-only float64 oracle of the contrastive family's math.

Written from the papers' equations, not from the JAX code:

* CLIP's symmetric InfoNCE loss (Radford et al. 2021, Figure 3's pseudocode; the
  InfoNCE / multi-class N-pair objective of van den Oord et al. 2018 and Sohn 2016), with
  its analytic gradient with respect to both embeddings and the logit scale;
* the pairwise sigmoid loss of SigLIP (Zhai et al. 2023, Algorithm 1);
* zero-shot classification by cosine similarity to (ensembled) class text embeddings
  (Radford et al. 2021, sec. 3.1.2; prompt ensembling, sec. 3.1.4).

Imports numpy and the standard library only.

References:
  Radford et al., "Learning Transferable Visual Models From Natural Language
    Supervision", ICML 2021.
  Zhai, Mustafa, Kolesnikov, Beyer, "Sigmoid Loss for Language Image Pre-Training",
    ICCV 2023.
  van den Oord, Li, Vinyals, "Representation Learning with Contrastive Predictive
    Coding", 2018.
"""

from __future__ import annotations

import numpy as np


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows of ``x (n, d)`` divided by their Euclidean norms (float64)."""
    x = np.asarray(x, np.float64)
    # Divide by the largest entry first so that squaring cannot overflow.
    big = np.max(np.abs(x), axis=-1, keepdims=True)
    y = x / np.where(big > 0, big, 1.0)
    norm = np.sqrt(np.sum(y * y, axis=-1, keepdims=True))
    return y / np.where(norm > 0, norm, 1.0)


def _log_softmax(z: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(z, axis=axis, keepdims=True)
    return z - m - np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))


def clip_logits(image_emb: np.ndarray, text_emb: np.ndarray, logit_scale: float) -> np.ndarray:
    """``L[i, j] = s <u_i, v_j>`` for unit rows ``u = image/|image|``, ``v = text/|text|``."""
    u = l2_normalize(image_emb)
    v = l2_normalize(text_emb)
    return float(logit_scale) * (u @ v.T)


def clip_loss_terms(
    image_emb: np.ndarray, text_emb: np.ndarray, logit_scale: float
) -> tuple[float, float]:
    """(image-to-text, text-to-image) InfoNCE terms, each a mean over the batch.

        l_i2t = -1/N sum_i log( exp(L_ii) / sum_j exp(L_ij) )
        l_t2i = -1/N sum_j log( exp(L_jj) / sum_i exp(L_ij) )
    """
    L = clip_logits(image_emb, text_emb, logit_scale)
    n = L.shape[0]
    i2t = -np.trace(_log_softmax(L, axis=1)) / n  # each image picks its caption (rows)
    t2i = -np.trace(_log_softmax(L, axis=0)) / n  # each caption picks its image (columns)
    return float(i2t), float(t2i)


def clip_loss(image_emb: np.ndarray, text_emb: np.ndarray, logit_scale: float) -> float:
    """Symmetric InfoNCE: ``(l_i2t + l_t2i) / 2`` (Radford et al. 2021, Figure 3)."""
    i2t, t2i = clip_loss_terms(image_emb, text_emb, logit_scale)
    return 0.5 * (i2t + t2i)


def _normalize_vjp(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Pull ``g = dloss/du`` back through ``u = x / |x|``: ``(g - u <u, g>) / |x|``."""
    x = np.asarray(x, np.float64)
    norm = np.sqrt(np.sum(x * x, axis=-1, keepdims=True))
    u = x / norm
    return (g - u * np.sum(u * g, axis=-1, keepdims=True)) / norm


def clip_loss_grad(
    image_emb: np.ndarray, text_emb: np.ndarray, logit_scale: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """Analytic gradient of :func:`clip_loss` in ``(image_emb, text_emb, logit_scale)``.

    With ``P = softmax`` of ``L`` over rows and ``Q = softmax`` over columns,
    ``dloss/dL = (P + Q - 2 I) / (2N)`` =: G. Then ``dloss/du = s G v``,
    ``dloss/dv = s G^T u``, ``dloss/ds = sum(G * u v^T)``, and each is pulled back
    through the normalisation by :func:`_normalize_vjp`.
    """
    u = l2_normalize(image_emb)
    v = l2_normalize(text_emb)
    s = float(logit_scale)
    cos = u @ v.T  # (N, N)
    L = s * cos
    n = L.shape[0]
    P = np.exp(_log_softmax(L, axis=1))
    Q = np.exp(_log_softmax(L, axis=0))
    G = (P + Q - 2.0 * np.eye(n)) / (2.0 * n)
    g_u = s * G @ v
    g_v = s * G.T @ u
    g_s = float(np.sum(G * cos))
    return _normalize_vjp(image_emb, g_u), _normalize_vjp(text_emb, g_v), g_s


def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    # log sigma(z) = -log(1 + exp(-z)), written to stay finite for |z| large.
    return -np.logaddexp(0.0, -z)


def sigmoid_loss(
    image_emb: np.ndarray, text_emb: np.ndarray, logit_scale: float, logit_bias: float
) -> float:
    """SigLIP (Zhai et al. 2023, Algorithm 1), mean over the N images:

        loss = -1/N sum_i sum_j log sigma( z_ij (t <u_i, v_j> + b) ),
        z_ij = +1 if i == j else -1.
    """
    u = l2_normalize(image_emb)
    v = l2_normalize(text_emb)
    n = u.shape[0]
    logits = float(logit_scale) * (u @ v.T) + float(logit_bias)
    z = 2.0 * np.eye(n) - 1.0
    return float(-np.sum(_log_sigmoid(z * logits)) / n)


def ensemble_class_embeddings(class_text_emb: np.ndarray) -> np.ndarray:
    """``(K, T, D)`` per-template embeddings -> ``(K, D)``: normalise, average, normalise."""
    e = np.asarray(class_text_emb, np.float64)
    if e.ndim == 2:
        return l2_normalize(e)
    k, t, d = e.shape
    units = l2_normalize(e.reshape(k * t, d)).reshape(k, t, d)
    return l2_normalize(units.mean(axis=1))


def zero_shot_logits(
    image_emb: np.ndarray, class_text_emb: np.ndarray, logit_scale: float = 1.0
) -> np.ndarray:
    """``(n, K)`` scaled cosine similarities of images to (ensembled) class embeddings."""
    w = ensemble_class_embeddings(class_text_emb)
    return float(logit_scale) * (l2_normalize(image_emb) @ w.T)


def zero_shot_classify(image_emb: np.ndarray, class_text_emb: np.ndarray) -> np.ndarray:
    """``(n,)`` the class whose text embedding is most similar to each image."""
    return np.argmax(zero_shot_logits(image_emb, class_text_emb), axis=1)
