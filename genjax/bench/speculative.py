"""Speculative sampling vs plain decoding of the same target (issue 15's speculative row).

Speculative sampling (Leviathan, Kalman & Matias 2023, Algorithm 1; Chen et al. 2023)
draws exactly from the target; it pays when a draft is much cheaper a step than the
target and agrees with it often. The pair timed here, both trained in the suite on the
built-in ``text`` corpus (Python's documentation, 97 characters; nothing is cached on
disk):

* **target**: a causal :class:`~genjax.autoregressive.Transformer` of the decoding suite's
  shape -- 4 layers, width 256, 4 heads, MLP 1024 (3.3 M parameters) -- over the 97
  characters, context 144, trained ``TRAIN_STEPS`` steps of next-character cross-entropy
  (Adam, batches of 8 random windows of 144 characters);
* **draft**: 1 layer, width 128, 2 heads (0.26 M parameters), distilled from the target in
  the same steps: the cross-entropy from the target's stopped next-character
  distribution, ``KL(p_target || q_draft)`` up to a constant (Hinton et al. 2015 at
  temperature 1), which raises the acceptance ``sum_x min(p, q)``. Both losses are the
  ``speculative`` recipe's :func:`~genjax.autoregressive.recipes.pair_loss`.

At batch 1 on a CPU a target step costs ~0.7 ms and a draft step ~0.035 ms (the
``per-step cost`` rows measure both: the target ~20x the draft). A round is ``k`` draft
steps and one target pass over ``k + 1`` positions and yields ``1 + (accepted drafts)``
tokens. What bounds the speed-up is that pass: measured on the 2-core machine under load,
the target's cached ``decode`` of S = 1 token costs 0.82 ms, of S = 2, 5 and 9 tokens
2.3, 2.2 and 2.1 ms -- a fixed step up from one token to several (the matrix-vector
products become matrix-matrix ones, run on the shared thread pool), not arithmetic; with
the process pinned to one core the same pair gains 1.67x at k = 4 where it gains
1.24-1.38x on two loaded cores. So longer drafts (k = 4, 8) amortise it best.

Workload: batch 1, the prompt ``"The "``, 128 new tokens, temperature 0.8 (no top-k /
top-p), draft lengths k = 1, 2, 4, 8. Each row alternates speculative sampling
(:func:`~genjax.autoregressive.decoding.speculative_generate`) with plain cached
decoding of the target (:func:`~genjax.autoregressive.decoding.generate`), both one
jitted loop, median of 3 pairs of 3 calls (:func:`~genjax.bench.harness.time_paired`),
compile apart; each row reports the acceptance rate (the fraction of drafted tokens
accepted, mean over 8 keys), tokens per target call, tokens/s of both and the speed-up
(the median of the pairs' ratios). The output law is the target's whatever the draft
(tests/autoregressive/test_speculative.py).

Run: ``python -m genjax.bench speculative [--quick]`` (about 2-3 minutes on two cores,
most of it training).
"""

from __future__ import annotations

import math
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from genjax import data
from genjax.autoregressive import Transformer, decoding, loss
from genjax.autoregressive.recipes import pair_loss
from genjax.bench.harness import Row, time_jax, time_paired

SUITE = "speculative"
TARGET = dict(dim=256, num_heads=4, num_layers=4)  # the decoding suite's shape, MLP 4 x 256
DRAFT = dict(dim=128, num_heads=2, num_layers=1)
CONTEXT = 144  # training window = the models' max_len: P + N + k + 1 <= 144 for k <= 11
PROMPT = "The "
NEW = 128  # new tokens per call
TEMPERATURE = 0.8
DRAFT_LENGTHS = (1, 2, 4, 8)
TRAIN_STEPS, QUICK_TRAIN_STEPS = 300, 40
BATCH = 8  # training windows per step
LEARNING_RATE = 3e-3
STAT_KEYS = 8  # keys the acceptance rate and tokens per call are averaged over
PAIRS = 3


def train_pair(steps: int, seed: int = 0) -> tuple[Transformer, Transformer, dict]:
    """The target and its distilled draft, trained ``steps`` Adam steps on the text.

    Returns:
      ``(target, draft, info)`` with ``info`` = training seconds (compile included) and both
      models' held-out bits per character (64 test windows).
    """
    vocab = len(data.text_vocabulary())
    key_t, key_d = jax.random.split(jax.random.key(seed))
    params = {
        "target": Transformer(vocab, CONTEXT, **TARGET, rngs=nnx.Rngs(key_t)),
        "draft": Transformer(vocab, CONTEXT, **DRAFT, rngs=nnx.Rngs(key_d)),
    }
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, LEARNING_RATE, max(1, steps // 10), steps, LEARNING_RATE / 10
    )
    opt = optax.adam(schedule)
    state = opt.init(params)

    @jax.jit
    def step(params, state, batch):
        (_, metrics), grads = jax.value_and_grad(pair_loss, has_aux=True)(
            params, batch, jax.random.key(0)
        )
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, metrics

    ids = np.asarray(data.load("text", split="train"), np.int32)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for _ in range(steps):  # random windows of CONTEXT + 1 characters (inputs and labels)
        starts = rng.integers(0, ids.size - CONTEXT - 1, BATCH)
        params, state, _ = step(params, state, ids[starts[:, None] + np.arange(CONTEXT + 1)])
    jax.block_until_ready(params)
    train_s = time.perf_counter() - start
    test = np.asarray(data.load("text", split="test"), np.int32)
    windows = test[np.arange(64)[:, None] * CONTEXT + np.arange(CONTEXT + 1)]  # (64, 145)
    bits = {
        name: float(jax.jit(loss.next_token_loss)(model, windows)[0]) / math.log(2.0)
        for name, model in params.items()
    }
    info = {
        "train_s": train_s,
        "train_steps": steps,
        "target_bits_per_char": bits["target"],
        "draft_bits_per_char": bits["draft"],
    }
    return params["target"], params["draft"], info


def _prompt() -> jax.Array:
    return jnp.asarray(data.encode_text(PROMPT), jnp.int32)[None]  # (1, P)


def timed_rows(
    target: Transformer, draft: Transformer, info: dict, quick: bool = False
) -> list[Row]:
    """Per-step costs of both models, then speculative vs plain for each draft length."""
    prompt = _prompt()
    repeats = 3 if quick else 5
    costs = {}
    for name, model in (("target", target), ("draft", draft)):
        t = time_jax(
            lambda key, m=model: decoding.generate(
                key, m, prompt, max_new_tokens=NEW, temperature=TEMPERATURE
            ),
            jax.random.key(1),
            repeats=repeats,
        )
        costs[name] = t
    ms = {name: 1e3 * t.run_s / NEW for name, t in costs.items()}
    case = f"per-step cost, plain decoding B=1 N={NEW}"
    shapes = {"target": TARGET, "draft": DRAFT}
    rows = [
        Row(
            SUITE,
            case,
            f"genjax {name} (layers {shapes[name]['num_layers']}, width {shapes[name]['dim']})",
            t.compile_s,
            t.run_s,
            {
                "ms_per_step": ms[name],
                "target_over_draft_step_cost": ms["target"] / ms["draft"],
                **info,
            },
        )
        for name, t in costs.items()
    ]
    for k in DRAFT_LENGTHS[:2] if quick else DRAFT_LENGTHS:
        keys = iter(jax.random.split(jax.random.key(3 + k), 1000))

        def plain(keys=keys):
            return decoding.generate(
                next(keys), target, prompt, max_new_tokens=NEW, temperature=TEMPERATURE
            )

        def speculative(key, k=k):  # (tokens, stats) of one call
            return decoding.speculative_generate(
                key, target, draft, prompt, max_new_tokens=NEW, num_draft=k,
                temperature=TEMPERATURE,
            )  # fmt: skip

        def spec(keys=keys, speculative=speculative):
            return speculative(next(keys))[0]

        paired = time_paired(spec, plain, pairs=1 if quick else PAIRS, repeats=3)
        stats = [speculative(jax.random.key(100 + i))[1] for i in range(STAT_KEYS)]
        acceptance = statistics.mean(float(s["acceptance_rate"]) for s in stats)
        per_call = statistics.mean(float(s["tokens_per_round"]) for s in stats)
        case = f"speculative k={k} B=1 N={NEW} T={TEMPERATURE}"
        rows.append(
            Row(
                SUITE,
                case,
                "genjax",
                paired.a.compile_s,
                paired.a.run_s,
                {
                    "new_tokens_per_s": NEW / paired.a.run_s,
                    "acceptance_rate": acceptance,
                    "tokens_per_target_call": per_call,
                    "speedup_over_plain": paired.ratio,
                },
            )
        )
        rows.append(
            Row(
                SUITE,
                case,
                "plain decoding of the target (genjax generate)",
                paired.b.compile_s,
                paired.b.run_s,
                {
                    "new_tokens_per_s": NEW / paired.b.run_s,
                    "ratio": paired.ratio,
                    "pairs": paired.pairs,
                },
            )
        )
    return rows


def run(quick: bool = False) -> list[Row]:
    target, draft, info = train_pair(QUICK_TRAIN_STEPS if quick else TRAIN_STEPS)
    return timed_rows(target, draft, info, quick)


NOTES = (
    "Speculative sampling (Leviathan et al. 2023) from a trained 4-layer width-256 character "
    "transformer with a 1-layer width-128 draft distilled from it (both trained in the suite "
    "on the built-in text), against plain cached decoding of the same target; batch 1, "
    "128 new tokens, temperature 0.8; peer / genjax is the speed-up (median of alternated "
    "pairs)."
)
