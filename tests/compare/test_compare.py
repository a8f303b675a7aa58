"""``genjax compare``: the table's every column is filled for every trained row, each figure
is the shared metric's value on the same samples, and bad arguments are one line, exit 2.

The end-to-end run trains two families on the ring (mixture: an exact likelihood;
consistency: none, and two samplers of one model) for a few steps each -- every family of both
data sets trains in the committed benchmark runs (``benchmarks/results/compare-*``), which
take minutes; here the wiring of every entry is checked without training."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import cli, data, metrics, registry, targets
from genjax.compare import adapters, measure, runner
from genjax.digit_classifier import digit_classifier, frechet_features
from genjax.gan.recipes import ring_quality


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare-ring")
    # a budget of 1 ms: the clock starts after the first step, so two steps per family
    result = runner.compare(
        "ring",
        seeds=1,
        budget=1e-3,
        out_dir=out,
        n=64,
        families=("mixture", "VAE", "consistency"),
        log=lambda s: None,
    )
    return result, out


def test_every_row_has_every_column(ring_run):
    result, out = ring_run
    rows = result["rows"]
    assert [r["family"] for r in rows] == ["mixture", "VAE", "consistency", "consistency"]
    assert [r["sampler"] for r in rows[2:]] == ["CM 1-step", "CM 3-step"]
    vae = rows[1]
    assert vae["status"] == "n/a" and "Bernoulli" in vae["reason"]
    for row in (r for r in rows if r["status"] == "ok"):
        for column in ("quality", "coverage"):
            assert len(row[column]["per_seed"]) == 1 and math.isfinite(row[column]["mean"])
        # The occupancy KL is defined only when some sample lies near a mode: a one-step
        # consistency model after a few steps may hit none, and then it is NaN, never 0.
        kl = row["occupancy_kl"]
        assert len(kl["per_seed"]) == 1
        if row["coverage"]["mean"] > 0:
            assert math.isfinite(kl["mean"]) and kl["mean"] >= 0
        else:
            assert math.isnan(kl["mean"])
        assert row["training"]["steps"][0] >= 2  # the budget clock starts after step 1
        assert row["speed"]["samples_per_second"] > 0 and row["speed"]["compile_seconds"] > 0
        assert row["bad_seed_fraction"] in (0.0, 1.0)
    gmm = rows[0]
    assert gmm["likelihood"]["kind"] == "exact"
    assert rows[2]["likelihood"] == {"kind": "none", "reason": "none (one-step map)"}
    # the EM fit is near the truth after a few steps: within 0.1 nats of the true density
    true_ll = result["reference"]["true_log_likelihood"]
    assert abs(gmm["likelihood"]["log_likelihood_nats"]["mean"] - true_ll) < 0.1
    for name in ("compare.md", "compare.json", "sheet.png", "quality_vs_cost.png"):
        assert (out / name).stat().st_size > 0
    table = (out / "compare.md").read_text()
    assert "| VAE | n/a |" in table and "gmm · GMM (EM)" in table and "CM 3-step" in table
    assert json.loads((out / "compare.json").read_text())["rows"][0]["recipe"] == "gmm"


def test_cells_are_the_shared_metrics_on_the_same_samples(ring_run):
    result, _ = ring_run
    row = result["rows"][0]
    samples = jnp.asarray(row["sheet_samples"])  # seed 0's samples (all 64 of them)
    test = data.load("ring", split="test", seed=0)
    again = measure.ring_figures(samples, test)
    n = samples.shape[0]
    direct = float(metrics.energy_distance(samples, jnp.asarray(test[:n], jnp.float32)))
    assert row["quality"]["mean"] == pytest.approx(direct, rel=1e-5)  # float32 round-off
    assert again["quality"] == pytest.approx(direct, rel=1e-5)
    means = targets.ring().means
    assert row["coverage"]["mean"] == float(metrics.mode_coverage(samples, means, 0.9))
    # reference: real training points against the test split, by the same metric
    train = data.load("ring", split="train", seed=0)[:64]
    assert result["reference"]["quality"] == pytest.approx(
        float(metrics.energy_distance(jnp.asarray(train), jnp.asarray(test[:64], jnp.float32))),
        rel=1e-5,
    )


def test_occupancy_kl_matches_the_gan_reports_and_its_limits():
    key = jax.random.key(3)
    collapsed = targets.ring().means[:1] + 0.1 * jax.random.normal(key, (200, 2))
    spread = targets.ring().sample(key, 800)
    assert measure.ring_figures(collapsed, spread)["occupancy_kl"] == pytest.approx(
        math.log(8)
    )  # every sample in one of 8 modes: log K
    # sampling noise alone: E[KL] ~ (K - 1) / (2 N) = 7 / 1600 ~ 0.004 for N = 800 points
    assert measure.ring_figures(spread, spread)["occupancy_kl"] < 0.01
    assert measure.ring_figures(collapsed, spread)["collapsed"]
    # partial collapse: every mode hit, one holding 1/5 more than its share
    lopsided = jnp.concatenate([collapsed, spread])
    report = ring_quality(lopsided, spread)
    assert 0.05 < report["mode_kl_from_uniform"] < math.log(8)


def test_digit_figures_are_the_classifier_frechet_and_its_class_counts():
    test = data.load("digits", split="test", seed=0)
    train = data.load("digits", split="train", seed=0)[:200]
    clf = digit_classifier(0)
    figures = measure.digit_figures(train, test, clf)
    assert figures["quality"] == pytest.approx(frechet_features(clf, train, test))
    assert sum(figures["class_counts"]) == 200 and figures["coverage"] == 1.0
    zeros = measure.digit_figures(np.zeros((50, 8, 8, 1), np.float32), test, clf)
    assert zeros["collapsed"] and zeros["occupancy_kl"] == pytest.approx(math.log(10))
    nan = measure.digit_figures(np.full((50, 8, 8, 1), np.nan, np.float32), test, clf)
    assert nan["diverged"] and math.isnan(nan["quality"])


@pytest.mark.parametrize("data_name", adapters.DATA_SETS)
def test_every_entry_names_a_registered_recipe_or_says_why_not(data_name):
    known = registry.recipes()
    families = [e.family for e in adapters.entries(data_name)]
    assert families == [
        "mixture",
        "VAE",
        "GAN",
        "flow",
        "flow matching",
        "autoregressive",
        "energy-based",
        "diffusion",
        "consistency",
    ]
    for entry in adapters.entries(data_name):
        if entry.recipe is None:
            assert entry.not_applicable and not entry.samplers
            continue
        recipe = known[entry.recipe]
        assert recipe.data == data_name or data_name == "ring"  # realnvp/maf default: moons
        assert entry.samplers and len({s.label for s in entry.samplers}) == len(entry.samplers)
        assert (entry.likelihood is None) == bool(entry.no_likelihood)


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["compare", "--data", "moons"], "invalid choice: 'moons'"),
        (["compare", "--seeds", "0"], "--seeds must be >= 1, got 0"),
        (["compare", "--budget", "-3"], "--budget must be a finite number > 0, got -3"),
        (["compare", "--budget", "inf"], "--budget must be a finite number > 0, got inf"),
        (["compare", "--budget", "soon"], "--budget must be a number, got 'soon'"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(capsys, argv, needle):
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and needle in err[0], err


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"seeds": 0}, "seeds must be >= 1"),
        ({"budget": 0.0}, "budget must be"),
        ({"budget": math.nan}, "budget must be"),
        ({"n": 1}, "n must be >= 2"),
    ],
)
def test_bad_arguments_of_the_function_name_the_argument(tmp_path, kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        runner.compare("ring", out_dir=tmp_path, **kwargs)
    with pytest.raises(ValueError, match="data must be one of"):
        adapters.entries("moons")
