"""GAN regularisers that take the critic itself: weight clipping, gradient penalty, R1, cycle.

The critic is a *model* in genjax's protocol (DESIGN.md): a callable pytree
``critic(x (batch, ...)) -> (batch,)`` -- the discriminator ``nnx.Module`` itself, or
``jax.tree_util.Partial(apply, params)`` -- passed as an ordinary argument. Inside a jitted
training step it is traced with its weights (new weights never recompile); a plain Python
function (a closure over the weights) also works and is then part of the program.

* weight clipping ``w <- clip(w, -c, c)`` (Arjovsky et al. 2017, Algorithm 1, line 7);
* the gradient penalty (Gulrajani et al. 2017, eq. 3 and Algorithm 1):
  ``GP = E_xhat (||grad_xhat f(xhat)||_2 - 1)^2``, ``xhat = eps x + (1 - eps) x~``,
  ``eps ~ U[0, 1]`` **one per sample**, the norm **per sample over all non-batch axes**
  (an image's gradient is one vector of ``H*W*C`` numbers); the weight ``lambda``
  (10 in the paper) is applied by the caller;
* R1 (Mescheder et al. 2018, eq. 9): ``R1 = E_data ||grad_x l(x)||^2``, the caller applies
  ``gamma / 2``;
* cycle consistency (Zhu et al. 2017, eq. 2):
  ``L_cyc = E_x ||F(G(x)) - x||_1 + E_y ||G(F(y)) - y||_1``, each norm averaged over the
  elements of an example (the reference implementation's ``L1Loss``).

Per-sample gradients come from ``grad`` of the **sum** of the critic's outputs: exact
when the critic treats examples independently (no batch normalisation, which is why the
networks in :mod:`genjax.gan.network` use none in the critic; Gulrajani et al. 2017, sec. 4).
Spectral normalisation, the other Lipschitz constraint, is :mod:`genjax.gan.spectral`.

References:
  Arjovsky, Chintala & Bottou (2017), "Wasserstein GAN", ICML.
  Gulrajani et al. (2017), "Improved Training of Wasserstein GANs", NeurIPS.
  Mescheder, Geiger & Nowozin (2018), "Which Training Methods for GANs do actually
  Converge?", ICML.
  Zhu et al. (2017), "Unpaired Image-to-Image Translation using Cycle-Consistent
  Adversarial Networks", ICCV.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.model import Model

PyTree = Any


def weight_clip(params: PyTree, clip_value: float) -> PyTree:
    """WGAN weight clipping ``w <- clip(w, -c, c)`` (Arjovsky et al. 2017, Algorithm 1, line 7).

    Applied to every floating-point leaf of ``params`` (integer leaves are kept).

    Args:
      params: the critic (an nnx Module) or its parameters, any pytree of arrays.
      clip_value: ``c > 0`` (0.01 in the paper).

    Returns:
      ``params`` with every weight in ``[-c, c]``.
    """
    checks.positive("clip_value", clip_value)

    def clip(w):
        w = jnp.asarray(w)
        if not jnp.issubdtype(w.dtype, jnp.floating):
            return w
        return jnp.clip(w, -clip_value, clip_value).astype(w.dtype)

    return jax.tree.map(clip, params)


def _check_real(real: jax.Array) -> jax.Array:
    real = jnp.asarray(real)
    if real.ndim < 2 or real.shape[0] < 1:
        raise ValueError(
            f"real must have shape (batch, ...) with >= 1 feature axis, got {real.shape}"
        )
    return real


def _per_sample_sq_norm(g: jax.Array) -> jax.Array:
    """``||g_i||^2`` over every non-batch axis: ``(batch, ...) -> (batch,)``."""
    return jnp.sum(jnp.square(g.reshape(g.shape[0], -1)), axis=1)


def critic_input_grad(critic: Model, x: jax.Array) -> jax.Array:
    """``grad_x f(x)`` for each example: ``(batch, ...) -> (batch, ...)``.

    ``grad`` of ``sum_i f(x_i)``: example ``i``'s gradient is ``grad f(x_i)`` because the
    critic treats examples independently.

    Args:
      critic: callable pytree ``critic(x (batch, ...)) -> (batch,)``.
      x: ``(batch, ...)``.
    """
    out = critic(x)
    if out.shape != (x.shape[0],):
        raise ValueError(f"critic must map (batch, ...) to (batch,) = ({x.shape[0]},), "
                         f"got output shape {out.shape}")
    return jax.grad(lambda y: jnp.sum(critic(y)))(x)


def interpolate(real: jax.Array, fake: jax.Array, eps: jax.Array) -> jax.Array:
    """``xhat_i = eps_i x_i + (1 - eps_i) x~_i`` (Gulrajani et al. 2017, Algorithm 1, line 6).

    Args:
      real: ``(batch, ...)`` data.
      fake: ``(batch, ...)`` generated samples.
      eps: ``(batch,)`` mixing weights in [0, 1], one per example.

    Returns:
      ``(batch, ...)`` the interpolates.
    """
    real = _check_real(real)
    fake = checks.same_shape("fake", jnp.asarray(fake), "real", real)
    eps = jnp.asarray(eps)
    checks.shape("eps", eps, (real.shape[0],))
    checks.probability("eps", eps)  # when concrete
    e = eps.reshape((-1,) + (1,) * (real.ndim - 1)).astype(real.dtype)  # (batch, 1, ..., 1)
    return e * real + (1.0 - e) * fake


def gradient_penalty_at(critic: Model, x_hat: jax.Array) -> jax.Array:
    """``mean_i (||grad f(xhat_i)||_2 - 1)^2``, the norm per example over all non-batch axes.

    The deterministic core of :func:`gradient_penalty` (the interpolates given).

    Args:
      critic: callable pytree ``(batch, ...) -> (batch,)``.
      x_hat: ``(batch, ...)`` points at which to penalise the gradient.

    Returns:
      ``()`` the penalty (without the weight lambda).

    Example:
      >>> critic = lambda x: x @ jnp.array([3.0, 4.0])  # gradient (3, 4) everywhere
      >>> float(gradient_penalty_at(critic, jnp.zeros((5, 2))))  # (||(3, 4)|| - 1)^2
      16.0
    """
    g = critic_input_grad(critic, x_hat)  # (batch, ...)
    sq = _per_sample_sq_norm(g)  # (batch,)
    # ||g|| = sqrt(sq), with a finite derivative where g = 0 (sqrt'(0) is infinite): the
    # penalty's gradient there is that of (0 - 1)^2 through a constant norm.
    positive = sq > 0
    norm = jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)
    return jnp.mean(jnp.square(norm - 1.0))  # Gulrajani et al. (2017), eq. 3


def gradient_penalty(key: jax.Array, critic: Model, real: jax.Array, fake: jax.Array) -> jax.Array:
    """WGAN-GP's two-sided gradient penalty on random interpolates (Gulrajani et al. 2017).

    .. math::
      GP = E_{xhat} (||grad_{xhat} f(xhat)||_2 - 1)^2,
      xhat = eps x + (1 - eps) x~, eps ~ U[0, 1]

    ``eps`` is drawn once per example (``(batch,)``), and the norm is taken per example over
    all non-batch axes -- not per element, and not over the whole batch. The weight lambda
    (10 in the paper, eq. 3) is applied by the caller: ``L_D + lambda * GP``.

    Args:
      key: draws ``eps``.
      critic: callable pytree ``critic(x (batch, ...)) -> (batch,)`` treating examples
        independently -- the discriminator Module itself; differentiate the penalty with
        respect to it. A plain function (a closure over weights) also works.
      real: ``(batch, ...)`` data.
      fake: ``(batch, ...)`` generated samples (gradients flow into the critic only as
        the caller's loss differentiates; ``fake`` is usually ``stop_gradient``-ed).

    Returns:
      ``()`` the penalty.

    Example:
      >>> w = jnp.array([3.0, 4.0])
      >>> real, fake = jnp.ones((5, 2)), jnp.zeros((5, 2))
      >>> float(gradient_penalty(jax.random.key(0), lambda x: x @ w, real, fake))
      16.0
    """
    real = _check_real(real)
    checks.same_shape("fake", jnp.asarray(fake), "real", real)
    eps = jax.random.uniform(key, (real.shape[0],), real.dtype)  # one eps per example
    return gradient_penalty_at(critic, interpolate(real, fake, eps))


def r1_penalty(critic: Model, real: jax.Array) -> jax.Array:
    """R1 penalty ``E_data ||grad_x l(x)||^2`` (Mescheder et al. 2018, eq. 9).

    The caller adds ``gamma / 2 * R1`` to the discriminator's loss (the paper's weighting).

    Args:
      critic: callable pytree ``(batch, ...) -> (batch,)`` discriminator logits (the Module).
      real: ``(batch, ...)`` data.

    Returns:
      ``()`` the penalty (per-example squared norm over all non-batch axes, batch mean).

    Example:
      >>> critic = lambda x: x @ jnp.array([3.0, 4.0])  # gradient (3, 4) everywhere
      >>> float(r1_penalty(critic, jnp.zeros((5, 2))))  # ||(3, 4)||^2
      25.0
    """
    g = critic_input_grad(critic, _check_real(real))
    return jnp.mean(_per_sample_sq_norm(g))


def cycle_consistency_loss(x: jax.Array, y: jax.Array, g: Model, f: Model) -> jax.Array:
    """CycleGAN's cycle loss ``E_x ||F(G(x)) - x||_1 + E_y ||G(F(y)) - y||_1`` (Zhu et al., eq. 2).

    Each L1 norm is averaged over an example's elements and over the batch (the reference
    implementation's ``nn.L1Loss``); the weight (lambda = 10 in the paper, eq. 3) is applied
    by the caller.

    Args:
      x: ``(batch, ...)`` examples of domain X.
      y: ``(batch_y, ...)`` examples of domain Y.
      g: ``G: X -> Y``, a callable pytree (a translator Module).
      f: ``F: Y -> X``, likewise.

    Returns:
      ``()`` the loss; 0 exactly when ``F`` inverts ``G`` on ``x`` and ``G`` inverts ``F``
      on ``y``.

    Example:
      >>> x, y = jnp.ones((2, 3)), jnp.zeros((2, 3))
      >>> float(cycle_consistency_loss(x, y, lambda a: a + 1, lambda b: b - 1))  # F inverts G
      0.0
    """
    x, y = jnp.asarray(x), jnp.asarray(y)
    # A translator whose output has the wrong shape would be broadcast against x (or y)
    # into a finite, meaningless loss: each round trip must return its input's shape.
    x_cycle = f(g(x))  # x -> G(x) -> F(G(x)) ~ x
    checks.same_shape("f(g(x))", x_cycle, "x", x)
    y_cycle = g(f(y))  # y -> F(y) -> G(F(y)) ~ y
    checks.same_shape("g(f(y))", y_cycle, "y", y)
    forward = jnp.mean(jnp.abs(x_cycle - x))
    backward = jnp.mean(jnp.abs(y_cycle - y))
    return forward + backward
