"""Conditional flow matching with Gaussian probability paths (Lipman et al. 2023).

Flow matching trains a velocity field ``v_theta(x, t)`` whose ODE ``dx/dt = v`` carries
the source ``p_0 = N(0, I)`` at ``t = 0`` to the data ``p_1`` at ``t = 1`` (the CNF
direction convention of :mod:`genjax.flows.cnf`). Every path here is a Gaussian
interpolation between a source draw ``x0`` and a data point ``x1``:

    x_t = alpha_t x1 + sigma_t x0,        u_t(x_t | x0, x1) = alpha'_t x1 + sigma'_t x0

(Lipman et al. 2023, eq. 10-15 with ``mu_t(x1) = alpha_t x1``: the conditional flow
``psi_t(x0) = sigma_t x0 + mu_t(x1)`` and its velocity ``d psi_t / dt``). The marginal
field ``u_t(x) = E[u_t(x_t | x0, x1) | x_t = x]`` generates the marginal path, and the
conditional flow matching loss

    L_CFM(theta) = E_{t ~ U[0,1], (x0, x1) ~ q} |v_theta(x_t, t) - u_t(x_t | x0, x1)|^2    (eq. 9)

has the same gradient as regressing on ``u_t(x)`` itself (Theorem 2), so its minimiser is
the marginal velocity. We reduce with the squared norm summed over dimensions and
averaged over the batch.

The model is the velocity network ``v_theta``: ``model(x (batch, D), t (batch,)) -> (batch,
D)``, a callable pytree (an ``nnx.Module`` such as :func:`genjax.flows.cnf.mlp_field`, or
``jax.tree_util.Partial(apply, params)``), traced by every function here; a plain function is
accepted but static (each new function object compiles anew). The loss takes it as
``loss(model, batch, key)`` and ``jax.grad`` differentiates it directly. A trained model is a
CNF from ``N(0, I)`` at ``t = 0`` to the data at ``t = 1``: :func:`sample`,
:func:`sample_from_noise` and :func:`log_prob` are those of :mod:`genjax.flows.cnf`
(the ODE right-hand side is ``f(t, x) = model(x, t 1_batch)``, :func:`genjax.flows.cnf.ode_field`).

Paths (``path=``):

* ``"condot"`` — the optimal-transport conditional path (Lipman et al. 2023, eq. 20-23):
  ``alpha_t = t``, ``sigma_t = 1 - (1 - sigma_min) t``, so
  ``u = x1 - (1 - sigma_min) x0``. With ``sigma_min = 0`` this is rectified flow
  (Liu et al. 2023) / I-CFM (Tong et al. 2023): ``x_t = (1 - t) x0 + t x1``,
  ``u = x1 - x0``.
* ``"vp"`` — the variance-preserving diffusion path run backwards in time (Lipman et al.
  2023, eq. 18-19; the VP SDE of Song et al. 2021):
  ``alpha_t = a(1 - t)``, ``sigma_t = sqrt(1 - a(1 - t)^2)``, ``a(s) = exp(-T(s)/2)``,
  ``T(s) = beta_min s + (beta_max - beta_min) s^2 / 2``, ``beta_min = 0.1``,
  ``beta_max = 20``; ``alpha'_t = beta(1 - t) alpha_t / 2`` and
  ``sigma'_t = -beta(1 - t) alpha_t^2 / (2 sigma_t)``. ``sigma_1 = 0`` makes
  ``sigma'_t`` blow up like ``(1 - t)^(-1/2)`` as ``t -> 1``; we evaluate the path at
  ``min(t, 1 - 1e-5)`` (the ``eps = 1e-5`` of Song et al.), so ``t = 1`` is finite.
  At ``t = 0``, ``alpha_0 = exp(-5.025) ~ 7e-3``: the source is ``N(0, I)`` only up to
  that (as in the paper).

Couplings (``coupling=``) of the source batch with the data batch:

* ``"independent"``: ``x0 ~ N(0, I)`` drawn independently of ``x1``;
* ``"ot"``: minibatch optimal transport (Tong et al. 2023, OT-CFM): ``x0`` is reordered
  by the exact assignment minimising ``sum_j |x1_j - x0_pi(j)|^2``
  (:func:`genjax.flows.ot.ot_pair`; ``x1`` keeps its order).

For a Gaussian target the marginal velocity is closed form (derivation in
:func:`gaussian_marginal_velocity`); for a Gaussian mixture it is the posterior average
of the components' (:func:`mixture_marginal_velocity`) — the exact field that a trained
network approximates, usable for tests and benchmarks.

References:
  Lipman, Chen, Ben-Hamu, Nickel, Le, "Flow Matching for Generative Modeling", ICLR 2023.
  Liu, Gong, Liu, "Flow Straight and Fast: Learning to Generate and Transfer Data with
  Rectified Flow", ICLR 2023.
  Tong et al., "Improving and generalizing flow-based generative models with minibatch
  optimal transport", TMLR 2024 (arXiv 2302.00482, 2023).
  Song et al., "Score-Based Generative Modeling through Stochastic Differential
  Equations", ICLR 2021.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.flows import cnf
from genjax.flows.ot import ot_pair
from genjax.model import Model

__all__ = [
    "PATHS", "COUPLINGS", "path_coefficients", "sample_path", "conditional_loss", "loss",
    "sample", "sample_from_noise", "log_prob", "gaussian_marginal_velocity",
    "mixture_marginal_velocity",
]  # fmt: skip

PATHS = ("condot", "vp")
"""The probability paths: ``"condot"`` (straight lines) or ``"vp"`` (variance preserving)."""
COUPLINGS = ("independent", "ot")
"""How noise and data are paired: ``"independent"`` or by minibatch ``"ot"``."""
VP_BETA_MIN = 0.1
VP_BETA_MAX = 20.0
VP_T_MAX = 1.0 - 1e-5  # sigma_t of the VP path vanishes at t = 1; see the module docstring

# Sampling and likelihood: a flow-matching model is a CNF from N(0, I) at t = 0 to the data
# at t = 1 (the CNF defaults t0 = 0, t1 = 1), sampled and evaluated by genjax.flows.cnf.
sample = cnf.sample
sample_from_noise = cnf.sample_from_noise
log_prob = cnf.log_prob


def _check_path(path: str, sigma_min: float) -> None:
    checks.one_of("path", path, PATHS)
    checks.in_range("sigma_min", sigma_min, 0.0, 1.0, high_open=True)


# --------------------------------------------------------------------------- paths


def path_coefficients(
    t: jax.Array, *, path: str = "condot", sigma_min: float = 0.0
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """``(alpha_t, sigma_t, alpha'_t, sigma'_t)`` of ``x_t = alpha_t x1 + sigma_t x0``.

    Args:
      t: times in [0, 1], any shape.
      path: ``"condot"`` or ``"vp"`` (see the module docstring).
      sigma_min: the CondOT path's end width ``sigma_1`` in [0, 1) (ignored by ``"vp"``).

    Returns:
      four arrays shaped like ``t``.
    """
    _check_path(path, sigma_min)
    checks.in_range("t", t, 0.0, 1.0)
    t = jnp.asarray(t)
    if not jnp.issubdtype(t.dtype, jnp.floating):
        t = t.astype(jnp.float32)
    if path == "condot":
        c = 1.0 - sigma_min
        alpha = t  # mu_t(x1) = t x1                      (Lipman eq. 20)
        sigma = 1.0 - c * t  # sigma_t = 1 - (1 - sigma_min) t
        return alpha, sigma, jnp.ones_like(t), jnp.full_like(t, -c)
    s = 1.0 - jnp.minimum(t, VP_T_MAX)  # diffusion time s = 1 - t, kept >= 1e-5
    big_t = VP_BETA_MIN * s + 0.5 * (VP_BETA_MAX - VP_BETA_MIN) * s**2  # T(s) = int_0^s beta
    beta = VP_BETA_MIN + (VP_BETA_MAX - VP_BETA_MIN) * s  # beta(s)
    alpha = jnp.exp(-0.5 * big_t)  # alpha_t = a(1 - t)                  (Lipman eq. 18)
    sigma = jnp.sqrt(-jnp.expm1(-big_t))  # sqrt(1 - a^2), expm1: accurate for small T
    d_alpha = 0.5 * beta * alpha  # d/dt a(1 - t) = -a'(s) = beta(s) a(s) / 2
    d_sigma = -0.5 * beta * alpha**2 / sigma  # d/dt sqrt(1 - a^2) = -a a' / sigma
    return alpha, sigma, d_alpha, d_sigma


def sample_path(
    x0: jax.Array, x1: jax.Array, t: jax.Array, *, path: str = "condot", sigma_min: float = 0.0
) -> tuple[jax.Array, jax.Array]:
    """A point of the conditional path and its target velocity.

        x_t = alpha_t x1 + sigma_t x0,    u_t = alpha'_t x1 + sigma'_t x0     (Lipman eq. 11, 15)

    Args:
      x0: (batch, D) source draws.
      x1: (batch, D) data.
      t: (batch,) times in [0, 1].
      path, sigma_min: as :func:`path_coefficients`.

    Returns:
      ``(x_t (batch, D), u_t (batch, D))``.

    Example:
      >>> x0, x1 = jnp.zeros((2, 2)), jnp.ones((2, 2))
      >>> x_t, u_t = sample_path(x0, x1, jnp.array([0.25, 0.75]))
      >>> x_t[:, 0].tolist(), u_t[:, 0].tolist()  # x_t = (1 - t) x0 + t x1, u_t = x1 - x0
      ([0.25, 0.75], [1.0, 1.0])
    """
    x0, x1 = jnp.asarray(x0), jnp.asarray(x1)
    checks.ndim("x1", x1, 2, "(batch, dim)")
    checks.same_shape("x0", x0, "x1", x1)
    checks.shape("t", t, (x1.shape[0],))
    alpha, sigma, d_alpha, d_sigma = path_coefficients(t, path=path, sigma_min=sigma_min)
    alpha, sigma, d_alpha, d_sigma = (c.astype(x1.dtype)[:, None]
                                      for c in (alpha, sigma, d_alpha, d_sigma))  # (batch, 1)
    x_t = alpha * x1 + sigma * x0  # psi_t(x0 | x1)
    u_t = d_alpha * x1 + d_sigma * x0  # d psi_t / dt
    return x_t, u_t


# --------------------------------------------------------------------------- losses


def conditional_loss(
    model: Model,
    x0: jax.Array,
    x1: jax.Array,
    t: jax.Array,
    *,
    path: str = "condot",
    sigma_min: float = 0.0,
) -> tuple[jax.Array, dict]:
    """The CFM loss on given (already coupled) draws — the deterministic core of :func:`loss`.

        L = mean_b |v_theta(x_t, t) - u_t(x_t | x0, x1)|^2                 (Lipman eq. 9)

    Args:
      model: the velocity model ``model(x (batch, D), t (batch,)) -> (batch, D)``, a
        callable pytree (an ``nnx.Module``, a ``jax.tree_util.Partial``) or a function.
      x0: (batch, D) source draws, paired row by row with ``x1``.
      x1: (batch, D) data.
      t: (batch,) times in [0, 1].
      path, sigma_min: as :func:`path_coefficients`.

    Returns:
      ``(loss, {"cfm": loss})``.

    Example:
      >>> model = lambda x, t: jnp.ones_like(x)  # the exact velocity x1 - x0 of this pair
      >>> value, metrics = conditional_loss(model, jnp.zeros((2, 2)), jnp.ones((2, 2)),
      ...                                   jnp.array([0.25, 0.75]))
      >>> float(value)
      0.0
    """
    checks.ndim("x1", x1, 2, "(batch, dim)")
    checks.same_shape("x0", x0, "x1", x1)
    checks.shape("t", t, (x1.shape[0],))
    x_t, u_t = sample_path(x0, x1, t, path=path, sigma_min=sigma_min)
    v = checks.model_output(model(x_t, t), x_t.shape)  # (batch, D), never (batch, 1)
    value = jnp.mean(jnp.sum((v - u_t) ** 2, axis=-1))  # |v - u|^2, mean over the batch
    return value, {"cfm": value}


def loss(
    model: Model,
    batch: jax.Array,
    key: jax.Array,
    *,
    path: str = "condot",
    coupling: str = "independent",
    sigma_min: float = 0.0,
) -> tuple[jax.Array, dict]:
    """Conditional flow matching loss on a data batch (Lipman et al. 2023, Algorithm 1).

    The key is split as ``x0_key, t_key = jax.random.split(key)``;
    ``x0 ~ N(0, I)`` (batch, D) from ``x0_key``, ``t ~ U[0, 1)`` (batch,) from ``t_key``;
    with ``coupling="ot"`` the source batch is reordered by :func:`genjax.flows.ot.ot_pair`
    before :func:`conditional_loss`.

    Args:
      model: the velocity model ``model(x (batch, D), t (batch,)) -> (batch, D)``, a
        callable pytree (the gradient is taken with respect to its arrays) or a function.
      batch: (batch, D) data ``x1``.
      key: PRNG key.
      path: ``"condot"`` or ``"vp"``.
      coupling: ``"independent"`` or ``"ot"``.
      sigma_min: CondOT end width in [0, 1).

    Returns:
      ``(loss, {"cfm": loss})``.

    Example:
      >>> model = genjax.flows.cnf.mlp_field(jax.random.key(0), 2, (8,))
      >>> x1 = jnp.ones((4, 2))
      >>> value, metrics = loss(model, x1, jax.random.key(1), coupling="ot")
      >>> grads = jax.grad(lambda m: loss(m, x1, jax.random.key(1))[0])(model)
      >>> type(grads).__name__  # an nnx.Module of gradients
      'MLPDenoiser'
    """
    _check_path(path, sigma_min)
    checks.one_of("coupling", coupling, COUPLINGS)
    x1 = jnp.asarray(batch)
    checks.ndim("batch", x1, 2, "(batch, dim)")
    x0_key, t_key = jax.random.split(key)
    x0 = jax.random.normal(x0_key, x1.shape, x1.dtype)  # x0 ~ N(0, I)
    t = jax.random.uniform(t_key, x1.shape[:1], x1.dtype)  # t ~ U[0, 1)
    if coupling == "ot":
        x0 = ot_pair(x0, x1)  # x0 reordered to x1's order (x1 untouched)
    return conditional_loss(model, x0, x1, t, path=path, sigma_min=sigma_min)


# --------------------------------------------------------------------------- exact fields


def gaussian_marginal_velocity(
    x: jax.Array,
    t: jax.Array,
    mean: jax.Array,
    cov: jax.Array,
    *,
    path: str = "condot",
    sigma_min: float = 0.0,
) -> jax.Array:
    """The exact marginal velocity ``u_t(x)`` for ``x0 ~ N(0, I)``, ``x1 ~ N(m, S)`` independent.

    ``x_t = alpha_t x1 + sigma_t x0`` is jointly Gaussian with ``(x0, x1)``:

        E[x_t] = alpha m,    Sigma_t = Cov[x_t] = sigma^2 I + alpha^2 S,
        Cov[x1, x_t] = alpha S,    Cov[x0, x_t] = sigma I,

    so the conditional means are linear in ``x``:

        E[x1 | x_t = x] = m + alpha S Sigma_t^{-1} (x - alpha m)
        E[x0 | x_t = x] = sigma Sigma_t^{-1} (x - alpha m)

    and ``u_t(x) = alpha' E[x1 | x] + sigma' E[x0 | x]`` (Lipman et al. 2023, eq. 8):

        u_t(x) = alpha' m + (alpha' alpha S + sigma' sigma I) Sigma_t^{-1} (x - alpha m).

    For CondOT with ``sigma_min = 0``: ``u_t(x) = m + (t S - (1 - t) I) Sigma_t^{-1} (x - t m)``.
    (Check: ``d Sigma_t / dt = 2 sigma sigma' I + 2 alpha alpha' S = A Sigma + Sigma A^T`` for
    ``A = (alpha' alpha S + sigma' sigma I) Sigma_t^{-1}``, the Lyapunov equation of the
    linear flow, and ``d(alpha m)/dt = u_t(alpha m)``.)

    Args:
      x: (batch, D) points.
      t: (batch,) times in [0, 1].
      mean: (D,) target mean ``m``.
      cov: (D, D) target covariance ``S`` (positive definite).
      path, sigma_min: as :func:`path_coefficients`.

    Returns:
      (batch, D) velocities.
    """
    x = jnp.asarray(x)
    checks.ndim("x", x, 2, "(batch, D)")
    checks.shape("t", t, (x.shape[0],))
    checks.shape("mean", mean, (x.shape[1],))
    checks.shape("cov", cov, (x.shape[1], x.shape[1]))
    checks.covariance("cov", cov)
    alpha, sigma, d_alpha, d_sigma = path_coefficients(t, path=path, sigma_min=sigma_min)
    mean = jnp.asarray(mean, x.dtype)
    cov = jnp.asarray(cov, x.dtype)
    eye = jnp.eye(x.shape[-1], dtype=x.dtype)

    def one(xi, a, s, da, ds):
        sigma_t = s**2 * eye + a**2 * cov  # (D, D) Cov[x_t]
        r = jnp.linalg.solve(sigma_t, xi - a * mean)  # Sigma_t^{-1} (x - alpha m)
        return da * mean + (da * a * cov + ds * s * eye) @ r  # u_t(x)

    cast = lambda c: jnp.asarray(c, x.dtype)
    return jax.vmap(one)(x, cast(alpha), cast(sigma), cast(d_alpha), cast(d_sigma))


def mixture_marginal_velocity(
    target: Any,
    x: jax.Array,
    t: jax.Array,
    *,
    path: str = "condot",
    sigma_min: float = 0.0,
) -> jax.Array:
    """The exact marginal velocity for a Gaussian-mixture target and ``x0 ~ N(0, I)``.

    With ``p_t = target.noised(alpha_t, sigma_t)`` (the law of ``x_t``):

        E[x1 | x_t = x] = target.posterior_mean_x0(x, alpha_t, sigma_t)   (Tweedie, per component)
        E[x0 | x_t = x] = -sigma_t grad log p_t(x)                       (Tweedie for the noise)
        u_t(x) = alpha'_t E[x1 | x] + sigma'_t E[x0 | x]

    Both conditional means stay finite at ``t = 0`` (``alpha = 0``) and, for CondOT with
    ``sigma_min = 0``, at ``t = 1`` (``sigma = 0``: ``E[x0 | x] -> 0``). For a one-component
    mixture it equals :func:`gaussian_marginal_velocity`.

    Args:
      target: a :class:`genjax.targets.GaussianMixture`.
      x: (batch, D) points.
      t: (batch,) times in [0, 1], or a scalar time shared by the batch (cheaper: the
        noised mixture is formed once).
      path, sigma_min: as :func:`path_coefficients`.

    Returns:
      (batch, D) velocities.
    """
    from genjax.targets import GaussianMixture  # here: targets imports nothing of flows

    checks.instance("target", target, GaussianMixture)
    x = jnp.asarray(x)
    checks.ndim("x", x, 2, "(batch, D)")
    checks.shape("x", x, (None, target.dim))
    alpha, sigma, d_alpha, d_sigma = path_coefficients(t, path=path, sigma_min=sigma_min)
    dtype = target.means.dtype
    cast = lambda c: jnp.asarray(c, dtype)

    def one(xi, a, s, da, ds):
        # xi: (D,) or (batch, D) points at the same time
        p_t = target.noised(a, s)
        e_x1 = target.posterior_mean_x0(xi, a, s)  # E[x1 | x_t = x]
        e_x0 = -s * p_t.score(xi)  # E[x0 | x_t = x]
        return da * e_x1 + ds * e_x0

    if jnp.ndim(alpha) == 0:  # one time for the whole batch: one noised mixture
        out = one(x.astype(dtype), cast(alpha), cast(sigma), cast(d_alpha), cast(d_sigma))
    else:
        out = jax.vmap(one)(x.astype(dtype), cast(alpha), cast(sigma), cast(d_alpha),
                            cast(d_sigma))
    return out.astype(x.dtype)
