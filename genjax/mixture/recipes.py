"""``genjax train gmm``: an 8-component full-covariance Gaussian mixture fit to the ring by EM.

Each trainer step is one EM iteration on the whole training set (``full_batch=True``);
``init`` is k-means++ seeding followed by one M-step on the hard assignment (the best
of 8 seedings). The data
(``genjax.data.load("ring")``) are draws from ``genjax.targets.ring()``, itself an
8-component Gaussian mixture, so the exact held-out log-likelihood of the true law is
known and printed next to the model's.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from genjax.mixture.em import bic, e_step, em_step, log_prob
from genjax.mixture.init import initialize
from genjax.mixture.params import GMMParams
from genjax.mixture.sample import sample
from genjax.recipe import Recipe

NUM_COMPONENTS = 8  # the ring has 8 modes
REG_COVAR = 1e-6
NUM_SEEDINGS = 8  # k-means++ seedings tried by init; the best is kept


def gmm_init(key: jax.Array, train_data: jax.Array) -> GMMParams:
    """k-means++ seeding on ``train_data`` ``(n, 2)`` then one M-step, best of several.

    EM only climbs to a local maximum, and a k-means++ draw now and then seeds two
    centres in one mode of the ring; as scikit-learn's ``n_init``, ``NUM_SEEDINGS``
    seedings run side by side (``jax.vmap``) and the one of highest log-likelihood is kept.
    """
    x = jnp.asarray(train_data)
    candidates = jax.vmap(
        lambda k: initialize(
            k, x, k=NUM_COMPONENTS, covariance_type="full", reg_covar=REG_COVAR
        )
    )(jax.random.split(key, NUM_SEEDINGS))  # GMMParams with a leading (NUM_SEEDINGS,) axis
    log_liks = jax.vmap(lambda p: e_step(p, x)[1])(candidates)  # (NUM_SEEDINGS,)
    best = jnp.argmax(log_liks)
    return jax.tree.map(lambda a: a[best], candidates)


def gmm_step(params: GMMParams, batch: jax.Array, key: jax.Array) -> tuple[GMMParams, dict]:
    """One EM iteration on ``batch`` ``(n, 2)`` (the whole training set); ``key`` is unused.

    The logged ``log_likelihood`` is the mean log-likelihood of the parameters entering
    the step, which EM never decreases.
    """
    del key
    new, mean_log_lik = em_step(params, batch, reg_covar=REG_COVAR)
    return new, {"log_likelihood": mean_log_lik}


def gmm_sample(key: jax.Array, params: GMMParams, n: int) -> jax.Array:
    """``n`` draws ``(n, 2)`` from the fitted mixture."""
    return sample(key, params, int(n))


def gmm_report(
    key: jax.Array, params: GMMParams, train_data: jax.Array, test_data: jax.Array, out_dir: Path
) -> dict:
    """``samples.png`` (samples over the data) and the quality figures.

    Returns held-out mean log-likelihood per point of the model and of the true ring law,
    their gap, the BIC on the training data, and the fraction of the 8 true modes within
    3 standard deviations of some sample.
    """
    from genjax import metrics, plotting, targets

    truth = targets.ring()
    test = jnp.asarray(test_data)
    draws = gmm_sample(key, params, 2000)
    plotting.scatter_2d(
        draws, np.asarray(train_data)[:5000], Path(out_dir) / "samples.png", title="gmm on ring"
    )
    model_ll = float(jnp.mean(log_prob(params, test)))
    true_ll = float(jnp.mean(truth.log_prob(test)))
    return {
        "test_log_likelihood": model_ll,
        "true_test_log_likelihood": true_ll,
        "log_likelihood_gap": true_ll - model_ll,
        "bic": float(bic(params, jnp.asarray(train_data))),
        "mode_coverage": float(metrics.mode_coverage(draws, truth.means, 3 * 0.3)),
    }


RECIPES: tuple[Recipe, ...] = (
    Recipe(
        name="gmm",
        family="mixture",
        summary="8-component full-covariance Gaussian mixture fitted to the ring by EM",
        data="ring",
        init=gmm_init,
        sample=gmm_sample,
        report=gmm_report,
        step=gmm_step,
        steps=100,
        full_batch=True,
        checkpoint_every=50,
        # The ring's own law: not the law of a user's --data.
        data_figures=("true_test_log_likelihood", "log_likelihood_gap", "mode_coverage"),
    ),
)
