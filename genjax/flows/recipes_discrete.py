"""``genjax train realnvp | glow | maf | nsf``: the discrete normalizing flows' training jobs.

All four are trained by maximum likelihood (the mean negative log-likelihood of a batch,
:meth:`genjax.flows.Flow.loss`) and report the held-out log-likelihood on the test split.

* ``realnvp``: RealNVP (8 affine couplings, MLP conditioners) on the 2-D two moons;
  ``density.png`` shows the learned density as a heat map, ``samples.png`` samples over data.
* ``maf``: MAF (5 MADE layers, order reversed between layers) on the two moons; the same
  pictures. Density evaluation is one MADE pass per layer, sampling two (one per dimension).
* ``nsf``: a rational-quadratic neural spline flow (4 spline couplings with LU linear
  layers in between) on the 2-D checkerboard, whose sharp square edges an affine flow
  cannot draw.
* ``glow``: multi-scale Glow (2 levels x 3 steps of ActNorm, LU 1x1 conv, affine coupling
  with a conv conditioner) on the 8x8 digits, dequantised: a pixel ``k / 16`` (17 levels)
  becomes ``(k + u) / 17``, ``u ~ U(0, 1)`` (Theis et al. 2016; Ho et al. 2019 sec. 3.1), so
  ``log P(k) >= E_u log p(x) - D log 17`` and the report gives bits per dimension of that
  bound on the test digits. ActNorm is initialised from a training batch (Glow sec. 3.1).

The 2-D data are standardised by statistics fixed at ``init`` (kept out of the gradient);
log-likelihoods are reported in the data's own units (``log p(x) = log p_flow((x - m) / s)
- D log s``), so they compare across models.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from genjax.flows import flow as flows
from genjax.recipe import Recipe

REPORT_SAMPLES = 2000
GRID = 160  # heat map resolution per axis
EVAL_CHUNK = 2048  # examples per log_prob call in the reports

# --------------------------------------------------------------------------------------
# 2-D flows on standardised data
# --------------------------------------------------------------------------------------


def _chunked_log_prob(log_prob_fn, params, x: np.ndarray) -> np.ndarray:
    """``log_prob_fn(params, x)`` over ``x (n, ...)`` in fixed-size chunks (one compile)."""
    x = np.asarray(x, np.float32)
    n = len(x)
    pad = (-n) % EVAL_CHUNK
    xp = np.concatenate([x, np.repeat(x[:1], pad, axis=0)]) if pad else x
    out = [np.asarray(log_prob_fn(params, jnp.asarray(xp[i : i + EVAL_CHUNK])))
           for i in range(0, len(xp), EVAL_CHUNK)]  # fmt: skip
    return np.concatenate(out)[:n]


def density_heatmap(
    log_prob_fn, params, data: np.ndarray, samples: np.ndarray, path: Path, *, title: str
) -> Path:
    """Two panels: the model density ``exp(log p)`` on a grid over the data's box, and
    samples over data. ``log_prob_fn(params, x (n, 2)) -> (n,)``."""
    lo, hi = np.percentile(data, [0.5, 99.5], axis=0)
    margin = 0.15 * (hi - lo)
    lo, hi = lo - margin, hi + margin
    gx, gy = np.linspace(lo[0], hi[0], GRID), np.linspace(lo[1], hi[1], GRID)
    mesh = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)  # (GRID^2, 2), row = y
    dens = np.exp(_chunked_log_prob(log_prob_fn, params, mesh)).reshape(GRID, GRID)
    fig = Figure(figsize=(10, 5), dpi=100)
    ax = fig.add_subplot(1, 2, 1)
    ax.imshow(dens, origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]), cmap="viridis",
              aspect="equal")  # fmt: skip
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
    FigureCanvasAgg(fig)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


class _Toy2D:
    """Recipe functions for a flow on standardised 2-D data."""

    def __init__(self, name: str, data: str, flow: flows.Flow):
        self.name = name
        self.data = data
        self.flow = flow

    def init(self, key: jax.Array, train_data) -> dict:
        """``{"flow": flow params, "shift": (2,), "scale": ()}``."""
        x = jnp.asarray(train_data, jnp.float32)
        return {"flow": self.flow.init(key), "shift": jnp.mean(x, axis=0),
                "scale": jnp.std(x) + 1e-6}  # fmt: skip

    def log_prob(self, params: dict, x: jax.Array) -> jax.Array:
        """``log p(x)`` in data units: ``log p_flow((x - m)/s) - D log s``; ``x (n, 2)``."""
        shift = jax.lax.stop_gradient(params["shift"])
        scale = jax.lax.stop_gradient(params["scale"])
        u = (x - shift[None]) / scale
        return self.flow.log_prob(params["flow"], u) - x.shape[1] * jnp.log(scale)

    def loss(self, params: dict, batch: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
        """Mean negative log-likelihood of ``batch (b, 2)`` in data units."""
        del key
        nll = -jnp.mean(self.log_prob(params, batch))
        return nll, {"nll": nll}

    @functools.partial(jax.jit, static_argnames=("self", "n"))
    def _sample(self, key, params, n: int):
        u = self.flow.sample(key, params["flow"], n)
        return u * params["scale"] + params["shift"][None]

    def sample(self, key: jax.Array, params: dict, n: int) -> jax.Array:
        """``n`` samples ``(n, 2)`` in data units."""
        return self._sample(key, params, int(n))

    @functools.partial(jax.jit, static_argnames=("self",))
    def _log_prob_jit(self, params, x):
        return self.log_prob(params, x)

    def report(self, key, params, train_data, test_data, out_dir: Path) -> dict:
        """``density.png`` (heat map + samples), ``samples.png``; held-out and training
        log-likelihood (nats per example), the energy distance of samples to test data."""
        from genjax import metrics, plotting

        train, test = np.asarray(train_data), np.asarray(test_data)
        samples = np.asarray(self.sample(key, params, REPORT_SAMPLES))
        out_dir = Path(out_dir)
        density_heatmap(self._log_prob_jit, params, train[:5000], samples,
                        out_dir / "density.png", title=f"{self.name} on {self.data}")  # fmt: skip
        plotting.scatter_2d(samples, train[:5000], out_dir / "samples.png",
                            title=f"{self.name} samples")  # fmt: skip
        n = min(REPORT_SAMPLES, len(test))
        test_ll = _chunked_log_prob(self._log_prob_jit, params, test)
        train_ll = _chunked_log_prob(self._log_prob_jit, params, train[: len(test)])
        return {
            "test_log_likelihood": float(np.mean(test_ll)),
            "train_log_likelihood": float(np.mean(train_ll)),
            "energy_distance": float(metrics.energy_distance(
                jnp.asarray(samples[:n]), jnp.asarray(test[:n], jnp.float32))),
        }  # fmt: skip


REALNVP = _Toy2D("realnvp", "moons", flows.realnvp(2, num_layers=8, hidden_sizes=(64, 64)))
MAF = _Toy2D("maf", "moons", flows.maf(2, num_layers=5, hidden_sizes=(64, 64)))
NSF = _Toy2D(
    "nsf", "checkerboard",
    flows.neural_spline(2, num_layers=4, hidden_sizes=(64, 64), num_bins=8, bound=3.0),
)  # fmt: skip

# --------------------------------------------------------------------------------------
# glow on the digits
# --------------------------------------------------------------------------------------

DIGIT_LEVELS = 17  # sklearn's digits take the values k / 16, k = 0..16
DIGITS_SHAPE = (8, 8, 1)
DIGITS_DIMS = math.prod(DIGITS_SHAPE)
GLOW = flows.glow(DIGITS_SHAPE, num_levels=2, num_steps=3, hidden_channels=24)
GLOW_INIT_BATCH = 256  # examples for ActNorm's data-dependent initialisation


def _dequantise(key: jax.Array, images: jax.Array) -> jax.Array:
    """``k / 16 -> (k + u) / 17 - 1/2``, ``u ~ U(0, 1)``: continuous, centred on [-1/2, 1/2]."""
    k = jnp.round(images * (DIGIT_LEVELS - 1))
    u = jax.random.uniform(key, images.shape)
    return (k + u) / DIGIT_LEVELS - 0.5


def glow_init(key: jax.Array, train_data) -> list:
    """Glow parameters, ActNorm initialised from the first training images."""
    init_key, noise_key = jax.random.split(key)
    x = _dequantise(noise_key, jnp.asarray(train_data[:GLOW_INIT_BATCH], jnp.float32))
    return GLOW.init(init_key, x)


def _bits_per_dim(nll_continuous: jax.Array) -> jax.Array:
    """Bits/dim of the discrete bound ``-log P(k) <= nll(x) + D log 17``."""
    return (nll_continuous + DIGITS_DIMS * math.log(DIGIT_LEVELS)) / (
        DIGITS_DIMS * math.log(2.0)
    )


def glow_loss(params, batch: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
    """Mean NLL of a freshly dequantised ``batch (b, 8, 8, 1)``; bits/dim as a metric."""
    x = _dequantise(key, batch)
    nll = -jnp.mean(GLOW.log_prob(params, x))
    return nll, {"nll": nll, "bits_per_dim": _bits_per_dim(nll)}


@functools.partial(jax.jit, static_argnames=("n",))
def _glow_sample(key, params, n: int, temperature):
    z = temperature * jax.random.normal(key, (n, *GLOW.base_shape))
    x = GLOW.forward(params, z)[0]
    return jnp.clip(x + 0.5, 0.0, 1.0)


def glow_sample(key: jax.Array, params, n: int, *, temperature: float = 1.0) -> jax.Array:
    """``n`` digits ``(n, 8, 8, 1)`` in [0, 1]; ``temperature`` scales the base noise
    (Glow sec. 5 samples at T = 0.7)."""
    return _glow_sample(key, params, int(n), jnp.asarray(temperature, jnp.float32))


@jax.jit
def _glow_nll(params, key, images):
    return -GLOW.log_prob(params, _dequantise(key, images))


def glow_report(key, params, train_data, test_data, out_dir: Path) -> dict:
    """``samples.png`` (T = 1) and ``samples_t07.png`` (T = 0.7); bits/dim of the test and
    training digits (one dequantisation draw each; the bound's gap is < 0.01 bit/dim)."""
    from genjax import plotting

    s_key, t_key, e_key = jax.random.split(key, 3)
    out_dir = Path(out_dir)
    plotting.image_grid(glow_sample(s_key, params, 64), out_dir / "samples.png",
                        title="glow on digits (T = 1)")  # fmt: skip
    plotting.image_grid(glow_sample(t_key, params, 64, temperature=0.7),
                        out_dir / "samples_t07.png", title="glow on digits (T = 0.7)")  # fmt: skip
    test = jnp.asarray(test_data, jnp.float32)
    train = jnp.asarray(train_data[: len(test_data)], jnp.float32)
    nll_test = float(jnp.mean(_glow_nll(params, e_key, test)))
    nll_train = float(jnp.mean(_glow_nll(params, e_key, train)))
    return {
        "test_bits_per_dim": float(_bits_per_dim(nll_test)),
        "train_bits_per_dim": float(_bits_per_dim(nll_train)),
        "test_log_likelihood": -nll_test,
        "uniform_bits_per_dim": math.log2(DIGIT_LEVELS),
    }


RECIPES: tuple[Recipe, ...] = (
    Recipe(
        name="realnvp", family="flows", data="moons",
        summary="RealNVP (8 affine couplings) on the 2-D moons; density heat map, held-out LL",
        init=REALNVP.init, loss=REALNVP.loss, sample=REALNVP.sample, report=REALNVP.report,
        steps=2000, batch_size=256, learning_rate=1e-3,
    ),
    Recipe(
        name="glow", family="flows", data="digits",
        summary="multi-scale Glow on dequantised 8x8 digits; bits/dim on the test digits",
        init=glow_init, loss=glow_loss, sample=glow_sample, report=glow_report,
        steps=800, batch_size=64, learning_rate=1e-3, sample_options=("temperature",),
    ),
    Recipe(
        name="maf", family="flows", data="moons",
        summary="MAF (5 MADE layers) on the 2-D moons; density heat map, held-out LL",
        init=MAF.init, loss=MAF.loss, sample=MAF.sample, report=MAF.report,
        steps=2000, batch_size=256, learning_rate=1e-3,
    ),
    Recipe(
        name="nsf", family="flows", data="checkerboard",
        summary="rational-quadratic neural spline flow on the 2-D checkerboard; held-out LL",
        init=NSF.init, loss=NSF.loss, sample=NSF.sample, report=NSF.report,
        steps=2000, batch_size=256, learning_rate=1e-3,
    ),
)  # fmt: skip
