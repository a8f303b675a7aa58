"""Scaled dot-product attention, multi-head attention and pre-LayerNorm transformer blocks.

Attention (Vaswani et al. 2017, eq. 1), per head::

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

with Q: (L, d_k) queries, K: (S, d_k) keys, V: (S, d_v) values. A boolean mask
(True = may attend) removes a score by replacing it with ``finfo(dtype).min`` through
``jnp.where`` — never ``-inf * mask``, which gives NaN where the mask is 0 and a score is
infinite, and never ``-inf`` itself, which makes a fully-masked row ``0/0 = NaN``. With
``finfo.min`` a fully-masked row is a uniform average over the keys: finite, and
harmless because such a row is never read (a causal row always sees its own position).

Multi-head attention (sec. 3.2.2) projects the input to ``H`` heads of size
``d_k = D / H``, attends in each head and projects the concatenation back::

    MultiHead(x, c) = concat_h(Attention(x W^Q_h, c W^K_h, c W^V_h)) W^O

(``c = x`` for self-attention, a context sequence for cross-attention).

The transformer block is the pre-LayerNorm form of GPT-2 (Radford et al. 2019, sec. 2.3;
Xiong et al. 2020), with an optional cross-attention layer as in the decoder of Vaswani et
al. (2017, sec. 3.1)::

    x = x + MHA(LN(x))                     (self-attention, causal when asked)
    x = x + MHA(LN(x), context)            (cross-attention, only with a context)
    x = x + MLP(LN(x))                     (Linear D -> r D, GELU, Linear r D -> D)

**The KV cache** (incremental decoding): a layer's keys and values of every position
already processed are kept in arrays of shape ``(B, T, H, d_k)`` (``T`` the cache length).
:meth:`MultiHeadAttention.decode` projects the ``S`` new tokens at absolute positions
``pos .. pos + S - 1``, writes their keys and values into the cache with
``lax.dynamic_update_slice`` and lets each new query ``pos + i`` attend to the cache
positions ``j <= pos + i``. Positions at or beyond ``pos + S`` hold zeros or stale values
and are masked out, so the cache has a fixed shape and ``pos`` may be traced under ``jit``.

References:
  Vaswani et al., "Attention Is All You Need", NeurIPS 2017.
  Radford et al., "Language Models are Unsupervised Multitask Learners" (GPT-2), 2019.
  Xiong et al., "On Layer Normalization in the Transformer Architecture", ICML 2020.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import checks
from genjax.nn.mlp import MLP


def causal_mask(length: int) -> jax.Array:
    """The causal (lower-triangular) attention mask.

    ``mask[i, j] = (j <= i)``: query ``i`` may attend to key ``j`` at or before it.

    Args:
      length: sequence length ``L``, >= 1.

    Returns:
      (L, L) bool mask, True where attention is allowed.
    """
    length = checks.positive_int("length", length)
    return jnp.tril(jnp.ones((length, length), dtype=bool))


def prefix_lm_mask(length: int, prefix_length: int) -> jax.Array:
    """The prefix-LM attention mask (Raffel et al. 2020, sec. 3.2.1; PaliGemma).

    ``mask[i, j] = (j <= i) or (j < P)``: the first ``P`` positions (a prefix, e.g. image
    tokens) attend to each other bidirectionally; every later position sees the whole
    prefix and the positions before it. ``P = 0`` (or 1) is :func:`causal_mask`.

    Args:
      length: sequence length ``L``, >= 1.
      prefix_length: ``P`` in ``[0, L]``.

    Returns:
      (L, L) bool mask, True where attention is allowed.
    """
    length = checks.positive_int("length", length)
    prefix_length = checks.int_in_range("prefix_length", prefix_length, 0, length)
    j = jnp.arange(length)
    return causal_mask(length) | (j[None, :] < prefix_length)


def dot_product_attention(
    q: jax.Array, k: jax.Array, v: jax.Array, *, mask: jax.Array | None = None
) -> jax.Array:
    """Scaled dot-product attention of several heads (Vaswani et al. 2017, eq. 1).

        scores_{b h l s} = sum_d q_{b l h d} k_{b s h d} / sqrt(d_k)
        scores = where(mask, scores, finfo(dtype).min)
        out_{b l h d} = sum_s softmax_s(scores)_{b h l s} v_{b s h d}

    Args:
      q: (B, L, H, d_k) queries.
      k: (B, S, H, d_k) keys.
      v: (B, S, H, d_v) values.
      mask: optional bool mask broadcastable to (B, H, L, S), True = may attend (e.g.
        :func:`causal_mask` of shape (L, L), or a padding mask of shape (B, 1, 1, S)).

    Returns:
      (B, L, H, d_v) attended values. A row whose mask is all False averages the values
      uniformly (finite; see the module docstring).
    """
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError(
            f"q, k, v must have shape (B, L, H, d): got q {q.shape}, k {k.shape}, v {v.shape}"
        )
    if q.shape[0] != k.shape[0] or q.shape[2:] != k.shape[2:]:
        raise ValueError(f"k must have shape (B, S, H, d_k) matching q {q.shape}, got {k.shape}")
    if k.shape[:3] != v.shape[:3]:
        raise ValueError(f"v must have shape (B, S, H, d_v) matching k {k.shape}, got {v.shape}")
    B, L, H, Dh = q.shape
    S = k.shape[1]
    if mask is not None:
        if jnp.result_type(mask) != jnp.bool_:
            raise ValueError(f"mask must be a bool array, got dtype {jnp.result_type(mask)}")
        shape = jnp.shape(mask)
        rank4 = (1,) * (4 - len(shape)) + tuple(shape)  # (…, L, S) -> rank 4
        if len(shape) > 4 or any(
            m not in (1, n) for m, n in zip(rank4, (B, H, L, S), strict=False)
        ):
            raise ValueError(f"mask of shape {shape} does not broadcast to (B, H, L, S) = "
                             f"{(B, H, L, S)}")
        mask = jnp.broadcast_to(jnp.reshape(mask, rank4), (B, H, L, S))
    # Q K^T / sqrt(d_k), per batch and head
    scores = jnp.einsum("blhd,bshd->bhls", q, k) / jnp.sqrt(jnp.asarray(Dh, q.dtype))  # (B,H,L,S)
    if mask is not None:
        # removed scores: finfo.min by where, never -inf * mask (see the module docstring)
        scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
    weights = jax.nn.softmax(scores, axis=-1)  # softmax over the keys s, (B, H, L, S)
    return jnp.einsum("bhls,bshd->blhd", weights, v)  # (B, L, H, d_v)


class MultiHeadAttention(nnx.Module):
    """Multi-head attention (Vaswani et al. 2017, sec. 3.2.2), self or cross.

    Args:
      in_features: D, the size of the query tokens and of the output; divisible by
        ``num_heads``.
      num_heads: H; each head has size ``d_k = D / H``.
      rngs: ``nnx.Rngs`` for initialisation only.
      context_features: size of the context tokens keys and values are computed from;
        None means self-attention (keys and values from ``x``, size D).

    Example:
      >>> mha = MultiHeadAttention(8, 2, rngs=nnx.Rngs(0))
      >>> mha(jnp.ones((3, 5, 8)), mask=causal_mask(5)).shape
      (3, 5, 8)
    """

    def __init__(
        self, in_features: int, num_heads: int, *, rngs: nnx.Rngs,
        context_features: int | None = None,
    ):
        in_features = checks.positive_int("in_features", in_features)
        num_heads = checks.positive_int("num_heads", num_heads)
        if in_features % num_heads:
            raise ValueError(
                f"num_heads={num_heads} must divide in_features={in_features}"
            )
        kv_features = (in_features if context_features is None
                       else checks.positive_int("context_features", context_features))
        self.num_heads = num_heads
        self.head_dim = in_features // num_heads
        self.is_cross = context_features is not None
        self.query = nnx.Linear(in_features, in_features, rngs=rngs)  # W^Q, all heads
        self.key_value = nnx.Linear(kv_features, 2 * in_features, rngs=rngs)  # [W^K W^V]
        self.out = nnx.Linear(in_features, in_features, rngs=rngs)  # W^O

    def _heads(self, x: jax.Array) -> jax.Array:
        B, L, _ = x.shape
        return x.reshape(B, L, self.num_heads, self.head_dim)  # (B, L, D) -> (B, L, H, d_k)

    def queries(self, x: jax.Array) -> jax.Array:
        """x: (B, L, D) -> queries (B, L, H, d_k)."""
        return self._heads(self.query(x))

    def keys_values(self, source: jax.Array) -> tuple[jax.Array, jax.Array]:
        """source: (B, S, D or context_features) -> keys, values, each (B, S, H, d_k)."""
        k, v = jnp.split(self.key_value(source), 2, axis=-1)  # 2 x (B, S, D)
        return self._heads(k), self._heads(v)

    def _merge(self, attended: jax.Array) -> jax.Array:
        B, L, H, Dh = attended.shape
        return self.out(attended.reshape(B, L, H * Dh))  # (B, L, H, d_k) -> (B, L, D) -> W^O

    def __call__(
        self, x: jax.Array, *, context: jax.Array | None = None, mask: jax.Array | None = None
    ) -> jax.Array:
        """Attend from ``x`` to itself (or to ``context``).

        Args:
          x: (B, L, D) query tokens.
          context: (B, S, context_features) tokens for cross-attention; required exactly
            when the layer was built with ``context_features``.
          mask: bool, broadcastable to (B, H, L, S); True = may attend.

        Returns:
          (B, L, D).
        """
        if x.ndim != 3 or x.shape[-1] != self.query.in_features:
            raise ValueError(f"x must have shape (B, L, D={self.query.in_features}), got "
                             f"{x.shape}")
        if self.is_cross and context is None:
            raise ValueError("context is required: this layer was built with context_features")
        if not self.is_cross and context is not None:
            raise ValueError("context given to a self-attention layer (context_features=None)")
        source = x if context is None else context
        if source.ndim != 3 or source.shape[0] != x.shape[0]:
            raise ValueError(f"context must have shape (B, S, Dc) with B={x.shape[0]}, "
                             f"got {source.shape}")
        k, v = self.keys_values(source)  # (B, S, H, d_k) each
        return self._merge(dot_product_attention(self.queries(x), k, v, mask=mask))

    def init_cache(self, batch_size: int, max_len: int, dtype=jnp.float32) -> dict:
        """An empty KV cache: ``{"k", "v"}`` each of shape (batch_size, max_len, H, d_k)."""
        shape = (batch_size, max_len, self.num_heads, self.head_dim)
        return {"k": jnp.zeros(shape, dtype), "v": jnp.zeros(shape, dtype)}

    def decode(self, x: jax.Array, cache: dict, pos: jax.Array, *,
               prefix_length: int = 0) -> tuple[jax.Array, dict]:
        """Causal self-attention of ``S`` new tokens through the KV cache.

        With ``prefix_length = P > 0`` the mask is the prefix-LM one
        (:func:`prefix_lm_mask`): every query also sees the cache positions ``j < P``, so a
        prefix written in one call at ``pos = 0`` attends to itself bidirectionally.

            K[pos : pos+S] = x W^K,  V[pos : pos+S] = x W^V       (lax.dynamic_update_slice)
            out_i = Attention(x_i W^Q, K[j <= pos + i], V[j <= pos + i])

        Args:
          x: (B, S, D) the tokens at absolute positions ``pos .. pos + S - 1``.
          cache: ``{"k", "v"}``, each (B, T, H, d_k), filled for positions < pos.
          pos: () int32, may be traced. The caller keeps ``pos + S <= T`` (under ``jit``
            this cannot be checked; ``dynamic_update_slice`` would clamp the write).

        Returns:
          (out (B, S, D), the cache with positions pos .. pos + S - 1 written).
        """
        if self.is_cross:
            raise ValueError("decode is causal self-attention; this layer is cross-attention")
        B, S, _ = x.shape
        T = cache["k"].shape[1]
        if S > T:
            raise ValueError(f"x has S={S} tokens, more than the cache length T={T}")
        k_new, v_new = self.keys_values(x)  # (B, S, H, d_k) each
        pos = jnp.asarray(pos, jnp.int32)
        zero = jnp.zeros((), jnp.int32)
        start = (zero, pos, zero, zero)
        k = jax.lax.dynamic_update_slice(cache["k"], k_new.astype(cache["k"].dtype), start)
        v = jax.lax.dynamic_update_slice(cache["v"], v_new.astype(cache["v"].dtype), start)
        # query i sits at absolute position pos + i and sees keys j <= pos + i
        query_pos = pos + jnp.arange(S, dtype=jnp.int32)  # (S,)
        mask = jnp.arange(T, dtype=jnp.int32)[None, :] <= query_pos[:, None]  # (S, T)
        if prefix_length:  # prefix-LM: keys j < P are visible to every query
            mask = mask | (jnp.arange(T, dtype=jnp.int32) < prefix_length)[None, :]
        q = self.queries(x)  # (B, S, H, d_k)
        attended = dot_product_attention(q, k.astype(q.dtype), v.astype(q.dtype), mask=mask)
        return self._merge(attended), {"k": k, "v": v}


class TransformerBlock(nnx.Module):
    """Pre-LayerNorm transformer block: self-attention, optional cross-attention, MLP.

        x = x + MHA(LN_1(x))                 (causal mask when ``causal``)
        x = x + MHA(LN_c(x), context)        (only when built with ``context_features``)
        x = x + W_2 GELU(W_1 LN_2(x))        (W_1: D -> mlp_ratio D)

    Args:
      dim: D, the token size; divisible by ``num_heads``.
      num_heads: attention heads.
      rngs: ``nnx.Rngs`` for initialisation only.
      mlp_ratio: hidden width of the MLP in units of D, >= 1.
      causal: apply :func:`causal_mask` in the self-attention (a decoder block).
      context_features: size of the context tokens for cross-attention, or None.

    Example:
      >>> block = TransformerBlock(8, 2, rngs=nnx.Rngs(0), causal=True)
      >>> block(jnp.ones((3, 5, 8))).shape
      (3, 5, 8)
    """

    def __init__(
        self, dim: int, num_heads: int, *, rngs: nnx.Rngs, mlp_ratio: int = 4,
        causal: bool = False, context_features: int | None = None,
    ):
        dim = checks.positive_int("dim", dim)
        mlp_ratio = checks.positive_int("mlp_ratio", mlp_ratio)
        self.causal = bool(causal)
        self.norm_attn = nnx.LayerNorm(dim, rngs=rngs)
        self.attn = MultiHeadAttention(dim, num_heads, rngs=rngs)
        if context_features is None:
            self.norm_cross = None
            self.cross = None
        else:
            self.norm_cross = nnx.LayerNorm(dim, rngs=rngs)
            self.cross = MultiHeadAttention(dim, num_heads, rngs=rngs,
                                            context_features=context_features)
        self.norm_mlp = nnx.LayerNorm(dim, rngs=rngs)
        self.mlp = MLP(dim, [mlp_ratio * dim], dim, rngs=rngs, activation=nnx.gelu)

    def _cross_and_mlp(self, x: jax.Array, context: jax.Array | None) -> jax.Array:
        if self.cross is not None:
            if context is None:
                raise ValueError("context is required: this block has cross-attention")
            x = x + self.cross(self.norm_cross(x), context=context)  # x + MHA(LN(x), c)
        elif context is not None:
            raise ValueError("context given to a block without cross-attention "
                             "(context_features=None)")
        return x + self.mlp(self.norm_mlp(x))  # x + MLP(LN(x))

    def __call__(
        self, x: jax.Array, *, mask: jax.Array | None = None, context: jax.Array | None = None,
        prefix_length: int = 0,
    ) -> jax.Array:
        """x: (B, L, D), mask broadcastable to (B, H, L, L), context (B, S, Dc) -> (B, L, D).

        ``prefix_length = P > 0`` (causal blocks only) replaces the causal mask by the
        prefix-LM mask :func:`prefix_lm_mask`: the first P tokens see each other.
        """
        if x.ndim != 3:
            raise ValueError(f"x must have shape (B, L, D), got {x.shape}")
        if prefix_length and not self.causal:
            raise ValueError("prefix_length needs a causal block (causal=True)")
        if self.causal:
            causal = (prefix_lm_mask(x.shape[1], prefix_length) if prefix_length
                      else causal_mask(x.shape[1]))  # (L, L)
            mask = causal if mask is None else jnp.logical_and(
                jnp.asarray(mask).reshape((1,) * (4 - jnp.ndim(mask)) + jnp.shape(mask)),
                causal[None, None],
            )
        x = x + self.attn(self.norm_attn(x), mask=mask)  # x + MHA(LN(x))
        return self._cross_and_mlp(x, context)

    def init_cache(self, batch_size: int, max_len: int, dtype=jnp.float32) -> dict:
        """The self-attention's empty KV cache, see :meth:`MultiHeadAttention.init_cache`."""
        return self.attn.init_cache(batch_size, max_len, dtype)

    def decode(
        self, x: jax.Array, cache: dict, pos: jax.Array, *, context: jax.Array | None = None,
        prefix_length: int = 0,
    ) -> tuple[jax.Array, dict]:
        """The block on ``S`` new tokens at positions pos .. pos + S - 1, through the cache.

        Equals :meth:`__call__` (causal) on the whole sequence, restricted to those rows.

        Args:
          x: (B, S, D); cache: ``{"k", "v"}`` (B, T, H, d_k); pos: () int32;
          context: (B, S_c, Dc) for a block with cross-attention;
          prefix_length: P, the prefix-LM prefix (see :meth:`MultiHeadAttention.decode`).

        Returns:
          (out (B, S, D), new cache).
        """
        if not self.causal:
            raise ValueError("decode needs a causal block (causal=True)")
        attended, cache = self.attn.decode(self.norm_attn(x), cache, pos,
                                           prefix_length=prefix_length)
        x = x + attended  # x + MHA(LN(x)) over cached keys
        return self._cross_and_mlp(x, context), cache

