"""Classifier-free guidance: the two ends of the scale, label dropout, the eps_fn builder."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import diffusion
from genjax.model import model_jit


def test_guided_ends_and_extrapolation():
    eps_c = jnp.array([[1.0, -2.0], [0.5, 3.0]])
    eps_u = jnp.array([[0.0, 1.0], [-1.0, 2.0]])
    for fn in (diffusion.guided, jax.jit(diffusion.guided)):
        np.testing.assert_array_equal(fn(eps_c, eps_u, 0.0), eps_u)  # scale 0: unconditional
        np.testing.assert_array_equal(fn(eps_c, eps_u, 1.0), eps_c)  # scale 1: conditional
        # scale 3: eps_u + 3 (eps_c - eps_u) = 3 eps_c - 2 eps_u (exact in float32 here)
        np.testing.assert_allclose(fn(eps_c, eps_u, 3.0), 3 * eps_c - 2 * eps_u, rtol=1e-6)


def test_label_dropout_rate_and_values():
    labels = jnp.arange(20000) % 10
    out = diffusion.label_dropout(jax.random.key(0), labels, 0.2, 10)
    dropped = out == 10
    # Kept labels are untouched.
    np.testing.assert_array_equal(out[~dropped], labels[~dropped])
    # Binomial(20000, 0.2): std of the rate = sqrt(0.16/20000) ~ 0.0028; 5 sigma bound.
    assert abs(float(dropped.mean()) - 0.2) < 0.015
    np.testing.assert_array_equal(diffusion.label_dropout(jax.random.key(0), labels, 0.0, 10),
                                  labels)
    assert bool(jnp.all(diffusion.label_dropout(jax.random.key(0), labels, 1.0, 10) == 10))
    with pytest.raises(ValueError, match="p_uncond"):
        diffusion.label_dropout(jax.random.key(0), labels, 1.5, 10)


def test_guided_eps_fn_matches_manual_mix():
    # A label-conditioned "network" whose answer is known: eps = x * (label + 1) + t.
    def eps_fn_cond(x, t, labels):
        return x * (labels[:, None] + 1.0) + t[:, None].astype(x.dtype)

    x = jax.random.normal(jax.random.key(0), (4, 2))
    t = jnp.array([5, 6, 7, 8])
    labels = jnp.array([0, 1, 2, 0])
    null = 3
    cond = eps_fn_cond(x, t, labels)
    uncond = eps_fn_cond(x, t, jnp.full(4, null))
    for scale in (0.0, 1.0, 2.5):
        fn = diffusion.guided_eps_fn(eps_fn_cond, labels, null, scale)
        expected = uncond + scale * (cond - uncond)
        np.testing.assert_allclose(fn(x, t), expected, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(jax.jit(fn)(x, t), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(diffusion.guided_eps_fn(eps_fn_cond, labels, null, 0)(x, t), uncond)
    np.testing.assert_allclose(diffusion.guided_eps_fn(eps_fn_cond, labels, null, 1)(x, t), cond)
    # with_labels binds the labels: the conditional model (x_t, t).
    np.testing.assert_allclose(diffusion.with_labels(eps_fn_cond, labels)(x, t), cond)
    # An array scale is traced: the guided model is a pytree, one program for every scale.
    run = model_jit(lambda model, x, t: model(x, t))
    for scale in (0.5, 3.0):
        model = diffusion.guided_eps_fn(eps_fn_cond, labels, null, jnp.asarray(scale))
        np.testing.assert_allclose(run(model, x, t), uncond + scale * (cond - uncond), rtol=1e-6,
                                   atol=1e-6)
    assert run._cache_size() == 1
    with pytest.raises(ValueError, match="labels"):
        diffusion.guided_eps_fn(eps_fn_cond, labels[:, None], null, 2.0)
    with pytest.raises(ValueError, match="labels"):
        diffusion.guided_eps_fn(eps_fn_cond, labels[:3], null, 2.0)(x, t)


def test_guided_bad_shapes():
    with pytest.raises(ValueError, match="eps_cond"):
        diffusion.guided(jnp.ones(3), jnp.ones(4), 1.0)
    with pytest.raises(ValueError, match="scale"):
        diffusion.guided(jnp.ones(3), jnp.ones(3), jnp.ones(2))
