"""Score-based diffusion as stochastic differential equations (Song et al. 2021).

Data ``x(0) ~ p_0`` are diffused by an Ito SDE on continuous time ``t in [0, 1]``

    dx = f(x, t) dt + g(t) dw                                        (eq. 5)

whose marginal is Gaussian given ``x(0)``: ``x(t) | x(0) ~ N(alpha(t) x(0), sigma(t)^2 I)``.
Sampling runs the reverse-time SDE (Anderson 1982; Song et al. 2021, eq. 6)

    dx = [f(x, t) - g(t)^2 grad_x log p_t(x)] dt + g(t) dw_bar,      dt < 0

with the score replaced by a model ``score_fn(x, t)``. Three SDEs (Song et al. 2021,
sec. 3.4 and appendix B), with ``beta(t) = beta_min + t (beta_max - beta_min)``:

===========  ======================  =====================================  ================
SDE          f(x, t)                  g(t)^2                                 sigma(t)
===========  ======================  =====================================  ================
VP (eq. 11)  -beta(t) x / 2           beta(t)                                sqrt(1 - alpha^2)
sub-VP (17)  -beta(t) x / 2           beta(t) (1 - exp(-2 int_0^t beta))     1 - alpha^2
VE (eq. 9)   0                        d[s(t)^2]/dt, s(t) = s_min (s_max/s_min)^t   see below
===========  ======================  =====================================  ================

For VP and sub-VP ``alpha(t) = exp(-t^2 (beta_max - beta_min) / 4 - t beta_min / 2)``
(eq. 29). For VE ``alpha = 1`` and the exact marginal std of the SDE started at ``t = 0``
is ``sigma(t) = sqrt(s(t)^2 - s_min^2)``; the score_sde code uses ``s(t)`` instead (it
treats the data as already smoothed at ``s_min``). We keep the exact value so that the
exact mixture score below is the exact score of this SDE. Priors: ``N(0, I)`` for VP and
sub-VP, ``N(0, s_max^2 I)`` for VE (as score_sde).

The predictor-corrector sampler (Song et al. 2021, Algorithm 1 in sec. 4.2, with the
corrector of Algorithms 4/5) visits ``t_0 = 1 > t_1 > ... > t_N = eps`` evenly spaced;
at each ``t_i`` it runs ``corrector_steps`` Langevin steps at ``t_i`` and then one
predictor step from ``t_i`` to ``t_{i+1}``:

* Euler-Maruyama predictor:  ``x <- x - [f - g^2 s] h + g sqrt(h) z``,  ``h = t_i - t_{i+1}``;
* reverse-diffusion predictor (eq. 46-47): ``x <- x - f_i + G_i^2 s + G_i z`` with the
  forward discretisation ``x_{i} = x_{i-1} + f_i + G_i z`` of the step — for VP
  ``f_i = (sqrt(1 - b_i) - 1) x``, ``G_i = sqrt(b_i)`` with
  ``1 - b_i = (alpha(t_i) / alpha(t_{i+1}))^2`` (the DDPM chain); for VE ``f_i = 0``,
  ``G_i = sqrt(s(t_i)^2 - s(t_{i+1})^2)`` (SMLD); for sub-VP ``f_i = f h``, ``G_i = g sqrt(h)``;
* Langevin corrector (Algorithms 4/5): ``eps_step = 2 a_i (r ||z|| / ||s||)^2``,
  ``x <- x + eps_step s + sqrt(2 eps_step) z`` with signal-to-noise ratio ``r = snr``,
  ``a_i = 1 - b_i`` for VP/sub-VP and 1 for VE. As in score_sde, the norms are averaged
  over the batch (per-example norms blow the step up near an exact mode, where ``||s||``
  vanishes).

After the last predictor step the noise is dropped (score_sde's ``noise_removal``): the
sampler returns the last step's mean.

References:
  Song, Sohl-Dickstein, Kingma, Kumar, Ermon, Poole, "Score-Based Generative Modeling
  through Stochastic Differential Equations", ICLR 2021 (and github.com/yang-song/score_sde).
  Anderson, "Reverse-time diffusion equation models", Stochastic Processes and their
  Applications, 1982.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

if TYPE_CHECKING:
    from genjax.targets import GaussianMixture

__all__ = [
    "VPSDE",
    "SubVPSDE",
    "VESDE",
    "SDE",
    "prior_sample",
    "prior_log_prob",
    "exact_score_fn",
    "reverse_drift",
    "probability_flow_drift",
    "euler_maruyama_step",
    "reverse_diffusion_step",
    "langevin_corrector_step",
    "pc_step",
    "pc_sample",
    "pc_sample_from_noise",
]

ScoreFn = Callable[[jax.Array, jax.Array], jax.Array]


def _bc(c: jax.Array, x: jax.Array) -> jax.Array:
    """Broadcast a per-example coefficient ``(batch,)`` (or a scalar) against ``x (batch, ...)``."""
    c = jnp.asarray(c)
    return c.reshape(c.shape + (1,) * (x.ndim - c.ndim))


def _check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def _sum_nonbatch(v: jax.Array) -> jax.Array:
    return jnp.sum(v.reshape(v.shape[0], -1), axis=-1)


@dataclasses.dataclass(frozen=True)
class VPSDE:
    """Variance-preserving SDE (Song et al. 2021, eq. 11): the continuous DDPM.

        dx = -1/2 beta(t) x dt + sqrt(beta(t)) dw,   beta(t) = beta_min + t (beta_max - beta_min)

    Attributes:
      beta_min: beta(0) > 0 (0.1 in the paper).
      beta_max: beta(1) >= beta_min (20 in the paper).
    """

    beta_min: float = 0.1
    beta_max: float = 20.0

    def __post_init__(self) -> None:
        _check_positive("beta_min", self.beta_min)
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
        return -0.5 * _bc(self.beta(t), x) * x

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
        return prior_sample(self, key, shape, dtype)

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
        return _bc(jnp.expm1(log_a), x) * x, g

    def langevin_alpha(self, t: jax.Array, h: jax.Array) -> jax.Array:
        """a_i = 1 - b_i of the step from ``t - h`` to ``t`` (Algorithm 5)."""
        return jnp.exp(2.0 * (self._log_mean_coeff(t) - self._log_mean_coeff(t - h)))


@dataclasses.dataclass(frozen=True)
class SubVPSDE(VPSDE):
    """Sub-VP SDE (Song et al. 2021, eq. 17): the VP drift, a smaller diffusion.

        dx = -1/2 beta(t) x dt + sqrt(beta(t) (1 - exp(-2 int_0^t beta(s) ds))) dw

    Its marginal variance ``(1 - alpha(t)^2)^2`` is bounded by the VP one (hence "sub").
    """

    def diffusion(self, t: jax.Array) -> jax.Array:
        # g(t)^2 = beta(t) (1 - exp(-2 b_min t - (b_max - b_min) t^2)) = beta(t)(1 - alpha^4)
        return jnp.sqrt(self.beta(t) * -jnp.expm1(4.0 * self._log_mean_coeff(t)))

    def sigma(self, t: jax.Array) -> jax.Array:
        """Marginal std sigma(t) = 1 - alpha(t)^2 (eq. 29, not a square root)."""
        return -jnp.expm1(2.0 * self._log_mean_coeff(t))

    def discretize(self, x: jax.Array, t: jax.Array, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Euler discretisation ``f_i = f(x, t) h``, ``G_i = g(t) sqrt(h)`` (score_sde default)."""
        return self.drift(x, t) * _bc(h, x), self.diffusion(t) * jnp.sqrt(h)


@dataclasses.dataclass(frozen=True)
class VESDE:
    """Variance-exploding SDE (Song et al. 2021, eq. 9): the continuous SMLD/NCSN.

        dx = sqrt(d[s(t)^2]/dt) dw,   s(t) = s_min (s_max / s_min)^t
        g(t) = s(t) sqrt(2 log(s_max / s_min))

    Attributes:
      sigma_min: s(0) > 0.
      sigma_max: s(1) > sigma_min.
    """

    sigma_min: float = 0.01
    sigma_max: float = 50.0

    def __post_init__(self) -> None:
        _check_positive("sigma_min", self.sigma_min)
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
        return prior_sample(self, key, shape, dtype)

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


def _prior_sample(sde: SDE, key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    return sde.prior_std() * jax.random.normal(key, shape, dtype)


def prior_sample(sde: SDE, key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32):
    """Draw ``x_T ~ N(0, prior_std^2 I)`` of shape ``shape = (batch, ...)``."""
    return _prior_sample(sde, key, tuple(shape), dtype)


def prior_log_prob(sde: SDE, x: jax.Array) -> jax.Array:
    """log N(x; 0, prior_std^2 I) summed over non-batch axes: ``(batch, ...) -> (batch,)``."""
    s = sde.prior_std()
    n = math.prod(x.shape[1:])
    return -0.5 * _sum_nonbatch(x**2) / s**2 - n * (math.log(s) + 0.5 * math.log(2.0 * math.pi))


def exact_score_fn(target: GaussianMixture, sde: SDE) -> ScoreFn:
    """The exact score of ``p_t`` when ``p_0`` is a Gaussian mixture.

        grad_x log p_t(x) = target.noised(alpha(t), sigma(t)).score(x)

    Args:
      target: a :class:`genjax.targets.GaussianMixture` (dimension D).
      sde: the SDE.

    Returns:
      ``score_fn(x (batch, D), t (batch,)) -> (batch, D)``.
    """

    def one(x: jax.Array, t: jax.Array) -> jax.Array:
        return target.noised(sde.alpha(t), sde.sigma(t)).score(x)  # (D,)

    def score_fn(x: jax.Array, t: jax.Array) -> jax.Array:
        t = jnp.broadcast_to(jnp.asarray(t, x.dtype), x.shape[:1])  # (batch,)
        return jax.vmap(one)(x, t)

    return score_fn


def reverse_drift(score_fn: ScoreFn, sde: SDE, x: jax.Array, t: jax.Array) -> jax.Array:
    """Drift of the reverse SDE ``f(x, t) - g(t)^2 score(x, t)`` (eq. 6); t: (batch,)."""
    return sde.drift(x, t) - _bc(sde.diffusion(t) ** 2, x) * score_fn(x, t)


def probability_flow_drift(score_fn: ScoreFn, sde: SDE, x: jax.Array, t: jax.Array) -> jax.Array:
    """Probability-flow ODE ``dx/dt = f(x, t) - 1/2 g(t)^2 score(x, t)`` (eq. 13)."""
    return sde.drift(x, t) - 0.5 * _bc(sde.diffusion(t) ** 2, x) * score_fn(x, t)


def euler_maruyama_step(
    score_fn: ScoreFn, sde: SDE, x: jax.Array, t: jax.Array, h: jax.Array, z: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """One Euler-Maruyama step of the reverse SDE from ``t`` to ``t - h``.

        x_mean = x - [f(x, t) - g(t)^2 s(x, t)] h,    x' = x_mean + g(t) sqrt(h) z

    Args:
      x: (batch, ...) state at ``t``; t: (batch,) times; h: scalar step > 0;
      z: (batch, ...) standard normal noise.

    Returns:
      ``(x', x_mean)``, each (batch, ...).
    """
    x_mean = x - reverse_drift(score_fn, sde, x, t) * h
    return x_mean + _bc(sde.diffusion(t) * jnp.sqrt(h), x) * z, x_mean


def reverse_diffusion_step(
    score_fn: ScoreFn, sde: SDE, x: jax.Array, t: jax.Array, h: jax.Array, z: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """One reverse-diffusion step (Song et al. 2021, eq. 47) from ``t`` to ``t - h``.

        x_mean = x - f_i + G_i^2 s(x, t),    x' = x_mean + G_i z

    with ``(f_i, G_i) = sde.discretize(x, t, h)``. Shapes as :func:`euler_maruyama_step`.
    """
    f, g = sde.discretize(x, t, h)
    x_mean = x - f + _bc(g**2, x) * score_fn(x, t)
    return x_mean + _bc(g, x) * z, x_mean


def langevin_corrector_step(
    score_fn: ScoreFn,
    sde: SDE,
    x: jax.Array,
    t: jax.Array,
    h: jax.Array,
    z: jax.Array,
    snr: float,
) -> tuple[jax.Array, jax.Array]:
    """One Langevin corrector step at time ``t`` (Song et al. 2021, Algorithms 4/5).

        eps_step = 2 a_i (snr ||z|| / ||s(x, t)||)^2
        x_mean = x + eps_step s(x, t),   x' = x_mean + sqrt(2 eps_step) z

    ``||.||`` is the per-example L2 norm averaged over the batch (score_sde), and
    ``a_i = sde.langevin_alpha(t, h)``.

    Returns:
      ``(x', x_mean)``.
    """
    grad = score_fn(x, t)
    grad_norm = jnp.mean(jnp.sqrt(_sum_nonbatch(grad**2)))
    noise_norm = jnp.mean(jnp.sqrt(_sum_nonbatch(z**2)))
    # A vanishing score (every example exactly at a mode) would divide by zero.
    grad_norm = jnp.maximum(grad_norm, jnp.finfo(x.dtype).tiny)
    step = (snr * noise_norm / grad_norm) ** 2 * 2.0 * _bc(sde.langevin_alpha(t, h), x)
    x_mean = x + step * grad
    return x_mean + jnp.sqrt(2.0 * step) * z, x_mean


_PREDICTORS = {"euler_maruyama": euler_maruyama_step, "reverse_diffusion": reverse_diffusion_step}


def pc_step(
    score_fn: ScoreFn,
    sde: SDE,
    x: jax.Array,
    t: jax.Array,
    h: jax.Array,
    predictor_noise: jax.Array,
    corrector_noise: jax.Array,
    *,
    predictor: str = "euler_maruyama",
    snr: float = 0.16,
) -> tuple[jax.Array, jax.Array]:
    """One predictor-corrector step: the correctors at ``t``, then a predictor to ``t - h``.

    Args:
      x: (batch, ...) state at time ``t`` (a scalar).
      h: scalar step size > 0.
      predictor_noise: (batch, ...) noise of the predictor.
      corrector_noise: (corrector_steps, batch, ...) noise of the Langevin steps
        (``corrector_steps = 0`` for no corrector).
      predictor: ``"euler_maruyama"`` or ``"reverse_diffusion"``.
      snr: signal-to-noise ratio of the Langevin corrector.

    Returns:
      ``(x', x_mean)`` after the predictor, each (batch, ...).
    """
    tb = jnp.broadcast_to(t, x.shape[:1])  # (batch,)

    def correct(x, z):
        x, _ = langevin_corrector_step(score_fn, sde, x, tb, h, z, snr)
        return x, None

    x, _ = jax.lax.scan(correct, x, corrector_noise)
    return _PREDICTORS[predictor](score_fn, sde, x, tb, h, predictor_noise)


def _check_pc_args(predictor: str, snr: float, eps: float) -> None:
    if predictor not in _PREDICTORS:
        raise ValueError(f"predictor must be one of {tuple(_PREDICTORS)}, got {predictor!r}")
    _check_positive("snr", snr)
    if not 0.0 < eps < 1.0:
        raise ValueError(f"eps must be in (0, 1), got {eps!r}")


@functools.partial(jax.jit, static_argnames=("score_fn", "sde", "predictor", "snr", "eps"))
def pc_sample_from_noise(
    score_fn: ScoreFn,
    sde: SDE,
    x_T: jax.Array,
    predictor_noise: jax.Array,
    corrector_noise: jax.Array,
    *,
    predictor: str = "euler_maruyama",
    snr: float = 0.16,
    eps: float = 1e-3,
) -> jax.Array:
    """Run the predictor-corrector sampler on given noise (one ``lax.scan``).

    The time grid is ``t_i = 1 - i (1 - eps) / N``, ``i = 0 .. N``; step ``i`` corrects at
    ``t_i`` and predicts to ``t_{i+1}``; the last step's mean is returned.

    Args:
      score_fn: ``score_fn(x (batch, ...), t (batch,)) -> (batch, ...)`` (static).
      sde: a :class:`VPSDE`, :class:`SubVPSDE` or :class:`VESDE` (static).
      x_T: (batch, ...) prior draw at ``t = 1``.
      predictor_noise: (N, batch, ...) predictor noise; N = number of steps.
      corrector_noise: (N, corrector_steps, batch, ...) corrector noise
        (``corrector_steps = 0`` for a predictor-only sampler).
      predictor: ``"euler_maruyama"`` or ``"reverse_diffusion"``.
      snr: Langevin signal-to-noise ratio (0.16 for VE on CIFAR-10, 0.01 for VP in the paper).
      eps: the final time, in (0, 1).

    Returns:
      (batch, ...) samples at ``t = eps``.
    """
    _check_pc_args(predictor, snr, eps)
    x_T = jnp.asarray(x_T)
    if predictor_noise.ndim != x_T.ndim + 1 or predictor_noise.shape[1:] != x_T.shape:
        raise ValueError(
            f"predictor_noise must have shape (num_steps, *{x_T.shape}), got "
            f"{predictor_noise.shape}"
        )
    n = predictor_noise.shape[0]
    if corrector_noise.ndim != x_T.ndim + 2 or corrector_noise.shape[0] != n or (
        corrector_noise.shape[2:] != x_T.shape
    ):
        raise ValueError(
            f"corrector_noise must have shape ({n}, corrector_steps, *{x_T.shape}), got "
            f"{corrector_noise.shape}"
        )
    dtype = x_T.dtype
    ts = jnp.linspace(1.0, eps, n + 1, dtype=dtype)  # t_0 = 1 > ... > t_N = eps
    h = jnp.asarray((1.0 - eps) / n, dtype)

    def body(x, inputs):
        t, zp, zc = inputs
        x, x_mean = pc_step(score_fn, sde, x, t, h, zp, zc, predictor=predictor, snr=snr)
        return x, x_mean

    _, x_means = jax.lax.scan(body, x_T, (ts[:-1], predictor_noise, corrector_noise))
    return x_means[-1]


@functools.partial(
    jax.jit,
    static_argnames=(
        "score_fn", "shape", "sde", "num_steps", "predictor", "corrector_steps", "snr", "eps",
        "dtype",
    ),
)
def pc_sample(
    key: jax.Array,
    score_fn: ScoreFn,
    shape: tuple[int, ...],
    sde: SDE,
    *,
    num_steps: int = 500,
    predictor: str = "euler_maruyama",
    corrector_steps: int = 1,
    snr: float = 0.16,
    eps: float = 1e-3,
    dtype: Any = jnp.float32,
) -> jax.Array:
    """Predictor-corrector sampling of the reverse SDE (Song et al. 2021, Algorithms 2/3).

    Draws ``x_T`` from the prior and all the noise from ``key``, then calls
    :func:`pc_sample_from_noise`.

    Args:
      key: PRNG key.
      score_fn: ``score_fn(x (batch, ...), t (batch,)) -> (batch, ...)``.
      shape: ``(batch, ...)`` of the samples.
      sde: the SDE.
      num_steps: number of predictor steps N >= 1.
      predictor: ``"euler_maruyama"`` or ``"reverse_diffusion"``.
      corrector_steps: Langevin steps per time step (0: predictor only).
      snr: Langevin signal-to-noise ratio.
      eps: final time in (0, 1).
      dtype: floating dtype of the samples.

    Returns:
      (batch, ...) samples.

    Example:
      >>> score = exact_score_fn(targets.ring(), VPSDE())
      >>> x = pc_sample(jax.random.key(0), score, (512, 2), VPSDE(), num_steps=200)
    """
    if isinstance(num_steps, bool) or int(num_steps) != num_steps or num_steps < 1:
        raise ValueError(f"num_steps must be an integer >= 1, got {num_steps!r}")
    if int(corrector_steps) != corrector_steps or corrector_steps < 0:
        raise ValueError(f"corrector_steps must be an integer >= 0, got {corrector_steps!r}")
    _check_pc_args(predictor, snr, eps)
    shape = tuple(int(s) for s in shape)
    prior_key, pred_key, corr_key = jax.random.split(key, 3)
    x_T = _prior_sample(sde, prior_key, shape, dtype)
    zp = jax.random.normal(pred_key, (num_steps, *shape), dtype)
    zc = jax.random.normal(corr_key, (num_steps, corrector_steps, *shape), dtype)
    return pc_sample_from_noise(score_fn, sde, x_T, zp, zc, predictor=predictor, snr=snr, eps=eps)
