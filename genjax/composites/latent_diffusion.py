"""Latent diffusion: a diffusion model in the latent space of a VAE (Rombach et al. 2022).

Where the VAE and diffusion families meet, at toy size. A VAE (:mod:`genjax.vae`) maps data
to a low-dimensional latent ``z``; a DDPM noise-prediction network is trained on the
encoder's posterior samples with the VAE frozen; sampling runs DDIM in the latent space and
decodes:

    training:   z = mu(x) + sigma(x) eps',  eps' ~ N(0, I)        (q(z|x), stop-gradient)
                L = E_{t, eps} |eps - eps_theta(sqrt(ab_t) z + sqrt(1 - ab_t) eps, t)|^2
                                                                  (Ho et al. 2020, eq. 14)
    sampling:   z_T ~ N(0, I),  z_0 = DDIM(eps_theta, z_T)        (Song et al. 2021, eq. 12)
                x = E[x | z_0]                                    (the VAE decoder's mean)

Rombach et al. (2022, sec. 3.1) train the autoencoder first and keep it fixed; the
diffusion model then only has to learn the latent distribution, whose dimension is a
fraction of the data's. Here the first stage is a :class:`genjax.vae.VAE` (its prior
N(0, I) is the baseline the diffusion prior improves on, :func:`genjax.vae.sample`).

The model protocol: :class:`LatentDiffusion` is a pytree holding both Modules; every
function takes it as a traced argument (new weights never recompile) and the loss is
``loss(model, batch, key, *, schedule)``. Its gradient reaches the denoiser only.

References:
  Rombach, Blattmann, Lorenz, Esser, Ommer, "High-Resolution Image Synthesis with Latent
    Diffusion Models", CVPR 2022.
  Ho, Jain, Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020.
  Song, Meng, Ermon, "Denoising Diffusion Implicit Models", ICLR 2021.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax

from genjax import checks, diffusion, vae
from genjax.model import Model, model_jit

__all__ = ["LatentDiffusion", "encode_latents", "loss", "sample", "sample_from_noise"]

Schedule = Any  # genjax.diffusion.Schedule


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LatentDiffusion:
    """A VAE and a latent noise-prediction network, one model pytree.

    Attributes:
      vae: a :class:`genjax.vae.VAE` with latent size ``L``: ``encode(x) -> (mu, logvar)``
        ``(B, L)`` each, decoded to data by :func:`genjax.vae.sample_from_noise`.
      denoiser: ``denoiser(z_t (B, L), t (B,) int) -> eps (B, L)`` (e.g.
        :class:`genjax.nn.MLPDenoiser`).

    Example:
      >>> model = LatentDiffusion(vae.mlp_vae((4,), 2, rngs=nnx.Rngs(0), hidden_sizes=(8,)),
      ...                         jax.tree_util.Partial(lambda z, t: jnp.zeros_like(z)))
      >>> model.latent_dim
      2
    """

    vae: Model
    denoiser: Model

    @property
    def latent_dim(self) -> int:
        """L, the VAE's latent size (static)."""
        return self.vae.latent_dim


def encode_latents(key: jax.Array, model: LatentDiffusion, x: jax.Array) -> jax.Array:
    """Posterior samples ``z ~ q(z|x)`` of the (frozen) VAE: ``(B, *data_shape) -> (B, L)``.

    ``z = mu(x) + exp(logvar(x) / 2) eps`` (:func:`genjax.vae.reparameterize`), with the
    gradient stopped: the diffusion stage does not train the VAE.

    Example:
      >>> model = LatentDiffusion(vae.mlp_vae((4,), 2, rngs=nnx.Rngs(0), hidden_sizes=(8,)),
      ...                         jax.tree_util.Partial(lambda z, t: jnp.zeros_like(z)))
      >>> encode_latents(jax.random.key(0), model, jnp.zeros((3, 4))).shape
      (3, 2)
    """
    checks.shape("x", x, (None, *model.vae.data_shape))
    checks.finite("x", x)  # when concrete
    mu, logvar = model.vae.encode(x)  # (B, L) each
    return jax.lax.stop_gradient(vae.reparameterize(key, mu, logvar))


def loss(model: LatentDiffusion, batch: jax.Array, key: jax.Array, *,
         schedule: Schedule) -> tuple[jax.Array, dict]:
    """The DDPM loss of the denoiser on the VAE's posterior latents (module docstring).

    Args:
      model: the :class:`LatentDiffusion` (differentiated; the VAE gets a zero gradient).
      batch: ``(B, *data_shape)`` data.
      key: split into the posterior draw and the diffusion loss's ``t`` and ``eps``.
      schedule: the diffusion schedule.

    Returns:
      ``(loss, metrics)`` of :func:`genjax.diffusion.loss` on the latents (one compiled
      program per shape; the model and the schedule traced).
    """
    checks.finite("batch", batch)  # while concrete, before the compiled program
    return _loss(model, batch, key, schedule=schedule)


@model_jit
def _loss(model: LatentDiffusion, batch: jax.Array, key: jax.Array, *,
          schedule: Schedule) -> tuple[jax.Array, dict]:
    z_key, loss_key = jax.random.split(key)
    z = encode_latents(z_key, model, batch)  # (B, L), latents ~ q(z|x)
    return diffusion.loss(model.denoiser, z, loss_key, schedule=schedule)


def sample_from_noise(model: LatentDiffusion, z_T: jax.Array, schedule: Schedule, *,
                      num_steps: int) -> jax.Array:
    """DDIM (eta = 0) in the latent space from ``z_T (n, L)``, then the decoder's mean.

    Returns:
      ``(n, *data_shape)`` samples in data space.
    """
    checks.shape("z_T", z_T, (None, model.latent_dim))
    checks.finite("z_T", z_T)  # while concrete, before the compiled program
    return _sample_from_noise(model, z_T, schedule, num_steps=num_steps)


@functools.partial(model_jit, static_argnames=("num_steps",))
def _sample_from_noise(model: LatentDiffusion, z_T: jax.Array, schedule: Schedule, *,
                       num_steps: int) -> jax.Array:
    z = diffusion.ddim_sample_from_noise(model.denoiser, z_T, None, schedule,
                                         num_steps=num_steps)  # (n, L), z_0
    return vae.sample_from_noise(model.vae, z)  # E[x | z_0]


@functools.partial(model_jit, static_argnames=("n", "num_steps"))
def sample(key: jax.Array, model: LatentDiffusion, n: int, schedule: Schedule, *,
           num_steps: int) -> jax.Array:
    """``n`` samples: DDIM-``num_steps`` in the latent space, decoded by the VAE.

    One compiled program per shape and step count; the model (both Modules) is traced.

    Args:
      key: PRNG key: ``z_T = jax.random.normal(split(key)[0], (n, L))``, as
        :func:`genjax.diffusion.ddim_sample` draws it.
      model: the :class:`LatentDiffusion`.
      n: number of samples, >= 1 (static).
      schedule: the schedule the denoiser was trained with.
      num_steps: DDIM steps (static).

    Returns:
      ``(n, *data_shape)``.
    """
    n = checks.positive_int("n", n)
    z = diffusion.ddim_sample(key, model.denoiser, (n, model.latent_dim), schedule,
                              num_steps=num_steps)  # (n, L)
    return vae.sample_from_noise(model.vae, z)  # E[x | z_0]
