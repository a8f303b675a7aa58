"""The shared judge of the digits recipes: accurate on held-out digits, features that separate
real digits from noise, and a Fréchet distance that is small between two halves of real data."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from genjax import data
from genjax.digit_classifier import digit_classifier, frechet_features


@pytest.fixture(scope="module")
def clf():
    return digit_classifier(0)


def test_accuracy_on_held_out_digits(clf):
    x, y = data.load_with_labels("digits", "test", 0)
    # a 2-hidden-layer MLP on sklearn's digits reaches ~0.96-0.98; 0.9 fails an untrained or
    # label-shuffled classifier (chance is 0.1)
    assert clf.accuracy(x, y) > 0.9
    assert clf.predict(x).shape == (len(x),)
    assert clf.features(x).shape == (len(x), 128)


def test_frechet_real_halves_small_noise_large(clf):
    x, _ = data.load_with_labels("digits", "test", 0)
    real = frechet_features(clf, x[:180], x[180:])
    noise = np.asarray(jax.random.uniform(jax.random.key(0), x[:180].shape))
    fake = frechet_features(clf, x[:180], noise)
    assert 0.0 <= real < 0.2 * fake


def test_same_classifier_per_seed(clf):
    assert digit_classifier(0) is clf
