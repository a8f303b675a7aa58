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

from genjax import checks
from genjax.model import Model, model_jit

__all__ = ["sample", "sample_from_noise"]


@model_jit
def sample_from_noise(model: Model, noise: jax.Array, labels: jax.Array | None = None) -> Any:
    """``G(z)`` (or ``G(z, labels)``) for given latents: the deterministic part of :func:`sample`.

    Args:
      model: the generator, ``model(z (n, latent_dim) [, labels (n,)]) -> (n, ...)``.
      noise: ``(n, latent_dim)`` latents ``z``.
      labels: ``(n,)`` int class labels for a conditional generator, or None.

    Returns:
      ``(n, ...)`` samples in the generator's output space (``[-1, 1]`` for DCGAN images).
    """
    checks.ndim("noise", noise, 2, "(n, latent_dim)")
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
      >>> g = MLPGenerator(8, (64,), 2, rngs=nnx.Rngs(0))
      >>> x = sample(jax.random.key(1), g, 500)   # (500, 2)
    """
    n = checks.positive_int("n", n)
    latent_dim = getattr(model, "latent_dim", None)
    if latent_dim is None:
        raise ValueError(f"model must have a latent_dim attribute (a generator), got "
                         f"{type(model).__name__}")
    z = jax.random.normal(key, (n, latent_dim))  # z ~ N(0, I)
    return sample_from_noise(model, z, labels)
