"""NumPy float64 oracle of progressive distillation (Salimans & Ho 2022), no jax.

Written from the equations, one example at a time, for tests to hold
:mod:`genjax.diffusion.distillation` to. Notation: ``ab[t] = alpha_bar_t`` for integer
``t`` in ``[0, T)`` and ``ab[-1] = 1`` (the clean data); ``alpha = sqrt(ab)``,
``sigma = sqrt(1 - ab)``.

* trailing DDIM grid with M steps: ``t_j = T - 1 - floor(j T / M)``; a student of N steps
  at step i runs from ``t_{2i}`` to ``t_{2i+2}`` of the 2N grid, the teacher through
  ``t_{2i+1}``;
* DDIM, eta = 0 (Song et al. 2021, eq. 12): ``x0 = (z - sigma eps) / alpha``,
  ``z' = alpha' x0 + sigma' eps``;
* target (Salimans & Ho 2022, eq. 8): the ``x`` that solves
  ``alpha'' x + sigma'' (z - alpha x) / sigma = z''``;
* weights (sec. 4): ``max(SNR, 1)`` or ``SNR + 1``, ``SNR = ab / (1 - ab)``;
* loss: the batch mean of ``w * mean_d (x~ - x_hat)^2``.

Every ``eps_fn`` / ``net_fn`` here is a NumPy function ``(x (batch, D), t (batch,)) ->
(batch, D)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "grid_time",
    "student_times",
    "ddim_step",
    "distillation_target",
    "weight",
    "x_prediction",
    "distillation_loss",
]

ArrayFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _ab(alpha_bars: np.ndarray, t: int) -> float:
    """``alpha_bar_t`` with ``alpha_bar_{-1} = 1``."""
    return 1.0 if t < 0 else float(alpha_bars[t])


def grid_time(num_train_steps: int, num_steps: int, j: int) -> int:
    """``t_j = T - 1 - floor(j T / M)`` of the trailing M-step grid (``j = M``: -1)."""
    return num_train_steps - 1 - (j * num_train_steps) // num_steps


def student_times(num_train_steps: int, num_student_steps: int, i: int) -> tuple[int, int, int]:
    """``(t, t', t'')`` of student step ``i``: times ``2i, 2i+1, 2i+2`` of the 2N grid."""
    m = 2 * num_student_steps
    return tuple(grid_time(num_train_steps, m, j) for j in (2 * i, 2 * i + 1, 2 * i + 2))


def ddim_step(
    eps_fn: ArrayFn, z: np.ndarray, t: int, t_prev: int, alpha_bars: np.ndarray
) -> np.ndarray:
    """One deterministic DDIM step of one example ``z: (D,)`` from ``t`` to ``t_prev``."""
    a, s = np.sqrt(_ab(alpha_bars, t)), np.sqrt(1.0 - _ab(alpha_bars, t))
    a_p, s_p = np.sqrt(_ab(alpha_bars, t_prev)), np.sqrt(1.0 - _ab(alpha_bars, t_prev))
    eps = eps_fn(z[None], np.array([t]))[0]
    x0 = (z - s * eps) / a
    return a_p * x0 + s_p * eps


def distillation_target(
    eps_fn: ArrayFn,
    z: np.ndarray,
    index: np.ndarray,
    alpha_bars: np.ndarray,
    num_student_steps: int,
) -> np.ndarray:
    """``x~`` of eq. 8 for every example: ``z: (batch, D)``, ``index: (batch,)``."""
    z = np.asarray(z, np.float64)
    num_train_steps = len(alpha_bars)
    out = np.empty_like(z)
    for b in range(z.shape[0]):
        t, t_mid, t_next = student_times(num_train_steps, num_student_steps, int(index[b]))
        z_mid = ddim_step(eps_fn, z[b], t, t_mid, alpha_bars)
        z_next = ddim_step(eps_fn, z_mid, t_mid, t_next, alpha_bars)
        a, s = np.sqrt(_ab(alpha_bars, t)), np.sqrt(1.0 - _ab(alpha_bars, t))
        a2, s2 = np.sqrt(_ab(alpha_bars, t_next)), np.sqrt(1.0 - _ab(alpha_bars, t_next))
        # alpha'' x + (sigma''/sigma)(z - alpha x) = z''  =>  x (alpha'' - sigma'' alpha / sigma)
        # = z'' - (sigma''/sigma) z.
        out[b] = (z_next - (s2 / s) * z[b]) / (a2 - (s2 / s) * a)
    return out


def weight(alpha_bars: np.ndarray, t: np.ndarray, weighting: str) -> np.ndarray:
    """``max(SNR_t, 1)`` (``"truncated_snr"``) or ``SNR_t + 1`` (``"snr_plus_one"``)."""
    ab = np.asarray(alpha_bars, np.float64)[np.asarray(t)]
    snr = ab / (1.0 - ab)
    if weighting == "truncated_snr":
        return np.maximum(snr, 1.0)
    if weighting == "snr_plus_one":
        return snr + 1.0
    raise ValueError(f"weighting must be 'truncated_snr' or 'snr_plus_one', got {weighting!r}")


def x_prediction(
    out: np.ndarray, z: np.ndarray, t: np.ndarray, alpha_bars: np.ndarray, prediction: str
) -> np.ndarray:
    """The data prediction from a network output: ``v``, ``x0`` or ``eps``.

    ``v = alpha eps - sigma x`` and ``z = alpha x + sigma eps`` give ``x = alpha z - sigma v``;
    ``eps`` gives ``x = (z - sigma eps) / alpha``.
    """
    ab = np.asarray(alpha_bars, np.float64)[np.asarray(t)][:, None]  # (batch, 1)
    a, s = np.sqrt(ab), np.sqrt(1.0 - ab)
    if prediction == "v":
        return a * z - s * out
    if prediction == "x0":
        return out
    return (z - s * out) / a


def distillation_loss(
    net_fn: ArrayFn,
    x0: np.ndarray,
    eps: np.ndarray,
    index: np.ndarray,
    teacher_eps_fn: ArrayFn,
    alpha_bars: np.ndarray,
    num_student_steps: int,
    prediction: str = "v",
    weighting: str = "truncated_snr",
) -> float:
    """The distillation loss at given data ``x0: (batch, D)``, noise and student steps."""
    x0, eps = np.asarray(x0, np.float64), np.asarray(eps, np.float64)
    num_train_steps = len(alpha_bars)
    t = np.array([student_times(num_train_steps, num_student_steps, int(i))[0] for i in index])
    ab = np.asarray(alpha_bars, np.float64)[t][:, None]
    z = np.sqrt(ab) * x0 + np.sqrt(1.0 - ab) * eps  # q(z_t | x) (DDPM eq. 4)
    x_tilde = distillation_target(teacher_eps_fn, z, index, alpha_bars, num_student_steps)
    x_hat = x_prediction(net_fn(z, t), z, t, alpha_bars, prediction)
    mse = np.mean((x_tilde - x_hat) ** 2, axis=1)
    return float(np.mean(weight(alpha_bars, t, weighting) * mse))
