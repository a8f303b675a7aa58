"""Glow's layers: ActNorm, the invertible 1x1 convolution, squeeze, multi-scale.

* :class:`ActNorm` — activation normalisation (Kingma & Dhariwal 2018, sec. 3.1): per-channel
  ``x = z * exp(log_scale) + bias``, initialised from data so that ``inverse(x)`` has zero
  mean and unit variance per channel; log-det ``H W sum log_scale``.
* :class:`Conv1x1` — the invertible 1x1 convolution (sec. 3.2), ``x = W z`` per pixel, with
  the LU parameterisation ``W = P L (U + diag(sign * exp(log_s)))`` (eq. 10): P and sign
  fixed, L unit lower, U strictly upper; log-det ``H W sum log_s``. Also usable on vectors
  (one "pixel"), as the neural spline flow's mixing layer.
* :class:`Squeeze` and :class:`MultiScale` — RealNVP's squeeze (space-to-depth, Dinh et al.
  2017, sec. 3.6) and multi-scale architecture: after each level half of the channels are
  factored out to the base distribution.

References:
  Kingma, Dhariwal (2018). Glow: Generative Flow with Invertible 1x1 Convolutions. NeurIPS.
  Dinh, Sohl-Dickstein, Bengio (2017). Density estimation using Real NVP. ICLR.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from genjax.flows.bijectors.base import Bijector, positions

Params = Any

__all__ = ["ActNorm", "Conv1x1", "Squeeze", "MultiScale"]


@dataclasses.dataclass(frozen=True)
class ActNorm(Bijector):
    """Activation normalisation (Kingma & Dhariwal 2018, sec. 3.1, Table 1).

    forward:  x = z * exp(log_scale) + bias           log|det| = P sum log_scale
    inverse:  z = (x - bias) * exp(-log_scale)        log|det| = -P sum log_scale
    per channel (last axis), P = spatial positions (H W, or 1 for vectors).
    ``data_init`` sets ``bias = mean(x)``, ``log_scale = log std(x)`` per channel, so the
    inverse (data -> noise) output of the first batch has zero mean and unit variance.

    Args:
      channels: C, size of the last axis.

    Example:
      >>> b = ActNorm(3)
      >>> x, log_det = b.forward(b.init(jax.random.key(0)), jnp.ones((2, 4, 4, 3)))
      >>> x.shape, log_det.shape
      ((2, 4, 4, 3), (2,))
    """

    channels: int

    def init(self, key: jax.Array) -> Params:
        del key
        return {"bias": jnp.zeros(self.channels), "log_scale": jnp.zeros(self.channels)}

    def forward(self, params: Params, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        ls = params["log_scale"]  # (C,)
        scale = jnp.broadcast_to(jnp.exp(ls), z.shape)  # (B, ..., C), explicit broadcast
        x = z * scale + jnp.broadcast_to(params["bias"], z.shape)
        return x, jnp.full(z.shape[0], positions(z) * jnp.sum(ls), z.dtype)

    def inverse(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        ls = params["log_scale"]  # (C,)
        shift = jnp.broadcast_to(params["bias"], x.shape)  # (B, ..., C), explicit broadcast
        z = (x - shift) * jnp.broadcast_to(jnp.exp(-ls), x.shape)
        return z, jnp.full(x.shape[0], -positions(x) * jnp.sum(ls), x.dtype)

    def data_init(self, params: Params, x: jax.Array) -> tuple[Params, jax.Array]:
        axes = tuple(range(x.ndim - 1))
        mean = jnp.mean(x, axis=axes)
        std = jnp.std(x, axis=axes)
        params = {"bias": mean, "log_scale": jnp.log(std + 1e-6)}
        return params, self.inverse(params, x)[0]


@dataclasses.dataclass(frozen=True)
class Conv1x1(Bijector):
    """Invertible 1x1 convolution (Kingma & Dhariwal 2018, sec. 3.2), optionally LU.

    forward: x[..., :] = W z[..., :] at every position, log|det| = P log|det W|;
    inverse: z = W^{-1} x, log|det| = -P log|det W|.

    LU (eq. 10): ``W = Perm L (U + diag(sign * exp(log_s)))`` with ``Perm`` (the channel
    reversal) and ``sign`` (+1) fixed, L unit lower triangular, U strictly upper; then
    ``log|det W| = sum log_s`` (O(C) instead of O(C^3)), and the inverse is two
    triangular solves. Without LU, W is a free matrix (``slogdet``). Works on vectors too.

    Args:
      channels: C.
      lu: use the LU parameterisation.

    Example:
      >>> b = Conv1x1(3)
      >>> params, z = b.init(jax.random.key(0)), jnp.ones((2, 4, 4, 3))
      >>> x, log_det = b.forward(params, z)
      >>> bool(jnp.allclose(b.inverse(params, x)[0], z, atol=1e-4))
      True
    """

    channels: int
    lu: bool = True

    def init(self, key: jax.Array) -> Params:
        c = self.channels
        if not self.lu:
            q, _ = jnp.linalg.qr(jax.random.normal(key, (c, c)))  # a random rotation
            return {"weight": q}
        k1, k2 = jax.random.split(key)
        # Small random triangular parts: a well-conditioned start near the permutation.
        return {
            "lower": 0.1 * jax.random.normal(k1, (c, c)),
            "upper": 0.1 * jax.random.normal(k2, (c, c)),
            "log_s": jnp.zeros(c),
        }

    def _lu(self, params: Params) -> tuple[jax.Array, jax.Array]:
        c = self.channels
        eye = jnp.eye(c, dtype=params["lower"].dtype)
        lower = jnp.tril(params["lower"], -1) + eye  # unit lower triangular L
        upper = jnp.triu(params["upper"], 1) + jnp.diag(jnp.exp(params["log_s"]))  # U + diag(s)
        return lower, upper

    def weight(self, params: Params) -> jax.Array:
        """W ``(C, C)``."""
        if not self.lu:
            return params["weight"]
        lower, upper = self._lu(params)
        return (lower @ upper)[::-1]  # Perm L (U + diag s): Perm reverses the rows

    def _log_abs_det(self, params: Params) -> jax.Array:
        if not self.lu:
            return jnp.linalg.slogdet(params["weight"])[1]
        return jnp.sum(params["log_s"])  # log|det W| = sum log|s| (det Perm = +-1, det L = 1)

    def forward(self, params: Params, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        if z.shape[-1] != self.channels:
            raise ValueError(f"input must have {self.channels} channels, got {z.shape}")
        w = self.weight(params)
        x = jnp.einsum("...c,dc->...d", z, w)  # x_d = sum_c W_dc z_c
        return x, jnp.full(z.shape[0], positions(z) * self._log_abs_det(params), z.dtype)

    def inverse(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        if x.shape[-1] != self.channels:
            raise ValueError(f"input must have {self.channels} channels, got {x.shape}")
        flat = x.reshape(-1, self.channels).T  # (C, N): one column per position
        if self.lu:
            lower, upper = self._lu(params)
            v = flat[::-1]  # Perm^{-1} x (the reversal is its own inverse)
            v = jax.scipy.linalg.solve_triangular(lower, v, lower=True, unit_diagonal=True)
            v = jax.scipy.linalg.solve_triangular(upper, v, lower=False)
        else:
            v = jnp.linalg.solve(params["weight"], flat)
        z = v.T.reshape(x.shape)
        return z, jnp.full(x.shape[0], -positions(x) * self._log_abs_det(params), x.dtype)


@dataclasses.dataclass(frozen=True)
class Squeeze(Bijector):
    """RealNVP's squeeze (Dinh et al. 2017, sec. 3.6) as a bijector; log-dets 0.

    inverse (data -> noise, space-to-depth): ``(B, H, W, C) -> (B, H/2, W/2, 4C)``, each
    2x2 block of pixels stacked into channels; forward: depth-to-space, the exact reverse.

    Example:
      >>> b = Squeeze()
      >>> z, log_det = b.inverse(b.init(jax.random.key(0)), jnp.ones((2, 4, 4, 1)))
      >>> z.shape, log_det.tolist()  # space to depth, volume preserved
      ((2, 2, 2, 4), [0.0, 0.0])
    """

    def inverse(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        if x.ndim != 4:
            raise ValueError(f"x must be a batch of images (B, H, W, C), got shape {x.shape}")
        b, h, w, c = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"x: squeeze needs even H and W, got H={h}, W={w}")
        y = x.reshape(b, h // 2, 2, w // 2, 2, c)  # (B, H/2, 2, W/2, 2, C)
        y = y.transpose(0, 1, 3, 2, 4, 5)  # (B, H/2, W/2, 2, 2, C)
        return y.reshape(b, h // 2, w // 2, 4 * c), jnp.zeros(b, x.dtype)

    def forward(self, params: Params, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        if z.ndim != 4:
            raise ValueError(f"z must be a batch of images (B, H, W, C), got shape {z.shape}")
        b, h, w, c4 = z.shape
        if c4 % 4:
            raise ValueError(f"z: unsqueeze needs channels divisible by 4, got {c4}")
        y = z.reshape(b, h, w, 2, 2, c4 // 4)  # (B, H, W, 2, 2, C)
        y = y.transpose(0, 1, 3, 2, 4, 5)  # (B, H, 2, W, 2, C)
        return y.reshape(b, 2 * h, 2 * w, c4 // 4), jnp.zeros(b, z.dtype)


@dataclasses.dataclass(frozen=True)
class MultiScale(Bijector):
    """RealNVP/Glow multi-scale architecture (Dinh et al. 2017, sec. 3.6; Glow, Fig. 2).

    inverse (data -> noise), for levels l = 1..L:

        h <- squeeze(h);  h <- levels[l].inverse(h);
        if l < L: (z_l, h) <- split channels in halves, z_l factored out

    and the noise is ``concat(flat(z_1), ..., flat(z_{L-1}), flat(h))`` — a vector of the
    image's size ``H W C``. forward is the reverse. The factored-out halves go straight
    to the standard normal base (RealNVP's choice; Glow's learned split prior is not used).

    Args:
      levels: one bijector per level, acting on that level's squeezed images.
      image_shape: data shape ``(H, W, C)``; H and W divisible by ``2^L``.

    Example:
      >>> b = MultiScale((ActNorm(4),), (4, 4, 1))  # one level on the squeezed (2, 2, 4) images
      >>> x, log_det = b.forward(b.init(jax.random.key(0)), jnp.ones((2, 16)))  # z: (B, HWC)
      >>> x.shape, log_det.shape
      ((2, 4, 4, 1), (2,))
    """

    levels: tuple[Bijector, ...]
    image_shape: tuple[int, int, int]

    def __post_init__(self) -> None:
        h, w, c = (int(s) for s in self.image_shape)
        n = len(self.levels)
        if n < 1:
            raise ValueError("levels must hold at least one bijector")
        if len(self.image_shape) != 3 or h % 2**n or w % 2**n:
            raise ValueError(
                f"image_shape: H and W must be divisible by 2^levels = {2**n}, "
                f"got {self.image_shape}"
            )
        object.__setattr__(self, "levels", tuple(self.levels))
        object.__setattr__(self, "image_shape", (h, w, c))

    def level_shapes(self) -> list[tuple[int, int, int]]:
        """The squeezed shape each level acts on."""
        h, w, c = self.image_shape
        shapes = []
        for i in range(len(self.levels)):
            h, w, c = h // 2, w // 2, 4 * c
            shapes.append((h, w, c))
            if i < len(self.levels) - 1:
                c //= 2
        return shapes

    def init(self, key: jax.Array) -> Params:
        keys = jax.random.split(key, len(self.levels))
        return [lvl.init(k) for lvl, k in zip(self.levels, keys, strict=True)]

    def _run_inverse(self, params: Params, x: jax.Array,
                     data_init: bool) -> tuple[jax.Array, jax.Array, list]:
        if x.shape[1:] != self.image_shape:
            raise ValueError(f"x must have shape (batch, *{self.image_shape}), got {x.shape}")
        b = x.shape[0]
        h, zs, log_det, new = x, [], jnp.zeros(b, x.dtype), []
        for i, (lvl, p) in enumerate(zip(self.levels, params, strict=True)):
            h = Squeeze().inverse({}, h)[0]
            if data_init:
                p, h = lvl.data_init(p, h)
                new.append(p)
            else:
                h, ld = lvl.inverse(p, h)
                log_det = log_det + ld
            if i < len(self.levels) - 1:
                c = h.shape[-1] // 2
                zs.append(h[..., :c].reshape(b, -1))  # factored out: (B, h w c/2)
                h = h[..., c:]
        zs.append(h.reshape(b, -1))
        return jnp.concatenate(zs, axis=1), log_det, new  # (B, H W C)

    def inverse(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        z, log_det, _ = self._run_inverse(params, x, data_init=False)
        return z, log_det

    def data_init(self, params: Params, x: jax.Array) -> tuple[Params, jax.Array]:
        z, _, new = self._run_inverse(params, x, data_init=True)
        return new, z

    def forward(self, params: Params, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        size = math.prod(self.image_shape)
        if z.ndim != 2 or z.shape[1] != size:
            raise ValueError(f"z must have shape (batch, {size}), got {z.shape}")
        b = z.shape[0]
        shapes = self.level_shapes()
        # Sizes of the noise chunks, in the order inverse() concatenates them.
        sizes = [math.prod(s) // 2 for s in shapes[:-1]] + [math.prod(shapes[-1])]
        offsets = np.cumsum([0, *sizes])
        log_det = jnp.zeros(b, z.dtype)
        h = None
        for i in reversed(range(len(self.levels))):
            hh, ww, cc = shapes[i]
            chunk = z[:, offsets[i] : offsets[i + 1]]
            if h is None:
                h = chunk.reshape(b, hh, ww, cc)
            else:
                h = jnp.concatenate([chunk.reshape(b, hh, ww, cc // 2), h], axis=-1)
            h, ld = self.levels[i].forward(params[i], h)
            log_det = log_det + ld
            h = Squeeze().forward({}, h)[0]
        return h, log_det
