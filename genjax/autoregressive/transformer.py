"""A decoder-only causal transformer with a KV cache (GPT-2 layout, pre-LayerNorm).

The model factorises a sequence's law by the chain rule,

    p(x_1 .. x_N) = prod_t p(x_t | x_{<t}),

and is *causal*: the logits at position ``t`` are the model's ``log p(x_{t+1} | x_{<=t})``
up to a constant and depend on tokens ``0 .. t`` only (the language-model convention: the
targets are the inputs shifted by one). The tests check this by Jacobian, and the
attention against the NumPy oracle (``oracle_network.py``).

Layout (GPT-2: Radford et al. 2019; blocks of Vaswani et al. 2017): token embedding plus
a position embedding (learned, or the fixed sinusoids of Vaswani et al., sec. 3.5),
``num_layers`` pre-LayerNorm causal blocks (:class:`genjax.nn.TransformerBlock`), a final
LayerNorm and a linear read-out to the vocabulary.

The decoding interface (:mod:`genjax.autoregressive.decoding.interface`)::

    logits = model(tokens)                          # (B, L) int32 -> (B, L, V)
    cache = model.init_cache(batch_size, max_len)   # per layer {"k", "v"}: (B, H, T, d_k)
    logits, cache = model.decode(tokens, cache, pos)

``decode`` processes ``S`` tokens at absolute positions ``pos .. pos + S - 1`` (a whole
prompt for prefill, one token per step afterwards) and returns exactly the rows
``pos .. pos + S - 1`` of ``model(whole_sequence)``; ``pos`` may be traced under ``jit``.

The cache is head-major, ``(B, H, T, d_k)`` (not the ``(B, T, H, d_k)`` of
:meth:`genjax.nn.TransformerBlock.decode`, which :meth:`Transformer.init_block_cache`
serves): the attention of a decoding step is then two batched matrix products over
``(b, h)`` that read the cache in place. In the token-major layout XLA (CPU) transposed
every layer's whole cache on every step -- 8 copies of (B, T, H, d_k) a step, the largest
cost of a step of the issue-15 workload (profile in :mod:`genjax.bench.decoding`).
A ``Transformer`` is an ``nnx.Module``, hence a pytree: the decoding samplers take it as a
traced argument, and new weights of the same shapes reuse their compiled loops.

References:
  Vaswani et al., "Attention Is All You Need", NeurIPS 2017.
  Radford et al., "Language Models are Unsupervised Multitask Learners" (GPT-2), 2019.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import checks
from genjax.nn.attention import TransformerBlock
from genjax.nn.embeddings import sinusoidal_embedding

__all__ = ["Transformer", "POSITIONS"]

POSITIONS = ("learned", "sinusoidal")
"""The position encodings: ``"learned"`` embeddings or fixed ``"sinusoidal"`` ones."""


class Transformer(nnx.Module):
    """Decoder-only causal transformer over token ids (GPT-2 layout, pre-LayerNorm).

        h_0 = E[x_t] + P[t]                         (token + position embedding)
        h_l = Block_l(h_{l-1}),  l = 1 .. num_layers (causal self-attention + MLP)
        logits_t = W_out LN(h_L)_t                  (scores of x_{t+1} given x_{<=t})

    Args:
      vocab_size: V, >= 1.
      max_len: the longest sequence (and cache) the model accepts, >= 1.
      dim: D, the width; divisible by ``num_heads`` (and even for sinusoidal positions).
      num_heads: attention heads per block.
      num_layers: number of blocks, >= 1.
      rngs: ``nnx.Rngs`` for initialisation only.
      positions: ``"learned"`` (a (max_len, D) table, N(0, 0.02^2) at init) or
        ``"sinusoidal"`` (fixed, Vaswani et al. 2017, sec. 3.5; no parameters).
      mlp_ratio: MLP width in units of D.

    Example:
      >>> model = Transformer(16, 32, 32, 4, 2, rngs=nnx.Rngs(0))
      >>> model(jnp.zeros((2, 5), jnp.int32)).shape
      (2, 5, 16)
    """

    def __init__(
        self, vocab_size: int, max_len: int, dim: int, num_heads: int, num_layers: int, *,
        rngs: nnx.Rngs, positions: str = "learned", mlp_ratio: int = 4,
    ):
        self.vocab_size = checks.positive_int("vocab_size", vocab_size)
        self.max_len = checks.positive_int("max_len", max_len)
        dim = checks.positive_int("dim", dim)
        num_heads = checks.positive_int("num_heads", num_heads)
        num_layers = checks.positive_int("num_layers", num_layers)
        if dim % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide dim={dim}")
        checks.one_of("positions", positions, POSITIONS)
        if positions == "sinusoidal" and dim % 2:
            raise ValueError(f"dim must be even for sinusoidal positions, got {dim}")
        self.dim = dim
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.positions = positions
        self.token_embed = nnx.Embed(self.vocab_size, dim, rngs=rngs)
        if positions == "learned":
            self.position_embed = nnx.Param(
                0.02 * jax.random.normal(rngs.params(), (self.max_len, dim))
            )
        else:
            self.position_embed = None
        self.blocks = nnx.List([
            TransformerBlock(dim, num_heads, rngs=rngs, mlp_ratio=mlp_ratio, causal=True)
            for _ in range(num_layers)
        ])
        self.norm = nnx.LayerNorm(dim, rngs=rngs)
        self.head = nnx.Linear(dim, self.vocab_size, rngs=rngs)

    # --- pieces, public so that tests can differentiate through embedded inputs ----------

    def position_embedding(self, start: jax.Array, length: int) -> jax.Array:
        """P[start .. start + length - 1]: (length, D); ``start`` may be traced."""
        start = jnp.asarray(start, jnp.int32)
        if self.position_embed is None:
            t = start + jnp.arange(length, dtype=jnp.int32)  # absolute positions (length,)
            return sinusoidal_embedding(t, self.dim)  # (length, D)
        zero = jnp.zeros((), jnp.int32)
        return jax.lax.dynamic_slice(self.position_embed[...], (start, zero), (length, self.dim))

    def embed(self, tokens: jax.Array, start: jax.Array | int = 0) -> jax.Array:
        """h_0 = E[x] + P[start + t]: tokens (B, S) int -> (B, S, D)."""
        S = tokens.shape[1]
        return self.token_embed(tokens) + self.position_embedding(start, S)[None]

    def logits_from_embeddings(self, h: jax.Array) -> jax.Array:
        """The causal blocks and read-out on embedded inputs: h_0 (B, L, D) -> (B, L, V)."""
        for block in self.blocks:
            h = block(h)  # (B, L, D)
        return self.head(self.norm(h))  # (B, L, V)

    def _check_tokens(self, tokens: jax.Array) -> jax.Array:
        # Ids outside [0, V) would index past the embedding table (NaN rows) or wrap
        # around (negative ids): rejected when concrete. Under jit the ids are traced and
        # the public samplers check them at their entry, where they are still concrete.
        checks.ndim("tokens", tokens, 2, "(B, L)")
        checks.token_ids("tokens", jnp.asarray(tokens), self.vocab_size)
        return jnp.asarray(tokens)

    # --- the interface --------------------------------------------------------------------

    def __call__(self, tokens: jax.Array) -> jax.Array:
        """Full causal forward pass, no cache.

        Args:
          tokens: (B, L) int token ids in ``[0, V)``, ``1 <= L <= max_len``.

        Returns:
          (B, L, V) logits; row ``t`` scores the token at ``t + 1`` given tokens ``<= t``.
        """
        tokens = self._check_tokens(tokens)
        if tokens.shape[1] > self.max_len:
            raise ValueError(
                f"tokens has length {tokens.shape[1]}, longer than max_len={self.max_len}"
            )
        return self.logits_from_embeddings(self.embed(tokens))

    def _cache_length(self, batch_size: int, max_len: int | None) -> tuple[int, int]:
        batch_size = checks.positive_int("batch_size", batch_size)
        max_len = self.max_len if max_len is None else checks.positive_int("max_len", max_len)
        if max_len > self.max_len:
            raise ValueError(
                f"max_len={max_len} is longer than the model's max_len={self.max_len}"
            )
        return batch_size, max_len

    def init_cache(
        self, batch_size: int, max_len: int | None = None, dtype=jnp.float32
    ) -> tuple[dict, ...]:
        """An empty KV cache for :meth:`decode` (head-major, see the module docstring).

        Args:
          batch_size: B, >= 1.
          max_len: cache length T, ``1 <= T <= self.max_len``; default ``self.max_len``.
          dtype: dtype of the cached keys and values.

        Returns:
          a tuple with one ``{"k", "v"}`` per layer, each (B, H, T, d_k) of zeros.
        """
        batch_size, max_len = self._cache_length(batch_size, max_len)
        shape = (batch_size, self.num_heads, max_len, self.dim // self.num_heads)
        return tuple({"k": jnp.zeros(shape, dtype), "v": jnp.zeros(shape, dtype)}
                     for _ in self.blocks)

    def init_block_cache(
        self, batch_size: int, max_len: int | None = None, dtype=jnp.float32
    ) -> tuple[dict, ...]:
        """An empty cache per block for :meth:`genjax.nn.TransformerBlock.decode` (token-major
        ``(B, T, H, d_k)``), for callers that run the blocks themselves (a prefix-LM)."""
        batch_size, max_len = self._cache_length(batch_size, max_len)
        return tuple(block.init_cache(batch_size, max_len, dtype) for block in self.blocks)

    def decode(
        self, tokens: jax.Array, cache: tuple[dict, ...], pos: jax.Array
    ) -> tuple[jax.Array, tuple[dict, ...]]:
        """Incremental forward pass through the KV cache.

        Args:
          tokens: (B, S) int ids at absolute positions ``pos .. pos + S - 1``.
          cache: from :meth:`init_cache` (or a previous ``decode``), filled below ``pos``;
            each layer's ``{"k", "v"}`` is (B, H, T, d_k).
          pos: () int32 start position, may be traced; the caller keeps ``pos + S <= T``.

        Returns:
          (logits (B, S, V) equal to rows pos .. pos + S - 1 of the uncached forward pass,
          the new cache).
        """
        tokens = self._check_tokens(tokens)
        if len(cache) != self.num_layers:
            raise ValueError(f"cache has {len(cache)} layers, the model {self.num_layers}")
        T = cache[0]["k"].shape[2]  # (B, H, T, d_k)
        if tokens.shape[1] > T:
            raise ValueError(f"tokens has length {tokens.shape[1]}, longer than the cache "
                             f"length {T}")
        if checks.is_concrete(pos):  # a traced pos is the caller's to keep in range
            checks.ndim("pos", pos, 0, "(a scalar position)")
            checks.int_in_range("pos", int(pos), 0, T - tokens.shape[1])
        h = self.embed(tokens, pos)  # (B, S, D)
        new_cache = []
        for block, layer_cache in zip(self.blocks, cache, strict=True):
            h, layer_cache = _decode_block(block, h, layer_cache, pos)  # (B, S, D)
            new_cache.append(layer_cache)
        return self.head(self.norm(h)), tuple(new_cache)


def _decode_block(block: TransformerBlock, x: jax.Array, cache: dict,
                  pos: jax.Array) -> tuple[jax.Array, dict]:
    """One pre-LayerNorm causal block on ``S`` new tokens through a head-major cache.

    The block's own layers, the attention of :func:`genjax.nn.dot_product_attention` on
    the cache (Vaswani et al. 2017, eq. 1), the new keys and values written in place::

        K[:, :, pos : pos+S] = LN_1(x) W^K,   V[:, :, pos : pos+S] = LN_1(x) W^V
        x = x + W^O softmax(Q K^T / sqrt(d_k), keys j <= pos + i) V     (Q = LN_1(x) W^Q)
        x = x + MLP(LN_2(x))

    Args:
      block: a causal :class:`~genjax.nn.TransformerBlock` without cross-attention.
      x: (B, S, D) the tokens at absolute positions ``pos .. pos + S - 1``.
      cache: ``{"k", "v"}``, each (B, H, T, d_k), filled below ``pos``.
      pos: () int32, may be traced; the caller keeps ``pos + S <= T``.

    Returns:
      (x (B, S, D), the cache with positions ``pos .. pos + S - 1`` written).
    """
    attn = block.attn
    B, S, D = x.shape
    H, T = cache["k"].shape[1], cache["k"].shape[2]
    d_k = D // H
    h = block.norm_attn(x)  # LN_1(x), (B, S, D)
    q = attn.queries(h)  # (B, S, H, d_k)
    k_new, v_new = attn.keys_values(h)  # (B, S, H, d_k) each
    pos = jnp.asarray(pos, jnp.int32)
    zero = jnp.zeros((), jnp.int32)
    start = (zero, zero, pos, zero)  # dynamic_update_slice writes in place in a loop carry
    k = jax.lax.dynamic_update_slice(cache["k"], jnp.swapaxes(k_new, 1, 2).astype(
        cache["k"].dtype), start)  # (B, H, T, d_k)
    v = jax.lax.dynamic_update_slice(cache["v"], jnp.swapaxes(v_new, 1, 2).astype(
        cache["v"].dtype), start)
    # scores_{b h i j} = q_{b i h} . k_{b h j} / sqrt(d_k); query i sees keys j <= pos + i
    scores = jnp.einsum("bihd,bhjd->bhij", q, k.astype(q.dtype)) / jnp.sqrt(
        jnp.asarray(d_k, q.dtype))  # (B, H, S, T)
    visible = jnp.arange(T, dtype=jnp.int32)[None, :] <= (
        pos + jnp.arange(S, dtype=jnp.int32))[:, None]  # (S, T)
    scores = jnp.where(visible, scores, jnp.finfo(scores.dtype).min)  # never -inf * mask
    weights = jax.nn.softmax(scores, axis=-1)  # (B, H, S, T)
    attended = jnp.einsum("bhij,bhjd->bihd", weights, v.astype(q.dtype))  # (B, S, H, d_k)
    x = x + attn.out(attended.reshape(B, S, D))  # x + W^O concat_h(...)
    return x + block.mlp(block.norm_mlp(x)), {"k": k, "v": v}  # x + MLP(LN_2(x))
