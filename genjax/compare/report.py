"""``compare.md`` and ``compare.json``: the measured trade-off table of ``genjax compare``.

The columns follow the surveys' table, each a measurement: quality (mean ± standard
deviation over seeds; lower is better, with the real-vs-real floor above the table),
diversity (modes or classes covered, and the KL of their occupancy from uniform),
stability (the seeds that diverged or collapsed), likelihood (held-out mean
log-likelihood, labelled exact / bound / ODE, with what it is a density over), speed
(samples per second at the table's batch with compilation apart, the compile time, and
network evaluations per sample) and the training steps that fit in the budget.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from genjax.compare.figures import quality_name

__all__ = ["write", "markdown", "jsonable"]


def jsonable(result: dict) -> dict:
    """``result`` without the sample arrays (those go to ``sheet.png``)."""
    rows = [{k: v for k, v in row.items() if k != "sheet_samples"} for row in result["rows"]]
    return {**result, "rows": rows}


def _pm(spread: dict, digits: int = 3) -> str:
    mean, std = spread["mean"], spread["std"]
    if not math.isfinite(mean):
        return "nan"
    return f"{mean:.{digits}g} ± {std:.2g}" if len(spread["per_seed"]) > 1 else f"{mean:.{digits}g}"


def _likelihood(row: dict) -> str:
    lik = row["likelihood"]
    if lik["kind"] == "none":
        return f"none: {lik['reason']}"
    nats = lik["log_likelihood_nats"]["mean"]
    if lik["representation"] == "2-D points":
        return f"{nats:.3f} nats, {lik['kind']}"
    return f"{lik['bits_per_dim']['mean']:.3f} bits/dim, {lik['kind']}, {lik['representation']}"


def _row(row: dict) -> str:
    if row["status"] != "ok":
        return (
            f"| {row['family']} | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | "
            f"n/a: {row['reason']} |"
        )
    speed, training = row["speed"], row["training"]
    bad = sum(a or b for a, b in zip(row["diverged"], row["collapsed"], strict=True))
    steps = "/".join(str(s) for s in training["steps"])
    return (
        f"| {row['family']} | {row['recipe']} · {row['sampler']} | {_pm(row['quality'])} | "
        f"{_pm(row['coverage'], 2)} | {_pm(row['occupancy_kl'], 2)} | "
        f"{bad}/{len(row['diverged'])} | {_likelihood(row)} | "
        f"{speed['samples_per_second']:,.0f} | {speed['evals_per_sample']} | "
        f"{steps} steps, compile {speed['compile_seconds']:.1f} s |"
    )


def markdown(result: dict) -> str:
    """The table and its legend as markdown."""
    ref = result["reference"]
    unit = "modes" if result["data"] == "ring" else "classes"
    lines = [
        f"# genjax compare --data {result['data']}",
        "",
        f"{result['seeds']} seed(s) per family, {result['budget_seconds']:g} s of training "
        f"per family and seed (after the first step), {result['num_samples']} samples per "
        f"sampler and seed. Machine: {result['machine']['platform']}, "
        f"{result['machine']['cpus']} CPUs, JAX {result['machine']['jax']} "
        f"({result['machine']['backend']}), load average at the end "
        f"{result['machine']['load_average']}; whole run {result['wall_seconds']:.0f} s.",
        "",
        f"Quality: {quality_name(result['data'])} (lower is better); real training data "
        f"against the test split gives **{ref['quality']:.3g}** (coverage "
        f"{ref['coverage']:.2f}, occupancy KL {ref['occupancy_kl']:.3f}).",
    ]
    if "true_log_likelihood" in ref:
        lines.append(
            f"True density of the held-out points: **{ref['true_log_likelihood']:.3f} "
            "nats** per point (the ceiling of every exact likelihood below)."
        )
    lines += [
        "",
        f"| family | recipe · sampler | quality ↓ | {unit} covered | occupancy KL ↓ | "
        "diverged or collapsed seeds | held-out log-likelihood | samples/s | "
        "evals/sample | training in budget, sampler compile |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *(_row(row) for row in result["rows"]),
        "",
        "Notes:",
    ]
    seen = set()
    for row in result["rows"]:
        if row["note"] and row["family"] not in seen:
            seen.add(row["family"])
            lines.append(f"- {row['family']} ({row['recipe']}): {row['note']}.")
    lines += [
        f"- covered: the fraction of the {unit} "
        + (
            "with a sample within 3 std of their mean"
            if unit == "modes"
            else "receiving at least 2% of the samples (the real-digit classifier's verdict)"
        )
        + "; a seed that covers at most half of them counts as collapsed, one with non-finite "
        "samples or loss as diverged.",
        "- evals/sample: sequential network evaluations per sample (0: closed form).",
        "",
    ]
    return "\n".join(lines)


def write(result: dict, out_dir: Path) -> None:
    """Writes ``compare.md`` and ``compare.json`` into ``out_dir``."""
    out_dir = Path(out_dir)
    (out_dir / "compare.md").write_text(markdown(result), "utf-8")
    (out_dir / "compare.json").write_text(json.dumps(jsonable(result), indent=1) + "\n", "utf-8")
