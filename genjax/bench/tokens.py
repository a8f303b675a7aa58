"""Tokens: sampling the VQ code prior, and the VQGAN / VQ-VAE tokenizer steps.

Workload: the ``vq-prior`` / ``vqgan`` recipes' networks (random weights; timing does not
depend on training): a :class:`~genjax.composites.vq_prior.CodePrior` over ``M = 8`` codes
of ``K = 32`` with 10 class tokens (the recipe's transformer: width 32, 4 heads, 1 layer)
and the MLP VQ-VAE tokenizer ``64 -> 256 -> 256 -> 8x4`` on 8x8 digits.

* ``prior sample``: ``B`` class-conditional code sequences (10 per class) by
  :func:`genjax.autoregressive.generate` through the KV cache (one compiled
  ``while_loop``), against the same loop with ``use_cache=False`` (the whole causal forward
  pass recomputed each step), and beam search (4 beams, cached); ``+ decode`` adds the
  tokenizer's decoder (:func:`~genjax.composites.vq_prior.sample_images`);
* ``tokenizer step``: one VQGAN update (generator gradients with the adaptive weight, the
  EMA codebook, the patch critic's hinge step) against one plain VQ-VAE update, batch 128.

``compile_s`` (the first call) is reported apart from the steady-state median.
Run: ``python -m genjax.bench tokens [--quick]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from genjax.bench.harness import Row, time_jax
from genjax.composites import token_recipes as tr
from genjax.composites import vq_prior as vp

SUITE = "tokens"
NOTES = (f"Code prior of the vq-prior recipe (K=32 codes, M=8 per digit, 10 classes, "
         f"transformer width {tr.PRIOR['dim']} x {tr.PRIOR['num_layers']} layer(s)), random "
         "weights. Sampling: generate with the KV cache vs "
         "use_cache=False, beam search 4 beams; tokenizer steps at batch 128. "
         "speedup = that row's time / the cached sampler's (or the VQ-VAE step's).")


def _prior() -> vp.CodePrior:
    return vp.CodePrior(tr.TOK["num_codes"], tr.TOK["num_latents"], tr.NUM_CLASSES,
                        rngs=nnx.Rngs(0), **tr.PRIOR)


def _sampling_rows(batch: int, repeats: int) -> list[Row]:
    prior = _prior()
    vq = tr.init_tokenizer(jax.random.key(1), jnp.zeros((256, 8, 8, 1)))["vq"]
    labels = jnp.arange(batch, dtype=jnp.int32) % tr.NUM_CLASSES
    key = jax.random.key(2)
    case = f"prior sample B={batch} M={prior.num_latents}"
    cached = time_jax(vp.sample_codes, key, prior, labels, repeats=repeats)
    uncached = time_jax(vp.sample_codes, key, prior, labels, use_cache=False, repeats=repeats)
    beam = time_jax(vp.most_likely_codes, prior, labels, num_beams=4, repeats=repeats)
    images = time_jax(vp.sample_images, key, vq, prior, labels, repeats=repeats)
    per_token = batch * prior.num_latents

    def extra(t):
        return {"codes_per_s": round(per_token / t.run_s),
                "speedup": round(t.run_s / cached.run_s, 2)}

    return [Row(SUITE, case, "genjax generate (KV cache)", cached.compile_s, cached.run_s,
                extra(cached)),
            Row(SUITE, case, "genjax generate (use_cache=False)", uncached.compile_s,
                uncached.run_s, extra(uncached)),
            Row(SUITE, case, "genjax beam search (4 beams, cached)", beam.compile_s,
                beam.run_s, extra(beam)),
            Row(SUITE, case + " + decode", "genjax sample_images", images.compile_s,
                images.run_s, extra(images))]


def _step_rows(repeats: int) -> list[Row]:
    images = jax.random.uniform(jax.random.key(3), (128, 8, 8, 1))
    labels = jnp.arange(128, dtype=jnp.int32) % tr.NUM_CLASSES
    rows = []
    base = None
    for name, init, step in (("VQ-VAE", tr.vq_prior_init, tr.vq_prior_step),
                             ("VQGAN (+ critic, adaptive weight)", tr.vqgan_init,
                              tr.vqgan_step)):
        params = init(jax.random.key(4), (images, labels))
        params["step"] = jnp.asarray(tr.DISC_START, jnp.int32)  # the tokenizer phase, GAN on
        fn = jax.jit(step)
        t = time_jax(fn, params, (images, labels), jax.random.key(5), repeats=repeats)
        base = base or t
        rows.append(Row(SUITE, "tokenizer step B=128", f"genjax {name}", t.compile_s, t.run_s,
                        {"speedup": round(t.run_s / base.run_s, 2)}))
    return rows


def run(quick: bool = False) -> list[Row]:
    """The suite's rows; ``quick`` samples 10 sequences and repeats 3 times."""
    repeats = 3 if quick else 7
    return _sampling_rows(10 if quick else 100, repeats) + _step_rows(repeats)
