"""The API reference, generated from each module's public names, and the docstring check.

A module's public names are its ``__all__`` when it has one; otherwise its top-level
functions and classes whose names do not start with ``_`` (a module without ``__all__``
keeps its constants as configuration: they are listed only when documented). Each name is
documented once, in the module that defines it; a package or module that re-exports it
links there.

Every public name must carry a docstring (functions, classes) or, for a constant, an attribute
docstring (a string statement right after the assignment, or a ``#:`` comment before it) or
the comment beside it (a ``#`` block right above the assignment, or a comment at the end of
its line), which the reference then shows. The build stops
with the list of the names that do not, unless it is run with
``-D genjax_allow_missing_docstrings=1`` (a local preview; CI never passes it).
"""

from __future__ import annotations

import ast
import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sphinx.errors import ExtensionError
from sphinx.util import logging

from genjax_docs.annotated import module_file

logger = logging.getLogger(__name__)

PAGE_DIR = "api/generated"
"""Where the generated API pages live, relative to the docs directory (gitignored)."""

_VALUE_CHARS = 80  # a constant's value longer than this is not printed in the reference


@dataclass
class PublicName:
    """One public name of one module.

    Attributes:
        name: the name as the module exports it.
        kind: ``"function"``, ``"class"``, ``"data"``, ``"reexport"``, or ``"absent"`` (in
            ``__all__`` but not an attribute of the module).
        documented: whether it carries a docstring where it is defined.
        origin: for a re-export, the module that defines it.
    """

    name: str
    kind: str
    documented: bool
    origin: str = ""


def _names(targets: list[ast.expr]) -> list[str]:
    """The names an assignment binds (``A = ...``, ``A, B = ...``)."""
    out = []
    for t in targets:
        if isinstance(t, ast.Name):
            out.append(t.id)
        elif isinstance(t, ast.Tuple | ast.List):
            out += [e.id for e in t.elts if isinstance(e, ast.Name)]
    return out


COMMENT_DOCS: dict[str, str] = {}
"""``module.NAME`` -> the comment that documents a constant (filled while pages are written)."""


def _comment_above(lines: list[str], lineno: int) -> str:
    """The block of full-line ``#`` comments right above line ``lineno`` (1-based), as text."""
    block: list[str] = []
    k = lineno - 2
    while k >= 0 and lines[k].strip().startswith("#") and not lines[k].strip().startswith("#:"):
        text = lines[k].strip()[1:].strip()
        if set(text) <= set("-=# "):  # a rule line such as "# ------": not prose
            break
        block.insert(0, text)
        k -= 1
    return " ".join(block)


def _trailing_comment(line: str) -> str:
    """The ``# comment`` at the end of a code line (outside strings), or ``""``."""
    import io
    import tokenize

    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line).readline))
    except (tokenize.TokenError, SyntaxError):
        return ""
    for tok in tokens:
        if tok.type == tokenize.COMMENT:
            return tok.string[1:].strip()
    return ""


def _attribute_docs(tree: ast.Module, lines: list[str]) -> dict[str, tuple[bool, str]]:
    """Top-level assigned names -> (documented, comment text that documents it, if any).

    A constant is documented by a string statement right after its assignment or a ``#:``
    comment before it (both read by autodoc), or else by the comment beside it: the block of
    ``#`` comments right above the assignment, or the comment at the end of its line. The
    comment text is handed to autodoc (:func:`process_data_docstring`), so the reference shows
    what the source says next to the constant.
    """
    out: dict[str, tuple[bool, str]] = {}
    body = tree.body
    for k, stmt in enumerate(body):
        if not isinstance(stmt, ast.Assign | ast.AnnAssign):
            continue
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        nxt = body[k + 1] if k + 1 < len(body) else None
        has_string = (
            isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        )
        has_hash = stmt.lineno >= 2 and lines[stmt.lineno - 2].strip().startswith("#:")
        comment = ""
        if not (has_string or has_hash):
            end = stmt.end_lineno or stmt.lineno
            comment = _comment_above(lines, stmt.lineno) or " ".join(
                c
                for c in (_trailing_comment(lines[n - 1]) for n in range(stmt.lineno, end + 1))
                if c
            )
        for t in _names(targets):
            out[t] = (has_string or has_hash or bool(comment), comment)
    return out


def process_data_docstring(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """``autodoc-process-docstring``: a constant documented by a comment shows the comment.

    Without it autodoc would show nothing, or the docstring of the value's type (``int``'s,
    ``dict``'s) -- text about Python, not about the constant.
    """
    if what not in ("data", "attribute"):
        return
    if name in COMMENT_DOCS:
        from genjax_docs.docstring_text import normalize

        lines[:] = normalize([COMMENT_DOCS[name]])  # plain text, as the docstrings are
    elif (
        lines
        and inspect.getdoc(type(obj))
        and "\n".join(lines).strip() == (inspect.getdoc(type(obj)) or "").strip()
    ):
        lines[:] = []


def _defined(tree: ast.Module) -> dict[str, str]:
    """Names a module defines at top level -> ``"function"``, ``"class"`` or ``"data"``."""
    out: dict[str, str] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            out[stmt.name] = "function"
        elif isinstance(stmt, ast.ClassDef):
            out[stmt.name] = "class"
        elif isinstance(stmt, ast.Assign | ast.AnnAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for t in _names(targets):
                out.setdefault(t, "data")
    return out


def _imported_from(tree: ast.Module, modname: str) -> dict[str, str]:
    """Names a module imports (``from x import y``) -> the module they come from."""
    out: dict[str, str] = {}
    package = modname if module_file(modname).name == "__init__.py" else modname.rsplit(".", 1)[0]
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom):
            base = stmt.module or ""
            if stmt.level:
                parent = package.rsplit(".", stmt.level - 1)[0] if stmt.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            for alias in stmt.names:
                out[alias.asname or alias.name] = base
    return out


def public_names(modname: str) -> list[PublicName]:
    """The public names of ``modname`` with their kind and whether they are documented."""
    mod = importlib.import_module(modname)
    source = module_file(modname).read_text(encoding="utf-8")
    tree = ast.parse(source)
    defined = _defined(tree)
    attr_docs = _attribute_docs(tree, source.splitlines())
    imported = _imported_from(tree, modname)
    has_all = hasattr(mod, "__all__")
    if has_all:
        names = list(mod.__all__)
    else:
        names = [n for n, kind in defined.items() if not n.startswith("_") and kind != "data"]
        names += [n for n, kind in defined.items() if kind == "data" and not n.startswith("_")]
    out = []
    for name in names:
        if not hasattr(mod, name):  # named in __all__ but not there: a broken export
            out.append(PublicName(name, "absent", False))
            continue
        obj = getattr(mod, name)
        if inspect.ismodule(obj):
            continue
        kind = defined.get(name)
        if kind is None:
            origin = getattr(obj, "__module__", None) if callable(obj) else None
            origin = imported.get(name) or origin or ""
            out.append(PublicName(name, "reexport", True, origin))
            continue
        if kind == "data" and (callable(obj) and inspect.getdoc(obj) or inspect.isclass(obj)):
            # f = jax.jit(g) or an alias of a class: documented by its own docstring
            kind = "class" if inspect.isclass(obj) else "function"
            documented = attr_docs.get(name, (False, ""))[0] or bool(_own_doc(obj))
        elif kind == "data":
            documented, comment = attr_docs.get(name, (False, ""))
            if comment:
                COMMENT_DOCS[f"{modname}.{name}"] = comment
            if not has_all and not documented:
                continue  # undocumented configuration of a module without __all__
        else:
            documented = _ast_docstring(tree, name)
        out.append(PublicName(name, kind, documented))
    return out


def _own_doc(obj: Any) -> str | None:
    """A callable's docstring, ``None`` for a class's generated dataclass docstring."""
    doc = getattr(obj, "__doc__", None)
    if inspect.isclass(obj) and doc and doc.startswith(obj.__name__ + "("):
        return None
    return doc


def _ast_docstring(tree: ast.Module, name: str) -> bool:
    """Whether the top-level def/class ``name`` opens with a docstring."""
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if stmt.name == name:
                return bool(ast.get_docstring(stmt))
    return False


def _data_directive(modname: str, name: str) -> list[str]:
    """``autodata`` for a constant; long values are not printed (a grammar, a table)."""
    value = getattr(importlib.import_module(modname), name)
    lines = [f".. autodata:: {modname}.{name}"]
    if len(repr(value)) > _VALUE_CHARS:
        lines.append("   :no-value:")
    return lines


def module_section(modname: str, names: list[PublicName], level: str, annotated: set[str]) -> str:
    """The reStructuredText of one module: its docstring, then each public name."""
    title = modname
    out = [title, level * len(title), "", f".. automodule:: {modname}", ""]
    if modname in annotated:
        out += [f"Annotated source: :src:`{modname}`.", ""]
    reexports = [n for n in names if n.kind == "reexport"]
    for n in names:
        if n.kind == "function":
            out += [f".. autofunction:: {modname}.{n.name}", ""]
        elif n.kind == "class":
            out += [f".. autoclass:: {modname}.{n.name}", "   :members:", ""]
        elif n.kind == "data":
            out += _data_directive(modname, n.name) + [""]
    if reexports:
        links = ", ".join(
            f":py:obj:`{n.name} <{n.origin}.{n.name}>`" if n.origin else f"``{n.name}``"
            for n in reexports
        )
        out += [f"Also exported here: {links}.", ""]
    return "\n".join(out)


def _modules_of(pkg: str, skip: tuple[str, ...]) -> list[str]:
    from genjax_docs import _modules_under

    return [m for m in _modules_under(pkg) if not m.startswith(skip)]


def write_pages(
    app: Any,
    srcdir: Path,
    families: tuple[str, ...],
    shared: tuple[str, ...],
    skip: tuple[str, ...],
    annotated: set[str],
) -> None:
    """Write one API page per family and shared package; stop on undocumented names."""
    out_dir = srcdir / PAGE_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    missing: list[str] = []
    wanted = set()
    pages = [f"genjax.{p}" for p in families + shared] + ["genjax.testing"]
    covered = set()
    for pkg in pages:
        modules = _modules_of(pkg, skip)
        covered.update(modules)
        parts = []
        for k, modname in enumerate(modules):
            names = public_names(modname)
            missing += [f"{modname}.{n.name}" for n in names if not n.documented]
            parts.append(module_section(modname, names, "=" if k == 0 else "-", annotated))
        text = "\n".join(parts)
        file = out_dir / f"{pkg}.rst"
        wanted.add(file.name)
        if not file.exists() or file.read_text(encoding="utf-8") != text:
            file.write_text(text, encoding="utf-8")
    # The remaining top-level modules (checkpoints, plotting, the registry, ...) on one page.
    from genjax_docs import _modules_under

    rest = [m for m in _modules_under("genjax") if m not in covered and not m.startswith(skip)]
    rest = [m for m in rest if m != "genjax" and not any(m.startswith(p + ".") for p in pages)]
    parts = ["Other modules\n=============\n"]
    for modname in rest:
        names = public_names(modname)
        missing += [f"{modname}.{n.name}" for n in names if not n.documented]
        parts.append(module_section(modname, names, "-", annotated))
    text = "\n".join(parts)
    file = out_dir / "genjax.other.rst"
    wanted.add(file.name)
    if not file.exists() or file.read_text(encoding="utf-8") != text:
        file.write_text(text, encoding="utf-8")
    for stale in out_dir.glob("*.rst"):
        if stale.name not in wanted:
            stale.unlink()
    if missing:
        listing = "\n  ".join(missing)
        msg = f"{len(missing)} public names have no docstring:\n  {listing}"
        if app.config.genjax_allow_missing_docstrings:
            logger.warning(msg)
        else:
            raise ExtensionError(msg)


def setup(app: Any) -> None:
    """Register the docstring hook and the value that lets a preview build past missing docs."""
    app.connect("autodoc-process-docstring", process_data_docstring)
    app.add_config_value("genjax_allow_missing_docstrings", False, "env", types=(bool, int))
