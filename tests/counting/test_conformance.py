"""The counting family's samplers through genjax.testing's sampler suite.

The "model" of a counting sampler is its fitted tables (a pytree of arrays, data rather
than a callable): ``ngram.sample(key, model, prefix, length)`` with its twin
``ngram.sample_from_noise(model, prefix, gumbel)`` over two n-gram models fitted to two
corpora of one length (so the same table shapes), and ``naive_bayes.sample(key, params,
labels)`` over two fits of each variant. New tables of the same shapes never recompile.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.counting import naive_bayes as nb
from genjax.counting import ngram
from genjax.testing import SamplerCase, assert_sampler_conforms

V, LENGTH = 5, 8
KEY = jax.random.key(0)
PREFIX = jnp.asarray([1, 2], jnp.int32)


def _corpus(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, V, size=60).astype(np.int32)


@pytest.mark.parametrize("smoothing", ["add_k", "kneser_ney"])
def test_ngram_sample_conformance(smoothing):
    models = [ngram.fit(_corpus(s), n=3, vocab_size=V, smoothing=smoothing) for s in (1, 2)]

    def from_noise(key, model):  # the Gumbel noise ngram.sample draws
        gumbel = jax.random.gumbel(key, (LENGTH, V), model.alpha.dtype)
        return ngram.sample_from_noise(model, PREFIX, gumbel)

    assert_sampler_conforms(SamplerCase(
        name=f"ngram.sample ({smoothing})",
        sample=lambda k, m: ngram.sample(k, m, PREFIX, LENGTH),
        models=models,
        from_noise=from_noise,
        dtype=None,  # int32 tokens
        # Op by op, the table lookups compile a few hundred one-op programs (~20 s); the
        # compiled sampler is held to the NumPy oracle on shared noise in test_ngram.
        eager=False,
        bad_arguments=[
            (lambda: ngram.sample(KEY, models[0], PREFIX, -1), "length"),
            (lambda: ngram.sample(KEY, models[0], PREFIX, LENGTH, temperature=0.0),
             "temperature"),
            (lambda: ngram.sample(KEY, models[0], PREFIX[None], LENGTH), "prefix"),
        ],
    ))  # fmt: skip
    tokens = np.asarray(ngram.sample(KEY, models[0], PREFIX, LENGTH))
    assert tokens.shape == (LENGTH,) and tokens.dtype == np.int32
    assert (tokens >= 0).all() and (tokens < V).all()


def _data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(12, dtype=np.int32) % 3
    x = rng.poisson(2.0, size=(12, 4)).astype(np.float32) + y[:, None]  # counts by class
    return x, y


FITS = {
    "gaussian": functools.partial(nb.fit_gaussian, num_classes=3),
    "multinomial": functools.partial(nb.fit_multinomial, num_classes=3),
    "bernoulli": functools.partial(nb.fit_bernoulli, num_classes=3, binarize=2.5),
}


@pytest.mark.parametrize("variant", list(FITS))
def test_naive_bayes_sample_conformance(variant):
    models = [FITS[variant](*_data(s)) for s in (1, 2)]
    labels = jnp.asarray([0, 1, 2, 0, 1, 2], jnp.int32)
    sample = functools.partial(nb.sample, num_trials=20 if variant == "multinomial" else None)
    assert_sampler_conforms(SamplerCase(
        name=f"naive_bayes.sample ({variant})",
        sample=lambda k, p: sample(k, p, labels),
        models=models,
        bad_arguments=[(lambda: sample(KEY, models[0], jnp.asarray([0, 3])), "labels"),
                       (lambda: sample(KEY, models[0], labels[None]), "labels")],
    ))  # fmt: skip
