"""The counting family's entries for ``genjax train``: ``ngram`` and ``naive-bayes``.

Fitting is counting, so each recipe is one full-batch ``step`` that fits from the whole
training set (``steps=1``); ``init`` gives parameters of the fitted shapes filled with
zeros (the trainer needs the shapes to restore checkpoints).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from genjax import checks, data
from genjax.counting import naive_bayes, ngram
from genjax.recipe import Recipe

# --------------------------------------------------------------------------------------
# ngram: a character 5-gram with interpolated Kneser-Ney on the built-in text
# --------------------------------------------------------------------------------------

NGRAM_ORDER = 5  # held-out perplexity on the built-in text: 3 -> 6.5, 4 -> 4.5, 5 -> 4.0
NGRAM_SMOOTHING = "kneser_ney"  # add-k overfits from order 4 on (5.4, 6.3 at n = 4, 5)
NGRAM_DISCOUNT = 0.75  # Kneser & Ney's usual D; Chen & Goodman's estimate is close to it
NGRAM_SAMPLE_LENGTH = 400


def _vocab_size() -> int:
    return len(data.text_vocabulary())


def _fit_ngram(tokens: jax.Array) -> ngram.NGramModel:
    return ngram.fit(
        tokens,
        n=NGRAM_ORDER,
        vocab_size=_vocab_size(),
        smoothing=NGRAM_SMOOTHING,
        discount=NGRAM_DISCOUNT,
    )


def _zeros_like_shapes(tree):
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), tree)


def _ngram_init(key: jax.Array, train_data: jax.Array) -> ngram.NGramModel:
    del key  # counting has nothing random to initialise
    return _zeros_like_shapes(jax.eval_shape(_fit_ngram, train_data))


def _ngram_step(params: ngram.NGramModel, batch: jax.Array, key: jax.Array):
    del params, key  # the counts are recomputed from the whole corpus
    model = _fit_ngram(batch)
    distinct = {
        f"distinct_{k + 1}grams": jnp.sum(ids != np.iinfo(np.int32).max)
        for k, ids in enumerate(model.gram_ids)
    }
    return model, {"tokens": jnp.asarray(batch.shape[0], jnp.float32), **distinct}


def _ngram_sample(
    key: jax.Array,
    params: ngram.NGramModel,
    n: int,
    *,
    steps: int = NGRAM_SAMPLE_LENGTH,
    temperature: float = 1.0,
    prefix: str = "",
) -> list[str]:
    """``n`` texts of ``steps`` new characters each (one per sampling step), after ``prefix``."""
    prefix_ids = data.encode_text(prefix) if prefix else np.zeros((0,), np.int32)
    keys = jax.random.split(key, n)
    texts = []
    for k in keys:
        ids = ngram.sample(k, params, prefix_ids, int(steps), temperature=float(temperature))
        texts.append(prefix + data.decode_text(np.asarray(ids)))
    return texts


def _ngram_report(key, params, train_data, test_data, out_dir: Path) -> dict:
    from genjax import plotting

    texts = _ngram_sample(key, params, 4)
    test_ppl = float(ngram.perplexity(params, test_data))
    plotting.text_dump(
        texts,
        Path(out_dir) / "samples.png",
        title=f"character {NGRAM_ORDER}-gram, Kneser-Ney; held-out perplexity {test_ppl:.3f}",
    )
    train_ppl = float(ngram.perplexity(params, train_data[:50_000]))
    return {
        "test_perplexity": test_ppl,
        "test_bits_per_char": float(np.log2(test_ppl)),
        "train_perplexity_first_50k": train_ppl,
    }


# --------------------------------------------------------------------------------------
# naive-bayes: the three variants on the 8x8 digits
# --------------------------------------------------------------------------------------

NUM_DIGIT_CLASSES = 10
MULTINOMIAL_TRIALS = 300  # pixel "counts" per drawn image; images are shown scaled to [0, 1]
VARIANTS = ("gaussian", "multinomial", "bernoulli")


def _fit_all(images: jax.Array, labels: jax.Array) -> dict:
    k = NUM_DIGIT_CLASSES
    return {
        "gaussian": naive_bayes.fit_gaussian(images, labels, num_classes=k),
        "multinomial": naive_bayes.fit_multinomial(images, labels, num_classes=k),
        "bernoulli": naive_bayes.fit_bernoulli(images, labels, num_classes=k),
    }


def _nb_init(key: jax.Array, train_data) -> dict:
    del key
    images, labels = train_data
    return _zeros_like_shapes(jax.eval_shape(_fit_all, images, labels))


def _accuracy(params, images, labels) -> jax.Array:
    return jnp.mean((naive_bayes.predict(params, images) == labels).astype(jnp.float32))


def _nb_step(params: dict, batch, key: jax.Array):
    del params, key
    images, labels = batch
    fitted = _fit_all(images, labels)
    metrics = {f"train_accuracy_{v}": _accuracy(fitted[v], images, labels) for v in VARIANTS}
    return fitted, metrics


def _nb_sample(
    key: jax.Array, params: dict, n: int, *, sampler: str = "bernoulli"
) -> np.ndarray:
    """``n`` images (n, 8, 8, 1) in [0, 1] drawn from the ``sampler`` variant's p(x | c),
    for the classes 0, 1, ..., 9, 0, ... in turn."""
    variant = checks.one_of("sampler", sampler, VARIANTS)
    labels = jnp.arange(n, dtype=jnp.int32) % NUM_DIGIT_CLASSES
    x = naive_bayes.sample(key, params[variant], labels, num_trials=MULTINOMIAL_TRIALS)
    if variant == "multinomial":
        x = x / jnp.maximum(jnp.max(x, axis=1, keepdims=True), 1.0)  # counts -> [0, 1]
    return np.clip(np.asarray(x), 0.0, 1.0).reshape(n, 8, 8, 1)


def _nb_report(key, params, train_data, test_data, out_dir: Path) -> dict:
    from genjax import plotting

    images, labels = test_data
    figures = {f"test_accuracy_{v}": float(_accuracy(params[v], images, labels)) for v in VARIANTS}
    # rows: Gaussian class means, then two draws of each variant; columns: digits 0..9
    keys = jax.random.split(key, len(VARIANTS))
    rows = [np.clip(np.asarray(params["gaussian"].means), 0, 1).reshape(-1, 8, 8, 1)]
    for k, variant in zip(keys, VARIANTS, strict=True):
        rows.append(_nb_sample(k, params, 2 * NUM_DIGIT_CLASSES, sampler=variant))
    plotting.image_grid(
        np.concatenate(rows),
        Path(out_dir) / "samples.png",
        nrow=NUM_DIGIT_CLASSES,
        title="mean, Gaussian, multinomial, Bernoulli",
    )
    return figures


# One recipe a block: what it is, its four functions, its training sizes.
# fmt: off
RECIPES = (
    Recipe(
        name="ngram", family="counting", data="text",
        summary=f"character {NGRAM_ORDER}-gram, interpolated Kneser-Ney, on the built-in text",
        init=_ngram_init, step=_ngram_step, sample=_ngram_sample, report=_ngram_report,
        steps=1, full_batch=True, checkpoint_every=1,
        sample_options=("steps",),  # `genjax sample --steps N`: characters per text
    ),
    Recipe(
        name="naive-bayes", family="counting", data="digits",
        summary="Gaussian, multinomial and Bernoulli naive Bayes on 8x8 digits",
        init=_nb_init, step=_nb_step, sample=_nb_sample, report=_nb_report,
        steps=1, full_batch=True, checkpoint_every=1, load_data=data.load_with_labels,
        sample_options=("sampler",),  # `genjax sample --sampler bernoulli|gaussian|...`
    ),
)
# fmt: on
