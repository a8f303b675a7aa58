"""unCLIP: the prior alone and the whole cascade (prior + decoder) of the ``unclip`` recipe.

Workloads, on the recipe's randomly initialised networks (the cost does not depend on the
weights), N captions "a handwritten <digit>" (N = 100; 20 with ``--quick``):

* **prior**: guided DDIM-20 over 32-D CLIP image embeddings
  (:func:`genjax.composites.unclip.sample_embeddings`; one MLP call per step on the doubled
  batch ``[text; null]``);
* **cascade**: prior DDIM-20, projection onto the sphere, decoder DDIM-20 with
  classifier-free guidance (:func:`genjax.composites.unclip.sample`), with the null
  embedding and with a negative prompt in the prior (same cost: one doubled batch either way).

Compilation is timed apart (``compile_s``: the first call); ``run_s`` is the median of the
repeats; ``per_image_ms = run / N``. Compare with the clip suite's text-to-digit row (one
DDIM-20 stage of the same U-Net on text features).

Run: ``python -m genjax.bench unclip``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from genjax.bench.harness import Row, time_jax

SUITE = "unclip"
NOTES = ""


def run(quick: bool = False) -> list[Row]:
    global NOTES
    from genjax.composites import unclip
    from genjax.composites import unclip_recipes as r
    from genjax.contrastive import captions
    from genjax.contrastive import recipes as clip_recipes

    n = 20 if quick else 100
    repeats = 2 if quick else 5
    steps = 20
    params = r.uc_init(jax.random.key(0), None)
    prompts = [captions.caption(i % 10, "a handwritten {word}") for i in range(n)]
    text = unclip.text_embeddings(params["clip"], jnp.asarray(clip_recipes.prompt_tokens(prompts)))
    negative = jnp.roll(text, 1, axis=0)  # each row's neighbour digit as its negative prompt
    scale = jnp.float32(r.GUIDANCE_SCALE)

    def prior_only(key, prior, text):
        return unclip.sample_embeddings(key, prior, text, r.PRIOR_SCHEDULE, num_steps=steps,
                                        scale=scale)

    def cascade(key, prior, decoder, text, negative):
        return unclip.sample(key, prior, decoder, text, (8, 8, 1), r.PRIOR_SCHEDULE,
                             r.DECODER_SCHEDULE, prior_steps=steps, decoder_steps=steps,
                             prior_scale=scale, decoder_scale=scale, negative_text=negative)

    rows = []
    key = jax.random.key(1)
    t = time_jax(prior_only, key, params["prior"], text, repeats=repeats)
    rows.append(Row(SUITE, f"prior ddim-{steps} cfg batch={n}", "genjax", t.compile_s, t.run_s,
                    {"per_image_ms": 1e3 * t.run_s / n}))
    for label, neg in (("null", None), ("negative prompt", negative)):
        t = time_jax(cascade, key, params["prior"], params["decoder"], text, neg,
                     repeats=repeats)
        rows.append(Row(SUITE, f"cascade prior+decoder ddim-{steps}x2 ({label}) batch={n}",
                        "genjax", t.compile_s, t.run_s, {"per_image_ms": 1e3 * t.run_s / n}))
    NOTES = ("unclip recipe networks, randomly initialised; guidance 3 in both stages; the "
             "negative-prompt row replaces the prior's null embedding by another caption's; "
             "per_image_ms = run / batch.")
    return rows
