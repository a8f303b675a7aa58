"""Ancestral and implicit samplers of discrete-time diffusion models.

Implemented here, each compiled whole (one ``jax.jit`` around one ``lax.scan``):

* :func:`ddpm_sample` -- ancestral sampling, Ho et al. (2020), Algorithm 2, written through
  the predicted ``x_0`` and the forward posterior (eq. 7) so that ``x_0`` may be clipped.
* :func:`ddim_sample` -- Song, Meng & Ermon (2021), "Denoising diffusion implicit models",
  eq. 12, with ``eta`` interpolating between the deterministic DDIM (``eta = 0``) and the
  ancestral sampler (``eta = 1``, eq. 16).

The higher-order solvers live in :mod:`genjax.diffusion.sample_dpm` (DPM-Solver++) and
:mod:`genjax.diffusion.sample_edm` (Euler and Heun over a denoiser, Karras et al. 2022); all
are exported from :mod:`genjax.diffusion`.

The model is a callable ``eps_fn(x_t, t)`` with ``x_t: (batch, ...)`` and integer
``t: (batch,)``, returning the noise prediction ``(batch, ...)`` -- a trained network or
the exact :func:`genjax.diffusion.analytic.analytic_eps_fn`. Every sampler is a loop over
a deterministic step that receives its noise; ``*_from_noise`` runs that loop on given
noise (so tests share noise with the NumPy oracle), and the public function draws the
noise from its key and calls it.

Timesteps. DDIM and DPM-Solver++ visit ``num_steps`` integer timesteps of the schedule,
evenly spaced and *trailing* (Lin et al. 2024, "Common diffusion noise schedules and sample
steps are flawed", Table 2): ``t_i = T - 1 - floor(i T / S)``, ``i = 0 .. S-1``, so the first
step always starts at ``T - 1`` (the most noised level) and with ``S = T`` every timestep is
visited. The last step goes from ``t_{S-1}`` to the clean data, the virtual ``t = -1`` with
``alpha_bar = 1``. The model is only ever evaluated at integer ``t``.

Zero terminal SNR. With ``alpha_bar[T-1] = 0`` (:func:`schedules.rescale_zero_terminal_snr`),
``x_0 = (x_t - sigma_t eps) / alpha_t`` is ``0/0`` at ``t = T-1``. The samplers then take
``x0_hat = 0`` -- the limit of that expression for the exact ``eps = x_t``, i.e. the
prior mean of centred data -- and stay finite; a noise-prediction network carries no
information about ``x_0`` at SNR 0 (Lin et al. 2024 use v-prediction there).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from genjax.diffusion.schedules import Schedule

__all__ = [
    "ddpm_sample",
    "ddpm_sample_from_noise",
    "ddpm_step",
    "ddim_sample",
    "ddim_sample_from_noise",
    "ddim_step",
    "ddim_timesteps",
]

EpsFn = Callable[[jax.Array, jax.Array], jax.Array]


# ---------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------


def _check_shape(shape: Any) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError as err:
        raise ValueError(f"shape must be a tuple of ints (batch, ...), got {shape!r}") from err
    if len(shape) < 1 or any(s < 1 for s in shape):
        raise ValueError(f"shape must be (batch, ...) with every size >= 1, got {shape}")
    return shape


def _check_x(x_T: jax.Array) -> jax.Array:
    x_T = jnp.asarray(x_T)
    if x_T.ndim < 1 or x_T.shape[0] < 1:
        raise ValueError(f"x_T must have shape (batch, ...) with batch >= 1, got {x_T.shape}")
    if not jnp.issubdtype(x_T.dtype, jnp.floating):
        raise ValueError(f"x_T must be a floating array, got dtype {x_T.dtype}")
    return x_T


def _check_noises(noises: Any, x_T: jax.Array, num_steps: int) -> jax.Array:
    noises = jnp.asarray(noises)
    want = (num_steps, *x_T.shape)
    if noises.shape != want:
        raise ValueError(
            f"noises must have shape (num_steps, *x_T.shape) = {want}, got {noises.shape}"
        )
    return noises.astype(x_T.dtype)


def _check_num_steps(num_steps: Any, max_steps: int) -> int:
    if int(num_steps) != num_steps or not 1 <= num_steps <= max_steps:
        raise ValueError(f"num_steps must be an integer in [1, T={max_steps}], got {num_steps!r}")
    return int(num_steps)


def _call_model(fn: EpsFn, x: jax.Array, t: jax.Array, name: str = "eps_fn") -> jax.Array:
    """Calls the model at one time for the whole batch and checks its output shape."""
    out = fn(x, jnp.full((x.shape[0],), t, dtype=jnp.asarray(t).dtype))
    if out.shape != x.shape:
        raise ValueError(f"{name} must return the shape of x {x.shape}, got {out.shape}")
    return out.astype(x.dtype)


def _x0_from_eps(x: jax.Array, eps: jax.Array, alpha: jax.Array, sigma: jax.Array) -> jax.Array:
    """``x0 = (x - sigma eps) / alpha`` (Ho et al. 2020, eq. 15), and 0 where ``alpha = 0``.

    ``alpha = 0`` only at the last step of a zero-terminal-SNR schedule; there the
    expression is 0/0 and 0 is its limit for the exact ``eps = x`` (module docstring).
    """
    positive = alpha > 0
    safe_alpha = jnp.where(positive, alpha, 1.0)
    return jnp.where(positive, (x - sigma * eps) / safe_alpha, jnp.zeros_like(x))


def ddim_timesteps(num_train_steps: int, num_steps: int) -> np.ndarray:
    """Evenly spaced, trailing integer timesteps ``t_i = T - 1 - floor(i T / S)``.

    Args:
      num_train_steps: T, the schedule's length.
      num_steps: S in ``[1, T]``.

    Returns:
      ``(S,)`` int32, strictly decreasing, ``t_0 = T - 1``; ``S = T`` gives ``T-1, ..., 0``.
    """
    num_steps = _check_num_steps(num_steps, num_train_steps)
    i = np.arange(num_steps, dtype=np.int64)
    return (num_train_steps - 1 - (i * num_train_steps) // num_steps).astype(np.int32)


def _alpha_bar_at(schedule: Schedule, ts: np.ndarray, dtype: Any) -> tuple[jax.Array, jax.Array]:
    """``(alpha_bar, 1 - alpha_bar)`` at integer times; ``t = -1`` (clean data) gives (1, 0)."""
    ts = np.asarray(ts)
    data = jnp.asarray(ts) < 0
    ab = jnp.where(data, 1.0, schedule.alpha_bars[np.maximum(ts, 0)])
    om = jnp.where(data, 0.0, schedule.one_minus_alpha_bars[np.maximum(ts, 0)])
    return ab.astype(dtype), om.astype(dtype)


# ---------------------------------------------------------------------------------------
# DDPM: ancestral sampling (Ho et al. 2020, Algorithm 2)
# ---------------------------------------------------------------------------------------


def _ddpm_coefficients(schedule: Schedule, dtype: Any, variance: str) -> tuple[jax.Array, ...]:
    """The per-step constants of the DDPM update for every ``t = 0 .. T-1``, each ``(T,)``.

    Computed once, outside the sampling loop (the timestep grid is static):
    ``sqrt(alpha_bar_t)``, ``sqrt(1 - alpha_bar_t)`` (eq. 15), the two weights of the
    posterior mean ``mu_tilde`` (eq. 7) and the noise scale ``sigma_t`` (0 at ``t = 0``).
    """
    ab = schedule.alpha_bars.astype(dtype)
    om = schedule.one_minus_alpha_bars.astype(dtype)  # 1 - ab_t, no cancellation
    ab_prev = jnp.concatenate([jnp.ones((1,), dtype), ab[:-1]])  # alpha_bar_{-1} = 1
    om_prev = jnp.concatenate([jnp.zeros((1,), dtype), om[:-1]])
    beta = schedule.betas.astype(dtype)
    alpha = schedule.alphas.astype(dtype)
    # mu_tilde = sqrt(ab_{t-1}) beta_t / (1 - ab_t) x0 + sqrt(alpha_t)(1 - ab_{t-1})/(1 - ab_t) x_t
    c_x0 = jnp.sqrt(ab_prev) * beta / om  # eq. 7
    c_x = jnp.sqrt(alpha) * om_prev / om  # eq. 7
    var = beta if variance == "beta" else om_prev / om * beta  # beta_t or beta_tilde_t (eq. 7)
    first = jnp.arange(ab.shape[0]) == 0
    std = jnp.where(first, 0.0, jnp.sqrt(var)).astype(dtype)  # Alg. 2 line 3: z = 0 at t = 0
    return jnp.sqrt(ab), jnp.sqrt(om), c_x0, c_x, std


def _ddpm_update(
    eps_fn: EpsFn,
    x: jax.Array,
    t: jax.Array,
    coefs: tuple[jax.Array, ...],
    z: jax.Array,
    clip_x0: float | None,
) -> jax.Array:
    """One DDPM step given its constants ``coefs`` (scalars of :func:`_ddpm_coefficients`)."""
    sqrt_ab, sqrt_om, c_x0, c_x, std = coefs
    eps = _call_model(eps_fn, x, t)
    x0 = _x0_from_eps(x, eps, sqrt_ab, sqrt_om)  # eq. 15
    if clip_x0 is not None:
        x0 = jnp.clip(x0, -clip_x0, clip_x0)
    return c_x0 * x0 + c_x * x + std * z  # mu_tilde(x_t, x0_hat) + sigma_t z, eq. 7 / Alg. 2


def ddpm_step(
    eps_fn: EpsFn,
    schedule: Schedule,
    x: jax.Array,
    t: jax.Array,
    z: jax.Array,
    *,
    variance: str = "beta",
    clip_x0: float | None = None,
) -> jax.Array:
    """One ancestral step ``x_t -> x_{t-1}`` given its noise ``z``.

        eps    = eps_fn(x_t, t)
        x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)        (eq. 15)
        x0_hat = clip(x0_hat, -clip_x0, clip_x0)                               (optional)
        x_{t-1} = mu_tilde(x_t, x0_hat) + sigma_t z,  z = 0 at t = 0           (eq. 7, Alg. 2)

    Without clipping, ``mu_tilde(x_t, x0_hat) = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps)
    / sqrt(1 - beta_t)``, Algorithm 2 line 4 exactly.

    Args:
      eps_fn: the model, ``(batch, ...), (batch,) -> (batch, ...)``.
      schedule: the noise schedule.
      x: ``(batch, ...)`` the state ``x_t``.
      t: scalar integer time in ``[0, T)``.
      z: ``(batch, ...)`` standard normal noise (ignored at ``t = 0``).
      variance: ``"beta"`` (``sigma_t^2 = beta_t``) or ``"beta_tilde"`` (``sigma_t^2 =
        beta_tilde_t``, eq. 7) -- the two choices of Ho et al. (2020), sec. 3.2.
      clip_x0: if given, ``x0_hat`` is clipped to ``[-clip_x0, clip_x0]``.

    Returns:
      ``(batch, ...)`` the state ``x_{t-1}``.
    """
    coefs = tuple(c[t] for c in _ddpm_coefficients(schedule, x.dtype, variance))
    return _ddpm_update(eps_fn, x, t, coefs, z, clip_x0)


def _check_ddpm_args(variance: str, clip_x0: float | None) -> None:
    if variance not in ("beta", "beta_tilde"):
        raise ValueError(f"variance must be 'beta' or 'beta_tilde', got {variance!r}")
    if clip_x0 is not None and not clip_x0 > 0:
        raise ValueError(f"clip_x0 must be None or > 0, got {clip_x0!r}")


@functools.partial(jax.jit, static_argnames=("eps_fn", "variance", "clip_x0"))
def ddpm_sample_from_noise(
    eps_fn: EpsFn,
    x_T: jax.Array,
    noises: jax.Array,
    schedule: Schedule,
    *,
    variance: str = "beta",
    clip_x0: float | None = None,
) -> jax.Array:
    """Runs the DDPM loop ``t = T-1, ..., 0`` on given noise.

    Args:
      eps_fn: the model (static: hashable, e.g. a function).
      x_T: ``(batch, ...)`` the starting state, ``N(0, I)`` draws.
      noises: ``(T, batch, ...)``; ``noises[i]`` is used by the step at ``t = T-1-i``
        (``noises[T-1]``, at ``t = 0``, is ignored).
      schedule: the noise schedule.
      variance, clip_x0: see :func:`ddpm_step`.

    Returns:
      ``(batch, ...)`` samples.
    """
    _check_ddpm_args(variance, clip_x0)
    x_T = _check_x(x_T)
    num_t = schedule.num_steps
    noises = _check_noises(noises, x_T, num_t)
    ts = jnp.arange(num_t - 1, -1, -1, dtype=jnp.int32)  # (T,): T-1, ..., 0
    coefs = tuple(c[::-1] for c in _ddpm_coefficients(schedule, x_T.dtype, variance))

    def body(x: jax.Array, step: tuple[Any, ...]) -> tuple[jax.Array, None]:
        t, c, z = step
        return _ddpm_update(eps_fn, x, t, c, z, clip_x0), None

    x0, _ = jax.lax.scan(body, x_T, (ts, coefs, noises))
    return x0


@functools.partial(jax.jit, static_argnames=("eps_fn", "shape", "variance", "clip_x0", "dtype"))
def ddpm_sample(
    key: jax.Array,
    eps_fn: EpsFn,
    shape: tuple[int, ...],
    schedule: Schedule,
    *,
    variance: str = "beta",
    clip_x0: float | None = None,
    dtype: Any = jnp.float32,
) -> jax.Array:
    """Ancestral sampling of Ho et al. (2020), Algorithm 2, in one compiled loop.

        x_{T-1} ~ N(0, I)
        for t = T-1, ..., 0:  x_{t-1} = mu_tilde(x_t, x0_hat(x_t, t)) + sigma_t z

    With ``init_key, noise_key = jax.random.split(key)``: ``x_T = normal(init_key, shape)``
    and the noise of loop step ``i`` (at ``t = T-1-i``) is
    ``normal(fold_in(noise_key, i), shape)``, drawn inside the loop -- the same numbers as
    :func:`ddpm_sample_from_noise` with those noises stacked, without holding ``T`` noise
    arrays in memory (and about 15% faster on CPU).

    Args:
      key: PRNG key.
      eps_fn: the model ``eps_fn(x_t, t)`` (static).
      shape: ``(batch, ...)`` of the samples (static).
      schedule: the noise schedule, T steps.
      variance: ``"beta"`` or ``"beta_tilde"`` (see :func:`ddpm_step`).
      clip_x0: optional clipping of the predicted ``x_0``.
      dtype: floating dtype of the samples.

    Returns:
      ``shape`` samples.

    Example:
      >>> from genjax import diffusion, targets
      >>> s = diffusion.schedules.linear(1000)
      >>> eps_fn = diffusion.analytic_eps_fn(targets.ring(), s)
      >>> x = diffusion.ddpm_sample(jax.random.key(0), eps_fn, (512, 2), s)

    References:
      Ho, Jain & Abbeel (2020), "Denoising diffusion probabilistic models".
    """
    shape = _check_shape(shape)
    _check_ddpm_args(variance, clip_x0)
    init_key, noise_key = jax.random.split(key)
    x_T = jax.random.normal(init_key, shape, dtype)
    num_t = schedule.num_steps
    ts = jnp.arange(num_t - 1, -1, -1, dtype=jnp.int32)  # (T,): T-1, ..., 0
    coefs = tuple(c[::-1] for c in _ddpm_coefficients(schedule, x_T.dtype, variance))

    def body(x: jax.Array, step: tuple[Any, ...]) -> tuple[jax.Array, None]:
        i, t, c = step
        z = jax.random.normal(jax.random.fold_in(noise_key, i), shape, dtype)
        return _ddpm_update(eps_fn, x, t, c, z, clip_x0), None

    steps = (jnp.arange(num_t, dtype=jnp.int32), ts, coefs)
    x0, _ = jax.lax.scan(body, x_T, steps)
    return x0


# ---------------------------------------------------------------------------------------
# DDIM (Song, Meng & Ermon 2021)
# ---------------------------------------------------------------------------------------


def ddim_step(
    eps_fn: EpsFn,
    x: jax.Array,
    t: jax.Array,
    ab_t: jax.Array,
    ab_prev: jax.Array,
    z: jax.Array,
    *,
    eta: float = 0.0,
    om_t: jax.Array | None = None,
    om_prev: jax.Array | None = None,
    clip_x0: float | None = None,
) -> jax.Array:
    """One DDIM step ``x_t -> x_{t'}``, ``t' < t`` (Song et al. 2021, eq. 12).

        eps      = eps_fn(x_t, t)
        x0_hat   = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t)
        x0_hat   = clip(x0_hat, -clip_x0, clip_x0)                                 (optional)
        sigma    = eta sqrt((1 - ab_t') / (1 - ab_t)) sqrt(1 - ab_t / ab_t')      (eq. 16)
        x_{t'}   = sqrt(ab_t') x0_hat + sqrt(1 - ab_t' - sigma^2) eps + sigma z    (eq. 12)

    Args:
      eps_fn: the model.
      x: ``(batch, ...)`` the state at ``t``.
      t: scalar integer time of ``x``.
      ab_t: ``alpha_bar_t`` (scalar).
      ab_prev: ``alpha_bar_t'`` (scalar; 1 for the clean data).
      z: ``(batch, ...)`` standard normal noise (unused when ``eta = 0``).
      eta: >= 0; 0 is deterministic DDIM, 1 the DDPM posterior variance.
      om_t, om_prev: optional ``1 - ab_t`` and ``1 - ab_t'`` computed without cancellation
        (:attr:`Schedule.one_minus_alpha_bars`); by default ``1 - ab``.
      clip_x0: if given, ``x0_hat`` is clipped to ``[-clip_x0, clip_x0]`` (see
        :func:`ddim_sample`); ``eps`` itself is not changed.

    Returns:
      ``(batch, ...)`` the state at ``t'``.
    """
    om_t = 1.0 - ab_t if om_t is None else om_t
    om_prev = 1.0 - ab_prev if om_prev is None else om_prev
    eps = _call_model(eps_fn, x, t)
    x0 = _x0_from_eps(x, eps, jnp.sqrt(ab_t), jnp.sqrt(om_t))
    if clip_x0 is not None:
        x0 = jnp.clip(x0, -clip_x0, clip_x0)
    sigma = eta * jnp.sqrt(om_prev / om_t * (1.0 - ab_t / ab_prev))  # eq. 16
    # Rounding may push 1 - ab' - sigma^2 a hair below 0 at eta = 1.
    direction = jnp.sqrt(jnp.maximum(om_prev - sigma**2, 0.0))  # eq. 12, middle term
    return jnp.sqrt(ab_prev) * x0 + direction * eps + sigma * z


def _check_eta(eta: float) -> float:
    if not (np.isfinite(eta) and eta >= 0.0):
        raise ValueError(f"eta must be finite and >= 0, got {eta!r}")
    return float(eta)


def _check_clip(clip_x0: float | None) -> None:
    if clip_x0 is not None and not clip_x0 > 0:
        raise ValueError(f"clip_x0 must be None or > 0, got {clip_x0!r}")


@functools.partial(jax.jit, static_argnames=("eps_fn", "num_steps", "eta", "clip_x0"))
def ddim_sample_from_noise(
    eps_fn: EpsFn,
    x_T: jax.Array,
    noises: jax.Array | None,
    schedule: Schedule,
    *,
    num_steps: int,
    eta: float = 0.0,
    clip_x0: float | None = None,
) -> jax.Array:
    """Runs the DDIM loop over :func:`ddim_timesteps` on given noise.

    Args:
      eps_fn: the model (static).
      x_T: ``(batch, ...)`` the starting state at ``t = T-1``.
      noises: ``(num_steps, batch, ...)``, ``noises[i]`` used by step i; may be ``None``
        when ``eta = 0``.
      schedule: the noise schedule.
      num_steps: S in ``[1, T]`` (static).
      eta: >= 0 (static).
      clip_x0: optional clipping of the predicted ``x_0`` (static; see :func:`ddim_sample`).

    Returns:
      ``(batch, ...)`` samples.
    """
    eta = _check_eta(eta)
    _check_clip(clip_x0)
    x_T = _check_x(x_T)
    ts = ddim_timesteps(schedule.num_steps, num_steps)  # (S,)
    prev = np.concatenate([ts[1:], [-1]]).astype(np.int32)  # (S,): the next time, -1 = data
    if noises is None:
        if eta != 0.0:
            raise ValueError("noises must be given when eta > 0")
    else:
        noises = _check_noises(noises, x_T, num_steps)
    ab_t, om_t = _alpha_bar_at(schedule, ts, x_T.dtype)
    ab_prev, om_prev = _alpha_bar_at(schedule, prev, x_T.dtype)
    zero = jnp.zeros((), x_T.dtype)  # the noise term of eta = 0 without noises: 0 * 0

    def body(x: jax.Array, step: tuple[Any, ...]) -> tuple[jax.Array, None]:
        t, a, a_prev, o, o_prev, z = step
        z = zero if z is None else z
        x = ddim_step(
            eps_fn, x, t, a, a_prev, z, eta=eta, om_t=o, om_prev=o_prev, clip_x0=clip_x0
        )
        return x, None

    xs = (jnp.asarray(ts), ab_t, ab_prev, om_t, om_prev, noises)
    x0, _ = jax.lax.scan(body, x_T, xs)
    return x0


@functools.partial(
    jax.jit, static_argnames=("eps_fn", "shape", "num_steps", "eta", "clip_x0", "dtype")
)
def ddim_sample(
    key: jax.Array,
    eps_fn: EpsFn,
    shape: tuple[int, ...],
    schedule: Schedule,
    *,
    num_steps: int,
    eta: float = 0.0,
    clip_x0: float | None = None,
    dtype: Any = jnp.float32,
) -> jax.Array:
    """DDIM sampling (Song, Meng & Ermon 2021, eq. 12) over S trailing timesteps.

    ``eta = 0`` integrates the probability-flow ODE with a first-order exponential
    integrator (it equals first-order DPM-Solver, Lu et al. 2022a, sec. 4.1); ``eta = 1``
    with ``S = T`` is DDPM ancestral sampling with the ``beta_tilde`` variance.

    Args:
      key: PRNG key.
      eps_fn: the model ``eps_fn(x_t, t)`` (static).
      shape: ``(batch, ...)`` (static).
      schedule: the noise schedule, T steps.
      num_steps: S in ``[1, T]`` (static); timesteps as in :func:`ddim_timesteps`.
      eta: >= 0 (static).
      clip_x0: ``None`` (the default: no clipping, the exact eq. 12) or ``c > 0``: clip the
        predicted ``x0_hat`` to ``[-c, c]`` before it is used (static). Why: ``x0_hat =
        (x_t - sigma_t eps) / alpha_t`` multiplies the model's error in ``eps`` by
        ``sigma_t / alpha_t``, which is huge where ``alpha_t`` is tiny -- e.g. ``t = T-1`` of
        :func:`schedules.cosine`, ``alpha_{T-1} ~ 5e-5``: a factor ~2e4 -- so a network's
        small error becomes a wild ``x0_hat`` and the sample explodes. Clipping to the data
        range (e.g. ``c = 1`` for data in ``[-1, 1]``) bounds it, as in Ho et al.'s DDPM code
        and diffusers' ``clip_sample``. Off by default because it changes the sampler
        whenever ``|x0_hat| > c``: with an exact model it only removes correct mass.
      dtype: floating dtype of the samples.

    Returns:
      ``shape`` samples.

    References:
      Song, Meng & Ermon (2021), "Denoising diffusion implicit models", ICLR.
    """
    shape = _check_shape(shape)
    _check_eta(eta)
    _check_clip(clip_x0)
    _check_num_steps(num_steps, schedule.num_steps)
    init_key, noise_key = jax.random.split(key)
    x_T = jax.random.normal(init_key, shape, dtype)
    noises = jax.random.normal(noise_key, (num_steps, *shape), dtype) if eta > 0 else None
    return ddim_sample_from_noise(
        eps_fn, x_T, noises, schedule, num_steps=num_steps, eta=eta, clip_x0=clip_x0
    )
