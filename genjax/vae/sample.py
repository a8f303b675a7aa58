"""Sampling, reconstruction and latent interpolation for every model of the family.

``sample(key, model, n)`` dispatches on the model's class and returns images in data
space — the decoder's *mean* (``sigmoid(logits)`` for a Bernoulli decoder), as is usual
for pictures, not a draw of observation noise:

* :class:`VAE`: ``z ~ N(0, I)``, ``x = E[x | z]`` (Kingma & Welling 2014);
* :class:`HierarchicalVAE`: ``z2 ~ N(0, I)``, ``z1 ~ p(z1 | z2)``, ``x = E[x | z1]``;
* :class:`VQVAE`: each latent position's code drawn independently from its running code
  counts, ``x = decoder(codebook[codes])``;
* :class:`Autoencoder`: ``z ~ N(latent_mean, diag latent_std^2)``, the Gaussian fitted to
  the training codes by :func:`fit_latent_gaussian` (Ghosh et al. 2020, ex-post density).

Each is one deterministic map of injected noise (:func:`sample_from_noise`, the noise twin)
behind one compiled program. The model is a traced argument (``genjax.model.model_jit``):
ten VAEs with different weights and the same shapes share one compilation.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.model import model_jit
from genjax.vae.hierarchical import HierarchicalVAE, hvae_generate, precision_weighted
from genjax.vae.model import VAE, Autoencoder
from genjax.vae.quantize import VQVAE

_UNKNOWN = "model must be a VAE, HierarchicalVAE, VQVAE or Autoencoder, got {}"


def _mean_output(model: Any, out: jax.Array) -> jax.Array:
    if getattr(model, "likelihood", "gaussian") == "bernoulli":
        return jax.nn.sigmoid(out)  # E[x|z] of a Bernoulli decoder
    return out


def noise_shapes(model: Any, n: int) -> Any:
    """The shapes of the noise :func:`sample_from_noise` takes for ``n`` samples."""
    n = checks.positive_int("n", n)
    if isinstance(model, HierarchicalVAE):
        l1, l2 = model.latent_dims
        return ((n, l2), (n, l1))
    if isinstance(model, VQVAE):
        return (n, model.num_latents, model.num_codes)  # Gumbel noise per position and code
    if isinstance(model, (VAE, Autoencoder)):
        return (n, model.latent_dim)
    raise ValueError(_UNKNOWN.format(type(model).__name__))


@model_jit
def sample_from_noise(model: Any, noise: Any) -> jax.Array:
    """Decode given noise into data-space samples (the deterministic part of :func:`sample`).

    Args:
      model: a VAE, HierarchicalVAE, VQVAE or Autoencoder.
      noise: standard normal of :func:`noise_shapes` (a pair for the hierarchical VAE);
        standard Gumbel ``(n, M, K)`` for the VQ-VAE (``argmax(log p + g)`` draws a code).

    Returns:
      (n, *data_shape).

    Example:
      >>> model = mlp_vae((4,), 2, rngs=nnx.Rngs(0), hidden_sizes=(8,))
      >>> x = sample_from_noise(model, draw_noise(jax.random.key(0), model, 3))
      >>> bool(jnp.array_equal(x, sample(jax.random.key(0), model, 3)))
      True
    """
    _check_noise(model, noise)
    if isinstance(model, HierarchicalVAE):
        return _mean_output(model, hvae_generate(model, *noise))
    if isinstance(model, VQVAE):
        log_p = jnp.log(model.code_counts[...] / jnp.sum(model.code_counts[...], -1, keepdims=True))
        codes = jnp.argmax(log_p[None] + noise, axis=-1)  # (n, M), Gumbel-max
        return model.decode(jnp.take(model.codebook[...], codes, axis=0))
    if isinstance(model, Autoencoder):
        z = model.latent_mean[...][None, :] + model.latent_std[...][None, :] * noise
        return model.decode(z)
    if isinstance(model, VAE):
        return _mean_output(model, model.decode(noise))
    raise ValueError(_UNKNOWN.format(type(model).__name__))


def _check_noise(model: Any, noise: Any) -> None:
    """``noise`` has the shapes :func:`noise_shapes` gives for its own leading size."""
    leaves = jax.tree_util.tree_leaves(noise)
    if not leaves or jnp.ndim(leaves[0]) < 1 or jnp.shape(leaves[0])[0] < 1:
        raise ValueError(f"noise must be the arrays of noise_shapes(model, n), n >= 1, got "
                         f"{jax.tree.map(jnp.shape, noise)}")
    want = noise_shapes(model, jnp.shape(leaves[0])[0])
    got = jax.tree.map(jnp.shape, noise)
    got = tuple(got) if isinstance(got, list) else got
    if got != want:
        raise ValueError(f"noise must have the shapes noise_shapes(model, n) = {want}, got {got}")


def draw_noise(key: jax.Array, model: Any, n: int) -> Any:
    """The noise :func:`sample` draws from ``key``: what :func:`sample_from_noise` decodes.

    Standard normal ``(n, L)`` (a VAE, an autoencoder), the pair ``(eps2, eps1)`` from
    ``split(key)`` (a hierarchical VAE), standard Gumbel ``(n, M, K)`` (a VQ-VAE).
    """
    shapes = noise_shapes(model, n)
    if isinstance(model, HierarchicalVAE):
        k2, k1 = jax.random.split(key)
        return (jax.random.normal(k2, shapes[0]), jax.random.normal(k1, shapes[1]))
    if isinstance(model, VQVAE):
        return jax.random.gumbel(key, shapes)
    return jax.random.normal(key, shapes)


@functools.partial(model_jit, static_argnames=("n",))
def sample(key: jax.Array, model: Any, n: int) -> jax.Array:
    """``n`` samples in data space, ``(n, *data_shape)`` (one compiled program).

    Args:
      key: PRNG key.
      model: a VAE, HierarchicalVAE, VQVAE or Autoencoder (a traced pytree: new weights of
        the same shapes reuse the compiled program).
      n: number of samples, >= 1 (static).

    Returns:
      ``sample_from_noise(model, draw_noise(key, model, n))``.

    Example:
      >>> model = mlp_vae((4, 4, 1), 2, rngs=nnx.Rngs(0), hidden_sizes=(8,))
      >>> sample(jax.random.key(0), model, 3).shape
      (3, 4, 4, 1)
    """
    n = checks.positive_int("n", n)
    return sample_from_noise(model, draw_noise(key, model, n))


def encode_mean(model: Any, x: jax.Array) -> jax.Array:
    """A point in latent space per example: the posterior mean (the code for an
    autoencoder, ``z_e`` flattened for a VQ-VAE, the top-level mean for a hierarchical VAE).

    Args:
      x: (B, *data_shape).

    Returns:
      (B, latent size).
    """
    if isinstance(model, HierarchicalVAE):
        return model.bottom_up(x)[0]
    if isinstance(model, VQVAE):
        return model.encode(x).reshape(x.shape[0], -1)
    if isinstance(model, VAE):
        return model.encode(x)[0]
    if isinstance(model, Autoencoder):
        return model.encode(x)
    raise ValueError(_UNKNOWN.format(type(model).__name__))


def _decode_mean(model: Any, z: jax.Array) -> jax.Array:
    """Data-space output of a latent point from :func:`encode_mean`."""
    if isinstance(model, HierarchicalVAE):
        mu_p, _ = model.prior_z1(z)
        return _mean_output(model, model.decode(mu_p))
    if isinstance(model, VQVAE):
        z_e = z.reshape(z.shape[0], model.num_latents, model.code_dim)
        idx = jnp.argmin(jnp.sum((z_e[:, :, None, :] - model.codebook[...][None, None]) ** 2,
                                 axis=-1), axis=-1)
        return model.decode(jnp.take(model.codebook[...], idx, axis=0))
    return _mean_output(model, model.decode(z))


@model_jit
def reconstruct(model: Any, x: jax.Array) -> jax.Array:
    """Decode the posterior mean (quantised code for a VQ-VAE): (B, ...) -> (B, ...)."""
    if isinstance(model, HierarchicalVAE):
        mu2, _, mu_hat, logvar_hat = model.bottom_up(x)
        mu_p, logvar_p = model.prior_z1(mu2)
        mu_q, _ = precision_weighted(mu_hat, logvar_hat, mu_p, logvar_p)  # mean of q(z1|x,mu2)
        return _mean_output(model, model.decode(mu_q))
    return _decode_mean(model, encode_mean(model, x))


def interpolate_latents(model: Any, x_a: jax.Array, x_b: jax.Array, num: int) -> jax.Array:
    """Decode ``num`` points on the segment between the latent means of ``x_a`` and ``x_b``.

    Args:
      x_a, x_b: (B, *data_shape) endpoints.
      num: points per segment, >= 2 (both ends included).

    Returns:
      (B, num, *data_shape).
    """
    num = checks.int_in_range("num", num, 2, 2**31 - 1)
    checks.same_shape("x_b", x_b, "x_a", x_a)
    za, zb = encode_mean(model, x_a), encode_mean(model, x_b)  # (B, Z)
    t = jnp.linspace(0.0, 1.0, num)  # (num,)
    z = (1.0 - t)[None, :, None] * za[:, None, :] + t[None, :, None] * zb[:, None, :]  # (B, num, Z)
    out = _decode_mean(model, z.reshape(-1, z.shape[-1]))  # (B num, ...)
    return out.reshape(x_a.shape[0], num, *out.shape[1:])


#: :func:`interpolate_latents` compiled once per shape (the model traced, ``num`` static).
interpolate = model_jit(interpolate_latents, static_argnames=("num",))


def fit_latent_gaussian(model: Autoencoder, x: jax.Array) -> Autoencoder:
    """A copy of ``model`` whose ``latent_mean``/``latent_std`` fit the codes of ``x``.

    Args:
      x: (n, *data_shape), n >= 2, finite.
    """
    if not isinstance(model, Autoencoder):
        raise ValueError(f"model must be an Autoencoder, got {type(model).__name__}")
    checks.shape("x", x, (None, *model.data_shape))
    if jnp.shape(x)[0] < 2:
        raise ValueError(f"x must hold n >= 2 examples to fit a Gaussian, got shape "
                         f"{jnp.shape(x)}")
    checks.finite("x", x)
    z = model.encode(x)  # (n, L)
    out = jax.tree.map(lambda a: a, model)  # a fresh Module sharing no Variables
    out.latent_mean[...] = jnp.mean(z, axis=0)
    out.latent_std[...] = jnp.std(z, axis=0) + 1e-6  # keep the std positive for a collapsed code
    return out
