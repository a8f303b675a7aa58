"""``genjax train distill``: progressive distillation (Salimans & Ho 2022) on the 2-D ring.

One run, in phases counted by the step ``k`` (one compiled step, ``lax.cond`` on the phase):

1. **teacher** (``teacher_steps`` steps): an :class:`genjax.nn.MLPDenoiser` predicting
   ``v = alpha_t eps - sigma_t x`` (the parameterisation the paper distils; the DDPM
   objective with ``prediction="v"``), Adam with the learning rate decayed linearly to 0;
2. **distillation stages** (``stage_steps`` each): stage ``s`` trains a student of
   ``N_s = teacher_ddim_steps / 2^(s+1)`` DDIM steps to match two DDIM steps of its teacher
   (:func:`genjax.diffusion.distillation.distillation_loss`, truncated-SNR weighting). The
   teacher of stage 0 is the trained network, the teacher of stage ``s`` the student of
   stage ``s - 1``; every student starts as a copy of its teacher and gets a fresh Adam
   whose learning rate decays linearly to 0 within the stage (a schedule per stage, so each
   stage converges before its student becomes the next teacher).

Every student is kept (``params["students"]``: the networks' leaves stacked over the
stages), so the report samples each with DDIM at its own step count -- ``N_s`` steps, one
network evaluation each -- and compares it with plain DDIM of the teacher at the same
count. ``summary.json``: the energy distance to held-out data of ``student_{N}_steps`` and
``ddim_{N}_steps`` for N = 8, 4, 2, 1, of the teacher's ``2 N_0``-step DDIM, and of the
training data itself (the floor). Pictures: ``samples.png`` (the one-step student over the
data) and ``distill_steps.png`` (teacher DDIM above, distilled student below, per N).

Data are standardised by statistics fixed at ``init``. The recipe calls the family's
public functions only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from genjax import diffusion as d
from genjax import metrics
from genjax.diffusion import distillation as pd
from genjax.recipe import Recipe

SCHEDULE = d.linear(1000)
REPORT_SAMPLES = 2000  # samples per sampler in the report
REPORT_STEPS = (8, 4, 2, 1)  # the step counts compared in summary.json


@dataclasses.dataclass(frozen=True)
class DistillConfig:
    """Sizes of one distillation run (frozen: hashed into the compiled step)."""

    hidden: tuple[int, ...] = (256, 256, 256)  # as the ddpm recipe's ring network
    time_embed_dim: int = 64
    teacher_steps: int = 3000  # as the ddpm recipe; 2000 left the ring modes blurred
    teacher_lr: float = 2e-3
    teacher_ddim_steps: int = 32  # stages distil 32 -> 16 -> 8 -> 4 -> 2 -> 1
    stage_steps: int = 500  # per halving; the paper trains far longer, 2-D needs little
    student_lr: float = 1e-3
    weighting: str = "truncated_snr"  # max(SNR, 1): the paper's truncated-SNR weighting

    @property
    def stages(self) -> tuple[int, ...]:
        """Student step counts, one per stage: ``(teacher_ddim_steps / 2, ..., 1)``."""
        return pd.distillation_stages(self.teacher_ddim_steps)

    @property
    def total_steps(self) -> int:
        return self.teacher_steps + len(self.stages) * self.stage_steps


def _net(config: DistillConfig, key: jax.Array) -> nnx.Module:
    from genjax.nn import MLPDenoiser

    return MLPDenoiser(2, config.hidden, time_embed_dim=config.time_embed_dim, rngs=nnx.Rngs(key))


def _teacher_opt(config: DistillConfig) -> optax.GradientTransformation:
    return optax.adam(optax.linear_schedule(config.teacher_lr, 0.0, config.teacher_steps))


def _student_opt(config: DistillConfig) -> optax.GradientTransformation:
    return optax.adam(optax.linear_schedule(config.student_lr, 0.0, config.stage_steps))


def _select(flag: jax.Array, a: Any, b: Any) -> Any:
    """``a`` where ``flag`` else ``b``, leaf by leaf (two pytrees of one structure)."""
    return jax.tree.map(lambda u, v: jnp.where(flag, u, v), a, b)


def _standardise(params: dict, x: jax.Array) -> jax.Array:
    return (x - jax.lax.stop_gradient(params["shift"])[None]) / jax.lax.stop_gradient(
        params["scale"]
    )


def make_recipe(config: DistillConfig = DistillConfig(), name: str = "distill") -> Recipe:
    """The ``distill`` recipe for ``config`` (tests build a tiny one)."""
    stages = config.stages
    num_stages = len(stages)
    teacher_opt, student_opt = _teacher_opt(config), _student_opt(config)

    def init(key: jax.Array, train_data: jax.Array) -> dict:
        """``{"teacher", "teacher_opt", "students" (leaves (S, ...)), "student_opt", "k",
        "shift" (2,), "scale" ()}``."""
        x = jnp.asarray(train_data, jnp.float32)
        net = _net(config, key)
        return {
            "teacher": net,
            "teacher_opt": teacher_opt.init(net),
            "students": jax.tree.map(lambda a: jnp.stack([a] * num_stages), net),
            "student_opt": student_opt.init(net),
            "k": jnp.zeros((), jnp.int32),
            "shift": jnp.mean(x, axis=0),
            "scale": jnp.std(x) + 1e-6,
        }

    def teacher_update(p: dict, x0: jax.Array, key: jax.Array) -> tuple[dict, jax.Array]:
        (loss, _), grads = jax.value_and_grad(d.loss, has_aux=True)(
            p["teacher"], x0, key, schedule=SCHEDULE, prediction="v"
        )
        updates, opt_state = teacher_opt.update(grads, p["teacher_opt"], p["teacher"])
        net = optax.apply_updates(p["teacher"], updates)
        return {**p, "teacher": net, "teacher_opt": opt_state}, loss

    def distill_update(p: dict, x0: jax.Array, key: jax.Array) -> tuple[dict, jax.Array]:
        into = p["k"] - config.teacher_steps  # steps into the distillation phase
        s = jnp.minimum(into // config.stage_steps, num_stages - 1)  # the stage
        first = into == s * config.stage_steps  # the stage's first step: start the student
        previous = jax.tree.map(lambda a: a[jnp.maximum(s - 1, 0)], p["students"])
        teacher = _select(s == 0, p["teacher"], previous)
        student = _select(first, teacher, jax.tree.map(lambda a: a[s], p["students"]))
        opt_state = _select(first, student_opt.init(student), p["student_opt"])
        num_student_steps = jnp.right_shift(config.teacher_ddim_steps // 2, s)  # N_s
        (loss, _), grads = jax.value_and_grad(pd.distillation_loss, has_aux=True)(
            student,
            x0,
            key,
            teacher=pd.as_eps_model(teacher, SCHEDULE),
            schedule=SCHEDULE,
            num_student_steps=num_student_steps,
            weighting=config.weighting,
        )
        updates, opt_state = student_opt.update(grads, opt_state, student)
        student = optax.apply_updates(student, updates)
        students = jax.tree.map(lambda st, a: st.at[s].set(a), p["students"], student)
        return {**p, "students": students, "student_opt": opt_state}, loss

    def step(params: dict, batch: jax.Array, key: jax.Array) -> tuple[dict, dict]:
        """One update of the teacher or of the current stage's student (module docstring)."""
        x0 = _standardise(params, batch)
        k = params["k"]
        new, loss = jax.lax.cond(
            k < config.teacher_steps, teacher_update, distill_update, params, x0, key
        )
        into = k - config.teacher_steps
        stage = jnp.where(into < 0, -1, jnp.minimum(into // config.stage_steps, num_stages - 1))
        return {**new, "k": k + 1}, {"loss": loss, "stage": stage.astype(jnp.float32)}

    def student_net(params: dict, steps: int) -> Any:
        if steps not in stages:
            raise ValueError(
                f"steps must be one of the distilled step counts {stages}, got {steps}"
            )
        return jax.tree.map(lambda a: a[stages.index(steps)], params["students"])

    def sample(
        key: jax.Array, params: dict, n: int, *, sampler: str = "student", steps: int = 1
    ) -> jax.Array:
        """``n`` samples ``(n, 2)`` by DDIM with ``steps`` steps: of the distilled student
        for ``steps`` (``sampler="student"``, steps one of the stages) or of the teacher
        (``sampler="teacher"``, steps in ``[1, 1000]``)."""
        steps = int(steps)
        if sampler == "student":
            net = student_net(params, steps)
        elif sampler == "teacher":
            net = params["teacher"]
        else:
            raise ValueError(f"sampler must be 'student' or 'teacher', got {sampler!r}")
        model = pd.as_eps_model(net, SCHEDULE)  # v-network -> eps for DDIM
        x = d.ddim_sample(key, model, (int(n), 2), SCHEDULE, num_steps=steps)
        return x * params["scale"] + params["shift"][None]

    def report(key, params, train_data, test_data, out_dir: Path) -> dict:
        """Energy distances per step count, ``samples.png`` and ``distill_steps.png``."""
        from genjax import plotting

        test = jnp.asarray(test_data)
        train = np.asarray(train_data)
        n = min(REPORT_SAMPLES, test.shape[0])
        counts = [c for c in REPORT_STEPS if c in stages]
        keys = jax.random.split(key, 2 * len(counts) + 1)
        out: dict = {}
        panels = []
        for j, c in enumerate(counts):
            student = sample(keys[2 * j], params, n, sampler="student", steps=c)
            teacher = sample(keys[2 * j + 1], params, n, sampler="teacher", steps=c)
            out[f"student_{c}_steps_energy_distance"] = float(
                metrics.energy_distance(student, test[:n])
            )
            out[f"ddim_{c}_steps_energy_distance"] = float(
                metrics.energy_distance(teacher, test[:n])
            )
            panels.append((c, np.asarray(teacher), np.asarray(student)))
        ref_steps = config.teacher_ddim_steps
        ref = sample(keys[-1], params, n, sampler="teacher", steps=ref_steps)
        out[f"ddim_{ref_steps}_steps_energy_distance"] = float(
            metrics.energy_distance(ref, test[:n])
        )
        m = min(n, train.shape[0])
        out["data_energy_distance"] = float(
            metrics.energy_distance(jnp.asarray(train[:m]), test[:m])
        )
        one = sample(keys[0], params, n, sampler="student", steps=stages[-1])
        plotting.scatter_2d(
            one,
            train[:5000],
            Path(out_dir) / "samples.png",
            title=f"distilled student, {stages[-1]} DDIM step",
        )
        _draw_steps(panels, train[:5000], Path(out_dir) / "distill_steps.png", out)
        return out

    return Recipe(
        name=name,
        family="diffusion",
        summary="progressive distillation (Salimans & Ho 2022) on the ring; "
        "8/4/2/1-step students vs DDIM",
        data="ring",
        init=init,
        step=step,
        sample=sample,
        report=report,
        steps=config.total_steps,
        batch_size=512,
        learning_rate=config.student_lr,
        sample_options=("sampler", "steps"),
    )


def _draw_steps(panels: list, data: np.ndarray, path: Path, figures: dict) -> None:
    """Teacher DDIM (top row) and the distilled student (bottom row) at each step count."""
    from matplotlib.figure import Figure

    lo, hi = np.percentile(data, [0.5, 99.5], axis=0)
    lo, hi = lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)
    fig = Figure(figsize=(3 * max(len(panels), 1), 6), dpi=100)
    for col, (c, teacher, student) in enumerate(panels):
        for row, (label, pts) in enumerate((("DDIM", teacher), ("student", student))):
            ax = fig.add_subplot(2, len(panels), row * len(panels) + col + 1)
            ax.scatter(data[:, 0], data[:, 1], s=1, c="0.85", linewidths=0)
            ax.scatter(pts[:, 0], pts[:, 1], s=1, c="C0" if row else "C1", linewidths=0)
            ax.set_xlim(lo[0], hi[0])
            ax.set_ylim(lo[1], hi[1])
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            key = f"{'student' if row else 'ddim'}_{c}_steps_energy_distance"
            ax.set_title(
                f"{label}, {c} step{'s' if c > 1 else ''}\nED {figures[key]:.3f}", fontsize=9
            )
    fig.suptitle("progressive distillation on the ring: teacher DDIM vs distilled student")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


RECIPES: tuple[Recipe, ...] = (make_recipe(),)
