"""One conformance suite that every bijector and every flow of the discrete family passes.

Each case gets random, non-trivial parameters: the initial parameters (many of which start
at the identity, e.g. zero-initialised last layers) plus Gaussian noise on every leaf, so
no layer is the identity. Checked, in float64:

* round trip: ``inverse(forward(z)) = z`` and ``forward(inverse(x)) = x``;
* the forward log-det equals ``slogdet`` of ``jax.jacfwd(forward)`` and of a NumPy central
  finite-difference Jacobian (the oracle's ``numerical_jacobian``);
* the inverse log-det at ``x = forward(z)`` is minus the forward log-det at ``z``;
* volume-changing layers really change volume (a zero log-det would fail);

and in float32 under ``jax.jit``, that the jitted pair agrees with the eager one and round
trips. Densities integrate to 1 on a grid in 1-D and 2-D (:mod:`test_bijectors`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import flows as F
from genjax.flows import bijectors as bj
from genjax.flows import oracle

# name -> (bijector or flow, shape of one input example (noise side), perturbation std,
#          volume-preserving?)
CASES = {
    "additive_coupling": (bj.AdditiveCoupling((4,), (16,)), (4,), 0.5, True),
    "affine_coupling": (bj.AffineCoupling((4,), (16,), swap=True), (4,), 0.5, False),
    "affine_coupling_image": (bj.AffineCoupling((2, 2, 2), (4,)), (2, 2, 2), 0.5, False),
    "spline_coupling": (bj.SplineCoupling((4,), (16,), num_bins=4, bound=2.0), (4,), 0.5, False),
    "elementwise_spline": (bj.ElementwiseSpline(3, num_bins=5, bound=2.0), (3,), 0.5, False),
    "actnorm": (bj.ActNorm(3), (3,), 0.5, False),
    "actnorm_image": (bj.ActNorm(2), (2, 2, 2), 0.5, False),
    "conv1x1_lu": (bj.Conv1x1(3), (2, 2, 3), 0.5, False),
    "conv1x1_full": (bj.Conv1x1(3, lu=False), (3,), 0.3, False),
    "squeeze": (bj.Squeeze(), (1, 1, 8), 0.0, True),
    "maf": (bj.MAF(4, (16,), order=(2, 4, 1, 3)), (4,), 0.3, False),
    "iaf": (bj.IAF(4, (16,)), (4,), 0.3, False),
    "planar": (bj.Planar(3), (3,), 0.5, False),
    "radial": (bj.Radial(3), (3,), 0.5, False),
    "permutation": (bj.Permutation.random(0, 5), (5,), 0.0, True),
    "chain": (bj.Chain((bj.ActNorm(4), bj.Permutation.reverse(4), bj.Planar(4))), (4,), 0.5,
              False),
    "flow_nice": (F.nice(4, num_layers=2, hidden_sizes=(16,)), (4,), 0.3, False),
    "flow_realnvp": (F.realnvp(4, num_layers=3, hidden_sizes=(16,)), (4,), 0.3, False),
    "flow_glow": (F.glow((4, 4, 1), num_levels=2, num_steps=1, hidden_channels=4), (16,), 0.2,
                  False),
    "flow_maf": (F.maf(3, num_layers=2, hidden_sizes=(8,)), (3,), 0.3, False),
    "flow_iaf": (F.iaf(3, num_layers=2, hidden_sizes=(8,)), (3,), 0.3, False),
    "flow_neural_spline": (F.neural_spline(4, num_layers=2, hidden_sizes=(16,), num_bins=4),
                           (4,), 0.3, False),
    "flow_planar": (F.planar(2, num_layers=2), (2,), 0.5, False),
    "flow_radial": (F.radial(2, num_layers=2), (2,), 0.5, False),
}  # fmt: skip


def perturbed_params(obj, std: float, dtype=jnp.float64, seed: int = 0):
    """Initial parameters plus N(0, std^2) noise on every leaf, cast to ``dtype``."""
    params = obj.init(jax.random.key(seed))
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed + 1), max(len(leaves), 1))
    noisy = [
        (leaf + std * jax.random.normal(k, leaf.shape)).astype(dtype)
        for leaf, k in zip(leaves, keys, strict=False)
    ]
    return jax.tree.unflatten(tree, noisy)


def _noise(shape, n, dtype, seed=2):
    # Standard normal noise; 0.8 x keeps inputs of the image/vector layers moderate.
    return 0.8 * jax.random.normal(jax.random.key(seed), (n, *shape), dtype)


@functools.cache
def _check_fn(obj, shape):
    """One jitted program: round trips, both log-dets and the AD Jacobian's log-det."""

    def check(params, z):
        x, ld_fwd = obj.forward(params, z)
        z_back, ld_inv = obj.inverse(params, x)
        x_again, _ = obj.forward(params, z_back)

        def f_single(v):  # one example, flat in and out
            return obj.forward(params, v.reshape(1, *shape))[0].reshape(-1)

        jac = jax.vmap(jax.jacfwd(f_single))(z[:2].reshape(2, -1))  # (2, D, D)
        sign, logdet = jnp.linalg.slogdet(jac)
        return x, ld_fwd, z_back, ld_inv, x_again, sign, logdet

    return jax.jit(check)


@pytest.mark.parametrize("name", list(CASES))
def test_conformance_float64(name, x64):
    obj, shape, std, volume_preserving = CASES[name]
    params = perturbed_params(obj, std)
    size = int(np.prod(shape))
    # A batch of 2 D points: the same compiled forward serves the finite differences below.
    z = _noise(shape, 2 * size, jnp.float64)
    x, ld_fwd, z_back, ld_inv, x_again, sign, logdet = _check_fn(obj, shape)(params, z)
    assert x.dtype == jnp.float64 and ld_fwd.shape == (2 * size,)
    # Round trips: float64 composition of O(10) well-conditioned ops, 1e-9 abs; the planar
    # inverse is a 60-step bisection, exact to float64 resolution as well.
    np.testing.assert_allclose(z_back, z, atol=1e-9, rtol=0)
    np.testing.assert_allclose(x_again, x, atol=1e-9, rtol=0)
    # The inverse log-det at x = f(z) is minus the forward one at z.
    np.testing.assert_allclose(ld_inv, -ld_fwd, atol=1e-9, rtol=0)
    if not volume_preserving:
        assert float(jnp.min(jnp.abs(ld_fwd))) > 1e-3, "log-det is (almost) zero: trivial params"
    if name not in ("squeeze", "permutation"):
        flat = (2 * size, -1)
        assert float(jnp.max(jnp.abs(x.reshape(flat) - z.reshape(flat)))) > 1e-2
    assert bool(jnp.all(sign != 0))
    # float64 Jacobian by forward-mode AD: agrees to ~1e-12; 1e-8 leaves margin.
    np.testing.assert_allclose(logdet, ld_fwd[:2], atol=1e-8, rtol=0)
    # Central differences with eps = 1e-5: truncation O(eps^2 f''') ~ 1e-9, rounding
    # O(1e-16 / eps) ~ 1e-11 per entry; 1e-6 on the log-det is comfortable. The batch of
    # 2 D perturbed points has the shape compiled above (one compile per case).
    fd = oracle.numerical_jacobian(
        lambda b: np.asarray(_check_fn(obj, shape)(params, jnp.asarray(b).reshape(-1, *shape))[0]),
        np.asarray(z[0]), eps=1e-5,
    )  # fmt: skip
    np.testing.assert_allclose(np.linalg.slogdet(fd)[1], float(ld_fwd[0]), atol=1e-6)


# Spline layers have bins of slope down to ~1e-3 under strong perturbations, which
# amplifies float32 rounding in the inverse by the inverse slope; the float32 check uses
# milder (still non-trivial) parameters for them. float64 above uses the strong ones.
F32_STD = {"spline_coupling": 0.2, "flow_neural_spline": 0.1}


@functools.cache
def _round_trip_fn(obj):
    def round_trip(params, z):
        x, ld = obj.forward(params, z)
        return (x, ld, *obj.inverse(params, x))

    return jax.jit(round_trip)


@pytest.mark.parametrize("name", list(CASES))
def test_conformance_jit_float32(name):
    obj, shape, std, _ = CASES[name]
    params = perturbed_params(obj, F32_STD.get(name, std), dtype=jnp.float32)
    z = _noise(shape, 4, jnp.float32)
    x, ld, z_back, ld_inv = _round_trip_fn(obj)(params, z)
    assert z_back.dtype == jnp.float32 and x.dtype == jnp.float32
    # float32 round trip through up to ~10 layers, each a few ulps of O(1) values: 1e-4.
    np.testing.assert_allclose(z_back, z, atol=1e-4, rtol=0)
    np.testing.assert_allclose(ld_inv, -ld, atol=1e-4, rtol=1e-5)
