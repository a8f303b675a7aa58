"""The bijector interface, composition, and fixed permutations.

Convention (DESIGN.md, as distrax/TFP): ``forward`` maps base noise ``z`` to data ``x`` (the
sampling direction), ``inverse`` maps data to noise, and a flow's density is

    log p(x) = log N(f^{-1}(x); 0, I) + log |det d f^{-1}(x) / dx|.

Every bijector is a frozen dataclass holding only static configuration (so it is hashable
and can be a static argument of ``jax.jit``) with one uniform interface over its
parameters, a pytree that is traced wherever it goes:

    init(key) -> params                         a pytree of float arrays (trainable); a
                                                 conditioner network is held as the
                                                 flax.nnx module itself (a pytree)
    forward(params, z) -> (x, log_det)          log_det = log |det dx/dz|, shape (batch,)
    inverse(params, x) -> (z, log_det)          log_det = log |det dz/dx| = -forward's
    data_init(params, x) -> (params, z)         data-dependent initialisation (ActNorm),
                                                 then the inverse of ``x``

Inputs carry a leading batch axis: ``(batch, dim)`` for vector bijectors, ``(batch, H, W, C)``
(NHWC) for image ones.

This module holds the interface (:class:`Bijector`), composition (:class:`Chain`: ``forward``
applies ``layers[0]`` first, log-dets add) and :class:`Permutation` (a fixed permutation of
the last axis, log-det 0).
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Params = Any

__all__ = ["Bijector", "Chain", "Permutation", "sum_except_batch", "positions"]


def sum_except_batch(a: jax.Array) -> jax.Array:
    """``(batch, ...) -> (batch,)``: the sum over every axis but the first."""
    return jnp.sum(a.reshape(a.shape[0], -1), axis=1)


def positions(v: jax.Array) -> int:
    """Spatial positions per example: 1 for vectors ``(B, C)``, ``H W`` for ``(B, H, W, C)``."""
    return math.prod(v.shape[1:-1])


class Bijector(abc.ABC):
    """The uniform interface (see the module docstring). Subclasses are frozen dataclasses."""

    def init(self, key: jax.Array) -> Params:
        """Parameters; a bijector without any has ``{}``."""
        del key
        return {}

    @abc.abstractmethod
    def forward(self, params: Params, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Noise side to data side: ``z (batch, ...) -> (x (batch, ...), log_det (batch,))``."""

    @abc.abstractmethod
    def inverse(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Data side to noise side: ``x -> (z, log_det of the inverse (batch,))``."""

    def data_init(self, params: Params, x: jax.Array) -> tuple[Params, jax.Array]:
        """Data-dependent initialisation from a data-side batch ``x``; default: none.

        Returns ``(params, inverse(params, x)[0])`` so a chain can pass the batch on.
        """
        return params, self.inverse(params, x)[0]


@dataclasses.dataclass(frozen=True)
class Permutation(Bijector):
    """A fixed permutation of the last axis: ``x[..., i] = z[..., perm[i]]``; log-dets 0.

    Args:
      perm: a permutation of ``0..D-1``; :meth:`reverse` and :meth:`random` build common ones.

    Example:
      >>> b = Permutation((2, 0, 1))
      >>> x, log_det = b.forward(b.init(jax.random.key(0)), jnp.array([[10.0, 20.0, 30.0]]))
      >>> x.tolist(), log_det.tolist()
      ([[30.0, 10.0, 20.0]], [0.0])
    """

    perm: tuple[int, ...]

    def __post_init__(self) -> None:
        perm = tuple(int(p) for p in self.perm)
        if sorted(perm) != list(range(len(perm))):
            raise ValueError(f"perm must be a permutation of 0..{len(perm) - 1}, got {perm}")
        object.__setattr__(self, "perm", perm)

    @classmethod
    def reverse(cls, dim: int) -> Permutation:
        """``D-1, ..., 0``."""
        return cls(tuple(range(dim - 1, -1, -1)))

    @classmethod
    def random(cls, seed: int, dim: int) -> Permutation:
        """A permutation drawn (on the host, once) from NumPy's generator seeded ``seed``."""
        return cls(tuple(int(i) for i in np.random.default_rng(seed).permutation(dim)))

    def forward(self, params: Params, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        return z[..., np.asarray(self.perm)], jnp.zeros(z.shape[0], z.dtype)

    def inverse(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        return x[..., np.argsort(self.perm)], jnp.zeros(x.shape[0], x.dtype)


@dataclasses.dataclass(frozen=True)
class Chain(Bijector):
    """Composition: ``forward = layers[-1].forward o ... o layers[0].forward``.

        forward:  x = f_L(...f_1(z)),           log|det dx/dz| = sum_l log|det J_l|
        inverse:  z = f_1^{-1}(...f_L^{-1}(x)),  the layers backwards; log-dets add

    Params: a list, one entry per layer.

    Args:
      layers: the bijectors, in the order the forward (sampling) pass applies them.

    Example:
      >>> b = Chain((Permutation.reverse(2), Permutation.reverse(2)))  # reversing twice
      >>> x, log_det = b.forward(b.init(jax.random.key(0)), jnp.array([[1.0, 2.0]]))
      >>> x.tolist(), log_det.tolist()
      ([[1.0, 2.0]], [0.0])
    """

    layers: tuple[Bijector, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))

    def init(self, key: jax.Array) -> list[Params]:
        keys = jax.random.split(key, len(self.layers))
        return [layer.init(k) for layer, k in zip(self.layers, keys, strict=True)]

    def forward(self, params: Params, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        log_det = jnp.zeros(z.shape[0], z.dtype)
        for layer, p in zip(self.layers, params, strict=True):
            z, ld = layer.forward(p, z)
            log_det = log_det + ld
        return z, log_det

    def inverse(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        log_det = jnp.zeros(x.shape[0], x.dtype)
        for layer, p in zip(reversed(self.layers), reversed(params), strict=True):
            x, ld = layer.inverse(p, x)
            log_det = log_det + ld
        return x, log_det

    def data_init(self, params: Params, x: jax.Array) -> tuple[list[Params], jax.Array]:
        new = list(params)
        for i in reversed(range(len(self.layers))):  # data -> noise: the last layer first
            new[i], x = self.layers[i].data_init(params[i], x)
        return new, x
