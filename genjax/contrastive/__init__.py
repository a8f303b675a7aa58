"""Contrastive image-text models: CLIP's loss, SigLIP's loss, zero-shot classification,
captioned digits, and a text-conditioned diffusion model steered by the CLIP text encoder.

* :mod:`.loss` -- ``clip_loss`` (symmetric InfoNCE, Radford et al. 2021), ``sigmoid_loss``
  (SigLIP, Zhai et al. 2023), ``sharded_clip_loss`` (the batch over a ``"data"`` mesh axis);
* :mod:`.zero_shot` -- ``zero_shot_classify`` with prompt templates and ensembling;
* :mod:`.captions` -- digits paired with generated captions, a character tokeniser;
* :mod:`.network` -- the CLIP model (image and text encoders from :mod:`genjax.nn`);
* :mod:`.text_to_image` -- a U-Net denoiser conditioned by cross-attention on the text
  encoder's token embeddings, caption dropout, classifier-free guided DDIM;
* :mod:`.oracle` -- the NumPy float64 twin of the losses and of zero-shot classification.
"""

from genjax.contrastive import captions as captions
from genjax.contrastive import zero_shot as zero_shot
from genjax.contrastive.loss import INIT_LOG_LOGIT_SCALE as INIT_LOG_LOGIT_SCALE
from genjax.contrastive.loss import MAX_LOGIT_SCALE as MAX_LOGIT_SCALE
from genjax.contrastive.loss import SIGLIP_INIT_LOG_LOGIT_SCALE as SIGLIP_INIT_LOG_LOGIT_SCALE
from genjax.contrastive.loss import SIGLIP_INIT_LOGIT_BIAS as SIGLIP_INIT_LOGIT_BIAS
from genjax.contrastive.loss import clip_logits as clip_logits
from genjax.contrastive.loss import clip_loss as clip_loss
from genjax.contrastive.loss import clip_loss_terms as clip_loss_terms
from genjax.contrastive.loss import clipped_logit_scale as clipped_logit_scale
from genjax.contrastive.loss import l2_normalize as l2_normalize
from genjax.contrastive.loss import sharded_clip_loss as sharded_clip_loss
from genjax.contrastive.loss import sigmoid_loss as sigmoid_loss
from genjax.contrastive.zero_shot import class_text_embeddings as class_text_embeddings
from genjax.contrastive.zero_shot import ensemble_class_embeddings as ensemble_class_embeddings
from genjax.contrastive.zero_shot import format_prompts as format_prompts
from genjax.contrastive.zero_shot import zero_shot_classify as zero_shot_classify
from genjax.contrastive.zero_shot import zero_shot_logits as zero_shot_logits
