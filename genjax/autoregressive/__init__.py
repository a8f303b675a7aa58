"""Autoregressive models and decoding.

Networks (``network``): a decoder-only causal transformer with a KV cache, PixelCNN
(masked convolutions, gated and blind-spot free), WaveNet (dilated causal convolutions)
and MADE; losses (``loss``); decoding strategies (``decoding``): greedy, temperature,
top-k, top-p, min-p, beam search, speculative and constrained decoding.
"""

from genjax.autoregressive import constrained as constrained
from genjax.autoregressive import decoding as decoding
from genjax.autoregressive import loss as loss
from genjax.autoregressive import network as network
from genjax.autoregressive.decoding import beam_search as beam_search
from genjax.autoregressive.decoding import generate as generate
from genjax.autoregressive.decoding import sample_token as sample_token
from genjax.autoregressive.decoding import speculative_generate as speculative_generate
from genjax.autoregressive.decoding import speculative_verify as speculative_verify
from genjax.autoregressive.loss import categorical_nll as categorical_nll
from genjax.autoregressive.loss import next_token_loss as next_token_loss
from genjax.autoregressive.loss import next_token_nll as next_token_nll
from genjax.autoregressive.loss import pixelcnn_loss as pixelcnn_loss
from genjax.autoregressive.loss import wavenet_loss as wavenet_loss
from genjax.autoregressive.network import GatedPixelCNN as GatedPixelCNN
from genjax.autoregressive.network import MaskedConv2d as MaskedConv2d
from genjax.autoregressive.network import PixelCNN as PixelCNN
from genjax.autoregressive.network import Transformer as Transformer
from genjax.autoregressive.network import WaveNet as WaveNet
from genjax.autoregressive.network import conv_mask as conv_mask
from genjax.autoregressive.network import mu_law_decode as mu_law_decode
from genjax.autoregressive.network import mu_law_encode as mu_law_encode
from genjax.autoregressive.network import pixelcnn_sample as pixelcnn_sample
from genjax.autoregressive.network import wavenet_sample as wavenet_sample
from genjax.nn.made import MADE as MADE
