"""The documentation extension's text processing (docs/_ext/genjax_docs), without Sphinx.

The annotated source pages and the docstring normaliser run on every module at build time;
these tests pin what they promise: every source line lands in exactly one place, a docstring
stands beside its own signature, and plain-text math in a docstring survives reST.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs" / "_ext"))

from genjax_docs.docstring_text import normalize  # noqa: E402
from genjax_docs.sections import definition_lines, split_sections  # noqa: E402

SOURCE = '''"""Module docstring: the paper."""

import math

# The constant of eq. 3.
C = 2.0  # eq. 3


@staticmethod
def f(x):
    """Return 2x.

    Args:
      x: a number.
    """
    # eq. 4: y = C x
    y = C * x  # eq. 4
    return y


class K:
    """A class."""

    def g(self):
        return 1
'''


def test_every_line_lands_once_in_order() -> None:
    sections = split_sections(SOURCE)
    code = [n for s in sections for n, _ in s.code]
    assert code == sorted(code) and len(code) == len(set(code))
    comments = {b.line for s in sections for b in s.prose if b.kind == "comment"}
    docstrings = set()
    for node in ast.walk(ast.parse(SOURCE)):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            docstrings.update(range(node.lineno, node.end_lineno + 1))
    lines = SOURCE.splitlines()
    for number, line in enumerate(lines, start=1):
        if line.strip():
            places = [number in code, number in comments, number in docstrings]
            assert sum(places) == 1, (number, line)


def test_docstring_beside_its_signature_and_comments_split_sections() -> None:
    sections = split_sections(SOURCE)
    by_doc = {b.text.splitlines()[0]: s for s in sections for b in s.prose}
    f_section = by_doc["Return 2x."]
    code = [t for _, t in f_section.code]
    assert code[0] == "@staticmethod" and code[1] == "def f(x):"  # header with its docstring
    assert "y = C * x" not in "\n".join(code)  # the comment opens a new section
    y_section = by_doc["eq. 4: y = C x"]
    assert [t.strip() for _, t in y_section.code] == ["y = C * x  # eq. 4", "return y"]
    assert by_doc["The constant of eq. 3."].code == [(6, "C = 2.0  # eq. 3")]


def test_definition_lines() -> None:
    lines = definition_lines(SOURCE)
    assert SOURCE.splitlines()[lines["f"] - 1] == "def f(x):"
    assert SOURCE.splitlines()[lines["K.g"] - 1].strip() == "def g(self):"
    assert lines["C"] == 6


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("p(x|z) and |x|", r"p(x\|z) and \|x\|"),
        ("grad of *shape and x_l_ here", r"grad of \*shape and x_l\_ here"),
        ("**bold** and *emph* stay", "**bold** and *emph* stay"),
        ("a * b stays, ``|x|`` and :func:`f_` too", "a * b stays, ``|x|`` and :func:`f_` too"),
    ],
)
def test_plain_text_math_is_escaped(line: str, expected: str) -> None:
    assert normalize([line]) == [expected]


def test_hand_aligned_equations_become_literal_blocks() -> None:
    lines = ["Ho et al. give", "", "    q(x_t | x_0) = N(a x_0, s^2 I)", "", "after."]
    out = normalize(lines)
    assert out[0] == "Ho et al. give ::"
    assert out[2] == "    q(x_t | x_0) = N(a x_0, s^2 I)"  # literal: nothing escaped
    assert normalize(["The step:", "", "    x' = x + h f(x)"])[0] == "The step::"


def test_google_sections_and_doctests_untouched() -> None:
    lines = ["Args:", "", "      x: (batch,) the |input|.", "", ">>> abs(-1) | 0", "1"]
    out = normalize(lines)
    assert out[0] == "Args:"
    assert not out[2].endswith("::") and out[4:] == [">>> abs(-1) | 0", "1"]


def test_references_hanging_indent_joined() -> None:
    lines = ["References:", "  Ho et al. (2020), a long", "    title.", "  Song (2021)."]
    assert normalize(lines)[1:] == ["  Ho et al. (2020), a long title.", "  Song (2021)."]
