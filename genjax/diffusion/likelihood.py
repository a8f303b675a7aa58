"""Exact likelihoods and deterministic sampling through the probability-flow ODE.

Every score SDE ``dx = f(x, t) dt + g(t) dw`` has a deterministic twin with the same
marginals ``p_t`` (Song et al. 2021, eq. 13), the probability-flow ODE

    dx/dt = f~(x, t) = f(x, t) - 1/2 g(t)^2 grad_x log p_t(x).

It is a continuous normalising flow (Chen et al. 2018), so the log-density along a
trajectory obeys the instantaneous change of variables (Chen et al. 2018, Theorem 1;
Song et al. 2021, eq. 39)

    d log p_t(x(t)) / dt = -div f~(x(t), t).

Integrating from the data time ``eps`` to ``T = 1`` and solving for the start:

    log p_eps(x(eps)) = log p_1(x(1)) + int_eps^1 div f~(x(t), t) dt.

So we integrate the augmented state ``(x, delta)`` with ``dx/dt = f~`` and
``d delta/dt = + div f~`` FORWARD in time, data -> prior, starting at ``delta = 0``, and
add the prior's log-density at the end point. (Integrating the divergence in the other
direction, or subtracting it, gives the wrong sign of the correction — the bug reported
in openai/consistency_models_cifar10 issue 12.) With the model's score in place of the
true score, the result is the exact log-likelihood of the model's ODE flow; with the
exact score of a Gaussian mixture (:func:`genjax.diffusion.analytic_score_fn`) it is
the mixture's true ``log p_eps`` up to solver error and the prior mismatch
``p_1 != N(0, I)`` (pass ``prior_log_prob`` to remove the latter).

The divergence is the trace of the Jacobian ``d f~ / d x``:

* ``trace="exact"``: ``jax.jacfwd`` per example (``D`` Jacobian-vector products) — for
  small dimensions;
* ``trace="hutchinson"``: ``div f~ ~ v^T (d f~/d x) v`` with ``E[v v^T] = I`` (Hutchinson
  1989; Grathwohl et al. 2019, FFJORD), ``v`` Rademacher or Gaussian, one JVP per probe,
  the probes drawn once and held fixed along the whole trajectory (so the estimate of
  the integral is unbiased). ``num_probes`` probes are averaged.

The model is the score, a callable pytree ``model(x (batch, ...), t (batch,)) -> (batch, ...)``
acting on each example independently; it is a traced argument of the compiled functions
(new weights of the same shapes reuse the program), and a plain Python function is static
(each new function object compiles anew).

References:
  Song et al., "Score-Based Generative Modeling through Stochastic Differential
  Equations", ICLR 2021, sec. 4.3 and appendix D.2.
  Chen, Rubanova, Bettencourt, Duvenaud, "Neural Ordinary Differential Equations",
  NeurIPS 2018.
  Grathwohl et al., "FFJORD: Free-form Continuous Dynamics for Scalable Reversible
  Generative Models", ICLR 2019.
  Hutchinson, "A stochastic estimator of the trace of the influence matrix for Laplacian
  smoothing splines", 1989.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from genjax import checks, ode
from genjax.diffusion._common import check_shape, check_x, sum_nonbatch
from genjax.diffusion.sde import SDE, prior_log_prob, prior_sample, probability_flow_drift
from genjax.model import Model, model_jit

__all__ = [
    "divergence_exact",
    "divergence_hutchinson",
    "log_likelihood",
    "pf_ode_sample",
    "pf_ode_sample_from_noise",
]

_TRACES = ("exact", "hutchinson")
_PROBES = ("rademacher", "gaussian")
_METHODS = ("euler", "heun", "rk4", "dopri5")


def divergence_exact(
    fn: Callable[[jax.Array], jax.Array], x: jax.Array
) -> jax.Array:
    """Exact ``div fn = tr(d fn / d x)`` per example, by forward-mode Jacobians.

    ``fn`` must act on each example independently (a batched map). Cost: ``D`` JVPs.

    Args:
      fn: ``(batch, ...) -> (batch, ...)``.
      x: (batch, ...) points.

    Returns:
      (batch,) divergences.
    """
    x = jnp.asarray(x)
    shape = x.shape[1:]
    out = jax.eval_shape(fn, x)  # abstract: no evaluation, just the output's shape
    checks.model_output(out, x.shape, "x", name="fn")

    def one(xi: jax.Array) -> jax.Array:
        flat = lambda v: fn(v.reshape((1, *shape))).reshape(-1)  # (D,) -> (D,)
        jac = jax.jacfwd(flat)(xi.reshape(-1))  # (D, D)
        return jnp.trace(jac)

    return jax.vmap(one)(x)


def divergence_hutchinson(
    fn: Callable[[jax.Array], jax.Array], x: jax.Array, probes: jax.Array
) -> jax.Array:
    """Hutchinson estimate ``mean_k v_k^T (d fn / d x) v_k`` per example.

    Args:
      fn: ``(batch, ...) -> (batch, ...)``, acting on each example independently (so
        the batch Jacobian is block diagonal and one JVP serves the whole batch).
      x: (batch, ...) points.
      probes: (num_probes, batch, ...) probe vectors with ``E[v v^T] = I``.

    Returns:
      (batch,) estimates.
    """

    x, probes = jnp.asarray(x), jnp.asarray(probes)
    checks.shape("probes", probes, (None, *x.shape))
    checks.model_output(jax.eval_shape(fn, x), x.shape, "x", name="fn")

    def one(v: jax.Array) -> jax.Array:
        _, jv = jax.jvp(fn, (x,), (v.astype(x.dtype),))  # (batch, ...) = J v
        return sum_nonbatch(v * jv)  # (batch,) = v^T J v

    return jnp.mean(jax.vmap(one)(probes), axis=0)


def _draw_probes(key, probe, num_probes, shape, dtype):
    if probe == "rademacher":
        return jax.random.rademacher(key, (num_probes, *shape), dtype=dtype)
    return jax.random.normal(key, (num_probes, *shape), dtype)


def _check_common(num_steps: int, eps: float, method: str) -> None:
    checks.positive_int("num_steps", num_steps)
    checks.in_range("eps", eps, 0.0, 1.0, low_open=True, high_open=True)
    checks.one_of("method", method, _METHODS)


@functools.partial(
    model_jit,
    model_argnames=("model", "prior_log_prob_fn"),
    static_argnames=(
        "sde", "eps", "num_steps", "method", "trace", "probe", "num_probes", "rtol", "atol",
    ),
)
def log_likelihood(
    key: jax.Array | None,
    model: Model,
    x: jax.Array,
    sde: SDE,
    *,
    eps: float = 1e-5,
    num_steps: int = 100,
    method: str = "rk4",
    trace: str = "exact",
    probe: str = "rademacher",
    num_probes: int = 1,
    prior_log_prob_fn: Callable[[jax.Array], jax.Array] | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
) -> tuple[jax.Array, jax.Array]:
    """Log-likelihood ``log p_eps(x)`` under the probability-flow ODE of a score model.

        log p_eps(x) = log p_1(x(1)) + int_eps^1 div f~(x(t), t) dt,
        f~(x, t) = f(x, t) - 1/2 g(t)^2 model(x, t)        (Song et al. 2021, eqs. 13, 39)

    integrated data -> prior (``t: eps -> 1``) with :func:`genjax.ode.solve`.

    Args:
      key: PRNG key for the Hutchinson probes (may be None when ``trace="exact"``).
      model: the score model, a callable pytree ``model(x (batch, ...), t (batch,)) ->
        (batch, ...)`` acting on each example independently (traced: new weights do not
        recompile; a plain function is static and compiles once per function object).
      x: (batch, ...) data points.
      sde: the SDE (:class:`genjax.diffusion.VPSDE`, ``SubVPSDE`` or ``VESDE``; static).
      eps: start time in (0, 1) (1e-5 in the paper for likelihoods).
      num_steps: steps of a fixed-step method (output grid only for ``dopri5``).
      method: ``"euler"``, ``"heun"``, ``"rk4"`` or adaptive ``"dopri5"``.
      trace: ``"exact"`` (Jacobian trace) or ``"hutchinson"``.
      probe: ``"rademacher"`` or ``"gaussian"`` Hutchinson probes.
      num_probes: probes averaged per evaluation (Hutchinson only), >= 1.
      prior_log_prob_fn: ``(batch, ...) -> (batch,)`` log-density of ``p_1`` (a model
        too: a bound method of a pytree, ``p1.log_prob``, is traced through its instance);
        default the SDE's prior ``N(0, prior_std^2 I)``.
      rtol, atol: tolerances of ``dopri5``.

    Returns:
      ``(log_p, x_1)``: (batch,) log-likelihoods in nats and (batch, ...) the end point
      ``x(1)`` (the flow's latent code of ``x``).

    Example:
      >>> s, target = VPSDE(), genjax.targets.mixture_1d([1.0], [0.0], [1.0])
      >>> log_p, z = log_likelihood(None, analytic_score_fn(target, s), jnp.zeros((1, 1)), s)
      >>> round(float(log_p[0]), 2)  # log N(0; 0, 1) = -log(2 pi) / 2
      -0.92
    """
    _check_common(num_steps, eps, method)
    checks.one_of("trace", trace, _TRACES)
    checks.one_of("probe", probe, _PROBES)
    checks.positive_int("num_probes", num_probes)
    if trace == "hutchinson" and key is None:
        raise ValueError("key must be given when trace='hutchinson'")
    x = check_x("x", x)
    batch = x.shape[0]
    probes = (
        _draw_probes(key, probe, num_probes, x.shape, x.dtype) if trace == "hutchinson" else None
    )

    def augmented(t: jax.Array, state: tuple[jax.Array, jax.Array]):
        y, _ = state
        # t broadcast to the batch of the argument (divergence_exact calls it on one example).
        drift = lambda z: probability_flow_drift(model, sde, z, jnp.broadcast_to(t, z.shape[:1]))
        if trace == "exact":
            div = divergence_exact(drift, y)
        else:
            div = divergence_hutchinson(drift, y, probes)
        # dx/dt = f~(x, t);  d delta/dt = + div f~  (data -> prior, see module docstring)
        return drift(y), div

    delta0 = jnp.zeros((batch,), x.dtype)
    x1, delta = ode.solve(
        augmented, (x, delta0), eps, 1.0, num_steps=num_steps, method=method, rtol=rtol,
        atol=atol,
    )
    prior = prior_log_prob(sde, x1) if prior_log_prob_fn is None else prior_log_prob_fn(x1)
    return prior + delta, x1  # log p_eps(x) = log p_1(x(1)) + int div f~ dt


def _pf_ode(model, sde, x_1, eps, num_steps, method, rtol, atol, return_trajectory):
    batch = x_1.shape[0]

    def f(t: jax.Array, y: jax.Array) -> jax.Array:
        # dx/dt = f(x, t) - 1/2 g(t)^2 score(x, t)   (eq. 13)
        return probability_flow_drift(model, sde, y, jnp.broadcast_to(t, (batch,)))

    out = ode.solve(f, x_1, 1.0, eps, num_steps=num_steps, method=method, rtol=rtol, atol=atol,
                    return_trajectory=return_trajectory)
    if not return_trajectory:
        return out
    _, ys = out  # ys: (num_steps + 1, batch, ...), ys[0] = x_1, ys[-1] = the samples
    return ys[-1], ys


_PF_STATIC = ("sde", "eps", "num_steps", "method", "rtol", "atol", "return_trajectory")


@functools.partial(model_jit, static_argnames=_PF_STATIC)
def pf_ode_sample_from_noise(
    model: Model,
    x_1: jax.Array,
    sde: SDE,
    *,
    eps: float = 1e-3,
    num_steps: int = 100,
    method: str = "rk4",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    return_trajectory: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Integrate the probability-flow ODE prior -> data (``t: 1 -> eps``) from ``x_1``.

    Args:
      model: the score model ``model(x (batch, ...), t (batch,))`` (traced; a plain function
        is static).
      x_1: (batch, ...) prior draws (or latent codes from :func:`log_likelihood`): the only
        noise of the sampler.
      sde: the SDE (static).
      eps, num_steps, method, rtol, atol: as :func:`log_likelihood`.
      return_trajectory: also return the ``(num_steps + 1, batch, ...)`` states on the
        solver's grid from ``t = 1`` to ``t = eps``.

    Returns:
      (batch, ...) samples at ``t = eps`` (and the trajectory).

    Example:
      >>> sde = VPSDE()
      >>> score = analytic_score_fn(genjax.targets.mixture_1d([1.0], [3.0], [0.1]), sde)
      >>> x = pf_ode_sample_from_noise(score, jnp.zeros((4, 1)), sde, num_steps=20)
      >>> bool(jnp.all(jnp.abs(x - 3.0) < 0.5))
      True
    """
    _check_common(num_steps, eps, method)
    x_1 = check_x("x_1", x_1)
    return _pf_ode(model, sde, x_1, eps, num_steps, method, rtol, atol, return_trajectory)


@functools.partial(model_jit, static_argnames=("shape", "dtype", *_PF_STATIC))
def pf_ode_sample(
    key: jax.Array,
    model: Model,
    shape: tuple[int, ...],
    sde: SDE,
    *,
    eps: float = 1e-3,
    num_steps: int = 100,
    method: str = "rk4",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    dtype: Any = jnp.float32,
    return_trajectory: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Sample by drawing ``x_1 = prior_sample(key, sde, shape)`` and solving the PF ODE.

    Args:
      key: PRNG key (the only randomness: the prior draw).
      model: the score model ``model(x (batch, ...), t (batch,))`` (traced: new weights do
        not recompile; a plain function is static and compiles once per function object).
      shape: (batch, ...) of the samples.
      sde: the SDE.
      eps, num_steps, method, rtol, atol, return_trajectory: as
        :func:`pf_ode_sample_from_noise`.
      dtype: floating dtype.

    Returns:
      (batch, ...) samples (and the trajectory).

    Example:
      >>> sde = VPSDE()
      >>> score = analytic_score_fn(genjax.targets.mixture_1d([1.0], [3.0], [0.1]), sde)
      >>> x = pf_ode_sample(jax.random.key(0), score, (4, 1), sde, num_steps=20)
      >>> bool(jnp.all(jnp.abs(x - 3.0) < 0.5))
      True
    """
    _check_common(num_steps, eps, method)
    x_1 = prior_sample(key, sde, check_shape(shape), dtype)
    return _pf_ode(model, sde, x_1, eps, num_steps, method, rtol, atol, return_trajectory)
