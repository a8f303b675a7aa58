"""Embeddings of a scalar time or noise level for conditioning networks.

Two standard ways to feed a diffusion time ``t`` (or a noise level) to a network:

* ``sinusoidal_embedding`` — the fixed sinusoidal position encoding of the
  Transformer (Vaswani et al., 2017, section 3.5), used as the timestep
  embedding of DDPM (Ho et al., 2020, appendix B) and most U-Nets since.
* ``GaussianFourierFeatures`` — random Fourier features (Tancik et al., 2020),
  the time embedding of the score-SDE models (Song et al., 2021, appendix H.1):
  frequencies drawn once from N(0, scale^2) and then kept fixed.

References:
  Vaswani et al., "Attention Is All You Need", NeurIPS 2017.
  Ho, Jain, Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020.
  Tancik et al., "Fourier Features Let Networks Learn High Frequency Functions in
  Low Dimensional Domains", NeurIPS 2020.
  Song et al., "Score-Based Generative Modeling through Stochastic Differential
  Equations", ICLR 2021.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import checks

__all__ = ["sinusoidal_embedding", "FourierFrequencies", "GaussianFourierFeatures"]


def _even_dim(dim: int) -> int:
    """An embedding size: an even integer >= 2 (sines and cosines in two halves)."""
    dim = checks.positive_int("dim", dim)
    if dim % 2:
        raise ValueError(f"dim must be an even integer >= 2, got {dim!r}")
    return dim


def sinusoidal_embedding(t: jax.Array, dim: int, *, max_period: float = 10_000.0) -> jax.Array:
    """Sinusoidal embedding of a batch of scalar times.

    With ``half = dim // 2`` and frequencies ``w_i = max_period^(-i / half)`` for
    ``i = 0 .. half - 1`` (Vaswani et al. 2017, sec. 3.5: ``1 / 10000^(2i/d)``),

        emb(t) = [sin(t w_0), ..., sin(t w_{half-1}), cos(t w_0), ..., cos(t w_{half-1})]

    i.e. the sines fill the first half of the feature axis and the cosines the
    second half (the concatenated layout of DDPM's code, not the interleaved
    sin/cos of the Transformer paper; the two differ only by a fixed
    permutation of features). Frequencies run from 1 down to ``1/max_period``
    (exclusive), so periods run from 2*pi up to nearly ``2*pi*max_period``.

    Args:
      t: (batch,) times; integer steps or floats. Integers are cast to float32.
      dim: embedding size, an even integer >= 2.
      max_period: the longest period scale (10,000 in both papers), > 0.

    Returns:
      (batch, dim) embedding, float32 for integer ``t``, else ``t``'s dtype.

    Example:
      >>> sinusoidal_embedding(jnp.arange(4), 8).shape
      (4, 8)
    """
    dim = _even_dim(dim)
    checks.positive("max_period", max_period)
    t = jnp.asarray(t)
    checks.shape("t", t, ("batch",))
    if not jnp.issubdtype(t.dtype, jnp.floating):
        t = t.astype(jnp.float32)
    half = dim // 2
    # w_i = max_period^(-i/half) = exp(-log(max_period) * i / half)
    freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=t.dtype) / half)  # (half,)
    args = t[:, None] * freqs[None, :]  # (batch, half)
    return jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)  # (batch, dim)


class FourierFrequencies(nnx.Variable):
    """Fixed random frequencies: an ``nnx.Variable`` that is not an ``nnx.Param``.

    A module holding them is still passed whole to ``jax.grad`` and the trainer: their
    gradient is exactly zero (``stop_gradient``), so plain gradient steps and Adam leave
    them unchanged. Only an update that moves a parameter without a gradient (weight
    decay) would: mask them out of it, e.g. ``optax.masked(decay, mask)`` with ``mask``
    False on the leaves of ``nnx.state(model, FourierFrequencies)``.
    """


class GaussianFourierFeatures(nnx.Module):
    """Random Fourier features of a scalar time (Tancik et al. 2020; Song et al. 2021).

        W ~ N(0, scale^2 I_{dim/2})          (drawn once at construction, fixed)
        emb(t) = [sin(2 pi t W), cos(2 pi t W)]

    Sines in the first half of the feature axis, cosines in the second, as
    ``sinusoidal_embedding``. ``scale = 16`` is the score-SDE default for
    continuous ``t in [0, 1]``; use a smaller scale for log-noise levels.

    The frequencies are stored as a ``FourierFrequencies`` variable (not a
    ``Param``) and pass through ``jax.lax.stop_gradient``, so they stay fixed
    even when the whole module is handed to ``jax.grad`` or the trainer (their
    gradient is exactly zero); see :class:`FourierFrequencies` for weight decay.

    Args:
      dim: embedding size, an even integer >= 2.
      rngs: ``nnx.Rngs``; the frequencies are drawn from ``rngs.params()``.
      scale: standard deviation of the frequencies, > 0.

    Example:
      >>> emb = GaussianFourierFeatures(32, rngs=nnx.Rngs(0))
      >>> emb(jnp.linspace(0.0, 1.0, 5)).shape
      (5, 32)
    """

    def __init__(self, dim: int, *, rngs: nnx.Rngs, scale: float = 16.0):
        dim = _even_dim(dim)
        checks.positive("scale", scale)
        # W ~ N(0, scale^2): (dim/2,)
        self.freqs = FourierFrequencies(scale * jax.random.normal(rngs.params(), (dim // 2,)))

    def __call__(self, t: jax.Array) -> jax.Array:
        """Embed a batch of times.

        Args:
          t: (batch,) times (integers are cast to float32).

        Returns:
          (batch, dim) features ``[sin(2 pi t W), cos(2 pi t W)]``.
        """
        t = jnp.asarray(t)
        checks.shape("t", t, ("batch",))
        if not jnp.issubdtype(t.dtype, jnp.floating):
            t = t.astype(jnp.float32)
        w = jax.lax.stop_gradient(self.freqs[...]).astype(t.dtype)  # (dim/2,), fixed
        args = 2.0 * math.pi * t[:, None] * w[None, :]  # (batch, dim/2)
        return jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)  # (batch, dim)
