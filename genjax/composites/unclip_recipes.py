"""``genjax train unclip``: text -> CLIP image embedding -> digit (DALL-E 2's cascade, toy size).

The model (:mod:`genjax.composites.unclip`; Ramesh et al. 2022) is three networks trained
together on the captioned 8x8 digits, one loss the sum of three:

* CLIP (the contrastive family's encoders, :mod:`genjax.contrastive.recipes` sizes), by its
  own InfoNCE loss;
* the **prior**, an :class:`~genjax.composites.unclip.EmbeddingPrior` MLP, by the DDPM loss on
  (image embedding, caption embedding) pairs, the caption's embedding zeroed 10% of the time;
* the **decoder**, a :class:`genjax.nn.UNet` with the image embedding as its one cross-attention
  token, by the DDPM loss, the embedding zeroed 10% of the time.

Both embeddings reach the prior and decoder through ``stop_gradient``, so CLIP is shaped by the
contrastive objective alone (as text-to-digit trains its CLIP). Sampling: guided DDIM on the
prior, then guided DDIM on the decoder; ``genjax sample RUN --prompt "a handwritten three"
--guidance 3 --steps 20 --negative-prompt "a handwritten eight"`` (the negative caption's
embedding replaces the null one in the prior's guided mix).

The report (the shared judge, :func:`genjax.digit_classifier.digit_classifier`): how often the
samples are read as the requested digit at guidance 1 and 3 (prompts in every training
template) and at 3 with unseen templates -- the figure text-to-digit reports too -- and the two
stages apart: the decoder on the true embeddings of held-out digits (its ceiling), the prior's
samples classified zero-shot by CLIP; and negative prompts: how often the negated digit
appears among null-prompt samples guided away from it, against unconditional samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from genjax import checks, data, diffusion
from genjax.composites import text_to_image, unclip
from genjax.contrastive import captions
from genjax.contrastive import recipes as clip_recipes
from genjax.contrastive.network import clip_model_loss
from genjax.nn import UNet
from genjax.recipe import Recipe

NUM_CLASSES = clip_recipes.NUM_CLASSES
EMBED_DIM = clip_recipes.EMBED_DIM  # E: CLIP's embedding size, the prior's data dimension
# The prior runs without x0 clipping (embeddings are not in a box), so not the cosine schedule,
# whose last alpha (~5e-5 at T-1) turns a network's eps error into a wild first DDIM step (see
# composites.recipes.LD_T); the decoder uses text-to-digit's cosine one with clipping to [-1, 1].
PRIOR_SCHEDULE = diffusion.schedules.linear(1000)
DECODER_SCHEDULE = diffusion.schedules.cosine(1000)
PRIOR_HIDDEN = (256, 256)
DECODER_CHANNELS = 16  # the U-Net's base width (text-to-digit's)
DECODER_MULTS = (1, 2)  # its levels: 8x8 and 4x4 (read at init; tests use one level)
DECODER_ATTENTION = (1,)  # the levels with (cross-)attention to the image embedding
P_UNCOND = 0.1  # embedding dropout of both stages (Ramesh et al. sec. 2.1: 10%)
GUIDANCE_SCALE = 3.0  # both stages
DDIM_STEPS = 20  # both stages
REPORT_PER_DIGIT = 10  # read at call time (tests shorten them)
REPORT_DDIM_STEPS = 20
REPORT_HELD_OUT = 100  # held-out digits decoded from their own embeddings


def _nets(key: jax.Array) -> dict:
    k_prior, k_dec = jax.random.split(key)
    return {
        "prior": unclip.EmbeddingPrior(EMBED_DIM, PRIOR_HIDDEN, time_embed_dim=64,
                                       rngs=nnx.Rngs(k_prior)),
        "decoder": UNet(1, base_channels=DECODER_CHANNELS, channel_mults=DECODER_MULTS,
                        num_res_blocks=1, attention_levels=DECODER_ATTENTION,
                        context_dim=EMBED_DIM, num_heads=4, num_groups=8, rngs=nnx.Rngs(k_dec)),
    }


def uc_init(key: jax.Array, train_data: tuple) -> dict:
    """``{"clip": CLIP, "prior": EmbeddingPrior, "decoder": UNet}``, from scratch."""
    del train_data
    clip_key, net_key = jax.random.split(key)
    nets = jax.jit(lambda k: _nets(clip_recipes.init_key(k)))(net_key)  # one compilation
    return {"clip": clip_recipes.init_clip(clip_key), **nets}


def uc_loss(params: dict, batch: tuple, key: jax.Array) -> tuple[jax.Array, dict]:
    """CLIP loss + prior loss + decoder loss on ``batch = (images (b, 8, 8, 1), labels (b,))``."""
    images, labels = batch
    caption_key, drop_t, drop_i, prior_key, dec_key = jax.random.split(key, 5)
    x0 = clip_recipes.to_model_range(images)  # (b, 8, 8, 1) in [-1, 1]
    tokens = captions.sample_captions(caption_key, labels, jnp.asarray(clip_recipes.TABLE))
    clip_value, clip_metrics = clip_model_loss(params["clip"], (x0, tokens), key)
    z_image = unclip.image_embeddings(params["clip"], x0)  # (b, E), no gradient
    z_text = unclip.text_embeddings(params["clip"], tokens)  # (b, E), no gradient
    prior_value, _ = unclip.prior_loss(
        params["prior"], (z_image, unclip.embedding_dropout(drop_t, z_text, P_UNCOND)),
        prior_key, schedule=PRIOR_SCHEDULE)
    dec_value, _ = unclip.decoder_loss(
        params["decoder"], (x0, unclip.embedding_dropout(drop_i, z_image, P_UNCOND)), dec_key,
        schedule=DECODER_SCHEDULE)
    figures = {"clip_loss": clip_value, "prior_loss": prior_value, "decoder_loss": dec_value,
               "clip_accuracy": clip_metrics["accuracy"]}
    return clip_value + prior_value + dec_value, figures


def _captions(name: str, value: str | Sequence[str], n: int) -> list[str]:
    texts = [value] if isinstance(value, str) else list(value)
    if len(texts) not in (1, n):
        raise ValueError(f"{name}: expected one caption or {n}, got {len(texts)}")
    return texts * n if len(texts) == 1 else texts


def _cascade(key, params, text, negative, guidance, steps):
    images, z = unclip.sample(
        key, params["prior"], params["decoder"], text, (8, 8, 1), PRIOR_SCHEDULE,
        DECODER_SCHEDULE, prior_steps=steps, decoder_steps=steps,
        prior_scale=jnp.float32(guidance), decoder_scale=jnp.float32(guidance),
        negative_text=negative)
    return jnp.clip((images + 1.0) / 2.0, 0.0, 1.0), z


def uc_sample(
    key: jax.Array,
    params: dict,
    n: int,
    *,
    prompt: str | Sequence[str] | None = None,
    guidance: float = GUIDANCE_SCALE,
    steps: int = DDIM_STEPS,
    negative_prompt: str | Sequence[str] | None = None,
) -> jax.Array:
    """``n`` digits ``(n, 8, 8, 1)`` in [0, 1]: prior then decoder, both guided.

    Args:
      key: PRNG key.
      params: the trained ``{"clip", "prior", "decoder"}``.
      n: number of images (>= 1).
      prompt: one caption, ``n`` captions, or None for "a handwritten zero", ... in turn.
      guidance: the guidance scale of both stages (0 unconditional, 1 conditional).
      steps: DDIM steps of each stage, in ``[1, 1000]``.
      negative_prompt: one or ``n`` captions whose embedding replaces the null one in the
        prior's guided mix (``eps_neg + guidance (eps_prompt - eps_neg)``), or None.
    """
    n = checks.positive_int("n", n)
    if prompt is None:
        prompts = [captions.caption(i % NUM_CLASSES, "a handwritten {word}") for i in range(n)]
    else:
        prompts = _captions("prompt", prompt, n)
    text = unclip.text_embeddings(params["clip"], jnp.asarray(clip_recipes.prompt_tokens(prompts)))
    steps = checks.int_in_range("steps", steps, 1, PRIOR_SCHEDULE.num_steps)
    checks.finite("guidance", guidance)
    negative = None
    if negative_prompt is not None:
        negatives = _captions("negative_prompt", negative_prompt, n)
        negative = unclip.text_embeddings(
            params["clip"], jnp.asarray(clip_recipes.prompt_tokens(negatives, "negative_prompt")))
    return _cascade(key, params, text, negative, guidance, steps)[0]


def uc_report(key, params, train_data, test_data, out_dir: Path) -> dict:
    """``samples.png`` (one row per digit, "a handwritten <digit>", guidance 3) and the
    figures of the module docstring, judged by the shared digit classifier."""
    from genjax import plotting
    from genjax.digit_classifier import digit_classifier

    del train_data
    clf = digit_classifier()
    per = REPORT_PER_DIGIT
    labels = np.repeat(np.arange(NUM_CLASSES), per)  # (n,): one block per digit
    n = labels.size
    out: dict = {}

    def rate(images, wanted) -> float:
        return float(np.mean(np.asarray(clf.predict(np.asarray(images))) == wanted))

    def prompts_in(templates):
        return [captions.caption(d, templates[i % len(templates)]) for i, d in enumerate(labels)]

    for scale in (1.0, GUIDANCE_SCALE):
        images = uc_sample(key, params, n, prompt=prompts_in(captions.TEMPLATES), guidance=scale,
                           steps=REPORT_DDIM_STEPS)
        out[f"requested_digit_rate_guidance_{scale:g}"] = rate(images, labels)
    images = uc_sample(key, params, n, prompt=prompts_in(captions.UNSEEN_TEMPLATES),
                       guidance=GUIDANCE_SCALE, steps=REPORT_DDIM_STEPS)
    out[f"requested_digit_rate_unseen_templates_guidance_{GUIDANCE_SCALE:g}"] = rate(images, labels)

    # The decoder alone: held-out digits redrawn from their own CLIP image embeddings.
    test_x, test_y = (np.asarray(a)[:REPORT_HELD_OUT] for a in test_data)
    z_true = unclip.image_embeddings(params["clip"], clip_recipes.to_model_range(test_x))
    null = jnp.zeros((1, 1, EMBED_DIM))
    x_T = jax.random.normal(key, test_x.shape)
    redrawn = text_to_image.sample_from_noise(
        params["decoder"], x_T, z_true[:, None, :], null, DECODER_SCHEDULE,
        num_steps=REPORT_DDIM_STEPS, guidance_scale=jnp.float32(GUIDANCE_SCALE))
    out["decoder_digit_rate_from_true_embeddings"] = rate((redrawn + 1.0) / 2.0, test_y)

    # The prior alone: its embeddings classified zero-shot by CLIP's class text embeddings.
    grid_prompts = [captions.caption(d, "a handwritten {word}") for d in labels]
    text = unclip.text_embeddings(params["clip"], jnp.asarray(clip_recipes.prompt_tokens(
        grid_prompts)))  # (n, E)
    classes = text[::per]  # (10, E), one per digit
    z = unclip.sample_embeddings(key, params["prior"], text, PRIOR_SCHEDULE,
                                 num_steps=REPORT_DDIM_STEPS, scale=jnp.float32(GUIDANCE_SCALE))
    zero_shot = np.asarray(jnp.argmax(unclip.to_sphere(z) @ classes.T, axis=1))
    out["prior_zero_shot_rate"] = float(np.mean(zero_shot == labels))

    # Negative prompts: null prompt, guided away from "a handwritten <d>" (w = 3), against
    # unconditional samples (w = 0): how often is digit d drawn?
    zeros = jnp.zeros_like(text)
    away, _ = _cascade(key, params, zeros, text, GUIDANCE_SCALE, REPORT_DDIM_STEPS)
    plain, _ = _cascade(key, params, zeros, None, 0.0, REPORT_DDIM_STEPS)
    out["negated_digit_rate_unconditional"] = rate(plain, labels)
    out[f"negated_digit_rate_negative_prompt_guidance_{GUIDANCE_SCALE:g}"] = rate(away, labels)

    grid = uc_sample(key, params, n, prompt=grid_prompts, guidance=GUIDANCE_SCALE,
                     steps=REPORT_DDIM_STEPS)
    plotting.image_grid(np.asarray(grid), Path(out_dir) / "samples.png", nrow=per,
                        title=f"unclip (prior + decoder), guidance {GUIDANCE_SCALE:g}: one row "
                        "per digit")
    return out


RECIPES: tuple[Recipe, ...] = (
    Recipe(name="unclip", family="composites",
           summary="DALL-E 2's cascade: diffusion prior text -> CLIP image embedding, U-Net "
           "decoder embedding -> digit (Ramesh et al. 2022): --prompt, --negative-prompt",
           data="digits", init=uc_init, loss=uc_loss, sample=uc_sample, report=uc_report,
           steps=1500, batch_size=64, learning_rate=2e-3, ema_decay=0.99,
           load_data=data.load_with_labels,
           sample_options=("prompt", "guidance", "steps", "negative_prompt")),
)
