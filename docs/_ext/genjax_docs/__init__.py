"""Sphinx extension of the genjax site: every page about the code is generated from the code.

* :mod:`genjax_docs.public_api` -- the API reference, one page per package, from each
  module's public names; a public name without a docstring stops the build;
* :mod:`genjax_docs.annotated` -- the labml-style annotated source pages and the ``src`` /
  ``srcline`` roles that link an equation to the line computing it;
* :mod:`genjax_docs.generated_tables` -- the benchmark tables (from
  ``benchmarks/results/*.json``) and the recipe list (from the registry, with pictures).

Generated pages are written under ``docs/*/generated/`` (gitignored) when the builder starts.
The Sphinx-facing submodules are imported by :func:`setup`, so the pure-text ones
(:mod:`genjax_docs.sections`, :mod:`genjax_docs.docstring_text`) import without Sphinx (the
test suite, which does not install the docs extra, tests them).
"""

from __future__ import annotations

import pkgutil
from pathlib import Path
from typing import Any

from genjax import FAMILIES  # the one list, in the order of the site's navigation

SHARED = ("targets", "nn", "metrics", "ode", "data", "model", "checks", "gaussian", "train")
"""Shared packages and modules with their own API page (after the families)."""

NOT_DOCUMENTED = ("genjax.cli", "genjax.bench", "genjax.__main__")
"""Modules left out of the reference: the command line and the benchmark suites (tools)."""


def _modules_under(name: str) -> list[str]:
    """``name`` and, for a package, every non-private module below it, sorted."""
    import importlib

    mod = importlib.import_module(name)
    out = [name]
    if hasattr(mod, "__path__"):
        for info in pkgutil.walk_packages(mod.__path__, name + "."):
            if not any(part.startswith("_") for part in info.name.split(".")):
                out.append(info.name)
    return sorted(out)


def annotated_modules() -> list[str]:
    """The modules that get an annotated source page.

    Every module of every family and of ``genjax.targets``, plus the shared numerics the
    families build on (``ode``, ``gaussian``, ``metrics``); package ``__init__`` files are
    indexes, not implementations, so they are left out.
    """
    out = []
    for pkg in [f"genjax.{f}" for f in FAMILIES] + ["genjax.targets"]:
        out += [m for m in _modules_under(pkg) if m != pkg and not _is_package(m)]
    out += ["genjax.ode", "genjax.ode_tableaus", "genjax.gaussian", "genjax.metrics"]
    return out


def _is_package(modname: str) -> bool:
    import importlib.util

    spec = importlib.util.find_spec(modname)
    return spec is not None and spec.origin is not None and spec.origin.endswith("__init__.py")


def _on_builder_inited(app: Any) -> None:
    from genjax_docs import annotated, public_api

    srcdir = Path(app.srcdir)
    modules = annotated_modules()
    app.config.genjax_annotated_modules_resolved = set(modules)
    annotated.write_pages(srcdir, modules)
    public_api.write_pages(app, srcdir, FAMILIES, SHARED, NOT_DOCUMENTED, set(modules))


def setup(app: Any) -> dict[str, Any]:
    """Register the parts of the extension."""
    from genjax_docs import annotated, docstring_text, generated_tables, public_api

    app.add_config_value("genjax_annotated_modules_resolved", set(), "env")
    annotated.setup(app)
    generated_tables.setup(app)
    public_api.setup(app)
    app.connect("builder-inited", _on_builder_inited)
    # before napoleon's own handler (priority 500), which must see the normalised text
    app.connect("autodoc-process-docstring", docstring_text.process_docstring, priority=400)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
