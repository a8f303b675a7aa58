"""Testing helpers: tolerances, oracle comparison, statistical checks of samplers.

What genjax's own tests use, and what a user checking a new sampler can use:

* :func:`tolerance` / :func:`assert_close_to_oracle` -- the one tolerance table (by dtype
  and by how much computation separates the two answers), applied to pytrees.
* :func:`moment_ztest` -- Bonferroni-corrected z-tests of sample means (optionally
  variances) against the exact moments of a target, with an effective sample size for
  correlated (MCMC) draws.
* :func:`chi_square_test` -- Pearson's goodness-of-fit test of category counts against
  exact probabilities, pooling cells whose expected count is below 5 (Cochran 1954).
* :func:`effective_sample_size` -- Geyer's (1992) initial positive / monotone sequence
  estimator from the autocorrelation function.
* :func:`count_compilations` and the conformance suites :func:`check_sampler` /
  :func:`check_loss` (and the bijector suite in :mod:`genjax.flows`' tests' terms): every
  family runs its samplers and losses through the same checks -- determinism under a key,
  ``*_from_noise`` = sampler, new weights compile nothing, dtype kept, jit = eager, finite
  gradients that agree with finite differences, bad arguments named.

The statistical tests are calibrated: on exact samples they fail with probability at
most ``alpha`` (asymptotically, by the central limit theorem), so with the default
``alpha = 1e-3`` and fixed seeds a correct sampler's test is stable, and a biased sampler
whose bias is several standard errors is caught. They raise ``AssertionError`` on
rejection (pass ``raise_on_failure=False`` to get the result instead) and return a
result object otherwise, which is truthy iff the test passed.

The distribution functions needed (normal tail and quantile, chi-square tail) are
computed here from ``math.erfc`` and the regularised incomplete gamma function, so SciPy
stays a test-only dependency (the tests hold these against ``scipy.stats``).

References:
  Geyer (1992), "Practical Markov chain Monte Carlo", Statistical Science 7(4), sec. 3.3.
  Cochran (1954), "Some methods for strengthening the common chi^2 tests", Biometrics.
  Press et al., Numerical Recipes (3rd ed.), sec. 6.2 (incomplete gamma function).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import numpy as np

__all__ = [
    "TOLERANCES",
    "tolerance",
    "assert_close_to_oracle",
    "MomentTestResult",
    "moment_ztest",
    "ChiSquareResult",
    "chi_square_test",
    "effective_sample_size",
    "normal_sf",
    "normal_isf",
    "chi2_sf",
    "count_compilations",
    "SamplerCase",
    "check_sampler",
    "LossCase",
    "check_loss",
]

# ---------------------------------------------------------------------------------------
# Tolerances
# ---------------------------------------------------------------------------------------

# (dtype name, kind) -> (rtol, atol). "single_op": one function evaluation (a density, a
# loss, one sampler step) compared with the float64 oracle; "long_loop": a whole sampler
# or solver trajectory (tens to thousands of steps) compared with the oracle's.
TOLERANCES: dict[tuple[str, str], tuple[float, float]] = {
    # eps = 2.2e-16. Different but equivalent algorithms (Cholesky vs solve, log-sum-exp
    # orderings) on matrices with condition numbers up to ~1e4 lose ~4-5 digits.
    ("float64", "single_op"): (1e-10, 1e-12),
    # Rounding compounds over up to ~1e3 steps and is amplified by each step's Lipschitz
    # constant; 1e-8 still catches any error in the mathematics.
    ("float64", "long_loop"): (1e-8, 1e-10),
    # eps = 1.2e-7. Reductions over ~1e2-1e3 terms and float32 transcendental functions
    # leave ~1e-6 relative error; 1e-5 leaves room without hiding a wrong term.
    ("float32", "single_op"): (1e-5, 1e-6),
    # ~1e-6 per step over hundreds of steps, amplified by the dynamics (e.g. the 1/sigma
    # factors of a diffusion sampler near t = 0).
    ("float32", "long_loop"): (1e-3, 1e-4),
    # eps = 9.8e-4: a few ulps for one operation; loops accumulate an order more.
    ("float16", "single_op"): (5e-3, 1e-3),
    ("float16", "long_loop"): (5e-2, 1e-2),
    # eps = 7.8e-3 (8-bit mantissa).
    ("bfloat16", "single_op"): (4e-2, 1e-2),
    ("bfloat16", "long_loop"): (2e-1, 5e-2),
}

_KINDS = ("single_op", "long_loop")


def tolerance(dtype: Any, kind: str = "single_op") -> tuple[float, float]:
    """``(rtol, atol)`` for comparing a result of floating ``dtype`` with a float64 oracle.

    Args:
      dtype: the dtype of the result under test (anything ``np.dtype`` accepts, or an array).
      kind: ``"single_op"`` (one evaluation) or ``"long_loop"`` (a trajectory of steps).

    Returns:
      ``(rtol, atol)``; ``(0.0, 0.0)`` for integer and boolean dtypes (must match exactly).
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    if not isinstance(dtype, (type, np.dtype, str)) and hasattr(dtype, "dtype"):  # an array
        dtype = dtype.dtype
    dtype = np.dtype(dtype)
    name = dtype.name
    if np.issubdtype(dtype, np.integer) or name == "bool":
        return 0.0, 0.0
    if np.issubdtype(dtype, np.complexfloating):
        name = {"complex64": "float32", "complex128": "float64"}[name]
    if (name, kind) not in TOLERANCES:
        raise ValueError(f"dtype must be a float, integer or bool dtype, got {name!r}")
    return TOLERANCES[(name, kind)]


def assert_close_to_oracle(
    actual: Any, expected: Any, *, kind: str = "single_op", err_msg: str = ""
) -> None:
    """Assert that ``actual`` (JAX) matches ``expected`` (oracle) to the table's tolerance.

    The tolerance is read from the dtype of each leaf of ``actual``. Both may be arrays or
    pytrees of arrays with the same number of leaves; shapes must be equal (no silent
    broadcasting), values finite where the oracle's are.

    Args:
      actual: array or pytree -- the result under test.
      expected: array or pytree -- the oracle's (usually float64) result.
      kind: ``"single_op"`` or ``"long_loop"``.
      err_msg: prefix for the failure message.

    Raises:
      AssertionError: on a shape or value mismatch.
    """
    a_leaves = jax.tree_util.tree_leaves(actual)
    e_leaves = jax.tree_util.tree_leaves(expected)
    prefix = f"{err_msg}: " if err_msg else ""
    if len(a_leaves) != len(e_leaves):
        raise AssertionError(
            f"{prefix}actual has {len(a_leaves)} leaves, expected has {len(e_leaves)}"
        )
    for i, (a, e) in enumerate(zip(a_leaves, e_leaves, strict=True)):
        a_np = np.asarray(a)
        e_np = np.asarray(e)
        where = f"{prefix}leaf {i}: " if len(a_leaves) > 1 else prefix
        if a_np.shape != e_np.shape:
            raise AssertionError(f"{where}shape {a_np.shape} != expected shape {e_np.shape}")
        rtol, atol = tolerance(a_np.dtype, kind)
        np.testing.assert_allclose(
            a_np.astype(np.float64) if a_np.dtype.kind == "f" else a_np,
            e_np,
            rtol=rtol,
            atol=atol,
            err_msg=f"{where}({a_np.dtype}, {kind}: rtol={rtol}, atol={atol})",
        )


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


# ---------------------------------------------------------------------------------------
# Conformance suites: one per kind of thing, run by every family (as optax runs every
# optimiser through one list of checks).
# ---------------------------------------------------------------------------------------

_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_compile_counters: list[list[int]] = []


def _on_compile_event(event: str, duration: float, **_: Any) -> None:
    if event == _COMPILE_EVENT:
        for counter in _compile_counters:
            counter[0] += 1


_listener_installed = False


@contextlib.contextmanager
def count_compilations() -> Iterator[list[int]]:
    """Counts XLA compilations inside the ``with`` block: ``with count_compilations() as n``.

    ``n[0]`` is the number of programs XLA compiled (jitted functions and the small eager
    ops alike) while the block ran; a cached program costs nothing. Uses JAX's own
    monitoring event for backend compilation, so it sees every compile, whatever the entry
    point.
    """
    global _listener_installed
    if not _listener_installed:
        jax.monitoring.register_event_duration_secs_listener(_on_compile_event)
        _listener_installed = True
    counter = [0]
    _compile_counters.append(counter)
    try:
        yield counter
    finally:
        _compile_counters.remove(counter)


def _leaves_close(a: Any, b: Any, rtol: float, atol: float) -> bool:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    if len(la) != len(lb):
        return False
    for x, y in zip(la, lb, strict=True):
        x, y = np.asarray(x), np.asarray(y)
        if x.shape != y.shape:
            return False
        if np.issubdtype(x.dtype, np.inexact):
            if not np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=False):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def _floating_leaves(tree: Any) -> list[np.ndarray]:
    return [
        np.asarray(leaf)
        for leaf in jax.tree_util.tree_leaves(tree)
        if hasattr(leaf, "dtype") and np.issubdtype(np.asarray(leaf).dtype, np.inexact)
    ]


@dataclasses.dataclass(frozen=True)
class SamplerCase:
    """One sampler under the sampler conformance suite (:func:`check_sampler`).

    Attributes:
      name: for messages.
      sample: ``sample(key, model) -> output`` -- the public sampler with every other
        argument bound (a ``functools.partial`` or a lambda calling it).
      models: at least two models of the same structure, shapes and dtypes but different
        weights (e.g. two inits with different keys).
      from_noise: ``from_noise(key, model) -> output`` that draws the noise from ``key`` the
        way the sampler documents and calls the ``*_from_noise`` twin; ``None`` for a
        sampler without one.
      bad_arguments: ``(call, name)`` pairs: ``call()`` must raise ``ValueError`` whose
        message names ``name``.
      deterministic: True when the output does not depend on the key (DDIM with eta = 0 from
        a fixed ``x_T``, beam search); then "another key changes the output" is skipped.
      dtype: the floating dtype every floating output leaf must have (None: not checked).
      eager: also check that the sampler run with ``jax.disable_jit()`` equals the compiled
        one (keep the case's step counts small).
      rtol, atol: for jit-vs-eager and from-noise comparisons (reordered float32 arithmetic
        between the compiled and eager programs: ``long_loop`` float32 by default).
    """

    name: str
    sample: Callable[[Any, Any], Any]
    models: Sequence[Any]
    from_noise: Callable[[Any, Any], Any] | None = None
    bad_arguments: Sequence[tuple[Callable[[], Any], str]] = ()
    deterministic: bool = False
    dtype: Any = "float32"
    eager: bool = True
    rtol: float = 1e-3
    atol: float = 1e-4


def check_sampler(case: SamplerCase, key: Any = None) -> None:
    """The sampler conformance suite; raises ``AssertionError`` naming the failed check.

    1. Same key, same output (bit for bit).
    2. Another key, another output (unless ``deterministic``).
    3. ``*_from_noise`` on the noise the sampler draws equals the sampler.
    4. New weights of the same shapes do not recompile (no XLA compilation at all while
       the other models run), and they change the output -- so the weights are arguments
       of the compiled program, not constants baked into it.
    5. Every floating output has the expected dtype and is finite.
    6. The compiled sampler equals the sampler run eagerly (``jax.disable_jit``).
    7. Each bad argument raises ``ValueError`` naming the argument.
    """
    if len(case.models) < 2:
        raise ValueError("SamplerCase.models needs at least two models")
    key = jax.random.key(0) if key is None else key
    first, *others = case.models
    out = case.sample(key, first)
    again = case.sample(key, first)
    assert _leaves_close(out, again, 0.0, 0.0), f"{case.name}: same key gave another output"
    if not case.deterministic:
        other = case.sample(jax.random.fold_in(key, 1), first)
        assert not _leaves_close(out, other, 0.0, 0.0), (
            f"{case.name}: another key gave the same output"
        )
    if case.from_noise is not None:
        twin = case.from_noise(key, first)
        assert _leaves_close(out, twin, case.rtol, case.atol), (
            f"{case.name}: *_from_noise on the sampler's own noise differs from the sampler"
        )
    with count_compilations() as compiled:
        outs = [case.sample(key, m) for m in others]
    assert compiled[0] == 0, (
        f"{case.name}: {compiled[0]} compilation(s) for {len(others)} new weight set(s) of the "
        "same shapes (the model must be a traced argument, not static)"
    )
    for o in outs:
        assert not _leaves_close(out, o, 0.0, 0.0), (
            f"{case.name}: new weights gave the same output (weights baked in as constants?)"
        )
    for leaf in _floating_leaves(out):
        if case.dtype is not None:
            assert leaf.dtype == np.dtype(case.dtype), (
                f"{case.name}: output dtype {leaf.dtype}, expected {case.dtype}"
            )
        assert np.all(np.isfinite(leaf)), f"{case.name}: non-finite output"
    if case.eager:
        with jax.disable_jit():
            eager = case.sample(key, first)
        assert _leaves_close(out, eager, case.rtol, case.atol), (
            f"{case.name}: the compiled sampler differs from the eager one"
        )
    for call, name in case.bad_arguments:
        try:
            call()
        except ValueError as err:
            assert name in str(err), f"{case.name}: ValueError {err!s} does not name {name!r}"
        else:
            raise AssertionError(f"{case.name}: bad {name!r} raised no ValueError")


@dataclasses.dataclass(frozen=True)
class LossCase:
    """One loss under the loss conformance suite (:func:`check_loss`).

    Attributes:
      name: for messages.
      loss: ``loss(model, batch, key) -> (value, metrics)`` with every option bound.
      model: the model (a pytree of arrays: its floating leaves are differentiated).
      batch: the batch pytree.
      check_grads: run ``jax.test_util.check_grads`` (first order, reverse mode) on the
        model's floating leaves; finite differences in float32 with ``grad_eps`` need
        ``grad_tol`` of ~1e-2 (truncation ~eps^2, rounding ~1e-7 / eps relative).
      stochastic: the value depends on the key (then another key must change it).
      bad_arguments: as in :class:`SamplerCase`.
    """

    name: str
    loss: Callable[[Any, Any, Any], tuple[Any, dict]]
    model: Any
    batch: Any
    check_grads: bool = True
    grad_eps: float = 1e-3
    grad_tol: float = 5e-2
    stochastic: bool = True
    bad_arguments: Sequence[tuple[Callable[[], Any], str]] = ()


def check_loss(case: LossCase, key: Any = None) -> None:
    """The loss conformance suite; raises ``AssertionError`` naming the failed check.

    1. ``(value, metrics)``: a finite scalar and a dict of finite scalars.
    2. Same key, same value; another key, another value (if ``stochastic``).
    3. ``jax.jit`` of the loss equals the eager loss.
    4. The gradient with respect to the model is finite and not identically zero, and
       agrees with finite differences (``jax.test_util.check_grads``).
    5. Each bad argument raises ``ValueError`` naming the argument.
    """
    from jax import test_util as jtu

    key = jax.random.key(0) if key is None else key
    value, metrics = case.loss(case.model, case.batch, key)
    assert np.shape(value) == (), f"{case.name}: loss of shape {np.shape(value)}, not a scalar"
    assert np.isfinite(float(value)), f"{case.name}: non-finite loss {float(value)}"
    assert isinstance(metrics, dict), f"{case.name}: metrics is {type(metrics)}, not a dict"
    for k, v in metrics.items():
        assert np.shape(v) == () and np.isfinite(float(v)), f"{case.name}: metric {k} = {v}"
    again, _ = case.loss(case.model, case.batch, key)
    assert float(again) == float(value), f"{case.name}: same key gave another loss"
    if case.stochastic:
        other, _ = case.loss(case.model, case.batch, jax.random.fold_in(key, 1))
        assert float(other) != float(value), f"{case.name}: another key gave the same loss"
    jitted, _ = jax.jit(case.loss)(case.model, case.batch, key)
    np.testing.assert_allclose(float(jitted), float(value), rtol=1e-4, atol=1e-5,
                               err_msg=f"{case.name}: jit differs from eager")
    leaves, treedef = jax.tree_util.tree_flatten(case.model)
    where = [i for i, leaf in enumerate(leaves)
             if hasattr(leaf, "dtype") and np.issubdtype(np.asarray(leaf).dtype, np.floating)]

    def of_leaves(*floats: Any) -> Any:
        full = list(leaves)
        for i, f in zip(where, floats, strict=True):
            full[i] = f
        return case.loss(jax.tree_util.tree_unflatten(treedef, full), case.batch, key)[0]

    grads = jax.grad(of_leaves, argnums=tuple(range(len(where))))(*[leaves[i] for i in where])
    flat = [np.asarray(g) for g in grads]
    assert all(np.all(np.isfinite(g)) for g in flat), f"{case.name}: non-finite gradient"
    assert any(np.any(g != 0) for g in flat), f"{case.name}: the gradient is identically zero"
    if case.check_grads:
        jtu.check_grads(of_leaves, tuple(leaves[i] for i in where), order=1, modes=("rev",),
                        atol=case.grad_tol, rtol=case.grad_tol, eps=case.grad_eps)
    for call, name in case.bad_arguments:
        try:
            call()
        except ValueError as err:
            assert name in str(err), f"{case.name}: ValueError {err!s} does not name {name!r}"
        else:
            raise AssertionError(f"{case.name}: bad {name!r} raised no ValueError")


# ---------------------------------------------------------------------------------------
# Bijector conformance suite: every bijector and every normalizing flow passes it
# (distrax's round-trip and slogdet(jacfwd) checks, plus finite differences and the
# density's total mass).
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BijectorCase:
    """One bijector or flow under the bijector conformance suite (:func:`check_bijector`).

    Attributes:
      name: for messages.
      bijector: anything with ``forward(params, z) -> (x, log|det dx/dz|)`` and
        ``inverse(params, x) -> (z, log|det dz/dx|)`` over a leading batch axis, log-dets of
        shape ``(batch,)`` (a bijector of ``genjax.flows.bijectors`` or a ``Flow``).
      params: its parameters, non-trivial: no layer the identity (perturb the initial
        parameters, many of which start at the identity by design).
      shape: the shape of one noise-side example (a flow's ``base_shape``).
      volume_preserving: the log-det is 0 by construction (then "the log-det is not zero"
        is skipped).
      moves: the map moves points (False for pure rearrangements: skips "x differs from z").
      float32_params: parameters for the float32 round trip (default ``params``); a spline
        with bins of slope ~1e-3 amplifies float32 rounding by the inverse slope, so a case
        may use milder (still non-trivial) ones there.
      density_box: for a vector event of 1 or 2 dimensions, the half-width ``b`` of the box
        ``[-b, b]^D`` on which ``p(x) = N(f^{-1}(x); 0, I) |det d f^{-1}(x)/dx|`` must
        integrate to 1; ``None`` skips the check. The box must hold all but ~1e-6 of the mass.
      scale: standard deviation of the noise-side test points.
    """

    name: str
    bijector: Any
    params: Any
    shape: tuple[int, ...]
    volume_preserving: bool = False
    moves: bool = True
    float32_params: Any = None
    density_box: float | None = None
    scale: float = 0.8


def _cast_floating(tree: Any, dtype: Any) -> Any:
    import jax.numpy as jnp

    def cast(leaf: Any) -> Any:
        if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.floating):
            return jnp.asarray(leaf, dtype)
        return leaf

    return jax.tree_util.tree_map(cast, tree)


def _trapezoid_weights(grid: np.ndarray) -> np.ndarray:
    """Trapezoid-rule weights ``h (1/2, 1, ..., 1, 1/2)`` on a uniform grid."""
    w = np.full(grid.shape, grid[1] - grid[0])
    w[0] *= 0.5
    w[-1] *= 0.5
    return w


def check_bijector(case: BijectorCase, key: Any = None) -> None:
    """The bijector conformance suite; raises ``AssertionError`` naming the failed check.

    In float64 (``jax.enable_x64``), on ``2 D`` noise-side points ``z`` (``D`` the event
    size), in one compiled program:

    1. Round trips: ``inverse(forward(z)) = z`` and ``forward(inverse(x)) = x`` (1e-9).
    2. The inverse log-det at ``x = f(z)`` is minus the forward log-det at ``z`` (1e-9).
    3. The forward log-det equals ``slogdet`` of the Jacobian by forward-mode AD
       (``jax.jacfwd``, 1e-8) and of central finite differences (``eps = 1e-5``: truncation
       ~1e-9, rounding ~1e-11; 1e-6 on the log-det).
    4. Non-trivial: the map moves points (unless ``moves=False``) and changes volume
       (unless ``volume_preserving``); the Jacobian is non-singular.

    In float32 under ``jax.jit``: dtype kept, the round trip holds to 1e-4 and the log-dets
    cancel to 1e-4 (up to ~10 layers of a few ulps of O(1) values).

    With ``density_box``: the density integrates to 1 on the box by the trapezoid rule
    (1-D: spacing 1e-3, error ~h^2 f'' ~ 1e-6, checked to 1e-4; 2-D: spacing 0.05, checked
    to 3e-3, which a spline's kinks in f'' at its knots still meet).
    """
    import jax.numpy as jnp

    key = jax.random.key(0) if key is None else key
    bij, shape = case.bijector, tuple(case.shape)
    size = math.prod(shape)
    with jax.enable_x64(True):
        params = _cast_floating(case.params, jnp.float64)
        # 2 D points: the same compiled program serves the finite differences below.
        z = case.scale * jax.random.normal(key, (2 * size, *shape), jnp.float64)

        def program(params: Any, z: Any) -> tuple:
            x, ld_fwd = bij.forward(params, z)
            z_back, ld_inv = bij.inverse(params, x)
            x_again, _ = bij.forward(params, z_back)

            def one(v: Any) -> Any:  # one example, flat in and out
                return bij.forward(params, v.reshape(1, *shape))[0].reshape(-1)

            jac = jax.vmap(jax.jacfwd(one))(z[:2].reshape(2, -1))  # (2, D, D)
            sign, logdet = jnp.linalg.slogdet(jac)
            return x, ld_fwd, z_back, ld_inv, x_again, sign, logdet

        compiled = jax.jit(program)
        x, ld_fwd, z_back, ld_inv, x_again, sign, logdet = compiled(params, z)
        name = case.name
        assert x.dtype == jnp.float64 and ld_fwd.shape == (2 * size,), (
            f"{name}: forward gave {x.dtype} and log-det shape {ld_fwd.shape}"
        )
        np.testing.assert_allclose(z_back, z, atol=1e-9, rtol=0,
                                   err_msg=f"{name}: inverse(forward(z)) != z")
        np.testing.assert_allclose(x_again, x, atol=1e-9, rtol=0,
                                   err_msg=f"{name}: forward(inverse(x)) != x")
        np.testing.assert_allclose(ld_inv, -ld_fwd, atol=1e-9, rtol=0,
                                   err_msg=f"{name}: inverse log-det != -forward log-det")
        if not case.volume_preserving:
            # (A composition may cross log-det 0 at some point; a trivial one is 0 everywhere.)
            assert float(jnp.max(jnp.abs(ld_fwd))) > 1e-3, f"{name}: log-det ~ 0 (trivial?)"
        if case.moves:
            flat = (2 * size, -1)
            moved = float(jnp.max(jnp.abs(x.reshape(flat) - z.reshape(flat))))
            assert moved > 1e-2, f"{name}: forward barely moves its input (trivial params?)"
        assert bool(jnp.all(sign != 0)), f"{name}: singular Jacobian"
        np.testing.assert_allclose(logdet, ld_fwd[:2], atol=1e-8, rtol=0,
                                   err_msg=f"{name}: log-det != slogdet(jacfwd(forward))")
        # Central differences at z[0]: columns from the 2 D points z0 +- eps e_i.
        eps = 1e-5
        z0 = np.asarray(z[0], np.float64).reshape(-1)
        steps = np.concatenate([np.eye(size), -np.eye(size)]) * eps  # (2 D, D)
        points = jnp.asarray((z0[None] + steps).reshape(2 * size, *shape))
        out = np.asarray(compiled(params, points)[0]).reshape(2 * size, -1)
        fd = ((out[:size] - out[size:]) / (2 * eps)).T  # (D, D): column i = d f / d z_i
        np.testing.assert_allclose(np.linalg.slogdet(fd)[1], float(ld_fwd[0]), atol=1e-6,
                                   err_msg=f"{name}: log-det != slogdet(finite differences)")
        if case.density_box is not None:
            _check_density_mass(case, params)

    p32 = _cast_floating(case.params if case.float32_params is None else case.float32_params,
                         jnp.float32)
    z32 = case.scale * jax.random.normal(jax.random.fold_in(key, 1), (4, *shape), jnp.float32)

    def round_trip(params: Any, z: Any) -> tuple:
        x, ld = bij.forward(params, z)
        return (x, ld, *bij.inverse(params, x))

    x, ld, z_back, ld_inv = jax.jit(round_trip)(p32, z32)
    assert x.dtype == jnp.float32 and z_back.dtype == jnp.float32, (
        f"{case.name}: float32 in, {x.dtype} / {z_back.dtype} out"
    )
    np.testing.assert_allclose(z_back, z32, atol=1e-4, rtol=0,
                               err_msg=f"{case.name}: float32 round trip")
    np.testing.assert_allclose(ld_inv, -ld, atol=1e-4, rtol=1e-5,
                               err_msg=f"{case.name}: float32 log-dets do not cancel")


def _check_density_mass(case: BijectorCase, params: Any) -> None:
    """``int p(x) dx = 1`` on ``[-b, b]^D`` (D = 1 or 2), trapezoid rule, float64."""
    import jax.numpy as jnp

    d, b = math.prod(case.shape), float(case.density_box)
    assert case.shape in ((1,), (2,)), f"{case.name}: density_box needs a (1,) or (2,) event"

    def log_density(params: Any, x: Any) -> Any:
        z, log_det = case.bijector.inverse(params, x)
        flat = z.reshape(z.shape[0], -1)
        # log N(z; 0, I) + log|det dz/dx|, written out (independent of the code under test)
        return -0.5 * jnp.sum(flat**2, axis=1) - 0.5 * d * math.log(2 * math.pi) + log_det

    if d == 1:
        grid = np.linspace(-b, b, int(round(2 * b / 1e-3)) + 1)  # spacing 1e-3
        dens = np.exp(np.asarray(jax.jit(log_density)(params, jnp.asarray(grid[:, None]))))
        mass, atol = float(_trapezoid_weights(grid) @ dens), 1e-4
    else:
        grid = np.linspace(-b, b, int(round(2 * b / 0.05)) + 1)  # spacing 0.05
        xx, yy = np.meshgrid(grid, grid, indexing="ij")
        pts = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], axis=1))
        dens = np.exp(np.asarray(jax.jit(log_density)(params, pts))).reshape(len(grid), -1)
        w = _trapezoid_weights(grid)
        mass, atol = float(w @ dens @ w), 3e-3
    assert abs(mass - 1.0) <= atol, f"{case.name}: the density integrates to {mass}, not 1"


__all__ += ["BijectorCase", "check_bijector"]
