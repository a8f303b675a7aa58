"""Autoregressive models and decoding.

Networks (``network``): a decoder-only causal transformer with a KV cache, PixelCNN
(masked convolutions, gated and blind-spot free), WaveNet (dilated causal convolutions)
and MADE; losses (``loss``); decoding strategies (``decoding``): greedy, temperature,
top-k, top-p, min-p, beam search, speculative and constrained decoding.
"""

from genjax.autoregressive import network as network
from genjax.autoregressive.network import Transformer as Transformer
