"""The trainer: one jit-compiled step, progress, metrics log, checkpoints that resume.

:func:`fit` runs a :class:`genjax.recipe.Recipe`:

* the state is a :class:`TrainState` pytree — step counter, the model (the recipe's
  parameters), optimiser state and (optionally) an exponential moving average of the model;
* the model is whatever pytree of floating arrays the recipe's ``init`` returns: a dict of
  arrays, an ``nnx.Module`` (a pytree since flax 0.12), or a dict or tuple holding modules.
  The trainer differentiates that pytree directly (``jax.grad`` of
  ``loss(model, batch, key) -> (loss, metrics)`` with respect to ``model``), optax updates
  it, the EMA averages it and the checkpoints store its flat leaves -- no ``nnx.split`` /
  ``nnx.merge`` anywhere;
* a step is one compiled program: it draws the step's batch from the data on the device with
  :func:`genjax.data.batch_indices` (deterministic in ``(key, step)``), and either
  differentiates the recipe's loss and applies optax, or calls the recipe's own step
  ``step(model, batch, key) -> (model, metrics)`` (EM, counting, a GAN's alternating
  updates);
* every key of step ``s`` is ``fold_in(train_key, s)``, so the run is a pure function of the
  seed and the step count. That is what makes ``resume`` exact: a run interrupted at any
  checkpoint and resumed ends with the **same** parameters as an uninterrupted one;
* checkpoints (orbax) every ``checkpoint_every`` steps, at the end, and on Ctrl-C;
* data parallel over every visible device (or the first ``devices``): the step is compiled
  for a ``jax.sharding.Mesh`` with one axis, ``"data"`` (:mod:`genjax.sharding`). Each
  step's batch is laid over that axis, parameters, optimiser state and the training set are
  replicated, and XLA's SPMD partitioner turns every sum over the batch (the gradient of a
  mean loss, EM's sufficient statistics, a codebook's EMA counts) into a local sum plus one
  all-reduce. One device is a mesh of size one: the same program on a laptop, a GPU host,
  or several hosts after ``jax.distributed.initialize()``. A batch size that does not
  divide over the devices is a ``ValueError``; a full-batch recipe's data set (EM,
  counting) may have any size: XLA pads the last device's share internally and leaves the
  padding out of every reduction, so nothing is dropped or counted twice;
* files are written once, by process 0 (orbax coordinates the checkpoint across hosts), and
  a checkpoint restores onto any device count: it holds the arrays, not their layout.

Files written into ``out_dir``: ``config.json``, ``metrics.jsonl`` (one JSON object per logged
step), ``checkpoint/``, the recipe's pictures (``samples.png`` ...) and ``summary.json``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from genjax import checks, sharding
from genjax import data as data_lib
from genjax.recipe import Recipe

PyTree = Any


@dataclasses.dataclass(frozen=True)
class FitResult:
    params: PyTree  # the model to sample from (the EMA when the recipe keeps one)
    summary: dict  # what summary.json holds
    history: list[dict]  # the logged metrics, one dict per logged step
    out_dir: Path


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TrainState:
    step: jax.Array  # () int32: the number of steps taken
    params: PyTree  # the model: what the loss differentiates (or what a custom step updates)
    opt_state: PyTree  # optax state; None for recipes with their own step
    ema_params: PyTree  # EMA of the model, of params' structure; None when the recipe keeps none


def _leading_size(data: PyTree) -> int:
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ValueError("data: empty pytree; expected arrays with a leading example axis")
    sizes = {int(np.shape(leaf)[0]) if np.ndim(leaf) else -1 for leaf in leaves}
    if len(sizes) != 1 or -1 in sizes:
        raise ValueError(f"data: every array needs the same leading example axis, got {sizes}")
    return sizes.pop()


def _check_differentiable(recipe: Recipe, params: PyTree) -> None:
    """A loss recipe's model is differentiated whole: every leaf must be floating."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.inexact):
            raise ValueError(
                f"recipe {recipe.name!r}: init returned a model with the non-floating leaf "
                f"{jax.tree_util.keystr(path)} (dtype {jnp.result_type(leaf)}); a loss recipe's "
                "model is differentiated whole, so keep integer state (counters, nnx.Rngs) "
                "out of it, or write the update as the recipe's step"
            )


def init_state(recipe: Recipe, key: jax.Array, data: PyTree, total_steps: int) -> TrainState:
    """The state at step 0: the recipe's model, its optimiser state, the EMA copy."""
    params = recipe.init(key, data)
    if recipe.loss is not None:
        _check_differentiable(recipe, params)
    opt_state = make_optimizer(recipe, total_steps).init(params) if recipe.loss else None
    # A copy, not an alias: the step donates its input state, and a buffer may be donated once.
    ema = jax.tree.map(jnp.copy, params) if recipe.ema_decay is not None else None
    return TrainState(jnp.zeros((), jnp.int32), params, opt_state, ema)


def make_optimizer(recipe: Recipe, total_steps: int) -> optax.GradientTransformation:
    if recipe.optimizer is not None:
        return recipe.optimizer(total_steps)
    return optax.adam(recipe.learning_rate)


def make_step(
    recipe: Recipe,
    train_key: jax.Array,
    *,
    num_examples: int,
    batch_size: int,
    total_steps: int,
    mesh: jax.sharding.Mesh | None = None,
) -> Callable[[TrainState, PyTree], tuple[TrainState, dict]]:
    """The jitted ``(state, data) -> (state, metrics)`` of one training step on ``mesh``.

    ``state`` and ``data`` (the whole training set) are replicated over ``mesh`` (default:
    one device; place them with :func:`genjax.sharding.put_replicated`) and so are the
    outputs. Inside, the step's batch is constrained to ``P("data")``.
    """
    mesh = sharding.make_mesh(1) if mesh is None else mesh
    if not recipe.full_batch:
        sharding.check_batch_size(batch_size, mesh)
    optimizer = make_optimizer(recipe, total_steps) if recipe.loss else None
    data_key, step_keys = jax.random.split(train_key)
    by_example = sharding.batch_sharded(mesh)

    def select_batch(data: PyTree, step: jax.Array) -> PyTree:
        if recipe.full_batch:
            batch = data
        else:
            idx = data_lib.batch_indices(data_key, step, num_examples, batch_size)  # (batch,)
            # Every device holds the data and the indices: it takes its own rows, no transfer.
            batch = jax.tree.map(lambda a: jnp.take(a, idx, axis=0), data)
        # Lay the batch over the devices: each works on its rows, and XLA all-reduces the
        # sums over the batch (gradients, statistics). A full data set that does not divide
        # evenly is padded by XLA internally, the padding masked out of every reduction.
        return jax.lax.with_sharding_constraint(batch, by_example)

    def step_fn(state: TrainState, data: PyTree) -> tuple[TrainState, dict]:
        key = jax.random.fold_in(step_keys, state.step)
        batch = select_batch(data, state.step)
        if recipe.loss is not None:
            # loss(model, batch, key) -> (loss, metrics), differentiated w.r.t. the model.
            (loss, metrics), grads = jax.value_and_grad(recipe.loss, has_aux=True)(
                state.params, batch, key
            )
            updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
            # ||g||_2 over every parameter: the usual first sign of a diverging run.
            grad_norm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(grads)))
            metrics = {"loss": loss, **metrics, "grad_norm": grad_norm}
        else:
            params, metrics = recipe.step(state.params, batch, key)
            opt_state = None
        ema = state.ema_params
        if recipe.ema_decay is not None:
            d = recipe.ema_decay

            def average(e: jax.Array, p: jax.Array) -> jax.Array:
                # theta_ema <- d * theta_ema + (1 - d) * theta, for real-valued leaves; counters
                # and other integer leaves (a custom step's bookkeeping) are copied as they are.
                if not jnp.issubdtype(p.dtype, jnp.inexact):
                    return p
                return (d * e + (1.0 - d) * p).astype(p.dtype)

            ema = jax.tree.map(average, ema, params)
        return TrainState(state.step + 1, params, opt_state, ema), metrics

    # Donating the old state lets XLA update parameters in place; the CPU backend cannot use
    # donated buffers (and warns), so donate only on accelerators.
    donate = (0,) if jax.default_backend() != "cpu" else ()
    # Replicated in and out: the state keeps one layout from step to step (no recompiles).
    everywhere = sharding.replicated(mesh)
    return jax.jit(step_fn, donate_argnums=donate, in_shardings=(everywhere, everywhere),
                   out_shardings=(everywhere, everywhere))


# --- checkpoints ----------------------------------------------------------------------------

def _checkpointer(out_dir: Path):
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(max_to_keep=2)
    return ocp.CheckpointManager((out_dir / "checkpoint").resolve(), options=options)


def save_checkpoint(manager, state: TrainState) -> None:
    """Saves the state's leaves (a flat list keeps orbax independent of custom pytrees)."""
    import orbax.checkpoint as ocp

    leaves = jax.tree.leaves(state)
    manager.save(int(state.step), args=ocp.args.StandardSave({"leaves": leaves}), force=True)
    manager.wait_until_finished()


def restore_checkpoint(
    manager, template: TrainState, step: int | None = None,
    mesh: jax.sharding.Mesh | None = None,
) -> TrainState:
    """Restores the state saved at ``step`` (default: the latest) into ``template``'s shape,
    replicated over ``mesh`` (default: one device), whatever mesh wrote it."""
    import orbax.checkpoint as ocp

    step = manager.latest_step() if step is None else step
    if step is None:
        raise ValueError("resume: no checkpoint found to resume from")
    everywhere = sharding.replicated(sharding.make_mesh(1) if mesh is None else mesh)
    leaves, treedef = jax.tree.flatten(template)
    abstract = {
        "leaves": [jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=everywhere)
                   for x in leaves]
    }
    restored = manager.restore(step, args=ocp.args.StandardRestore(abstract))
    return jax.tree.unflatten(treedef, restored["leaves"])


# --- the loop -------------------------------------------------------------------------------

def _to_host(metrics: dict) -> dict:
    return {k: float(np.asarray(sharding.to_local(v))) for k, v in metrics.items()}


def _read_history(path: Path, upto_step: int) -> list[dict]:
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [r for r in rows if r["step"] <= upto_step]


def fit(
    recipe: Recipe,
    data: PyTree,
    *,
    key: jax.Array,
    out_dir: str | Path,
    steps: int | None = None,
    batch_size: int | None = None,
    resume: bool = False,
    test_data: PyTree | None = None,
    progress: bool = True,
    checkpoint_every: int | None = None,
    log_every: int | None = None,
    config: dict | None = None,
    report: bool = True,
    on_step: Callable[[int], None] | None = None,
    devices: int | None = None,
) -> FitResult:
    """Trains ``recipe`` on ``data`` and writes the run into ``out_dir``.

    Args:
      recipe: what to train (see :class:`genjax.recipe.Recipe`): ``recipe.init(key, data)``
        gives the model (a pytree of floating arrays: a dict, an ``nnx.Module``, modules in
        a dict), ``recipe.loss(model, batch, key) -> (loss, metrics)`` is differentiated
        with respect to it (or ``recipe.step(model, batch, key) -> (model, metrics)``
        replaces the whole update).
      data: the training set, a pytree of arrays with a leading example axis ``(n, ...)``.
      key: the run's key; the same key gives the same run, step for step.
      out_dir: directory for config, metrics, checkpoints, pictures and summary.
      steps: total number of steps (default ``recipe.steps``), >= 1.
      batch_size: examples per step (default ``recipe.batch_size``), in ``[1, n]``.
      resume: continue from the latest checkpoint in ``out_dir`` to ``steps``.
      test_data: held-out data for the report (default: ``data``).
      progress: show a tqdm progress bar.
      checkpoint_every: steps between checkpoints (default ``recipe.checkpoint_every``).
      log_every: steps between ``metrics.jsonl`` lines (default: about 200 lines per run).
      config: extra entries for ``config.json`` (the command line records data and seed).
      report: run the recipe's report (pictures and ``summary.json``) at the end.
      on_step: called with the step count after every step (tests use it to interrupt).
      devices: train data-parallel over the first ``devices`` devices (default: all of
        them); ``batch_size`` must be a multiple of it.

    Returns:
      A :class:`FitResult`; its ``params`` (the model, of ``init``'s structure: an
      ``nnx.Module`` stays a module) hold single-device arrays.
    """
    steps = checks.positive_int("steps", recipe.steps if steps is None else steps)
    batch_size = recipe.batch_size if batch_size is None else int(batch_size)
    if checkpoint_every is None:
        checkpoint_every = recipe.checkpoint_every
    checkpoint_every = checks.positive_int("checkpoint_every", checkpoint_every)
    num_examples = _leading_size(data)
    if not recipe.full_batch and not 1 <= batch_size <= num_examples:
        raise ValueError(
            f"batch_size must be in [1, {num_examples}] (the number of examples), got {batch_size}"
        )
    log_every = max(1, steps // 200) if log_every is None else max(1, int(log_every))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    mesh = sharding.make_mesh(devices)
    if not recipe.full_batch:
        sharding.check_batch_size(batch_size, mesh)
    main = sharding.is_main_process()  # only process 0 writes files (orbax: checkpoints)
    init_key, train_key, report_key = jax.random.split(key, 3)
    device_data = jax.tree.map(jnp.asarray, data)
    state = init_state(recipe, init_key, device_data, steps)
    state = sharding.put_replicated(state, mesh)
    device_data = sharding.put_replicated(device_data, mesh)

    manager = _checkpointer(out_dir)
    metrics_path = out_dir / "metrics.jsonl"
    history: list[dict] = []
    if resume:
        state = restore_checkpoint(manager, state, mesh=mesh)
        history = _read_history(metrics_path, int(sharding.to_local(state.step)))
    run_config = {
        "recipe": recipe.name,
        "family": recipe.family,
        "steps": steps,
        "batch_size": batch_size,
        "learning_rate": recipe.learning_rate,
        "ema_decay": recipe.ema_decay,
        "devices": mesh.size,
        "processes": jax.process_count(),
        **(config or {}),
    }
    if main:
        (out_dir / "config.json").write_text(json.dumps(run_config, indent=2) + "\n", "utf-8")
        metrics_path.write_text("".join(json.dumps(r) + "\n" for r in history), "utf-8")

    step_fn = make_step(
        recipe,
        train_key,
        num_examples=num_examples,
        batch_size=batch_size,
        total_steps=steps,
        mesh=mesh,
    )
    start = int(sharding.to_local(state.step))
    bar = _progress_bar(recipe.name, start, steps, enabled=progress and main)
    t0 = time.perf_counter()
    last_saved = start
    try:
        with _log_file(metrics_path, enabled=main) as log:
            for s in range(start, steps):
                state, metrics = step_fn(state, device_data)
                done = s + 1
                if done % log_every == 0 or done == steps:
                    row = {"step": done, **_to_host(metrics)}
                    history.append(row)
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                    rate = (done - start) / max(time.perf_counter() - t0, 1e-9)
                    bar.set_postfix(loss=f"{row.get('loss', math.nan):.4g}", steps_s=f"{rate:.0f}")
                if done % checkpoint_every == 0 and done != steps:
                    save_checkpoint(manager, state)
                    last_saved = done
                bar.update(1)
                if on_step is not None:
                    on_step(done)
    except KeyboardInterrupt:
        # Ctrl-C: keep what was done, so that `--resume` continues from here.
        if int(sharding.to_local(state.step)) != last_saved:
            save_checkpoint(manager, state)
        bar.close()
        manager.close()
        raise
    bar.close()
    save_checkpoint(manager, state)
    manager.close()
    train_seconds = time.perf_counter() - t0

    # The report runs on one device of process 0: it draws pictures and a few thousand
    # samples, and a replicated program would only repeat that work on every device.
    final = state.ema_params if recipe.ema_decay is not None else state.params
    params = sharding.on_one_device(final)
    summary: dict = {
        "recipe": recipe.name,
        "steps": steps,
        "train_seconds": train_seconds,
        "final_metrics": history[-1] if history else {},
    }
    if report and main:
        train_local = jax.tree.map(jnp.asarray, data)
        test = train_local if test_data is None else jax.tree.map(jnp.asarray, test_data)
        figures = recipe.report(report_key, params, train_local, test, out_dir)
        summary.update({k: _jsonable(v) for k, v in figures.items()})
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", "utf-8")
    return FitResult(params=params, summary=summary, history=history, out_dir=out_dir)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    arr = np.asarray(value)
    return arr.item() if arr.ndim == 0 else arr.tolist()


class _NoLog:
    def write(self, text: str) -> None:
        del text

    def flush(self) -> None:
        return None

    def __enter__(self) -> _NoLog:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _log_file(path: Path, *, enabled: bool):
    return path.open("a", encoding="utf-8") if enabled else _NoLog()


class _NoBar:
    def update(self, n: int) -> None:
        del n

    def set_postfix(self, **kwargs: Any) -> None:
        del kwargs

    def close(self) -> None:
        return None


def _progress_bar(name: str, start: int, total: int, *, enabled: bool):
    if not enabled:
        return _NoBar()
    import sys

    from tqdm.auto import tqdm

    # Redrawn a few times a second on a terminal; in a log file, one line every 10 seconds.
    interval = 0.1 if sys.stderr.isatty() else 10.0
    return tqdm(total=total, initial=start, desc=f"train {name}", unit="step",
                dynamic_ncols=True, mininterval=interval)


def load_params(
    recipe: Recipe, out_dir: str | Path, key: jax.Array, data: PyTree,
    *, mesh: jax.sharding.Mesh | None = None,
) -> PyTree:
    """The model of a finished (or interrupted) run, for sampling (``init``'s structure).

    ``key`` must be the run's key and ``data`` its training data: the state's shape is
    rebuilt from them before the checkpoint is read into it. The parameters come back
    replicated over ``mesh`` (default: one device), whatever device count wrote them.
    """
    out_dir = Path(out_dir)
    config_path = out_dir / "config.json"
    if not config_path.exists():
        raise ValueError(f"run directory {str(out_dir)!r} has no config.json: not a genjax run")
    steps = json.loads(config_path.read_text("utf-8"))["steps"]
    init_key = jax.random.split(key, 3)[0]
    device_data = jax.tree.map(jnp.asarray, data)
    template = init_state(recipe, init_key, device_data, steps)
    manager = _checkpointer(out_dir)
    try:
        state = restore_checkpoint(manager, template, mesh=mesh)
    finally:
        manager.close()
    return state.ema_params if recipe.ema_decay is not None else state.params
