"""Conditional VAE: a label in the encoder, the decoder and a learned conditional prior.

Sohn, Lee & Yan (2015), "Learning Structured Output Representation using Deep Conditional
Generative Models", NeurIPS, sec. 3 and eq. 4. With a condition ``y`` (here a class label,
fed to every network as its one-hot vector ``e_y``):

    recognition   q(z | x, y) = N(mu(x, y), diag exp(logvar(x, y)))       (encoder)
    prior         p(z | y)    = N(mu_p(y), diag exp(logvar_p(y)))         (learned, "prior net")
    generation    p(x | z, y) = Bernoulli(sigmoid(g(z, y)))  or  N(g(z, y), s^2 I)

    ELBO(x | y) = E_{q(z|x,y)}[log p(x | z, y)] - KL(q(z | x, y) || p(z | y))    (eq. 4)
                <= log p(x | y),   with  log p(x | y) - ELBO = KL(q(z|x,y) || p(z|x,y)).

The expectation is one reparameterised draw ``z = mu + exp(logvar / 2) eps``; the KL between
the two diagonal Gaussians is closed form (:func:`genjax.gaussian.kl_diag_normals`).
Sampling draws ``z ~ p(z | y)`` and returns the decoder's mean ``E[x | z, y]``.

The networks are MLPs over ``[flatten(x), e_y]`` (encoder), ``[z, e_y]`` (decoder) and
``e_y`` (prior). With no hidden layers every map is affine: then :func:`class_linear_gaussian`
gives, for each class, the exact model as a :class:`genjax.targets.LinearGaussian`, and
:func:`exact_posterior_cvae` builds the linear CVAE whose encoder *is* the exact posterior
(the exact checks of ``tests/vae/test_cvae.py``).

The model protocol (DESIGN.md): the :class:`ConditionalVAE` Module is the traced first
argument of the loss (``cvae_loss(model, (x, y), key)``) and the second of the sampler
(``cvae_sample(key, model, labels)``); new weights never recompile.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from genjax import checks, gaussian
from genjax.metrics import bits_per_dim
from genjax.model import model_jit
from genjax.nn.mlp import MLP
from genjax.targets.linear_gaussian import LinearGaussian
from genjax.vae.model import LIKELIHOODS, decoder_log_likelihood

__all__ = [
    "ConditionalVAE",
    "mlp_cvae",
    "linear_cvae",
    "exact_posterior_cvae",
    "class_linear_gaussian",
    "cvae_terms",
    "cvae_loss",
    "cvae_sample",
    "cvae_sample_from_noise",
    "cvae_reconstruct",
]


class ConditionalVAE(nnx.Module):
    """A VAE conditioned on a class label in all three networks (Sohn et al. 2015).

    Attributes:
      encoder: MLP ``(B, D + C) -> (B, 2 L)`` over ``[flatten(x), e_y]``: ``(mu, logvar)``.
      decoder: MLP ``(B, L + C) -> (B, D)`` over ``[z, e_y]``: logits or means.
      prior: MLP ``(B, C) -> (B, 2 L)`` over ``e_y``: ``(mu_p, logvar_p)`` of ``p(z | y)``.
      log_std: ``()`` log observation std (Gaussian decoder only).
      num_classes: C. latent_dim: L. data_shape: one example's shape (D = its product).
      likelihood: ``"bernoulli"`` or ``"gaussian"``.

    Example:
      >>> model = ConditionalVAE((4,), 3, 2, rngs=nnx.Rngs(0), hidden_sizes=(8,))
      >>> cvae_sample(jax.random.key(0), model, jnp.array([0, 1, 2])).shape
      (3, 4)
    """

    def __init__(self, data_shape: Sequence[int], num_classes: int, latent_dim: int, *,
                 rngs: nnx.Rngs, hidden_sizes: Sequence[int] = (256,),
                 prior_hidden_sizes: Sequence[int] = (), likelihood: str = "bernoulli",
                 log_std: float = 0.0):
        self.data_shape = tuple(int(s) for s in data_shape)
        if not self.data_shape or any(s < 1 for s in self.data_shape):
            raise ValueError(f"data_shape must be a non-empty tuple of integers >= 1, got "
                             f"{tuple(data_shape)!r}")
        self.num_classes = checks.int_in_range("num_classes", num_classes, 2, 2**31 - 1)
        self.latent_dim = checks.positive_int("latent_dim", latent_dim)
        self.likelihood = checks.one_of("likelihood", likelihood, LIKELIHOODS)
        d, c, l = math.prod(self.data_shape), self.num_classes, self.latent_dim
        hidden = tuple(hidden_sizes)
        self.encoder = MLP(d + c, hidden, 2 * l, rngs=rngs)
        self.decoder = MLP(l + c, tuple(reversed(hidden)), d, rngs=rngs)
        self.prior = MLP(c, tuple(prior_hidden_sizes), 2 * l, rngs=rngs)
        self.log_std = nnx.Param(jnp.asarray(log_std, jnp.float32))

    def one_hot(self, y: jax.Array) -> jax.Array:
        """labels ``(B,)`` int -> ``(B, C)`` one-hot ``e_y`` in the parameters' dtype."""
        return jax.nn.one_hot(y, self.num_classes, dtype=self.log_std[...].dtype)

    def encode(self, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        """x: (B, *data_shape), y: (B,) -> (mu, logvar) of q(z | x, y), each (B, L)."""
        h = self.encoder(jnp.concatenate([x.reshape(x.shape[0], -1), self.one_hot(y)], -1))
        return h[:, : self.latent_dim], h[:, self.latent_dim :]

    def prior_params(self, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        """y: (B,) -> (mu_p, logvar_p) of p(z | y), each (B, L)."""
        h = self.prior(self.one_hot(y))  # (B, 2L)
        return h[:, : self.latent_dim], h[:, self.latent_dim :]

    def decode(self, z: jax.Array, y: jax.Array) -> jax.Array:
        """z: (B, L), y: (B,) -> (B, *data_shape) logits (Bernoulli) or means (Gaussian)."""
        out = self.decoder(jnp.concatenate([z, self.one_hot(y)], -1))  # (B, D)
        return out.reshape(z.shape[0], *self.data_shape)


def mlp_cvae(data_shape: Sequence[int], num_classes: int, latent_dim: int, *, rngs: nnx.Rngs,
             hidden_sizes: Sequence[int] = (256,), prior_hidden_sizes: Sequence[int] = (),
             likelihood: str = "bernoulli") -> ConditionalVAE:
    """A :class:`ConditionalVAE` with MLP networks (decoder widths mirror the encoder's).

    Example:
      >>> model = mlp_cvae((4,), 3, 2, rngs=nnx.Rngs(0), hidden_sizes=(8,))
      >>> model.num_classes, model.latent_dim
      (3, 2)
    """
    return ConditionalVAE(data_shape, num_classes, latent_dim, rngs=rngs,
                          hidden_sizes=hidden_sizes, prior_hidden_sizes=prior_hidden_sizes,
                          likelihood=likelihood)


def linear_cvae(data_dim: int, num_classes: int, latent_dim: int, *, rngs: nnx.Rngs,
                noise_std: float = 1.0) -> ConditionalVAE:
    """Affine encoder, decoder and prior with a Gaussian decoder: a conditional pPCA.

    ``z | y ~ N(P_mu e_y + c_mu, diag exp(P_lv e_y + c_lv))``,
    ``x | z, y ~ N(W z + B e_y + b, s^2 I)``: each class is a probabilistic PCA
    (:func:`class_linear_gaussian`).

    Example:
      >>> model = linear_cvae(3, 2, 2, rngs=nnx.Rngs(0))
      >>> class_linear_gaussian(model, 1).dim
      3
    """
    checks.positive("noise_std", noise_std)
    return ConditionalVAE((checks.positive_int("data_dim", data_dim),), num_classes, latent_dim,
                          rngs=rngs, hidden_sizes=(), likelihood="gaussian",
                          log_std=math.log(noise_std))


def _linear_parts(model: ConditionalVAE) -> tuple[nnx.Linear, nnx.Linear, nnx.Linear]:
    if not (len(model.encoder.layers) == len(model.decoder.layers) == len(model.prior.layers)
            == 1) or model.likelihood != "gaussian":
        raise ValueError("model must be a linear CVAE (linear_cvae: no hidden layers, Gaussian "
                         "decoder)")
    return model.encoder.layers[0], model.decoder.layers[0], model.prior.layers[0]


def class_linear_gaussian(model: ConditionalVAE, y: int) -> LinearGaussian:
    """The exact model ``p(x, z | y)`` of a linear CVAE for class ``y``, as a pPCA in ``u``.

    With ``z = m_y + sqrt(v_y) * u`` (``u ~ N(0, I)``, ``m_y, v_y`` the prior's mean and
    variance for class y) the model is ``x = W_y u + b_y + s eps`` with
    ``W_y = W diag(sqrt v_y)`` and ``b_y = W m_y + B e_y + b`` — a
    :class:`genjax.targets.LinearGaussian`, whose ``log_prob`` is ``log p(x | y)``. A
    diagonal ``q(z) = N(m, diag e^lv)`` maps to ``q(u) = N((m - m_y)/sqrt v_y,
    diag e^(lv - lv_y))``; ELBO and KLs are invariant under this affine bijection, so its
    ``elbo`` and ``kl_to_posterior`` give the CVAE's exact ELBO and ``KL(q || p(z|x,y))``.

    Args:
      model: a :func:`linear_cvae`.
      y: the class, in ``[0, num_classes)``.

    Returns:
      the class-``y`` pPCA, built in float64 by ``LinearGaussian.create`` and stored in the
      default float dtype (float64 under x64).

    Example:
      >>> target = class_linear_gaussian(linear_cvae(3, 2, 2, rngs=nnx.Rngs(0)), 0)
      >>> target.log_prob(jnp.zeros((4, 3))).shape
      (4,)
    """
    _, dec, _ = _linear_parts(model)
    y = checks.int_in_range("y", y, 0, model.num_classes - 1)
    l = model.latent_dim
    m_y, lv_y = (np.asarray(a, np.float64)[0] for a in model.prior_params(jnp.asarray([y])))
    kernel = np.asarray(dec.kernel[...], np.float64)  # (L + C, D): [W^T ; B^T]
    w = kernel[:l].T  # (D, L)
    offset = kernel[l + y] + np.asarray(dec.bias[...], np.float64)  # B e_y + b, (D,)
    s = float(np.exp(np.asarray(model.log_std[...], np.float64)))
    return LinearGaussian.create(w * np.exp(0.5 * lv_y)[None, :], w @ m_y + offset, s)


def exact_posterior_cvae(W: Any, class_offsets: Any, prior_means: Any, prior_logvar: Any,
                         noise_std: float, *, atol: float = 1e-6) -> ConditionalVAE:
    """The linear CVAE whose encoder is the exact posterior ``p(z | x, y)``.

    Model: ``z | y ~ N(m_y, diag v)``, ``x | z, y ~ N(W z + o_y, s^2 I)`` (prior variance
    shared by the classes, so the posterior's slope in ``x`` is the same for every class and
    an encoder affine in ``[x, e_y]`` can represent it). Conditioning the joint Gaussian
    (Bishop 2006, eqs. 2.113-2.117):

        p(z | x, y) = N(m_y + A (x - W m_y - o_y), S),   S = (V^-1 + W^T W / s^2)^-1,
        A = S W^T / s^2,   V = diag v.

    ``S`` is diagonal (so a diagonal ``q`` can equal it) exactly when ``W`` has orthogonal
    columns; other ``W`` raise ``ValueError``.

    Args:
      W: (D, L) loadings with orthogonal columns.
      class_offsets: (C, D) ``o_y``.
      prior_means: (C, L) ``m_y``.
      prior_logvar: (L,) ``log v``, shared by the classes.
      noise_std: s > 0.
      atol: tolerance on the off-diagonal of ``W^T W``.

    Example:
      >>> model = exact_posterior_cvae(jnp.eye(3, 2), jnp.zeros((2, 3)), jnp.zeros((2, 2)),
      ...                              jnp.zeros(2), 0.5)
      >>> x, y = jnp.ones((2, 3)), jnp.array([0, 1])
      >>> t = cvae_terms(model, x, y, jnp.zeros((2, 2)))
      >>> t["elbo"].shape, bool(jnp.all(t["kl"] >= 0))
      ((2,), True)
    """
    w = np.asarray(W, np.float64)
    if w.ndim != 2:
        raise ValueError(f"W must have shape (D, L), got {w.shape}")
    d, l = w.shape
    offsets = np.asarray(class_offsets, np.float64)
    checks.shape("class_offsets", offsets, (None, d))
    c = offsets.shape[0]
    m = np.asarray(prior_means, np.float64)
    checks.shape("prior_means", m, (c, l))
    lv = np.asarray(prior_logvar, np.float64)
    checks.shape("prior_logvar", lv, (l,))
    checks.positive("noise_std", noise_std)
    wtw = w.T @ w
    if np.max(np.abs(wtw - np.diag(np.diag(wtw)))) > atol * max(1.0, np.max(np.abs(wtw))):
        raise ValueError("W must have orthogonal columns (W^T W diagonal) for a diagonal posterior")
    s2 = float(noise_std) ** 2
    post_var = 1.0 / (np.exp(-lv) + np.diag(wtw) / s2)  # diag S = (1/v + |W_l|^2 / s^2)^-1
    a = post_var[:, None] * w.T / s2  # (L, D), A = S W^T / s^2
    # posterior mean = A x + (m_y - A (W m_y + o_y)): the class part is the one-hot weight
    class_shift = m - (m @ w.T + offsets) @ a.T  # (C, L)
    model = linear_cvae(d, c, l, rngs=nnx.Rngs(0), noise_std=float(noise_std))
    enc, dec, prior = _linear_parts(model)
    dtype = enc.kernel[...].dtype
    # encoder kernel (D + C, 2L): rows x -> [A^T | 0], rows e_y -> [shift_y | 0];
    # bias [0 | log diag S]
    enc.kernel[...] = jnp.asarray(np.block([[a.T, np.zeros((d, l))],
                                            [class_shift, np.zeros((c, l))]]), dtype)
    enc.bias[...] = jnp.asarray(np.concatenate([np.zeros(l), np.log(post_var)]), dtype)
    dec.kernel[...] = jnp.asarray(np.concatenate([w.T, offsets], axis=0), dtype)  # (L + C, D)
    dec.bias[...] = jnp.zeros((d,), dtype)
    prior.kernel[...] = jnp.asarray(np.concatenate([m, np.zeros((c, l))], axis=1), dtype)
    prior.bias[...] = jnp.asarray(np.concatenate([np.zeros(l), lv]), dtype)
    return model


# --- the bound ------------------------------------------------------------------------------


def _check_pair(model: ConditionalVAE, x: jax.Array, y: jax.Array) -> None:
    checks.shape("x", x, (None, *model.data_shape))
    checks.integer_array("y", y)
    checks.shape("y", y, (x.shape[0],))
    checks.token_ids("y", y, model.num_classes)


def cvae_terms(model: ConditionalVAE, x: jax.Array, y: jax.Array,
               eps: jax.Array) -> dict[str, jax.Array]:
    """One-sample ELBO of each pair ``(x, y)`` with its noise given (Sohn et al. eq. 4).

    ``z = mu(x, y) + exp(logvar(x, y) / 2) eps``;
    ``ELBO = log p(x | z, y) - KL(q(z | x, y) || p(z | y))``.

    Args:
      model: a :class:`ConditionalVAE`.
      x: (B, *data_shape).
      y: (B,) int labels in ``[0, num_classes)``.
      eps: (B, L) standard normal.

    Returns:
      dict of (B,) arrays: ``log_likelihood``, ``kl``, ``elbo``.

    Example:
      >>> model = mlp_cvae((4,), 3, 2, rngs=nnx.Rngs(0), hidden_sizes=(8,))
      >>> t = cvae_terms(model, jnp.full((2, 4), 0.5), jnp.array([0, 2]), jnp.zeros((2, 2)))
      >>> bool(jnp.allclose(t["elbo"], t["log_likelihood"] - t["kl"]))
      True
    """
    _check_pair(model, x, y)
    checks.shape("eps", eps, (x.shape[0], model.latent_dim))
    mu, logvar = model.encode(x, y)  # q(z | x, y), (B, L) each
    mu_p, logvar_p = model.prior_params(y)  # p(z | y), (B, L) each
    z = mu + jnp.exp(0.5 * logvar) * eps  # reparameterisation
    log_lik = decoder_log_likelihood(model, x, model.decode(z, y))  # log p(x | z, y), (B,)
    kl = gaussian.kl_diag_normals(mu, logvar, mu_p, logvar_p)  # KL(q(z|x,y) || p(z|y)), (B,)
    return {"log_likelihood": log_lik, "kl": kl, "elbo": log_lik - kl}


def cvae_loss(model: ConditionalVAE, batch: tuple[jax.Array, jax.Array], key: jax.Array, *,
              beta: float = 1.0) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Negative conditional (beta-)ELBO, mean over the batch, in nats.

    ``loss = mean_b [-log p(x_b | z_b, y_b) + beta KL(q(z|x_b,y_b) || p(z|y_b))]``.

    Args:
      model: a :class:`ConditionalVAE` (the differentiated pytree).
      batch: ``(x (B, *data_shape), y (B,) int labels)``.
      key: noise of the one reparameterised draw, ``eps = normal(key, (B, L))``.
      beta: KL weight, >= 0 (1 is Sohn et al.'s bound).

    Returns:
      ``(loss, metrics)``: ``elbo``, ``log_likelihood``, ``kl`` (nats, batch means),
      ``bits_per_dim`` (``-elbo / (D log 2)``). One compiled program per model structure
      and shapes (model and beta traced).

    Example:
      >>> model = mlp_cvae((4,), 3, 2, rngs=nnx.Rngs(0), hidden_sizes=(8,))
      >>> batch = (jnp.full((2, 4), 0.5), jnp.array([0, 2]))
      >>> loss, metrics = cvae_loss(model, batch, jax.random.key(0))
      >>> loss.shape, bool(loss > 0)
      ((), True)
    """
    checks.nonnegative("beta", beta)
    if not isinstance(model, ConditionalVAE):
        raise ValueError(f"model must be a ConditionalVAE, got {type(model).__name__}")
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ValueError("batch must be a pair (x (B, *data_shape), y (B,) int labels)")
    _check_pair(model, *batch)
    return _cvae_loss(model, tuple(batch), key, beta=beta)


@model_jit
def _cvae_loss(model: ConditionalVAE, batch: tuple, key: jax.Array, *,
               beta: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
    x, y = batch
    eps = jax.random.normal(key, (x.shape[0], model.latent_dim), x.dtype)
    terms = cvae_terms(model, x, y, eps)
    loss = jnp.mean(-terms["log_likelihood"] + beta * terms["kl"])  # -(E log p - beta KL)
    metrics = {k: jnp.mean(v) for k, v in terms.items()}
    metrics["bits_per_dim"] = bits_per_dim(-metrics["elbo"], math.prod(model.data_shape))
    return loss, metrics


# --- sampling -------------------------------------------------------------------------------


def _mean_output(model: ConditionalVAE, out: jax.Array) -> jax.Array:
    return jax.nn.sigmoid(out) if model.likelihood == "bernoulli" else out  # E[x | z, y]


@model_jit
def cvae_sample_from_noise(model: ConditionalVAE, labels: jax.Array,
                           noise: jax.Array) -> jax.Array:
    """``z = mu_p(y) + exp(logvar_p(y) / 2) noise``, then ``E[x | z, y]``: the noise twin.

    Args:
      model: a :class:`ConditionalVAE`.
      labels: (n,) int classes.
      noise: (n, L) standard normal.

    Returns:
      (n, *data_shape) decoder means (``sigmoid(logits)`` for a Bernoulli decoder).

    Example:
      >>> model = mlp_cvae((4,), 3, 2, rngs=nnx.Rngs(0), hidden_sizes=(8,))
      >>> cvae_sample_from_noise(model, jnp.array([0, 1]), jnp.zeros((2, 2))).shape
      (2, 4)
    """
    checks.integer_array("labels", labels)
    checks.shape("labels", labels, (None,))
    checks.shape("noise", noise, (labels.shape[0], model.latent_dim))
    mu_p, logvar_p = model.prior_params(labels)  # (n, L) each
    z = mu_p + jnp.exp(0.5 * logvar_p) * noise  # z ~ p(z | y)
    return _mean_output(model, model.decode(z, labels))


def cvae_sample(key: jax.Array, model: ConditionalVAE, labels: Any) -> jax.Array:
    """One sample per label: ``z ~ p(z | y)``, ``x = E[x | z, y]`` (one compiled program).

    Args:
      key: PRNG key; the noise is ``normal(key, (n, L))``.
      model: a :class:`ConditionalVAE` (traced: new weights reuse the program).
      labels: (n,) int classes in ``[0, num_classes)``, n >= 1.

    Returns:
      (n, *data_shape).

    Example:
      >>> model = mlp_cvae((4,), 3, 2, rngs=nnx.Rngs(0), hidden_sizes=(8,))
      >>> cvae_sample(jax.random.key(0), model, jnp.array([0, 1, 1])).shape
      (3, 4)
    """
    if not isinstance(model, ConditionalVAE):
        raise ValueError(f"model must be a ConditionalVAE, got {type(model).__name__}")
    labels = jnp.asarray(labels)
    checks.integer_array("labels", labels)
    checks.ndim("labels", labels, 1, "(n,)")
    checks.positive_int("labels.shape[0]", labels.shape[0])
    checks.token_ids("labels", labels, model.num_classes)
    return _cvae_sample(key, model, labels)


@model_jit
def _cvae_sample(key: jax.Array, model: ConditionalVAE, labels: jax.Array) -> jax.Array:
    noise = jax.random.normal(key, (labels.shape[0], model.latent_dim))
    return cvae_sample_from_noise(model, labels, noise)


@model_jit
def cvae_reconstruct(model: ConditionalVAE, x: jax.Array, y: jax.Array) -> jax.Array:
    """``E[x | z = mu(x, y), y]``: decode the posterior mean. (B, ...) -> (B, ...)."""
    _check_pair(model, x, y)
    mu, _ = model.encode(x, y)
    return _mean_output(model, model.decode(mu, y))
