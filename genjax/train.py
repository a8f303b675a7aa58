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
* checkpoints (orbax, :mod:`genjax.checkpoint`) every ``checkpoint_every`` steps, at the
  end, and on Ctrl-C. Ctrl-C never loses a finished step: the step in flight finishes, its
  metrics row is logged and it is saved before ``fit`` raises :class:`TrainingInterrupted`
  (a second Ctrl-C waits for that save); ``resume`` of a run with every step saved writes
  its report again; a damaged newest checkpoint is named in a warning and the newest
  intact one is used;
* the training data must be finite: a NaN or inf is refused before anything is written;
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

from genjax import checkpoint, checks, run_files, sharding
from genjax import data as data_lib
from genjax.checkpoint import TrainingInterrupted
from genjax.recipe import Recipe

PyTree = Any


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What :func:`fit` returns: the model, the summary, the logged metrics, the run dir."""
    params: PyTree  # the model to sample from (the EMA when the recipe keeps one)
    summary: dict  # what summary.json holds
    history: list[dict]  # the logged metrics, one dict per logged step
    out_dir: Path


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TrainState:
    """The trainer's state: the step, the model, the optimiser state, the EMA (a pytree)."""
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
    """The recipe's optimiser for ``total_steps`` steps (default ``optax.adam(learning_rate)``)."""
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


# --- checkpoints (genjax.checkpoint: saves Ctrl-C cannot tear, damage named and skipped) ---

def save_checkpoint(manager, state: TrainState,
                    guard: checkpoint.InterruptGuard | None = None) -> None:
    """Saves the state's leaves (a flat list keeps orbax independent of custom pytrees)."""
    checkpoint.save(manager, state, int(sharding.to_local(state.step)), guard)


def restore_checkpoint(
    out_dir: str | Path, template: TrainState, mesh: jax.sharding.Mesh | None = None,
    *, set_aside: bool = True, verb: str = "resuming from",
) -> TrainState:
    """The newest intact checkpoint of ``out_dir`` in ``template``'s shape, replicated over
    ``mesh`` (default: one device), whatever mesh wrote it; damaged ones are named in a
    warning and skipped (:func:`genjax.checkpoint.restore_latest_intact`)."""
    return checkpoint.restore_latest_intact(out_dir, template, mesh=mesh, set_aside=set_aside,
                                            verb=verb)


# --- the loop -------------------------------------------------------------------------------

def _to_host(metrics: dict) -> dict:
    return {k: float(np.asarray(sharding.to_local(v))) for k, v in metrics.items()}


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
    data_name: str | None = None,
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
      data_name: the name or path the data came from (the command line's ``--data``). When
        it is not the recipe's own ``recipe.data``, the summary's ``recipe.data_figures``
        (figures that describe the built-in data, such as the ring's true log-likelihood)
        are labelled not applicable.
      devices: train data-parallel over the first ``devices`` devices (default: all of
        them); ``batch_size`` must be a multiple of it.

    Returns:
      A :class:`FitResult`; its ``params`` (the model, of ``init``'s structure: an
      ``nnx.Module`` stays a module) hold single-device arrays.

    Raises:
      TrainingInterrupted: (a ``KeyboardInterrupt``) on Ctrl-C. During training the step in
        flight finishes, its metrics row is logged and it is checkpointed before ``fit``
        stops; a second Ctrl-C waits for that save. ``resume=True`` then continues from it,
        and on a run whose every step is saved (interrupted in its report, or finished) it
        writes the report and ``summary.json`` again.
      ValueError: bad arguments, non-finite training data, or no intact checkpoint to
        resume from.
    """
    steps = checks.positive_int("steps", recipe.steps if steps is None else steps)
    batch_size = recipe.batch_size if batch_size is None else int(batch_size)
    if checkpoint_every is None:
        checkpoint_every = recipe.checkpoint_every
    checkpoint_every = checks.positive_int("checkpoint_every", checkpoint_every)
    num_examples = _leading_size(data)
    # A NaN or inf in the data turns every loss into NaN and every figure into nonsense:
    # refused before anything is written.
    run_files.check_finite("data", data)
    if test_data is not None:
        run_files.check_finite("test_data", test_data)
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
    metrics_path = out_dir / "metrics.jsonl"
    seconds_path = out_dir / "train_seconds.json"
    earlier_seconds = 0.0  # training time of the calls before a resume
    try:
        init_key, train_key, report_key = jax.random.split(key, 3)
        device_data = jax.tree.map(jnp.asarray, data)
        state = init_state(recipe, init_key, device_data, steps)
        state = sharding.put_replicated(state, mesh)
        device_data = sharding.put_replicated(device_data, mesh)
        history: list[dict] = []
        if resume:
            state = restore_checkpoint(out_dir, state, mesh=mesh)
            restored = int(sharding.to_local(state.step))
            if restored > steps:
                raise ValueError(f"steps must be >= {restored} (the checkpoint's step) to "
                                 f"resume this run, got {steps}")
            history = run_files.read_history(metrics_path, restored)
            earlier_seconds = run_files.read_seconds(seconds_path, restored)
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
            run_files.write_atomically(out_dir / "config.json",
                                       json.dumps(run_config, indent=2) + "\n")
            run_files.write_atomically(metrics_path,
                                       "".join(json.dumps(r) + "\n" for r in history))
        step_fn = make_step(
            recipe,
            train_key,
            num_examples=num_examples,
            batch_size=batch_size,
            total_steps=steps,
            mesh=mesh,
        )
        manager = checkpoint.open_manager(out_dir)
    except KeyboardInterrupt:
        raise _interrupted_at_start(out_dir) from None

    start = int(sharding.to_local(state.step))
    last_saved = start if resume else None  # the newest step on disk
    written: set[int] = set()  # the steps this call saved
    bar = run_files.progress_bar(recipe.name, start, steps, enabled=progress and main)
    t0 = time.perf_counter()
    stopped = False
    # Ctrl-C from here until every step is saved only asks to stop: the step in flight
    # finishes, its row is logged and it is checkpointed first (genjax.checkpoint).
    with checkpoint.InterruptGuard() as guard:
        guard.saved_step = last_saved
        try:
            with run_files.log_file(metrics_path, enabled=main) as log:
                for s in range(start, steps):
                    state, metrics = step_fn(state, device_data)
                    done = s + 1
                    if done % log_every == 0 or done == steps:
                        row = {"step": done, **_to_host(metrics)}
                        history.append(row)
                        log.write(json.dumps(row) + "\n")
                        log.flush()
                        rate = (done - start) / max(time.perf_counter() - t0, 1e-9)
                        bar.set_postfix(loss=f"{row.get('loss', math.nan):.4g}",
                                        steps_s=f"{rate:.0f}")
                    if done % checkpoint_every == 0 and done != steps:
                        save_checkpoint(manager, state, guard)
                        last_saved = done
                        written.add(done)
                        if main:
                            run_files.write_seconds(
                                seconds_path, done,
                                earlier_seconds + time.perf_counter() - t0)
                    bar.update(1)
                    if on_step is not None:
                        on_step(done)
                    if guard.requested:
                        break
        except KeyboardInterrupt:
            # Raised by on_step (a caller's callback): the step is done and logged.
            stopped = True
        finally:
            bar.close()
        # The final checkpoint, or the interrupted step's (one that is on disk already --
        # a finished run resumed -- is not written twice).
        current = int(sharding.to_local(state.step))
        try:
            if current != last_saved:
                save_checkpoint(manager, state, guard)
                last_saved = current
                written.add(current)
                if main:
                    run_files.write_seconds(seconds_path, current,
                                            earlier_seconds + time.perf_counter() - t0)
        finally:
            manager.close()
        stopped = stopped or guard.requested > 0
    if stopped:
        where = checkpoint.checkpoint_dir(out_dir)
        what = (f"checkpoint of step {current} saved in {where}" if current in written
                else f"the checkpoint of step {current} in {where} is the newest")
        if current < steps:
            message = f"interrupted at step {current} of {steps}; {what}"
        else:
            message = (f"interrupted after the last step ({current}); {what}; the report "
                       "and summary.json are not written yet")
        raise TrainingInterrupted(message, saved_step=current,
                                  phase="training" if current < steps else "report")
    # this call's time plus the earlier calls' (when every step was already done, the
    # recorded total of the finished run)
    train_seconds = (run_files.read_seconds(seconds_path, current) if start == steps
                     else earlier_seconds + time.perf_counter() - t0)

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
        try:
            train_local = jax.tree.map(jnp.asarray, data)
            test = train_local if test_data is None else jax.tree.map(jnp.asarray, test_data)
            figures = recipe.report(report_key, params, train_local, test, out_dir)
            figures = run_files.label_data_figures(figures, recipe.data, recipe.data_figures,
                                                     data_name)
            summary.update({k: run_files.jsonable(v) for k, v in figures.items()})
            run_files.write_atomically(out_dir / "summary.json",
                                       json.dumps(summary, indent=2) + "\n")
        except KeyboardInterrupt:
            raise TrainingInterrupted(
                f"interrupted while writing the report; every step is saved (checkpoint of "
                f"step {current} in {checkpoint.checkpoint_dir(out_dir)}); the report and "
                "summary.json are not written yet", saved_step=current, phase="report",
            ) from None
    return FitResult(params=params, summary=summary, history=history, out_dir=out_dir)


def _interrupted_at_start(out_dir: Path) -> TrainingInterrupted:
    steps = checkpoint.saved_steps(out_dir)
    if steps:
        return TrainingInterrupted(
            f"interrupted during start-up, before the first step; nothing new was saved "
            f"(the checkpoint of step {steps[-1]} in {checkpoint.checkpoint_dir(out_dir)} "
            "is unchanged)", saved_step=steps[-1], phase="start-up")
    return TrainingInterrupted("interrupted during start-up, before the first step; no "
                               "checkpoint was saved", saved_step=None, phase="start-up")


#: The value of a data-specific figure when the run trained on other data.
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
    state = restore_checkpoint(out_dir, template, mesh=mesh, set_aside=False,
                               verb="sampling from")
    return state.ema_params if recipe.ema_decay is not None else state.params
