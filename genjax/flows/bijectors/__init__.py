"""Bijectors of the discrete normalizing flows, one family a module.

``forward`` maps base noise to data (the sampling direction), ``inverse`` maps data to noise;
both return ``(output, log|det J|)`` with the log-determinant of the map they apply, one per
example. The interface (``init``, ``forward``, ``inverse``, ``data_init``) is stated in
:mod:`~genjax.flows.bijectors.base`.

* :mod:`.base` — :class:`Bijector` (the interface), :class:`Chain` (composition),
  :class:`Permutation`.
* :mod:`.couplings` — :class:`AdditiveCoupling` (NICE, Dinh et al. 2015) and
  :class:`AffineCoupling` (RealNVP, Dinh et al. 2017) over the shared :class:`Coupling`.
* :mod:`.splines` — :func:`rational_quadratic_spline`, :func:`spline_params`,
  :class:`SplineCoupling`, :class:`ElementwiseSpline` (Durkan et al. 2019).
* :mod:`.glow` — :class:`ActNorm`, :class:`Conv1x1` (LU), :class:`Squeeze`,
  :class:`MultiScale` (Kingma & Dhariwal 2018; Dinh et al. 2017).
* :mod:`.autoregressive` — :class:`MAF` (Papamakarios et al. 2017) and :class:`IAF`
  (Kingma et al. 2016) over :class:`genjax.nn.MADE`.
* :mod:`.planar_radial` — :class:`Planar`, :class:`Radial` (Rezende & Mohamed 2015).
"""

from genjax.flows.bijectors.autoregressive import IAF, MAF, AutoregressiveAffine
from genjax.flows.bijectors.base import Bijector, Chain, Permutation
from genjax.flows.bijectors.couplings import (
    AdditiveCoupling,
    AffineCoupling,
    ConvConditioner,
    Coupling,
)
from genjax.flows.bijectors.glow import ActNorm, Conv1x1, MultiScale, Squeeze
from genjax.flows.bijectors.planar_radial import Planar, Radial
from genjax.flows.bijectors.splines import (
    ElementwiseSpline,
    SplineCoupling,
    rational_quadratic_spline,
    spline_params,
)

__all__ = [
    "Bijector",
    "Chain",
    "Permutation",
    "Coupling",
    "ConvConditioner",
    "AdditiveCoupling",
    "AffineCoupling",
    "SplineCoupling",
    "ElementwiseSpline",
    "rational_quadratic_spline",
    "spline_params",
    "ActNorm",
    "Conv1x1",
    "Squeeze",
    "MultiScale",
    "AutoregressiveAffine",
    "MAF",
    "IAF",
    "Planar",
    "Radial",
]
