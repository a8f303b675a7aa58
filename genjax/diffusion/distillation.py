"""Progressive distillation of a DDIM sampler (Salimans & Ho 2022, Algorithm 2).

A student that takes ``N`` DDIM steps is trained to land, in one step, where the teacher
lands in two; the student then becomes the teacher and ``N`` is halved again
(``N -> N/2 -> ... -> 1``), each student initialised from its teacher. With
``alpha_t = sqrt(alpha_bar_t)``, ``sigma_t = sqrt(1 - alpha_bar_t)`` and deterministic
DDIM (:func:`genjax.diffusion.ddim_step`, eta = 0)

    z_t'  = alpha_t' x_hat(z_t) + sigma_t' (z_t - alpha_t x_hat(z_t)) / sigma_t   (DDIM, eq. 12)

for one student step ``t -> t''`` the teacher takes ``t -> t' -> t''`` and the student's
data prediction that makes its one step reproduce ``z_t''`` exactly is

    x~ = (z_t'' - (sigma_t'' / sigma_t) z_t) / (alpha_t'' - (sigma_t'' / sigma_t) alpha_t)
                                                                   (Salimans & Ho 2022, eq. 8)

(put ``x_hat = x~`` in the DDIM step ``t -> t''`` and solve). The denominator is
``sigma_t'' (alpha_t''/sigma_t'' - alpha_t/sigma_t) > 0`` because the SNR decreases with
``t``; at the last step ``t'' = -1`` (clean data, ``alpha = 1``, ``sigma = 0``) it is
``x~ = z_t''``. The student minimises

    L = E_{x, eps, i} w(lambda_t) || x~ - x_hat_student(z_t) ||^2,
    lambda_t = log(alpha_t^2 / sigma_t^2)                             (sec. 4, "weighting")

with the paper's two weightings of the x-error: ``"truncated_snr"``,
``w = max(SNR_t, 1)`` (= ``max(||x - x_hat||^2, ||eps - eps_hat||^2)`` per example), and
``"snr_plus_one"``, ``w = SNR_t + 1`` (= the v-prediction error ``||v~ - v_hat||^2``).
genjax's default is **truncated SNR**; ``"snr_plus_one"`` is available.

Time grid: genjax's trailing DDIM timesteps (:func:`genjax.diffusion.ddim_timesteps`),
``t_j^{(M)} = T - 1 - floor(j T / M)``. Student step ``i`` of ``N`` goes from
``t_i^{(N)} = t_{2i}^{(2N)}`` to ``t_{i+1}^{(N)} = t_{2i+2}^{(2N)}`` and the teacher's middle
time is ``t_{2i+1}^{(2N)}`` (:func:`distillation_timesteps`), so the student sampled with
``ddim_sample(..., num_steps=N)`` visits exactly the times it was trained at
(needs ``2N <= T``). The student is sampled by DDIM itself: wrap a network that predicts
``v`` (or ``x0``) with :func:`as_eps_model` and pass it to
:func:`genjax.diffusion.ddim_sample` with ``num_steps=N``.

The paper's recommendation is kept: the student (and so the teacher it starts from)
predicts ``v = alpha_t eps - sigma_t x`` (``prediction="v"``, the default), because an
eps-prediction's ``x_hat = (z_t - sigma_t eps_hat) / alpha_t`` multiplies its error by
``sigma_t / alpha_t``, unbounded at the first step of a one-step student.

References:
  Salimans & Ho (2022), "Progressive distillation for fast sampling of diffusion models",
  ICLR.
  Song, Meng & Ermon (2021), "Denoising diffusion implicit models", ICLR.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.diffusion._common import (
    DiscreteState,
    alpha_bar_at,
    bcast,
    call_model,
    check_x,
    mean_nonbatch,
    x0_from_eps,
)
from genjax.diffusion.ddim import ddim_step
from genjax.diffusion.forward import q_sample, v_to_eps, v_to_x0, x0_to_eps
from genjax.diffusion.schedules import Schedule
from genjax.model import Model

__all__ = [
    "WEIGHTINGS",
    "EpsFromPrediction",
    "as_eps_model",
    "distillation_stages",
    "distillation_timesteps",
    "distillation_target",
    "distillation_weight",
    "distillation_loss_from_noise",
    "distillation_loss",
]

WEIGHTINGS = ("truncated_snr", "snr_plus_one")
"""The loss weightings of Salimans & Ho (2022, sec. 4): ``max(SNR, 1)`` and ``SNR + 1``."""

_PREDICTIONS = ("eps", "x0", "v")


def _check_schedule(schedule: Any) -> Schedule:
    return checks.instance("schedule", schedule, Schedule)


def _check_student_steps(num_student_steps: Any, num_train_steps: int) -> Any:
    """``1 <= N`` and ``2N <= T`` (the teacher's ``2N`` times must be distinct); a traced
    ``N`` (the recipe's stage) cannot be read and is the caller's to keep in range."""
    if checks.is_concrete(num_student_steps):
        return checks.int_in_range("num_student_steps", num_student_steps, 1, num_train_steps // 2)
    return num_student_steps


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity: usable as a jit static too
class EpsFromPrediction:
    """A network that predicts ``v`` or ``x0``, seen as a noise-prediction model.

        eps = sigma_t z_t + alpha_t v           (prediction "v", Salimans & Ho 2022, sec. 4)
        eps = (z_t - alpha_t x0) / sigma_t      (prediction "x0")

    so every sampler over ``model(x_t, t) -> eps`` (DDIM above all) runs it unchanged.

    Attributes:
      net: the network, ``net(x_t (batch, ...), t (batch,) int) -> (batch, ...)``.
      schedule: the noise schedule giving ``alpha_t, sigma_t``.
      prediction: ``"v"``, ``"x0"`` or ``"eps"`` (the identity) -- static.

    Example:
      >>> s = linear(10)
      >>> zero_v = jax.tree_util.Partial(lambda x, t: jnp.zeros_like(x))
      >>> model = EpsFromPrediction(zero_v, s, "v")  # v = 0: eps = sigma_t z_t
      >>> bool(jnp.allclose(model(jnp.ones((1, 2)), jnp.array([9])), s.sigma(9)))
      True
    """

    net: Any
    schedule: Schedule
    prediction: str = dataclasses.field(default="v", metadata={"static": True})

    def __call__(self, x_t: jax.Array, t: jax.Array) -> jax.Array:
        """``x_t: (batch, ...)``, ``t: (batch,)`` int in ``[0, T)`` -> eps ``(batch, ...)``."""
        out = call_model(self.net, x_t, t)
        if self.prediction == "v":
            return v_to_eps(self.schedule, x_t, t, out)
        if self.prediction == "x0":
            return x0_to_eps(self.schedule, x_t, t, out)
        return out


def as_eps_model(net: Model, schedule: Schedule, *, prediction: str = "v") -> EpsFromPrediction:
    """Wraps a ``v``- (or ``x0``-) predicting network as ``model(x_t, t) -> eps``.

    Args:
      net: callable pytree ``net(x_t (batch, ...), t (batch,) int) -> (batch, ...)``.
      schedule: the noise schedule.
      prediction: what ``net`` predicts: ``"v"`` (default), ``"x0"`` or ``"eps"``.

    Returns:
      :class:`EpsFromPrediction`, a pytree: traced by the samplers, so new weights of the
      same shapes do not recompile.

    Example:
      >>> from genjax.nn import MLPDenoiser
      >>> s = linear(100)
      >>> student = as_eps_model(MLPDenoiser(2, [8], time_embed_dim=4, rngs=nnx.Rngs(0)), s)
      >>> ddim_sample(jax.random.key(0), student, (4, 2), s, num_steps=2).shape
      (4, 2)
    """
    checks.one_of("prediction", prediction, _PREDICTIONS)
    return EpsFromPrediction(net, _check_schedule(schedule), prediction)


def distillation_stages(num_teacher_steps: int) -> tuple[int, ...]:
    """The student step counts of progressive distillation from a ``2N``-step teacher.

    Args:
      num_teacher_steps: the teacher's DDIM step count, a power of two >= 2.

    Returns:
      ``(N/2... )``: ``(num_teacher_steps / 2, num_teacher_steps / 4, ..., 1)``.

    Example:
      >>> distillation_stages(16)
      (8, 4, 2, 1)
    """
    n = checks.int_in_range("num_teacher_steps", num_teacher_steps, 2, 2**30)
    if n & (n - 1):
        raise ValueError(f"num_teacher_steps must be a power of two >= 2, got {n}")
    return tuple(n >> k for k in range(1, n.bit_length()))


def distillation_timesteps(
    num_train_steps: int, num_student_steps: Any, index: Any
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The times ``(t, t', t'')`` of student step ``index`` (module docstring, time grid).

        t   = T - 1 - floor(2i T / 2N)        = ddim_timesteps(T, N)[i]
        t'  = T - 1 - floor((2i + 1) T / 2N)  the teacher's middle time
        t'' = T - 1 - floor((2i + 2) T / 2N)  (= -1, the clean data, at i = N - 1)

    Args:
      num_train_steps: T, the schedule's length.
      num_student_steps: N, with ``1 <= N <= T // 2`` (may be traced).
      index: ``(batch,)`` (or any shape) int, the student step ``i`` in ``[0, N)``.

    Returns:
      ``(t, t_mid, t_next)``, int32 of ``index``'s shape, ``t > t_mid > t_next >= -1``.

    Example:
      >>> [v.tolist() for v in distillation_timesteps(1000, 2, jnp.array([0, 1]))]
      [[999, 499], [749, 249], [499, -1]]
    """
    num_train_steps = checks.positive_int("num_train_steps", num_train_steps)
    n = _check_student_steps(num_student_steps, num_train_steps)
    index = jnp.asarray(index)
    checks.int_array_in_range("index", index, 0, n if checks.is_concrete(n) else 2**30)
    i, n = index.astype(jnp.int32), jnp.asarray(n, jnp.int32)
    big_t = num_train_steps

    def grid(j: jax.Array) -> jax.Array:
        return (big_t - 1 - (j * big_t) // (2 * n)).astype(jnp.int32)  # t_j^{(2N)}

    return grid(2 * i), grid(2 * i + 1), grid(2 * i + 2)


def _two_teacher_steps(
    teacher: Model,
    z_t: jax.Array,
    t: jax.Array,
    t_mid: jax.Array,
    t_next: jax.Array,
    schedule: Schedule,
) -> jax.Array:
    """``z_t -> z_t' -> z_t''`` by two deterministic DDIM steps, each example at its own
    times: :func:`ddim_step` lifted over the batch with ``jax.vmap``."""

    def one(z: jax.Array, a: jax.Array, b: jax.Array, c: jax.Array) -> jax.Array:
        state = DiscreteState(z[None], a)  # (1, ...): ddim_step's batch of one
        state, _ = ddim_step(teacher, state, None, schedule=schedule, t_prev=b)
        state, _ = ddim_step(teacher, state, None, schedule=schedule, t_prev=c)
        return state.x[0]

    return jax.vmap(one)(z_t, t, t_mid, t_next)


def distillation_target(
    teacher: Model,
    z_t: jax.Array,
    index: jax.Array,
    schedule: Schedule,
    *,
    num_student_steps: Any,
) -> jax.Array:
    """The student's x-prediction target ``x~`` of Salimans & Ho (2022), eq. 8.

        z_t'' = DDIM(DDIM(z_t, t -> t'), t' -> t'')     two teacher steps (eq. 12 of DDIM)
        x~    = (z_t'' - (sigma_t''/sigma_t) z_t) / (alpha_t'' - (sigma_t''/sigma_t) alpha_t)

    Args:
      teacher: callable pytree ``teacher(x_t, t) -> eps`` (``x_t: (batch, ...)``,
        ``t: (batch,)`` int); e.g. :func:`as_eps_model` of a v-network, or the exact
        :func:`genjax.diffusion.analytic_eps_fn` of a Gaussian mixture.
      z_t: ``(batch, ...)`` noisy data at ``t = distillation_timesteps(T, N, index)[0]``.
      index: ``(batch,)`` int in ``[0, N)``, each example's student step.
      schedule: the noise schedule (T steps).
      num_student_steps: N, ``1 <= N <= T // 2`` (may be traced).

    Returns:
      ``(batch, ...)`` ``x~``, in ``z_t``'s dtype (no gradient flows into ``teacher``).

    Example:
      >>> s = linear(100)
      >>> teacher = analytic_eps_fn(genjax.targets.mixture_1d([1.0], [3.0], [0.1]), s)
      >>> x = distillation_target(teacher, jnp.zeros((2, 1)), jnp.array([0, 1]), s,
      ...                         num_student_steps=2)
      >>> x.shape
      (2, 1)
    """
    schedule = _check_schedule(schedule)
    z_t = check_x("z_t", z_t)
    checks.shape("index", jnp.asarray(index), (z_t.shape[0],))
    t, t_mid, t_next = distillation_timesteps(schedule.num_steps, num_student_steps, index)
    z_next = _two_teacher_steps(teacher, z_t, t, t_mid, t_next, schedule)  # z_t''
    ab_t, om_t = alpha_bar_at(schedule, t, z_t.dtype)  # (batch,) each
    ab_n, om_n = alpha_bar_at(schedule, t_next, z_t.dtype)  # t'' = -1: (1, 0)
    alpha_t, sigma_t = jnp.sqrt(ab_t), jnp.sqrt(om_t)
    alpha_n, sigma_n = jnp.sqrt(ab_n), jnp.sqrt(om_n)
    ratio = sigma_n / sigma_t  # sigma_t'' / sigma_t; sigma_t > 0 for every t >= 0
    x_tilde = (z_next - bcast(ratio, z_t) * z_t) / bcast(alpha_n - ratio * alpha_t, z_t)  # eq. 8
    return jax.lax.stop_gradient(x_tilde)


def distillation_weight(schedule: Schedule, t: jax.Array, weighting: str) -> jax.Array:
    """The per-example weight ``w(lambda_t)`` of the x-error (Salimans & Ho 2022, sec. 4).

        truncated_snr:  w = max(SNR_t, 1),   snr_plus_one:  w = SNR_t + 1,
        SNR_t = alpha_bar_t / (1 - alpha_bar_t) = exp(lambda_t)

    Args:
      schedule: the noise schedule.
      t: ``(batch,)`` int times in ``[0, T)``.
      weighting: one of :data:`WEIGHTINGS`.

    Returns:
      ``(batch,)`` weights, >= 1.

    Example:
      >>> s = from_betas(jnp.array([0.5, 0.5]))  # SNR_0 = 1, SNR_1 = 1/3
      >>> distillation_weight(s, jnp.array([0, 1]), "snr_plus_one").tolist()
      [2.0, 1.3333333730697632]
    """
    checks.one_of("weighting", weighting, WEIGHTINGS)
    t = jnp.asarray(t)
    checks.int_array_in_range("t", t, 0, schedule.num_steps)
    snr = schedule.alpha_bars[t] / schedule.one_minus_alpha_bars[t]  # finite: 1 - ab > 0
    if weighting == "truncated_snr":
        return jnp.maximum(snr, 1.0)
    return snr + 1.0


def distillation_loss_from_noise(
    model: Model,
    batch: jax.Array,
    noise: jax.Array,
    *,
    index: jax.Array,
    teacher: Model,
    schedule: Schedule,
    num_student_steps: Any,
    prediction: str = "v",
    weighting: str = "truncated_snr",
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """:func:`distillation_loss` at given noise and student steps (the deterministic core).

        t = t_index^{(N)},  z_t = alpha_t x + sigma_t eps,  x~ = eq. 8 (two teacher steps)
        L = mean_b w(lambda_t) mean_d (x~ - x_hat(z_t))^2

    Args:
      model: the student, ``model(z_t, t) -> prediction`` (differentiated).
      batch: ``(batch, ...)`` clean data ``x``.
      noise: ``(batch, ...)`` standard normal ``eps``.
      index: ``(batch,)`` int in ``[0, N)``, each example's student step.
      teacher: ``teacher(x_t, t) -> eps`` (not differentiated).
      schedule: the noise schedule (T steps).
      num_student_steps: N, ``1 <= N <= T // 2`` (may be traced).
      prediction: what the student predicts: ``"v"`` (default), ``"x0"`` or ``"eps"``.
      weighting: ``"truncated_snr"`` (default) or ``"snr_plus_one"``.

    Returns:
      ``(loss, {"loss", "mse"})``; ``mse`` the unweighted mean of ``(x~ - x_hat)^2``.

    Example:
      >>> s = linear(100)
      >>> teacher = analytic_eps_fn(genjax.targets.mixture_1d([1.0], [3.0], [0.1]), s)
      >>> student = jax.tree_util.Partial(lambda x, t: jnp.zeros_like(x))  # v = 0
      >>> value, m = distillation_loss_from_noise(
      ...     student, jnp.full((2, 1), 3.0), jnp.ones((2, 1)), index=jnp.array([0, 1]),
      ...     teacher=teacher, schedule=s, num_student_steps=2)
      >>> value.shape, bool(value > 0)
      ((), True)
    """
    checks.one_of("prediction", prediction, _PREDICTIONS)
    checks.one_of("weighting", weighting, WEIGHTINGS)
    schedule = _check_schedule(schedule)
    x0 = check_x("batch", batch)
    checks.same_shape("noise", jnp.asarray(noise), "batch", x0)
    noise = jnp.asarray(noise, x0.dtype)
    t, _, _ = distillation_timesteps(schedule.num_steps, num_student_steps, index)
    checks.shape("index", jnp.asarray(index), (x0.shape[0],))
    z_t = q_sample(schedule, x0, t, noise)  # z_t = alpha_t x + sigma_t eps (DDPM eq. 4)
    x_tilde = distillation_target(
        teacher, z_t, index, schedule, num_student_steps=num_student_steps
    )  # eq. 8
    out = call_model(model, z_t, t)
    if prediction == "v":
        x_hat = v_to_x0(schedule, z_t, t, out)  # x_hat = alpha_t z_t - sigma_t v_hat
    elif prediction == "x0":
        x_hat = out
    else:
        alpha, sigma = schedule.alpha(t).astype(x0.dtype), schedule.sigma(t).astype(x0.dtype)
        # DDPM eq. 15; 0 where alpha_t = 0 (zero terminal SNR), its limit for the exact eps.
        x_hat = x0_from_eps(z_t, out, bcast(alpha, z_t), bcast(sigma, z_t))
    mse = mean_nonbatch(jnp.square(x_tilde - x_hat))  # (batch,)
    w = distillation_weight(schedule, t, weighting).astype(x0.dtype)  # (batch,), sec. 4
    value = jnp.mean(w * mse)
    return value, {"loss": value, "mse": jnp.mean(mse)}


def distillation_loss(
    model: Model,
    batch: jax.Array,
    key: jax.Array,
    *,
    teacher: Model,
    schedule: Schedule,
    num_student_steps: Any,
    prediction: str = "v",
    weighting: str = "truncated_snr",
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The progressive-distillation loss (Salimans & Ho 2022, Algorithm 2).

        i ~ U{0, ..., N-1},  eps ~ N(0, I),  t = t_i^{(N)},  z_t = alpha_t x + sigma_t eps
        x~ = eq. 8 from two teacher DDIM steps t -> t' -> t''
        L  = E w(lambda_t) || x~ - x_hat_student(z_t) ||^2

    With ``index_key, noise_key = jax.random.split(key)``, ``i`` and ``eps`` are drawn from
    them and passed to :func:`distillation_loss_from_noise`.

    Args:
      model: the student ``model(z_t, t) -> prediction`` (differentiated; an
        ``nnx.Module`` works as it is), initialised from the teacher's network.
      batch: ``(batch, ...)`` clean data.
      key: PRNG key for the student steps and the noise.
      teacher: ``teacher(x_t, t) -> eps``, e.g. ``as_eps_model(teacher_net, schedule)``.
      schedule: the noise schedule (T steps).
      num_student_steps: N, the student's DDIM step count, ``1 <= N <= T // 2`` (may be
        traced: one program serves every stage).
      prediction: what the student predicts: ``"v"`` (default), ``"x0"`` or ``"eps"``.
      weighting: ``"truncated_snr"`` (default, ``max(SNR, 1)``) or ``"snr_plus_one"``.

    Returns:
      ``(loss, {"loss", "mse"})``.

    Example:
      >>> from genjax.nn import MLPDenoiser
      >>> s = linear(100)
      >>> net = MLPDenoiser(2, [8], time_embed_dim=4, rngs=nnx.Rngs(0))
      >>> teacher = as_eps_model(net, s)
      >>> (value, _), grads = jax.value_and_grad(distillation_loss, has_aux=True)(
      ...     net, jnp.ones((4, 2)), jax.random.key(0), teacher=teacher, schedule=s,
      ...     num_student_steps=4)
      >>> value.shape, type(grads).__name__
      ((), 'MLPDenoiser')

    References:
      Salimans & Ho (2022), "Progressive distillation for fast sampling of diffusion
      models", ICLR, Algorithm 2.
    """
    checks.one_of("prediction", prediction, _PREDICTIONS)
    checks.one_of("weighting", weighting, WEIGHTINGS)
    schedule = _check_schedule(schedule)
    x0 = check_x("batch", batch)
    n = _check_student_steps(num_student_steps, schedule.num_steps)
    index_key, noise_key = jax.random.split(key)
    index = jax.random.randint(index_key, (x0.shape[0],), 0, n)  # i ~ U{0..N-1}
    noise = jax.random.normal(noise_key, x0.shape, x0.dtype)
    return distillation_loss_from_noise(
        model,
        x0,
        noise,
        index=index,
        teacher=teacher,
        schedule=schedule,
        num_student_steps=n,
        prediction=prediction,
        weighting=weighting,
    )
