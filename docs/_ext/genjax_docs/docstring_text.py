"""Read genjax's docstrings as their authors wrote them: reST whose math is plain text.

The docstrings are Google style with reStructuredText markup (``` ``code`` ```, ``:func:``),
but they write mathematics as plain text -- ``|x|``, ``p(x|z)``, ``*shape``, ``a*b`` -- and
list references with hanging indents. reST reads ``|`` as a substitution and a lone ``*`` as
the start of emphasis, and warns (and the site builds with warnings as errors). Before
napoleon and docutils see a docstring, this module:

* joins the hanging-indent continuation lines of a ``References:`` section to their entry;
* escapes every ``|`` (genjax docstrings use no substitutions), every ``*`` that does not
  open a matched ``*emphasis*`` / ``**strong**`` span and every ``_`` that ends a word (reST's
  hyperlink reference), outside inline literals and roles;
* makes an indented block of prose a literal block: it is an equation aligned by hand;

and leaves literal blocks (after ``::``), doctests (``>>>``) and grid tables untouched. The
docstrings then render exactly as they read in the source.
"""

from __future__ import annotations

import re

_PROTECTED = re.compile(r"``.+?``|:[\w:.+-]+:`[^`]*`|`[^`]*`_{0,2}")
_EMPHASIS = re.compile(r"(?<![\w*\\])(\*\*?)(?=[^\s*])(.*?[^\s\\*])\1(?![\w*])")
_STAR_START = re.compile(r"(?<![\w\\*])\*(?=[^\s])")
_TRAILING_UNDERSCORE = re.compile(r"(?<=\w)_(?![\w`])")  # x_l_ would be a link to "l"
_SECTION = re.compile(r"^\s*[A-Z][A-Za-z ]*:\s*$")
_GOOGLE = re.compile(
    r"^(Args|Arguments|Parameters|Keyword Args|Keyword Arguments|Other Parameters|Returns?|"
    r"Yields?|Raises|Warns|Attributes|Methods|Examples?|Notes?|References|See Also|Todo|"
    r"Warning|Warnings|Receives)\s*:$"
)
_LIST_ITEM = re.compile(r"^([-*+]|\d+[.)]|#\.)\s")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _escape_inline(text: str) -> str:
    """Escape ``|`` and unmatched ``*`` in one piece of text outside literals and roles."""
    out = []
    pos = 0
    for m in _PROTECTED.finditer(text):
        out.append(_escape_plain(text[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(_escape_plain(text[pos:]))
    return "".join(out)


def _escape_plain(text: str) -> str:
    """Escape in text that holds no literal or role: keep matched emphasis, escape the rest."""
    out = []
    pos = 0
    for m in _EMPHASIS.finditer(text):
        out.append(_escape_bare(text[pos : m.start()]))
        out.append(m.group(1) + m.group(2).replace("|", r"\|") + m.group(1))
        pos = m.end()
    out.append(_escape_bare(text[pos:]))
    return "".join(out)


def _escape_bare(text: str) -> str:
    text = re.sub(r"(?<!\\)\|", r"\\|", text)
    text = _TRAILING_UNDERSCORE.sub(r"\\_", text)
    return _STAR_START.sub(r"\\*", text)


def _join_references(lines: list[str]) -> list[str]:
    """Join the hanging-indent continuation lines of ``References:`` entries."""
    out: list[str] = []
    in_refs = False
    entry_indent = None
    for line in lines:
        stripped = line.strip()
        if _SECTION.match(line):
            in_refs = stripped.rstrip(":").strip().lower() == "references"
            entry_indent = None
            out.append(line)
            continue
        if in_refs and stripped:
            indent = _indent(line)
            if entry_indent is None or indent <= entry_indent:
                entry_indent = indent
                out.append(line)
            else:
                out[-1] = out[-1].rstrip() + " " + stripped
            continue
        if in_refs and not stripped:
            entry_indent = None
        out.append(line)
    return out


def _literal_equations(lines: list[str]) -> list[str]:
    """Make an indented block of prose a literal block (``::``): it is a typeset equation.

    A block indented at least 3 columns deeper than the paragraph before it, after a blank
    line, outside the Google sections that napoleon reads (``Args:``, ``Returns:`` ...), is
    an equation aligned by hand; reST would read it as a block quote or a definition list
    and lose the alignment. The paragraph before it gains the ``::`` marker (reST shows
    ``give::`` as ``give:`` and drops a `` ::`` after a space), so the text reads the same.
    """
    out: list[str] = []
    section_indent: int | None = None
    par_indent: int | None = None  # indent of the first line of the last paragraph
    par_last = -1  # index in out of the last paragraph's last line
    blank_before = True
    block_indent: int | None = None  # inside a converted block indented at least this
    for line in lines:
        stripped = line.strip()
        if not stripped:
            out.append(line)
            blank_before = True
            continue
        indent = _indent(line)
        if block_indent is not None:
            if indent >= block_indent:
                out.append(line)
                blank_before = False
                continue
            block_indent = None
        if section_indent is not None and indent <= section_indent:
            section_indent = None
        if _GOOGLE.match(stripped):
            section_indent = indent
        elif (
            section_indent is None
            and blank_before
            and par_indent is not None
            and indent >= par_indent + 3
            and not stripped.startswith((">>>", ".. "))
            and not out[par_last].rstrip().endswith("::")
            and not out[par_last].strip().startswith(".. ")
        ):
            last = out[par_last].rstrip()
            out[par_last] = last + (":" if last.endswith(":") else " ::")
            block_indent = indent
            out.append(line)
            blank_before = False
            continue
        if blank_before and section_indent != indent:
            par_indent = indent
        par_last = len(out)
        out.append(line)
        blank_before = False
    return out


def normalize(lines: list[str]) -> list[str]:
    """The docstring's lines, ready for napoleon and docutils (see the module docstring)."""
    lines = _literal_equations(_join_references(lines))
    out: list[str] = []
    literal_indent: int | None = None  # inside a literal block indented deeper than this
    in_doctest = False
    pending_literal = False
    for line in lines:
        stripped = line.strip()
        if literal_indent is not None:
            if not stripped or _indent(line) > literal_indent:
                out.append(line)
                continue
            literal_indent = None
        if pending_literal and stripped:
            literal_indent = _indent(out_last_nonblank(out))
            pending_literal = False
            if _indent(line) > literal_indent:
                out.append(line)
                continue
            literal_indent = None
        if stripped.startswith(">>>"):
            in_doctest = True
        elif not stripped:
            in_doctest = False
        if in_doctest or stripped.startswith(("+", "|")) and stripped.endswith(("+", "|")):
            out.append(line)
            continue
        if stripped.startswith(".. ") or stripped == "::":
            # a directive's or a bare literal marker's own line stays as written
            out.append(line)
            if stripped.endswith("::"):
                pending_literal = True
            continue
        out.append(_escape_inline(line))
        if stripped.endswith("::"):
            pending_literal = True
    return out


def out_last_nonblank(lines: list[str]) -> str:
    """The last non-blank line written so far (the paragraph that introduced a literal)."""
    for line in reversed(lines):
        if line.strip():
            return line
    return ""


def process_docstring(
    app: object, what: str, name: str, obj: object, options: object, lines: list[str]
) -> None:
    """``autodoc-process-docstring`` hook: normalise the lines in place."""
    lines[:] = normalize(lines)
