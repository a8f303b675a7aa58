"""The video diffusion transformer: forward pass and DDIM sampler, genjax against its oracle.

Workload: the network of the ``video-dit`` recipe — clips of 8 frames of 16x16x1 in
(2, 4, 4) tubelets (a 4 x 16 grid of 64 tokens), width 64, 2 spatial-temporal stages of 4
heads, MLP ratio 4, 64-wide time features — with nonzero random weights.

* **forward**, a batch of 64 clips (``--quick``: 8) at random times:
  - genjax :class:`genjax.nn.VideoDiT` (factorised attention) under ``jax.jit``, the
    module a traced argument;
  - genjax with ``attention="joint"`` and 4 blocks (the same number of blocks and weights:
    every block over all 64 tokens), alternated with the factorised one
    (:func:`genjax.bench.harness.time_paired`, median of the pair ratios): what the
    factorisation buys or costs at this size;
  - the oracle (:func:`genjax.diffusion.oracle_video.video_dit_forward`, NumPy float64,
    loops over clips, frames, places and heads: a reference, not a rival).
* **DDIM**, 20 steps (eta = 0, cosine schedule of 1000 steps, x0 clipped to [-1, 1] as the
  recipe samples) of 8 clips (``--quick``: 2 clips, 5 steps): genjax's
  :func:`genjax.diffusion.ddim_sample_from_noise` (one ``lax.scan`` program) against the
  diffusion oracle's DDIM loop driving the video oracle, from the same ``x_T``.

No peer row: diffusers' ``LatteTransformer3DModel`` is the closest PyTorch model (also
interleaved spatial and temporal blocks) but differs in its patch embedding (per frame, no
tubelets) and conditioning (caption tokens); not compared here (see ``NOTES``).
Compilation is timed apart (``compile_s``). Run: ``python -m genjax.bench video_dit``.
"""

from __future__ import annotations

import numpy as np

from genjax.bench.harness import Row, time_host, time_jax, time_paired

SUITE = "video_dit"
NOTES = (
    "no peer: diffusers' LatteTransformer3DModel embeds frames, not tubelets, and is "
    "conditioned on captions; a matched configuration is future work"
)

TUBELET, DIM, DEPTH, HEADS, FREQ = (2, 4, 4), 64, 2, 4, 64
CLIP = (8, 16, 16, 1)  # (T, H, W, C)


def _net(attention: str, depth: int, seed: int):
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from genjax.nn import VideoDiT

    net = VideoDiT(
        1,
        tubelet=TUBELET,
        dim=DIM,
        depth=depth,
        num_heads=HEADS,
        frequency_dim=FREQ,
        attention=attention,
        rngs=nnx.Rngs(seed),
    )
    # Nonzero weights everywhere (adaLN-Zero starts at zero; the oracle comparison needs it).
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda w: jnp.asarray(0.05 * rng.standard_normal(w.shape), w.dtype), net)


def run(quick: bool = False) -> list[Row]:
    import jax
    import jax.numpy as jnp

    from genjax import diffusion as d
    from genjax.diffusion import oracle as diffusion_oracle
    from genjax.diffusion import oracle_video

    n = 8 if quick else 64
    repeats = 3 if quick else 10
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, *CLIP)).astype(np.float32)
    t = rng.integers(0, 1000, n).astype(np.int32)
    factorised = _net("factorised", DEPTH, 0)
    joint = _net("joint", 2 * DEPTH, 1)  # as many blocks (and weights) as the factorised net
    apply = jax.jit(lambda model, x, t: model(x, t))
    xj, tj = jnp.asarray(x), jnp.asarray(t)
    case = f"video-dit forward (8x16x16x1, tubelet 2x4x4, D{DIM}, {2 * DEPTH} blocks), batch={n}"
    rows: list[Row] = []

    paired = time_paired(
        lambda: apply(factorised, xj, tj),
        lambda: apply(joint, xj, tj),
        pairs=3,
        repeats=max(1, repeats // 2),
    )
    rows.append(
        Row(
            SUITE,
            case,
            "genjax (factorised)",
            paired.a.compile_s,
            paired.a.run_s,
            {"per_clip_us": 1e6 * paired.a.run_s / n},
        )
    )
    rows.append(
        Row(
            SUITE,
            case,
            "genjax (joint)",
            paired.b.compile_s,
            paired.b.run_s,
            {"joint_over_factorised": paired.ratio, "pairs": paired.pairs},
        )
    )

    params = oracle_video.params_from_video_dit(factorised)
    kw = dict(tubelet=TUBELET, num_heads=HEADS)
    o = time_host(lambda: oracle_video.video_dit_forward(params, x, t, **kw), repeats=3)
    err = float(
        np.abs(
            np.asarray(apply(factorised, xj, tj))
            - oracle_video.video_dit_forward(params, x, t, **kw)
        ).max()
    )
    rows.append(
        Row(
            SUITE,
            case,
            "oracle (numpy f64)",
            o.compile_s,
            o.run_s,
            {"speedup": o.run_s / paired.a.run_s, "max_abs_diff_vs_genjax": err},
        )
    )

    clips, steps = (2, 5) if quick else (8, 20)
    schedule = d.cosine(1000)
    x_T = rng.standard_normal((clips, *CLIP)).astype(np.float32)
    case = f"video-dit ddim-{steps} (eta 0, cosine-1000, clip x0), {clips} clips"
    sample = jax.jit(
        lambda model, x_T: d.ddim_sample_from_noise(
            model, x_T, None, schedule, num_steps=steps, clip_x0=1.0
        )
    )
    g = time_jax(sample, factorised, jnp.asarray(x_T), repeats=repeats)
    rows.append(
        Row(SUITE, case, "genjax", g.compile_s, g.run_s, {"per_clip_ms": 1e3 * g.run_s / clips})
    )

    def eps_fn(v, s):
        return oracle_video.video_dit_forward(params, v, s, **kw)

    betas = np.asarray(schedule.betas, np.float64)

    def oracle_sample():
        return diffusion_oracle.ddim_loop(eps_fn, betas, x_T, steps, clip_x0=1.0)

    o = time_host(oracle_sample, repeats=1)
    err = float(np.abs(np.asarray(sample(factorised, jnp.asarray(x_T))) - oracle_sample()).max())
    rows.append(
        Row(
            SUITE,
            case,
            "oracle (numpy f64)",
            o.compile_s,
            o.run_s,
            {"speedup": o.run_s / g.run_s, "max_abs_diff_vs_genjax": err},
        )
    )
    return rows
