"""Sample-quality and likelihood figures, as jit-compiled functions of two sample sets.

* :func:`mmd` -- squared maximum mean discrepancy with an RBF kernel (Gretton et al. 2012,
  "A kernel two-sample test", JMLR, eqs. 3 and 5), median-heuristic bandwidth by default.
* :func:`energy_distance` -- the squared energy statistic ``2E|X-Y| - E|X-X'| - E|Y-Y'|``
  (Szekely & Rizzo 2013, "Energy statistics", eq. 1; genjax's convention, DESIGN.md).
* :func:`sliced_wasserstein` -- the sliced 2-Wasserstein distance (Bonneel et al. 2015,
  "Sliced and Radon Wasserstein barycenters of measures", eq. 3), exact in each direction.
* :func:`mode_coverage` -- fraction of a mixture's modes that received at least one sample.
* :func:`occupancy_kl` -- how unevenly samples share the modes or classes: the KL divergence
  of their occupancy from the uniform distribution (partial collapse, which coverage misses).
* :func:`bits_per_dim` -- negative log-likelihood in nats converted to bits per dimension.
* :func:`frechet_distance` -- the Frechet (2-Wasserstein) distance between the Gaussians
  fitted to two feature sets (Dowson & Landau 1982; Heusel et al. 2017, "GANs trained by a
  two time-scale update rule ...", eq. 6 -- the FID formula).

All take sample sets as ``(n, D)`` arrays and return scalar ``jnp`` arrays; shapes are
checked at trace time (``ValueError`` naming the argument). A NaN or inf anywhere in the
samples gives NaN -- never a score (a 0.0 would read as a perfect match). The sample-set
statistics are computed on the data divided by a power of two near its largest entry and
scaled back (exact for ordinary data), so data at scale 1e20 stays finite in float32.
Pairwise sums over more than ``2 x 4096 x 4096`` entries are computed in row blocks under
``lax.map`` so memory stays bounded.
The NumPy float64 twin is :mod:`genjax.oracle_metrics`. The Frechet distances live in
:mod:`genjax.frechet`, the shared argument checks in :mod:`genjax.sample_sets`; both are
re-exported here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.frechet import frechet_distance, frechet_distance_gaussian
from genjax.sample_sets import as_float, check_pair, nan_unless_finite

__all__ = [
    "mmd",
    "energy_distance",
    "sliced_wasserstein",
    "sliced_wasserstein_with_directions",
    "mode_coverage",
    "occupancy_kl",
    "bits_per_dim",
    "frechet_distance",
    "frechet_distance_gaussian",
]

# At most this many pairwise entries are materialised at once (128 MiB in float32): a
# 4096 x 4096 comparison of 2-D points runs as one block.
_MAX_PAIRS = 2 * 4096 * 4096
# Points of each set used by the median heuristic, taken at an even stride so that an
# ordered sample (e.g. sorted by mode) is still represented. The median of the ~3e4
# distinct distances among 256 pooled points is stable to ~1%; using every pair would
# sort n^2 numbers (XLA's CPU sort takes ~0.5 s for 1e6 of them).
_MEDIAN_POINTS = 128


def _median_subsample(x: jax.Array) -> jax.Array:
    # (min(n, P), D): every (n // P)-th row, P of them.
    stride = max(1, x.shape[0] // _MEDIAN_POINTS)
    return x[::stride][:_MEDIAN_POINTS]


def _pair_sum(
    x: jax.Array,
    y: jax.Array,
    fn: Callable[[jax.Array], jax.Array],
    *,
    same: bool,
    direct: bool,
) -> jax.Array:
    """``sum_{i,j} fn(|x_i - y_j|^2)`` over all pairs, in row blocks when large.

    ``direct=False`` forms squared distances as ``|a|^2 + |b|^2 - 2 a.b`` (one matmul,
    fast in high D), clamped at 0; callers centre the data first so the cancellation error
    stays ~eps * spread^2 -- harmless under a smooth kernel, but its square root would bias
    near-zero distances, so ``direct=True`` sums ``(a - b)^2`` coordinate-wise instead.
    With ``same=True`` (x is y) the diagonal is set to exactly 0, as it is mathematically.
    At most ``_MAX_PAIRS`` distances (``direct``: pair-coordinates) exist at once.

    Args:
      x: ``(n, D)``.
      y: ``(m, D)``.
      fn: elementwise map of squared distances.
      same: whether ``x`` and ``y`` are the same set.
      direct: coordinate-wise differences instead of the Gram expansion.

    Returns:
      ``()`` the sum.
    """
    n, d = x.shape
    m = y.shape[0]
    y_sq = jnp.sum(y**2, axis=-1)  # (m,)
    cols = jnp.arange(m)

    def block_sum(xb: jax.Array, rows: jax.Array) -> jax.Array:
        # xb: (B, D) rows of x, rows: (B,) their indices (>= n marks padding).
        if direct:
            d2 = jnp.sum((xb[:, None, :] - y[None, :, :]) ** 2, axis=-1)  # (B, m)
        else:
            d2 = jnp.sum(xb**2, axis=-1)[:, None] + y_sq[None, :] - 2.0 * (xb @ y.T)  # (B, m)
            d2 = jnp.maximum(d2, 0.0)
        if same:
            d2 = jnp.where(rows[:, None] == cols[None, :], 0.0, d2)
        vals = jnp.where((rows < n)[:, None], fn(d2), 0.0)  # (B, m)
        return jnp.sum(jnp.sum(vals, axis=1))  # row sums first: better rounding

    per_row = m * d if direct else m  # entries materialised per row of x
    if n * per_row <= _MAX_PAIRS:
        return block_sum(x, jnp.arange(n))
    block = max(1, _MAX_PAIRS // per_row)
    num_blocks = -(-n // block)
    pad = num_blocks * block - n
    xp = jnp.concatenate([x, jnp.zeros((pad, d), x.dtype)], axis=0)  # (num_blocks*B, D)
    rows = jnp.arange(num_blocks * block)
    sums = jax.lax.map(
        lambda args: block_sum(*args),
        (xp.reshape(num_blocks, block, d), rows.reshape(num_blocks, block)),
    )  # (num_blocks,)
    return jnp.sum(sums)


def _centre(x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    # Distances are translation invariant; centring on the pooled mean shrinks |a|^2 and
    # with it the rounding error of the |a|^2 + |b|^2 - 2 a.b expansion.
    c = jnp.mean(jnp.concatenate([x, y], axis=0), axis=0)  # (D,)
    return x - c[None, :], y - c[None, :]


def _scale(x: jax.Array, y: jax.Array) -> jax.Array:
    """``()`` a power of two ``s`` near ``max |entry|`` of both sets (1 when all are 0).

    Squared distances of data at scale 1e20 overflow float32 (1e40 > 3.4e38); dividing the
    data by ``s`` first keeps every square below ~4 D, and a power of two divides exactly,
    so the statistics of ordinary data are unchanged bit for bit.
    """
    big = jnp.maximum(jnp.max(jnp.abs(x)), jnp.max(jnp.abs(y)))
    ok = jnp.isfinite(big) & (big > 0)
    return jnp.where(ok, jnp.exp2(jnp.round(jnp.log2(jnp.where(ok, big, 1.0)))), 1.0)


# --------------------------------------------------------------- MMD


def _kth_smallest(values: jax.Array, valid: jax.Array, k: jax.Array) -> jax.Array:
    """The k-th smallest (1-based) of ``values[valid]``, by bisection on the value.

    Invariant: ``#{v <= lo} < k <= #{v <= hi}``; 64 halvings shrink ``(lo, hi]`` below
    float resolution, and the answer is the largest value ``<= hi``. XLA's CPU sort is
    slow (~0.5 s for 1e6 floats); this is ~64 counting passes instead.
    """
    vals = jnp.where(valid, values, jnp.inf)

    def halve(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        enough = jnp.sum(vals <= mid) >= k
        return jnp.where(enough, lo, mid), jnp.where(enough, mid, hi)

    start = (jnp.full((), -1.0, values.dtype), jnp.max(jnp.where(valid, values, -jnp.inf)))
    _, hi = jax.lax.fori_loop(0, 64, halve, start)
    return jnp.max(jnp.where(vals <= hi, vals, -jnp.inf))


def _median_bandwidth(x: jax.Array, y: jax.Array) -> jax.Array:
    z = jnp.concatenate([_median_subsample(x), _median_subsample(y)], axis=0)  # (p, D)
    p = z.shape[0]
    dist = jnp.sqrt(jnp.sum((z[:, None, :] - z[None, :, :]) ** 2, axis=-1))  # (p, p)
    # Every distinct pair appears twice off the diagonal, which leaves the median
    # unchanged: with M = p(p-1)/2 pairs, the doubled set's middle ranks M and M + 1
    # hold the original median's two middle order statistics.
    off_diag = ~jnp.eye(p, dtype=bool)
    m = p * (p - 1) // 2
    ranks = jnp.array([m, m + 1])
    h = jnp.mean(jax.vmap(lambda k: _kth_smallest(dist, off_diag, k))(ranks))
    # All points identical: any bandwidth gives the same (zero) discrepancy; use 1.
    return jnp.where(h > 0, h, jnp.ones_like(h))


@functools.partial(jax.jit, static_argnames=("unbiased",))
def _mmd(x: jax.Array, y: jax.Array, bandwidth: jax.Array | None, unbiased: bool) -> jax.Array:
    raw = (x, y)
    # k depends on |a - b| / h only: dividing data and h by one power of two s is exact.
    s = _scale(x, y)
    x, y = _centre(x / s, y / s)
    h = _median_bandwidth(x, y) if bandwidth is None else jnp.asarray(bandwidth, x.dtype) / s
    kernel = lambda d2: jnp.exp(-d2 / (2.0 * h**2))  # k(a, b) = exp(-|a-b|^2 / (2 h^2))
    n, m = x.shape[0], y.shape[0]
    kxx = _pair_sum(x, x, kernel, same=True, direct=False)  # sum_{i,j} k(x_i, x_j), diagonal = n
    kyy = _pair_sum(y, y, kernel, same=True, direct=False)
    kxy = _pair_sum(x, y, kernel, same=False, direct=False)
    if unbiased:
        # Gretton et al. (2012) eq. 3: U-statistic, diagonal terms k(x_i, x_i) = 1 removed.
        value = (kxx - n) / (n * (n - 1)) + (kyy - m) / (m * (m - 1)) - 2.0 * kxy / (n * m)
    else:
        # eq. 5: V-statistic, MMD_b^2 = |mean phi(x) - mean phi(y)|^2 >= 0.
        value = kxx / n**2 + kyy / m**2 - 2.0 * kxy / (n * m)
    return nan_unless_finite(value, *raw)


def mmd(
    x: jax.Array,
    y: jax.Array,
    *,
    bandwidth: float | jax.Array | None = None,
    unbiased: bool = False,
) -> jax.Array:
    """Squared maximum mean discrepancy with a Gaussian (RBF) kernel.

    ``MMD^2 = E k(X, X') + E k(Y, Y') - 2 E k(X, Y)``, ``k(a, b) = exp(-|a - b|^2 / (2 h^2))``.

    By default the biased V-statistic (Gretton et al. 2012, eq. 5): all pairs including
    ``i = j``, which is the squared RKHS distance between the two empirical mean
    embeddings, hence always ``>= 0`` and exactly 0 for identical sets. ``unbiased=True``
    gives the U-statistic (eq. 3; unbiased, may be negative, needs ``n, m >= 2``).

    Bandwidth ``h``: when ``None``, the median heuristic -- the median distance between
    distinct points of a pooled subsample, 128 rows of each set taken at stride
    ``n // 128`` (all rows when fewer) (Gretton et al. 2012, sec. 8).

    Args:
      x: ``(n, D)`` samples.
      y: ``(m, D)`` samples.
      bandwidth: ``()`` kernel length scale ``h > 0``, or ``None``.
      unbiased: U-statistic instead of the V-statistic.

    Returns:
      ``()`` the squared MMD.
    """
    x, y = check_pair(x, y, min_n=2 if unbiased else 1)
    if bandwidth is not None:
        checks.ndim("bandwidth", bandwidth, 0, "(a scalar or None)")
        checks.positive("bandwidth", bandwidth)
    return _mmd(x, y, bandwidth, unbiased)


# --------------------------------------------------------------- Energy distance


def _safe_norm(d2: jax.Array) -> jax.Array:
    # sqrt with a zero (not NaN) gradient at d2 = 0, so the statistic can be a loss.
    pos = d2 > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, d2, 1.0)), 0.0)


@jax.jit
def _energy(x: jax.Array, y: jax.Array) -> jax.Array:
    raw = (x, y)
    # The statistic is homogeneous of degree 1 (|s a - s b| = s |a - b|): compute it on
    # data / s and multiply back, so data at scale 1e20 does not overflow its squares.
    s = _scale(x, y)
    x, y = _centre(x / s, y / s)
    n, m = x.shape[0], y.shape[0]
    exy = _pair_sum(x, y, _safe_norm, same=False, direct=True) / (n * m)  # E|X - Y|
    exx = _pair_sum(x, x, _safe_norm, same=True, direct=True) / (n * n)  # E|X - X'|
    eyy = _pair_sum(y, y, _safe_norm, same=True, direct=True) / (m * m)  # E|Y - Y'|
    value = s * (2.0 * exy - exx - eyy)  # Szekely & Rizzo (2013), eq. 1
    return nan_unless_finite(value, *raw)


def energy_distance(x: jax.Array, y: jax.Array) -> jax.Array:
    """Squared energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|``.

    The V-statistic over the empirical distributions (all pairs, ``i = j`` included), so
    it is ``>= 0`` and exactly 0 for identical sets; in 1-D it is the square of
    ``scipy.stats.energy_distance``. Norms are Euclidean.

    Args:
      x: ``(n, D)`` samples.
      y: ``(m, D)`` samples.

    Returns:
      ``()`` the squared statistic (genjax's convention, DESIGN.md).
    """
    x, y = check_pair(x, y)
    return _energy(x, y)


# --------------------------------------------------------------- Sliced Wasserstein


def _w2_squared_1d(a: jax.Array, b: jax.Array) -> jax.Array:
    """Exact ``W_2^2`` between the empirical laws of sorted ``a: (n,)`` and ``b: (m,)``.

    ``W_2^2 = int_0^1 (F_a^{-1}(u) - F_b^{-1}(u))^2 du`` with step-function quantiles;
    the integrand is constant between the merged breakpoints ``{i/n} U {j/m}``.
    """
    n, m = a.shape[0], b.shape[0]
    if n == m:
        return jnp.mean((a - b) ** 2)  # quantiles jump together: pair sorted points
    dtype = a.dtype
    steps_a = jnp.arange(1, n + 1, dtype=dtype) / n  # (n,) i / n
    steps_b = jnp.arange(1, m + 1, dtype=dtype) / m  # (m,) j / m
    levels = jnp.sort(jnp.concatenate([steps_a, steps_b]))  # (n + m,) merged breakpoints
    widths = jnp.diff(levels, prepend=jnp.zeros((1,), dtype))  # (n + m,)
    mid = levels - widths / 2  # a point inside each interval
    ia = jnp.clip(jnp.floor(mid * n).astype(jnp.int32), 0, n - 1)  # F_a^{-1}(mid) index
    ib = jnp.clip(jnp.floor(mid * m).astype(jnp.int32), 0, m - 1)
    return jnp.sum(widths * (a[ia] - b[ib]) ** 2)


@jax.jit
def _sliced(x: jax.Array, y: jax.Array, directions: jax.Array) -> jax.Array:
    raw = (x, y, directions)
    s = _scale(x, y)  # SW_2 is homogeneous of degree 1: scaled so squares cannot overflow
    px = jnp.sort((x / s) @ directions.T, axis=0)  # (n, P) projections <theta_p, x_i>, sorted
    py = jnp.sort((y / s) @ directions.T, axis=0)  # (m, P)
    w2 = jax.vmap(_w2_squared_1d, in_axes=(1, 1))(px, py)  # (P,) W_2^2 per direction
    value = s * jnp.sqrt(jnp.mean(w2))  # SW_2 = (mean_theta W_2^2)^{1/2}
    return nan_unless_finite(value, *raw)


def sliced_wasserstein_with_directions(
    x: jax.Array, y: jax.Array, directions: jax.Array
) -> jax.Array:
    """Sliced 2-Wasserstein distance over given directions (noise-injectable form).

    ``SW_2 = (1/P sum_p W_2^2(<theta_p, X>, <theta_p, Y>))^{1/2}``.

    Args:
      x: ``(n, D)`` samples.
      y: ``(m, D)`` samples; ``m != n`` is handled exactly through quantile functions.
      directions: ``(P, D)`` unit vectors ``theta_p`` (not renormalised here).

    Returns:
      ``()`` the distance, in the units of x.
    """
    x, y = check_pair(x, y)
    directions = jnp.asarray(directions)
    checks.shape("directions", directions, ("P", x.shape[1]))
    if directions.shape[0] < 1:
        raise ValueError(f"directions must hold P >= 1 directions, got {directions.shape}")
    return _sliced(x, y, directions.astype(x.dtype))


def sliced_wasserstein(
    key: jax.Array, x: jax.Array, y: jax.Array, *, num_projections: int = 128
) -> jax.Array:
    """Sliced 2-Wasserstein distance over random unit directions.

    ``theta_p`` uniform on the sphere (normalised Gaussians); in each direction the 1-D
    ``W_2`` between the projected empirical distributions is exact -- sorted points paired
    when ``n == m``, quantile functions integrated over merged breakpoints otherwise. Same
    key, same directions, same value. A Monte Carlo estimate of ``SW_2`` with error
    ``O(1/sqrt(num_projections))``.

    Args:
      key: PRNG key for the directions.
      x: ``(n, D)`` samples.
      y: ``(m, D)`` samples.
      num_projections: ``P >= 1`` directions (static).

    Returns:
      ``()`` ``SW_2`` (not squared), in the units of x.
    """
    num_projections = checks.positive_int("num_projections", num_projections)
    x, y = check_pair(x, y)
    g = jax.random.normal(key, (num_projections, x.shape[1]), dtype=x.dtype)  # (P, D)
    directions = g / jnp.linalg.norm(g, axis=-1, keepdims=True)  # uniform on S^{D-1}
    return _sliced(x, y, directions)


# --------------------------------------------------------------- Mode coverage, bits per dimension


@jax.jit
def _coverage(samples: jax.Array, means: jax.Array, radius: jax.Array) -> jax.Array:
    def hit(mu: jax.Array) -> jax.Array:
        d2 = jnp.sum((samples - mu[None, :]) ** 2, axis=-1)  # (n,) |x_i - mu_k|^2
        return jnp.any(d2 <= radius**2)

    value = jnp.mean(jax.lax.map(hit, means).astype(samples.dtype))  # (K,) -> fraction
    return nan_unless_finite(value, samples, means, radius)


def mode_coverage(samples: jax.Array, means: jax.Array, radius: float | jax.Array) -> jax.Array:
    """Fraction of modes that received at least one sample within ``radius``.

    ``coverage = (1/K) #{k : min_i |x_i - mu_k| <= radius}`` (Euclidean). It measures mode
    dropping only: it says nothing of how samples are shared among the modes, nor of
    samples far from every mode -- pair it with a distance such as :func:`mmd`. A usual
    radius is about 3 component standard deviations.

    Args:
      samples: ``(n, D)``.
      means: ``(K, D)`` mode locations (e.g. ``GaussianMixture.means``).
      radius: ``()`` hit radius ``> 0``.

    Returns:
      ``()`` in ``[0, 1]``.
    """
    samples, means = jnp.asarray(samples), jnp.asarray(means)
    checks.ndim("samples", samples, 2, "(n, D)")
    checks.shape("means", means, ("K", samples.shape[1]))
    if means.shape[0] < 1:
        raise ValueError(f"means must hold K >= 1 modes, got shape {means.shape}")
    checks.ndim("radius", radius, 0, "(a scalar)")
    checks.positive("radius", radius)
    dtype = jnp.result_type(samples.dtype, means.dtype, float)
    return _coverage(samples.astype(dtype), means.astype(dtype), jnp.asarray(radius, dtype))


def occupancy_kl(counts: jax.Array) -> jax.Array:
    """KL of the occupancy of ``K`` modes (or classes) from uniform, in nats.

    ``q_k = c_k / sum_j c_j`` and ``KL(q || U_K) = sum_k q_k log(K q_k)`` with ``0 log 0 = 0``:
    0 when the samples share the bins evenly, ``log K`` when all fall in one bin. It sees the
    partial collapse that :func:`mode_coverage` misses (every mode hit, one mode holding most
    samples). With no counts at all the occupancy is undefined and the result is NaN: a 0
    would read as "perfectly balanced".

    Args:
      counts: ``(K,)`` non-negative counts, ``K >= 1`` (samples per mode or per class).

    Returns:
      ``()`` in ``[0, log K]``, or NaN when ``sum(counts) == 0``.

    >>> float(occupancy_kl(jnp.array([5, 5, 5, 5])))
    0.0
    >>> round(float(occupancy_kl(jnp.array([8, 0, 0, 0]))), 4)  # log 4
    1.3863
    """
    counts = jnp.asarray(counts)
    checks.ndim("counts", counts, 1, "(K,)")
    if counts.shape[0] < 1:
        raise ValueError(f"counts must hold K >= 1 bins, got shape {counts.shape}")
    checks.nonnegative("counts", counts)
    return _occupancy_kl(counts.astype(jnp.result_type(counts.dtype, float)))


@jax.jit
def _occupancy_kl(counts: jax.Array) -> jax.Array:
    total = jnp.sum(counts)
    share = counts / jnp.where(total > 0, total, 1.0)  # (K,) q_k
    kl = jnp.sum(jax.scipy.special.xlogy(share, share * counts.shape[0]))  # sum q log(K q)
    return jnp.where(total > 0, kl, jnp.nan)


def bits_per_dim(nll_nats: jax.Array | float, num_dims: int) -> jax.Array:
    """Bits per dimension: ``nll / (num_dims ln 2)``.

    Args:
      nll_nats: ``(...)`` negative log-likelihood(s) of whole examples, in nats.
      num_dims: number of dimensions per example (e.g. ``H * W * C``), ``>= 1``.

    Returns:
      ``(...)`` bits per dimension.
    """
    num_dims = checks.positive_int("num_dims", num_dims)
    return as_float(nll_nats) / (num_dims * math.log(2.0))
