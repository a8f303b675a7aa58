"""Exact diffusion models of Gaussian-mixture data, as models for the samplers.

If the data follow a Gaussian mixture ``p_0 = sum_k w_k N(mu_k, Sigma_k)``, the noised
variable ``x_t = alpha x_0 + sigma eps`` follows the mixture
``p_t = sum_k w_k N(alpha mu_k, alpha^2 Sigma_k + sigma^2 I)``
(:meth:`genjax.targets.GaussianMixture.noised`), so every quantity a diffusion network
learns is known in closed form (Tweedie's formula; Efron 2011; Song et al. 2021, sec. 3.3):

    E[eps | x_t] = -sigma grad log p_t(x_t)                      (the optimal eps-prediction)
    E[x_0 | x_t] = sum_k r_k(x_t) [mu_k + alpha Sigma_k C_k^{-1} (x_t - alpha mu_k)],
    C_k = alpha^2 Sigma_k + sigma^2 I,  r_k(x_t) = p(k | x_t)   (the optimal denoiser)

The models here hold the mixture and the noise schedule and call the mixture's own methods
(:meth:`~genjax.targets.GaussianMixture.eps`, ``denoise``, ``noised_score``): the one fast
implementation, in an eigenbasis layout, with the per-level constants computed once per call
when the whole batch shares one noise level (the samplers' calls: :class:`AnalyticEps` tests
that on the integer times, a test XLA removes when ``t`` is one time broadcast). Each model
is a frozen dataclass registered as a pytree: passed to a sampler it is traced, so a new
mixture (or schedule) of the same shapes never recompiles (DESIGN.md, "One model protocol").

* :func:`analytic_eps_fn` -- ``model(x_t, t) -> eps`` over a discrete :class:`Schedule`;
* :func:`analytic_denoiser` -- ``model(x, sigma) -> E[x_0 | x]`` for the EDM samplers;
* :func:`analytic_score_fn` -- ``model(x, t) -> grad log p_t(x)`` over a continuous SDE.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.diffusion.schedules import Schedule
from genjax.targets import GaussianMixture

__all__ = [
    "AnalyticEps",
    "AnalyticDenoiser",
    "AnalyticScore",
    "analytic_eps_fn",
    "analytic_denoiser",
    "analytic_score_fn",
]


def _check_batch(x: jax.Array, level: jax.Array, dim: int, level_name: str) -> None:
    checks.shape("x", x, (None, dim))
    checks.shape(level_name, level, (x.shape[0],))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity: usable as a jit static too
class AnalyticEps:
    """The exact noise prediction ``E[eps | x_t]`` for mixture data, as a model.

        eps(x_t, t) = -sigma_t grad log p_t(x_t),   alpha_t = sqrt(alpha_bar_t),
                                                    sigma_t = sqrt(1 - alpha_bar_t)

    At ``alpha_bar_t = 0`` (a zero-terminal-SNR schedule) it is ``x_t / sigma_t``.

    Attributes:
      target: the data distribution, a ``GaussianMixture`` over ``R^D``.
      schedule: the discrete noise schedule (``T`` steps).

    Example:
      >>> s = from_betas(jnp.array([0.5]))  # alpha_bar_0 = 1/2: x_t ~ N(0, 1) for a N(0, 1) target
      >>> eps = AnalyticEps(genjax.targets.mixture_1d([1.0], [0.0], [1.0]), s)
      >>> [round(v, 4) for v in eps(jnp.ones((1, 1)), jnp.array([0]))[0].tolist()]  # sqrt(1/2) x
      [0.7071]
    """

    target: GaussianMixture
    schedule: Schedule

    def __call__(self, x_t: jax.Array, t: jax.Array) -> jax.Array:
        """``x_t: (batch, D)``, ``t: (batch,)`` integer in ``[0, T)`` -> ``(batch, D)``."""
        x_t, t = jnp.asarray(x_t), jnp.asarray(t)
        _check_batch(x_t, t, self.target.dim, "t")
        s, t0 = self.schedule, t[0]

        def one_level() -> jax.Array:  # the samplers' call: one t for the whole batch
            return self.target.eps(x_t, s.alpha(t0), s.sigma(t0))

        def per_point() -> jax.Array:
            return self.target.eps(x_t, s.alpha(t), s.sigma(t))

        # Decided on the integer times, not on the levels gathered from them: when t is one
        # time broadcast (every sampler), XLA folds the test and the branch away.
        return jax.lax.cond(jnp.all(t == t0), one_level, per_point)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity: usable as a jit static too
class AnalyticDenoiser:
    """The exact denoiser ``E[x_0 | x]`` for ``x = x_0 + sigma eps`` (Karras et al. 2022's
    variance-exploding parametrisation, ``alpha = 1``), as a model.

    Attributes:
      target: the data distribution, a ``GaussianMixture`` over ``R^D``.

    Example:
      >>> d = AnalyticDenoiser(genjax.targets.mixture_1d([1.0], [0.0], [1.0]))
      >>> d(jnp.ones((1, 1)), jnp.array([1.0])).tolist()  # E[x0 | x] = x s0^2 / (s0^2 + sigma^2)
      [[0.5]]
    """

    target: GaussianMixture

    def __call__(self, x: jax.Array, sigma: jax.Array) -> jax.Array:
        """``x: (batch, D)``, ``sigma: (batch,)`` positive -> ``(batch, D)``."""
        x, sigma = jnp.asarray(x), jnp.asarray(sigma)
        _check_batch(x, sigma, self.target.dim, "sigma")
        return self.target.denoise(x, 1.0, sigma)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity: usable as a jit static too
class AnalyticScore:
    """The exact score ``grad_x log p_t(x)`` of mixture data diffused by an SDE, as a model.

        score(x, t) = grad log p_t(x),   p_t = target.noised(sde.alpha(t), sde.sigma(t))

    Attributes:
      target: the data distribution, a ``GaussianMixture`` over ``R^D``.
      sde: any object with ``alpha(t)`` and ``sigma(t)`` (the marginal's scales), e.g. a
        ``VPSDE``, ``SubVPSDE`` or ``VESDE``; static (hashable), not traced.

    Example:
      >>> score = AnalyticScore(genjax.targets.mixture_1d([1.0], [0.0], [1.0]), VPSDE())
      >>> score(jnp.ones((1, 1)), 0.5).tolist()  # a VP SDE keeps N(0, 1): score -x
      [[-1.0]]
    """

    target: GaussianMixture
    sde: Any = dataclasses.field(metadata={"static": True})

    def __call__(self, x: jax.Array, t: jax.Array) -> jax.Array:
        """``x: (batch, D)``, ``t``: scalar or ``(batch,)`` continuous time -> ``(batch, D)``."""
        x = jnp.asarray(x)
        t = jnp.broadcast_to(jnp.asarray(t, x.dtype), x.shape[:1])  # (batch,)
        _check_batch(x, t, self.target.dim, "t")
        return self.target.noised_score(x, self.sde.alpha(t), self.sde.sigma(t))


def analytic_eps_fn(target: GaussianMixture, schedule: Schedule) -> AnalyticEps:
    """The exact noise prediction ``E[eps | x_t]`` for mixture data: an :class:`AnalyticEps`.

    Args:
      target: the data distribution, a ``GaussianMixture`` over ``R^D``.
      schedule: the noise schedule giving ``alpha_t, sigma_t``.

    Returns:
      ``model(x_t, t) -> eps`` with ``x_t: (batch, D)``, ``t: (batch,)`` integer in
      ``[0, T)``, returning ``(batch, D)`` in ``x_t``'s dtype; a pytree (traced by the
      samplers: new mixtures of the same shapes compile nothing).

    Example:
      >>> s = linear(100)
      >>> model = analytic_eps_fn(genjax.targets.mixture_1d([1.0], [3.0], [0.1]), s)
      >>> x = ddim_sample(jax.random.key(0), model, (4, 1), s, num_steps=10)
      >>> bool(jnp.all(jnp.abs(x - 3.0) < 0.5))  # the target's one mode
      True
    """
    checks.instance("target", target, GaussianMixture)
    checks.instance("schedule", schedule, Schedule)
    return AnalyticEps(target, schedule)


def analytic_denoiser(target: GaussianMixture) -> AnalyticDenoiser:
    """The exact denoiser ``E[x_0 | x]`` for ``x = x_0 + sigma eps``: an :class:`AnalyticDenoiser`.

    Args:
      target: the data distribution, a ``GaussianMixture`` over ``R^D``.

    Returns:
      ``model(x, sigma)`` with ``x: (batch, D)``, ``sigma: (batch,)`` positive, returning
      ``(batch, D)``; a pytree.

    Example:
      >>> d = analytic_denoiser(genjax.targets.mixture_1d([1.0], [0.0], [1.0]))
      >>> d(jnp.full((1, 1), 4.0), jnp.array([1.0])).tolist()
      [[2.0]]
    """
    checks.instance("target", target, GaussianMixture)
    return AnalyticDenoiser(target)


def analytic_score_fn(target: GaussianMixture, sde: Any) -> AnalyticScore:
    """The exact score of the diffused mixture under ``sde``: an :class:`AnalyticScore`.

    Args:
      target: the data distribution, a ``GaussianMixture`` over ``R^D``.
      sde: gives the marginal scales ``alpha(t)``, ``sigma(t)`` (static).

    Returns:
      ``model(x, t)`` with ``x: (batch, D)``, ``t`` scalar or ``(batch,)``, returning
      ``(batch, D)``; a pytree.

    Example:
      >>> score = analytic_score_fn(genjax.targets.mixture_1d([1.0], [0.0], [1.0]), VPSDE())
      >>> score(jnp.full((1, 1), 2.0), 0.1).tolist()
      [[-2.0]]
    """
    checks.instance("target", target, GaussianMixture)
    return AnalyticScore(target, sde)


# Deprecated names (not in __all__): the fast models are now the only ones.


def _deprecated_alias(new: Any, old_name: str) -> Any:
    def alias(*args: Any, **kwargs: Any) -> Any:
        msg = f"{old_name} is deprecated: use {new.__name__} (now the fast model)"
        warnings.warn(msg, DeprecationWarning, stacklevel=2)
        return new(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old_name
    alias.__doc__ = f"Deprecated alias of :func:`{new.__name__}` (which is now the fast model)."
    return alias


fast_analytic_eps_fn = _deprecated_alias(analytic_eps_fn, "fast_analytic_eps_fn")
fast_analytic_denoiser = _deprecated_alias(analytic_denoiser, "fast_analytic_denoiser")
