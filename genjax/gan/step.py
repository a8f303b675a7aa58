"""Alternating GAN training: ``n_critic`` discriminator updates, then one generator update.

One call of :func:`gan_trainer`'s ``step`` is one iteration of Goodfellow et al. (2014),
Algorithm 1 (``k = n_critic`` discriminator steps per generator step), which is also
Arjovsky et al. (2017), Algorithm 1 (with weight clipping) and Gulrajani et al. (2017),
Algorithm 1 (with the gradient penalty) — the variants differ only in the losses and the
regulariser:

    for t = 1 .. n_critic:                                    (lax.scan)
        x ~ data (the t-th slice of the batch), z ~ N(0, I)
        theta_D <- Adam(grad_theta_D [L_D(D(x), D(G(z))) + lambda GP + gamma/2 R1])
        theta_D <- clip(theta_D, -c, c)                      (WGAN only)
    z ~ N(0, I)
    theta_G <- Adam(grad_theta_G L_G(D(G(z))))
    theta_G_ema <- d theta_G_ema + (1 - d) theta_G           (Karras et al. 2018, sec. 4.4;
                                                              Yazici et al. 2019)

Both players' updates are one jit-able function, with two optax optimisers. The batch the
trainer gives (``B`` examples) is split into ``n_critic`` slices of ``B / n_critic``, so every
critic iteration sees fresh data, as the algorithms prescribe; the generator's step draws
``B / n_critic`` latents.

:func:`cyclegan_trainer` is the same pattern for CycleGAN's two translators and two
discriminators (Zhu et al. 2017), with the cycle loss.

The state is a dict (a pytree of arrays, so :func:`genjax.train.fit` checkpoints it):
``{"g": generator params, "d": critic params, "g_opt": ..., "d_opt": ..., "g_ema": ...}``
(``g_ema`` only with ``ema_decay``).

References:
  Goodfellow et al. (2014), "Generative Adversarial Nets", NeurIPS, Algorithm 1.
  Arjovsky, Chintala & Bottou (2017), "Wasserstein GAN", ICML, Algorithm 1.
  Gulrajani et al. (2017), "Improved Training of Wasserstein GANs", NeurIPS, Algorithm 1.
  Yazici et al. (2019), "The Unusual Effectiveness of Averaging in GAN Training", ICLR.
  Zhu et al. (2017), "Unpaired Image-to-Image Translation using Cycle-Consistent
  Adversarial Networks", ICCV.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from genjax.gan import loss as L

PyTree = Any

#: loss name -> (discriminator loss (real_logits, fake_logits), generator loss (fake_logits)).
LOSSES: dict[str, tuple[Callable, Callable]] = {
    "minimax": (L.minimax_d, L.minimax_g),
    "nonsaturating": (L.minimax_d, L.nonsaturating_g),
    "least_squares": (L.least_squares_d, L.least_squares_g),
    "hinge": (L.hinge_d, L.hinge_g),
    "wasserstein": (L.wasserstein_d, L.wasserstein_g),
}


class GANTrainer(NamedTuple):
    """``init(g_params, d_params) -> state`` and ``step(state, batch, key) -> (state, metrics)``."""

    init: Callable[[PyTree, PyTree], dict]
    step: Callable[[dict, Any, jax.Array], tuple[dict, dict]]


def gan_trainer(
    *,
    g_apply: Callable[[PyTree, jax.Array, jax.Array | None], jax.Array],
    d_apply: Callable[[PyTree, jax.Array, jax.Array | None], jax.Array],
    latent_dim: int,
    g_optimizer: optax.GradientTransformation,
    d_optimizer: optax.GradientTransformation,
    loss: str = "nonsaturating",
    n_critic: int = 1,
    gp_weight: float = 0.0,
    r1_weight: float = 0.0,
    clip_value: float | None = None,
    label_smoothing: float = 0.0,
    ema_decay: float | None = None,
    conditional: bool = False,
) -> GANTrainer:
    """Builds the alternating two-player update.

    Args:
      g_apply: ``(g_params, z (m, latent_dim), labels (m,) or None) -> x (m, ...)``.
      d_apply: ``(d_params, x (m, ...), labels (m,) or None) -> logits (m,)``; must treat
        examples independently (the penalties need per-example gradients).
      latent_dim: size of ``z ~ N(0, I)``.
      g_optimizer: optax transformation of the generator.
      d_optimizer: optax transformation of the discriminator.
      loss: one of :data:`LOSSES`.
      n_critic: discriminator updates per generator update, >= 1 (5 for WGAN).
      gp_weight: lambda of :func:`genjax.gan.gradient_penalty`, >= 0 (10 for WGAN-GP).
      r1_weight: gamma of :func:`genjax.gan.r1_penalty` (the loss adds ``gamma/2 R1``), >= 0.
      clip_value: ``c > 0`` of :func:`genjax.gan.weight_clip` after each critic update, or None.
      label_smoothing: one-sided smoothing ``s`` in [0, 1) of the minimax losses.
      ema_decay: ``d`` in [0, 1) for an EMA of the generator's weights, or None.
      conditional: batches are ``(x, labels)`` and both networks get the labels.

    Returns:
      A :class:`GANTrainer`. ``step``'s batch is ``x (B, ...)`` (or ``(x, labels (B,))``),
      ``B`` divisible by ``n_critic``.

    Raises:
      ValueError: naming the argument, for n_critic < 1, a negative penalty weight,
        clip_value <= 0, an unknown loss, label_smoothing outside [0, 1), ema_decay
        outside [0, 1).
    """
    n_critic = L.check_n_critic(n_critic)
    L.check_nonnegative("gp_weight", gp_weight)
    L.check_nonnegative("r1_weight", r1_weight)
    if clip_value is not None and not float(clip_value) > 0.0:
        raise ValueError(f"clip_value must be > 0 (or None), got {clip_value!r}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {tuple(LOSSES)}, got {loss!r}")
    if not 0.0 <= float(label_smoothing) < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
    if label_smoothing and loss not in ("minimax", "nonsaturating"):
        raise ValueError(f"label_smoothing applies to the minimax losses, not loss={loss!r}")
    if ema_decay is not None and not 0.0 <= float(ema_decay) < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1) (or None), got {ema_decay!r}")
    if int(latent_dim) != latent_dim or latent_dim < 1:
        raise ValueError(f"latent_dim must be an integer >= 1, got {latent_dim!r}")
    latent_dim = int(latent_dim)
    d_loss_fn, g_loss_fn = LOSSES[loss]
    if loss in ("minimax", "nonsaturating"):
        base_d = d_loss_fn
        d_loss_fn = lambda r, f: base_d(r, f, label_smoothing=label_smoothing)  # noqa: E731

    def init(g_params: PyTree, d_params: PyTree) -> dict:
        state = {
            "g": g_params,
            "d": d_params,
            "g_opt": g_optimizer.init(g_params),
            "d_opt": d_optimizer.init(d_params),
        }
        if ema_decay is not None:
            state["g_ema"] = jax.tree.map(jnp.copy, g_params)  # a copy: buffers may be donated
        return state

    def _split_batch(batch):
        if conditional:
            x, labels = batch
            return jnp.asarray(x), jnp.asarray(labels)
        return jnp.asarray(batch), None

    def step(state: dict, batch: Any, key: jax.Array) -> tuple[dict, dict]:
        x, labels = _split_batch(batch)
        B = x.shape[0]
        if B % n_critic:
            raise ValueError(f"batch size {B} must be divisible by n_critic={n_critic}")
        m = B // n_critic
        x_slices = x.reshape(n_critic, m, *x.shape[1:])  # (n_critic, m, ...)
        y_slices = None if labels is None else labels.reshape(n_critic, m)
        d_key, g_key = jax.random.split(key)
        g_params = state["g"]

        def critic_update(carry, inputs):
            d_params, d_opt = carry
            x_real, y, k = inputs
            z_key, gp_key = jax.random.split(k)
            z = jax.random.normal(z_key, (m, latent_dim), x_real.dtype)  # z ~ N(0, I)
            fake = jax.lax.stop_gradient(g_apply(g_params, z, y))  # G is fixed here

            def objective(dp):
                critic = lambda v: d_apply(dp, v, y)  # noqa: E731
                real_logits, fake_logits = critic(x_real), critic(fake)
                d_loss = d_loss_fn(real_logits, fake_logits)
                total = d_loss
                metrics = {
                    "d_loss": d_loss,
                    "d_real": jnp.mean(real_logits),
                    "d_fake": jnp.mean(fake_logits),
                }
                if gp_weight:
                    gp = L.gradient_penalty(gp_key, critic, x_real, fake)
                    total = total + gp_weight * gp  # L_D + lambda GP (Gulrajani et al., eq. 3)
                    metrics["gradient_penalty"] = gp
                if r1_weight:
                    r1 = L.r1_penalty(critic, x_real)
                    total = total + 0.5 * r1_weight * r1  # L_D + gamma/2 R1 (Mescheder, eq. 9)
                    metrics["r1_penalty"] = r1
                return total, metrics

            grads, metrics = jax.grad(objective, has_aux=True)(d_params)
            updates, d_opt = d_optimizer.update(grads, d_opt, d_params)
            d_params = optax.apply_updates(d_params, updates)
            if clip_value is not None:
                d_params = L.weight_clip(d_params, clip_value)  # Arjovsky et al., line 7
            return (d_params, d_opt), metrics

        critic_keys = jax.random.split(d_key, n_critic)
        (d_params, d_opt), d_metrics = jax.lax.scan(
            critic_update, (state["d"], state["d_opt"]), (x_slices, y_slices, critic_keys)
        )
        d_metrics = {k: v[-1] for k, v in d_metrics.items()}  # the last critic iteration's

        y_g = None if y_slices is None else y_slices[-1]
        z = jax.random.normal(g_key, (m, latent_dim), x.dtype)

        def g_objective(gp):
            fake_logits = d_apply(d_params, g_apply(gp, z, y_g), y_g)
            return g_loss_fn(fake_logits)

        g_loss, g_grads = jax.value_and_grad(g_objective)(g_params)
        g_updates, g_opt = g_optimizer.update(g_grads, state["g_opt"], g_params)
        g_params = optax.apply_updates(g_params, g_updates)
        new = {"g": g_params, "d": d_params, "g_opt": g_opt, "d_opt": d_opt}
        if ema_decay is not None:
            # theta_ema <- d theta_ema + (1 - d) theta on real leaves (counters are copied).
            def average(e, p):
                if not jnp.issubdtype(p.dtype, jnp.inexact):
                    return p
                return (ema_decay * e + (1.0 - ema_decay) * p).astype(p.dtype)

            new["g_ema"] = jax.tree.map(average, state["g_ema"], g_params)
        # "loss" (the trainer's progress bar) is the critic's: -V(D, G) for the minimax losses.
        metrics = {"loss": d_metrics["d_loss"], **d_metrics, "g_loss": g_loss}
        return new, metrics

    return GANTrainer(init, step)


class CycleGANTrainer(NamedTuple):
    """``init(gen, disc) -> state``; ``step(state, batch, key) -> (state, metrics)``."""

    init: Callable[[PyTree, PyTree], dict]
    step: Callable[[dict, Any, jax.Array], tuple[dict, dict]]


def cyclegan_trainer(
    *,
    translate: Callable[[PyTree, jax.Array], jax.Array],
    discriminate: Callable[[PyTree, jax.Array], jax.Array],
    g_optimizer: optax.GradientTransformation,
    d_optimizer: optax.GradientTransformation,
    cycle_weight: float = 10.0,
    identity_weight: float = 0.0,
) -> CycleGANTrainer:
    """CycleGAN's update (Zhu et al. 2017, sec. 3-4): two translators, two discriminators.

    ``G: X -> Y`` and ``F: Y -> X`` with discriminators ``D_Y``, ``D_X``, least-squares
    adversarial losses (sec. 4, "Training details") and the cycle loss (eq. 2):

        L_gen  = 1/2 E_x (D_Y(G(x)) - 1)^2 + 1/2 E_y (D_X(F(y)) - 1)^2
                 + lambda_cyc L_cyc(G, F) + lambda_id (E_y |G(y) - y| + E_x |F(x) - x|)
        L_disc = LSGAN_D(D_Y; y, G(x)) + LSGAN_D(D_X; x, F(y))                    (eq. 1, LSGAN)

    One step updates both translators (one optimiser) with the current discriminators,
    then both discriminators on the new translators' outputs (Zhu et al. use a history of
    generated images; at this size the current ones suffice).

    Args:
      translate: ``(translator_params, images (B, H, W, C)) -> (B, H, W, C)``, used for
        both ``G = translate(gen["G"], .)`` and ``F = translate(gen["F"], .)``.
      discriminate: ``(disc_params, images) -> logits (B,)``, for ``disc["D_X"]`` and
        ``disc["D_Y"]``.
      g_optimizer: optax transformation of ``{"G", "F"}``.
      d_optimizer: optax transformation of ``{"D_X", "D_Y"}``.
      cycle_weight: lambda of the cycle loss, >= 0 (10 in the paper, eq. 3).
      identity_weight: weight of the identity loss, >= 0 (Zhu et al., sec. 5.2).

    Returns:
      A :class:`CycleGANTrainer`; ``step``'s batch is ``(x (B, ...), y (B, ...))``, unpaired.
    """
    L.check_nonnegative("cycle_weight", cycle_weight)
    L.check_nonnegative("identity_weight", identity_weight)

    def init(gen_params: PyTree, disc_params: PyTree) -> dict:
        return {"gen": gen_params, "disc": disc_params,
                "g_opt": g_optimizer.init(gen_params), "d_opt": d_optimizer.init(disc_params)}

    def step(state: dict, batch: Any, key: jax.Array) -> tuple[dict, dict]:
        del key  # the update is deterministic given the batch
        x, y = batch
        disc = state["disc"]

        def gen_objective(gen):
            G = lambda v: translate(gen["G"], v)  # noqa: E731  X -> Y
            F = lambda v: translate(gen["F"], v)  # noqa: E731  Y -> X
            adv = L.least_squares_g(discriminate(disc["D_Y"], G(x))) + L.least_squares_g(
                discriminate(disc["D_X"], F(y)))
            cyc = L.cycle_consistency_loss(x, y, G, F)  # Zhu et al. (2017), eq. 2
            total = adv + cycle_weight * cyc  # eq. 3
            if identity_weight:
                total = total + identity_weight * (jnp.mean(jnp.abs(G(y) - y))
                                                   + jnp.mean(jnp.abs(F(x) - x)))
            return total, {"g_adv": adv, "cycle_loss": cyc}

        (g_total, g_metrics), g_grads = jax.value_and_grad(gen_objective, has_aux=True)(
            state["gen"])
        g_updates, g_opt = g_optimizer.update(g_grads, state["g_opt"], state["gen"])
        gen = optax.apply_updates(state["gen"], g_updates)
        fake_y = jax.lax.stop_gradient(translate(gen["G"], x))
        fake_x = jax.lax.stop_gradient(translate(gen["F"], y))

        def disc_objective(d):
            return L.least_squares_d(discriminate(d["D_Y"], y), discriminate(d["D_Y"], fake_y)) + (
                L.least_squares_d(discriminate(d["D_X"], x), discriminate(d["D_X"], fake_x)))

        d_loss, d_grads = jax.value_and_grad(disc_objective)(disc)
        d_updates, d_opt = d_optimizer.update(d_grads, state["d_opt"], disc)
        disc = optax.apply_updates(disc, d_updates)
        new = {"gen": gen, "disc": disc, "g_opt": g_opt, "d_opt": d_opt}
        return new, {"loss": g_total, **g_metrics, "d_loss": d_loss}

    return CycleGANTrainer(init, step)
