"""Bad and extreme inputs to the composites (latent diffusion, text-to-image) (issue 16).

Finding 7 for text-to-image: caption token ids are range-checked against the text
encoder's vocabulary (with an ``<eos>`` per caption) before :func:`text_context` runs its
compiled program.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import diffusion, vae
from genjax.composites import latent_diffusion as ld
from genjax.composites import text_to_image as t2i
from genjax.contrastive import CLIP, captions
from genjax.nn import MLPDenoiser
from genjax.testing import BadInput, assert_handled

KEY = jax.random.key(0)
SCHEDULE = diffusion.schedules.linear(10)
SHAPE = (4, 4, 1)
LD = ld.LatentDiffusion(vae.mlp_vae(SHAPE, 2, rngs=nnx.Rngs(0), hidden_sizes=(8,)),
                        MLPDenoiser(2, [8], time_embed_dim=4, rngs=nnx.Rngs(1)))
X = jax.random.uniform(jax.random.key(1), (3, *SHAPE))
CLIP_MODEL = CLIP(embed_dim=4, image_widths=(8,), image_hidden=8, text_width=8, text_depth=1,
                  num_heads=2, rngs=nnx.Rngs(0))
TOKENS = jnp.asarray(captions.tokenize(["a one", "a two"]))
NULL = jnp.asarray(captions.empty_caption())
CTX = jnp.ones((2, 3, 5))


def fake_eps(x_t, t, context=None):  # eps = x_t * mean(context), a known answer
    return x_t * jnp.mean(context, axis=(1, 2)).reshape((-1,) + (1,) * (x_t.ndim - 1))


def _case(name, call, argument="", kind="reject", check=None):
    return BadInput(name, call, argument, kind, check)


CASES = [
    # --- latent diffusion ---------------------------------------------------------------
    _case("latent_diffusion.encode_latents: x of the wrong shape",
          lambda: ld.encode_latents(KEY, LD, jnp.zeros((3, 5, 5, 1))), "x"),
    _case("latent_diffusion.encode_latents: x with NaN",
          lambda: ld.encode_latents(KEY, LD, X.at[0, 0, 0, 0].set(jnp.nan)), "x"),
    _case("latent_diffusion.loss: batch of the wrong shape",
          lambda: ld.loss(LD, jnp.zeros((3, 2, 2, 1)), KEY, schedule=SCHEDULE), "x"),
    _case("latent_diffusion.loss: batch with NaN",
          lambda: ld.loss(LD, X.at[1].set(jnp.nan), KEY, schedule=SCHEDULE), "batch"),
    _case("latent_diffusion.sample_from_noise: z_T of the wrong latent size",
          lambda: ld.sample_from_noise(LD, jnp.zeros((2, 3)), SCHEDULE, num_steps=2), "z_T"),
    _case("latent_diffusion.sample_from_noise: z_T with NaN",
          lambda: ld.sample_from_noise(LD, jnp.full((2, 2), jnp.nan), SCHEDULE, num_steps=2),
          "z_T"),
    _case("latent_diffusion.sample: n 0",
          lambda: ld.sample(KEY, LD, 0, SCHEDULE, num_steps=2), "n"),
    _case("latent_diffusion.sample: num_steps 0",
          lambda: ld.sample(KEY, LD, 2, SCHEDULE, num_steps=0), "num_steps"),
    # --- text-to-image ------------------------------------------------------------------
    _case("text_to_image.caption_dropout: p_uncond > 1",
          lambda: t2i.caption_dropout(KEY, TOKENS, 1.5, NULL), "p_uncond"),
    _case("text_to_image.caption_dropout: null_tokens of the wrong length",
          lambda: t2i.caption_dropout(KEY, TOKENS, 0.1, NULL[:5]), "null_tokens"),
    _case("text_to_image.caption_dropout: tokens 1-D",
          lambda: t2i.caption_dropout(KEY, TOKENS[0], 0.1, NULL), "tokens"),
    _case("text_to_image.text_context: token id >= vocabulary (finding 7)",
          lambda: t2i.text_context(CLIP_MODEL, TOKENS.at[0, 2].set(99)), "tokens"),
    _case("text_to_image.text_context: negative token id (finding 7)",
          lambda: t2i.text_context(CLIP_MODEL, TOKENS.at[1, 2].set(-3)), "tokens"),
    _case("text_to_image.text_context: float tokens",
          lambda: t2i.text_context(CLIP_MODEL, TOKENS.astype(float)), "tokens"),
    _case("text_to_image.guided_context_eps_fn: scale a vector",
          lambda: t2i.guided_context_eps_fn(fake_eps, CTX, CTX[:1], jnp.ones(2)), "scale"),
    _case("text_to_image.guided_context_eps_fn: scale NaN",
          lambda: t2i.guided_context_eps_fn(fake_eps, CTX, CTX[:1], jnp.nan), "scale"),
    _case("text_to_image.guided_context_eps_fn: context 2-D",
          lambda: t2i.guided_context_eps_fn(fake_eps, CTX[0], CTX[:1], 1.0), "context"),
    _case("text_to_image.guided_context_eps_fn: null_context width differs",
          lambda: t2i.guided_context_eps_fn(fake_eps, CTX, jnp.ones((1, 3, 4)), 1.0),
          "null_context"),
    _case("text_to_image.text_to_image_loss: context batch differs",
          lambda: t2i.text_to_image_loss(fake_eps, (jnp.zeros((3, 2, 2, 1)), CTX), KEY,
                                         schedule=SCHEDULE), "context"),
    _case("text_to_image.text_to_image_loss: x0 with NaN",
          lambda: t2i.text_to_image_loss(fake_eps, (jnp.full((2, 2, 2, 1), jnp.nan), CTX), KEY,
                                         schedule=SCHEDULE), "x0"),
    _case("text_to_image.sample_from_noise: context batch differs from x_T",
          lambda: t2i.sample_from_noise(fake_eps, jnp.zeros((3, 2, 2, 1)), CTX, CTX[:1],
                                        SCHEDULE, num_steps=2, guidance_scale=1.0), "context"),
    _case("text_to_image.sample_from_noise: guidance_scale NaN",
          lambda: t2i.sample_from_noise(fake_eps, jnp.zeros((2, 2, 2, 1)), CTX, CTX[:1],
                                        SCHEDULE, num_steps=2, guidance_scale=jnp.nan),
          "guidance_scale"),
    _case("text_to_image.sample: image_shape with a 0",
          lambda: t2i.sample(KEY, fake_eps, CTX, CTX[:1], (0, 2, 1), SCHEDULE, num_steps=2,
                             guidance_scale=1.0), "image_shape"),
    _case("text_to_image.sample: num_steps 0",
          lambda: t2i.sample(KEY, fake_eps, CTX, CTX[:1], (2, 2, 1), SCHEDULE, num_steps=0,
                             guidance_scale=1.0), "num_steps"),
    # --- valid extremes -----------------------------------------------------------------
    _case("text_to_image.caption_dropout: p_uncond 0 keeps every caption",
          lambda: t2i.caption_dropout(KEY, TOKENS, 0.0, NULL), kind="extreme",
          check=lambda t: np.array_equal(np.asarray(t), np.asarray(TOKENS))),
    _case("text_to_image.guided_context_eps_fn: guidance scale 0 is the unconditional model",
          lambda: t2i.guided_context_eps_fn(fake_eps, CTX, 0.5 * CTX[:1], 0.0)(
              jnp.ones((2, 2, 2, 1)), jnp.zeros(2, jnp.int32)), kind="extreme",
          check=lambda e: np.allclose(np.asarray(e), 0.5)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_handled(case):
    assert_handled(case)
