"""Calibrated statistical checks of samplers: moment z-tests with ESS, chi-square, ESS.

References:
  Geyer (1992), "Practical Markov chain Monte Carlo", Statistical Science 7(4), sec. 3.3.
  Cochran (1954), "Some methods for strengthening the common chi^2 tests", Biometrics.
  Press et al., Numerical Recipes (3rd ed.), sec. 6.2 (incomplete gamma function).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

__all__ = [
    "MomentTestResult",
    "moment_ztest",
    "ChiSquareResult",
    "chi_square_test",
    "effective_sample_size",
    "normal_sf",
    "normal_isf",
    "chi2_sf",
]


# ---------------------------------------------------------------------------------------
# Distribution functions (no SciPy)
# ---------------------------------------------------------------------------------------


def normal_sf(z: float) -> float:
    """Standard normal upper tail ``P(Z > z) = erfc(z / sqrt 2) / 2`` (accurate in the tail)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def normal_isf(p: float) -> float:
    """Inverse of :func:`normal_sf`: the ``z`` with ``P(Z > z) = p``, for ``0 < p < 1``.

    Bisection on the monotone ``normal_sf`` (200 halvings of [-40, 40] reach float64
    resolution); called a handful of times per test, so speed is irrelevant.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie in (0, 1), got {p!r}")
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if normal_sf(mid) > p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _gamma_q(a: float, x: float) -> float:
    """Regularised upper incomplete gamma ``Q(a, x) = Gamma(a, x) / Gamma(a)``.

    Series for ``P`` when ``x < a + 1``, Lentz's continued fraction for ``Q`` otherwise
    (Numerical Recipes, sec. 6.2); each converges fast in its region.
    """
    if x <= 0.0:
        return 1.0
    log_prefactor = -x + a * math.log(x) - math.lgamma(a)  # log(x^a e^{-x} / Gamma(a))
    if x < a + 1.0:
        # P(a, x) = x^a e^{-x} / Gamma(a) * sum_n x^n / (a (a+1) ... (a+n))
        term = total = 1.0 / a
        ap = a
        for _ in range(10_000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefactor))
    # Q(a, x) = x^a e^{-x} / Gamma(a) * 1 / (x + 1 - a - 1 (1 - a) / (x + 3 - a - ...))
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return math.exp(log_prefactor) * h


def chi2_sf(x: float, dof: int) -> float:
    """Chi-square upper tail ``P(X > x) = Q(dof / 2, x / 2)`` for ``dof >= 1``."""
    if dof < 1:
        raise ValueError(f"dof must be >= 1, got {dof!r}")
    return _gamma_q(0.5 * dof, 0.5 * x)


# ---------------------------------------------------------------------------------------
# Moment z-test
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MomentTestResult:
    """Outcome of :func:`moment_ztest`.

    Attributes:
      passed: no z-statistic exceeded the threshold.
      z_mean: ``(D,)`` z-statistics of the sample means.
      z_var: ``(D,)`` z-statistics of the sample variances, or ``None``.
      threshold: the Bonferroni-corrected two-sided critical value.
      p_value: Bonferroni family-wise p-value, ``min(1, num_tests * min_i p_i)``.
      num_tests: number of z-tests (``D`` or ``2 D``).
    """

    passed: bool
    z_mean: np.ndarray
    z_var: np.ndarray | None
    threshold: float
    p_value: float
    num_tests: int

    def __bool__(self) -> bool:
        """Truthy iff the test passed, so ``assert moment_ztest(...)`` reads naturally."""
        return self.passed


def moment_ztest(
    samples: Any,
    mean: Any,
    cov: Any,
    *,
    alpha: float = 1e-3,
    ess: Any = None,
    check_variance: bool = False,
    raise_on_failure: bool = True,
) -> MomentTestResult:
    """Z-test the sample mean (and optionally variance) of each dimension against the truth.

    For each dimension ``d``: ``z_d = (xbar_d - mean_d) / sqrt(cov_dd / n_eff)``, which is
    approximately ``N(0, 1)`` for correct samples (central limit theorem; the exact
    ``cov`` is used, not the sample's). With ``check_variance``, also
    ``(s2_d - cov_dd) / sqrt((m4_d - s2_d^2) / n_eff)`` with ``m4`` the sample fourth
    central moment. The test rejects when any ``|z|`` exceeds ``z* = Phi^{-1}(1 - alpha /
    (2 T))`` for ``T`` tests (Bonferroni), so its false-alarm rate on correct samples is at
    most ``alpha`` (asymptotically) whatever the correlation between dimensions.

    Power: a bias of ``delta`` in dimension ``d`` is detected with high probability once
    ``|delta| > (z* + 2) sqrt(cov_dd / n_eff)``; e.g. ``z* = 3.29`` for ``alpha = 1e-3``,
    ``D = 1``.

    Args:
      samples: ``(n, D)`` draws (``(n,)`` is read as ``D = 1``).
      mean: ``(D,)`` exact mean.
      cov: ``(D, D)`` exact covariance (only the diagonal is used).
      alpha: family-wise false-alarm probability, in (0, 1).
      ess: effective sample size -- ``None`` (independent draws, ``n_eff = n``), a scalar,
        or ``(D,)`` per dimension (e.g. from :func:`effective_sample_size`).
      check_variance: also test the variances.
      raise_on_failure: raise ``AssertionError`` on rejection (default) or return.

    Returns:
      a :class:`MomentTestResult`.

    Raises:
      ValueError: on bad shapes or arguments.
      AssertionError: on rejection, if ``raise_on_failure``.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"samples must have shape (n, D) with n >= 2, got {np.shape(samples)}")
    n, d = x.shape
    mu = np.asarray(mean, dtype=np.float64).reshape(-1)
    if mu.shape != (d,):
        raise ValueError(f"mean must have shape (D={d},), got {np.shape(mean)}")
    c = np.asarray(cov, dtype=np.float64)
    if c.shape != (d, d) and not (d == 1 and c.size == 1):
        raise ValueError(f"cov must have shape (D={d}, D={d}), got {c.shape}")
    var = np.diag(c.reshape(d, d)).copy()
    if np.any(var <= 0) or not np.all(np.isfinite(var)):
        raise ValueError(f"cov must have a positive finite diagonal, got {var}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    if ess is None:
        n_eff = np.full((d,), float(n))
    else:
        n_eff = np.broadcast_to(np.asarray(ess, dtype=np.float64), (d,)).copy()
        if np.any(n_eff <= 0) or not np.all(np.isfinite(n_eff)):
            raise ValueError(f"ess must be positive and finite, got {ess!r}")

    xbar = x.mean(axis=0)
    z_mean = (xbar - mu) / np.sqrt(var / n_eff)  # ~ N(0, 1) under H0
    zs = [z_mean]
    z_var = None
    if check_variance:
        centred = x - xbar
        s2 = np.sum(centred**2, axis=0) / (n - 1)
        m4 = np.mean(centred**4, axis=0)
        # Var(s2) ~= (mu4 - sigma^4) / n  (delta method, any distribution with 4 moments)
        se = np.sqrt(np.maximum(m4 - s2**2, 1e-300) / n_eff)
        z_var = (s2 - var) / se
        zs.append(z_var)
    z_all = np.concatenate(zs)
    num_tests = z_all.shape[0]
    threshold = normal_isf(alpha / (2 * num_tests))  # two-sided, Bonferroni
    worst = float(np.max(np.abs(z_all)))
    p_value = min(1.0, num_tests * 2.0 * normal_sf(worst))
    passed = bool(worst <= threshold)
    result = MomentTestResult(passed, z_mean, z_var, threshold, p_value, num_tests)
    if not passed and raise_on_failure:
        raise AssertionError(
            f"moment z-test rejected (alpha={alpha}): max |z| = {worst:.2f} > {threshold:.2f}; "
            f"z_mean = {np.round(z_mean, 2)}"
            + ("" if z_var is None else f", z_var = {np.round(z_var, 2)}")
            + f"; sample mean {np.round(xbar, 4)} vs exact {np.round(mu, 4)}"
        )
    return result


# ---------------------------------------------------------------------------------------
# Chi-square goodness of fit
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ChiSquareResult:
    """Outcome of :func:`chi_square_test`.

    Attributes:
      passed: ``p_value >= alpha``.
      statistic: Pearson's ``sum (O - E)^2 / E`` over the pooled cells.
      dof: degrees of freedom, pooled cells minus one.
      p_value: ``P(chi2_dof > statistic)``.
      num_cells: number of cells after pooling.
    """

    passed: bool
    statistic: float
    dof: int
    p_value: float
    num_cells: int

    def __bool__(self) -> bool:
        """Truthy iff the test passed, so ``assert moment_ztest(...)`` reads naturally."""
        return self.passed


def _pool_cells(expected: np.ndarray, min_expected: float) -> list[np.ndarray]:
    # Walk the cells from the smallest expected count up, closing a group once its
    # expected count reaches min_expected; a short last group joins the one before it.
    order = np.argsort(expected, kind="stable")
    groups: list[list[int]] = []
    current: list[int] = []
    mass = 0.0
    for i in order:
        current.append(int(i))
        mass += expected[i]
        if mass >= min_expected:
            groups.append(current)
            current, mass = [], 0.0
    if current:
        if groups:
            groups[-1].extend(current)
        else:
            groups.append(current)
    return [np.asarray(g) for g in groups]


def chi_square_test(
    counts: Any,
    probs: Any,
    *,
    alpha: float = 1e-3,
    min_expected: float = 5.0,
    raise_on_failure: bool = True,
) -> ChiSquareResult:
    """Pearson's chi-square test of observed category counts against exact probabilities.

    ``X^2 = sum_c (O_c - N p_c)^2 / (N p_c)`` is approximately ``chi2(C - 1)`` for correct
    samples once every expected count ``N p_c`` is at least about 5 (Cochran 1954), so
    cells below ``min_expected`` are pooled: from the least expected up, cells are merged
    until each group reaches ``min_expected``. Cells with ``p_c = 0`` are dropped; a
    count in one is an impossible outcome and fails the test outright (``p_value = 0``).
    False-alarm rate on correct samples: ``alpha`` (asymptotically).

    Args:
      counts: ``(C,)`` non-negative observed counts (e.g. ``np.bincount``).
      probs: ``(C,)`` exact probabilities, non-negative, summing to 1.
      alpha: false-alarm probability, in (0, 1).
      min_expected: pooling threshold for expected counts.
      raise_on_failure: raise ``AssertionError`` on rejection (default) or return.

    Returns:
      a :class:`ChiSquareResult`.

    Raises:
      ValueError: on bad arguments, or too few samples to form two cells.
      AssertionError: on rejection, if ``raise_on_failure``.
    """
    o = np.asarray(counts, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    if o.ndim != 1 or o.shape[0] < 2:
        raise ValueError(f"counts must have shape (C,) with C >= 2, got {o.shape}")
    if p.shape != o.shape:
        raise ValueError(f"probs must have the shape of counts {o.shape}, got {p.shape}")
    if np.any(o < 0) or not np.all(np.isfinite(o)) or np.any(o != np.round(o)):
        raise ValueError("counts must be non-negative integers")
    if np.any(p < 0) or not np.all(np.isfinite(p)) or abs(p.sum() - 1.0) > 1e-6:
        raise ValueError(f"probs must be non-negative and sum to 1, got sum {p.sum()!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    if not min_expected > 0:
        raise ValueError(f"min_expected must be > 0, got {min_expected!r}")
    total = o.sum()
    if total < 1:
        raise ValueError("counts must contain at least one observation")

    impossible = (p == 0) & (o > 0)
    if np.any(impossible):
        result = ChiSquareResult(False, math.inf, 0, 0.0, int(np.sum(p > 0)))
        if raise_on_failure:
            raise AssertionError(
                f"chi-square test: counts in zero-probability cells {np.flatnonzero(impossible)}"
            )
        return result
    keep = p > 0
    o, p = o[keep], p[keep]
    expected = total * p  # E_c = N p_c
    groups = _pool_cells(expected, min_expected)
    if len(groups) < 2:
        raise ValueError(
            f"too few observations ({int(total)}) to form two cells with expected count >= "
            f"{min_expected}; draw more samples"
        )
    obs_g = np.array([o[g].sum() for g in groups])
    exp_g = np.array([expected[g].sum() for g in groups])
    stat = float(np.sum((obs_g - exp_g) ** 2 / exp_g))  # Pearson's X^2
    dof = len(groups) - 1
    p_value = chi2_sf(stat, dof)
    passed = p_value >= alpha
    result = ChiSquareResult(passed, stat, dof, p_value, len(groups))
    if not passed and raise_on_failure:
        raise AssertionError(
            f"chi-square test rejected (alpha={alpha}): X^2 = {stat:.2f} on {dof} dof, "
            f"p = {p_value:.3g}"
        )
    return result


# ---------------------------------------------------------------------------------------
# Effective sample size
# ---------------------------------------------------------------------------------------


def _ess_1d(x: np.ndarray) -> float:
    n = x.shape[0]
    centred = x - x.mean()
    if not np.any(centred != 0):
        # A constant (stuck) chain carries the information of a single draw.
        return 1.0
    # Autocovariance by FFT, zero-padded to avoid circular wrap: gamma_t = 1/n sum x_i x_{i+t}
    size = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(centred, size)
    acov = np.fft.irfft(f * np.conj(f), size)[:n] / n
    rho = acov / acov[0]  # rho_0 = 1
    # Geyer (1992) sec. 3.3: Gamma_k = rho_{2k} + rho_{2k+1} is positive and decreasing for
    # a reversible chain; sum the initial positive run, made monotone.
    num_pairs = n // 2
    pairs = rho[: 2 * num_pairs].reshape(num_pairs, 2).sum(axis=1)  # Gamma_k
    positive = pairs > 0
    stop = num_pairs if np.all(positive) else int(np.argmin(positive))
    gamma = np.minimum.accumulate(pairs[:stop])  # initial monotone sequence
    tau = -1.0 + 2.0 * float(np.sum(gamma))  # integrated autocorrelation time
    # Antithetic chains can drive the estimate to (or below) zero; cap the ESS at
    # n log10(n) as Stan does, which keeps it finite and positive.
    return float(n / max(tau, 1.0 / math.log10(n)))


def effective_sample_size(chain: Any) -> float | np.ndarray:
    """Effective sample size ``n / tau`` of a Markov chain, per dimension.

    ``tau = 1 + 2 sum_{t >= 1} rho_t`` is estimated by Geyer's initial monotone sequence:
    with ``Gamma_k = rho_{2k} + rho_{2k+1}``, ``tau = -1 + 2 sum_{k < K} Gamma_k`` where
    ``K`` is the first ``k`` with ``Gamma_k <= 0`` and the ``Gamma_k`` are replaced by their
    running minimum. Independent draws give about ``n``; positively correlated ones less;
    antithetic ones may give more than ``n``, capped at ``n log10(n)`` (as Stan). A
    constant chain gives 1.

    Args:
      chain: ``(n,)`` or ``(n, D)`` draws in chain order, ``n >= 4``.

    Returns:
      a float for ``(n,)`` input, an ``(D,)`` array for ``(n, D)`` input.
    """
    x = np.asarray(chain, dtype=np.float64)
    if x.ndim not in (1, 2) or x.shape[0] < 4:
        raise ValueError(f"chain must have shape (n,) or (n, D) with n >= 4, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("chain must be finite")
    if x.ndim == 1:
        return _ess_1d(x)
    return np.array([_ess_1d(x[:, j]) for j in range(x.shape[1])])
