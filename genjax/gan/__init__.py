"""GANs: every loss and regulariser checked against its closed form.

* :mod:`genjax.gan.loss` — minimax, non-saturating, least-squares, hinge and Wasserstein
  losses, one-sided label smoothing, weight clipping, the gradient penalty, R1, the cycle
  loss;
* :mod:`genjax.gan.spectral` — spectral normalisation by power iteration (function and
  layer wrapper);
* :mod:`genjax.gan.network` — 2-D MLPs, DCGAN, conditional GAN with a projection
  discriminator, StyleGAN's mapping network and AdaIN, CycleGAN's translator;
* :mod:`genjax.gan.step` — alternating updates (``n_critic``), two optimisers, EMA of the
  generator, in one jit-able step;
* :mod:`genjax.gan.oracle` — the NumPy float64 twin of the losses and regularisers.

The optimal discriminator ``D* = p_data / (p_data + p_g)`` and the game's value at it,
``2 JSD - log 4``, come from :mod:`genjax.targets` and are re-exported here.
"""

from genjax.gan.loss import (  # noqa: F401
    critic_input_grad,
    cycle_consistency_loss,
    gradient_penalty,
    gradient_penalty_at,
    hinge_d,
    hinge_g,
    interpolate,
    least_squares_d,
    least_squares_g,
    minimax_d,
    minimax_g,
    nonsaturating_g,
    r1_penalty,
    wasserstein_d,
    wasserstein_g,
    weight_clip,
)
from genjax.gan.network import (  # noqa: F401
    AdaIN,
    DCGANDiscriminator,
    DCGANGenerator,
    MappingNetwork,
    MLPDiscriminator,
    MLPGenerator,
    Translator,
    adain,
    pixel_norm,
)
from genjax.gan.spectral import SpectralNorm, SpectralVector, power_iteration, spectral_norm  # noqa: F401
from genjax.gan.step import (  # noqa: F401
    LOSSES,
    CycleGANTrainer,
    GANTrainer,
    cyclegan_trainer,
    gan_trainer,
)
from genjax.targets import gan_value_at_optimum, optimal_discriminator  # noqa: F401
