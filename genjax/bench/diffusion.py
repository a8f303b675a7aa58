"""Diffusion samplers: genjax vs the NumPy oracle vs diffusers' PyTorch schedulers.

Workload (every implementation gets the same problem): 4096 points of the 8-mode ring
(radius 4, std 0.3) in 2-D, Ho et al.'s linear schedule (1e-4 .. 0.02, T = 1000), and the
*exact* noise prediction of that mixture as the model -- so the timings measure sampler
overhead plus a cheap, identical model, and each run's energy distance to true samples
shows that speed was not bought with quality.

* genjax: one jitted program per sampler (``lax.scan``), model =
  :func:`genjax.diffusion.analytic_eps_fn` (the mixture's ``(K, D, N)`` layout; a pytree,
  traced by the sampler) and :func:`genjax.diffusion.analytic_denoiser`; compile apart.
* oracle (numpy): :mod:`genjax.diffusion.oracle` loops, model from
  :mod:`genjax.oracle_targets` (float64).
* diffusers (torch): ``DDPMScheduler``, ``DDIMScheduler``, ``DPMSolverMultistepScheduler``,
  ``HeunDiscreteScheduler`` (Karras sigmas) driven by the usual Python step loop, with
  the exact eps written in torch in the same ``(K, D, N)`` layout. Skipped when torch or
  diffusers is not importable (install them in a separate venv, see README).

Settings matched across implementations: DDPM with the posterior variance ``beta_tilde``
(diffusers' "fixed_small"); DDIM eta = 0 with trailing timesteps; DPM-Solver++ order 2
multistep with trailing timesteps and a first-order final step into sigma = 0. Heun: genjax
runs Karras et al.'s Algorithm 2 over the exact VE denoiser with ``karras_sigmas(18)``
(sigma in [0.002, 80]); diffusers' ``HeunDiscreteScheduler`` runs 18 Karras-spaced levels of
the VP schedule (sigma in [~0.01, ~157]) -- the same algorithm and model-call count
(35), on the schedule each library supports.

genjax and diffusers are timed side by side (:func:`genjax.bench.harness.time_paired`: the
two called in turn, the speedup the median of three pair ratios), compile time apart.

Run: ``python -m genjax.bench diffusion`` (with torch + diffusers importable for the peers).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from genjax import diffusion as d
from genjax import metrics, targets
from genjax import oracle_targets as ot
from genjax.bench.harness import Row, time_host, time_jax, time_paired
from genjax.diffusion import oracle

SUITE = "diffusion"
N_POINTS = 4096
NOTES = ""


def _quality(x, truth) -> float:
    return float(metrics.energy_distance(jnp.asarray(x, jnp.float32), truth))


# ---------------------------------------------------------------------------------------
# NumPy oracle model
# ---------------------------------------------------------------------------------------


def _np_eps_fn(target, betas):
    w, m, c = (np.asarray(a, np.float64) for a in (target.weights, target.means, target.covs))
    ab = oracle.alpha_bars(betas)

    def eps(x, t):
        tt = int(t[0])  # the samplers call the model with one time for the whole batch
        a, s = math.sqrt(ab[tt]), math.sqrt(1 - ab[tt])
        return -s * ot.mixture_score(*ot.mixture_noised(w, m, c, a, s), x)

    def den(x, sigma):
        return ot.mixture_posterior_mean_x0(w, m, c, x, 1.0, float(sigma[0]))

    return eps, den


# ---------------------------------------------------------------------------------------
# diffusers (torch) peers
# ---------------------------------------------------------------------------------------


def _torch_peers(target, num_points):
    try:
        import diffusers
        import torch
    except ImportError as err:  # optional peers
        return None, f"diffusers/torch not importable ({err}); peer rows skipped"

    dt = torch.float32
    lam_np, u_np = np.linalg.eigh(np.asarray(target.covs, np.float64))  # (K, D), (K, D, D)
    lam = torch.tensor(lam_np, dtype=dt)
    u = torch.tensor(u_np, dtype=dt)
    mu_rot = torch.einsum("kde,kd->ke", u, torch.tensor(np.asarray(target.means), dtype=dt))
    log_w = torch.log(torch.tensor(np.asarray(target.weights), dtype=dt))

    def eps_exact(x, alpha, sigma):
        """Exact E[eps | x] for x = alpha x0 + sigma eps, the (K, D, N) layout in torch."""
        y = torch.einsum("kde,nd->ken", u, x) - alpha * mu_rot[:, :, None]  # (K, D, N)
        var = alpha**2 * lam[:, :, None] + sigma**2  # (K, D, N)
        logits = log_w[:, None] - 0.5 * torch.sum(y**2 / var + torch.log(var), dim=1)
        r = torch.softmax(logits, dim=0)  # (K, N)
        return sigma * torch.einsum("kde,ken->nd", u, r[:, None, :] * y / var)

    common = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02,
                  beta_schedule="linear")  # fmt: skip
    acp = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)

    def eps_at(x, t):
        ab = acp[int(t)]
        return eps_exact(x, float(ab.sqrt()), float((1 - ab).sqrt()))

    def ddpm(seed):
        sched = diffusers.DDPMScheduler(**common, variance_type="fixed_small", clip_sample=False)
        sched.set_timesteps(1000)
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(num_points, 2, generator=gen, dtype=dt)
        for t in sched.timesteps:
            x = sched.step(eps_at(x, t), t, x, generator=gen).prev_sample
        return x

    def _init(seed, x_T):
        if x_T is not None:
            return torch.tensor(np.asarray(x_T), dtype=dt)
        return torch.randn(num_points, 2, generator=torch.Generator().manual_seed(seed), dtype=dt)

    def ddim(seed, steps=50, x_T=None):
        sched = diffusers.DDIMScheduler(**common, clip_sample=False, set_alpha_to_one=True,
                                        timestep_spacing="trailing")  # fmt: skip
        sched.set_timesteps(steps)
        x = _init(seed, x_T)
        for t in sched.timesteps:
            x = sched.step(eps_at(x, t), t, x, eta=0.0).prev_sample
        return x

    def dpmpp(seed, steps=20, x_T=None):
        sched = diffusers.DPMSolverMultistepScheduler(
            **common, algorithm_type="dpmsolver++", solver_order=2,
            timestep_spacing="trailing", final_sigmas_type="zero",
        )  # fmt: skip
        sched.set_timesteps(steps)
        x = _init(seed, x_T)
        for t in sched.timesteps:
            x = sched.step(eps_at(x, t), t, x).prev_sample
        return x

    def heun(seed, steps=18):
        sched = diffusers.HeunDiscreteScheduler(**common, use_karras_sigmas=True)
        sched.set_timesteps(steps)
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(num_points, 2, generator=gen, dtype=dt) * sched.init_noise_sigma
        for t in sched.timesteps:
            x_in = sched.scale_model_input(x, t)  # x / sqrt(sigma^2 + 1): the VP state
            s_ve = float(sched.sigmas[sched.step_index])
            alpha, sigma = 1 / math.sqrt(1 + s_ve**2), s_ve / math.sqrt(1 + s_ve**2)
            x = sched.step(eps_exact(x_in, alpha, sigma), t, x).prev_sample
        return x

    def run(fn):
        def call():
            with torch.no_grad():
                return fn(0).numpy()

        return call

    version = f"diffusers {diffusers.__version__}, torch {torch.__version__}"
    torch_threads = torch.get_num_threads()
    def same_noise(fn):
        def call(x_T):
            with torch.no_grad():
                return fn(0, x_T=x_T).numpy()

        return call

    peers = {
        "ddpm": run(ddpm),
        "ddim": run(ddim),
        "dpmpp": run(dpmpp),
        "heun": run(heun),
        # the deterministic samplers from a given x_T, to compare trajectories with genjax
        "ddim_from": same_noise(ddim),
        "dpmpp_from": same_noise(dpmpp),
    }
    return peers, f"{version} (torch threads: {torch_threads})"


# ---------------------------------------------------------------------------------------
# Quality per cost
# ---------------------------------------------------------------------------------------


def _respaced(betas: np.ndarray, num_steps: int) -> d.Schedule:
    """The schedule of ``num_steps`` evenly spaced times of ``betas``' (Nichol & Dhariwal
    2021, sec. 4): ``beta_i = 1 - alpha_bar(t_i) / alpha_bar(t_{i-1})``."""
    alpha_bars = np.cumprod(1.0 - np.asarray(betas, np.float64))
    times = np.round(np.linspace(0, len(alpha_bars) - 1, num_steps)).astype(int)
    kept = alpha_bars[times]
    return d.from_betas(1.0 - kept / np.concatenate([[1.0], kept[:-1]]))


_SAMPLER_NAMES = {"ddpm": "DDPM", "ddim": "DDIM", "dpm++1": "DPM-Solver++ 1",
                  "dpm++2M": "DPM-Solver++ 2M", "dpm++3M": "DPM-Solver++ 3M",
                  "dpm++2S": "DPM-Solver++ 2S", "euler": "EDM Euler", "heun": "EDM Heun"}
PICTURE = "diffusion_quality_vs_cost.png"


def draw(rows: list[Row], out_dir) -> str | None:
    """The quality-per-cost picture: energy distance to the target against the number of
    model evaluations, one line per sampler, from the suite's ``quality`` rows; written to
    ``<out_dir>/diffusion_quality_vs_cost.png``. None when there are no such rows."""
    from pathlib import Path

    from genjax import plotting

    series: dict[str, tuple[list, list]] = {}
    floor = None
    for row in rows:
        if not row.case.startswith("quality "):
            continue
        sampler, nfe = row.case.split()[1], int(row.case.split("nfe=")[1])
        xs, ys = series.setdefault(_SAMPLER_NAMES.get(sampler, sampler), ([], []))
        xs.append(nfe)
        ys.append(max(row.extra["energy_distance"], 1e-6))  # a log axis: no zeros
        floor = row.extra.get("noise_floor", floor)
    if not series:
        return None
    if floor is not None:  # two independent true samples: the best any sampler can show
        nfes = [x for xs, _ in series.values() for x in xs]
        series["true samples (floor)"] = ([min(nfes), max(nfes)], [floor, floor])
    return plotting.line_plot(
        series, Path(out_dir) / PICTURE, xlabel="model evaluations (NFE)",
        ylabel="energy distance to the ring target", logx=True, logy=True,
        title="quality per cost: 8-mode ring, exact model")


# ---------------------------------------------------------------------------------------
# The suite
# ---------------------------------------------------------------------------------------


def run(quick: bool = False) -> list[Row]:
    global NOTES
    n = 1024 if quick else N_POINTS
    target = targets.ring(n_modes=8, radius=4.0, std=0.3)
    sched = d.linear(1000, 1e-4, 0.02)
    betas = oracle.linear_betas(1000, 1e-4, 0.02)
    eps = d.analytic_eps_fn(target, sched)
    den = d.analytic_denoiser(target)
    truth = target.sample(jax.random.key(123), n)
    floor = _quality(target.sample(jax.random.key(456), n), truth)
    key = jax.random.key(0)
    shape = (n, 2)
    repeats = 2 if quick else 5

    cases = {
        "ddpm": ("ddpm-1000", lambda k: d.ddpm_sample(k, eps, shape, sched, variance="beta_tilde")),
        "ddim": ("ddim-50", lambda k: d.ddim_sample(k, eps, shape, sched, num_steps=50)),
        "dpmpp": ("dpm++2M-20",
                  lambda k: d.dpm_solver_pp_sample(k, eps, shape, sched, num_steps=20)),
        "heun": ("heun-18 (35 NFE)", lambda k: d.heun_sample(k, den, shape, d.karras_sigmas(18))),
    }  # fmt: skip
    np_eps, np_den = _np_eps_fn(target, betas)
    rng = np.random.default_rng(0)
    z = rng.standard_normal(shape)
    sig = oracle.karras_sigmas(18)
    oracles = {
        "ddpm": lambda: oracle.ddpm_loop(np_eps, betas, z, rng.standard_normal((1000, *shape)),
                                         "beta_tilde"),
        "ddim": lambda: oracle.ddim_loop(np_eps, betas, z, 50),
        "dpmpp": lambda: oracle.dpm_solver_pp_loop(np_eps, betas, z, 20, 2, "multistep"),
        "heun": lambda: oracle.heun_loop(np_den, sig[0] * z, sig),
    }  # fmt: skip
    peers, peer_note = _torch_peers(target, n)
    same_noise = {
        "ddim": lambda x_T: d.ddim_sample_from_noise(eps, x_T, None, sched, num_steps=50),
        "dpmpp": lambda x_T: d.dpm_solver_pp_sample_from_noise(eps, x_T, sched, num_steps=20),
    }

    rows: list[Row] = []
    for name, (label, fn) in cases.items():
        case = f"{label} ring-{n}"
        ours = jax.jit(fn)
        if peers is not None:  # side by side: genjax and diffusers in turn, median of 3 pairs
            paired = time_paired(lambda f=ours: f(key), peers[name], pairs=3, repeats=3)
            timing, p_timing = paired.a, paired.b
        else:
            timing = time_jax(ours, key, repeats=repeats)
        x = fn(key)
        rows.append(Row(SUITE, case, "genjax", timing.compile_s, timing.run_s,
                        {"energy_distance": _quality(x, truth)}))  # fmt: skip
        if not (quick and name == "ddpm"):
            o_timing = time_host(oracles[name], repeats=1)
            extra = {"energy_distance": _quality(oracles[name](), truth),
                     "genjax_speedup": o_timing.run_s / timing.run_s}  # fmt: skip
            rows.append(Row(SUITE, case, "oracle (numpy f64)", o_timing.compile_s,
                            o_timing.run_s, extra))  # fmt: skip
        if peers is not None:
            extra = {"energy_distance": _quality(peers[name](), truth),
                     "genjax_speedup": paired.ratio, "pairs": paired.pairs}  # fmt: skip
            if name in same_noise:
                # Same algorithm, same grid, same x_T: the outputs should agree to float32.
                x_T = np.asarray(jax.random.normal(jax.random.key(9), shape))
                extra["max_abs_diff_same_x_T"] = float(
                    np.max(np.abs(peers[name + "_from"](x_T) - np.asarray(same_noise[name](x_T))))
                )
            rows.append(Row(SUITE, case, "diffusers (torch)", p_timing.compile_s, p_timing.run_s,
                            extra))  # fmt: skip

    # Quality per cost: energy distance vs number of model evaluations (NFE).
    budgets = (5, 10, 20) if quick else (5, 10, 20, 50)
    samplers = {
        "ddim": lambda k, m: d.ddim_sample(k, eps, shape, sched, num_steps=m),
        "dpm++1": lambda k, m: d.dpm_solver_pp_sample(k, eps, shape, sched, num_steps=m, order=1),
        "dpm++2M": lambda k, m: d.dpm_solver_pp_sample(k, eps, shape, sched, num_steps=m),
        "dpm++3M": lambda k, m: d.dpm_solver_pp_sample(k, eps, shape, sched, num_steps=m, order=3),
        "dpm++2S": lambda k, m: d.dpm_solver_pp_sample(k, eps, shape, sched, num_steps=m,
                                                       method="singlestep"),
        "euler": lambda k, m: d.euler_sample(k, den, shape, d.karras_sigmas(m)),
        # Heun with N steps costs 2N - 1 model calls: N = (NFE + 1) // 2
        "heun": lambda k, m: d.heun_sample(k, den, shape, d.karras_sigmas((m + 1) // 2)),
    }  # fmt: skip
    # DDPM with m steps: the 1000-step schedule respaced to m of its times (Nichol &
    # Dhariwal 2021, sec. 4), with the exact eps of that m-step schedule
    samplers["ddpm"] = lambda k, m: d.ddpm_sample(
        k, d.analytic_eps_fn(target, _respaced(betas, m)), shape, _respaced(betas, m),
        variance="beta_tilde")
    for sampler, fn in samplers.items():
        for m in budgets + ((100, 1000) if sampler == "ddpm" and not quick else ()):
            timing = time_jax(jax.jit(fn, static_argnums=1), key, m, repeats=1)
            x = fn(key, m)
            rows.append(Row(SUITE, f"quality {sampler} nfe={m}", "genjax", timing.compile_s,
                            timing.run_s, {"energy_distance": _quality(x, truth),
                                           "noise_floor": floor, "figure_only": True}))

    NOTES = (
        f"energy distance of an independent true sample (noise floor): {floor:.5f}. "
        f"peers: {peer_note}. Flax schedulers of old diffusers (0.31, fori_loop) not run. "
        "Quality rows: energy distance to 4096 true samples vs model evaluations (NFE); "
        "their run_s is a single steady-state call."
    )
    return rows
