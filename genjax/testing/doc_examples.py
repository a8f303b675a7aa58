"""Which public sampler, loss and model constructor has an executable docstring example.

Runner (once per CI, in the docs step; not in the README's test line, whose ``testpaths``
is ``tests``)::

    python -m pytest --doctest-modules genjax -q -p no:cacheprovider

TIMING_PLACEHOLDER

The options (``NORMALIZE_WHITESPACE``, ``ELLIPSIS``, ``NUMBER``) are in pyproject's
``[tool.pytest.ini_options]``; the repository's ``conftest.py`` skips ``genjax/bench``
(peer libraries) and gives every example ``jax``, ``jnp``, ``np``, ``nnx`` and the public
names of its family (:func:`example_namespace`), so an example in ``genjax/vae/loss.py``
calls ``mlp_vae`` as a reader of ``genjax.vae`` would.

What an example shows: something true and checkable (a shape, a known value such as
``kl_diag_gaussian(0, 0) = 0``, a first beta), at tiny sizes (each compiles in well under a
second), with ``jax.random.key(0)``, floats rounded (``round(float(x), 4)``) or reduced to
``bool``/``.shape``.

:data:`genjax.testing.doc_example_roles.ROLES` lists every public callable of every family
package with its role; ``tests/shared/test_doc_examples.py`` fails when a public callable is
missing from it, when a listed name is no longer public, and when a sampler, loss or
constructor has no ``>>>`` example and is not in :data:`PENDING` (the names still to do, a
list that may only shrink: a pending name that gains an example must leave it).
"""

from __future__ import annotations

import importlib
import inspect
import types
from typing import Any

from genjax.testing.doc_example_roles import ROLES

FAMILIES: tuple[str, ...] = (
    "counting",
    "mixture",
    "vae",
    "gan",
    "flows",
    "autoregressive",
    "energy",
    "diffusion",
    "contrastive",
    "composites",
    "nn",
    "metrics",
    "targets",
    "ode",
    "data",
)
REQUIRED_ROLES: tuple[str, ...] = ("sampler", "loss", "constructor")

# Samplers, losses and constructors that still lack an example (see the module docstring).
PENDING: frozenset[str] = frozenset(
    {
        "autoregressive.CausalConv1d",
        "autoregressive.GatedPixelCNN",
        "autoregressive.GatedPixelCNNLayer",
        "autoregressive.MaskedConv2d",
        "autoregressive.PixelCNN",
        "autoregressive.WaveNet",
        "autoregressive.beam_search_cached",
        "autoregressive.categorical_nll",
        "autoregressive.from_grammar",
        "autoregressive.from_json_schema",
        "autoregressive.generate_from_noise",
        "autoregressive.image_nll",
        "autoregressive.next_token_loss",
        "autoregressive.next_token_nll",
        "autoregressive.pixelcnn_loss",
        "autoregressive.pixelcnn_sample",
        "autoregressive.pixelcnn_sample_from_noise",
        "autoregressive.sample_token_from_noise",
        "autoregressive.speculative_generate",
        "autoregressive.wavenet_loss",
        "autoregressive.wavenet_sample",
        "autoregressive.wavenet_sample_from_noise",
        "composites.CodePrior",
        "composites.ContextModel",
        "composites.GuidedContextModel",
        "composites.LatentDiffusion",
        "composites.PatchDiscriminator",
        "composites.encode_latents",
        "composites.text_to_image_loss",
        "contrastive.CLIP",
        "contrastive.clip_loss_terms",
        "contrastive.clip_model_loss",
        "contrastive.sharded_clip_loss",
        "contrastive.sigmoid_loss",
        "counting.naive_bayes.BernoulliNB",
        "counting.naive_bayes.GaussianNB",
        "counting.naive_bayes.MultinomialNB",
        "counting.naive_bayes.sample",
        "counting.ngram.NGramModel",
        "counting.ngram.sample",
        "counting.ngram.sample_from_noise",
        "counting.ngram.sample_step",
        "diffusion.AnalyticDenoiser",
        "diffusion.AnalyticEps",
        "diffusion.AnalyticScore",
        "diffusion.ConsistencyFunction",
        "diffusion.EDMDenoiser",
        "diffusion.GuidedModel",
        "diffusion.LabelledModel",
        "diffusion.Schedule",
        "diffusion.SubVPSDE",
        "diffusion.VESDE",
        "diffusion.VPSDE",
        "diffusion.analytic_denoiser",
        "diffusion.analytic_score_fn",
        "diffusion.cd_loss",
        "diffusion.cd_loss_from_noise",
        "diffusion.consistency_fn",
        "diffusion.consistency_model",
        "diffusion.consistency_sample_from_noise",
        "diffusion.cosine",
        "diffusion.ct_loss_from_noise",
        "diffusion.ct_schedule",
        "diffusion.ddim_sample_from_noise",
        "diffusion.ddim_step",
        "diffusion.ddim_timesteps",
        "diffusion.ddpm_sample_from_noise",
        "diffusion.dpm_solver_pp_sample_from_noise",
        "diffusion.dsm_loss",
        "diffusion.edm_loss",
        "diffusion.edm_precondition",
        "diffusion.euler_maruyama_step",
        "diffusion.euler_sample_from_noise",
        "diffusion.euler_step",
        "diffusion.from_betas",
        "diffusion.heun_sample_from_noise",
        "diffusion.heun_step",
        "diffusion.karras_boundaries",
        "diffusion.karras_sigmas",
        "diffusion.langevin_corrector_step",
        "diffusion.loss_from_noise",
        "diffusion.pc_sample_from_noise",
        "diffusion.pc_step",
        "diffusion.pf_ode_sample",
        "diffusion.pf_ode_sample_from_noise",
        "diffusion.prior_sample",
        "diffusion.q_sample",
        "diffusion.rescale_zero_terminal_snr",
        "diffusion.reverse_diffusion_step",
        "diffusion.sigmoid",
        "diffusion.with_labels",
        "energy.ConvEnergy",
        "energy.MLPEnergy",
        "energy.NoiseConditionalScore",
        "energy.annealed_langevin",
        "energy.annealed_langevin_from_noise",
        "energy.annealed_langevin_step_sizes",
        "energy.cd_objective",
        "energy.contrastive_divergence_loss",
        "energy.denoising_score_matching_loss",
        "energy.denoising_score_matching_terms",
        "energy.exact_score_matching_loss",
        "energy.hmc",
        "energy.hmc_from_noise",
        "energy.hmc_step",
        "energy.langevin",
        "energy.langevin_from_noise",
        "energy.langevin_step",
        "energy.mala_from_noise",
        "energy.mala_step",
        "energy.metropolis_hastings",
        "energy.metropolis_hastings_from_noise",
        "energy.ncsn_loss",
        "energy.ncsn_terms",
        "energy.persistent_contrastive_divergence_loss",
        "energy.replay_buffer_sample",
        "energy.rwmh_step",
        "energy.sliced_score_matching_loss",
        "energy.sliced_score_matching_terms",
        "flows.bijectors.ActNorm",
        "flows.bijectors.AdditiveCoupling",
        "flows.bijectors.AffineCoupling",
        "flows.bijectors.AutoregressiveAffine",
        "flows.bijectors.Chain",
        "flows.bijectors.Conv1x1",
        "flows.bijectors.ConvConditioner",
        "flows.bijectors.ElementwiseSpline",
        "flows.bijectors.IAF",
        "flows.bijectors.MAF",
        "flows.bijectors.MultiScale",
        "flows.bijectors.Permutation",
        "flows.bijectors.Planar",
        "flows.bijectors.Radial",
        "flows.bijectors.SplineCoupling",
        "flows.bijectors.Squeeze",
        "flows.cnf.loss",
        "flows.cnf.mlp_field",
        "flows.cnf.sample",
        "flows.cnf.sample_and_log_prob",
        "flows.cnf.sample_from_noise",
        "flows.flow_matching.conditional_loss",
        "flows.flow_matching.sample_path",
        "flows.glow",
        "flows.iaf",
        "flows.maf",
        "flows.neural_spline",
        "flows.nice",
        "flows.planar",
        "flows.radial",
        "flows.realnvp",
        "gan.AdaIN",
        "gan.CycleGANTrainer",
        "gan.DCGANDiscriminator",
        "gan.DCGANGenerator",
        "gan.GANTrainer",
        "gan.MLPDiscriminator",
        "gan.MLPGenerator",
        "gan.MappingNetwork",
        "gan.Translator",
        "gan.cycle_consistency_loss",
        "gan.cyclegan_trainer",
        "gan.gan_trainer",
        "gan.gradient_penalty_at",
        "gan.hinge_d",
        "gan.hinge_g",
        "gan.least_squares_d",
        "gan.least_squares_g",
        "gan.minimax_d",
        "gan.minimax_g",
        "gan.nonsaturating_g",
        "gan.r1_penalty",
        "gan.sample_from_noise",
        "gan.wasserstein_d",
        "nn.AttentionBlock",
        "nn.CharTextEncoder",
        "nn.ConvDecoder",
        "nn.ConvEncoder",
        "nn.MLPDecoder",
        "nn.MLPEncoder",
        "nn.MultiHeadAttention",
        "nn.ResBlock",
        "nn.TransformerBlock",
        "targets.LinearGaussian",
        "targets.grid",
        "targets.mixture_1d",
        "targets.ring",
    }
)


def _public(module_name: str) -> list[tuple[str, Any]]:
    """``(name, object)`` for every public non-module name of a family package or module.

    ``__all__`` where the module has one (a submodule in it contributes its own public
    names, prefixed ``sub.``); otherwise every name not starting with ``_`` -- in a package
    the re-exports of its ``__init__``, in a plain module only what it defines.
    """
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    out: list[tuple[str, Any]] = []
    if names is None:
        is_package = hasattr(module, "__path__")
        for name, obj in vars(module).items():
            if name.startswith("_") or isinstance(obj, types.ModuleType):
                continue
            if not is_package and getattr(obj, "__module__", None) != module_name:
                continue
            out.append((name, obj))
        return out
    for name in names:
        obj = getattr(module, name)
        if isinstance(obj, types.ModuleType):
            out += [(f"{name}.{sub}", o) for sub, o in _public(obj.__name__)]
        else:
            out.append((name, obj))
    return out


def _family_of(obj: Any) -> str | None:
    """The family whose package defines ``obj`` (``genjax.targets.gan`` -> ``targets``)."""
    parts = (getattr(inspect.unwrap(obj), "__module__", None) or "").split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "genjax" else None


def public_callables() -> dict[str, Any]:
    """``"family.name" -> callable`` over every family, each object once.

    A name re-exported by a second family (``genjax.gan.optimal_discriminator`` from
    ``genjax.targets``) is listed under the family that defines it.
    """
    found: dict[str, Any] = {}
    seen: set[int] = set()
    for family in FAMILIES:
        for name, obj in _public(f"genjax.{family}"):
            if not callable(obj):
                continue
            ident = id(obj if isinstance(obj, type) else inspect.unwrap(obj))
            if ident in seen:
                continue
            home = _family_of(obj)
            if home in FAMILIES and home != family:
                home_names = {id(o): n for n, o in _public(f"genjax.{home}")}
                if id(obj) in home_names:
                    seen.add(ident)
                    found[f"{home}.{home_names[id(obj)]}"] = obj
                    continue
            seen.add(ident)
            found[f"{family}.{name}"] = obj
    return found


def roles() -> dict[str, str]:
    """``"family.name" -> role`` from the checked-in table."""
    return {
        f"{family}.{name}": role
        for family, by_role in ROLES.items()
        for role, names in by_role.items()
        for name in names
    }


def has_example(obj: Any) -> bool:
    """Whether ``obj``'s docstring holds a ``>>>`` example."""
    return ">>>" in (inspect.getdoc(obj) or "")


def missing_examples() -> list[str]:
    """Samplers, losses and constructors without an example, ``"family.name (role)"``."""
    table = roles()
    return [
        f"{name} ({table[name]})"
        for name, obj in public_callables().items()
        if table.get(name) in REQUIRED_ROLES and not has_example(obj)
    ]


def example_namespace(module_name: str) -> dict[str, Any]:
    """What a docstring example of ``module_name`` may use without importing it.

    ``genjax``, ``jax``, ``jnp``, ``np``, ``nnx`` and every public name of the module's family
    package (``genjax.vae.loss`` -> ``genjax.vae``); the module's own globals take precedence.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    import genjax

    namespace: dict[str, Any] = {"genjax": genjax, "jax": jax, "jnp": jnp, "np": np, "nnx": nnx}
    parts = module_name.split(".")
    if len(parts) > 1 and parts[0] == "genjax" and parts[1] in FAMILIES:
        family = importlib.import_module(f"genjax.{parts[1]}")
        names = getattr(family, "__all__", None) or [n for n in vars(family) if n[0] != "_"]
        namespace.update({n: getattr(family, n) for n in names})
    return namespace
