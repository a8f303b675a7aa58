"""Decoding: genjax's compiled sampling loops vs Hugging Face transformers' ``generate``.

Workload (issue 15, identical on both sides): a randomly initialised decoder-only
transformer, 4 layers, width 256, 4 heads, vocabulary 512, context 512, MLP 1024 --
``genjax.autoregressive.Transformer(512, 512, 256, 4, 4)`` and
``GPT2Config(n_layer=4, n_embd=256, n_head=4, vocab_size=512, n_positions=512,
n_inner=1024)`` (PyTorch, CPU) -- 16 prompts of 16 tokens, 128 new tokens, KV cache:

* nucleus sampling, temperature 0.8 and top-p 0.9 (``do_sample=True``), and greedy
  decoding; genjax (the whole ``generate`` call one jitted program) and transformers
  alternated (:func:`~genjax.bench.harness.time_paired`, median of >= 3 pairs, the ratio
  the median of the pairs' ratios), compile time apart; new tokens per second and
  milliseconds per step;
* the matmul floor: the dense layers of the same 128 decode steps (per layer QKV, output,
  MLP in/out; the read-out), batch 16, as one jitted scan -- what the workload costs
  without attention, sampling and loop overhead -- beside the same ops in PyTorch
  (alternated): even with attention and sampling free, genjax's ratio to transformers
  could not exceed transformers' step time over this row's;
* beam search, 4 beams, on a smaller workload (batch 4, prompt 16, 32 new tokens):
  genjax's :func:`beam_search_cached` and Hugging Face both reorder a KV cache;
  :func:`beam_search` (full forward pass per step) is shown too;
* constrained decoding's mask (issue 21), batch 16, with EOS: plain sampling vs a
  JSON-schema automaton vs the JSON grammar's pushdown automaton (stack bound 8) over a
  512-token vocabulary of characters, pairs and three-digit tokens; milliseconds per
  step of the loop and the ratio to plain;
* speculative sampling has its own suite, :mod:`genjax.bench.speculative` (a trained
  target/draft pair).

Hugging Face is skipped with a note when ``transformers``/``torch`` are not importable.
Run: ``python -m genjax.bench decoding [--quick]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from genjax.autoregressive import Transformer, decoding
from genjax.bench.harness import Row, time_host, time_jax, time_paired

SUITE = "decoding"
VOCAB, DIM, HEADS, LAYERS, CONTEXT, MLP = 512, 256, 4, 4, 512, 1024
BATCH, PROMPT, NEW = 16, 16, 128
PAIRS = 3  # alternated genjax / peer pairs (the median of their ratios is reported)


def _genjax_model():
    return Transformer(VOCAB, CONTEXT, DIM, HEADS, LAYERS, rngs=nnx.Rngs(0),
                       mlp_ratio=MLP // DIM)


def _hf_model():
    try:
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError as err:
        return None, f"Hugging Face skipped ({err.name} not importable)."
    torch.manual_seed(0)
    config = GPT2Config(n_layer=LAYERS, n_embd=DIM, n_head=HEADS, vocab_size=VOCAB,
                        n_positions=CONTEXT, n_inner=MLP, bos_token_id=0,
                        eos_token_id=None, pad_token_id=0)
    model = GPT2LMHeadModel(config).eval()
    import transformers
    return (model, torch), (f"transformers {transformers.__version__}, torch "
                            f"{torch.__version__}, {torch.get_num_threads()} threads")


def _hf_generate(hf, batch, prompt_len, new, **kwargs):
    model, torch = hf
    ids = torch.randint(1, VOCAB, (batch, prompt_len), generator=torch.Generator().manual_seed(0))

    def call():
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids),
                                 max_new_tokens=new, min_new_tokens=new, **kwargs)
        assert out.shape == (batch, prompt_len + new)
        return out

    return call


def _matmul_floor(steps: int, batch: int):
    """The decode steps' dense layers only: (B, D) through 4 x (QKV, out, MLP) + read-out."""
    keys = jax.random.split(jax.random.key(0), 5)
    D = DIM
    w = dict(qkv=jax.random.normal(keys[0], (LAYERS, D, 3 * D)) / D ** 0.5,
             out=jax.random.normal(keys[1], (LAYERS, D, D)) / D ** 0.5,
             up=jax.random.normal(keys[2], (LAYERS, D, 4 * D)) / D ** 0.5,
             down=jax.random.normal(keys[3], (LAYERS, 4 * D, D)) / (4 * D) ** 0.5,
             head=jax.random.normal(keys[4], (D, VOCAB)) / D ** 0.5)

    @jax.jit
    def floor(w, x):
        def step(x, _):
            for layer in range(LAYERS):
                q = x @ w["qkv"][layer]  # (B, 3D)
                x = x + q[:, :D] @ w["out"][layer]
                x = x + jnp.tanh(x @ w["up"][layer]) @ w["down"][layer]
            x = jnp.tanh(x)  # keeps the carried state bounded over the steps (cheap)
            return x, jnp.argmax(x @ w["head"], axis=-1)  # (B,)
        return jax.lax.scan(step, x, None, length=steps)[1]

    return floor, w, jnp.ones((batch, D))


def _torch_matmul_floor(hf, steps: int, batch: int, w: dict):
    """:func:`_matmul_floor` in PyTorch (the same weights and ops, eager, no grad): what
    the peer's own matrix products cost for these skinny (B = 16) shapes."""
    _, torch = hf
    tw = {name: torch.from_numpy(np.array(value, np.float32)) for name, value in w.items()}
    x0 = torch.ones(batch, DIM)

    def call():
        with torch.no_grad():
            x, out = x0, []
            for _ in range(steps):
                for layer in range(LAYERS):
                    q = x @ tw["qkv"][layer]  # (B, 3D)
                    x = x + q[:, :DIM] @ tw["out"][layer]
                    x = x + torch.tanh(x @ tw["up"][layer]) @ tw["down"][layer]
                x = torch.tanh(x)
                out.append(torch.argmax(x @ tw["head"], dim=-1))
            return torch.stack(out)

    return call


def run(quick: bool = False) -> list[Row]:
    global NOTES
    repeats = 2 if quick else 5
    new = 32 if quick else NEW
    model = _genjax_model()
    prompt = jax.random.randint(jax.random.key(1), (BATCH, PROMPT), 1, VOCAB)
    hf, hf_note = _hf_model()
    rows: list[Row] = []
    tokens = BATCH * new

    # --- sampling and greedy, side by side, alternated -----------------------------------
    for label, opts, hf_opts in (
        ("sample T=0.8 top-p=0.9", dict(temperature=0.8, top_p=0.9),
         dict(do_sample=True, temperature=0.8, top_p=0.9, top_k=0)),
        ("greedy", dict(temperature=0.0), dict(do_sample=False)),
    ):
        case = f"{label} B={BATCH} P={PROMPT} N={new}"
        keys = iter(jax.random.split(jax.random.key(2), 1000))

        def ours(o=opts, keys=keys):
            return decoding.generate(next(keys), model, prompt, max_new_tokens=new, **o)

        if hf is None:
            t = time_jax(ours, repeats=repeats)
        else:
            paired = time_paired(ours, _hf_generate(hf, BATCH, PROMPT, new, **hf_opts),
                                 pairs=PAIRS if not quick else 1, repeats=2 if quick else 3)
            t, h = paired.a, paired.b
        rows.append(Row(SUITE, case, "genjax", t.compile_s, t.run_s,
                        {"new_tokens_per_s": tokens / t.run_s,
                         "ms_per_step": 1e3 * t.run_s / new}))
        if hf is not None:
            rows.append(Row(SUITE, case, "transformers (torch)", h.compile_s, h.run_s,
                            {"new_tokens_per_s": tokens / h.run_s,
                             "ms_per_step": 1e3 * h.run_s / new,
                             "genjax_speedup": paired.ratio, "pairs": paired.pairs}))

    # --- the matmul floor ----------------------------------------------------------------
    floor, w, x = _matmul_floor(new, BATCH)
    floor_case = f"matmul floor B={BATCH} N={new}"
    if hf is None:
        f = time_jax(floor, w, x, repeats=repeats)
    else:  # the peer's own dense layers beside ours: is the floor XLA's or the machine's?
        paired = time_paired(lambda: floor(w, x), _torch_matmul_floor(hf, new, BATCH, w),
                             pairs=PAIRS if not quick else 1, repeats=2 if quick else 3)
        f, tf = paired.a, paired.b
    rows.append(Row(SUITE, floor_case, "genjax (dense layers only)", f.compile_s, f.run_s,
                    {"new_tokens_per_s": tokens / f.run_s, "ms_per_step": 1e3 * f.run_s / new}))
    if hf is not None:
        rows.append(Row(SUITE, floor_case, "torch (dense layers only)", tf.compile_s, tf.run_s,
                        {"new_tokens_per_s": tokens / tf.run_s,
                         "ms_per_step": 1e3 * tf.run_s / new,
                         "genjax_speedup": paired.ratio, "pairs": paired.pairs}))

    # --- beam search ---------------------------------------------------------------------
    b_batch, b_new = 4, (8 if quick else 32)
    b_prompt = prompt[:b_batch]

    case = f"beam K=4 B={b_batch} P={PROMPT} N={b_new}"
    bt = time_jax(lambda p: decoding.beam_search(model, p, num_beams=4, max_new_tokens=b_new,
                                                 length_penalty=1.0),
                  b_prompt, repeats=max(1, repeats // 2))
    bc = time_jax(lambda p: decoding.beam_search_cached(model, p, num_beams=4,
                                                        max_new_tokens=b_new,
                                                        length_penalty=1.0),
                  b_prompt, repeats=max(1, repeats // 2))
    rows.append(Row(SUITE, case, "genjax", bc.compile_s, bc.run_s,
                    {"new_tokens_per_s": b_batch * b_new / bc.run_s}))
    rows.append(Row(SUITE, case, "genjax (uncached)", bt.compile_s, bt.run_s,
                    {"new_tokens_per_s": b_batch * b_new / bt.run_s}))
    if hf is not None:
        h = time_host(_hf_generate(hf, b_batch, PROMPT, b_new, do_sample=False, num_beams=4,
                                   length_penalty=1.0, early_stopping=False),
                      repeats=max(1, repeats // 2))
        rows.append(Row(SUITE, case, "transformers (torch)", h.compile_s, h.run_s,
                        {"new_tokens_per_s": b_batch * b_new / h.run_s,
                         "genjax_speedup": h.run_s / bc.run_s}))

    rows += _constrained_rows(model, prompt, new, repeats)
    NOTES = (f"{hf_note} genjax: one jitted while_loop per call, KV cache, jax "
             f"{jax.__version__} on {jax.default_backend()}. Beam search: genjax recomputes "
             "the full forward pass each step in the uncached row.")
    return rows


def _mask_vocabulary() -> list[str]:
    """VOCAB strings: the 95 printable characters, a newline (EOS, id 95), then two-character
    tokens of JSON punctuation and digits and three-digit tokens (so the masks read
    multi-character tokens too)."""
    chars = [chr(c) for c in range(32, 127)]
    pairs = [a + b for a in '{}[]",:-0123456789' for b in '{}[]",:-0123456789']
    triples = [f"{i:03d}" for i in range(1000)]
    return (chars + ["\n"] + pairs + triples)[:VOCAB]


def _constrained_rows(model, prompt, new: int, repeats: int) -> list[Row]:
    """The per-step cost of constrained decoding's mask inside the loop (issue 21): plain
    sampling vs a JSON-schema automaton (one row gather a step) vs the JSON grammar's
    pushdown automaton (every token read from the configuration, O(B V D) a character),
    all with EOS; ms per step = run time / steps the loop ran."""
    from genjax.autoregressive.decoding import grammar, json_schema

    vocab, eos = _mask_vocabulary(), 95
    schema = {"type": "array", "items": {"type": "integer", "maxDigits": 3}, "maxItems": 8}
    masks = {"plain": None,
             "JSON-schema automaton": json_schema.from_json_schema(schema, vocab, eos_id=eos),
             "JSON grammar (depth 8)": grammar.from_grammar(grammar.JSON_GRAMMAR, vocab,
                                                            eos_id=eos, max_depth=8)}
    case = f"constrained mask B={BATCH} P={PROMPT} N={new}"
    rows, plain_ms = [], None
    for label, mask in masks.items():
        def call(k, mask=mask):
            return decoding.generate(k, model, prompt, max_new_tokens=new, temperature=1.0,
                                     eos_id=eos, constraint=mask)
        t = time_jax(call, jax.random.key(4), repeats=repeats)
        tokens = call(jax.random.key(4))
        steps = int(jnp.max(jnp.where(jnp.any(tokens == eos, 1),
                                      jnp.argmax(tokens == eos, 1) + 1, new)))
        ms = 1e3 * t.run_s / steps
        plain_ms = ms if plain_ms is None else plain_ms
        rows.append(Row(SUITE, case, f"genjax {label}", t.compile_s, t.run_s,
                        {"ms_per_step": ms, "steps": steps,
                         "cost_vs_plain": ms / plain_ms}))
    return rows


NOTES = ""
