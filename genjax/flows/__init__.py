"""Normalizing flows and flow matching.

Discrete flows (``bijectors``, ``flow``): NICE, RealNVP, Glow, MAF, IAF and neural spline
flows over a standard normal base; continuous flows (``cnf``, FFJORD) and conditional flow
matching (``flow_matching``). ``forward`` maps base noise to data (the sampling
direction), ``inverse`` maps data to noise, and
``log_prob(x) = log N(inverse(x)) + log_det(inverse)``.
"""

from genjax.flows import bijectors as bijectors
from genjax.flows import cnf as cnf
from genjax.flows import coupling as coupling
from genjax.flows import flow_matching as flow_matching
from genjax.flows.bijectors import (  # noqa: F401
    IAF,
    MAF,
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    Bijector,
    Chain,
    Conv1x1,
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
from genjax.flows.flow import (  # noqa: F401
    Flow,
    glow,
    iaf,
    maf,
    neural_spline,
    nice,
    planar,
    radial,
    realnvp,
    standard_normal_log_prob,
)
