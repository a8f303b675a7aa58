"""Spectral normalisation by power iteration (Miyato et al. 2018), as a function and a layer.

A layer ``h -> W h`` is ``sigma(W)``-Lipschitz, ``sigma`` the largest singular value;
dividing every weight of the critic by its own ``sigma`` bounds the critic's Lipschitz
constant by 1 (for 1-Lipschitz activations). ``sigma`` is estimated by power iteration,
carrying the left vector ``u`` from one training step to the next so that one iteration per
step suffices (Miyato et al. 2018, Algorithm 1):

    v <- W^T u / ||W^T u||
    u <- W v / ||W v||
    sigma(W) ~ u^T W v,          W_SN = W / sigma(W)                       (eq. 8)

Shapes: a weight of any rank is read as a matrix with the **output features as rows**:
a dense kernel ``(in, out)`` (flax's layout) and a convolution kernel ``(kh, kw, in, out)``
(HWIO) become ``W = kernel.reshape(-1, out).T``, ``(out, in*kh*kw)``, the reshape Miyato et
al. use for convolutions. ``u`` has ``out`` entries. ``u`` and ``v`` are constants for the
gradient (``stop_gradient``), as in the paper's implementation.

In training, ``u`` is state carried from step to step: :func:`advance_spectral_vectors`
runs Algorithm 1's update of ``u`` on every :class:`SpectralNorm` layer of a model and
returns the new model (pure: the input is untouched); :func:`genjax.gan.gan_trainer` calls it
once per critic update and keeps the advanced ``u`` in its state, while the critic's loss
evaluates each layer with the stored ``u`` (``update=False``: ``sigma = ||W^T u||``, exact
once ``u`` is the top left singular vector).

References:
  Miyato, Kataoka, Koyama & Yoshida (2018), "Spectral Normalization for Generative
  Adversarial Networks", ICLR.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import checks


def _as_matrix(w: jax.Array) -> jax.Array:
    """``(..., out) -> (out, prod(...))``: rows are output features."""
    if w.ndim < 2:
        raise ValueError(f"w must have rank >= 2 (a dense or conv kernel), got shape {w.shape}")
    return w.reshape(-1, w.shape[-1]).T


def _normalize(x: jax.Array, eps: float) -> jax.Array:
    return x / (jnp.linalg.norm(x) + eps)


def _divide_by_sigma(w: jax.Array, sigma: jax.Array) -> jax.Array:
    """``W / sigma``, and ``0`` where ``sigma = 0``: the zero kernel (whose every singular
    value is 0) is its own normalisation, instead of ``0 / 0 = NaN``. The inner ``where``
    keeps the gradient finite too (the double-``where`` pattern)."""
    positive = sigma > 0
    return jnp.where(positive, w / jnp.where(positive, sigma, 1.0), jnp.zeros_like(w))


def power_iteration(
    w: jax.Array, u: jax.Array, *, num_iters: int = 1, eps: float = 1e-12
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``num_iters`` power iterations on ``W`` from ``u``: ``(sigma, u, v)``.

    Args:
      w: a kernel ``(..., out)``, read as ``W = w.reshape(-1, out).T`` ``(out, in')``.
      u: ``(out,)`` the current left singular vector estimate (any nonzero start).
      num_iters: iterations, >= 1 (static).
      eps: added to norms so that a zero vector stays finite.

    Returns:
      ``sigma`` ``()`` = ``u^T W v`` (the estimate of the top singular value), ``u`` ``(out,)``,
      ``v`` ``(in',)`` — all without gradient through ``u`` and ``v``.
    """
    num_iters = checks.positive_int("num_iters", num_iters)
    checks.positive("eps", eps)
    mat = _as_matrix(jnp.asarray(w))  # (out, in')
    checks.finite("w", w)
    u = jnp.asarray(u, mat.dtype)
    if u.shape != (mat.shape[0],):
        raise ValueError(
            f"u must have shape ({mat.shape[0]},) (the output features), got {u.shape}"
        )
    checks.finite("u", u)
    if checks.is_concrete(u) and not bool(jnp.any(u != 0)):
        raise ValueError("u must be a nonzero vector (the power iteration's start), got zeros")
    mat_c = jax.lax.stop_gradient(mat)

    def body(_, carry):
        u, _v = carry
        v = _normalize(mat_c.T @ u, eps)  # v <- W^T u / ||W^T u||
        u = _normalize(mat_c @ v, eps)  # u <- W v / ||W v||
        return u, v

    v0 = jnp.zeros((mat.shape[1],), mat.dtype)
    u, v = jax.lax.fori_loop(0, num_iters, body, (jax.lax.stop_gradient(u), v0))
    u, v = jax.lax.stop_gradient(u), jax.lax.stop_gradient(v)
    sigma = u @ mat @ v  # sigma(W) ~ u^T W v (gradient flows through W only)
    return sigma, u, v


def spectral_norm(
    w: jax.Array, u: jax.Array, *, num_iters: int = 1, eps: float = 1e-12
) -> tuple[jax.Array, jax.Array]:
    """``W_SN = W / sigma(W)`` by power iteration (Miyato et al. 2018, eq. 8 and Algorithm 1).

    Args:
      w: ``(..., out)`` a dense ``(in, out)`` or convolution ``(kh, kw, in, out)`` kernel.
      u: ``(out,)`` the left singular vector carried from the previous call.
      num_iters: power iterations, >= 1 (1 per training step in the paper).
      eps: added to vector norms.

    Returns:
      ``(w_sn, u)``: the normalised kernel (shape of ``w``) and the updated ``u``. A
      kernel whose estimated ``sigma`` is 0 (the zero kernel) is returned as zeros: it is
      already 1-Lipschitz, and ``0 / 0`` would be NaN.

    Example:
      >>> w = jnp.diag(jnp.array([3.0, 1.0]))  # sigma(W) = 3
      >>> w_sn, u = spectral_norm(w, jnp.ones(2), num_iters=50)
      >>> round(float(jnp.linalg.norm(w_sn, 2)), 4)
      1.0
    """
    sigma, u, _ = power_iteration(w, u, num_iters=num_iters, eps=eps)
    return _divide_by_sigma(w, sigma), u  # W / sigma(W); the zero kernel maps to 0


class SpectralVector(nnx.Variable):
    """The power iteration's ``u``: state, not a trainable parameter."""


class SpectralNorm(nnx.Module):
    """Wraps an ``nnx.Linear`` or ``nnx.Conv`` so that it applies ``W / sigma(W)``.

    ``u`` is explicit state (a :class:`SpectralVector`, not an ``nnx.Param``): each call
    with ``update=True`` runs ``num_iters`` power iterations and stores the new ``u`` in
    the module. The module is a pytree, so a pure step that takes it as an argument returns
    it to carry the new ``u`` out (``y, module = jax.jit(lambda m, x: (m(x), m))(module,
    x)``); ``update=False`` (evaluation) uses the stored ``u`` as it is.

    Args:
      layer: the wrapped ``nnx.Linear`` or ``nnx.Conv`` (its kernel's last axis is ``out``).
      num_iters: power iterations per call, >= 1.
      rngs: draws the initial ``u ~ N(0, I)`` (normalised).

    Example:
      >>> sn = SpectralNorm(nnx.Linear(4, 3, rngs=nnx.Rngs(0)), rngs=nnx.Rngs(1))
      >>> sn(jnp.ones((2, 4))).shape  # computed with kernel / sigma
      (2, 3)
    """

    def __init__(self, layer: nnx.Module, *, num_iters: int = 1, rngs: nnx.Rngs):
        if not isinstance(layer, (nnx.Linear, nnx.Conv)):
            raise ValueError(f"layer must be an nnx.Linear or nnx.Conv, got {type(layer).__name__}")
        self.num_iters = checks.positive_int("num_iters", num_iters)
        self.layer = layer
        out = layer.kernel[...].shape[-1]
        u0 = jax.random.normal(rngs.params(), (out,), layer.kernel[...].dtype)
        self.u = SpectralVector(u0 / jnp.linalg.norm(u0))

    def normalized_kernel(self, *, update: bool = True) -> jax.Array:
        """``W / sigma(W)``, advancing (and storing) ``u`` when ``update``."""
        kernel = self.layer.kernel[...]
        if update:
            w_sn, u = spectral_norm(kernel, self.u[...], num_iters=self.num_iters)
            self.u[...] = u
            return w_sn
        mat, u = _as_matrix(kernel), self.u[...]
        sigma = u @ mat @ _normalize(mat.T @ u, 1e-12)  # u^T W v with v = W^T u / ||W^T u||
        return _divide_by_sigma(kernel, sigma)

    def __call__(self, x: jax.Array, *, update: bool = True) -> jax.Array:
        """``x (batch, ..., in) -> (batch, ..., out)``: the wrapped layer with ``W / sigma``."""
        w = self.normalized_kernel(update=update)
        layer = self.layer
        if isinstance(layer, nnx.Linear):
            y = x @ w
        else:
            y = jax.lax.conv_general_dilated(
                x, w, window_strides=_pair(layer.strides, w.ndim - 2),
                padding=layer.padding, dimension_numbers=("NHWC", "HWIO", "NHWC"),
            )
        if layer.bias is not None:
            y = y + layer.bias[...].reshape((1,) * (y.ndim - 1) + (-1,))  # (1, ..., out)
        return y


def advance_spectral_vectors(model: nnx.Module) -> nnx.Module:
    """One step of Algorithm 1 (Miyato et al. 2018) on every :class:`SpectralNorm` of ``model``.

    For each layer, ``num_iters`` power iterations from its stored ``u`` (``v <- W^T u /
    ||W^T u||``, ``u <- W v / ||W v||``); the new ``u`` is stored in a copy of ``model``. A
    model without :class:`SpectralNorm` layers comes back as an equal copy.

    Args:
      model: an ``nnx.Module`` (any pytree of Modules); not modified.

    Returns:
      A new Module of the same structure with each layer's ``u`` advanced.

    Example:
      >>> sn = SpectralNorm(nnx.Linear(3, 2, rngs=nnx.Rngs(0)), rngs=nnx.Rngs(1))
      >>> new = advance_spectral_vectors(sn)
      >>> new.u[...].shape, bool(jnp.array_equal(new.u[...], sn.u[...]))  # sn untouched
      ((2,), False)
    """
    model = jax.tree.map(jnp.asarray, model)  # a new graph of Modules and Variables
    for _, module in nnx.iter_modules(model):
        if isinstance(module, SpectralNorm):
            _, u, _ = power_iteration(module.layer.kernel[...], module.u[...],
                                      num_iters=module.num_iters)
            module.u[...] = u
    return model


def _pair(strides, n: int) -> tuple[int, ...]:
    if strides is None:
        return (1,) * n
    if isinstance(strides, int):
        return (strides,) * n
    return tuple(strides)
