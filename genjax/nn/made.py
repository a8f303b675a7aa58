"""MADE: the masked autoencoder for distribution estimation (Germain et al. 2015).

An MLP whose weight matrices are multiplied by binary masks so that output ``i`` depends
only on the inputs that come before ``i`` in an ordering — the conditioner of the masked
autoregressive flow (MAF, Papamakarios et al. 2017), the inverse autoregressive flow (IAF,
Kingma et al. 2016) and of autoregressive density models.

Degrees (Germain et al. 2015, sec. 4):

    m^0(d) = order[d]                           in {1..D}, a permutation      (input units)
    m^l(k) = 1 + (k mod max(D - 1, 1))          in {1..D-1}, l = 1..L        (hidden units)
    M^l[k', k]  = 1[m^l(k) >= m^{l-1}(k')]      hidden masks                  (eq. 12)
    M^V[k, d]   = 1[m^0(d) > m^L(k)]            output mask, strict            (eq. 13)

so the output for input dimension ``d`` sees exactly the inputs ``d'`` with
``order[d'] < order[d]``: the Jacobian of the outputs with respect to the inputs, taken in
the order, is strictly lower triangular. Hidden degrees are assigned cyclically (the
deterministic variant of the paper's uniform draw, as in the MAF authors' code), which
spreads every degree evenly so no input is cut off. Each input dimension gets
``num_params_per_dim`` outputs (e.g. a shift and a log-scale).

The masks are constants computed from the static degrees on each call, never parameters:
the optimiser cannot touch them and the module's array leaves are its weights only.

References:
  Germain, Gregor, Murray, Larochelle (2015). MADE: Masked Autoencoder for Distribution
  Estimation. ICML.
  Papamakarios, Pavlakou, Murray (2017). Masked Autoregressive Flow for Density
  Estimation. NeurIPS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from genjax import checks


def made_degrees(
    in_features: int, hidden_sizes: Sequence[int], order: Sequence[int] | None = None
) -> tuple[tuple[int, ...], ...]:
    """Degrees of the input and hidden units.

    Args:
      in_features: D, the number of inputs.
      hidden_sizes: width of each hidden layer.
      order: a permutation of ``1..D`` (the input degrees); default ``1, 2, ..., D``.

    Returns:
      ``(m^0 (D,), m^1 (H_1,), ..., m^L (H_L,))`` as tuples of ints.
    """
    d = int(in_features)
    if order is None:
        order = tuple(range(1, d + 1))
    order = tuple(int(o) for o in order)
    if sorted(order) != list(range(1, d + 1)):
        raise ValueError(f"order must be a permutation of 1..{d}, got {order!r}")
    degrees = [order]
    for width in hidden_sizes:
        # m^l(k) = 1 + (k mod (D - 1)): every degree 1..D-1 used in turn.
        degrees.append(tuple(1 + (k % max(d - 1, 1)) for k in range(int(width))))
    return tuple(degrees)


def made_masks(degrees: Sequence[Sequence[int]], num_params_per_dim: int = 1) -> list[np.ndarray]:
    """Masks ``(fan_in, fan_out)`` of every layer of a MADE with these degrees.

    Args:
      degrees: ``(m^0 (D,), m^1 (H_1,), ..., m^L (H_L,))`` from :func:`made_degrees`.
      num_params_per_dim: P, outputs per input dimension; output unit ``d * P + p`` belongs
        to input dimension ``d``.

    Returns:
      ``[M^1 (D, H_1), ..., M^L (H_{L-1}, H_L), M^V (H_L, D * P)]`` float32 0/1 arrays.
    """
    degs = [np.asarray(m) for m in degrees]
    masks = [
        (cur[None, :] >= prev[:, None]).astype(np.float32)  # eq. 12: m^l(k) >= m^{l-1}(k')
        for prev, cur in zip(degs[:-1], degs[1:], strict=True)
    ]
    out_deg = np.repeat(degs[0], num_params_per_dim)  # (D * P,): output d*P + p has degree m^0(d)
    masks.append((out_deg[None, :] > degs[-1][:, None]).astype(np.float32))  # eq. 13, strict
    return masks


class MADE(nnx.Module):
    """Masked MLP ``(..., D) -> (..., D, P)``, output ``[..., d, :]`` a function of the
    inputs before ``d`` in ``order`` only.

    Args:
      in_features: D >= 1.
      hidden_sizes: hidden widths, at least one layer, each >= 1 (each should be >= D - 1
        so that every degree is present).
      num_params_per_dim: P >= 1 outputs per input dimension.
      rngs: ``nnx.Rngs`` for the weights (and the order when ``order="random"``).
      order: ``None`` (natural order ``1..D``), ``"reverse"``, ``"random"`` (a permutation
        drawn from ``rngs``), or a permutation of ``1..D``.
      activation: nonlinearity of the hidden layers.

    Example:
      >>> made = MADE(3, [16], 2, rngs=nnx.Rngs(0))
      >>> made(jnp.zeros((5, 3))).shape
      (5, 3, 2)
    """

    def __init__(
        self,
        in_features: int,
        hidden_sizes: Sequence[int],
        num_params_per_dim: int = 2,
        *,
        rngs: nnx.Rngs,
        order: Sequence[int] | str | None = None,
        activation: Callable[[jax.Array], jax.Array] = nnx.relu,
    ):
        hidden_sizes = tuple(int(h) for h in hidden_sizes)
        d = checks.positive_int("in_features", in_features)
        if not hidden_sizes or min(hidden_sizes) < 1:
            raise ValueError(
                f"hidden_sizes must hold at least one width >= 1, got {hidden_sizes!r}"
            )
        num_params_per_dim = checks.positive_int("num_params_per_dim", num_params_per_dim)
        if isinstance(order, str):
            if order == "reverse":
                order = tuple(range(d, 0, -1))
            elif order == "random":
                perm = jax.random.permutation(rngs.params(), d)
                order = tuple(int(i) + 1 for i in np.asarray(perm))
            else:
                raise ValueError(
                    f"order must be None, 'reverse', 'random' or a permutation, got {order!r}"
                )
        self.in_features = d
        self.num_params_per_dim = num_params_per_dim
        self.degrees = made_degrees(d, hidden_sizes, order)  # static ints, not parameters
        self.activation = activation
        sizes = (d, *hidden_sizes, d * self.num_params_per_dim)
        pairs = zip(sizes[:-1], sizes[1:], strict=True)
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in pairs])

    @property
    def order(self) -> tuple[int, ...]:
        """Input degrees ``m^0``: a permutation of ``1..D``."""
        return self.degrees[0]

    def __call__(self, x: jax.Array) -> jax.Array:
        """Apply the masked network.

        Args:
          x: (..., D) inputs.

        Returns:
          (..., D, P) outputs; ``[..., d, :]`` depends only on ``x[..., d']`` with
          ``order[d'] < order[d]`` (the first dimension in the order gets constants).
        """
        if jnp.ndim(x) < 1 or jnp.shape(x)[-1] != self.in_features:
            raise ValueError(f"x must have shape (..., D={self.in_features}), got {jnp.shape(x)}")
        masks = made_masks(self.degrees, self.num_params_per_dim)
        h = x
        for i, (layer, mask) in enumerate(zip(self.layers, masks, strict=True)):
            kernel = layer.kernel[...] * jnp.asarray(mask, layer.kernel[...].dtype)  # W ⊙ M
            bias = layer.bias[...]
            h = h @ kernel + bias.reshape((1,) * (h.ndim - 1) + (-1,))  # explicit broadcast
            if i < len(masks) - 1:
                h = self.activation(h)
        return h.reshape(*x.shape[:-1], self.in_features, self.num_params_per_dim)
