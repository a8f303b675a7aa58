"""Normalizing flows and flow matching.

Discrete flows: the bijectors of :mod:`genjax.flows.bijectors` (couplings, splines, Glow's
layers, MAF/IAF, planar/radial) and the :class:`Flow` over a standard normal base with its
builders ``nice``, ``realnvp``, ``glow``, ``maf``, ``iaf``, ``neural_spline``, ``planar``,
``radial`` (:mod:`genjax.flows.flow`). ``forward`` maps base noise to data (the sampling
direction), ``inverse`` maps data to noise, and
``log_prob(x) = log N(inverse(x)) + log_det(inverse)``; every method takes the parameters
as a traced argument.

Continuous flows: :mod:`~genjax.flows.cnf` (FFJORD: exact or Hutchinson trace, from
:mod:`~genjax.flows.divergence`) and conditional flow matching
(:mod:`~genjax.flows.flow_matching`, with the exact minibatch OT coupling of
:mod:`~genjax.flows.ot`). Their model is a velocity network ``model(x, t)``, a callable
pytree passed as a traced argument.

Modules:

===================== ==========================================================
``bijectors/``        the bijectors, one family a module
``flow``              :class:`Flow` and its builders
``divergence``        ``tr(dv/dx)``: exact, Hutchinson
``cnf``               continuous normalizing flows: forward, inverse, log_prob, loss, samplers
``flow_matching``     probability paths, the CFM loss, exact marginal velocities
``ot``                exact linear assignment, minibatch OT pairing
``oracle``            NumPy twin of the discrete flows
``oracle_continuous`` NumPy twin of CNFs, flow matching and the assignment solver
``recipes``           ``genjax train`` entries
===================== ==========================================================
"""

from genjax.flows import bijectors as bijectors
from genjax.flows import cnf as cnf
from genjax.flows import divergence as divergence
from genjax.flows import flow_matching as flow_matching
from genjax.flows import ot as ot
from genjax.flows.bijectors import (  # noqa: F401  (in __all__ through _bijectors_all)
    IAF,
    MAF,
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    AutoregressiveAffine,
    Bijector,
    Chain,
    Conv1x1,
    ConvConditioner,
    Coupling,
    ElementwiseSpline,
    MultiScale,
    Permutation,
    Planar,
    Radial,
    SplineCoupling,
    Squeeze,
    rational_quadratic_spline,
    spline_params,
)
from genjax.flows.bijectors import __all__ as _bijectors_all
from genjax.flows.flow import (
    Flow,
    glow,
    iaf,
    maf,
    neural_spline,
    nice,
    planar,
    radial,
    realnvp,
)

__all__ = [
    "bijectors", "cnf", "divergence", "flow_matching", "ot",  # modules
    *_bijectors_all,  # every bijector
    "Flow", "nice", "realnvp", "glow", "maf", "iaf", "neural_spline", "planar", "radial",
]  # fmt: skip
