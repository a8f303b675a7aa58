"""Training objectives of diffusion models, as ``(model, batch, key) -> (loss, metrics)``.

* :func:`loss` -- the simplified DDPM objective of Ho et al. (2020), eq. 14, for a network
  that predicts the noise ``eps``, the data ``x0`` or the velocity ``v = alpha eps - sigma
  x0`` (Salimans & Ho 2022, sec. 4), optionally with the min-SNR-gamma weighting of Hang et
  al. (2023), "Efficient diffusion training via min-SNR weighting strategy", eq. 9.
* :func:`dsm_loss` -- continuous denoising score matching (Vincent 2011) with the
  ``lambda(sigma) = sigma^2`` weighting of Song & Ermon (2019), eq. 6, over a log-uniform
  sigma in ``[sigma_min, sigma_max]`` (the VE-SDE of Song et al. 2021).
* :func:`edm_loss` with :func:`edm_precondition` -- Karras et al. (2022), Table 1 and
  eq. 8: a preconditioned denoiser ``D = c_skip x + c_out F(c_in x, c_noise)``, ``ln sigma ~
  N(P_mean, P_std^2)`` and loss weight ``lambda(sigma) = (sigma^2 + sigma_data^2) /
  (sigma sigma_data)^2``.

Min-SNR-gamma across prediction types. Hang et al. weight the x0-space error
``|x0 - x0_hat|^2`` by ``min(SNR_t, gamma)``. At fixed ``x_t`` the three errors are
proportional -- ``|eps - eps_hat|^2 = SNR |x0 - x0_hat|^2`` and ``|v - v_hat|^2 =
(SNR + 1) |x0 - x0_hat|^2`` -- so the same objective weights each target's error by

    eps: min(SNR, gamma) / SNR = gamma / max(SNR, gamma)   (1 where SNR = 0)
    x0:  min(SNR, gamma)
    v:   min(SNR, gamma) / (SNR + 1)

Reductions: squared errors are averaged over the non-batch axes, then over the batch
(:func:`dsm_loss`: ``1/2`` times the sum over the non-batch axes, as Song & Ermon 2019).

The model is the first argument, a callable pytree differentiated by ``jax.grad`` (an
``nnx.Module``, a ``jax.tree_util.Partial(apply, params)``, any pytree with ``__call__``);
what it computes differs by loss: ``model(x_t, t)`` the prediction for :func:`loss`,
``model(x, sigma)`` the score for :func:`dsm_loss`, the raw network ``model(c_in x, c_noise)``
for :func:`edm_loss` (preconditioned here by :func:`edm_precondition`).

This module was ``genjax/diffusion/loss.py``; it is ``losses`` so that
``genjax.diffusion.loss`` is unambiguously the function :func:`loss`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.diffusion._common import bcast, call_model, check_x, mean_nonbatch, sum_nonbatch
from genjax.diffusion.forward import q_sample
from genjax.diffusion.schedules import Schedule
from genjax.model import Model

__all__ = [
    "loss",
    "loss_from_noise",
    "min_snr_weight",
    "dsm_loss",
    "edm_coefficients",
    "EDMDenoiser",
    "edm_precondition",
    "edm_loss",
]

_PREDICTIONS = ("eps", "x0", "v")


def min_snr_weight(snr: jax.Array, gamma: float, prediction: str) -> jax.Array:
    """Per-example min-SNR-gamma weight for a prediction target (module docstring).

    Args:
      snr: ``(batch,)`` signal-to-noise ratios ``alpha_bar / (1 - alpha_bar)``, >= 0.
      gamma: the clipping value (5 in Hang et al. 2023).
      prediction: ``"eps"``, ``"x0"`` or ``"v"``.

    Returns:
      ``(batch,)`` weights.
    """
    checks.positive("gamma", gamma)
    checks.one_of("prediction", prediction, _PREDICTIONS)
    checks.nonnegative("snr", snr)
    clipped = jnp.minimum(snr, gamma)
    if prediction == "eps":
        return gamma / jnp.maximum(snr, gamma)  # = min(SNR, gamma)/SNR, finite at SNR = 0
    if prediction == "x0":
        return clipped
    return clipped / (snr + 1.0)


def _check_prediction(prediction: str, min_snr_gamma: float | None) -> None:
    checks.one_of("prediction", prediction, _PREDICTIONS)
    if min_snr_gamma is not None:
        checks.positive("min_snr_gamma", min_snr_gamma)


def loss_from_noise(
    model: Model,
    batch: jax.Array,
    t: jax.Array,
    eps: jax.Array,
    *,
    schedule: Schedule,
    prediction: str = "eps",
    min_snr_gamma: float | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """:func:`loss` at given times and noise (the deterministic core).

    Args:
      model: callable pytree ``model(x_t, t) -> prediction``.
      batch: ``(batch, ...)`` clean data ``x0``.
      t: ``(batch,)`` integer times in ``[0, T)``.
      eps: ``(batch, ...)`` standard normal noise.
      schedule, prediction, min_snr_gamma: as in :func:`loss`.

    Returns:
      ``(loss, metrics)``; metrics ``{"loss", "mse"}`` (``mse``: unweighted).

    Example:
      >>> s = linear(100)
      >>> model = analytic_eps_fn(genjax.targets.mixture_1d([1.0], [0.0], [1.0]), s)
      >>> x0 = jnp.zeros((2, 1))  # the target's mean: eps = x_t / sqrt(1 - ab) exactly
      >>> value, _ = loss_from_noise(model, x0, jnp.array([10, 50]), jnp.ones((2, 1)), schedule=s)
      >>> value.shape, bool(value >= 0)
      ((), True)
    """
    _check_prediction(prediction, min_snr_gamma)
    x0 = jnp.asarray(batch)
    x_t = q_sample(schedule, x0, t, eps)  # eq. 4
    pred = call_model(model, x_t, t)
    ab = schedule.alpha_bars[t].astype(x0.dtype)  # (batch,)
    if prediction == "eps":
        target = eps
    elif prediction == "x0":
        target = x0
    else:
        # v = alpha_t eps - sigma_t x0                        (Salimans & Ho 2022, sec. 4)
        # sigma_t is the schedule's cancellation-free sqrt(1 - alpha_bar) that q_sample used
        # for x_t, so the target is exactly alpha_t eps - sigma_t x0 for this x_t.
        sigma = schedule.sigma(t).astype(x0.dtype)  # (batch,)
        target = bcast(jnp.sqrt(ab), x0) * eps - bcast(sigma, x0) * x0
    mse = mean_nonbatch(jnp.square(pred - target))  # (batch,), eq. 14 per example
    if min_snr_gamma is None:
        weighted = mse
    else:
        snr = ab / schedule.one_minus_alpha_bars[t].astype(x0.dtype)  # SNR_t; finite
        weighted = min_snr_weight(snr, min_snr_gamma, prediction) * mse
    value = jnp.mean(weighted)
    return value, {"loss": value, "mse": jnp.mean(mse)}


def loss(
    model: Model,
    batch: jax.Array,
    key: jax.Array,
    *,
    schedule: Schedule,
    prediction: str = "eps",
    min_snr_gamma: float | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The simplified DDPM objective (Ho et al. 2020, eq. 14 and Algorithm 1).

        t ~ U{0, ..., T-1},  eps ~ N(0, I),  x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps
        L = E w_t |target - model(x_t, t)|^2,
        target = eps | x0 | alpha_t eps - sigma_t x0

    with ``w_t = 1`` or the min-SNR-gamma weight of the target (module docstring). With
    ``t_key, eps_key = jax.random.split(key)``, ``t`` and ``eps`` are drawn from them and
    passed to :func:`loss_from_noise`.

    Args:
      model: callable pytree ``model(x_t, t) -> prediction`` with ``x_t: (batch, ...)``,
        ``t: (batch,)`` int (differentiated; an ``nnx.Module`` works as it is).
      batch: ``(batch, ...)`` clean data.
      key: PRNG key for ``t`` and ``eps``.
      schedule: the noise schedule.
      prediction: ``"eps"``, ``"x0"`` or ``"v"``.
      min_snr_gamma: ``None`` (uniform weights) or gamma > 0.

    Returns:
      ``(loss, {"loss", "mse"})``.

    Example:
      >>> import functools
      >>> from genjax.nn import MLPDenoiser
      >>> net = MLPDenoiser(2, [8], time_embed_dim=4, rngs=nnx.Rngs(0))
      >>> loss_fn = functools.partial(loss, schedule=linear(100))
      >>> x = jnp.ones((4, 2))
      >>> (value, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      ...     net, x, jax.random.key(0))
      >>> value.shape, type(grads).__name__
      ((), 'MLPDenoiser')
    """
    _check_prediction(prediction, min_snr_gamma)
    x0 = check_x("batch", batch)
    t_key, eps_key = jax.random.split(key)
    t = jax.random.randint(t_key, (x0.shape[0],), 0, schedule.num_steps)
    eps = jax.random.normal(eps_key, x0.shape, x0.dtype)
    return loss_from_noise(
        model, x0, t, eps, schedule=schedule, prediction=prediction, min_snr_gamma=min_snr_gamma
    )


def dsm_loss(
    model: Model,
    batch: jax.Array,
    key: jax.Array,
    *,
    sigma_min: float,
    sigma_max: float,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Continuous denoising score matching with ``lambda(sigma) = sigma^2``.

        sigma = sigma_min (sigma_max / sigma_min)^u,  u ~ U(0, 1);  x~ = x + sigma z
        L = E 1/2 sigma^2 |s(x~, sigma) + z / sigma|^2 = E 1/2 |sigma s(x~, sigma) + z|^2

    (Vincent 2011, eq. 11: the target ``grad log N(x~; x, sigma^2 I) = -z / sigma``; Song &
    Ermon 2019, eqs. 5-6.) ``u_key, z_key = jax.random.split(key)``.

    Args:
      model: the score model, a callable pytree ``model(x (batch, ...), sigma (batch,)) ->
        score (batch, ...)``.
      batch: ``(batch, ...)`` clean data.
      key: PRNG key.
      sigma_min, sigma_max: ``0 < sigma_min <= sigma_max``.

    Returns:
      ``(loss, {"loss"})``.

    Example:
      >>> score = jax.tree_util.Partial(lambda x, sigma: -x / (1 + sigma[:, None] ** 2))
      >>> value, metrics = dsm_loss(score, jnp.zeros((4, 1)), jax.random.key(0), sigma_min=0.01,
      ...                           sigma_max=1.0)
      >>> value.shape, bool(value >= 0)
      ((), True)
    """
    checks.positive("sigma_min", sigma_min)
    checks.in_range("sigma_max", sigma_max, sigma_min)
    x = check_x("batch", batch)
    u_key, z_key = jax.random.split(key)
    u = jax.random.uniform(u_key, (x.shape[0],), x.dtype)
    sigma = sigma_min * (sigma_max / sigma_min) ** u  # log-uniform, (batch,)
    z = jax.random.normal(z_key, x.shape, x.dtype)
    score = call_model(model, x + bcast(sigma, x) * z, sigma)
    resid = bcast(sigma, x) * score + z  # sigma (s + z / sigma)
    value = jnp.mean(0.5 * sum_nonbatch(jnp.square(resid)))
    return value, {"loss": value}


def edm_coefficients(sigma: jax.Array, sigma_data: float = 0.5) -> tuple[jax.Array, ...]:
    """Karras et al. (2022), Table 1: ``(c_skip, c_out, c_in, c_noise, lambda)``.

        c_skip = sigma_d^2 / (sigma^2 + sigma_d^2)
        c_out  = sigma sigma_d / sqrt(sigma^2 + sigma_d^2)
        c_in   = 1 / sqrt(sigma^2 + sigma_d^2)
        c_noise = ln(sigma) / 4
        lambda = (sigma^2 + sigma_d^2) / (sigma sigma_d)^2 = 1 / c_out^2

    Args:
      sigma: ``(batch,)`` noise levels > 0.
      sigma_data: standard deviation of the data.

    Returns:
      five ``(batch,)`` arrays.
    """
    checks.positive("sigma", sigma)  # c_noise = ln(sigma) / 4 needs sigma > 0
    checks.positive("sigma_data", sigma_data)
    sd2 = sigma_data**2
    total = sigma**2 + sd2
    c_skip = sd2 / total
    c_out = sigma * sigma_data * jax.lax.rsqrt(total)
    c_in = jax.lax.rsqrt(total)
    c_noise = jnp.log(sigma) / 4.0
    weight = total / (sigma * sigma_data) ** 2
    return c_skip, c_out, c_in, c_noise, weight


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity (arrays inside)
class EDMDenoiser:
    """The EDM denoiser of a raw network ``F`` (Karras et al. 2022, eq. 7), a model pytree.

        D(x, sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, c_noise(sigma))

    Attributes:
      model: the raw network, a callable pytree ``F(x_in (batch, ...), c_noise (batch,))
        -> (batch, ...)`` (its arrays are this pytree's leaves: traced by the samplers,
        differentiated by the losses).
      sigma_data: standard deviation of the data (static).

    Example:
      >>> d = EDMDenoiser(jax.tree_util.Partial(lambda x, c: jnp.zeros_like(x)), sigma_data=0.5)
      >>> d(jnp.ones((1, 1)), jnp.array([0.5])).tolist()  # c_skip = s_d^2 / (s^2 + s_d^2) = 1/2
      [[0.5]]
    """

    model: Model
    sigma_data: float = dataclasses.field(default=0.5, metadata={"static": True})

    def __call__(self, x: jax.Array, sigma: jax.Array) -> jax.Array:
        """``D(x (batch, ...), sigma (batch,)) -> (batch, ...)``."""
        sigma = jnp.asarray(sigma, x.dtype)
        checks.shape("sigma", sigma, (x.shape[0],))
        c_skip, c_out, c_in, c_noise, _ = edm_coefficients(sigma, self.sigma_data)
        f = call_model(self.model, bcast(c_in, x) * x, c_noise)
        return bcast(c_skip, x) * x + bcast(c_out, x) * f  # eq. 7


def edm_precondition(model: Model, sigma_data: float = 0.5) -> EDMDenoiser:
    """Wraps a raw network ``F`` as the EDM denoiser :class:`EDMDenoiser` (eq. 7).

    Args:
      model: ``F(x_in (batch, ...), c_noise (batch,)) -> (batch, ...)``, a callable pytree.
      sigma_data: standard deviation of the data.

    Returns:
      the denoiser ``D(x, sigma)``, a pytree over ``model``'s arrays: pass it to
      :func:`euler_sample` / :func:`heun_sample` as their model.

    Example:
      >>> d = edm_precondition(jax.tree_util.Partial(lambda x, c: jnp.zeros_like(x)))
      >>> round(float(d(jnp.ones((1, 1)), jnp.array([1.5]))[0, 0]), 4)  # c_skip = 0.25 / 2.5
      0.1
    """
    return EDMDenoiser(model, float(checks.positive("sigma_data", sigma_data)))


def edm_loss(
    model: Model,
    batch: jax.Array,
    key: jax.Array,
    *,
    sigma_data: float = 0.5,
    p_mean: float = -1.2,
    p_std: float = 1.2,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The EDM training loss (Karras et al. 2022, eq. 8 and Table 1).

        ln sigma ~ N(P_mean, P_std^2),  n ~ N(0, sigma^2 I)
        L = E lambda(sigma) |D(y + n, sigma) - y|^2
        lambda = (sigma^2 + sigma_d^2) / (sigma sigma_d)^2

    ``s_key, n_key = jax.random.split(key)`` draw ``ln sigma`` and ``n / sigma``.

    Args:
      model: the raw network ``F``, a callable pytree ``F(x_in (batch, ...), c_noise
        (batch,)) -> (batch, ...)``, preconditioned by :func:`edm_precondition`.
      batch: ``(batch, ...)`` clean data ``y``.
      key: PRNG key.
      sigma_data: data standard deviation (0.5 in the paper).
      p_mean, p_std: the log-normal noise-level distribution.

    Returns:
      ``(loss, {"loss", "mse"})`` (``mse``: unweighted denoising error).

    Example:
      >>> net = jax.tree_util.Partial(lambda x, c: jnp.zeros_like(x))
      >>> value, metrics = edm_loss(net, jnp.ones((4, 1)), jax.random.key(0))
      >>> value.shape, bool(value > 0)
      ((), True)
    """
    denoiser = edm_precondition(model, sigma_data)
    checks.positive("p_std", p_std)
    y = check_x("batch", batch)
    s_key, n_key = jax.random.split(key)
    sigma = jnp.exp(p_mean + p_std * jax.random.normal(s_key, (y.shape[0],), y.dtype))
    n = bcast(sigma, y) * jax.random.normal(n_key, y.shape, y.dtype)
    mse = mean_nonbatch(jnp.square(denoiser(y + n, sigma) - y))  # (batch,)
    weight = edm_coefficients(sigma, sigma_data)[4]
    value = jnp.mean(weight * mse)
    return value, {"loss": value, "mse": jnp.mean(mse)}
