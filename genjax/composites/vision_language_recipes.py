"""``genjax train clip-guided | captioner``: CLIP joined to a decoder and to a language model.

* ``clip-guided`` (VQGAN+CLIP, Crowson et al. 2022, at toy size): a CLIP
  (:class:`genjax.contrastive.CLIP`, trained by the contrastive recipe's loss on captioned
  digits) and a VQ-VAE (:class:`genjax.vae.VQVAE`, 4 codes of a 32-code book per digit,
  trained by :func:`genjax.vae.vqvae_loss`; the codebook seeded on encoder outputs) are
  trained side by side, one loss the sum of both. Sampling knows no caption-conditioned
  generator at all: :func:`genjax.composites.clip_guided.clip_guided` optimises the VQ-VAE
  decoder's continuous latents (quantised straight-through) by Adam to bring CLIP's image
  embedding to the prompt's. ``genjax sample RUN --prompt "a handwritten seven"`` draws
  such digits. The report gives the **prompt-digit rate**: the fraction of results the
  shared digit classifier (:mod:`genjax.digit_classifier`) reads as the prompt's digit,
  over 10 prompts ("a handwritten zero" .. "nine") x 10 seeds, beside the same rate for the
  unoptimised starting latents (chance) and for prompts in templates never trained on.
* ``captioner`` (a projection-layer vision-language model, LLaVA / PaliGemma style;
  :mod:`genjax.composites.captioner`): the CLIP image tower's 2x2 patch features, through
  ``stop_gradient``, are projected by an MLP into a small decoder-only transformer's
  embedding space and prefixed to the caption; prefix-LM attention; CLIP's loss and the
  captioning loss are summed, so the tower is shaped by the contrastive objective alone
  (as a frozen CLIP tower in LLaVA) while one loop and one checkpoint hold the whole model.
  Captions are drawn from the ten training templates at every step. The report captions
  the held-out digits greedily and by beam search (4 beams) through the KV cache and gives
  the **exact-caption accuracy** (the caption is, character for character, one of the
  training templates' captions of the true digit) and the **digit-word accuracy** (the
  number it names, as a word or a numeral, is the true digit); ``samples.png`` shows
  held-out digits with their generated captions. ``genjax sample RUN`` writes the captions
  of the first n held-out digits (``--sampler beam`` for beam search).

Parameters hold the Modules themselves (pytrees of arrays): ``{"clip": CLIP, "vq": VQVAE}``
and ``{"clip": CLIP, "captioner": Captioner}``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from genjax import checks, data
from genjax.composites import captioner as cap
from genjax.composites import clip_guided as cg
from genjax.contrastive import captions
from genjax.contrastive import recipes as clip_recipes
from genjax.digit_classifier import digit_classifier
from genjax.recipe import Recipe
from genjax.vae import quantize
from genjax.vae import recipes as vae_recipes

NUM_CLASSES = clip_recipes.NUM_CLASSES

# --------------------------------------------------------------------------------------
# clip-guided: a VQ-VAE decoder's latents optimised against CLIP
# --------------------------------------------------------------------------------------

VQ = dict(vae_recipes.VQ)  # 4 latent vectors of size 4, 32 codes
VQ_BETA = vae_recipes.VQ_BETA
GUIDE_STEPS = 100  # Adam steps on the latents (read at call time; tests shorten them)
GUIDE_LR = 0.1
GUIDE_VIEWS = 4  # shifted views per step (Crowson et al.'s cutouts, as 1-pixel shifts)
GUIDE_SHIFT = 1
REPORT_SEEDS = 10  # seeds per prompt in the report


def _vq_net(key: jax.Array, images: jax.Array) -> quantize.VQVAE:
    vq = quantize.VQVAE(images.shape[1:], rngs=nnx.Rngs(key), hidden_sizes=vae_recipes.HIDDEN,
                        **VQ)
    # start the codes on encoder outputs, as k-means++ seeds them from data
    z_e = vq.encode(images).reshape(-1, VQ["code_dim"])
    pick = jax.random.choice(jax.random.fold_in(key, 1), z_e.shape[0], (VQ["num_codes"],),
                             replace=False)
    vq.codebook[...] = z_e[pick]
    return vq


_init_vq = jax.jit(_vq_net)


def guided_init(key: jax.Array, train_data: tuple) -> dict:
    """``{"clip": CLIP, "vq": VQVAE}``, both from scratch (the codebook on encoder outputs)."""
    images = jnp.asarray(np.asarray(train_data[0])[:256], jnp.float32)
    k_clip, k_vq = jax.random.split(key)
    return {"clip": clip_recipes.init_clip(k_clip), "vq": _init_vq(k_vq, images)}


def guided_loss(params: dict, batch: tuple, key: jax.Array) -> tuple[jax.Array, dict]:
    """CLIP's loss (one random template per image) + the VQ-VAE's (van den Oord et al. 2017,
    eq. 3) on ``batch = (images (b, 8, 8, 1), labels (b,))``."""
    images, _ = batch
    clip_value, clip_metrics = clip_recipes.clip_recipe_loss(params["clip"], batch, key)
    vq_value, vq_metrics = quantize.vqvae_loss(params["vq"], images, key, beta=VQ_BETA)
    figures = {"clip_loss": clip_value, "clip_accuracy": clip_metrics["accuracy"],
               "vq_loss": vq_value, "reconstruction": vq_metrics["reconstruction"],
               "perplexity": vq_metrics["perplexity"]}
    return clip_value + vq_value, figures


def _prompts(n: int, prompt: str | Sequence[str] | None) -> list[str]:
    if prompt is None:
        return [captions.caption(i % NUM_CLASSES, "a handwritten {word}") for i in range(n)]
    if isinstance(prompt, str):
        return [prompt] * n
    prompts = list(prompt)
    if len(prompts) != n:
        raise ValueError(f"prompt: expected one caption or {n}, got {len(prompts)}")
    return prompts


def guided_sample(key: jax.Array, params: dict, n: int, *,
                  prompt: str | Sequence[str] | None = None,
                  steps: int | None = None) -> jax.Array:
    """``n`` digits ``(n, 8, 8, 1)`` in [0, 1] for ``prompt`` by CLIP guidance of the VQ-VAE.

    Args:
      key: PRNG key (the starting latents and the shifts).
      params: the trained ``{"clip", "vq"}``.
      n: number of images.
      prompt: one caption for all, ``n`` captions, or None for "a handwritten zero", "a
        handwritten one", ... in turn.
      steps: Adam steps on the latents (default ``GUIDE_STEPS``).
    """
    n = checks.positive_int("n", n)
    tokens = jnp.asarray(clip_recipes.prompt_tokens(_prompts(n, prompt)))  # (n, L)
    steps = GUIDE_STEPS if steps is None else checks.int_in_range("steps", steps, 1, 100_000)
    vq = params["vq"]
    result = cg.clip_guided(key, vq, params["clip"], tokens, (vq.num_latents, vq.code_dim),
                            num_steps=steps, learning_rate=GUIDE_LR,
                            num_augmentations=GUIDE_VIEWS, max_shift=GUIDE_SHIFT)
    return result.images


def guided_report(key, params, train_data, test_data, out_dir: Path) -> dict:
    """``samples.png``: 10 seeds (columns) per prompt "a handwritten <digit>" (rows), the
    prompt-digit rates, the CLIP's zero-shot accuracy and the VQ-VAE's held-out error."""
    from genjax import plotting

    test_x, test_y = (np.asarray(a) for a in test_data)
    clf = digit_classifier()
    labels = np.repeat(np.arange(NUM_CLASSES), REPORT_SEEDS)  # (100,) one block per digit
    vq = params["vq"]
    latent_shape = (vq.num_latents, vq.code_dim)
    out: dict = {"classifier_test_accuracy": clf.accuracy(test_x, test_y)}

    def run(template: str):
        prompts = [captions.caption(int(d), template) for d in labels]
        tokens = jnp.asarray(clip_recipes.prompt_tokens(prompts))
        return cg.clip_guided(key, vq, params["clip"], tokens, latent_shape,
                              num_steps=GUIDE_STEPS, learning_rate=GUIDE_LR,
                              num_augmentations=GUIDE_VIEWS, max_shift=GUIDE_SHIFT)

    res = run("a handwritten {word}")
    out["prompt_digit_rate"] = clf.accuracy(res.images, labels)
    out["mean_cosine_to_prompt"] = float(jnp.mean(jnp.cos(jnp.sqrt(2.0 * res.distance))))
    out["loss_first_step"] = float(res.loss_trace[0])
    out["loss_last_step"] = float(res.loss_trace[-1])
    start = cg.initial_latents(jax.random.split(key)[0], vq, labels.size, latent_shape)
    out["prompt_digit_rate_unoptimised_start"] = clf.accuracy(
        jax.jit(cg.decode_latents)(vq, start), labels)
    out["prompt_digit_rate_unseen_template"] = clf.accuracy(
        run(captions.UNSEEN_TEMPLATES[0]).images, labels)
    table = jnp.asarray(captions.caption_table(captions.TEMPLATES))
    from genjax.contrastive.zero_shot import zero_shot_predict

    pred = np.asarray(zero_shot_predict(params["clip"], clip_recipes.to_model_range(test_x), table))
    out["clip_zero_shot_accuracy"] = float(np.mean(pred == test_y))
    t = jax.jit(quantize.vqvae_terms)(vq, jnp.asarray(test_x))
    out["vq_test_mse_per_dim"] = float(jnp.mean(t["reconstruction"]) / test_x[0].size)
    plotting.image_grid(np.asarray(res.images), Path(out_dir) / "samples.png",
                        nrow=REPORT_SEEDS,
                        title="clip-guided VQ-VAE: rows 'a handwritten zero' .. 'nine'")
    return out


# --------------------------------------------------------------------------------------
# captioner: CLIP's patch features -> projector -> prefix-LM transformer
# --------------------------------------------------------------------------------------

CAP_DIM = 64
CAP_HEADS = 4
CAP_LAYERS = 2
CAP_PROJECTOR = "mlp"
CAP_BEAMS = 4
REPORT_IMAGES = None  # held-out images captioned in the report (None: all; tests shorten)
_NUM_PATCHES = 4  # an 8x8 digit after the CLIP tower's two stride-2 convolutions: 2x2


def _captioner_net(key: jax.Array) -> cap.Captioner:
    return cap.Captioner(clip_recipes.IMAGE_WIDTHS[-1], _NUM_PATCHES, dim=CAP_DIM,
                         num_heads=CAP_HEADS, num_layers=CAP_LAYERS, projector=CAP_PROJECTOR,
                         rngs=nnx.Rngs(clip_recipes.init_key(key)))


def captioner_init(key: jax.Array, train_data: tuple) -> dict:
    """``{"clip": CLIP, "captioner": Captioner}``, both from scratch."""
    del train_data
    k_clip, k_cap = jax.random.split(key)
    return {"clip": clip_recipes.init_clip(k_clip), "captioner": jax.jit(_captioner_net)(k_cap)}


def image_features(clip, images: jax.Array) -> jax.Array:
    """Patch features ``(n, 4, 64)`` of digits ``(n, 8, 8, 1)`` in [0, 1] from CLIP's tower."""
    return cap.patch_features_jit(clip.image_encoder, clip_recipes.to_model_range(images))


def captioner_loss(params: dict, batch: tuple, key: jax.Array) -> tuple[jax.Array, dict]:
    """CLIP's loss + the captioning loss on ``stop_gradient`` patch features, on
    ``batch = (images (b, 8, 8, 1), labels (b,))``; captions in random training templates."""
    images, labels = batch
    k_clip, k_cap = jax.random.split(key)
    clip_value, clip_metrics = clip_recipes.clip_recipe_loss(params["clip"], batch, k_clip)
    feats = jax.lax.stop_gradient(
        cap.patch_features(params["clip"].image_encoder, clip_recipes.to_model_range(images)))
    tokens = captions.sample_captions(k_cap, labels, jnp.asarray(clip_recipes.TABLE))
    cap_value, cap_metrics = cap.captioning_loss(params["captioner"], (feats, tokens), k_cap)
    return clip_value + cap_value, {"clip_loss": clip_value,
                                    "clip_accuracy": clip_metrics["accuracy"],
                                    "caption_loss": cap_value,
                                    "token_accuracy": cap_metrics["token_accuracy"]}


_WORDS = {w: d for d, w in enumerate(captions.NUMBER_WORDS)}


def named_digit(text: str) -> int | None:
    """The digit a caption names (the first number word or numeral), or None."""
    for word in re.findall(r"[a-z]+|[0-9]", text):
        if word in _WORDS:
            return _WORDS[word]
        if word.isdigit():
            return int(word)
    return None


def caption_scores(texts: Sequence[str], labels: np.ndarray) -> dict:
    """``exact_caption_accuracy`` (the text is a training template's caption of the true
    digit) and ``digit_word_accuracy`` (the digit it names is the true one)."""
    valid = [{captions.caption(d, t) for t in captions.TEMPLATES} for d in range(NUM_CLASSES)]
    exact = [t in valid[int(y)] for t, y in zip(texts, labels, strict=True)]
    named = [named_digit(t) == int(y) for t, y in zip(texts, labels, strict=True)]
    return {"exact_caption_accuracy": float(np.mean(exact)),
            "digit_word_accuracy": float(np.mean(named))}


def caption_images(params: dict, images: np.ndarray, sampler: str = "greedy") -> list[str]:
    """Captions of digits ``(n, 8, 8, 1)`` in [0, 1]: greedy, or the best of beam search."""
    checks.one_of("sampler", sampler, ("greedy", "beam"))
    feats = image_features(params["clip"], jnp.asarray(images, jnp.float32))
    if sampler == "greedy":
        tokens = np.asarray(cap.greedy_captions(params["captioner"], feats))
    else:
        tokens = np.asarray(cap.beam_captions(params["captioner"], feats,
                                              num_beams=CAP_BEAMS)[0][:, 0])
    return [captions.decode(t) for t in tokens]


def captioner_sample(key: jax.Array, params: dict, n: int, *,
                     sampler: str = "greedy") -> list[str]:
    """Captions of the first ``n`` held-out digits, ``"label 7: a handwritten seven"``
    (deterministic: ``key`` is unused)."""
    del key
    pool, labels = data.load_with_labels("digits", "test", 0)
    n = checks.int_in_range("n", n, 1, pool.shape[0])
    texts = caption_images(params, pool[:n], sampler)
    return [f"label {int(y)}: {t}" for y, t in zip(labels[:n], texts, strict=True)]


def _caption_picture(images: np.ndarray, greedy: Sequence[str], beam: Sequence[str],
                     path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(greedy)
    cols = 4
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows))
    for i, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i, :, :, 0], cmap="gray_r", vmin=0, vmax=1)
            ax.set_title(f"greedy: {greedy[i]}\nbeam: {beam[i]}", fontsize=8)
    fig.suptitle("captioner: held-out digits and their generated captions")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def captioner_report(key, params, train_data, test_data, out_dir: Path) -> dict:
    """Exact-caption and digit-word accuracy of greedy and beam captions on the held-out
    digits (and 1000 training digits); ``samples.png``: 16 digits with their captions."""
    del key
    test_x, test_y = (np.asarray(a) for a in test_data)
    if REPORT_IMAGES is not None:
        test_x, test_y = test_x[:REPORT_IMAGES], test_y[:REPORT_IMAGES]
    out: dict = {}
    texts = {}
    for sampler in ("greedy", "beam"):
        texts[sampler] = caption_images(params, test_x, sampler)
        for name, value in caption_scores(texts[sampler], test_y).items():
            out[f"{name}_{sampler}"] = value
    train_x, train_y = (np.asarray(a)[: len(test_x)] for a in train_data)
    for name, value in caption_scores(caption_images(params, train_x), train_y).items():
        out[f"{name}_greedy_train"] = value
    out["distinct_greedy_captions"] = len(set(texts["greedy"]))
    k = min(16, len(test_x))
    _caption_picture(test_x[:k], texts["greedy"][:k], texts["beam"][:k],
                     Path(out_dir) / "samples.png")
    return out


RECIPES: tuple[Recipe, ...] = (
    Recipe(name="clip-guided", family="composites",
           summary="VQGAN+CLIP at toy size: a VQ-VAE decoder's latents optimised by Adam "
           "against CLIP: --prompt 'a handwritten seven'", data="digits", init=guided_init,
           loss=guided_loss, sample=guided_sample, report=guided_report, steps=1500,
           batch_size=128, learning_rate=2e-3, load_data=data.load_with_labels,
           sample_options=("prompt", "steps")),
    Recipe(name="captioner", family="composites",
           summary="captioning VLM: CLIP patch features -> MLP projector -> prefix-LM "
           "transformer; greedy and beam captions through the KV cache", data="digits",
           init=captioner_init, loss=captioner_loss, sample=captioner_sample,
           report=captioner_report, steps=1500, batch_size=128, learning_rate=2e-3,
           load_data=data.load_with_labels, sample_options=("sampler",)),
)
