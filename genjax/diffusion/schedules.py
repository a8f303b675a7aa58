"""Noise schedules of discrete-time diffusion models.

A schedule fixes the forward (noising) process ``q(x_t | x_0) = N(alpha_t x_0, sigma_t^2 I)``
of a variance-preserving diffusion (Ho et al. 2020, "Denoising diffusion probabilistic
models", eq. 4) through its per-step variances ``beta_t``:

    alpha_bar_t = prod_{s <= t} (1 - beta_s)          (Ho et al. 2020, below eq. 4)
    alpha_t     = sqrt(alpha_bar_t),  sigma_t = sqrt(1 - alpha_bar_t)
    log SNR_t   = log(alpha_t^2 / sigma_t^2) = log alpha_bar_t - log(1 - alpha_bar_t)

Convention (DESIGN.md): integer time ``t`` in ``[0, T)``, ``t = 0`` the first noising step,
so ``alpha_bar[0] = 1 - beta[0]`` and ``alpha_bar[T-1]`` is the most noised level. The
clean data sits at the virtual time ``t = -1`` (``alpha_bar = 1``), where samplers end.

Schedules implemented:

* :func:`linear` -- Ho et al. (2020), sec. 4: ``beta`` linear from 1e-4 to 0.02.
* :func:`cosine` -- Nichol & Dhariwal (2021), "Improved DDPM", eq. 17.
* :func:`sigmoid` -- Jabri et al. (2022), "Scalable adaptive computation for iterative
  generation" (RIN), and Chen (2023), "On the importance of noise scheduling for diffusion
  models", Algorithm 1.
* :func:`rescale_zero_terminal_snr` -- Lin et al. (2024), "Common diffusion noise schedules
  and sample steps are flawed", Algorithm 1.
* :func:`karras_sigmas` -- the EDM noise levels of Karras et al. (2022), "Elucidating the
  design space of diffusion-based generative models", eq. 5.

Every schedule is computed in float64 with NumPy and cast once to the requested dtype
(float32 by default), so the cumulative product carries no float32 round-off.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from genjax import checks

__all__ = [
    "Schedule",
    "linear",
    "cosine",
    "sigmoid",
    "rescale_zero_terminal_snr",
    "karras_sigmas",
    "from_betas",
]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Schedule:
    """A discrete variance-preserving noise schedule (a pytree of three arrays).

    Attributes:
      betas: ``(T,)`` per-step noise variances ``beta_t``.
      alphas: ``(T,)`` ``1 - beta_t``.
      alpha_bars: ``(T,)`` ``prod_{s <= t} (1 - beta_s)``, decreasing.

    Build one with :func:`linear`, :func:`cosine`, :func:`sigmoid` or :func:`from_betas`;
    constructing the dataclass directly performs no checks (so that it can be rebuilt
    cheaply inside ``jax.jit``).

    Example:
      >>> s = from_betas(jnp.array([0.1, 0.2]))
      >>> isinstance(s, Schedule), s.num_steps, [round(float(a), 4) for a in s.alpha_bars]
      (True, 2, [0.9, 0.72])
    """

    betas: jax.Array  # (T,)
    alphas: jax.Array  # (T,)
    alpha_bars: jax.Array  # (T,)

    @property
    def num_steps(self) -> int:
        """T, the number of diffusion steps (static)."""
        return self.betas.shape[0]

    @property
    def one_minus_alpha_bars(self) -> jax.Array:
        """``(T,)`` ``1 - alpha_bar_t``, computed from the betas without cancellation.

        ``1 - alpha_bar_t = -expm1(sum_{s<=t} log1p(-beta_s))``. Subtracting the stored
        float32 ``alpha_bar_0 = 1 - beta_0`` from 1 would lose ``log10(1/beta_0)`` digits
        (4 of float32's 7 for ``beta_0 = 1e-4``); the betas keep them.
        """
        return -jnp.expm1(jnp.cumsum(jnp.log1p(-self.betas)))

    def alpha(self, t: jax.Array) -> jax.Array:
        """Signal scale ``alpha_t = sqrt(alpha_bar_t)`` at integer ``t`` (any shape)."""
        return jnp.sqrt(self.alpha_bars[t])

    def sigma(self, t: jax.Array) -> jax.Array:
        """Noise scale ``sigma_t = sqrt(1 - alpha_bar_t)`` at integer ``t`` (any shape)."""
        return jnp.sqrt(self.one_minus_alpha_bars[t])

    def log_snr(self, t: jax.Array) -> jax.Array:
        """``log SNR_t = log alpha_bar_t - log(1 - alpha_bar_t)`` at integer ``t``.

        ``-inf`` where ``alpha_bar_t = 0`` (a zero-terminal-SNR schedule at ``t = T-1``).
        """
        return jnp.log(self.alpha_bars[t]) - jnp.log(self.one_minus_alpha_bars[t])


def _default_dtype(dtype: Any) -> Any:
    return jnp.float32 if dtype is None else dtype


def _from_betas64(betas: np.ndarray, dtype: Any) -> Schedule:
    """Builds a schedule from float64 betas without validation (internal)."""
    betas = np.asarray(betas, dtype=np.float64)
    alphas = 1.0 - betas
    # alpha_bar_t = prod_{s<=t} alpha_s, accumulated in float64 and cast once
    alpha_bars = np.cumprod(alphas)
    dtype = _default_dtype(dtype)
    return Schedule(
        betas=jnp.asarray(betas, dtype=dtype),
        alphas=jnp.asarray(alphas, dtype=dtype),
        alpha_bars=jnp.asarray(alpha_bars, dtype=dtype),
    )


def from_betas(betas: Any, *, dtype: Any = None) -> Schedule:
    """A schedule from explicit per-step variances.

    Args:
      betas: ``(T,)`` with every ``beta_t`` in the open interval ``(0, 1)``.
      dtype: dtype of the fields (default float32); the products are taken in float64.

    Returns:
      The :class:`Schedule`.

    Raises:
      ValueError: if ``betas`` is not 1-D and non-empty, or a value lies outside (0, 1).

    Example:
      >>> s = from_betas(jnp.array([0.1, 0.2]))  # alpha_bar_t = prod_s (1 - beta_s)
      >>> [round(float(a), 4) for a in s.alpha_bars]
      [0.9, 0.72]
    """
    b = np.asarray(betas, dtype=np.float64)
    if b.ndim != 1 or b.shape[0] < 1:
        raise ValueError(f"betas must have shape (T,) with T >= 1, got {b.shape}")
    checks.probability("betas", b, low_open=True, high_open=True)
    return _from_betas64(b, dtype)


def linear(
    num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02, *, dtype: Any = None
) -> Schedule:
    """The linear schedule of Ho et al. (2020), sec. 4.

        beta_t = beta_start + (beta_end - beta_start) t / (T - 1),   t = 0 .. T-1

    Args:
      num_steps: T >= 1.
      beta_start: ``beta_0`` in (0, 1).
      beta_end: ``beta_{T-1}`` in (0, 1).
      dtype: dtype of the fields (default float32).

    Example:
      >>> s = linear(1000)
      >>> s.alpha_bars.shape
      (1000,)
    """
    num_steps = checks.positive_int("num_steps", num_steps)
    checks.probability("beta_start", beta_start, low_open=True, high_open=True)
    checks.probability("beta_end", beta_end, low_open=True, high_open=True)
    betas = np.linspace(beta_start, beta_end, num_steps, dtype=np.float64)
    return from_betas(betas, dtype=dtype)


def _betas_from_alpha_bar_fn(fn: Any, num_steps: int, max_beta: float = 0.999) -> np.ndarray:
    """Discretises a continuous ``alpha_bar(u)``, ``u`` in [0, 1], into T betas.

    ``alpha_bar[t] = fn((t + 1) / T) / fn(0)``, hence ``beta_t = 1 - fn((t+1)/T) / fn(t/T)``
    (Nichol & Dhariwal 2021, sec. 3.2), clipped at ``max_beta`` to avoid the singularity
    at ``u = 1``.
    """
    u = np.arange(num_steps + 1, dtype=np.float64) / num_steps  # (T+1,)
    f = fn(u)
    betas = 1.0 - f[1:] / f[:-1]
    return np.clip(betas, 0.0, max_beta)


def cosine(num_steps: int = 1000, s: float = 0.008, *, dtype: Any = None) -> Schedule:
    """The cosine schedule of Nichol & Dhariwal (2021), eq. 17.

        alpha_bar(u) = f(u) / f(0),  f(u) = cos(((u + s) / (1 + s)) pi / 2)^2
        beta_t = min(1 - alpha_bar((t+1)/T) / alpha_bar(t/T), 0.999)

    Args:
      num_steps: T >= 1.
      s: small offset >= 0 that keeps ``beta_0`` from being vanishingly small.
      dtype: dtype of the fields (default float32).

    Example:
      >>> s = cosine(1000)
      >>> round(float(s.betas[-1]), 3), bool(jnp.all(jnp.diff(s.alpha_bars) < 0))  # beta <= 0.999
      (0.999, True)
    """
    num_steps = checks.positive_int("num_steps", num_steps)
    checks.nonnegative("s", s)

    def f(u: np.ndarray) -> np.ndarray:
        return np.cos((u + s) / (1.0 + s) * np.pi / 2.0) ** 2  # eq. 17

    betas = _betas_from_alpha_bar_fn(f, num_steps)
    # At s = 0 the first beta is 1 - cos^2(pi / 2T) > 0; clip from below all the same so
    # that from_betas' open-interval check holds for every s.
    betas = np.maximum(betas, np.finfo(np.float64).tiny)
    return from_betas(betas, dtype=dtype)


def sigmoid(
    num_steps: int = 1000,
    start: float = -3.0,
    end: float = 3.0,
    tau: float = 1.0,
    *,
    dtype: Any = None,
) -> Schedule:
    """The sigmoid schedule of Jabri et al. (2022) / Chen (2023), Algorithm 1.

        v(u) = sigmoid((u (end - start) + start) / tau)
        alpha_bar(u) = (v(1) - v(u)) / (v(1) - v(0))        (Chen 2023, Alg. 1)
        beta_t = min(1 - alpha_bar((t+1)/T) / alpha_bar(t/T), 0.999)

    Args:
      num_steps: T >= 1.
      start, end: the sigmoid's input range, ``start < end``.
      tau: temperature > 0; larger tau gives a flatter schedule.
      dtype: dtype of the fields (default float32).

    Example:
      >>> s = sigmoid(100)
      >>> s.betas.shape, bool(jnp.all(jnp.diff(s.alpha_bars) < 0))
      ((100,), True)
    """
    num_steps = checks.positive_int("num_steps", num_steps)
    if not start < end:
        raise ValueError(f"start must be < end, got start={start!r}, end={end!r}")
    checks.positive("tau", tau)

    def sig(z: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-z))

    v_start, v_end = sig(start / tau), sig(end / tau)

    def f(u: np.ndarray) -> np.ndarray:
        return (v_end - sig((u * (end - start) + start) / tau)) / (v_end - v_start)

    return from_betas(_betas_from_alpha_bar_fn(f, num_steps), dtype=dtype)


def rescale_zero_terminal_snr(schedule: Schedule) -> Schedule:
    """Rescales a schedule to zero terminal SNR (Lin et al. 2024, Algorithm 1).

    ``sqrt(alpha_bar)`` is shifted so that its last value is 0 and scaled so that its first
    value is unchanged; betas are recomputed from the new alpha_bars, so the last beta is
    exactly 1:

        a = sqrt(alpha_bar);  a <- (a - a[T-1]) * a[0] / (a[0] - a[T-1])
        alpha_bar' = a^2;  alpha'_0 = alpha_bar'_0,  alpha'_t = alpha_bar'_t / alpha_bar'_{t-1}

    Warning:
      ``alpha_bar[T-1] = 0`` makes noise prediction uninformative at ``t = T-1``:
      ``x_{T-1} = eps`` exactly, and ``x_0 = (x_t - sigma_t eps) / alpha_t`` is ``0/0``.
      The samplers in :mod:`genjax.diffusion.sample` take ``x0_hat = 0`` where
      ``alpha_t = 0`` (the limit of ``(x_t - sigma_t eps)/alpha_t`` for the exact
      ``eps = x_t``; the prior mean of centred data). Lin et al. (2024) train such
      schedules with v-prediction for this reason.

    Args:
      schedule: a schedule with ``alpha_bar`` strictly decreasing and ``alpha_bar[T-1] <
        alpha_bar[0]``; its dtype is kept.

    Returns:
      The rescaled :class:`Schedule` (``betas[T-1] = 1``, ``alpha_bars[T-1] = 0``).

    Example:
      >>> s = rescale_zero_terminal_snr(linear(1000))
      >>> float(s.alpha_bars[-1])  # zero SNR at t = T - 1: x_T is pure noise
      0.0
    """
    checks.instance("schedule", schedule, Schedule)
    dtype = schedule.alpha_bars.dtype
    betas = np.asarray(schedule.betas, dtype=np.float64)
    if betas.shape[0] < 2:
        raise ValueError(f"schedule must have at least 2 steps, got {betas.shape[0]}")
    abar = np.cumprod(1.0 - betas)  # float64 recomputation of alpha_bar
    a = np.sqrt(abar)
    a0, a_last = a[0], a[-1]
    if not a_last < a0:
        raise ValueError("schedule must have alpha_bar[T-1] < alpha_bar[0]")
    a = (a - a_last) * a0 / (a0 - a_last)  # Algorithm 1: shift to 0 at T-1, keep a[0]
    abar = a**2
    alphas = np.concatenate([abar[:1], abar[1:] / abar[:-1]])
    new_betas = 1.0 - alphas
    return Schedule(
        betas=jnp.asarray(new_betas, dtype=dtype),
        alphas=jnp.asarray(alphas, dtype=dtype),
        alpha_bars=jnp.asarray(abar, dtype=dtype),
    )


def karras_sigmas(
    num_steps: int,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    rho: float = 7.0,
    *,
    dtype: Any = None,
) -> jax.Array:
    """The EDM noise levels of Karras et al. (2022), eq. 5, with a trailing zero.

        sigma_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho,
        i = 0 .. N-1,   sigma_N = 0

    Args:
      num_steps: N >= 1 (with N = 1 the single level is ``sigma_max``).
      sigma_min: smallest nonzero level, ``0 < sigma_min <= sigma_max``.
      sigma_max: largest level.
      rho: the warping exponent > 0 (7 in the paper).
      dtype: dtype of the result (default float32).

    Returns:
      ``(N + 1,)`` decreasing noise levels ending in 0.

    Example:
      >>> sig = karras_sigmas(5)
      >>> round(float(sig[0]), 4), round(float(sig[4]), 4)  # sigma_max down to sigma_min
      (80.0, 0.002)
    """
    num_steps = checks.positive_int("num_steps", num_steps)
    checks.positive("sigma_min", sigma_min)
    checks.in_range("sigma_max", sigma_max, sigma_min)
    checks.positive("rho", rho)
    frac = np.arange(num_steps, dtype=np.float64) / max(num_steps - 1, 1)  # i / (N - 1)
    inv_max, inv_min = sigma_max ** (1.0 / rho), sigma_min ** (1.0 / rho)
    sigmas = (inv_max + frac * (inv_min - inv_max)) ** rho  # eq. 5
    sigmas = np.concatenate([sigmas, [0.0]])
    return jnp.asarray(sigmas, dtype=_default_dtype(dtype))
