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


def _bound_method(name: str) -> Callable[[GaussianMixture], Callable[[jax.Array], jax.Array]]:
    def get(target: GaussianMixture) -> Callable[[jax.Array], jax.Array]:
        msg = f"mixture_{name}_fn(target) is deprecated: pass target.{name}"
        warnings.warn(msg, DeprecationWarning, stacklevel=2)
        return getattr(target, name)

    get.__name__ = get.__qualname__ = f"mixture_{name}_fn"
    get.__doc__ = f"Deprecated: returns ``target.{name}`` (a traced model of ``x: (chains, dim)``)."
    return get


mixture_log_prob_fn = _bound_method("log_prob")  # (chains, dim) -> (chains,)
mixture_score_fn = _bound_method("score")  # (chains, dim) -> (chains, dim)
