"""``genjax train clip | text-to-digit``: the contrastive family's training jobs.

* ``clip``: a :class:`genjax.contrastive.network.CLIP` (conv image encoder + character
  transformer) trained with the symmetric InfoNCE loss on the 8x8 digits, each image paired
  with a caption drawn at every step from ten templates ("a handwritten seven", "the digit
  7", ...; :mod:`genjax.contrastive.captions`). The report gives the **zero-shot accuracy**
  on the held-out digits: each test image is classified by its cosine similarity to the
  ten class embeddings ensembled over the templates (Radford et al. 2021, sec. 3.1.4), also
  with templates never trained on, and draws ``samples.png``: for each prompt "a
  handwritten <digit>", the ten most similar held-out images (text-to-image retrieval).
  ``genjax sample RUN --prompt "the digit 4"`` retrieves held-out digits for a prompt (a
  contrastive model ranks images; it does not generate them).
* ``text-to-digit``: a :class:`genjax.nn.UNet` denoiser conditioned by cross-attention on
  the per-token features of the CLIP text encoder (:mod:`genjax.contrastive.text_to_image`),
  trained with caption dropout and sampled by classifier-free guided DDIM;
  ``genjax sample RUN --prompt "a handwritten three" --guidance 3 --steps 20`` draws that
  digit. **CLIP is trained jointly**: each step adds CLIP's loss on the same batch to the
  diffusion loss, and the text features reach the U-Net through ``stop_gradient``, so the
  text encoder is shaped by the contrastive objective alone -- it is CLIP's text encoder,
  as in Imagen and latent diffusion, where the U-Net never trains it -- while one training
  loop and one checkpoint hold the whole model. The report trains a separate classifier
  (logistic regression) on the real training digits and gives how often it recognises the
  requested digit in samples at guidance scales 0 (unconditional: chance, ~0.1), 1 and 3,
  with prompts in every training template, and at scale 3 with unseen templates.

Parameters are plain pytrees: each network's ``nnx.State`` from ``nnx.split``, merged with
its static graph inside the pure functions.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from genjax.contrastive import captions, text_to_image
from genjax.contrastive.network import CLIP, clip_model_loss
from genjax.contrastive.zero_shot import zero_shot_classify, zero_shot_logits
from genjax.diffusion import schedules
from genjax.recipe import Recipe

PyTree = Any

NUM_CLASSES = 10
TABLE = captions.caption_table(captions.TEMPLATES)  # (10, T, L) every training caption
NULL_TOKENS = captions.empty_caption()  # (L,) the caption-dropout condition
# Small sizes: both recipes train in about a minute on two CPU cores.
EMBED_DIM = 32
TEXT_WIDTH = 32
TEXT_DEPTH = 2
NUM_HEADS = 4
IMAGE_WIDTHS = (32, 64)
IMAGE_HIDDEN = 128


def _clip_net(key: jax.Array) -> CLIP:
    return CLIP(
        embed_dim=EMBED_DIM, image_widths=IMAGE_WIDTHS, image_hidden=IMAGE_HIDDEN,
        text_width=TEXT_WIDTH, text_depth=TEXT_DEPTH, num_heads=NUM_HEADS, rngs=nnx.Rngs(key),
    )


@functools.cache
def _clip_graph() -> nnx.GraphDef:
    return nnx.split(nnx.eval_shape(lambda: _clip_net(jax.random.key(0))))[0]


def _clip(state) -> CLIP:
    return nnx.merge(_clip_graph(), state)


def load_digits(name: str, split: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(images (n, 8, 8, 1) in [0, 1], labels (n,) int32)``."""
    from genjax import data

    return data.load(name, split=split, seed=seed), data.load_labels(name, split=split, seed=seed)


def _to_model_range(images: jax.Array) -> jax.Array:
    return 2.0 * jnp.asarray(images, jnp.float32) - 1.0  # [0, 1] -> [-1, 1]


def _tokens(prompts: Sequence[str], name: str = "prompt") -> np.ndarray:
    """``(m, L)`` tokens; a ValueError naming ``name`` for empty or unknown text."""
    for p in prompts:
        if not isinstance(p, str) or not p.strip():
            raise ValueError(f"{name} must be a non-empty caption, got {p!r}")
    try:
        return captions.tokenize(list(prompts))
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None


# --------------------------------------------------------------------------------------
# clip
# --------------------------------------------------------------------------------------


def _init_key(key: jax.Array) -> jax.Array:
    """A key for initialisation only: XLA compiles the initialisers of ~100 weight shapes
    about 2.5x faster from an ``rbg`` key than from threefry, and init is compiled afresh
    by every ``genjax train`` and ``genjax sample``. Deterministic in ``key``."""
    return jax.random.key(jax.random.bits(key, dtype=jnp.uint32), impl="rbg")


@jax.jit
def _clip_state(key: jax.Array) -> PyTree:
    # Built inside one jit: one compilation rather than one per initialiser shape.
    return nnx.split(_clip_net(_init_key(key)))[1]


def clip_init(key: jax.Array, train_data: tuple) -> PyTree:
    """The CLIP model's ``nnx.State`` (encoders and the log logit scale)."""
    del train_data
    return _clip_state(key)


def clip_recipe_loss(params: PyTree, batch: tuple, key: jax.Array) -> tuple[jax.Array, dict]:
    """CLIP's loss on ``batch = (images (b, 8, 8, 1), labels (b,))``, one random caption
    template per image."""
    images, labels = batch
    tokens = captions.sample_captions(key, labels, jnp.asarray(TABLE))  # (b, L)
    return clip_model_loss(_clip(params), _to_model_range(images), tokens)


@jax.jit
def _encode_images(params, images):
    return _clip(params).encode_image(_to_model_range(images))  # (n, E)


@jax.jit
def _encode_tokens(params, tokens):
    return _clip(params).encode_text(tokens)[0]  # (m, E)


def _class_embeddings(params, templates: Sequence[str]) -> jax.Array:
    """``(10, T, E)`` text embeddings of every digit in every template."""
    table = captions.caption_table(templates)  # (10, T, L)
    emb = _encode_tokens(params, jnp.asarray(table.reshape(-1, table.shape[-1])))
    return emb.reshape(NUM_CLASSES, len(templates), -1)


def _retrieve(params, prompts: Sequence[str], pool: np.ndarray, k: int) -> np.ndarray:
    """Indices ``(len(prompts), k)`` of the ``k`` images of ``pool`` most similar to each
    prompt (cosine similarity, best first)."""
    text = _encode_tokens(params, jnp.asarray(_tokens(prompts)))  # (m, E)
    sims = zero_shot_logits(_encode_images(params, jnp.asarray(pool)), text)  # (n, m)
    return np.argsort(-np.asarray(sims).T, axis=1)[:, :k]


def clip_sample(
    key: jax.Array, params: PyTree, n: int, *, prompt: str | None = None
) -> np.ndarray:
    """``n`` held-out digits ``(n, 8, 8, 1)`` retrieved for ``prompt`` (best first), or, with
    no prompt, the best matches of "a handwritten <digit>" for digits 0, 1, ..., 9 in turn.

    CLIP scores image-caption pairs; it cannot draw, so sampling ranks the held-out
    digits (deterministic: ``key`` is unused).
    """
    del key
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    pool = load_digits("digits", "test", 0)[0]
    if n > pool.shape[0]:
        raise ValueError(f"n must be <= {pool.shape[0]} (the held-out digits), got {n}")
    if prompt is not None:
        return pool[_retrieve(params, [prompt], pool, n)[0]]
    prompts = [captions.caption(d, "a handwritten {word}") for d in range(NUM_CLASSES)]
    best = _retrieve(params, prompts, pool, math.ceil(n / NUM_CLASSES))  # (10, n/10)
    return pool[best.T.reshape(-1)[:n]]  # digit 0, 1, ..., 9, then the second matches


def clip_report(key, params, train_data, test_data, out_dir: Path) -> dict:
    """Zero-shot accuracy on held-out (and training) digits with the ensembled training
    templates, with one template, and with unseen templates; ``samples.png``: the ten
    held-out digits retrieved for each prompt "a handwritten <digit>" (one row per digit),
    and their precision."""
    from genjax import plotting

    del key
    test_x, test_y = (np.asarray(a) for a in test_data)
    train_x, train_y = (np.asarray(a)[:1000] for a in train_data)
    test_emb = _encode_images(params, jnp.asarray(test_x))
    out: dict = {}
    for name, templates in (
        ("zero_shot_accuracy", captions.TEMPLATES),
        ("zero_shot_accuracy_one_template", ("a handwritten {word}",)),
        ("zero_shot_accuracy_unseen_templates", captions.UNSEEN_TEMPLATES),
    ):
        classes = _class_embeddings(params, templates)
        pred = np.asarray(zero_shot_classify(test_emb, classes))
        out[name] = float(np.mean(pred == test_y))
    classes = _class_embeddings(params, captions.TEMPLATES)
    pred = np.asarray(zero_shot_classify(_encode_images(params, jnp.asarray(train_x)), classes))
    out["zero_shot_accuracy_train"] = float(np.mean(pred == train_y))
    out["logit_scale"] = float(_clip(params).logit_scale())
    prompts = [captions.caption(d, "a handwritten {word}") for d in range(NUM_CLASSES)]
    best = _retrieve(params, prompts, test_x, 10)  # (10, 10)
    out["retrieval_precision_at_10"] = float(np.mean(test_y[best] == np.arange(10)[:, None]))
    plotting.image_grid(
        test_x[best.reshape(-1)], Path(out_dir) / "samples.png", nrow=10,
        title="clip retrieval: one row per digit prompt",
    )
    return out


# --------------------------------------------------------------------------------------
# text-to-digit
# --------------------------------------------------------------------------------------

T2D_SCHEDULE = schedules.cosine(1000)
P_UNCOND = 0.1  # caption dropout (Ho & Salimans 2022; Stable Diffusion uses 0.1)
GUIDANCE_SCALE = 3.0
DDIM_STEPS = 20
REPORT_DDIM_STEPS = 20  # read at call time (tests shorten it)
REPORT_PER_DIGIT = 10  # samples per digit and guidance scale in the report
REPORT_SCALES = (0.0, 1.0, 3.0)


def _t2d_unet(key: jax.Array) -> nnx.Module:
    from genjax.nn import UNet

    return UNet(
        1, base_channels=16, channel_mults=(1, 2), num_res_blocks=1, attention_levels=(1,),
        context_dim=TEXT_WIDTH, num_heads=4, num_groups=8, rngs=nnx.Rngs(key),
    )


@functools.cache
def _t2d_graph() -> nnx.GraphDef:
    return nnx.split(nnx.eval_shape(lambda: _t2d_unet(jax.random.key(0))))[0]


@jax.jit
def _unet_state(key: jax.Array) -> PyTree:
    return nnx.split(_t2d_unet(_init_key(key)))[1]


def _unet_apply(unet_state, x_t, t, context):
    return nnx.merge(_t2d_graph(), unet_state)(x_t, t, context=context)


def t2d_init(key: jax.Array, train_data: tuple) -> dict:
    """``{"clip": CLIP state, "unet": UNet state}``, both trained from scratch."""
    del train_data
    clip_key, unet_key = jax.random.split(key)
    return {"clip": _clip_state(clip_key), "unet": _unet_state(unet_key)}


def _text_context(clip_state, tokens: jax.Array) -> jax.Array:
    """``(m, L) -> (m, L, TEXT_WIDTH)`` frozen token features (no gradient to the encoder)."""
    return jax.lax.stop_gradient(_clip(clip_state).encode_text(tokens)[1])


def t2d_loss(params: dict, batch: tuple, key: jax.Array) -> tuple[jax.Array, dict]:
    """CLIP loss + text-conditioned DDPM loss with caption dropout, on
    ``batch = (images (b, 8, 8, 1), labels (b,))``."""
    images, labels = batch
    caption_key, drop_key, loss_key = jax.random.split(key, 3)
    x0 = _to_model_range(images)
    tokens = captions.sample_captions(caption_key, labels, jnp.asarray(TABLE))  # (b, L)
    clip_loss_value, clip_metrics = clip_model_loss(_clip(params["clip"]), x0, tokens)
    # Caption dropout (Ho & Salimans 2022): some captions become the empty caption.
    dropped = text_to_image.caption_dropout(drop_key, tokens, P_UNCOND, jnp.asarray(NULL_TOKENS))
    context = _text_context(params["clip"], dropped)  # (b, L, W)
    diff_loss, diff_metrics = text_to_image.text_to_image_loss(
        params["unet"], x0, context, loss_key, apply_fn=_unet_apply, schedule=T2D_SCHEDULE
    )
    metrics = {
        "diffusion_loss": diff_loss, "clip_loss": clip_loss_value,
        "clip_accuracy": clip_metrics["accuracy"], "logit_scale": clip_metrics["logit_scale"],
    }
    return diff_loss + clip_loss_value, metrics


@functools.partial(jax.jit, static_argnames=("steps",))
def _t2d_sample_jit(key, params, tokens, steps: int, scale):
    # scale is traced: one compiled sampler serves every guidance scale.
    context = _text_context(params["clip"], tokens)  # (n, L, W)
    null_context = _text_context(params["clip"], jnp.asarray(NULL_TOKENS)[None])  # (1, L, W)
    eps_fn = functools.partial(_unet_apply, params["unet"])
    x = text_to_image.sample(
        key, eps_fn, context, null_context, (8, 8, 1), T2D_SCHEDULE, num_steps=steps,
        guidance_scale=scale,
    )
    return jnp.clip((x + 1.0) / 2.0, 0.0, 1.0)


def t2d_sample(
    key: jax.Array,
    params: dict,
    n: int,
    *,
    prompt: str | Sequence[str] | None = None,
    guidance: float = GUIDANCE_SCALE,
    steps: int = DDIM_STEPS,
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
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if prompt is None:
        prompts = [captions.caption(i % NUM_CLASSES, "a handwritten {word}") for i in range(n)]
    elif isinstance(prompt, str):
        prompts = [prompt] * n
    else:
        prompts = list(prompt)
        if len(prompts) != n:
            raise ValueError(f"prompt: expected one caption or {n}, got {len(prompts)}")
    tokens = _tokens(prompts)
    steps = int(steps)
    if not 1 <= steps <= T2D_SCHEDULE.num_steps:
        raise ValueError(f"steps must be in [1, {T2D_SCHEDULE.num_steps}], got {steps}")
    if not math.isfinite(float(guidance)):
        raise ValueError(f"guidance must be a finite scale, got {guidance!r}")
    return _t2d_sample_jit(key, params, jnp.asarray(tokens), steps, jnp.float32(guidance))


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
    templates = captions.TEMPLATES
    prompts = [captions.caption(d, templates[i % len(templates)]) for i, d in enumerate(labels)]
    unseen = captions.UNSEEN_TEMPLATES
    prompts_unseen = [captions.caption(d, unseen[i % len(unseen)]) for i, d in enumerate(labels)]
    for scale in REPORT_SCALES:
        images = np.asarray(t2d_sample(key, params, n, prompt=prompts, guidance=scale,
                                       steps=REPORT_DDIM_STEPS))
        out[f"requested_digit_accuracy_guidance_{scale:g}"] = float(
            clf.score(images.reshape(n, -1), labels)
        )
    images = np.asarray(t2d_sample(key, params, n, prompt=prompts_unseen,
                                   guidance=GUIDANCE_SCALE, steps=REPORT_DDIM_STEPS))
    out[f"requested_digit_accuracy_unseen_templates_guidance_{GUIDANCE_SCALE:g}"] = float(
        clf.score(images.reshape(n, -1), labels)
    )
    prompts_grid = [captions.caption(d, "a handwritten {word}") for d in labels]
    grid = np.asarray(t2d_sample(key, params, n, prompt=prompts_grid, guidance=GUIDANCE_SCALE,
                                 steps=REPORT_DDIM_STEPS))
    plotting.image_grid(
        grid, Path(out_dir) / "samples.png", nrow=REPORT_PER_DIGIT,
        title=f"text-to-digit, guidance {GUIDANCE_SCALE:g}: one row per digit",
    )
    return out


RECIPES: tuple[Recipe, ...] = (
    Recipe(
        name="clip",
        family="contrastive",
        summary="CLIP (conv image + char transformer text encoder) on captioned 8x8 digits; "
        "zero-shot accuracy",
        data="digits",
        init=clip_init,
        loss=clip_recipe_loss,
        sample=clip_sample,
        report=clip_report,
        steps=500,
        batch_size=128,
        learning_rate=2e-3,
        load_data=load_digits,
        sample_options=("prompt",),
    ),
    Recipe(
        name="text-to-digit",
        family="contrastive",
        summary="text-conditioned U-Net (cross-attention on CLIP token features), caption "
        "dropout, CFG DDIM: --prompt 'a handwritten three'",
        data="digits",
        init=t2d_init,
        loss=t2d_loss,
        sample=t2d_sample,
        report=t2d_report,
        steps=1500,
        batch_size=64,
        learning_rate=2e-3,
        ema_decay=0.99,
        load_data=load_digits,
        sample_options=("prompt", "guidance", "steps"),
    ),
)
