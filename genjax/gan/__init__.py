"""GANs: every loss and regulariser checked against its closed form.

* :mod:`genjax.gan.loss` — minimax, non-saturating, least-squares, hinge and Wasserstein
  losses and one-sided label smoothing, as functions of the critic's logits;
* :mod:`genjax.gan.penalties` — weight clipping, the gradient penalty, R1 and the cycle
  loss, which take the critic (or the translators) as a model: a callable pytree, the
  ``nnx.Module`` itself;
* :mod:`genjax.gan.spectral` — spectral normalisation by power iteration (function and
  layer wrapper);
* :mod:`genjax.gan.network` — 2-D MLPs, DCGAN, conditional GAN with a projection
  discriminator, StyleGAN's mapping network and AdaIN, CycleGAN's translator;
* :mod:`genjax.gan.pix2pix` — pix2pix (Isola et al. 2017): the U-Net generator, the
  PatchGAN with its receptive field, adversarial + L1 losses; :mod:`genjax.gan.pix2pix_step`
  its alternating update;
* :mod:`genjax.gan.stylegan` — StyleGAN2's generator (Karras et al. 2019/2020): noise
  inputs, style mixing, truncation, over :mod:`genjax.gan.modulated_conv` (modulated
  convolution, weight demodulation); :mod:`genjax.gan.stylegan_critic` a small critic with
  optional spectral norm; :mod:`genjax.gan.oracle_stylegan` their NumPy twin;
* :mod:`genjax.gan.sample` — ``sample(key, model, n)``: ``G(z)``, ``z ~ N(0, I)``, compiled
  once per shape with the generator traced;
* :mod:`genjax.gan.step` — alternating updates (``n_critic``), two optimisers, EMA of the
  generator, in one jit-able ``step(state, batch, key) -> (state, info)`` whose state holds
  the two Modules;
* :mod:`genjax.gan.oracle` — the NumPy float64 twin of the losses and regularisers.

The optimal discriminator ``D* = p_data / (p_data + p_g)`` and the game's value at it,
``2 JSD - log 4``, come from :mod:`genjax.targets` and are re-exported here.
"""

from genjax.gan.loss import hinge_d as hinge_d
from genjax.gan.loss import hinge_g as hinge_g
from genjax.gan.loss import least_squares_d as least_squares_d
from genjax.gan.loss import least_squares_g as least_squares_g
from genjax.gan.loss import minimax_d as minimax_d
from genjax.gan.loss import minimax_g as minimax_g
from genjax.gan.loss import nonsaturating_g as nonsaturating_g
from genjax.gan.loss import wasserstein_d as wasserstein_d
from genjax.gan.loss import wasserstein_g as wasserstein_g
from genjax.gan.modulated_conv import demodulated_weights as demodulated_weights
from genjax.gan.modulated_conv import modulated_conv as modulated_conv
from genjax.gan.network import AdaIN as AdaIN
from genjax.gan.network import DCGANDiscriminator as DCGANDiscriminator
from genjax.gan.network import DCGANGenerator as DCGANGenerator
from genjax.gan.network import MappingNetwork as MappingNetwork
from genjax.gan.network import MLPDiscriminator as MLPDiscriminator
from genjax.gan.network import MLPGenerator as MLPGenerator
from genjax.gan.network import Translator as Translator
from genjax.gan.network import adain as adain
from genjax.gan.network import pixel_norm as pixel_norm
from genjax.gan.penalties import critic_input_grad as critic_input_grad
from genjax.gan.penalties import cycle_consistency_loss as cycle_consistency_loss
from genjax.gan.penalties import gradient_penalty as gradient_penalty
from genjax.gan.penalties import gradient_penalty_at as gradient_penalty_at
from genjax.gan.penalties import interpolate as interpolate
from genjax.gan.penalties import r1_penalty as r1_penalty
from genjax.gan.penalties import weight_clip as weight_clip
from genjax.gan.pix2pix import PatchGAN as PatchGAN
from genjax.gan.pix2pix import UNetGenerator as UNetGenerator
from genjax.gan.pix2pix import l1_loss as l1_loss
from genjax.gan.pix2pix import patch_window as patch_window
from genjax.gan.pix2pix import pix2pix_d as pix2pix_d
from genjax.gan.pix2pix import pix2pix_g as pix2pix_g
from genjax.gan.pix2pix import receptive_field as receptive_field
from genjax.gan.pix2pix_step import Pix2PixInfo as Pix2PixInfo
from genjax.gan.pix2pix_step import Pix2PixState as Pix2PixState
from genjax.gan.pix2pix_step import Pix2PixTrainer as Pix2PixTrainer
from genjax.gan.pix2pix_step import pix2pix_trainer as pix2pix_trainer
from genjax.gan.sample import sample as sample
from genjax.gan.sample import sample_from_noise as sample_from_noise
from genjax.gan.spectral import SpectralNorm as SpectralNorm
from genjax.gan.spectral import SpectralVector as SpectralVector
from genjax.gan.spectral import advance_spectral_vectors as advance_spectral_vectors
from genjax.gan.spectral import power_iteration as power_iteration
from genjax.gan.spectral import spectral_norm as spectral_norm
from genjax.gan.step import LOSSES as LOSSES
from genjax.gan.step import CycleGANInfo as CycleGANInfo
from genjax.gan.step import CycleGANState as CycleGANState
from genjax.gan.step import CycleGANTrainer as CycleGANTrainer
from genjax.gan.step import GANInfo as GANInfo
from genjax.gan.step import GANState as GANState
from genjax.gan.step import GANTrainer as GANTrainer
from genjax.gan.step import critic_model as critic_model
from genjax.gan.step import cyclegan_trainer as cyclegan_trainer
from genjax.gan.step import gan_trainer as gan_trainer
from genjax.gan.step import keep_buffers as keep_buffers
from genjax.gan.stylegan import StyleGANGenerator as StyleGANGenerator
from genjax.gan.stylegan import StyleNoise as StyleNoise
from genjax.gan.stylegan import SynthesisLayer as SynthesisLayer
from genjax.gan.stylegan import ToRGB as ToRGB
from genjax.gan.stylegan import WAverage as WAverage
from genjax.gan.stylegan import generator_weights as generator_weights
from genjax.gan.stylegan import mix_styles as mix_styles
from genjax.gan.stylegan import stylegan_noise as stylegan_noise
from genjax.gan.stylegan import stylegan_sample as stylegan_sample
from genjax.gan.stylegan import track_w_avg as track_w_avg
from genjax.gan.stylegan import truncate as truncate
from genjax.gan.stylegan_critic import StyleGANDiscriminator as StyleGANDiscriminator
from genjax.targets import gan_value_at_optimum as gan_value_at_optimum
from genjax.targets import optimal_discriminator as optimal_discriminator
