"""Autoencoders and variational autoencoders.

Deterministic autoencoder, VAE (Kingma & Welling 2014) with Bernoulli or Gaussian decoder,
beta-VAE (Higgins et al. 2017) and capacity annealing (Burgess et al. 2018), the IWAE bound
(Burda et al. 2016) with the DReG gradient (Tucker et al. 2019), VQ-VAE (van den Oord et al.
2017) with the EMA codebook (Razavi et al. 2019), a two-level ladder VAE (Sønderby et
al. 2016), the conditional VAE with a learned conditional prior (Sohn, Lee & Yan 2015) and
the denoising autoencoder (Vincent et al. 2008) with its corrupt-denoise chain sampler
(Bengio et al. 2013).

The model protocol (DESIGN.md): a model is an nnx Module, a pytree, passed as the traced
first argument of every loss (``elbo_loss(model, batch, key)``) and the second of every
sampler (``sample(key, model, n)``); new weights of the same shapes never recompile.

Files: ``distributions.py`` (KL, likelihoods over genjax.gaussian), ``model.py``
(Autoencoder, VAE, builders), ``loss.py`` (ELBO, IWAE), ``quantize.py`` (VQ-VAE),
``hierarchical.py`` (ladder VAE), ``sample.py`` (sampling, reconstruction, interpolation),
``conditional.py`` (CVAE), ``denoising.py`` (DAE), ``oracle.py`` and
``oracle_conditional.py`` (NumPy twins), ``recipes.py`` (``genjax train vae`` ...).
Latent diffusion (a VAE with a diffusion prior) joins two families and lives in
:mod:`genjax.composites`.
"""

from genjax.vae.conditional import ConditionalVAE as ConditionalVAE
from genjax.vae.conditional import class_linear_gaussian as class_linear_gaussian
from genjax.vae.conditional import cvae_loss as cvae_loss
from genjax.vae.conditional import cvae_reconstruct as cvae_reconstruct
from genjax.vae.conditional import cvae_sample as cvae_sample
from genjax.vae.conditional import cvae_sample_from_noise as cvae_sample_from_noise
from genjax.vae.conditional import cvae_terms as cvae_terms
from genjax.vae.conditional import exact_posterior_cvae as exact_posterior_cvae
from genjax.vae.conditional import linear_cvae as linear_cvae
from genjax.vae.conditional import mlp_cvae as mlp_cvae
from genjax.vae.denoising import chain_sample as chain_sample
from genjax.vae.denoising import chain_sample_from_noise as chain_sample_from_noise
from genjax.vae.denoising import corrupt as corrupt
from genjax.vae.denoising import corrupt_from_noise as corrupt_from_noise
from genjax.vae.denoising import dae_loss as dae_loss
from genjax.vae.denoising import denoise as denoise
from genjax.vae.denoising import denoising_errors as denoising_errors
from genjax.vae.denoising import draw_corruption_noise as draw_corruption_noise
from genjax.vae.distributions import bernoulli_log_likelihood as bernoulli_log_likelihood
from genjax.vae.distributions import gaussian_log_likelihood as gaussian_log_likelihood
from genjax.vae.distributions import kl_diag_gaussian as kl_diag_gaussian
from genjax.vae.distributions import reparameterize as reparameterize
from genjax.vae.hierarchical import HierarchicalVAE as HierarchicalVAE
from genjax.vae.hierarchical import hvae_generate as hvae_generate
from genjax.vae.hierarchical import hvae_log_weights as hvae_log_weights
from genjax.vae.hierarchical import hvae_terms as hvae_terms
from genjax.vae.hierarchical import precision_weighted as precision_weighted
from genjax.vae.loss import autoencoder_loss as autoencoder_loss
from genjax.vae.loss import capacity_schedule as capacity_schedule
from genjax.vae.loss import elbo_loss as elbo_loss
from genjax.vae.loss import elbo_terms as elbo_terms
from genjax.vae.loss import iwae_bound as iwae_bound
from genjax.vae.loss import iwae_log_weights as iwae_log_weights
from genjax.vae.loss import iwae_loss as iwae_loss
from genjax.vae.model import VAE as VAE
from genjax.vae.model import Autoencoder as Autoencoder
from genjax.vae.model import conv_vae as conv_vae
from genjax.vae.model import decoder_log_likelihood as decoder_log_likelihood
from genjax.vae.model import exact_posterior_vae as exact_posterior_vae
from genjax.vae.model import linear_vae as linear_vae
from genjax.vae.model import mlp_autoencoder as mlp_autoencoder
from genjax.vae.model import mlp_vae as mlp_vae
from genjax.vae.model import set_linear_vae as set_linear_vae
from genjax.vae.quantize import VQVAE as VQVAE
from genjax.vae.quantize import EMAState as EMAState
from genjax.vae.quantize import codebook_perplexity as codebook_perplexity
from genjax.vae.quantize import ema_init as ema_init
from genjax.vae.quantize import ema_update as ema_update
from genjax.vae.quantize import nearest_code as nearest_code
from genjax.vae.quantize import reset_dead_codes as reset_dead_codes
from genjax.vae.quantize import vector_quantize as vector_quantize
from genjax.vae.quantize import vqvae_loss as vqvae_loss
from genjax.vae.quantize import vqvae_terms as vqvae_terms
from genjax.vae.sample import draw_noise as draw_noise
from genjax.vae.sample import encode_mean as encode_mean
from genjax.vae.sample import fit_latent_gaussian as fit_latent_gaussian
from genjax.vae.sample import interpolate as interpolate
from genjax.vae.sample import noise_shapes as noise_shapes
from genjax.vae.sample import reconstruct as reconstruct
from genjax.vae.sample import sample as sample
from genjax.vae.sample import sample_from_noise as sample_from_noise
