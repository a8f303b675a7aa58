"""The bijector conformance suite: every bijector and every normalizing flow passes it."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["BijectorCase", "assert_bijector_conforms"]


# ---------------------------------------------------------------------------------------
# Bijector conformance suite: every bijector and every normalizing flow passes it
# (distrax's round-trip and slogdet(jacfwd) checks, plus finite differences and the
# density's total mass).
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BijectorCase:
    """One bijector or flow under the bijector conformance suite (:func:`assert_bijector_conforms`).

    Attributes:
      name: for messages.
      bijector: anything with ``forward(params, z) -> (x, log|det dx/dz|)`` and
        ``inverse(params, x) -> (z, log|det dz/dx|)`` over a leading batch axis, log-dets of
        shape ``(batch,)`` (a bijector of ``genjax.flows.bijectors`` or a ``Flow``).
      params: its parameters, non-trivial: no layer the identity (perturb the initial
        parameters, many of which start at the identity by design).
      shape: the shape of one noise-side example (a flow's ``base_shape``).
      volume_preserving: the log-det is 0 by construction (then "the log-det is not zero"
        is skipped).
      moves: the map moves points (False for pure rearrangements: skips "x differs from z").
      float32_params: parameters for the float32 round trip (default ``params``); a spline
        with bins of slope ~1e-3 amplifies float32 rounding by the inverse slope, so a case
        may use milder (still non-trivial) ones there.
      density_box: for a vector event of 1 or 2 dimensions, the half-width ``b`` of the box
        ``[-b, b]^D`` on which ``p(x) = N(f^{-1}(x); 0, I) |det d f^{-1}(x)/dx|`` must
        integrate to 1; ``None`` skips the check. The box must hold all but ~1e-6 of the mass.
      scale: standard deviation of the noise-side test points.
    """

    name: str
    bijector: Any
    params: Any
    shape: tuple[int, ...]
    volume_preserving: bool = False
    moves: bool = True
    float32_params: Any = None
    density_box: float | None = None
    scale: float = 0.8


def _cast_floating(tree: Any, dtype: Any) -> Any:

    def cast(leaf: Any) -> Any:
        if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.floating):
            return jnp.asarray(leaf, dtype)
        return leaf

    return jax.tree_util.tree_map(cast, tree)


def _trapezoid_weights(grid: np.ndarray) -> np.ndarray:
    """Trapezoid-rule weights ``h (1/2, 1, ..., 1, 1/2)`` on a uniform grid."""
    w = np.full(grid.shape, grid[1] - grid[0])
    w[0] *= 0.5
    w[-1] *= 0.5
    return w


def assert_bijector_conforms(case: BijectorCase, key: Any = None) -> None:
    """The bijector conformance suite; raises ``AssertionError`` naming the failed check.

    In float64 (``jax.enable_x64``), on ``2 D`` noise-side points ``z`` (``D`` the event
    size), in one compiled program:

    1. Round trips: ``inverse(forward(z)) = z`` and ``forward(inverse(x)) = x`` (1e-9).
    2. The inverse log-det at ``x = f(z)`` is minus the forward log-det at ``z`` (1e-9).
    3. The forward log-det equals ``slogdet`` of the Jacobian by forward-mode AD
       (``jax.jacfwd``, 1e-8) and of central finite differences (``eps = 1e-5``: truncation
       ~1e-9, rounding ~1e-11; 1e-6 on the log-det).
    4. Non-trivial: the map moves points (unless ``moves=False``) and changes volume
       (unless ``volume_preserving``); the Jacobian is non-singular.

    In float32 under ``jax.jit``: dtype kept, the round trip holds to 1e-4 and the log-dets
    cancel to 1e-4 (up to ~10 layers of a few ulps of O(1) values).

    With ``density_box``: the density integrates to 1 on the box by the trapezoid rule
    (1-D: spacing 1e-3, error ~h^2 f'' ~ 1e-6, checked to 1e-4; 2-D: spacing 0.05, checked
    to 3e-3, which a spline's kinks in f'' at its knots still meet).
    """

    key = jax.random.key(0) if key is None else key
    bij, shape = case.bijector, tuple(case.shape)
    size = math.prod(shape)
    with jax.enable_x64(True):
        params = _cast_floating(case.params, jnp.float64)
        # 2 D points: the same compiled program serves the finite differences below.
        z = case.scale * jax.random.normal(key, (2 * size, *shape), jnp.float64)

        def program(params: Any, z: Any) -> tuple:
            x, ld_fwd = bij.forward(params, z)
            z_back, ld_inv = bij.inverse(params, x)
            x_again, _ = bij.forward(params, z_back)

            def one(v: Any) -> Any:  # one example, flat in and out
                return bij.forward(params, v.reshape(1, *shape))[0].reshape(-1)

            jac = jax.vmap(jax.jacfwd(one))(z[:2].reshape(2, -1))  # (2, D, D)
            sign, logdet = jnp.linalg.slogdet(jac)
            return x, ld_fwd, z_back, ld_inv, x_again, sign, logdet

        compiled = jax.jit(program)
        x, ld_fwd, z_back, ld_inv, x_again, sign, logdet = compiled(params, z)
        name = case.name
        assert x.dtype == jnp.float64 and ld_fwd.shape == (2 * size,), (
            f"{name}: forward gave {x.dtype} and log-det shape {ld_fwd.shape}"
        )
        np.testing.assert_allclose(
            z_back, z, atol=1e-9, rtol=0, err_msg=f"{name}: inverse(forward(z)) != z"
        )
        np.testing.assert_allclose(
            x_again, x, atol=1e-9, rtol=0, err_msg=f"{name}: forward(inverse(x)) != x"
        )
        np.testing.assert_allclose(
            ld_inv,
            -ld_fwd,
            atol=1e-9,
            rtol=0,
            err_msg=f"{name}: inverse log-det != -forward log-det",
        )
        if not case.volume_preserving:
            # (A composition may cross log-det 0 at some point; a trivial one is 0 everywhere.)
            assert float(jnp.max(jnp.abs(ld_fwd))) > 1e-3, f"{name}: log-det ~ 0 (trivial?)"
        if case.moves:
            flat = (2 * size, -1)
            moved = float(jnp.max(jnp.abs(x.reshape(flat) - z.reshape(flat))))
            assert moved > 1e-2, f"{name}: forward barely moves its input (trivial params?)"
        assert bool(jnp.all(sign != 0)), f"{name}: singular Jacobian"
        np.testing.assert_allclose(
            logdet,
            ld_fwd[:2],
            atol=1e-8,
            rtol=0,
            err_msg=f"{name}: log-det != slogdet(jacfwd(forward))",
        )
        # Central differences at z[0]: columns from the 2 D points z0 +- eps e_i.
        eps = 1e-5
        z0 = np.asarray(z[0], np.float64).reshape(-1)
        steps = np.concatenate([np.eye(size), -np.eye(size)]) * eps  # (2 D, D)
        points = jnp.asarray((z0[None] + steps).reshape(2 * size, *shape))
        out = np.asarray(compiled(params, points)[0]).reshape(2 * size, -1)
        fd = ((out[:size] - out[size:]) / (2 * eps)).T  # (D, D): column i = d f / d z_i
        np.testing.assert_allclose(
            np.linalg.slogdet(fd)[1],
            float(ld_fwd[0]),
            atol=1e-6,
            err_msg=f"{name}: log-det != slogdet(finite differences)",
        )
        if case.density_box is not None:
            _check_density_mass(case, params)

    p32 = _cast_floating(
        case.params if case.float32_params is None else case.float32_params, jnp.float32
    )
    z32 = case.scale * jax.random.normal(jax.random.fold_in(key, 1), (4, *shape), jnp.float32)

    def round_trip(params: Any, z: Any) -> tuple:
        x, ld = bij.forward(params, z)
        return (x, ld, *bij.inverse(params, x))

    x, ld, z_back, ld_inv = jax.jit(round_trip)(p32, z32)
    assert x.dtype == jnp.float32 and z_back.dtype == jnp.float32, (
        f"{case.name}: float32 in, {x.dtype} / {z_back.dtype} out"
    )
    np.testing.assert_allclose(
        z_back, z32, atol=1e-4, rtol=0, err_msg=f"{case.name}: float32 round trip"
    )
    np.testing.assert_allclose(
        ld_inv, -ld, atol=1e-4, rtol=1e-5, err_msg=f"{case.name}: float32 log-dets do not cancel"
    )


def _check_density_mass(case: BijectorCase, params: Any) -> None:
    """``int p(x) dx = 1`` on ``[-b, b]^D`` (D = 1 or 2), trapezoid rule, float64."""

    d, b = math.prod(case.shape), float(case.density_box)
    assert case.shape in ((1,), (2,)), f"{case.name}: density_box needs a (1,) or (2,) event"

    def log_density(params: Any, x: Any) -> Any:
        z, log_det = case.bijector.inverse(params, x)
        flat = z.reshape(z.shape[0], -1)
        # log N(z; 0, I) + log|det dz/dx|, written out (independent of the code under test)
        return -0.5 * jnp.sum(flat**2, axis=1) - 0.5 * d * math.log(2 * math.pi) + log_det

    if d == 1:
        grid = np.linspace(-b, b, int(round(2 * b / 1e-3)) + 1)  # spacing 1e-3
        dens = np.exp(np.asarray(jax.jit(log_density)(params, jnp.asarray(grid[:, None]))))
        mass, atol = float(_trapezoid_weights(grid) @ dens), 1e-4
    else:
        grid = np.linspace(-b, b, int(round(2 * b / 0.05)) + 1)  # spacing 0.05
        xx, yy = np.meshgrid(grid, grid, indexing="ij")
        pts = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], axis=1))
        dens = np.exp(np.asarray(jax.jit(log_density)(params, pts))).reshape(len(grid), -1)
        w = _trapezoid_weights(grid)
        mass, atol = float(w @ dens @ w), 3e-3
    assert abs(mass - 1.0) <= atol, f"{case.name}: the density integrates to {mass}, not 1"
