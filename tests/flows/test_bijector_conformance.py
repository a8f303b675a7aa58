"""Every bijector and every flow of the discrete family through the bijector conformance suite
(:func:`genjax.testing.assert_bijector_conforms`): round trips, both log-dets, the log-det against
``slogdet(jacfwd)`` and finite differences in float64, the jitted float32 round trip, and for
1-D and 2-D flows that the density integrates to one.

Each case gets random, non-trivial parameters: the initial parameters (many of which start
at the identity, e.g. zero-initialised last layers) plus Gaussian noise on every leaf, so
no layer is the identity.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import flows as F
from genjax.flows import bijectors as bj
from genjax.testing import BijectorCase, assert_bijector_conforms


@functools.cache
def perturbed_params(obj, std: float, dtype=jnp.float32, seed: int = 0):
    """Initial parameters plus N(0, std^2) noise on every leaf, cast to ``dtype``.

    The initialisation draws from an ``rbg`` key and the noise from NumPy: the tests' own
    set-up then compiles (almost) nothing. Cached per (bijector, std, dtype, seed); the
    arrays are immutable and no test mutates the modules.
    """
    params = obj.init(jax.random.key(seed, impl="rbg"))
    leaves, tree = jax.tree.flatten(params)
    rng = np.random.default_rng(seed + 1)
    noisy = [jnp.asarray(np.asarray(leaf, np.float64) + std * rng.normal(size=np.shape(leaf)),
                         dtype) for leaf in leaves]  # fmt: skip
    return jax.tree.unflatten(tree, noisy)


def _case(name, obj, shape, std, *, f32_std=None, **kwargs) -> BijectorCase:
    f32 = None if f32_std is None else perturbed_params(obj, f32_std)
    return BijectorCase(name, obj, perturbed_params(obj, std), shape, float32_params=f32,
                        **kwargs)


# Spline layers have bins of slope down to ~1e-3 under strong perturbations, which amplifies
# float32 rounding in the inverse by the inverse slope: milder float32 parameters for them.
BIJECTORS = {
    "additive_coupling": lambda: _case("additive_coupling", bj.AdditiveCoupling((4,), (16,)),
                                       (4,), 0.5, volume_preserving=True),
    "affine_coupling": lambda: _case("affine_coupling", bj.AffineCoupling((4,), (16,), swap=True),
                                     (4,), 0.5),
    "affine_coupling_image": lambda: _case("affine_coupling_image",
                                           bj.AffineCoupling((2, 2, 2), (4,)), (2, 2, 2), 0.5),
    "spline_coupling": lambda: _case("spline_coupling",
                                     bj.SplineCoupling((4,), (16,), num_bins=4, bound=2.0),
                                     (4,), 0.5, f32_std=0.2),
    "elementwise_spline": lambda: _case("elementwise_spline",
                                        bj.ElementwiseSpline(3, num_bins=5, bound=2.0), (3,), 0.5),
    "actnorm": lambda: _case("actnorm", bj.ActNorm(3), (3,), 0.5),
    "actnorm_image": lambda: _case("actnorm_image", bj.ActNorm(2), (2, 2, 2), 0.5),
    "conv1x1_lu": lambda: _case("conv1x1_lu", bj.Conv1x1(3), (2, 2, 3), 0.5),
    "conv1x1_full": lambda: _case("conv1x1_full", bj.Conv1x1(3, lu=False), (3,), 0.3),
    "squeeze": lambda: _case("squeeze", bj.Squeeze(), (1, 1, 8), 0.0, volume_preserving=True,
                             moves=False),
    "maf": lambda: _case("maf", bj.MAF(4, (16,), order=(2, 4, 1, 3)), (4,), 0.3),
    "iaf": lambda: _case("iaf", bj.IAF(4, (16,)), (4,), 0.3),
    "planar": lambda: _case("planar", bj.Planar(3), (3,), 0.5),
    "radial": lambda: _case("radial", bj.Radial(3), (3,), 0.5),
    "permutation": lambda: _case("permutation", bj.Permutation.random(0, 5), (5,), 0.0,
                                 volume_preserving=True, moves=False),
    "chain": lambda: _case("chain", bj.Chain((bj.ActNorm(4), bj.Permutation.reverse(4),
                                              bj.Planar(4))), (4,), 0.5),
}  # fmt: skip

# Every builder, on 2-D data where it can be (then its density must integrate to one on
# [-9, 9]^2), and two 1-D flows (on [-12, 12]). The 2-D grid's spacing (0.05) asks for a
# smooth density: stronger perturbations of the spline flow squash whole bins of the base
# into strips ~0.01 wide (bins of slope ~1e-3), which the grid steps over.
FLOWS = {
    "nice": lambda: _case("nice", F.nice(2, num_layers=2, hidden_sizes=(16,)), (2,), 0.3,
                          density_box=9.0),
    "realnvp": lambda: _case("realnvp", F.realnvp(2, num_layers=3, hidden_sizes=(8,)), (2,),
                             0.2, density_box=9.0),
    "glow": lambda: _case("glow", F.glow((4, 4, 1), num_levels=2, num_steps=1,
                                         hidden_channels=4), (16,), 0.2),
    "maf": lambda: _case("maf", F.maf(2, num_layers=2, hidden_sizes=(8,)), (2,), 0.3,
                         density_box=9.0),
    "iaf": lambda: _case("iaf", F.iaf(2, num_layers=2, hidden_sizes=(8,)), (2,), 0.3,
                         density_box=9.0),
    "neural_spline": lambda: _case("neural_spline", F.neural_spline(2, num_layers=2,
                                   hidden_sizes=(16,), num_bins=4), (2,), 0.1, density_box=9.0),
    "planar": lambda: _case("planar", F.planar(2, num_layers=2), (2,), 0.5, density_box=9.0),
    "radial": lambda: _case("radial", F.radial(2, num_layers=2), (2,), 0.5, density_box=9.0),
    "spline_1d": lambda: _case("spline_1d", F.Flow(bj.ElementwiseSpline(1, num_bins=6,
                               bound=2.0), (1,)), (1,), 0.5, density_box=12.0),
    "chain_1d": lambda: _case("chain_1d", F.Flow(bj.Chain((
        bj.ElementwiseSpline(1, num_bins=4, bound=2.0), bj.ActNorm(1), bj.Planar(1),
        bj.Radial(1))), (1,)), (1,), 0.5, density_box=12.0),
}  # fmt: skip


@pytest.mark.parametrize("name", list(BIJECTORS))
def test_bijector_conformance(name):
    assert_bijector_conforms(BIJECTORS[name]())


@pytest.mark.parametrize("name", list(FLOWS))
def test_flow_conformance(name):
    assert_bijector_conforms(FLOWS[name]())


def test_every_public_bijector_and_builder_is_covered():
    covered = {type(c().bijector).__name__ for c in BIJECTORS.values()}
    bijectors = {n for n in bj.__all__ if isinstance(getattr(bj, n), type)}
    # The abstract interface and the shared bases have no instances of their own; MultiScale
    # is Glow's (the "glow" flow).
    assert bijectors - covered == {"Bijector", "Coupling", "AutoregressiveAffine",
                                   "ConvConditioner", "MultiScale"}
    builders = {"nice", "realnvp", "glow", "maf", "iaf", "neural_spline", "planar", "radial"}
    assert builders <= set(FLOWS)
