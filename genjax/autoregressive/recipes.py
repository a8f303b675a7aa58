"""The autoregressive family's entries for ``genjax train``: char-lm, pixelcnn, wavenet,
speculative, json-lm (:mod:`genjax.autoregressive.json_lm`: structured output -- plain,
schema-masked and grammar-masked decoding of JSON records).

* ``char-lm`` -- a 2-layer, 64-wide causal :class:`~genjax.autoregressive.Transformer` on the
  built-in ``text`` corpus, batches of 16 windows of 128 characters (next-character
  cross-entropy). The report gives the held-out **bits per character** and writes
  ``samples.txt`` / ``samples.png``: continuations of a prompt drawn by
  :func:`~genjax.autoregressive.decoding.generate` (KV cache, one compiled loop) at several
  temperatures and top-p values.
* ``pixelcnn`` -- a :class:`~genjax.autoregressive.GatedPixelCNN` on the 8x8 digits
  **quantised to 4 grey levels** (``round(3 x)``; 4 levels keep the categorical read-out
  small, and 8x8 digits have only 17 levels to begin with); 5 gated layers of 3x3. The
  report gives the held-out **bits per dimension** of the quantised images (at most
  log2(4) = 2, a uniform model) and a grid of samples (``samples.png``).
* ``wavenet`` -- a :class:`~genjax.autoregressive.WaveNet` on a built-in synthetic set: each
  signal is a sum of two sinusoids of random frequency, amplitude and phase with a linear
  chirp, 128 samples long, mu-law companded to 32 levels (``load_data`` makes it from the
  seed; nothing is downloaded). The report gives the held-out NLL (nats and bits per
  sample) and ``samples.png``: samples and test signals drawn with
  ``genjax.plotting.line_plot``.
* ``speculative`` -- a character-level target transformer of the decoding benchmark's
  shape (4 layers, width 256, 4 heads, MLP 1024; ~0.7 ms a step at batch 1 on a CPU) and a
  draft about twenty times cheaper a step (1 layer, width 128) trained together on the
  built-in text, windows of 144 characters: the target by next-character cross-entropy,
  the draft by distillation from it (Hinton et al. 2015 at temperature 1: the
  cross-entropy from the target's stopped next-character distribution,
  ``KL(p_target || q_draft)`` up to a constant, which raises the acceptance
  ``sum_x min(p, q)`` of speculative sampling), one optimiser (:func:`pair_loss`). Then
  speculative sampling. The report measures what it buys over the draft lengths k = 1, 2,
  4, 8 (128 new tokens, T = 0.8, batch 1): the acceptance rate of the draft's tokens, the
  tokens per target call, tokens per second of plain cached decoding from the target vs
  speculative decoding (compile excluded, median of three) and the speed-up; held-out
  bits per character of both models, that greedy speculative decoding reproduces the
  target's greedy decoding token for token, and text samples. (``genjax bench
  speculative`` times the same pair with alternated pairs.)

Every recipe's params are the network modules themselves (an ``nnx.Module`` is a pytree of
arrays in flax 0.12; ``speculative``'s are a dict of two): the trainer differentiates and
checkpoints them directly, and the samplers take them as traced arguments.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from genjax import data as data_lib
from genjax.autoregressive import decoding, json_lm, loss
from genjax.autoregressive.pixelcnn import GatedPixelCNN, pixelcnn_sample, quantize
from genjax.autoregressive.transformer import Transformer
from genjax.autoregressive.wavenet import WaveNet, mu_law_decode, mu_law_encode, wavenet_sample
from genjax.metrics import bits_per_dim
from genjax.recipe import Recipe

PROMPT = "The "  # what the reports' text samples continue
EVAL_WINDOWS = 2000  # held-out windows the bits per character is averaged over

# --- text: windows, prompts, bits per character (char-lm and speculative) -----------------


def _text_windows(name: str, split: str, seed: int, length: int, stride: int) -> np.ndarray:
    """The text as (n, length + 1) int32 windows (inputs and shifted targets), every stride."""
    ids = np.asarray(data_lib.load(name, split=split, seed=seed), np.int32)
    starts = np.arange(0, len(ids) - length - 1, stride)
    return ids[starts[:, None] + np.arange(length + 1)[None, :]]  # (n, length + 1)


def _prompt_ids(prompt: str | None, n: int, context: int) -> jax.Array:
    """``prompt`` (default PROMPT; "" means a newline) as (n, P) ids, P < context."""
    ids = data_lib.encode_text(prompt or "\n")
    if len(ids) >= context:
        raise ValueError(f"prompt has {len(ids)} characters; the context is {context}")
    return jnp.tile(jnp.asarray(ids, jnp.int32)[None], (n, 1))  # (n, P)


def _init_rngs(key: jax.Array) -> nnx.Rngs:
    """Initialisation draws from an "rbg" key seeded by ``key``: they compile ~1.7x faster on
    CPU than threefry's (weights differ from a threefry init, not their law)."""
    return nnx.Rngs(jax.random.key(jax.random.bits(key, dtype=jnp.uint32), impl="rbg"))


EVAL_CHUNK = 250  # windows per evaluation call; the last chunk is padded (one program)


@jax.jit
def _mean_nll(models: dict, batch: tuple) -> dict:
    return {name: loss.next_token_loss(model, batch)[0] for name, model in models.items()}


def _bits_per_char(models: dict[str, Transformer], windows: Any) -> dict[str, float]:
    """Each model's bits per character over the first EVAL_WINDOWS windows, in one program."""
    windows = np.asarray(windows)[:EVAL_WINDOWS]
    nats, count = dict.fromkeys(models, 0.0), 0
    for start in range(0, len(windows), EVAL_CHUNK):
        part = windows[start:start + EVAL_CHUNK]
        mask = np.arange(EVAL_CHUNK)[:, None] < len(part)  # padding rows count nothing
        padded = np.zeros((EVAL_CHUNK, windows.shape[1]), np.int32)
        padded[:len(part)] = part
        counted = part[:, 1:].size  # targets: all but the first token of each window
        means = _mean_nll(models, (padded, np.broadcast_to(mask, padded.shape)))
        nats = {name: nats[name] + float(means[name]) * counted for name in models}
        count += counted
    return {name: value / count / math.log(2.0) for name, value in nats.items()}


# --- char-lm ------------------------------------------------------------------------------

LM_CONTEXT = 128  # characters per training window (the model's max_len)
LM_STRIDE = 32  # training windows start every 32 characters (overlapping)
LM_DIM, LM_HEADS, LM_LAYERS = 64, 4, 2  # ~0.1M parameters: trains in a minute on 2 cores
TEMPERATURES = (0.5, 0.8, 1.0)  # report: plain sampling at these temperatures ...
TOP_PS = (0.9, 0.5)  # ... and nucleus sampling (temperature 1) at these p


def _lm_windows(name: str, split: str, seed: int) -> np.ndarray:
    """Overlapping windows for training, disjoint ones for the test split."""
    return _text_windows(name, split, seed, LM_CONTEXT,
                         LM_STRIDE if split == "train" else LM_CONTEXT)


def _init_lm(key: jax.Array, train_data: Any) -> Transformer:
    vocab = max(len(data_lib.text_vocabulary()), int(np.max(train_data)) + 1)
    return Transformer(vocab, LM_CONTEXT, LM_DIM, LM_HEADS, LM_LAYERS, rngs=_init_rngs(key))


def _lm_optimizer(total_steps: int) -> optax.GradientTransformation:
    # Adam with a cosine decay and gradient clipping, the usual small-GPT recipe
    return optax.chain(optax.clip_by_global_norm(1.0),
                       optax.adam(optax.cosine_decay_schedule(3e-3, total_steps, alpha=0.1)))


def _lm_sample(key: jax.Array, params: Transformer, n: int, *, prompt: str | None = None,
               temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None) -> list[str]:
    """n continuations of ``prompt`` (default "The ") filling the context, as strings."""
    prompt = PROMPT if prompt is None else prompt
    tokens = _prompt_ids(prompt, n, params.max_len)  # (n, P)
    new = decoding.generate(key, params, tokens, max_new_tokens=params.max_len - tokens.shape[1],
                            temperature=temperature, top_k=top_k, top_p=top_p)
    return [prompt + data_lib.decode_text(row) for row in np.asarray(new)]


def _lm_report(key, params, train_data, test_data, out_dir) -> dict:
    from genjax import plotting

    texts = []
    keys = jax.random.split(key, len(TEMPERATURES) + len(TOP_PS))
    settings = [{"temperature": t} for t in TEMPERATURES] + [{"top_p": p} for p in TOP_PS]
    for k, options in zip(keys, settings, strict=True):
        label = ", ".join(f"{name}={value}" for name, value in options.items())
        texts += [f"[{label}] {text}" for text in _lm_sample(k, params, 2, **options)]
    plotting.text_dump(texts, Path(out_dir) / "samples.png", title="char-lm samples")
    return {
        "test_bits_per_char": _bits_per_char({"lm": params}, test_data)["lm"],
        "train_bits_per_char": _bits_per_char({"lm": params}, np.asarray(train_data)[::7])["lm"],
        "uniform_bits_per_char": math.log2(params.vocab_size),
    }


# --- pixelcnn and wavenet: held-out likelihood of a model over levels ----------------------


def _nll(loss_fn, metric: str):
    """``(model, levels) -> float`` of ``loss_fn``'s metric, one jitted program."""
    program = jax.jit(lambda model, x: loss_fn(model, x)[1][metric])
    return lambda model, x: float(program(model, jnp.asarray(x)))


LEVELS = 4  # grey levels of the quantised digits
PIX_FEATURES, PIX_LAYERS, PIX_KERNEL = 32, 5, 3  # reach: 5 rows up, 5 columns each side
PIX_REPORT_SAMPLES = 64  # images in the report's grid


def _quantised_digits(name: str, split: str, seed: int) -> np.ndarray:
    """Images in [0, 1] -> (n, H, W, 1) int32 levels in {0 .. LEVELS - 1}."""
    return np.asarray(quantize(data_lib.load(name, split=split, seed=seed), LEVELS))


def _init_pixelcnn(key: jax.Array, train_data: Any) -> GatedPixelCNN:
    return GatedPixelCNN(LEVELS, rngs=_init_rngs(key), features=PIX_FEATURES,
                         num_layers=PIX_LAYERS, kernel_size=PIX_KERNEL)


def _pixelcnn_sample(key: jax.Array, params: GatedPixelCNN, n: int, *,
                     temperature: float = 1.0, image_shape=(8, 8)) -> jax.Array:
    """n images as floats in [0, 1]: (n, H, W, 1)."""
    levels = pixelcnn_sample(key, params, n, image_shape=tuple(image_shape),
                             temperature=temperature)
    return levels.astype(jnp.float32) / (LEVELS - 1)


_pixel_nll = _nll(loss.pixelcnn_loss, "nll_nats")  # nats per image


def _pixelcnn_report(key, params, train_data, test_data, out_dir) -> dict:
    from genjax import plotting

    shape = tuple(np.shape(test_data)[1:3])
    samples = _pixelcnn_sample(key, params, PIX_REPORT_SAMPLES, image_shape=shape)
    plotting.image_grid(samples, Path(out_dir) / "samples.png", nrow=8,
                        title=f"pixelcnn: samples ({LEVELS} grey levels)")
    num_dims = math.prod(np.shape(test_data)[1:])
    # the training figure on as many images as the test set: the same compiled program
    test_nll, train_nll = (_pixel_nll(params, d[:len(test_data)]) for d in (test_data, train_data))
    return {
        "test_bits_per_dim": float(bits_per_dim(test_nll, num_dims)),
        "train_bits_per_dim": float(bits_per_dim(train_nll, num_dims)),
        "test_nll_nats": test_nll,
        "uniform_bits_per_dim": math.log2(LEVELS),
    }


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
        signals = np.asarray(data_lib.load(name, split=split, seed=seed), np.float32)
        if signals.ndim != 2:
            raise ValueError(f"wavenet trains on (n, T) signals, got shape {signals.shape}")
    return np.asarray(mu_law_encode(signals, WAVE_LEVELS))


def _init_wavenet(key: jax.Array, train_data: Any) -> WaveNet:
    return WaveNet(WAVE_LEVELS, rngs=_init_rngs(key), residual_channels=WAVE_CHANNELS,
                   skip_channels=WAVE_CHANNELS, dilations=WAVE_DILATIONS)


def _wavenet_sample(key: jax.Array, params: WaveNet, n: int, *, temperature: float = 1.0,
                    length: int = WAVE_LENGTH) -> jax.Array:
    """n signals decoded from mu-law to [-1, 1]: (n, length) float32."""
    return mu_law_decode(wavenet_sample(key, params, n, length, temperature=temperature),
                         WAVE_LEVELS)


_wave_nll = _nll(loss.wavenet_loss, "loss")  # nats per sample


def _wavenet_report(key, params, train_data, test_data, out_dir) -> dict:
    from genjax import plotting

    length = int(np.shape(test_data)[1])
    samples = np.asarray(_wavenet_sample(key, params, 3, length=length))
    real = np.asarray(mu_law_decode(jnp.asarray(test_data[:2]), WAVE_LEVELS))
    t = np.arange(length)
    series = {f"sample {i}": (t, samples[i] + 2.5 * i) for i in range(3)}
    series.update({f"test signal {i}": (t, real[i] - 2.5 * (i + 1)) for i in range(2)})
    plotting.line_plot(series, Path(out_dir) / "samples.png", xlabel="t",
                       ylabel="value (offset per curve)",
                       title="wavenet: samples (top) and test signals (bottom)")
    test_nll, train_nll = (_wave_nll(params, d[:len(test_data)]) for d in (test_data, train_data))
    return {
        "test_nll_nats_per_sample": test_nll,
        "test_bits_per_sample": test_nll / math.log(2.0),
        "train_nll_nats_per_sample": train_nll,
        "uniform_bits_per_sample": math.log2(WAVE_LEVELS),
    }


# --- speculative --------------------------------------------------------------------------

SPEC_CONTEXT = 144  # training window; the models' max_len (positions are learned)
SPEC_STRIDE = 72  # windows overlap by half
# A pair where speculative sampling can pay at batch 1 on a CPU: a target step costs ~20
# draft steps; its pass over k + 1 drafted positions costs ~2-3 single steps (bench
# speculative), so a round must yield more than that many tokens.
TARGET = dict(dim=256, num_heads=4, num_layers=4)  # ~3.3M parameters, MLP 4 x 256
DRAFT = dict(dim=128, num_heads=2, num_layers=1)  # ~0.26M parameters
NUM_DRAFT = 4  # tokens drafted per round (sampling)
DRAFT_LENGTHS = (1, 2, 4, 8)  # report: each is its own compiled loop
NEW_TOKENS = 128  # report: P + N + k + 1 <= SPEC_CONTEXT
GREEDY_CHECK = True  # the report decodes greedily both ways (two more compiled programs)


def _spec_windows(name: str, split: str, seed: int) -> np.ndarray:
    return _text_windows(name, split, seed, SPEC_CONTEXT, SPEC_STRIDE)


def _init_pair(key: jax.Array, train_data: Any) -> dict[str, Transformer]:
    t_key, d_key = jax.random.split(key)
    V = len(data_lib.text_vocabulary())
    return {"target": Transformer(V, SPEC_CONTEXT, **TARGET, rngs=_init_rngs(t_key)),
            "draft": Transformer(V, SPEC_CONTEXT, **DRAFT, rngs=_init_rngs(d_key))}


def pair_loss(params: dict, batch: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
    """The target's next-character cross-entropy plus the draft's distillation loss (the
    ``speculative`` recipe's loss; ``genjax bench speculative`` trains its pair with it).

        loss = -mean log p_target(x_{t+1} | x_{<=t})
               - mean sum_v sg(p_target(v | x_{<=t})) log q_draft(v | x_{<=t})

    (``sg``: stop-gradient; the second term is ``KL(p_target || q_draft)`` plus the
    target's entropy, Hinton et al. 2015 at temperature 1.)

    Args:
      params: ``{"target", "draft"}`` transformers.
      batch: (B, L + 1) int character windows.
      key: unused.
    """
    del key
    inputs, labels = batch[:, :-1], batch[:, 1:]  # (B, L) each
    log_p = jax.nn.log_softmax(params["target"](inputs), axis=-1)  # (B, L, V)
    log_q = jax.nn.log_softmax(params["draft"](inputs), axis=-1)
    ce_t = -jnp.mean(jnp.take_along_axis(log_p, labels[..., None], axis=-1))
    ce_d = -jnp.mean(jnp.take_along_axis(log_q, labels[..., None], axis=-1))  # reported
    distill = -jnp.mean(jnp.sum(jnp.exp(jax.lax.stop_gradient(log_p)) * log_q, axis=-1))
    return ce_t + distill, {"target_bits_per_char": ce_t / math.log(2.0),
                            "draft_bits_per_char": ce_d / math.log(2.0),
                            "distillation_nats": distill}


def _spec_sample(key: jax.Array, params: dict, n: int, *, prompt: str | None = None,
                 temperature: float = 0.8, top_k: int | None = None,
                 top_p: float | None = None) -> list[str]:
    """``n`` texts of NEW_TOKENS characters, speculative sampling from the target."""
    prompt = PROMPT if prompt is None else prompt
    tokens, _ = decoding.speculative_generate(
        key, params["target"], params["draft"], _prompt_ids(prompt, n, SPEC_CONTEXT),
        max_new_tokens=NEW_TOKENS, num_draft=NUM_DRAFT, temperature=temperature,
        top_k=top_k, top_p=top_p)
    return [prompt + data_lib.decode_text(row) for row in np.asarray(tokens)]


def _median_seconds(fn, repeats=3):
    jax.block_until_ready(fn())  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _spec_report(key, params, train_data, test_data, out_dir) -> dict:
    from genjax import plotting

    target, draft = params["target"], params["draft"]
    prompt = _prompt_ids(PROMPT, 1, SPEC_CONTEXT)
    opts = dict(max_new_tokens=NEW_TOKENS, temperature=0.8)
    k_plain, k_spec, k_text = jax.random.split(key, 3)
    plain_s = _median_seconds(lambda: decoding.generate(k_plain, target, prompt, **opts))
    by_k = {}
    for k in DRAFT_LENGTHS:  # each k is its own compiled loop
        spec_s = _median_seconds(lambda k=k: decoding.speculative_generate(
            k_spec, target, draft, prompt, num_draft=k, **opts)[0])
        stats = [decoding.speculative_generate(jax.random.fold_in(k_text, i), target,
                                               draft, prompt, num_draft=k, **opts)[1]
                 for i in range(4)]
        by_k[str(k)] = {
            "acceptance_rate": statistics.mean(float(s["acceptance_rate"]) for s in stats),
            "tokens_per_target_call": statistics.mean(float(s["tokens_per_round"])
                                                      for s in stats),
            "speculative_tokens_per_s": NEW_TOKENS / spec_s,
            "speedup": plain_s / spec_s}
    best = max(by_k, key=lambda k: by_k[k]["speedup"])
    runs = [decoding.speculative_generate(jax.random.fold_in(k_text, i), target, draft,
                                          prompt, num_draft=NUM_DRAFT, **opts)
            for i in range(4)]  # the sampling setting, four keys
    rates = [float(stats["acceptance_rate"]) for _, stats in runs]
    figures = {}
    if GREEDY_CHECK:  # greedy speculative decoding reproduces the target's greedy decoding
        greedy = dict(max_new_tokens=NEW_TOKENS, temperature=0.0)
        g_plain = decoding.generate(k_plain, target, prompt, **greedy)
        g_spec, _ = decoding.speculative_generate(k_spec, target, draft, prompt,
                                                  num_draft=NUM_DRAFT, **greedy)
        figures["greedy_match"] = float(bool(jnp.all(g_plain == g_spec)))
    texts = [PROMPT + data_lib.decode_text(tokens[0]) for tokens, _ in runs]
    plotting.text_dump(texts, Path(out_dir) / "samples.txt",
                       title=f"speculative sampling (T = 0.8, k = {NUM_DRAFT}); "
                             f"acceptance rate {statistics.mean(rates):.2f}")
    bits = _bits_per_char(params, np.asarray(test_data)[:64])
    return {
        "target_bits_per_char": bits["target"],
        "draft_bits_per_char": bits["draft"],
        "acceptance_rate": statistics.mean(rates),
        "tokens_per_target_call": statistics.mean(float(s["tokens_per_round"]) for _, s in runs),
        "plain_tokens_per_s": NEW_TOKENS / plain_s,
        "best_num_draft": int(best),
        "speculative_tokens_per_s": by_k[best]["speculative_tokens_per_s"],
        "speedup": by_k[best]["speedup"],
        "best_acceptance_rate": by_k[best]["acceptance_rate"],
        "by_num_draft": by_k,
        **figures,
    }


# --- the table ----------------------------------------------------------------------------

_TEXT_OPTIONS = ("prompt", "temperature", "top_k", "top_p")

RECIPES: tuple[Recipe, ...] = (
    Recipe(name="char-lm", family="autoregressive",
           summary="2-layer causal transformer on the built-in text; bits/char, sampled text",
           data="text", init=_init_lm, sample=_lm_sample, report=_lm_report,
           loss=loss.next_token_loss, steps=1500, batch_size=16, learning_rate=3e-3,
           optimizer=_lm_optimizer, load_data=_lm_windows, sample_options=_TEXT_OPTIONS),
    Recipe(name="pixelcnn", family="autoregressive",
           summary="gated PixelCNN on 8x8 digits (4 grey levels); bits/dim, samples",
           data="digits", init=_init_pixelcnn, sample=_pixelcnn_sample,
           report=_pixelcnn_report, loss=loss.pixelcnn_loss, steps=1000, batch_size=32,
           learning_rate=2e-3, load_data=_quantised_digits, sample_options=("temperature",)),
    Recipe(name="wavenet", family="autoregressive",
           summary="WaveNet on synthetic chirped sinusoids (mu-law, 32 levels); NLL, samples",
           data="sines", init=_init_wavenet, sample=_wavenet_sample, report=_wavenet_report,
           loss=loss.wavenet_loss, steps=1500, batch_size=32, learning_rate=2e-3,
           load_data=_wave_data, sample_options=("temperature",)),
    Recipe(name="speculative", family="autoregressive",
           summary="char-level transformer + 1-layer draft on the built-in text; "
                   "speculative sampling's acceptance rate and speed-up",
           data="text", init=_init_pair, sample=_spec_sample, report=_spec_report,
           loss=pair_loss, steps=800, batch_size=8, learning_rate=3e-3,
           optimizer=_lm_optimizer, load_data=_spec_windows, checkpoint_every=200,
           sample_options=_TEXT_OPTIONS),
    json_lm.RECIPE,
)
