"""The flows family's entries for ``genjax train``: discrete flows, then continuous ones.

On 2-D toys (data standardised by statistics fixed at ``init``, kept out of the gradient;
the training losses are those of the standardised data, the reported log-likelihoods in the
data's own units, ``log p(x) = log p_std((x - m) / s) - D log s``, so they compare across
models):

* ``realnvp``: RealNVP (8 affine couplings, MLP conditioners) on the two moons;
* ``maf``: MAF (5 MADE layers, order reversed between layers) on the two moons; density
  evaluation is one MADE pass per layer, sampling two (one per dimension);
* ``nsf``: a rational-quadratic neural spline flow (4 spline couplings with LU linear
  layers in between) on the checkerboard, whose sharp square edges an affine flow cannot
  draw;
* ``ffjord``: a continuous normalizing flow (Grathwohl et al. 2019) on the ring, trained by
  maximum likelihood through the RK4 solve with Hutchinson's trace (one Rademacher probe,
  FFJORD's choice), evaluated with the exact trace;
* ``flow-matching``: conditional flow matching (Lipman et al. 2023) on the ring, CondOT /
  rectified-flow path with minibatch OT coupling (Tong et al. 2023), sampled by RK4;
  ``trajectories.png`` draws the ODE paths from noise to data; energy distance and mode
  coverage at 10/20/50 steps.

The likelihood models draw ``density.png`` (the model density on a grid beside samples over
the data). Every model is held as itself in the params (the flow's parameter pytree, or the
velocity network as an nnx module): the public flows functions trace it, so the recipes have
no compiled twins of their own.

On the 8x8 digits, ``glow``: multi-scale Glow (2 levels x 3 steps of ActNorm, LU 1x1 conv,
affine coupling with a conv conditioner), dequantised: a pixel ``k / 16`` (17 levels) becomes
``(k + u) / 17``, ``u ~ U(0, 1)`` (Theis et al. 2016; Ho et al. 2019 sec. 3.1), so
``log P(k) >= E_u log p(x) - D log 17``; the report gives bits per dimension of that bound on
the test digits. ActNorm is initialised from a training batch (Glow sec. 3.1).
"""

from __future__ import annotations

import abc
import math
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from genjax import metrics, plotting, targets
from genjax.flows import cnf, flow
from genjax.flows import flow_matching as fm
from genjax.recipe import Recipe

REPORT_SAMPLES = 2000
EVAL_CHUNK = 2048  # examples per log_prob call in the reports (one compiled shape)
GRID = 160  # density picture of the discrete flows: GRID x GRID points
CNF_GRID = 64  # ... of the CNF (an ODE solve with the exact trace per point)
CNF_LL_STEPS = 32  # RK4 steps of the CNF's held-out likelihood (exact trace)
FFJORD_HIDDEN = (64, 64, 64)
FFJORD_TRAIN_STEPS = 8  # RK4 steps of the training solve (differentiated through)
FFJORD_SAMPLE_STEPS = 32
FM_HIDDEN = (128, 128, 128)
FM_PATH = "condot"
FM_COUPLING = "ot"
FM_SAMPLE_STEPS = 20
FM_REPORT_STEPS = (10, 20, 50)

# --------------------------------------------------------------------------------------
# Pictures (matplotlib imported where a figure is drawn)
# --------------------------------------------------------------------------------------


def _limits(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.percentile(data, [0.5, 99.5], axis=0)
    margin = 0.15 * (hi - lo) + 1e-6
    return lo - margin, hi + margin


def _save(fig: Any, path: Path) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=fig.dpi)
    return str(path)


def plot_density(log_p_grid: np.ndarray, lo: np.ndarray, hi: np.ndarray, data: np.ndarray,
                 samples: np.ndarray, path: Path, *, title: str) -> str:
    """``exp(log p)`` on a grid ``(G, G)`` (rows = y) over ``[lo, hi]``; samples over data."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 5), dpi=100)
    ax = fig.add_subplot(1, 2, 1)
    ax.imshow(np.exp(log_p_grid), origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]),
              cmap="viridis", aspect="equal")  # fmt: skip
    ax.set_title("model density")
    ax = fig.add_subplot(1, 2, 2)
    ax.scatter(data[:, 0], data[:, 1], s=2, c="0.8", linewidths=0)
    ax.scatter(samples[:, 0], samples[:, 1], s=2, c="C0", linewidths=0)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.set_title(f"samples over data (n={len(samples)})")
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_trajectories(xs: np.ndarray, data: np.ndarray, path: Path, *, title: str) -> str:
    """ODE paths ``xs (steps + 1, n, 2)`` from noise (t = 0, grey) to data (t = 1, blue)."""
    from matplotlib.figure import Figure

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
# Density models on standardised 2-D data
# --------------------------------------------------------------------------------------


class Toy2D(abc.ABC):
    """A density model on standardised 2-D data: the recipe's init / loss / sample / report.

    ``params = {"model": ..., "shift": (2,), "scale": ()}``; a subclass says what the model
    is, its log-density, loss and sampler on standardised points ``u = (x - shift) / scale``.
    """

    grid = GRID

    def __init__(self, name: str, data: str):
        self.name = name
        self.data = data

    @abc.abstractmethod
    def init_model(self, key: jax.Array) -> Any:
        """The model: a flow's parameters or a velocity network."""

    @abc.abstractmethod
    def std_log_prob(self, model: Any, u: jax.Array) -> jax.Array:
        """``log p_std(u)``: ``(n, 2) -> (n,)``."""

    @abc.abstractmethod
    def std_loss(self, model: Any, u: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
        """The training loss on a standardised batch ``u (b, 2)``."""

    @abc.abstractmethod
    def std_sample(self, key: jax.Array, model: Any, n: int, **options: Any) -> jax.Array:
        """``n`` standardised samples ``(n, 2)``."""

    def quality(self, samples: jax.Array, test: np.ndarray) -> dict:
        """Figures beyond the likelihood and energy distance (none by default)."""
        del samples, test
        return {}

    # -- the recipe's functions ---------------------------------------------------------
    def init(self, key: jax.Array, train_data: Any) -> dict:
        """``{"model": ..., "shift": mean (2,), "scale": std ()}``."""
        x = jnp.asarray(train_data, jnp.float32)
        return {"model": self.init_model(key), "shift": jnp.mean(x, axis=0),
                "scale": jnp.std(x) + 1e-6}  # fmt: skip

    def _normalise(self, params: dict, x: jax.Array) -> jax.Array:
        shift = jax.lax.stop_gradient(params["shift"])[None]  # (1, 2)
        return (x - shift) / jax.lax.stop_gradient(params["scale"])

    def log_prob(self, params: dict, x: jax.Array) -> jax.Array:
        """``log p(x)`` in data units: ``log p_std((x - m)/s) - D log s``; ``x (n, 2)``."""
        u = self._normalise(params, x)
        return self.std_log_prob(params["model"], u) - x.shape[1] * jnp.log(params["scale"])

    def loss(self, params: dict, batch: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
        """The model's loss on the standardised batch ``(b, 2)``."""
        return self.std_loss(params["model"], self._normalise(params, batch), key)

    def sample(self, key: jax.Array, params: dict, n: int, **options: Any) -> jax.Array:
        """``n`` samples ``(n, 2)`` in data units."""
        u = self.std_sample(key, params["model"], int(n), **options)
        return u * params["scale"] + params["shift"][None]

    def chunked_log_prob(self, params: dict, x: np.ndarray) -> np.ndarray:
        """:meth:`log_prob` over ``x (n, 2)`` in chunks of one shape (one compilation)."""
        x = np.asarray(x, np.float32)
        n = len(x)
        pad = (-n) % EVAL_CHUNK
        xp = np.concatenate([x, np.repeat(x[:1], pad, axis=0)]) if pad else x
        out = [np.asarray(self.log_prob(params, jnp.asarray(xp[i : i + EVAL_CHUNK])))
               for i in range(0, len(xp), EVAL_CHUNK)]  # fmt: skip
        return np.concatenate(out)[:n]

    def report(self, key: jax.Array, params: dict, train_data: Any, test_data: Any,
               out_dir: Path) -> dict:
        """``density.png``, ``samples.png``; held-out and training log-likelihood (nats per
        example), the energy distance of samples to test data."""
        train, test = np.asarray(train_data), np.asarray(test_data)
        data = train[:5000]
        samples = np.asarray(self.sample(key, params, REPORT_SAMPLES))
        out_dir = Path(out_dir)
        lo, hi = _limits(data)
        gx, gy = np.linspace(lo[0], hi[0], self.grid), np.linspace(lo[1], hi[1], self.grid)
        mesh = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)  # (G^2, 2), row = y
        log_p = self.chunked_log_prob(params, mesh).reshape(self.grid, self.grid)
        plot_density(log_p, lo, hi, data, samples, out_dir / "density.png",
                     title=f"{self.name} on {self.data}")  # fmt: skip
        plotting.scatter_2d(samples, data, out_dir / "samples.png", title=f"{self.name} samples")
        n = min(REPORT_SAMPLES, len(test))
        cell = (gx[1] - gx[0]) * (gy[1] - gy[0])
        return {
            "test_log_likelihood": float(np.mean(self.chunked_log_prob(params, test))),
            "train_log_likelihood": float(np.mean(self.chunked_log_prob(params,
                                                                        train[: len(test)]))),
            "energy_distance": float(metrics.energy_distance(
                jnp.asarray(samples[:n]), jnp.asarray(test[:n], jnp.float32))),
            # The grid's mass (Riemann sum): ~1 when the density is right and the box holds it.
            "density_grid_mass": float(np.sum(np.exp(log_p)) * cell),
            **self.quality(jnp.asarray(samples), test),
        }  # fmt: skip


class FlowRecipe(Toy2D):
    """A discrete :class:`~genjax.flows.Flow` trained by maximum likelihood."""

    def __init__(self, name: str, data: str, flow_: flow.Flow):
        super().__init__(name, data)
        self.flow = flow_

    def init_model(self, key: jax.Array) -> Any:
        return self.flow.init(key)

    def std_log_prob(self, model: Any, u: jax.Array) -> jax.Array:
        return self.flow.log_prob(model, u)

    def std_loss(self, model: Any, u: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
        return self.flow.loss(model, u, key)  # mean NLL, bits/dim

    def std_sample(self, key: jax.Array, model: Any, n: int, **options: Any) -> jax.Array:
        return self.flow.sample(key, model, n)


def _mode_coverage(samples: jax.Array) -> float:
    """The fraction of the ring's 8 modes with a sample within 3 std of their mean."""
    return float(metrics.mode_coverage(samples, targets.ring().means, 3 * 0.3))


def _ring_quality(samples: jax.Array, test: Any) -> dict:
    """Energy distance to the test points and the coverage of the ring's modes."""
    test = jnp.asarray(test)
    n = min(samples.shape[0], test.shape[0])
    return {"energy_distance": float(metrics.energy_distance(samples[:n], test[:n])),
            "mode_coverage": _mode_coverage(samples)}  # fmt: skip


class VelocityRecipe(Toy2D):
    """A velocity network ``v(x, t)`` (:func:`genjax.flows.cnf.mlp_field`) on the ring:
    sampled by RK4 (``steps``), its likelihood the CNF's with the exact trace."""

    grid = CNF_GRID

    def __init__(self, name: str, hidden: tuple[int, ...], sample_steps: int):
        super().__init__(name, "ring")
        self.hidden = hidden
        self.sample_steps = sample_steps

    def init_model(self, key: jax.Array) -> Any:
        return cnf.mlp_field(key, 2, self.hidden, time_embed_dim=16)

    def std_log_prob(self, model: Any, u: jax.Array) -> jax.Array:
        return cnf.log_prob(model, u, trace="exact", num_steps=CNF_LL_STEPS)

    def std_sample(self, key: jax.Array, model: Any, n: int, *,
                   steps: int | None = None) -> jax.Array:
        """``steps`` RK4 steps (>= 1; default the recipe's)."""
        steps = self.sample_steps if steps is None else steps
        return fm.sample(key, model, (n, 2), num_steps=steps)

    def quality(self, samples: jax.Array, test: np.ndarray) -> dict:
        """The mode coverage and, for reference, the held-out log-likelihood of the exact
        ring density (the ceiling on the built-in ring)."""
        test = jnp.asarray(test[:REPORT_SAMPLES], jnp.float32)
        return {"mode_coverage": _mode_coverage(samples),
                "ring_density_test_log_likelihood": float(jnp.mean(
                    targets.ring().log_prob(test)))}  # fmt: skip


class FFJORDRecipe(VelocityRecipe):
    """FFJORD: maximum likelihood through the solve, Hutchinson's trace."""

    def std_loss(self, model: Any, u: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
        """NLL of the standardised batch (FFJORD eq. 3), one Rademacher probe per example."""
        nll, _ = cnf.loss(model, u, key, trace="hutchinson", num_steps=FFJORD_TRAIN_STEPS)
        return nll, {"nll_standardised": nll}


class FlowMatchingRecipe(VelocityRecipe):
    """Conditional flow matching, CondOT path, minibatch OT coupling."""

    def std_loss(self, model: Any, u: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
        return fm.loss(model, u, key, path=FM_PATH, coupling=FM_COUPLING)

    def report(self, key: jax.Array, params: dict, train_data: Any, test_data: Any,
               out_dir: Path) -> dict:
        """``samples.png``, ``trajectories.png``; held-out log-likelihood (exact trace) and,
        for 10/20/50 RK4 steps, energy distance and mode coverage."""
        data = np.asarray(train_data)[:5000]
        test = np.asarray(test_data)[:REPORT_SAMPLES]
        out = {"test_log_likelihood": float(np.mean(self.chunked_log_prob(params, test))),
               "ring_density_test_log_likelihood": float(jnp.mean(
                   targets.ring().log_prob(jnp.asarray(test, jnp.float32))))}  # fmt: skip
        model, scale, shift = params["model"], params["scale"], params["shift"]
        for steps in FM_REPORT_STEPS:
            _, us = fm.sample(key, model, (REPORT_SAMPLES, 2), num_steps=steps,
                              return_trajectory=True)  # (steps + 1, n, 2)
            xs = np.asarray(us * scale + shift[None, None])
            samples = jnp.asarray(xs[-1])
            if steps == FM_SAMPLE_STEPS:  # one solve gives the samples and their paths
                plotting.scatter_2d(samples, data, Path(out_dir) / "samples.png",
                                    title=f"flow matching (OT-CFM) on ring ({steps} RK4 steps)")
                plot_trajectories(xs[:, :300], data, Path(out_dir) / "trajectories.png",
                                  title=f"flow-matching ODE trajectories ({steps} RK4 steps)")
            quality = _ring_quality(samples, test_data)
            out.update({f"{k}_{steps}_steps": v for k, v in quality.items()})
        return out


REALNVP = FlowRecipe("realnvp", "moons", flow.realnvp(2, num_layers=8, hidden_sizes=(64, 64)))
MAF = FlowRecipe("maf", "moons", flow.maf(2, num_layers=5, hidden_sizes=(64, 64)))
NSF = FlowRecipe("nsf", "checkerboard", flow.neural_spline(2, num_layers=4, hidden_sizes=(64, 64),
                                                            num_bins=8, bound=3.0))  # fmt: skip
FFJORD = FFJORDRecipe("ffjord", FFJORD_HIDDEN, FFJORD_SAMPLE_STEPS)
FLOW_MATCHING = FlowMatchingRecipe("flow-matching", FM_HIDDEN, FM_SAMPLE_STEPS)

# --------------------------------------------------------------------------------------
# glow on the digits
# --------------------------------------------------------------------------------------

DIGIT_LEVELS = 17  # sklearn's digits take the values k / 16, k = 0..16
DIGITS_SHAPE = (8, 8, 1)
DIGITS_DIMS = math.prod(DIGITS_SHAPE)
GLOW = flow.glow(DIGITS_SHAPE, num_levels=2, num_steps=3, hidden_channels=24)
GLOW_INIT_BATCH = 256  # examples for ActNorm's data-dependent initialisation


def _dequantise(key: jax.Array, images: jax.Array) -> jax.Array:
    """``k / 16 -> (k + u) / 17 - 1/2``, ``u ~ U(0, 1)``: continuous, centred on [-1/2, 1/2]."""
    k = jnp.round(images * (DIGIT_LEVELS - 1))
    u = jax.random.uniform(key, images.shape)
    return (k + u) / DIGIT_LEVELS - 0.5


def glow_init(key: jax.Array, train_data: Any) -> list:
    """Glow parameters, ActNorm initialised from the first training images."""
    init_key, noise_key = jax.random.split(key)
    x = _dequantise(noise_key, jnp.asarray(train_data[:GLOW_INIT_BATCH], jnp.float32))
    return GLOW.init(init_key, x)


def _bits_per_dim(nll_continuous: jax.Array) -> jax.Array:
    """Bits/dim of the discrete bound ``-log P(k) <= nll(x) + D log 17``."""
    return metrics.bits_per_dim(nll_continuous + DIGITS_DIMS * math.log(DIGIT_LEVELS),
                                DIGITS_DIMS)


def glow_loss(params: list, batch: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
    """Mean NLL of a freshly dequantised ``batch (b, 8, 8, 1)``; bits/dim as a metric."""
    nll = -jnp.mean(GLOW.log_prob(params, _dequantise(key, batch)))
    return nll, {"nll": nll, "bits_per_dim": _bits_per_dim(nll)}


def glow_sample(key: jax.Array, params: list, n: int, *, temperature: float = 1.0) -> jax.Array:
    """``n`` digits ``(n, 8, 8, 1)`` in [0, 1]; ``temperature`` scales the base noise
    (Glow sec. 5 samples at T = 0.7): ``x = f(T z)``, ``z ~ N(0, I)``."""
    z = jax.random.normal(key, (int(n), *GLOW.base_shape))
    x = GLOW.forward(params, temperature * z)[0]
    return jnp.clip(x + 0.5, 0.0, 1.0)


def glow_report(key: jax.Array, params: list, train_data: Any, test_data: Any,
                out_dir: Path) -> dict:
    """``samples.png`` (T = 1) and ``samples_t07.png`` (T = 0.7); bits/dim of the test and
    training digits (one dequantisation draw each; the bound's gap is < 0.01 bit/dim)."""
    s_key, t_key, e_key = jax.random.split(key, 3)
    out_dir = Path(out_dir)
    plotting.image_grid(glow_sample(s_key, params, 64), out_dir / "samples.png",
                        title="glow on digits (T = 1)")  # fmt: skip
    plotting.image_grid(glow_sample(t_key, params, 64, temperature=0.7),
                        out_dir / "samples_t07.png", title="glow on digits (T = 0.7)")  # fmt: skip
    test = jnp.asarray(test_data, jnp.float32)
    train = jnp.asarray(train_data[: len(test_data)], jnp.float32)
    nll_test = float(glow_loss(params, test, e_key)[0])
    nll_train = float(glow_loss(params, train, e_key)[0])
    return {
        "test_bits_per_dim": float(_bits_per_dim(nll_test)),
        "train_bits_per_dim": float(_bits_per_dim(nll_train)),
        "test_log_likelihood": -nll_test,
        "uniform_bits_per_dim": math.log2(DIGIT_LEVELS),
    }


def _toy_recipe(toy: Toy2D, summary: str, **fields: Any) -> Recipe:
    # The ring's modes and exact density hold for the built-in ring only.
    ring = ("mode_coverage", "ring_density_test_log_likelihood") if toy.data == "ring" else ()
    return Recipe(name=toy.name, family="flows", data=toy.data, summary=summary, init=toy.init,
                  loss=toy.loss, sample=toy.sample, report=toy.report, data_figures=ring,
                  **fields)


RECIPES: tuple[Recipe, ...] = (
    _toy_recipe(REALNVP, "RealNVP (8 affine couplings) on the 2-D moons; density heat map, "
                "held-out LL", steps=2000, batch_size=256, learning_rate=1e-3),
    Recipe(
        name="glow", family="flows", data="digits",
        summary="multi-scale Glow on dequantised 8x8 digits; bits/dim on the test digits",
        init=glow_init, loss=glow_loss, sample=glow_sample, report=glow_report,
        steps=800, batch_size=64, learning_rate=1e-3, sample_options=("temperature",),
    ),
    _toy_recipe(MAF, "MAF (5 MADE layers) on the 2-D moons; density heat map, held-out LL",
                steps=2000, batch_size=256, learning_rate=1e-3),
    _toy_recipe(NSF, "rational-quadratic neural spline flow on the 2-D checkerboard; held-out "
                "LL", steps=2000, batch_size=256, learning_rate=1e-3),
    _toy_recipe(FFJORD, "FFJORD continuous flow (max. likelihood, Hutchinson trace) on the 2-D "
                "ring", steps=1000, batch_size=256, learning_rate=3e-3, sample_options=("steps",)),
    _toy_recipe(FLOW_MATCHING, "conditional flow matching (CondOT path, minibatch OT) on the "
                "2-D ring", steps=2000, batch_size=256, learning_rate=2e-3, ema_decay=0.995,
                sample_options=("steps",)),
)  # fmt: skip
