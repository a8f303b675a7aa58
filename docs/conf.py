"""Sphinx configuration of the genjax documentation site.

Build (from the repository root; warnings are errors)::

    pip install -e ".[docs]" && sphinx-build -W --keep-going -j auto -b html docs docs/_build/html

Everything the site shows about the code is generated from the code at build time by the
extension in ``docs/_ext/genjax_docs`` (API reference from each module's public names, the
annotated source pages, the benchmark tables, the recipe list), so no page can drift from
the source. Nothing is fetched from the network: MathJax is vendored under
``docs/_static/mathjax`` and there is no intersphinx.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

project = "genjax"
author = "the genjax authors"
copyright = "2026, the genjax authors"  # noqa: A001 (Sphinx's configuration name)

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "genjax_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "examples/*.md", "**/.ipynb_checkpoints"]
templates_path: list[str] = []

# MyST: $...$ and $$...$$ become math nodes (dollarmath), \begin{align} blocks too (amsmath);
# (label)= targets and ::: fences for the family pages.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "attrs_inline"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# Google-style docstrings (STYLE.md) through napoleon; the argument shapes stay in the text.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # Attributes: as fields, not as attribute entries autodoc repeats
autodoc_member_order = "bysource"
autodoc_typehints = "signature"

# MathJax 3, vendored (one file with every TeX extension and the SVG fonts inside it), so
# the site renders its mathematics with no network. Relative paths are resolved against
# _static/ of the built site.
mathjax_path = "mathjax/tex-svg-full.js"
mathjax3_config = {"svg": {"fontCache": "global"}}

# Unqualified names in signatures (a type alias such as ``PyTree`` that two modules define)
# may match several documented objects; Sphinx then links the first and warns. The link is
# still right (the aliases are the same type), so that one warning class is not an error.
suppress_warnings = ["ref.python"]

html_theme = "furo"
html_title = "genjax"
html_static_path = ["_static"]
html_css_files = ["genjax.css"]
html_theme_options = {"sidebar_hide_name": False}
html_show_sourcelink = False
