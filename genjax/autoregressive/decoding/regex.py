"""Regular expressions -> character DFAs (the front end of constrained decoding).

A pattern is parsed into a small syntax tree, compiled into Thompson's (1968) NFA and
determinised by the subset construction (Rabin & Scott 1959). The syntax is the subset of
Python's ``re`` that full matching (``re.fullmatch``) needs, with the same meaning:

* literals; ``\\`` escapes of punctuation; ``\\n \\t \\r \\f \\v``; the classes ``\\d``
  (``str.isdecimal``), ``\\w`` (``str.isalnum`` or ``_``), ``\\s`` (``str.isspace``) and
  their complements ``\\D \\W \\S`` -- the definitions ``re`` uses for ``str`` patterns;
* ``.`` (any character but newline); classes ``[abc]``, ranges ``[a-z]``, negated
  ``[^...]``, with escapes inside;
* alternation ``|``, grouping ``(...)`` and ``(?:...)``;
* repetition ``*``, ``+``, ``?`` and bounded ``{m}``, ``{m,}``, ``{,n}``, ``{m,n}`` (a
  ``{`` that does not start a bound is a literal, as in ``re``).

Anchors, backreferences and look-arounds are rejected (a ValueError naming the pattern).
With ``references=True`` an atom ``<name>`` stands for a nonterminal of a grammar
(:mod:`~genjax.autoregressive.decoding.grammar`); its label is the string ``"<name>"``,
never confused with a character (labels of characters have length one).

Every character set is intersected with the *alphabet* (the characters the vocabulary
can spell): a negated class means "every character of the alphabet but these".

References:
  Thompson (1968), "Regular expression search algorithm", CACM 11(6).
  Rabin & Scott (1959), "Finite automata and their decision problems", IBM J. Res. Dev.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["parse", "char_dfa", "tree_dfa", "trie_dfa", "escape", "MAX_NFA_STATES"]

MAX_NFA_STATES = 200_000  # bounded repetition copies its operand: refuse runaway sizes
_ESCAPE_CHARS = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v"}
_SHORTHANDS = {
    "d": lambda ch: ch.isdecimal(),
    "w": lambda ch: ch.isalnum() or ch == "_",
    "s": lambda ch: ch.isspace(),
}


def escape(text: str) -> str:
    """``text`` as a pattern matching exactly itself (every non-alphanumeric escaped)."""
    return "".join(ch if ch.isalnum() or ch == "_" else "\\" + ch for ch in text)


# A syntax tree node is one of
#   ("set", frozenset of labels)        one character (or nonterminal) of the set
#   ("cat", [node, ...])                concatenation ("cat", []) is the empty string
#   ("alt", [node, ...])                alternation
#   ("rep", node, low, high or None)    node repeated low .. high times (None: unbounded)


class _Parser:
    """Recursive descent: alternation > concatenation > repetition > atom."""

    def __init__(self, pattern: str, alphabet: frozenset, references: bool) -> None:
        self.s = pattern
        self.i = 0
        self.alphabet = alphabet
        self.references = references

    def error(self, what: str) -> ValueError:
        return ValueError(f"pattern {self.s!r}: {what} at position {self.i}")

    def peek(self) -> str | None:
        return self.s[self.i] if self.i < len(self.s) else None

    def parse(self):
        node = self.alternation()
        if self.i != len(self.s):
            raise self.error(f"unexpected {self.s[self.i]!r}")
        return node

    def alternation(self):
        branches = [self.concatenation()]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.concatenation())
        return branches[0] if len(branches) == 1 else ("alt", branches)

    def concatenation(self):
        parts = []
        while self.peek() not in (None, "|", ")"):
            parts.append(self.repetition())
        return parts[0] if len(parts) == 1 else ("cat", parts)

    def bound(self) -> tuple[int, int | None] | None:
        """``{m}``, ``{m,}``, ``{,n}``, ``{m,n}`` at ``self.i`` (consumed), else None."""
        j = self.i + 1
        lo = ""
        while j < len(self.s) and self.s[j].isdigit():
            lo += self.s[j]
            j += 1
        hi, comma = "", False
        if j < len(self.s) and self.s[j] == ",":
            comma = True
            j += 1
            while j < len(self.s) and self.s[j].isdigit():
                hi += self.s[j]
                j += 1
        if j >= len(self.s) or self.s[j] != "}" or (not lo and not comma):
            return None  # not a bound: '{' is a literal, as in Python's re
        self.i = j + 1
        low = int(lo) if lo else 0
        high = (int(hi) if hi else None) if comma else low
        if high is not None and high < low:
            raise self.error(f"bad repetition bound {{{lo},{hi}}}")
        return low, high

    def repetition(self):
        node = self.atom()
        while True:
            c = self.peek()
            if c in ("*", "+", "?"):
                self.i += 1
                low, high = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
            elif c == "{" and (b := self.bound()) is not None:
                low, high = b
            else:
                return node
            node = ("rep", node, low, high)

    def atom(self):
        c = self.peek()
        if c is None:
            raise self.error("expected an atom")
        if c == "(":
            self.i += 1
            if self.s.startswith("?:", self.i):
                self.i += 2
            elif self.peek() == "?":
                raise self.error("only (?:...) groups are supported")
            node = self.alternation()
            if self.peek() != ")":
                raise self.error("missing ')'")
            self.i += 1
            return node
        if c == "[":
            self.i += 1
            return ("set", self.char_class())
        if c in "*+?":
            raise self.error(f"nothing to repeat before {c!r}")
        if c == "{" and self.bound() is not None:
            raise self.error("nothing to repeat before '{'")
        if c == ")":
            raise self.error("unbalanced ')'")
        if c in "^$":
            raise self.error(f"anchor {c!r} is not supported (patterns match whole strings)")
        if c == "<" and self.references:
            end = self.s.find(">", self.i)
            name = self.s[self.i + 1:end] if end > 0 else ""
            if not name.isidentifier():
                raise self.error("a reference must read <name> with an identifier")
            self.i = end + 1
            return ("set", frozenset([f"<{name}>"]))
        self.i += 1
        if c == ".":  # any character but newline, as in Python's re
            return ("set", frozenset(ch for ch in self.alphabet if ch != "\n"))
        if c == "\\":
            return ("set", self.escaped())
        return ("set", frozenset([c]) & self.alphabet)

    def escaped(self) -> frozenset:
        """The character set of the escape after a consumed backslash."""
        c = self.peek()
        if c is None:
            raise self.error("dangling backslash")
        self.i += 1
        if c.lower() in _SHORTHANDS:
            test = _SHORTHANDS[c.lower()]
            return frozenset(ch for ch in self.alphabet if test(ch) != c.isupper())
        if c in _ESCAPE_CHARS:
            return frozenset([_ESCAPE_CHARS[c]]) & self.alphabet
        if c.isalnum():
            raise self.error(f"unsupported escape \\{c}")
        return frozenset([c]) & self.alphabet

    def class_char(self) -> str | frozenset:
        """One member of a class: a character, or a set for ``\\d``-like escapes."""
        c = self.s[self.i]
        self.i += 1
        if c != "\\":
            return c
        if self.peek() is None:
            raise self.error("dangling backslash")
        e = self.s[self.i]
        if e.lower() in _SHORTHANDS:
            return self.escaped()
        self.i += 1
        if e in _ESCAPE_CHARS:
            return _ESCAPE_CHARS[e]
        if e.isalnum():
            raise self.error(f"unsupported escape \\{e}")
        return e

    def char_class(self) -> frozenset:
        negate = self.peek() == "^"
        if negate:
            self.i += 1
        chars: set[str] = set()
        first = True
        while True:
            if self.peek() is None:
                raise self.error("missing ']'")
            if self.peek() == "]" and not first:
                self.i += 1
                break
            first = False
            lo = self.class_char()
            if isinstance(lo, frozenset):
                chars |= lo
                continue
            if self.peek() == "-" and self.i + 1 < len(self.s) and self.s[self.i + 1] != "]":
                self.i += 1
                hi = self.class_char()
                if isinstance(hi, frozenset) or ord(hi) < ord(lo):
                    raise self.error(f"bad range {lo}-{hi}")
                chars.update(chr(o) for o in range(ord(lo), ord(hi) + 1))
            else:
                chars.add(lo)
        if negate:
            return frozenset(ch for ch in self.alphabet if ch not in chars)
        return frozenset(chars) & self.alphabet


def parse(pattern: str, alphabet: frozenset, *, references: bool = False):
    """The syntax tree of ``pattern`` over ``alphabet`` (see the module docstring)."""
    if not isinstance(pattern, str):
        raise ValueError(f"pattern must be a string, got {pattern!r}")
    return _Parser(pattern, frozenset(alphabet), references).parse()


# ---------------------------------------------------------------------------------------
# Thompson's construction and the subset construction
# ---------------------------------------------------------------------------------------


class _NFA:
    """States 0..n-1; ``eps[i]``: epsilon targets; ``edges[i]``: (label set, target)."""

    def __init__(self, what: str) -> None:
        self.eps: list[list[int]] = []
        self.edges: list[list[tuple[frozenset, int]]] = []
        self.what = what

    def new(self) -> int:
        if len(self.eps) >= MAX_NFA_STATES:
            raise ValueError(f"{self.what}: more than {MAX_NFA_STATES} NFA states (shrink "
                             "the repetition bounds)")
        self.eps.append([])
        self.edges.append([])
        return len(self.eps) - 1

    def fragment(self, node) -> tuple[int, int]:
        """Thompson's construction: ``(entry, exit)`` of a fragment accepting ``node``."""
        kind = node[0]
        if kind == "set":
            a, b = self.new(), self.new()
            if node[1]:
                self.edges[a].append((node[1], b))
            return a, b
        if kind == "cat":
            entry = exit_ = self.new()  # the empty string
            for part in node[1]:
                f_in, f_out = self.fragment(part)
                self.eps[exit_].append(f_in)
                exit_ = f_out
            return entry, exit_
        if kind == "alt":
            entry, exit_ = self.new(), self.new()
            for branch in node[1]:  # entry -eps-> each branch -eps-> exit
                b_in, b_out = self.fragment(branch)
                self.eps[entry].append(b_in)
                self.eps[b_out].append(exit_)
            return entry, exit_
        _, inner, low, high = node  # x{m,n} = x^m (x?)^(n-m); x{m,} = x^m x*
        entry = exit_ = self.new()
        for _ in range(low):
            f_in, f_out = self.fragment(inner)
            self.eps[exit_].append(f_in)
            exit_ = f_out
        if high is None:  # star: entry -> inner -> loop back, entry -> exit
            f_in, f_out = self.fragment(inner)
            loop_out = self.new()
            self.eps[exit_] += [f_in, loop_out]
            self.eps[f_out] += [f_in, loop_out]
            return entry, loop_out
        for _ in range(high - low):  # optional copies
            f_in, f_out = self.fragment(inner)
            skip = self.new()
            self.eps[exit_] += [f_in, skip]
            self.eps[f_out].append(skip)
            exit_ = skip
        return entry, exit_


def _closure(nfa: _NFA, states) -> frozenset:
    stack, seen = list(states), set(states)
    while stack:
        s = stack.pop()
        for t in nfa.eps[s]:
            if t not in seen:
                seen.add(t)
                stack.append(t)
    return frozenset(seen)


def char_dfa(pattern: str, alphabet: frozenset, *, references: bool = False):
    """Pattern -> DFA by the subset construction.

    Returns:
      ``(delta, accepting)``: ``delta[s]`` a dict label -> next state (labels are the
      alphabet's characters, and ``"<name>"`` references when enabled), ``accepting[s]``
      whether state ``s`` ends a match; state 0 is the start.
    """
    return tree_dfa(parse(pattern, alphabet, references=references), f"pattern {pattern!r}")


def tree_dfa(tree, what: str):
    """:func:`char_dfa` of a parsed syntax tree (``what`` names it in errors)."""
    nfa = _NFA(what)
    entry, exit_ = nfa.fragment(tree)
    start = _closure(nfa, [entry])
    index, order = {start: 0}, [start]
    delta: list[dict[str, int]] = []
    k = 0
    while k < len(order):
        moves: dict[str, set[int]] = {}
        for s in order[k]:
            for labels, t in nfa.edges[s]:
                for label in labels:
                    moves.setdefault(label, set()).add(t)
        row: dict[str, int] = {}
        for label in sorted(moves):
            target = _closure(nfa, moves[label])
            if target not in index:
                index[target] = len(order)
                order.append(target)
            row[label] = index[target]
        delta.append(row)
        k += 1
    return delta, [exit_ in subset for subset in order]


def trie_dfa(strings: Sequence[str]):
    """A trie: state = a prefix of some allowed string; accepting = a whole string."""
    delta: list[dict[str, int]] = [{}]
    accepting = [False]
    for s in strings:
        node = 0
        for ch in s:
            if ch not in delta[node]:
                delta[node][ch] = len(delta)
                delta.append({})
                accepting.append(False)
            node = delta[node][ch]
        accepting[node] = True
    return delta, accepting
