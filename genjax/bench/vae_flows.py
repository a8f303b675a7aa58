"""Suite ``vae_flows``: the flow-posterior ELBO of the ``vae-iaf`` recipe's networks.

Workload: the ``vae-iaf`` recipe's models (MLP VAE ``64 -> 256 -> 256 -> 2x2`` /
``2 -> 256 -> 256 -> 64``, Bernoulli decoder; planar posterior with K = 8 amortised steps;
IAF posterior with K = 2 steps, a 16-wide context and MADEs of 64 x 64), untrained, on a
batch of 128 8x8 digits.

* ``elbo``: the one-sample ELBO of every example on given base noise
  (:func:`genjax.composites.flow_elbo_terms` in one ``jax.jit``, float32) against the NumPy float64
  oracle (:func:`genjax.composites.oracle_flow_posterior.flow_elbo`) on the same noise; the two
  alternate (:func:`~genjax.bench.harness.time_paired`, 3 pairs), ``ratio`` = oracle /
  genjax, and ``max_abs_diff_nats`` is the largest difference of the two ELBOs.
* ``iwae``: the IWAE bound with k = 1000 (quick: 100) on 100 test digits
  (:func:`genjax.composites.flow_iwae_bound`, chunks of 250), genjax only (the oracle is the
  ``elbo`` row's function, k times).
"""

from __future__ import annotations

import numpy as np

from genjax.bench.harness import Row, time_jax, time_paired

SUITE = "vae_flows"
BATCH = 128
NOTES = (
    "vae-iaf recipe networks (MLP 256x256, 2-D latent, Bernoulli): planar K=8, IAF K=2 "
    "(context 16, MADE 64x64). elbo: one-sample ELBO of 128 digits on shared noise, genjax "
    "jit float32 vs NumPy float64 oracle, alternated (ratio = oracle / genjax). iwae: "
    "IWAE-k on 100 test digits, genjax only."
)


def run(quick: bool = False) -> list[Row]:
    import jax

    from genjax import composites, data
    from genjax.composites import flow_posterior_recipes as recipes
    from genjax.composites import oracle_flow_posterior as oracle

    train_x = jax.numpy.asarray(data.load("digits")[:BATCH])
    test_x = jax.numpy.asarray(data.load("digits", split="test")[:100])
    models = recipes.init(jax.random.key(0), train_x)
    eps = jax.random.normal(jax.random.key(1), (BATCH, recipes.LATENT))
    x_np, eps_np = np.asarray(train_x, np.float64), np.asarray(eps, np.float64)
    elbo = jax.jit(composites.flow_elbo_terms)  # the model traced: new weights reuse the program
    k = 100 if quick else 1000
    rows: list[Row] = []
    for name in ("planar", "iaf"):
        model = models[name]
        weights = oracle.weights_of(model)
        steps = model.num_flows
        case = f"{name} K={steps} elbo, batch {BATCH}"
        paired = time_paired(
            lambda model=model: elbo(model, train_x, eps)["elbo"],
            lambda weights=weights: oracle.flow_elbo(x_np, eps_np, weights)["elbo"],
            pairs=3,
            repeats=3 if quick else 10,
        )
        diff = np.max(
            np.abs(
                np.asarray(elbo(model, train_x, eps)["elbo"], np.float64)
                - oracle.flow_elbo(x_np, eps_np, weights)["elbo"]
            )
        )
        rows.append(
            Row(
                SUITE,
                case,
                "genjax (jit)",
                paired.a.compile_s,
                paired.a.run_s,
                {"max_abs_diff_nats": float(diff)},
            )
        )
        rows.append(
            Row(
                SUITE,
                case,
                "oracle (numpy float64)",
                paired.b.compile_s,
                paired.b.run_s,
                {"ratio": paired.ratio, "pairs": paired.pairs},
            )
        )
        t = time_jax(
            composites.flow_iwae_bound,
            model,
            test_x,
            jax.random.key(2),
            k=k,
            chunk_size=250 if k % 250 == 0 else k,
            repeats=3,
        )
        bound = composites.flow_iwae_bound(
            model, test_x, jax.random.key(2), k=k, chunk_size=250 if k % 250 == 0 else k
        )
        rows.append(
            Row(
                SUITE,
                f"{name} K={steps} iwae-{k} on 100 images",
                "genjax (jit)",
                t.compile_s,
                t.run_s,
                {"mean_bound_nats": float(np.mean(bound))},
            )
        )
    return rows
