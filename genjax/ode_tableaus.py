"""Butcher tableaus of the explicit Runge-Kutta methods of :mod:`genjax.ode`.

Euler, Heun (explicit trapezoid), classical RK4 (Kutta 1901) and Dormand-Prince 5(4)
(Dormand & Prince 1980, "A family of embedded Runge-Kutta formulae", J. Comput. Appl. Math.
6(1), table 2; Hairer, Norsett & Wanner 1993, "Solving Ordinary Differential Equations I",
table II.5.2). A method is ``y' = y + h sum_i b_i k_i`` with stages
``k_i = f(t + c_i h, y + h sum_{j<i} a_ij k_j)``. All names are re-exported by
:mod:`genjax.ode`.
"""

from __future__ import annotations

import dataclasses

__all__ = [
    "ButcherTableau", "EULER", "HEUN", "RK4", "DOPRI5", "TABLEAUS", "ORDERS",
    "FIXED_STEP_METHODS", "ADAPTIVE_METHODS",
]


@dataclasses.dataclass(frozen=True)
class ButcherTableau:
    """Coefficients of an explicit Runge-Kutta method with ``s`` stages, and its order.

    Attributes:
      c: (s,) nodes; ``c[0] = 0``.
      a: ``s - 1`` rows; ``a[i - 1]`` holds ``a_ij`` for ``j < i`` (stage ``i``
        from stages ``0 .. i-1``).
      b: (s,) weights of the propagated solution.
      order: global order of accuracy of the solution ``b``: error = O(h^order).
        The convergence tests read it (tests/shared/test_ode.py).
      b_error: (s,) ``b - b*`` (solution minus embedded weights), or ``None``
        for a method without an error estimate.
      fsal: first-same-as-last: the last stage is ``f(t + h, y')``, so it is
        the next step's first stage (requires ``c[-1] = 1`` and ``a[-1] = b``).
    """

    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    order: int
    b_error: tuple[float, ...] | None = None
    fsal: bool = False

    @property
    def num_evals(self) -> int:
        """Evaluations of ``f`` per step: ``s``, or ``s - 1`` when the first stage is reused."""
        return len(self.c) - 1 if self.fsal else len(self.c)


# Forward Euler: y' = y + h f(t, y).
EULER = ButcherTableau(c=(0.0,), a=(), b=(1.0,), order=1)

# Heun's method, the explicit trapezoid rule (not Heun's third-order method):
#   k1 = f(t, y), k2 = f(t + h, y + h k1), y' = y + h (k1 + k2) / 2.
HEUN = ButcherTableau(c=(0.0, 1.0), a=((1.0,),), b=(0.5, 0.5), order=2)

# The classical fourth-order Runge-Kutta method (Kutta 1901).
RK4 = ButcherTableau(
    c=(0.0, 0.5, 0.5, 1.0),
    a=((0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)),
    b=(1 / 6, 1 / 3, 1 / 3, 1 / 6),
    order=4,
)

# Dormand-Prince 5(4) (Dormand & Prince 1980, table 2; Hairer et al. table II.5.2):
# 7 stages, 5th-order solution b, 4th-order embedded b*, FSAL.
_DOPRI5_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_DOPRI5_B_STAR = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100,
                  1 / 40)
DOPRI5 = ButcherTableau(
    c=(0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0),
    a=(
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
        _DOPRI5_B[:6],
    ),
    b=_DOPRI5_B,
    order=5,
    b_error=tuple(b - bs for b, bs in zip(_DOPRI5_B, _DOPRI5_B_STAR, strict=True)),
    fsal=True,
)
"""Dormand & Prince (1980) 5(4) with its embedded fourth-order error estimate (FSAL)."""

TABLEAUS: dict[str, ButcherTableau] = {
    "euler": EULER,
    "heun": HEUN,
    "rk4": RK4,
    "dopri5": DOPRI5,
}
"""Every tableau by method name (``genjax.ode.solve``'s ``method``)."""
ORDERS: dict[str, int] = {name: tableau.order for name, tableau in TABLEAUS.items()}
"""Global order of accuracy of each method (each tableau's ``order``): error = O(h^order)."""
FIXED_STEP_METHODS: tuple[str, ...] = ("euler", "heun", "rk4")
"""The methods solved on a fixed grid of ``num_steps``."""
ADAPTIVE_METHODS: tuple[str, ...] = ("dopri5",)
"""The methods with step-size control (``rtol``, ``atol``)."""
