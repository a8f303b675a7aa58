"""How ``genjax compare`` reads each family's trained model: samplers, likelihood, cost.

One :class:`Entry` per family and data set names the registry recipe that represents the
family (trained through :func:`genjax.train.fit` like ``genjax train``), how to draw samples
from the trained parameters (:class:`Sampler`: a function of ``(key, params, n)`` that runs
under ``jax.jit``, with the number of network evaluations one sample costs), and how to
score held-out data (:class:`Likelihood`, labelled exact / bound / ODE). A family with no
recipe for a data set has an entry with ``recipe=None`` and the reason, so the table says
"n/a" and why instead of training something else in its place.

Sampler choices, for a fair comparison:

* diffusion on digits samples the *unconditional* model (the null label of the recipe's
  classifier-free-guidance training): guided samples drawn as ``i mod 10`` would cover the
  ten classes by construction, and guidance doubles the network evaluations;
* the digits EBM starts its Langevin chains from uniform noise (``sampler="noise"``), not
  from the replay buffer of training chains, so its samples are drawn from scratch;
* no autoregressive-family recipe models 2-D real vectors (pixelcnn, char-lm and wavenet
  model discrete sequences), so on the ring the autoregressive row is MAF (Papamakarios
  et al. 2017): a product of Gaussian autoregressive conditionals ``p(x) = prod_d
  N(x_d | mu_d(x_<d), sigma_d(x_<d)^2)`` whose sampling is ``D`` sequential passes -- the
  autoregressive model of real vectors (the registry files it under flows).

Network evaluations per sample count the sequential passes of the sampler's network (one
decoder / generator / flow pass; one pass per solver stage for ODE samplers; one gradient
of the energy per Langevin step; one masked-network pass per generated pixel or
dimension); they are the sampler's configuration, stated here, while throughput is
measured by the runner.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from genjax import diffusion as d
from genjax.autoregressive import loss as ar_loss
from genjax.autoregressive import recipes as ar_recipes
from genjax.autoregressive.pixelcnn import quantize
from genjax.diffusion import recipes as diffusion_recipes
from genjax.energy import recipes as energy_recipes
from genjax.flows import recipes as flow_recipes
from genjax.metrics import bits_per_dim
from genjax.mixture.em import log_prob as gmm_log_prob
from genjax.vae import loss as vae_loss

__all__ = ["Sampler", "Likelihood", "Entry", "entries", "DATA_SETS"]

PyTree = Any
DATA_SETS = ("ring", "digits")
"""The data sets the survey compares the families on."""


@dataclasses.dataclass(frozen=True)
class Sampler:
    """One way to draw samples from a trained recipe, and what the tables call it."""

    label: str  # what the table and pictures call it, e.g. "DDIM-50"
    # (key, params, n, recipe_sample) -> (n, ...) samples; recipe_sample is the recipe's
    # own sample(key, params, n, **options)
    draw: Callable[[jax.Array, PyTree, int, Callable], jax.Array]
    evals_per_sample: int  # sequential network evaluations per sample (0: no network)


@dataclasses.dataclass(frozen=True)
class Likelihood:
    """How a family's test log-likelihood is computed (exact, a bound, an ODE), per example."""

    kind: str  # "exact", "bound (ELBO)", "ODE (exact trace)" ...
    # (params, test, key) -> (n,) log-likelihood per example, nats, of the data as the
    # recipe represents it (see `representation`)
    log_prob: Callable[[PyTree, jax.Array, jax.Array], jax.Array]
    representation: str  # what the density is over: "2-D points", "17-level pixels" ...
    num_dims: int  # dimensions per example (bits/dim = -log p / (num_dims ln 2))


@dataclasses.dataclass(frozen=True)
class Entry:
    """One family of the survey: its recipe on a data set, its samplers and likelihood."""

    family: str  # the survey's family, e.g. "GAN"
    recipe: str | None  # registry name; None: no recipe of this family for the data
    samplers: tuple[Sampler, ...] = ()
    likelihood: Likelihood | None = None  # None: the family has none (or none computed)
    no_likelihood: str = ""  # why there is no likelihood
    not_applicable: str = ""  # why there is no recipe (recipe None)
    note: str = ""  # what a reader must know about this row


def _recipe_sampler(label: str, evals: int, **options: Any) -> Sampler:
    """A sampler that calls the recipe's own ``sample(key, params, n, **options)``."""

    def draw(key: jax.Array, params: PyTree, n: int, recipe_sample: Callable) -> jax.Array:
        return recipe_sample(key, params, n, **options)

    return Sampler(label, draw, evals)


def _toy_log_prob(toy: Any) -> Callable[[PyTree, jax.Array, jax.Array], jax.Array]:
    return lambda params, x, key: toy.log_prob(params, x)


# --- ring ------------------------------------------------------------------------------------

_FM_STEPS = flow_recipes.FM_SAMPLE_STEPS  # RK4 steps: 4 velocity evaluations each
_EBM_RING_STEPS = energy_recipes.RING_SAMPLE_STEPS


def _ring_entries() -> tuple[Entry, ...]:
    points = "2-D points"
    return (
        Entry(
            "mixture",
            "gmm",
            (_recipe_sampler("GMM (EM)", 0),),
            Likelihood("exact", lambda p, x, k: gmm_log_prob(p, x), points, 2),
        ),
        Entry(
            "VAE",
            None,
            not_applicable="the VAE recipes decode Bernoulli pixel "
            "intensities in [0, 1]; none models 2-D real vectors",
        ),
        Entry("GAN", "gan", (_recipe_sampler("GAN", 1),), no_likelihood="implicit model"),
        Entry(
            "flow",
            "realnvp",
            (_recipe_sampler("RealNVP", 1),),
            Likelihood("exact", _toy_log_prob(flow_recipes.REALNVP), points, 2),
        ),
        Entry(
            "flow matching",
            "flow-matching",
            (_recipe_sampler(f"FM RK4-{_FM_STEPS}", 4 * _FM_STEPS),),
            Likelihood(
                f"ODE, exact trace (RK4-{flow_recipes.CNF_LL_STEPS})",
                _toy_log_prob(flow_recipes.FLOW_MATCHING),
                points,
                2,
            ),
        ),
        Entry(
            "autoregressive",
            "maf",
            (_recipe_sampler("MAF", 2),),
            Likelihood("exact", _toy_log_prob(flow_recipes.MAF), points, 2),
            note="MAF: Gaussian autoregressive conditionals, 2 sequential MADE passes per "
            "sample (no autoregressive-family recipe models real 2-D vectors)",
        ),
        Entry(
            "energy-based",
            "ebm",
            (_recipe_sampler(f"Langevin-{_EBM_RING_STEPS}", _EBM_RING_STEPS),),
            no_likelihood="unnormalised density",
        ),
        Entry(
            "diffusion",
            "ddpm",
            (
                _recipe_sampler("DDPM-1000", 1000, sampler="ddpm"),
                _recipe_sampler("DDIM-50", 50, sampler="ddim", steps=50),
                _recipe_sampler("DPM-Solver++-20", 20, sampler="dpm_solver_pp", steps=20),
            ),
            no_likelihood="not computed (a bound exists; not wired for this model)",
        ),
        Entry(
            "consistency",
            "consistency",
            (
                _recipe_sampler("CM 1-step", 1, sampler="onestep"),
                _recipe_sampler(
                    f"CM {len(diffusion_recipes.MULTISTEP)}-step",
                    len(diffusion_recipes.MULTISTEP),
                    sampler="multistep",
                ),
            ),
            no_likelihood="none (one-step map)",
        ),
    )


# --- digits ----------------------------------------------------------------------------------

_DIGIT_DIMS = 64
_PIXEL_LEVELS = ar_recipes.LEVELS
_GLOW_LEVELS = flow_recipes.DIGIT_LEVELS
_EBM_DIGITS_STEPS = energy_recipes.DIGITS_SAMPLE_STEPS


def _vae_elbo(params: PyTree, x: jax.Array, key: jax.Array) -> jax.Array:
    # elbo_loss's metrics are batch means: one call per example would cost a compile per
    # shape, so the (n,) answer repeats the held-out mean (only the mean is reported)
    mean = vae_loss.elbo_loss(params, x, key)[1]["elbo"]
    return jnp.full((x.shape[0],), mean)


def _glow_log_prob(params: PyTree, x: jax.Array, key: jax.Array) -> jax.Array:
    # the discrete bound over 17 levels: log P(k) >= log p(dequantised) - D log 17
    nll = flow_recipes.glow_loss(params, x, key)[1]["nll"]  # mean continuous NLL, nats
    return jnp.full((x.shape[0],), -(nll + _DIGIT_DIMS * math.log(_GLOW_LEVELS)))


def _pixelcnn_log_prob(params: PyTree, x: jax.Array, key: jax.Array) -> jax.Array:
    del key
    levels = quantize(x, _PIXEL_LEVELS)  # the recipe's 4-level data
    nll = ar_loss.pixelcnn_loss(params, levels)[1]["nll_nats"]  # nats per image, mean
    return jnp.full((x.shape[0],), -nll)


def _unconditional_ddpm(label: str, evals: int, sampler: str, steps: int | None) -> Sampler:
    """The digits U-Net with the null label: the unconditional model of CFG training."""

    def draw(key: jax.Array, params: PyTree, n: int, recipe_sample: Callable) -> jax.Array:
        del recipe_sample  # the recipe's sampler is guided; this one is not
        null = jnp.full((n,), diffusion_recipes.NULL_LABEL, jnp.int32)
        model = d.with_labels(params["net"], null)
        shape, schedule = (n, 8, 8, 1), diffusion_recipes.DIGITS_SCHEDULE
        # every sampler's x0 clipped to [-1, 1], as the recipe's (diffusion.recipes.run_sampler)
        if sampler == "ddpm":
            x = d.ddpm_sample(key, model, shape, schedule, clip_x0=1.0)
        elif sampler == "ddim":
            x = d.ddim_sample(key, model, shape, schedule, num_steps=steps, clip_x0=1.0)
        else:
            x = d.dpm_solver_pp_sample(key, model, shape, schedule, num_steps=steps, clip_x0=1.0)
        return jnp.clip((x + 1.0) / 2.0, 0.0, 1.0)

    return Sampler(label, draw, evals)


def _digits_entries() -> tuple[Entry, ...]:
    return (
        Entry(
            "mixture",
            None,
            not_applicable="the gmm recipe fits 8 full-covariance "
            "components to 2-D points; no mixture recipe for images",
        ),
        Entry(
            "VAE",
            "vae",
            (_recipe_sampler("VAE", 1),),
            Likelihood("bound (ELBO)", _vae_elbo, "Bernoulli over intensities", _DIGIT_DIMS),
            note="samples are the decoder's Bernoulli means",
        ),
        Entry("GAN", "dcgan", (_recipe_sampler("DCGAN", 1),), no_likelihood="implicit model"),
        Entry(
            "flow",
            "glow",
            (_recipe_sampler("Glow", 1),),
            Likelihood(
                "bound (dequantised)", _glow_log_prob, f"{_GLOW_LEVELS}-level pixels", _DIGIT_DIMS
            ),
        ),
        Entry(
            "flow matching",
            None,
            not_applicable="the flow-matching recipe's velocity "
            "field is an MLP on 2-D points; no image recipe",
        ),
        Entry(
            "autoregressive",
            "pixelcnn",
            (_recipe_sampler("PixelCNN", _DIGIT_DIMS),),
            Likelihood("exact", _pixelcnn_log_prob, f"{_PIXEL_LEVELS}-level pixels", _DIGIT_DIMS),
            note=f"models {_PIXEL_LEVELS} grey levels: its samples are quantised",
        ),
        Entry(
            "energy-based",
            "ebm-digits",
            (_recipe_sampler(f"Langevin-{_EBM_DIGITS_STEPS}", _EBM_DIGITS_STEPS, sampler="noise"),),
            no_likelihood="unnormalised density",
            note="chains start from uniform noise",
        ),
        Entry(
            "diffusion",
            "ddpm-digits",
            (
                _unconditional_ddpm("DDPM-1000", 1000, "ddpm", None),
                _unconditional_ddpm("DDIM-50", 50, "ddim", 50),
                _unconditional_ddpm("DPM-Solver++-20", 20, "dpm_solver_pp", 20),
            ),
            no_likelihood="not computed",
            note="unconditional (null label of the CFG training)",
        ),
        Entry(
            "consistency",
            None,
            not_applicable="the consistency recipe's network is an "
            "MLP on 2-D points; no image recipe",
        ),
    )


def entries(data_name: str) -> tuple[Entry, ...]:
    """The families' entries for ``data_name`` (``"ring"`` or ``"digits"``), in table order."""
    if data_name == "ring":
        return _ring_entries()
    if data_name == "digits":
        return _digits_entries()
    raise ValueError(f"data must be one of {DATA_SETS}, got {data_name!r}")


def bits(log_lik_nats: float, num_dims: int) -> float:
    """Bits per dimension of a mean log-likelihood (:func:`genjax.metrics.bits_per_dim`)."""
    return float(bits_per_dim(-log_lik_nats, num_dims))
