"""``genjax compare``: every family trained on the same data for the same wall-clock budget.

For each family's representative recipe (:mod:`genjax.compare.adapters`) and each seed:

1. **train** through the public :func:`genjax.train.fit` (the trainer of ``genjax train``),
   on the built-in data split with seed 0 for every family and seed (the seed varies the
   model's initialisation and training noise, never the data), until the wall-clock
   budget is spent: the clock starts when the first step returns (its compilation kept
   apart, recorded as ``first_step_seconds``) and ``fit`` is stopped through its
   ``on_step`` callback, which saves the step reached; the model is read back by resuming
   the run at that step. Steps are logged every ``LOG_EVERY`` steps, which waits for the
   device, so the clock cannot run ahead of the work by more than that many steps;
2. **sample** ``n`` examples with each sampler, one jitted program compiled ahead of time
   (``jax.jit(...).lower(...).compile()``, the compile time recorded apart), and time the
   draw: samples per second at batch ``n``;
3. **score** the samples (:mod:`genjax.compare.measure`) and, where the family has one,
   the held-out log-likelihood (:class:`genjax.compare.adapters.Likelihood`).

:func:`aggregate` then gives each row's mean and spread over seeds; :mod:`genjax.compare.report`
writes ``compare.md`` / ``compare.json`` and :mod:`genjax.compare.figures` the pictures.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from genjax import data as data_lib
from genjax import registry, targets
from genjax.checkpoint import TrainingInterrupted
from genjax.compare import measure
from genjax.compare.adapters import Entry, Sampler, bits, entries
from genjax.digit_classifier import digit_classifier
from genjax.train import fit

__all__ = [
    "train_for_budget",
    "run_seed",
    "aggregate",
    "compare",
    "DEFAULT_BUDGET",
    "DEFAULT_SEEDS",
    "NUM_SAMPLES",
]

DEFAULT_BUDGET = 15.0  # seconds of training per family and seed
DEFAULT_SEEDS = 3
"""Training seeds per family: the table gives the mean and standard deviation over them."""
NUM_SAMPLES = 1000  # samples per sampler and seed: the batch the speed is measured at
LOG_EVERY = 10  # steps between metric rows (each row waits for the device)
MAX_STEPS = 10**8  # fit's step count: the budget, not this, ends training
DATA_SEED = 0  # the split every family trains and is judged on


def load_split(recipe: Any, data_name: str, split: str) -> Any:
    """The recipe's view of the data (its ``load_data`` or :func:`genjax.data.load`)."""
    if recipe.load_data is not None:
        return recipe.load_data(data_name, split, DATA_SEED)
    return data_lib.load(data_name, split=split, seed=DATA_SEED)


def train_for_budget(
    recipe: Any, train: Any, *, key: jax.Array, budget: float, run_dir: Path, data_name: str
) -> tuple[Any, dict]:
    """Trains ``recipe`` for ``budget`` seconds after its first step; ``(params, info)``.

    ``info``: ``steps`` done, ``train_seconds`` (budget clock), ``first_step_seconds``
    (compilation and the first step), ``final_loss_finite``, ``final_metrics``.
    """
    clock: dict[str, float] = {}
    t0 = time.perf_counter()

    def on_step(done: int) -> None:
        now = time.perf_counter()
        if "start" not in clock:
            clock["start"], clock["first_step"] = now, now - t0
        elif now - clock["start"] >= budget:
            clock["end"] = now
            raise KeyboardInterrupt  # fit saves the step reached and stops

    # the same run both times: the second call resumes it at the step the budget reached
    run = dict(key=key, out_dir=run_dir, progress=False, report=False, data_name=data_name)
    try:
        fit(recipe, train, steps=MAX_STEPS, checkpoint_every=MAX_STEPS, log_every=LOG_EVERY,
            on_step=on_step, **run)  # fmt: skip
        raise RuntimeError(f"{recipe.name}: {MAX_STEPS} steps ran inside the budget")
    except TrainingInterrupted as stop:
        steps = stop.saved_step
    if steps is None:
        raise RuntimeError(f"{recipe.name}: stopped before its first step was saved")
    result = fit(recipe, train, steps=steps, resume=True, **run)
    final = result.history[-1] if result.history else {}
    info = {
        "steps": int(steps),
        "train_seconds": clock.get("end", time.perf_counter()) - clock["start"],
        "first_step_seconds": clock["first_step"],
        "final_metrics": final,
        "final_loss_finite": all(math.isfinite(v) for v in final.values()),
    }
    return result.params, info


class _Programs:
    """One compiled sampling program per (recipe, sampler), reused across seeds."""

    def __init__(self) -> None:
        self._compiled: dict[tuple[str, str], Any] = {}
        self.compile_seconds: dict[tuple[str, str], float] = {}

    def draw(
        self,
        name: str,
        sampler: Sampler,
        recipe_sample: Callable,
        key: jax.Array,
        params: Any,
        n: int,
    ) -> tuple[jax.Array, float]:
        """``n`` samples and the seconds the compiled draw took (compile apart)."""
        slot = (name, sampler.label)
        if slot not in self._compiled:
            program = jax.jit(lambda k, p: sampler.draw(k, p, n, recipe_sample))
            t = time.perf_counter()
            self._compiled[slot] = program.lower(key, params).compile()
            self.compile_seconds[slot] = time.perf_counter() - t
        t = time.perf_counter()
        samples = jax.block_until_ready(self._compiled[slot](key, params))
        return samples, time.perf_counter() - t

    def likelihood(self, entry: Entry) -> Callable:
        """The jitted ``entry.likelihood.log_prob`` (one program for every seed)."""
        slot = (entry.recipe, "likelihood")
        if slot not in self._compiled:
            self._compiled[slot] = jax.jit(entry.likelihood.log_prob)
        return self._compiled[slot]


def _judge(data_name: str, samples: jax.Array, test: np.ndarray) -> dict:
    if data_name == "ring":
        return measure.ring_figures(samples, test)
    return measure.digit_figures(samples, test, digit_classifier(DATA_SEED))


def reference_figures(data_name: str, n: int) -> dict:
    """The figures of ``n`` real training examples against the test split: the floor."""
    train = data_lib.load(data_name, split="train", seed=DATA_SEED)[:n]
    test = data_lib.load(data_name, split="test", seed=DATA_SEED)
    out = {
        k: v
        for k, v in _judge(data_name, train, test).items()
        if k in ("quality", "coverage", "occupancy_kl")
    }
    if data_name == "ring":  # the true density of the held-out points
        out["true_log_likelihood"] = float(jnp.mean(targets.ring().log_prob(jnp.asarray(test))))
    return out


def run_seed(
    entry: Entry,
    data_name: str,
    seed: int,
    *,
    budget: float,
    n: int,
    out_dir: Path,
    programs: _Programs,
) -> dict:
    """Trains ``entry``'s recipe with ``seed`` and measures every sampler and the likelihood."""
    recipe = registry.get(entry.recipe)
    key = jax.random.key(seed)
    train = load_split(recipe, data_name, "train")
    test = data_lib.load(data_name, split="test", seed=DATA_SEED)
    params, info = train_for_budget(
        recipe,
        train,
        key=key,
        budget=budget,
        data_name=data_name,
        run_dir=out_dir / "runs" / f"{entry.recipe}-seed{seed}",
    )
    sample_key, lik_key = jax.random.split(jax.random.fold_in(key, 1))
    samplers = {}
    for sampler in entry.samplers:
        samples, seconds = programs.draw(
            entry.recipe, sampler, recipe.sample, sample_key, params, n
        )
        figures = _judge(data_name, samples, test)
        figures["diverged"] = figures["diverged"] or not info["final_loss_finite"]
        samplers[sampler.label] = {
            **figures,
            "samples_per_second": n / seconds,
            "samples": np.asarray(samples[:256], np.float32),
        }
    likelihood = None
    if entry.likelihood is not None:
        log_p = programs.likelihood(entry)(params, jnp.asarray(test, jnp.float32), lik_key)
        likelihood = float(jnp.mean(log_p))
    return {"seed": seed, "training": info, "samplers": samplers, "log_likelihood": likelihood}


def _spread(values: list[float]) -> dict:
    finite = [v for v in values if math.isfinite(v)]
    return {
        "mean": statistics.fmean(finite) if finite else float("nan"),
        "std": statistics.stdev(finite) if len(finite) > 1 else 0.0,
        "per_seed": values,
    }


def aggregate(entry: Entry, seeds: list[dict], programs: _Programs) -> list[dict]:
    """One row per sampler of ``entry`` (one n/a row when it has no recipe)."""
    base = {"family": entry.family, "recipe": entry.recipe, "note": entry.note}
    if entry.recipe is None:
        return [{**base, "sampler": None, "status": "n/a", "reason": entry.not_applicable}]
    training = {
        "steps": [s["training"]["steps"] for s in seeds],
        "train_seconds": [s["training"]["train_seconds"] for s in seeds],
        "first_step_seconds": [s["training"]["first_step_seconds"] for s in seeds],
    }
    training["steps_per_second"] = statistics.fmean(
        st / max(sec, 1e-9)
        for st, sec in zip(training["steps"], training["train_seconds"], strict=True)
    )
    if entry.likelihood is None:
        likelihood = {"kind": "none", "reason": entry.no_likelihood}
    else:
        lik = entry.likelihood
        values = [s["log_likelihood"] for s in seeds]
        likelihood = {
            "kind": lik.kind,
            "representation": lik.representation,
            "log_likelihood_nats": _spread(values),
            "bits_per_dim": _spread([bits(v, lik.num_dims) for v in values]),
        }
    rows = []
    for sampler in entry.samplers:
        per = [s["samplers"][sampler.label] for s in seeds]
        bad = [p["diverged"] or p["collapsed"] for p in per]
        rows.append(
            {
                **base,
                "sampler": sampler.label,
                "status": "ok",
                "quality": _spread([p["quality"] for p in per]),
                "coverage": _spread([p["coverage"] for p in per]),
                "occupancy_kl": _spread([p["occupancy_kl"] for p in per]),
                "diverged": [p["diverged"] for p in per],
                "collapsed": [p["collapsed"] for p in per],
                "bad_seed_fraction": sum(bad) / len(bad),
                "likelihood": likelihood,
                "speed": {
                    "samples_per_second": statistics.median(p["samples_per_second"] for p in per),
                    "compile_seconds": programs.compile_seconds[(entry.recipe, sampler.label)],
                    "evals_per_sample": sampler.evals_per_sample,
                },
                "training": training,
                "sheet_samples": per[0]["samples"],  # seed 0's first samples, for the sheet
            }
        )
    return rows


def machine() -> dict:
    """Where the numbers come from: platform, cores, JAX, and the load when they were taken."""
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "load_average": [round(x, 2) for x in load],
    }


def compare(
    data_name: str = "ring",
    *,
    seeds: int = DEFAULT_SEEDS,
    budget: float = DEFAULT_BUDGET,
    out_dir: str | Path = "runs/compare",
    n: int = NUM_SAMPLES,
    families: tuple[str, ...] | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Trains and measures every family on ``data_name``; writes the run directory.

    Args:
      data_name: ``"ring"`` or ``"digits"``.
      seeds: seeds per family (0 .. seeds-1), >= 1.
      budget: training seconds per family and seed (after the first step), > 0.
      out_dir: the run directory: ``compare.md``, ``compare.json``, ``sheet.png``,
        ``quality_vs_cost.png`` and ``runs/`` (each training run).
      n: samples per sampler and seed (the batch of the speed figure), >= 2.
      families: only these families (default: all; tests use a few).
      log: where progress lines go.

    Returns:
      The result that ``compare.json`` holds.
    """
    from genjax.compare import figures, report

    table = entries(data_name)
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    if not budget > 0 or not math.isfinite(budget):
        raise ValueError(f"budget must be a finite number of seconds > 0, got {budget}")
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    programs = _Programs()
    rows: list[dict] = []
    for entry in table:
        if families is not None and entry.family not in families:
            continue
        per_seed = []
        if entry.recipe is not None:
            for seed in range(seeds):
                log(f"compare {data_name}: {entry.family} ({entry.recipe}), seed {seed}")
                per_seed.append(
                    run_seed(
                        entry,
                        data_name,
                        seed,
                        budget=budget,
                        n=n,
                        out_dir=out_dir,
                        programs=programs,
                    )
                )
        rows.extend(aggregate(entry, per_seed, programs))
    result = {
        "data": data_name,
        "seeds": seeds,
        "budget_seconds": budget,
        "num_samples": n,
        "reference": reference_figures(data_name, n),
        "rows": rows,
        "machine": machine(),
        "wall_seconds": time.perf_counter() - started,
    }
    figures.sheet(result, out_dir / "sheet.png")
    figures.quality_vs_cost(result, out_dir / "quality_vs_cost.png")
    report.write(result, out_dir)
    return result
