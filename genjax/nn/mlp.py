"""A multilayer perceptron as a flax.nnx module, used functionally.

The workhorse of the 2-D toy recipes: score networks, flow conditioners, GAN
generators and critics, VAE encoders and decoders on low-dimensional data.

    h_0 = x
    h_l = activation(W_l h_{l-1} + b_l),   l = 1 .. L      (hidden layers)
    y   = W_{L+1} h_L + b_{L+1}                           (linear read-out)

The read-out layer has no activation, so the output is unconstrained (logits,
means, noise predictions, ...). Weights use ``nnx.Linear``'s default
initialisation (LeCun-normal kernels, zero biases).

The layers are held in an ``nnx.List`` (present in flax 0.12.8 and later), so
the module is a pytree: pass it whole, as a *model* (DESIGN.md, "One model
protocol"), to ``jax.jit`` / ``jax.grad`` / optax / the trainer and to every
genjax sampler and loss -- its weights are traced, so new weights of the same
shapes never recompile. No ``nnx.split`` / ``nnx.merge`` is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import checks

__all__ = ["MLP"]


class MLP(nnx.Module):
    """Fully connected network ``(..., in_features) -> (..., out_features)``.

    Args:
      in_features: size of the last input axis, >= 1.
      hidden_sizes: width of each hidden layer, each >= 1; may be empty (then
        the network is a single affine map).
      out_features: size of the last output axis, >= 1.
      rngs: ``nnx.Rngs`` used only to initialise the weights.
      activation: elementwise nonlinearity applied after every hidden layer.

    Example:
      >>> from flax import nnx
      >>> import jax.numpy as jnp
      >>> net = MLP(2, [64, 64], 2, rngs=nnx.Rngs(0))
      >>> net(jnp.zeros((5, 2))).shape
      (5, 2)
    """

    def __init__(
        self,
        in_features: int,
        hidden_sizes: Sequence[int],
        out_features: int,
        *,
        rngs: nnx.Rngs,
        activation: Callable[[jax.Array], jax.Array] = nnx.silu,
    ):
        hidden = tuple(
            checks.positive_int(f"hidden_sizes[{i}]", w) for i, w in enumerate(hidden_sizes)
        )
        sizes = (
            checks.positive_int("in_features", in_features),
            *hidden,
            checks.positive_int("out_features", out_features),
        )
        self.activation = activation
        # One affine map per consecutive pair of sizes: L hidden layers + read-out.
        pairs = zip(sizes[:-1], sizes[1:], strict=True)
        self.layers = nnx.List([nnx.Linear(d_in, d_out, rngs=rngs) for d_in, d_out in pairs])

    def __call__(self, x: jax.Array) -> jax.Array:
        """Apply the network.

        Args:
          x: (..., in_features) input.

        Returns:
          (..., out_features) output; no activation on the last layer.
        """
        d_in = self.layers[0].in_features
        if jnp.ndim(x) < 1 or jnp.shape(x)[-1] != d_in:
            raise ValueError(f"x must have shape (..., in_features={d_in}), got {jnp.shape(x)}")
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))  # h_l = act(W_l h_{l-1} + b_l)
        return self.layers[-1](x)  # y = W_{L+1} h_L + b_{L+1}
