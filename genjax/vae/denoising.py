"""Denoising autoencoder: reconstruct the clean input from a corrupted copy.

Vincent, Larochelle, Bengio & Manzagol (2008), "Extracting and Composing Robust Features
with Denoising Autoencoders", ICML, sec. 2.3: draw a corrupted ``x~ ~ q_D(x~ | x)``, encode
and decode it, and penalise the distance to the *clean* ``x``:

    L(theta) = E_{x ~ data} E_{x~ ~ q_D(.|x)} || x - g(f(x~)) ||^2.

Two corruptions ``q_D``:

* ``"gaussian"``: ``x~ = x + sigma eps``, ``eps ~ N(0, I)`` (the additive isotropic
  Gaussian noise of Vincent et al. 2010, JMLR, sec. 4.2);
* ``"masking"``: each input set to 0 with probability ``nu`` (the 2008 paper's
  corruption), ``x~ = x * 1[u >= nu]``, ``u ~ U(0, 1)``.

Why the squared error learns the posterior mean: for a fixed ``x~`` the minimiser of
``E[||x - D(x~)||^2 | x~]`` over ``D(x~)`` is ``E[x | x~]`` (the orthogonality principle:
``E[(x - E[x|x~]) . h(x~)] = 0`` for every ``h``), so the loss-minimising denoiser is the
posterior mean; under Gaussian corruption it is Tweedie's ``x~ + sigma^2 grad log p_sigma(x~)``
(Efron 2011, eq. 2.8), which :meth:`genjax.targets.GaussianMixture.denoise` computes
exactly (``alpha = 1``). ``tests/vae/test_dae.py`` holds a trained DAE to it on the ring.

Sampling: a DAE defines a Markov chain that alternates corruption and denoising,
``x~_t = x_t + sigma eps_t``, ``x_{t+1} = g(f(x~_t))`` (Bengio, Yao, Alain & Vincent 2013,
"Generalized Denoising Auto-Encoders as Generative Models", Algorithm 1, with the
reconstruction distribution replaced by its mean): :func:`chain_sample`. With the mean in
place of a draw the chain's states lie on the denoiser's image -- pulled towards the modes
and the ridges between them -- not on the data law: it pictures what the DAE learned; it is
not a calibrated sampler (on the ring its points trace the circle through the modes).

Training over a *range* of noise levels (``noise_level`` and ``max_noise_level``: each
example draws ``sigma ~ U[noise_level, max_noise_level]``) gives one noise-blind denoiser
for every level in the range (as the recipe ``dae`` reports it), instead of one model per
level.

The model is :class:`genjax.vae.Autoencoder` (``f`` = encoder, ``g`` = decoder; the
overcomplete case is allowed: the corruption, not a bottleneck, keeps it from copying). It is
the traced first argument of :func:`dae_loss` and :func:`denoise` (DESIGN.md's protocol).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.model import model_jit
from genjax.vae.model import Autoencoder

__all__ = [
    "CORRUPTIONS",
    "draw_corruption_noise",
    "corrupt_from_noise",
    "corrupt",
    "denoise",
    "dae_loss",
    "denoising_errors",
    "chain_sample_from_noise",
    "chain_sample",
]

CORRUPTIONS = ("gaussian", "masking")
"""The corruptions of the denoising autoencoder: additive ``"gaussian"`` noise or ``"masking"``."""


def _check_level(name: str, value: Any, corruption: str) -> None:
    if corruption == "masking":
        checks.probability(name, value)
    else:
        checks.nonnegative(name, value)


def draw_corruption_noise(key: jax.Array, shape: tuple[int, ...], corruption: str = "gaussian",
                          dtype: Any = jnp.float32) -> jax.Array:
    """The noise :func:`corrupt` draws: standard normal (gaussian) or U(0, 1) (masking)."""
    checks.one_of("corruption", corruption, CORRUPTIONS)
    if corruption == "gaussian":
        return jax.random.normal(key, shape, dtype)
    return jax.random.uniform(key, shape, dtype)


def corrupt_from_noise(x: jax.Array, noise: jax.Array, noise_level: Any,
                       corruption: str = "gaussian") -> jax.Array:
    """The corruption ``q_D(x~ | x)`` as a map of given noise (the noise twin of :func:`corrupt`).

    Args:
      x: (B, ...) clean data.
      noise: like ``x``: standard normal (gaussian) or uniform on [0, 1) (masking).
      noise_level: ``sigma >= 0`` (gaussian) or the masking probability ``nu`` in [0, 1]; a
        scalar or (B,) (one level per example).
      corruption: ``"gaussian"`` or ``"masking"``.

    Returns:
      ``x~``, like ``x``: ``x + sigma noise`` or ``where(noise < nu, 0, x)``.
    """
    checks.one_of("corruption", corruption, CORRUPTIONS)
    checks.same_shape("noise", noise, "x", x)
    level = jnp.asarray(noise_level, x.dtype)
    if level.ndim == 1:
        checks.shape("noise_level", level, (x.shape[0],))
        level = level.reshape(x.shape[0], *([1] * (x.ndim - 1)))  # (B, 1, ..., 1)
    elif level.ndim != 0:
        raise ValueError(f"noise_level must be a scalar or have shape (B,)=({x.shape[0]},), "
                         f"got {level.shape}")
    if corruption == "gaussian":
        return x + level * noise  # x~ = x + sigma eps
    return jnp.where(noise < level, jnp.zeros_like(x), x)  # zeroed with probability nu


def corrupt(key: jax.Array, x: jax.Array, noise_level: Any,
            corruption: str = "gaussian") -> jax.Array:
    """``x~ ~ q_D(. | x)``: :func:`corrupt_from_noise` of :func:`draw_corruption_noise`.

    Args:
      key: PRNG key.
      x: (B, ...).
      noise_level: scalar or (B,); ``sigma >= 0`` or ``nu`` in [0, 1].
      corruption: ``"gaussian"`` or ``"masking"``.
    """
    checks.one_of("corruption", corruption, CORRUPTIONS)
    _check_level("noise_level", noise_level, corruption)
    noise = draw_corruption_noise(key, x.shape, corruption, x.dtype)
    return corrupt_from_noise(x, noise, noise_level, corruption)


@model_jit
def denoise(model: Autoencoder, x_noisy: jax.Array) -> jax.Array:
    """``g(f(x~))``: the autoencoder's estimate of the clean input. (B, ...) -> (B, ...)."""
    checks.shape("x_noisy", x_noisy, (None, *model.data_shape))
    return model.decode(model.encode(x_noisy))


def dae_loss(model: Autoencoder, batch: jax.Array, key: jax.Array, *, noise_level: float = 0.3,
             max_noise_level: float | None = None,
             corruption: str = "gaussian") -> tuple[jax.Array, dict[str, jax.Array]]:
    """Denoising loss ``mean_b sum_d (x_b - g(f(x~_b)))_d^2`` (Vincent et al. 2008, sec. 2.3).

    Args:
      model: an :class:`Autoencoder` (the differentiated pytree).
      batch: (B, *data_shape) clean data.
      key: noise of the corruption (and of the levels when a range is given).
      noise_level: ``sigma >= 0`` (gaussian) or ``nu`` in [0, 1] (masking).
      max_noise_level: when given (>= ``noise_level``), each example draws its level
        uniformly from ``[noise_level, max_noise_level]``.
      corruption: ``"gaussian"`` or ``"masking"``.

    Returns:
      ``(loss, metrics)``: ``mse_per_dim`` (the loss over D) and ``noisy_mse_per_dim``
      (``||x - x~||^2 / D``, what doing nothing scores). One compiled program per model
      structure, shapes and corruption (the levels traced).

    Example:
      >>> model = mlp_autoencoder((4,), 2, rngs=nnx.Rngs(0), hidden_sizes=(8,))
      >>> loss, metrics = dae_loss(model, jnp.full((3, 4), 0.5), jax.random.key(0))
      >>> loss.shape, bool(loss > 0)
      ((), True)
    """
    if not isinstance(model, Autoencoder):
        raise ValueError(f"model must be an Autoencoder, got {type(model).__name__}")
    checks.one_of("corruption", corruption, CORRUPTIONS)
    checks.shape("batch", batch, (None, *model.data_shape))
    _check_level("noise_level", noise_level, corruption)
    high = noise_level
    if max_noise_level is not None:
        _check_level("max_noise_level", max_noise_level, corruption)
        if max_noise_level < noise_level:
            raise ValueError(f"max_noise_level must be >= noise_level={noise_level}, got "
                             f"{max_noise_level}")
        high = max_noise_level
    return _dae_loss(model, batch, key, low=noise_level, high=high, corruption=corruption)


@functools.partial(model_jit, static_argnames=("corruption",))
def _dae_loss(model: Autoencoder, batch: jax.Array, key: jax.Array, *, low: Any, high: Any,
              corruption: str) -> tuple[jax.Array, dict[str, jax.Array]]:
    x = batch
    level_key, noise_key = jax.random.split(key)
    level = jax.random.uniform(level_key, (x.shape[0],), x.dtype, low, high)  # (B,)
    noise = draw_corruption_noise(noise_key, x.shape, corruption, x.dtype)
    x_noisy = corrupt_from_noise(x, noise, level, corruption)
    sq = jnp.sum((x - denoise(model, x_noisy)).reshape(x.shape[0], -1) ** 2, axis=-1)  # (B,)
    noisy = jnp.sum((x - x_noisy).reshape(x.shape[0], -1) ** 2, axis=-1)
    d = math.prod(model.data_shape)
    loss = jnp.mean(sq)
    return loss, {"mse_per_dim": loss / d, "noisy_mse_per_dim": jnp.mean(noisy) / d}


def denoising_errors(key: jax.Array, model: Autoencoder, x: jax.Array, noise_levels: Any,
                     corruption: str = "gaussian") -> dict[str, jax.Array]:
    """Mean squared error per dimension to the clean data at each noise level.

    The same noise for every level (common random numbers): the ``j``-th level corrupts
    with ``noise_levels[j] * eps``.

    Args:
      key: noise of the corruption.
      model: an :class:`Autoencoder`.
      x: (B, *data_shape) clean data.
      noise_levels: (J,) levels (``sigma >= 0`` or ``nu`` in [0, 1]).
      corruption: ``"gaussian"`` or ``"masking"``.

    Returns:
      ``denoised`` (J,): ``mean ||x - g(f(x~))||^2 / D``; ``noisy`` (J,):
      ``mean ||x - x~||^2 / D``.
    """
    checks.one_of("corruption", corruption, CORRUPTIONS)
    levels = jnp.asarray(noise_levels, jnp.float32)
    checks.ndim("noise_levels", levels, 1, "(J,)")
    _check_level("noise_levels", noise_levels, corruption)
    checks.shape("x", x, (None, *model.data_shape))
    return _denoising_errors(key, model, x, levels, corruption=corruption)


@functools.partial(model_jit, static_argnames=("corruption",))
def _denoising_errors(key: jax.Array, model: Autoencoder, x: jax.Array, levels: jax.Array, *,
                      corruption: str) -> dict[str, jax.Array]:
    noise = draw_corruption_noise(key, x.shape, corruption, x.dtype)

    def at(level: jax.Array) -> tuple[jax.Array, jax.Array]:
        x_noisy = corrupt_from_noise(x, noise, level, corruption)
        return (jnp.mean(jnp.square(x - denoise(model, x_noisy))),
                jnp.mean(jnp.square(x - x_noisy)))

    denoised, noisy = jax.lax.map(at, levels.astype(x.dtype))  # (J,) each
    return {"denoised": denoised, "noisy": noisy}


@model_jit
def chain_sample_from_noise(model: Autoencoder, x0: jax.Array, noise: jax.Array,
                            noise_level: Any) -> jax.Array:
    """The corrupt-denoise chain on given noise: ``x_{t+1} = g(f(x_t + sigma eps_t))``.

    Args:
      model: an :class:`Autoencoder` trained as a DAE.
      x0: (n, *data_shape) start.
      noise: (T, n, *data_shape) standard normal, one draw per step.
      noise_level: sigma (scalar, may be traced).

    Returns:
      (n, *data_shape), the state after T steps.

    Example:
      >>> model = mlp_autoencoder((4,), 2, rngs=nnx.Rngs(0), hidden_sizes=(8,))
      >>> chain_sample_from_noise(model, jnp.zeros((3, 4)), jnp.zeros((5, 3, 4)), 0.3).shape
      (3, 4)
    """
    checks.shape("x0", x0, (None, *model.data_shape))
    checks.shape("noise", noise, (None, *x0.shape))

    def step(x: jax.Array, eps: jax.Array) -> tuple[jax.Array, None]:
        return denoise(model, x + noise_level * eps), None  # corrupt, then denoise

    x, _ = jax.lax.scan(step, x0, noise)
    return x


def chain_sample(key: jax.Array, model: Autoencoder, n: int, *, noise_level: float,
                 num_steps: int = 20) -> jax.Array:
    """``n`` samples of the DAE's chain (Bengio et al. 2013) from ``x_0 = 0``: one program.

    Args:
      key: PRNG key; the noise is ``normal(key, (num_steps, n, *data_shape))``.
      model: an :class:`Autoencoder` trained as a Gaussian DAE at (about) ``noise_level``.
      n: number of chains, >= 1.
      noise_level: sigma > 0 of the corruption step.
      num_steps: T >= 1.

    Returns:
      (n, *data_shape).

    Example:
      >>> model = mlp_autoencoder((4,), 2, rngs=nnx.Rngs(0), hidden_sizes=(8,))
      >>> chain_sample(jax.random.key(0), model, 3, noise_level=0.3, num_steps=5).shape
      (3, 4)
    """
    if not isinstance(model, Autoencoder):
        raise ValueError(f"model must be an Autoencoder, got {type(model).__name__}")
    n = checks.positive_int("n", n)
    num_steps = checks.positive_int("num_steps", num_steps)
    checks.positive("noise_level", noise_level)
    return _chain_sample(key, model, n=n, noise_level=noise_level, num_steps=num_steps)


@functools.partial(model_jit, static_argnames=("n", "num_steps"))
def _chain_sample(key: jax.Array, model: Autoencoder, *, n: int, noise_level: Any,
                  num_steps: int) -> jax.Array:
    noise = jax.random.normal(key, (num_steps, n, *model.data_shape))
    x0 = jnp.zeros((n, *model.data_shape))
    return chain_sample_from_noise(model, x0, noise, noise_level)
