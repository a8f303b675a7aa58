"""Decoding strategies for autoregressive models: each exact to the distribution it claims.

One strategy a module, every sampler compiled whole (one ``jax.jit`` around one loop), the
model a traced argument (:func:`genjax.model.model_jit`):

* :mod:`.filters` -- :func:`temperature`, :func:`top_k_filter`, :func:`top_p_filter`
  (nucleus sampling, Holtzman et al. 2020), :func:`min_p_filter` (Nguyen et al. 2024);
  :func:`filter_logits` composing them, :func:`sample_token` drawing from them
  (temperature 0 is greedy), :func:`sample_token_from_noise` its Gumbel-max step;
* :mod:`.generation` -- :func:`generate` (KV cache, one ``lax.while_loop``, per-sequence
  EOS, optional token-level constraint) and :func:`generate_from_noise`;
* :mod:`.beam` -- :func:`beam_search` with EOS handling and a length penalty (Wu et al.
  2016) over the full forward pass, :func:`beam_search_cached` over the KV cache;
* :mod:`.speculative` -- :func:`speculative_verify` (and ``_from_noise``, ``_batch``) and
  :func:`speculative_generate`: speculative sampling (Leviathan, Kalman & Matias 2023;
  Chen et al. 2023), which emits tokens distributed exactly as the target model's;
* :mod:`.constrained` -- regular expressions (:mod:`.regex`: classes, escapes, bounded
  repetition) and string lists compiled to token automata (Willard & Louf 2023);
  :mod:`.json_schema` -- a bounded JSON schema's serialisations as such an automaton
  (:func:`from_json_schema`); :mod:`.grammar` -- LL(1) context-free grammars (arbitrary-
  depth JSON, balanced brackets) as a pushdown automaton with a bounded stack
  (:func:`from_grammar`); :mod:`.masking` -- the one interface through which
  :func:`generate` and :func:`beam_search` mask inside their compiled loops;
* :mod:`.interface` -- what a model provides (``model(tokens)``, ``init_cache``,
  ``decode``, ``vocab_size``, ``max_len``), e.g. :class:`genjax.autoregressive.Transformer`.

Noise is injectable everywhere: sampling is the Gumbel-max trick, and every ``*_from_noise``
twin takes the keyed function's arguments without the key, then the noise
(``generate_from_noise(model, prompt, gumbels, ...)``), so tests share noise with the
NumPy oracle (:mod:`genjax.autoregressive.oracle`).

References:
  Holtzman et al. (2020), "The curious case of neural text degeneration", ICLR.
  Nguyen et al. (2024), "Turning up the heat: min-p sampling for creative and coherent
    LLM outputs".
  Wu et al. (2016), "Google's neural machine translation system", eq. 14 (length penalty).
  Leviathan, Kalman & Matias (2023), "Fast inference from transformers via speculative
    decoding", ICML, Algorithm 1.
  Chen et al. (2023), "Accelerating large language model decoding with speculative
    sampling", Algorithm 2.
  Willard & Louf (2023), "Efficient guided generation for large language models".
"""

from genjax.autoregressive.decoding import beam as beam
from genjax.autoregressive.decoding import constrained as constrained
from genjax.autoregressive.decoding import filters as filters
from genjax.autoregressive.decoding import generation as generation
from genjax.autoregressive.decoding import grammar as grammar
from genjax.autoregressive.decoding import interface as interface
from genjax.autoregressive.decoding import json_schema as json_schema
from genjax.autoregressive.decoding import masking as masking
from genjax.autoregressive.decoding import regex as regex
from genjax.autoregressive.decoding import speculative as speculative
from genjax.autoregressive.decoding.beam import beam_search as beam_search
from genjax.autoregressive.decoding.beam import beam_search_cached as beam_search_cached
from genjax.autoregressive.decoding.filters import filter_logits as filter_logits
from genjax.autoregressive.decoding.filters import min_p_filter as min_p_filter
from genjax.autoregressive.decoding.filters import sample_token as sample_token
from genjax.autoregressive.decoding.filters import (
    sample_token_from_noise as sample_token_from_noise,
)
from genjax.autoregressive.decoding.filters import sampling_options as sampling_options
from genjax.autoregressive.decoding.filters import temperature as temperature
from genjax.autoregressive.decoding.filters import top_k_filter as top_k_filter
from genjax.autoregressive.decoding.filters import top_p_filter as top_p_filter
from genjax.autoregressive.decoding.generation import generate as generate
from genjax.autoregressive.decoding.generation import (
    generate_from_noise as generate_from_noise,
)
from genjax.autoregressive.decoding.grammar import from_grammar as from_grammar
from genjax.autoregressive.decoding.json_schema import from_json_schema as from_json_schema
from genjax.autoregressive.decoding.speculative import (
    speculative_generate as speculative_generate,
)
from genjax.autoregressive.decoding.speculative import (
    speculative_verify as speculative_verify,
)
from genjax.autoregressive.decoding.speculative import (
    speculative_verify_batch as speculative_verify_batch,
)
from genjax.autoregressive.decoding.speculative import (
    speculative_verify_from_noise as speculative_verify_from_noise,
)

__all__ = ["constrained", "grammar", "json_schema", "masking", "regex", "from_grammar",
           "from_json_schema", *filters.__all__, *generation.__all__, *beam.__all__,
           *speculative.__all__]
