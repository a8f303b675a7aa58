"""Reverse-SDE sampling: the predictor-corrector sampler of Song et al. (2021).

For an SDE of :mod:`genjax.diffusion.sde` and a score model ``model(x, t) ~ grad_x log
p_t(x)``, the sampler (Song et al. 2021, Algorithm 1 in sec. 4.2, with the corrector of
Algorithms 4/5) visits ``t_0 = 1 > t_1 > ... > t_N = eps`` evenly spaced; at each ``t_i`` it
runs ``corrector_steps`` Langevin steps at ``t_i`` and then one predictor step from ``t_i``
to ``t_{i+1}``:

* Euler-Maruyama predictor:  ``x <- x - [f - g^2 s] h + g sqrt(h) z``,  ``h = t_i - t_{i+1}``;
* reverse-diffusion predictor (eq. 46-47): ``x <- x - f_i + G_i^2 s + G_i z`` with the
  forward discretisation ``x_{i} = x_{i-1} + f_i + G_i z`` of the step — for VP
  ``f_i = (sqrt(1 - b_i) - 1) x``, ``G_i = sqrt(b_i)`` with
  ``1 - b_i = (alpha(t_i) / alpha(t_{i+1}))^2`` (the DDPM chain); for VE ``f_i = 0``,
  ``G_i = sqrt(s(t_i)^2 - s(t_{i+1})^2)`` (SMLD); for sub-VP ``f_i = f h``, ``G_i = g sqrt(h)``;
* Langevin corrector (Algorithms 4/5): ``eps_step = 2 a_i (r ||z|| / ||s||)^2``,
  ``x <- x + eps_step s + sqrt(2 eps_step) z`` with signal-to-noise ratio ``r = snr``,
  ``a_i = 1 - b_i`` for VP/sub-VP and 1 for VE. As in score_sde, the norms are averaged
  over the batch (per-example norms blow the step up near an exact mode, where ``||s||``
  vanishes).

After the last predictor step the noise is dropped (score_sde's ``noise_removal``): the
sampler returns the last step's mean.

Each step is ``step(model, state, noise, *, sde, h, ...) -> (state, info)`` over an
:class:`SDEState` ``(x, t)``, with a :class:`PCInfo` (the step's noise-free mean and its
number of model evaluations). The model is a callable pytree ``model(x (batch, ...),
t (batch,)) -> (batch, ...)``, a traced argument of the compiled sampler (new weights of the
same shapes reuse the program); a plain Python function is static and compiles anew per
function object.

References:
  Song, Sohl-Dickstein, Kingma, Kumar, Ermon, Poole, "Score-Based Generative Modeling
  through Stochastic Differential Equations", ICLR 2021 (and github.com/yang-song/score_sde).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.diffusion._common import (
    bcast,
    call_model,
    check_shape,
    check_x,
    evals,
    sum_nonbatch,
)
from genjax.diffusion.sde import SDE, prior_sample, reverse_drift
from genjax.model import Model, model_jit

__all__ = [
    "SDEState",
    "PCInfo",
    "euler_maruyama_step",
    "reverse_diffusion_step",
    "langevin_corrector_step",
    "pc_step",
    "pc_sample",
    "pc_sample_from_noise",
]


class SDEState(NamedTuple):
    """The state of a reverse-SDE step.

    Attributes:
      x: ``(batch, ...)`` the sample at time ``t``.
      t: ``()`` the time of ``x`` in ``(0, 1]`` (or ``(batch,)``, one per example).
    """

    x: jax.Array
    t: jax.Array


class PCInfo(NamedTuple):
    """Diagnostics of a reverse-SDE step.

    Attributes:
      x_mean: ``(batch, ...)`` the step's noise-free update (the state minus its noise
        term); the sampler returns the last predictor's ``x_mean``.
      num_evals: ``()`` int32, the number of model evaluations the step made.
    """

    x_mean: jax.Array
    num_evals: jax.Array


def _times(
    state: SDEState, noise: jax.Array | None = None, h: Any = None
) -> tuple[jax.Array, jax.Array, jax.Array]:
    # The step's checks: noise the shape of x, step size h > 0 (when concrete).
    x, t = state
    if noise is not None:
        checks.same_shape("noise", noise, "state.x", x)
    if h is not None:
        checks.positive("h", h)
    return x, jnp.asarray(t), jnp.broadcast_to(jnp.asarray(t, x.dtype), x.shape[:1])


def euler_maruyama_step(
    model: Model, state: SDEState, noise: jax.Array, *, sde: SDE, h: float | jax.Array
) -> tuple[SDEState, PCInfo]:
    """One Euler-Maruyama step of the reverse SDE from ``t`` to ``t - h``.

        x_mean = x - [f(x, t) - g(t)^2 s(x, t)] h,    x' = x_mean + g(t) sqrt(h) z

    Args:
      model: the score model ``model(x (batch, ...), t (batch,))``.
      state: :class:`SDEState` ``(x (batch, ...), t)``.
      noise: ``(batch, ...)`` standard normal ``z``.
      sde: the SDE.
      h: ``()`` step size > 0.

    Returns:
      ``(SDEState(x', t - h), PCInfo(x_mean, 1))``.

    Example:
      >>> sde = VPSDE()
      >>> score = analytic_score_fn(genjax.targets.mixture_1d([1.0], [0.0], [1.0]), sde)
      >>> state, info = euler_maruyama_step(score, SDEState(jnp.ones((4, 1)), jnp.asarray(1.0)),
      ...                                   jnp.zeros((4, 1)), sde=sde, h=0.05)
      >>> round(float(state.t), 4)
      0.95
    """
    x, t, tb = _times(state, noise, h)
    x_mean = x - reverse_drift(model, sde, x, tb) * h
    x_new = x_mean + bcast(sde.diffusion(tb) * jnp.sqrt(h), x) * noise
    return SDEState(x_new, t - h), PCInfo(x_mean, evals(1))


def reverse_diffusion_step(
    model: Model, state: SDEState, noise: jax.Array, *, sde: SDE, h: float | jax.Array
) -> tuple[SDEState, PCInfo]:
    """One reverse-diffusion step (Song et al. 2021, eq. 47) from ``t`` to ``t - h``.

        x_mean = x - f_i + G_i^2 s(x, t),    x' = x_mean + G_i z

    with ``(f_i, G_i) = sde.discretize(x, t, h)``. Arguments and result as
    :func:`euler_maruyama_step`.

    Example:
      >>> sde = VPSDE()
      >>> score = analytic_score_fn(genjax.targets.mixture_1d([1.0], [0.0], [1.0]), sde)
      >>> state, info = reverse_diffusion_step(score, SDEState(jnp.ones((4, 1)), jnp.asarray(1.0)),
      ...                                      jnp.zeros((4, 1)), sde=sde, h=0.05)
      >>> round(float(state.t), 4)
      0.95
    """
    x, t, tb = _times(state, noise, h)
    f, g = sde.discretize(x, tb, h)
    x_mean = x - f + bcast(g**2, x) * call_model(model, x, tb)
    return SDEState(x_mean + bcast(g, x) * noise, t - h), PCInfo(x_mean, evals(1))


def langevin_corrector_step(
    model: Model,
    state: SDEState,
    noise: jax.Array,
    *,
    sde: SDE,
    h: float | jax.Array,
    snr: float,
) -> tuple[SDEState, PCInfo]:
    """One Langevin corrector step at time ``t`` (Song et al. 2021, Algorithms 4/5).

        eps_step = 2 a_i (snr ||z|| / ||s(x, t)||)^2
        x_mean = x + eps_step s(x, t),   x' = x_mean + sqrt(2 eps_step) z

    ``||.||`` is the per-example L2 norm averaged over the batch (score_sde), and
    ``a_i = sde.langevin_alpha(t, h)``.

    Args:
      model, state, noise, sde: as :func:`euler_maruyama_step`.
      h: ``()`` the predictor's step size (sets ``a_i``).
      snr: signal-to-noise ratio ``r > 0``.

    Returns:
      ``(SDEState(x', t), PCInfo(x_mean, 1))`` (the time does not move).

    Example:
      >>> sde = VPSDE()
      >>> score = analytic_score_fn(genjax.targets.mixture_1d([1.0], [0.0], [1.0]), sde)
      >>> state = SDEState(jnp.zeros((4, 1)), jnp.asarray(0.5))
      >>> state, info = langevin_corrector_step(score, state, jnp.zeros((4, 1)), sde=sde, h=0.05,
      ...                                       snr=0.16)
      >>> state.x.tolist()  # at the mode with no noise the corrector stays put
      [[0.0], [0.0], [0.0], [0.0]]
    """
    x, t, tb = _times(state, noise, h)
    checks.positive("snr", snr)
    grad = call_model(model, x, tb)
    grad_norm = jnp.mean(jnp.sqrt(sum_nonbatch(grad**2)))
    noise_norm = jnp.mean(jnp.sqrt(sum_nonbatch(noise**2)))
    # A vanishing score (every example exactly at a mode) would divide by zero.
    grad_norm = jnp.maximum(grad_norm, jnp.finfo(x.dtype).tiny)
    step = (snr * noise_norm / grad_norm) ** 2 * 2.0 * bcast(sde.langevin_alpha(tb, h), x)
    x_mean = x + step * grad
    return SDEState(x_mean + jnp.sqrt(2.0 * step) * noise, t), PCInfo(x_mean, evals(1))


_PREDICTORS = {"euler_maruyama": euler_maruyama_step, "reverse_diffusion": reverse_diffusion_step}


def _check_pc_args(predictor: str, snr: float, eps: float) -> None:
    checks.one_of("predictor", predictor, tuple(_PREDICTORS))
    checks.positive("snr", snr)
    checks.in_range("eps", eps, 0.0, 1.0, low_open=True, high_open=True)


def pc_step(
    model: Model,
    state: SDEState,
    noise: tuple[jax.Array, jax.Array],
    *,
    sde: SDE,
    h: float | jax.Array,
    predictor: str = "euler_maruyama",
    snr: float = 0.16,
) -> tuple[SDEState, PCInfo]:
    """One predictor-corrector step: the correctors at ``t``, then a predictor to ``t - h``.

    Args:
      model: the score model ``model(x (batch, ...), t (batch,))``.
      state: :class:`SDEState` ``(x (batch, ...), t ())``.
      noise: ``(predictor_noise (batch, ...), corrector_noise (corrector_steps, batch, ...))``
        (``corrector_steps = 0`` for no corrector).
      sde: the SDE.
      h: ``()`` step size > 0.
      predictor: ``"euler_maruyama"`` or ``"reverse_diffusion"``.
      snr: signal-to-noise ratio of the Langevin corrector.

    Returns:
      ``(SDEState(x', t - h), PCInfo(x_mean of the predictor, corrector_steps + 1))``.

    Example:
      >>> sde = VPSDE()
      >>> score = analytic_score_fn(genjax.targets.mixture_1d([1.0], [0.0], [1.0]), sde)
      >>> state, info = pc_step(score, SDEState(jnp.ones((4, 1)), jnp.asarray(1.0)),
      ...                       (jnp.zeros((4, 1)), jnp.zeros((1, 4, 1))), sde=sde, h=0.05)
      >>> state.x.shape, round(float(state.t), 4)
      ((4, 1), 0.95)
    """
    checks.one_of("predictor", predictor, tuple(_PREDICTORS))
    predictor_noise, corrector_noise = noise

    def correct(s: SDEState, z: jax.Array) -> tuple[SDEState, None]:
        return langevin_corrector_step(model, s, z, sde=sde, h=h, snr=snr)[0], None

    state = SDEState(*state)
    if corrector_noise.shape[0]:  # (a zero-length scan cannot run eagerly)
        state, _ = jax.lax.scan(correct, state, corrector_noise)
    state, info = _PREDICTORS[predictor](model, state, predictor_noise, sde=sde, h=h)
    return state, PCInfo(info.x_mean, evals(corrector_noise.shape[0] + 1))


def _pc_loop(model, sde, x_T, zp, zc, predictor, snr, eps, return_trajectory):
    n = zp.shape[0]
    dtype = x_T.dtype
    ts = jnp.linspace(1.0, eps, n + 1, dtype=dtype)  # t_0 = 1 > ... > t_N = eps
    h = jnp.asarray((1.0 - eps) / n, dtype)

    def body(x, inputs):
        t, z_p, z_c = inputs
        state, info = pc_step(model, SDEState(x, t), (z_p, z_c), sde=sde, h=h,
                              predictor=predictor, snr=snr)
        return state.x, (info.x_mean, state.x if return_trajectory else None)

    _, (x_means, trajectory) = jax.lax.scan(body, x_T, (ts[:-1], zp, zc))
    return (x_means[-1], trajectory) if return_trajectory else x_means[-1]


@functools.partial(
    model_jit, static_argnames=("sde", "predictor", "snr", "eps", "return_trajectory")
)
def pc_sample_from_noise(
    model: Model,
    x_T: jax.Array,
    noises: tuple[jax.Array, jax.Array],
    sde: SDE,
    *,
    predictor: str = "euler_maruyama",
    snr: float = 0.16,
    eps: float = 1e-3,
    return_trajectory: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Run the predictor-corrector sampler on given noise (one ``lax.scan``).

    The time grid is ``t_i = 1 - i (1 - eps) / N``, ``i = 0 .. N``; step ``i`` corrects at
    ``t_i`` and predicts to ``t_{i+1}``; the last step's mean is returned.

    Args:
      model: the score model ``model(x (batch, ...), t (batch,)) -> (batch, ...)`` (traced;
        a plain function is static).
      x_T: ``(batch, ...)`` prior draw at ``t = 1``.
      noises: ``(predictor_noise (N, batch, ...), corrector_noise (N, corrector_steps,
        batch, ...))``; N = number of steps, ``corrector_steps = 0`` for a predictor-only
        sampler.
      sde: a :class:`VPSDE`, :class:`SubVPSDE` or :class:`VESDE` (static).
      predictor: ``"euler_maruyama"`` or ``"reverse_diffusion"``.
      snr: Langevin signal-to-noise ratio (0.16 for VE on CIFAR-10, 0.01 for VP in the paper).
      eps: the final time, in (0, 1).
      return_trajectory: also return the ``(N, batch, ...)`` states after every step.

    Returns:
      ``(batch, ...)`` samples at ``t = eps`` (and the trajectory).

    Example:
      >>> sde = VPSDE()
      >>> score = analytic_score_fn(genjax.targets.mixture_1d([1.0], [3.0], [0.1]), sde)
      >>> noises = (jnp.zeros((20, 4, 1)), jnp.zeros((20, 1, 4, 1)))  # N = 20, one corrector step
      >>> pc_sample_from_noise(score, jnp.zeros((4, 1)), noises, sde).shape
      (4, 1)
    """
    _check_pc_args(predictor, snr, eps)
    x_T = check_x("x_T", x_T)
    zp, zc = (jnp.asarray(z, x_T.dtype) for z in noises)
    n = checks.shape("predictor_noise", zp, (None, *x_T.shape))[0]
    checks.shape("corrector_noise", zc, (n, None, *x_T.shape))
    return _pc_loop(model, sde, x_T, zp, zc, predictor, snr, eps, return_trajectory)


@functools.partial(
    model_jit,
    static_argnames=(
        "shape", "sde", "num_steps", "predictor", "corrector_steps", "snr", "eps", "dtype",
        "return_trajectory",
    ),
)
def pc_sample(
    key: jax.Array,
    model: Model,
    shape: tuple[int, ...],
    sde: SDE,
    *,
    num_steps: int = 500,
    predictor: str = "euler_maruyama",
    corrector_steps: int = 1,
    snr: float = 0.16,
    eps: float = 1e-3,
    dtype: Any = jnp.float32,
    return_trajectory: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Predictor-corrector sampling of the reverse SDE (Song et al. 2021, Algorithms 2/3).

    With ``prior_key, pred_key, corr_key = jax.random.split(key, 3)``: ``x_T =
    prior_sample(prior_key, sde, shape)``, ``predictor_noise = normal(pred_key, (N, *shape))``,
    ``corrector_noise = normal(corr_key, (N, corrector_steps, *shape))``, then
    :func:`pc_sample_from_noise`.

    Args:
      key: PRNG key.
      model: the score model ``model(x (batch, ...), t (batch,)) -> (batch, ...)`` (traced:
        new weights do not recompile; a plain function is static and compiles once per
        function object).
      shape: ``(batch, ...)`` of the samples.
      sde: the SDE (static).
      num_steps: number of predictor steps N >= 1.
      predictor: ``"euler_maruyama"`` or ``"reverse_diffusion"``.
      corrector_steps: Langevin steps per time step (0: predictor only).
      snr: Langevin signal-to-noise ratio.
      eps: final time in (0, 1).
      dtype: floating dtype of the samples.
      return_trajectory: also return the ``(N, *shape)`` states after every step.

    Returns:
      ``(batch, ...)`` samples (and the trajectory).

    Example:
      >>> model = analytic_score_fn(genjax.targets.ring(), VPSDE())
      >>> pc_sample(jax.random.key(0), model, (512, 2), VPSDE(), num_steps=20).shape
      (512, 2)
    """
    num_steps = checks.positive_int("num_steps", num_steps)
    corrector_steps = checks.nonnegative_int("corrector_steps", corrector_steps)
    _check_pc_args(predictor, snr, eps)
    shape = check_shape(shape)
    prior_key, pred_key, corr_key = jax.random.split(key, 3)
    x_T = prior_sample(prior_key, sde, shape, dtype)
    zp = jax.random.normal(pred_key, (num_steps, *shape), dtype)
    zc = jax.random.normal(corr_key, (num_steps, corrector_steps, *shape), dtype)
    return _pc_loop(model, sde, x_T, zp, zc, predictor, snr, eps, return_trajectory)
