"""pix2pix's alternating update (Isola et al. 2017, sec. 3.3).

One step on a paired batch ``(x, y)``: one update of the PatchGAN discriminator ``D`` on
:func:`genjax.gan.pix2pix.pix2pix_d` with the generator fixed, then one of the U-Net
generator ``G`` on :func:`genjax.gan.pix2pix.pix2pix_g` against the updated ``D``
(adversarial + lambda L1, eq. 4). ``adversarial=False`` trains the same generator on
``lambda L_L1`` alone, the paper's "L1" baseline (Table 1). The models are the networks
themselves, traced leaves of the state (DESIGN.md's model protocol), as in
:mod:`genjax.gan.step`.

References:
  Isola, Zhu, Zhou & Efros (2017), "Image-to-Image Translation with Conditional
  Adversarial Networks", CVPR.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from genjax import checks
from genjax.gan import loss as L
from genjax.gan.pix2pix import l1_loss, pix2pix_d

PyTree = Any


# --------------------------------------------------------------------------------------
# The alternating update (Isola et al. 2017, sec. 3.3)
# --------------------------------------------------------------------------------------


class Pix2PixState(NamedTuple):
    """The generator, the discriminator and their optimisers.

    Attributes:
      g: the generator ``g(x (B, H, W, C_x)) -> (B, H, W, C_y)``.
      d: the discriminator ``d(x, y) -> (B, h, w)``, or None (L1 only).
      g_opt: the generator optimiser's state.
      d_opt: the discriminator optimiser's state, or None (L1 only).
    """

    g: Any
    d: Any
    g_opt: PyTree
    d_opt: PyTree


class Pix2PixInfo(NamedTuple):
    """Diagnostics of one step (the adversarial entries are None for the L1-only trainer).

    Attributes:
      loss: the generator's total ``L_G`` before its update (the progress figure).
      l1: ``mean |y - G(x)|`` before the update.
      g_adv: ``-mean log D(x, G(x))`` against the updated discriminator.
      d_loss: :func:`pix2pix_d` before the discriminator's update.
      d_real: mean logit on real pairs.
      d_fake: mean logit on generated pairs.
    """

    loss: jax.Array
    l1: jax.Array
    g_adv: jax.Array | None = None
    d_loss: jax.Array | None = None
    d_real: jax.Array | None = None
    d_fake: jax.Array | None = None

    def metrics(self) -> dict[str, jax.Array]:
        """The diagnostics as a flat dict of scalars, Nones left out."""
        return {k: v for k, v in self._asdict().items() if v is not None}


class Pix2PixTrainer(NamedTuple):
    """``init(g, d) -> Pix2PixState`` and ``step(state, (x, y), key) -> (state, info)``.

    Example:
      >>> t = pix2pix_trainer(g_optimizer=optax.sgd(0.1), d_optimizer=optax.sgd(0.1))
      >>> isinstance(t, Pix2PixTrainer), callable(t.init), callable(t.step)
      (True, True, True)
    """

    init: Callable[[Any, Any], Pix2PixState]
    step: Callable[[Pix2PixState, Any, jax.Array], tuple[Pix2PixState, Pix2PixInfo]]


def _is_optimizer(name: str, opt: Any) -> None:
    if not (callable(getattr(opt, "init", None)) and callable(getattr(opt, "update", None))):
        raise TypeError(f"{name} must be an optax.GradientTransformation, got {opt!r}")


def pix2pix_trainer(
    *,
    g_optimizer: optax.GradientTransformation,
    d_optimizer: optax.GradientTransformation | None = None,
    l1_weight: float = 100.0,
    adversarial: bool = True,
) -> Pix2PixTrainer:
    """Builds pix2pix's alternating update (Isola et al. 2017, sec. 3.3).

    One step on a paired batch ``(x, y)``:

        theta_D <- opt_D(grad_D pix2pix_d(D(x, y), D(x, sg[G(x)])))
        theta_G <- opt_G(grad_G pix2pix_g(D'(x, G(x)), G(x), y))     (D' the updated D)

    With ``adversarial=False`` only ``theta_G <- opt_G(grad_G lambda L_L1)`` (the "L1"
    row of the paper's Table 1; ``d`` and ``d_optimizer`` are then unused and None).
    The step is deterministic (no dropout noise, see the module docstring): the key is
    taken for the trainer protocol and unused.

    Args:
      g_optimizer: optax transformation of the generator.
      d_optimizer: optax transformation of the discriminator (required when adversarial).
      l1_weight: ``lambda >= 0``; > 0 when not adversarial.
      adversarial: include the cGAN term (pix2pix) or train on L1 alone.

    Returns:
      A :class:`Pix2PixTrainer`; ``step``'s batch is ``(x (B, H, W, C_x), y (B, H, W, C_y))``.

    Example:
      >>> t = pix2pix_trainer(g_optimizer=optax.adam(1e-3), d_optimizer=optax.adam(1e-3))
      >>> g = UNetGenerator(1, 1, channels=(4,), rngs=nnx.Rngs(0))
      >>> d = PatchGAN(2, channels=(4,), kernel_sizes=(3, 1), strides=(1, 1), rngs=nnx.Rngs(1))
      >>> x = jnp.zeros((2, 8, 8, 1))
      >>> state, info = jax.jit(t.step)(t.init(g, d), (x, x), jax.random.key(0))
      >>> info.d_loss.shape, bool(jnp.isfinite(info.loss))
      ((), True)
    """
    _is_optimizer("g_optimizer", g_optimizer)
    checks.nonnegative("l1_weight", l1_weight)
    if adversarial:
        _is_optimizer("d_optimizer", d_optimizer)
    elif not l1_weight > 0:
        raise ValueError(f"l1_weight must be > 0 when adversarial=False, got {l1_weight}")

    def init(g: Any, d: Any = None) -> Pix2PixState:
        if not adversarial:
            return Pix2PixState(g, None, g_optimizer.init(g), None)
        if d is None:
            raise ValueError("d must be a discriminator when adversarial=True, got None")
        return Pix2PixState(g, d, g_optimizer.init(g), d_optimizer.init(d))

    def step(state: Pix2PixState, batch: Any, key: jax.Array) -> tuple[Pix2PixState, Pix2PixInfo]:
        del key  # deterministic generator: no dropout noise
        x, y = (jnp.asarray(a) for a in batch)
        if x.shape[:3] != y.shape[:3]:
            raise ValueError(
                f"batch (x, y) must pair images of one size, got {x.shape} and {y.shape}"
            )
        d, d_opt, d_info = state.d, state.d_opt, (None, None, None)
        if adversarial:
            fake = jax.lax.stop_gradient(state.g(x))  # G fixed during D's update

            def d_objective(d):
                real_logits, fake_logits = d(x, y), d(x, fake)  # (B, h, w) each
                return pix2pix_d(real_logits, fake_logits), (
                    jnp.mean(real_logits),
                    jnp.mean(fake_logits),
                )

            (d_loss, (d_real, d_fake)), grads = jax.value_and_grad(d_objective, has_aux=True)(d)
            updates, d_opt = d_optimizer.update(grads, d_opt, d)
            d = optax.apply_updates(d, updates)
            d_info = (d_loss, d_real, d_fake)

        def g_objective(g):
            out = g(x)  # (B, H, W, C_y)
            l1 = l1_loss(out, y)
            if not adversarial:
                return l1_weight * l1, (l1, None)
            adv = L.nonsaturating_g(d(x, out).reshape(-1))  # -mean log D(x, G(x))
            return adv + l1_weight * l1, (l1, adv)  # eq. 4, as pix2pix_g

        (g_loss, (l1, adv)), grads = jax.value_and_grad(g_objective, has_aux=True)(state.g)
        updates, g_opt = g_optimizer.update(grads, state.g_opt, state.g)
        g = optax.apply_updates(state.g, updates)
        return Pix2PixState(g, d, g_opt, d_opt), Pix2PixInfo(g_loss, l1, adv, *d_info)

    return Pix2PixTrainer(init, step)
