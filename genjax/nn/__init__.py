"""Shared flax.nnx layers, used functionally (see STYLE.md).

Every family imports its layers from here rather than writing its own.
"""

from genjax.nn.attention import (  # noqa: F401
    MultiHeadAttention,
    TransformerBlock,
    causal_mask,
    dot_product_attention,
)
from genjax.nn.autoencoders import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder  # noqa: F401
from genjax.nn.clip_encoders import CharTextEncoder, ConvImageEncoder  # noqa: F401
from genjax.nn.denoiser import MLPDenoiser as MLPDenoiser
from genjax.nn.embeddings import FourierFrequencies as FourierFrequencies
from genjax.nn.embeddings import GaussianFourierFeatures as GaussianFourierFeatures
from genjax.nn.embeddings import sinusoidal_embedding as sinusoidal_embedding
from genjax.nn.made import MADE as MADE
from genjax.nn.made import made_degrees as made_degrees
from genjax.nn.made import made_masks as made_masks
from genjax.nn.mlp import MLP as MLP
from genjax.nn.unet import UNet as UNet
