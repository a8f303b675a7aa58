"""Flow-matching ODE sampling at 10/20/50 steps: time per sample batch and sample quality.

The field is the EXACT marginal velocity of flow matching for the 2-D ring (a Gaussian
mixture of 8 modes, radius 4, std 0.3) under the CondOT / rectified-flow path with
independent coupling, ``u_t(x) = E[x1 - x0 | x_t = x]``
(:func:`genjax.flows.flow_matching.mixture_marginal_velocity`): the field a perfectly
trained network would learn. So the quality figures measure the ODE discretisation alone,
not a training run:

* energy distance (the squared statistic) between the samples and as many exact draws of
  the ring, next to the floor — the same statistic between two exact draws;
* mode coverage (fraction of the 8 modes with a sample within 3 std).

Each row is one compiled program (``genjax.flows.flow_matching.sample``: the source draw
and the whole ``lax.scan`` of solver steps) for Euler, Heun and RK4, the exact field passed
as a model (a ``jax.tree_util.Partial`` over the target, whose arrays are traced). NFE =
network (field) evaluations per sample. Peers (torchcfm / torchdyn) are not installed in the
peer environment, so the suite times genjax only.
"""

from __future__ import annotations

import numpy as np

from genjax.bench.harness import Row, time_jax

NOTES = (
    "Exact marginal CondOT velocity of the 2-D ring (8-mode Gaussian mixture); samples from "
    "N(0, I) pushed by euler/heun/rk4 at 10/20/50 steps, float32, one jitted program each. "
    "energy_distance vs as many exact ring draws (floor: two exact draws). No peer "
    "library (torchcfm, torchdyn) is installed: genjax only."
)

STEPS = (10, 20, 50)
STAGES = {"euler": 1, "heun": 2, "rk4": 4}


def _ring_field(target, x, t):
    """The exact marginal velocity at one time for the whole batch (``t[0]``: the solver's
    steps share it), so the noised mixture is formed once per evaluation."""
    from genjax.flows import flow_matching as fm

    return fm.mixture_marginal_velocity(target, x, t[0])


def run(quick: bool = False) -> list[Row]:
    import functools

    import jax

    from genjax import metrics, targets
    from genjax.flows import flow_matching as fm

    n = 512 if quick else 4096
    repeats = 3 if quick else 5
    ring = targets.ring()
    field = jax.tree_util.Partial(_ring_field, ring)  # a model: the ring's arrays are traced
    reference = ring.sample(jax.random.key(1), n)
    floor = float(metrics.energy_distance(ring.sample(jax.random.key(2), n), reference))
    rows: list[Row] = []
    methods = ("euler", "rk4") if quick else ("euler", "heun", "rk4")
    for method in methods:
        for steps in STEPS:
            sampler = functools.partial(fm.sample, model=field, shape=(n, 2), num_steps=steps,
                                        method=method)
            timing = time_jax(sampler, jax.random.key(0), repeats=repeats)
            samples = sampler(jax.random.key(0))
            rows.append(
                Row(
                    "flow_matching",
                    f"ring n={n} {method}-{steps}",
                    "genjax",
                    timing.compile_s,
                    timing.run_s,
                    {
                        "nfe": steps * STAGES[method],
                        "energy_distance": float(metrics.energy_distance(samples, reference)),
                        "energy_distance_floor": floor,
                        "mode_coverage": float(metrics.mode_coverage(samples, ring.means, 0.9)),
                        "finite": bool(np.all(np.isfinite(np.asarray(samples)))),
                    },
                )
            )
    return rows
