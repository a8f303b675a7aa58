"""Vector quantisation: VQ-VAE (van den Oord et al. 2017) with the EMA codebook update.

Quantiser (van den Oord et al. 2017, eq. 1-2): each encoder output ``z_e`` is replaced by
its nearest codebook vector,

    k* = argmin_k |z_e - e_k|^2,      z_q = e_{k*},

and the gradient passes straight through (eq. 2's "copy gradients"): in the forward pass
``z_q``, in the backward pass ``d z_q / d z_e = I``, written ``z_q = z_e + sg(e_{k*} - z_e)``.

Loss (eq. 3), with genjax's reduction (sum over data / latent dims, mean over the batch):

    L = -log p(x | z_q) + |sg(z_e) - e|^2 + beta |z_e - sg(e)|^2,   beta = 0.25

where the reconstruction term is the squared error ``|x - x_hat|^2`` (a Gaussian decoder
of fixed variance 1/2, up to a constant). The middle (codebook) term is dropped when the
codebook is learned by exponential moving averages (appendix A.1 of van den Oord et al.
2017; Razavi et al. 2019, appendix): with ``n_k`` the number of vectors assigned to code k
in the batch and ``s_k`` their sum,

    N_k <- gamma N_k + (1 - gamma) n_k
    m_k <- gamma m_k + (1 - gamma) s_k
    e_k = m_k / N~_k,   N~_k = (N_k + eps) / (sum_j N_j + K eps) * sum_j N_j   (Laplace)

With ``gamma = 0`` and ``eps = 0`` one update is exactly a k-means (Lloyd) step; a code
with no vector assigned keeps its old value (rather than 0/0). Dead codes — EMA cluster
size below a threshold — are reset to randomly chosen encoder outputs of the batch
(the restart of Williams et al. 2020 / Dhariwal et al. 2020). Codebook usage is reported
as the perplexity ``exp(-sum_k p_k log p_k)`` of the batch's code frequencies.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import checks
from genjax.model import model_jit
from genjax.nn.autoencoders import MLPDecoder, MLPEncoder


def _check_codebook(z_e: jax.Array, codebook: jax.Array) -> None:
    if codebook.ndim != 2 or codebook.shape[0] < 1:
        raise ValueError(f"codebook must have shape (K, D) with K >= 1, got {codebook.shape}")
    if z_e.ndim < 1 or z_e.shape[-1] != codebook.shape[1]:
        raise ValueError(
            f"z_e must have shape (..., D={codebook.shape[1]}) to match codebook {codebook.shape}, "
            f"got {z_e.shape}"
        )


def nearest_code(z_e: jax.Array, codebook: jax.Array) -> jax.Array:
    """Index of the nearest codebook vector, ``argmin_k |z_e - e_k|^2`` (ties: lowest k).

    Args:
      z_e: (..., D); codebook: (K, D).

    Returns:
      (...) int32 indices.
    """
    _check_codebook(z_e, codebook)
    # |z - e|^2 = |z|^2 - 2 z.e + |e|^2; |z|^2 is the same for every k and dropped
    lead = (1,) * (z_e.ndim - 1)
    sq_norms = jnp.sum(codebook**2, axis=-1).reshape(*lead, -1)  # (1.., K)
    scores = sq_norms - 2.0 * z_e @ codebook.T  # (..., K)
    return jnp.argmin(scores, axis=-1).astype(jnp.int32)


def vector_quantize(z_e: jax.Array, codebook: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Quantise with the straight-through gradient (van den Oord et al. 2017, eq. 1-2).

    Args:
      z_e: (..., D) encoder outputs.
      codebook: (K, D).

    Returns:
      ``(z_q, indices)``: ``z_q (..., D)`` equal to ``codebook[indices]`` in value, with
      ``d z_q / d z_e = I`` and no gradient to the codebook; ``indices (...)`` int32.
    """
    indices = nearest_code(z_e, codebook)
    e = jnp.take(codebook, indices, axis=0)  # (..., D), e_{k*}
    return z_e + jax.lax.stop_gradient(e - z_e), indices  # straight-through estimator


def codebook_perplexity(indices: jax.Array, num_codes: int) -> jax.Array:
    """``exp(-sum_k p_k log p_k)`` of the code frequencies ``p`` in ``indices`` (any shape).

    Between 1 (one code used) and ``num_codes`` (uniform use). ``indices`` must be
    integer codes in ``[0, num_codes)`` (checked when concrete: ``bincount`` would drop
    the others silently), at least one of them.
    """
    num_codes = checks.positive_int("num_codes", num_codes)
    indices = jnp.asarray(indices)
    if indices.size == 0:
        raise ValueError("indices must hold at least one code, got an empty array")
    checks.token_ids("indices", jnp.asarray(indices), num_codes)
    counts = jnp.bincount(indices.reshape(-1), length=num_codes)  # (K,)
    p = counts / indices.size
    return jnp.exp(-jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0)))


class EMAState(NamedTuple):
    """Running statistics of the EMA codebook (appendix A.1)."""

    cluster_size: jax.Array  # (K,) N_k, EMA of the number of vectors assigned to code k
    embed_sum: jax.Array  # (K, D) m_k, EMA of the sum of those vectors


def ema_init(codebook: jax.Array) -> EMAState:
    """Statistics that reproduce ``codebook`` (``N_k = 1``, ``m_k = e_k``)."""
    return EMAState(jnp.ones(codebook.shape[:1], codebook.dtype), codebook)


def ema_update(state: EMAState, codebook: jax.Array, z_e: jax.Array, indices: jax.Array, *,
               decay: float = 0.99, epsilon: float = 1e-5) -> tuple[EMAState, jax.Array]:
    """One EMA codebook update (van den Oord et al. 2017, appendix A.1; Razavi et al. 2019).

    Args:
      state: the running ``(N, m)``.
      codebook: (K, D) current codebook (kept for codes whose smoothed count is 0).
      z_e: (..., D) encoder outputs of the batch.
      indices: (...) their assigned codes.
      decay: gamma in [0, 1).
      epsilon: Laplace smoothing >= 0.

    Returns:
      ``(new_state, new_codebook)``.
    """
    checks.in_range("decay", decay, 0.0, 1.0, high_open=True)
    checks.nonnegative("epsilon", epsilon)
    _check_codebook(z_e, codebook)
    num_codes, dim = codebook.shape
    checks.shape("indices", indices, z_e.shape[:-1])
    checks.token_ids("indices", jnp.asarray(indices), num_codes)  # one_hot drops others
    flat = z_e.reshape(-1, dim)  # (n, D)
    onehot = jax.nn.one_hot(indices.reshape(-1), num_codes, dtype=flat.dtype)  # (n, K)
    n_k = jnp.sum(onehot, axis=0)  # (K,)
    s_k = onehot.T @ flat  # (K, D)
    size = decay * state.cluster_size + (1.0 - decay) * n_k  # N_k
    embed_sum = decay * state.embed_sum + (1.0 - decay) * s_k  # m_k
    total = jnp.sum(size)
    smoothed = (size + epsilon) / (total + num_codes * epsilon) * total  # Laplace smoothing
    safe = jnp.where(smoothed > 0, smoothed, 1.0)
    new_codebook = jnp.where((smoothed > 0)[:, None], embed_sum / safe[:, None], codebook)
    return EMAState(size, embed_sum), new_codebook


def reset_dead_codes(key: jax.Array, state: EMAState, codebook: jax.Array, z_e: jax.Array, *,
                     threshold: float = 1.0) -> tuple[EMAState, jax.Array, jax.Array]:
    """Restart codes whose EMA cluster size ``N_k < threshold`` at random batch vectors.

    A restarted code k takes ``e_k = z`` for a uniformly drawn encoder output ``z`` of the
    batch, with ``N_k = 1, m_k = z``.

    Args:
      key: PRNG key for the choice of vectors.
      state, codebook: as in :func:`ema_update`.
      z_e: (..., D) encoder outputs.
      threshold: >= 0.

    Returns:
      ``(state, codebook, num_reset)``.
    """
    checks.nonnegative("threshold", threshold)
    _check_codebook(z_e, codebook)
    num_codes, dim = codebook.shape
    flat = z_e.reshape(-1, dim)
    pick = jax.random.randint(key, (num_codes,), 0, flat.shape[0])
    candidates = jax.lax.stop_gradient(flat[pick])  # (K, D)
    dead = state.cluster_size < threshold  # (K,)
    codebook = jnp.where(dead[:, None], candidates, codebook)
    state = EMAState(jnp.where(dead, 1.0, state.cluster_size),
                     jnp.where(dead[:, None], candidates, state.embed_sum))
    return state, codebook, jnp.sum(dead)


class CodeCounts(nnx.Variable):
    """EMA counts of code use per latent position (the toy prior for sampling)."""


class VQVAE(nnx.Module):
    """VQ-VAE with ``M`` latent vectors of size ``D`` and a codebook of ``K`` codes.

    Attributes:
      encoder: ``(B, *data_shape) -> (B, M D)``, reshaped to ``z_e (B, M, D)``.
      codebook: ``(K, D)`` Param.
      decoder: ``(B, M D) -> (B, *data_shape)`` means.
      code_counts: ``(M, K)`` running code use per position; :func:`genjax.vae.sample`
        draws each position's code independently from it (a toy stand-in for the
        autoregressive prior of the paper).

    Example:
      >>> model = VQVAE((4,), num_latents=2, code_dim=3, num_codes=5, rngs=nnx.Rngs(0),
      ...               hidden_sizes=(8,))
      >>> vqvae_terms(model, jnp.zeros((1, 4)))["indices"].shape
      (1, 2)
    """

    def __init__(self, data_shape: Sequence[int], *, num_latents: int, code_dim: int,
                 num_codes: int, rngs: nnx.Rngs, hidden_sizes: Sequence[int] = (256,)):
        self.num_latents = checks.positive_int("num_latents", num_latents)
        self.code_dim = checks.positive_int("code_dim", code_dim)
        self.num_codes = checks.positive_int("num_codes", num_codes)
        self.data_shape = tuple(int(s) for s in data_shape)
        width = self.num_latents * self.code_dim
        self.encoder = MLPEncoder(data_shape, hidden_sizes, width, rngs=rngs)
        self.decoder = MLPDecoder(width, tuple(reversed(tuple(hidden_sizes))), data_shape,
                                  rngs=rngs)
        self.codebook = nnx.Param(
            jax.random.normal(rngs.params(), (self.num_codes, self.code_dim)))
        self.code_counts = CodeCounts(jnp.ones((self.num_latents, self.num_codes)))

    def encode(self, x: jax.Array) -> jax.Array:
        """x: (B, *data_shape) -> z_e: (B, M, D)."""
        return self.encoder(x).reshape(x.shape[0], self.num_latents, self.code_dim)

    def decode(self, z_q: jax.Array) -> jax.Array:
        """z_q: (B, M, D) -> (B, *data_shape)."""
        return self.decoder(z_q.reshape(z_q.shape[0], -1))


def vqvae_terms(model: VQVAE, x: jax.Array) -> dict[str, jax.Array]:
    """Per-example terms of eq. 3 and the quantities the EMA update needs.

    Args:
      model: a :class:`VQVAE`.
      x: (B, *data_shape).

    Returns:
      dict: ``reconstruction``, ``codebook``, ``commitment`` (each (B,)), ``z_e (B, M, D)``,
      ``indices (B, M)``, ``x_hat``.

    Example:
      >>> model = VQVAE((4,), num_latents=2, code_dim=3, num_codes=5, rngs=nnx.Rngs(0),
      ...               hidden_sizes=(8,))
      >>> t = vqvae_terms(model, jnp.zeros((6, 4)))
      >>> t["z_e"].shape, t["x_hat"].shape, t["codebook"].shape
      ((6, 2, 3), (6, 4), (6,))
    """
    checks.shape("batch", x, (None, *model.data_shape))
    codebook = model.codebook[...]
    z_e = model.encode(x)  # (B, M, D)
    z_q, indices = vector_quantize(z_e, codebook)
    x_hat = model.decode(z_q)
    e = jnp.take(codebook, indices, axis=0)  # (B, M, D), gradient to the codebook
    recon = jnp.sum((x - x_hat).reshape(x.shape[0], -1) ** 2, axis=-1)  # |x - x_hat|^2
    codebook_term = jnp.sum((jax.lax.stop_gradient(z_e) - e) ** 2, axis=(1, 2))  # |sg(z_e) - e|^2
    commit = jnp.sum((z_e - jax.lax.stop_gradient(e)) ** 2, axis=(1, 2))  # |z_e - sg(e)|^2
    return {"reconstruction": recon, "codebook": codebook_term, "commitment": commit,
            "z_e": z_e, "indices": indices, "x_hat": x_hat}


def vqvae_loss(model: VQVAE, batch: jax.Array, key: jax.Array, *, beta: float = 0.25,
               codebook_loss: bool = True) -> tuple[jax.Array, dict[str, jax.Array]]:
    """VQ-VAE objective (eq. 3), mean over the batch.

    ``loss = mean_b [|x - x_hat|^2 + |sg(z_e) - e|^2 + beta |z_e - sg(e)|^2]``; with
    ``codebook_loss=False`` the middle term is left out (the codebook then follows
    :func:`ema_update`).

    Args:
      model: a :class:`VQVAE` (the differentiated pytree).
      batch: (B, *data_shape).
      key: unused (the quantiser is deterministic); kept for the common signature.
      beta: commitment weight, >= 0.
      codebook_loss: include the codebook term.

    Returns:
      ``(loss, metrics)`` with ``reconstruction``, ``codebook``, ``commitment`` and
      ``perplexity``.

    Example:
      >>> model = VQVAE((4,), num_latents=2, code_dim=3, num_codes=5, rngs=nnx.Rngs(0),
      ...               hidden_sizes=(8,))
      >>> loss, metrics = vqvae_loss(model, jnp.zeros((6, 4)), jax.random.key(0))
      >>> loss.shape, bool(loss >= 0)
      ((), True)
    """
    checks.nonnegative("beta", beta)
    checks.shape("batch", batch, (None, *model.data_shape))
    checks.finite("batch", batch)  # when concrete
    return _vqvae_loss(model, batch, key, beta=beta, codebook_loss=codebook_loss)


@functools.partial(model_jit, static_argnames=("codebook_loss",))
def _vqvae_loss(model: VQVAE, batch: jax.Array, key: jax.Array, *, beta: Any,
                codebook_loss: bool) -> tuple[jax.Array, dict[str, jax.Array]]:
    del key
    t = vqvae_terms(model, batch)
    per_example = t["reconstruction"] + beta * t["commitment"]
    if codebook_loss:
        per_example = per_example + t["codebook"]
    metrics = {name: jnp.mean(t[name]) for name in ("reconstruction", "codebook", "commitment")}
    metrics["perplexity"] = codebook_perplexity(t["indices"], model.num_codes)
    return jnp.mean(per_example), metrics
