"""Fitting a Gaussian mixture by EM: the whole loop as one ``lax.while_loop``.

The loop state holds the parameters, the iteration count, the previous mean
log-likelihood and the per-iteration history; each turn is one :func:`em_step` (E-step
then M-step, Bishop 2006 §9.2.2). It stops when the mean log-likelihood changed by less
than ``tol`` between two iterations or after ``max_iter`` iterations.

Convergence follows scikit-learn's ``GaussianMixture`` exactly, so that the two stop at
the same iteration: in iteration ``t`` (1-based) the E-step gives ``L_t``, the mean
log-likelihood of the parameters *entering* the iteration; the M-step then runs; the
loop stops if ``|L_t - L_{t-1}| < tol`` (``L_0 = -inf``). The returned parameters are
those after the last M-step; ``history.log_likelihood[t - 1] = L_t``.

Because every shape is static and the loop is a ``while_loop``, ``jax.vmap(fit)`` runs
many independent fits (different data, keys or initialisations) as one program; each
lane stops updating when it has converged.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from genjax import checks
from genjax.mixture.em import _em_step
from genjax.mixture.init import INIT_METHODS, initialize_
from genjax.mixture.params import GMMParams, check_fit_arguments, check_k, check_params

__all__ = ["EMHistory", "fit"]


class EMHistory(NamedTuple):
    """What the EM loop did.

    Attributes:
      log_likelihood: ``(max_iter,)`` mean log-likelihood ``L_t`` of the parameters entering
        iteration ``t``; NaN past the last iteration.
      n_iter: ``()`` int32, the number of iterations (M-steps) run.
      converged: ``()`` bool, whether ``|L_t - L_{t-1}| < tol`` was reached.
    """

    log_likelihood: jax.Array
    n_iter: jax.Array
    converged: jax.Array


class _LoopState(NamedTuple):
    iteration: jax.Array  # () int32: iterations done
    params: GMMParams  # parameters after the last M-step
    prev_log_lik: jax.Array  # () L_{t-1}, -inf before the first iteration
    log_likelihood: jax.Array  # (max_iter,) L_1..L_t, NaN beyond
    converged: jax.Array  # () bool


@functools.partial(jax.jit, static_argnames=("k", "covariance_type", "init", "max_iter"))
def _fit(key, x, w, init_params, tol, reg_covar, *, k, covariance_type, init, max_iter):
    dtype = x.dtype
    if init_params is None:
        params = initialize_(
            key, x, w, reg_covar, k=k, covariance_type=covariance_type, method=init
        )
    else:
        params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), init_params)
    tol = jnp.asarray(tol, dtype)

    state = _LoopState(
        iteration=jnp.zeros((), jnp.int32),
        params=params,
        prev_log_lik=jnp.asarray(-jnp.inf, dtype),
        log_likelihood=jnp.full((max_iter,), jnp.nan, dtype),
        converged=jnp.zeros((), bool),
    )

    def keep_going(s: _LoopState):
        return (s.iteration < max_iter) & ~s.converged

    def iterate(s: _LoopState) -> _LoopState:
        params, log_lik = _em_step(s.params, x, w, reg_covar)  # L_t, then the M-step
        return _LoopState(
            iteration=s.iteration + 1,
            params=params,
            prev_log_lik=log_lik,
            log_likelihood=s.log_likelihood.at[s.iteration].set(log_lik),
            converged=jnp.abs(log_lik - s.prev_log_lik) < tol,  # sklearn's rule
        )

    final = jax.lax.while_loop(keep_going, iterate, state)
    return final.params, EMHistory(final.log_likelihood, final.iteration, final.converged)


def _check_init_values(init: GMMParams) -> None:
    """Concrete initial parameters must be a valid mixture (weights on the simplex, SPD)."""
    if not checks.is_concrete(init):
        return
    weights, covs = np.asarray(init.weights, np.float64), np.asarray(init.covs, np.float64)
    if np.any(weights < 0) or not np.isclose(weights.sum(), 1.0, rtol=0, atol=1e-5):
        raise ValueError(f"init.weights must be >= 0 and sum to 1, got {weights}")
    checks.finite("init.means", init.means)
    if init.covariance_type == "full":
        eig = np.linalg.eigvalsh(0.5 * (covs + np.swapaxes(covs, -1, -2)))
        ok = np.allclose(covs, np.swapaxes(covs, -1, -2)) and np.all(eig > 0)
    else:
        ok = np.all(np.isfinite(covs)) and np.all(covs > 0)
    if not ok:
        raise ValueError(
            "init.covs must hold symmetric positive-definite covariances (positive variances "
            "for diag and spherical)"
        )


def fit(
    key: jax.Array,
    x: jax.Array,
    *,
    k: int,
    covariance_type: str = "full",
    init: str | GMMParams = "kmeans++",
    max_iter: int = 100,
    tol: float = 1e-3,
    reg_covar: float = 1e-6,
    sample_weight: jax.Array | None = None,
) -> tuple[GMMParams, EMHistory]:
    """Fits a K-component Gaussian mixture to ``x`` by expectation-maximisation.

    Iterates ``theta_{t} = M(x, E(theta_{t-1}, x))`` (Bishop 2006, §9.2.2, eqs. 9.23-9.27)
    from ``theta_0`` given by ``init``, until the mean log-likelihood changes by less than
    ``tol`` or ``max_iter`` iterations have run.

    Args:
      key: a JAX key (used only by the ``"kmeans++"`` and ``"random"`` initialisations).
      x: ``(n, D)`` data; for 1-D data pass ``(n, 1)``.
      k: the number of components, ``1 <= k <= n``.
      covariance_type: ``"full"``, ``"diag"`` or ``"spherical"``.
      init: ``"kmeans++"``, ``"random"`` (see :mod:`genjax.mixture.init`) or a
        :class:`GMMParams` with ``k`` components of this ``covariance_type``.
      max_iter: the most EM iterations, ``>= 1``; also the length of the history.
      tol: stop when ``|L_t - L_{t-1}| < tol`` (mean log-likelihood per point, as
        scikit-learn); ``tol = 0`` runs exactly ``max_iter`` iterations.
      reg_covar: non-negative number added to every variance.
      sample_weight: optional ``(n,)`` non-negative weights (an integer weight counts a
        point that many times).

    Returns:
      ``(params, history)``: the fitted :class:`GMMParams` and an :class:`EMHistory`.

    Example:
      >>> x = genjax.data.load("ring")[:512]
      >>> params, history = fit(jax.random.key(0), x, k=8, max_iter=20)
      >>> params.means.shape, bool(int(history.n_iter) <= 20)
      ((8, 2), True)
    """
    x, w = check_fit_arguments(x, covariance_type=covariance_type, reg_covar=reg_covar,
                               sample_weight=sample_weight)  # fmt: skip
    k = check_k(k, x.shape[0])
    max_iter = checks.positive_int("max_iter", max_iter)
    checks.ndim("tol", tol, 0, "(a scalar)")
    checks.nonnegative("tol", tol)
    if isinstance(init, GMMParams):
        check_params(init, "init")
        if init.covariance_type != covariance_type:
            raise ValueError(
                f"init has covariance_type={init.covariance_type!r} but "
                f"covariance_type={covariance_type!r}"
            )
        if init.num_components != k or init.dim != x.shape[1]:
            raise ValueError(
                f"init must have k={k} components in D={x.shape[1]} dimensions to match k and "
                f"x, got means of shape {jnp.shape(init.means)}"
            )
        _check_init_values(init)
        init_params, method = init, None
    elif isinstance(init, str) and init in INIT_METHODS:
        init_params, method = None, init
    else:
        raise ValueError(f"init must be one of {INIT_METHODS} or a GMMParams, got {init!r}")
    return _fit(
        key,
        x,
        w,
        init_params,
        tol,
        reg_covar,
        k=k,
        covariance_type=covariance_type,
        init=method,
        max_iter=max_iter,
    )
