"""Gaussian-mixture EM: genjax.mixture against scikit-learn and the NumPy oracle.

Workload: 100,000 draws of ``genjax.targets.ring()`` (8 Gaussians on a circle, 2-D),
8 full-covariance components, 100 EM iterations with no early stop (``tol = 0``), every
implementation started from the same parameters (genjax's k-means++ initialisation,
handed to scikit-learn as ``weights_init`` / ``means_init`` / ``precisions_init``).

Reported ``run`` is seconds **per EM iteration** (one E-step + one M-step):

* genjax: ``mixture.fit`` -- the whole 100-iteration loop is one jitted ``while_loop``;
  the time of one call divided by 100. float32 (JAX's default) and float64.
* scikit-learn: ``GaussianMixture(...).fit`` with ``max_iter=100, tol=0``, divided by 100
  (its fit also runs one initialisation and one final E-step: about 1% extra, counted
  against scikit-learn). float64, its native dtype.
* oracle: ``genjax.mixture.oracle.fit`` (NumPy, float64, one component at a time), a few
  iterations only, per iteration.

``extra`` holds the speedup of genjax over each implementation, measured in the same run,
and the largest difference of the fitted means from scikit-learn's.
"""

from __future__ import annotations

import warnings

import numpy as np

from genjax.bench.harness import Row, time_host, time_jax

NOTES = (
    "EM per iteration (E-step + M-step) on ring draws, K=8 full covariances, tol=0, same "
    "initial parameters for all. genjax float32 unless marked; scikit-learn and oracle "
    "float64. speedup = implementation's time / genjax float32 time, measured side by side."
)


def _ring_data(n: int) -> np.ndarray:
    import jax

    from genjax import targets

    return np.asarray(targets.ring().sample(jax.random.key(0), n), np.float64)


def run(quick: bool = False) -> list[Row]:
    import jax
    import jax.numpy as jnp

    from genjax import mixture
    from genjax.mixture import oracle

    n = 20_000 if quick else 100_000
    iters = 20 if quick else 100
    oracle_iters = 2 if quick else 3
    repeats = 3 if quick else 5
    k = 8
    x64 = _ring_data(n)
    x32 = jnp.asarray(x64, jnp.float32)
    init = mixture.initialize(jax.random.key(0), x32, k=k)  # k-means++ + one M-step
    w0, m0, c0 = (np.asarray(a, np.float64) for a in (init.weights, init.means, init.covs))
    w0 = w0 / w0.sum()  # exactly normalised in float64, as scikit-learn checks
    init = mixture.GMMParams(*(jnp.asarray(a, jnp.float32) for a in (w0, m0, c0)), "full")
    case = f"EM/iter ring {n}x2 K={k} full"
    rows: list[Row] = []

    def genjax_fit(x, params):
        return mixture.fit(jax.random.key(0), x, k=k, init=params, max_iter=iters, tol=0.0)

    timing = time_jax(genjax_fit, x32, init, repeats=repeats)
    params32, hist = genjax_fit(x32, init)
    assert int(hist.n_iter) == iters
    genjax_per_iter = timing.run_s / iters
    rows.append(
        Row("mixture", case, "genjax", timing.compile_s, genjax_per_iter,
            {"final_mean_log_lik": float(hist.log_likelihood[-1])})
    )

    with jax.enable_x64(True):
        init64 = mixture.GMMParams(jnp.asarray(w0), jnp.asarray(m0), jnp.asarray(c0), "full")
        x64_jax = jnp.asarray(x64)
        timing64 = time_jax(genjax_fit, x64_jax, init64, repeats=repeats)
        params64, _ = genjax_fit(x64_jax, init64)
        means64 = np.asarray(params64.means)
    rows.append(
        Row("mixture", case, "genjax (float64)", timing64.compile_s, timing64.run_s / iters,
            {"speedup_f32": timing64.run_s / timing.run_s})
    )

    try:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import GaussianMixture
    except ImportError:  # peer library absent: skip its row
        GaussianMixture = None
    if GaussianMixture is not None:

        def sklearn_fit():
            model = GaussianMixture(
                n_components=k, covariance_type="full", tol=0.0, max_iter=iters,
                reg_covar=1e-6, weights_init=w0, means_init=m0,
                precisions_init=np.linalg.inv(c0), init_params="random_from_data",
                random_state=0,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # tol = 0 never converges
                return model.fit(x64)

        sk_timing = time_host(sklearn_fit, repeats=max(1, repeats - 2))
        model = sklearn_fit()
        sk_per_iter = sk_timing.run_s / iters
        rows.append(
            Row("mixture", case, "scikit-learn", sk_timing.compile_s, sk_per_iter, {
                "speedup": sk_per_iter / genjax_per_iter,
                "max_mean_diff_vs_genjax_f64": float(np.max(np.abs(model.means_ - means64))),
                "max_mean_diff_vs_genjax_f32": float(
                    np.max(np.abs(model.means_ - np.asarray(params32.means)))
                ),
            })
        )

    def oracle_fit():
        return oracle.fit(x64, w0, m0, c0, "full", max_iter=oracle_iters, tol=0.0,
                          reg_covar=1e-6)

    or_timing = time_host(oracle_fit, repeats=1)
    or_per_iter = or_timing.run_s / oracle_iters
    rows.append(
        Row("mixture", case, "oracle (numpy)", None, or_per_iter,
            {"speedup": or_per_iter / genjax_per_iter, "iterations_timed": oracle_iters})
    )
    return rows
