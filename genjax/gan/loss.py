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

The regularisers that take the critic itself (weight clipping, the gradient penalty, R1)
and CycleGAN's cycle loss are in :mod:`genjax.gan.penalties`.

References:
  Goodfellow et al. (2014), "Generative Adversarial Nets", NeurIPS.
  Salimans et al. (2016), "Improved Techniques for Training GANs", NeurIPS.
  Mao et al. (2017), "Least Squares Generative Adversarial Networks", ICCV.
  Lim & Ye (2017), "Geometric GAN", arXiv:1705.02894.
  Arjovsky, Chintala & Bottou (2017), "Wasserstein GAN", ICML.
  Miyato, Kataoka, Koyama & Yoshida (2018), "Spectral Normalization for Generative
  Adversarial Networks", ICLR (the hinge losses, eq. 16-17).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from genjax import checks


def _check_logits(name: str, logits: jax.Array) -> jax.Array:
    logits = jnp.asarray(logits)
    checks.ndim(name, logits, 1, "(batch,)")
    if logits.shape[0] < 1:
        raise ValueError(f"{name} must have shape (batch,) with batch >= 1, got {logits.shape}")
    return checks.floating(name, logits)


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

    Example:
      >>> round(float(minimax_d(jnp.zeros(4), jnp.zeros(4))), 4)  # D = 1/2 everywhere: log 4
      1.3863
    """
    real_logits = _check_logits("real_logits", real_logits)
    fake_logits = _check_logits("fake_logits", fake_logits)
    checks.in_range("label_smoothing", label_smoothing, 0.0, 1.0, high_open=True)
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

    Example:
      >>> round(float(minimax_g(jnp.zeros(4))), 4)  # E log(1 - 1/2) = -log 2
      -0.6931
    """
    fake_logits = _check_logits("fake_logits", fake_logits)
    return jnp.mean(jax.nn.log_sigmoid(-fake_logits))  # log(1 - D) = log_sigmoid(-l)


def nonsaturating_g(fake_logits: jax.Array) -> jax.Array:
    """Non-saturating generator loss ``L_G = -E_G log D(G(z))`` (Goodfellow et al. 2014, sec. 3).

    Args:
      fake_logits: ``(batch,)`` logits on generated samples.

    Returns:
      ``()`` the loss (>= 0).

    Example:
      >>> round(float(nonsaturating_g(jnp.zeros(4))), 4)  # -E log(1/2) = log 2
      0.6931
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

    Example:
      >>> float(least_squares_d(jnp.ones(3), jnp.zeros(3)))  # D hits both targets b = 1, a = 0
      0.0
    """
    real_logits = _check_logits("real_logits", real_logits)
    fake_logits = _check_logits("fake_logits", fake_logits)
    checks.finite("a", a)
    checks.finite("b", b)
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

    Example:
      >>> float(least_squares_g(jnp.ones(3)))  # fakes already scored c = 1
      0.0
    """
    fake_logits = _check_logits("fake_logits", fake_logits)
    checks.finite("c", c)
    return 0.5 * jnp.mean(jnp.square(fake_logits - c))


def hinge_d(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """Hinge discriminator loss ``E_data relu(1 - f(x)) + E_G relu(1 + f(G(z)))``.

    Lim & Ye (2017); Miyato et al. (2018), eq. 16.

    Args:
      real_logits: ``(batch,)`` critic outputs on data.
      fake_logits: ``(batch_g,)`` critic outputs on generated samples.

    Returns:
      ``()`` the loss (>= 0; 2 at ``f = 0``).

    Example:
      >>> float(hinge_d(jnp.zeros(3), jnp.zeros(3)))  # relu(1 - 0) + relu(1 + 0)
      2.0
      >>> float(hinge_d(jnp.full(3, 2.0), jnp.full(3, -2.0)))  # both margins met
      0.0
    """
    real_logits = _check_logits("real_logits", real_logits)
    fake_logits = _check_logits("fake_logits", fake_logits)
    return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))


def wasserstein_d(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """Wasserstein critic loss ``E_G f(G(z)) - E_data f(x)`` (Arjovsky et al. 2017, eq. 3).

    Its negation estimates ``W1(P_data, P_G)`` when ``f`` is 1-Lipschitz (enforced by
    :func:`weight_clip` or :func:`gradient_penalty`).

    Args:
      real_logits: ``(batch,)`` critic outputs on data.
      fake_logits: ``(batch_g,)`` critic outputs on generated samples.

    Returns:
      ``()`` the loss.

    Example:
      >>> float(wasserstein_d(jnp.array([2.0, 4.0]), jnp.array([1.0, 1.0])))  # E D(G) - E D(x)
      -2.0
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

    Example:
      >>> float(wasserstein_g(jnp.array([1.0, 3.0])))  # -E D(G(z)); also hinge_g
      -2.0
    """
    fake_logits = _check_logits("fake_logits", fake_logits)
    return -jnp.mean(fake_logits)


#: Hinge generator loss ``-E_G f(G(z))`` (Lim & Ye 2017; Miyato et al. 2018, eq. 17): the
#: hinge game's generator minimises the Wasserstein generator loss, so the two names are one
#: function.
hinge_g = wasserstein_g
