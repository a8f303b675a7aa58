"""The mixture family's sampler through genjax.testing's sampler suite; new parameters
never recompile.

The mixture's "model" is its parameters (a :class:`GMMParams` pytree, data rather than a
callable): ``sample(key, params, n)`` and its twin ``sample_from_noise(params, components,
eps)`` run over two parameter sets of the same shapes with different means, for each
covariance type; ``fit`` (from given initial parameters), ``e_step``, ``m_step``,
``log_prob`` and ``sample`` run over ten parameter sets with one compilation each.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import mixture
from genjax.testing import SamplerCase, assert_sampler_conforms, count_compilations
from tests.mixture import COVARIANCE_TYPES, initial_params, three_blobs

N = 16
KEY = jax.random.key(0)
X = jnp.asarray(three_blobs(n=60), jnp.float32)


def _params(covariance_type: str, shift: float) -> mixture.GMMParams:
    weights, means, covs = initial_params(np.asarray(X), 3, covariance_type)
    return mixture.GMMParams(jnp.asarray(weights, jnp.float32),
                             jnp.asarray(means + shift, jnp.float32),
                             jnp.asarray(covs, jnp.float32), covariance_type)  # fmt: skip


def _sample_from_noise(key, params, n=N):
    """The noise ``mixture.sample`` draws (its documented order), through the twin."""
    component_key, eps_key = jax.random.split(key)
    components = jax.random.categorical(component_key, jnp.log(params.weights), shape=(n,))
    eps = jax.random.normal(eps_key, (n, params.dim), params.means.dtype)
    return mixture.sample_from_noise(params, components, eps)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_conformance(covariance_type):
    models = [_params(covariance_type, s) for s in (0.0, 0.5)]
    wrong = mixture.GMMParams(models[0].weights[:2], models[0].means, models[0].covs,
                              covariance_type)  # fmt: skip
    assert_sampler_conforms(SamplerCase(
        name=f"mixture.sample ({covariance_type})",
        sample=lambda k, p: mixture.sample(k, p, N),
        models=models,
        from_noise=_sample_from_noise,
        bad_arguments=[(lambda: mixture.sample(KEY, models[0], 0), "n"),
                       (lambda: mixture.sample(KEY, wrong, N), "params.weights")],
    ))  # fmt: skip


def test_ten_parameter_sets_compile_once():
    """fit (from given parameters), e_step, m_step, log_prob and sample: the parameters are
    traced arguments, so ten sets of the same shapes share each program."""
    sets = [_params("full", 0.1 * i) for i in range(10)]

    def run(p):
        log_resp, _ = mixture.e_step(p, X)
        return (mixture.fit(KEY, X, k=3, init=p, max_iter=3)[0].means,
                mixture.m_step(X, log_resp).means, mixture.log_prob(p, X),
                mixture.sample(KEY, p, N))  # fmt: skip

    first = run(sets[0])
    with count_compilations() as compiled:
        outs = [run(p) for p in sets[1:]]
    assert compiled[0] == 0, compiled[0]
    for out in outs:
        assert all(not np.array_equal(a, b) for a, b in zip(out, first, strict=True))
