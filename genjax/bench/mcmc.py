"""MCMC kernels: genjax vs blackjax vs the NumPy oracle, in chain-steps per second.

Workload: MALA, unadjusted Langevin (ULA) and HMC on the 8-mode ring (radius 4, std 0.3,
``genjax.targets.ring()``), 1024 chains x 5000 steps (HMC: 1000 steps of 5 leapfrog steps,
``eps = 0.1``), step size 0.05, chains started at the origin. Every implementation returns
only the final positions (and the Metropolis kernels the per-chain acceptance counts), not
the trajectory.

* genjax: ``energy.mala`` / ``energy.langevin`` / ``energy.hmc`` over the target's own public
  methods, ``target.log_prob`` and ``target.score`` -- the one implementation of the mixture
  density (no private fast path): one jitted ``lax.scan`` over all chains (noise drawn in the
  loop), the target a traced argument; each MALA step is one fused log-density-and-gradient
  pass (``jax.value_and_grad``), reused by the Metropolis correction; HMC spends one such
  pass per leapfrog step.
* blackjax (optional peer): ``blackjax.mala``, ``blackjax.hmc`` and the overdamped-Langevin
  Euler step of ``blackjax.mcmc.diffusions`` (blackjax's ULA), ``jax.vmap``-ed over chains
  inside one jitted ``lax.scan``, over the *same* ``target.log_prob`` written per point
  (vmapped), one key split per chain per step as blackjax's API requires. Skipped when not
  importable.
* oracle (NumPy float64): :mod:`genjax.energy.oracle`, a Python loop over chains and steps
  (64 chains x 20 steps; chain-steps/s is per chain-step, so comparable).

blackjax pays for its per-chain API: ``jax.vmap`` over a per-point kernel, a key split per
chain per step, and the MH bookkeeping per chain; genjax draws one ``(chains, dim)`` normal
and one ``(chains,)`` uniform per step and keeps ``log pi`` and its gradient in the chain
state (one density-and-gradient pass per step).

Run: ``python -m genjax.bench mcmc`` (``--quick``: 1000 steps (HMC 200), 2 repeats).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from genjax import energy, targets
from genjax import oracle_targets as ot
from genjax.bench.harness import Row, time_host, time_jax
from genjax.energy import oracle

SUITE = "mcmc"
CHAINS = 1024
STEPS = 5000
STEP_SIZE = 0.05
HMC_STEPS = 1000  # each of HMC_LEAPFROG density-and-gradient passes
HMC_STEP_SIZE = 0.1
HMC_LEAPFROG = 5
NOTES = ""


def _genjax(target, x0, steps, hmc_steps):
    """The public samplers over the target's public methods (traced bound methods)."""

    def mala(key):
        return energy.mala(key, target.log_prob, x0, step_size=STEP_SIZE, num_steps=steps)

    def ula(key):
        return energy.langevin(key, target.score, x0, step_size=STEP_SIZE, num_steps=steps)

    def hmc(key):
        return energy.hmc(key, target.log_prob, x0, step_size=HMC_STEP_SIZE,
                          num_leapfrog=HMC_LEAPFROG, num_steps=hmc_steps)  # fmt: skip

    return {"mala": mala, "ula": ula, "hmc": hmc}


def _blackjax(lp_batched, x0, steps, hmc_steps):
    try:
        import blackjax
        from blackjax.mcmc.diffusions import overdamped_langevin
    except ImportError as err:
        return None, f"blackjax not importable ({err}); peer rows skipped"

    logdensity = lambda x: lp_batched(x[None])[0]  # noqa: E731  per point, (2,) -> ()
    mala_alg = blackjax.mala(logdensity, STEP_SIZE)
    ula_step = overdamped_langevin(jax.value_and_grad(logdensity))
    n = x0.shape[0]

    @jax.jit
    def mala(key):
        states = jax.vmap(mala_alg.init)(x0)

        def body(carry, k):
            st, count = carry
            st, info = jax.vmap(mala_alg.step)(jax.random.split(k, n), st)
            return (st, count + info.is_accepted), None

        (st, count), _ = jax.lax.scan(body, (states, jnp.zeros(n)), jax.random.split(key, steps))
        return st.position, count / steps

    @jax.jit
    def ula(key):
        from blackjax.mcmc.diffusions import DiffusionState

        lp, g = jax.vmap(jax.value_and_grad(logdensity))(x0)
        state = DiffusionState(x0, lp, g)

        def body(st, k):
            st = jax.vmap(lambda kk, s: ula_step(kk, s, STEP_SIZE))(jax.random.split(k, n), st)
            return st, None

        st, _ = jax.lax.scan(body, state, jax.random.split(key, steps))
        return st.position

    hmc_alg = blackjax.hmc(logdensity, HMC_STEP_SIZE, jnp.ones(2), HMC_LEAPFROG)

    @jax.jit
    def hmc(key):
        states = jax.vmap(hmc_alg.init)(x0)

        def body(carry, k):
            st, count = carry
            st, info = jax.vmap(hmc_alg.step)(jax.random.split(k, n), st)
            return (st, count + info.is_accepted), None

        keys = jax.random.split(key, hmc_steps)
        (st, count), _ = jax.lax.scan(body, (states, jnp.zeros(n)), keys)
        return st.position, count / hmc_steps

    return {"mala": mala, "ula": ula, "hmc": hmc}, f"blackjax {blackjax.__version__}"


def _oracle(target, chains, steps):
    w, m, c = (np.asarray(a, np.float64) for a in (target.weights, target.means, target.covs))

    def log_pi(x):
        return float(ot.mixture_log_prob(w, m, c, x[None])[0])

    def grad(x):
        return ot.mixture_score(w, m, c, x[None])[0]

    rng = np.random.default_rng(0)
    x0 = np.zeros((chains, 2))
    xi, u = rng.standard_normal((steps, chains, 2)), rng.uniform(size=(steps, chains))
    return {
        "mala": lambda: oracle.mala_loop(log_pi, grad, x0, xi, u, STEP_SIZE),
        "ula": lambda: oracle.langevin_loop(grad, x0, xi, STEP_SIZE),
        "hmc": lambda: oracle.hmc_loop(log_pi, grad, x0, xi, u, HMC_STEP_SIZE, HMC_LEAPFROG),
    }


def _ring_quality(x, truth) -> dict:
    from genjax import metrics

    x = jnp.asarray(x, jnp.float32)
    return {"energy_distance": float(metrics.energy_distance(x, truth)),
            "mode_coverage": float(metrics.mode_coverage(x, targets.ring().means, 0.9))}


def run(quick: bool = False) -> list[Row]:
    global NOTES
    steps = 1000 if quick else STEPS
    hmc_steps = 200 if quick else HMC_STEPS
    repeats = 2 if quick else 5
    target = targets.ring(n_modes=8, radius=4.0, std=0.3)
    x0 = jnp.zeros((CHAINS, 2), jnp.float32)
    truth = target.sample(jax.random.key(123), CHAINS)
    key = jax.random.key(0)
    rows: list[Row] = []

    ours = _genjax(target, x0, steps, hmc_steps)
    peers, peer_note = _blackjax(target.log_prob, x0, steps, hmc_steps)
    np_fns = _oracle(target, 64, 20)
    np_work = 64 * 20

    for name in ("mala", "ula", "hmc"):
        n = hmc_steps if name == "hmc" else steps
        work = CHAINS * n
        h = HMC_STEP_SIZE if name == "hmc" else STEP_SIZE
        case = f"{name} ring-8 {CHAINS}x{n} h={h}"
        t = time_jax(jax.jit(ours[name]), key, repeats=repeats)
        out = ours[name](key)
        x = out if name == "ula" else out[0]
        extra = {"chain_steps_per_s": work / t.run_s, **_ring_quality(x, truth)}
        if name != "ula":
            extra["acceptance"] = float(jnp.mean(out[1]))
        rows.append(Row(SUITE, case, "genjax", t.compile_s, t.run_s, extra))
        genjax_s = t.run_s

        if peers is not None:
            t = time_jax(peers[name], key, repeats=repeats)
            out = peers[name](key)
            x = out if name == "ula" else out[0]
            extra = {"chain_steps_per_s": work / t.run_s, "genjax_speedup": t.run_s / genjax_s,
                     **_ring_quality(x, truth)}  # fmt: skip
            if name != "ula":
                extra["acceptance"] = float(jnp.mean(out[1]))
            rows.append(Row(SUITE, case, "blackjax", t.compile_s, t.run_s, extra))

        t = time_host(np_fns[name], repeats=1)
        per_step = t.run_s / np_work
        rows.append(Row(SUITE, f"{name} ring-8 64x20 h={h}", "oracle (numpy f64)",
                        t.compile_s, t.run_s,
                        {"chain_steps_per_s": 1.0 / per_step,
                         "genjax_speedup": per_step / (genjax_s / work)}))  # fmt: skip

    NOTES = (
        f"peers: {peer_note}. chain_steps_per_s = chains * steps / run_s (an HMC step is "
        f"{HMC_LEAPFROG} leapfrog steps). genjax runs over target.log_prob / target.score, the "
        f"public API. Energy distance to {CHAINS} exact ring samples and mode coverage show "
        "the chains' final states are comparable (chains start at the origin). Oracle: 64 "
        "chains x 20 steps, per chain-step."
    )
    return rows
