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

State that is not trained (a Module's ``nnx.Variable``s that are not ``nnx.Param``: the
power-iteration vectors ``u`` of :class:`genjax.gan.SpectralNorm`, StyleGAN's tracked mean
``w``) is carried in the state: each critic update first advances every spectral-norm ``u``
of the critic by one step of Miyato et al. (2018), Algorithm 1
(:func:`genjax.gan.advance_spectral_vectors`) and the optimiser's update leaves these
buffers as they are; the EMA generator copies the generator's buffers instead of averaging
them (as StyleGAN2-ADA's ``G_ema`` does).

A generator with noise inputs beyond ``z`` (StyleGAN's per-layer noise images and its
style-mixing latents) is trained with ``g_noise(key, g, m) -> noise``: the trainer then
calls ``g(z, noise)`` with fresh noise at every use.

:func:`cyclegan_trainer` is the same pattern for CycleGAN's two translators and two
discriminators (Zhu et al. 2017), with the cycle loss.

The models are the networks themselves (DESIGN.md's model protocol): the state holds the
generator and the critic ``nnx.Module``s, which are pytrees, so ``jax.grad`` differentiates
them, optax updates them and :func:`genjax.train.fit` checkpoints them -- no ``(graphdef,
state)`` split, no ``apply`` functions. A training step updates its models, so here the
models are part of the state: ``step(state, batch, key) -> (state, info)``, the shape of a
loss's ``(model, batch, key)`` with the model and its optimiser states together, and an
:class:`GANInfo` of the step's diagnostics.

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
from flax import nnx

from genjax import checks
from genjax.gan import loss as L
from genjax.gan import penalties as P
from genjax.gan.sample import sample_from_noise
from genjax.gan.spectral import advance_spectral_vectors
from genjax.model import Model

PyTree = Any

#: loss name -> (discriminator loss (real_logits, fake_logits), generator loss (fake_logits)).
LOSSES: dict[str, tuple[Callable, Callable]] = {
    "minimax": (L.minimax_d, L.minimax_g),
    "nonsaturating": (L.minimax_d, L.nonsaturating_g),
    "least_squares": (L.least_squares_d, L.least_squares_g),
    "hinge": (L.hinge_d, L.hinge_g),
    "wasserstein": (L.wasserstein_d, L.wasserstein_g),
}


class GANState(NamedTuple):
    """The two players and their optimisers: a pytree of arrays.

    Attributes:
      g: the generator, ``g(z (m, latent_dim) [, labels (m,)]) -> x (m, ...)``; a Module
        with a ``latent_dim`` attribute.
      d: the critic, ``d(x (m, ...) [, labels (m,)]) -> logits (m,)``; must treat examples
        independently (the penalties need per-example gradients).
      g_opt: the generator optimiser's state.
      d_opt: the critic optimiser's state.
      g_ema: the exponential moving average of ``g`` (Karras et al. 2018; Yazici et al.
        2019), or None without ``ema_decay``.
    """

    g: Model
    d: Model
    g_opt: PyTree
    d_opt: PyTree
    g_ema: Model | None = None


class GANInfo(NamedTuple):
    """Diagnostics of one step (the critic's entries from its last of ``n_critic`` updates).

    Attributes:
      loss: the critic's loss ``L_D`` (the trainer's progress figure; ``-V(D, G)`` for the
        minimax losses).
      d_loss: the same ``L_D``, without penalties.
      d_real: mean critic output on data.
      d_fake: mean critic output on generated samples.
      g_loss: the generator's loss ``L_G`` before its update.
      gradient_penalty: ``GP`` (without lambda), or None when ``gp_weight = 0``.
      r1_penalty: ``R1`` (without gamma/2), or None when ``r1_weight = 0``.
    """

    loss: jax.Array
    d_loss: jax.Array
    d_real: jax.Array
    d_fake: jax.Array
    g_loss: jax.Array
    gradient_penalty: jax.Array | None = None
    r1_penalty: jax.Array | None = None

    def metrics(self) -> dict[str, jax.Array]:
        """The diagnostics as a flat dict of scalars (the trainer's metrics), Nones left out."""
        return {k: v for k, v in self._asdict().items() if v is not None}


class GANTrainer(NamedTuple):
    """``init(g, d) -> GANState`` and ``step(state, batch, key) -> (GANState, GANInfo)``.

    Example:
      >>> trainer = gan_trainer(g_optimizer=optax.sgd(0.1), d_optimizer=optax.sgd(0.1),
      ...                       loss="hinge")
      >>> isinstance(trainer, GANTrainer), callable(trainer.init), callable(trainer.step)
      (True, True, True)
    """

    init: Callable[[Model, Model], GANState]
    step: Callable[[GANState, Any, jax.Array], tuple[GANState, GANInfo]]


def _call_critic(d: Model, labels: jax.Array | None, x: jax.Array) -> jax.Array:
    return d(x) if labels is None else d(x, labels)


def _buffer_flags(model: Model) -> list[bool]:
    """One flag per array leaf of ``model``: True where the leaf is the value of a non-Param
    ``nnx.Variable`` (a buffer: state carried, not trained)."""
    is_variable = lambda v: isinstance(v, nnx.Variable)  # noqa: E731
    flags = jax.tree.map(lambda v: is_variable(v) and not isinstance(v, nnx.Param), model,
                         is_leaf=is_variable)
    return jax.tree.leaves(flags)


def keep_buffers(updated: Model, source: Model) -> Model:
    """``updated`` with its buffers (non-Param ``nnx.Variable`` values) taken from ``source``.

    After an optimiser step the buffers (spectral-norm ``u``, a tracked mean) must be the ones
    the step computed, whatever the optimiser (weight decay would otherwise shrink them).

    Args:
      updated: a model, e.g. ``optax.apply_updates(model, updates)``.
      source: a model of the same structure whose buffers are kept.

    Returns:
      A model of the same structure: ``updated``'s parameters, ``source``'s buffers.

    Example:
      >>> sn = SpectralNorm(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), rngs=nnx.Rngs(1))
      >>> moved = jax.tree.map(lambda a: a + 1.0, sn)  # moves the kernel and u
      >>> kept = keep_buffers(moved, sn)
      >>> bool(jnp.array_equal(kept.u[...], sn.u[...])), bool(jnp.array_equal(
      ...     kept.layer.kernel[...], moved.layer.kernel[...]))
      (True, True)
    """
    flags = _buffer_flags(source)
    new_leaves, treedef = jax.tree.flatten(updated)
    old_leaves = jax.tree.leaves(source)
    if not len(flags) == len(new_leaves) == len(old_leaves):
        raise ValueError("updated and source must be models of the same structure")
    leaves = [o if f else n for f, n, o in zip(flags, new_leaves, old_leaves, strict=True)]
    return jax.tree.unflatten(treedef, leaves)


def critic_model(d: Model, labels: jax.Array | None = None) -> Model:
    """The critic ``x -> d(x [, labels])`` as a callable pytree (``d``'s weights traced).

    What :func:`genjax.gan.gradient_penalty` and :func:`genjax.gan.r1_penalty` take: a
    class-conditional discriminator with its labels bound (``labels (m,)``), or ``d``.
    """
    return jax.tree_util.Partial(_call_critic, d, labels)


def gan_trainer(
    *,
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
    g_noise: Callable[[jax.Array, Model, int], Any] | None = None,
) -> GANTrainer:
    """Builds the alternating two-player update.

    Args:
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
      g_noise: ``g_noise(key, g, m) -> noise``, the generator's noise inputs for ``m``
        samples (e.g. :func:`genjax.gan.stylegan_noise`); the generator is then called
        ``g(z, noise)``. None: ``g(z [, labels])``. Not with ``conditional``.

    Returns:
      A :class:`GANTrainer`. ``init(g, d)`` takes the two Modules (see :class:`GANState`);
      ``step``'s batch is ``x (B, ...)`` (or ``(x, labels (B,))``), ``B`` divisible by
      ``n_critic``; latents are ``z ~ N(0, I)`` of size ``state.g.latent_dim``.

    Raises:
      ValueError: naming the argument, for n_critic < 1, a negative penalty weight,
        clip_value <= 0, an unknown loss, label_smoothing outside [0, 1), ema_decay
        outside [0, 1), g_noise not callable or given with conditional.

    Example:
      >>> trainer = gan_trainer(g_optimizer=optax.adam(1e-3), d_optimizer=optax.adam(1e-3))
      >>> g = MLPGenerator(4, (8,), 2, rngs=nnx.Rngs(0))
      >>> d = MLPDiscriminator(2, (8,), rngs=nnx.Rngs(1))
      >>> state, info = trainer.step(trainer.init(g, d), jnp.ones((4, 2)), jax.random.key(0))
      >>> info.d_loss.shape, bool(jnp.isfinite(info.g_loss))
      ((), True)
    """
    for name, opt in (("g_optimizer", g_optimizer), ("d_optimizer", d_optimizer)):
        if not (callable(getattr(opt, "init", None)) and callable(getattr(opt, "update", None))):
            raise TypeError(f"{name} must be an optax.GradientTransformation, got {opt!r}")
    n_critic = checks.positive_int("n_critic", n_critic)
    checks.nonnegative("gp_weight", gp_weight)
    checks.nonnegative("r1_weight", r1_weight)
    if clip_value is not None:
        checks.positive("clip_value", clip_value)
    checks.one_of("loss", loss, tuple(LOSSES))
    checks.in_range("label_smoothing", label_smoothing, 0.0, 1.0, high_open=True)
    if label_smoothing and loss not in ("minimax", "nonsaturating"):
        raise ValueError(f"label_smoothing applies to the minimax losses, not loss={loss!r}")
    if ema_decay is not None:
        checks.in_range("ema_decay", ema_decay, 0.0, 1.0, high_open=True)
    if g_noise is not None and not callable(g_noise):
        raise ValueError(f"g_noise must be a function (key, g, m) -> noise, got {g_noise!r}")
    if g_noise is not None and conditional:
        raise ValueError("g_noise is for unconditional generators: not with conditional=True")
    d_loss_fn, g_loss_fn = LOSSES[loss]
    if loss in ("minimax", "nonsaturating"):
        base_d = d_loss_fn
        d_loss_fn = lambda r, f: base_d(r, f, label_smoothing=label_smoothing)  # noqa: E731

    def generate(g: Model, key: jax.Array, z: jax.Array, y: jax.Array | None) -> jax.Array:
        if g_noise is None:
            return sample_from_noise(g, z, y)
        return g(z, g_noise(key, g, z.shape[0]))  # G(z, noise): StyleGAN's noise inputs

    def init(g: Model, d: Model) -> GANState:
        g_ema = None if ema_decay is None else jax.tree.map(jnp.copy, g)  # buffers may be donated
        return GANState(g, d, g_optimizer.init(g), d_optimizer.init(d), g_ema)

    def step(state: GANState, batch: Any, key: jax.Array) -> tuple[GANState, GANInfo]:
        x, labels = (batch if conditional else (batch, None))
        x = jnp.asarray(x)
        B = x.shape[0]
        if B % n_critic:
            raise ValueError(f"batch size {B} must be divisible by n_critic={n_critic}")
        m = B // n_critic
        latent_dim = state.g.latent_dim
        x_slices = x.reshape(n_critic, m, *x.shape[1:])  # (n_critic, m, ...)
        y_slices = None if labels is None else jnp.asarray(labels).reshape(n_critic, m)
        d_key, g_key = jax.random.split(key)
        g = state.g

        def critic_update(carry, inputs):
            d, d_opt = carry
            x_real, y, k = inputs
            z_key, gp_key = jax.random.split(k)
            noise_key = jax.random.fold_in(z_key, 1)
            z = jax.random.normal(z_key, (m, latent_dim), x_real.dtype)  # z ~ N(0, I)
            fake = jax.lax.stop_gradient(generate(g, noise_key, z, y))  # G is fixed here
            # Miyato et al. (2018), Algorithm 1: advance each spectral-norm u once (state)
            d = advance_spectral_vectors(d) if isinstance(d, nnx.Module) else d

            def objective(d):
                critic = critic_model(d, y)
                real_logits, fake_logits = critic(x_real), critic(fake)
                d_loss = d_loss_fn(real_logits, fake_logits)
                total, gp, r1 = d_loss, None, None
                if gp_weight:
                    gp = P.gradient_penalty(gp_key, critic, x_real, fake)
                    total = total + gp_weight * gp  # L_D + lambda GP (Gulrajani et al., eq. 3)
                if r1_weight:
                    r1 = P.r1_penalty(critic, x_real)
                    total = total + 0.5 * r1_weight * r1  # L_D + gamma/2 R1 (Mescheder, eq. 9)
                return total, (d_loss, jnp.mean(real_logits), jnp.mean(fake_logits), gp, r1)

            grads, diagnostics = jax.grad(objective, has_aux=True)(d)
            updates, d_opt = d_optimizer.update(grads, d_opt, d)
            d = keep_buffers(optax.apply_updates(d, updates), d)  # u is state, not trained
            if clip_value is not None:
                d = P.weight_clip(d, clip_value)  # Arjovsky et al., line 7
            return (d, d_opt), diagnostics

        critic_keys = jax.random.split(d_key, n_critic)
        (d, d_opt), diagnostics = jax.lax.scan(
            critic_update, (state.d, state.d_opt), (x_slices, y_slices, critic_keys)
        )
        d_loss, d_real, d_fake, gp, r1 = jax.tree.map(lambda v: v[-1], diagnostics)  # last

        y_g = None if y_slices is None else y_slices[-1]
        z = jax.random.normal(g_key, (m, latent_dim), x.dtype)
        g_noise_key = jax.random.fold_in(g_key, 1)

        def g_objective(g):
            return g_loss_fn(critic_model(d, y_g)(generate(g, g_noise_key, z, y_g)))

        g_loss, g_grads = jax.value_and_grad(g_objective)(g)
        g_updates, g_opt = g_optimizer.update(g_grads, state.g_opt, g)
        g = keep_buffers(optax.apply_updates(g, g_updates), g)
        g_ema = state.g_ema
        if ema_decay is not None:
            # theta_ema <- d theta_ema + (1 - d) theta on real leaves; counters and buffers
            # (a tracked mean w, a spectral-norm u) are copied (StyleGAN2-ADA's G_ema).
            def average(e, p, buffer):
                if buffer or not jnp.issubdtype(p.dtype, jnp.inexact):
                    return p
                return (ema_decay * e + (1.0 - ema_decay) * p).astype(p.dtype)

            ema_leaves, treedef = jax.tree.flatten(g_ema)
            g_ema = jax.tree.unflatten(treedef, [
                average(e, p, b) for e, p, b in
                zip(ema_leaves, jax.tree.leaves(g), _buffer_flags(g), strict=True)])
        info = GANInfo(d_loss, d_loss, d_real, d_fake, g_loss, gp, r1)
        return GANState(g, d, g_opt, d_opt, g_ema), info

    return GANTrainer(init, step)


class CycleGANState(NamedTuple):
    """Both translators and both discriminators, with their optimisers.

    Attributes:
      gen: ``{"G": X -> Y, "F": Y -> X}`` translator Modules, ``(B, H, W, C) -> (B, H, W, C)``.
      disc: ``{"D_X", "D_Y"}`` discriminator Modules, ``(B, H, W, C) -> (B,)``.
      g_opt: optimiser state of ``gen``.
      d_opt: optimiser state of ``disc``.
    """

    gen: dict[str, Model]
    disc: dict[str, Model]
    g_opt: PyTree
    d_opt: PyTree


class CycleGANInfo(NamedTuple):
    """Diagnostics of one CycleGAN step: ``loss`` (the translators' total), ``g_adv`` (their
    adversarial part), ``cycle_loss`` (eq. 2) and ``d_loss`` (both discriminators')."""

    loss: jax.Array
    g_adv: jax.Array
    cycle_loss: jax.Array
    d_loss: jax.Array

    def metrics(self) -> dict[str, jax.Array]:
        """The diagnostics as a flat dict of scalars."""
        return self._asdict()


class CycleGANTrainer(NamedTuple):
    """``init(gen, disc) -> CycleGANState``; ``step(state, batch, key) -> (state, info)``.

    Example:
      >>> trainer = cyclegan_trainer(g_optimizer=optax.sgd(0.1), d_optimizer=optax.sgd(0.1))
      >>> isinstance(trainer, CycleGANTrainer), callable(trainer.step)
      (True, True)
    """

    init: Callable[[dict, dict], CycleGANState]
    step: Callable[[CycleGANState, Any, jax.Array], tuple[CycleGANState, CycleGANInfo]]


def cyclegan_trainer(
    *,
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
      g_optimizer: optax transformation of ``{"G", "F"}``.
      d_optimizer: optax transformation of ``{"D_X", "D_Y"}``.
      cycle_weight: lambda of the cycle loss, >= 0 (10 in the paper, eq. 3).
      identity_weight: weight of the identity loss, >= 0 (Zhu et al., sec. 5.2).

    Returns:
      A :class:`CycleGANTrainer`: ``init(gen, disc)`` takes the Modules (see
      :class:`CycleGANState`); ``step``'s batch is ``(x (B, ...), y (B, ...))``, unpaired.

    Example:
      >>> trainer = cyclegan_trainer(g_optimizer=optax.adam(1e-3), d_optimizer=optax.adam(1e-3))
      >>> gen = {"G": Translator(1, hidden=4, rngs=nnx.Rngs(0)),
      ...        "F": Translator(1, hidden=4, rngs=nnx.Rngs(1))}
      >>> disc = {name: DCGANDiscriminator((8, 8, 1), base_channels=4, feature_dim=8,
      ...                                  rngs=nnx.Rngs(i))
      ...         for i, name in enumerate(("D_X", "D_Y"))}
      >>> batch = (jnp.zeros((2, 8, 8, 1)), jnp.ones((2, 8, 8, 1)))
      >>> state, info = trainer.step(trainer.init(gen, disc), batch, jax.random.key(0))
      >>> sorted(state.gen)
      ['F', 'G']
    """
    for name, opt in (("g_optimizer", g_optimizer), ("d_optimizer", d_optimizer)):
        if not (callable(getattr(opt, "init", None)) and callable(getattr(opt, "update", None))):
            raise TypeError(f"{name} must be an optax.GradientTransformation, got {opt!r}")
    checks.nonnegative("cycle_weight", cycle_weight)
    checks.nonnegative("identity_weight", identity_weight)

    def init(gen: dict, disc: dict) -> CycleGANState:
        return CycleGANState(gen, disc, g_optimizer.init(gen), d_optimizer.init(disc))

    def step(state: CycleGANState, batch: Any,
             key: jax.Array) -> tuple[CycleGANState, CycleGANInfo]:
        del key  # the update is deterministic given the batch
        x, y = batch
        disc = state.disc

        def gen_objective(gen):
            G, F = gen["G"], gen["F"]  # X -> Y, Y -> X
            adv = L.least_squares_g(disc["D_Y"](G(x))) + L.least_squares_g(disc["D_X"](F(y)))
            cyc = P.cycle_consistency_loss(x, y, G, F)  # Zhu et al. (2017), eq. 2
            total = adv + cycle_weight * cyc  # eq. 3
            if identity_weight:
                total = total + identity_weight * (jnp.mean(jnp.abs(G(y) - y))
                                                   + jnp.mean(jnp.abs(F(x) - x)))
            return total, (adv, cyc)

        (g_total, (adv, cyc)), g_grads = jax.value_and_grad(gen_objective, has_aux=True)(
            state.gen)
        g_updates, g_opt = g_optimizer.update(g_grads, state.g_opt, state.gen)
        gen = optax.apply_updates(state.gen, g_updates)
        fake_y = jax.lax.stop_gradient(gen["G"](x))
        fake_x = jax.lax.stop_gradient(gen["F"](y))

        def disc_objective(d):
            return (L.least_squares_d(d["D_Y"](y), d["D_Y"](fake_y))
                    + L.least_squares_d(d["D_X"](x), d["D_X"](fake_x)))

        d_loss, d_grads = jax.value_and_grad(disc_objective)(disc)
        d_updates, d_opt = d_optimizer.update(d_grads, state.d_opt, disc)
        disc = optax.apply_updates(disc, d_updates)
        return CycleGANState(gen, disc, g_opt, d_opt), CycleGANInfo(g_total, adv, cyc, d_loss)

    return CycleGANTrainer(init, step)
