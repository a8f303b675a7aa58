"""MCMC kernels over a log-density or a score, each one compiled loop over many chains.

Implemented here (each a deterministic *step* that receives its noise, and a loop that runs
the step ``num_steps`` times inside one ``jax.jit`` around one ``lax.scan``):

* :func:`langevin` -- the unadjusted Langevin algorithm (ULA), the Euler-Maruyama
  discretisation of ``dx = grad log pi(x) dt + sqrt(2) dW``:

      x' = x + h grad log pi(x) + sqrt(2 h) xi,      xi ~ N(0, I)              (ULA)

  It is biased: its stationary law is not ``pi`` but a perturbation of order ``h``
  (Roberts & Tweedie 1996, sec. 1.4; on ``N(0, s^2)`` it is ``N(0, 2 s^2 / (2 - h / s^2))``).
* :func:`mala` -- the Metropolis-adjusted Langevin algorithm (Roberts & Tweedie 1996,
  "Exponential convergence of Langevin distributions and their discrete approximations",
  Bernoulli 2(4), sec. 1.4.2): the ULA move as a Metropolis-Hastings proposal,

      q(y | x) = N(y; x + h grad log pi(x), 2 h I)
      a(x, y)  = min(1, pi(y) q(x | y) / (pi(x) q(y | x)))

  Note the order inside ``q``: the *forward* density ``q(y | x)`` is centred at the drift of
  the current point ``x``; the reverse one at the drift of ``y``. blackjax (PR 653) had the
  two swapped, which leaves the chain invariant for a different law; the tests hold
  :func:`mala_proposal_log_density` against this closed form on an asymmetric target.
* :func:`metropolis_hastings` -- random-walk Metropolis (Metropolis et al. 1953):
  ``y = x + step_size * xi`` (``step_size`` is the proposal's standard deviation), accepted
  with probability ``min(1, pi(y) / pi(x))``.
* :func:`hmc` -- Hamiltonian Monte Carlo with a unit mass matrix and a fixed path length
  ``num_leapfrog * step_size`` (Neal 2011, "MCMC using Hamiltonian dynamics", Handbook of
  MCMC, ch. 5, sec. 5.2.3 (leapfrog, eqs. 5.18-5.20) and sec. 5.3.2.1 (the HMC step)):
  momentum ``p ~ N(0, I)``, ``L`` leapfrog steps of the Hamiltonian
  ``H(x, p) = -log pi(x) + |p|^2 / 2``, accepted with probability
  ``min(1, exp(H(x, p) - H(x*, p*)))``.
* :func:`annealed_langevin` -- annealed Langevin dynamics (Song & Ermon 2019, "Generative
  modeling by estimating gradients of the data distribution", Algorithm 1): ULA over a
  decreasing ladder of noise levels ``sigma_1 > ... > sigma_L`` with a noise-conditional
  score ``s(x, sigma)`` and step ``h_i = step_size * sigma_i^2 / sigma_L^2``.

Conventions. Positions ``x`` are ``(chains, dim)``; the log-density is *batched*:
``log_prob_fn(x (chains, dim)) -> (chains,)`` (and ``score_fn(x) -> (chains, dim)``), so an
analytic target or a network evaluates all chains in one call. Gradients come from one
``jax.vjp`` of the batched log-density (chains are independent, so the vector-Jacobian
product with ones gives each chain's own gradient). The Langevin step is genjax's
``x' = x + step_size * score(x) + sqrt(2 * step_size) * xi`` (Song & Ermon write
``x + alpha/2 score + sqrt(alpha) z``: ``alpha = 2 step_size``). The Metropolis-type kernels
cache ``log pi`` and its gradient at the current point in their state, so each step costs
one density-and-gradient evaluation (HMC: ``num_leapfrog``).

Uniforms ``u`` are compared as ``log u < log a``: the proposal is accepted iff
``u < a(x, y)``, which happens with probability ``a``. The keyed samplers draw each step's
noise by :func:`step_noise` (``fold_in(key, step)``), so a test can rebuild it and run
the ``*_from_noise`` loop -- and the NumPy oracle (:mod:`genjax.energy.oracle`) -- on the same
numbers.

Returns. By default only what a sampler's user needs leaves the loop: the final positions
``(chains, dim)`` and the per-chain acceptance rate ``(chains,)``; with
``return_trajectory=True`` the positions after every step, ``(num_steps, chains, dim)``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "ChainState",
    "init_state",
    "step_noise",
    "langevin_step",
    "langevin",
    "langevin_from_noise",
    "mala_proposal_log_density",
    "mala_log_acceptance",
    "mala_step",
    "mala",
    "mala_from_noise",
    "rwmh_log_acceptance",
    "rwmh_step",
    "metropolis_hastings",
    "metropolis_hastings_from_noise",
    "leapfrog",
    "hamiltonian",
    "hmc_step",
    "hmc",
    "hmc_from_noise",
    "annealed_langevin_step_sizes",
    "annealed_langevin",
    "annealed_langevin_from_noise",
]

LogProbFn = Callable[[jax.Array], jax.Array]  # (chains, dim) -> (chains,)
ScoreFn = Callable[[jax.Array], jax.Array]  # (chains, dim) -> (chains, dim)
NoiseScoreFn = Callable[[jax.Array, jax.Array], jax.Array]  # (x (C, D), sigma ()) -> (C, D)


# ---------------------------------------------------------------------------------------
# Argument checks (trace time)
# ---------------------------------------------------------------------------------------


def _is_concrete(v: Any) -> bool:
    return not isinstance(v, jax.core.Tracer)


def _check_positive(value: Any, name: str) -> None:
    """``value > 0`` and finite wherever it is known at trace time (traced values pass)."""
    if not _is_concrete(value):
        return
    arr = np.asarray(value, dtype=np.float64)
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")


def _check_count(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_x0(x0: Any) -> jax.Array:
    x0 = jnp.asarray(x0)
    if x0.ndim != 2 or x0.shape[0] < 1 or x0.shape[1] < 1:
        raise ValueError(f"x0 must have shape (chains, dim) with both >= 1, got {x0.shape}")
    if not jnp.issubdtype(x0.dtype, jnp.floating):
        raise ValueError(f"x0 must be floating point, got dtype {x0.dtype}")
    return x0


def _check_log_prob_fn(log_prob_fn: LogProbFn, x: jax.Array) -> None:
    out = jax.eval_shape(log_prob_fn, jax.ShapeDtypeStruct(x.shape, x.dtype))
    if not hasattr(out, "shape") or out.shape != (x.shape[0],):
        shape = getattr(out, "shape", type(out).__name__)
        raise ValueError(
            f"log_prob_fn must map x (chains, dim) = {x.shape} to log-densities of shape "
            f"(chains,) = ({x.shape[0]},), got {shape}"
        )


def _check_score_fn(score_fn: Callable, x: jax.Array, *extra: Any, name: str = "score_fn") -> None:
    out = jax.eval_shape(score_fn, jax.ShapeDtypeStruct(x.shape, x.dtype), *extra)
    if not hasattr(out, "shape") or out.shape != x.shape:
        shape = getattr(out, "shape", type(out).__name__)
        raise ValueError(f"{name} must map x {x.shape} to a score of the same shape, got {shape}")


def _check_noise(name: str, arr: Any, shape: tuple[int, ...]) -> jax.Array:
    arr = jnp.asarray(arr)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    return arr


# ---------------------------------------------------------------------------------------
# State and noise
# ---------------------------------------------------------------------------------------


class ChainState(NamedTuple):
    """The state of a batch of Metropolis-type chains.

    Attributes:
      position: ``(chains, dim)`` current points ``x``.
      log_prob: ``(chains,)`` ``log pi(x)`` (cached: proposals need it every step).
      grad: ``(chains, dim)`` ``grad log pi(x)`` (cached for MALA and HMC).
    """

    position: jax.Array
    log_prob: jax.Array
    grad: jax.Array


def _value_and_grad(log_prob_fn: LogProbFn, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    # One reverse pass of the batched density: chains are independent, so the VJP with a
    # cotangent of ones returns each chain's own gradient d log pi(x_c) / d x_c.
    lp, vjp = jax.vjp(log_prob_fn, x)
    (grad,) = vjp(jnp.ones_like(lp))
    return lp, grad


def init_state(log_prob_fn: LogProbFn, x0: jax.Array) -> ChainState:
    """``ChainState`` at ``x0 (chains, dim)``: positions, log-densities and gradients."""
    lp, grad = _value_and_grad(log_prob_fn, x0)
    return ChainState(x0, lp, grad)


def step_noise(
    key: jax.Array, step: Any, shape: tuple[int, int], dtype: Any = jnp.float32
) -> tuple[jax.Array, jax.Array]:
    """The noise the keyed samplers use at ``step``: ``(xi (chains, dim), u (chains,))``.

    ``xi ~ N(0, I)`` (the Langevin / random-walk / momentum draw) and ``u ~ U(0, 1)`` (the
    Metropolis uniform), both from ``fold_in(key, step)``.
    """
    normal_key, uniform_key = jax.random.split(jax.random.fold_in(key, step))
    xi = jax.random.normal(normal_key, shape, dtype)
    u = jax.random.uniform(uniform_key, shape[:1], dtype)
    return xi, u


# ---------------------------------------------------------------------------------------
# Unadjusted Langevin
# ---------------------------------------------------------------------------------------


def langevin_step(
    score_fn: ScoreFn,
    x: jax.Array,
    xi: jax.Array,
    *,
    step_size: Any,
    noise_scale: Any = None,
) -> jax.Array:
    """One unadjusted Langevin step ``x' = x + h score(x) + sqrt(2 h) xi``.

    Args:
      score_fn: ``(chains, dim) -> (chains, dim)``, ``grad log pi``.
      x: ``(chains, dim)``.
      xi: ``(chains, dim)`` standard normal noise.
      step_size: ``h > 0`` (scalar).
      noise_scale: the noise's standard deviation; default ``sqrt(2 h)`` (exact ULA).
        EBM training often decouples it (Du & Mordatch 2019, sec. 3.1, use a smaller one):
        then the chain targets a tempered density, not ``pi``.

    Returns:
      ``(chains, dim)`` the new positions.
    """
    scale = jnp.sqrt(2.0 * step_size) if noise_scale is None else noise_scale
    return x + step_size * score_fn(x) + scale * xi  # ULA (Euler-Maruyama of Langevin SDE)


def _langevin_scan(score_fn, x0, xs, body_noise, step_size, noise_scale, return_trajectory):
    def body(x, inp):
        x = langevin_step(score_fn, x, body_noise(inp), step_size=step_size,
                          noise_scale=noise_scale)  # fmt: skip
        return x, (x if return_trajectory else None)

    x, traj = jax.lax.scan(body, x0, xs)
    return traj if return_trajectory else x


@functools.partial(jax.jit, static_argnames=("score_fn", "num_steps", "return_trajectory"))
def _langevin_jit(key, score_fn, x0, step_size, noise_scale, num_steps, return_trajectory):
    step_size = jnp.asarray(step_size, x0.dtype)

    def noise(i):
        return step_noise(key, i, x0.shape, x0.dtype)[0]

    return _langevin_scan(score_fn, x0, jnp.arange(num_steps), noise, step_size, noise_scale,
                          return_trajectory)  # fmt: skip


def langevin(
    key: jax.Array,
    score_fn: ScoreFn,
    x0: jax.Array,
    *,
    step_size: Any,
    num_steps: int,
    noise_scale: Any = None,
    return_trajectory: bool = False,
) -> jax.Array:
    """Unadjusted Langevin algorithm: ``num_steps`` steps of :func:`langevin_step`.

        x_{t+1} = x_t + h score(x_t) + sqrt(2 h) xi_t,   xi_t ~ N(0, I) from step_noise(key, t)

    Args:
      key: a PRNG key.
      score_fn: ``(chains, dim) -> (chains, dim)``, the score ``grad log pi`` (static: a
        new function compiles a new program).
      x0: ``(chains, dim)`` starting points.
      step_size: ``h > 0``; may be traced (one program serves every step size).
      num_steps: number of steps, >= 1 (static).
      noise_scale: see :func:`langevin_step`.
      return_trajectory: return every step's positions instead of the last.

    Returns:
      ``(chains, dim)`` final positions, or ``(num_steps, chains, dim)``.

    Raises:
      ValueError: ``step_size <= 0``, ``num_steps < 1``, bad ``x0``, or a ``score_fn``
        whose output is not ``(chains, dim)``.
    """
    x0 = _check_x0(x0)
    _check_positive(step_size, "step_size")
    num_steps = _check_count(num_steps, "num_steps")
    if noise_scale is not None:
        _check_positive(noise_scale, "noise_scale")
    _check_score_fn(score_fn, x0)
    return _langevin_jit(key, score_fn, x0, step_size, noise_scale, num_steps,
                         bool(return_trajectory))  # fmt: skip


@functools.partial(jax.jit, static_argnames=("score_fn", "return_trajectory"))
def langevin_from_noise(
    score_fn: ScoreFn,
    x0: jax.Array,
    noise: jax.Array,
    *,
    step_size: Any,
    noise_scale: Any = None,
    return_trajectory: bool = False,
) -> jax.Array:
    """:func:`langevin` on given noise ``noise (num_steps, chains, dim)``."""
    x0 = _check_x0(x0)
    _check_positive(step_size, "step_size")
    noise = _check_noise("noise", noise, (noise.shape[0], *x0.shape))
    return _langevin_scan(score_fn, x0, noise, lambda n: n, step_size, noise_scale,
                          return_trajectory)  # fmt: skip


# ---------------------------------------------------------------------------------------
# MALA
# ---------------------------------------------------------------------------------------


def mala_proposal_log_density(
    y: jax.Array, x: jax.Array, grad_x: jax.Array, step_size: Any
) -> jax.Array:
    """``log q(y | x) = log N(y; x + h grad log pi(x), 2 h I)``, the MALA proposal density.

    Args:
      y: ``(chains, dim)`` proposed points.
      x: ``(chains, dim)`` current points.
      grad_x: ``(chains, dim)`` ``grad log pi(x)`` at the *current* points.
      step_size: ``h > 0``.

    Returns:
      ``(chains,)`` normalised log-densities.
    """
    dim = x.shape[-1]
    resid = y - x - step_size * grad_x  # y - (x + h grad log pi(x))
    # log N(y; m, 2h I) = -|y - m|^2 / (4h) - D/2 log(4 pi h)
    return -jnp.sum(resid**2, axis=-1) / (4.0 * step_size) - 0.5 * dim * jnp.log(
        4.0 * math.pi * step_size
    )


def _mala_log_ratio(x, lp_x, g_x, y, lp_y, g_y, step_size):
    # log [pi(y) q(x | y)] - log [pi(x) q(y | x)]; the normalisers of q cancel.
    log_q_fwd = mala_proposal_log_density(y, x, g_x, step_size)  # q(y | x): drift at x
    log_q_rev = mala_proposal_log_density(x, y, g_y, step_size)  # q(x | y): drift at y
    return lp_y - lp_x + log_q_rev - log_q_fwd


def mala_log_acceptance(
    log_prob_fn: LogProbFn, x: jax.Array, y: jax.Array, *, step_size: Any
) -> jax.Array:
    """``log a(x, y) = min(0, log pi(y) q(x|y) - log pi(x) q(y|x))`` for MALA.

    Args:
      log_prob_fn: batched ``(chains, dim) -> (chains,)``.
      x, y: ``(chains, dim)`` current and proposed points.
      step_size: ``h > 0``.

    Returns:
      ``(chains,)`` log acceptance probabilities (<= 0).
    """
    lp_x, g_x = _value_and_grad(log_prob_fn, x)
    lp_y, g_y = _value_and_grad(log_prob_fn, y)
    return jnp.minimum(0.0, _mala_log_ratio(x, lp_x, g_x, y, lp_y, g_y, step_size))


def mala_step(
    log_prob_fn: LogProbFn, state: ChainState, xi: jax.Array, u: jax.Array, *, step_size: Any
) -> tuple[ChainState, jax.Array]:
    """One MALA step on given noise (Roberts & Tweedie 1996, sec. 1.4.2).

        y = x + h grad log pi(x) + sqrt(2 h) xi                  (proposal ~ q(. | x))
        accept iff log u < log pi(y) q(x|y) - log pi(x) q(y|x)   (probability a(x, y))

    Args:
      log_prob_fn: batched ``(chains, dim) -> (chains,)``.
      state: the :class:`ChainState` at ``x``.
      xi: ``(chains, dim)`` standard normal noise.
      u: ``(chains,)`` uniforms in (0, 1).
      step_size: ``h > 0``.

    Returns:
      ``(new_state, accepted (chains,) bool)``.
    """
    x, lp_x, g_x = state
    y = x + step_size * g_x + jnp.sqrt(2.0 * step_size) * xi  # the ULA move as proposal
    lp_y, g_y = _value_and_grad(log_prob_fn, y)
    log_ratio = _mala_log_ratio(x, lp_x, g_x, y, lp_y, g_y, step_size)
    accept = jnp.log(u) < log_ratio  # (chains,); NaN ratios (overflow) reject
    keep = accept[:, None]
    new = ChainState(
        jnp.where(keep, y, x), jnp.where(accept, lp_y, lp_x), jnp.where(keep, g_y, g_x)
    )
    return new, accept


def _mh_scan(step, state, xs, body_noise, return_trajectory):
    """The shared loop: carry = (state, accepted counts (chains,))."""

    def body(carry, inp):
        st, count = carry
        xi, u = body_noise(inp)
        st, accept = step(st, xi, u)
        count = count + accept.astype(count.dtype)
        return (st, count), (st.position if return_trajectory else None)

    count0 = jnp.zeros(state.position.shape[:1], state.position.dtype)
    (state, count), traj = jax.lax.scan(body, (state, count0), xs)
    num_steps = jax.tree.leaves(xs)[0].shape[0]
    samples = traj if return_trajectory else state.position
    return samples, count / num_steps


def _keyed_noise(key, x0):
    return lambda i: step_noise(key, i, x0.shape, x0.dtype)


@functools.partial(jax.jit, static_argnames=("log_prob_fn", "num_steps", "return_trajectory"))
def _mala_jit(key, log_prob_fn, x0, step_size, num_steps, return_trajectory):
    step_size = jnp.asarray(step_size, x0.dtype)
    step = functools.partial(mala_step, log_prob_fn, step_size=step_size)
    return _mh_scan(step, init_state(log_prob_fn, x0), jnp.arange(num_steps),
                    _keyed_noise(key, x0), return_trajectory)  # fmt: skip


def _check_mcmc(log_prob_fn, x0, step_size, num_steps):
    x0 = _check_x0(x0)
    _check_positive(step_size, "step_size")
    num_steps = _check_count(num_steps, "num_steps")
    _check_log_prob_fn(log_prob_fn, x0)
    return x0, num_steps


def mala(
    key: jax.Array,
    log_prob_fn: LogProbFn,
    x0: jax.Array,
    *,
    step_size: Any,
    num_steps: int,
    return_trajectory: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """Metropolis-adjusted Langevin algorithm over many chains (one compiled loop).

    Args:
      key: a PRNG key.
      log_prob_fn: batched ``(chains, dim) -> (chains,)`` log-density (up to a constant);
        static.
      x0: ``(chains, dim)`` starting points.
      step_size: ``h > 0`` (proposal ``N(x + h grad log pi(x), 2 h I)``); may be traced.
      num_steps: >= 1 (static).
      return_trajectory: return every step's positions.

    Returns:
      ``(samples, acceptance_rate)``: samples ``(chains, dim)`` (final) or
      ``(num_steps, chains, dim)``; acceptance_rate ``(chains,)``, the fraction of accepted
      proposals of each chain.

    Raises:
      ValueError: ``step_size <= 0``, ``num_steps < 1``, bad ``x0``, or a ``log_prob_fn``
        not returning ``(chains,)``.

    Example:
      >>> target = targets.ring()
      >>> x, acc = mala(key, target.log_prob, jnp.zeros((1024, 2)), step_size=0.05,
      ...               num_steps=1000)
    """
    x0, num_steps = _check_mcmc(log_prob_fn, x0, step_size, num_steps)
    return _mala_jit(key, log_prob_fn, x0, step_size, num_steps, bool(return_trajectory))


@functools.partial(jax.jit, static_argnames=("log_prob_fn", "return_trajectory"))
def mala_from_noise(
    log_prob_fn: LogProbFn,
    x0: jax.Array,
    xi: jax.Array,
    u: jax.Array,
    *,
    step_size: Any,
    return_trajectory: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """:func:`mala` on given noise: ``xi (num_steps, chains, dim)``, ``u (num_steps, chains)``."""
    x0 = _check_x0(x0)
    _check_positive(step_size, "step_size")
    _check_log_prob_fn(log_prob_fn, x0)
    u = _check_noise("u", u, (xi.shape[0], x0.shape[0]))
    step = functools.partial(mala_step, log_prob_fn, step_size=step_size)
    return _mh_scan(step, init_state(log_prob_fn, x0), (xi, u), lambda n: n, return_trajectory)


# ---------------------------------------------------------------------------------------
# Random-walk Metropolis-Hastings
# ---------------------------------------------------------------------------------------


def rwmh_log_acceptance(log_prob_fn: LogProbFn, x: jax.Array, y: jax.Array) -> jax.Array:
    """``log a(x, y) = min(0, log pi(y) - log pi(x))``: the proposal ``N(x, s^2 I)`` is
    symmetric, so its densities cancel (Metropolis et al. 1953). ``x, y: (chains, dim)``."""
    return jnp.minimum(0.0, log_prob_fn(y) - log_prob_fn(x))


def rwmh_step(
    log_prob_fn: LogProbFn, state: ChainState, xi: jax.Array, u: jax.Array, *, step_size: Any
) -> tuple[ChainState, jax.Array]:
    """One random-walk Metropolis step: ``y = x + s xi``, accept iff ``log u < log pi(y) -
    log pi(x)``. ``state.grad`` is carried unchanged (unused). Shapes as :func:`mala_step`."""
    x, lp_x, g = state
    y = x + step_size * xi  # y ~ N(x, s^2 I)
    lp_y = log_prob_fn(y)
    accept = jnp.log(u) < lp_y - lp_x
    new = ChainState(jnp.where(accept[:, None], y, x), jnp.where(accept, lp_y, lp_x), g)
    return new, accept


def _rwmh_init(log_prob_fn, x0):
    return ChainState(x0, log_prob_fn(x0), jnp.zeros_like(x0))


@functools.partial(jax.jit, static_argnames=("log_prob_fn", "num_steps", "return_trajectory"))
def _rwmh_jit(key, log_prob_fn, x0, step_size, num_steps, return_trajectory):
    step_size = jnp.asarray(step_size, x0.dtype)
    step = functools.partial(rwmh_step, log_prob_fn, step_size=step_size)
    return _mh_scan(step, _rwmh_init(log_prob_fn, x0), jnp.arange(num_steps),
                    _keyed_noise(key, x0), return_trajectory)  # fmt: skip


def metropolis_hastings(
    key: jax.Array,
    log_prob_fn: LogProbFn,
    x0: jax.Array,
    *,
    step_size: Any,
    num_steps: int,
    return_trajectory: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """Random-walk Metropolis-Hastings over many chains; proposal ``N(x, step_size^2 I)``.

    Args and Returns as :func:`mala` (``step_size`` is the proposal's standard deviation).
    """
    x0, num_steps = _check_mcmc(log_prob_fn, x0, step_size, num_steps)
    return _rwmh_jit(key, log_prob_fn, x0, step_size, num_steps, bool(return_trajectory))


@functools.partial(jax.jit, static_argnames=("log_prob_fn", "return_trajectory"))
def metropolis_hastings_from_noise(
    log_prob_fn: LogProbFn,
    x0: jax.Array,
    xi: jax.Array,
    u: jax.Array,
    *,
    step_size: Any,
    return_trajectory: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """:func:`metropolis_hastings` on given noise (shapes as :func:`mala_from_noise`)."""
    x0 = _check_x0(x0)
    _check_positive(step_size, "step_size")
    _check_log_prob_fn(log_prob_fn, x0)
    u = _check_noise("u", u, (xi.shape[0], x0.shape[0]))
    step = functools.partial(rwmh_step, log_prob_fn, step_size=step_size)
    return _mh_scan(step, _rwmh_init(log_prob_fn, x0), (xi, u), lambda n: n, return_trajectory)


# ---------------------------------------------------------------------------------------
# HMC
# ---------------------------------------------------------------------------------------


def hamiltonian(log_prob: jax.Array, p: jax.Array) -> jax.Array:
    """``H(x, p) = -log pi(x) + |p|^2 / 2`` (unit mass), ``log_prob: (chains,)``,
    ``p: (chains, dim)`` -> ``(chains,)`` (Neal 2011, eqs. 5.13-5.14)."""
    return -log_prob + 0.5 * jnp.sum(p**2, axis=-1)


def _leapfrog(log_prob_fn, x, p, grad, step_size, num_leapfrog):
    # Neal (2011), eqs. 5.18-5.20, the half kicks of consecutive steps merged:
    #   p <- p + eps/2 grad(x);  L times { x <- x + eps p;  p <- p + eps grad(x) },
    # the last kick a half one.
    p = p + 0.5 * step_size * grad

    def body(i, carry):
        x, p, _, _ = carry
        x = x + step_size * p
        lp, g = _value_and_grad(log_prob_fn, x)
        kick = jnp.where(i == num_leapfrog - 1, 0.5 * step_size, step_size)
        return x, p + kick * g, lp, g

    lp0 = jnp.zeros(x.shape[:1], x.dtype)
    return jax.lax.fori_loop(0, num_leapfrog, body, (x, p, lp0, grad))


def leapfrog(
    log_prob_fn: LogProbFn, x: jax.Array, p: jax.Array, *, step_size: Any, num_leapfrog: int
) -> tuple[jax.Array, jax.Array]:
    """``num_leapfrog`` leapfrog steps of Hamilton's equations for ``H = -log pi + |p|^2/2``.

    The map is volume-preserving and reversible (flipping ``p`` and integrating again
    returns to the start; Neal 2011, sec. 5.2.3.3) -- the two facts that make the HMC
    acceptance :func:`hmc_step` exact.

    Args:
      log_prob_fn: batched ``(chains, dim) -> (chains,)``.
      x, p: ``(chains, dim)`` positions and momenta.
      step_size: ``eps > 0``.
      num_leapfrog: ``L >= 1``.

    Returns:
      ``(x*, p*)``, both ``(chains, dim)``.
    """
    num_leapfrog = _check_count(num_leapfrog, "num_leapfrog")
    _, grad = _value_and_grad(log_prob_fn, x)
    x, p, _, _ = _leapfrog(log_prob_fn, x, p, grad, step_size, num_leapfrog)
    return x, p


def hmc_step(
    log_prob_fn: LogProbFn,
    state: ChainState,
    p: jax.Array,
    u: jax.Array,
    *,
    step_size: Any,
    num_leapfrog: int,
) -> tuple[ChainState, jax.Array]:
    """One HMC step (Neal 2011, sec. 5.3.2.1) on given momentum ``p`` and uniforms ``u``.

        (x*, p*) = leapfrog^L(x, p);  accept iff log u < H(x, p) - H(x*, p*)

    Args:
      log_prob_fn: batched ``(chains, dim) -> (chains,)``.
      state: :class:`ChainState` at ``x``.
      p: ``(chains, dim)`` momentum draws ``~ N(0, I)``.
      u: ``(chains,)`` uniforms.
      step_size: ``eps > 0``.
      num_leapfrog: ``L >= 1`` (static).

    Returns:
      ``(new_state, accepted (chains,) bool)``.
    """
    x, lp_x, g_x = state
    y, p_new, lp_y, g_y = _leapfrog(log_prob_fn, x, p, g_x, step_size, num_leapfrog)
    log_ratio = hamiltonian(lp_x, p) - hamiltonian(lp_y, p_new)  # -dH
    accept = jnp.log(u) < log_ratio
    keep = accept[:, None]
    new = ChainState(
        jnp.where(keep, y, x), jnp.where(accept, lp_y, lp_x), jnp.where(keep, g_y, g_x)
    )
    return new, accept


@functools.partial(
    jax.jit, static_argnames=("log_prob_fn", "num_leapfrog", "num_steps", "return_trajectory")
)
def _hmc_jit(key, log_prob_fn, x0, step_size, num_leapfrog, num_steps, return_trajectory):
    step_size = jnp.asarray(step_size, x0.dtype)
    step = functools.partial(hmc_step, log_prob_fn, step_size=step_size, num_leapfrog=num_leapfrog)
    return _mh_scan(step, init_state(log_prob_fn, x0), jnp.arange(num_steps),
                    _keyed_noise(key, x0), return_trajectory)  # fmt: skip


def hmc(
    key: jax.Array,
    log_prob_fn: LogProbFn,
    x0: jax.Array,
    *,
    step_size: Any,
    num_leapfrog: int,
    num_steps: int,
    return_trajectory: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """Hamiltonian Monte Carlo over many chains, fixed path length ``L * eps``.

    Args:
      key: a PRNG key (momenta and uniforms from :func:`step_noise`).
      log_prob_fn: batched ``(chains, dim) -> (chains,)`` (static).
      x0: ``(chains, dim)``.
      step_size: leapfrog step ``eps > 0``; may be traced.
      num_leapfrog: ``L >= 1`` leapfrog steps per proposal (static).
      num_steps: >= 1 (static).
      return_trajectory: return every step's positions.

    Returns:
      ``(samples, acceptance_rate)`` as :func:`mala`.
    """
    x0, num_steps = _check_mcmc(log_prob_fn, x0, step_size, num_steps)
    num_leapfrog = _check_count(num_leapfrog, "num_leapfrog")
    return _hmc_jit(key, log_prob_fn, x0, step_size, num_leapfrog, num_steps,
                    bool(return_trajectory))  # fmt: skip


@functools.partial(
    jax.jit, static_argnames=("log_prob_fn", "num_leapfrog", "return_trajectory")
)
def hmc_from_noise(
    log_prob_fn: LogProbFn,
    x0: jax.Array,
    p: jax.Array,
    u: jax.Array,
    *,
    step_size: Any,
    num_leapfrog: int,
    return_trajectory: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """:func:`hmc` on given momenta ``p (num_steps, chains, dim)`` and ``u (num_steps, chains)``."""
    x0 = _check_x0(x0)
    _check_positive(step_size, "step_size")
    _check_log_prob_fn(log_prob_fn, x0)
    num_leapfrog = _check_count(num_leapfrog, "num_leapfrog")
    u = _check_noise("u", u, (p.shape[0], x0.shape[0]))
    step = functools.partial(hmc_step, log_prob_fn, step_size=step_size, num_leapfrog=num_leapfrog)
    return _mh_scan(step, init_state(log_prob_fn, x0), (p, u), lambda n: n, return_trajectory)


# ---------------------------------------------------------------------------------------
# Annealed Langevin dynamics
# ---------------------------------------------------------------------------------------


def annealed_langevin_step_sizes(sigmas: jax.Array, step_size: Any) -> jax.Array:
    """``h_i = step_size * sigma_i^2 / sigma_L^2`` (Song & Ermon 2019, Algorithm 1, line 3,
    ``alpha_i = eps sigma_i^2 / sigma_L^2`` with ``alpha_i = 2 h_i``), ``sigmas: (L,)``."""
    return step_size * sigmas**2 / sigmas[-1] ** 2


def _annealed_scan(score_fn, x0, sigmas, step_size, num_steps_per_level, xs, body_noise,
                   denoise, return_trajectory):  # fmt: skip
    sigmas = sigmas.astype(x0.dtype)
    steps = annealed_langevin_step_sizes(sigmas, step_size)  # (L,)

    def body(x, inp):
        i, noise_inp = inp
        level = i // num_steps_per_level  # T steps per level, levels in decreasing sigma
        sigma, h = sigmas[level], steps[level]
        # x <- x + h s(x, sigma_i) + sqrt(2 h) z   (Algorithm 1, line 6, alpha_i = 2 h_i)
        x = x + h * score_fn(x, sigma) + jnp.sqrt(2.0 * h) * body_noise(noise_inp)
        return x, (x if return_trajectory else None)

    total = sigmas.shape[0] * num_steps_per_level
    x, traj = jax.lax.scan(body, x0, (jnp.arange(total), xs))
    if denoise:
        # One Tweedie step at the smallest level, E[x_0 | x] = x + sigma_L^2 s(x, sigma_L)
        # (Jolicoeur-Martineau et al. 2021, "Adversarial score matching ...", sec. 3).
        x = x + sigmas[-1] ** 2 * score_fn(x, sigmas[-1])
        if return_trajectory:
            traj = traj.at[-1].set(x)
    return traj if return_trajectory else x


def _check_sigmas(sigmas: Any) -> jax.Array:
    sigmas = jnp.asarray(sigmas)
    if sigmas.ndim != 1 or sigmas.shape[0] < 1:
        raise ValueError(f"sigmas must have shape (L,) with L >= 1, got {sigmas.shape}")
    if _is_concrete(sigmas):
        s = np.asarray(sigmas, np.float64)
        if np.any(s <= 0) or not np.all(np.isfinite(s)) or np.any(np.diff(s) > 0):
            raise ValueError(f"sigmas must be finite, > 0 and non-increasing, got {s}")
    return sigmas


@functools.partial(
    jax.jit,
    static_argnames=("score_fn", "num_steps_per_level", "denoise", "return_trajectory"),
)
def _annealed_jit(key, score_fn, x0, sigmas, step_size, num_steps_per_level, denoise,
                  return_trajectory):  # fmt: skip
    total = sigmas.shape[0] * num_steps_per_level

    def noise(i):
        return step_noise(key, i, x0.shape, x0.dtype)[0]

    return _annealed_scan(score_fn, x0, sigmas, step_size, num_steps_per_level,
                          jnp.arange(total), noise, denoise, return_trajectory)  # fmt: skip


def annealed_langevin(
    key: jax.Array,
    score_fn: NoiseScoreFn,
    x0: jax.Array,
    *,
    sigmas: Any,
    step_size: Any,
    num_steps_per_level: int,
    denoise: bool = True,
    return_trajectory: bool = False,
) -> jax.Array:
    """Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1).

        for i = 1..L:  h_i = step_size sigma_i^2 / sigma_L^2
          for t = 1..T:  x <- x + h_i s(x, sigma_i) + sqrt(2 h_i) z_t

    followed (``denoise=True``) by the Tweedie step ``x + sigma_L^2 s(x, sigma_L)``, which
    removes the last level's noise.

    Args:
      key: a PRNG key.
      score_fn: ``(x (chains, dim), sigma ()) -> (chains, dim)``, the noise-conditional
        score ``grad log p_sigma`` (static).
      x0: ``(chains, dim)`` start (Song & Ermon: uniform noise).
      sigmas: ``(L,)`` decreasing noise levels.
      step_size: ``h_L > 0`` (Song & Ermon's ``eps / 2``).
      num_steps_per_level: ``T >= 1`` (static).
      denoise: add the final Tweedie step.
      return_trajectory: return every step's positions ``(L * T, chains, dim)``.

    Returns:
      ``(chains, dim)`` samples, or the trajectory.
    """
    x0 = _check_x0(x0)
    sigmas = _check_sigmas(sigmas)
    _check_positive(step_size, "step_size")
    t = _check_count(num_steps_per_level, "num_steps_per_level")
    _check_score_fn(score_fn, x0, jax.ShapeDtypeStruct((), x0.dtype))
    return _annealed_jit(key, score_fn, x0, sigmas, step_size, t, bool(denoise),
                         bool(return_trajectory))  # fmt: skip


@functools.partial(
    jax.jit,
    static_argnames=("score_fn", "num_steps_per_level", "denoise", "return_trajectory"),
)
def annealed_langevin_from_noise(
    score_fn: NoiseScoreFn,
    x0: jax.Array,
    noise: jax.Array,
    *,
    sigmas: Any,
    step_size: Any,
    num_steps_per_level: int,
    denoise: bool = True,
    return_trajectory: bool = False,
) -> jax.Array:
    """:func:`annealed_langevin` on given noise ``noise (L * T, chains, dim)``."""
    x0 = _check_x0(x0)
    sigmas = _check_sigmas(sigmas)
    t = _check_count(num_steps_per_level, "num_steps_per_level")
    noise = _check_noise("noise", noise, (sigmas.shape[0] * t, *x0.shape))
    return _annealed_scan(score_fn, x0, sigmas, step_size, t, noise, lambda n: n, denoise,
                          return_trajectory)  # fmt: skip
