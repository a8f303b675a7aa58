"""Shared flax.nnx layers, used functionally (see STYLE.md).

Every family imports its layers from here rather than writing its own. Each network is a
*model* (DESIGN.md, "One model protocol"): an ``nnx.Module`` is a pytree, passed whole to
``jax.jit``, ``jax.grad``, optax, the trainer and every genjax sampler and loss -- its
weights are traced arguments, so new weights of the same shapes never recompile.

=================== ===============================================================
module              holds
=================== ===============================================================
``mlp``             :class:`MLP`
``embeddings``      :func:`sinusoidal_embedding`, :class:`GaussianFourierFeatures`
``denoiser``        :class:`MLPDenoiser` (time-conditioned MLP for 2-D diffusion)
``unet``            :class:`UNet` and its :class:`ResBlock`, :class:`AttentionBlock`
``dit``             :class:`DiT` and its :class:`AdaLNZeroBlock`, :class:`FinalLayer`,
                    :func:`patchify`, :func:`unpatchify`
``attention``       :func:`dot_product_attention`, :class:`MultiHeadAttention`,
                    :class:`TransformerBlock`, :func:`causal_mask`, :func:`prefix_lm_mask`
``autoencoders``    MLP and convolutional encoders/decoders
``clip_encoders``   the image and text encoders of CLIP
``made``            :class:`MADE` and its masks
``video_dit``       :class:`VideoDiT` (DiT over tubelets, factorised space-time attention),
                    :func:`tubelet_patchify`, :func:`tubelet_unpatchify`
``lora``            :func:`apply_lora` (LoRA adapters on any Linear/Conv), :func:`merge_lora`,
                    :func:`unmerge_lora`, :func:`lora_optimizer` (adapters-only training)
=================== ===============================================================

Every public name of these modules is importable from ``genjax.nn`` (a test holds the two
together).
"""

from genjax.nn.attention import (
    MultiHeadAttention,
    TransformerBlock,
    causal_mask,
    dot_product_attention,
    prefix_lm_mask,
)
from genjax.nn.autoencoders import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder
from genjax.nn.clip_encoders import CharTextEncoder, ConvImageEncoder
from genjax.nn.denoiser import MLPDenoiser
from genjax.nn.dit import (
    AdaLNZeroBlock,
    DiT,
    FinalLayer,
    modulate,
    patchify,
    sincos_position_embedding_2d,
    unpatchify,
)
from genjax.nn.embeddings import FourierFrequencies, GaussianFourierFeatures, sinusoidal_embedding
from genjax.nn.lora import (
    LoRAConv,
    LoRALinear,
    LoRAParam,
    apply_lora,
    lora_labels,
    lora_optimizer,
    lora_parameter_counts,
    merge_lora,
    unmerge_lora,
)
from genjax.nn.made import MADE, made_degrees, made_masks
from genjax.nn.mlp import MLP
from genjax.nn.unet import AttentionBlock, ResBlock, UNet
from genjax.nn.video_dit import (
    VideoDiT,
    spacetime_position_embedding,
    spatial_attention,
    temporal_attention,
    tubelet_patchify,
    tubelet_unpatchify,
)

__all__ = [
    # attention
    "MultiHeadAttention",
    "TransformerBlock",
    "causal_mask",
    "dot_product_attention",
    "prefix_lm_mask",
    # autoencoders
    "ConvDecoder",
    "ConvEncoder",
    "MLPDecoder",
    "MLPEncoder",
    # clip_encoders
    "CharTextEncoder",
    "ConvImageEncoder",
    # denoiser
    "MLPDenoiser",
    # dit
    "AdaLNZeroBlock",
    "DiT",
    "FinalLayer",
    "modulate",
    "patchify",
    "sincos_position_embedding_2d",
    "unpatchify",
    # embeddings
    "FourierFrequencies",
    "GaussianFourierFeatures",
    "sinusoidal_embedding",
    # lora
    "LoRAConv",
    "LoRALinear",
    "LoRAParam",
    "apply_lora",
    "lora_labels",
    "lora_optimizer",
    "lora_parameter_counts",
    "merge_lora",
    "unmerge_lora",
    # made
    "MADE",
    "made_degrees",
    "made_masks",
    # mlp
    "MLP",
    # unet
    "AttentionBlock",
    "ResBlock",
    "UNet",
    # video_dit
    "VideoDiT",
    "spacetime_position_embedding",
    "spatial_attention",
    "temporal_attention",
    "tubelet_patchify",
    "tubelet_unpatchify",
]
