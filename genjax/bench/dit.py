"""The diffusion transformer's forward pass: genjax (jitted) against its oracle and diffusers.

Workload: one class-conditional forward pass ``eps(x_t, t, y)`` of the DiT of the
``dit-digits`` recipe — 8x8x1 images in 2x2 patches (16 tokens), width 64, 4 adaLN-Zero
blocks of 4 heads, MLP ratio 4, 10 classes — on a batch of 64 random images
(``--quick``: 16), at random times and labels. The timestep features are 256 wide here (the
recipe uses 64) because diffusers fixes them at 256: so the two networks have the same shapes
layer for layer (see ``NOTES``).

* **genjax**: :class:`genjax.nn.DiT` under ``jax.jit``, the module passed as a traced
  argument (as every genjax sampler passes it);
* **oracle (numpy f64)**: :func:`genjax.diffusion.oracle_dit.dit_forward` on the same
  weights, float64, written with loops over patches and heads (a reference, not a rival);
* **diffusers**: ``DiTTransformer2DModel`` (``norm_type="ada_norm_zero"``) of the same
  shape, eager PyTorch under ``torch.no_grad()``, one thread (the machine has two cores
  shared with the JAX side; as the gan and vae suites), alternated with genjax
  (:func:`genjax.bench.harness.time_paired`): its ``ratio`` is torch time / genjax time,
  the median of the pairs;
* **genjax U-Net** (context): the ``ddpm-digits`` recipe's U-Net on the same batch — what
  the DiT replaces.

Compilation is timed apart (``compile_s``, the first call). Run: ``python -m genjax.bench
dit`` (diffusers rows need ``pip install -e ".[peers]"``; skipped with a note otherwise).
"""

from __future__ import annotations

import numpy as np

from genjax.bench.harness import Row, time_host, time_jax, time_paired

SUITE = "dit"
NOTES = ""

PATCH, DIM, DEPTH, HEADS, CLASSES, FREQ = 2, 64, 4, 4, 10, 256


def _diffusers_forward(x: np.ndarray, t: np.ndarray, y: np.ndarray):
    """A zero-argument call of diffusers' DiT of the same shape, and the torch version."""
    import torch
    from diffusers import DiTTransformer2DModel

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = DiTTransformer2DModel(
        num_attention_heads=HEADS,
        attention_head_dim=DIM // HEADS,
        in_channels=1,
        out_channels=1,
        num_layers=DEPTH,
        sample_size=8,
        patch_size=PATCH,
        activation_fn="gelu-approximate",
        num_embeds_ada_norm=CLASSES,
        norm_type="ada_norm_zero",
        norm_elementwise_affine=False,
        norm_eps=1e-6,
    ).eval()
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # NHWC -> NCHW
    tt, yt = torch.from_numpy(t), torch.from_numpy(y)

    def forward():
        with torch.no_grad():
            return model(xt, timestep=tt, class_labels=yt).sample

    return forward, torch.__version__


def run(quick: bool = False) -> list[Row]:
    global NOTES
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from genjax.diffusion import oracle_dit
    from genjax.nn import DiT, UNet

    n = 16 if quick else 64
    repeats = 3 if quick else 10
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 8, 8, 1)).astype(np.float32)
    t = rng.integers(0, 1000, n).astype(np.int64)
    y = rng.integers(0, CLASSES, n).astype(np.int64)
    net = DiT(
        1,
        patch_size=PATCH,
        dim=DIM,
        depth=DEPTH,
        num_heads=HEADS,
        mlp_ratio=4.0,
        num_classes=CLASSES,
        frequency_dim=FREQ,
        rngs=nnx.Rngs(0),
    )
    # Nonzero weights everywhere (adaLN-Zero starts at zero; the cost does not depend on it,
    # the oracle comparison below does).
    net = jax.tree.map(lambda w: jnp.asarray(0.05 * rng.standard_normal(w.shape), w.dtype), net)
    apply = jax.jit(lambda model, x, t, y: model(x, t, y))
    xj, tj, yj = jnp.asarray(x), jnp.asarray(t, jnp.int32), jnp.asarray(y, jnp.int32)
    case = f"dit forward (8x8x1, p2, D{DIM}, L{DEPTH}, H{HEADS}, 10 classes), batch={n}"

    rows: list[Row] = []
    g = time_jax(apply, net, xj, tj, yj, repeats=repeats)
    rows.append(
        Row(SUITE, case, "genjax", g.compile_s, g.run_s, {"per_image_us": 1e6 * g.run_s / n})
    )

    params = oracle_dit.params_from_dit(net)
    kw = dict(patch_size=PATCH, num_heads=HEADS, frequency_dim=FREQ)
    o = time_host(
        lambda: oracle_dit.dit_forward(params, x, t, y, **kw), repeats=max(3, repeats // 3)
    )
    err = float(
        np.abs(
            np.asarray(apply(net, xj, tj, yj)) - oracle_dit.dit_forward(params, x, t, y, **kw)
        ).max()
    )
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

    try:
        torch_forward, torch_version = _diffusers_forward(x, t, y)
    except ImportError as exc:
        rows.append(
            Row(
                SUITE,
                case,
                "diffusers (absent)",
                None,
                float("nan"),
                {"skipped": f"diffusers/torch not importable ({exc})"},
            )
        )
    else:
        paired = time_paired(
            lambda: apply(net, xj, tj, yj),
            torch_forward,
            pairs=3 if quick else 5,
            repeats=max(1, repeats // 2),
        )
        rows.append(
            Row(
                SUITE,
                case,
                f"diffusers DiTTransformer2DModel (torch {torch_version}, eager)",
                paired.b.compile_s,
                paired.b.run_s,
                {
                    "ratio": paired.ratio,
                    "pairs": paired.pairs,
                    "genjax_run_s_paired": paired.a.run_s,
                },
            )
        )

    unet = UNet(
        1,
        base_channels=16,
        channel_mults=(1, 2),
        num_res_blocks=1,
        attention_levels=(1,),
        num_classes=CLASSES,
        num_heads=4,
        num_groups=8,
        rngs=nnx.Rngs(0),
    )
    u = time_jax(apply, unet, xj, tj, yj, repeats=repeats)
    rows.append(
        Row(
            SUITE,
            f"ddpm-digits U-Net forward (context), batch={n}",
            "genjax",
            u.compile_s,
            u.run_s,
            {"per_image_us": 1e6 * u.run_s / n},
        )
    )
    NOTES = (
        "Same shapes as diffusers' DiTTransformer2DModel layer for layer: patch embedding, "
        "fixed 2-D sin-cos positions, 256 sinusoidal timestep features -> 2-layer MLP, a class "
        "table with a null row, adaLN-Zero blocks (LayerNorm eps 1e-6, tanh-GELU MLP of "
        "ratio 4), adaLN final layer. Not matched: the dit-digits recipe uses 64 timestep "
        "features, not 256 (one 64x64 instead of 256x64 matmul per batch); diffusers orders its "
        "time features cos-first with a frequency shift of 1 (other numbers, the same cost), "
        "so the outputs are not compared. torch: one thread, eager, no_grad; ratio = torch "
        "time / genjax time, median of alternated pairs."
    )
    return rows
