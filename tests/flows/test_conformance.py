"""Every public sampler and loss of the flows family through genjax.testing's conformance
suites (:func:`~genjax.testing.assert_sampler_conforms`,
:func:`~genjax.testing.assert_loss_conforms`), and ten
weight sets of one sampler compiled once.

Samplers (12 cases over 6 functions): ``Flow.sample`` for each of the 8 builders,
``Flow.sample_and_log_prob``, ``cnf.sample`` (its noise twin ``cnf.sample_from_noise``),
``cnf.sample_and_log_prob`` (its twin ``cnf.forward``) and ``flow_matching.sample`` (the same
function as ``cnf.sample``, run here over analytic models: the exact marginal velocity of two
Gaussian-mixture targets).

Losses (5 cases over 4 functions): ``Flow.loss`` (the flows' maximum likelihood),
``cnf.loss`` (FFJORD, Hutchinson), ``flow_matching.loss`` (independent and OT couplings) and
``flow_matching.conditional_loss``.

Each sampler runs over two models of one structure: a flow's parameters from two keys
(perturbed, since couplings start at the identity), two velocity networks from two keys, or
two analytic fields.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import pytest

from genjax import flows as F
from genjax import targets
from genjax.flows import cnf
from genjax.flows import flow_matching as fm
from genjax.testing import (
    LossCase,
    SamplerCase,
    assert_loss_conforms,
    assert_sampler_conforms,
    count_compilations,
)
from tests.flows.test_bijector_conformance import perturbed_params

N = 4  # samples per call
BUILDERS = {
    "nice": lambda: F.nice(2, num_layers=2, hidden_sizes=(8,)),
    "realnvp": lambda: F.realnvp(2, num_layers=2, hidden_sizes=(8,)),
    "glow": lambda: F.glow((4, 4, 1), num_levels=1, num_steps=1, hidden_channels=4),
    "maf": lambda: F.maf(2, num_layers=2, hidden_sizes=(8,)),
    "iaf": lambda: F.iaf(2, num_layers=2, hidden_sizes=(8,)),
    "neural_spline": lambda: F.neural_spline(2, num_layers=2, hidden_sizes=(8,), num_bins=4),
    "planar": lambda: F.planar(2, num_layers=2),
    "radial": lambda: F.radial(2, num_layers=2),
}


def _flow_params(flow, n=2):
    return [perturbed_params(flow, 0.1, seed=2 * i) for i in range(n)]


@functools.cache
def _fields(n=2):
    """``n`` velocity networks of one architecture, initialised from different keys."""
    return tuple(cnf.mlp_field(jax.random.key(i), 2, (8,), time_embed_dim=4) for i in range(n))


def _mixture_field(radius):
    # The exact marginal CondOT velocity of a ring as a model: a Partial over the target.
    return jax.tree_util.Partial(fm.mixture_marginal_velocity, targets.ring(4, radius, 0.5))


# --------------------------------------------------------------------------- samplers


def _base_noise(flow, key):
    return jax.random.normal(key, (N, *flow.base_shape))  # as Flow.sample draws it


@pytest.mark.parametrize("name", list(BUILDERS))
def test_flow_sample_conformance(name):
    flow = BUILDERS[name]()
    case = SamplerCase(
        name=f"{name}.sample",
        sample=lambda key, p: flow.sample(key, p, N),
        models=_flow_params(flow),
        from_noise=lambda key, p: flow.forward(p, _base_noise(flow, key))[0],
        bad_arguments=((lambda: flow.sample(jax.random.key(0), _flow_params(flow)[0], 0), "n"),),
        # jit = eager is held for every builder but these two, whose eager runs dispatch (and
        # compile) hundreds of distinct small ops (~10 s each); Flow.sample is one method for
        # all builders, and their layers' arithmetic is held to float64 by the bijector suite.
        eager=name not in ("glow", "neural_spline"),
    )
    assert_sampler_conforms(case)


def test_flow_sample_and_log_prob_conformance():
    flow = BUILDERS["realnvp"]()

    def from_noise(key, p):
        z = _base_noise(flow, key)
        x, log_det = flow.forward(p, z)
        log_n = -0.5 * jnp.sum(z**2, axis=1) - jnp.log(2 * jnp.pi)  # log N(z; 0, I), D = 2
        return x, log_n - log_det

    case = SamplerCase(
        name="Flow.sample_and_log_prob",
        sample=lambda key, p: flow.sample_and_log_prob(key, p, N),
        models=_flow_params(flow),
        from_noise=from_noise,
    )
    assert_sampler_conforms(case)


def test_cnf_sample_conformance():
    opts = dict(num_steps=3)
    bad = functools.partial(cnf.sample, jax.random.key(0), _fields()[0], (N, 2))
    case = SamplerCase(
        name="cnf.sample",
        sample=lambda key, m: cnf.sample(key, m, (N, 2), **opts),
        models=_fields(),
        from_noise=lambda key, m: cnf.sample_from_noise(m, jax.random.normal(key, (N, 2)),
                                                        **opts),
        bad_arguments=(
            (lambda: bad(num_steps=0), "num_steps"),
            (lambda: bad(method="rk45"), "method"),
            (lambda: bad(t0=-0.5), "t0"),
            (lambda: cnf.sample(jax.random.key(0), _fields()[0], (N, 2, 1)), "shape"),
        ),
    )
    assert_sampler_conforms(case)


def test_cnf_sample_and_log_prob_conformance():
    opts = dict(num_steps=3)

    def from_noise(key, m):
        base_key, probe_key = jax.random.split(key)
        z = jax.random.normal(base_key, (N, 2))
        x, log_det = cnf.forward(m, z, key=probe_key, **opts)
        return x, -0.5 * jnp.sum(z**2, axis=1) - jnp.log(2 * jnp.pi) - log_det

    case = SamplerCase(
        name="cnf.sample_and_log_prob",
        sample=lambda key, m: cnf.sample_and_log_prob(key, m, (N, 2), **opts),
        models=_fields(),
        from_noise=from_noise,
        bad_arguments=(
            (lambda: cnf.sample_and_log_prob(jax.random.key(0), _fields()[0], (N, 2),
                                             trace="diag"), "trace"),
        ),
    )
    assert_sampler_conforms(case)


def test_flow_matching_sample_conformance_over_analytic_models():
    opts = dict(num_steps=2)
    case = SamplerCase(
        name="flow_matching.sample",
        sample=lambda key, m: fm.sample(key, m, (N, 2), **opts),
        models=[_mixture_field(3.0), _mixture_field(5.0)],
        from_noise=lambda key, m: fm.sample_from_noise(m, jax.random.normal(key, (N, 2)),
                                                       **opts),
    )
    assert_sampler_conforms(case)


def test_ten_weight_sets_compile_once():
    flow = BUILDERS["realnvp"]()
    many = _flow_params(flow, 10)
    key = jax.random.key(0)
    first = flow.sample(key, many[0], N)
    with count_compilations() as compiled:
        outs = [flow.sample(key, p, N) for p in many[1:]]
    assert compiled[0] == 0, f"Flow.sample: {compiled[0]} compilations for 9 new weight sets"
    fields = _fields(10)
    x0 = cnf.sample(key, fields[0], (N, 2), num_steps=2)
    with count_compilations() as compiled:
        xs = [cnf.sample(key, m, (N, 2), num_steps=2) for m in fields[1:]]
    assert compiled[0] == 0, f"cnf.sample: {compiled[0]} compilations for 9 new weight sets"
    # Each weight set its own answer (the weights are arguments, not baked-in constants).
    for a, others in ((first, outs), (x0, xs)):
        finals = [a, *others]
        assert len({tuple(jnp.ravel(x).tolist()) for x in finals}) == len(finals)


# --------------------------------------------------------------------------- losses


def test_flow_loss_conformance():
    flow = BUILDERS["realnvp"]()
    params = _flow_params(flow, 1)[0]
    x = jax.random.normal(jax.random.key(1), (8, 2))
    case = LossCase(
        name="Flow.loss",
        loss=flow.loss,
        model=params,
        batch=x,
        stochastic=False,  # maximum likelihood needs no randomness
        bad_arguments=((lambda: flow.loss(params, jnp.ones((8, 3)), None), "batch"),),
    )
    assert_loss_conforms(case)


def test_cnf_loss_conformance():
    model = _fields()[0]
    x = jax.random.normal(jax.random.key(1), (8, 2))
    loss = functools.partial(cnf.loss, num_steps=2, method="euler")
    case = LossCase(
        name="cnf.loss",
        loss=loss,
        model=model,
        batch=x,
        bad_arguments=((lambda: loss(model, x, jax.random.key(0), num_probes=0), "num_probes"),),
    )
    assert_loss_conforms(case)


@pytest.mark.parametrize("coupling, path", [("independent", "condot"), ("ot", "vp")])
def test_flow_matching_loss_conformance(coupling, path):
    model = _fields()[0]
    x = 2.0 * jax.random.normal(jax.random.key(1), (8, 2))
    loss = functools.partial(fm.loss, coupling=coupling, path=path)
    key = jax.random.key(0)
    case = LossCase(
        name=f"flow_matching.loss[{coupling}, {path}]",
        loss=loss,
        model=model,
        batch=x,
        bad_arguments=(
            (lambda: fm.loss(model, x, key, path="cosine"), "path"),
            (lambda: fm.loss(model, x, key, coupling="sinkhorn"), "coupling"),
            (lambda: fm.loss(model, x, key, sigma_min=1.0), "sigma_min"),
            (lambda: fm.loss(model, x[0], key), "batch"),
        ),
    )
    assert_loss_conforms(case)


def test_conditional_loss_conformance():
    model = _fields()[0]
    k0, k1, kt = jax.random.split(jax.random.key(1), 3)
    batch = (jax.random.normal(k0, (8, 2)), 2.0 * jax.random.normal(k1, (8, 2)),
             jax.random.uniform(kt, (8,)))  # (x0, x1, t)
    case = LossCase(
        name="flow_matching.conditional_loss",
        loss=lambda m, b, key: fm.conditional_loss(m, *b),
        model=model,
        batch=batch,
        stochastic=False,  # the draws are given
        bad_arguments=((lambda: fm.conditional_loss(model, *batch[:2], batch[2][:3]), "t"),),
    )
    assert_loss_conforms(case)
