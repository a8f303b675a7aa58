"""What every MCMC kernel of :mod:`genjax.energy.mcmc` shares: the chain state, the noise,
the fused log-density-and-gradient pass, the argument checks, and the one compiled
Metropolis-Hastings loop that MALA, random-walk Metropolis and HMC run.

A Metropolis-Hastings kernel (Metropolis et al. 1953; Hastings 1970, "Monte Carlo sampling
methods using Markov chains and their applications", Biometrika 57(1), eq. 2.2) proposes
``y ~ q(. | x)`` and moves there with probability

    a(x, y) = min(1, pi(y) q(x | y) / (pi(x) q(y | x)))

which leaves ``pi`` invariant (detailed balance ``pi(x) q(y|x) a(x,y) = pi(y) q(x|y) a(y,x)``).
A kernel here supplies the proposal and ``log [pi(y) q(x|y) / (pi(x) q(y|x))]``;
:func:`accept_reject` draws the decision from a given uniform ``u`` (``accept iff
log u < log ratio``, which happens with probability ``a``) and :func:`sample` runs the
kernel's step ``num_steps`` times in one ``lax.scan`` inside one compiled program.

The model. A *model* is a callable pytree ``model(x (chains, *event)) -> (chains,)``, the
log-density ``log pi`` up to a constant, batched over chains (an analytic target's bound
method ``target.log_prob``, an ``nnx.Module``, a ``jax.tree_util.Partial``). It is a traced
argument of the compiled program (:func:`genjax.model.model_jit`): a new target or new
weights of the same shapes reuse the program. A plain Python function is accepted too; it
is static, so a new function object compiles anew.

One density evaluation per step. The chain state caches ``log pi(x)`` and
``grad log pi(x)`` at the current point; a step evaluates both at the proposal in one
reverse-mode pass (:func:`value_and_grad`: ``jax.value_and_grad`` of ``sum_c log pi(x_c)``,
whose gradient is each chain's own, the chains being independent) and reuses them in the
acceptance ratio and, when accepted, as the next state's cache.

Noise. A keyed sampler draws step ``t``'s noise by :func:`step_noise` from
``fold_in(key, t)``: ``xi ~ N(0, I)`` of the positions' shape (the Langevin draw, the
random-walk increment, or the HMC momentum) and ``u ~ U(0, 1)`` per chain. The
``*_from_noise`` twins take the same numbers stacked over steps (:func:`draw_noise`), so
a test -- and the NumPy oracle (:mod:`genjax.energy.oracle`) -- runs on the same draws.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.model import Model, model_jit

__all__ = [
    "ChainState",
    "ChainInfo",
    "MetropolisNoise",
    "Kernel",
    "value_and_grad",
    "init",
    "per_chain",
    "step_noise",
    "draw_noise",
    "accept_reject",
    "sample",
    "check_x0",
    "check_model",
    "check_noise",
    "check_inputs",
]


class ChainState(NamedTuple):
    """The state of a batch of Metropolis chains (blackjax's ``HMCState``, batched).

    Attributes:
      position: ``(chains, *event)`` the current points ``x`` (``event`` is ``(dim,)`` for
        vectors).
      log_prob: ``(chains,)`` ``log pi(x)``, cached: the acceptance ratio needs it at every
        step.
      grad: ``(chains, *event)`` ``grad log pi(x)``, cached for the Langevin drift of MALA and
        the first half kick of HMC; zeros for random-walk Metropolis, which never reads it.
    """

    position: jax.Array
    log_prob: jax.Array
    grad: jax.Array


class ChainInfo(NamedTuple):
    """What one Metropolis step did, per chain.

    Attributes:
      accepted: ``(chains,)`` bool, whether the proposal was taken.
      acceptance_prob: ``(chains,)`` the Metropolis-Hastings probability
        ``a(x, y) = min(1, exp(log ratio))`` (0 where the ratio is NaN, e.g. an overflowed
        density: such a proposal is always rejected). Its mean over steps is a lower-variance
        estimate of the acceptance rate than the mean of ``accepted``.
      proposal_log_prob: ``(chains,)`` ``log pi(y)`` at the proposal, accepted or not.
      num_evals: ``()`` int32, the evaluations of ``log pi`` (with its gradient where the
        kernel uses one) that the step spent on each chain: 1 for MALA and random-walk
        Metropolis, ``num_leapfrog`` for HMC.
    """

    accepted: jax.Array
    acceptance_prob: jax.Array
    proposal_log_prob: jax.Array
    num_evals: jax.Array


class MetropolisNoise(NamedTuple):
    """The noise of a Metropolis kernel, one step's or stacked over steps (leading axis).

    Attributes:
      normal: ``([num_steps,] chains, *event)`` standard normal draws ``xi``.
      uniform: ``([num_steps,] chains)`` uniforms ``u`` in ``[0, 1)`` for the decisions.
    """

    normal: jax.Array
    uniform: jax.Array


class Kernel(NamedTuple):
    """A Metropolis kernel as the loop sees it (static: two functions).

    Attributes:
      init: ``init(model, x0) -> ChainState``.
      step: ``step(model, state, noise, *, step_size, **options) -> (ChainState, ChainInfo)``.
    """

    init: Callable[[Model, jax.Array], ChainState]
    step: Callable[..., tuple[ChainState, ChainInfo]]


# ---------------------------------------------------------------------------------------
# The density and the state
# ---------------------------------------------------------------------------------------


def value_and_grad(model: Model, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(log pi(x) (chains,), grad log pi(x) (chains, *event))`` in one reverse pass.

    ``jax.value_and_grad`` of ``sum_c log pi(x_c)``: the chains are independent, so the
    gradient of the sum with respect to ``x_c`` is chain ``c``'s own gradient; the
    per-chain values ride along as the auxiliary output (no second forward pass). A model
    with a hand-written backward (``jax.custom_vjp``, as the Gaussian-mixture target's
    ``log_prob``) is differentiated through it.
    """

    def total(z: jax.Array) -> tuple[jax.Array, jax.Array]:
        log_p = model(z)  # (chains,)
        return jnp.sum(log_p), log_p

    (_, log_p), grad = jax.value_and_grad(total, has_aux=True)(x)
    return log_p, grad


def init(model: Model, x0: jax.Array) -> ChainState:
    """The :class:`ChainState` at ``x0 (chains, *event)``: positions, log-densities, gradients."""
    x0 = check_x0(x0)
    check_model(model, x0)  # (chains,) log-densities, never (chains, 1) broadcast
    log_p, grad = value_and_grad(model, x0)
    return ChainState(x0, log_p, grad)


def per_chain(values: jax.Array, like: jax.Array) -> jax.Array:
    """``values (chains,)`` reshaped to broadcast against ``like (chains, *event)``."""
    return values.reshape(values.shape + (1,) * (like.ndim - 1))


def step_noise(
    key: jax.Array, step: Any, shape: tuple[int, ...], dtype: Any = jnp.float32
) -> MetropolisNoise:
    """The noise the keyed samplers use at ``step``, from ``fold_in(key, step)``.

    Args:
      key: the sampler's PRNG key.
      step: the step index (may be traced).
      shape: the positions' shape ``(chains, *event)``.
      dtype: floating dtype of the draws.

    Returns:
      :class:`MetropolisNoise` with ``normal (chains, *event)`` and ``uniform (chains,)``.
    """
    shape = tuple(checks.positive_int("shape", s) for s in shape)
    normal_key, uniform_key = jax.random.split(jax.random.fold_in(key, step))
    xi = jax.random.normal(normal_key, shape, dtype)
    u = jax.random.uniform(uniform_key, shape[:1], dtype)
    return MetropolisNoise(xi, u)


def draw_noise(
    key: jax.Array, num_steps: int, shape: tuple[int, ...], dtype: Any = jnp.float32
) -> MetropolisNoise:
    """Every step's :func:`step_noise`, stacked: what a keyed sampler draws inside its loop.

    ``sampler_from_noise(model, x0, draw_noise(key, T, x0.shape, x0.dtype), ...)`` equals
    ``sampler(key, model, x0, num_steps=T, ...)``.

    Returns:
      :class:`MetropolisNoise` with ``normal (num_steps, chains, *event)`` and
      ``uniform (num_steps, chains)``.
    """
    steps = jnp.arange(checks.positive_int("num_steps", num_steps))
    return jax.vmap(lambda i: step_noise(key, i, tuple(shape), dtype))(steps)


def accept_reject(
    state: ChainState,
    proposal: ChainState,
    log_ratio: jax.Array,
    uniform: jax.Array,
    num_evals: int,
) -> tuple[ChainState, ChainInfo]:
    """The Metropolis-Hastings decision: move to ``proposal`` where ``log u < log_ratio``.

    Args:
      state: the current :class:`ChainState`.
      proposal: the proposed points with their (cached) log-density and gradient.
      log_ratio: ``(chains,)`` ``log [pi(y) q(x|y) / (pi(x) q(y|x))]``.
      uniform: ``(chains,)`` uniforms ``u``.
      num_evals: the density evaluations the step spent (for :class:`ChainInfo`).

    Returns:
      ``(new_state, info)``.
    """
    # u < a(x, y) = min(1, r)  <=>  log u < log r; a NaN ratio compares False: reject.
    accepted = jnp.log(uniform) < log_ratio  # (chains,)
    new = jax.tree.map(lambda y, x: jnp.where(per_chain(accepted, y), y, x), proposal, state)
    prob = jnp.where(jnp.isnan(log_ratio), 0.0, jnp.exp(jnp.minimum(log_ratio, 0.0)))
    info = ChainInfo(accepted, prob, proposal.log_prob, jnp.asarray(num_evals, jnp.int32))
    return new, info


# ---------------------------------------------------------------------------------------
# The one compiled loop
# ---------------------------------------------------------------------------------------


@functools.partial(
    model_jit, static_argnames=("kernel", "options", "num_steps", "return_trajectory")
)
def _run(
    kernel: Kernel,
    model: Model,
    x0: jax.Array,
    key: jax.Array | None,
    noise: MetropolisNoise | None,
    step_size: Any,
    *,
    options: tuple[tuple[str, Any], ...],
    num_steps: int,
    return_trajectory: bool,
) -> tuple[jax.Array, jax.Array]:
    step_size = jnp.asarray(step_size, x0.dtype)
    step = functools.partial(kernel.step, model, step_size=step_size, **dict(options))
    if noise is None:  # keyed: each step's noise drawn inside the loop, never stored
        xs = jnp.arange(num_steps)
        noise_at = lambda t: step_noise(key, t, x0.shape, x0.dtype)  # noqa: E731
    else:
        xs, noise_at = noise, lambda n: n  # noqa: E731

    def body(carry, inp):
        # carry: the chains' state and how many proposals each has accepted, (chains,)
        state, accepted = carry
        state, info = step(state, noise_at(inp))
        accepted = accepted + info.accepted.astype(accepted.dtype)
        return (state, accepted), (state.position if return_trajectory else None)

    accepted0 = jnp.zeros(x0.shape[:1], x0.dtype)
    (state, accepted), trajectory = jax.lax.scan(body, (kernel.init(model, x0), accepted0), xs)
    samples = trajectory if return_trajectory else state.position
    return samples, accepted / num_steps


def sample(
    kernel: Kernel,
    model: Model,
    x0: Any,
    *,
    key: jax.Array | None = None,
    noise: MetropolisNoise | None = None,
    step_size: Any,
    num_steps: int | None = None,
    options: tuple[tuple[str, Any], ...] = (),
    return_trajectory: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """Checks the arguments, then runs ``kernel`` from ``x0`` in one compiled ``lax.scan``.

    The body of every public Metropolis sampler: either ``key`` and ``num_steps`` (each
    step's noise drawn inside the loop by :func:`step_noise`) or ``noise`` (stacked over
    steps, :func:`draw_noise`) is given.

    Returns:
      ``(samples, acceptance_rate)``: the final positions ``(chains, *event)`` or, with
      ``return_trajectory``, every step's ``(num_steps, chains, *event)``; and each chain's
      fraction of accepted proposals ``(chains,)``.

    Raises:
      ValueError: a bad ``x0``, ``step_size <= 0``, ``num_steps < 1``, noise of the wrong
        shapes, or a model not returning ``(chains,)`` -- each naming the argument.
    """
    x0 = check_inputs(model, x0, step_size)
    if noise is not None:
        noise = check_noise(noise, x0)
        num_steps = noise.normal.shape[0]
    return _run(kernel, model, x0, key, noise, step_size, options=tuple(options),
                num_steps=checks.positive_int("num_steps", num_steps),
                return_trajectory=bool(return_trajectory))  # fmt: skip


# ---------------------------------------------------------------------------------------
# Argument checks (trace time), shared by every kernel of the package
# ---------------------------------------------------------------------------------------


def check_x0(x0: Any) -> jax.Array:
    """``x0`` as a floating array of shape ``(chains, *event)``, both non-empty."""
    x0 = jnp.asarray(x0)
    if x0.ndim < 2 or 0 in x0.shape:
        raise ValueError(
            f"x0 must have shape (chains, dim) (or (chains, *event)), none empty, got {x0.shape}"
        )
    return checks.floating("x0", x0)


def check_model(model: Model, x: jax.Array, *args: Any, returns: str = "log_prob") -> None:
    """The model maps ``x (chains, *event)`` (and ``args``) to the shape a kernel needs.

    ``returns="log_prob"``: one log-density per chain, ``(chains,)``; ``"score"``: a score of
    ``x``'s shape. Checked by ``jax.eval_shape`` (nothing is computed).
    """
    if not callable(model):
        raise ValueError(f"model must be callable (a callable pytree), got {type(model).__name__}")
    out = jax.eval_shape(model, jax.ShapeDtypeStruct(x.shape, x.dtype), *args)
    want = (x.shape[0],) if returns == "log_prob" else tuple(x.shape)
    shape = getattr(out, "shape", None)
    if shape != want:
        what = "log-densities" if returns == "log_prob" else "a score"
        got = shape if shape is not None else type(out).__name__
        raise ValueError(f"model must map x {tuple(x.shape)} to {what} of shape {want}, got {got}")


def check_noise(noise: Any, x0: jax.Array) -> MetropolisNoise:
    """``noise`` as :class:`MetropolisNoise`: ``normal (T, *x0.shape)``, ``uniform (T, chains)``."""
    normal, uniform = (jnp.asarray(a, x0.dtype) for a in noise)
    steps = normal.shape[0] if normal.ndim else 0
    checks.shape("noise.normal", normal, (steps, *x0.shape))
    checks.shape("noise.uniform", uniform, (steps, x0.shape[0]))
    if steps < 1:
        raise ValueError(f"noise must hold at least one step, got normal of shape {normal.shape}")
    return MetropolisNoise(normal, uniform)


def check_step(state: Any, noise: Any, step_size: Any) -> None:
    """A single step's checks: ``noise`` shaped ``(x (chains, *event), u (chains,))`` like the
    state's position, ``step_size > 0`` and finite (when concrete)."""
    x = state[0]
    normal, uniform = noise
    checks.shape("noise.normal", normal, tuple(jnp.shape(x)))
    checks.shape("noise.uniform", uniform, tuple(jnp.shape(x))[:1])
    checks.positive("step_size", step_size)


def check_pair(x: Any, y: Any) -> tuple[jax.Array, jax.Array]:
    """``x`` and ``y`` two floating ``(chains, *event)`` arrays of one shape."""
    x, y = check_x0(x), jnp.asarray(y)
    checks.same_shape("y", y, "x", x)
    return x, checks.floating("y", y)


def check_inputs(model: Model, x0: Any, step_size: Any) -> jax.Array:
    """The checks every log-density sampler makes: ``x0``, ``step_size > 0``, the model's
    output ``(chains,)``. Returns ``x0`` as an array."""
    x0 = check_x0(x0)
    checks.positive("step_size", step_size)
    check_model(model, x0)
    return x0
