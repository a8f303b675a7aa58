"""Ready-made Gaussian mixtures: the 2-D ring and grid, and any 1-D mixture.

The toy targets of the diffusion, flow and MCMC literature (e.g. the 8-mode ring of
Metz et al. 2017, "Unrolled generative adversarial networks", sec. 3.1; the grid of
Srivastava et al. 2017, "VEEGAN"), each a validated :class:`GaussianMixture`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genjax import checks
from genjax.targets.mixture import GaussianMixture

__all__ = ["ring", "grid", "mixture_1d"]


def _isotropic_mixture(means: np.ndarray, std: float, dtype: Any) -> GaussianMixture:
    k, d = means.shape
    covs = np.broadcast_to(std**2 * np.eye(d), (k, d, d))  # (K, D, D), std^2 I
    return GaussianMixture.create(np.full((k,), 1.0 / k), means, covs, dtype=dtype)


def ring(
    n_modes: int = 8, radius: float = 4.0, std: float = 0.3, *, dtype: Any = None
) -> GaussianMixture:
    """Equal-weight 2-D mixture with modes on a circle.

    ``mu_k = radius (cos 2 pi k / n_modes, sin 2 pi k / n_modes)``, ``Sigma_k = std^2 I_2``.

    Raises:
      ValueError: if ``n_modes < 1``, ``radius < 0`` or ``std <= 0``.

    Example:
      >>> target = ring(n_modes=4, radius=2.0, std=0.1)
      >>> target.means.shape, [round(v, 4) for v in jnp.linalg.norm(target.means, axis=1).tolist()]
      ((4, 2), [2.0, 2.0, 2.0, 2.0])
    """
    n = checks.positive_int("n_modes", n_modes)
    checks.nonnegative("radius", radius)
    checks.positive("std", std)
    angles = 2.0 * np.pi * np.arange(n) / n
    means = radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1)  # (K, 2)
    return _isotropic_mixture(means, std, dtype)


def grid(
    n_per_side: int = 4, spacing: float = 2.0, std: float = 0.2, *, dtype: Any = None
) -> GaussianMixture:
    """Equal-weight 2-D mixture with ``n_per_side**2`` modes on a square grid centred at 0.

    ``mu_{ij} = spacing (i - (n-1)/2, j - (n-1)/2)``, ``Sigma = std^2 I_2``.

    Raises:
      ValueError: if ``n_per_side < 1``, ``spacing <= 0`` or ``std <= 0``.

    Example:
      >>> grid(n_per_side=3).means.shape  # 3 x 3 modes in 2-D
      (9, 2)
    """
    n = checks.positive_int("n_per_side", n_per_side)
    checks.positive("spacing", spacing)
    checks.positive("std", std)
    ticks = spacing * (np.arange(n) - (n - 1) / 2.0)  # (n,)
    gx, gy = np.meshgrid(ticks, ticks, indexing="ij")
    means = np.stack([gx.ravel(), gy.ravel()], axis=-1)  # (n^2, 2)
    return _isotropic_mixture(means, std, dtype)


def mixture_1d(weights: Any, means: Any, stds: Any, *, dtype: Any = None) -> GaussianMixture:
    """A 1-D mixture ``sum_k w_k N(x; m_k, s_k^2)`` as a ``GaussianMixture`` with ``D = 1``.

    Args:
      weights: ``(K,)`` positive, summing to one.
      means: ``(K,)``.
      stds: ``(K,)`` positive standard deviations.

    Raises:
      ValueError: naming the argument whose shape or value is invalid.

    Example:
      >>> target = mixture_1d([0.5, 0.5], [-1.0, 1.0], [1.0, 1.0])
      >>> round(float(target.log_prob(jnp.zeros((1, 1)))[0]), 4)  # log N(0; 1, 1)
      -1.4189
    """
    w, m, s = (np.asarray(a, dtype=np.float64) for a in (weights, means, stds))
    if w.ndim != 1 or w.shape[0] < 1:
        raise ValueError(f"weights must have shape (K,) with K >= 1, got {w.shape}")
    checks.shape("means", m, w.shape)
    checks.shape("stds", s, w.shape)
    checks.positive("stds", s)
    return GaussianMixture.create(w, m[:, None], (s**2)[:, None, None], dtype=dtype)
