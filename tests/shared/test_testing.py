"""Tests for genjax.testing: the tolerance table, oracle comparison, and the calibration
(false-alarm rate) and power of the statistical checks."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from genjax import testing

# ---------------------------------------------------------------------------------------
# Tolerances and oracle comparison
# ---------------------------------------------------------------------------------------


def test_tolerance_table():
    assert testing.tolerance(jnp.float32) == (1e-5, 1e-6)
    assert (
        testing.tolerance(np.float64, "long_loop") == testing.TOLERANCES[("float64", "long_loop")]
    )
    assert (
        testing.tolerance(jnp.zeros(2, jnp.bfloat16))
        == testing.TOLERANCES[("bfloat16", "single_op")]
    )
    assert testing.tolerance(np.int32) == (0.0, 0.0)
    # Looser for lower precision and for long loops, everywhere in the table.
    for kind in ("single_op", "long_loop"):
        rt = [testing.tolerance(d, kind)[0] for d in ("float64", "float32", "float16")]
        assert rt == sorted(rt)
    for d in ("float64", "float32", "float16", "bfloat16"):
        assert testing.tolerance(d, "single_op")[0] < testing.tolerance(d, "long_loop")[0]
    with pytest.raises(ValueError, match="kind"):
        testing.tolerance(np.float32, "loop")


def test_assert_close_to_oracle_uses_the_dtype_of_actual():
    want = np.array([1.0, -2.0, 3.0])
    testing.assert_close_to_oracle(jnp.asarray(want * (1 + 3e-6), jnp.float32), want)
    # 3e-6 relative error is far outside float64's tolerance.
    with pytest.raises(AssertionError, match="float64"):
        testing.assert_close_to_oracle(want * (1 + 3e-6), want)
    with pytest.raises(AssertionError):
        testing.assert_close_to_oracle(jnp.asarray(want * (1 + 1e-4), jnp.float32), want)
    # Wrong sign or all zeros fail.
    with pytest.raises(AssertionError):
        testing.assert_close_to_oracle(jnp.asarray(-want, jnp.float32), want)
    with pytest.raises(AssertionError):
        testing.assert_close_to_oracle(jnp.zeros(3, jnp.float32), want)
    testing.assert_close_to_oracle(
        jnp.asarray(want * (1 + 5e-4), jnp.float32), want, kind="long_loop"
    )


def test_assert_close_to_oracle_checks_shapes_and_pytrees():
    # assert_allclose alone would broadcast (3,) against (1, 3); we do not.
    with pytest.raises(AssertionError, match="shape"):
        testing.assert_close_to_oracle(np.ones(3), np.ones((1, 3)))
    tree = {"a": np.ones(2), "b": (np.zeros(3), np.full(1, 2.0))}
    testing.assert_close_to_oracle(tree, {"a": np.ones(2), "b": (np.zeros(3), np.full(1, 2.0))})
    with pytest.raises(AssertionError, match="my check: leaf 2"):
        testing.assert_close_to_oracle(
            tree, {"a": np.ones(2), "b": (np.zeros(3), np.full(1, 2.1))}, err_msg="my check"
        )
    with pytest.raises(AssertionError, match="leaves"):
        testing.assert_close_to_oracle(tree, [np.ones(2)])


# ---------------------------------------------------------------------------------------
# Distribution functions against SciPy
# ---------------------------------------------------------------------------------------


def test_normal_and_chi_square_functions_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    for z in (-5.0, -1.0, 0.0, 0.5, 3.0, 8.0, 20.0):
        np.testing.assert_allclose(testing.normal_sf(z), stats.norm.sf(z), rtol=1e-12)
    for p in (1e-12, 1e-6, 1.7e-4, 0.025, 0.5, 0.9):
        np.testing.assert_allclose(testing.normal_isf(p), stats.norm.isf(p), rtol=1e-10, atol=1e-14)
    for dof in (1, 2, 3, 7, 30, 150, 1000):
        for q in (0.01, 0.3, 1.0, 2.0, 4.0):
            x = q * dof
            np.testing.assert_allclose(
                testing.chi2_sf(x, dof), stats.chi2.sf(x, dof), rtol=1e-9, atol=1e-300
            )
    with pytest.raises(ValueError, match="p"):
        testing.normal_isf(0.0)
    with pytest.raises(ValueError, match="dof"):
        testing.chi2_sf(1.0, 0)


# ---------------------------------------------------------------------------------------
# moment_ztest
# ---------------------------------------------------------------------------------------


def test_moment_ztest_false_alarm_rate_and_power():
    rng = np.random.default_rng(0)
    mean = np.array([1.0, -2.0, 0.5])
    a = rng.normal(size=(3, 3))
    cov = a @ a.T + 0.5 * np.eye(3)
    chol = np.linalg.cholesky(cov)
    reps, n, alpha = 400, 500, 0.05
    draws = mean + rng.normal(size=(reps, n, 3)) @ chol.T
    rejected = sum(
        not testing.moment_ztest(d, mean, cov, alpha=alpha, raise_on_failure=False).passed
        for d in draws
    )
    # Bonferroni over 3 correlated tests: the rate is at most alpha (about 0.045 here).
    # Binomial(400, 0.05) has mean 20 and sd 4.4; [4, 36] is +-3.6 sd.
    assert 4 <= rejected <= 36, rejected
    # Correct samples pass (returning a truthy result); a mean off by 0.3 of a standard
    # deviation (z ~ 15 at n = 2500) is caught.
    x = mean + rng.normal(size=(2500, 3)) @ chol.T
    result = testing.moment_ztest(x, mean, cov)
    assert result and result.passed and result.num_tests == 3
    assert not testing.moment_ztest(x, mean + 1.0, cov, raise_on_failure=False)
    wrong = mean + np.array([0.0, 0.3 * math.sqrt(cov[1, 1]), 0.0])
    with pytest.raises(AssertionError, match="moment z-test rejected"):
        testing.moment_ztest(x, wrong, cov)
    # The variance check catches a scale error the mean test cannot see.
    scaled = mean + 1.2 * (x - mean)
    testing.moment_ztest(scaled, mean, cov)
    with pytest.raises(AssertionError):
        testing.moment_ztest(scaled, mean, cov, check_variance=True)
    assert testing.moment_ztest(x, mean, cov, check_variance=True).num_tests == 6


def test_moment_ztest_with_effective_sample_size_on_a_markov_chain():
    # AR(1) chains with phi = 0.8 (tau = 9): treating draws as independent understates
    # the standard error by 3x and rejects most of the time; the ESS corrects it.
    rng = np.random.default_rng(1)
    reps, n, phi = 60, 3000, 0.8
    noise = rng.normal(size=(n, reps)) * math.sqrt(1 - phi**2)  # stationary variance 1
    chains = np.zeros((n, reps))
    chains[0] = rng.normal(size=reps)
    for t in range(1, n):
        chains[t] = phi * chains[t - 1] + noise[t]
    naive = corrected = 0
    for j in range(reps):
        c = chains[:, j : j + 1]
        naive += not testing.moment_ztest(
            c, [0.0], [[1.0]], alpha=0.05, raise_on_failure=False
        ).passed
        ess = testing.effective_sample_size(c)
        corrected += not testing.moment_ztest(
            c, [0.0], [[1.0]], alpha=0.05, ess=ess, raise_on_failure=False
        ).passed
    # Naive: P(|N(0, 9)| > 1.96) = 0.51; corrected: about 0.05 (+ ESS noise).
    assert naive >= 18, naive
    assert corrected <= 10, corrected


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"samples": np.zeros((1, 2))}, "samples"),
        ({"mean": np.zeros(3)}, "mean"),
        ({"cov": np.eye(3)}, "cov"),
        ({"cov": -np.eye(2)}, "cov"),
        ({"alpha": 0.0}, "alpha"),
        ({"ess": -1.0}, "ess"),
    ],
)
def test_moment_ztest_bad_arguments(kwargs, name):
    args = {"samples": np.zeros((10, 2)), "mean": np.zeros(2), "cov": np.eye(2)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        testing.moment_ztest(args.pop("samples"), args.pop("mean"), args.pop("cov"), **args)


# ---------------------------------------------------------------------------------------
# chi_square_test
# ---------------------------------------------------------------------------------------


def test_chi_square_false_alarm_rate_and_power():
    rng = np.random.default_rng(2)
    probs = np.array([0.4, 0.25, 0.15, 0.1, 0.06, 0.03, 0.01])
    reps, n, alpha = 400, 300, 0.05
    rejected = 0
    for _ in range(reps):
        counts = rng.multinomial(n, probs)
        rejected += not testing.chi_square_test(
            counts, probs, alpha=alpha, raise_on_failure=False
        ).passed
    # The pooled test is calibrated: Binomial(400, 0.05) -> [4, 36] is +-3.6 sd.
    assert 4 <= rejected <= 36, rejected
    counts = rng.multinomial(5000, probs)
    assert testing.chi_square_test(counts, probs).passed
    tilted = probs * np.array([1.1, 1.0, 1.0, 0.9, 0.9, 0.9, 0.9])
    with pytest.raises(AssertionError, match="chi-square test rejected"):
        testing.chi_square_test(rng.multinomial(5000, tilted / tilted.sum()), probs)


def test_chi_square_pooling_and_statistic():
    stats = pytest.importorskip("scipy.stats")
    probs = np.array([0.5, 0.3, 0.1, 0.05, 0.03, 0.015, 0.005])
    counts = np.array([52, 28, 11, 4, 3, 2, 0])  # N = 100: last four expected < 5
    res = testing.chi_square_test(counts, probs, raise_on_failure=False)
    # Pooling from the smallest: {0.5, 1.5, 3} reaches 5 -> one cell; then 5, 10, 30, 50.
    assert res.num_cells == 5 and res.dof == 4
    obs = np.array([0 + 2 + 3, 4, 11, 28, 52])
    exp = np.array([0.5 + 1.5 + 3.0, 5.0, 10.0, 30.0, 50.0])
    want = stats.chisquare(obs, exp)
    np.testing.assert_allclose(res.statistic, want.statistic, rtol=1e-12)
    np.testing.assert_allclose(res.p_value, want.pvalue, rtol=1e-9)
    # A count in a zero-probability cell is impossible.
    with pytest.raises(AssertionError, match="zero-probability"):
        testing.chi_square_test([3, 1, 1], [0.5, 0.5, 0.0])
    # Zero-probability cells with zero counts are dropped.
    assert testing.chi_square_test([50, 50, 0], [0.5, 0.5, 0.0]).dof == 1


@pytest.mark.parametrize(
    "counts, probs, name",
    [
        ([1, 2], [0.5, 0.6], "probs"),
        ([1, -2], [0.5, 0.5], "counts"),
        ([1.5, 2], [0.5, 0.5], "counts"),
        ([1, 2, 3], [0.5, 0.5], "probs"),
        ([3], [1.0], "counts"),
        ([1, 2], [0.5, 0.5], "too few"),
    ],
)
def test_chi_square_bad_arguments(counts, probs, name):
    with pytest.raises(ValueError, match=name):
        testing.chi_square_test(counts, probs)


# ---------------------------------------------------------------------------------------
# effective_sample_size
# ---------------------------------------------------------------------------------------


def test_effective_sample_size():
    rng = np.random.default_rng(3)
    n = 20_000
    iid = rng.normal(size=(n, 2))
    ess = testing.effective_sample_size(iid)
    assert ess.shape == (2,)
    # Independent draws: tau = 1 (estimation error a few percent at n = 2e4).
    np.testing.assert_allclose(ess, n, rtol=0.1)
    # AR(1): tau = (1 + phi) / (1 - phi).
    for phi in (0.5, 0.9):
        e = rng.normal(size=n)
        x = np.empty(n)
        x[0] = e[0]
        for t in range(1, n):
            x[t] = phi * x[t - 1] + e[t]
        np.testing.assert_allclose(
            testing.effective_sample_size(x), n * (1 - phi) / (1 + phi), rtol=0.2
        )
    # Antithetic (phi < 0) chains carry more information than independent draws.
    assert (
        testing.effective_sample_size(np.tile([1.0, -1.0], 50) + 0.01 * rng.normal(size=100)) > 100
    )
    # A stuck chain carries one draw.
    assert testing.effective_sample_size(np.ones(50)) == 1.0
    with pytest.raises(ValueError, match="chain"):
        testing.effective_sample_size(np.ones(3))
    with pytest.raises(ValueError, match="chain"):
        testing.effective_sample_size(np.ones((5, 2, 2)))


# ---------------------------------------------------------------------------------------
# The shared oracles are independent of JAX
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["oracle_targets", "oracle_metrics"])
def test_shared_oracles_import_only_numpy_and_the_standard_library(module):
    import ast
    import importlib
    import sys

    path = importlib.import_module(f"genjax.{module}").__file__
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            roots.add((node.module or "").split(".")[0])
    allowed = {"numpy", "__future__"} | set(sys.stdlib_module_names)
    assert roots <= allowed, roots - allowed
