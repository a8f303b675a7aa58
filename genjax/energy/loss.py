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

Conventions (DESIGN.md's model protocol). The model is a callable pytree passed first, as
the argument ``jax.grad`` differentiates (an ``nnx.Module``, a ``jax.tree_util.Partial``):
an energy ``model(x (batch, ...)) -> (batch,)`` for contrastive divergence, a score
``model(x (batch, dim)) -> (batch, dim)`` for exact, denoising and sliced score matching, a
noise-conditional score ``model(x (batch, dim), sigma (batch,)) -> (batch, dim)`` for
:func:`ncsn_loss`. Losses are ``name(model, batch, key, *, ...) -> (loss, metrics)``; each
stochastic one has a deterministic ``*_terms`` twin taking its noise, which the NumPy
oracle (:mod:`genjax.energy.oracle`) mirrors. The losses are plain functions (jit them, or
the training step that calls them); their arguments are checked at trace time.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.energy.energy_model import energy_score
from genjax.energy.mcmc import langevin_from_noise
from genjax.model import Model

__all__ = [
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


# ---------------------------------------------------------------------------------------
# Contrastive divergence
# ---------------------------------------------------------------------------------------


def cd_objective(
    model: Model, x_pos: jax.Array, x_neg: jax.Array, *, alpha: Any
) -> tuple[jax.Array, dict]:
    """The CD surrogate with the L2 energy regulariser, for given negatives.

        L = mean E(x+) - mean E(x-) + alpha (mean E(x+)^2 + mean E(x-)^2)

    Its gradient in the model's weights is the CD update (Hinton 2002, eq. 5) plus the
    regulariser's (Du & Mordatch 2019, sec. 3.3); ``x_neg`` is treated as a constant.

    Args:
      model: the energy, ``model(x (batch, ...)) -> (batch,)``.
      x_pos: ``(batch, ...)`` data.
      x_neg: ``(batch_neg, ...)`` model samples.
      alpha: regulariser weight ``>= 0``.

    Returns:
      ``(loss, metrics)`` with the CD term, the mean energies of both sets and the
      regulariser.

    Example:
      >>> energy = jax.tree_util.Partial(lambda x: jnp.sum(x, axis=1))
      >>> loss, metrics = cd_objective(energy, jnp.ones((4, 2)), jnp.zeros((4, 2)), alpha=0.0)
      >>> float(loss)  # E(data) - E(samples) = 2 - 0
      2.0
    """
    x_pos, x_neg = jnp.asarray(x_pos), jnp.asarray(x_neg)
    checks.shape("x_neg", x_neg, (None, *x_pos.shape[1:]))
    checks.nonnegative("alpha", alpha)
    # One energy per example: a (batch, 1) or (batch, D) output would broadcast silently.
    e_pos = checks.model_output(model(x_pos), x_pos.shape[:1], "(batch,) of x_pos")
    e_neg = checks.model_output(
        model(jax.lax.stop_gradient(x_neg)), x_neg.shape[:1], "(batch,) of x_neg"
    )
    cd = jnp.mean(e_pos) - jnp.mean(e_neg)  # Hinton (2002), eq. 5, as a surrogate
    reg = jnp.mean(e_pos**2) + jnp.mean(e_neg**2)  # Du & Mordatch (2019), sec. 3.3
    loss = cd + alpha * reg
    return loss, {"cd": cd, "energy_pos": jnp.mean(e_pos), "energy_neg": jnp.mean(e_neg),
                  "energy_l2": reg}  # fmt: skip


def cd_negatives(model: Model, x0: jax.Array, noise: jax.Array, *, step_size: Any,
                 noise_scale: Any = None, clip: tuple[Any, Any] | None = None,
                 ) -> jax.Array:  # fmt: skip
    """Short-run Langevin on ``exp(-E)`` from ``x0`` with given noise: the CD negatives.

        x_{t+1} = clip(x_t - h grad_x E(x_t) + noise_scale xi_t)

    :func:`genjax.energy.langevin_from_noise` on the energy's score
    (:func:`genjax.energy.energy_score`), with no gradient through the chain.

    Args:
      model: the energy, ``model(x (batch, ...)) -> (batch,)``.
      x0: ``(batch, ...)`` starting points (the data for CD-k, the buffer for PCD).
      noise: ``(k, batch, ...)`` standard normal noise, one slice per step.
      step_size: ``h > 0``.
      noise_scale: default ``sqrt(2 h)`` (exact ULA); Du & Mordatch use a smaller one.
      clip: optional ``(low, high)`` box the chain is kept in (image data).

    Returns:
      ``(batch, ...)`` the chain's end points (``stop_gradient``-ed).
    """
    score = energy_score(jax.lax.stop_gradient(model))  # -grad_x E, weights held constant
    x = langevin_from_noise(score, x0, noise, step_size=step_size, noise_scale=noise_scale,
                            clip=clip)  # fmt: skip
    return jax.lax.stop_gradient(x)


def _keyed_negatives(
    model: Model, x0: jax.Array, key: jax.Array, num_steps: Any, step_size: Any,
    noise_scale: Any, clip: Any,
) -> jax.Array:  # fmt: skip
    """:func:`cd_negatives` with ``noise (num_steps, *x0.shape)`` drawn from ``key``."""
    num_steps = checks.positive_int("num_steps", num_steps)
    checks.positive("step_size", step_size)
    noise = jax.random.normal(key, (num_steps, *x0.shape), x0.dtype)
    return cd_negatives(model, x0, noise, step_size=step_size, noise_scale=noise_scale,
                        clip=clip)  # fmt: skip


def contrastive_divergence_loss(model: Model, batch: jax.Array, key: jax.Array, *,
                                num_steps: int, step_size: Any, noise_scale: Any = None,
                                alpha: Any = 1.0, clip: tuple[Any, Any] | None = None,
                                ) -> tuple[jax.Array, dict]:  # fmt: skip
    """CD-k (Hinton 2002): negatives from ``k = num_steps`` Langevin steps started at the data.

    .. warning:: The loss is a surrogate: its gradient is the CD update, which ignores how
       the negatives move with the weights (they are ``stop_gradient``-ed), so it is *not*
       the derivative of the loss value along the weights.

    Args:
      model: the energy, callable pytree ``model(x (batch, ...)) -> (batch,)``.
      batch: ``(batch, ...)`` data.
      key: PRNG key for the Langevin noise ``(num_steps, *batch.shape)``.
      num_steps: ``k >= 1``.
      step_size, noise_scale, clip: see :func:`cd_negatives`.
      alpha: L2 energy regulariser weight.

    Returns:
      ``(loss, metrics)`` as :func:`cd_objective`.

    Example:
      >>> energy = MLPEnergy(2, (8,), rngs=nnx.Rngs(0))
      >>> loss, metrics = contrastive_divergence_loss(energy, jnp.zeros((4, 2)), jax.random.key(0),
      ...                                             num_steps=3, step_size=0.01)
      >>> loss.shape, bool(jnp.isfinite(loss))
      ((), True)
    """
    x_neg = _keyed_negatives(model, batch, key, num_steps, step_size, noise_scale, clip)
    return cd_objective(model, batch, x_neg, alpha=checks.nonnegative("alpha", alpha))


def _check_box(low: float, high: float) -> None:
    checks.finite("low", low)
    checks.in_range("high", high, low, low_open=True)


def replay_buffer_init(
    key: jax.Array, buffer_size: int, shape: tuple[int, ...], *, low: float, high: float,
    dtype: Any = jnp.float32,
) -> jax.Array:  # fmt: skip
    """A replay buffer of ``buffer_size`` uniform draws on ``[low, high]^shape``:
    ``(buffer_size, *shape)`` (Du & Mordatch 2019, sec. 3.1)."""
    buffer_size = checks.positive_int("buffer_size", buffer_size)
    shape = tuple(checks.positive_int("shape", s) for s in shape)
    _check_box(low, high)
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

    Example:
      >>> buffer = jnp.arange(10.0).reshape(5, 2)
      >>> x0, idx = replay_buffer_sample(jax.random.key(0), buffer, 3, reinit_prob=0.0, low=-1.0,
      ...                                high=1.0)
      >>> bool(jnp.array_equal(x0, buffer[idx]))  # no fresh starts: rows of the buffer
      True
    """
    checks.probability("reinit_prob", reinit_prob)
    buffer = jnp.asarray(buffer)
    if buffer.ndim < 2 or buffer.shape[0] < 1:
        raise ValueError(f"buffer must have shape (buffer_size, ...), got {buffer.shape}")
    n = checks.positive_int("n", n)  # rows are drawn with replacement: n may exceed the buffer
    _check_box(low, high)
    idx_key, fresh_key, coin_key = jax.random.split(key, 3)
    idx = jax.random.randint(idx_key, (n,), 0, buffer.shape[0])  # (n,)
    fresh = jax.random.uniform(fresh_key, (n, *buffer.shape[1:]), buffer.dtype, low, high)
    reinit = jax.random.bernoulli(coin_key, reinit_prob, (n,))  # (n,)
    mask = reinit.reshape((n,) + (1,) * (buffer.ndim - 1))
    return jnp.where(mask, fresh, buffer[idx]), idx


def replay_buffer_update(buffer: jax.Array, idx: jax.Array, x: jax.Array) -> jax.Array:
    """Write the chains' end points ``x (n, ...)`` back to rows ``idx (n,)`` in
    ``[0, buffer_size)`` (checked when concrete: JAX would drop an out-of-range write)."""
    buffer, idx, x = jnp.asarray(buffer), jnp.asarray(idx), jnp.asarray(x)
    checks.ndim("idx", idx, 1, "(n,)")
    checks.int_array_in_range("idx", idx, 0, buffer.shape[0])
    checks.shape("x", x, (idx.shape[0], *buffer.shape[1:]))
    return buffer.at[idx].set(x)


def persistent_contrastive_divergence_loss(
    model: Model,
    batch: jax.Array,
    key: jax.Array,
    buffer: jax.Array,
    *,
    num_steps: int,
    step_size: Any,
    noise_scale: Any = None,
    alpha: Any = 1.0,
    reinit_prob: float = 0.05,
    low: float = -1.0,
    high: float = 1.0,
    clip: tuple[Any, Any] | None = None,
) -> tuple[jax.Array, tuple[dict, jax.Array]]:
    """Persistent CD with a replay buffer (Tieleman 2008; Du & Mordatch 2019, sec. 3.1).

    Chains start from :func:`replay_buffer_sample` (95% buffer, 5% noise), run
    ``num_steps`` Langevin steps (:func:`cd_negatives`) and are written back. The buffer is
    the loss's state: it comes in as the fourth argument and the updated one goes out
    beside the metrics.

    Args:
      model, batch, key: as :func:`contrastive_divergence_loss`.
      buffer: ``(buffer_size, ...)`` the persistent chains.
      reinit_prob, low, high: fresh-start probability and its uniform box.
      others: as :func:`contrastive_divergence_loss`.

    Returns:
      ``(loss, (metrics, new_buffer))`` -- usable with ``jax.value_and_grad(...,
      has_aux=True)``.

    Example:
      >>> energy = MLPEnergy(2, (8,), rngs=nnx.Rngs(0))
      >>> buffer = jnp.zeros((16, 2))
      >>> loss, (metrics, new_buffer) = persistent_contrastive_divergence_loss(
      ...     energy, jnp.zeros((4, 2)), jax.random.key(0), buffer, num_steps=3, step_size=0.01)
      >>> loss.shape, new_buffer.shape
      ((), (16, 2))
    """
    batch, buffer = jnp.asarray(batch), jnp.asarray(buffer)
    checks.shape("buffer", buffer, (None, *batch.shape[1:]))
    start_key, noise_key = jax.random.split(key)
    x0, idx = replay_buffer_sample(start_key, buffer, batch.shape[0], reinit_prob=reinit_prob,
                                   low=low, high=high)  # fmt: skip
    x_neg = _keyed_negatives(model, x0, noise_key, num_steps, step_size, noise_scale, clip)
    loss, metrics = cd_objective(model, batch, x_neg, alpha=checks.nonnegative("alpha", alpha))
    return loss, (metrics, replay_buffer_update(buffer, idx, x_neg))


# ---------------------------------------------------------------------------------------
# Score matching
# ---------------------------------------------------------------------------------------


def _check_batch(batch: jax.Array) -> None:
    checks.ndim("batch", batch, 2, "(batch, dim)")


def exact_score_matching_loss(
    model: Model, batch: jax.Array, key: jax.Array | None = None
) -> tuple[jax.Array, dict]:
    """Hyvarinen (2005), eq. 4: ``J = mean_x [ tr(grad_x s(x)) + |s(x)|^2 / 2 ]``.

    The trace is exact: the Jacobian of one example's score, ``jax.jacfwd`` (D forward
    passes), summed along its diagonal.

    Args:
      model: the score, callable pytree ``model(x (batch, dim)) -> (batch, dim)``.
      batch: ``(batch, dim)`` data.
      key: unused (the objective is deterministic); accepted for the loss signature.

    Returns:
      ``(loss, {"trace": mean trace, "norm": mean |s|^2 / 2})``.

    Example:
      >>> score = jax.tree_util.Partial(lambda x: -x)  # N(0, I)'s score
      >>> loss, metrics = exact_score_matching_loss(score, jnp.zeros((3, 2)))
      >>> float(loss)  # tr(grad s) + |s|^2 / 2 = -2 + 0
      -2.0
    """
    del key
    _check_batch(batch)

    def one(x: jax.Array) -> tuple[jax.Array, jax.Array]:
        f = lambda z: model(z[None])[0]  # noqa: E731  (dim,) -> (dim,)
        s = checks.model_output(f(x), x.shape, "one example x")
        return jnp.trace(jax.jacfwd(f)(x)), 0.5 * jnp.sum(s**2)

    trace, norm = jax.vmap(one)(batch)  # (batch,), (batch,)
    return jnp.mean(trace + norm), {"trace": jnp.mean(trace), "norm": jnp.mean(norm)}


def denoising_score_matching_terms(
    model: Model, x: jax.Array, eps: jax.Array, *, sigma: Any
) -> jax.Array:
    """Per-example ``|s(x + sigma eps) + eps / sigma|^2 / 2``: ``x, eps: (batch, dim)`` ->
    ``(batch,)`` (Vincent 2011: ``grad log N(x~; x, sigma^2 I) = -(x~ - x)/sigma^2 =
    -eps/sigma``).

    Example:
      >>> score = jax.tree_util.Partial(lambda x: -x / 0.25)  # N(0, sigma^2 I)'s score, sigma = 0.5
      >>> x, eps = jnp.zeros((2, 2)), jnp.ones((2, 2))
      >>> denoising_score_matching_terms(score, x, eps, sigma=0.5).tolist()
      [0.0, 0.0]
    """
    x, eps = jnp.asarray(x), jnp.asarray(eps)
    checks.same_shape("eps", eps, "x", x)
    x_tilde = x + sigma * eps  # x~ ~ q_sigma(x~ | x)
    resid = checks.model_output(model(x_tilde), x.shape) + eps / sigma  # s(x~) - grad log q(x~ | x)
    return 0.5 * jnp.sum(resid**2, axis=-1)


def denoising_score_matching_loss(
    model: Model, batch: jax.Array, key: jax.Array, *, sigma: Any
) -> tuple[jax.Array, dict]:
    """Denoising score matching at one noise level ``sigma`` (Vincent 2011, sec. 4.2).

    Args:
      model: the score, callable pytree ``model(x (batch, dim)) -> (batch, dim)``.
      batch: ``(batch, dim)`` data.
      key: PRNG key for ``eps ~ N(0, I)``.
      sigma: noise level ``> 0``.

    Returns:
      ``(loss, {})``; the minimiser is the score of ``p * N(0, sigma^2 I)``.

    Example:
      >>> score = jax.tree_util.Partial(lambda x: -x / 0.25)  # exact for data at 0, sigma = 0.5
      >>> loss, _ = denoising_score_matching_loss(score, jnp.zeros((4, 2)), jax.random.key(0),
      ...                                         sigma=0.5)
      >>> round(float(loss), 6)
      0.0
    """
    _check_batch(batch)
    checks.positive("sigma", sigma)
    eps = jax.random.normal(key, batch.shape, batch.dtype)
    return jnp.mean(denoising_score_matching_terms(model, batch, eps, sigma=sigma)), {}


def sliced_score_matching_terms(
    model: Model, x: jax.Array, v: jax.Array, *, variance_reduced: bool = False
) -> jax.Array:
    """Per-example, per-projection ``v^T grad s v + (v^T s)^2 / 2`` (Song et al. 2019,
    eq. 7) or ``v^T grad s v + |s|^2 / 2`` (eq. 8): ``x (batch, dim)``,
    ``v (M, batch, dim)`` -> ``(M, batch)``.

    ``grad s v`` is a Jacobian-vector product of the batched score (examples are
    independent, so the batched JVP is each example's own).

    Example:
      >>> score = jax.tree_util.Partial(lambda x: -x)
      >>> v = jnp.ones((1, 3, 2))  # (M, batch, dim)
      >>> sliced_score_matching_terms(score, jnp.zeros((3, 2)), v).tolist()  # -|v|^2 + 0
      [[-2.0, -2.0, -2.0]]
    """

    x, v = jnp.asarray(x), jnp.asarray(v)
    checks.shape("v", v, (None, *x.shape))

    def one(vm: jax.Array) -> jax.Array:
        s, jv = jax.jvp(model, (x,), (vm,))  # s(x), (grad s) v
        checks.model_output(s, x.shape)
        quad = jnp.sum(vm * jv, axis=-1)  # v^T grad s v: (batch,)
        second = jnp.sum(s**2, axis=-1) if variance_reduced else jnp.sum(vm * s, axis=-1) ** 2
        return quad + 0.5 * second

    return jax.vmap(one)(v)


def sliced_score_matching_loss(
    model: Model,
    batch: jax.Array,
    key: jax.Array,
    *,
    num_projections: int = 1,
    variance_reduced: bool = False,
    distribution: str = "gaussian",
) -> tuple[jax.Array, dict]:
    """Sliced score matching (Song et al. 2019, eq. 7 / eq. 8).

    Args:
      model: the score, callable pytree ``model(x (batch, dim)) -> (batch, dim)``.
      batch: ``(batch, dim)`` data.
      key: PRNG key for the projections ``v`` (``E[v v^T] = I``).
      num_projections: ``M >= 1`` projections per example.
      variance_reduced: use eq. 8 (``|s|^2 / 2``, valid for Gaussian ``v``).
      distribution: ``"gaussian"`` or ``"rademacher"`` projections.

    Returns:
      ``(loss, {})``.

    Example:
      >>> score = jax.tree_util.Partial(lambda x: -x)
      >>> loss, _ = sliced_score_matching_loss(score, jnp.zeros((3, 2)), jax.random.key(0),
      ...                                      distribution="rademacher")
      >>> float(loss)  # -|v|^2 = -dim for Rademacher v, s = 0 at the data
      -2.0
    """
    _check_batch(batch)
    m = checks.positive_int("num_projections", num_projections)
    checks.one_of("distribution", distribution, ("gaussian", "rademacher"))
    draw = jax.random.normal if distribution == "gaussian" else jax.random.rademacher
    v = draw(key, (m, *batch.shape), batch.dtype)  # (M, batch, dim)
    terms = sliced_score_matching_terms(model, batch, v, variance_reduced=variance_reduced)
    return jnp.mean(terms), {}


def ncsn_terms(model: Model, x: jax.Array, eps: jax.Array, sigma: jax.Array) -> jax.Array:
    """Per-example ``sigma^2 * |s(x~, sigma) + eps / sigma|^2 / 2 = |sigma s + eps|^2 / 2``
    (Song & Ermon 2019, eq. 5 weighted by ``lambda(sigma) = sigma^2``, eq. 6):
    ``x, eps (batch, dim)``, ``sigma (batch,)`` -> ``(batch,)``.

    Example:
      >>> score = jax.tree_util.Partial(lambda x, sigma: -x / sigma[:, None] ** 2)
      >>> ncsn_terms(score, jnp.zeros((2, 2)), jnp.ones((2, 2)), jnp.array([0.5, 2.0])).tolist()
      [0.0, 0.0]
    """
    x, eps, sigma = jnp.asarray(x), jnp.asarray(eps), jnp.asarray(sigma)
    checks.same_shape("eps", eps, "x", x)
    checks.shape("sigma", sigma, x.shape[:1])
    s = sigma[:, None]
    x_tilde = x + s * eps
    resid = s * checks.model_output(model(x_tilde, sigma), x.shape) + eps
    return 0.5 * jnp.sum(resid**2, axis=-1)


def ncsn_loss(
    model: Model, batch: jax.Array, key: jax.Array, *, sigmas: jax.Array
) -> tuple[jax.Array, dict]:
    """Noise-conditional score matching (Song & Ermon 2019, eq. 6), one level per example.

    Args:
      model: the noise-conditional score, callable pytree ``model(x (batch, dim),
        sigma (batch,)) -> (batch, dim)`` (e.g. :class:`genjax.energy.NoiseConditionalScore`).
      batch: ``(batch, dim)`` data.
      key: PRNG key (levels and noise).
      sigmas: ``(L,)`` positive noise levels.

    Returns:
      ``(loss, {})``.

    Example:
      >>> score = jax.tree_util.Partial(lambda x, sigma: -x / sigma[:, None] ** 2)
      >>> loss, _ = ncsn_loss(score, jnp.zeros((4, 2)), jax.random.key(0),
      ...                     sigmas=jnp.array([1.0, 0.1]))
      >>> round(float(loss), 6)  # the exact score of N(0, sigma^2 I) for data at 0
      0.0
    """
    _check_batch(batch)
    checks.ndim("sigmas", sigmas, 1, "(L,)")
    checks.positive("sigmas", sigmas)
    level_key, eps_key = jax.random.split(key)
    level = jax.random.randint(level_key, batch.shape[:1], 0, jnp.shape(sigmas)[0])
    eps = jax.random.normal(eps_key, batch.shape, batch.dtype)
    sigma = jnp.asarray(sigmas, batch.dtype)[level]
    return jnp.mean(ncsn_terms(model, batch, eps, sigma)), {}
