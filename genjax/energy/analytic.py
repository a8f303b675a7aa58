"""Deprecated: a Gaussian mixture's log-density and score for MCMC are its own methods.

:class:`genjax.targets.GaussianMixture` now carries the fast eigenbasis layout itself:
``target.log_prob`` (whose ``jax.grad``/``jax.vjp`` is the closed-form score, one pass),
``target.score`` and ``target.log_prob_and_score`` map ``x: (chains, dim)`` to
``(chains,)`` / ``(chains, dim)``, and as bound methods of a pytree they are traced models
for the samplers of :mod:`genjax.energy.mcmc`. The two functions below return them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import jax

from genjax.targets import GaussianMixture

__all__: list[str] = []


def mixture_log_prob_fn(target: GaussianMixture) -> Callable[[jax.Array], jax.Array]:
    """Deprecated: returns ``target.log_prob`` (``(chains, dim) -> (chains,)``)."""
    warnings.warn(
        "mixture_log_prob_fn(target) is deprecated: pass target.log_prob",
        DeprecationWarning,
        stacklevel=2,
    )
    return target.log_prob


def mixture_score_fn(target: GaussianMixture) -> Callable[[jax.Array], jax.Array]:
    """Deprecated: returns ``target.score`` (``(chains, dim) -> (chains, dim)``)."""
    warnings.warn(
        "mixture_score_fn(target) is deprecated: pass target.score",
        DeprecationWarning,
        stacklevel=2,
    )
    return target.score
