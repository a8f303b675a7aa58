"""The models of the VAE family, as flax.nnx modules that *are* the ``params`` pytree.

How params and apply fit together: a model is an nnx Module holding its networks and
parameters; in flax 0.12 a Module is a pytree whose leaves are arrays, so the losses
take it directly as ``params`` (``elbo_loss(model, batch, key)``), ``jax.grad`` returns a
Module of gradients and optax updates it leaf by leaf. Static choices (likelihood, sizes)
are plain attributes and travel in the tree structure. Each model exposes ``encode`` and
``decode``; the math (losses, bounds, samplers) lives in ``loss.py``, ``sample.py`` and
``quantize.py`` and dispatches on the model's class.

* :class:`Autoencoder` — deterministic ``z = f(x)``, ``x_hat = g(z)``, trained by MSE;
  samples from a Gaussian fitted to its codes (the ex-post density of Ghosh et al. 2020).
* :class:`VAE` — Gaussian encoder ``q(z|x) = N(mu(x), diag exp(logvar(x)))``, prior
  ``N(0, I)``, Bernoulli (logits) or Gaussian (mean, one learned scalar ``log_std``)
  decoder (Kingma & Welling 2014).

Builders: :func:`mlp_vae`, :func:`conv_vae`, :func:`linear_vae` (affine encoder and
decoder: probabilistic PCA with an amortised diagonal posterior, used by the exact tests),
:func:`exact_posterior_vae` (a linear VAE whose encoder *is* the exact posterior of a
:class:`genjax.targets.LinearGaussian` with orthogonal columns), :func:`mlp_autoencoder`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from genjax import checks
from genjax.nn.autoencoders import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder
from genjax.vae.distributions import bernoulli_log_likelihood, gaussian_log_likelihood

LIKELIHOODS = ("bernoulli", "gaussian")

# The encoder's log-variance head is bounded to (LOGVAR_MIN, LOGVAR_MAX) = (-40, 20) by a
# soft cap (bounded_logvar). Unbounded, an untrained encoder fed inputs of order 100 (raw
# 0-255 pixels) emits log-variances of order +-100: ``exp(logvar)`` in the KL and in the
# reparameterised ``z`` overflows to inf, and ``exp(-100)`` underflows to 0 in float32, so
# that ``log q(z|x)`` divides 0 by 0. The cap is the identity, exactly, on
# [LOGVAR_KNEE_LOW, LOGVAR_KNEE] = [-30, 10] (posterior standard deviations from 3e-7 to
# 148; the prior's is 1, so no useful posterior lies outside), hence results on ordinary
# inputs are unchanged bit for bit; outside it bends smoothly (value and slope continuous)
# towards the bounds, which keep ``exp(logvar)`` a normal float32 number.
LOGVAR_KNEE_LOW, LOGVAR_KNEE = -30.0, 10.0
LOGVAR_MIN, LOGVAR_MAX = -40.0, 20.0


def bounded_logvar(h: jax.Array) -> jax.Array:
    """The log-variance head's soft cap, ``(-inf, inf) -> (-40, 20)``: ``h`` on
    ``[-30, 10]``, ``10 + 10 tanh((h - 10) / 10)`` above, ``-30 + 10 tanh((h + 30) / 10)``
    below (continuous with slope 1 at each knee)."""
    width = LOGVAR_MAX - LOGVAR_KNEE  # = LOGVAR_KNEE_LOW - LOGVAR_MIN = 10
    high = LOGVAR_KNEE + width * jnp.tanh((h - LOGVAR_KNEE) / width)
    low = LOGVAR_KNEE_LOW + width * jnp.tanh((h - LOGVAR_KNEE_LOW) / width)
    return jnp.where(h > LOGVAR_KNEE, high, jnp.where(h < LOGVAR_KNEE_LOW, low, h))


class LatentStat(nnx.Variable):
    """A statistic of the latent codes (not trained by gradient descent)."""


def decoder_log_likelihood(model: Any, x: jax.Array, out: jax.Array) -> jax.Array:
    """``log p(x | z)`` from the decoder output ``out`` (logits or means): (B, ...) -> (B,).

    ``model.likelihood`` chooses the Bernoulli (``out`` = logits) or the Gaussian
    (``out`` = means, standard deviation ``exp(model.log_std)``) decoder.
    """
    if model.likelihood == "bernoulli":
        return bernoulli_log_likelihood(x, out)
    return gaussian_log_likelihood(x, out, model.log_std[...])


class Autoencoder(nnx.Module):
    """Deterministic autoencoder ``z = encoder(x)``, ``x_hat = decoder(z)``.

    Attributes:
      encoder: ``(B, *data_shape) -> (B, L)``.
      decoder: ``(B, L) -> (B, *data_shape)``.
      latent_mean, latent_std: ``(L,)`` Gaussian fitted to the codes by
        :func:`genjax.vae.fit_latent_gaussian` (``0`` and ``1`` until then); sampling draws
        ``z`` from it.

    Example:
      >>> model = mlp_autoencoder((4,), 2, rngs=nnx.Rngs(0), hidden_sizes=(8,))
      >>> isinstance(model, Autoencoder), encode_mean(model, jnp.zeros((5, 4))).shape
      (True, (5, 2))
    """

    def __init__(self, encoder: nnx.Module, decoder: nnx.Module, *, latent_dim: int,
                 data_shape: Sequence[int]):
        self.latent_dim = checks.positive_int("latent_dim", latent_dim)
        self.data_shape = tuple(int(s) for s in data_shape)
        self.encoder = encoder
        self.decoder = decoder
        self.latent_mean = LatentStat(jnp.zeros((self.latent_dim,)))
        self.latent_std = LatentStat(jnp.ones((self.latent_dim,)))

    def encode(self, x: jax.Array) -> jax.Array:
        """x: (B, *data_shape) -> z: (B, L)."""
        return self.encoder(x)

    def decode(self, z: jax.Array) -> jax.Array:
        """z: (B, L) -> x_hat: (B, *data_shape)."""
        return self.decoder(z)


class VAE(nnx.Module):
    """Variational autoencoder with a diagonal Gaussian encoder.

    ``q(z|x) = N(mu(x), diag exp(logvar(x)))``, ``p(z) = N(0, I_L)``, and
    ``p(x|z) = Bernoulli(sigmoid(decoder(z)))`` or ``N(decoder(z), exp(log_std)^2 I)``.

    Attributes:
      encoder: ``(B, *data_shape) -> (B, 2 L)``, split into ``mu`` and ``logvar`` (the
        latter through the soft cap :func:`bounded_logvar` (``-40 < logvar < 20``, the
        identity on ``[-30, 10]``).
      decoder: ``(B, L) -> (B, *data_shape)``: logits (Bernoulli) or means (Gaussian).
      log_std: ``()`` log observation standard deviation (Gaussian decoder; unused and
        untouched by the Bernoulli one).
      likelihood: ``"bernoulli"`` or ``"gaussian"``.

    Example:
      >>> model = mlp_vae((4,), 2, rngs=nnx.Rngs(0), hidden_sizes=(8,))
      >>> isinstance(model, VAE), model.latent_dim
      (True, 2)
    """

    def __init__(self, encoder: nnx.Module, decoder: nnx.Module, *, latent_dim: int,
                 data_shape: Sequence[int], likelihood: str = "bernoulli",
                 log_std: float = 0.0):
        self.latent_dim = checks.positive_int("latent_dim", latent_dim)
        self.data_shape = tuple(int(s) for s in data_shape)
        self.likelihood = checks.one_of("likelihood", likelihood, LIKELIHOODS)
        self.encoder = encoder
        self.decoder = decoder
        self.log_std = nnx.Param(jnp.asarray(log_std, jnp.float32))

    def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """x: (B, *data_shape) -> (mu, logvar), each (B, L); logvar in (-40, 20) (soft cap)."""
        h = self.encoder(x)  # (B, 2L)
        return h[:, : self.latent_dim], bounded_logvar(h[:, self.latent_dim :])

    def decode(self, z: jax.Array) -> jax.Array:
        """z: (B, L) -> (B, *data_shape) logits or means."""
        return self.decoder(z)


def mlp_autoencoder(data_shape: Sequence[int], latent_dim: int, *, rngs: nnx.Rngs,
                    hidden_sizes: Sequence[int] = (256,)) -> Autoencoder:
    """An :class:`Autoencoder` with MLP encoder and decoder.

    Example:
      >>> model = mlp_autoencoder((6,), 2, rngs=nnx.Rngs(0), hidden_sizes=(8,))
      >>> reconstruct(model, jnp.zeros((3, 6))).shape
      (3, 6)
    """
    latent_dim = checks.positive_int("latent_dim", latent_dim)
    return Autoencoder(
        MLPEncoder(data_shape, hidden_sizes, latent_dim, rngs=rngs),
        MLPDecoder(latent_dim, tuple(reversed(tuple(hidden_sizes))), data_shape, rngs=rngs),
        latent_dim=latent_dim, data_shape=data_shape,
    )


def mlp_vae(data_shape: Sequence[int], latent_dim: int, *, rngs: nnx.Rngs,
            hidden_sizes: Sequence[int] = (256,), likelihood: str = "bernoulli") -> VAE:
    """A :class:`VAE` with MLP encoder and decoder (hidden sizes mirrored in the decoder).

    Example:
      >>> model = mlp_vae((4, 4, 1), 2, rngs=nnx.Rngs(0), hidden_sizes=(8,))
      >>> model.latent_dim, model.data_shape, model.likelihood
      (2, (4, 4, 1), 'bernoulli')
    """
    latent_dim = checks.positive_int("latent_dim", latent_dim)
    return VAE(
        MLPEncoder(data_shape, hidden_sizes, 2 * latent_dim, rngs=rngs),
        MLPDecoder(latent_dim, tuple(reversed(tuple(hidden_sizes))), data_shape, rngs=rngs),
        latent_dim=latent_dim, data_shape=data_shape, likelihood=likelihood,
    )


def conv_vae(image_shape: Sequence[int], latent_dim: int, *, rngs: nnx.Rngs,
             channels: tuple[int, int] = (32, 64), likelihood: str = "bernoulli") -> VAE:
    """A :class:`VAE` with convolutional encoder and decoder for ``(H, W, C)`` images.

    Example:
      >>> model = conv_vae((8, 8, 1), 2, rngs=nnx.Rngs(0), channels=(4, 8))
      >>> model.latent_dim, model.data_shape
      (2, (8, 8, 1))
    """
    latent_dim = checks.positive_int("latent_dim", latent_dim)
    return VAE(
        ConvEncoder(image_shape, 2 * latent_dim, channels=channels, rngs=rngs),
        ConvDecoder(latent_dim, image_shape, channels=(channels[1], channels[0]), rngs=rngs),
        latent_dim=latent_dim, data_shape=image_shape, likelihood=likelihood,
    )


def linear_vae(data_dim: int, latent_dim: int, *, rngs: nnx.Rngs, noise_std: float = 1.0) -> VAE:
    """Affine encoder ``x -> (mu, logvar)`` and affine Gaussian decoder ``z -> W z + b``.

    The generative model is probabilistic PCA (Tipping & Bishop 1999) with
    ``s = exp(log_std)`` initialised to ``noise_std``; the encoder is amortised with
    ``logvar`` affine in ``x`` (its weight is free, so the exact posterior, whose variance
    does not depend on ``x``, is reachable).

    Example:
      >>> model = linear_vae(3, 2, rngs=nnx.Rngs(0), noise_std=0.5)
      >>> model.likelihood, sample(jax.random.key(0), model, 4).shape
      ('gaussian', (4, 3))
    """
    data_dim = checks.positive_int("data_dim", data_dim)
    latent_dim = checks.positive_int("latent_dim", latent_dim)
    checks.positive("noise_std", noise_std)
    return VAE(
        MLPEncoder((data_dim,), (), 2 * latent_dim, rngs=rngs),
        MLPDecoder(latent_dim, (), (data_dim,), rngs=rngs),
        latent_dim=latent_dim, data_shape=(data_dim,), likelihood="gaussian",
        log_std=math.log(noise_std),
    )


def exact_posterior_vae(W: Any, b: Any, noise_std: float, *, atol: float = 1e-6) -> VAE:
    """The linear VAE whose decoder is pPCA ``(W, b, s)`` and whose encoder is its posterior.

    The posterior of pPCA is ``N(M^{-1} W^T (x - b), s^2 M^{-1})`` with
    ``M = W^T W + s^2 I`` (Tipping & Bishop 1999, eq. 7). It is diagonal — so a diagonal
    ``q`` can equal it and the ELBO equals ``log p(x)`` — exactly when ``W`` has orthogonal
    columns; other ``W`` raise ``ValueError``.

    Args:
      W: (D, L) loadings with orthogonal columns.
      b: (D,) offset.
      noise_std: s > 0.
      atol: tolerance on the off-diagonal of ``W^T W``.

    Example:
      >>> model = exact_posterior_vae(jnp.eye(3, 2), jnp.zeros(3), 0.5)
      >>> x = jnp.ones((2, 3))
      >>> w = iwae_log_weights(model, x, jax.random.normal(jax.random.key(0), (4, 2, 2)))
      >>> bool(jnp.allclose(w, w[0], atol=1e-4))  # q = p(z|x): every weight is log p(x)
      True
    """
    w = np.asarray(W, np.float64)
    bb = np.asarray(b, np.float64)
    checks.ndim("W", w, 2, "(D, L)")
    checks.finite("W", w)
    d, l = w.shape
    checks.shape("b", bb, (d,))
    checks.positive("noise_std", noise_std)
    wtw = w.T @ w
    if np.max(np.abs(wtw - np.diag(np.diag(wtw)))) > atol * max(1.0, np.max(np.abs(wtw))):
        raise ValueError("W must have orthogonal columns (W^T W diagonal) for a diagonal posterior")
    s2 = float(noise_std) ** 2
    m_diag = np.diag(wtw) + s2  # M = W^T W + s^2 I, diagonal here
    a = w.T / m_diag[:, None]  # (L, D), M^{-1} W^T
    post_logvar = np.log(s2 / m_diag)  # log diag(s^2 M^{-1})
    vae = linear_vae(d, l, rngs=nnx.Rngs(0), noise_std=float(noise_std))
    enc = vae.encoder.net.layers[0]
    dtype = enc.kernel[...].dtype  # the parameters' dtype (float32), whatever x64 says
    # encoder kernel (D, 2L): [A^T | 0], bias [-A b | log diag(s^2 M^{-1})]
    enc.kernel[...] = jnp.asarray(np.concatenate([a.T, np.zeros((d, l))], axis=1), dtype)
    enc.bias[...] = jnp.asarray(np.concatenate([-a @ bb, post_logvar]), dtype)
    dec = vae.decoder.net.layers[0]
    dec.kernel[...] = jnp.asarray(w.T, dtype)  # (L, D): x_mean = z W^T + b
    dec.bias[...] = jnp.asarray(bb, dtype)
    vae.log_std[...] = jnp.asarray(math.log(float(noise_std)), dtype)
    return vae


def set_linear_vae(vae: VAE, *, enc_kernel: Any = None, enc_bias: Any = None,
                   dec_kernel: Any = None, dec_bias: Any = None, log_std: Any = None) -> VAE:
    """A copy of a :func:`linear_vae` with some of its weights replaced.

    Shapes: ``enc_kernel (D, 2L)``, ``enc_bias (2L,)``, ``dec_kernel (L, D)``,
    ``dec_bias (D,)``, ``log_std ()``.

    Example:
      >>> model = set_linear_vae(linear_vae(3, 2, rngs=nnx.Rngs(0)), dec_bias=jnp.ones(3))
      >>> sample_from_noise(model, jnp.zeros((1, 2))).tolist()  # z = 0 decodes to the bias
      [[1.0, 1.0, 1.0]]
    """
    out = jax.tree.map(lambda a: a, vae)  # a fresh Module with the same leaves
    enc, dec = out.encoder.net.layers[0], out.decoder.net.layers[0]
    new = {"enc_kernel": (enc.kernel, enc_kernel), "enc_bias": (enc.bias, enc_bias),
           "dec_kernel": (dec.kernel, dec_kernel), "dec_bias": (dec.bias, dec_bias),
           "log_std": (out.log_std, log_std)}
    for name, (var, value) in new.items():
        if value is not None:
            value = jnp.asarray(value, var[...].dtype)
            checks.shape(name, value, var[...].shape)
            var[...] = value
    return out
