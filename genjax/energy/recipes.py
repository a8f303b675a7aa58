"""``genjax train ebm | ebm-digits | score-matching | rbm``: the energy family's training jobs.

* ``ebm``: an :class:`MLPEnergy` on the 2-D ring trained by persistent contrastive
  divergence with a replay buffer (Tieleman 2008; Du & Mordatch 2019: 95% buffer / 5%
  fresh uniform starts, Langevin negatives, L2 energy regulariser), sampled by Langevin
  dynamics (or MALA) on the learnt ``exp(-E)`` from uniform noise. The report draws the
  energy landscape (``energy.png``) and the samples over the data (``samples.png``) and
  gives the energy distance and MMD to held-out data and the ring-mode coverage.
* ``ebm-digits``: a :class:`ConvEnergy` on the 8x8 digits, the same PCD recipe with the
  chains clipped to the pixel box [0, 1] and a small decoupled Langevin noise (Du &
  Mordatch 2019, sec. 3.1). Report: a grid of samples and energy distance / MMD of the
  flattened images to held-out digits.
* ``score-matching``: a noise-conditional score network on the swiss roll trained by
  denoising score matching over 10 geometric noise levels (Song & Ermon 2019, eq. 6) and
  sampled by annealed Langevin dynamics (their Algorithm 1) with a final denoising step.
* ``rbm``: a binary RBM (64 visible x 64 hidden) on the digits thresholded at 0.5, trained
  by CD-1 (Hinton 2002), sampled by block Gibbs; its log Z by annealed importance sampling
  (Salakhutdinov & Murray 2008) gives the average test and train log-likelihood per image.

The PCD recipes are ``step`` recipes: ``params`` holds the network (the ``nnx.Module``
itself: a pytree, differentiated, updated by optax and checkpointed as it is), the Adam
state and the replay buffer. The 2-D data are standardised by statistics fixed at ``init``.
Sampling calls the family's public samplers with the network as the model
(:func:`genjax.energy.energy_score` / :func:`genjax.energy.energy_log_prob` of it): the
compiled sampler is reused for every set of weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from genjax import checks
from genjax.energy import loss as L
from genjax.energy import rbm as RBM
from genjax.energy.energy_model import energy_log_prob, energy_score
from genjax.energy.mcmc import annealed_langevin, langevin, mala
from genjax.energy.network import ConvEnergy, MLPEnergy, NoiseConditionalScore
from genjax.recipe import Recipe

REPORT_SAMPLES = 2000

# --------------------------------------------------------------------------------------
# Shared
# --------------------------------------------------------------------------------------


def _stats(x: Any) -> dict:
    x = jnp.asarray(x, jnp.float32)
    return {"shift": jnp.mean(x, axis=0), "scale": jnp.std(x) + 1e-6}


def _quality(samples: jax.Array, test: jax.Array) -> dict:
    from genjax import metrics

    n = min(samples.shape[0], test.shape[0])
    a = jnp.asarray(samples[:n], jnp.float32).reshape(n, -1)
    b = jnp.asarray(test[:n], jnp.float32).reshape(n, -1)
    return {"energy_distance": float(metrics.energy_distance(a, b)),
            "mmd": float(metrics.mmd(a, b))}  # fmt: skip


# --------------------------------------------------------------------------------------
# ebm: PCD on the ring
# --------------------------------------------------------------------------------------

RING_HIDDEN = (128, 128)
RING_BOX = 2.5  # buffer / fresh starts uniform on [-2.5, 2.5]^2 (standardised units)
RING_BUFFER = 8192
RING_K = 20  # Langevin steps per update
RING_STEP = 0.005  # h; the modes have std ~0.1 in standardised units
RING_ALPHA = 0.1
RING_LR = 1e-3
RING_SAMPLE_STEPS = 1000
# Adam with beta1 = 0 as Du & Mordatch (2019): the CD gradient is noisy and non-stationary.
_ring_opt = optax.adam(RING_LR, b1=0.0, b2=0.999)


def ebm_init(key: jax.Array, train_data: Any) -> dict:
    """``{"net": MLPEnergy, "opt", "buffer" (RING_BUFFER, 2), "shift", "scale"}``."""
    net_key, buf_key = jax.random.split(key)
    net = MLPEnergy(2, RING_HIDDEN, rngs=nnx.Rngs(net_key))
    buffer = L.replay_buffer_init(buf_key, RING_BUFFER, (2,), low=-RING_BOX, high=RING_BOX)
    return {"net": net, "opt": _ring_opt.init(net), "buffer": buffer, **_stats(train_data)}


def _pcd_update(params: dict, x: jax.Array, key: jax.Array, opt, **options) -> tuple[dict, dict]:
    """One PCD update of ``params["net"]``: negatives from the buffer, CD loss + L2, Adam,
    buffer write-back."""
    grad_fn = jax.value_and_grad(L.persistent_contrastive_divergence_loss, has_aux=True)
    (loss, (metrics, buffer)), grads = grad_fn(params["net"], x, key, params["buffer"],
                                               **options)  # fmt: skip
    updates, opt_state = opt.update(grads, params["opt"], params["net"])
    net = optax.apply_updates(params["net"], updates)
    return {**params, "net": net, "opt": opt_state, "buffer": buffer}, {"loss": loss, **metrics}


def ebm_step(params: dict, batch: jax.Array, key: jax.Array) -> tuple[dict, dict]:
    """One PCD update on a standardised batch ``(b, 2)``."""
    x = (batch - params["shift"][None]) / params["scale"]
    return _pcd_update(params, x, key, _ring_opt, num_steps=RING_K, step_size=RING_STEP,
                       alpha=RING_ALPHA, low=-RING_BOX, high=RING_BOX)  # fmt: skip


def ebm_sample(key: jax.Array, params: dict, n: int, *, sampler: str = "langevin",
               steps: int | None = None) -> jax.Array:  # fmt: skip
    """``n`` samples ``(n, 2)`` of ``exp(-E)``: ``steps`` (default 1000) steps of Langevin
    dynamics or MALA from uniform noise on the buffer's box."""
    checks.one_of("sampler", sampler, ("langevin", "mala"))
    steps = RING_SAMPLE_STEPS if steps is None else checks.positive_int("steps", steps)
    init_key, run_key = jax.random.split(key)
    x0 = jax.random.uniform(init_key, (int(n), 2), jnp.float32, -RING_BOX, RING_BOX)
    net = params["net"]
    if sampler == "mala":
        x, _ = mala(run_key, energy_log_prob(net), x0, step_size=RING_STEP, num_steps=steps)
    else:
        x = langevin(run_key, energy_score(net), x0, step_size=RING_STEP, num_steps=steps)
    return x * params["scale"] + params["shift"][None]


def _energy_picture(params, data, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    lim = float(np.abs(data).max()) * 1.1
    g = np.linspace(-lim, lim, 120)
    xx, yy = np.meshgrid(g, g)
    pts = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], 1), jnp.float32)
    z = (pts - params["shift"][None]) / params["scale"]
    energy = np.asarray(params["net"](z)).reshape(xx.shape)
    fig = Figure(figsize=(5, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    ax.contourf(xx, yy, np.exp(-(energy - energy.min())), levels=30, cmap="viridis")
    ax.set_title("ebm on ring: learnt density exp(-E) (unnormalised)")
    ax.set_aspect("equal")
    fig.savefig(path, dpi=100)


def ebm_report(key, params, train_data, test_data, out_dir: Path) -> dict:
    """``energy.png``, ``samples.png``; energy distance, MMD and mode coverage of Langevin
    and MALA samples; ``data_energy_distance`` between two real halves (the floor)."""
    from genjax import metrics, plotting, targets

    test = jnp.asarray(test_data)
    out: dict = {}
    data = np.asarray(train_data)[:5000]
    lk, mk = jax.random.split(key)
    for sampler, k in (("langevin", lk), ("mala", mk)):
        x = ebm_sample(k, params, REPORT_SAMPLES, sampler=sampler)
        q = _quality(x, test)
        q["mode_coverage"] = float(metrics.mode_coverage(x, targets.ring().means, 3 * 0.3))
        if sampler == "langevin":
            out.update(q)
            plotting.scatter_2d(x, data, Path(out_dir) / "samples.png",
                                title="ebm (PCD) on ring: Langevin samples")  # fmt: skip
        else:
            out.update({f"{name}_mala": v for name, v in q.items()})
    _energy_picture(params, data, Path(out_dir) / "energy.png")
    n = min(REPORT_SAMPLES, len(data), test.shape[0])
    out["data_energy_distance"] = _quality(jnp.asarray(data[:n]), test[:n])["energy_distance"]
    return out


# --------------------------------------------------------------------------------------
# ebm-digits
# --------------------------------------------------------------------------------------

DIGITS_CHANNELS = 16
DIGITS_BUFFER = 4096
DIGITS_K = 20
DIGITS_STEP = 1.0  # gradient step on E (decoupled from the noise, Du & Mordatch 2019)
DIGITS_NOISE = 0.01
DIGITS_ALPHA = 1.0
DIGITS_LR = 5e-4
DIGITS_SAMPLE_STEPS = 200
_digits_opt = optax.adam(DIGITS_LR, b1=0.0, b2=0.999)


def digits_init(key: jax.Array, train_data: Any) -> dict:
    """``{"net": ConvEnergy, "opt", "buffer" (DIGITS_BUFFER, 8, 8, 1)}``; images stay in
    [0, 1]."""
    del train_data
    net_key, buf_key = jax.random.split(key)
    net = ConvEnergy(1, DIGITS_CHANNELS, rngs=nnx.Rngs(net_key))
    buffer = L.replay_buffer_init(buf_key, DIGITS_BUFFER, (8, 8, 1), low=0.0, high=1.0)
    return {"net": net, "opt": _digits_opt.init(net), "buffer": buffer}


def digits_step(params: dict, batch: jax.Array, key: jax.Array) -> tuple[dict, dict]:
    """One PCD update on a batch of images ``(b, 8, 8, 1)``."""
    return _pcd_update(params, batch, key, _digits_opt, num_steps=DIGITS_K,
                       step_size=DIGITS_STEP, noise_scale=DIGITS_NOISE, alpha=DIGITS_ALPHA,
                       low=0.0, high=1.0, clip=(0.0, 1.0))  # fmt: skip


def digits_sample(key: jax.Array, params: dict, n: int, *, steps: int | None = None,
                  sampler: str = "buffer"):  # fmt: skip
    """``n`` images ``(n, 8, 8, 1)`` by clipped Langevin steps on ``E`` as in training:
    ``sampler="buffer"`` continues ``n`` persistent chains of the replay buffer (at most
    its size) for ``steps`` (default ``DIGITS_K``, one training update's worth: longer
    runs drift, the known gap between an EBM's short-run and long-run chains, Nijkamp
    et al. 2019); ``sampler="noise"`` starts from uniform noise (default 200 steps)."""
    checks.one_of("sampler", sampler, ("buffer", "noise"))
    default = DIGITS_K if sampler == "buffer" else DIGITS_SAMPLE_STEPS
    steps = default if steps is None else checks.positive_int("steps", steps)
    init_key, run_key = jax.random.split(key)
    if sampler == "buffer":  # continue persistent chains, as Du & Mordatch (2019) sample
        idx = jax.random.choice(init_key, params["buffer"].shape[0], (int(n),), replace=False)
        x0 = params["buffer"][idx]
    else:
        x0 = jax.random.uniform(init_key, (int(n), 8, 8, 1), jnp.float32)
    return langevin(run_key, energy_score(params["net"]), x0, step_size=DIGITS_STEP,
                    num_steps=steps, noise_scale=DIGITS_NOISE, clip=(0.0, 1.0))  # fmt: skip


def digits_report(key, params, train_data, test_data, out_dir: Path) -> dict:
    """``samples.png`` (100 samples continuing buffer chains), ``samples_noise.png`` (100
    samples from noise); energy distance / MMD of both to held-out digits;
    ``data_energy_distance``: training vs held-out digits (the floor)."""
    from genjax import plotting

    test = jnp.asarray(test_data)
    buf_key, noise_key = jax.random.split(key)
    x = digits_sample(buf_key, params, 256)
    plotting.image_grid(np.asarray(x[:100]), Path(out_dir) / "samples.png", nrow=10,
                        title="ebm-digits: Langevin samples (persistent chains)")  # fmt: skip
    out = _quality(x, test)
    x_noise = digits_sample(noise_key, params, 256, sampler="noise")
    plotting.image_grid(np.asarray(x_noise[:100]), Path(out_dir) / "samples_noise.png",
                        nrow=10, title="ebm-digits: Langevin from noise")  # fmt: skip
    out.update({f"{k}_from_noise": v for k, v in _quality(x_noise, test).items()})
    out["data_energy_distance"] = _quality(jnp.asarray(train_data)[:256], test)["energy_distance"]
    return out


# --------------------------------------------------------------------------------------
# score-matching: NCSN on the swiss roll, annealed Langevin
# --------------------------------------------------------------------------------------

SM_HIDDEN = (128, 128, 128)
SM_SIGMAS = tuple(float(s) for s in np.geomspace(3.0, 0.01, 10))  # sigma_1 ~ data diameter
SM_STEPS_PER_LEVEL = 100
SM_STEP = 2e-5  # h_L; h_1 = h_L (sigma_1 / sigma_L)^2 = 1.8


def sm_init(key: jax.Array, train_data: Any) -> dict:
    """``{"net": NoiseConditionalScore, "shift", "scale"}``."""
    return {"net": NoiseConditionalScore(2, SM_HIDDEN, rngs=nnx.Rngs(key)), **_stats(train_data)}


def sm_loss(params: dict, batch: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
    """Song & Ermon (2019), eq. 6, on a standardised batch."""
    shift = jax.lax.stop_gradient(params["shift"])
    scale = jax.lax.stop_gradient(params["scale"])
    x = (batch - shift[None]) / scale
    return L.ncsn_loss(params["net"], x, key, sigmas=jnp.asarray(SM_SIGMAS))


def sm_sample(key: jax.Array, params: dict, n: int, *, steps: int | None = None):
    """``n`` samples ``(n, 2)`` by annealed Langevin dynamics, ``steps`` per level
    (default 100) over the 10 training levels, then one denoising step."""
    steps = SM_STEPS_PER_LEVEL if steps is None else checks.positive_int("steps", steps)
    init_key, run_key = jax.random.split(key)
    x0 = jax.random.uniform(init_key, (int(n), 2), jnp.float32, -3.0, 3.0)
    x = annealed_langevin(run_key, params["net"], x0, sigmas=jnp.asarray(SM_SIGMAS, jnp.float32),
                          step_size=SM_STEP, num_steps_per_level=steps)  # fmt: skip
    return x * params["scale"] + params["shift"][None]


def sm_report(key, params, train_data, test_data, out_dir: Path) -> dict:
    """``samples.png``; energy distance and MMD to held-out data (and the data floor)."""
    from genjax import plotting

    test = jnp.asarray(test_data)
    x = sm_sample(key, params, REPORT_SAMPLES)
    data = np.asarray(train_data)[:5000]
    plotting.scatter_2d(x, data, Path(out_dir) / "samples.png",
                        title="score matching (NCSN) on swiss roll: annealed Langevin")  # fmt: skip
    out = _quality(x, test)
    n = min(REPORT_SAMPLES, len(data), test.shape[0])
    out["data_energy_distance"] = _quality(jnp.asarray(data[:n]), test[:n])["energy_distance"]
    return out


# --------------------------------------------------------------------------------------
# rbm: a binary RBM on binarised digits by CD-1, log-likelihood by AIS
# --------------------------------------------------------------------------------------

RBM_HIDDEN = 64
RBM_K = 1  # CD-1 (Hinton 2002)
RBM_LR = 3e-3
RBM_SAMPLE_STEPS = 1000  # block-Gibbs sweeps from Bernoulli(1/2) noise for the pictures
RBM_AIS_CHAINS = 100
# Salakhutdinov & Murray (2008, sec. 4.2) space 14,500 temperatures densest near beta = 1;
# the same shape at a third of the count: 500 on [0, 0.5), 2000 on [0.5, 0.9), 2500 on
# [0.9, 1] (5000 sweeps of 100 chains of a 64 x 64 RBM: about a second).
RBM_AIS_BETAS = (500, 2000, 2500)
RBM_LL_IMAGES = 359  # the test split's size; the same number of training images


def _binarise(images: Any) -> jax.Array:
    """Images ``(n, 8, 8, 1)`` in [0, 1] -> binary visible vectors ``(n, 64)`` (> 0.5)."""
    x = jnp.asarray(images, jnp.float32)
    return (x.reshape(x.shape[0], -1) > 0.5).astype(jnp.float32)


def rbm_betas(counts: tuple[int, int, int] = RBM_AIS_BETAS) -> jax.Array:
    """AIS inverse temperatures ``(sum(counts) + 1,)`` from 0 to 1, piecewise uniform."""
    a, b, c = counts
    return jnp.concatenate([jnp.linspace(0.0, 0.5, a, endpoint=False),
                            jnp.linspace(0.5, 0.9, b, endpoint=False),
                            jnp.linspace(0.9, 1.0, c + 1)])  # fmt: skip


def rbm_init(key: jax.Array, train_data: Any) -> RBM.RBMParams:
    """An RBM of 64 visible x ``RBM_HIDDEN`` hidden units: ``W ~ N(0, 0.01^2)``, ``c = 0``,
    ``b`` the training pixels' log base rates (Hinton 2010, "A practical guide", sec. 8)."""
    return RBM.init_params(key, 64, RBM_HIDDEN, scale=0.01,
                           visible_bias=RBM.base_rate_bias(_binarise(train_data)))  # fmt: skip


def rbm_loss(params: RBM.RBMParams, batch: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
    """CD-1 surrogate ``mean F(data) - mean F(sg(negatives))`` on binarised images
    ``(b, 8, 8, 1)``."""
    return RBM.cd_loss(params, _binarise(batch), key, k=RBM_K)


def rbm_sample(key: jax.Array, params: RBM.RBMParams, n: int, *,
               steps: int | None = None) -> jax.Array:  # fmt: skip
    """``n`` binary images ``(n, 8, 8, 1)``: ``steps`` (default 1000) block-Gibbs sweeps
    from Bernoulli(1/2) noise."""
    steps = RBM_SAMPLE_STEPS if steps is None else checks.positive_int("steps", steps)
    init_key, run_key = jax.random.split(key)
    v0 = jax.random.bernoulli(init_key, 0.5, (int(n), 64)).astype(jnp.float32)
    return RBM.gibbs_sample(run_key, params, v0, num_steps=steps).reshape(int(n), 8, 8, 1)


def rbm_report(key, params, train_data, test_data, out_dir: Path) -> dict:
    """``samples.png`` (100 Gibbs chains after ``RBM_SAMPLE_STEPS`` sweeps), ``chains.png``
    (10 of them, one a row, every tenth of the run); log Z by AIS and its standard error;
    the average test and train log-likelihood per image ``-F(v) - log Z`` (nats), beside
    the base-rate model's (independent pixels, the AIS start)."""
    from genjax import plotting

    sample_key, ais_key = jax.random.split(key)
    out_dir = Path(out_dir)
    # 100 chains from Bernoulli(1/2) noise, 10 segments of RBM_SAMPLE_STEPS / 10 sweeps (one
    # compiled program): the first 10 chains at every segment end draw their trajectories.
    init_key, run_key = jax.random.split(sample_key)
    v = jax.random.bernoulli(init_key, 0.5, (100, 64)).astype(jnp.float32)
    seg = max(1, RBM_SAMPLE_STEPS // 10)
    frames = []
    for i in range(10):
        v = RBM.gibbs_sample(jax.random.fold_in(run_key, i), params, v, num_steps=seg)
        frames.append(np.asarray(v[:10]))
    plotting.image_grid(np.asarray(v).reshape(100, 8, 8, 1), out_dir / "samples.png", nrow=10,
                        title=f"rbm: Gibbs samples after {10 * seg} sweeps")  # fmt: skip
    grid = np.stack(frames, axis=1).reshape(-1, 8, 8, 1)  # row = chain, column = time
    plotting.image_grid(grid, out_dir / "chains.png", nrow=10,
                        title=f"rbm: 10 Gibbs chains (rows), every {seg} sweeps")  # fmt: skip
    train, test = _binarise(train_data), _binarise(test_data)
    base = RBM.base_rate_bias(train)
    log_z, se = RBM.ais_log_partition(ais_key, params, num_chains=RBM_AIS_CHAINS,
                                      betas=rbm_betas(), base_bias=base)  # fmt: skip
    n = min(RBM_LL_IMAGES, train.shape[0], test.shape[0])
    test_ll = float(jnp.mean(RBM.log_likelihood(params, test[:n], log_z)))
    train_ll = float(jnp.mean(RBM.log_likelihood(params, train[:n], log_z)))
    # the independent-pixel model: log p(v) = sum_i v_i log s(b_i) + (1 - v_i) log s(-b_i)
    t = test[:n]
    base_ll = float(jnp.mean(t @ jax.nn.log_sigmoid(base) + (1 - t) @ jax.nn.log_sigmoid(-base)))
    return {"ais_log_z": float(log_z), "ais_log_z_stderr": float(se),
            "test_log_likelihood": test_ll, "train_log_likelihood": train_ll,
            "train_minus_test_log_likelihood": train_ll - test_ll,
            "base_rate_test_log_likelihood": base_ll}  # fmt: skip


# One recipe a block: what it is, its four functions, its training sizes.
# fmt: off
RECIPES: tuple[Recipe, ...] = (
    Recipe(
        name="ebm", family="energy", data="ring",
        summary="MLP energy on the 2-D ring by persistent CD + replay buffer, Langevin/MALA",
        init=ebm_init, step=ebm_step, sample=ebm_sample, report=ebm_report,
        steps=2000, batch_size=256, learning_rate=RING_LR,
        sample_options=("sampler", "steps"),
        data_figures=("mode_coverage",),  # the ring's 8 modes
    ),
    Recipe(
        name="ebm-digits", family="energy", data="digits",
        summary="conv energy on 8x8 digits by persistent CD + replay buffer (Du & Mordatch)",
        init=digits_init, step=digits_step, sample=digits_sample, report=digits_report,
        steps=800, batch_size=64, learning_rate=DIGITS_LR,
        sample_options=("steps", "sampler"),
    ),
    Recipe(
        name="rbm", family="energy", data="digits",
        summary="binary RBM (64 x 64) on binarised digits by CD-1, block Gibbs, log Z by AIS",
        init=rbm_init, loss=rbm_loss, sample=rbm_sample, report=rbm_report,
        steps=3000, batch_size=64, learning_rate=RBM_LR,
        sample_options=("steps",),
    ),
    Recipe(
        name="score-matching", family="energy", data="swissroll",
        summary="noise-conditional score net on the swiss roll (Song & Ermon), annealed Langevin",
        init=sm_init, loss=sm_loss, sample=sm_sample, report=sm_report,
        # 2000 x 256 leaves the outer arm thin (energy distance 0.11 vs 0.016)
        steps=3000, batch_size=512, learning_rate=1e-3,
        sample_options=("steps",),
    ),
)
# fmt: on
