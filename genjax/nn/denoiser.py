"""A time-conditioned MLP for diffusion models on low-dimensional (2-D) data.

The noise-prediction network of the 2-D toy recipes: it maps a noisy point ``x_t``
and its time ``t`` (and optionally a class label) to a vector of the same size — the
predicted noise ``eps``, the score, the clean point ``x0`` or the velocity ``v``,
whatever the loss asks of it. The time enters through the sinusoidal embedding of
DDPM (Ho et al. 2020, appendix B), passed through a small MLP as in the DDPM U-Net;
a class label enters through a learned embedding added to the time features, with
one extra "null" class (index ``num_classes``) for classifier-free guidance
(Ho & Salimans 2022).

    e      = MLP_t(sinusoidal(t))  [+ Embed(label)]        (time_embed_dim,)
    output = MLP([x, e])                                    (dim,)

References:
  Ho, Jain, Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020.
  Ho, Salimans, "Classifier-Free Diffusion Guidance", NeurIPS 2021 workshop (2022).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import checks
from genjax.nn.embeddings import sinusoidal_embedding
from genjax.nn.mlp import MLP

__all__ = ["MLPDenoiser"]


class MLPDenoiser(nnx.Module):
    """MLP ``(x (batch, dim), t (batch,)[, labels (batch,)]) -> (batch, dim)``.

    Args:
      dim: data dimension (2 for the toy data sets), >= 1.
      hidden: widths of the hidden layers of the main MLP (an int means one layer of
        that width), each >= 1.
      time_embed_dim: size of the time (and class) embedding, an even integer >= 2.
      num_classes: number of classes for class conditioning, or None for an
        unconditional network. The embedding table has ``num_classes + 1`` rows: row
        ``num_classes`` is the null label of classifier-free guidance.
      time_scale: ``t`` is multiplied by this before the sinusoidal embedding (use
        ~1000 for continuous times in [0, 1], 1 for integer steps in [0, T)).
      rngs: ``nnx.Rngs`` used only for initialisation.

    Example:
      >>> net = MLPDenoiser(2, [128, 128], time_embed_dim=32, rngs=nnx.Rngs(0))
      >>> net(jnp.zeros((4, 2)), jnp.arange(4)).shape
      (4, 2)
    """

    def __init__(
        self,
        dim: int,
        hidden: int | Sequence[int],
        *,
        time_embed_dim: int = 32,
        num_classes: int | None = None,
        time_scale: float = 1.0,
        rngs: nnx.Rngs,
    ):
        self.dim = checks.positive_int("dim", dim)
        self.time_embed_dim = checks.positive_int("time_embed_dim", time_embed_dim)
        if time_embed_dim % 2:
            raise ValueError(f"time_embed_dim must be an even integer >= 2, got {time_embed_dim!r}")
        self.num_classes = None if num_classes is None else checks.positive_int(
            "num_classes", num_classes)
        self.time_scale = float(checks.positive("time_scale", time_scale))
        hidden_sizes = (hidden,) if isinstance(hidden, int) else tuple(hidden)
        # Time features -> a learned embedding (DDPM's two-layer time MLP).
        self.time_mlp = MLP(time_embed_dim, [time_embed_dim], time_embed_dim, rngs=rngs)
        # Row num_classes is the null (unconditional) label of classifier-free guidance.
        self.class_embed = (
            None
            if num_classes is None
            else nnx.Embed(self.num_classes + 1, time_embed_dim, rngs=rngs)
        )
        self.net = MLP(dim + time_embed_dim, hidden_sizes, dim, rngs=rngs)

    def __call__(
        self, x: jax.Array, t: jax.Array, labels: jax.Array | None = None
    ) -> jax.Array:
        """Predict a (dim,)-vector per example.

        Args:
          x: (batch, dim) noisy points.
          t: (batch,) times (integer steps or floats).
          labels: (batch,) int class labels in ``[0, num_classes]`` (``num_classes`` =
            null label); required iff the network was built with ``num_classes``.

        Returns:
          (batch, dim) prediction, in ``x``'s dtype.
        """
        checks.shape("x", x, ("batch", self.dim))
        t = jnp.broadcast_to(jnp.asarray(t), x.shape[:1])  # (batch,)
        if (labels is None) != (self.class_embed is None):
            raise ValueError(
                "labels must be given iff the network was built with num_classes "
                f"(num_classes={self.num_classes}, labels given: {labels is not None})"
            )
        if labels is not None:  # labels in [0, num_classes]: num_classes is the null label
            checks.shape("labels", labels, (x.shape[0],))
            checks.token_ids("labels", jnp.asarray(labels), self.num_classes + 1)
        emb = sinusoidal_embedding(t.astype(jnp.float32) * self.time_scale, self.time_embed_dim)
        emb = self.time_mlp(emb)  # (batch, time_embed_dim)
        if self.class_embed is not None:
            emb = emb + self.class_embed(labels)  # (batch, time_embed_dim)
        h = jnp.concatenate([x, emb.astype(x.dtype)], axis=-1)  # (batch, dim + time_embed_dim)
        return self.net(h).astype(x.dtype)  # (batch, dim)
