"""GAN objectives and regularisers as pure functions of the critic's outputs.

Notation: ``D(x) = sigmoid(l(x))`` is the discriminator's probability that ``x`` is real,
``l`` its logit (the network's raw output, shape ``(batch,)``); a Wasserstein/hinge critic
``f`` is the same raw output read as a score. Every loss is a **mean over the batch** and
is minimised by the player it belongs to.

Losses (Goodfellow et al. 2014, eq. 1; Mao et al. 2017; Lim & Ye 2017; Arjovsky et al. 2017):

* minimax discriminator ``L_D = -E_data log D(x) - E_G log(1 - D(G(z)))`` (the negated
  value function ``V(D, G)``), optionally with one-sided label smoothing: the real target
  is ``1 - s`` instead of 1 (Salimans et al. 2016, sec. 3.4); fake targets stay 0.
* minimax generator ``L_G = E_G log(1 - D(G(z)))`` (saturating: flat where D rejects the
  fakes), and the non-saturating generator ``L_G = -E_G log D(G(z))`` (Goodfellow et al.
  2014, sec. 3), which has the same fixed point and strong gradients early on.
* least squares (LSGAN, Mao et al. 2017, eq. 2 with the 0-1 coding ``a=0, b=c=1``):
  ``L_D = 1/2 E_data (l - b)^2 + 1/2 E_G (l - a)^2``, ``L_G = 1/2 E_G (l - c)^2`` — ``l``
  is the raw output (no sigmoid), as in the paper.
* hinge (Lim & Ye 2017; Miyato et al. 2018, eq. 16-17):
  ``L_D = E_data relu(1 - f) + E_G relu(1 + f)``, ``L_G = -E_G f``.
* Wasserstein (Arjovsky et al. 2017, eq. 3): ``L_D = E_G f - E_data f`` (minus the dual
  estimate of W1), ``L_G = -E_G f``.

Every ``log D`` is computed as ``log_sigmoid(l)`` and every ``log(1 - D)`` as
``log_sigmoid(-l)`` — ``log(sigmoid(l))`` underflows to ``log 0 = -inf`` at ``l = -1e2``
in float32, ``log_sigmoid`` stays exact at logits of +-1e4.

Regularisers:

* weight clipping ``w <- clip(w, -c, c)`` (Arjovsky et al. 2017, Algorithm 1, line 7);
* the gradient penalty (Gulrajani et al. 2017, eq. 3 and Algorithm 1):
  ``GP = E_xhat (||grad_xhat f(xhat)||_2 - 1)^2``, ``xhat = eps x + (1 - eps) x~``,
  ``eps ~ U[0, 1]`` **one per sample**, the norm **per sample over all non-batch axes**
  (an image's gradient is one vector of ``H*W*C`` numbers); the weight ``lambda``
  (10 in the paper) is applied by the caller;
* R1 (Mescheder et al. 2018, eq. 9): ``R1 = E_data ||grad_x l(x)||^2``, the caller applies
  ``gamma / 2``;
* spectral normalisation: :mod:`genjax.gan.spectral`;
* cycle consistency (Zhu et al. 2017, eq. 2):
  ``L_cyc = E_x ||F(G(x)) - x||_1 + E_y ||G(F(y)) - y||_1``, each norm averaged over the
  elements of an example (the reference implementation's ``L1Loss``).

Per-sample gradients come from ``grad`` of the **sum** of the critic's outputs: exact
when the critic treats examples independently (no batch normalisation, which is why the
networks in :mod:`genjax.gan.network` use none in the critic; Gulrajani et al. 2017, sec. 4).

References:
  Goodfellow et al. (2014), "Generative Adversarial Nets", NeurIPS.
  Salimans et al. (2016), "Improved Techniques for Training GANs", NeurIPS.
  Mao et al. (2017), "Least Squares Generative Adversarial Networks", ICCV.
  Lim & Ye (2017), "Geometric GAN", arXiv:1705.02894.
  Arjovsky, Chintala & Bottou (2017), "Wasserstein GAN", ICML.
  Gulrajani et al. (2017), "Improved Training of Wasserstein GANs", NeurIPS.
  Mescheder, Geiger & Nowozin (2018), "Which Training Methods for GANs do actually
  Converge?", ICML.
  Zhu et al. (2017), "Unpaired Image-to-Image Translation using Cycle-Consistent
  Adversarial Networks", ICCV.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

PyTree = Any
CriticFn = Callable[[jax.Array], jax.Array]  # (batch, ...) -> (batch,)


def _is_tracer(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def _check_logits(name: str, logits: jax.Array) -> jax.Array:
    logits = jnp.asarray(logits)
    if logits.ndim != 1 or logits.shape[0] < 1:
        raise ValueError(f"{name} must have shape (batch,) with batch >= 1, got {logits.shape}")
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        raise ValueError(f"{name} must be floating point, got dtype {logits.dtype}")
    return logits


def check_nonnegative(name: str, value: Any) -> None:
    """Raises ``ValueError`` naming ``name`` when a concrete ``value`` is negative (or NaN)."""
    if _is_tracer(value):
        return
    if not float(value) >= 0.0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


def check_n_critic(n_critic: Any) -> int:
    """``n_critic`` as an int, or a ``ValueError`` unless it is an integer >= 1."""
    if int(n_critic) != n_critic or n_critic < 1:
        raise ValueError(f"n_critic must be an integer >= 1, got {n_critic!r}")
    return int(n_critic)


# --------------------------------------------------------------------------------------
# Minimax / non-saturating (Goodfellow et al. 2014)
# --------------------------------------------------------------------------------------


def minimax_d(
    real_logits: jax.Array, fake_logits: jax.Array, *, label_smoothing: float = 0.0
) -> jax.Array:
    """Discriminator loss of the minimax game (binary cross-entropy), ``-V(D, G)``.

    .. math::
      L_D = -E_data[(1-s) log D(x) + s log(1 - D(x))] - E_G[log(1 - D(G(z)))]

    with ``D = sigmoid(logits)`` and one-sided label smoothing ``s`` (Salimans et al. 2016,
    sec. 3.4: only the real targets are smoothed, to ``1 - s``; smoothing the fake ones
    would reward the generator's mistakes). ``s = 0`` is Goodfellow et al. (2014), eq. 1.

    Args:
      real_logits: ``(batch,)`` discriminator logits on data.
      fake_logits: ``(batch_g,)`` logits on generated samples.
      label_smoothing: ``s`` in ``[0, 1)``.

    Returns:
      ``()`` the loss (>= 0).
    """
    real_logits = _check_logits("real_logits", real_logits)
    fake_logits = _check_logits("fake_logits", fake_logits)
    if not _is_tracer(label_smoothing) and not 0.0 <= float(label_smoothing) < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
    target = 1.0 - label_smoothing  # one-sided: real target 1 - s
    # log D = log_sigmoid(l); log(1 - D) = log_sigmoid(-l): stable at |l| = 1e4.
    real_term = target * jax.nn.log_sigmoid(real_logits) + (1.0 - target) * jax.nn.log_sigmoid(
        -real_logits
    )
    fake_term = jax.nn.log_sigmoid(-fake_logits)
    return -jnp.mean(real_term) - jnp.mean(fake_term)


def minimax_g(fake_logits: jax.Array) -> jax.Array:
    """Saturating generator loss ``L_G = E_G log(1 - D(G(z)))`` (Goodfellow et al. 2014, eq. 1).

    Minimising it is the generator's side of ``min_G max_D V``; its gradient vanishes when
    ``D(G(z)) -> 0`` (the discriminator wins), hence :func:`nonsaturating_g`.

    Args:
      fake_logits: ``(batch,)`` logits on generated samples.

    Returns:
      ``()`` the loss (<= 0).
    """
    fake_logits = _check_logits("fake_logits", fake_logits)
    return jnp.mean(jax.nn.log_sigmoid(-fake_logits))  # log(1 - D) = log_sigmoid(-l)


def nonsaturating_g(fake_logits: jax.Array) -> jax.Array:
    """Non-saturating generator loss ``L_G = -E_G log D(G(z))`` (Goodfellow et al. 2014, sec. 3).

    Args:
      fake_logits: ``(batch,)`` logits on generated samples.

    Returns:
      ``()`` the loss (>= 0).
    """
    fake_logits = _check_logits("fake_logits", fake_logits)
    return -jnp.mean(jax.nn.log_sigmoid(fake_logits))  # log D = log_sigmoid(l)


# --------------------------------------------------------------------------------------
# Least squares (Mao et al. 2017), hinge (Lim & Ye 2017), Wasserstein (Arjovsky et al. 2017)
# --------------------------------------------------------------------------------------


def least_squares_d(
    real_logits: jax.Array, fake_logits: jax.Array, *, a: float = 0.0, b: float = 1.0
) -> jax.Array:
    """LSGAN discriminator loss ``1/2 E_data (l(x) - b)^2 + 1/2 E_G (l(G(z)) - a)^2``.

    Mao et al. (2017), eq. 2; ``a`` is the fake label, ``b`` the real one (the 0-1 coding).

    Args:
      real_logits: ``(batch,)`` raw discriminator outputs on data.
      fake_logits: ``(batch_g,)`` raw outputs on generated samples.
      a: target for fakes.
      b: target for data.

    Returns:
      ``()`` the loss.
    """
    real_logits = _check_logits("real_logits", real_logits)
    fake_logits = _check_logits("fake_logits", fake_logits)
    return 0.5 * jnp.mean(jnp.square(real_logits - b)) + 0.5 * jnp.mean(
        jnp.square(fake_logits - a)
    )


def least_squares_g(fake_logits: jax.Array, *, c: float = 1.0) -> jax.Array:
    """LSGAN generator loss ``1/2 E_G (l(G(z)) - c)^2`` (Mao et al. 2017, eq. 2).

    Args:
      fake_logits: ``(batch,)`` raw outputs on generated samples.
      c: the value the generator wants the discriminator to believe for fakes.

    Returns:
      ``()`` the loss.
    """
    fake_logits = _check_logits("fake_logits", fake_logits)
    return 0.5 * jnp.mean(jnp.square(fake_logits - c))


def hinge_d(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """Hinge discriminator loss ``E_data relu(1 - f(x)) + E_G relu(1 + f(G(z)))``.

    Lim & Ye (2017); Miyato et al. (2018), eq. 16.

    Args:
      real_logits: ``(batch,)`` critic outputs on data.
      fake_logits: ``(batch_g,)`` critic outputs on generated samples.

    Returns:
      ``()`` the loss (>= 0; 2 at ``f = 0``).
    """
    real_logits = _check_logits("real_logits", real_logits)
    fake_logits = _check_logits("fake_logits", fake_logits)
    return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))


def hinge_g(fake_logits: jax.Array) -> jax.Array:
    """Hinge generator loss ``-E_G f(G(z))`` (Miyato et al. 2018, eq. 17).

    Args:
      fake_logits: ``(batch,)`` critic outputs on generated samples.

    Returns:
      ``()`` the loss.
    """
    fake_logits = _check_logits("fake_logits", fake_logits)
    return -jnp.mean(fake_logits)


def wasserstein_d(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """Wasserstein critic loss ``E_G f(G(z)) - E_data f(x)`` (Arjovsky et al. 2017, eq. 3).

    Its negation estimates ``W1(P_data, P_G)`` when ``f`` is 1-Lipschitz (enforced by
    :func:`weight_clip` or :func:`gradient_penalty`).

    Args:
      real_logits: ``(batch,)`` critic outputs on data.
      fake_logits: ``(batch_g,)`` critic outputs on generated samples.

    Returns:
      ``()`` the loss.
    """
    real_logits = _check_logits("real_logits", real_logits)
    fake_logits = _check_logits("fake_logits", fake_logits)
    return jnp.mean(fake_logits) - jnp.mean(real_logits)


def wasserstein_g(fake_logits: jax.Array) -> jax.Array:
    """Wasserstein generator loss ``-E_G f(G(z))`` (Arjovsky et al. 2017, Algorithm 1, line 10).

    Args:
      fake_logits: ``(batch,)`` critic outputs on generated samples.

    Returns:
      ``()`` the loss.
    """
    fake_logits = _check_logits("fake_logits", fake_logits)
    return -jnp.mean(fake_logits)


# --------------------------------------------------------------------------------------
# Regularisers
# --------------------------------------------------------------------------------------


def weight_clip(params: PyTree, clip_value: float) -> PyTree:
    """WGAN weight clipping ``w <- clip(w, -c, c)`` (Arjovsky et al. 2017, Algorithm 1, line 7).

    Applied to every floating-point leaf of ``params`` (integer leaves are kept).

    Args:
      params: the critic's parameters, any pytree of arrays.
      clip_value: ``c > 0`` (0.01 in the paper).

    Returns:
      ``params`` with every weight in ``[-c, c]``.
    """
    if not _is_tracer(clip_value) and not float(clip_value) > 0.0:
        raise ValueError(f"clip_value must be > 0, got {clip_value!r}")

    def clip(w):
        w = jnp.asarray(w)
        if not jnp.issubdtype(w.dtype, jnp.floating):
            return w
        return jnp.clip(w, -clip_value, clip_value).astype(w.dtype)

    return jax.tree.map(clip, params)


def _check_pair(real: jax.Array, fake: jax.Array) -> tuple[jax.Array, jax.Array]:
    real, fake = jnp.asarray(real), jnp.asarray(fake)
    if real.ndim < 2 or real.shape[0] < 1:
        raise ValueError(
            f"real must have shape (batch, ...) with >= 1 feature axis, got {real.shape}"
        )
    if fake.shape != real.shape:
        raise ValueError(f"fake must have the shape of real {real.shape}, got {fake.shape}")
    return real, fake


def _per_sample_sq_norm(g: jax.Array) -> jax.Array:
    """``||g_i||^2`` over every non-batch axis: ``(batch, ...) -> (batch,)``."""
    return jnp.sum(jnp.square(g.reshape(g.shape[0], -1)), axis=1)


def critic_input_grad(critic_fn: CriticFn, x: jax.Array) -> jax.Array:
    """``grad_x f(x)`` for each example: ``(batch, ...) -> (batch, ...)``.

    ``grad`` of ``sum_i f(x_i)``: example ``i``'s gradient is ``grad f(x_i)`` because the
    critic treats examples independently.
    """
    out = critic_fn(x)
    if out.shape != (x.shape[0],):
        raise ValueError(f"critic_fn must map (batch, ...) to (batch,) = ({x.shape[0]},), "
                         f"got output shape {out.shape}")
    return jax.grad(lambda y: jnp.sum(critic_fn(y)))(x)


def interpolate(real: jax.Array, fake: jax.Array, eps: jax.Array) -> jax.Array:
    """``xhat_i = eps_i x_i + (1 - eps_i) x~_i`` (Gulrajani et al. 2017, Algorithm 1, line 6).

    Args:
      real: ``(batch, ...)`` data.
      fake: ``(batch, ...)`` generated samples.
      eps: ``(batch,)`` mixing weights in [0, 1], one per example.

    Returns:
      ``(batch, ...)`` the interpolates.
    """
    real, fake = _check_pair(real, fake)
    eps = jnp.asarray(eps)
    if eps.shape != (real.shape[0],):
        raise ValueError(f"eps must have shape ({real.shape[0]},), got {eps.shape}")
    e = eps.reshape((-1,) + (1,) * (real.ndim - 1)).astype(real.dtype)  # (batch, 1, ..., 1)
    return e * real + (1.0 - e) * fake


def gradient_penalty_at(critic_fn: CriticFn, x_hat: jax.Array) -> jax.Array:
    """``mean_i (||grad f(xhat_i)||_2 - 1)^2``, the norm per example over all non-batch axes.

    The deterministic core of :func:`gradient_penalty` (the interpolates given).

    Args:
      critic_fn: ``(batch, ...) -> (batch,)``.
      x_hat: ``(batch, ...)`` points at which to penalise the gradient.

    Returns:
      ``()`` the penalty (without the weight lambda).
    """
    g = critic_input_grad(critic_fn, x_hat)  # (batch, ...)
    sq = _per_sample_sq_norm(g)  # (batch,)
    # ||g|| = sqrt(sq), with a finite derivative where g = 0 (sqrt'(0) is infinite): the
    # penalty's gradient there is that of (0 - 1)^2 through a constant norm.
    positive = sq > 0
    norm = jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)
    return jnp.mean(jnp.square(norm - 1.0))  # Gulrajani et al. (2017), eq. 3


def gradient_penalty(
    key: jax.Array, critic_fn: CriticFn, real: jax.Array, fake: jax.Array
) -> jax.Array:
    """WGAN-GP's two-sided gradient penalty on random interpolates (Gulrajani et al. 2017).

    .. math::
      GP = E_{xhat} (||grad_{xhat} f(xhat)||_2 - 1)^2,
      xhat = eps x + (1 - eps) x~, eps ~ U[0, 1]

    ``eps`` is drawn once per example (``(batch,)``), and the norm is taken per example over
    all non-batch axes — not per element, and not over the whole batch. The weight lambda
    (10 in the paper, eq. 3) is applied by the caller: ``L_D + lambda * GP``.

    Args:
      key: draws ``eps``.
      critic_fn: the critic, ``(batch, ...) -> (batch,)``, treating examples independently.
      real: ``(batch, ...)`` data.
      fake: ``(batch, ...)`` generated samples (gradients flow into the critic only as
        the caller's loss differentiates; ``fake`` is usually ``stop_gradient``-ed).

    Returns:
      ``()`` the penalty.

    Example:
      >>> gp = gradient_penalty(key, lambda x: x @ w, real, fake)   # linear critic
      >>> # == (||w|| - 1)^2 for any real, fake
    """
    real, fake = _check_pair(real, fake)
    eps = jax.random.uniform(key, (real.shape[0],), real.dtype)  # one eps per example
    return gradient_penalty_at(critic_fn, interpolate(real, fake, eps))


def r1_penalty(critic_fn: CriticFn, real: jax.Array) -> jax.Array:
    """R1 penalty ``E_data ||grad_x l(x)||^2`` (Mescheder et al. 2018, eq. 9).

    The caller adds ``gamma / 2 * R1`` to the discriminator's loss (the paper's weighting).

    Args:
      critic_fn: ``(batch, ...) -> (batch,)`` discriminator logits.
      real: ``(batch, ...)`` data.

    Returns:
      ``()`` the penalty (per-example squared norm over all non-batch axes, batch mean).
    """
    real = jnp.asarray(real)
    if real.ndim < 2:
        raise ValueError(
            f"real must have shape (batch, ...) with >= 1 feature axis, got {real.shape}"
        )
    g = critic_input_grad(critic_fn, real)
    return jnp.mean(_per_sample_sq_norm(g))


def cycle_consistency_loss(
    x: jax.Array,
    y: jax.Array,
    g_fn: Callable[[jax.Array], jax.Array],
    f_fn: Callable[[jax.Array], jax.Array],
) -> jax.Array:
    """CycleGAN's cycle loss ``E_x ||F(G(x)) - x||_1 + E_y ||G(F(y)) - y||_1`` (Zhu et al., eq. 2).

    Each L1 norm is averaged over an example's elements and over the batch (the reference
    implementation's ``nn.L1Loss``); the weight (lambda = 10 in the paper, eq. 3) is applied
    by the caller.

    Args:
      x: ``(batch, ...)`` examples of domain X.
      y: ``(batch_y, ...)`` examples of domain Y.
      g_fn: ``G: X -> Y``.
      f_fn: ``F: Y -> X``.

    Returns:
      ``()`` the loss; 0 exactly when ``F`` inverts ``G`` on ``x`` and ``G`` inverts ``F``
      on ``y``.
    """
    x, y = jnp.asarray(x), jnp.asarray(y)
    forward = jnp.mean(jnp.abs(f_fn(g_fn(x)) - x))  # x -> G(x) -> F(G(x)) ~ x
    backward = jnp.mean(jnp.abs(g_fn(f_fn(y)) - y))  # y -> F(y) -> G(F(y)) ~ y
    return forward + backward
