"""Contrastive image-text objectives: CLIP's symmetric InfoNCE and SigLIP's sigmoid loss.

CLIP (Radford et al. 2021, Figure 3) embeds a batch of N images and their N captions,
normalises every embedding to unit length, and scores all N^2 pairs by scaled cosine
similarity:

    u_i = f(image_i) / |f(image_i)|,   v_j = g(text_j) / |g(text_j)|
    L_ij = s <u_i, v_j>                                    (s = exp(t), the logit scale)

Each image must pick out its own caption among the N (a softmax over row i) and each
caption its own image (a softmax over column j) -- the InfoNCE objective of van den Oord
et al. (2018) in both directions:

    l_i2t = -1/N sum_i log softmax_j(L_i.)_i
    l_t2i = -1/N sum_j log softmax_i(L_.j)_j
    loss  = (l_i2t + l_t2i) / 2

The temperature is learned as a log-scale ``t`` initialised to ``log(1/0.07)`` and clipped
so that ``s <= 100`` (Radford et al. 2021, sec. 2.5): :func:`clipped_logit_scale`.

SigLIP (Zhai et al. 2023, Algorithm 1) replaces the two softmaxes by an independent
binary decision per pair, with a learned scale ``t' = log 10`` and bias ``b = -10`` at
initialisation:

    loss = -1/N sum_i sum_j log sigma( z_ij (s <u_i, v_j> + b) ),   z_ij = 1 if i = j else -1

:func:`sharded_clip_loss` computes the CLIP loss with the batch laid over the devices of a
``"data"`` mesh axis (``jax.shard_map``): each device normalises its slice, all-gathers
the other devices' embeddings as negatives, computes its rows of both softmaxes, and the
per-device sums are ``psum``-ed. Its value and gradient equal :func:`clip_loss` on the
whole batch (the transpose of ``all_gather`` is a ``psum_scatter``, so every device's
embeddings receive the gradient from every other device's rows).

References:
  Radford et al., "Learning Transferable Visual Models From Natural Language
    Supervision", ICML 2021.
  Zhai, Mustafa, Kolesnikov, Beyer, "Sigmoid Loss for Language Image Pre-Training",
    ICCV 2023.
  van den Oord, Li, Vinyals, "Representation Learning with Contrastive Predictive
    Coding", 2018.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from genjax import checks

__all__ = [
    "MAX_LOGIT_SCALE",
    "INIT_LOG_LOGIT_SCALE",
    "SIGLIP_INIT_LOG_LOGIT_SCALE",
    "SIGLIP_INIT_LOGIT_BIAS",
    "l2_normalize",
    "clipped_logit_scale",
    "clip_logits",
    "clip_loss_terms",
    "clip_loss",
    "sigmoid_loss",
    "sharded_clip_loss",
]

MAX_LOGIT_SCALE = 100.0  # Radford et al. 2021, sec. 2.5: "clipped ... no more than 100"
INIT_LOG_LOGIT_SCALE = math.log(1.0 / 0.07)  # temperature 0.07 at initialisation
SIGLIP_INIT_LOG_LOGIT_SCALE = math.log(10.0)  # Zhai et al. 2023, Algorithm 1: t' = log 10
SIGLIP_INIT_LOGIT_BIAS = -10.0  # Zhai et al. 2023, Algorithm 1: b = -10


# --------------------------------------------------------------------------------------
# Argument checks (trace time: shapes always, values when concrete)
# --------------------------------------------------------------------------------------


def _check_pair(image_emb, text_emb) -> tuple[jax.Array, jax.Array]:
    image_emb = jnp.asarray(image_emb)
    text_emb = jnp.asarray(text_emb)
    checks.ndim("image_emb", image_emb, 2, "(batch, dim)")
    checks.ndim("text_emb", text_emb, 2, "(batch, dim)")
    if image_emb.shape[0] != text_emb.shape[0]:
        raise ValueError(
            f"text_emb: batch size {text_emb.shape[0]} does not match image_emb's "
            f"{image_emb.shape[0]}; the i-th caption belongs to the i-th image"
        )
    if image_emb.shape[1] != text_emb.shape[1]:
        raise ValueError(
            f"text_emb: dimension {text_emb.shape[1]} does not match image_emb's "
            f"{image_emb.shape[1]}"
        )
    if image_emb.shape[0] < 1:
        raise ValueError("image_emb: the batch must hold at least one pair, got 0")
    checks.finite("image_emb", image_emb)  # values checked when concrete
    checks.finite("text_emb", text_emb)
    dtype = jnp.result_type(image_emb.dtype, text_emb.dtype, jnp.float32)
    return image_emb.astype(dtype), text_emb.astype(dtype)


def _check_scale(logit_scale, dtype, name: str = "logit_scale") -> jax.Array:
    """A positive scalar (it multiplies cosine similarities; learn its log)."""
    scale = jnp.asarray(logit_scale, dtype)
    if scale.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {scale.shape}")
    checks.positive(name, logit_scale)
    return scale


# --------------------------------------------------------------------------------------
# The math
# --------------------------------------------------------------------------------------


def l2_normalize(x: jax.Array, axis: int = -1) -> jax.Array:
    """``x / |x|`` along ``axis``; finite for huge entries and zero vectors.

    The vector is first divided by its largest absolute entry (a constant for the
    gradient: ``x / |x|`` is scale-invariant, so the gradient is unchanged), so that the
    squares cannot overflow even for entries near the dtype's maximum. A zero vector
    maps to zero.

    Args:
      x: (..., dim) array.
      axis: the axis to normalise.

    Returns:
      array of ``x``'s shape with unit norm along ``axis`` (or zero).
    """
    x = jnp.asarray(x)
    big = jax.lax.stop_gradient(jnp.max(jnp.abs(x), axis=axis, keepdims=True))
    y = x / jnp.where(big > 0, big, 1.0)  # entries in [-1, 1]
    norm = jnp.sqrt(jnp.sum(jnp.square(y), axis=axis, keepdims=True))  # in [1, sqrt(dim)] or 0
    return y / jnp.where(norm > 0, norm, 1.0)


def clipped_logit_scale(
    log_logit_scale: jax.Array, *, max_logit_scale: float = MAX_LOGIT_SCALE
) -> jax.Array:
    """The logit scale ``s = exp(min(t, log s_max))`` of a learned log-scale ``t``.

    Radford et al. (2021, sec. 2.5) learn the temperature as a log-parameterised scalar
    and clip it "to prevent scaling the logits by more than 100". Clipping in the forward
    pass (rather than editing the parameter after each step) keeps training a pure
    function; above the clip the parameter simply receives no gradient.

    Args:
      log_logit_scale: () the learned ``t`` (init :data:`INIT_LOG_LOGIT_SCALE`).
      max_logit_scale: the clip value ``s_max > 0``.

    Returns:
      () the positive scale ``s``.
    """
    checks.positive("max_logit_scale", max_logit_scale)
    checks.finite("log_logit_scale", log_logit_scale)  # checked when concrete
    t = jnp.asarray(log_logit_scale)
    return jnp.exp(jnp.minimum(t, math.log(max_logit_scale)))


def clip_logits(image_emb: jax.Array, text_emb: jax.Array, logit_scale: jax.Array) -> jax.Array:
    """The ``(N, N)`` logits ``L_ij = s <u_i, v_j>`` of unit embeddings.

    Args:
      image_emb: (N, D) image embeddings (any norm).
      text_emb: (N, D) text embeddings; row i is image i's caption.
      logit_scale: () ``s > 0``.

    Returns:
      (N, N) logits: row i scores image i against every caption.
    """
    image_emb, text_emb = _check_pair(image_emb, text_emb)
    scale = _check_scale(logit_scale, image_emb.dtype)
    u = l2_normalize(image_emb)  # (N, D)
    v = l2_normalize(text_emb)  # (N, D)
    return scale * jnp.einsum("id,jd->ij", u, v)  # (N, N): L_ij = s <u_i, v_j>


def clip_loss_terms(
    image_emb: jax.Array, text_emb: jax.Array, logit_scale: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """The two InfoNCE directions of :func:`clip_loss`, from one logit matrix.

        l_i2t = -1/N sum_i log softmax_j(L_i.)_i     (each image picks its caption)
        l_t2i = -1/N sum_j log softmax_i(L_.j)_j     (each caption picks its image)

    Swapping the roles of images and texts swaps the two terms.

    Args:
      image_emb: (N, D) image embeddings.
      text_emb: (N, D) text embeddings, row i paired with image i.
      logit_scale: () ``s > 0``.

    Returns:
      ``(l_i2t, l_t2i)``, two scalars.

    Example:
      >>> u = jnp.ones((2, 3))  # two identical pairs: every logit equal, chance
      >>> i2t, t2i = clip_loss_terms(u, u, 10.0)
      >>> round(float(i2t), 4), round(float(t2i), 4)  # log 2 each
      (0.6931, 0.6931)
    """
    logits = clip_logits(image_emb, text_emb, logit_scale)  # (N, N)
    i2t = -jnp.mean(jnp.diagonal(jax.nn.log_softmax(logits, axis=1)))  # softmax over captions
    t2i = -jnp.mean(jnp.diagonal(jax.nn.log_softmax(logits, axis=0)))  # softmax over images
    return i2t, t2i


def clip_loss(image_emb: jax.Array, text_emb: jax.Array, logit_scale: jax.Array) -> jax.Array:
    """CLIP's symmetric InfoNCE loss over L2-normalised embeddings.

        u_i = image_i / |image_i|,  v_j = text_j / |text_j|,  L_ij = s <u_i, v_j>
        loss = 1/2 [ -1/N sum_i log softmax_j(L_i.)_i  -  1/N sum_j log softmax_i(L_.j)_j ]

    (Radford et al. 2021, Figure 3.) Uninformative embeddings (all equal) give
    ``log N``; a perfect pairing at a large scale gives ~0.

    Args:
      image_emb: (N, D) image embeddings (normalised here).
      text_emb: (N, D) text embeddings, row i the caption of image i.
      logit_scale: () the scale ``s > 0`` (``1 / temperature``); for a learned
        log-scale ``t`` pass ``clipped_logit_scale(t)``.

    Returns:
      () the loss, in the embeddings' (floating) dtype.

    Raises:
      ValueError: mismatched shapes or batch sizes, an empty batch, or a non-positive
        (concrete) ``logit_scale``.

    Example:
      >>> u = jnp.eye(4)
      >>> round(float(clip_loss(u, u, 100.0)), 4)  # every image closest to its own caption
      0.0

    References:
      Radford et al. (2021), "Learning Transferable Visual Models From Natural Language
      Supervision", Figure 3.
    """
    i2t, t2i = clip_loss_terms(image_emb, text_emb, logit_scale)
    return 0.5 * (i2t + t2i)


def sigmoid_loss(
    image_emb: jax.Array, text_emb: jax.Array, logit_scale: jax.Array, logit_bias: jax.Array
) -> jax.Array:
    """SigLIP's pairwise sigmoid loss (Zhai et al. 2023, Algorithm 1).

        L_ij = s <u_i, v_j> + b,   z_ij = +1 if i = j else -1
        loss = -1/N sum_i sum_j log sigma(z_ij L_ij)

    Every pair is an independent binary problem (no softmax over the batch), normalised by
    the batch size as in the paper; ``log sigma`` is computed stably.

    Args:
      image_emb: (N, D) image embeddings (normalised here).
      text_emb: (N, D) text embeddings, row i paired with image i.
      logit_scale: () ``s > 0`` (learned as ``exp(t')``, ``t' = log 10`` at init).
      logit_bias: () ``b`` (``-10`` at init, so that the N^2 - N negatives start with
        small loss).

    Returns:
      () the loss.

    References:
      Zhai et al. (2023), "Sigmoid Loss for Language Image Pre-Training", Algorithm 1.

    Example:
      >>> u = jnp.ones((2, 3))  # unit cosines: logits s * 1 + b = 0 for s = 1, b = -1
      >>> round(float(sigmoid_loss(u, u, 1.0, -1.0)), 4)  # N^2 log 2 / N = 2 log 2
      1.3863
    """
    logits = clip_logits(image_emb, text_emb, logit_scale)  # (N, N), s <u_i, v_j>
    bias = jnp.asarray(logit_bias, logits.dtype)
    if bias.ndim != 0:
        raise ValueError(f"logit_bias must be a scalar, got shape {bias.shape}")
    checks.finite("logit_bias", logit_bias)
    n = logits.shape[0]
    z = 2.0 * jnp.eye(n, dtype=logits.dtype) - 1.0  # (N, N): +1 on the diagonal, -1 off it
    return -jnp.sum(jax.nn.log_sigmoid(z * (logits + bias))) / n


def sharded_clip_loss(
    image_emb: jax.Array,
    text_emb: jax.Array,
    logit_scale: jax.Array,
    *,
    mesh: jax.sharding.Mesh,
    axis_name: str = "data",
) -> jax.Array:
    """:func:`clip_loss` with the batch split over the devices of one mesh axis.

    Device ``k`` of the ``d`` devices on ``axis_name`` holds rows ``[k N/d, (k+1) N/d)``
    of both embedding matrices. It normalises them, all-gathers everyone's unit
    embeddings (the negatives), and computes its N/d rows of each softmax:

        l_k = - sum_{i in slice k} [ log softmax_j(s <u_i, v_.>)_i + log softmax_j(s <v_i, u_.>)_i ]
        loss = psum_k(l_k) / (2N)

    which is exactly :func:`clip_loss` (the t2i term's column ``j`` of ``L`` is row ``j``
    of ``L^T``). Only ``(N, D)`` embeddings cross devices, never the ``(N, N)`` logits.
    Gradients flow back through ``all_gather`` (its transpose sums each device's
    contributions to every slice), so ``jax.grad`` of this function equals the gradient
    of the global loss.

    Args:
      image_emb: (N, D) image embeddings, N divisible by the axis size (may already be
        sharded as ``PartitionSpec(axis_name)``).
      text_emb: (N, D) text embeddings, row i paired with image i.
      logit_scale: () ``s > 0``, replicated.
      mesh: a ``jax.sharding.Mesh`` with an axis called ``axis_name``.
      axis_name: the data-parallel axis.

    Returns:
      () the loss, replicated.

    Example:
      >>> mesh = jax.sharding.Mesh(jax.devices()[:1], ("data",))
      >>> u = jnp.eye(4)
      >>> bool(jnp.isclose(sharded_clip_loss(u, u, 10.0, mesh=mesh), clip_loss(u, u, 10.0)))
      True
    """
    image_emb, text_emb = _check_pair(image_emb, text_emb)
    scale = _check_scale(logit_scale, image_emb.dtype)
    if axis_name not in mesh.axis_names:
        raise ValueError(f"axis_name {axis_name!r} is not an axis of the mesh {mesh.axis_names}")
    devices = mesh.shape[axis_name]
    n = image_emb.shape[0]
    if n % devices:
        raise ValueError(
            f"image_emb: batch size {n} must be divisible by the {devices} devices on mesh "
            f"axis {axis_name!r}"
        )

    def local(img: jax.Array, txt: jax.Array, s: jax.Array) -> jax.Array:
        # img, txt: (N/d, D) this device's slice; s: () replicated.
        m = img.shape[0]
        u = l2_normalize(img)  # (N/d, D)
        v = l2_normalize(txt)  # (N/d, D)
        u_all = jax.lax.all_gather(u, axis_name, tiled=True)  # (N, D) every image
        v_all = jax.lax.all_gather(v, axis_name, tiled=True)  # (N, D) every caption
        # Global index of this slice's rows: the positives sit on the global diagonal.
        rows = jnp.arange(m)
        targets = jax.lax.axis_index(axis_name) * m + rows  # (N/d,)
        i2t = jax.nn.log_softmax(s * jnp.einsum("id,jd->ij", u, v_all), axis=1)  # (N/d, N)
        t2i = jax.nn.log_softmax(s * jnp.einsum("jd,id->ji", v, u_all), axis=1)  # (N/d, N)
        local_sum = -(jnp.sum(i2t[rows, targets]) + jnp.sum(t2i[rows, targets]))
        return jax.lax.psum(local_sum, axis_name) / (2 * n)

    spec = P(axis_name)
    return jax.shard_map(
        local, mesh=mesh, in_specs=(spec, spec, P()), out_specs=P()
    )(image_emb, text_emb, scale)
