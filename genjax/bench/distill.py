"""Progressive distillation: the distilled k-step sampler against DDIM at 2k steps and the
NumPy oracle.

Workloads (Salimans & Ho 2022; :mod:`genjax.diffusion.distillation`), n points in 2-D,
Ho et al.'s linear schedule (T = 1000):

* **student k vs DDIM 2k**: the distilled sampler is DDIM with the student, ``k`` steps of
  one network evaluation each; the teacher needs ``2k`` for the same target. Both networks
  are the ``distill`` recipe's (an :class:`genjax.nn.MLPDenoiser` 2 -> 256 x 3 -> 2 that
  predicts ``v``, wrapped by :func:`~genjax.diffusion.distillation.as_eps_model`); the
  weights do not change the cost, so fresh ones are timed. The two sides are timed in turn
  (:func:`genjax.bench.harness.time_paired`, median of 3 pair ratios), compile apart;
  ``speedup`` is the ratio DDIM-2k / student-k.
* **k-step sampler vs the oracle**: the same k-step DDIM program with the exact eps of the
  8-mode ring as its model, against :func:`genjax.diffusion.oracle.ddim_loop` (NumPy
  float64, model from :mod:`genjax.oracle_targets`) on the same ``x_T``.
* **distillation target (eq. 8)**: two teacher DDIM steps and the target ``x~`` for a batch
  at random student steps of a 4-step student, exact ring teacher: jitted genjax against
  :func:`genjax.diffusion.oracle_distillation.distillation_target` (NumPy float64, one
  example at a time).

Run: ``python -m genjax.bench distill``.
"""

from __future__ import annotations

import numpy as np

from genjax.bench.harness import Row, time_host, time_jax, time_paired

SUITE = "distill"
STEPS = (1, 2, 4, 8)
NOTES = (
    "2-D, linear schedule T=1000. student-k = DDIM with the distilled student (k network "
    "calls); ddim-2k = DDIM with the teacher; MLP 2-256x3-2 (v-prediction). Oracle rows: "
    "exact 8-mode ring eps, NumPy float64. speedup = other / this row's run_s."
)


def run(quick: bool = False) -> list[Row]:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from genjax import diffusion as d
    from genjax import oracle_targets as ot
    from genjax import targets
    from genjax.diffusion import distillation as pd
    from genjax.diffusion import oracle
    from genjax.diffusion import oracle_distillation as od
    from genjax.nn import MLPDenoiser

    n = 512 if quick else 4096
    pairs = 2 if quick else 3
    repeats = 2 if quick else 3
    steps = STEPS[:2] if quick else STEPS
    schedule = d.linear(1000)
    betas = oracle.linear_betas(1000, 1e-4, 0.02)
    shape = (n, 2)
    key = jax.random.key(0)
    rows: list[Row] = []

    def mlp(seed: int):
        net = MLPDenoiser(2, (256, 256, 256), time_embed_dim=64, rngs=nnx.Rngs(seed))
        return pd.as_eps_model(net, schedule)

    student, teacher = mlp(0), mlp(1)
    for k in steps:
        fast = jax.jit(lambda key, m, k=k: d.ddim_sample(key, m, shape, schedule, num_steps=k))
        slow = jax.jit(lambda key, m, k=k: d.ddim_sample(key, m, shape, schedule, num_steps=2 * k))
        paired = time_paired(
            lambda f=fast: f(key, student), lambda f=slow: f(key, teacher),
            pairs=pairs, repeats=repeats,
        )  # fmt: skip
        case = f"student-{k} vs ddim-{2 * k}, mlp-256x3 n={n}"
        rows.append(Row(SUITE, case, f"genjax student-{k}", paired.a.compile_s, paired.a.run_s,
                        {"nfe": k, "speedup": paired.ratio, "pairs": paired.pairs}))  # fmt: skip
        rows.append(Row(SUITE, case, f"genjax ddim-{2 * k}", paired.b.compile_s, paired.b.run_s,
                        {"nfe": 2 * k}))  # fmt: skip

    ring = targets.ring(n_modes=8, radius=4.0, std=0.3)
    w, mu, cov = (np.asarray(a, np.float64) for a in (ring.weights, ring.means, ring.covs))
    ab = oracle.alpha_bars(betas)

    def np_eps(x, t):
        out = np.empty_like(x)
        for tt in np.unique(t):
            idx = t == tt
            out[idx] = ot.mixture_eps(w, mu, cov, x[idx], np.sqrt(ab[tt]), np.sqrt(1 - ab[tt]))
        return out

    exact = d.analytic_eps_fn(ring, schedule)
    x_T = np.random.default_rng(0).standard_normal(shape)
    for k in steps:
        program = jax.jit(
            lambda x, k=k: d.ddim_sample_from_noise(exact, x, None, schedule, num_steps=k)
        )
        ours = time_jax(program, jnp.asarray(x_T, jnp.float32), repeats=repeats)
        theirs = time_host(lambda k=k: oracle.ddim_loop(np_eps, betas, x_T, k), repeats=1)
        diff = float(np.max(np.abs(np.asarray(program(jnp.asarray(x_T, jnp.float32)))
                                   - oracle.ddim_loop(np_eps, betas, x_T, k))))  # fmt: skip
        case = f"ddim-{k} exact ring n={n}"
        rows.append(Row(SUITE, case, "genjax", ours.compile_s, ours.run_s,
                        {"max_abs_diff_vs_oracle": diff}))  # fmt: skip
        rows.append(Row(SUITE, case, "oracle (numpy f64)", theirs.compile_s, theirs.run_s,
                        {"speedup": theirs.run_s / ours.run_s}))  # fmt: skip

    m = 256 if quick else 2048  # the oracle loops over examples in Python
    rng = np.random.default_rng(1)
    z, index = rng.standard_normal((m, 2)) * 2.0, rng.integers(0, 4, m)
    target = jax.jit(lambda zz, ii: pd.distillation_target(exact, zz, ii, schedule,
                                                           num_student_steps=4))  # fmt: skip
    z32, i32 = jnp.asarray(z, jnp.float32), jnp.asarray(index, jnp.int32)
    ours = time_jax(target, z32, i32, repeats=repeats)
    theirs = time_host(lambda: od.distillation_target(np_eps, z, index, ab, 4), repeats=1)
    diff = float(np.max(np.abs(np.asarray(target(z32, i32))
                               - od.distillation_target(np_eps, z, index, ab, 4))))  # fmt: skip
    case = f"distillation target eq. 8 (N=4) exact ring batch={m}"
    rows.append(Row(SUITE, case, "genjax", ours.compile_s, ours.run_s,
                    {"max_abs_diff_vs_oracle": diff}))  # fmt: skip
    rows.append(Row(SUITE, case, "oracle (numpy f64)", theirs.compile_s, theirs.run_s,
                    {"speedup": theirs.run_s / ours.run_s}))  # fmt: skip
    return rows
