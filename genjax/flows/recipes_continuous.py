"""``genjax train ffjord | flow-matching``: the continuous flows' training jobs on the ring.

* ``ffjord``: a continuous normalizing flow (Grathwohl et al. 2019) trained by maximum
  likelihood — the augmented ODE of :mod:`genjax.flows.cnf` solved by RK4 and
  differentiated through the solver, the divergence by Hutchinson's estimator with
  Rademacher probes during training (FFJORD's choice) and exactly (2-D) for the report.
  The report draws the model density on a grid (``density.png``) and samples
  (``samples.png``).
* ``flow-matching``: conditional flow matching (Lipman et al. 2023) on the CondOT /
  rectified-flow path with minibatch optimal-transport coupling (Tong et al. 2023), sampled
  by RK4 through :func:`genjax.flows.flow_matching.sample`. The report scatters samples
  (``samples.png``) and draws the ODE trajectories from noise to data
  (``trajectories.png``); energy distance and mode coverage at 10/20/50 steps.

Both report the held-out log-likelihood (nats per example on the test split, in the
units of the raw data) through the CNF log-density with the exact trace. Data are
standardised by statistics fixed at ``init`` (kept out of the gradient), so the density
of a raw point is ``log p(x) = log p_std((x - shift) / scale) - D log(scale)``.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from genjax.flows import cnf
from genjax.flows import flow_matching as fm
from genjax.recipe import Recipe

REPORT_SAMPLES = 2000
LL_STEPS = 32  # RK4 steps of the held-out likelihood solve (exact trace)
GRID = 64  # density picture: GRID x GRID points

# --------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------


def _standardise_stats(x) -> dict:
    x = jnp.asarray(x, jnp.float32)
    return {"shift": jnp.mean(x, axis=0), "scale": jnp.std(x) + 1e-6}


def _normalise(params: dict, x: jax.Array) -> jax.Array:
    shift = jax.lax.stop_gradient(params["shift"])[None]  # (1, D)
    return (x - shift) / jax.lax.stop_gradient(params["scale"])


def _denormalise(params: dict, x: jax.Array) -> jax.Array:
    return x * params["scale"] + params["shift"][None]


def _make_net(key: jax.Array, hidden: tuple[int, ...]) -> nnx.Module:
    return cnf.mlp_field(key, 2, hidden, time_embed_dim=16)


@functools.cache
def _graph(hidden: tuple[int, ...]) -> nnx.GraphDef:
    return nnx.split(nnx.eval_shape(lambda: _make_net(jax.random.key(0), hidden)))[0]


def _field(net_state, hidden: tuple[int, ...]) -> cnf.FieldFn:
    net = nnx.merge(_graph(hidden), net_state)
    return lambda x, t: net(x, t)  # v(x (b, 2), t (b,)) -> (b, 2)


def _init(hidden: tuple[int, ...]):
    def init(key: jax.Array, train_data) -> dict:
        """``{"net": field state, "shift": (2,), "scale": ()}``."""
        return {"net": nnx.split(_make_net(key, hidden))[1], **_standardise_stats(train_data)}

    return init


@functools.partial(jax.jit, static_argnames=("hidden", "num_steps"))
def _log_prob_raw(params, x, *, hidden, num_steps):
    """log p(x) of raw points x (n, 2): exact trace, RK4, standardisation Jacobian."""
    field = _field(params["net"], hidden)
    log_p = cnf.log_prob(field, _normalise(params, x), trace="exact", num_steps=num_steps)
    return log_p - x.shape[1] * jnp.log(params["scale"])  # - D log(scale)


def _held_out_ll(params, test, hidden) -> dict:
    """Mean held-out log-likelihood (nats) of the model and, for reference, of the exact
    ring density (the ceiling when the data are the built-in ring)."""
    from genjax import targets

    test = jnp.asarray(test[:REPORT_SAMPLES], jnp.float32)
    lp = _log_prob_raw(params, test, hidden=hidden, num_steps=LL_STEPS)
    return {"test_log_likelihood": float(jnp.mean(lp)),
            "ring_density_test_log_likelihood": float(jnp.mean(targets.ring().log_prob(test)))}


def _ring_quality(samples, test) -> dict:
    from genjax import metrics, targets

    truth = targets.ring()
    test = jnp.asarray(test)
    n = min(samples.shape[0], test.shape[0])
    return {
        "energy_distance": float(metrics.energy_distance(samples[:n], test[:n])),
        "mode_coverage": float(metrics.mode_coverage(samples, truth.means, 3 * 0.3)),
    }


# --------------------------------------------------------------------------------------
# Pictures (off-screen Agg canvas on a bare Figure, as genjax.plotting does)
# --------------------------------------------------------------------------------------


def _save(fig: Figure, path: Path) -> str:
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=fig.dpi)
    return path


def _limits(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.percentile(data, [0.5, 99.5], axis=0)
    margin = 0.15 * (hi - lo) + 1e-6
    return lo - margin, hi + margin


def plot_density(log_p_grid: np.ndarray, lo, hi, samples: np.ndarray, path: Path, *,
                 title: str) -> str:
    """Model density ``exp(log p)`` on a grid ``(GRID, GRID)`` beside model samples."""
    fig = Figure(figsize=(10, 5), dpi=100)
    ax = fig.add_subplot(1, 2, 1)
    ax.imshow(np.exp(log_p_grid), origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]),
              cmap="viridis", aspect="equal")
    ax.set_title("model density exp(log p) (exact trace)")
    ax = fig.add_subplot(1, 2, 2)
    ax.scatter(samples[:, 0], samples[:, 1], s=2, c="C0", linewidths=0)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.set_title(f"samples (n={len(samples)})")
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_trajectories(xs: np.ndarray, data: np.ndarray, path: Path, *, title: str) -> str:
    """ODE paths ``xs (steps + 1, n, 2)`` from noise (t = 0, grey) to data (t = 1, blue)."""
    fig = Figure(figsize=(6, 6), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(data[:, 0], data[:, 1], s=2, c="0.85", linewidths=0)
    ax.plot(xs[:, :, 0], xs[:, :, 1], c="C1", lw=0.5, alpha=0.6)
    ax.scatter(xs[0, :, 0], xs[0, :, 1], s=6, c="0.4", linewidths=0, label="t = 0 (noise)")
    ax.scatter(xs[-1, :, 0], xs[-1, :, 1], s=6, c="C0", linewidths=0, label="t = 1 (samples)")
    lo, hi = _limits(np.concatenate([data, xs.reshape(-1, 2)]))
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.legend(loc="upper right")
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)


# --------------------------------------------------------------------------------------
# ffjord on the ring
# --------------------------------------------------------------------------------------

FFJORD_HIDDEN = (64, 64, 64)
FFJORD_TRAIN_STEPS = 8  # RK4 steps of the training solve (differentiated through)
FFJORD_SAMPLE_STEPS = 32


def ffjord_loss(params: dict, batch: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
    """Negative log-likelihood of a standardised batch ``(batch, 2)`` (FFJORD eq. 3),
    divergence by Hutchinson with one Rademacher probe per example."""
    x = _normalise(params, batch)
    field = _field(params["net"], FFJORD_HIDDEN)
    log_p = cnf.log_prob(field, x, trace="hutchinson", key=key, num_steps=FFJORD_TRAIN_STEPS)
    nll = -jnp.mean(log_p)
    return nll, {"nll_standardised": nll}


@functools.partial(jax.jit, static_argnames=("n", "steps", "hidden"))
def _sample_jit(key, params, n: int, steps: int, hidden: tuple[int, ...]) -> jax.Array:
    x = fm.sample(key, _field(params["net"], hidden), (n, 2), num_steps=steps)
    return _denormalise(params, x)


def _check_steps(steps) -> int:
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    return int(steps)


def ffjord_sample(key: jax.Array, params: dict, n: int, *, steps: int = FFJORD_SAMPLE_STEPS
                  ) -> jax.Array:
    """``n`` samples ``(n, 2)``: ``z ~ N(0, I)`` pushed through ``steps`` RK4 steps."""
    return _sample_jit(key, params, int(n), _check_steps(steps), FFJORD_HIDDEN)


def _density_grid(params, hidden, lo, hi) -> np.ndarray:
    xs = np.linspace(lo[0], hi[0], GRID)
    ys = np.linspace(lo[1], hi[1], GRID)
    gx, gy = np.meshgrid(xs, ys)  # (GRID, GRID) each, rows = y
    pts = jnp.asarray(np.stack([gx.ravel(), gy.ravel()], axis=1), jnp.float32)  # (GRID^2, 2)
    lp = _log_prob_raw(params, pts, hidden=hidden, num_steps=LL_STEPS)
    return np.asarray(lp).reshape(GRID, GRID)


def ffjord_report(key, params, train_data, test_data, out_dir: Path) -> dict:
    """``density.png`` (model density on a grid and samples), ``samples.png`` (samples over
    the data), the held-out log-likelihood, energy distance and mode coverage."""
    from genjax import plotting

    data = np.asarray(train_data)[:5000]
    samples = ffjord_sample(key, params, REPORT_SAMPLES)
    lo, hi = _limits(data)
    grid = _density_grid(params, FFJORD_HIDDEN, lo, hi)
    # The grid's mass (Riemann sum): ~1 when the density is right and the box holds the data.
    cell = (hi[0] - lo[0]) / (GRID - 1) * (hi[1] - lo[1]) / (GRID - 1)
    plot_density(grid, lo, hi, np.asarray(samples), Path(out_dir) / "density.png",
                 title="ffjord on ring")
    plotting.scatter_2d(samples, data, Path(out_dir) / "samples.png",
                        title=f"ffjord on ring ({FFJORD_SAMPLE_STEPS} RK4 steps)")
    out = {**_held_out_ll(params, np.asarray(test_data), FFJORD_HIDDEN),
           "density_grid_mass": float(np.sum(np.exp(grid)) * cell)}
    out.update(_ring_quality(samples, test_data))
    return out


# --------------------------------------------------------------------------------------
# flow matching on the ring
# --------------------------------------------------------------------------------------

FM_HIDDEN = (128, 128, 128)
FM_PATH = "condot"
FM_COUPLING = "ot"
FM_SAMPLE_STEPS = 20
FM_REPORT_STEPS = (10, 20, 50)


def fm_apply(net_state, x: jax.Array, t: jax.Array) -> jax.Array:
    return _field(net_state, FM_HIDDEN)(x, t)


def fm_loss(params: dict, batch: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
    """CFM loss (CondOT path, minibatch OT coupling) on a standardised batch ``(batch, 2)``."""
    x1 = _normalise(params, batch)
    return fm.loss(params["net"], key, x1, apply_fn=fm_apply, path=FM_PATH,
                   coupling=FM_COUPLING)


def fm_sample(key: jax.Array, params: dict, n: int, *, steps: int = FM_SAMPLE_STEPS
              ) -> jax.Array:
    """``n`` samples ``(n, 2)`` by ``steps`` RK4 steps of the learned ODE."""
    return _sample_jit(key, params, int(n), _check_steps(steps), FM_HIDDEN)


@functools.partial(jax.jit, static_argnames=("n", "steps"))
def _fm_trajectories(key, params, n: int, steps: int):
    _, xs = fm.sample(key, _field(params["net"], FM_HIDDEN), (n, 2), num_steps=steps,
                      save_trajectory=True)
    return xs * params["scale"] + params["shift"][None, None]  # (steps + 1, n, 2)


def fm_report(key, params, train_data, test_data, out_dir: Path) -> dict:
    """``samples.png``, ``trajectories.png``; held-out log-likelihood (exact trace) and, for
    10/20/50 RK4 steps, energy distance and mode coverage."""
    from genjax import plotting

    data = np.asarray(train_data)[:5000]
    out = _held_out_ll(params, np.asarray(test_data), FM_HIDDEN)
    for steps in FM_REPORT_STEPS:
        if steps == FM_SAMPLE_STEPS:  # one solve gives the samples and their trajectories
            xs = np.asarray(_fm_trajectories(key, params, REPORT_SAMPLES, steps))
            samples = jnp.asarray(xs[-1])
            plotting.scatter_2d(samples, data, Path(out_dir) / "samples.png",
                                title=f"flow matching (OT-CFM) on ring ({steps} RK4 steps)")
            plot_trajectories(xs[:, :300], data, Path(out_dir) / "trajectories.png",
                              title=f"flow-matching ODE trajectories ({steps} RK4 steps)")
        else:
            samples = fm_sample(key, params, REPORT_SAMPLES, steps=steps)
        quality = _ring_quality(samples, test_data)
        out.update({f"{k}_{steps}_steps": v for k, v in quality.items()})
    return out


RECIPES: tuple[Recipe, ...] = (
    Recipe(
        name="ffjord",
        family="flows",
        summary="FFJORD continuous flow (max. likelihood, Hutchinson trace) on the 2-D ring",
        data="ring",
        init=_init(FFJORD_HIDDEN),
        loss=ffjord_loss,
        sample=ffjord_sample,
        report=ffjord_report,
        steps=1000,
        batch_size=256,
        learning_rate=3e-3,
        sample_options=("steps",),
    ),
    Recipe(
        name="flow-matching",
        family="flows",
        summary="conditional flow matching (CondOT path, minibatch OT) on the 2-D ring",
        data="ring",
        init=_init(FM_HIDDEN),
        loss=fm_loss,
        sample=fm_sample,
        report=fm_report,
        steps=2000,
        batch_size=256,
        learning_rate=2e-3,
        ema_decay=0.995,
        sample_options=("steps",),
    ),
)
