"""Context-free constraints: an LL(1) pushdown automaton with a bounded stack, as token masks.

A grammar is a dict ``{name: pattern}``: each nonterminal is a regular expression over
characters and references ``<other>`` to nonterminals (an extended BNF, i.e. a recursive
transition network; Woods 1970). Nonterminals that are not recursive are inlined into
their users; each remaining one becomes a *machine* -- the DFA of its pattern over
characters and references (:mod:`.regex`). The pushdown automaton reads one character at
a time from a configuration ``(q, r_1 .. r_k)`` -- a machine state and a stack of return
states:

* if ``q`` has an edge on ``c``, take it;
* else if a reference edge ``q --<M>--> r`` has ``c`` in FIRST(M), push ``r`` (unless
  ``r`` is final: accepting with no edges -- a tail call pushes nothing) and read ``c``
  from M's start (calls chain);
* else if ``q`` is accepting, pop ``r_k`` and read ``c`` from there; else reject.

This greedy parse is exact for LL(1) grammars (Lewis & Stearns 1968; Aho et al. 2006,
section 4.4): :func:`from_grammar` checks that at every state the characters of
different edges are disjoint, that called nonterminals do not derive the empty string,
and that at accepting states they are disjoint from FOLLOW of the machine; a grammar
failing these is a ValueError. The text is in the language when the configuration is
*accepting*: ``q`` and every return state on the stack accepting.

The stack bound. The stack holds at most ``max_depth = D`` return states (for
:data:`JSON_GRAMMAR`, one per open object or array that still expects a value). A token
whose reading would push the (D+1)-th is masked; the language decoded is therefore L
restricted to strings whose parse stays within D frames. Completability respects the
bound: ``finish[d, q]``, the fewest characters that take ``q`` to an accepting state of
its machine using at most ``d`` more frames, is the fixpoint (Bellman-Ford over each
machine's DFA; calls cost their callee's completion)

    finish[d, q] = 0 if q accepting, else min( 1 + finish[d, q --c--> q'],
                   finish[d - push(r), start(M)] + finish[d, r]  for q --<M>--> r )

and the fewest characters from a configuration at depth ``k`` is

    cost(q, r_1..r_k) = finish[D - k, q] + sum_{j=1..k} finish[D - j + 1, r_j]

(the frames are finished top-down; the sum is carried with the stack, ``below[j]``). The
alphabet is the set of characters that are tokens on their own, so ``cost`` characters
take at most ``cost`` tokens: the decoder allows a token with ``r`` slots left only if the
configuration it reaches has ``cost <= r - 1``, and EOS only where ``cost == 0``. Hence,
as in the regular case (:mod:`.constrained`), every output -- up to its EOS, or all its
tokens if the budget ends first -- is in the language, whatever the model's logits, and
every string of L within the budget and the bound can be emitted (the tests enumerate
both). A grammar constraint needs an EOS token. The law is the locally renormalised one
documented in :mod:`.constrained`.

Cost per step: each candidate token's characters are read from the configuration for
all V tokens at once -- O(B V D) per character, no host round trip.

References:
  Woods (1970), "Transition network grammars for natural language analysis", CACM 13(10).
  Lewis & Stearns (1968), "Syntax-directed transduction", JACM 15(3) (LL(k)).
  Aho, Lam, Sethi & Ullman (2006), "Compilers", 2nd ed., sections 4.4 (FIRST, FOLLOW).
  Willard & Louf (2023), "Efficient guided generation for large language models", sec. 5.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from genjax import checks
from genjax.autoregressive.decoding import regex

__all__ = ["Grammar", "from_grammar", "JSON_GRAMMAR", "BRACKETS_GRAMMAR", "accepts",
           "accepts_batch", "read_sequences", "initial_config", "read_tokens", "config_cost", "INF"]

INF = 1 << 20  # "cannot be completed"; sums of D + 1 of them stay within int32
_STRING = '"(?:[ !#-\\[\\]-~]|\\\\["\\\\/bfnrt]|\\\\u[0-9a-fA-F]{4})*"'
_NUMBER = "-?(?:0|[1-9][0-9]*)(?:\\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"
# JSON (RFC 8259) without whitespace between tokens, any depth; strings of printable ASCII
JSON_GRAMMAR: dict[str, str] = {
    "value": "<object>|<array>|" + _STRING + "|" + _NUMBER + "|true|false|null",
    "object": "\\{(?:" + _STRING + ":<value>(?:," + _STRING + ":<value>)*)?\\}",
    "array": "\\[(?:<value>(?:,<value>)*)?\\]",
}
BRACKETS_GRAMMAR: dict[str, str] = {"s": "(?:\\(<s>?\\)|\\[<s>?\\])+"}  # balanced, nonempty


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Grammar:
    """A pushdown automaton over token ids (see the module docstring).

    S machine states, A characters, V tokens, P pushes per character at most,
    D = max_depth, W = longest token.

    Attributes:
      step_next: (S, A) int32 -- state after reading character a in state q (after the
        calls it starts), -1 if q cannot read it.
      step_npush: (S, A) int32 -- return states pushed by that read.
      step_push: (S, A, P) int32 -- those return states, bottom first.
      accepting: (S,) bool -- q ends its machine.
      finish: (D + 1, S) int32 -- finish[d, q] (module docstring), INF if impossible.
      token_chars: (V, W) int32 -- each token's characters (-1 pads).
      token_ok: (V,) bool -- the token is non-empty, not EOS, and spelled in the alphabet.
      start: () int32 -- the start state.
    """

    step_next: jax.Array
    step_npush: jax.Array
    step_push: jax.Array
    accepting: jax.Array
    finish: jax.Array
    token_chars: jax.Array
    token_ok: jax.Array
    start: jax.Array

    @property
    def max_depth(self) -> int:
        return int(self.finish.shape[0]) - 1

    @property
    def vocab_size(self) -> int:
        return int(self.token_chars.shape[0])

    @property
    def num_states(self) -> int:
        return int(self.step_next.shape[0])


# ---------------------------------------------------------------------------------------
# Host compilation
# ---------------------------------------------------------------------------------------


def _refs(node) -> set[str]:
    if node[0] == "set":
        return {label[1:-1] for label in node[1] if len(label) > 1}
    if node[0] == "rep":
        return _refs(node[1])
    return set().union(*(_refs(n) for n in node[1])) if node[1] else set()


def _inline(node, trees, keep):
    """Substitute the trees of references not in ``keep`` (non-recursive ones)."""
    if node[0] == "set":
        (label,) = node[1] if len(node[1]) == 1 else (None,)
        if label is not None and len(label) > 1 and label[1:-1] not in keep:
            return _inline(trees[label[1:-1]], trees, keep)
        return node
    if node[0] == "rep":
        return ("rep", _inline(node[1], trees, keep), node[2], node[3])
    return (node[0], [_inline(n, trees, keep) for n in node[1]])


def _machines(rules: Mapping[str, str], start: str, alphabet: frozenset):
    """Parse, inline the non-recursive nonterminals, build one DFA per machine."""
    trees = {name: regex.parse(p, alphabet, references=True) for name, p in rules.items()}
    graph = {name: _refs(t) for name, t in trees.items()}
    for name, refs in graph.items():
        if refs - set(rules):
            raise ValueError(f"rules: {name!r} references undefined {sorted(refs - set(rules))}")

    def reach(name):
        seen, stack = set(), list(graph[name])
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack += graph[n]
        return seen

    recursive = {name for name in rules if name in reach(name)}
    keep = recursive | {start}
    names = [start] + sorted((recursive & reach(start)) - {start})
    return {name: regex.tree_dfa(_inline(trees[name], trees, keep), f"rule {name!r}")
            for name in names}


def _compile(rules, start, alphabet: list[str], max_depth: int):
    """The PDA tables (NumPy) of an LL(1) grammar; raises ValueError otherwise."""
    dfas = _machines(rules, start, frozenset(alphabet))
    offset, S = {}, 0
    for name, (delta, _) in dfas.items():
        offset[name] = S
        S += len(delta)
    char_index = {ch: i for i, ch in enumerate(alphabet)}
    A = len(alphabet)
    term = [dict() for _ in range(S)]  # q -> {char index: q'}
    calls = [list() for _ in range(S)]  # q -> [(machine, return state)]
    accepting = np.zeros(S, bool)
    machine_of = np.zeros(S, np.int64)
    for m, (name, (delta, acc)) in enumerate(dfas.items()):
        for s, row in enumerate(delta):
            q = offset[name] + s
            accepting[q], machine_of[q] = acc[s], m
            for label, t in row.items():
                if len(label) == 1:
                    term[q][char_index[label]] = offset[name] + t
                else:
                    calls[q].append((label[1:-1], offset[name] + t))
    names = list(dfas)
    for name in {m for q in range(S) for m, _ in calls[q]}:
        if accepting[offset[name]]:
            raise ValueError(f"rules: {name!r} derives the empty string; write the "
                             "optionality at its uses (<name>?)")
    final = accepting & np.array([not term[q] and not calls[q] for q in range(S)])

    # FIRST(M): characters M's start state can read (through calls), a fixpoint
    first = {name: set() for name in names}
    changed = True
    while changed:
        changed = False
        for name in names:
            q = offset[name]
            new = set(term[q]).union(*(first[m] for m, _ in calls[q]))
            if new != first[name]:
                first[name], changed = new, True

    def takes(q):
        return set(term[q]).union(*(first[m] for m, _ in calls[q]))

    for q in range(S):  # LL(1): one way to read each character
        seen = set(term[q])
        for m, _ in calls[q]:
            if seen & first[m]:
                raise ValueError(f"rules: not LL(1) in {names[machine_of[q]]!r}: characters "
                                 f"{sorted(alphabet[c] for c in seen & first[m])} start two "
                                 "alternatives")
            seen |= first[m]
    follow = {name: set() for name in names}  # FOLLOW(M) within the grammar, a fixpoint
    changed = True
    while changed:
        changed = False
        for q in range(S):
            for m, r in calls[q]:
                new = takes(r) | (follow[names[machine_of[r]]] if accepting[r] else set())
                if not new <= follow[m]:
                    follow[m] |= new
                    changed = True
    for q in range(S):
        clash = takes(q) & follow[names[machine_of[q]]] if accepting[q] else set()
        if clash:
            raise ValueError(f"rules: not LL(1): {names[machine_of[q]]!r} may end or go on "
                             f"with {sorted(alphabet[c] for c in clash)}")

    # the read of one character: calls chain from q into the machine that reads it
    step_next = np.full((S, A), -1, np.int64)
    pushes: dict[tuple[int, int], list[int]] = {}
    for q in range(S):
        for c in takes(q):
            state, pushed, seen = q, [], set()
            while c not in term[state]:
                if state in seen:
                    raise ValueError("rules: left recursion (a nonterminal calls itself "
                                     "before reading a character)")
                seen.add(state)
                m, r = next((m, r) for m, r in calls[state] if c in first[m])
                if not final[r]:
                    pushed.append(r)
                state = offset[m]
            step_next[q, c] = term[state][c]
            pushes[q, c] = pushed
    P = max([len(p) for p in pushes.values()] + [1])
    step_npush = np.zeros((S, A), np.int64)
    step_push = np.zeros((S, A, P), np.int64)
    for (q, c), p in pushes.items():
        step_npush[q, c] = len(p)
        step_push[q, c, :len(p)] = p

    # finish[d, q]: Bellman-Ford within each depth budget d (module docstring)
    finish = np.full((max_depth + 1, S), INF, np.int64)
    for d in range(max_depth + 1):
        f = np.where(accepting, 0, INF)
        changed = True
        while changed:
            changed = False
            for q in range(S):
                best = f[q]
                for t in term[q].values():
                    best = min(best, 1 + f[t])
                for m, r in calls[q]:
                    budget = d - (0 if final[r] else 1)
                    if budget >= 0:
                        callee = f[offset[m]] if budget == d else finish[budget, offset[m]]
                        best = min(best, callee + f[r])
                if best < f[q]:
                    f[q], changed = min(best, INF), True
        finish[d] = f
    return dict(step_next=step_next, step_npush=step_npush, step_push=step_push,
                accepting=accepting, finish=finish, start=offset[start])


def from_grammar(rules: Mapping[str, str], vocabulary: Sequence[str], *, start: str | None = None,
                 eos_id: int, max_depth: int = 16) -> Grammar:
    """Compile an LL(1) grammar into a token-level pushdown automaton.

    Args:
      rules: ``{name: pattern}``; patterns are :mod:`.regex` expressions whose atoms may
        be references ``<name>`` (a literal ``<`` is written ``\\<``). E.g.
        :data:`JSON_GRAMMAR`, :data:`BRACKETS_GRAMMAR`.
      vocabulary: V strings, ``vocabulary[v]`` the text of token ``v``. The alphabet is
        the set of one-character tokens; longer tokens are read character by character.
      start: the start nonterminal (default: the first rule).
      eos_id: the end-of-sequence token (required: allowed where the text is complete).
      max_depth: D >= 1, the stack bound (module docstring).

    Returns:
      a :class:`Grammar` for ``generate(..., constraint=)`` and ``beam_search``.

    Raises:
      ValueError: malformed rules, a grammar that is not LL(1), a language empty over the
        vocabulary within the bound, or bad arguments.

    Example:
      >>> g = from_grammar({"s": "(ab)+"}, ["a", "b", "<eos>"], eos_id=2)
      >>> type(g).__name__
      'Grammar'
    """
    if not isinstance(rules, Mapping) or not rules or not all(
            isinstance(k, str) and k.isidentifier() and isinstance(v, str)
            for k, v in rules.items()):
        raise ValueError("rules must be a non-empty dict {identifier: pattern string}")
    start = next(iter(rules)) if start is None else start
    if start not in rules:
        raise ValueError(f"start must name a rule, got {start!r}")
    vocabulary = list(vocabulary)
    if not vocabulary or not all(isinstance(t, str) for t in vocabulary):
        raise ValueError("vocabulary must be a non-empty sequence of strings (id -> text)")
    if eos_id is None:
        raise ValueError("eos_id: a grammar constraint needs an end-of-sequence token")
    eos_id = checks.int_in_range("eos_id", eos_id, 0, len(vocabulary) - 1)
    max_depth = checks.int_in_range("max_depth", max_depth, 1, 4096)
    alphabet = sorted({t for v, t in enumerate(vocabulary) if v != eos_id and len(t) == 1})
    if not alphabet:
        raise ValueError("vocabulary: no one-character token (the grammar's alphabet)")
    tables = _compile(rules, start, alphabet, max_depth)
    if tables["finish"][max_depth, tables["start"]] >= INF:
        raise ValueError(f"rules: the language is empty over this vocabulary within "
                         f"max_depth={max_depth}")
    index = {ch: i for i, ch in enumerate(alphabet)}
    W = max(1, max(len(t) for t in vocabulary))
    chars = np.full((len(vocabulary), W), -1, np.int64)
    ok = np.zeros(len(vocabulary), bool)
    for v, text in enumerate(vocabulary):
        ok[v] = v != eos_id and bool(text) and all(ch in index for ch in text)
        if ok[v]:
            chars[v, :len(text)] = [index[ch] for ch in text]
    i32 = lambda a: jnp.asarray(a, jnp.int32)  # noqa: E731
    return Grammar(step_next=i32(tables["step_next"]), step_npush=i32(tables["step_npush"]),
                   step_push=i32(tables["step_push"]),
                   accepting=jnp.asarray(tables["accepting"]), finish=i32(tables["finish"]),
                   token_chars=i32(chars), token_ok=jnp.asarray(ok),
                   start=i32(tables["start"]))


# ---------------------------------------------------------------------------------------
# Configurations inside the decoding loop
# ---------------------------------------------------------------------------------------
# A configuration is a dict of arrays with common batch shape (...):
#   q (...) int32 state, depth (...) int32 frames k, stack (..., D) int32 return states
#   (positions >= k unused), below (..., D + 1) int32 (below[j] = sum of the frames'
#   finish terms, module docstring), ok (...) bool (False once a read failed).


def initial_config(grammar: Grammar, batch: int) -> dict:
    """The start configuration, repeated ``batch`` times."""
    D = grammar.max_depth
    cfg = dict(q=jnp.full((batch,), grammar.start, jnp.int32),
               depth=jnp.zeros((batch,), jnp.int32),
               stack=jnp.zeros((batch, D), jnp.int32),
               below=jnp.zeros((batch, D + 1), jnp.int32),
               ok=jnp.ones((batch,), bool))
    # a barrier: otherwise XLA constant-folds the first step's (B, V, D) reads of the
    # all-zero stack, which costs seconds of compile time and nothing at run time
    return jax.lax.optimization_barrier(cfg)


def _read_char(g: Grammar, cfg: dict, c: jax.Array) -> dict:
    """Read character index ``c`` (...) (-1: nothing) in every configuration (...)."""
    D = g.max_depth
    q, k, stack, below = cfg["q"], cfg["depth"], cfg["stack"], cfg["below"]
    cc = jnp.maximum(c, 0)
    here = g.step_next[q, cc] >= 0  # q reads c (directly or through calls)
    # otherwise pop: the topmost frame p (0-based, p < k) whose return state reads c,
    # with q and every frame above p accepting (they end their machines)
    lead = (1,) * q.ndim  # explicit broadcasting against the batch shape (...)
    level = jnp.arange(D).reshape(lead + (D,))
    in_stack = level < k[..., None]  # (..., D)
    frame_reads = g.step_next[stack, cc[..., None]] >= 0  # (..., D)
    not_acc = in_stack & ~g.accepting[stack]
    above = jnp.flip(jnp.cumsum(jnp.flip(not_acc, -1), -1), -1) - not_acc  # frames > p
    candidate = in_stack & frame_reads & (above == 0)
    p = D - 1 - jnp.argmax(jnp.flip(candidate, -1), axis=-1)  # the topmost candidate
    can_pop = g.accepting[q] & jnp.any(candidate, axis=-1)
    popped = jnp.take_along_axis(stack, p[..., None], axis=-1)[..., 0]
    src = jnp.where(here, q, popped)
    k = jnp.where(here, k, p)
    ok = cfg["ok"] & (here | can_pop)
    npush = g.step_npush[src, cc]
    pushed = g.step_push[src, cc]  # (..., P)
    for i in range(pushed.shape[-1]):  # push bottom first; below[j + 1] = below[j] + term
        pos = k + i
        write = i < npush
        r = pushed[..., i]
        term = g.finish[jnp.clip(D - pos, 0, D), r]
        at = (level == pos[..., None]) & write[..., None]
        stack = jnp.where(at, r[..., None], stack)
        prev = jnp.take_along_axis(below, jnp.clip(pos, 0, D)[..., None], axis=-1)[..., 0]
        slots = jnp.arange(D + 1).reshape(lead + (D + 1,))
        at_below = (slots == (pos + 1)[..., None]) & write[..., None]
        below = jnp.where(at_below, jnp.minimum(prev + term, INF)[..., None], below)
    ok = ok & (k + npush <= D)
    nxt = {"q": g.step_next[src, cc], "depth": jnp.minimum(k + npush, D), "stack": stack,
           "below": below, "ok": ok}
    return {key: jnp.where(_expand(c >= 0, val), val, cfg[key]) for key, val in nxt.items()}


def _expand(flag, like):
    return flag.reshape(flag.shape + (1,) * (like.ndim - flag.ndim))


def read_tokens(grammar: Grammar, cfg: dict, tokens: jax.Array) -> dict:
    """Configurations after reading token ids ``tokens`` (same batch shape as ``cfg``)."""
    chars = grammar.token_chars[tokens]  # (..., W)
    cfg = dict(cfg, ok=cfg["ok"] & grammar.token_ok[tokens])
    for i in range(chars.shape[-1]):
        cfg = _read_char(grammar, cfg, chars[..., i])
    return cfg


def config_cost(grammar: Grammar, cfg: dict) -> jax.Array:
    """Fewest characters to an accepting configuration (INF if none, or not ok) (...)."""
    D = grammar.max_depth
    k = cfg["depth"]
    below = jnp.take_along_axis(cfg["below"], k[..., None], axis=-1)[..., 0]
    cost = jnp.minimum(grammar.finish[D - k, cfg["q"]] + below, INF)
    return jnp.where(cfg["ok"], cost, INF)


@jax.jit
def read_sequences(grammar: Grammar, tokens: jax.Array) -> dict:
    """Configurations after each row of ``tokens`` (B, T) int32, -1 padded (one program
    per T): a batch of configurations (B,)."""
    def body(cfg, tok):  # tok (B,)
        new = read_tokens(grammar, cfg, jnp.maximum(tok, 0))
        return jax.tree.map(lambda old, n: jnp.where(
            _expand(tok < 0, old), old, n), cfg, new), None

    cfg, _ = jax.lax.scan(body, initial_config(grammar, tokens.shape[0]), tokens.T)
    return cfg


def accepts_batch(grammar: Grammar, tokens: np.ndarray, *, eos_id: int | None = None
                  ) -> np.ndarray:
    """Host check of many sequences: (B, T) token ids, -1 padded, each cut at its first
    EOS -> (B,) bool, in the language (within the stack bound)."""
    tokens = np.array(tokens, np.int64).reshape(len(tokens), -1)
    if eos_id is not None:
        after = np.cumsum(tokens == eos_id, axis=1) > 0
        tokens = np.where(after, -1, tokens)
    T = 1 << max(0, int(tokens.shape[1] - 1).bit_length())  # few compiled lengths
    padded = np.full((tokens.shape[0], max(T, 1)), -1, np.int64)
    padded[:, :tokens.shape[1]] = tokens
    cfg = read_sequences(grammar, jnp.asarray(padded, jnp.int32))
    return np.asarray(config_cost(grammar, cfg)) == 0


def accepts(grammar: Grammar, tokens: Sequence[int], *, eos_id: int | None = None) -> bool:
    """Host check: is the token sequence (cut at its first EOS) in the language (within
    the stack bound)?"""
    return bool(accepts_batch(grammar, [list(tokens) or [-1]], eos_id=eos_id)[0])
