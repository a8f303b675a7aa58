"""VQGAN: a VQ autoencoder trained with a patch discriminator and a perceptual term.

Where the VAE family (the VQ autoencoder, :class:`genjax.vae.VQVAE`) meets the GAN family
(the hinge losses of :mod:`genjax.gan.loss`). Esser et al. (2021, sec. 3.1) replace the
VQ-VAE's squared error by a perceptual reconstruction loss and add an adversarial loss from a
patch-based discriminator ``D`` (Isola et al. 2017), whose every output judges one patch:

    L_rec = |x - x_hat|^2 + w_p |phi(x) - phi(x_hat)|^2          (perceptual: feature matching)
    L_VQ  = L_rec + beta |z_e - sg(e)|^2                          (van den Oord et al. 2017, eq. 3;
                                                                   the codebook follows the EMA)
    L_GAN = -E_patches D(x_hat)                                   (hinge generator loss)
    L_D   = E relu(1 - D(x)) + E relu(1 + D(sg(x_hat)))           (hinge discriminator loss)
    Q*    = argmin_{E, G, Z} max_D  L_VQ + lambda L_GAN           (Esser et al. 2021, eq. 6)

with the adaptive weight (eq. 7)

    lambda = ||grad_{G_L} L_rec|| / (||grad_{G_L} L_GAN|| + delta)

where ``grad_{G_L}`` is the gradient with respect to the decoder's last layer (here the
read-out kernel of the MLP decoder, :func:`last_layer_kernel`), ``delta = 1e-6`` in the paper
(the authors' code uses 1e-4 and clips lambda to [0, 1e4]; both are arguments), and lambda is
a constant in the gradient (``stop_gradient``). It balances the two terms so that the
adversarial gradient on the decoder's output layer is as large as the reconstruction's.
Like the paper's code, the adversarial terms are switched on after a warm-up
(``disc_factor`` = 0 before, 1 after).

``phi`` is a frozen feature extractor: the penultimate layer of the shared digit classifier
(:meth:`genjax.digit_classifier.DigitClassifier.features`), standing in for LPIPS's VGG
features at 8x8 (Zhang et al. 2018).

References:
  Esser, Rombach, Ommer, "Taming Transformers for High-Resolution Image Synthesis", CVPR
    2021 (eq. 6-7: the VQGAN objective and its adaptive weight).
  Isola, Zhu, Zhou, Efros, "Image-to-Image Translation with Conditional Adversarial
    Networks", CVPR 2017 (the patch discriminator, PatchGAN).
  Lim & Ye, "Geometric GAN", 2017 (hinge loss).
  Zhang, Isola, Efros, Shechtman, Wang, "The Unreasonable Effectiveness of Deep Features as
    a Perceptual Metric", CVPR 2018 (feature distances as a reconstruction loss).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import checks
from genjax.gan.loss import hinge_d, hinge_g
from genjax.model import Model
from genjax.nn.mlp import MLP
from genjax.vae import VQVAE
from genjax.vae.quantize import vqvae_terms

__all__ = [
    "PatchDiscriminator",
    "last_layer_kernel",
    "reconstruction_terms",
    "generator_adversarial_loss",
    "discriminator_loss",
    "adaptive_weight",
    "generator_gradients",
]

LEAK = 0.2  # leaky-ReLU slope of the discriminator (Isola et al. 2017; Radford et al. 2016)


def _lrelu(x: jax.Array) -> jax.Array:
    return jnp.where(x >= 0, x, LEAK * x)


def image_patches(x: jax.Array, patch: int, stride: int) -> jax.Array:
    """The ``patch x patch`` windows of images at the given stride, flattened.

    Args:
      x: ``(B, H, W, C)``.
      patch: window size ``1 <= patch <= min(H, W)``.
      stride: step ``>= 1``.

    Returns:
      ``(B, P_h, P_w, patch * patch * C)`` with ``P_h = (H - patch) // stride + 1`` (and
      ``P_w`` alike): window ``(i, j)`` starts at pixel ``(i stride, j stride)``.
    """
    _, h, w, _ = x.shape
    rows = range(0, h - patch + 1, stride)
    cols = range(0, w - patch + 1, stride)
    windows = [
        [x[:, i : i + patch, j : j + patch, :].reshape(x.shape[0], -1) for j in cols] for i in rows
    ]  # each (B, patch^2 C)
    return jnp.stack([jnp.stack(r, axis=1) for r in windows], axis=1)


class PatchDiscriminator(nnx.Module):
    """A patch critic ``x (B, H, W, C) -> logits (B, P_h, P_w)`` (PatchGAN, Isola et al. 2017).

    Every logit judges one ``patch x patch`` window (:func:`image_patches`, overlapping at
    ``stride < patch``) with the same MLP (leaky ReLU 0.2, no normalisation, so examples
    stay independent): a convolutional critic whose first layer is a ``patch x patch``
    convolution at that stride and whose other layers are 1x1 convolutions, written as
    matrix products (on a CPU several times faster than XLA's convolution gradients).
    On 8x8 digits with ``patch = 4, stride = 2``: 3 x 3 overlapping patches.

    Args:
      image_shape: ``(H, W, C)``.
      patch: window size in ``[1, min(H, W)]``.
      stride: step ``>= 1``.
      hidden_sizes: the MLP's hidden widths.
      rngs: initialisation only.

    Example:
      >>> d = PatchDiscriminator((8, 8, 1), patch=4, stride=2, hidden_sizes=(8,), rngs=nnx.Rngs(0))
      >>> d(jnp.zeros((2, 8, 8, 1))).shape  # one logit per 4x4 patch at stride 2
      (2, 3, 3)
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        *,
        patch: int = 4,
        stride: int = 2,
        hidden_sizes: Sequence[int] = (64, 64),
        rngs: nnx.Rngs,
    ):
        shape = tuple(image_shape)
        if len(shape) != 3:
            raise ValueError(f"image_shape must be (H, W, C), got {shape!r}")
        self.image_shape = tuple(checks.positive_int("image_shape[i]", s) for s in shape)
        h, w, c = self.image_shape
        self.patch = checks.int_in_range("patch", patch, 1, min(h, w))
        self.stride = checks.positive_int("stride", stride)
        self.net = MLP(self.patch * self.patch * c, hidden_sizes, 1, rngs=rngs, activation=_lrelu)

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: (B, H, W, C) -> (B, P_h, P_w) patch logits."""
        checks.shape("x", x, (None, *self.image_shape))
        return self.net(image_patches(x, self.patch, self.stride))[..., 0]


def last_layer_kernel(tree: Any) -> jax.Array:
    """``G_L``: the read-out kernel ``(P, d)`` of a VQVAE's MLP decoder (or of its gradient)."""
    return tree.decoder.net.layers[-1].kernel[...]


def reconstruction_terms(
    vq: VQVAE, x: jax.Array, classifier: Model | None = None, *, perceptual_weight: float = 1.0
) -> dict[str, jax.Array]:
    """The VQ terms and ``L_rec`` of each example (module docstring).

    Args:
      vq: the VQ autoencoder.
      x: ``(B, *data_shape)`` images.
      classifier: frozen feature extractor with ``features(images) -> (B, F)``, or None
        (no perceptual term).
      perceptual_weight: ``w_p >= 0``.

    Returns:
      :func:`genjax.vae.quantize.vqvae_terms`'s dict plus ``perceptual`` ``(B,)``
      ``|phi(x) - phi(x_hat)|^2`` and ``rec`` ``(B,)`` ``L_rec``.
    """
    checks.nonnegative("perceptual_weight", perceptual_weight)
    t = vqvae_terms(vq, x)
    if classifier is None:
        perceptual = jnp.zeros_like(t["reconstruction"])
    else:
        f_x = jax.lax.stop_gradient(classifier.features(x))  # (B, F), the target
        f_hat = classifier.features(t["x_hat"])  # (B, F)
        perceptual = jnp.sum((f_x - f_hat) ** 2, axis=-1)  # |phi(x) - phi(x_hat)|^2
    rec = t["reconstruction"] + perceptual_weight * perceptual  # L_rec per example
    return {**t, "perceptual": perceptual, "rec": rec}


def _patches(logits: jax.Array) -> jax.Array:
    return logits.reshape(-1)  # every patch a sample of the hinge expectations


def generator_adversarial_loss(disc: Model, x_hat: jax.Array) -> jax.Array:
    """``L_GAN = -E_{b, patch} D(x_hat)`` (the hinge generator loss over all patches).

    Args:
      disc: the patch critic ``(B, H, W, C) -> (B, ...)`` logits.
      x_hat: ``(B, H, W, C)`` reconstructions.
    """
    return hinge_g(_patches(disc(x_hat)))


def discriminator_loss(disc: Model, x: jax.Array, x_fake: jax.Array) -> jax.Array:
    """``L_D = E relu(1 - D(x)) + E relu(1 + D(x_fake))`` over every patch (hinge).

    Args:
      disc: the patch critic.
      x: ``(B, H, W, C)`` real images.
      x_fake: ``(B', H, W, C)`` reconstructions (the caller stops their gradient).
    """
    return hinge_d(_patches(disc(x)), _patches(disc(x_fake)))


def adaptive_weight(
    grad_rec: jax.Array, grad_gan: jax.Array, *, delta: float = 1e-4, max_weight: float = 1e4
) -> jax.Array:
    """Esser et al. (2021), eq. 7: ``||grad_rec|| / (||grad_gan|| + delta)``, clipped, constant.

    Args:
      grad_rec: gradient of ``L_rec`` w.r.t. the decoder's last layer (any shape).
      grad_gan: gradient of ``L_GAN`` w.r.t. the same layer (same shape).
      delta: ``> 0``, keeps the ratio finite when the adversarial gradient vanishes.
      max_weight: upper clip ``> 0`` (the authors' code: 1e4).

    Returns:
      ``()`` lambda in ``[0, max_weight]``, with ``stop_gradient``.
    """
    checks.positive("delta", delta)
    checks.positive("max_weight", max_weight)
    checks.same_shape("grad_gan", grad_gan, "grad_rec", grad_rec)
    lam = jnp.linalg.norm(jnp.ravel(grad_rec)) / (jnp.linalg.norm(jnp.ravel(grad_gan)) + delta)
    return jax.lax.stop_gradient(jnp.clip(lam, 0.0, max_weight))


def generator_gradients(
    vq: VQVAE,
    disc: Model,
    x: jax.Array,
    classifier: Model | None = None,
    *,
    beta: float = 0.25,
    perceptual_weight: float = 1.0,
    disc_factor: jax.Array | float = 1.0,
    delta: float = 1e-4,
    max_weight: float = 1e4,
) -> tuple[Any, dict[str, jax.Array]]:
    """The gradient of ``L_VQ + disc_factor * lambda * L_GAN`` w.r.t. the autoencoder.

    ``grad L_VQ`` and ``grad L_GAN`` are taken separately; lambda comes from their parts at
    the decoder's last layer (:func:`adaptive_weight`; the commitment term does not reach
    the decoder, so that part of ``grad L_VQ`` is ``grad_{G_L} L_rec``), then

        grad = grad L_VQ + disc_factor * lambda * grad L_GAN.

    Args:
      vq: the VQ autoencoder (differentiated).
      disc: the patch critic (held fixed).
      x: ``(B, *data_shape)`` images.
      classifier: the frozen perceptual feature extractor, or None.
      beta: commitment weight ``>= 0``.
      perceptual_weight: ``w_p >= 0``.
      disc_factor: 0 (warm-up: no adversarial term) or 1; may be traced.
      delta, max_weight: as :func:`adaptive_weight`.

    Returns:
      ``(grads, metrics)``: grads of ``vq``'s structure; metrics ``loss``, ``rec``,
      ``reconstruction``, ``perceptual``, ``commitment``, ``gan_g``, ``adaptive_weight``,
      and the arrays ``z_e`` ``(B, M, D)``, ``indices`` ``(B, M)``, ``x_hat`` for the
      codebook's EMA update.
    """
    checks.nonnegative("beta", beta)
    checks.nonnegative("perceptual_weight", perceptual_weight)

    def vq_objective(m: VQVAE):
        t = reconstruction_terms(m, x, classifier, perceptual_weight=perceptual_weight)
        return jnp.mean(t["rec"] + beta * t["commitment"]), t  # L_VQ (EMA codebook)

    def gan_objective(m: VQVAE):
        return generator_adversarial_loss(disc, vqvae_terms(m, x)["x_hat"])

    (l_vq, t), g_vq = jax.value_and_grad(vq_objective, has_aux=True)(vq)
    l_gan, g_gan = jax.value_and_grad(gan_objective)(vq)
    lam = adaptive_weight(
        last_layer_kernel(g_vq), last_layer_kernel(g_gan), delta=delta, max_weight=max_weight
    )
    scale = disc_factor * lam
    grads = jax.tree.map(lambda a, b: a + scale * b, g_vq, g_gan)
    metrics = {
        "loss": l_vq + scale * l_gan,
        "rec": jnp.mean(t["rec"]),
        "reconstruction": jnp.mean(t["reconstruction"]),
        "perceptual": jnp.mean(t["perceptual"]),
        "commitment": jnp.mean(t["commitment"]),
        "gan_g": l_gan,
        "adaptive_weight": lam,
        "z_e": t["z_e"],
        "indices": t["indices"],
        "x_hat": t["x_hat"],
    }
    return grads, metrics
