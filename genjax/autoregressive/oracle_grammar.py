"""NumPy-only twin of grammar-constrained decoding (no jax, no genjax).

Written from the definitions, by another route than the JAX code: the configuration is a
Python list (the stack), the read of a character pops frame by frame, and the question
"can the text still be completed in ``m`` characters?" is answered by breadth-first
search over configurations -- no completion-cost table, no vectorised pop.

The pushdown automaton (:mod:`genjax.autoregressive.decoding.grammar`): from ``(q, stack)``
a character ``c`` is read by

* ``q`` itself when ``step_next[q, c] >= 0``: go there, pushing ``step_push[q, c, :n]``;
* else, if ``q`` is accepting, by the return state on top of the stack (popped), and so on;
* else the read fails.

A push beyond ``max_depth`` frames fails. A configuration is accepting when ``q`` and every
stacked return state are. The decoder allows token ``v`` with ``r`` tokens left iff the
configuration after ``v`` can reach an accepting one in at most ``r - 1`` characters
(one-character tokens spell every character), and EOS iff the configuration is accepting.

Tables are a dict of NumPy arrays: ``step_next`` (S, A), ``step_npush`` (S, A),
``step_push`` (S, A, P), ``accepting`` (S,), ``token_chars`` (V, W) (-1 pads),
``token_ok`` (V,), ``start`` (), ``max_depth`` ().
"""

from __future__ import annotations

import numpy as np


def initial(tables: dict) -> tuple:
    """The start configuration ``(q, stack tuple)``."""
    return int(tables["start"]), ()


def read_char(tables: dict, config: tuple | None, c: int) -> tuple | None:
    """The configuration after character index ``c``, or None if it cannot be read."""
    if config is None:
        return None
    q, stack = config[0], list(config[1])
    while int(tables["step_next"][q, c]) < 0:
        if not tables["accepting"][q] or not stack:
            return None
        q = stack.pop()  # q ends its machine: return to the caller
    n = int(tables["step_npush"][q, c])
    stack += [int(r) for r in tables["step_push"][q, c, :n]]
    if len(stack) > int(tables["max_depth"]):
        return None
    return int(tables["step_next"][q, c]), tuple(stack)


def read_token(tables: dict, config: tuple | None, v: int) -> tuple | None:
    """The configuration after every character of token ``v``, or None if it cannot be read."""
    if config is None or not tables["token_ok"][v]:
        return None
    for c in tables["token_chars"][v]:
        if c >= 0:
            config = read_char(tables, config, int(c))
    return config


def is_accepting(tables: dict, config: tuple | None) -> bool:
    """Whether ``config`` ends the grammar: its state and every return state on its stack accept."""
    return config is not None and bool(tables["accepting"][config[0]]) and all(
        bool(tables["accepting"][r]) for r in config[1])


def completion_length(tables: dict, config: tuple | None, limit: int) -> int | None:
    """Fewest characters from ``config`` to an accepting configuration (BFS), or None
    when more than ``limit`` are needed."""
    if config is None or limit < 0:
        return None
    frontier, seen = {config}, {config}
    A = tables["step_next"].shape[1]
    for m in range(limit + 1):
        if any(is_accepting(tables, cfg) for cfg in frontier):
            return m
        nxt = set()
        for cfg in frontier:
            for c in range(A):
                new = read_char(tables, cfg, c)
                if new is not None and new not in seen:
                    seen.add(new)
                    nxt.add(new)
        frontier = nxt
    return None


def mask(tables: dict, config: tuple, slots_left: int, eos_id: int) -> np.ndarray:
    """(V,) bool: the tokens allowed with ``slots_left`` tokens left (this one too)."""
    V = tables["token_chars"].shape[0]
    out = np.zeros(V, bool)
    for v in range(V):
        if v != eos_id:
            after = read_token(tables, config, v)
            out[v] = completion_length(tables, after, slots_left - 1) is not None
    out[eos_id] = is_accepting(tables, config)
    return out
