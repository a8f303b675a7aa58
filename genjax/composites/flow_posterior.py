"""Flow posteriors for the VAE: planar flows and inverse autoregressive flow.

The VAE's diagonal Gaussian ``q_0(z_0|x) = N(mu(x), diag sigma(x)^2)`` followed by ``K``
invertible steps whose parameters are outputs of the inference network (Rezende & Mohamed
2015, sec. 4; Kingma et al. 2016, sec. 4 and Algorithm 1):

    z_0 = mu(x) + sigma(x) * eps,  eps ~ N(0, I_L)                       (reparameterisation)
    z_k = f_k(z_{k-1}; lambda_k(x)),  k = 1..K
    log q_K(z_K|x) = log q_0(z_0|x) - sum_k log|det dz_k/dz_{k-1}|        (R&M eq. 13)
    ELBO(x) = E_eps[log p(x, z_K) - log q_0(z_0|x) + sum_k log|det dz_k/dz_{k-1}|]  (R&M eq. 15)
    L_k(x) = E[log (1/k) sum_i p(x, z_K^i) / q_K(z_K^i|x)]              (IWAE, Burda et al. 2016)

Two kinds of step, both the bijectors of :mod:`genjax.flows.bijectors` (imported, not
rewritten), with amortised parameters:

* ``"planar"`` — :class:`~genjax.flows.bijectors.Planar`, ``z' = z + u_hat tanh(w^T z + b)``
  (R&M eqs. 10-12), where ``(w, u, b)`` of every step are read off a context network
  ``x -> (B, K (2L + 1))``: per example, as in R&M's amortised flows.
* ``"iaf"`` — :class:`~genjax.flows.bijectors.IAF`, ``z'_d = z_d exp(alpha_d) + m_d`` with
  ``(m_d, alpha_d)`` functions of ``z_{<d}`` and of a context ``h(x)`` (Kingma et al. eqs.
  10-11, Algorithm 1), computed by a :class:`ContextMADE`: a :class:`genjax.nn.MADE` over
  ``[h, z]`` whose context inputs have degree 0, so that every hidden unit sees all of ``h``
  while the autoregressive masks on ``z`` are MADE's (Germain et al. eqs. 12-13). The order
  of ``z`` is reversed every other step so that each coordinate conditions on the others.
  genjax's IAF is the affine form ``z exp(alpha) + m`` with ``alpha`` soft-clamped to
  ``(-c, c)``, not the gated ``sigma z + (1 - sigma) m`` of Kingma et al. eq. 14; both are
  the same family of maps.

The inference network is the VAE's encoder (``mu``, ``log sigma^2``) beside a context
network of ``x`` (the flows' ``lambda(x)`` or ``h(x)``); the generative side (prior
``N(0, I)`` and decoder) is the wrapped :class:`~genjax.vae.VAE`'s, so ``sample``,
``reconstruct`` and the diagonal-posterior losses of :mod:`genjax.vae` apply to
``model.vae`` unchanged.

References:
  Rezende, Mohamed (2015). Variational Inference with Normalizing Flows. ICML.
  Kingma, Salimans, Jozefowicz, Chen, Sutskever, Welling (2016). Improved Variational
  Inference with Inverse Autoregressive Flow. NeurIPS.
  Germain, Gregor, Murray, Larochelle (2015). MADE. ICML.
  Burda, Grosse, Salakhutdinov (2016). Importance Weighted Autoencoders. ICLR.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import checks, gaussian
from genjax.flows.bijectors import IAF, Planar
from genjax.model import model_jit
from genjax.nn.autoencoders import MLPEncoder
from genjax.nn.made import MADE
from genjax.vae.model import VAE, mlp_vae

FLOWS = ("planar", "iaf")


def identity(a: jax.Array) -> jax.Array:
    """``a``: the activation of a linear MADE (an affine IAF step, :func:`affine_flow_vae`)."""
    return a


def context_made_degrees(
    context_dim: int, order: Sequence[int], hidden_sizes: Sequence[int]
) -> tuple[tuple[int, ...], ...]:
    """Degrees of a MADE over ``[h, z]`` with context ``h`` (C inputs) and ``z`` (L inputs).

    ``m^0 = (0,)*C + order`` (context degree 0: below every hidden degree, so ``h`` reaches
    every hidden unit), hidden ``m^l(k) = k mod L`` in ``{0..L-1}`` (degree 0 units see ``h``
    only and feed the first coordinate in the order). With MADE's rules
    ``M^l[k', k] = 1[m^l(k) >= m^{l-1}(k')]`` and ``M^V[k, d] = 1[m^0(d) > m^L(k)]``, output
    ``d`` of ``z`` depends on ``h`` and on the ``z_{d'}`` with ``order[d'] < order[d]``.

    Example:
      >>> context_made_degrees(2, (1, 2), (4,))
      ((0, 0, 1, 2), (0, 1, 0, 1))
    """
    num_latents = len(order)
    return (
        (0,) * int(context_dim) + tuple(int(o) for o in order),
        *(tuple(k % num_latents for k in range(int(w))) for w in hidden_sizes),
    )


class ContextMADE(MADE):
    """A :class:`genjax.nn.MADE` over ``[h, z]``: ``(B, C + L) -> (B, C + L, 2)``, output
    ``[:, C + d]`` a function of ``h`` and of ``z_{<d}`` (in ``order``) only.

    MADE's layers, masks and forward pass, with the degrees of
    :func:`context_made_degrees` (the context the conditioning input of Kingma et al. 2016,
    Algorithm 1). The read-out starts at zero, so the IAF step starts as the identity.

    Args:
      context_dim: C >= 0.
      latent_dim: L >= 1.
      hidden_sizes: widths, each >= L (every hidden degree present).
      rngs: initialisation.
      order: a permutation of ``1..L``.
      activation: hidden nonlinearity (:func:`identity` gives a linear MADE).

    Example:
      >>> made = ContextMADE(3, 2, (4,), rngs=nnx.Rngs(0))
      >>> made(jnp.ones((5, 5))).shape
      (5, 5, 2)
    """

    def __init__(
        self,
        context_dim: int,
        latent_dim: int,
        hidden_sizes: Sequence[int],
        *,
        rngs: nnx.Rngs,
        order: Sequence[int] | None = None,
        activation: Callable[[jax.Array], jax.Array] = nnx.relu,
    ):
        context_dim = checks.nonnegative_int("context_dim", context_dim)
        latent_dim = checks.positive_int("latent_dim", latent_dim)
        hidden_sizes = tuple(int(h) for h in hidden_sizes)
        if not hidden_sizes or min(hidden_sizes) < latent_dim:
            raise ValueError(
                f"hidden_sizes must hold at least one width >= latent_dim="
                f"{latent_dim}, got {hidden_sizes!r}"
            )
        order = tuple(range(1, latent_dim + 1)) if order is None else tuple(int(o) for o in order)
        if sorted(order) != list(range(1, latent_dim + 1)):
            raise ValueError(f"order must be a permutation of 1..{latent_dim}, got {order!r}")
        super().__init__(
            context_dim + latent_dim, hidden_sizes, 2, rngs=rngs, activation=activation
        )
        self.context_dim = context_dim
        self.degrees = context_made_degrees(context_dim, order, hidden_sizes)
        last = self.layers[-1]
        last.kernel[...] = jnp.zeros_like(last.kernel[...])  # IAF step = identity at init


class FlowPosteriorVAE(nnx.Module):
    """A :class:`~genjax.vae.VAE` whose posterior is ``q_0`` followed by K flow steps.

    Attributes:
      vae: the VAE: encoder ``(B, *data_shape) -> (mu, logvar)``, decoder, prior ``N(0, I)``.
      context: ``(B, *data_shape) -> (B, C)``: the planar steps' ``(w, u, b)``
        (``C = K (2L + 1)``) or the IAF context ``h``; None when ``C = 0``.
      mades: the K :class:`ContextMADE` of the IAF steps (empty for planar).
      flow: ``"planar"`` or ``"iaf"``; num_flows: K; scale_clamp: the IAF's ``c``.

    Args:
      vae: the VAE to extend.
      flow: ``"planar"`` or ``"iaf"``.
      num_flows: K >= 1.
      rngs: initialisation.
      context_hidden: hidden widths of the context network (empty: affine in ``x``).
      context_dim: C >= 0, the IAF context's width (planar: ignored).
      made_hidden: the IAF MADEs' hidden widths, each >= L.
      made_activation: their nonlinearity.
      scale_clamp: c > 0, IAF ``alpha = c tanh(alpha_raw / c)``.

    Example:
      >>> base = mlp_vae((4,), 2, rngs=nnx.Rngs(0), hidden_sizes=(8,))
      >>> model = FlowPosteriorVAE(base, flow="planar", num_flows=3, rngs=nnx.Rngs(1),
      ...                          context_hidden=(8,))
      >>> model.context(jnp.zeros((5, 4))).shape  # (w, u, b) of 3 steps per example
      (5, 15)
    """

    def __init__(
        self,
        vae: VAE,
        *,
        flow: str,
        num_flows: int,
        rngs: nnx.Rngs,
        context_hidden: Sequence[int] = (256,),
        context_dim: int = 8,
        made_hidden: Sequence[int] = (64,),
        made_activation: Callable[[jax.Array], jax.Array] = nnx.relu,
        scale_clamp: float = 3.0,
    ):
        if not isinstance(vae, VAE):
            raise ValueError(f"vae must be a VAE, got {type(vae).__name__}")
        self.flow = checks.one_of("flow", flow, FLOWS)
        self.num_flows = checks.positive_int("num_flows", num_flows)
        self.scale_clamp = float(checks.positive("scale_clamp", scale_clamp))
        self.vae = vae
        latent = vae.latent_dim
        if flow == "planar":
            width = self.num_flows * (2 * latent + 1)  # (w, u, b) of each step
        else:
            width = checks.nonnegative_int("context_dim", context_dim)
        self.context_dim = width
        self.context = (
            MLPEncoder(vae.data_shape, tuple(context_hidden), width, rngs=rngs)
            if width > 0
            else None
        )
        mades = []
        if flow == "iaf":
            natural = tuple(range(1, latent + 1))
            for k in range(self.num_flows):  # reverse the order every other step
                order = natural if k % 2 == 0 else natural[::-1]
                mades.append(
                    ContextMADE(
                        width,
                        latent,
                        made_hidden,
                        rngs=rngs,
                        order=order,
                        activation=made_activation,
                    )
                )
        self.mades = nnx.List(mades)

    @property
    def latent_dim(self) -> int:
        """L."""
        return self.vae.latent_dim

    @property
    def data_shape(self) -> tuple[int, ...]:
        """The shape of one example."""
        return self.vae.data_shape


def mlp_flow_vae(
    data_shape: Sequence[int],
    latent_dim: int,
    *,
    flow: str,
    num_flows: int,
    rngs: nnx.Rngs,
    hidden_sizes: Sequence[int] = (256,),
    likelihood: str = "bernoulli",
    context_dim: int = 8,
    made_hidden: Sequence[int] = (64,),
) -> FlowPosteriorVAE:
    """An MLP :func:`~genjax.vae.mlp_vae` with a planar or IAF posterior; the context
    network has the encoder's hidden widths.

    Example:
      >>> model = mlp_flow_vae((4, 4, 1), 2, flow="iaf", num_flows=2, rngs=nnx.Rngs(0),
      ...                      hidden_sizes=(8,), context_dim=3, made_hidden=(8,))
      >>> model.flow, model.num_flows, len(model.mades)
      ('iaf', 2, 2)
    """
    base = mlp_vae(
        data_shape, latent_dim, rngs=rngs, hidden_sizes=hidden_sizes, likelihood=likelihood
    )
    return FlowPosteriorVAE(
        base,
        flow=flow,
        num_flows=num_flows,
        rngs=rngs,
        context_hidden=hidden_sizes,
        context_dim=context_dim,
        made_hidden=made_hidden,
    )


def affine_flow_vae(vae: VAE, *, rngs: nnx.Rngs) -> FlowPosteriorVAE:
    """``vae`` with one IAF step over a **linear** MADE and no context: an affine flow.

    ``z_1 = T z_0 + c`` at ``alpha`` constant in ``z`` (``T`` lower triangular, diagonal
    ``exp(alpha)``), so ``q(z|x) = N(T mu(x) + c, T diag(sigma^2) T^T)``: every Gaussian,
    the correlated posterior of pPCA (:func:`~genjax.vae.linear_vae`) included.

    Example:
      >>> from genjax.vae import linear_vae
      >>> model = affine_flow_vae(linear_vae(3, 2, rngs=nnx.Rngs(0)), rngs=nnx.Rngs(1))
      >>> model.flow, model.context is None
      ('iaf', True)
    """
    return FlowPosteriorVAE(
        vae,
        flow="iaf",
        num_flows=1,
        rngs=rngs,
        context_dim=0,
        made_hidden=(max(2, vae.latent_dim),),
        made_activation=identity,
    )


# --- checks -----------------------------------------------------------------------------------


def check_model(model: Any) -> None:
    """Raise ``ValueError`` naming ``model`` unless it is a :class:`FlowPosteriorVAE`."""
    if not isinstance(model, FlowPosteriorVAE):
        raise ValueError(f"model must be a FlowPosteriorVAE, got {type(model).__name__}")


def check_batch(model: FlowPosteriorVAE, x: jax.Array) -> None:
    """Raise ``ValueError`` naming ``batch`` unless x is (B, *data_shape) and finite."""
    checks.shape("batch", x, (None, *model.data_shape))
    checks.finite("batch", x)  # when concrete: a NaN pixel would make the loss NaN


# --- the posterior ---------------------------------------------------------------------------


def _planar_step(num_latents: int, lam: jax.Array, z: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One amortised planar step: lam (B, 2L + 1) = (w, u, b) per example, z (B, L)."""
    params = {
        "w": lam[:, :num_latents],
        "u": lam[:, num_latents : 2 * num_latents],
        "b": lam[:, 2 * num_latents],
    }
    bijector = Planar(num_latents)
    # Planar's parameters are one example's: map it over the batch, z_b as a batch of one
    z_new, log_det = jax.vmap(lambda p, zb: bijector.forward(p, zb[None]))(params, z)
    return z_new[:, 0], log_det[:, 0]  # R&M eqs. 10 and 12: (B, L), (B,)


def _iaf_step(
    model: FlowPosteriorVAE, made: ContextMADE, h: jax.Array, z: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """One IAF step conditioned on the context h (B, C): z (B, L) -> (z', log|det|)."""
    c = model.context_dim

    def net(u: jax.Array) -> jax.Array:  # (B, L) -> (B, L, 2): (m, alpha_raw) of z_{<d}, h
        return made(jnp.concatenate([h, u], axis=-1))[:, c:, :]

    bijector = IAF(model.latent_dim, scale_clamp=model.scale_clamp)
    return bijector.forward({"net": net}, z)  # Kingma eqs. 10-11: sum_d alpha_d


def posterior_terms(
    model: FlowPosteriorVAE, x: jax.Array, eps: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """``(z_K, log q_0(z_0|x), sum_k log|det|, z_0)`` for eps (B, L): the shared body."""
    mu, logvar = model.vae.encode(x)  # (B, L) each
    z0 = mu + jnp.exp(0.5 * logvar) * eps  # z_0 ~ q_0(z|x)
    log_q0 = gaussian.diag_normal_log_prob(z0, mu, logvar)  # (B,)
    h = model.context(x) if model.context is not None else jnp.zeros((x.shape[0], 0), z0.dtype)
    if model.flow == "planar":  # K steps of one shape: a lax.scan (compile time flat in K)
        lam = h.reshape(x.shape[0], model.num_flows, 2 * model.latent_dim + 1)  # (B, K, 2L+1)

        def step(z: jax.Array, lam_k: jax.Array) -> tuple[jax.Array, jax.Array]:
            return _planar_step(model.latent_dim, lam_k, z)

        z, log_dets = jax.lax.scan(step, z0, jnp.swapaxes(lam, 0, 1))  # log_dets (K, B)
        return z, log_q0, jnp.sum(log_dets, axis=0), z0  # sum_k log|det dz_k / dz_{k-1}|
    z, log_det = z0, jnp.zeros_like(log_q0)
    for k in range(model.num_flows):  # each IAF step its own MADE and order: unrolled
        z, ld = _iaf_step(model, model.mades[k], h, z)
        log_det = log_det + ld  # sum_k log|det dz_k / dz_{k-1}|
    return z, log_q0, log_det, z0


def flow_posterior_sample_from_noise(
    model: FlowPosteriorVAE, x: jax.Array, eps: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """``z_K ~ q_K(z|x)`` from its base noise, and ``log q_K(z_K|x)`` (R&M eq. 13).

    Args:
      model: a :class:`FlowPosteriorVAE`.
      x: (B, *data_shape).
      eps: (B, L) standard normal.

    Returns:
      ``z`` (B, L) and ``log_q`` (B,) in nats.

    Example:
      >>> model = mlp_flow_vae((4,), 2, flow="planar", num_flows=2, rngs=nnx.Rngs(0),
      ...                      hidden_sizes=(8,))
      >>> z, log_q = flow_posterior_sample_from_noise(model, jnp.ones((3, 4)), jnp.zeros((3, 2)))
      >>> z.shape, log_q.shape
      ((3, 2), (3,))
    """
    check_model(model)
    check_batch(model, x)
    checks.shape("eps", eps, (x.shape[0], model.latent_dim))
    z, log_q0, log_det, _ = posterior_terms(model, x, eps)
    return z, log_q0 - log_det  # log q_K = log q_0 - sum_k log|det|


@model_jit
def flow_posterior_sample(
    key: jax.Array, model: FlowPosteriorVAE, x: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """One draw ``z ~ q_K(z|x)`` per example and its log-density (one jitted program, the
    model traced).

    Args:
      key: the base noise's key.
      model: a :class:`FlowPosteriorVAE`.
      x: (B, *data_shape).

    Returns:
      ``z`` (B, L), ``log_q`` (B,).

    Example:
      >>> model = mlp_flow_vae((4,), 2, flow="iaf", num_flows=1, rngs=nnx.Rngs(0),
      ...                      hidden_sizes=(8,), context_dim=2, made_hidden=(4,))
      >>> flow_posterior_sample(jax.random.key(0), model, jnp.ones((3, 4)))[0].shape
      (3, 2)
    """
    eps = jax.random.normal(key, (x.shape[0], model.latent_dim), x.dtype)
    return flow_posterior_sample_from_noise(model, x, eps)


__all__ = [
    "ContextMADE",
    "FlowPosteriorVAE",
    "affine_flow_vae",
    "context_made_degrees",
    "flow_posterior_sample",
    "flow_posterior_sample_from_noise",
    "identity",
    "mlp_flow_vae",
]
