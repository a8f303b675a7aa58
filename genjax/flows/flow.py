"""A normalizing flow: a bijector over a standard normal base, and its builders.

    z ~ N(0, I),  x = f(z)                                   (sample: ``forward``)
    log p(x) = log N(f^{-1}(x); 0, I) + log |det d f^{-1}(x) / dx|     (``log_prob``)

trained by maximum likelihood: the loss is the mean negative log-likelihood of a batch
(Dinh et al. 2017, eq. 3; Papamakarios et al. 2021, sec. 2.3).

Builders, each a :class:`Flow` over the bijectors of :mod:`genjax.flows.bijectors`:

* :func:`nice` — additive couplings, alternating halves, then a diagonal scale (NICE).
* :func:`realnvp` — affine couplings, alternating halves (RealNVP).
* :func:`glow` — multi-scale Glow on NHWC images: per level, squeeze then steps of
  ActNorm -> invertible 1x1 conv (LU) -> affine coupling (data -> noise order).
* :func:`maf` / :func:`iaf` — MADE-conditioned autoregressive layers, the order reversed
  from one layer to the next.
* :func:`neural_spline` — rational-quadratic spline couplings with an LU linear layer in
  between (RQ-NSF (C), Durkan et al. 2019).

References:
  Papamakarios, Nalisnick, Rezende, Mohamed, Lakshminarayanan (2021). Normalizing Flows
  for Probabilistic Modeling and Inference. JMLR.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from genjax import checks, gaussian
from genjax.flows import bijectors as bj

Params = Any

__all__ = ["Flow", "nice", "realnvp", "glow", "maf", "iaf", "neural_spline", "planar", "radial"]


def base_log_prob(z: jax.Array) -> jax.Array:
    """``log N(z; 0, I)`` over every axis but the batch axis: ``(B, ...) -> (B,)``."""
    return gaussian.standard_normal_log_prob(z.reshape(z.shape[0], -1))


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class Flow:
    """A bijector ``f`` pushing ``N(0, I)`` on ``base_shape`` forward to data of ``event_shape``.

    The flow itself is static configuration (hashable, a pytree without leaves); everything
    trainable is in ``params``, an ordinary traced argument of every method: ``forward``,
    ``inverse``, ``log_prob``, ``sample`` and ``sample_and_log_prob`` each compile once per
    flow and shapes, and new parameters of the same shapes reuse that program (their
    arrays are arguments of it, never constants baked in).

    Where a *model* is wanted (DESIGN.md, "One model protocol"), bind the parameters:
    ``jax.tree_util.Partial(flow.log_prob, params)`` is a callable pytree
    ``model(x (batch, *event_shape)) -> log p(x) (batch,)`` whose leaves are ``params``,
    e.g. as the ``log_prob`` model of an MCMC sampler.

    Attributes:
      bijector: ``f``, noise -> data.
      event_shape: shape of one data example, e.g. ``(2,)`` or ``(8, 8, 1)``.
      base_shape: shape of one noise example (``event_shape`` unless the bijector reshapes,
        as the multi-scale Glow does: ``(H W C,)``).

    Example:
      >>> flow = realnvp(2, num_layers=4)
      >>> params = flow.init(jax.random.key(0))
      >>> x = flow.sample(jax.random.key(1), params, 5)       # (5, 2)
      >>> flow.log_prob(params, x).shape
      (5,)
    """

    bijector: bj.Bijector
    event_shape: tuple[int, ...]
    base_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "event_shape", tuple(int(s) for s in self.event_shape))
        base = self.event_shape if self.base_shape is None else self.base_shape
        object.__setattr__(self, "base_shape", tuple(int(s) for s in base))

    def init(self, key: jax.Array, data: jax.Array | None = None) -> Params:
        """Parameters; with ``data (n, *event_shape)``, ActNorm layers are initialised
        from it (Glow's data-dependent initialisation)."""
        if data is not None:
            checks.shape("data", data, (None, *self.event_shape))
        params = self.bijector.init(key)
        if data is not None:
            # One compiled pass (eagerly, each small op of every layer would dispatch alone).
            params, _ = jax.jit(self.bijector.data_init)(params, jnp.asarray(data))
        return params

    @functools.partial(jax.jit, static_argnames=("self",))
    def forward(self, params: Params, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``z (B, *base_shape) -> (x (B, *event_shape), log|det dx/dz| (B,))``."""
        checks.shape("z", z, (None, *self.base_shape))
        return self.bijector.forward(params, z)

    @functools.partial(jax.jit, static_argnames=("self",))
    def inverse(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``x (B, *event_shape) -> (z (B, *base_shape), log|det dz/dx| (B,))``."""
        checks.shape("x", x, (None, *self.event_shape))
        return self.bijector.inverse(params, x)

    @functools.partial(jax.jit, static_argnames=("self",))
    def log_prob(self, params: Params, x: jax.Array) -> jax.Array:
        """``log p(x) = log N(f^{-1}(x); 0, I) + log|det d f^{-1}/dx|`` of ``x (B, *event_shape)``:
        ``(B,)``."""
        if x.shape[1:] != self.event_shape:
            raise ValueError(f"x must have shape (batch, *{self.event_shape}), got {x.shape}")
        z, log_det = self.bijector.inverse(params, x)
        return base_log_prob(z) + log_det  # change of variables

    def _base_draw(self, key: jax.Array, n: int) -> jax.Array:
        checks.positive_int("n", n)
        return jax.random.normal(key, (n, *self.base_shape))  # z ~ N(0, I): (n, *base_shape)

    @functools.partial(jax.jit, static_argnames=("self", "n"))
    def sample_and_log_prob(
        self, key: jax.Array, params: Params, n: int
    ) -> tuple[jax.Array, jax.Array]:
        """``n`` samples ``(n, *event_shape)`` and their log-density ``(n,)`` in one pass:
        ``log p(x) = log N(z) - log|det dx/dz|``. The noise twin is :meth:`forward` on
        ``z = jax.random.normal(key, (n, *base_shape))``."""
        z = self._base_draw(key, n)
        x, log_det = self.bijector.forward(params, z)
        return x, base_log_prob(z) - log_det

    @functools.partial(jax.jit, static_argnames=("self", "n"))
    def sample(self, key: jax.Array, params: Params, n: int) -> jax.Array:
        """``n`` samples ``(n, *event_shape)``: ``x = f(z)``, ``z ~ N(0, I)`` drawn as
        ``jax.random.normal(key, (n, *base_shape))`` (so :meth:`forward` on that ``z`` is the
        noise twin)."""
        return self.bijector.forward(params, self._base_draw(key, n))[0]

    def loss(self, params: Params, batch: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
        """Maximum likelihood: ``mean_i -log p(x_i)`` over ``batch (B, *event_shape)``.

        Returns ``(loss, {"nll": ..., "bits_per_dim": ...})``; ``key`` is unused (the
        objective is deterministic) and kept for the uniform loss signature
        ``loss(model, batch, key)`` with the parameters as the model.
        """
        del key
        if jnp.shape(batch)[1:] != self.event_shape:
            raise ValueError(
                f"batch must have shape (batch, *{self.event_shape}), got {jnp.shape(batch)}"
            )
        nll = -jnp.mean(self.log_prob(params, batch))
        dims = math.prod(self.event_shape)
        return nll, {"nll": nll, "bits_per_dim": nll / (dims * math.log(2.0))}


def _alternating(make: Callable[[bool], bj.Bijector], num_layers: int) -> tuple[bj.Bijector, ...]:
    """``num_layers`` layers ``make(swap)``, ``swap`` alternating False, True, ..."""
    checks.positive_int("num_layers", num_layers)
    return tuple(make(i % 2 == 1) for i in range(num_layers))


def nice(dim: int, *, num_layers: int = 4, hidden_sizes: Sequence[int] = (64, 64)) -> Flow:
    """NICE (Dinh et al. 2015): additive couplings on alternating halves, then a diagonal
    scaling (sec. 3.3), here an :class:`~genjax.flows.bijectors.ActNorm` (the last layer
    of the data -> noise direction sees it first). ``dim`` must be even.

    Example:
      >>> flow = nice(2, num_layers=2, hidden_sizes=(8,))
      >>> params = flow.init(jax.random.key(0))
      >>> z = jnp.ones((3, 2))
      >>> x, log_det = flow.forward(params, z)
      >>> log_det.tolist()  # additive couplings preserve volume
      [0.0, 0.0, 0.0]
    """
    layers = _alternating(
        lambda s: bj.AdditiveCoupling((dim,), tuple(hidden_sizes), swap=s), num_layers
    )
    return Flow(bj.Chain((*layers, bj.ActNorm(dim))), (dim,))


def realnvp(
    dim: int,
    *,
    num_layers: int = 8,
    hidden_sizes: Sequence[int] = (64, 64),
    scale_clamp: float = 3.0,
) -> Flow:
    """RealNVP (Dinh et al. 2017) on vectors: affine couplings on alternating halves.
    ``dim`` must be even.

    Example:
      >>> flow = realnvp(2, num_layers=2, hidden_sizes=(8,))
      >>> params = flow.init(jax.random.key(0))
      >>> flow.log_prob(params, jnp.zeros((3, 2))).shape
      (3,)
    """
    layers = _alternating(
        lambda s: bj.AffineCoupling((dim,), tuple(hidden_sizes), swap=s, scale_clamp=scale_clamp),
        num_layers,
    )
    return Flow(bj.Chain(layers), (dim,))


def glow(
    image_shape: Sequence[int],
    *,
    num_levels: int = 2,
    num_steps: int = 4,
    hidden_channels: int = 32,
    scale_clamp: float = 3.0,
) -> Flow:
    """Glow (Kingma & Dhariwal 2018) on NHWC images ``(H, W, C)``, multi-scale with
    ``num_levels`` levels of ``num_steps`` steps. One step, data -> noise: ActNorm,
    invertible 1x1 conv (LU), affine coupling with a conv conditioner (sec. 3, Fig. 2).
    Initialise with ``flow.init(key, data)`` for ActNorm's data-dependent init.

    Example:
      >>> flow = glow((4, 4, 1), num_levels=1, num_steps=1, hidden_channels=4)
      >>> params = flow.init(jax.random.key(0))
      >>> flow.sample(jax.random.key(1), params, 2).shape
      (2, 4, 4, 1)
    """
    image_shape = tuple(int(s) for s in image_shape)
    if len(image_shape) != 3:
        raise ValueError(f"image_shape must be (H, W, C), got {image_shape}")
    checks.positive_int("num_steps", num_steps)
    checks.positive_int("num_levels", num_levels)
    h, w, c = image_shape
    levels = []
    for i in range(num_levels):
        h, w, c = h // 2, w // 2, c * 4  # the squeezed shape of level i
        steps = []
        for j in range(num_steps):
            # Forward (noise -> data) order is the reverse of Glow's data -> noise step.
            steps += [
                bj.AffineCoupling((h, w, c), (hidden_channels,), swap=j % 2 == 1,
                                  scale_clamp=scale_clamp),
                bj.Conv1x1(c),
                bj.ActNorm(c),
            ]  # fmt: skip
        levels.append(bj.Chain(tuple(steps)))
        if i < num_levels - 1:
            c //= 2  # half the channels factored out
    return Flow(bj.MultiScale(tuple(levels), image_shape), image_shape, (math.prod(image_shape),))


def _autoregressive(
    cls: type[bj.AutoregressiveAffine], dim: int, num_layers: int,
    hidden_sizes: Sequence[int], scale_clamp: float,
) -> Flow:  # fmt: skip
    checks.positive_int("dim", dim)
    checks.positive("scale_clamp", scale_clamp)
    if not all(isinstance(h, int) and h >= 1 for h in hidden_sizes):
        raise ValueError(f"hidden_sizes must be widths >= 1, got {tuple(hidden_sizes)}")
    natural, reverse = tuple(range(1, dim + 1)), tuple(range(dim, 0, -1))
    layers = _alternating(
        lambda s: cls(dim, tuple(hidden_sizes), order=reverse if s else natural,
                      scale_clamp=scale_clamp),
        num_layers,
    )  # fmt: skip
    return Flow(bj.Chain(layers), (dim,))


def maf(
    dim: int, *, num_layers: int = 5, hidden_sizes: Sequence[int] = (64, 64),
    scale_clamp: float = 3.0,
) -> Flow:  # fmt: skip
    """MAF (Papamakarios et al. 2017): ``num_layers`` MADE-conditioned affine layers, the
    autoregressive order reversed between layers. Density: one MADE pass per layer;
    sampling: ``dim`` sequential passes per layer.

    Example:
      >>> flow = maf(3, num_layers=2, hidden_sizes=(8,))
      >>> params = flow.init(jax.random.key(0))
      >>> flow.log_prob(params, jnp.zeros((4, 3))).shape
      (4,)
    """
    return _autoregressive(bj.MAF, dim, num_layers, hidden_sizes, scale_clamp)


def iaf(
    dim: int, *, num_layers: int = 5, hidden_sizes: Sequence[int] = (64, 64),
    scale_clamp: float = 3.0,
) -> Flow:  # fmt: skip
    """IAF (Kingma et al. 2016) as a density model: sampling in one MADE pass per layer,
    density in ``dim`` sequential passes per layer.

    Example:
      >>> flow = iaf(3, num_layers=2, hidden_sizes=(8,))
      >>> params = flow.init(jax.random.key(0))
      >>> flow.sample(jax.random.key(1), params, 4).shape
      (4, 3)
    """
    return _autoregressive(bj.IAF, dim, num_layers, hidden_sizes, scale_clamp)


def neural_spline(
    dim: int,
    *,
    num_layers: int = 4,
    hidden_sizes: Sequence[int] = (64, 64),
    num_bins: int = 8,
    bound: float = 3.0,
) -> Flow:
    """Neural spline flow (RQ-NSF (C), Durkan et al. 2019): rational-quadratic spline
    couplings on alternating halves, each followed by an LU-parameterised linear map
    (their sec. 4 uses one between couplings to mix dimensions). ``dim`` must be even.

    Example:
      >>> flow = neural_spline(2, num_layers=2, hidden_sizes=(8,), num_bins=4)
      >>> params = flow.init(jax.random.key(0))
      >>> flow.log_prob(params, jnp.zeros((3, 2))).shape
      (3,)
    """
    couplings = _alternating(
        lambda s: bj.SplineCoupling((dim,), tuple(hidden_sizes), swap=s, num_bins=num_bins,
                                    bound=bound),
        num_layers,
    )  # fmt: skip
    layers = [couplings[0]]
    for coupling in couplings[1:]:
        layers += [bj.Conv1x1(dim), coupling]  # a mixing linear map between couplings
    return Flow(bj.Chain(tuple(layers)), (dim,))


def planar(dim: int, *, num_layers: int = 4) -> Flow:
    """A stack of planar flows (Rezende & Mohamed 2015) over N(0, I).

    Example:
      >>> flow = planar(2, num_layers=2)
      >>> params = flow.init(jax.random.key(0))
      >>> flow.sample(jax.random.key(1), params, 5).shape
      (5, 2)
    """
    return Flow(bj.Chain(_alternating(lambda _: bj.Planar(dim), num_layers)), (dim,))


def radial(dim: int, *, num_layers: int = 4) -> Flow:
    """A stack of radial flows (Rezende & Mohamed 2015) over N(0, I).

    Example:
      >>> flow = radial(2, num_layers=2)
      >>> params = flow.init(jax.random.key(0))
      >>> flow.log_prob(params, jnp.zeros((5, 2))).shape
      (5,)
    """
    return Flow(bj.Chain(_alternating(lambda _: bj.Radial(dim), num_layers)), (dim,))
