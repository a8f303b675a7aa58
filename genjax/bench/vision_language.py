"""Vision-language composites: captioning throughput and CLIP-guided generation.

Workloads (models from the recipes' inits, randomly initialised: the cost does not depend
on the weights, and untrained captioners rarely emit ``<eos>``, so every caption runs its
full 31 tokens -- the worst case):

* **captioning** of B held-out digits by the ``captioner`` recipe's VLM
  (:mod:`genjax.composites.captioner`): the CLIP tower's patch features, then greedy
  decoding through the KV cache, the same without the cache (the whole prefix-LM forward
  pass every step), and beam search with 4 beams through the KV cache; per caption.
  ``compile_s`` is the first call (trace + compile + one run), ``run_s`` the steady state.
* **CLIP-guided generation** of n digits by the ``clip-guided`` recipe's VQ-VAE + CLIP
  (:func:`genjax.composites.clip_guided.clip_guided`): 100 Adam steps (20 with
  ``--quick``) on the latents with 4 shifted views each; per image.

Run: ``python -m genjax.bench vision_language`` (``--quick``: smaller batches).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from genjax import data
from genjax.bench.harness import Row, time_jax
from genjax.composites import captioner as cap
from genjax.composites import clip_guided as cg
from genjax.composites import vision_language_recipes as vl
from genjax.contrastive import captions
from genjax.contrastive import recipes as clip_recipes

SUITE = "vision_language"
NOTES = ("random weights (cost does not depend on them): captions run all 31 tokens; "
         "per-item times are run_s / batch")


def run(quick: bool = False) -> list[Row]:
    B = 16 if quick else 128
    n_guided, guide_steps = (10, 20) if quick else (100, 100)
    repeats = 2 if quick else 5
    images, labels = data.load_with_labels("digits", "test", 0)
    x = jnp.asarray(images[:B], jnp.float32)
    rows: list[Row] = []

    params = vl.captioner_init(jax.random.key(0), (images, labels))
    t = time_jax(vl.image_features, params["clip"], x, repeats=repeats)  # first call here
    rows.append(Row(SUITE, f"CLIP patch features of {B} digits", "genjax", t.compile_s,
                    t.run_s))
    feats = vl.image_features(params["clip"], x)  # (B, 4, 64)
    model = params["captioner"]
    N = captions.MAX_LENGTH - 1
    for name, fn in (
        ("greedy, KV cache", lambda: cap.greedy_captions(model, feats)),
        ("greedy, no cache", lambda: cap.greedy_captions(model, feats, use_cache=False)),
        (f"beam {vl.CAP_BEAMS}, KV cache",
         lambda: cap.beam_captions(model, feats, num_beams=vl.CAP_BEAMS)),
    ):
        t = time_jax(fn, repeats=repeats)
        rows.append(Row(SUITE, f"caption {B} digits ({name}, {N} tokens)", "genjax",
                        t.compile_s, t.run_s, {"per_caption_ms": 1e3 * t.run_s / B}))

    gparams = vl.guided_init(jax.random.key(1), (images, labels))
    vq = gparams["vq"]
    prompts = [captions.caption(i % 10, "a handwritten {word}") for i in range(n_guided)]
    tokens = jnp.asarray(clip_recipes.prompt_tokens(prompts))

    def guided():
        return cg.clip_guided(jax.random.key(2), vq, gparams["clip"], tokens,
                              (vq.num_latents, vq.code_dim), num_steps=guide_steps,
                              learning_rate=vl.GUIDE_LR, num_augmentations=vl.GUIDE_VIEWS,
                              max_shift=vl.GUIDE_SHIFT).images

    t = time_jax(guided, repeats=repeats)
    rows.append(Row(SUITE, f"clip-guided {n_guided} digits ({guide_steps} Adam steps, "
                    f"{vl.GUIDE_VIEWS} views)", "genjax", t.compile_s, t.run_s,
                    {"per_image_ms": 1e3 * t.run_s / n_guided}))
    return rows
