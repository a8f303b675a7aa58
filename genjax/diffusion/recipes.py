"""``genjax train ddpm | ddpm-digits | consistency``: the diffusion family's training jobs.

* ``ddpm`` (the default of ``genjax train``): the simplified DDPM objective (Ho et al. 2020,
  eq. 14) with an :class:`genjax.nn.MLPDenoiser` on the 2-D ring, an EMA of the weights,
  sampled by DDPM, DDIM or DPM-Solver++ (``genjax sample RUN --sampler ddim --steps 20``).
  The report scatters samples over the data and gives the energy distance to held-out data
  and the fraction of the ring's 8 modes that the samples cover, for every sampler.
* ``ddpm-digits``: a class-conditional :class:`genjax.nn.UNet` on the 8x8 digits, trained
  with label dropout for classifier-free guidance (Ho & Salimans 2022); the report draws a
  grid of samples, one row per class, and scores them with a classifier trained on the real
  digits (the fraction of samples classified as the class they were drawn for).
* ``consistency``: consistency training (Song et al. 2023, Algorithm 3) of an MLP on the
  ring with the improvements of Song & Dhariwal (2023) — target network = online network
  (``mu0 = 0`` in the CT schedule), pseudo-Huber distance, ``1/(t_{n+1} - t_n)`` weights,
  lognormal noise levels — sampled from an EMA of the weights; the report compares
  one-step samples with the multistep sampler (Algorithm 1).

Data are standardised by statistics fixed at ``init`` (stored in ``params`` next to the
network and kept out of the gradient), so the same recipe works with ``--data moons``.
The network is kept in ``params`` as the ``nnx.Module`` itself (a pytree since flax 0.12): the
trainer differentiates it, optax updates it and the checkpoints store its leaves, and the
public samplers and losses take it as their model (traced, so new weights never recompile).
The recipes call the family's public functions only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from genjax import data
from genjax import diffusion as d
from genjax.recipe import Recipe

PyTree = Any

SAMPLERS = ("ddpm", "ddim", "dpm_solver_pp")
REPORT_SAMPLES = 2000  # samples drawn per sampler by the 2-D reports
DEFAULT_STEPS = {"ddim": 50, "dpm_solver_pp": 20}

# --------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------


def _standardise_stats(x: jax.Array) -> dict:
    """Per-dimension mean and one global std of ``x (n, ...)`` (fixed at init)."""
    x = jnp.asarray(x, jnp.float32)
    return {"shift": jnp.mean(x, axis=0), "scale": jnp.std(x) + 1e-6}


def _normalise(params: dict, x: jax.Array) -> jax.Array:
    shift = jax.lax.stop_gradient(params["shift"])[None]  # (1, ...)
    scale = jax.lax.stop_gradient(params["scale"])
    return (x - shift) / scale


def _denormalise(params: dict, x: jax.Array) -> jax.Array:
    return x * params["scale"] + params["shift"][None]


def _check_sampler(sampler: str) -> None:
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")


def sampler_steps(sampler: str, steps: int | None, schedule: d.Schedule) -> int | None:
    """``steps`` checked for ``sampler`` and defaulted (``DEFAULT_STEPS``); None for DDPM,
    which visits every step of ``schedule``. A ValueError names a bad sampler or count."""
    _check_sampler(sampler)
    if sampler == "ddpm":
        if steps is not None and steps != schedule.num_steps:
            raise ValueError(
                f"steps: the ddpm sampler visits all {schedule.num_steps} steps, got {steps}; "
                "use --sampler ddim or dpm_solver_pp for fewer"
            )
        return None
    steps = DEFAULT_STEPS[sampler] if steps is None else int(steps)
    if not 1 <= steps <= schedule.num_steps:
        raise ValueError(f"steps must be in [1, {schedule.num_steps}], got {steps}")
    return steps


def run_sampler(
    key, model, shape, schedule, sampler: str, steps: int | None, clip_x0: float | None = None
) -> jax.Array:
    """``shape`` samples of ``model(x_t, t) -> eps`` by one of the public samplers.

    ``clip_x0`` clips every sampler's x0 estimate to the data range (Ho et al.'s DDPM code;
    diffusers' ``clip_sample`` for DDIM; the "thresholding" of DPM-Solver++ in pixel space).
    Image models need it: at the first step of a cosine schedule ``alpha_t`` is ~1e-2, and
    ``x0 = (x_t - sigma_t eps) / alpha_t`` multiplies the network's eps error by ~100 --
    unclipped, DDIM-50 on a trained ``ddpm-digits`` run ends at pixel values of +-6000.
    """
    steps = sampler_steps(sampler, steps, schedule)
    if sampler == "ddpm":
        return d.ddpm_sample(key, model, shape, schedule, clip_x0=clip_x0)
    if sampler == "ddim":
        return d.ddim_sample(key, model, shape, schedule, num_steps=steps, clip_x0=clip_x0)
    return d.dpm_solver_pp_sample(key, model, shape, schedule, num_steps=steps, clip_x0=clip_x0)


def _ring_quality(samples: jax.Array, test: jax.Array) -> dict:
    from genjax import metrics, targets

    truth = targets.ring()
    n = min(samples.shape[0], test.shape[0])
    return {
        "energy_distance": float(metrics.energy_distance(samples[:n], test[:n])),
        "mode_coverage": float(metrics.mode_coverage(samples, truth.means, 3 * 0.3)),
    }


# --------------------------------------------------------------------------------------
# ddpm on the ring
# --------------------------------------------------------------------------------------

RING_SCHEDULE = d.linear(1000)
RING_HIDDEN = (256, 256, 256)


def _ring_net(key: jax.Array) -> nnx.Module:
    from genjax.nn import MLPDenoiser

    return MLPDenoiser(2, RING_HIDDEN, time_embed_dim=64, rngs=nnx.Rngs(key))


def ddpm_init(key: jax.Array, train_data: jax.Array) -> dict:
    """``{"net": MLPDenoiser (the nnx module), "shift": (2,), "scale": ()}``."""
    return {"net": _ring_net(key), **_standardise_stats(train_data)}


def ddpm_loss(params: dict, batch: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
    """Simplified DDPM loss (eps-prediction) on a standardised batch ``(batch, 2)``."""
    x0 = _normalise(params, batch)
    return d.loss(params["net"], x0, key, schedule=RING_SCHEDULE)


def ddpm_recipe_sample(
    key: jax.Array, params: dict, n: int, *, sampler: str = "ddpm", steps: int | None = None
) -> jax.Array:
    """``n`` samples ``(n, 2)`` by ``sampler`` (ddpm: all 1000 steps; ddim: 50 by default;
    dpm_solver_pp: 20 by default), or ``steps`` steps."""
    steps = None if steps is None else int(steps)
    x = run_sampler(key, params["net"], (int(n), 2), RING_SCHEDULE, sampler, steps)
    return _denormalise(params, x)


def ddpm_report(key, params, train_data, test_data, out_dir: Path) -> dict:
    """``samples.png`` (DDPM samples over the data) and, per sampler, the energy distance
    to held-out data and the ring-mode coverage; ``data_energy_distance`` is the same
    statistic between two halves of real data (the floor)."""
    from genjax import plotting

    test = jnp.asarray(test_data)
    keys = jax.random.split(key, len(SAMPLERS))
    out: dict = {}
    for sampler, k in zip(SAMPLERS, keys, strict=True):
        samples = ddpm_recipe_sample(k, params, REPORT_SAMPLES, sampler=sampler)
        quality = _ring_quality(samples, test)
        if sampler == "ddpm":
            plotting.scatter_2d(
                samples, np.asarray(train_data)[:5000], Path(out_dir) / "samples.png",
                title="ddpm on ring (1000 DDPM steps)",
            )
            out.update(quality)
        else:
            out.update({f"{name}_{sampler}": v for name, v in quality.items()})
    train = jnp.asarray(train_data)
    n = min(REPORT_SAMPLES, train.shape[0], test.shape[0])
    out["data_energy_distance"] = _ring_quality(train[:n], test[:n])["energy_distance"]
    return out


# --------------------------------------------------------------------------------------
# ddpm-digits: class-conditional U-Net with classifier-free guidance
# --------------------------------------------------------------------------------------

DIGITS_SCHEDULE = d.cosine(1000)
NUM_CLASSES = 10
NULL_LABEL = NUM_CLASSES  # the UNet's extra embedding row
P_UNCOND = 0.1  # label dropout (Ho & Salimans 2022 use 0.1-0.2)
GUIDANCE_SCALE = 2.0


def _digits_net(key: jax.Array) -> nnx.Module:
    from genjax.nn import UNet

    return UNet(
        1, base_channels=16, channel_mults=(1, 2), num_res_blocks=1, attention_levels=(1,),
        num_classes=NUM_CLASSES, num_heads=4, num_groups=8, rngs=nnx.Rngs(key),
    )


def digits_init(key: jax.Array, train_data: tuple) -> dict:
    """``{"net": UNet (the nnx module)}``; images are mapped to [-1, 1] (no statistics)."""
    del train_data
    return {"net": _digits_net(key)}


def digits_loss(params: dict, batch: tuple, key: jax.Array) -> tuple[jax.Array, dict]:
    """DDPM loss with label dropout: ``batch = (images (b, 8, 8, 1), labels (b,))``."""
    images, labels = batch
    drop_key, loss_key = jax.random.split(key)
    labels = d.label_dropout(drop_key, labels, P_UNCOND, NULL_LABEL)  # Ho & Salimans
    x0 = 2.0 * images - 1.0  # [0, 1] -> [-1, 1]
    model = d.with_labels(params["net"], labels)  # (x_t, t) -> net(x_t, t, labels)
    return d.loss(model, x0, loss_key, schedule=DIGITS_SCHEDULE)


def digits_sample(
    key: jax.Array,
    params: dict,
    n: int,
    *,
    sampler: str = "ddpm",
    steps: int | None = None,
    labels: Any = None,
    guidance_scale: float = GUIDANCE_SCALE,
) -> jax.Array:
    """``n`` digits ``(n, 8, 8, 1)`` in [0, 1] with classifier-free guidance.

    ``labels`` (n,) default to ``0, 1, ..., 9, 0, 1, ...``; ``guidance_scale`` 0 samples
    the unconditional model, 1 the conditional one. The scale is an array leaf of the guided
    model: one compiled sampler serves every scale.
    """
    steps = sampler_steps(sampler, steps, DIGITS_SCHEDULE)  # checked before the model is read
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n}")
    labels = jnp.arange(n) % NUM_CLASSES if labels is None else jnp.asarray(labels, jnp.int32)
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
    scale = jnp.asarray(guidance_scale, jnp.float32)
    model = d.guided_eps_fn(params["net"], labels, NULL_LABEL, scale)
    # every sampler clips its x0 estimate to the data range [-1, 1] (see run_sampler)
    x = run_sampler(key, model, (n, 8, 8, 1), DIGITS_SCHEDULE, sampler, steps, clip_x0=1.0)
    return jnp.clip((x + 1.0) / 2.0, 0.0, 1.0)


def digits_report(key, params, train_data, test_data, out_dir: Path) -> dict:
    """``samples.png``: 10 samples per class (one row per class) with guidance; returns the
    accuracy of a logistic-regression classifier of real digits on the samples (was each
    drawn as the class it looks like?), with and without guidance, next to its accuracy on
    held-out real digits."""
    from sklearn.linear_model import LogisticRegression

    from genjax import plotting

    train_x, train_y = (np.asarray(a) for a in train_data)
    test_x, test_y = (np.asarray(a) for a in test_data)
    clf = LogisticRegression(max_iter=2000).fit(train_x.reshape(len(train_x), -1), train_y)
    labels = np.repeat(np.arange(NUM_CLASSES), 10)  # (100,): one row per class
    out = {"classifier_test_accuracy": float(clf.score(test_x.reshape(len(test_x), -1), test_y))}
    for name, scale in (("guided", GUIDANCE_SCALE), ("conditional", 1.0)):
        images = np.asarray(digits_sample(key, params, 100, labels=labels, guidance_scale=scale))
        out[f"class_accuracy_{name}"] = float(clf.score(images.reshape(100, -1), labels))
        if name == "guided":
            plotting.image_grid(
                images, Path(out_dir) / "samples.png", nrow=10,
                title=f"ddpm-digits, one row per class (guidance {scale})",
            )
    return out


# --------------------------------------------------------------------------------------
# consistency training on the ring
# --------------------------------------------------------------------------------------

CT_STEPS = 3000
CT_LR = 1e-3
CT_SIGMA_DATA = 1.0  # the data are standardised
# Improved-CT choices (Song & Dhariwal 2023): no target EMA (mu0 = 0: theta^- = theta),
# pseudo-Huber distance, lambda = 1/(t_{n+1} - t_n), lognormal noise levels, and a
# schedule up to N = s1 + 1.
CT_MU0 = 0.0
CT_S0, CT_S1 = 10, 160
CT_DISTANCE = "pseudo_huber"
CT_EMA = 0.995  # the sampled network: an EMA of theta (as iCT), separate from theta^-
CT_WEIGHTING = "inverse_step"
CT_NOISE_SAMPLING = "lognormal"
ONE_STEP = (d.SIGMA_MAX,)
MULTISTEP = (d.SIGMA_MAX, 0.8, 0.2)


def _ct_net(key: jax.Array) -> nnx.Module:
    from genjax.nn import MLPDenoiser

    # c_noise = log(sigma)/4 in [-1.6, 1.1]; scaled by 1000 as in the CM code.
    return MLPDenoiser(2, RING_HIDDEN, time_embed_dim=64, time_scale=1000.0, rngs=nnx.Rngs(key))


_ct_optimizer = optax.adam(CT_LR)


def ct_init(key: jax.Array, train_data: jax.Array) -> dict:
    """Online, target and EMA networks (nnx modules, equal at k = 0), the Adam state, the
    step k, and the data statistics."""
    online = _ct_net(key)
    return {
        "online": online,
        "target": jax.tree.map(jnp.copy, online),
        "ema": jax.tree.map(jnp.copy, online),
        "opt_state": _ct_optimizer.init(online),
        "k": jnp.zeros((), jnp.int32),
        **_standardise_stats(train_data),
    }


def ct_step(params: dict, batch: jax.Array, key: jax.Array) -> tuple[dict, dict]:
    """One CT update (CM Algorithm 3): Adam on the online network, then the target
    ``theta^- <- mu(k) theta^- + (1 - mu(k)) theta``, with ``N(k)``, ``mu(k)`` of the schedule."""
    num_scales, mu = d.ct_schedule(params["k"], CT_STEPS, s0=CT_S0, s1=CT_S1, mu0=CT_MU0)
    x0 = _normalise(params, batch)
    grad_fn = jax.value_and_grad(d.ct_loss, has_aux=True)
    (loss, metrics), grads = grad_fn(
        params["online"], x0, key, target_model=params["target"], num_scales=num_scales,
        sigma_data=CT_SIGMA_DATA, distance=CT_DISTANCE, weighting=CT_WEIGHTING,
        noise_sampling=CT_NOISE_SAMPLING,
    )
    updates, opt_state = _ct_optimizer.update(grads, params["opt_state"], params["online"])
    online = optax.apply_updates(params["online"], updates)
    target = jax.tree.map(lambda t, o: mu * t + (1.0 - mu) * o, params["target"], online)
    ema = jax.tree.map(lambda e, o: CT_EMA * e + (1.0 - CT_EMA) * o, params["ema"], online)
    new = {**params, "online": online, "target": target, "ema": ema, "opt_state": opt_state,
           "k": jnp.minimum(params["k"] + 1, CT_STEPS)}
    return new, {**metrics, "mu": mu}


def ct_sample(
    key: jax.Array, params: dict, n: int, *, sampler: str = "onestep", steps: int | None = None
) -> jax.Array:
    """``n`` samples ``(n, 2)``: ``sampler="onestep"`` (one network evaluation) or
    ``"multistep"`` (noise levels 80, 0.8, 0.2; ``steps`` = how many of them to use)."""
    if sampler not in ("onestep", "multistep"):
        raise ValueError(f"sampler must be 'onestep' or 'multistep', got {sampler!r}")
    sigmas = ONE_STEP if sampler == "onestep" else MULTISTEP
    if steps is not None:
        if not 1 <= steps <= len(MULTISTEP):
            raise ValueError(f"steps must be in [1, {len(MULTISTEP)}], got {steps}")
        sigmas = MULTISTEP[: int(steps)]
    model = d.consistency_model(params["ema"], sigma_data=CT_SIGMA_DATA)
    x = d.consistency_sample(key, model, (int(n), 2), sigmas=sigmas)
    return _denormalise(params, x)


def ct_report(key, params, train_data, test_data, out_dir: Path) -> dict:
    """``samples.png`` (one-step samples), ``samples_multistep.png``, and the energy
    distance and mode coverage of each."""
    from genjax import plotting

    test = jnp.asarray(test_data)
    one_key, multi_key = jax.random.split(key)
    one = ct_sample(one_key, params, REPORT_SAMPLES, sampler="onestep")
    multi = ct_sample(multi_key, params, REPORT_SAMPLES, sampler="multistep")
    data = np.asarray(train_data)[:5000]
    plotting.scatter_2d(one, data, Path(out_dir) / "samples.png",
                        title="consistency training: one-step samples")
    plotting.scatter_2d(multi, data, Path(out_dir) / "samples_multistep.png",
                        title=f"consistency training: {len(MULTISTEP)}-step samples")
    out = _ring_quality(one, test)
    out.update({f"{k}_multistep": v for k, v in _ring_quality(multi, test).items()})
    return out


RECIPES: tuple[Recipe, ...] = (
    Recipe(
        name="ddpm",
        family="diffusion",
        summary="DDPM (eps-prediction MLP) on the 2-D ring; ddpm/ddim/dpm_solver_pp samplers",
        data="ring",
        init=ddpm_init,
        loss=ddpm_loss,
        sample=ddpm_recipe_sample,
        report=ddpm_report,
        steps=3000,
        batch_size=512,
        learning_rate=2e-3,
        ema_decay=0.995,
        sample_options=("sampler", "steps"),
        data_figures=("mode_coverage",),  # the ring's 8 modes
    ),
    Recipe(
        name="ddpm-digits",
        family="diffusion",
        summary="class-conditional U-Net DDPM on 8x8 digits with classifier-free guidance",
        data="digits",
        init=digits_init,
        loss=digits_loss,
        sample=digits_sample,
        report=digits_report,
        steps=1500,
        batch_size=64,
        learning_rate=2e-3,
        ema_decay=0.99,
        load_data=data.load_with_labels,
        sample_options=("sampler", "steps"),
    ),
    Recipe(
        name="consistency",
        family="diffusion",
        summary="consistency training (Song et al. 2023) on the ring; one-step vs multistep",
        data="ring",
        init=ct_init,
        step=ct_step,
        sample=ct_sample,
        report=ct_report,
        steps=CT_STEPS,
        batch_size=512,
        learning_rate=CT_LR,
        sample_options=("sampler", "steps"),
        data_figures=("mode_coverage",),  # the ring's 8 modes
    ),
)
