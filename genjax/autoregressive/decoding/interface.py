"""The model interface every decoding loop codes against, and the checks they share.

A decoding model is a callable pytree (an ``nnx.Module`` such as
:class:`genjax.autoregressive.Transformer`, or a frozen dataclass registered as a pytree)
passed to the samplers as a traced argument: new weights of the same shapes reuse the
compiled loop. What the loops call::

    logits = model(tokens)                            # (B, L) int32 -> (B, L, V)
    cache = model.init_cache(batch_size, max_len)     # pytree, batch on axis 0 of each leaf
    logits, cache = model.decode(tokens, cache, pos)  # (B, S) at positions pos..pos+S-1
    model.vocab_size                                  # V, a Python int
    model.max_len                                     # the longest context (optional)

``model(tokens)`` must be causal: row ``t`` of its logits scores token ``t + 1`` from
tokens ``<= t`` only (the loops write future positions with padding and rely on it).
``decode`` returns exactly the rows ``pos .. pos + S - 1`` of ``model(whole_sequence)``.
:func:`~genjax.autoregressive.decoding.generate` grows the cache as the sequence grows
(shorter attention early on): a cache filled below ``pos`` and written at the origin of
a fresh ``init_cache(B, T')``, ``T'`` larger, must equal that cache filled the same way
(true of a cache that holds each position at its index along one axis, as the
Transformer's does). A cache whose leaves shrink or change structure with ``max_len``
is decoded at full length instead.
:func:`~genjax.autoregressive.decoding.beam_search` needs only ``model(tokens)``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from genjax import checks
from genjax.model import Model


def _vocab_size_of(model: Model) -> int:
    """``model.vocab_size`` as a Python int (a ValueError naming ``model`` without one)."""
    V = getattr(model, "vocab_size", None)
    if V is None:
        raise ValueError("model must have an integer attribute vocab_size")
    return int(V)


def _check_prompt(prompt: Any, vocab_size: int | None = None) -> jax.Array:
    """(B, P) integer token ids with B, P >= 1 (ids in [0, V) when V is known) -> int32."""
    checks.ndim("prompt", prompt, 2, "(B, P)")
    if 0 in jnp.shape(prompt):
        raise ValueError(f"prompt must have shape (B, P) with B, P >= 1, got "
                         f"{jnp.shape(prompt)}")
    checks.integer_array("prompt", prompt)
    if vocab_size is not None:
        checks.token_ids("prompt", prompt, vocab_size)
    return jnp.asarray(prompt, jnp.int32)


def _check_context(model: Model, prompt_len: int, max_new_tokens: int, extra: int = 0) -> None:
    """``prompt_len + max_new_tokens + extra <= model.max_len`` (when the model has one)."""
    max_len = getattr(model, "max_len", None)
    if max_len is None:
        return
    if prompt_len > max_len:
        raise ValueError(f"prompt has length {prompt_len}, longer than the model's context "
                         f"max_len={max_len}")
    if prompt_len + max_new_tokens + extra > max_len:
        raise ValueError(f"max_new_tokens={max_new_tokens} does not fit: prompt length "
                         f"{prompt_len} + max_new_tokens{f' + {extra}' if extra else ''} "
                         f"exceeds the model's max_len={max_len}")


def _token_id(name: str, value: Any, vocab_size: int | None) -> int | None:
    """An optional token id: None, or an integer in [0, V) ([0, inf) when V is unknown)."""
    if value is None:
        return None
    if vocab_size is None:
        return checks.nonnegative_int(name, value)
    return checks.int_in_range(name, value, 0, vocab_size - 1)
