"""Autoregressive models and decoding.

Networks, one architecture a module: a decoder-only causal transformer with a KV cache
(``transformer``), PixelCNN plain and gated (``pixelcnn``), WaveNet (``wavenet``), the
pieces the last two share (``levels``), and MADE (``genjax.nn.made``); losses (``loss``);
decoding strategies (``decoding``: filters, generate, beam search, speculative and
constrained decoding -- regular expressions, JSON schemas, context-free grammars); JSON
records for the ``json-lm`` recipe (``json_records``, ``json_lm``). Every sampler takes
the model as a traced argument (DESIGN.md, "One model protocol"): ``generate(key, model,
prompt, ...)``, ``beam_search(model, prompt, ...)``, ``pixelcnn_sample(key, model, n,
...)``; every loss is ``name(model, batch, key)``.
"""

from genjax.autoregressive import decoding as decoding
from genjax.autoregressive import levels as levels
from genjax.autoregressive import loss as loss
from genjax.autoregressive import pixelcnn as pixelcnn
from genjax.autoregressive import transformer as transformer
from genjax.autoregressive import wavenet as wavenet
from genjax.autoregressive.decoding import beam_search as beam_search
from genjax.autoregressive.decoding import beam_search_cached as beam_search_cached
from genjax.autoregressive.decoding import constrained as constrained
from genjax.autoregressive.decoding import filter_logits as filter_logits
from genjax.autoregressive.decoding import from_grammar as from_grammar
from genjax.autoregressive.decoding import from_json_schema as from_json_schema
from genjax.autoregressive.decoding import generate as generate
from genjax.autoregressive.decoding import generate_from_noise as generate_from_noise
from genjax.autoregressive.decoding import min_p_filter as min_p_filter
from genjax.autoregressive.decoding import sample_token as sample_token
from genjax.autoregressive.decoding import sample_token_from_noise as sample_token_from_noise
from genjax.autoregressive.decoding import speculative_generate as speculative_generate
from genjax.autoregressive.decoding import speculative_verify as speculative_verify
from genjax.autoregressive.decoding import (
    speculative_verify_batch as speculative_verify_batch,
)
from genjax.autoregressive.decoding import (
    speculative_verify_from_noise as speculative_verify_from_noise,
)
from genjax.autoregressive.decoding import temperature as temperature
from genjax.autoregressive.decoding import top_k_filter as top_k_filter
from genjax.autoregressive.decoding import top_p_filter as top_p_filter
from genjax.autoregressive.levels import levels_to_input as levels_to_input
from genjax.autoregressive.loss import categorical_nll as categorical_nll
from genjax.autoregressive.loss import image_nll as image_nll
from genjax.autoregressive.loss import next_token_loss as next_token_loss
from genjax.autoregressive.loss import next_token_nll as next_token_nll
from genjax.autoregressive.loss import pixelcnn_loss as pixelcnn_loss
from genjax.autoregressive.loss import wavenet_loss as wavenet_loss
from genjax.autoregressive.pixelcnn import MASK_TYPES as MASK_TYPES
from genjax.autoregressive.pixelcnn import GatedPixelCNN as GatedPixelCNN
from genjax.autoregressive.pixelcnn import GatedPixelCNNLayer as GatedPixelCNNLayer
from genjax.autoregressive.pixelcnn import MaskedConv2d as MaskedConv2d
from genjax.autoregressive.pixelcnn import PixelCNN as PixelCNN
from genjax.autoregressive.pixelcnn import conv_mask as conv_mask
from genjax.autoregressive.pixelcnn import pixelcnn_sample as pixelcnn_sample
from genjax.autoregressive.pixelcnn import (
    pixelcnn_sample_from_noise as pixelcnn_sample_from_noise,
)
from genjax.autoregressive.pixelcnn import quantize as quantize
from genjax.autoregressive.transformer import Transformer as Transformer
from genjax.autoregressive.wavenet import CausalConv1d as CausalConv1d
from genjax.autoregressive.wavenet import WaveNet as WaveNet
from genjax.autoregressive.wavenet import mu_law_decode as mu_law_decode
from genjax.autoregressive.wavenet import mu_law_encode as mu_law_encode
from genjax.autoregressive.wavenet import wavenet_sample as wavenet_sample
from genjax.autoregressive.wavenet import (
    wavenet_sample_from_noise as wavenet_sample_from_noise,
)
from genjax.nn.made import MADE as MADE
