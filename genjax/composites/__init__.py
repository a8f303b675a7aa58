"""What joins two families: the only place where one family's math meets another's.

DESIGN.md: "a family imports no other family; what joins two lives in composites/".

* :mod:`.latent_diffusion` -- a diffusion model in a VAE's latent space (Rombach et al.
  2022): :class:`LatentDiffusion` (the VAE and the latent denoiser, one model pytree), its
  loss and its DDIM sampler that decodes;
* :mod:`.text_to_image` -- a U-Net denoiser conditioned by cross-attention on a CLIP text
  encoder's token features, caption dropout, classifier-free guided DDIM (and negative
  prompts: ``negative_context``);
* :mod:`.unclip` -- DALL-E 2's cascade (Ramesh et al. 2022): a diffusion prior from CLIP text
  embeddings to CLIP image embeddings and a U-Net decoder from image embeddings to images
  (:mod:`.unclip_recipes`: ``genjax train unclip``);
* :mod:`.clip_guided` -- VQGAN+CLIP (Crowson et al. 2022): a decoder's latents, quantised
  straight-through, optimised by Adam towards a CLIP caption embedding;
* :mod:`.captioner` -- a projection-layer captioning VLM (LLaVA / PaliGemma): CLIP patch
  features projected into a prefix-LM transformer, greedy and beam captions through the KV
  cache (:mod:`.vision_language_recipes`: ``genjax train clip-guided | captioner``);
* :mod:`.vq_prior` -- a VQ-VAE tokenizer's codes as token sequences and a class-prefixed
  transformer prior over them, sampled by ``generate`` through the KV cache (van den Oord et
  al. 2017, sec. 3.3); :mod:`.vqgan` -- the VQ autoencoder with a patch critic, the adaptive
  weight and classifier feature matching (Esser et al. 2021) (:mod:`.token_recipes`:
  ``genjax train vq-prior | vqgan``);
* :mod:`.flow_posterior` -- a VAE whose posterior is a normalizing flow (planar, Rezende &
  Mohamed 2015; IAF with encoder context, Kingma et al. 2016), its ELBO and IWAE bound in
  :mod:`.flow_posterior_loss` (:mod:`.flow_posterior_recipes`: ``genjax train vae-iaf``);
* :mod:`.recipes` -- ``genjax train latent-diffusion`` and ``genjax train text-to-digit``.

Every function follows the model protocol: models are callable pytrees passed as traced
arguments, samplers ``name(key, model, ...)``, losses ``name(model, batch, key, *, ...)``.
"""

from genjax.composites import captioner as captioner
from genjax.composites import clip_guided as clip_guided
from genjax.composites import latent_diffusion as latent_diffusion
from genjax.composites import text_to_image as text_to_image
from genjax.composites import unclip as unclip
from genjax.composites import vq_prior as vq_prior
from genjax.composites import vqgan as vqgan
from genjax.composites.flow_posterior import ContextMADE as ContextMADE
from genjax.composites.flow_posterior import FlowPosteriorVAE as FlowPosteriorVAE
from genjax.composites.flow_posterior import affine_flow_vae as affine_flow_vae
from genjax.composites.flow_posterior import context_made_degrees as context_made_degrees
from genjax.composites.flow_posterior import flow_posterior_sample as flow_posterior_sample
from genjax.composites.flow_posterior import (
    flow_posterior_sample_from_noise as flow_posterior_sample_from_noise,
)
from genjax.composites.flow_posterior import mlp_flow_vae as mlp_flow_vae
from genjax.composites.flow_posterior_loss import flow_elbo_loss as flow_elbo_loss
from genjax.composites.flow_posterior_loss import flow_elbo_terms as flow_elbo_terms
from genjax.composites.flow_posterior_loss import flow_iwae_bound as flow_iwae_bound
from genjax.composites.flow_posterior_loss import flow_log_weights as flow_log_weights
from genjax.composites.latent_diffusion import LatentDiffusion as LatentDiffusion
from genjax.composites.latent_diffusion import encode_latents as encode_latents
from genjax.composites.text_to_image import ContextModel as ContextModel
from genjax.composites.text_to_image import GuidedContextModel as GuidedContextModel
from genjax.composites.text_to_image import caption_dropout as caption_dropout
from genjax.composites.text_to_image import guided_context_eps_fn as guided_context_eps_fn
from genjax.composites.text_to_image import text_context as text_context
from genjax.composites.text_to_image import text_to_image_loss as text_to_image_loss
from genjax.composites.vq_prior import CodePrior as CodePrior
from genjax.composites.vqgan import PatchDiscriminator as PatchDiscriminator
