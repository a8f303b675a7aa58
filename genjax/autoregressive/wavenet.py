"""WaveNet: gated dilated causal convolutions over mu-law quantised signals.

WaveNet (van den Oord et al. 2016c) factorises a signal's law by the chain rule in time,

    p(x_1 .. x_T) = prod_t p(x_t | x_{<t}),

with the input delayed by one step, then dilated causal convolutions with gated
activations and residual/skip connections; the logits at time ``t`` depend on
``x_{t-R} .. x_{t-1}`` only (``R`` the receptive field; the tests check it by Jacobian).
Signals are mu-law companded to ``K`` levels (:func:`mu_law_encode`, sec. 2.2).
:func:`wavenet_sample` draws a signal one step at a time in one compiled ``lax.scan``
(:func:`~genjax.autoregressive.levels.fill_levels_from_noise`);
:func:`wavenet_sample_from_noise` is the same on given noise and can continue a given
signal from any time step.

References:
  van den Oord et al., "WaveNet: A Generative Model for Raw Audio", arXiv:1609.03499, 2016c.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from genjax import checks
from genjax.autoregressive.levels import (
    fill_levels_from_noise,
    gated_activation,
    levels_to_input,
    read_out,
)
from genjax.model import Model, model_jit

__all__ = [
    "CausalConv1d",
    "WaveNet",
    "mu_law_encode",
    "mu_law_decode",
    "wavenet_sample",
    "wavenet_sample_from_noise",
]


def _shift_right(x: jax.Array, d: int) -> jax.Array:
    # x_{t-d} with zeros before the start: (B, T, C) -> (B, T, C)
    return jnp.pad(x, ((0, 0), (d, 0), (0, 0)))[:, : x.shape[1]]


class CausalConv1d(nnx.Module):
    """Dilated causal convolution of width 2 (WaveNet, sec. 2.1):

        y_t = W_0 x_{t-d} + W_1 x_t + b        (x_{t-d} = 0 for t < d)

    written as one linear map of the concatenation [x_{t-d}, x_t].

    Args:
      in_features, out_features: channel counts.
      dilation: d >= 1.
      rngs: ``nnx.Rngs`` for initialisation.

    Example:
      >>> conv = CausalConv1d(1, 1, 2, rngs=nnx.Rngs(0))
      >>> x = jnp.zeros((1, 6, 1)).at[0, 5, 0].set(1.0)  # an impulse at the last step
      >>> bool(jnp.all(conv(x)[0, :5] == conv(jnp.zeros((1, 6, 1)))[0, :5]))  # past unaffected
      True
    """

    def __init__(self, in_features: int, out_features: int, dilation: int, *, rngs: nnx.Rngs):
        self.dilation = checks.positive_int("dilation", dilation)
        self.linear = nnx.Linear(2 * in_features, out_features, rngs=rngs)  # [W_0; W_1]

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: (B, T, in) -> (B, T, out)."""
        past = _shift_right(x, self.dilation)  # x_{t-d}, (B, T, in)
        return self.linear(jnp.concatenate([past, x], axis=-1))  # (B, T, out)


class WaveNet(nnx.Module):
    """WaveNet: gated dilated causal convolutions with residual and skip connections.

        h_0 = CausalConv_1(shift(x))                     (shift: x_{t-1}, so t sees only x_{<t})
        z_l = tanh(W_{f,l} *_{d_l} h) ⊙ σ(W_{g,l} *_{d_l} h)    (sec. 2.3, eq. 2)
        h_l = h_{l-1} + 1x1_res(z_l),   s_l = 1x1_skip(z_l)     (sec. 2.4, fig. 4)
        logits = 1x1(ReLU(1x1(ReLU(sum_l s_l))))          (B, T, num_levels)

    The logits at time t depend on x_{t-R} .. x_{t-1} only, with the receptive field
    R = 2 + sum(dilations) (the shift, the width-2 first convolution, then each layer).

    Args:
      num_levels: K, the number of quantisation levels (e.g. of :func:`mu_law_encode`).
      rngs: ``nnx.Rngs`` for initialisation.
      residual_channels: channels of h.
      skip_channels: channels of the skip sum.
      dilations: d_l of each layer (WaveNet doubles them: 1, 2, 4, ...).
      in_features: channels of the float input x.

    Example:
      >>> model = WaveNet(4, rngs=nnx.Rngs(0), residual_channels=4, skip_channels=4,
      ...                 dilations=(1, 2))
      >>> model(jnp.zeros((2, 8, 1))).shape
      (2, 8, 4)
    """

    def __init__(self, num_levels: int, *, rngs: nnx.Rngs, residual_channels: int = 32,
                 skip_channels: int = 32, dilations=(1, 2, 4, 8, 16, 32), in_features: int = 1):
        self.num_levels = checks.positive_int("num_levels", num_levels)
        residual_channels = checks.positive_int("residual_channels", residual_channels)
        skip_channels = checks.positive_int("skip_channels", skip_channels)
        in_features = checks.positive_int("in_features", in_features)
        dilations = tuple(dilations)
        if not dilations:
            raise ValueError("dilations must name at least one layer")
        for i, d in enumerate(dilations):
            checks.positive_int(f"dilations[{i}]", d)
        self.dilations = dilations
        self.in_features = in_features
        self.receptive_field = 2 + sum(dilations)
        self.first = CausalConv1d(in_features, residual_channels, 1, rngs=rngs)
        self.filter_gate = nnx.List([
            CausalConv1d(residual_channels, 2 * residual_channels, d, rngs=rngs)
            for d in dilations
        ])
        self.residual = nnx.List([nnx.Linear(residual_channels, residual_channels, rngs=rngs)
                                  for _ in dilations])
        self.skip = nnx.List([nnx.Linear(residual_channels, skip_channels, rngs=rngs)
                              for _ in dilations])
        self.hidden = nnx.Linear(skip_channels, skip_channels, rngs=rngs)
        self.out = nnx.Linear(skip_channels, self.num_levels, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: (B, T, in_features) float -> (B, T, K) logits of x_t given x_{<t}."""
        checks.shape("x", x, ("B", "T", self.in_features))
        h = self.first(_shift_right(x, 1))  # (B, T, R): depends on x_{t-2}, x_{t-1}
        skips = 0.0
        for conv, res, skip in zip(self.filter_gate, self.residual, self.skip, strict=True):
            z = gated_activation(conv(h))  # (B, T, R)
            h = h + res(z)  # residual
            skips = skips + skip(z)  # (B, T, S)
        return read_out(skips, self.hidden, self.out)  # (B, T, K)


def _mu(num_levels: int) -> float:
    """mu = K - 1 of the mu-law for K >= 2 levels."""
    if checks.positive_int("num_levels", num_levels) < 2:
        raise ValueError(f"num_levels must be an integer >= 2, got {num_levels!r}")
    return float(num_levels - 1)


def mu_law_encode(x: jax.Array, num_levels: int) -> jax.Array:
    """mu-law companding and quantisation (WaveNet, sec. 2.2), mu = K - 1.

        f(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu),   level = round((f(x) + 1) / 2 * mu)

    Args:
      x: (...) values in [-1, 1] (clipped).
      num_levels: K >= 2.

    Returns:
      (...) int32 levels in {0 .. K-1}.
    """
    _mu(num_levels)
    checks.finite("x", x)  # when concrete: values beyond [-1, 1] are clipped, NaN has no level
    return _mu_law_encode(x, num_levels)


@functools.partial(jax.jit, static_argnames=("num_levels",))
def _mu_law_encode(x: jax.Array, num_levels: int) -> jax.Array:
    mu = _mu(num_levels)
    x = jnp.clip(jnp.asarray(x, jnp.float32), -1.0, 1.0)
    f = jnp.sign(x) * jnp.log1p(mu * jnp.abs(x)) / np.log1p(mu)
    return jnp.round((f + 1.0) / 2.0 * mu).astype(jnp.int32)


def mu_law_decode(levels: jax.Array, num_levels: int) -> jax.Array:
    """The inverse of :func:`mu_law_encode` (up to quantisation): levels -> values in [-1, 1].

        f = 2 level / mu - 1,   x = sign(f) ((1 + mu)^|f| - 1) / mu

    ``levels``: (...) int in {0 .. K-1} (checked when concrete).
    """
    _mu(num_levels)
    checks.token_ids("levels", jnp.asarray(levels), num_levels)
    return _mu_law_decode(levels, num_levels)


@functools.partial(jax.jit, static_argnames=("num_levels",))
def _mu_law_decode(levels: jax.Array, num_levels: int) -> jax.Array:
    mu = _mu(num_levels)
    f = 2.0 * jnp.asarray(levels).astype(jnp.float32) / mu - 1.0
    return jnp.sign(f) * jnp.expm1(jnp.abs(f) * np.log1p(mu)) / mu


def _check_sampling(model: Model, temperature: float) -> int:
    checks.positive("temperature", temperature)
    if getattr(model, "in_features", 1) != 1:
        raise ValueError(f"model must have in_features=1 to be sampled, got "
                         f"{model.in_features}")
    return checks.positive_int("model.num_levels", model.num_levels)


def _draw(model: Model, x: jax.Array, gumbel: jax.Array, temperature: float,
          start: int | jax.Array) -> jax.Array:
    """Time-order filling of ``x`` (n, T) from step ``start`` on: (n, T) int32."""
    K = model.num_levels

    def logits_fn(levels):  # (n, T) levels -> (n, T, K) logits
        return model(levels_to_input(levels, K)[..., None])  # input (n, T, 1)

    return fill_levels_from_noise(logits_fn, x, gumbel, temperature=temperature, start=start)


def wavenet_sample_from_noise(model: Model, x: jax.Array, gumbel: jax.Array, *,
                              temperature: float = 1.0,
                               start: int | jax.Array = 0) -> jax.Array:
    """Draw the steps of ``x`` from ``start`` on, one at a time, with the noise given.

        for t = start .. T - 1:   x_t = argmax_k (logits_t(x_{<t})_k / tau + g_{t,k})

    The network input is :func:`~genjax.autoregressive.levels.levels_to_input` of the
    levels so far. With ``start = 0`` this is :func:`wavenet_sample` (the values of ``x``
    are then never read); ``start > 0`` continues the first ``start`` steps of ``x``.

    Args:
      model: callable pytree, ``model(x (n, T, 1) float in [-1, 1]) -> (n, T, K)`` causal
        logits, with int attributes ``num_levels = K`` and ``in_features = 1`` (a
        :class:`WaveNet`). Traced: new weights reuse the compiled sampler.
      x: (n, T) int levels in {0 .. K-1}.
      gumbel: (n, T, K) standard Gumbel noise.
      temperature: tau > 0.
      start: the first step drawn, in [0, T]; traced (one compiled program serves every
        start; the loop visits every position and keeps ``x`` before ``start``).

    Returns:
      (n, T) int32 levels.

    Example:
      >>> model = WaveNet(4, rngs=nnx.Rngs(0), residual_channels=4, skip_channels=4,
      ...                 dilations=(1, 2))
      >>> gumbel = jax.random.gumbel(jax.random.key(0), (2, 6, 4))
      >>> wavenet_sample_from_noise(model, jnp.zeros((2, 6), jnp.int32), gumbel).shape
      (2, 6)
    """
    K = _check_sampling(model, temperature)
    n, T = checks.shape("x", x, (None, None))
    checks.token_ids("x", jnp.asarray(x), K)  # levels in {0 .. K-1}
    checks.shape("gumbel", gumbel, (n, T, K))
    checks.finite("gumbel", gumbel)
    checks.in_range("start", start, 0, T)  # skipped when traced
    return _wavenet_from_noise_jit(model, x, gumbel, start, temperature=temperature)


@functools.partial(model_jit, static_argnames=("temperature",))
def _wavenet_from_noise_jit(model, x, gumbel, start, *, temperature):
    return _draw(model, x, gumbel, temperature, start)


def wavenet_sample(key: jax.Array, model: Model, n: int, length: int, *,
                   temperature: float = 1.0) -> jax.Array:
    """``n`` sequences of ``length`` levels drawn from the model (one compiled ``lax.scan``).

    Draws ``gumbel = jax.random.gumbel(key, (n, length, K))`` and fills zeros in time
    order: :func:`wavenet_sample_from_noise` with ``start = 0``.

    Args:
      key: a JAX key.
      model: as :func:`wavenet_sample_from_noise`.
      n: number of sequences, >= 1.
      length: T >= 1.
      temperature: tau > 0.

    Returns:
      (n, length) int32 levels in {0 .. K-1}.

    Example:
      >>> model = WaveNet(4, rngs=nnx.Rngs(0), residual_channels=4, skip_channels=4,
      ...                 dilations=(1, 2))
      >>> x = wavenet_sample(jax.random.key(0), model, 2, 6)
      >>> x.shape, bool(jnp.all((x >= 0) & (x < 4)))
      ((2, 6), True)
    """
    _check_sampling(model, temperature)
    n = checks.positive_int("n", n)
    length = checks.positive_int("length", length)
    return _wavenet_sample_jit(key, model, n=n, length=length, temperature=temperature)


@functools.partial(model_jit, static_argnames=("n", "length", "temperature"))
def _wavenet_sample_jit(key, model, *, n, length, temperature):
    gumbel = jax.random.gumbel(key, (n, length, model.num_levels))  # (n, T, K)
    return _draw(model, jnp.zeros((n, length), jnp.int32), gumbel, temperature, 0)
