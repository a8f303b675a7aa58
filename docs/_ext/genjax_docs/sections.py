"""Split a Python source file into labml-style (prose, code) sections.

A section is a run of prose -- a docstring or a block of full-line ``#`` comments -- and the
code that follows it, up to the next prose. A ``def``/``class`` header (with its decorators)
goes with its own docstring, so the docstring stands beside the signature it documents.
Comments at the end of a code line stay in the code: they are the equation beside the line
that computes it. Every code line keeps its line number in the file, so links into a section
point at the same lines as the file on disk.

This module imports only the standard library (the docs build and its tests use it alike).
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass, field


@dataclass
class Prose:
    """One block of a section's prose column.

    Attributes:
        kind: ``"docstring"`` (reStructuredText, rendered as such) or ``"comment"`` (plain
            text; ``$...$`` in it is rendered as inline math).
        text: the block's text, dedented, without quotes or ``#`` markers.
        line: the first line of the block in the file (1-based).
        end: the last line of the block in the file.
    """

    kind: str
    text: str
    line: int
    end: int


@dataclass
class Section:
    """One row of an annotated page: prose on the left, code on the right.

    Attributes:
        prose: the section's prose blocks, in file order.
        code: ``(line_number, text)`` of each code line, in file order (1-based numbers).
    """

    prose: list[Prose] = field(default_factory=list)
    code: list[tuple[int, str]] = field(default_factory=list)


def _docstring_spans(tree: ast.Module) -> tuple[dict[int, tuple[int, str]], dict[int, int]]:
    """Where the docstrings are, and where each documented header starts.

    Returns ``(docs, headers)``: ``docs[first_line] = (last_line, text)`` for every string
    statement (module, class, function and attribute docstrings), and ``headers[line] =
    docstring_first_line`` for the first line (first decorator) of each documented def/class.
    """
    docs: dict[int, tuple[int, str]] = {}
    headers: dict[int, int] = {}
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        for stmt in body:
            if (
                isinstance(stmt, ast.Expr)
                and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)
            ):
                end = stmt.end_lineno if stmt.end_lineno is not None else stmt.lineno
                docs[stmt.lineno] = (end, inspect.cleandoc(stmt.value.value))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and body:
            first = body[0]
            if first.lineno in docs:
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                headers[start] = first.lineno
    return docs, headers


def split_sections(source: str) -> list[Section]:
    """Split ``source`` (a Python module's text) into annotated sections.

    Args:
        source: the file's text.

    Returns:
        The sections in file order; every line of the file is in exactly one of them, as
        prose or as code (blank lines between code lines are kept as code).
    """
    lines = source.splitlines()
    docs, headers = _docstring_spans(ast.parse(source))
    sections = [Section()]
    has_body_code = False  # does the current section hold code other than a header yet?
    in_header_until = 0  # last line of a documented def/class header being read
    comment: list[str] = []
    comment_start = 0
    i = 1
    n = len(lines)

    def new_section() -> None:
        nonlocal has_body_code
        sections.append(Section())
        has_body_code = False

    def flush_comment() -> None:
        nonlocal comment
        if comment:
            end = comment_start + len(comment) - 1
            sections[-1].prose.append(Prose("comment", "\n".join(comment), comment_start, end))
            comment = []

    while i <= n:
        text = lines[i - 1]
        stripped = text.strip()
        if i in headers:
            flush_comment()
            if has_body_code:
                new_section()
            in_header_until = headers[i] - 1
            sections[-1].code.append((i, text))
            i += 1
            continue
        if i <= in_header_until:
            sections[-1].code.append((i, text))
            i += 1
            continue
        if i in docs:
            flush_comment()
            if has_body_code:
                new_section()
            end, doc = docs[i]
            sections[-1].prose.append(Prose("docstring", doc, i, end))
            i = end + 1
            continue
        if stripped.startswith("#") and not stripped.startswith("#!"):
            if sections[-1].code and not comment:  # a comment explains the code after it
                new_section()
            if not comment:
                comment_start = i
            comment.append(stripped[1:].removeprefix(" "))
            i += 1
            continue
        flush_comment()
        if stripped and not stripped.startswith("#!"):
            has_body_code = True
        if stripped or sections[-1].code:
            sections[-1].code.append((i, text))
        i += 1
    flush_comment()
    for section in sections:  # trailing blank lines say nothing
        while section.code and not section.code[-1][1].strip():
            section.code.pop()
    return [s for s in sections if s.prose or s.code]


def definition_lines(source: str) -> dict[str, int]:
    """The line of each def/class in ``source``, by qualified name (``Class.method``).

    Args:
        source: the file's text.

    Returns:
        ``{qualname: line}``, the line of the ``def``/``class`` keyword (not a decorator).
    """
    out: dict[str, int] = {}

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for stmt in body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                out[prefix + stmt.name] = stmt.lineno
                visit(stmt.body, prefix + stmt.name + ".")
            elif isinstance(stmt, ast.Assign | ast.AnnAssign) and not prefix:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for t in targets:
                    if isinstance(t, ast.Name):
                        out.setdefault(t.id, stmt.lineno)

    visit(ast.parse(source).body, "")
    return out
