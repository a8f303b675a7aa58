"""MCMC kernels: genjax vs blackjax vs the NumPy oracle, in chain-steps per second.

Workload (issue 15): MALA and unadjusted Langevin (ULA) on the 8-mode ring
(``genjax.targets.ring(8, 4.0, 0.3)``), 1024 chains x 5000 steps, step size 0.05, chains
started at ``x0 = 2 N(0, I)`` (one fixed draw, the same for every implementation); an HMC row
beside them (1000 steps of 5 leapfrog steps, ``eps = 0.1``). Every implementation returns
only the final positions (and the Metropolis kernels the per-chain acceptance rates).

* genjax: ``energy.mala`` / ``energy.langevin`` / ``energy.hmc`` over the target's own public
  methods, ``target.log_prob`` and ``target.score`` -- the one implementation of the mixture
  density (no private fast path): one jitted ``lax.scan`` over all chains (noise drawn in the
  loop), the target a traced argument; each MALA step is one fused log-density-and-gradient
  pass (``jax.value_and_grad``), reused by the Metropolis correction, and the proposal
  densities come from the step's own noise; HMC spends one such pass per leapfrog step.
* blackjax (optional peer): ``blackjax.mala`` and ``blackjax.hmc`` ``jax.vmap``-ed over chains
  inside one jitted ``lax.scan`` (one key split per chain per step, as blackjax's API asks),
  and a ULA step ``x + h grad log pi(x) + sqrt(2 h) xi`` under ``lax.scan`` -- each over
  the mixture's log-density written as a JAX user would write it: per point,
  ``logsumexp_k [log w_k + log N(x; mu_k, Sigma_k)]`` with the precisions and log-normalisers
  precomputed, its gradient by ``jax.grad`` (vmapped over chains). Skipped when blackjax is
  not importable.
* oracle (NumPy float64): :mod:`genjax.energy.oracle`, a Python loop over chains and steps
  (64 chains x 20 steps; chain-steps/s is per chain-step, so comparable).

genjax and blackjax are timed side by side (:func:`genjax.bench.harness.time_paired`: the
two called in turn, the ratio the median of at least three pairs), compile time apart.

Run: ``python -m genjax.bench mcmc`` (``--quick``: 1000 steps (HMC 200)).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from genjax import energy, targets
from genjax import oracle_targets as ot
from genjax.bench.harness import Row, time_host, time_jax, time_paired
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


def _natural_log_density(target):
    """``log pi(x)`` for one point ``x: (D,)``, as a JAX user writes a mixture's density:
    ``logsumexp_k [log w_k - 1/2 log |2 pi Sigma_k| - 1/2 (x - mu_k)^T Sigma_k^{-1} (x - mu_k)]``
    with the precisions and log-normalisers computed once (float64, then float32)."""
    from jax.scipy.special import logsumexp

    w, m, c = (np.asarray(a, np.float64) for a in (target.weights, target.means, target.covs))
    prec = jnp.asarray(np.linalg.inv(c), jnp.float32)  # (K, D, D)
    log_norm = np.log(w) - 0.5 * np.linalg.slogdet(2 * np.pi * c)[1]
    log_norm = jnp.asarray(log_norm, jnp.float32)  # (K,)
    mu = jnp.asarray(m, jnp.float32)  # (K, D)

    def log_density(x):
        diff = x - mu  # (K, D)
        return logsumexp(log_norm - 0.5 * jnp.einsum("kd,kde,ke->k", diff, prec, diff))

    return log_density


def _blackjax(target, x0, steps, hmc_steps):
    try:
        import blackjax
    except ImportError as err:
        return None, f"blackjax not importable ({err}); peer rows skipped"

    logdensity = _natural_log_density(target)
    mala_alg = blackjax.mala(logdensity, STEP_SIZE)
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

    score = jax.vmap(jax.grad(logdensity))  # (chains, D) -> (chains, D)

    @jax.jit
    def ula(key):
        def body(x, k):  # x' = x + h grad log pi(x) + sqrt(2 h) xi
            xi = jax.random.normal(k, x.shape, x.dtype)
            return x + STEP_SIZE * score(x) + jnp.sqrt(2.0 * STEP_SIZE) * xi, None

        x, _ = jax.lax.scan(body, x0, jax.random.split(key, steps))
        return x

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
    x0 = 2.0 * rng.standard_normal((chains, 2))  # 2 N(0, I), as the jitted rows
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
    target = targets.ring(n_modes=8, radius=4.0, std=0.3)
    x0 = 2.0 * jax.random.normal(jax.random.key(1), (CHAINS, 2), jnp.float32)  # 2 N(0, I)
    truth = target.sample(jax.random.key(123), CHAINS)
    key = jax.random.key(0)
    rows: list[Row] = []

    ours = _genjax(target, x0, steps, hmc_steps)
    peers, peer_note = _blackjax(target, x0, steps, hmc_steps)
    np_fns = _oracle(target, 64, 20)
    np_work = 64 * 20

    for name in ("mala", "ula", "hmc"):
        n = hmc_steps if name == "hmc" else steps
        work = CHAINS * n
        h = HMC_STEP_SIZE if name == "hmc" else STEP_SIZE
        case = f"{name} ring-8 {CHAINS}x{n} h={h}"
        ours_fn = jax.jit(ours[name])
        if peers is not None:  # side by side: genjax and blackjax in turn, median of 3 pairs
            paired = time_paired(lambda f=ours_fn: f(key), lambda f=peers[name]: f(key),
                                 pairs=3, repeats=1)  # fmt: skip
            t, peer_t = paired.a, paired.b
        else:
            t = time_jax(ours_fn, key, repeats=3)
        out = ours_fn(key)
        x = out if name == "ula" else out[0]
        extra = {"chain_steps_per_s": work / t.run_s, **_ring_quality(x, truth)}
        if name != "ula":
            extra["acceptance"] = float(jnp.mean(out[1]))
        rows.append(Row(SUITE, case, "genjax", t.compile_s, t.run_s, extra))
        genjax_s = t.run_s

        if peers is not None:
            out = peers[name](key)
            x = out if name == "ula" else out[0]
            extra = {"chain_steps_per_s": work / peer_t.run_s, "genjax_speedup": paired.ratio,
                     "pairs": paired.pairs, **_ring_quality(x, truth)}  # fmt: skip
            if name != "ula":
                extra["acceptance"] = float(jnp.mean(out[1]))
            rows.append(Row(SUITE, case, "blackjax", peer_t.compile_s, peer_t.run_s, extra))

        t = time_host(np_fns[name], repeats=1)
        per_step = t.run_s / np_work
        rows.append(Row(SUITE, f"{name} ring-8 64x20 h={h}", "oracle (numpy f64)",
                        t.compile_s, t.run_s,
                        {"chain_steps_per_s": 1.0 / per_step,
                         "genjax_speedup": per_step / (genjax_s / work)}))  # fmt: skip

    NOTES = (
        f"peers: {peer_note}. chain_steps_per_s = chains * steps / run_s (an HMC step is "
        f"{HMC_LEAPFROG} leapfrog steps). genjax runs over target.log_prob / target.score, the "
        "public API; blackjax over the same mixture's log-density written per point in JAX "
        "(logsumexp, precomputed precisions). genjax and blackjax alternate; genjax_speedup "
        "is the median of 3 pair ratios. Chains start at x0 = 2 N(0, I); energy distance to "
        f"{CHAINS} exact ring samples and mode coverage show the final states are comparable. "
        "Oracle: 64 chains x 20 steps, per chain-step."
    )
    return rows
