"""Pages generated from data at build time: the benchmark tables and the recipe list.

``{genjax-benchmarks}`` renders every ``benchmarks/results/*.json`` (the files
``python -m genjax.bench <suite>`` writes) as Markdown tables, one section per suite, through
``genjax.bench.report.markdown_tables`` (the README's renderer, so the site and the README
show the same tables); a fallback renders them if that module is absent. A picture committed
beside the results (``benchmarks/results/<suite>*.png``) is shown under its suite.

``{genjax-recipes}`` lists what ``genjax list`` lists (the registry), with each recipe's
committed picture ``docs/_static/recipes/<recipe>.png`` where one exists.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parents[3]
RESULTS = ROOT / "benchmarks" / "results"
RECIPE_PICTURES = ROOT / "docs" / "_static" / "recipes"


def _cell(value: Any) -> str:
    """One table cell: numbers to 3 significant figures, text with ``|`` escaped."""
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    return str(value).replace("|", "\\|").replace("\n", " ")


def fallback_markdown(result: dict) -> str:
    """A suite's rows as one Markdown table (case, implementation, compile, run, extras)."""
    rows = result.get("rows", [])
    out = [
        "| case | implementation | compile (s) | run (s) | details |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for row in rows:
        out.append(
            f"| {_cell(row.get('case', ''))} | {_cell(row.get('impl', ''))} "
            f"| {_cell(row.get('compile_s', ''))} | {_cell(row.get('run_s', ''))} "
            f"| {_cell(row.get('extra', {}))} |"
        )
    return "\n".join(out)


def benchmarks_markdown(results_dir: Path, page_dir: Path) -> str:
    """The whole benchmark page body (Markdown) from the JSON files in ``results_dir``.

    ``genjax.bench.report.markdown_tables`` -- the README's renderer -- when it exists, so the
    site and the README show the same tables (its ``####`` suite headings become ``##``
    under the page title); otherwise :func:`fallback_markdown` per suite.
    """
    images = os.path.relpath(results_dir, page_dir)
    try:
        report = importlib.import_module("genjax.bench.report")
    except ModuleNotFoundError:
        report = None
    if report is not None and hasattr(report, "markdown_tables"):
        if not any(results_dir.glob("*.json")):
            return "No results are committed in `benchmarks/results/` yet."
        text = report.markdown_tables(results_dir, images=images)
        return re.sub(r"^#### ", "## ", text, flags=re.M)
    parts = []
    for path in sorted(results_dir.glob("*.json")):
        result = json.loads(path.read_text(encoding="utf-8"))
        suite = result.get("suite", path.stem)
        machine = result.get("machine", {})
        parts += [
            f"## {suite}",
            "",
            f"Measured {result.get('measured', '?')} on {machine.get('cpu_count', '?')} CPU "
            f"cores ({machine.get('cpu_model', machine.get('processor', '?'))}), "
            f"Python {machine.get('python', '?')}, JAX {machine.get('jax', '?')}; "
            f"from `benchmarks/results/{path.name}`.",
            "",
        ]
        if result.get("notes"):
            parts += [_cell(result["notes"]), ""]
        parts += [fallback_markdown(result), ""]
        for picture in sorted(results_dir.glob(f"{path.stem}*.png")):
            parts += [f"![{picture.stem}]({images}/{picture.name})", ""]
    if not parts:
        parts = ["No results are committed in `benchmarks/results/` yet."]
    return "\n".join(parts)


def recipes_markdown(page_dir: Path) -> str:
    """The recipe table (Markdown) from the registry, pictures where committed."""
    from genjax import registry

    table = registry.recipes()
    out = [
        "| recipe | family | what it trains | data | steps |",
        "| --- | --- | --- | --- | ---: |",
    ]
    for name, recipe in table.items():
        out.append(
            f"| `{name}` | {recipe.family} | {_cell(recipe.summary)} | `{recipe.data}` "
            f"| {recipe.steps} |"
        )
    pictures = [(n, RECIPE_PICTURES / f"{n}.png") for n in table]
    pictures = [(n, p) for n, p in pictures if p.exists()]
    out += ["", f"{len(table)} recipes; {len(pictures)} with a committed picture.", ""]
    for name, picture in pictures:
        rel = os.path.relpath(picture, page_dir)
        out += [f"### `{name}`", "", f"![samples of {name}]({rel})", ""]
    return "\n".join(out)


class _MarkdownDirective(SphinxDirective):
    """A directive whose body is Markdown generated at build time (parsed by MyST)."""

    has_content = False

    def markdown(self, page_dir: Path) -> str:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        page_dir = Path(self.env.doc2path(self.env.docname)).parent
        text = self.markdown(page_dir)
        holder = nodes.container(classes=["genjax-generated"])
        self.state.nested_parse(StringList(text.splitlines(), source=self.env.docname), 0, holder)
        return holder.children


class BenchmarkTables(_MarkdownDirective):
    """``{genjax-benchmarks}``: every suite of ``benchmarks/results/`` as a table."""

    def markdown(self, page_dir: Path) -> str:
        for path in RESULTS.glob("*"):
            self.env.note_dependency(str(path))
        return benchmarks_markdown(RESULTS, page_dir)


class RecipeList(_MarkdownDirective):
    """``{genjax-recipes}``: the registry's recipes, with committed pictures."""

    def markdown(self, page_dir: Path) -> str:
        return recipes_markdown(page_dir)


def setup(app: Any) -> None:
    """Register the two directives."""
    app.add_directive("genjax-benchmarks", BenchmarkTables)
    app.add_directive("genjax-recipes", RecipeList)
