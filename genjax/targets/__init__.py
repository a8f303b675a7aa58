"""Analytic ground truth: distributions whose densities, scores and posteriors are exact.

Three kinds of target, each usable wherever a trained model would plug in:

* :class:`GaussianMixture` (:mod:`.mixture`) -- ``p(x) = sum_k w_k N(x; mu_k, Sigma_k)``
  with exact log-density, score, samples, and the law of the diffused variable
  ``x_t = alpha x_0 + sigma eps`` (again a Gaussian mixture), so that the exact score,
  noise prediction and denoiser ``E[x_0 | x_t]`` of a diffusion model over this data are
  known at every noise level; one fast implementation in an eigenbasis layout. Ready-made
  ones (:mod:`.toys`): :func:`ring`, :func:`grid`, :func:`mixture_1d`.
* :class:`LinearGaussian` (:mod:`.linear_gaussian`) -- probabilistic PCA (Tipping & Bishop
  1999) with exact marginal likelihood, exact posterior ``p(z | x)``, and the ELBO of a
  diagonal Gaussian ``q(z)`` in closed form.
* GAN pairs of known densities (:mod:`.gan`): the optimal discriminator ``D*(x) = p/(p+q)``
  and the value of the game at it, ``-log 4 + 2 JSD(p || q)`` (Goodfellow et al. 2014).

The classes are pytrees of arrays, so they pass through ``jax.jit``, ``jax.vmap`` and
``jax.grad``, and their bound methods (``target.log_prob``, ``target.score``) are traced
models for every sampler (:mod:`genjax.model`). Their methods are jit-compiled (the target
is a traced argument; sample counts are static). Constructing them directly performs no
checks; the constructors :func:`ring`, :func:`grid`, :func:`mixture_1d`,
:meth:`GaussianMixture.create` and :meth:`LinearGaussian.create` validate their arguments
and raise ``ValueError`` naming the offending one.

The NumPy float64 twin of this package is :mod:`genjax.oracle_targets`.
"""

from genjax.targets import gan as gan
from genjax.targets import linear_gaussian as linear_gaussian
from genjax.targets import mixture as mixture
from genjax.targets import toys as toys
from genjax.targets.gan import gan_value_at_optimum as gan_value_at_optimum
from genjax.targets.gan import optimal_discriminator as optimal_discriminator
from genjax.targets.linear_gaussian import LinearGaussian as LinearGaussian
from genjax.targets.mixture import GaussianMixture as GaussianMixture
from genjax.targets.toys import grid as grid
from genjax.targets.toys import mixture_1d as mixture_1d
from genjax.targets.toys import ring as ring

__all__ = [
    "GaussianMixture",
    "LinearGaussian",
    "ring",
    "grid",
    "mixture_1d",
    "optimal_discriminator",
    "gan_value_at_optimum",
]
