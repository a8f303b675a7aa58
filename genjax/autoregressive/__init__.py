"""Autoregressive models and decoding.

Networks (``network``): a decoder-only causal transformer with a KV cache, PixelCNN
(masked convolutions, gated and blind-spot free), WaveNet (dilated causal convolutions)
and MADE; losses (``loss``); decoding strategies (``decoding``): greedy, temperature,
top-k, top-p, min-p, beam search, speculative and constrained decoding.
"""

from genjax.autoregressive import constrained as constrained
from genjax.autoregressive import decoding as decoding
from genjax.autoregressive import network as network
from genjax.autoregressive.decoding import beam_search as beam_search
from genjax.autoregressive.decoding import generate as generate
from genjax.autoregressive.decoding import sample_token as sample_token
from genjax.autoregressive.decoding import speculative_generate as speculative_generate
from genjax.autoregressive.decoding import speculative_verify as speculative_verify
from genjax.autoregressive.network import Transformer as Transformer
