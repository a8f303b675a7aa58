"""The autoregressive networks' entries for ``genjax train``: char-lm, pixelcnn, wavenet.

* ``char-lm`` — a 2-layer, 64-wide causal :class:`~genjax.autoregressive.Transformer` on the
  built-in ``text`` corpus, batches of 16 windows of 128 characters (next-character
  cross-entropy). The
  report gives the held-out **bits per character** and writes ``samples.txt`` /
  ``samples.png``: continuations of a prompt drawn by ``decoding.generate`` (KV cache, one
  compiled loop) at several temperatures and top-p values.
* ``pixelcnn`` — a :class:`~genjax.autoregressive.GatedPixelCNN` on the 8x8 digits
  **quantised to 4 grey levels** (``round(3 x)``; 4 levels keep the categorical read-out
  small, and 8x8 digits have only 17 levels to begin with); 5 gated layers of 3x3. The
  report gives the held-out **bits per dimension** of the quantised images (at most
  log2(4) = 2, a uniform model) and a grid of samples (``samples.png``).
* ``wavenet`` — a :class:`~genjax.autoregressive.WaveNet` on a built-in synthetic set: each
  signal is a sum of two sinusoids of random frequency, amplitude and phase with a linear
  chirp, 128 samples long, mu-law companded to 32 levels (``load_data`` makes it from the
  seed; nothing is downloaded). The report gives the held-out NLL (nats and bits per
  sample) and ``samples.png``: samples and test signals drawn with
  ``genjax.plotting.line_plot``.

``params`` is the network Module itself (a pytree of arrays in flax 0.12).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from genjax.autoregressive import loss, network
from genjax.metrics import bits_per_dim
from genjax.recipe import Recipe

# --- char-lm ------------------------------------------------------------------------------

CONTEXT = 128  # characters per training window (the model's max_len)
LM_STRIDE = 32  # training windows start every 32 characters (overlapping)
LM_DIM, LM_HEADS, LM_LAYERS = 64, 4, 2  # ~0.1M parameters: trains in a minute on 2 cores
PROMPT = "The "  # what the report's samples continue
TEMPERATURES = (0.5, 0.8, 1.0)  # report: plain sampling at these temperatures ...
TOP_PS = (0.9, 0.5)  # ... and nucleus sampling (temperature 1) at these p
LM_EVAL_WINDOWS = 2000  # held-out windows the bits per character is averaged over


def _text_windows(name: str, split: str, seed: int) -> np.ndarray:
    """The text as (n, CONTEXT + 1) int32 windows: overlapping for training, disjoint for test."""
    from genjax import data as data_lib

    ids = np.asarray(data_lib.load(name, split=split, seed=seed), np.int32)
    stride = LM_STRIDE if split == "train" else CONTEXT
    starts = np.arange(0, len(ids) - CONTEXT - 1, stride)
    return ids[starts[:, None] + np.arange(CONTEXT + 1)[None, :]]  # (n, CONTEXT + 1)


def _vocabulary() -> list[str]:
    from genjax import data as data_lib

    return data_lib.text_vocabulary()


def _init_lm(key: jax.Array, train_data: Any) -> network.Transformer:
    vocab = max(len(_vocabulary()), int(np.max(train_data)) + 1)
    return network.Transformer(vocab, CONTEXT, LM_DIM, LM_HEADS, LM_LAYERS, rngs=nnx.Rngs(key))


def _lm_optimizer(total_steps: int) -> optax.GradientTransformation:
    # Adam with a cosine decay and gradient clipping, the usual small-GPT recipe
    return optax.chain(optax.clip_by_global_norm(1.0),
                       optax.adam(optax.cosine_decay_schedule(3e-3, total_steps, alpha=0.1)))


def _encode(text: str) -> list[int]:
    vocab = _vocabulary()
    index = {c: i for i, c in enumerate(vocab)}
    missing = sorted({c for c in text if c not in index})
    if missing:
        raise ValueError(f"prompt holds characters outside the vocabulary: {missing!r}")
    return [index[c] for c in text]


def _decode_text(ids: Any) -> str:
    vocab = _vocabulary()
    return "".join(vocab[int(i)] for i in np.asarray(ids))


def _lm_sample(key: jax.Array, params: network.Transformer, n: int, *,
               prompt: str | None = None, temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None) -> list[str]:
    """n continuations of ``prompt`` (default "The "), as strings (prompt included)."""
    from genjax.autoregressive import decoding

    prompt = PROMPT if prompt is None else prompt
    ids = _encode(prompt) if prompt else _encode("\n")
    if len(ids) >= params.max_len:
        raise ValueError(f"prompt has {len(ids)} characters; the context is {params.max_len}")
    tokens = jnp.tile(jnp.asarray(ids, jnp.int32)[None], (n, 1))  # (n, P)
    new = decoding.generate(key, params, tokens, max_new_tokens=params.max_len - len(ids),
                            temperature=temperature, top_k=top_k, top_p=top_p)
    return [prompt + _decode_text(row) for row in np.asarray(new)]


_nll_windows = jax.jit(lambda model, tokens: loss.next_token_nll(model(tokens[:, :-1]), tokens)[0])


def _lm_bits_per_char(params: network.Transformer, windows: np.ndarray) -> float:
    windows = np.asarray(windows)[:LM_EVAL_WINDOWS]
    chunk = 250
    total = 0.0
    for start in range(0, len(windows), chunk):
        part = jnp.asarray(windows[start:start + chunk])
        total += float(_nll_windows(params, part)) * len(part)
    return total / len(windows) / math.log(2.0)


def _lm_report(key, params, train_data, test_data, out_dir) -> dict:
    from genjax import plotting

    texts, titles = [], []
    keys = jax.random.split(key, len(TEMPERATURES) + len(TOP_PS))
    settings = [{"temperature": t} for t in TEMPERATURES] + [{"top_p": p} for p in TOP_PS]
    for k, options in zip(keys, settings, strict=True):
        label = ", ".join(f"{name}={value}" for name, value in options.items())
        for text in _lm_sample(k, params, 2, **options):
            texts.append(f"[{label}] {text}")
            titles.append(label)
    plotting.text_dump(texts, Path(out_dir) / "samples.png", title="char-lm samples")
    return {
        "test_bits_per_char": _lm_bits_per_char(params, test_data),
        "train_bits_per_char": _lm_bits_per_char(params, np.asarray(train_data)[::7]),
        "uniform_bits_per_char": math.log2(params.vocab_size),
    }


# --- pixelcnn -----------------------------------------------------------------------------

LEVELS = 4  # grey levels of the quantised digits
PIX_FEATURES, PIX_LAYERS, PIX_KERNEL = 32, 5, 3  # reach: 5 rows up, 5 columns each side
PIX_REPORT_SAMPLES = 64  # images in the report's grid


def _quantised_digits(name: str, split: str, seed: int) -> np.ndarray:
    """Images in [0, 1] -> (n, H, W, 1) int32 levels in {0 .. LEVELS - 1}."""
    from genjax import data as data_lib

    images = data_lib.load(name, split=split, seed=seed)
    return np.asarray(network.quantize(images, LEVELS))


def _init_pixelcnn(key: jax.Array, train_data: Any) -> network.GatedPixelCNN:
    return network.GatedPixelCNN(LEVELS, rngs=nnx.Rngs(key), features=PIX_FEATURES,
                                 num_layers=PIX_LAYERS, kernel_size=PIX_KERNEL)


def _pixelcnn_sample(key: jax.Array, params: network.GatedPixelCNN, n: int, *,
                     temperature: float = 1.0, image_shape=(8, 8)) -> jax.Array:
    """n images as floats in [0, 1]: (n, H, W, 1)."""
    levels = network.pixelcnn_sample(key, params, n, image_shape=image_shape,
                                     temperature=temperature)
    return levels.astype(jnp.float32) / (LEVELS - 1)


_pixel_nll = jax.jit(lambda model, x: loss.pixelcnn_loss(model, x)[1]["nll_nats"])


def _pixelcnn_report(key, params, train_data, test_data, out_dir) -> dict:
    from genjax import plotting

    shape = tuple(np.shape(test_data)[1:3])
    samples = _pixelcnn_sample(key, params, PIX_REPORT_SAMPLES, image_shape=shape)
    plotting.image_grid(samples, Path(out_dir) / "samples.png", nrow=8,
                        title=f"pixelcnn: samples ({LEVELS} grey levels)")
    num_dims = math.prod(np.shape(test_data)[1:])
    test_nll = float(_pixel_nll(params, jnp.asarray(test_data)))
    train_nll = float(_pixel_nll(params, jnp.asarray(train_data)[:512]))
    return {
        "test_bits_per_dim": float(bits_per_dim(test_nll, num_dims)),
        "train_bits_per_dim": float(bits_per_dim(train_nll, num_dims)),
        "test_nll_nats": test_nll,
        "uniform_bits_per_dim": math.log2(LEVELS),
    }


# --- wavenet ------------------------------------------------------------------------------

WAVE_LEVELS = 32  # mu-law levels
WAVE_LENGTH = 128  # samples per signal
WAVE_TRAIN, WAVE_TEST = 4096, 512  # signals per split
WAVE_DILATIONS = (1, 2, 4, 8, 16, 32)  # receptive field 2 + 63 = 65 samples
WAVE_CHANNELS = 32


def synthetic_signals(num: int, length: int, seed: int) -> np.ndarray:
    """Sums of two sinusoids with a linear chirp, in [-0.9, 0.9]: (num, length) float32.

        s(t) = sum_{j=1,2} a_j sin(2 pi (f_j t + c_j t^2 / (2 length)) + phi_j),  t = 0 .. length-1

    with f_j ~ U(1/32, 1/8) cycles per sample, chirp rates c_j ~ U(-1/32, 1/32),
    a_j ~ U(0.3, 1), phi_j ~ U(0, 2 pi); each signal is scaled by 0.9 / (a_1 + a_2).
    """
    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=np.float64)[None, None, :]  # (1, 1, T)
    f = rng.uniform(1 / 32, 1 / 8, (num, 2, 1))
    c = rng.uniform(-1 / 32, 1 / 32, (num, 2, 1))
    a = rng.uniform(0.3, 1.0, (num, 2, 1))
    phi = rng.uniform(0.0, 2 * np.pi, (num, 2, 1))
    s = np.sum(a * np.sin(2 * np.pi * (f * t + c * t ** 2 / (2 * length)) + phi), axis=1)
    return (0.9 * s / a.sum(axis=1)).astype(np.float32)  # (num, T)


def _wave_data(name: str, split: str, seed: int) -> np.ndarray:
    """The synthetic signal set, mu-law quantised: (n, WAVE_LENGTH) int32 levels.

    ``name`` other than "sines" is loaded with ``genjax.data.load`` as (n, T) values in
    [-1, 1]. The test split uses another stream of the generator than the training split.
    """
    if name == "sines":
        num = WAVE_TRAIN if split == "train" else WAVE_TEST
        signals = synthetic_signals(num, WAVE_LENGTH, 2 * seed + (split != "train"))
    else:
        from genjax import data as data_lib

        signals = np.asarray(data_lib.load(name, split=split, seed=seed), np.float32)
        if signals.ndim != 2:
            raise ValueError(f"wavenet trains on (n, T) signals, got shape {signals.shape}")
    return np.asarray(network.mu_law_encode(signals, WAVE_LEVELS))


def _init_wavenet(key: jax.Array, train_data: Any) -> network.WaveNet:
    return network.WaveNet(WAVE_LEVELS, rngs=nnx.Rngs(key), residual_channels=WAVE_CHANNELS,
                           skip_channels=WAVE_CHANNELS, dilations=WAVE_DILATIONS)


def _wavenet_sample(key: jax.Array, params: network.WaveNet, n: int, *,
                    temperature: float = 1.0, length: int = WAVE_LENGTH) -> jax.Array:
    """n signals decoded from mu-law to [-1, 1]: (n, length) float32."""
    levels = network.wavenet_sample(key, params, n, length, temperature=temperature)
    return network.mu_law_decode(levels, WAVE_LEVELS)


_wave_nll = jax.jit(lambda model, x: loss.wavenet_loss(model, x)[0])


def _wavenet_report(key, params, train_data, test_data, out_dir) -> dict:
    from genjax import plotting

    length = int(np.shape(test_data)[1])
    samples = np.asarray(_wavenet_sample(key, params, 3, length=length))
    real = np.asarray(network.mu_law_decode(jnp.asarray(test_data[:2]), WAVE_LEVELS))
    t = np.arange(length)
    series = {f"sample {i}": (t, samples[i] + 2.5 * i) for i in range(3)}
    series.update({f"test signal {i}": (t, real[i] - 2.5 * (i + 1)) for i in range(2)})
    plotting.line_plot(series, Path(out_dir) / "samples.png", xlabel="t",
                       ylabel="value (offset per curve)",
                       title="wavenet: samples (top) and test signals (bottom)")
    test_nll = float(_wave_nll(params, jnp.asarray(test_data)))
    train_nll = float(_wave_nll(params, jnp.asarray(train_data)[:512]))
    return {
        "test_nll_nats_per_sample": test_nll,
        "test_bits_per_sample": test_nll / math.log(2.0),
        "train_nll_nats_per_sample": train_nll,
        "uniform_bits_per_sample": math.log2(WAVE_LEVELS),
    }


RECIPES: tuple[Recipe, ...] = (
    Recipe(
        name="char-lm",
        family="autoregressive",
        summary="2-layer causal transformer on the built-in text; bits/char, sampled text",
        data="text",
        init=_init_lm,
        sample=_lm_sample,
        report=_lm_report,
        loss=loss.next_token_loss,
        steps=1500,
        batch_size=16,
        learning_rate=3e-3,
        optimizer=_lm_optimizer,
        load_data=_text_windows,
        sample_options=("prompt", "temperature", "top_k", "top_p"),
    ),
    Recipe(
        name="pixelcnn",
        family="autoregressive",
        summary="gated PixelCNN on 8x8 digits (4 grey levels); bits/dim, samples",
        data="digits",
        init=_init_pixelcnn,
        sample=_pixelcnn_sample,
        report=_pixelcnn_report,
        loss=loss.pixelcnn_loss,
        steps=1000,
        batch_size=32,
        learning_rate=2e-3,
        load_data=_quantised_digits,
        sample_options=("temperature",),
    ),
    Recipe(
        name="wavenet",
        family="autoregressive",
        summary="WaveNet on synthetic chirped sinusoids (mu-law, 32 levels); NLL, samples",
        data="sines",
        init=_init_wavenet,
        sample=_wavenet_sample,
        report=_wavenet_report,
        loss=loss.wavenet_loss,
        steps=1500,
        batch_size=32,
        learning_rate=2e-3,
        load_data=_wave_data,
        sample_options=("temperature",),
    ),
)
