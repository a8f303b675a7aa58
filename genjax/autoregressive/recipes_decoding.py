"""The decoding half's recipe: ``speculative`` -- a character-level target transformer and
a small draft trained jointly on the built-in text, then speculative sampling.

The loss is the sum of both models' next-character cross-entropies on the same windows
(joint training: one optimiser, one pass over the data; the draft learns the same
distribution, only less well). The report measures what speculative sampling buys:
the acceptance rate of the draft's tokens (fraction of drafted tokens accepted), the
tokens per target call, tokens per second of plain cached decoding
from the target vs speculative decoding (batch 1, compile excluded, median of three),
held-out bits per character of both models, that greedy speculative decoding reproduces
the target's greedy decoding token for token, and text samples.
"""

from __future__ import annotations

import functools
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from genjax import data, plotting
from genjax.autoregressive import decoding
from genjax.autoregressive.network import Transformer
from genjax.recipe import Recipe

CONTEXT = 64  # training window; the models' max_len (positions are learned)
STRIDE = 32  # windows overlap by half
# Sized to train in ~2 minutes on two CPU cores; at this size per-step overhead, not
# arithmetic, dominates decoding on a CPU, so the draft is cheaper but not 10x cheaper.
TARGET = dict(dim=64, num_heads=4, num_layers=3)  # ~0.16M parameters
DRAFT = dict(dim=32, num_heads=2, num_layers=1)  # ~0.02M parameters
NUM_DRAFT = 3  # tokens drafted per round
NEW_TOKENS = 48  # report: P + N + k + 1 <= CONTEXT
PROMPT = "The "
GREEDY_CHECK = True  # the report decodes greedily both ways (two more compiled programs)


def _vocab_size() -> int:
    return len(data.text_vocabulary())


@functools.cache
def _graphdefs():
    """The two models' graph definitions (static structure), built once, abstractly."""
    V = _vocab_size()
    t = nnx.eval_shape(lambda: Transformer(V, CONTEXT, **TARGET, rngs=nnx.Rngs(0)))
    d = nnx.eval_shape(lambda: Transformer(V, CONTEXT, **DRAFT, rngs=nnx.Rngs(0)))
    return nnx.split(t)[0], nnx.split(d)[0]


def _models(params):
    gt, gd = _graphdefs()
    return nnx.merge(gt, params["target"]), nnx.merge(gd, params["draft"])


def load_windows(name: str, split: str, seed: int) -> np.ndarray:
    """Character windows of length CONTEXT + 1 (inputs and shifted targets), stride 32."""
    ids = data.load(name, split=split, seed=seed)
    starts = np.arange(0, len(ids) - CONTEXT - 1, STRIDE)
    return np.stack([ids[s:s + CONTEXT + 1] for s in starts]).astype(np.int32)


def init(key, train_data):
    t_key, d_key = jax.random.split(key)
    V = _vocab_size()
    target = Transformer(V, CONTEXT, **TARGET, rngs=nnx.Rngs(t_key))
    draft = Transformer(V, CONTEXT, **DRAFT, rngs=nnx.Rngs(d_key))
    return {"target": nnx.split(target)[1], "draft": nnx.split(draft)[1]}


def _cross_entropy(model, windows):
    """Mean next-character negative log-likelihood (nats): windows (B, CONTEXT + 1)."""
    logits = model(windows[:, :-1])  # (B, CONTEXT, V)
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, windows[:, 1:, None], axis=-1))


@jax.jit
def _bits_per_char(params, windows):
    target, draft = _models(params)
    return (_cross_entropy(target, windows) / np.log(2),
            _cross_entropy(draft, windows) / np.log(2))


def loss(params, batch, key):
    target, draft = _models(params)
    ce_t = _cross_entropy(target, batch)
    ce_d = _cross_entropy(draft, batch)
    return ce_t + ce_d, {"target_bits_per_char": ce_t / np.log(2),
                         "draft_bits_per_char": ce_d / np.log(2)}


def _prompt_ids(prompt: str | None, n: int) -> jnp.ndarray:
    ids = data.encode_text(prompt) if prompt else data.encode_text("\n")
    return jnp.tile(jnp.asarray(ids, jnp.int32)[None], (n, 1))


def sample(key, params, n, *, prompt=None, temperature=0.8, top_k=None, top_p=None):
    """``n`` texts of NEW_TOKENS characters, speculative sampling from the target."""
    target, draft = _models(params)
    prompt_ids = _prompt_ids(prompt if prompt is not None else PROMPT, n)
    tokens, _ = decoding.speculative_generate(
        key, target, draft, prompt_ids, max_new_tokens=NEW_TOKENS, num_draft=NUM_DRAFT,
        temperature=temperature, top_k=top_k, top_p=top_p)
    head = prompt if prompt is not None else PROMPT
    return [head + data.decode_text(np.asarray(row)) for row in tokens]


def _median_seconds(fn, repeats=3):
    jax.block_until_ready(fn())  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(key, params, train_data, test_data, out_dir):
    out_dir = Path(out_dir)
    target, draft = _models(params)
    test = jnp.asarray(test_data[:64])
    bits_t, bits_d = (float(b) for b in _bits_per_char(params, test))
    prompt = _prompt_ids(PROMPT, 1)
    opts = dict(max_new_tokens=NEW_TOKENS, temperature=0.8)
    k_plain, k_spec, k_text = jax.random.split(key, 3)
    plain_s = _median_seconds(lambda: decoding.generate(k_plain, target, prompt, **opts))
    spec_s = _median_seconds(lambda: decoding.speculative_generate(
        k_spec, target, draft, prompt, num_draft=NUM_DRAFT, **opts)[0])
    runs = [decoding.speculative_generate(jax.random.fold_in(k_text, i), target, draft,
                                          prompt, num_draft=NUM_DRAFT, **opts)
            for i in range(4)]  # the compiled program of the timing, four more keys
    rates = [float(stats["acceptance_rate"]) for _, stats in runs]
    per_round = [float(stats["tokens_per_round"]) for _, stats in runs]
    figures = {}
    if GREEDY_CHECK:  # greedy speculative decoding reproduces the target's greedy decoding
        greedy = dict(max_new_tokens=NEW_TOKENS, temperature=0.0)
        g_plain = decoding.generate(k_plain, target, prompt, **greedy)
        g_spec, _ = decoding.speculative_generate(k_spec, target, draft, prompt,
                                                  num_draft=NUM_DRAFT, **greedy)
        figures["greedy_match"] = float(bool(jnp.all(g_plain == g_spec)))
    texts = [PROMPT + data.decode_text(np.asarray(tokens[0])) for tokens, _ in runs]
    plotting.text_dump(texts, out_dir / "samples.txt",
                       title=f"speculative sampling (T = 0.8, k = {NUM_DRAFT}); "
                             f"acceptance rate {statistics.mean(rates):.2f}")
    return {
        "target_bits_per_char": bits_t,
        "draft_bits_per_char": bits_d,
        "acceptance_rate": statistics.mean(rates),
        "tokens_per_target_call": statistics.mean(per_round),
        "plain_tokens_per_s": NEW_TOKENS / plain_s,
        "speculative_tokens_per_s": NEW_TOKENS / spec_s,
        "speedup": plain_s / spec_s,
        **figures,
    }


RECIPES: tuple[Recipe, ...] = (
    Recipe(
        name="speculative",
        family="autoregressive",
        summary="char-level transformer + 1-layer draft on the built-in text; "
                "speculative sampling's acceptance rate and speed-up",
        data="text",
        init=init,
        sample=sample,
        report=report,
        loss=loss,
        steps=1200,
        batch_size=32,
        learning_rate=2e-3,
        load_data=load_windows,
        checkpoint_every=500,
        sample_options=("prompt", "temperature", "top_k", "top_p"),
    ),
)
