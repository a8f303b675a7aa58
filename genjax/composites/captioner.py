"""Image captioning with a projection-layer vision-language model (LLaVA / PaliGemma style).

The CLIP image tower's **patch features** -- the last convolutional feature map of
:class:`genjax.nn.ConvImageEncoder`, one C-vector per patch -- are mapped by a projector into
a decoder-only transformer's embedding space and put in front of the caption's tokens
(Liu et al. 2023, sec. 4.1, eq. 1: ``H_v = W Z_v``; LLaVA-1.5's two-layer MLP, Liu et al.
2024, sec. 3.1)::

    F = patches(f_image(x))                      (B, P, C)   P = h w patches
    H_v = Proj(F) + pos[0 .. P-1]                (B, P, D)   Proj: Linear, or MLP with GELU
    H_t = E[y_0 .. y_{L-1}] + pos[P .. P+L-1]    (B, L, D)   caption tokens
    h = Blocks([H_v ; H_t])                      prefix-LM attention
    p(y_{t+1} | x, y_{<=t}) = softmax(W_out LN(h)_{P+t})

The attention is **prefix-LM** (PaliGemma, Beyer et al. 2024, sec. 3.2; Raffel et al.
2020, sec. 3.2.1): the image tokens attend to each other in both directions, a text token
to every image token and to the text at or before it (:func:`genjax.nn.attention.
prefix_lm_mask`). So no image token depends on any text token, and no text token on a later
one: the tests check both by Jacobian. The loss is the captions' teacher-forced
cross-entropy (Liu et al. 2023, eq. 3), over the caption tokens only.

**Decoding.** :class:`VisualPrefixLM` wraps a captioner and one batch of image prefixes
into the decoding interface of :mod:`genjax.autoregressive.decoding.interface`: its
``init_cache`` writes the P image tokens into a fresh KV cache (one prefill under the
prefix-LM mask), ``decode`` feeds text at positions ``P + pos``, and ``__call__`` is the
uncached forward pass. With it the family's own :func:`~genjax.autoregressive.decoding.
generate` (greedy at temperature 0, or any sampling filter) and :func:`~genjax.
autoregressive.decoding.beam_search_cached` caption images through the KV cache, and
``use_cache=False`` / :func:`~genjax.autoregressive.decoding.beam_search` are the uncached
references the tests hold them to. A batch of ``n = B K`` rows (beam search's beams) reuses
the B image prefixes ``K`` times each, in beam search's row order ``b K + k``.

References:
  Liu, Li, Wu, Lee, "Visual Instruction Tuning" (LLaVA), NeurIPS 2023.
  Liu, Li, Li, Lee, "Improved Baselines with Visual Instruction Tuning" (LLaVA-1.5),
    CVPR 2024.
  Beyer et al., "PaliGemma: A versatile 3B VLM for transfer", arXiv:2407.07726, 2024.
  Raffel et al., "Exploring the Limits of Transfer Learning with a Unified Text-to-Text
    Transformer", JMLR 2020.
  Radford et al., "Learning Transferable Visual Models From Natural Language
    Supervision", ICML 2021.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import checks
from genjax.autoregressive.decoding import beam_search, beam_search_cached, generate
from genjax.autoregressive.transformer import Transformer
from genjax.contrastive import captions
from genjax.model import model_jit
from genjax.nn.clip_encoders import ConvImageEncoder
from genjax.nn.mlp import MLP

__all__ = [
    "PROJECTORS",
    "Captioner",
    "VisualPrefixLM",
    "patch_features",
    "captioning_loss",
    "greedy_captions",
    "beam_captions",
]

PROJECTORS = ("linear", "mlp")
"""The projectors from CLIP patch features to the language model: ``"linear"`` or ``"mlp"``."""


def patch_features(encoder: ConvImageEncoder, images: jax.Array) -> jax.Array:
    """The image tower's last conv feature map as patch tokens.

        h = SiLU(GN(Conv3x3_stride2(h)))   for each conv of ``encoder``   (B, h, w, C)
        F = reshape(h, (B, h w, C))        raster order

    Args:
      encoder: a :class:`genjax.nn.ConvImageEncoder` (e.g. ``clip.image_encoder``).
      images: (B, H, W, C_in) in the encoder's range.

    Returns:
      (B, P, C) patch features, ``P = (H / 2^n) (W / 2^n)`` for n convolutions.
    """
    checks.shape("images", images, (None, *encoder.image_size, encoder.in_channels))
    h = jnp.asarray(images, jnp.float32)
    for conv, norm in zip(encoder.convs, encoder.norms, strict=True):
        h = nnx.silu(norm(conv(h)))  # the encoder's own layers, (B, H/2, W/2, width)
    B, hh, ww, C = h.shape
    return h.reshape(B, hh * ww, C)


class Captioner(nnx.Module):
    """Projector + decoder-only transformer with prefix-LM attention over image patches.

    Args:
      feature_dim: C, the patch features' size.
      num_patches: P, the image tokens per image.
      dim: D, the language model's width (divisible by ``num_heads``).
      num_heads, num_layers: the transformer's heads and blocks.
      projector: ``"mlp"`` (Linear C->D, GELU, Linear D->D; LLaVA-1.5) or ``"linear"``
        (LLaVA's ``H_v = W Z_v``).
      vocab_size: V (default: the caption tokeniser's).
      max_text_len: the longest caption in tokens (default ``captions.MAX_LENGTH``).
      rngs: ``nnx.Rngs`` for initialisation.
    """

    def __init__(self, feature_dim: int, num_patches: int, *, dim: int = 64,
                 num_heads: int = 4, num_layers: int = 2, projector: str = "mlp",
                 vocab_size: int = captions.VOCAB_SIZE,
                 max_text_len: int = captions.MAX_LENGTH, rngs: nnx.Rngs):
        self.feature_dim = checks.positive_int("feature_dim", feature_dim)
        self.num_patches = checks.positive_int("num_patches", num_patches)
        self.max_text_len = checks.positive_int("max_text_len", max_text_len)
        dim = checks.positive_int("dim", dim)
        checks.one_of("projector", projector, PROJECTORS)
        if projector == "mlp":
            self.projector = MLP(self.feature_dim, [dim], dim, rngs=rngs, activation=nnx.gelu)
        else:
            self.projector = nnx.Linear(self.feature_dim, dim, rngs=rngs)
        self.lm = Transformer(vocab_size, self.num_patches + self.max_text_len, dim, num_heads,
                              num_layers, rngs=rngs)

    @property
    def vocab_size(self) -> int:
        return self.lm.vocab_size

    def image_tokens(self, features: jax.Array) -> jax.Array:
        """``H_v = Proj(F) + pos[0 .. P-1]``: features (B, P, C) -> (B, P, D)."""
        checks.shape("features", features, (None, self.num_patches, self.feature_dim))
        P = self.num_patches
        return self.projector(features) + self.lm.position_embedding(0, P)[None]

    def text_tokens(self, tokens: jax.Array, start: jax.Array | int = 0) -> jax.Array:
        """``E[y] + pos[P + start + t]``: tokens (B, S) int -> (B, S, D)."""
        return self.lm.embed(tokens, self.num_patches + start)

    def logits_from_embeddings(self, h: jax.Array) -> jax.Array:
        """The prefix-LM blocks and read-out on ``[H_v ; H_t]`` (B, P + L, D) -> (B, P + L, V).

        Public so that tests can differentiate every output row by every input row.
        """
        checks.ndim("h", h, 3, "(B, P + L, D)")
        for block in self.lm.blocks:
            h = block(h, prefix_length=self.num_patches)  # prefix-LM self-attention + MLP
        return self.lm.head(self.lm.norm(h))

    def __call__(self, features: jax.Array, tokens: jax.Array) -> jax.Array:
        """Text logits: features (B, P, C), tokens (B, L) -> (B, L, V); row t scores y_{t+1}."""
        checks.ndim("tokens", tokens, 2, "(B, L)")
        checks.integer_array("tokens", tokens)
        if not 1 <= tokens.shape[1] <= self.max_text_len:
            raise ValueError(f"tokens must have 1..{self.max_text_len} columns, got "
                             f"{tokens.shape[1]}")
        if tokens.shape[0] != features.shape[0]:
            raise ValueError(f"tokens has {tokens.shape[0]} rows, features {features.shape[0]}")
        h = jnp.concatenate([self.image_tokens(features), self.text_tokens(tokens)], axis=1)
        return self.logits_from_embeddings(h)[:, self.num_patches:]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class VisualPrefixLM:
    """A captioner with a fixed batch of image prefixes, in the decoding interface.

    Attributes:
      captioner: the :class:`Captioner`.
      prefix: (B, P, D) image tokens ``H_v`` (:meth:`Captioner.image_tokens`).

    A call on ``n = B K`` rows uses prefix ``b`` for rows ``b K .. b K + K - 1``.
    """

    captioner: Captioner
    prefix: jax.Array

    @property
    def vocab_size(self) -> int:
        return self.captioner.lm.vocab_size

    @property
    def max_len(self) -> int:
        return self.captioner.max_text_len

    def _prefix_rows(self, n: int) -> jax.Array:
        B = self.prefix.shape[0]
        if n % B:
            raise ValueError(f"batch of {n} rows is not a multiple of the {B} image prefixes")
        return jnp.repeat(self.prefix, n // B, axis=0)  # row b K + k <- prefix b

    def __call__(self, tokens: jax.Array) -> jax.Array:
        """Uncached: tokens (n, L) -> text logits (n, L, V) after the image prefix."""
        P = self.captioner.num_patches
        h = jnp.concatenate([self._prefix_rows(tokens.shape[0]),
                             self.captioner.text_tokens(tokens)], axis=1)
        return self.captioner.logits_from_embeddings(h)[:, P:]

    def init_cache(self, batch_size: int, max_len: int | None = None,
                   dtype=jnp.float32) -> tuple[dict, ...]:
        """A KV cache of ``P + max_len`` positions with the image prefix already written
        (one prefill of the P image tokens under the prefix-LM mask)."""
        P = self.captioner.num_patches
        max_len = self.max_len if max_len is None else checks.positive_int("max_len", max_len)
        cache = self.captioner.lm.init_block_cache(batch_size, P + max_len, dtype)
        h = self._prefix_rows(batch_size)  # (n, P, D)
        filled = []
        for block, layer in zip(self.captioner.lm.blocks, cache, strict=True):
            h, layer = block.decode(h, layer, jnp.asarray(0, jnp.int32), prefix_length=P)
            filled.append(layer)
        return tuple(filled)

    def decode(self, tokens: jax.Array, cache: tuple[dict, ...],
               pos: jax.Array) -> tuple[jax.Array, tuple[dict, ...]]:
        """Text tokens (n, S) at text positions ``pos ..`` (absolute ``P + pos ..``) ->
        (logits (n, S, V), cache); equal to the rows of :meth:`__call__`."""
        P = self.captioner.num_patches
        start = P + jnp.asarray(pos, jnp.int32)
        h = self.captioner.text_tokens(tokens, jnp.asarray(pos, jnp.int32))
        new = []
        for block, layer in zip(self.captioner.lm.blocks, cache, strict=True):
            h, layer = block.decode(h, layer, start, prefix_length=P)
            new.append(layer)
        lm = self.captioner.lm
        return lm.head(lm.norm(h)), tuple(new)


def _check_features(captioner: Captioner, features: jax.Array) -> jax.Array:
    checks.shape("features", features, (None, captioner.num_patches, captioner.feature_dim))
    return jnp.asarray(features, jnp.float32)


@model_jit
def _loss(model: Captioner, features: jax.Array, tokens: jax.Array) -> tuple[jax.Array, dict]:
    inputs, targets = tokens[:, :-1], tokens[:, 1:]  # teacher forcing: y_{<=t} -> y_{t+1}
    logits = model(features, inputs)  # (B, L-1, V)
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]  # (B, L-1)
    weight = (targets != captions.PAD).astype(jnp.float32)  # caption + <eos>, not padding
    count = jnp.maximum(jnp.sum(weight), 1.0)
    loss = jnp.sum(nll * weight) / count  # -(1/T) sum_t log p(y_{t+1} | x, y_{<=t})
    hit = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
    return loss, {"token_accuracy": jnp.sum(hit * weight) / count}


def captioning_loss(model: Captioner, batch: tuple[jax.Array, jax.Array],
                    key: jax.Array | None = None) -> tuple[jax.Array, dict]:
    """Teacher-forced caption cross-entropy per caption token (LLaVA, Liu et al. 2023, eq. 3).

        loss = -(1 / #tokens) sum_{b, t: y_{b,t+1} != <pad>} log p(y_{b,t+1} | x_b, y_{b,<=t})

    Args:
      model: the :class:`Captioner` (the differentiated pytree).
      batch: ``(features (B, P, C), tokens (B, L))``: patch features and tokenised captions
        ``[<bos>, ..., <eos>, <pad> ...]`` (:func:`genjax.contrastive.captions.tokenize`).
      key: unused (deterministic); kept for the ``(model, batch, key)`` protocol.

    Returns:
      ``(loss, {"token_accuracy"})``.
    """
    del key
    features, tokens = batch
    features = _check_features(model, features)
    checks.ndim("tokens", tokens, 2, "(B, L)")
    checks.integer_array("tokens", tokens)
    if tokens.shape[1] < 2:
        raise ValueError(f"tokens must have at least 2 columns (<bos> and one target), got "
                         f"{tokens.shape[1]}")
    checks.token_ids("tokens", tokens, model.vocab_size)
    return _loss(model, features, jnp.asarray(tokens, jnp.int32))


@model_jit
def _prefix(model: Captioner, features: jax.Array) -> jax.Array:
    return model.image_tokens(features)


def _prefixed(model: Captioner, features: jax.Array) -> tuple[VisualPrefixLM, jax.Array]:
    features = _check_features(model, features)
    prompt = jnp.full((features.shape[0], 1), captions.BOS, jnp.int32)  # every caption's start
    return VisualPrefixLM(model, _prefix(model, features)), prompt


def _max_new(model: Captioner, max_new_tokens: int | None) -> int:
    top = model.max_text_len - 1  # after <bos>
    if max_new_tokens is None:
        return top
    return checks.int_in_range("max_new_tokens", max_new_tokens, 1, top)


def greedy_captions(model: Captioner, features: jax.Array, *,
                    max_new_tokens: int | None = None, use_cache: bool = True,
                    key: jax.Array | None = None, temperature: float = 0.0) -> jax.Array:
    """Captions decoded after ``<bos>`` by :func:`~genjax.autoregressive.decoding.generate`.

    Args:
      model: the :class:`Captioner` (traced: new weights reuse the compiled loop).
      features: (B, P, C) patch features.
      max_new_tokens: N in ``[1, max_text_len - 1]`` (default the largest).
      use_cache: False recomputes the whole prefix-LM pass each step (the reference).
      key: PRNG key, needed only for ``temperature > 0`` (sampled captions).
      temperature: 0 is greedy (argmax each step).

    Returns:
      (B, N) int32 tokens: the caption's characters, ``<eos>``, then ``<pad>``
      (:func:`genjax.contrastive.captions.decode` reads them).
    """
    checks.nonnegative("temperature", temperature)
    if temperature > 0 and key is None:
        raise ValueError("key is required when temperature > 0")
    lm, prompt = _prefixed(model, features)
    return generate(jax.random.key(0) if key is None else key, lm, prompt,
                    max_new_tokens=_max_new(model, max_new_tokens), temperature=temperature,
                    eos_id=captions.EOS, pad_id=captions.PAD, use_cache=use_cache)


def beam_captions(model: Captioner, features: jax.Array, *, num_beams: int = 4,
                  max_new_tokens: int | None = None, length_penalty: float = 1.0,
                  use_cache: bool = True) -> tuple[jax.Array, jax.Array]:
    """Captions by beam search after ``<bos>`` (:func:`~genjax.autoregressive.decoding.
    beam_search_cached`, or the uncached :func:`~genjax.autoregressive.decoding.beam_search`).

    Args:
      model, features, max_new_tokens: as :func:`greedy_captions`.
      num_beams: K >= 1.
      length_penalty: alpha, scores ``sum log p / |y|^alpha``.
      use_cache: False runs the uncached search (the reference).

    Returns:
      ``(tokens (B, K, N), scores (B, K))``, best first.
    """
    lm, prompt = _prefixed(model, features)
    search = beam_search_cached if use_cache else beam_search
    return search(lm, prompt, num_beams=num_beams, max_new_tokens=_max_new(model, max_new_tokens),
                  eos_id=captions.EOS, pad_id=captions.PAD, length_penalty=length_penalty)


#: ``patch_features`` compiled with the encoder traced.
patch_features_jit = functools.partial(model_jit, model_argnames="encoder")(patch_features)
