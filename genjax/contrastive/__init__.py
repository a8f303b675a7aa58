"""Contrastive image-text models: CLIP's loss, SigLIP's loss, zero-shot classification,
captioned digits and the CLIP model.

* :mod:`.loss` -- ``clip_loss`` (symmetric InfoNCE, Radford et al. 2021), ``sigmoid_loss``
  (SigLIP, Zhai et al. 2023), ``sharded_clip_loss`` (the batch over a ``"data"`` mesh axis);
* :mod:`.zero_shot` -- ``zero_shot_classify`` with prompt templates and ensembling;
* :mod:`.captions` -- digits paired with generated captions, a character tokeniser;
* :mod:`.network` -- the CLIP model (image and text encoders from :mod:`genjax.nn`) and its
  loss in the model protocol, ``clip_model_loss(model, batch, key)``;
* :mod:`.oracle` -- the NumPy float64 twin of the losses and of zero-shot classification.

The losses are over embeddings (DESIGN.md); what takes the model -- ``clip_model_loss``,
``encode_classes``, ``zero_shot_predict``, ``image_text_similarity`` -- takes the CLIP Module
as a traced pytree. A diffusion model conditioned on CLIP's text encoder (text-to-image)
joins two families and lives in :mod:`genjax.composites`.
"""

from genjax.contrastive import captions as captions
from genjax.contrastive import network as network
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
from genjax.contrastive.network import CLIP as CLIP
from genjax.contrastive.network import OBJECTIVES as OBJECTIVES
from genjax.contrastive.network import clip_model_loss as clip_model_loss
from genjax.contrastive.zero_shot import class_text_embeddings as class_text_embeddings
from genjax.contrastive.zero_shot import encode_classes as encode_classes
from genjax.contrastive.zero_shot import ensemble_class_embeddings as ensemble_class_embeddings
from genjax.contrastive.zero_shot import format_prompts as format_prompts
from genjax.contrastive.zero_shot import image_text_similarity as image_text_similarity
from genjax.contrastive.zero_shot import zero_shot_classify as zero_shot_classify
from genjax.contrastive.zero_shot import zero_shot_logits as zero_shot_logits
from genjax.contrastive.zero_shot import zero_shot_predict as zero_shot_predict
