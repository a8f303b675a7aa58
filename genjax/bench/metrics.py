"""Sample-quality metrics: genjax.metrics against its NumPy float64 oracle.

Workload: two 2-D sample sets of ``n`` points each (a ring mixture and a slightly
shifted copy of it), the size a 2-D generative model's report evaluates. Timed: the
squared MMD (median-heuristic bandwidth), the squared energy distance, the sliced
2-Wasserstein distance (128 directions) and the Frechet distance. ``extra`` holds the value
so that the genjax and oracle rows can be compared.

The oracle materialises every pairwise difference (``n x n x D`` float64), so it runs only
up to ``n = 2048``; genjax's pair sums (a Gram matmul for MMD, fused coordinate
differences for the energy distance) run in row blocks beyond ``2 x 4096 x 4096`` entries.
"""

from __future__ import annotations

import functools

import numpy as np

from genjax.bench.harness import Row, time_host, time_jax

NOTES = (
    "Two 2-D sets of n points (ring mixture vs shifted copy); genjax float32 (jitted), "
    "oracle NumPy float64. value = the metric, for cross-checking the rows."
)


def run(quick: bool = False) -> list[Row]:
    import jax

    from genjax import metrics, targets
    from genjax import oracle_metrics as om

    sizes = (512,) if quick else (1024, 4096)
    repeats = 3 if quick else 5
    rows: list[Row] = []
    target = targets.ring()
    for n in sizes:
        kx, ky, kd = jax.random.split(jax.random.key(n), 3)
        x = target.sample(kx, n)
        y = target.sample(ky, n) + 0.2
        g = jax.random.normal(kd, (128, 2))
        dirs = g / np.linalg.norm(np.asarray(g), axis=1, keepdims=True)
        x_np, y_np, d_np = (np.asarray(a, np.float64) for a in (x, y, dirs))
        cases = {
            "mmd": (metrics.mmd, om.mmd),
            "energy_distance": (metrics.energy_distance, om.energy_distance),
            "sliced_wasserstein": (
                functools.partial(metrics.sliced_wasserstein_with_directions, directions=dirs),
                functools.partial(om.sliced_wasserstein, directions=d_np),
            ),
            "frechet_distance": (metrics.frechet_distance, om.frechet_distance),
        }
        for name, (fn, oracle_fn) in cases.items():
            case = f"{name} n={n}"
            t = time_jax(fn, x, y, repeats=repeats)
            rows.append(
                Row("metrics", case, "genjax", t.compile_s, t.run_s, {"value": float(fn(x, y))})
            )
            if n <= 2048:
                t = time_host(oracle_fn, x_np, y_np, repeats=repeats)
                rows.append(
                    Row(
                        "metrics",
                        case,
                        "oracle (numpy)",
                        t.compile_s,
                        t.run_s,
                        {"value": float(oracle_fn(x_np, y_np))},
                    )
                )
    return rows
