"""Annotated source pages (labml style): prose beside the code it explains.

``.. annotated-source:: genjax.diffusion.ddpm`` reads the module's file when the site is
built, splits it into sections (:mod:`genjax_docs.sections`) and renders each as two columns:
the docstrings (reStructuredText, Google style through napoleon, math rendered) and the
full-line comments (plain text, ``$...$`` rendered as math) on the left; the code, highlighted,
with the file's own line numbers, on the right. Each code line is the anchor ``#L<n>``.

Two roles link into these pages from any page (a family page's equation to its line):

* ``{src}`genjax.diffusion.ddpm``` -- the module's annotated page;
  ``{src}`genjax.diffusion.ddpm:ddpm_step``` -- the line of that def/class
  (``Class.method`` works; so does a module-level constant);
* ``{srcline}`genjax.diffusion.ddpm:c_x0 = ``` -- the first line of the module whose text
  contains ``c_x0 =`` (the text after the first colon, matched literally).

Both take an explicit title as ``{src}`title <target>```. A target that does not exist (module
not annotated, name or text not found) is a warning, so the ``-W`` build fails: a link cannot
silently point at a line that moved or vanished.
"""

from __future__ import annotations

import html
import importlib.util
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList
from pygments.lexers import PythonLexer
from pygments.token import STANDARD_TYPES
from sphinx.ext.napoleon import Config as NapoleonConfig
from sphinx.ext.napoleon.docstring import GoogleDocstring
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from genjax_docs.docstring_text import normalize
from genjax_docs.sections import definition_lines, split_sections

logger = logging.getLogger(__name__)

PAGE_DIR = "annotated/generated"
"""Where the generated annotated pages live, relative to the docs directory (gitignored)."""

_MATH = re.compile(r"\$([^$\n]+)\$")
_OBJECT_DIRECTIVE = re.compile(r"^(\s*)\.\. (?:py:)?(?:method|attribute|function|class|data)::")
_EXPLICIT = re.compile(r"^(.*?)\s*<([^<>]+)>$", re.S)


def module_file(modname: str) -> Path:
    """The source file of ``modname``, found without importing it.

    Raises:
        ValueError: if no such module exists.
    """
    spec = importlib.util.find_spec(modname)
    if spec is None or spec.origin is None:
        raise ValueError(f"no module named {modname!r}")
    return Path(spec.origin)


def page_name(modname: str) -> str:
    """The docname of the annotated page of ``modname``."""
    return f"{PAGE_DIR}/{modname}"


def _css_class(ttype: Any) -> str:
    """Pygments' short CSS class of a token type (walking up to a known parent)."""
    while ttype not in STANDARD_TYPES:
        ttype = ttype.parent
    return STANDARD_TYPES[ttype]


def highlight_lines(source: str) -> list[str]:
    """The file highlighted as HTML, one string per line (spans never cross a line)."""
    out: list[list[str]] = [[]]
    for ttype, value in PythonLexer(stripnl=False, ensurenl=False).get_tokens(source):
        cls = _css_class(ttype)
        for k, piece in enumerate(value.split("\n")):
            if k:
                out.append([])
            if piece:
                text = html.escape(piece)
                out[-1].append(f'<span class="{cls}">{text}</span>' if cls else text)
    return ["".join(parts) for parts in out]


def _comment_nodes(text: str) -> list[nodes.Node]:
    """A comment block as paragraphs; ``$...$`` becomes inline math."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        para = nodes.paragraph(classes=["annotated-comment"])
        pos = 0
        for m in _MATH.finditer(block):
            para += nodes.Text(block[pos : m.start()])
            para += nodes.math(m.group(1), m.group(1))
            pos = m.end()
        para += nodes.Text(block[pos:])
        paragraphs.append(para)
    return paragraphs


def _no_index(rst: list[str]) -> list[str]:
    """Mark the object descriptions napoleon writes (a ``Methods:`` section) ``:no-index:``.

    The API reference describes each object; the annotated page only shows the docstring,
    so it must not register the object a second time.
    """
    out = []
    for line in rst:
        out.append(line)
        m = _OBJECT_DIRECTIVE.match(line)
        if m:
            out.append(m.group(1) + "   :no-index:")
    return out


class AnnotatedSource(Directive):
    """``.. annotated-source:: module.name`` -- the two-column page of one module."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        env = self.state.document.settings.env
        modname = self.arguments[0]
        path = module_file(modname)
        env.note_dependency(str(path))
        source = path.read_text(encoding="utf-8")
        code_html = highlight_lines(source)
        napoleon = NapoleonConfig(napoleon_use_rtype=False, napoleon_use_ivar=True)
        old_module = env.ref_context.get("py:module")
        env.ref_context["py:module"] = modname  # :func:`x` in a docstring resolves locally
        out: list[nodes.Node] = []
        try:
            for k, section in enumerate(split_sections(source)):
                row = nodes.container(classes=["annotated-section"], ids=[f"section-{k}"])
                prose = nodes.container(classes=["annotated-prose"])
                for block in section.prose:
                    # every line of the prose is an anchor too: a link to a line of a
                    # docstring or comment lands on the text that holds it
                    anchors = "".join(
                        f'<span id="L{n}"></span>' for n in range(block.line, block.end + 1)
                    )
                    prose += nodes.raw("", anchors, format="html")
                    if block.kind == "comment":
                        prose.extend(_comment_nodes(block.text))
                        continue
                    text = "\n".join(normalize(block.text.splitlines()))
                    rst = _no_index(str(GoogleDocstring(text, napoleon)).splitlines())
                    content = StringList(rst, source=f"{path}:{block.line}")
                    holder = nodes.container(classes=["annotated-docstring"])
                    self.state.nested_parse(content, 0, holder)
                    prose += holder
                code_rows = []
                for number, _ in section.code:
                    code_rows.append(
                        f'<span class="annotated-line" id="L{number}">'
                        f'<a class="annotated-lineno" href="#L{number}">{number}</a>'
                        f"{code_html[number - 1]}</span>"
                    )
                code = nodes.raw(
                    "",
                    '<div class="annotated-code highlight"><pre>'
                    + "".join(code_rows)
                    + "</pre></div>",
                    format="html",
                )
                row += prose
                row += code
                out.append(row)
        finally:
            if old_module is None:
                env.ref_context.pop("py:module", None)
            else:
                env.ref_context["py:module"] = old_module
        return out


def _target_line(modname: str, spec: str, literal: bool) -> tuple[int | None, str]:
    """The line a ``src``/``srcline`` target names, and the file's name for the link text."""
    path = module_file(modname)
    source = path.read_text(encoding="utf-8")
    if literal:
        for number, text in enumerate(source.splitlines(), start=1):
            if spec in text:
                return number, path.name
        return None, path.name
    return definition_lines(source).get(spec), path.name


def _make_role(literal: bool) -> Any:
    """The ``src`` role (``literal=False``) or the ``srcline`` role (``literal=True``)."""

    def role(
        name: str,
        rawtext: str,
        text: str,
        lineno: int,
        inliner: Any,
        options: dict | None = None,
        content: list | None = None,
    ) -> tuple[list[nodes.Node], list[nodes.Node]]:
        env = inliner.document.settings.env
        m = _EXPLICIT.match(text)
        title, target = (m.group(1), m.group(2)) if m else (None, text)
        modname, _, spec = target.partition(":")
        modname = modname.strip()
        annotated = env.app.config.genjax_annotated_modules_resolved
        if modname not in annotated:
            msg = f"{name}: {modname!r} has no annotated source page (see genjax_docs config)"
            logger.warning(msg, location=(env.docname, lineno))
            return [nodes.literal(rawtext, text)], []
        anchor = ""
        label = f"{modname.rsplit('.', 1)[-1]}.py"
        if spec:
            number, filename = _target_line(modname, spec if literal else spec.strip(), literal)
            if number is None:
                what = "text" if literal else "def/class/name"
                msg = f"{name}: no {what} {spec!r} in {modname}"
                logger.warning(msg, location=(env.docname, lineno))
                return [nodes.literal(rawtext, text)], []
            env.note_dependency(str(module_file(modname)))
            anchor = f"#L{number}"
            label = f"{filename}:{number}" if literal else f"{spec.strip()} ({filename}:{number})"
        uri = env.app.builder.get_relative_uri(env.docname, page_name(modname)) + anchor
        ref = nodes.reference(rawtext, "", refuri=uri, classes=["annotated-link"])
        ref += nodes.literal(title or label, title or label) if not title else nodes.Text(title)
        return [ref], []

    return role


def write_pages(srcdir: Path, modules: list[str]) -> None:
    """Write one ``.rst`` stub per annotated module under ``PAGE_DIR`` (only if changed)."""
    out = srcdir / PAGE_DIR
    out.mkdir(parents=True, exist_ok=True)
    wanted = set()
    for modname in modules:
        path = module_file(modname)
        rel = path.as_posix().split("/genjax/", 1)[-1]
        title = f"genjax/{rel}"
        # :orphan: -- the pages are listed by {genjax-annotated-index}, not by a toctree: 170
        # entries in every page's navigation would multiply the build time and the page size.
        text = (
            f":orphan:\n\n{title}\n{'=' * len(title)}\n\n"
            f"Annotated source of :mod:`{modname}` (the API reference: :doc:`/api/index`).\n\n"
            f".. annotated-source:: {modname}\n"
        )
        file = out / f"{modname}.rst"
        wanted.add(file.name)
        if not file.exists() or file.read_text(encoding="utf-8") != text:
            file.write_text(text, encoding="utf-8")
    for stale in out.glob("*.rst"):
        if stale.name not in wanted:
            stale.unlink()


class AnnotatedIndex(SphinxDirective):
    """``{genjax-annotated-index}``: links to every annotated page, grouped by package."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        modules = sorted(self.env.app.config.genjax_annotated_modules_resolved)
        lines: list[str] = []
        package = None
        for modname in modules:
            parent = modname.rsplit(".", 1)[0]
            if parent != package:
                package = parent
                lines += ["", f"**{parent}**", ""]
            lines.append(f"- {{doc}}`{modname} </{page_name(modname)}>`")
        holder = nodes.container(classes=["annotated-index"])
        self.state.nested_parse(StringList(lines, source=self.env.docname), 0, holder)
        return holder.children


def setup(app: Any) -> None:
    """Register the directives and the two roles."""
    app.add_directive("annotated-source", AnnotatedSource)
    app.add_directive("genjax-annotated-index", AnnotatedIndex)
    app.add_role("src", _make_role(literal=False))
    app.add_role("srcline", _make_role(literal=True))
