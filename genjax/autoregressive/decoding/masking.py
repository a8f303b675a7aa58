"""One interface for the constraints the decoding loops apply: regular and context-free.

:func:`prepare` turns a constraint -- a
:class:`~genjax.autoregressive.decoding.constrained.Automaton` (regular expressions, word
lists, JSON schemas) or a :class:`~genjax.autoregressive.decoding.grammar.Grammar`
(context-free, a bounded stack) -- into a *mask*, a pytree the compiled loops of
:func:`~genjax.autoregressive.decoding.generate` and
:func:`~genjax.autoregressive.decoding.beam_search` carry with a per-sequence state:

    state_0 = init_state(mask, B)
    allowed_t = allowed(mask, state_t, r)       (B, V), r = tokens left including this one
    state_{t+1} = advance(mask, state_t, x_t)

``allowed`` holds the tokens after which the language can still be completed in the
``r - 1`` remaining tokens (EOS where the text is complete); ``prepare`` checks on the host
that the start state can be completed in the budget, so the mask is never empty and every
output is in the language (the guarantees of :mod:`.constrained` and :mod:`.grammar`).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from genjax.autoregressive.decoding import constrained as cst
from genjax.autoregressive.decoding import grammar as gr

__all__ = ["RegularMask", "GrammarMask", "prepare", "init_state", "allowed", "advance"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class RegularMask:
    """An automaton with its completability table ``completable`` (N + 1, S) bool."""

    automaton: cst.Automaton
    completable: jax.Array
    eos_id: int | None = dataclasses.field(metadata=dict(static=True))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class GrammarMask:
    """A pushdown automaton (its completion costs are part of it)."""

    grammar: gr.Grammar
    eos_id: int = dataclasses.field(metadata=dict(static=True))


Mask = RegularMask | GrammarMask


def prepare(constraint, max_new_tokens: int, eos_id: int | None, vocab_size: int | None
            ) -> Mask | None:
    """Check ``constraint`` against the decoding arguments; build its mask (host side).

    Raises:
      ValueError naming ``constraint`` (wrong type, token columns other than V, no string
      of the language within ``max_new_tokens``) or ``eos_id`` (a grammar without one).
    """
    if constraint is None:
        return None
    if not isinstance(constraint, cst.Automaton | gr.Grammar):
        raise ValueError("constraint must be a constrained.Automaton or a grammar.Grammar, "
                         f"got {type(constraint).__name__}")
    if vocab_size is not None and constraint.vocab_size != vocab_size:
        raise ValueError(f"constraint has {constraint.vocab_size} token columns, the "
                         f"model's vocabulary {vocab_size}")
    N = max_new_tokens
    if isinstance(constraint, gr.Grammar):
        if eos_id is None:
            raise ValueError("eos_id: a grammar constraint needs an end-of-sequence token")
        cost = int(gr.config_cost(constraint, gr.initial_config(constraint, 1))[0])
        if cost > N:
            raise ValueError(f"constraint: the shortest string of the language takes {cost} "
                             f"tokens, more than max_new_tokens={N}")
        return GrammarMask(constraint, int(eos_id))
    reach = cst.completable(constraint, N, eos_id=eos_id)
    if not reach[N, int(constraint.start)]:
        raise ValueError(f"constraint: no string of the language fits in "
                         f"max_new_tokens={N} tokens")
    return RegularMask(constraint, jnp.asarray(reach), eos_id)


def init_state(mask: Mask, batch: int):
    """The start state of ``batch`` sequences: (B,) int32, or a grammar configuration."""
    if isinstance(mask, GrammarMask):
        return gr.initial_config(mask.grammar, batch)
    return jnp.broadcast_to(mask.automaton.start, (batch,)).astype(jnp.int32)


def allowed(mask: Mask, state, slots_left: jax.Array) -> jax.Array:
    """(B, V) bool: tokens allowed now with ``slots_left`` = r tokens left (this one too)."""
    if isinstance(mask, RegularMask):
        return cst.allowed_tokens(mask.automaton, state, mask.completable[slots_left - 1],
                                  mask.eos_id)
    g = mask.grammar
    B, V = state["q"].shape[0], g.vocab_size
    every = jax.tree.map(lambda a: jnp.broadcast_to(a[:, None], (B, V) + a.shape[1:]), state)
    after = gr.read_tokens(g, every, jnp.broadcast_to(jnp.arange(V)[None, :], (B, V)))
    ok = gr.config_cost(g, after) <= slots_left - 1  # (B, V): completable in r - 1 tokens
    return ok.at[:, mask.eos_id].set(gr.config_cost(g, state) == 0)  # EOS: text complete


def advance(mask: Mask, state, token: jax.Array):
    """States after ``token`` (B,); EOS leaves a state where it is."""
    if isinstance(mask, RegularMask):
        return cst.advance(mask.automaton, state, token, mask.eos_id)
    nxt = gr.read_tokens(mask.grammar, state, token)
    stay = token == mask.eos_id
    return jax.tree.map(lambda new, old: jnp.where(
        stay.reshape(stay.shape + (1,) * (new.ndim - 1)), old, new), nxt, state)


def freeze(state, new_state, keep: jax.Array):
    """``state`` where ``keep`` (B,), else ``new_state`` (any state pytree)."""
    return jax.tree.map(lambda old, new: jnp.where(
        keep.reshape(keep.shape + (1,) * (old.ndim - 1)), old, new), state, new_state)
