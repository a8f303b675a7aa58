"""Sampling a GAN: ``x = G(z)``, ``z ~ N(0, I)`` (Goodfellow et al. 2014, sec. 3).

A generator is a model in genjax's protocol: a callable pytree -- the generator
``nnx.Module`` itself (:class:`genjax.gan.MLPGenerator`, :class:`genjax.gan.DCGANGenerator`)
-- with a ``latent_dim`` attribute, called ``model(z)`` or, class-conditional (Mirza &
Osindero 2014), ``model(z, labels)``. Both functions compile once per shape with the model
traced (``genjax.model.model_jit``): the weights are arguments of the program, so a trained
generator, its EMA copy and every checkpoint share one compilation.

    z = noise (n, latent_dim) ~ N(0, I)          (drawn from ``key`` by :func:`sample`)
    x = G(z [, labels])                          (:func:`sample_from_noise`)
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import checks
from genjax.model import Model, model_jit

__all__ = ["sample", "sample_from_noise"]


def _check_call(model: Model, noise: jax.Array, labels: jax.Array | None) -> None:
    """Shapes always; values (NaN latents, labels in range) when concrete."""
    checks.ndim("noise", noise, 2, "(n, latent_dim)")
    latent_dim = getattr(model, "latent_dim", None)
    if latent_dim is not None:
        checks.shape("noise", noise, (None, int(latent_dim)))
    checks.finite("noise", noise)
    num_classes = getattr(model, "num_classes", None)
    if labels is None:
        if num_classes is not None:
            raise ValueError(f"labels (n,) are required: the generator has "
                             f"num_classes={num_classes}")
        return
    if num_classes is None and isinstance(model, nnx.Module):
        raise ValueError("labels given to an unconditional generator (it has no num_classes)")
    checks.integer_array("labels", labels)
    checks.shape("labels", labels, (jnp.shape(noise)[0],))
    if num_classes is not None:
        checks.token_ids("labels", labels, int(num_classes))


def sample_from_noise(model: Model, noise: jax.Array, labels: jax.Array | None = None) -> Any:
    """``G(z)`` (or ``G(z, labels)``) for given latents: the deterministic part of :func:`sample`.

    Args:
      model: the generator, ``model(z (n, latent_dim) [, labels (n,)]) -> (n, ...)``.
      noise: ``(n, latent_dim)`` latents ``z``.
      labels: ``(n,)`` int class labels for a conditional generator, or None.

    Returns:
      ``(n, ...)`` samples in the generator's output space (``[-1, 1]`` for DCGAN images).

    Example:
      >>> g = MLPGenerator(4, (8,), 2, rngs=nnx.Rngs(0))
      >>> x = sample_from_noise(g, jax.random.normal(jax.random.key(0), (5, 4)))
      >>> bool(jnp.array_equal(x, sample(jax.random.key(0), g, 5)))  # z = normal(key, (n, 4))
      True
    """
    _check_call(model, noise, labels)
    return _sample_from_noise(model, noise, labels)


@model_jit
def _sample_from_noise(model: Model, noise: jax.Array, labels: jax.Array | None = None) -> Any:
    if labels is None:
        return model(noise)
    checks.integer_array("labels", labels)
    checks.shape("labels", labels, (noise.shape[0],))
    return model(noise, labels)


@functools.partial(model_jit, static_argnames=("n",))
def sample(key: jax.Array, model: Model, n: int, labels: jax.Array | None = None) -> Any:
    """``n`` samples ``G(z)``, ``z ~ N(0, I)`` of shape ``(n, model.latent_dim)``.

    Args:
      key: PRNG key; ``z = jax.random.normal(key, (n, model.latent_dim))``.
      model: the generator (a callable pytree with ``latent_dim``; see the module docstring).
      n: number of samples, >= 1 (static).
      labels: ``(n,)`` int labels for a conditional generator, or None.

    Returns:
      ``(n, ...)`` samples.

    Example:
      >>> g = MLPGenerator(8, (16,), 2, rngs=nnx.Rngs(0))
      >>> sample(jax.random.key(1), g, 500).shape
      (500, 2)
    """
    n = checks.positive_int("n", n)
    latent_dim = getattr(model, "latent_dim", None)
    if latent_dim is None:
        raise ValueError(f"model must have a latent_dim attribute (a generator), got "
                         f"{type(model).__name__}")
    z = jax.random.normal(key, (n, latent_dim))  # z ~ N(0, I)
    _check_call(model, z, labels)
    return _sample_from_noise(model, z, labels)
