"""The flow posterior (planar and IAF) held to its NumPy oracle and to the change of variables.

* ELBO terms and IWAE weights equal ``oracle_flow_posterior`` on shared noise (float64, jit
  and eager);
* ``log q_K(z_K|x)`` equals ``log N(eps) - log|det dz_K/d eps|`` with the Jacobian taken by
  ``jax.jacfwd`` through the whole posterior (R&M eq. 13 checked independently of the
  bijectors' own log-det formulas);
* the context MADE is autoregressive in z (strictly lower-triangular Jacobian in the order)
  and every output sees the context;
* the IWAE bound is ``logsumexp`` of the log weights of the noise its key draws.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import composites
from genjax.composites import oracle_flow_posterior as ofp

SHAPE, LATENT, BATCH = (3, 3, 1), 3, 4


@functools.cache  # built once per module (eager initialisation compiles every op); never mutated
def _model(flow, likelihood="bernoulli"):
    model = composites.mlp_flow_vae(
        SHAPE,
        LATENT,
        flow=flow,
        num_flows=3,
        rngs=nnx.Rngs(0),
        hidden_sizes=(8,),
        likelihood=likelihood,
        context_dim=2,
        made_hidden=(6,),
    )
    for i, made in enumerate(model.mades):  # a non-trivial IAF: read-outs start at zero
        last = made.layers[-1]
        last.kernel[...] = 0.5 * jax.random.normal(
            jax.random.key(10 + i), last.kernel[...].shape, jnp.float32
        )
        last.bias[...] = 0.3 * jax.random.normal(
            jax.random.key(20 + i), last.bias[...].shape, jnp.float32
        )
    if likelihood == "gaussian":
        model.vae.log_std[...] = jnp.asarray(-0.7, jnp.float32)
    return model


def _data(dtype=jnp.float64):
    x = jax.random.uniform(jax.random.key(1), (BATCH, *SHAPE), dtype)
    eps = jax.random.normal(jax.random.key(2), (BATCH, LATENT), dtype)
    return x, eps


@pytest.mark.parametrize("flow,likelihood", [("planar", "bernoulli"), ("iaf", "gaussian")])
def test_elbo_terms_equal_the_oracle(x64, flow, likelihood):
    model = _model(flow, likelihood)
    x, eps = _data()
    ref = ofp.flow_elbo(np.asarray(x), np.asarray(eps), ofp.weights_of(model))
    assert np.min(np.abs(ref["log_det"])) > 0.05  # the flow really moves z
    # jit, and eager once (the IAF case: eager dispatch compiles every op anew, seconds)
    fns = (jax.jit(composites.flow_elbo_terms),) + (
        (composites.flow_elbo_terms,) if flow == "iaf" else ()
    )
    for terms_fn in fns:
        terms = terms_fn(model, x, eps)
        # float64 on both sides from the same float32 weights: only summation order differs
        for name in ("elbo", "log_likelihood", "log_prior", "log_q0", "log_det"):
            np.testing.assert_allclose(terms[name], ref[name], rtol=1e-10, atol=1e-10)
    z, log_q = jax.jit(composites.flow_posterior_sample_from_noise)(model, x, eps)
    np.testing.assert_allclose(z, ref["z"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(log_q, ref["log_q0"] - ref["log_det"], rtol=1e-10)


@pytest.mark.parametrize("flow", ["planar", "iaf"])
def test_iwae_bound_is_logsumexp_of_the_oracle_weights(x64, flow):
    model = _model(flow, "gaussian" if flow == "iaf" else "bernoulli")
    x, _ = _data()
    key, k = jax.random.key(3), 6
    bound = composites.flow_iwae_bound(model, x, key, k=k)
    eps = jax.random.normal(key, (k, BATCH, LATENT), x.dtype)  # the noise the key draws
    np.testing.assert_allclose(
        bound,
        ofp.flow_iwae_bound(np.asarray(x), np.asarray(eps), ofp.weights_of(model)),
        rtol=1e-10,
    )
    log_w = jax.jit(composites.flow_log_weights)(model, x, eps)
    assert np.all(np.asarray(bound) > np.asarray(log_w.mean(0)))  # Jensen: L_k >= mean log w


@pytest.mark.parametrize("flow", ["planar", "iaf"])
def test_log_density_is_the_change_of_variables(x64, flow):
    model = _model(flow, "gaussian" if flow == "iaf" else "bernoulli")
    x, eps = _data()

    def z_of(e):  # eps (B, L) -> z_K (B, L): example b's z depends on eps[b] only
        return composites.flow_posterior_sample_from_noise(model, x, e)[0]

    _, log_q = jax.jit(composites.flow_posterior_sample_from_noise)(model, x, eps)
    jac = jax.jit(jax.jacfwd(z_of))(eps)  # (B, L, B, L), d z_K / d eps through every step
    jac = np.asarray(jac)[np.arange(BATCH), :, np.arange(BATCH), :]  # (B, L, L) diagonal blocks
    log_n = -0.5 * np.sum(np.asarray(eps) ** 2, axis=1) - 0.5 * LATENT * np.log(2 * np.pi)
    np.testing.assert_allclose(log_q, log_n - np.linalg.slogdet(jac)[1], rtol=1e-10)


def test_context_made_is_autoregressive_in_z_and_sees_the_context(x64):
    c, num_latents = 2, 4
    made = composites.ContextMADE(c, num_latents, (8, 8), rngs=nnx.Rngs(0), order=(3, 1, 4, 2))
    last = made.layers[-1]
    last.kernel[...] = jax.random.normal(jax.random.key(0), last.kernel[...].shape, jnp.float32)
    inputs = jax.random.normal(jax.random.key(1), (c + num_latents,), jnp.float64)
    jac = jax.jit(jax.jacfwd(lambda m, v: m(v[None])[0, c:, :], argnums=1))(made, inputs)
    # (L, 2, C + L): outputs of z's coordinates against [h, z]
    order = np.array([3, 1, 4, 2])
    allowed_z = order[None, :] < order[:, None]  # output d may see z_{d'} iff order[d'] < order[d]
    dz = np.abs(np.asarray(jac[..., c:])).max(axis=1)  # (L, L)
    assert np.all(dz[~allowed_z] == 0.0)
    assert np.all(dz[allowed_z] > 0.0)  # 8 hidden units per layer: every allowed path exists
    assert np.all(np.abs(np.asarray(jac[..., :c])).max(axis=(1, 2)) > 0.0)  # every d sees h


def test_new_weights_do_not_recompile():
    model = _model("planar")
    x, _ = _data(jnp.float32)
    composites.flow_elbo_loss(model, x, jax.random.key(0))
    other = jax.jit(lambda m: jax.tree.map(lambda a: a + 0.01, m))(model)
    before = composites.flow_posterior_loss._flow_elbo_loss._cache_size()
    loss, metrics = composites.flow_elbo_loss(other, x, jax.random.key(0))
    assert composites.flow_posterior_loss._flow_elbo_loss._cache_size() == before
    assert bool(jnp.isfinite(loss)) and bool(jnp.isclose(loss, -metrics["elbo"]))
