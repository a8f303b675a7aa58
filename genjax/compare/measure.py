"""The figures of ``genjax compare``, each computed by the shared metrics.

Quality and diversity of one sample set ``(n, ...)`` against held-out data:

* ring (2-D): :func:`genjax.gan.recipes.ring_quality` -- the energy distance to held-out
  points (:func:`genjax.metrics.energy_distance`, the squared statistic
  ``2E|X-Y| - E|X-X'| - E|Y-Y'|``), the fraction of the 8 modes with a sample within 3 std
  (:func:`genjax.metrics.mode_coverage`) and the KL of the high-quality samples' mode
  shares from uniform (:func:`genjax.metrics.occupancy_kl`);
* digits: the squared Fréchet distance between the features of a classifier trained on
  the real digits (:func:`genjax.digit_classifier.frechet_features`, the FID formula of
  Heusel et al. 2017 eq. 6 via :func:`genjax.frechet.frechet_distance`), and the same
  classifier's predictions for class coverage and the KL of class shares from uniform
  (:func:`genjax.metrics.occupancy_kl`).

A seed *diverged* when its samples are not all finite, and *collapsed* when it covers at
most half of the modes (ring) or classes (digits): the stability column counts both.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from genjax import metrics
from genjax.digit_classifier import NUM_CLASSES, DigitClassifier, frechet_features
from genjax.gan.recipes import ring_quality

__all__ = [
    "ring_figures",
    "digit_figures",
    "COLLAPSE_COVERAGE",
    "CLASS_SHARE",
]

COLLAPSE_COVERAGE = 0.5  # at most half of the modes / classes covered: a collapsed seed
CLASS_SHARE = 0.02  # a class "covered" by >= 2% of the samples (as the dcgan report)


def _finite(samples: jax.Array) -> bool:
    return bool(jnp.all(jnp.isfinite(jnp.asarray(samples))))


def ring_figures(samples: jax.Array, test: jax.Array) -> dict:
    """Quality (energy distance), mode coverage, mode-occupancy KL of ``samples (n, 2)``
    against ``test (m, 2)`` (the first ``min(n, m)`` of each enter the distance)."""
    finite = _finite(samples)
    q = ring_quality(jnp.asarray(samples, jnp.float32), jnp.asarray(test, jnp.float32))
    coverage = q["mode_coverage"] if finite else 0.0
    return {
        "quality": q["energy_distance"] if finite else float("nan"),
        "coverage": coverage,
        "occupancy_kl": q["mode_kl_from_uniform"],
        "high_quality_fraction": q["high_quality_fraction"],
        "diverged": not finite,
        "collapsed": finite and coverage <= COLLAPSE_COVERAGE,
    }


def digit_figures(samples: jax.Array, test: jax.Array, classifier: DigitClassifier) -> dict:
    """Quality (Fréchet distance of classifier features), class coverage and class-occupancy
    KL of ``samples (n, 8, 8, 1)`` against ``test (m, 8, 8, 1)``, both in [0, 1]."""
    finite = _finite(samples)
    if not finite:
        return {
            "quality": float("nan"),
            "coverage": 0.0,
            "occupancy_kl": float("nan"),
            "diverged": True,
            "collapsed": False,
        }
    samples = jnp.asarray(samples, jnp.float32)
    predicted = np.asarray(classifier.predict(samples))  # (n,) classes
    counts = np.bincount(predicted, minlength=NUM_CLASSES)
    coverage = float(np.mean(counts / len(predicted) >= CLASS_SHARE))
    return {
        "quality": frechet_features(classifier, samples, jnp.asarray(test, jnp.float32)),
        "coverage": coverage,
        "occupancy_kl": float(metrics.occupancy_kl(counts)),
        "class_counts": [int(c) for c in counts],
        "diverged": False,
        "collapsed": coverage <= COLLAPSE_COVERAGE,
    }
