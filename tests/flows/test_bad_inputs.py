"""Bad and extreme inputs for every public function of the flows family (issue 16).

Discrete flows (builders, :class:`Flow` methods, bijectors, splines), continuous flows
(:mod:`genjax.flows.cnf`), flow matching and the OT pairing. Each :class:`BadInput` names
the argument a call gets wrong; ``assert_handled`` requires a ``ValueError``/``TypeError``
naming it, or a finite, correct answer for a valid extreme. Tiny shapes, a 2-step solver.

Finding 9 of issue 16 (a velocity model returning ``(batch, 1)`` for ``(batch, D)``,
broadcast instead of rejected) is covered by the ``model output (batch, 1)`` cases of
``cnf.log_prob``, ``cnf.sample``, ``flow_matching.loss`` and ``flow_matching.sample_from_noise``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import flows, targets
from genjax.flows import bijectors as bj
from genjax.flows import cnf, divergence, flow_matching, ot
from genjax.testing import BadInput, assert_handled

KEY = jax.random.key(0)
X = jnp.array([[0.5, -0.25], [1.0, 0.0], [-1.0, 2.0], [0.0, 0.0]])  # (4, 2)
FAST = {"num_steps": 2, "method": "euler"}


def _linear(a, x, t):
    return a * x  # (batch, D): the velocity v(x, t) = a x


def _narrow(a, x, t):
    return a * x[:, :1]  # (batch, 1): the mistake of finding 9


FIELD = jax.tree_util.Partial(_linear, jnp.asarray(-0.5))
NARROW = jax.tree_util.Partial(_narrow, jnp.asarray(-0.5))
FLOW = flows.nice(2, num_layers=2, hidden_sizes=(4,))
PARAMS = FLOW.init(KEY)


def _discrete() -> list[BadInput]:
    return [
        BadInput("flow.nice: dim = 0", lambda: flows.nice(0), "dim"),
        BadInput("flow.realnvp: num_layers = 0", lambda: flows.realnvp(2, num_layers=0),
                 "num_layers"),
        BadInput("flow.realnvp: dim = 1 (nothing to couple)", lambda: flows.realnvp(1), "dim"),
        BadInput("flow.maf: hidden_sizes with 0", lambda: flows.maf(2, hidden_sizes=(0,)),
                 "hidden_sizes"),
        BadInput("flow.iaf: scale_clamp < 0", lambda: flows.iaf(2, scale_clamp=-1.0),
                 "scale_clamp"),
        BadInput("flow.neural_spline: num_bins = 0", lambda: flows.neural_spline(2, num_bins=0),
                 "num_bins"),
        BadInput("flow.neural_spline: bound < 0", lambda: flows.neural_spline(2, bound=-1.0),
                 "bound"),
        BadInput("flow.glow: image_shape (8, 8)", lambda: flows.glow((8, 8)), "image_shape"),
        BadInput("flow.glow: odd image side", lambda: flows.glow((7, 7, 1)), "image_shape"),
        BadInput("flow.planar: dim = 0", lambda: flows.planar(0), "dim"),
        BadInput("flow.radial: num_layers = -1", lambda: flows.radial(2, num_layers=-1),
                 "num_layers"),
        BadInput("Flow.log_prob: x of the wrong dimension",
                 lambda: FLOW.log_prob(PARAMS, jnp.ones((4, 3))), "x"),
        BadInput("Flow.forward: z of the wrong dimension",
                 lambda: FLOW.forward(PARAMS, jnp.ones((4, 3))), "z"),
        BadInput("Flow.inverse: x 1-D", lambda: FLOW.inverse(PARAMS, jnp.ones(2)), "x"),
        BadInput("Flow.sample: n = 0", lambda: FLOW.sample(KEY, PARAMS, 0), "n"),
        BadInput("Flow.sample_and_log_prob: n = 2.5",
                 lambda: FLOW.sample_and_log_prob(KEY, PARAMS, 2.5), "n"),
        BadInput("Flow.loss: batch of the wrong dimension",
                 lambda: FLOW.loss(PARAMS, jnp.ones((4, 3)), KEY), "batch"),
        BadInput("Flow.init: data of the wrong dimension",
                 lambda: FLOW.init(KEY, jnp.ones((2, 3))), "data"),
        BadInput("bijectors.Permutation: not a permutation", lambda: bj.Permutation((0, 0)),
                 "perm"),
        BadInput("bijectors.spline_params: last axis not 3K - 1",
                 lambda: bj.spline_params(jnp.zeros((2, 4)), bound=3.0), "unnormalized"),
        BadInput("bijectors.spline_params: bound = 0",
                 lambda: bj.spline_params(jnp.zeros((2, 5 + 3)), bound=0.0), "bound"),
        BadInput("bijectors.rational_quadratic_spline: heights of the wrong shape",
                 lambda: bj.rational_quadratic_spline(
                     jnp.zeros(2), jnp.full((2, 4), 1.5), jnp.full((2, 3), 2.0),
                     jnp.ones((2, 3)), bound=3.0), "heights"),
        BadInput("bijectors.rational_quadratic_spline: negative derivative",
                 lambda: bj.rational_quadratic_spline(
                     jnp.zeros(2), jnp.full((2, 4), 1.5), jnp.full((2, 4), 1.5),
                     -jnp.ones((2, 3)), bound=3.0), "derivatives"),
        BadInput("Flow.log_prob: |x| = 1e4 (valid, far in the tail)",
                 lambda: FLOW.log_prob(PARAMS, jnp.array([[1e4, -1e4]])), kind="extreme"),
    ]


def _continuous() -> list[BadInput]:
    return [
        BadInput("cnf.log_prob: model output (batch, 1)",
                 lambda: cnf.log_prob(NARROW, X, **FAST), "model"),
        BadInput("cnf.forward: model output (batch, 1)",
                 lambda: cnf.forward(NARROW, X, **FAST), "model"),
        BadInput("cnf.inverse: model output (batch, 1), hutchinson",
                 lambda: cnf.inverse(NARROW, X, trace="hutchinson", key=KEY, **FAST), "model"),
        BadInput("cnf.sample: model output (batch, 1)",
                 lambda: cnf.sample(KEY, NARROW, (4, 2), **FAST), "model"),
        BadInput("cnf.sample_from_noise: model output (batch, 1)",
                 lambda: cnf.sample_from_noise(NARROW, X, **FAST), "model"),
        BadInput("cnf.loss: model output (batch, 1)",
                 lambda: cnf.loss(NARROW, X, KEY, **FAST), "model"),
        BadInput("cnf.sample_and_log_prob: model output (batch, 1)",
                 lambda: cnf.sample_and_log_prob(KEY, NARROW, (4, 2), **FAST), "model"),
        BadInput("cnf.log_prob: x 1-D", lambda: cnf.log_prob(FIELD, jnp.ones(2), **FAST), "x"),
        BadInput("cnf.log_prob: integer x",
                 lambda: cnf.log_prob(FIELD, jnp.ones((2, 2), jnp.int32), **FAST), "x"),
        BadInput("cnf.log_prob: t0 > t1",
                 lambda: cnf.log_prob(FIELD, X, t0=1.0, t1=0.0, **FAST), "t0"),
        BadInput("cnf.log_prob: method 'midpoint'",
                 lambda: cnf.log_prob(FIELD, X, num_steps=2, method="midpoint"), "method"),
        BadInput("cnf.log_prob: num_steps = 0",
                 lambda: cnf.log_prob(FIELD, X, num_steps=0), "num_steps"),
        BadInput("cnf.log_prob: trace 'exakt'",
                 lambda: cnf.log_prob(FIELD, X, trace="exakt", **FAST), "trace"),
        BadInput("cnf.log_prob: num_probes = 0",
                 lambda: cnf.log_prob(FIELD, X, trace="hutchinson", key=KEY, num_probes=0,
                                      **FAST), "num_probes"),
        BadInput("cnf.sample: shape (0, 2)",
                 lambda: cnf.sample(KEY, FIELD, (0, 2), **FAST), "shape"),
        BadInput("cnf.sample_from_noise: z 3-D",
                 lambda: cnf.sample_from_noise(FIELD, jnp.ones((2, 2, 2)), **FAST), "z"),
        BadInput("cnf.augmented_field: trace 'exakt'",
                 lambda: cnf.augmented_field(FIELD, trace="exakt"), "trace"),
        BadInput("cnf.mlp_field: dim = 0", lambda: cnf.mlp_field(KEY, 0, (4,)), "dim"),
        BadInput("divergence.draw_probes: probe 'uniform'",
                 lambda: divergence.draw_probes(KEY, (4, 2), probe="uniform"), "probe"),
        BadInput("divergence.draw_probes: num_probes = 0",
                 lambda: divergence.draw_probes(KEY, (4, 2), num_probes=0), "num_probes"),
        BadInput("divergence.trace_exact: fn output (batch, 1)",
                 lambda: divergence.trace_exact(lambda x: x[:, :1], X), "fn"),
        BadInput("divergence.trace_hutchinson: probes of the wrong shape",
                 lambda: divergence.trace_hutchinson(lambda x: x, X, jnp.ones((1, 4, 3))),
                 "probes"),
        BadInput("cnf.log_prob: |x| = 1e3 (valid, far in the tail)",
                 lambda: cnf.log_prob(FIELD, jnp.array([[1e3, -1e3]]), **FAST), kind="extreme"),
    ]


def _matching() -> list[BadInput]:
    fm = flow_matching
    t4 = jnp.full((4,), 0.5)
    return [
        BadInput("flow_matching.loss: model output (batch, 1)",
                 lambda: fm.loss(NARROW, X, KEY), "model"),
        BadInput("flow_matching.conditional_loss: model output (batch, 1)",
                 lambda: fm.conditional_loss(NARROW, X, X, t4), "model"),
        BadInput("flow_matching.sample_from_noise: model output (batch, 1)",
                 lambda: fm.sample_from_noise(NARROW, X, **FAST), "model"),
        BadInput("flow_matching.sample: model output (batch, 1)",
                 lambda: fm.sample(KEY, NARROW, (4, 2), **FAST), "model"),
        BadInput("flow_matching.loss: path 'straight'",
                 lambda: fm.loss(FIELD, X, KEY, path="straight"), "path"),
        BadInput("flow_matching.loss: coupling 'sinkhorn'",
                 lambda: fm.loss(FIELD, X, KEY, coupling="sinkhorn"), "coupling"),
        BadInput("flow_matching.loss: sigma_min = 1",
                 lambda: fm.loss(FIELD, X, KEY, sigma_min=1.0), "sigma_min"),
        BadInput("flow_matching.loss: batch 1-D", lambda: fm.loss(FIELD, X[0], KEY), "batch"),
        BadInput("flow_matching.path_coefficients: t = 2",
                 lambda: fm.path_coefficients(jnp.array([2.0])), "t"),
        BadInput("flow_matching.sample_path: x0 of the wrong shape",
                 lambda: fm.sample_path(X[:, :1], X, t4), "x0"),
        BadInput("flow_matching.sample_path: t of the wrong batch",
                 lambda: fm.sample_path(X, X, t4[:3]), "t"),
        BadInput("flow_matching.conditional_loss: t of the wrong batch",
                 lambda: fm.conditional_loss(FIELD, X, X, t4[:3]), "t"),
        BadInput("flow_matching.gaussian_marginal_velocity: cov not PSD",
                 lambda: fm.gaussian_marginal_velocity(X, t4, jnp.zeros(2), -jnp.eye(2)), "cov"),
        BadInput("flow_matching.gaussian_marginal_velocity: mean of the wrong dimension",
                 lambda: fm.gaussian_marginal_velocity(X, t4, jnp.zeros(3), jnp.eye(2)), "mean"),
        BadInput("flow_matching.gaussian_marginal_velocity: t = -0.5",
                 lambda: fm.gaussian_marginal_velocity(X, jnp.full((4,), -0.5), jnp.zeros(2),
                                                       jnp.eye(2)), "t"),
        BadInput("flow_matching.mixture_marginal_velocity: x of the wrong dimension",
                 lambda: fm.mixture_marginal_velocity(targets.ring(), jnp.ones((4, 3)), t4), "x"),
        BadInput("flow_matching.mixture_marginal_velocity: not a mixture",
                 lambda: fm.mixture_marginal_velocity(jnp.ones(3), X, t4), "target"),
        BadInput("flow_matching.path_coefficients: t at both ends",
                 lambda: fm.path_coefficients(jnp.array([0.0, 1.0])), kind="extreme"),
        BadInput("ot.linear_sum_assignment: not square",
                 lambda: ot.linear_sum_assignment(jnp.ones((2, 3))), "cost"),
        BadInput("ot.linear_sum_assignment: NaN cost",
                 lambda: ot.linear_sum_assignment(jnp.array([[0.0, jnp.nan], [1.0, 0.0]])),
                 "cost"),
        BadInput("ot.squared_distances: dimensions differ",
                 lambda: ot.squared_distances(X, jnp.ones((4, 3))), "x0"),
        BadInput("ot.ot_pair: batches differ", lambda: ot.ot_pair(X, X[:3]), "x1"),
        BadInput("ot.linear_sum_assignment: costs of 1e30 (valid)",
                 lambda: ot.linear_sum_assignment(jnp.array([[1e30, 0.0], [0.0, 1e30]])),
                 kind="extreme",
                 check=lambda p: np.array_equal(np.asarray(p), [1, 0])),
    ]


CASES: list[BadInput] = [*_discrete(), *_continuous(), *_matching()]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_handled(case: BadInput) -> None:
    assert_handled(case)
