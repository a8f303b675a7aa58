"""Training objectives of diffusion models, as ``(params, batch, key) -> (loss, metrics)``.

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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from genjax.diffusion.forward import _bcast, q_sample
from genjax.diffusion.schedules import Schedule

__all__ = [
    "loss",
    "loss_from_noise",
    "min_snr_weight",
    "dsm_loss",
    "edm_coefficients",
    "edm_precondition",
    "edm_loss",
]

_PREDICTIONS = ("eps", "x0", "v")


def _per_example_mse(err: jax.Array) -> jax.Array:
    """``(batch, ...) -> (batch,)`` mean of squares over the non-batch axes."""
    return jnp.mean(jnp.square(err).reshape(err.shape[0], -1), axis=1)


def min_snr_weight(snr: jax.Array, gamma: float, prediction: str) -> jax.Array:
    """Per-example min-SNR-gamma weight for a prediction target (module docstring).

    Args:
      snr: ``(batch,)`` signal-to-noise ratios ``alpha_bar / (1 - alpha_bar)``, >= 0.
      gamma: the clipping value (5 in Hang et al. 2023).
      prediction: ``"eps"``, ``"x0"`` or ``"v"``.

    Returns:
      ``(batch,)`` weights.
    """
    clipped = jnp.minimum(snr, gamma)
    if prediction == "eps":
        return gamma / jnp.maximum(snr, gamma)  # = min(SNR, gamma)/SNR, finite at SNR = 0
    if prediction == "x0":
        return clipped
    return clipped / (snr + 1.0)


def _check_prediction(prediction: str, min_snr_gamma: float | None) -> None:
    if prediction not in _PREDICTIONS:
        raise ValueError(f"prediction must be one of {_PREDICTIONS}, got {prediction!r}")
    if min_snr_gamma is not None and not min_snr_gamma > 0:
        raise ValueError(f"min_snr_gamma must be None or > 0, got {min_snr_gamma!r}")


def loss_from_noise(
    params: Any,
    batch: jax.Array,
    t: jax.Array,
    eps: jax.Array,
    *,
    apply_fn: Callable[[Any, jax.Array, jax.Array], jax.Array],
    schedule: Schedule,
    prediction: str = "eps",
    min_snr_gamma: float | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """:func:`loss` at given times and noise (the deterministic core).

    Args:
      params: the model's parameters (a pytree).
      batch: ``(batch, ...)`` clean data ``x0``.
      t: ``(batch,)`` integer times in ``[0, T)``.
      eps: ``(batch, ...)`` standard normal noise.
      apply_fn, schedule, prediction, min_snr_gamma: as in :func:`loss`.

    Returns:
      ``(loss, metrics)``; metrics ``{"loss", "mse"}`` (``mse``: unweighted).
    """
    _check_prediction(prediction, min_snr_gamma)
    x0 = jnp.asarray(batch)
    x_t = q_sample(schedule, x0, t, eps)  # eq. 4
    pred = apply_fn(params, x_t, t)
    if pred.shape != x0.shape:
        raise ValueError(f"apply_fn must return the shape of batch {x0.shape}, got {pred.shape}")
    ab = schedule.alpha_bars[t].astype(x0.dtype)  # (batch,)
    if prediction == "eps":
        target = eps
    elif prediction == "x0":
        target = x0
    else:
        # v = alpha_t eps - sigma_t x0                        (Salimans & Ho 2022, sec. 4)
        target = _bcast(jnp.sqrt(ab), x0) * eps - _bcast(jnp.sqrt(1.0 - ab), x0) * x0
    mse = _per_example_mse(pred - target)  # (batch,), eq. 14 per example
    if min_snr_gamma is None:
        weighted = mse
    else:
        snr = ab / schedule.one_minus_alpha_bars[t].astype(x0.dtype)  # SNR_t; finite
        weighted = min_snr_weight(snr, min_snr_gamma, prediction) * mse
    value = jnp.mean(weighted)
    return value, {"loss": value, "mse": jnp.mean(mse)}


def loss(
    params: Any,
    batch: jax.Array,
    key: jax.Array,
    *,
    apply_fn: Callable[[Any, jax.Array, jax.Array], jax.Array],
    schedule: Schedule,
    prediction: str = "eps",
    min_snr_gamma: float | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The simplified DDPM objective (Ho et al. 2020, eq. 14 and Algorithm 1).

        t ~ U{0, ..., T-1},  eps ~ N(0, I),  x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps
        L = E w_t |target - apply_fn(params, x_t, t)|^2,
        target = eps | x0 | alpha_t eps - sigma_t x0

    with ``w_t = 1`` or the min-SNR-gamma weight of the target (module docstring).

    Args:
      params: the model's parameters (a pytree; differentiated).
      batch: ``(batch, ...)`` clean data.
      key: PRNG key for ``t`` and ``eps``.
      apply_fn: ``apply_fn(params, x_t, t) -> prediction``, ``x_t: (batch, ...)``,
        ``t: (batch,)`` int.
      schedule: the noise schedule.
      prediction: ``"eps"``, ``"x0"`` or ``"v"``.
      min_snr_gamma: ``None`` (uniform weights) or gamma > 0.

    Returns:
      ``(loss, {"loss", "mse"})``.

    Example:
      >>> loss_fn = functools.partial(loss, apply_fn=net, schedule=linear())
      >>> (value, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, x, key)
    """
    _check_prediction(prediction, min_snr_gamma)
    x0 = jnp.asarray(batch)
    if x0.ndim < 1 or x0.shape[0] < 1:
        raise ValueError(f"batch must have shape (batch, ...) with batch >= 1, got {x0.shape}")
    t_key, eps_key = jax.random.split(key)
    t = jax.random.randint(t_key, (x0.shape[0],), 0, schedule.num_steps)
    eps = jax.random.normal(eps_key, x0.shape, x0.dtype)
    return loss_from_noise(
        params,
        x0,
        t,
        eps,
        apply_fn=apply_fn,
        schedule=schedule,
        prediction=prediction,
        min_snr_gamma=min_snr_gamma,
    )


def dsm_loss(
    params: Any,
    batch: jax.Array,
    key: jax.Array,
    *,
    score_fn_apply: Callable[[Any, jax.Array, jax.Array], jax.Array],
    sigma_min: float,
    sigma_max: float,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Continuous denoising score matching with ``lambda(sigma) = sigma^2``.

        sigma = sigma_min (sigma_max / sigma_min)^u,  u ~ U(0, 1);  x~ = x + sigma z
        L = E 1/2 sigma^2 |s(x~, sigma) + z / sigma|^2 = E 1/2 |sigma s(x~, sigma) + z|^2

    (Vincent 2011, eq. 11: the target ``grad log N(x~; x, sigma^2 I) = -z / sigma``; Song &
    Ermon 2019, eqs. 5-6.)

    Args:
      params: the score model's parameters.
      batch: ``(batch, ...)`` clean data.
      key: PRNG key.
      score_fn_apply: ``(params, x (batch, ...), sigma (batch,)) -> score (batch, ...)``.
      sigma_min, sigma_max: ``0 < sigma_min <= sigma_max``.

    Returns:
      ``(loss, {"loss"})``.
    """
    if not 0 < sigma_min <= sigma_max:
        raise ValueError(
            f"need 0 < sigma_min <= sigma_max, got sigma_min={sigma_min!r}, sigma_max={sigma_max!r}"
        )
    x = jnp.asarray(batch)
    u_key, z_key = jax.random.split(key)
    u = jax.random.uniform(u_key, (x.shape[0],), x.dtype)
    sigma = sigma_min * (sigma_max / sigma_min) ** u  # log-uniform, (batch,)
    z = jax.random.normal(z_key, x.shape, x.dtype)
    score = score_fn_apply(params, x + _bcast(sigma, x) * z, sigma)
    if score.shape != x.shape:
        raise ValueError(
            f"score_fn_apply must return the shape of batch {x.shape}, got {score.shape}"
        )
    resid = _bcast(sigma, x) * score + z  # sigma (s + z / sigma)
    per_example = 0.5 * jnp.sum(jnp.square(resid).reshape(x.shape[0], -1), axis=1)
    value = jnp.mean(per_example)
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
    sd2 = sigma_data**2
    total = sigma**2 + sd2
    c_skip = sd2 / total
    c_out = sigma * sigma_data * jax.lax.rsqrt(total)
    c_in = jax.lax.rsqrt(total)
    c_noise = jnp.log(sigma) / 4.0
    weight = total / (sigma * sigma_data) ** 2
    return c_skip, c_out, c_in, c_noise, weight


def edm_precondition(
    raw_fn: Callable[[jax.Array, jax.Array], jax.Array], sigma_data: float = 0.5
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """Wraps a raw network ``F`` as the EDM denoiser (Karras et al. 2022, eq. 7).

        D(x, sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, c_noise(sigma))

    Args:
      raw_fn: ``F(x_in (batch, ...), c_noise (batch,)) -> (batch, ...)``.
      sigma_data: standard deviation of the data.

    Returns:
      ``denoise_fn(x, sigma)`` with ``x: (batch, ...)``, ``sigma: (batch,)``.
    """

    def denoise_fn(x: jax.Array, sigma: jax.Array) -> jax.Array:
        sigma = jnp.asarray(sigma, x.dtype)
        if sigma.shape != (x.shape[0],):
            raise ValueError(f"sigma must have shape (batch={x.shape[0]},), got {sigma.shape}")
        c_skip, c_out, c_in, c_noise, _ = edm_coefficients(sigma, sigma_data)
        f = raw_fn(_bcast(c_in, x) * x, c_noise)
        return _bcast(c_skip, x) * x + _bcast(c_out, x) * f  # eq. 7

    return denoise_fn


def edm_loss(
    params: Any,
    batch: jax.Array,
    key: jax.Array,
    *,
    apply_fn: Callable[[Any, jax.Array, jax.Array], jax.Array],
    sigma_data: float = 0.5,
    p_mean: float = -1.2,
    p_std: float = 1.2,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The EDM training loss (Karras et al. 2022, eq. 8 and Table 1).

        ln sigma ~ N(P_mean, P_std^2),  n ~ N(0, sigma^2 I)
        L = E lambda(sigma) |D(y + n, sigma) - y|^2
        lambda = (sigma^2 + sigma_d^2) / (sigma sigma_d)^2

    Args:
      params: the raw network's parameters.
      batch: ``(batch, ...)`` clean data ``y``.
      key: PRNG key.
      apply_fn: the raw network ``F``: ``(params, x_in, c_noise (batch,)) -> (batch, ...)``.
      sigma_data: data standard deviation (0.5 in the paper).
      p_mean, p_std: the log-normal noise-level distribution.

    Returns:
      ``(loss, {"loss", "mse"})`` (``mse``: unweighted denoising error).
    """
    if not sigma_data > 0:
        raise ValueError(f"sigma_data must be > 0, got {sigma_data!r}")
    if not p_std > 0:
        raise ValueError(f"p_std must be > 0, got {p_std!r}")
    y = jnp.asarray(batch)
    s_key, n_key = jax.random.split(key)
    sigma = jnp.exp(p_mean + p_std * jax.random.normal(s_key, (y.shape[0],), y.dtype))
    n = _bcast(sigma, y) * jax.random.normal(n_key, y.shape, y.dtype)
    denoise_fn = edm_precondition(lambda x_in, c: apply_fn(params, x_in, c), sigma_data)
    denoised = denoise_fn(y + n, sigma)
    if denoised.shape != y.shape:
        raise ValueError(f"apply_fn must return the shape of batch {y.shape}, got {denoised.shape}")
    mse = _per_example_mse(denoised - y)  # (batch,)
    weight = edm_coefficients(sigma, sigma_data)[4]
    value = jnp.mean(weight * mse)
    return value, {"loss": value, "mse": jnp.mean(mse)}
