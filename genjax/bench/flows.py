"""Discrete normalizing flows: genjax vs the NumPy oracle vs distrax, and MAF's asymmetry.

Workload (issue 5): an 8-layer RealNVP on 64-D data — affine couplings on alternating
halves, each conditioner an MLP 32 -> 256 -> 256 -> 64 (SiLU), soft-clamped log-scale —
``log_prob`` and ``sample`` of a batch of 4096, the same random weights everywhere.

* genjax: :func:`genjax.flows.realnvp`, one jitted program each (compile apart).
* oracle (numpy f64): the same flow from :mod:`genjax.flows.oracle` (masked couplings, a
  NumPy MLP), on a smaller batch; the time is scaled to 4096 examples (per-example cost
  times 4096) and its log-densities are compared with genjax's.
* distrax (optional peer): ``distrax.SplitCoupling`` + ``ScalarAffine`` in a
  ``distrax.Chain`` over ``MultivariateNormalDiag``, conditioners written in plain JAX
  with genjax's weight arrays, so both compute the same function (the max difference of
  the log-densities is reported). Skipped with a note when distrax is not importable.

The matmul floor: the conditioners' FLOPs (2 * batch * sum of fan_in * fan_out per layer)
divided by the machine's float32 matmul rate, measured here on a 4096 x 256 x 256 product
(the shape the conditioners run). ``floor_ratio`` = time / floor (1.0 is the floor).

MAF: density (one MADE pass per layer) vs sampling (D sequential passes per layer) of a
5-layer MAF on 16-D with MADE widths 256, batch 1024.

Run: ``python -m genjax.bench flows`` (with distrax importable for the peer rows).
The flow-matching rows of the continuous half can be added beside ``run``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from genjax import flows as F
from genjax.bench.harness import Row, time_host, time_jax
from genjax.flows import oracle

SUITE = "flows"
DIM = 64
NUM_LAYERS = 8
HIDDEN = (256, 256)
BATCH = 4096
ORACLE_BATCH = 256
SCALE_CLAMP = 3.0
NOTES = ""


def _params(flow: F.Flow, key: jax.Array):
    """Initial parameters with every leaf perturbed (zero-initialised read-outs included),
    so the couplings are not the identity."""
    params = flow.init(key)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(1), len(leaves))
    noisy = [leaf + 0.02 * jax.random.normal(k, leaf.shape, leaf.dtype)
             for leaf, k in zip(leaves, keys, strict=True)]  # fmt: skip
    return jax.tree.unflatten(tree, noisy)


def _mlp_weights(params) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """Per coupling layer, ``[(W, b), ...]`` of its conditioner MLP (the nnx module itself)."""
    return [[(np.asarray(dense.kernel[...]), np.asarray(dense.bias[...]))
             for dense in layer["net"].layers] for layer in params]  # fmt: skip


def _flops(batch: int) -> float:
    sizes = (DIM // 2, *HIDDEN, DIM)
    per_layer = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    return 2.0 * batch * per_layer * NUM_LAYERS


def _matmul_rate(repeats: int) -> float:
    """Measured float32 FLOP/s of ``(BATCH, 256) @ (256, 256)``, chained 16 times."""
    a = jax.random.normal(jax.random.key(0), (BATCH, 256))
    w = jax.random.normal(jax.random.key(1), (256, 256)) / 16.0

    @jax.jit
    def chain(a, w):
        for _ in range(16):
            a = a @ w
        return a

    timing = time_jax(chain, a, w, repeats=repeats)
    return 16 * 2.0 * BATCH * 256 * 256 / timing.run_s


def _oracle_log_prob(weights, x: np.ndarray) -> np.ndarray:
    """log p(x) of the RealNVP by the oracle: inverse couplings from the last layer back."""
    log_det = np.zeros(len(x))
    z = np.asarray(x, np.float64)
    for i in reversed(range(NUM_LAYERS)):
        layers = weights[i]

        def net(h, layers=layers):
            return oracle.mlp(h, layers).reshape(len(h), DIM // 2, 2)

        z, ld = oracle.affine_coupling(z, net, i % 2 == 1, SCALE_CLAMP, inverse=True)
        log_det += ld
    return oracle.standard_normal_log_prob(z) + log_det


def _distrax_flow(weights):
    try:
        import distrax
    except ImportError as err:
        return None, f"distrax not importable ({err}); peer rows skipped"

    def conditioner(layers):
        layers = [(jnp.asarray(w), jnp.asarray(b)) for w, b in layers]

        def fn(h):
            for j, (w, b) in enumerate(layers):
                h = h @ w + b.reshape((1,) * (h.ndim - 1) + (-1,))
                if j < len(layers) - 1:
                    h = jax.nn.silu(h)
            out = h.reshape(*h.shape[:-1], DIM // 2, 2)  # distrax's sample vmaps: any batch
            return out[..., 0], SCALE_CLAMP * jnp.tanh(out[..., 1] / SCALE_CLAMP)

        return fn

    def inner(p):
        return distrax.ScalarAffine(shift=p[0], log_scale=p[1])

    layers = [
        distrax.SplitCoupling(split_index=DIM // 2, event_ndims=1,
                              conditioner=conditioner(weights[i]), bijector=inner,
                              swap=i % 2 == 1)
        for i in range(NUM_LAYERS)
    ]  # fmt: skip
    # distrax.Chain applies its last bijector first in the forward pass; genjax's Chain
    # applies its first: reverse the list for the same map.
    base = distrax.MultivariateNormalDiag(jnp.zeros(DIM), jnp.ones(DIM))
    return distrax.Transformed(base, distrax.Chain(layers[::-1])), f"distrax {distrax.__version__}"


def run(quick: bool = False) -> list[Row]:
    global NOTES
    repeats = 2 if quick else 5
    batch = 512 if quick else BATCH
    flow = F.realnvp(DIM, num_layers=NUM_LAYERS, hidden_sizes=HIDDEN, scale_clamp=SCALE_CLAMP)
    params = _params(flow, jax.random.key(0))
    key = jax.random.key(2)
    # Data drawn from the flow itself by a separate program (not the timed one).
    x = jax.jit(lambda k, p: flow.bijector.forward(p, jax.random.normal(k, (batch, DIM)))[0])(
        jax.random.key(3), params
    )
    rate = _matmul_rate(repeats)
    floor = _flops(batch) / rate
    rows: list[Row] = []

    log_prob = flow.log_prob  # one jitted program, the parameters traced
    t_lp = time_jax(log_prob, params, x, repeats=repeats)  # first call = compile + run
    lp = np.asarray(log_prob(params, x))
    case_lp = f"realnvp-8 log_prob 64-D batch {batch}"
    rows.append(Row(SUITE, case_lp, "genjax", t_lp.compile_s, t_lp.run_s,
                    {"floor_ratio": t_lp.run_s / floor, "floor_s": floor}))  # fmt: skip
    t_s = time_jax(flow.sample, key, params, batch, repeats=repeats)
    case_s = f"realnvp-8 sample 64-D batch {batch}"
    rows.append(Row(SUITE, case_s, "genjax", t_s.compile_s, t_s.run_s,
                    {"floor_ratio": t_s.run_s / floor, "floor_s": floor}))  # fmt: skip

    weights = _mlp_weights(params)
    n_or = min(ORACLE_BATCH, batch)
    x_np = np.asarray(x[:n_or], np.float64)
    t_or = time_host(_oracle_log_prob, weights, x_np, repeats=1)
    lp_or = _oracle_log_prob(weights, x_np)
    scale = batch / n_or  # per-example cost x batch
    extra = {
        "oracle_batch": n_or,
        "genjax_speedup": t_or.run_s * scale / t_lp.run_s,
        "max_abs_diff_log_prob": float(np.max(np.abs(lp_or - lp[:n_or]))),
    }
    rows.append(Row(SUITE, case_lp, "oracle (numpy f64)", t_or.compile_s * scale,
                    t_or.run_s * scale, extra))  # fmt: skip

    dx, peer_note = _distrax_flow(weights)
    if dx is not None:
        d_lp = jax.jit(dx.log_prob)
        t_dlp = time_jax(d_lp, x, repeats=repeats)
        lp_dx = np.asarray(d_lp(x))
        rows.append(Row(SUITE, case_lp, "distrax", t_dlp.compile_s, t_dlp.run_s,
                        {"genjax_vs_distrax_throughput": t_dlp.run_s / t_lp.run_s,
                         "floor_ratio": t_dlp.run_s / floor,
                         "max_abs_diff_log_prob": float(np.max(np.abs(lp_dx - lp)))}))  # fmt: skip
        d_s = jax.jit(lambda k: dx.sample(seed=k, sample_shape=(batch,)))
        t_ds = time_jax(d_s, key, repeats=repeats)
        rows.append(Row(SUITE, case_s, "distrax", t_ds.compile_s, t_ds.run_s,
                        {"genjax_vs_distrax_throughput": t_ds.run_s / t_s.run_s,
                         "floor_ratio": t_ds.run_s / floor}))  # fmt: skip

    # MAF: density in one pass per layer, sampling in D passes per layer.
    maf_dim, maf_batch = (8, 256) if quick else (16, 1024)
    maf = F.maf(maf_dim, num_layers=5, hidden_sizes=HIDDEN)
    mp = _params(maf, jax.random.key(4))
    xm = jax.random.normal(jax.random.key(5), (maf_batch, maf_dim))  # density cost only
    m_lp = maf.log_prob
    t_mlp = time_jax(m_lp, mp, xm, repeats=repeats)
    t_ms = time_jax(maf.sample, key, mp, maf_batch, repeats=repeats)
    case_m = f"maf-5 {maf_dim}-D batch {maf_batch}"
    rows.append(Row(SUITE, f"{case_m} log_prob", "genjax", t_mlp.compile_s, t_mlp.run_s, {}))
    rows.append(Row(SUITE, f"{case_m} sample", "genjax", t_ms.compile_s, t_ms.run_s,
                    {"sample_over_density": t_ms.run_s / t_mlp.run_s,
                     "sequential_passes": maf_dim}))  # fmt: skip

    NOTES = (
        f"matmul rate measured: {rate / 1e9:.1f} GFLOP/s (float32, {BATCH}x256x256); "
        f"RealNVP conditioner FLOPs per call: {_flops(batch) / 1e9:.2f} GFLOP, floor "
        f"{floor * 1e3:.2f} ms. Oracle rows: {n_or} examples timed, scaled to {batch}. "
        f"peers: {peer_note}."
    )
    return rows
