"""Score-based diffusion as stochastic differential equations (Song et al. 2021).

Data ``x(0) ~ p_0`` are diffused by an Ito SDE on continuous time ``t in [0, 1]``

    dx = f(x, t) dt + g(t) dw                                        (eq. 5)

whose marginal is Gaussian given ``x(0)``: ``x(t) | x(0) ~ N(alpha(t) x(0), sigma(t)^2 I)``.
Sampling runs the reverse-time SDE (Anderson 1982; Song et al. 2021, eq. 6)

    dx = [f(x, t) - g(t)^2 grad_x log p_t(x)] dt + g(t) dw_bar,      dt < 0

(:mod:`genjax.diffusion.pc_sampler`) or its deterministic twin, the probability-flow ODE
(eq. 13, :mod:`genjax.diffusion.likelihood`), with the score replaced by a model
``model(x, t)``. Three SDEs (Song et al. 2021, sec. 3.4 and appendix B), with
``beta(t) = beta_min + t (beta_max - beta_min)``:

===========  ==============  ==========================================  =================
SDE          f(x, t)         g(t)^2                                      sigma(t)
===========  ==============  ==========================================  =================
VP (eq. 11)  -beta(t) x / 2  beta(t)                                     sqrt(1 - alpha^2)
sub-VP (17)  -beta(t) x / 2  beta(t) (1 - exp(-2 int_0^t beta))          1 - alpha^2
VE (eq. 9)   0               d[s(t)^2]/dt, s(t) = s_min (s_max/s_min)^t  see below
===========  ==============  ==========================================  =================

For VP and sub-VP ``alpha(t) = exp(-t^2 (beta_max - beta_min) / 4 - t beta_min / 2)``
(eq. 29). For VE ``alpha = 1`` and the exact marginal std of the SDE started at ``t = 0``
is ``sigma(t) = sqrt(s(t)^2 - s_min^2)``; the score_sde code uses ``s(t)`` instead (it
treats the data as already smoothed at ``s_min``). We keep the exact value so that the
exact mixture score (:func:`genjax.diffusion.analytic_score_fn`) is the exact score of this
SDE. Priors:
``N(0, I)`` for VP and sub-VP, ``N(0, s_max^2 I)`` for VE (as score_sde).

An SDE is a frozen dataclass of Python floats: a static (hashable) argument of the compiled
samplers, never a model.

References:
  Song, Sohl-Dickstein, Kingma, Kumar, Ermon, Poole, "Score-Based Generative Modeling
  through Stochastic Differential Equations", ICLR 2021 (and github.com/yang-song/score_sde).
  Anderson, "Reverse-time diffusion equation models", Stochastic Processes and their
  Applications, 1982.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.diffusion._common import bcast, call_model, check_shape, sum_nonbatch
from genjax.gaussian import LOG_2PI
from genjax.model import Model

__all__ = [
    "VPSDE",
    "SubVPSDE",
    "VESDE",
    "SDE",
    "prior_sample",
    "prior_log_prob",
    "reverse_drift",
    "probability_flow_drift",
]


@dataclasses.dataclass(frozen=True)
class VPSDE:
    """Variance-preserving SDE (Song et al. 2021, eq. 11): the continuous DDPM.

        dx = -1/2 beta(t) x dt + sqrt(beta(t)) dw,   beta(t) = beta_min + t (beta_max - beta_min)

    Attributes:
      beta_min: beta(0) > 0 (0.1 in the paper).
      beta_max: beta(1) >= beta_min (20 in the paper).

    Example:
      >>> sde = VPSDE()
      >>> round(float(sde.alpha(jnp.asarray(0.0))), 4), sde.prior_std()
      (1.0, 1.0)
    """

    beta_min: float = 0.1
    beta_max: float = 20.0

    def __post_init__(self) -> None:
        checks.positive("beta_min", self.beta_min)
        if not self.beta_max >= self.beta_min:
            raise ValueError(f"beta_max must be >= beta_min={self.beta_min}, got {self.beta_max}")

    def beta(self, t: jax.Array) -> jax.Array:
        """beta(t) = beta_min + t (beta_max - beta_min); ``t`` any shape."""
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def _log_mean_coeff(self, t: jax.Array) -> jax.Array:
        # log alpha(t) = -1/2 int_0^t beta(s) ds = -t^2 (b_max - b_min)/4 - t b_min/2  (eq. 29)
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def drift(self, x: jax.Array, t: jax.Array) -> jax.Array:
        """f(x, t) = -1/2 beta(t) x.  x: (batch, ...), t: (batch,) or scalar."""
        return -0.5 * bcast(self.beta(t), x) * x

    def diffusion(self, t: jax.Array) -> jax.Array:
        """g(t) = sqrt(beta(t)), shape of ``t``."""
        return jnp.sqrt(self.beta(t))

    def alpha(self, t: jax.Array) -> jax.Array:
        """Mean coefficient alpha(t) = exp(-1/2 int_0^t beta)."""
        return jnp.exp(self._log_mean_coeff(t))

    def sigma(self, t: jax.Array) -> jax.Array:
        """Marginal std sigma(t) = sqrt(1 - alpha(t)^2) (expm1: exact for small t)."""
        return jnp.sqrt(-jnp.expm1(2.0 * self._log_mean_coeff(t)))

    def prior_std(self) -> float:
        """Std of the prior N(0, I)."""
        return 1.0

    def prior_sample(self, key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32):
        """x_T ~ N(0, prior_std^2 I) of shape ``(batch, ...)``."""
        return prior_sample(key, self, shape, dtype)

    def prior_log_prob(self, x: jax.Array) -> jax.Array:
        """log N(x; 0, prior_std^2 I): ``(batch, ...) -> (batch,)``."""
        return prior_log_prob(self, x)

    def discretize(self, x: jax.Array, t: jax.Array, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        """DDPM step from ``t - h`` to ``t``: ``x_t = x + f_i + G_i z`` (eq. 46).

        ``1 - b_i = (alpha(t) / alpha(t - h))^2``, ``f_i = (sqrt(1 - b_i) - 1) x``,
        ``G_i = sqrt(b_i)``. Returns ``(f_i (batch, ...), G_i)``.
        """
        log_a = self._log_mean_coeff(t) - self._log_mean_coeff(t - h)  # log sqrt(1 - b_i)
        g = jnp.sqrt(-jnp.expm1(2.0 * log_a))  # sqrt(b_i)
        return bcast(jnp.expm1(log_a), x) * x, g

    def langevin_alpha(self, t: jax.Array, h: jax.Array) -> jax.Array:
        """a_i = 1 - b_i of the step from ``t - h`` to ``t`` (Algorithm 5)."""
        return jnp.exp(2.0 * (self._log_mean_coeff(t) - self._log_mean_coeff(t - h)))


@dataclasses.dataclass(frozen=True)
class SubVPSDE(VPSDE):
    """Sub-VP SDE (Song et al. 2021, eq. 17): the VP drift, a smaller diffusion.

        dx = -1/2 beta(t) x dt + sqrt(beta(t) (1 - exp(-2 int_0^t beta(s) ds))) dw

    Its marginal variance ``(1 - alpha(t)^2)^2`` is bounded by the VP one (hence "sub").

    Example:
      >>> sde = SubVPSDE()
      >>> round(float(sde.sigma(jnp.asarray(0.0))), 4)  # no noise at t = 0
      0.0
    """

    def diffusion(self, t: jax.Array) -> jax.Array:
        # g(t)^2 = beta(t) (1 - exp(-2 b_min t - (b_max - b_min) t^2)) = beta(t)(1 - alpha^4)
        return jnp.sqrt(self.beta(t) * -jnp.expm1(4.0 * self._log_mean_coeff(t)))

    def sigma(self, t: jax.Array) -> jax.Array:
        """Marginal std sigma(t) = 1 - alpha(t)^2 (eq. 29, not a square root)."""
        return -jnp.expm1(2.0 * self._log_mean_coeff(t))

    def discretize(self, x: jax.Array, t: jax.Array, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Euler discretisation ``f_i = f(x, t) h``, ``G_i = g(t) sqrt(h)`` (score_sde default)."""
        return self.drift(x, t) * bcast(h, x), self.diffusion(t) * jnp.sqrt(h)


@dataclasses.dataclass(frozen=True)
class VESDE:
    """Variance-exploding SDE (Song et al. 2021, eq. 9): the continuous SMLD/NCSN.

        dx = sqrt(d[s(t)^2]/dt) dw,   s(t) = s_min (s_max / s_min)^t
        g(t) = s(t) sqrt(2 log(s_max / s_min))

    Attributes:
      sigma_min: s(0) > 0.
      sigma_max: s(1) > sigma_min.

    Example:
      >>> sde = VESDE(sigma_min=0.01, sigma_max=50.0)
      >>> sde.prior_std()
      50.0
    """

    sigma_min: float = 0.01
    sigma_max: float = 50.0

    def __post_init__(self) -> None:
        checks.positive("sigma_min", self.sigma_min)
        if not self.sigma_max > self.sigma_min:
            raise ValueError(
                f"sigma_max must be > sigma_min={self.sigma_min}, got {self.sigma_max}"
            )

    def noise_level(self, t: jax.Array) -> jax.Array:
        """s(t) = s_min (s_max / s_min)^t."""
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def drift(self, x: jax.Array, t: jax.Array) -> jax.Array:
        """f(x, t) = 0."""
        return jnp.zeros_like(x)

    def diffusion(self, t: jax.Array) -> jax.Array:
        """g(t) = s(t) sqrt(2 log(s_max / s_min))."""
        return self.noise_level(t) * math.sqrt(2.0 * math.log(self.sigma_max / self.sigma_min))

    def alpha(self, t: jax.Array) -> jax.Array:
        """alpha(t) = 1."""
        return jnp.ones_like(jnp.asarray(t, dtype=jnp.result_type(t, float)))

    def sigma(self, t: jax.Array) -> jax.Array:
        """Exact marginal std ``sqrt(int_0^t g^2) = s_min sqrt((s_max/s_min)^(2t) - 1)``."""
        log_ratio = math.log(self.sigma_max / self.sigma_min)
        return self.sigma_min * jnp.sqrt(jnp.expm1(2.0 * t * log_ratio))

    def prior_std(self) -> float:
        """Std of the prior N(0, s_max^2 I)."""
        return self.sigma_max

    def prior_sample(self, key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32):
        """x_T ~ N(0, prior_std^2 I) of shape ``(batch, ...)``."""
        return prior_sample(key, self, shape, dtype)

    def prior_log_prob(self, x: jax.Array) -> jax.Array:
        """log N(x; 0, prior_std^2 I): ``(batch, ...) -> (batch,)``."""
        return prior_log_prob(self, x)

    def discretize(self, x: jax.Array, t: jax.Array, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        """SMLD step from ``t - h`` to ``t``: ``f_i = 0``, ``G_i = sqrt(s(t)^2 - s(t-h)^2)``."""
        return jnp.zeros_like(x), jnp.sqrt(self.noise_level(t) ** 2 - self.noise_level(t - h) ** 2)

    def langevin_alpha(self, t: jax.Array, h: jax.Array) -> jax.Array:
        """a_i = 1 (Algorithm 4)."""
        return jnp.ones_like(jnp.asarray(t, dtype=jnp.result_type(t, float)))


SDE = VPSDE | VESDE  # SubVPSDE is a VPSDE


def prior_sample(
    key: jax.Array, sde: SDE, shape: tuple[int, ...], dtype: Any = jnp.float32
) -> jax.Array:
    """Draw ``x_T ~ N(0, prior_std^2 I)`` of shape ``shape = (batch, ...)`` (key first).

    Args:
      key: PRNG key.
      sde: the SDE (its prior's std).
      shape: ``(batch, ...)``.
      dtype: floating dtype.

    Returns:
      ``shape`` draws.

    Example:
      >>> prior_sample(jax.random.key(0), VPSDE(), (3, 2)).shape
      (3, 2)
    """
    shape = check_shape(shape)
    return sde.prior_std() * jax.random.normal(key, shape, dtype)


def prior_log_prob(sde: SDE, x: jax.Array) -> jax.Array:
    """log N(x; 0, prior_std^2 I) summed over non-batch axes: ``(batch, ...) -> (batch,)``."""
    s = sde.prior_std()
    n = math.prod(x.shape[1:])
    return -0.5 * sum_nonbatch(x**2) / s**2 - n * (math.log(s) + 0.5 * LOG_2PI)


def _check_time(t: jax.Array) -> None:
    # Continuous time lives in [0, 1] (checked when concrete).
    checks.in_range("t", t, 0.0, 1.0)


def reverse_drift(model: Model, sde: SDE, x: jax.Array, t: jax.Array) -> jax.Array:
    """Drift of the reverse SDE ``f(x, t) - g(t)^2 model(x, t)`` (eq. 6); t: (batch,) in [0, 1]."""
    _check_time(t)
    return sde.drift(x, t) - bcast(sde.diffusion(t) ** 2, x) * call_model(model, x, t)


def probability_flow_drift(model: Model, sde: SDE, x: jax.Array, t: jax.Array) -> jax.Array:
    """Probability-flow ODE ``dx/dt = f(x, t) - 1/2 g(t)^2 model(x, t)`` (eq. 13).

    Args:
      model: the score model ``model(x (batch, ...), t (batch,)) -> (batch, ...)``.
      sde: the SDE.
      x: ``(batch, ...)`` points.
      t: ``(batch,)`` times in ``[0, 1]``.

    Returns:
      ``(batch, ...)`` the drift.
    """
    _check_time(t)
    return sde.drift(x, t) - 0.5 * bcast(sde.diffusion(t) ** 2, x) * call_model(model, x, t)
