"""Bad and extreme inputs of progressive distillation (genjax.diffusion.distillation).

The shared format of tests/diffusion/test_bad_inputs.py: each :class:`BadInput` names the
argument a call gets wrong and must raise a ``ValueError``/``TypeError`` naming it, or is a
valid extreme that must return finite (and, with ``check``, correct) values. Tiny shapes and
an 8-step schedule; the checks fire before anything compiles.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import diffusion as d
from genjax import targets
from genjax.diffusion import distillation as pd
from genjax.testing import BadInput, assert_handled

KEY = jax.random.key(0)
T = 8
S = d.linear(T)
X = jnp.ones((4, 2)) * 0.5
IDX = jnp.array([0, 1, 0, 1], jnp.int32)
TEACHER = d.analytic_eps_fn(targets.ring(n_modes=4, radius=2.0, std=0.5), S)
STUDENT = jax.tree_util.Partial(lambda p, x, t: p * x, jnp.asarray(0.3))


def _target(**kw):
    args = {"num_student_steps": 2, **kw}
    z, index, schedule = args.pop("z_t", X), args.pop("index", IDX), args.pop("schedule", S)
    return pd.distillation_target(TEACHER, z, index, schedule, **args)


def _loss(**kw):
    args = {"teacher": TEACHER, "schedule": S, "num_student_steps": 2, **kw}
    return pd.distillation_loss(STUDENT, args.pop("batch", X), KEY, **args)


def _loss_from_noise(**kw):
    args = {"index": IDX, "teacher": TEACHER, "schedule": S, "num_student_steps": 2, **kw}
    return pd.distillation_loss_from_noise(STUDENT, X, args.pop("noise", X), **args)


def _zero_terminal_snr_target():
    s = d.rescale_zero_terminal_snr(S)  # alpha_bar_{T-1} = 0: eps = x_t exactly there
    teacher = d.analytic_eps_fn(targets.ring(n_modes=4, radius=2.0, std=0.5), s)
    return pd.distillation_target(teacher, X, jnp.zeros(4, jnp.int32), s, num_student_steps=2)


CASES: list[BadInput] = [
    BadInput(
        "distillation.distillation_stages: 12 (not a power of two)",
        lambda: pd.distillation_stages(12),
        "num_teacher_steps",
    ),
    BadInput(
        "distillation.distillation_stages: 1",
        lambda: pd.distillation_stages(1),
        "num_teacher_steps",
    ),
    BadInput(
        "distillation.distillation_timesteps: num_student_steps = 0",
        lambda: pd.distillation_timesteps(T, 0, jnp.zeros(1, jnp.int32)),
        "num_student_steps",
    ),
    BadInput(
        "distillation.distillation_timesteps: num_student_steps > T // 2",
        lambda: pd.distillation_timesteps(T, 5, jnp.zeros(1, jnp.int32)),
        "num_student_steps",
    ),
    BadInput(
        "distillation.distillation_timesteps: index = N",
        lambda: pd.distillation_timesteps(T, 2, jnp.array([0, 2])),
        "index",
    ),
    BadInput(
        "distillation.distillation_timesteps: float index",
        lambda: pd.distillation_timesteps(T, 2, jnp.array([0.0, 1.0])),
        "index",
    ),
    BadInput(
        "distillation.distillation_target: schedule is a VPSDE",
        lambda: _target(schedule=d.VPSDE()),
        "schedule",
    ),
    BadInput(
        "distillation.distillation_target: index of the wrong length",
        lambda: _target(index=IDX[:3]),
        "index",
    ),
    BadInput(
        "distillation.distillation_target: integer z_t",
        lambda: _target(z_t=jnp.ones((4, 2), jnp.int32)),
        "z_t",
    ),
    BadInput(
        "distillation.distillation_target: num_student_steps = 2.5",
        lambda: _target(num_student_steps=2.5),
        "num_student_steps",
    ),
    BadInput(
        "distillation.distillation_weight: weighting 'snr'",
        lambda: pd.distillation_weight(S, jnp.array([0]), "snr"),
        "weighting",
    ),
    BadInput(
        "distillation.distillation_weight: t = T",
        lambda: pd.distillation_weight(S, jnp.array([T]), "truncated_snr"),
        "t",
    ),
    BadInput(
        "distillation.distillation_loss: prediction 'score'",
        lambda: _loss(prediction="score"),
        "prediction",
    ),
    BadInput(
        "distillation.distillation_loss: weighting 'min_snr'",
        lambda: _loss(weighting="min_snr"),
        "weighting",
    ),
    BadInput(
        "distillation.distillation_loss: num_student_steps = 0",
        lambda: _loss(num_student_steps=0),
        "num_student_steps",
    ),
    BadInput(
        "distillation.distillation_loss: empty batch",
        lambda: _loss(batch=jnp.ones((0, 2))),
        "batch",
    ),
    BadInput(
        "distillation.distillation_loss_from_noise: noise of the wrong shape",
        lambda: _loss_from_noise(noise=X[:, :1]),
        "noise",
    ),
    BadInput(
        "distillation.distillation_loss_from_noise: index = -1",
        lambda: _loss_from_noise(index=jnp.array([0, 1, 0, -1])),
        "index",
    ),
    BadInput(
        "distillation.as_eps_model: prediction 'score'",
        lambda: pd.as_eps_model(STUDENT, S, prediction="score"),
        "prediction",
    ),
    BadInput(
        "distillation.as_eps_model: schedule is a tuple",
        lambda: pd.as_eps_model(STUDENT, (0.1, 0.2)),
        "schedule",
    ),
    # Valid extremes (N = T // 2, adjacent t, t', t'', is held to the oracle in test_distill).
    BadInput(
        "distillation.distillation_target: zero-terminal-SNR schedule (alpha_{T-1} = 0)",
        _zero_terminal_snr_target,
        kind="extreme",
    ),
    BadInput(
        "distillation.distillation_weight: t = 0, SNR = (1 - beta_0) / beta_0 = 9999",
        lambda: pd.distillation_weight(S, jnp.array([0]), "truncated_snr"),
        kind="extreme",
        check=lambda w: bool(np.isclose(float(w[0]), 9999.0, rtol=1e-3)),
    ),
    BadInput(
        "distillation.distillation_loss_from_noise: eps student at alpha = 0",
        lambda: pd.distillation_loss_from_noise(
            STUDENT,
            X,
            X,
            index=jnp.zeros(4, jnp.int32),
            teacher=d.analytic_eps_fn(targets.ring(), d.rescale_zero_terminal_snr(S)),
            schedule=d.rescale_zero_terminal_snr(S),
            num_student_steps=2,
            prediction="eps",
        ),
        kind="extreme",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_handled(case: BadInput) -> None:
    assert_handled(case)
