"""The composites under genjax.testing's conformance suites.

Samplers (``assert_sampler_conforms``): ``latent_diffusion.sample`` (DDIM in a VAE's latent space,
decoded) and ``text_to_image.sample`` (classifier-free guided DDIM on a text context), two
tiny models of one structure from different init keys each; their noise twins
``*.sample_from_noise`` on the ``x_T`` that :func:`genjax.diffusion.ddim_sample` draws
(``normal(split(key)[0], shape)``). Losses (``assert_loss_conforms``): ``latent_diffusion.loss`` and
``text_to_image_loss``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import diffusion, vae
from genjax.composites import latent_diffusion as ld
from genjax.composites import text_to_image as t2i
from genjax.nn import MLPDenoiser
from genjax.testing import LossCase, SamplerCase, assert_loss_conforms, assert_sampler_conforms

SCHEDULE = diffusion.schedules.linear(20)
STEPS = 3  # DDIM steps
SHAPE = (4, 4, 1)
N = 2


def _ld(seed: int, hidden: int = 8) -> ld.LatentDiffusion:
    # (assert_sampler_conforms's second model is the compile-once check: no compilation
    # for new weights)
    k_vae, k_den = jax.random.split(jax.random.key(seed))
    return ld.LatentDiffusion(
        vae.mlp_vae(SHAPE, 2, rngs=nnx.Rngs(k_vae), hidden_sizes=(hidden,)),
        MLPDenoiser(2, [hidden], time_embed_dim=4, rngs=nnx.Rngs(k_den)),
    )


def _x_T(key, shape):
    """What ``diffusion.ddim_sample`` draws as its start from ``key``."""
    return jax.random.normal(jax.random.split(key)[0], shape)


def test_latent_diffusion_sample_conforms():
    models = [_ld(0), _ld(1)]
    assert_sampler_conforms(SamplerCase(
        name="latent_diffusion.sample",
        sample=lambda key, m: ld.sample(key, m, N, SCHEDULE, num_steps=STEPS),
        models=models,
        from_noise=lambda key, m: ld.sample_from_noise(m, _x_T(key, (N, 2)), SCHEDULE,
                                                       num_steps=STEPS),
        bad_arguments=[(lambda: ld.sample(jax.random.key(0), models[0], 0, SCHEDULE,
                                          num_steps=STEPS), "n"),
                       (lambda: ld.sample_from_noise(models[0], jnp.zeros((N, 3)), SCHEDULE,
                                                     num_steps=STEPS), "z_T")],
    ))


class _ContextDenoiser(nnx.Module):
    """A tiny context-conditioned eps model, the call signature of a U-Net with context_dim:
    ``eps = W flat(x_t) + cos(t / 10) V mean_l(context_l)``. (The recipe's U-Net runs
    through the same sampler in tests/composites/test_recipes.py.)"""

    def __init__(self, dim: int, width: int, *, rngs: nnx.Rngs):
        self.x_proj = nnx.Linear(dim, dim, rngs=rngs)
        self.c_proj = nnx.Linear(width, dim, rngs=rngs)

    def __call__(self, x_t, t, *, context):
        B = x_t.shape[0]
        c = self.c_proj(jnp.mean(context, axis=1)) * jnp.cos(t / 10.0)[:, None]  # (B, D)
        return (self.x_proj(x_t.reshape(B, -1)) + c).reshape(x_t.shape)


def _denoiser(seed: int) -> _ContextDenoiser:
    return _ContextDenoiser(16, 3, rngs=nnx.Rngs(seed))


CONTEXT = jax.random.normal(jax.random.key(5), (N, 2, 3))  # (B, L, W) token features
NULL = jnp.zeros((1, 2, 3))


def test_text_to_image_sample_conforms():
    models = [_denoiser(0), _denoiser(1)]
    options = dict(num_steps=STEPS, guidance_scale=2.0)
    assert_sampler_conforms(SamplerCase(
        name="text_to_image.sample",
        sample=lambda key, m: t2i.sample(key, m, CONTEXT, NULL, SHAPE, SCHEDULE, **options),
        models=models,
        from_noise=lambda key, m: t2i.sample_from_noise(m, _x_T(key, (N, *SHAPE)), CONTEXT,
                                                        NULL, SCHEDULE, **options),
        bad_arguments=[(lambda: t2i.sample(jax.random.key(0), models[0], CONTEXT[0], NULL,
                                           SHAPE, SCHEDULE, **options), "context"),
                       (lambda: t2i.sample(jax.random.key(0), models[0], CONTEXT,
                                           jnp.zeros((3, 2, 3)), SHAPE, SCHEDULE, **options),
                        "null_context")],
    ))


def test_latent_diffusion_loss_conforms():
    model = _ld(0)
    x = jax.random.uniform(jax.random.key(3), (3, *SHAPE))
    assert_loss_conforms(LossCase(
        name="latent_diffusion.loss", loss=functools.partial(ld.loss, schedule=SCHEDULE),
        model=model, batch=x,
        bad_arguments=[(lambda: ld.loss(model, x[:, :2], jax.random.key(0), schedule=SCHEDULE),
                        "x")],
    ))


def test_text_to_image_loss_conforms():
    denoiser = _denoiser(0)
    x0 = 2.0 * jax.random.uniform(jax.random.key(4), (N, *SHAPE)) - 1.0
    assert_loss_conforms(LossCase(
        name="text_to_image_loss",
        loss=functools.partial(t2i.text_to_image_loss, schedule=SCHEDULE),
        model=denoiser, batch=(x0, CONTEXT),
        bad_arguments=[(lambda: t2i.text_to_image_loss(denoiser, (x0, CONTEXT[:1, 0]),
                                                       jax.random.key(0), schedule=SCHEDULE),
                        "context")],
    ))
