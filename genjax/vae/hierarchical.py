"""A two-level hierarchical VAE with ladder (top-down) inference, at toy size.

Generative model (top-down):

    p(z2) = N(0, I_{L2}),   p(z1 | z2) = N(mu_p(z2), diag exp(logvar_p(z2))),   p(x | z1)

Inference (Sønderby et al. 2016, Ladder VAE): a deterministic bottom-up pass
``d1 = f1(x)``, ``d2 = f2(d1)`` gives ``q(z2 | x) = N(mu_2(d2), diag v_2(d2))`` and a
bottom-up estimate ``(mu_hat, v_hat)(d1)`` for the lower layer; the top-down pass
combines it with the generative prior by precision weighting (LVAE §2.2):

    1/v_q   = 1/v_hat + 1/v_p
    mu_q    = (mu_hat / v_hat + mu_p / v_p) * v_q
    q(z1 | x, z2) = N(mu_q, diag v_q)

so that the posterior shares the top-down path with the generative model — the shape of
NVAE (Vahdat & Kautz 2020) and VDVAE (Child 2021), which use residual rather than
precision-weighted parameterisations.

ELBO (one value per example, nats):

    ELBO = E_q[log p(x | z1)] - KL(q(z2|x) || p(z2)) - E_{q(z2|x)}[KL(q(z1|x,z2) || p(z1|z2))]

with both KLs in closed form given a sample of ``z2``. Log importance weights for IWAE:

    log w = log p(x|z1) + log p(z1|z2) + log p(z2) - log q(z1|x,z2) - log q(z2|x).

Noise is injectable: :func:`hvae_terms`, :func:`hvae_log_weights` and :func:`hvae_generate`
receive the standard-normal draws ``eps2, eps1`` as arguments.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import checks, gaussian
from genjax.nn.autoencoders import MLPDecoder, MLPEncoder
from genjax.nn.mlp import MLP
from genjax.vae.distributions import kl_diag_gaussian
from genjax.vae.model import LIKELIHOODS, decoder_log_likelihood


class HierarchicalVAE(nnx.Module):
    """Two stochastic layers ``z2 (top, L2) -> z1 (L1) -> x``, ladder inference.

    Attributes:
      bu1: ``(B, *data_shape) -> (B, H)`` first bottom-up stage (``d1``, after SiLU).
      bu2: ``(B, H) -> (B, H)`` second bottom-up stage (``d2``, after SiLU).
      q2_head: ``(B, H) -> (B, 2 L2)`` parameters of ``q(z2 | x)``.
      q1_head: ``(B, H) -> (B, 2 L1)`` bottom-up estimate ``(mu_hat, logvar_hat)``.
      prior1: ``(B, L2) -> (B, 2 L1)`` parameters of ``p(z1 | z2)``.
      decoder: ``(B, L1) -> (B, *data_shape)`` logits or means.
      log_std: ``()`` Gaussian decoder's log standard deviation.

    Example:
      >>> model = HierarchicalVAE((4,), (2, 3), rngs=nnx.Rngs(0), hidden=8)
      >>> model.latent_dims, sample(jax.random.key(0), model, 5).shape
      ((2, 3), (5, 4))
    """

    def __init__(self, data_shape: Sequence[int], latent_dims: tuple[int, int], *,
                 rngs: nnx.Rngs, hidden: int = 128, likelihood: str = "bernoulli"):
        l1 = checks.positive_int("latent_dims[0]", latent_dims[0])
        l2 = checks.positive_int("latent_dims[1]", latent_dims[1])
        hidden = checks.positive_int("hidden", hidden)
        self.latent_dims = (l1, l2)
        self.data_shape = tuple(int(s) for s in data_shape)
        self.likelihood = checks.one_of("likelihood", likelihood, LIKELIHOODS)
        self.bu1 = MLPEncoder(data_shape, (hidden,), hidden, rngs=rngs)
        self.bu2 = MLP(hidden, (), hidden, rngs=rngs)
        self.q2_head = nnx.Linear(hidden, 2 * l2, rngs=rngs)
        self.q1_head = nnx.Linear(hidden, 2 * l1, rngs=rngs)
        self.prior1 = MLP(l2, (hidden,), 2 * l1, rngs=rngs)
        self.decoder = MLPDecoder(l1, (hidden,), data_shape, rngs=rngs)
        self.log_std = nnx.Param(jnp.zeros((), jnp.float32))

    def bottom_up(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        """x: (B, *data_shape) -> (mu2, logvar2, mu_hat1, logvar_hat1); (B, L2) and (B, L1)."""
        l1, l2 = self.latent_dims
        d1 = nnx.silu(self.bu1(x))  # (B, H)
        d2 = nnx.silu(self.bu2(d1))  # (B, H)
        q2 = self.q2_head(d2)  # (B, 2 L2)
        q1 = self.q1_head(d1)  # (B, 2 L1)
        return q2[:, :l2], q2[:, l2:], q1[:, :l1], q1[:, l1:]

    def prior_z1(self, z2: jax.Array) -> tuple[jax.Array, jax.Array]:
        """z2: (B, L2) -> (mu_p, logvar_p) of p(z1 | z2), each (B, L1)."""
        l1 = self.latent_dims[0]
        h = self.prior1(z2)  # (B, 2 L1)
        return h[:, :l1], h[:, l1:]

    def decode(self, z1: jax.Array) -> jax.Array:
        """z1: (B, L1) -> (B, *data_shape) logits or means."""
        return self.decoder(z1)


def precision_weighted(mu_hat: jax.Array, logvar_hat: jax.Array, mu_p: jax.Array,
                       logvar_p: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Combine a bottom-up estimate with the top-down prior (Sønderby et al. 2016, §2.2).

    ``1/v_q = 1/v_hat + 1/v_p``, ``mu_q = (mu_hat/v_hat + mu_p/v_p) v_q``.

    Args:
      mu_hat, logvar_hat, mu_p, logvar_p: (..., L1).

    Returns:
      (mu_q, logvar_q), each (..., L1).
    """
    checks.same_shape("logvar_hat", logvar_hat, "mu_hat", mu_hat)
    checks.same_shape("mu_p", mu_p, "mu_hat", mu_hat)
    checks.same_shape("logvar_p", logvar_p, "mu_hat", mu_hat)
    logvar_q = -jnp.logaddexp(-logvar_hat, -logvar_p)  # log v_q = -log(1/v_hat + 1/v_p)
    # mu_q = mu_hat * v_q / v_hat + mu_p * v_q / v_p, the weights exp(logvar_q - logvar_*) in (0, 1)
    mu_q = mu_hat * jnp.exp(logvar_q - logvar_hat) + mu_p * jnp.exp(logvar_q - logvar_p)
    return mu_q, logvar_q


def hvae_terms(model: HierarchicalVAE, x: jax.Array, eps2: jax.Array,
               eps1: jax.Array) -> dict[str, jax.Array]:
    """The ELBO's terms for one draw ``z2 = mu2 + s2 eps2``, ``z1 = mu_q + s_q eps1``.

    Args:
      model: the hierarchical VAE.
      x: (B, *data_shape).
      eps2: (B, L2) standard normal.
      eps1: (B, L1) standard normal.

    Returns:
      dict of (B,) arrays: ``log_likelihood`` (log p(x|z1)), ``kl2``, ``kl1`` and ``elbo``.

    Example:
      >>> model = HierarchicalVAE((4,), (2, 3), rngs=nnx.Rngs(0), hidden=8)
      >>> t = hvae_terms(model, jnp.full((5, 4), 0.5), jnp.zeros((5, 3)), jnp.zeros((5, 2)))
      >>> bool(jnp.allclose(t["elbo"], t["log_likelihood"] - t["kl1"] - t["kl2"], atol=1e-5))
      True
    """
    checks.shape("batch", x, (None, *model.data_shape))
    l1, l2 = model.latent_dims
    checks.shape("eps2", eps2, (x.shape[0], l2))
    checks.shape("eps1", eps1, (x.shape[0], l1))
    mu2, logvar2, mu_hat, logvar_hat = model.bottom_up(x)
    z2 = mu2 + jnp.exp(0.5 * logvar2) * eps2  # reparameterised z2 ~ q(z2|x)
    mu_p, logvar_p = model.prior_z1(z2)
    mu_q, logvar_q = precision_weighted(mu_hat, logvar_hat, mu_p, logvar_p)
    z1 = mu_q + jnp.exp(0.5 * logvar_q) * eps1  # z1 ~ q(z1|x,z2)
    log_lik = decoder_log_likelihood(model, x, model.decode(z1))  # log p(x|z1)
    kl2 = kl_diag_gaussian(mu2, logvar2)  # KL(q(z2|x) || N(0,I))
    kl1 = gaussian.kl_diag_normals(mu_q, logvar_q, mu_p, logvar_p)  # KL(q(z1|x,z2) || p(z1|z2))
    return {"log_likelihood": log_lik, "kl2": kl2, "kl1": kl1, "elbo": log_lik - kl2 - kl1}


def hvae_log_weights(model: HierarchicalVAE, x: jax.Array, eps2: jax.Array,
                     eps1: jax.Array) -> jax.Array:
    """Log importance weights of ``k`` draws from ``q(z2|x) q(z1|x,z2)``.

    Args:
      model: the hierarchical VAE.
      x: (B, *data_shape).
      eps2: (k, B, L2) standard normal.
      eps1: (k, B, L1) standard normal.

    Returns:
      (k, B) log weights ``log p(x, z1, z2) - log q(z1, z2 | x)``.
    """
    checks.shape("batch", x, (None, *model.data_shape))
    l1, l2 = model.latent_dims
    checks.shape("eps2", eps2, (None, x.shape[0], l2))
    checks.shape("eps1", eps1, (jnp.shape(eps2)[0], x.shape[0], l1))
    mu2, logvar2, mu_hat, logvar_hat = model.bottom_up(x)  # shared by the k draws

    def one(e2: jax.Array, e1: jax.Array) -> jax.Array:
        z2 = mu2 + jnp.exp(0.5 * logvar2) * e2  # (B, L2)
        mu_p, logvar_p = model.prior_z1(z2)
        mu_q, logvar_q = precision_weighted(mu_hat, logvar_hat, mu_p, logvar_p)
        z1 = mu_q + jnp.exp(0.5 * logvar_q) * e1  # (B, L1)
        log_p = (decoder_log_likelihood(model, x, model.decode(z1))  # log p(x|z1)
                 + gaussian.diag_normal_log_prob(z1, mu_p, logvar_p)  # log p(z1|z2)
                 + gaussian.standard_normal_log_prob(z2))  # log p(z2)
        log_q = (gaussian.diag_normal_log_prob(z1, mu_q, logvar_q)  # log q(z1|x,z2)
                 + gaussian.diag_normal_log_prob(z2, mu2, logvar2))  # log q(z2|x)
        return log_p - log_q

    return jax.vmap(one)(eps2, eps1)


def hvae_generate(model: HierarchicalVAE, eps2: jax.Array, eps1: jax.Array) -> jax.Array:
    """Ancestral pass ``z2 = eps2``, ``z1 = mu_p(z2) + s_p(z2) eps1``, decoder output.

    Args:
      eps2: (n, L2), eps1: (n, L1) standard normal.

    Returns:
      (n, *data_shape) decoder output (logits or means).

    Example:
      >>> model = HierarchicalVAE((4,), (2, 3), rngs=nnx.Rngs(0), hidden=8)
      >>> hvae_generate(model, jnp.zeros((5, 3)), jnp.zeros((5, 2))).shape
      (5, 4)
    """
    l1, l2 = model.latent_dims
    checks.shape("eps2", eps2, (None, l2))
    checks.shape("eps1", eps1, (jnp.shape(eps2)[0], l1))
    mu_p, logvar_p = model.prior_z1(eps2)
    z1 = mu_p + jnp.exp(0.5 * logvar_p) * eps1  # z1 ~ p(z1 | z2)
    return model.decode(z1)
