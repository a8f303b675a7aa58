"""Constrained decoding: finite automata over a token vocabulary, applied as token masks.

A language ``L`` over characters is given as a small regular expression or as a finite
list of allowed strings; it is compiled, on the host and once, into a deterministic finite
automaton over *token ids*:

    transitions[s, v] = s'   (reading token v in state s leads to state s')
    transitions[s, v] = -1   (token v is forbidden in state s)
    accepting[s]            (the text read so far is in L)

so that :func:`genjax.autoregressive.decoding.generate` can mask the logits of forbidden
tokens inside its compiled loop (Willard & Louf 2023, "Efficient guided generation for
large language models": the automaton is indexed by token once, the per-step cost is one
row gather). A token is a string of one or more characters (a character vocabulary is the
special case of one character per token); reading it runs the character automaton over its
characters. Tokens that are empty strings (specials) and the EOS id are never transitions;
EOS is allowed exactly in accepting states.

Compilation: regular expression -> Thompson's (1968) NFA -> subset construction (Rabin &
Scott 1959) -> character DFA (:mod:`.regex`); a list of strings -> a trie; a JSON schema
-> the regular expression of its serialisations (:mod:`.json_schema`). Context-free
languages (arbitrary-depth JSON, balanced brackets) need a stack: :mod:`.grammar`. All
are then lifted to tokens and *pruned*: states from which no accepting state is reachable
are removed (their transitions become -1), so every state the decoder can enter can still
be completed.

Completability within a length budget. With ``r`` token slots left, state ``s`` can still
end in ``L`` iff ``completable[r, s]``, computed by dynamic programming over the automaton
(:func:`completable`):

    completable[0, s] = accepting[s]
    completable[r, s] = (eos allowed and accepting[s]) or any_v completable[r-1, T[s, v]]

Without an EOS token the output has exactly ``max_new_tokens`` tokens, so the recursion
has no first term. The decoder allows token ``v`` at a step with ``r`` slots left only if
``completable[r-1, T[s, v]]``. What is guaranteed: if ``completable[N, start]`` (checked
before decoding; otherwise a ValueError), every output (up to its EOS, or all ``N`` tokens
without one) is in ``L``, whatever the model's logits.

Which distribution. Masking renormalises the model at every step over the allowed tokens:

    q(x) = prod_t p(x_t | x_<t) 1[x_t allowed] / Z_t(x_<t),  Z_t = sum_{v allowed} p(v | x_<t)

This is the exact law of the sampler (the tests enumerate it), and it is the model
conditioned on the (length-limited) language, ``p(x | x in L) = p(x) 1[x in L] / p(L)``,
whenever ``prod_t Z_t`` is the same for every ``x`` in ``L`` -- e.g. for a model whose
next-token law does not depend on the prefix and a language of fixed-length strings
over per-position character classes. In general it is not: the global conditional needs
the look-ahead ``p(completion in L | x_<t)``, which no token mask can compute for a neural
model (Park et al. 2024, "Grammar-aligned decoding", show the bias of local masking and
correct it by importance weighting). We document this instead of claiming more.

References:
  Thompson (1968), "Regular expression search algorithm", CACM 11(6).
  Rabin & Scott (1959), "Finite automata and their decision problems", IBM J. Res. Dev.
  Willard & Louf (2023), "Efficient guided generation for large language models".
  Park et al. (2024), "Grammar-aligned decoding", NeurIPS.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from genjax import checks
from genjax.autoregressive.decoding import regex

__all__ = [
    "Automaton",
    "from_regex",
    "from_strings",
    "completable",
    "allowed_tokens",
    "advance",
    "accepts",
]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Automaton:
    """A deterministic finite automaton over token ids.

    Fields:
      transitions: (num_states, V) int32 -- next state, or -1 where the token is forbidden.
      accepting: (num_states,) bool -- states whose text is in the language.
      start: () int32 -- the initial state (0 for the compiled automata).
    """

    transitions: jax.Array  # (S, V) int32, -1 = forbidden
    accepting: jax.Array  # (S,) bool
    start: jax.Array  # () int32

    @property
    def num_states(self) -> int:
        return int(self.transitions.shape[0])

    @property
    def vocab_size(self) -> int:
        return int(self.transitions.shape[1])


def _lift(delta, accepting, vocabulary: Sequence[str], eos_id: int | None, what: str):
    """Character DFA -> pruned token automaton (reachable, co-reachable states only)."""
    V = len(vocabulary)
    n = len(delta)
    # token-level transitions of the character automaton: run each token's characters
    table = np.full((n, V), -1, dtype=np.int64)
    for s in range(n):
        for v, text in enumerate(vocabulary):
            if v == eos_id or not text:
                continue
            state = s
            for ch in text:
                state = delta[state].get(ch, -1)
                if state < 0:
                    break
            table[s, v] = state
    acc = np.asarray(accepting, dtype=bool)
    # co-reachable: states from which an accepting state can be reached (backward fixpoint)
    live = acc.copy()
    while True:
        nxt = live | np.any((table >= 0) & live[np.maximum(table, 0)], axis=1)
        if (nxt == live).all():
            break
        live = nxt
    if not live[0]:
        raise ValueError(f"{what}: the language is empty over this vocabulary")
    table = np.where((table >= 0) & live[np.maximum(table, 0)], table, -1)
    # keep the states reachable from the start, renumbered in breadth-first order
    order, index = [0], {0: 0}
    k = 0
    while k < len(order):
        for t in table[order[k]]:
            if t >= 0 and int(t) not in index:
                index[int(t)] = len(order)
                order.append(int(t))
        k += 1
    remap = np.full(n + 1, -1, dtype=np.int64)
    for old, new in index.items():
        remap[old] = new
    transitions = remap[table[order]]  # -1 stays -1 through remap[-1] = -1
    return Automaton(
        transitions=jnp.asarray(transitions, jnp.int32),
        accepting=jnp.asarray(acc[order]),
        start=jnp.asarray(0, jnp.int32),
    )


def _check_vocabulary(vocabulary: Sequence[str], eos_id: int | None) -> list[str]:
    vocabulary = list(vocabulary)
    if not vocabulary or not all(isinstance(t, str) for t in vocabulary):
        raise ValueError("vocabulary must be a non-empty sequence of strings (id -> text)")
    if eos_id is not None:
        checks.int_in_range("eos_id", eos_id, 0, len(vocabulary) - 1)
    return vocabulary


def from_regex(pattern: str, vocabulary: Sequence[str], *, eos_id: int | None = None
               ) -> Automaton:
    """Compile a regular expression into a token automaton (full match, as ``re.fullmatch``).

    Supported (:mod:`~genjax.autoregressive.decoding.regex`, with ``re``'s meaning):
    literals, escapes (``\\n``, ``\\d``, ``\\w``, ``\\s`` and complements, escaped
    punctuation), ``.`` (any character but newline), classes ``[abc]``, ranges ``[a-z]``,
    negated ``[^...]``, alternation ``|``, ``*``, ``+``, ``?``, bounded repetition
    ``{m}``, ``{m,}``, ``{,n}``, ``{m,n}`` and groups ``(...)``, ``(?:...)``.

    Args:
      pattern: the expression.
      vocabulary: V strings, ``vocabulary[v]`` the text of token ``v``.
      eos_id: the end-of-sequence token, never a transition (decoding allows it in
        accepting states).

    Returns:
      an :class:`Automaton` with start state 0 and only live states.

    Raises:
      ValueError: a malformed pattern, or a language empty over this vocabulary.
    """
    vocabulary = _check_vocabulary(vocabulary, eos_id)
    alphabet = frozenset(ch for v, t in enumerate(vocabulary) if v != eos_id for ch in t)
    delta, accepting = regex.char_dfa(pattern, alphabet)
    return _lift(delta, accepting, vocabulary, eos_id, f"pattern {pattern!r}")


def from_strings(strings: Sequence[str], vocabulary: Sequence[str], *,
                 eos_id: int | None = None) -> Automaton:
    """Compile a finite list of allowed strings (a trie) into a token automaton.

    Args:
      strings: the allowed texts (the language is exactly this set).
      vocabulary: V strings, ``vocabulary[v]`` the text of token ``v``.
      eos_id: the end-of-sequence token (see :func:`from_regex`).

    Returns:
      an :class:`Automaton`; strings not spellable by the vocabulary are dropped.
    """
    vocabulary = _check_vocabulary(vocabulary, eos_id)
    strings = list(strings)
    if not strings or not all(isinstance(s, str) for s in strings):
        raise ValueError("strings must be a non-empty sequence of strings")
    delta, accepting = regex.trie_dfa(strings)
    return _lift(delta, accepting, vocabulary, eos_id, "strings")


# ---------------------------------------------------------------------------------------
# Use inside the decoding loop
# ---------------------------------------------------------------------------------------


def completable(automaton: Automaton, max_steps: int, *, eos_id: int | None) -> np.ndarray:
    """``completable[r, s]``: from state ``s`` with ``r`` tokens left, ``L`` is reachable.

        completable[0, s] = accepting[s]
        completable[r, s] = (eos_id given and accepting[s]) or any_v completable[r-1, T[s, v]]

    Computed on the host (the automaton must be concrete).

    Args:
      automaton: the token automaton.
      max_steps: the number of new tokens N.
      eos_id: the end-of-sequence token, or None (then outputs have exactly N tokens).

    Returns:
      (N + 1, S) bool NumPy array.
    """
    table = np.asarray(automaton.transitions)
    acc = np.asarray(automaton.accepting, dtype=bool)
    valid = table >= 0
    safe = np.maximum(table, 0)
    out = np.zeros((max_steps + 1, table.shape[0]), dtype=bool)
    out[0] = acc
    for r in range(1, max_steps + 1):
        step = np.any(valid & out[r - 1][safe], axis=1)
        out[r] = (acc | step) if eos_id is not None else step
    return out


def allowed_tokens(automaton: Automaton, state: jax.Array, completable_next: jax.Array,
                   eos_id: int | None) -> jax.Array:
    """The token mask of one decoding step.

    Args:
      automaton: the token automaton.
      state: (B,) int32 current states.
      completable_next: (S,) bool -- ``completable[r - 1]`` for ``r`` slots left now.
      eos_id: the end-of-sequence token or None.

    Returns:
      (B, V) bool: token ``v`` leads to a state that can still be completed in time; EOS
      is allowed exactly in accepting states.
    """
    nxt = automaton.transitions[state]  # (B, V)
    mask = (nxt >= 0) & completable_next[jnp.maximum(nxt, 0)]  # (B, V)
    if eos_id is not None:
        mask = mask.at[:, eos_id].set(automaton.accepting[state])
    return mask


def advance(automaton: Automaton, state: jax.Array, token: jax.Array,
            eos_id: int | None) -> jax.Array:
    """Next states ``T[state, token]`` (B,); EOS leaves the state where it is."""
    nxt = automaton.transitions[state, token]  # (B,)
    if eos_id is not None:
        nxt = jnp.where(token == eos_id, state, nxt)
    return nxt


def accepts(automaton: Automaton, tokens: Sequence[int], *, eos_id: int | None = None) -> bool:
    """Host check: is the token sequence (cut at its first EOS) in the language?"""
    table = np.asarray(automaton.transitions)
    state = int(automaton.start)
    for t in tokens:
        t = int(t)
        if eos_id is not None and t == eos_id:
            break
        state = int(table[state, t])
        if state < 0:
            return False
    return bool(np.asarray(automaton.accepting)[state])
