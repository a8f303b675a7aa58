"""Training objectives of energy-based models and score models.

An energy model ``p_theta(x) ∝ exp(-E_theta(x))`` has score ``grad_x log p = -grad_x E``.
Implemented here, each as a pure function:

* **Contrastive divergence** (Hinton 2002, "Training products of experts by minimizing
  contrastive divergence", eq. 5). The log-likelihood gradient is
  ``-E_data[grad_theta E] + E_model[grad_theta E]``; CD-k replaces the model expectation
  by samples from a k-step MCMC chain started at the data. Here the chain is Langevin
  dynamics on ``-E`` (as Du & Mordatch 2019), and the surrogate loss whose gradient is the
  CD update is

      L = mean_i E(x+_i) - mean_j E(stop_grad(x-_j)) + alpha (mean E(x+)^2 + mean E(x-)^2)

  with the L2 energy regulariser of Du & Mordatch (2019, "Implicit generation and
  modeling with energy-based models", sec. 3.3), which keeps the energies near zero.
* **Persistent CD** (Tieleman 2008, "Training restricted Boltzmann machines using
  approximations to the likelihood gradient"): the negative chains persist across updates.
  With Du & Mordatch's (2019, sec. 3.1) replay buffer: each chain starts from a buffer
  sample with probability 95% and from fresh uniform noise with probability 5%, and its
  end point is written back.
* **Exact score matching** (Hyvarinen 2005, "Estimation of non-normalized statistical
  models by score matching", Theorem 1, eq. 4):
  ``J(theta) = E_data[ tr(grad_x s(x)) + |s(x)|^2 / 2 ]``, the Jacobian trace computed
  exactly (one forward-mode pass per input dimension).
* **Denoising score matching** (Vincent 2011, "A connection between score matching and
  denoising autoencoders", sec. 4.2, eq. 7 with a Gaussian kernel):
  ``J = E[ |s(x + sigma eps) + eps / sigma|^2 / 2 ]``, minimised by the score of the
  *noised* data ``p_sigma = p * N(0, sigma^2 I)``, not of the data (the known bias, of
  order sigma^2).
* **Sliced score matching** (Song, Garg, Shi & Ermon 2019, "Sliced score matching",
  eq. 7; eq. 8 the variance-reduced form for Gaussian projections):
  ``J = E_{x, v}[ v^T grad_x s(x) v + (v^T s(x))^2 / 2 ]``, one Jacobian-vector product
  per projection.
* **Noise-conditional score matching** (Song & Ermon 2019, eqs. 5-6): denoising score
  matching over a ladder of noise levels with weights ``lambda(sigma) = sigma^2``, which
  is ``E[ |sigma s(x~, sigma) + eps|^2 / 2 ]`` with the level drawn per example.

Conventions. ``energy_fn(params, x (batch, ...)) -> (batch,)``;
``score_fn(params, x (batch, dim)) -> (batch, dim)``; noise-conditional
``score_fn(params, x, sigma (batch,))``. Losses are ``(params, batch, key, *, ...) ->
(loss, metrics)``; each has a deterministic ``*_terms`` twin taking its noise, which the
NumPy oracle (:mod:`genjax.energy.oracle`) mirrors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from genjax.energy.mcmc import langevin_step

__all__ = [
    "energy_score",
    "cd_objective",
    "cd_negatives",
    "contrastive_divergence_loss",
    "replay_buffer_init",
    "replay_buffer_sample",
    "replay_buffer_update",
    "persistent_contrastive_divergence_loss",
    "exact_score_matching_loss",
    "denoising_score_matching_terms",
    "denoising_score_matching_loss",
    "sliced_score_matching_terms",
    "sliced_score_matching_loss",
    "ncsn_terms",
    "ncsn_loss",
]

PyTree = Any
EnergyFn = Callable[[PyTree, jax.Array], jax.Array]
ScoreModelFn = Callable[[PyTree, jax.Array], jax.Array]


def _check_positive(value: Any, name: str) -> None:
    if not isinstance(value, jax.core.Tracer) and not float(value) > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def _check_steps(value: Any, name: str = "num_steps") -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


# ---------------------------------------------------------------------------------------
# Contrastive divergence
# ---------------------------------------------------------------------------------------


def energy_score(energy_fn: EnergyFn, params: PyTree) -> Callable[[jax.Array], jax.Array]:
    """``x (batch, ...) -> -grad_x E(x) (batch, ...)``, the score of ``exp(-E)``.

    One reverse pass of the batched energy: examples are independent, so the VJP with
    ones gives each example's own gradient.
    """

    def score(x: jax.Array) -> jax.Array:
        e, vjp = jax.vjp(lambda z: energy_fn(params, z), x)
        return -vjp(jnp.ones_like(e))[0]

    return score


def cd_objective(
    params: PyTree, x_pos: jax.Array, x_neg: jax.Array, *, energy_fn: EnergyFn, alpha: float
) -> tuple[jax.Array, dict]:
    """The CD surrogate with the L2 energy regulariser, for given negatives.

        L = mean E(x+) - mean E(x-) + alpha (mean E(x+)^2 + mean E(x-)^2)

    Its gradient in ``params`` is the CD update (Hinton 2002, eq. 5) plus the regulariser's
    (Du & Mordatch 2019, sec. 3.3); ``x_neg`` is treated as a constant.

    Args:
      params: the energy's parameters.
      x_pos: ``(batch, ...)`` data.
      x_neg: ``(batch_neg, ...)`` model samples.
      energy_fn: ``(params, x) -> (batch,)``.
      alpha: regulariser weight >= 0.

    Returns:
      ``(loss, metrics)`` with the mean energies of both sets.
    """
    e_pos = energy_fn(params, x_pos)  # (batch,)
    e_neg = energy_fn(params, jax.lax.stop_gradient(x_neg))  # (batch_neg,)
    cd = jnp.mean(e_pos) - jnp.mean(e_neg)  # Hinton (2002), eq. 5, as a surrogate
    reg = jnp.mean(e_pos**2) + jnp.mean(e_neg**2)  # Du & Mordatch (2019), sec. 3.3
    loss = cd + alpha * reg
    return loss, {"cd": cd, "energy_pos": jnp.mean(e_pos), "energy_neg": jnp.mean(e_neg),
                  "energy_l2": reg}  # fmt: skip


def cd_negatives(
    params: PyTree,
    x0: jax.Array,
    noise: jax.Array,
    *,
    energy_fn: EnergyFn,
    step_size: Any,
    noise_scale: Any = None,
    clip: tuple[float, float] | None = None,
) -> jax.Array:
    """Short-run Langevin on ``exp(-E)`` from ``x0`` with given noise: the CD negatives.

        x_{t+1} = clip(x_t - h grad_x E(x_t) + noise_scale xi_t)

    Args:
      params: energy parameters (gradients do not flow through the chain).
      x0: ``(batch, ...)`` starting points (the data for CD-k, the buffer for PCD).
      noise: ``(k, batch, ...)`` standard normal noise, one slice per step.
      energy_fn: ``(params, x) -> (batch,)``.
      step_size: ``h > 0``.
      noise_scale: default ``sqrt(2 h)`` (exact ULA); Du & Mordatch use a smaller one.
      clip: optional ``(low, high)`` box the chain is kept in (image data).

    Returns:
      ``(batch, ...)`` the chain's end points (``stop_gradient``-ed).
    """
    params = jax.lax.stop_gradient(params)
    score = energy_score(energy_fn, params)

    def body(x, xi):
        x = langevin_step(score, x, xi, step_size=step_size, noise_scale=noise_scale)
        if clip is not None:
            x = jnp.clip(x, clip[0], clip[1])
        return x, None

    x, _ = jax.lax.scan(body, x0, noise)
    return jax.lax.stop_gradient(x)


def contrastive_divergence_loss(
    params: PyTree,
    batch: jax.Array,
    key: jax.Array,
    *,
    energy_fn: EnergyFn,
    num_steps: int,
    step_size: float,
    noise_scale: float | None = None,
    alpha: float = 1.0,
    clip: tuple[float, float] | None = None,
) -> tuple[jax.Array, dict]:
    """CD-k (Hinton 2002): negatives from ``k = num_steps`` Langevin steps started at the data.

    Args:
      params: energy parameters.
      batch: ``(batch, ...)`` data.
      key: PRNG key for the Langevin noise.
      energy_fn: ``(params, x) -> (batch,)``.
      num_steps: ``k >= 1``.
      step_size, noise_scale, clip: see :func:`cd_negatives`.
      alpha: L2 energy regulariser weight.

    Returns:
      ``(loss, metrics)`` as :func:`cd_objective`.
    """
    num_steps = _check_steps(num_steps)
    _check_positive(step_size, "step_size")
    noise = jax.random.normal(key, (num_steps, *batch.shape), batch.dtype)
    x_neg = cd_negatives(params, batch, noise, energy_fn=energy_fn, step_size=step_size,
                         noise_scale=noise_scale, clip=clip)  # fmt: skip
    return cd_objective(params, batch, x_neg, energy_fn=energy_fn, alpha=alpha)


def replay_buffer_init(
    key: jax.Array, buffer_size: int, shape: tuple[int, ...], *, low: float, high: float,
    dtype: Any = jnp.float32,
) -> jax.Array:  # fmt: skip
    """A replay buffer of ``buffer_size`` uniform draws on ``[low, high]^shape``:
    ``(buffer_size, *shape)`` (Du & Mordatch 2019, sec. 3.1)."""
    _check_steps(buffer_size, "buffer_size")
    return jax.random.uniform(key, (buffer_size, *shape), dtype, low, high)


def replay_buffer_sample(
    key: jax.Array, buffer: jax.Array, n: int, *, reinit_prob: float = 0.05, low: float,
    high: float,
) -> tuple[jax.Array, jax.Array]:  # fmt: skip
    """Chain starts: a buffer entry with probability ``1 - reinit_prob`` (95%), fresh
    uniform noise on ``[low, high]`` otherwise (5%; Du & Mordatch 2019, sec. 3.1).

    Args:
      key: PRNG key.
      buffer: ``(buffer_size, ...)``.
      n: number of chains (static).
      reinit_prob: probability of a fresh start, in [0, 1].

    Returns:
      ``(x0 (n, ...), idx (n,))`` -- the starts and the buffer rows they will replace.
    """
    if not 0.0 <= reinit_prob <= 1.0:
        raise ValueError(f"reinit_prob must lie in [0, 1], got {reinit_prob!r}")
    idx_key, fresh_key, coin_key = jax.random.split(key, 3)
    idx = jax.random.randint(idx_key, (n,), 0, buffer.shape[0])  # (n,)
    fresh = jax.random.uniform(fresh_key, (n, *buffer.shape[1:]), buffer.dtype, low, high)
    reinit = jax.random.bernoulli(coin_key, reinit_prob, (n,))  # (n,)
    mask = reinit.reshape((n,) + (1,) * (buffer.ndim - 1))
    return jnp.where(mask, fresh, buffer[idx]), idx


def replay_buffer_update(buffer: jax.Array, idx: jax.Array, x: jax.Array) -> jax.Array:
    """Write the chains' end points ``x (n, ...)`` back to rows ``idx (n,)``."""
    return buffer.at[idx].set(x)


def persistent_contrastive_divergence_loss(
    params: PyTree,
    batch: jax.Array,
    key: jax.Array,
    buffer: jax.Array,
    *,
    energy_fn: EnergyFn,
    num_steps: int,
    step_size: float,
    noise_scale: float | None = None,
    alpha: float = 1.0,
    reinit_prob: float = 0.05,
    low: float = -1.0,
    high: float = 1.0,
    clip: tuple[float, float] | None = None,
) -> tuple[jax.Array, tuple[dict, jax.Array]]:
    """Persistent CD with a replay buffer (Tieleman 2008; Du & Mordatch 2019, sec. 3.1).

    Chains start from :func:`replay_buffer_sample` (95% buffer, 5% noise), run
    ``num_steps`` Langevin steps (:func:`cd_negatives`) and are written back.

    Args:
      params, batch, key: as :func:`contrastive_divergence_loss`.
      buffer: ``(buffer_size, ...)`` the persistent chains.
      reinit_prob, low, high: fresh-start probability and its uniform box.
      Others as :func:`contrastive_divergence_loss`.

    Returns:
      ``(loss, (metrics, new_buffer))`` -- usable with ``jax.value_and_grad(...,
      has_aux=True)``.
    """
    num_steps = _check_steps(num_steps)
    _check_positive(step_size, "step_size")
    start_key, noise_key = jax.random.split(key)
    n = batch.shape[0]
    x0, idx = replay_buffer_sample(start_key, buffer, n, reinit_prob=reinit_prob, low=low,
                                   high=high)  # fmt: skip
    noise = jax.random.normal(noise_key, (num_steps, *x0.shape), x0.dtype)
    x_neg = cd_negatives(params, x0, noise, energy_fn=energy_fn, step_size=step_size,
                         noise_scale=noise_scale, clip=clip)  # fmt: skip
    loss, metrics = cd_objective(params, batch, x_neg, energy_fn=energy_fn, alpha=alpha)
    return loss, (metrics, replay_buffer_update(buffer, idx, x_neg))


# ---------------------------------------------------------------------------------------
# Score matching
# ---------------------------------------------------------------------------------------


def _check_xd(batch: jax.Array) -> None:
    if batch.ndim != 2:
        raise ValueError(f"batch must have shape (batch, dim), got {batch.shape}")


def exact_score_matching_loss(
    params: PyTree, batch: jax.Array, key: jax.Array | None = None, *, score_fn: ScoreModelFn
) -> tuple[jax.Array, dict]:
    """Hyvarinen (2005), eq. 4: ``J = mean_x [ tr(grad_x s(x)) + |s(x)|^2 / 2 ]``.

    The trace is exact: the Jacobian of one example's score, ``jax.jacfwd`` (D forward
    passes), summed along its diagonal.

    Args:
      params: model parameters.
      batch: ``(batch, dim)`` data.
      key: unused (the objective is deterministic); accepted for the loss signature.
      score_fn: ``(params, x (batch, dim)) -> (batch, dim)``.

    Returns:
      ``(loss, {"trace": mean trace, "norm": mean |s|^2 / 2})``.
    """
    del key
    _check_xd(batch)

    def one(x: jax.Array) -> tuple[jax.Array, jax.Array]:
        f = lambda z: score_fn(params, z[None])[0]  # noqa: E731  (dim,) -> (dim,)
        s = f(x)
        return jnp.trace(jax.jacfwd(f)(x)), 0.5 * jnp.sum(s**2)

    trace, norm = jax.vmap(one)(batch)  # (batch,), (batch,)
    return jnp.mean(trace + norm), {"trace": jnp.mean(trace), "norm": jnp.mean(norm)}


def denoising_score_matching_terms(
    params: PyTree, x: jax.Array, eps: jax.Array, *, score_fn: ScoreModelFn, sigma: Any
) -> jax.Array:
    """Per-example ``|s(x + sigma eps) + eps / sigma|^2 / 2``: ``x, eps: (batch, dim)`` ->
    ``(batch,)`` (Vincent 2011: ``grad log N(x~; x, sigma^2 I) = -(x~ - x)/sigma^2 =
    -eps/sigma``)."""
    x_tilde = x + sigma * eps  # x~ ~ q_sigma(x~ | x)
    resid = score_fn(params, x_tilde) + eps / sigma  # s(x~) - grad log q(x~ | x)
    return 0.5 * jnp.sum(resid**2, axis=-1)


def denoising_score_matching_loss(
    params: PyTree, batch: jax.Array, key: jax.Array, *, score_fn: ScoreModelFn, sigma: float
) -> tuple[jax.Array, dict]:
    """Denoising score matching at one noise level ``sigma`` (Vincent 2011, sec. 4.2).

    Args:
      params: model parameters.
      batch: ``(batch, dim)`` data.
      key: PRNG key for ``eps ~ N(0, I)``.
      score_fn: ``(params, x (batch, dim)) -> (batch, dim)``.
      sigma: noise level > 0.

    Returns:
      ``(loss, {})``; the minimiser is the score of ``p * N(0, sigma^2 I)``.
    """
    _check_xd(batch)
    _check_positive(sigma, "sigma")
    eps = jax.random.normal(key, batch.shape, batch.dtype)
    terms = denoising_score_matching_terms(params, batch, eps, score_fn=score_fn, sigma=sigma)
    return jnp.mean(terms), {}


def sliced_score_matching_terms(
    params: PyTree,
    x: jax.Array,
    v: jax.Array,
    *,
    score_fn: ScoreModelFn,
    variance_reduced: bool = False,
) -> jax.Array:
    """Per-example, per-projection ``v^T grad s v + (v^T s)^2 / 2`` (Song et al. 2019,
    eq. 7) or ``v^T grad s v + |s|^2 / 2`` (eq. 8): ``x (batch, dim)``,
    ``v (M, batch, dim)`` -> ``(M, batch)``.

    ``grad s v`` is a Jacobian-vector product of the batched score (examples are
    independent, so the batched JVP is each example's own)."""

    def one(vm: jax.Array) -> jax.Array:
        s, jv = jax.jvp(lambda z: score_fn(params, z), (x,), (vm,))  # s(x), (grad s) v
        quad = jnp.sum(vm * jv, axis=-1)  # v^T grad s v: (batch,)
        second = jnp.sum(s**2, axis=-1) if variance_reduced else jnp.sum(vm * s, axis=-1) ** 2
        return quad + 0.5 * second

    return jax.vmap(one)(v)


def sliced_score_matching_loss(
    params: PyTree,
    batch: jax.Array,
    key: jax.Array,
    *,
    score_fn: ScoreModelFn,
    num_projections: int = 1,
    variance_reduced: bool = False,
    distribution: str = "gaussian",
) -> tuple[jax.Array, dict]:
    """Sliced score matching (Song et al. 2019, eq. 7 / eq. 8).

    Args:
      params: model parameters.
      batch: ``(batch, dim)`` data.
      key: PRNG key for the projections ``v`` (``E[v v^T] = I``).
      score_fn: ``(params, x (batch, dim)) -> (batch, dim)``.
      num_projections: ``M >= 1`` projections per example.
      variance_reduced: use eq. 8 (``|s|^2 / 2``, valid for Gaussian ``v``).
      distribution: ``"gaussian"`` or ``"rademacher"`` projections.

    Returns:
      ``(loss, {})``.
    """
    _check_xd(batch)
    m = _check_steps(num_projections, "num_projections")
    if distribution not in ("gaussian", "rademacher"):
        raise ValueError(f"distribution must be 'gaussian' or 'rademacher', got {distribution!r}")
    shape = (m, *batch.shape)
    if distribution == "gaussian":
        v = jax.random.normal(key, shape, batch.dtype)
    else:
        v = jax.random.rademacher(key, shape, batch.dtype)
    terms = sliced_score_matching_terms(params, batch, v, score_fn=score_fn,
                                        variance_reduced=variance_reduced)  # fmt: skip
    return jnp.mean(terms), {}


def ncsn_terms(
    params: PyTree, x: jax.Array, eps: jax.Array, sigma: jax.Array, *, score_fn: Callable
) -> jax.Array:
    """Per-example ``sigma^2 * |s(x~, sigma) + eps / sigma|^2 / 2 = |sigma s + eps|^2 / 2``
    (Song & Ermon 2019, eq. 5 weighted by ``lambda(sigma) = sigma^2``, eq. 6):
    ``x, eps (batch, dim)``, ``sigma (batch,)`` -> ``(batch,)``."""
    s = sigma[:, None]
    x_tilde = x + s * eps
    resid = s * score_fn(params, x_tilde, sigma) + eps
    return 0.5 * jnp.sum(resid**2, axis=-1)


def ncsn_loss(
    params: PyTree, batch: jax.Array, key: jax.Array, *, score_fn: Callable, sigmas: jax.Array
) -> tuple[jax.Array, dict]:
    """Noise-conditional score matching (Song & Ermon 2019, eq. 6), one level per example.

    Args:
      params: model parameters.
      batch: ``(batch, dim)`` data.
      key: PRNG key (levels and noise).
      score_fn: ``(params, x (batch, dim), sigma (batch,)) -> (batch, dim)``.
      sigmas: ``(L,)`` noise levels.

    Returns:
      ``(loss, {})``.
    """
    _check_xd(batch)
    level_key, eps_key = jax.random.split(key)
    level = jax.random.randint(level_key, batch.shape[:1], 0, sigmas.shape[0])
    eps = jax.random.normal(eps_key, batch.shape, batch.dtype)
    sigma = jnp.asarray(sigmas, batch.dtype)[level]
    return jnp.mean(ncsn_terms(params, batch, eps, sigma, score_fn=score_fn)), {}
