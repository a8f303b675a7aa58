"""``genjax train clip``: the contrastive family's training job.

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

(``text-to-digit``, a diffusion model conditioned on this text encoder, joins two families:
it lives in :mod:`genjax.composites.recipes`.)

Parameters are the :class:`genjax.contrastive.CLIP` Module itself, a pytree of arrays: the
trainer differentiates it, checkpoints store its leaves, and the report's figures come from
the family's public model-taking functions (:func:`genjax.contrastive.zero_shot_predict`,
:func:`genjax.contrastive.image_text_similarity`), traced, compiled once per shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from genjax import checks, data
from genjax.contrastive import captions
from genjax.contrastive.network import CLIP, clip_model_loss
from genjax.contrastive.zero_shot import image_text_similarity, zero_shot_predict
from genjax.recipe import Recipe

NUM_CLASSES = 10
TABLE = captions.caption_table(captions.TEMPLATES)  # (10, T, L) every training caption
# Small sizes: clip (and text-to-digit, which trains this CLIP) train in about a minute on two
# CPU cores.
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


def to_model_range(images: jax.Array) -> jax.Array:
    """Images in [0, 1] to the encoders' range [-1, 1]."""
    return 2.0 * jnp.asarray(images, jnp.float32) - 1.0


def prompt_tokens(prompts: Sequence[str], name: str = "prompt") -> np.ndarray:
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


def init_key(key: jax.Array) -> jax.Array:
    """A key for initialisation only: XLA compiles the initialisers of ~100 weight shapes
    about 2.5x faster from an ``rbg`` key than from threefry, and init is compiled afresh
    by every ``genjax train`` and ``genjax sample``. Deterministic in ``key``."""
    return jax.random.key(jax.random.bits(key, dtype=jnp.uint32), impl="rbg")


#: Builds CLIP inside one jit: one compilation rather than one per initialiser shape (the
#: Module comes out whole, a pytree).
init_clip = jax.jit(lambda key: _clip_net(init_key(key)))


def clip_init(key: jax.Array, train_data: tuple) -> CLIP:
    """The CLIP Module (encoders, the log logit scale and the SigLIP bias)."""
    del train_data
    return init_clip(key)


def clip_recipe_loss(model: CLIP, batch: tuple, key: jax.Array) -> tuple[jax.Array, dict]:
    """CLIP's loss on ``batch = (images (b, 8, 8, 1), labels (b,))``, one random caption
    template per image."""
    images, labels = batch
    tokens = captions.sample_captions(key, labels, jnp.asarray(TABLE))  # (b, L)
    return clip_model_loss(model, (to_model_range(images), tokens), key)


def _retrieve(model: CLIP, prompts: Sequence[str], pool: np.ndarray, k: int) -> np.ndarray:
    """Indices ``(len(prompts), k)`` of the ``k`` images of ``pool`` most similar to each
    prompt (cosine similarity, best first)."""
    tokens = jnp.asarray(prompt_tokens(prompts))  # (m, L)
    sims = image_text_similarity(model, to_model_range(pool), tokens)  # (n, m)
    return np.argsort(-np.asarray(sims).T, axis=1)[:, :k]


def clip_sample(
    key: jax.Array, params: CLIP, n: int, *, prompt: str | None = None
) -> np.ndarray:
    """``n`` held-out digits ``(n, 8, 8, 1)`` retrieved for ``prompt`` (best first), or, with
    no prompt, the best matches of "a handwritten <digit>" for digits 0, 1, ..., 9 in turn.

    CLIP scores image-caption pairs; it cannot draw, so sampling ranks the held-out
    digits (deterministic: ``key`` is unused).
    """
    del key
    pool = data.load("digits", split="test")
    n = checks.int_in_range("n", n, 1, pool.shape[0])  # at most the held-out digits
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
    test_in = to_model_range(test_x)
    out: dict = {}
    for name, templates in (
        ("zero_shot_accuracy", captions.TEMPLATES),
        ("zero_shot_accuracy_one_template", ("a handwritten {word}",)),
        ("zero_shot_accuracy_unseen_templates", captions.UNSEEN_TEMPLATES),
    ):
        classes = jnp.asarray(captions.caption_table(templates))  # (10, T, L)
        pred = np.asarray(zero_shot_predict(params, test_in, classes))
        out[name] = float(np.mean(pred == test_y))
    classes = jnp.asarray(captions.caption_table(captions.TEMPLATES))
    pred = np.asarray(zero_shot_predict(params, to_model_range(train_x), classes))
    out["zero_shot_accuracy_train"] = float(np.mean(pred == train_y))
    out["logit_scale"] = float(params.logit_scale())
    prompts = [captions.caption(d, "a handwritten {word}") for d in range(NUM_CLASSES)]
    best = _retrieve(params, prompts, test_x, 10)  # (10, 10)
    out["retrieval_precision_at_10"] = float(np.mean(test_y[best] == np.arange(10)[:, None]))
    plotting.image_grid(
        test_x[best.reshape(-1)], Path(out_dir) / "samples.png", nrow=10,
        title="clip retrieval: one row per digit prompt",
    )
    return out


RECIPES: tuple[Recipe, ...] = (
    Recipe(name="clip", family="contrastive",
           summary="CLIP (conv image + char transformer text encoder) on captioned 8x8 digits; "
           "zero-shot accuracy", data="digits", init=clip_init, loss=clip_recipe_loss,
           sample=clip_sample, report=clip_report, steps=500, batch_size=128,
           learning_rate=2e-3, load_data=data.load_with_labels, sample_options=("prompt",)),
)
