"""ODE solvers: genjax.ode against scipy.integrate and diffrax (when installed).

Workload: a batch of independent Van der Pol oscillators (mu = 1),
``y = (batch, 2)``, integrated over t in [0, 5] -- the shape of a probability-flow
or CNF sampling ODE (many independent 2-D particles) with a cheap vector field,
so the numbers measure solver overhead. Accuracy is the max error against
scipy's DOP853 at rtol = atol = 1e-12 on the same initial states.

* genjax rk4 (fixed 100 steps, ``lax.scan``) and dopri5 (rtol = atol = 1e-6,
  ``lax.while_loop``), each one jitted program;
* scipy ``solve_ivp`` RK45 (the same Dormand-Prince pair) on the flattened
  batch, on the host;
* diffrax Dopri5 with a PID controller at the same tolerances, if importable.

The adaptive solvers control one error norm over the whole batch (RMS over
every element), so all particles share step sizes, as in diffrax and scipy here.
"""

from __future__ import annotations

import numpy as np

from genjax.bench.harness import Row, time_host, time_jax

NOTES = (
    "Van der Pol (mu=1), t in [0, 5], batch of 2-D states; error = max |y - DOP853(1e-12)|. "
    "float32 for JAX (the default), float64 for scipy."
)

T0, T1 = 0.0, 5.0
TOL = 1e-6


def _initial_states(batch: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(-2.0, 2.0, size=(batch, 2))


def _vdp_numpy(t, y_flat):
    y = y_flat.reshape(-1, 2)
    dy = np.stack([y[:, 1], (1.0 - y[:, 0] ** 2) * y[:, 1] - y[:, 0]], axis=-1)
    return dy.reshape(-1)


def run(quick: bool = False) -> list[Row]:
    import jax
    import jax.numpy as jnp
    from scipy.integrate import solve_ivp

    from genjax import ode

    batch = 256 if quick else 4096
    repeats = 3 if quick else 5
    y0 = _initial_states(batch)
    ref = (
        solve_ivp(_vdp_numpy, (T0, T1), y0.reshape(-1), method="DOP853", rtol=1e-12, atol=1e-12)
        .y[:, -1]
        .reshape(batch, 2)
    )

    def vdp(t, y):
        return jnp.stack([y[:, 1], (1.0 - y[:, 0] ** 2) * y[:, 1] - y[:, 0]], axis=-1)

    case = f"vanderpol batch={batch}"
    rows: list[Row] = []
    y0_jax = jnp.asarray(y0, jnp.float32)

    rk4 = jax.jit(lambda y: ode.solve(vdp, y, T0, T1, num_steps=100, method="rk4"))
    timing = time_jax(rk4, y0_jax, repeats=repeats)
    err = float(np.max(np.abs(np.asarray(rk4(y0_jax)) - ref)))
    rows.append(
        Row(
            "ode",
            case + " rk4-100",
            "genjax",
            timing.compile_s,
            timing.run_s,
            {"max_err": err, "nfe": 400},
        )
    )

    dopri = jax.jit(
        lambda y: ode.solve(vdp, y, T0, T1, method="dopri5", rtol=TOL, atol=TOL, return_stats=True)
    )
    timing = time_jax(dopri, y0_jax, repeats=repeats)
    y1, stats = dopri(y0_jax)
    steps = int(stats["num_accepted"]) + int(stats["num_rejected"])
    rows.append(
        Row(
            "ode",
            case + " dopri5",
            "genjax",
            timing.compile_s,
            timing.run_s,
            {
                "max_err": float(np.max(np.abs(np.asarray(y1) - ref))),
                "accepted": int(stats["num_accepted"]),
                "nfe": 6 * steps + 2,
            },
        )
    )

    def scipy_rk45():
        return solve_ivp(_vdp_numpy, (T0, T1), y0.reshape(-1), method="RK45", rtol=TOL, atol=TOL)

    timing = time_host(scipy_rk45, repeats=repeats)
    sol = scipy_rk45()
    rows.append(
        Row(
            "ode",
            case + " dopri5",
            "scipy RK45 (float64)",
            timing.compile_s,
            timing.run_s,
            {
                "max_err": float(np.max(np.abs(sol.y[:, -1].reshape(batch, 2) - ref))),
                "accepted": int(sol.t.size - 1),
                "nfe": int(sol.nfev),
            },
        )
    )

    try:
        import diffrax
    except ImportError:
        return rows

    term = diffrax.ODETerm(lambda t, y, args: vdp(t, y))
    controller = diffrax.PIDController(rtol=TOL, atol=TOL)

    @jax.jit
    def diffrax_dopri5(y):
        return diffrax.diffeqsolve(
            term,
            diffrax.Dopri5(),
            T0,
            T1,
            None,
            y,
            stepsize_controller=controller,
            max_steps=10_000,
        ).ys[-1]

    timing = time_jax(diffrax_dopri5, y0_jax, repeats=repeats)
    err = float(np.max(np.abs(np.asarray(diffrax_dopri5(y0_jax)) - ref)))
    rows.append(
        Row("ode", case + " dopri5", "diffrax", timing.compile_s, timing.run_s, {"max_err": err})
    )
    return rows
