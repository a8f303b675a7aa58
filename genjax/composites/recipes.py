"""``genjax train latent-diffusion | text-to-digit``: the jobs that join two families.

* ``latent-diffusion`` (the idea of Rombach et al. 2022 at toy size): a VAE with a 4-D latent
  is trained on the digits for the first half of the steps; then, with the VAE frozen, a DDPM
  noise-prediction network (:class:`genjax.nn.MLPDenoiser`) is trained on the encoder's
  posterior samples (:func:`genjax.composites.latent_diffusion.loss`); sampling runs DDIM in
  the latent space and decodes. Its report gives the VAE's held-out figures
  (:func:`genjax.vae.recipes.likelihood_report`) and compares the MMD to the test images of
  the decoded diffusion samples and of the VAE's own N(0, I) prior samples.
* ``text-to-digit``: a :class:`genjax.nn.UNet` denoiser conditioned by cross-attention on the
  per-token features of the CLIP text encoder (:mod:`genjax.composites.text_to_image`),
  trained with caption dropout and sampled by classifier-free guided DDIM;
  ``genjax sample RUN --prompt "a handwritten three" --guidance 3 --steps 20`` draws that
  digit, and ``--negative-prompt "a handwritten eight"`` steers away from another (the
  empty caption's branch of the guided mix becomes the negative caption's). **CLIP is
  trained jointly**: each step adds CLIP's loss on the same batch to the
  diffusion loss, and the text features reach the U-Net through ``stop_gradient``, so the
  text encoder is shaped by the contrastive objective alone -- it is CLIP's text encoder,
  as in Imagen and latent diffusion, where the U-Net never trains it -- while one training
  loop and one checkpoint hold the whole model. The report trains a separate classifier
  (logistic regression) on the real training digits and gives how often it recognises the
  requested digit in samples at guidance scales 0 (unconditional: chance, ~0.1), 1 and 3,
  with prompts in every training template, and at scale 3 with unseen templates.

Parameters hold the Modules themselves (pytrees of arrays): ``{"model": LatentDiffusion,
optimiser states, "step"}`` and ``{"clip": CLIP, "unet": UNet}``; every sample and figure
comes from the public functions of :mod:`genjax.composites`, which trace the models.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from genjax import checks, data, diffusion, metrics, vae
from genjax.composites import latent_diffusion as ld
from genjax.composites import text_to_image
from genjax.contrastive import captions
from genjax.contrastive import recipes as clip_recipes
from genjax.contrastive.network import clip_model_loss
from genjax.nn import MLPDenoiser, UNet
from genjax.recipe import Recipe
from genjax.vae import recipes as vae_recipes

# --------------------------------------------------------------------------------------
# latent-diffusion: a VAE, then DDPM in its latent space
# --------------------------------------------------------------------------------------

LD_LATENT = 4  # latent size of the autoencoder the diffusion model lives in
LD_STEPS = 6000  # total steps: the first half trains the VAE, the second the denoiser
LD_T = 1000  # diffusion steps of the linear schedule (Ho et al. 2020). Not the cosine one:
# its clipped last beta (0.999) leaves alpha_bar[T-1] so small that DDIM's first step
# multiplies the network's eps error by sqrt(alpha_bar[t'] / alpha_bar[T-1]) and the
# samples blew up (std ~40 for N(0,1)-like latents), while DDPM's fresh noise hid it.
LD_SCHEDULE = diffusion.schedules.linear(LD_T)
LD_SAMPLE_STEPS = 50  # DDIM steps at sampling time
_LD_OPT = optax.adam(1e-3)


def ld_init(key: jax.Array, train_data: Any) -> dict:
    """``{"model": LatentDiffusion(VAE, MLPDenoiser), "vae_opt", "den_opt", "step"}``."""
    k_vae, k_den = jax.random.split(key)
    model = ld.LatentDiffusion(
        vae_recipes.init_vae(k_vae, train_data, latent=LD_LATENT),
        MLPDenoiser(LD_LATENT, [256, 256], time_embed_dim=32, rngs=nnx.Rngs(k_den)),
    )
    return {"model": model, "vae_opt": _LD_OPT.init(model.vae),
            "den_opt": _LD_OPT.init(model.denoiser), "step": jnp.zeros((), jnp.int32)}


def ld_step(params: dict, batch: jax.Array, key: jax.Array) -> tuple[dict, dict]:
    """The VAE's ELBO step for the first ``LD_STEPS / 2`` steps, then the denoiser's."""

    def vae_phase(p):
        model = p["model"]
        (value, _), g = jax.value_and_grad(vae.elbo_loss, has_aux=True)(model.vae, batch, key)
        u, opt = _LD_OPT.update(g, p["vae_opt"], model.vae)
        new = ld.LatentDiffusion(optax.apply_updates(model.vae, u), model.denoiser)
        return {**p, "model": new, "vae_opt": opt}, value

    def diffusion_phase(p):
        model = p["model"]
        (value, _), g = jax.value_and_grad(ld.loss, has_aux=True)(model, batch, key,
                                                                   schedule=LD_SCHEDULE)
        u, opt = _LD_OPT.update(g.denoiser, p["den_opt"], model.denoiser)  # the VAE is frozen
        new = ld.LatentDiffusion(model.vae, optax.apply_updates(model.denoiser, u))
        return {**p, "model": new, "den_opt": opt}, value

    in_vae_phase = params["step"] < LD_STEPS // 2
    new, value = jax.lax.cond(in_vae_phase, vae_phase, diffusion_phase, params)
    new["step"] = params["step"] + 1
    return new, {"loss": value, "vae_phase": in_vae_phase.astype(jnp.float32)}


def ld_sample(key: jax.Array, params: dict, n: int) -> jax.Array:
    """``n`` digits ``(n, 8, 8, 1)`` in [0, 1]: DDIM-50 in the latent space, decoded."""
    return ld.sample(key, params["model"], int(n), LD_SCHEDULE, num_steps=LD_SAMPLE_STEPS)


def ld_report(key, params, train_data, test_data, out_dir) -> dict:
    """The VAE's figures and pictures, then ``samples.png`` of the latent-diffusion samples
    and the MMD to the test images of those and of the VAE's prior samples."""
    from genjax import plotting

    k_fig, k_ld, k_prior = jax.random.split(key, 3)
    model = params["model"]
    figures = vae_recipes.likelihood_report(k_fig, model.vae, train_data, test_data,
                                            Path(out_dir), "latent-diffusion (VAE)")
    n = int(test_data.shape[0])
    samples = ld_sample(k_ld, params, n)
    plotting.image_grid(jnp.clip(samples[:64], 0.0, 1.0), Path(out_dir) / "samples.png", nrow=8,
                        title="latent diffusion: DDIM-50 samples")
    prior = vae.sample(k_prior, model.vae, n)
    flat = test_data.reshape(n, -1)
    figures["mmd_latent_diffusion_vs_test"] = float(metrics.mmd(samples.reshape(n, -1), flat))
    figures["mmd_vae_prior_vs_test"] = float(metrics.mmd(prior.reshape(n, -1), flat))
    return figures


# --------------------------------------------------------------------------------------
# text-to-digit: a U-Net attending to CLIP's text features
# --------------------------------------------------------------------------------------

NUM_CLASSES = clip_recipes.NUM_CLASSES
NULL_TOKENS = captions.empty_caption()  # (L,) the caption-dropout condition
T2D_SCHEDULE = diffusion.schedules.cosine(1000)
P_UNCOND = 0.1  # caption dropout (Ho & Salimans 2022; Stable Diffusion uses 0.1)
GUIDANCE_SCALE = 3.0
DDIM_STEPS = 20
REPORT_DDIM_STEPS = 20  # read at call time (tests shorten it)
REPORT_PER_DIGIT = 10  # samples per digit and guidance scale in the report
REPORT_SCALES = (0.0, 1.0, 3.0)


def _t2d_unet(key: jax.Array) -> UNet:
    return UNet(
        1, base_channels=16, channel_mults=(1, 2), num_res_blocks=1, attention_levels=(1,),
        context_dim=clip_recipes.TEXT_WIDTH, num_heads=4, num_groups=8, rngs=nnx.Rngs(key),
    )


#: Builds the U-Net inside one jit from an rbg key (see ``clip_recipes.init_key``).
init_unet = jax.jit(lambda key: _t2d_unet(clip_recipes.init_key(key)))


def t2d_init(key: jax.Array, train_data: tuple) -> dict:
    """``{"clip": CLIP, "unet": UNet}``, both trained from scratch."""
    del train_data
    clip_key, unet_key = jax.random.split(key)
    return {"clip": clip_recipes.init_clip(clip_key), "unet": init_unet(unet_key)}


def t2d_loss(params: dict, batch: tuple, key: jax.Array) -> tuple[jax.Array, dict]:
    """CLIP loss + text-conditioned DDPM loss with caption dropout, on
    ``batch = (images (b, 8, 8, 1), labels (b,))``."""
    images, labels = batch
    caption_key, drop_key, loss_key = jax.random.split(key, 3)
    x0 = clip_recipes.to_model_range(images)
    tokens = captions.sample_captions(caption_key, labels, jnp.asarray(clip_recipes.TABLE))
    clip_value, clip_metrics = clip_model_loss(params["clip"], (x0, tokens), key)
    # Caption dropout (Ho & Salimans 2022): some captions become the empty caption.
    dropped = text_to_image.caption_dropout(drop_key, tokens, P_UNCOND, jnp.asarray(NULL_TOKENS))
    context = text_to_image.text_context(params["clip"], dropped)  # (b, L, W), no gradient
    diff_value, _ = text_to_image.text_to_image_loss(params["unet"], (x0, context), loss_key,
                                                     schedule=T2D_SCHEDULE)
    figures = {"diffusion_loss": diff_value, "clip_loss": clip_value,
               "clip_accuracy": clip_metrics["accuracy"],
               "logit_scale": clip_metrics["logit_scale"]}
    return diff_value + clip_value, figures


def t2d_sample(
    key: jax.Array,
    params: dict,
    n: int,
    *,
    prompt: str | Sequence[str] | None = None,
    guidance: float = GUIDANCE_SCALE,
    steps: int = DDIM_STEPS,
    negative_prompt: str | Sequence[str] | None = None,
) -> jax.Array:
    """``n`` digits ``(n, 8, 8, 1)`` in [0, 1] drawn for ``prompt`` by guided DDIM.

    Args:
      key: PRNG key.
      params: the trained ``{"clip", "unet"}``.
      n: number of images.
      prompt: one caption for all ``n`` images, ``n`` captions, or None for "a handwritten
        zero", "a handwritten one", ... in turn.
      guidance: classifier-free guidance scale (0 unconditional, 1 conditional).
      steps: DDIM steps in ``[1, 1000]``.
      negative_prompt: one caption or ``n`` captions to guide away from: they replace the
        empty caption in the guided mix, ``eps = eps(neg) + guidance * (eps(prompt) -
        eps(neg))`` (:mod:`genjax.composites.text_to_image`); None for the empty caption.
    """
    n = checks.positive_int("n", n)
    if prompt is None:
        prompts = [captions.caption(i % NUM_CLASSES, "a handwritten {word}") for i in range(n)]
    elif isinstance(prompt, str):
        prompts = [prompt] * n
    else:
        prompts = list(prompt)
        if len(prompts) != n:
            raise ValueError(f"prompt: expected one caption or {n}, got {len(prompts)}")
    tokens = jnp.asarray(clip_recipes.prompt_tokens(prompts))
    steps = checks.int_in_range("steps", steps, 1, T2D_SCHEDULE.num_steps)
    checks.finite("guidance", guidance)
    context = text_to_image.text_context(params["clip"], tokens)  # (n, L, W)
    null = text_to_image.text_context(params["clip"], jnp.asarray(NULL_TOKENS)[None])  # (1, L, W)
    negative = None
    if negative_prompt is not None:
        negatives = [negative_prompt] if isinstance(negative_prompt, str) else list(
            negative_prompt)
        if len(negatives) not in (1, n):
            raise ValueError(f"negative_prompt: expected one caption or {n}, got {len(negatives)}")
        negative_tokens = jnp.asarray(clip_recipes.prompt_tokens(negatives, "negative_prompt"))
        negative = text_to_image.text_context(params["clip"], negative_tokens)  # (1 or n, L, W)
    x = text_to_image.sample(key, params["unet"], context, null, (8, 8, 1), T2D_SCHEDULE,
                             num_steps=steps, guidance_scale=jnp.float32(guidance),
                             negative_context=negative)
    return jnp.clip((x + 1.0) / 2.0, 0.0, 1.0)


def t2d_report(key, params, train_data, test_data, out_dir: Path) -> dict:
    """``samples.png``: 10 samples per digit for "a handwritten <digit>" at guidance 3 (one
    row per digit); returns how often a classifier of real digits recognises the requested
    digit at guidance scales 0, 1 and 3 (prompts cycle through the training templates) and
    at 3 with unseen templates, next to the classifier's accuracy on held-out real digits."""
    from sklearn.linear_model import LogisticRegression

    from genjax import plotting

    train_x, train_y = (np.asarray(a) for a in train_data)
    test_x, test_y = (np.asarray(a) for a in test_data)
    clf = LogisticRegression(max_iter=2000).fit(train_x.reshape(len(train_x), -1), train_y)
    out = {"classifier_test_accuracy": float(clf.score(test_x.reshape(len(test_x), -1), test_y))}
    n = NUM_CLASSES * REPORT_PER_DIGIT
    labels = np.repeat(np.arange(NUM_CLASSES), REPORT_PER_DIGIT)  # (n,): one block per digit

    def accuracy(templates: Sequence[str], scale: float) -> float:
        prompts = [captions.caption(d, templates[i % len(templates)]) for i, d in enumerate(labels)]
        images = t2d_sample(key, params, n, prompt=prompts, guidance=scale,
                            steps=REPORT_DDIM_STEPS)
        return float(clf.score(np.asarray(images).reshape(n, -1), labels))

    for scale in REPORT_SCALES:
        out[f"requested_digit_accuracy_guidance_{scale:g}"] = accuracy(captions.TEMPLATES, scale)
    out[f"requested_digit_accuracy_unseen_templates_guidance_{GUIDANCE_SCALE:g}"] = accuracy(
        captions.UNSEEN_TEMPLATES, GUIDANCE_SCALE)
    prompts_grid = [captions.caption(d, "a handwritten {word}") for d in labels]
    grid = np.asarray(t2d_sample(key, params, n, prompt=prompts_grid, guidance=GUIDANCE_SCALE,
                                 steps=REPORT_DDIM_STEPS))
    plotting.image_grid(grid, Path(out_dir) / "samples.png", nrow=REPORT_PER_DIGIT,
                        title=f"text-to-digit, guidance {GUIDANCE_SCALE:g}: one row per digit")
    return out


RECIPES: tuple[Recipe, ...] = (
    Recipe(name="latent-diffusion", family="composites",
           summary="a 4-D VAE on digits, then DDPM/DDIM in its latent space (Rombach et al. "
           "2022)", data="digits", init=ld_init, sample=ld_sample, report=ld_report,
           step=ld_step, steps=LD_STEPS, batch_size=128, checkpoint_every=1000),
    Recipe(name="text-to-digit", family="composites",
           summary="text-conditioned U-Net (cross-attention on CLIP token features), caption "
           "dropout, CFG DDIM: --prompt 'a handwritten three', --negative-prompt", data="digits",
           init=t2d_init,
           loss=t2d_loss, sample=t2d_sample, report=t2d_report, steps=1500, batch_size=64,
           learning_rate=2e-3, ema_decay=0.99, load_data=data.load_with_labels,
           sample_options=("prompt", "guidance", "steps", "negative_prompt")),
)
