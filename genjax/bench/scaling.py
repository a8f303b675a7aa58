"""Scaling: training steps per second of the default diffusion and VAE recipes on 1-8 devices.

Workload: the ``ddpm`` recipe (MLP denoiser on the ring, batch 512) and the ``vae`` recipe
(MLP VAE on 8x8 digits, batch 128), one compiled :func:`genjax.train.make_step` each, the
batch laid over a ``("data",)`` mesh of 1, 2, 4 or 8 devices — the program ``genjax train
--devices N`` runs. Each device count needs its own process (XLA fixes the host device
count when it starts), so every row is measured in a subprocess started with
``XLA_FLAGS=--xla_force_host_platform_device_count=N``. ``run_s`` is seconds per step: the
median over ``repeats`` timings of ``steps`` chained steps (the state of one step feeds the
next, as in ``fit``), ended by ``block_until_ready``; ``compile_s`` is the first step.

Read the CPU rows with the machine in mind: host "devices" are threads sharing the
machine's cores. On 2 physical cores no device count can run more than 2x faster than one
device, and the per-device work of a step this small (a few MFLOP) is comparable to the
cost of dispatching it and of the all-reduce, so speedups are small or below 1. The table
shows that the same program runs, and what splitting costs, not what 8 accelerators give.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

from genjax.bench.harness import Row

RECIPES = ("ddpm", "vae")
DEVICE_COUNTS = (1, 2, 4, 8)

NOTES = (
    "Training steps/s of the default diffusion (ddpm, batch 512) and VAE (vae, batch 128) "
    "recipes, the batch laid over 1/2/4/8 host CPU devices (one process per device count, "
    "XLA_FLAGS=--xla_force_host_platform_device_count=N); run_s = seconds per step, median "
    "of chained steps. Host devices share the machine's physical cores: on 2 cores no count "
    "can exceed 2x one device, and steps this small are dominated by dispatch and the "
    "all-reduce, so these rows show the overhead of splitting, not accelerator scaling. "
    "GPU: no GPU machine was lent to this session, so there are no GPU rows."
)


def _worker(recipe_name: str, devices: int, steps: int, repeats: int) -> dict:
    """Runs in the subprocess: times the recipe's step on a mesh of ``devices``."""
    import jax
    import jax.numpy as jnp

    from genjax import data as data_lib
    from genjax import registry, sharding, train

    if jax.device_count() < devices:
        raise SystemExit(f"asked for {devices} devices, JAX sees {jax.device_count()}")
    recipe = registry.get(recipe_name)
    loaded = (recipe.load_data(recipe.data, "train", 0) if recipe.load_data is not None
              else data_lib.load(recipe.data, split="train"))
    data = jax.tree.map(jnp.asarray, loaded)
    n = jax.tree.leaves(data)[0].shape[0]
    mesh = sharding.make_mesh(devices)
    state = sharding.put_replicated(
        train.init_state(recipe, jax.random.key(0), data, recipe.steps), mesh)
    data = sharding.put_replicated(data, mesh)
    step = train.make_step(recipe, jax.random.key(1), num_examples=n,
                           batch_size=recipe.batch_size, total_steps=recipe.steps, mesh=mesh)
    start = time.perf_counter()
    state, metrics = step(state, data)
    jax.block_until_ready((state, metrics))
    compile_s = time.perf_counter() - start
    per_step = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            state, metrics = step(state, data)
        jax.block_until_ready((state, metrics))
        per_step.append((time.perf_counter() - start) / steps)
    per_step.sort()
    return {"compile_s": compile_s, "run_s": per_step[len(per_step) // 2],
            "batch_size": recipe.batch_size, "loss": float(metrics["loss"])}


def _flags(devices: int) -> str:
    """The user's XLA_FLAGS with the host device count set to ``devices``."""
    kept = re.sub(r"--xla_force_host_platform_device_count=\d+", "",
                  os.environ.get("XLA_FLAGS", "")).strip()
    return f"--xla_force_host_platform_device_count={devices}" + (f" {kept}" if kept else "")


def _measure(recipe: str, devices: int, steps: int, repeats: int) -> dict:
    env = {**os.environ, "XLA_FLAGS": _flags(devices), "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(
        [sys.executable, "-m", "genjax.bench.scaling", "--worker", recipe, str(devices),
         str(steps), str(repeats)],
        env=env, capture_output=True, text=True, timeout=1800,
    )
    if out.returncode != 0:
        raise RuntimeError(f"scaling worker {recipe} x{devices} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> list[Row]:
    steps, repeats = (5, 3) if quick else (50, 5)
    rows = []
    for recipe in RECIPES:
        base = None
        for devices in DEVICE_COUNTS:
            result = _measure(recipe, devices, steps, repeats)
            base = result["run_s"] if base is None else base
            rows.append(Row(
                suite="scaling",
                case=f"{recipe} train step, batch {result['batch_size']}",
                impl=f"genjax, {devices} CPU device{'s' if devices > 1 else ''}",
                compile_s=result["compile_s"],
                run_s=result["run_s"],
                extra={
                    "devices": devices,
                    "steps_per_s": 1.0 / result["run_s"],
                    "speedup_vs_1_device": base / result["run_s"],
                    "cpu_count": os.cpu_count(),
                },
            ))
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        name, devices, steps, repeats = sys.argv[2], *map(int, sys.argv[3:6])
        print(json.dumps(_worker(name, devices, steps, repeats)))
    else:
        from genjax.bench.__main__ import main

        sys.exit(main(["scaling", *sys.argv[1:]]))
