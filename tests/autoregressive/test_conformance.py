"""Every public sampler and loss of the autoregressive family through the conformance suites
of :mod:`genjax.testing` (DESIGN.md, "One model protocol"), and ten weight sets of
``generate`` compiled once.

``assert_sampler_conforms``: same key same output, another key another output (not for the
deterministic greedy and beam searches), ``*_from_noise`` on the sampler's own noise equals
the sampler, two models of the same shapes (two inits) share one compiled program and give
different outputs, dtypes kept, finite, jit = eager, bad arguments named. ``assert_loss_conforms``:
finite scalar and metrics, determinism, jit = re-jit, a finite non-zero gradient with
respect to the model that agrees with finite differences, bad arguments named.

The models are tiny (vocabulary 7, width 8, one layer; 4x4 images; 10-step signals) so
that every program compiles in about a second. What costs most is running a sampler op by
op under ``jax.disable_jit()`` (every primitive compiles on its own: ~60 to ~200 programs a
sampler), so jit = eager is checked for ``sample_token``, the step of every decoding loop
with the filters included. The loops are held instead to references that run elsewhere:
generate to the NumPy oracle on shared noise and cached to uncached, beam search to brute
force and to the NumPy beam step, speculative decoding to greedy decoding and, by
enumeration, to the target's law, the verify rule to the oracle on shared noise, the
PixelCNN and WaveNet samplers to the Gumbel-max of their finished outputs' logits
(test_network_conv). ``*_from_noise`` is held to its sampler for every twin, ``generate``'s
on the temperature loop (the filters and the constraint mask never touch the noise; the
constrained loop is held to the oracle on shared noise in test_constrained).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import autoregressive as ar
from genjax.autoregressive import decoding as dec
from genjax.testing import (
    LossCase,
    SamplerCase,
    assert_loss_conforms,
    assert_sampler_conforms,
    count_compilations,
)

V, MAX_LEN, N = 7, 12, 4  # vocabulary, context, new tokens
VOCAB = ["a", "b", "c", "d", "e", "f", "<eos>"]  # for the constrained case
EOS = 6
K, SIDE, T = 3, 4, 10  # levels, image side, signal length
# tiny fresh networks give logits near 0, whose Gumbel-max draws hardly depend on them; a low
# temperature makes the weights decide (the check that new weights change the output)
TAU = 0.2


def _init(build, seeds):
    """Models ``build(rngs)`` for each seed, built by one compiled program (one compile for
    all seeds, instead of one per initialiser op and shape); keys of the "rbg" generator,
    whose draws compile ~30% faster on CPU than threefry's."""
    make = jax.jit(lambda key: build(nnx.Rngs(key)))
    return tuple(make(jax.random.key(seed, impl="rbg")) for seed in seeds)


@functools.cache
def _ten_transformers():
    return _init(lambda rngs: ar.Transformer(V, MAX_LEN, 8, 2, 1, rngs=rngs), range(10))


def transformers(count=2):
    return _ten_transformers()[:count]


@functools.cache
def pixelcnns():  # the gated PixelCNN, the recipe's (the plain one shares the sampler)
    return _init(lambda rngs: ar.GatedPixelCNN(K, rngs=rngs, features=4, num_layers=2),
                 (30, 31))


@functools.cache
def wavenets():
    return _init(lambda rngs: ar.WaveNet(K, rngs=rngs, residual_channels=4, skip_channels=4,
                                         dilations=(1, 2)), (40, 41))


PROMPT = jnp.array([[0, 1, 2], [3, 4, 5]], jnp.int32)  # (B, P) = (2, 3)


def _step_gumbels(key, B):
    """The Gumbels generate draws: step t from fold_in(key, t), (N, B, V)."""
    steps = jnp.arange(N)
    return jax.vmap(lambda t: jax.random.gumbel(jax.random.fold_in(key, t), (B, V)))(steps)


# --- samplers -----------------------------------------------------------------------------


def _generate_case(name, deterministic=False, noise=False, **options):
    sample = functools.partial(dec.generate, prompt=PROMPT, max_new_tokens=N,
                               return_log_probs=True, **options)

    def from_noise(key, model):
        return dec.generate_from_noise(model, PROMPT, _step_gumbels(key, 2), max_new_tokens=N,
                                       return_log_probs=True, **options)

    model = transformers()[0]
    bad = [(lambda: dec.generate(jax.random.key(0), model, PROMPT, max_new_tokens=0),
            "max_new_tokens"),
           (lambda: dec.generate(jax.random.key(0), model, PROMPT + V, max_new_tokens=N),
            "prompt"),
           (lambda: dec.generate(jax.random.key(0), model, PROMPT, max_new_tokens=N,
                                 top_p=1.5), "top_p"),
           (lambda: dec.generate_from_noise(model, PROMPT, jnp.zeros((N, 2, V + 1)),
                                            max_new_tokens=N), "gumbels")]
    return SamplerCase(name, lambda key, m: sample(key, m), transformers(),
                       from_noise=from_noise if noise else None, bad_arguments=bad,
                       deterministic=deterministic, eager=False)


def _constrained_case():
    automaton = dec.constrained.from_regex("(ab|c)+", VOCAB, eos_id=EOS)
    options = dict(max_new_tokens=N, eos_id=EOS, constraint=automaton)
    model = transformers()[0]
    wrong = dec.constrained.from_regex("(ab|c)+", VOCAB[:-1] + ["d", "<eos>"], eos_id=EOS + 1)
    bad = [(lambda: dec.generate(jax.random.key(0), model, PROMPT, max_new_tokens=N,
                                 constraint=wrong), "constraint"),
           (lambda: dec.generate(jax.random.key(0), model, PROMPT, max_new_tokens=N,
                                 eos_id=V), "eos_id")]
    return SamplerCase("generate constrained", lambda key, m: dec.generate(key, m, PROMPT,
                                                                            **options),
                       transformers(), bad_arguments=bad, eager=False)


def _beam_case(cached):
    search = dec.beam_search_cached if cached else dec.beam_search
    sample = functools.partial(search, prompt=PROMPT, num_beams=3, max_new_tokens=N,
                               eos_id=EOS, length_penalty=0.5)
    model = transformers()[0]
    bad = [(lambda: search(model, PROMPT, num_beams=0, max_new_tokens=N), "num_beams"),
           (lambda: search(model, PROMPT, num_beams=2, max_new_tokens=N, eos_id=V), "eos_id"),
           (lambda: search(model, PROMPT, num_beams=2, max_new_tokens=N,
                           length_penalty=float("nan")), "length_penalty")]
    return SamplerCase("beam_search_cached" if cached else "beam_search",
                       lambda key, m: sample(m), transformers(), bad_arguments=bad,
                       deterministic=True, eager=False)


def _speculative_case():
    # (target, draft) pairs; the drafts share the targets' architecture (and so their
    # initialising program), which speculative sampling allows
    pairs = list(zip(transformers(2), transformers(4)[2:], strict=True))
    options = dict(max_new_tokens=N, num_draft=2, temperature=0.9, top_k=5)

    def sample(key, pair):
        return dec.speculative_generate(key, pair[0], pair[1], PROMPT, **options)

    target, draft = pairs[0]
    bad = [(lambda: dec.speculative_generate(jax.random.key(0), target, draft, PROMPT,
                                             max_new_tokens=N, num_draft=0), "num_draft"),
           (lambda: dec.speculative_generate(jax.random.key(0), target, draft, PROMPT,
                                             max_new_tokens=MAX_LEN, num_draft=2),
            "max_new_tokens"),
           (lambda: dec.speculative_generate(jax.random.key(0), target, draft, PROMPT,
                                             max_new_tokens=N, num_draft=2, min_p=2.0),
            "min_p")]
    return SamplerCase("speculative_generate", sample, pairs, bad_arguments=bad, eager=False)


def _sample_token_case():
    # the "model" of sample_token is its logits: new logits of the same shape, no compile
    rng = np.random.default_rng(0)
    logits = [jnp.asarray(rng.normal(size=(8, 16)), jnp.float32) for _ in range(2)]
    options = dict(temperature=0.9, top_p=0.9)

    def from_noise(key, l):
        return dec.sample_token_from_noise(l, jax.random.gumbel(key, l.shape), **options)

    bad = [(lambda: dec.sample_token(jax.random.key(0), logits[0], top_k=0), "top_k"),
           (lambda: dec.sample_token(jax.random.key(0), logits[0], temperature=-1.0),
            "temperature"),
           (lambda: dec.sample_token_from_noise(logits[0], jnp.zeros((8, 15))), "gumbel")]
    return SamplerCase("sample_token", lambda key, l: dec.sample_token(key, l, **options),
                       logits, from_noise=from_noise, bad_arguments=bad)


def _verify_inputs(seed, B=None, k=3, vocab=32):
    rng = np.random.default_rng(seed)
    lead = () if B is None else (B,)
    q = rng.dirichlet(np.ones(vocab), size=(*lead, k)).astype(np.float32)
    p = rng.dirichlet(np.ones(vocab), size=(*lead, k + 1)).astype(np.float32)
    x = np.argmax(np.log(q) + rng.gumbel(size=q.shape), axis=-1)  # x_i ~ q_i
    return tuple(jnp.asarray(a) for a in (x, q, p))


def _verify_cases():
    def from_noise(key, inputs):
        x, q, p = inputs
        u_key, g_key = jax.random.split(key)
        return dec.speculative_verify_from_noise(
            x, q, p, jax.random.uniform(u_key, x.shape), jax.random.gumbel(g_key, p.shape))

    single = [_verify_inputs(s) for s in (0, 1)]
    batch = [_verify_inputs(s, B=8) for s in (2, 3)]
    x, q, p = single[0]
    bad = [(lambda: dec.speculative_verify(jax.random.key(0), x, q, q), "target_probs"),
           (lambda: dec.speculative_verify(jax.random.key(0), x, q[:, :5], p), "target_probs"),
           (lambda: dec.speculative_verify(jax.random.key(0), q, q, p), "draft_tokens")]
    return [SamplerCase("speculative_verify",
                        lambda key, i: dec.speculative_verify(key, *i), single,
                        from_noise=from_noise, bad_arguments=bad, dtype=None, eager=False),
            SamplerCase("speculative_verify_batch",
                        lambda key, i: dec.speculative_verify_batch(key, *i), batch,
                        bad_arguments=[(lambda: dec.speculative_verify_batch(
                            jax.random.key(0), x, q, p), "draft_tokens")], dtype=None,
                        eager=False)]


def _pixelcnn_case():
    def from_noise(key, model):
        gumbel = jax.random.gumbel(key, (2, SIDE, SIDE, K))
        return ar.pixelcnn_sample_from_noise(model, jnp.zeros((2, SIDE, SIDE, 1), jnp.int32),
                                             gumbel, temperature=TAU)

    model = pixelcnns()[0]
    canvas = jnp.zeros((2, SIDE, SIDE, 1), jnp.int32)
    bad = [(lambda: ar.pixelcnn_sample(jax.random.key(0), model, 2, temperature=0.0),
            "temperature"),
           (lambda: ar.pixelcnn_sample(jax.random.key(0), model, 0), "n"),
           (lambda: ar.pixelcnn_sample(jax.random.key(0), model, 2, image_shape=(4,)),
            "image_shape"),
           (lambda: ar.pixelcnn_sample_from_noise(model, canvas, jnp.zeros((2, SIDE, SIDE, 2))),
            "gumbel"),
           (lambda: ar.pixelcnn_sample_from_noise(model, canvas, jnp.zeros((2, SIDE, SIDE, K)),
                                                  start=SIDE * SIDE + 1), "start")]
    return SamplerCase("pixelcnn_sample",
                       lambda key, m: ar.pixelcnn_sample(key, m, 2, image_shape=(SIDE, SIDE),
                                                         temperature=TAU),
                       pixelcnns(), from_noise=from_noise, bad_arguments=bad, eager=False)


def _wavenet_case():
    def from_noise(key, model):
        return ar.wavenet_sample_from_noise(model, jnp.zeros((2, T), jnp.int32),
                                            jax.random.gumbel(key, (2, T, K)), temperature=TAU)

    model = wavenets()[0]
    bad = [(lambda: ar.wavenet_sample(jax.random.key(0), model, 2, 0), "length"),
           (lambda: ar.wavenet_sample(jax.random.key(0), model, 2, T, temperature=-1.0),
            "temperature"),
           (lambda: ar.wavenet_sample_from_noise(model, jnp.zeros((2, T), jnp.int32),
                                                 jnp.zeros((2, T - 1, K))), "gumbel")]
    return SamplerCase("wavenet_sample",
                       lambda key, m: ar.wavenet_sample(key, m, 2, T, temperature=TAU),
                       wavenets(), from_noise=from_noise, bad_arguments=bad, eager=False)


SAMPLER_CASES = {
    "generate greedy": lambda: _generate_case("generate greedy", deterministic=True,
                                              temperature=0.0),
    "generate temperature": lambda: _generate_case("generate temperature", noise=True,
                                                   temperature=0.8),
    # the three filters in one program (each is held to the oracle's kept sets elsewhere)
    "generate top-k/top-p/min-p": lambda: _generate_case(
        "generate top-k/top-p/min-p", temperature=1.2, top_k=5, top_p=0.9, min_p=0.05),
    "generate constrained": _constrained_case,
    "beam_search": lambda: _beam_case(cached=False),
    "beam_search_cached": lambda: _beam_case(cached=True),
    "speculative_generate": _speculative_case,
    "sample_token": _sample_token_case,
    "speculative_verify": lambda: _verify_cases()[0],
    "speculative_verify_batch": lambda: _verify_cases()[1],
    "pixelcnn_sample": _pixelcnn_case,
    "wavenet_sample": _wavenet_case,
}

#: the public sampling functions the cases above cover (keyed samplers and their twins)
SAMPLERS_COVERED = (
    dec.generate, dec.generate_from_noise, dec.beam_search, dec.beam_search_cached,
    dec.speculative_generate, dec.sample_token, dec.sample_token_from_noise,
    dec.speculative_verify, dec.speculative_verify_from_noise, dec.speculative_verify_batch,
    ar.pixelcnn_sample, ar.pixelcnn_sample_from_noise, ar.wavenet_sample,
    ar.wavenet_sample_from_noise,
)


@pytest.mark.parametrize("name", list(SAMPLER_CASES))
def test_sampler_conformance(name):
    assert_sampler_conforms(SAMPLER_CASES[name]())


def test_ten_weight_sets_of_generate_compile_once():
    models = transformers(10)
    run = functools.partial(dec.generate, prompt=PROMPT, max_new_tokens=N, temperature=0.8,
                            return_log_probs=True)
    with count_compilations() as compiled:  # once, or not at all after the temperature case
        outputs = [run(jax.random.key(0), m) for m in models]
    assert compiled[0] <= 1, compiled[0]
    assert len({np.asarray(o).tobytes() for o in outputs}) >= 8  # the weights are used


# --- losses -------------------------------------------------------------------------------


def _loss_cases():
    rng = np.random.default_rng(5)
    tokens = jnp.asarray(rng.integers(0, V, (3, 6)), jnp.int32)  # (B, L + 1)
    mask = jnp.asarray(rng.random((3, 6)) < 0.7)
    images = jnp.asarray(rng.integers(0, K, (2, SIDE, SIDE, 1)), jnp.int32)
    signals = jnp.asarray(rng.integers(0, K, (2, T)), jnp.int32)
    lm, pix, wave = transformers()[0], pixelcnns()[0], wavenets()[0]
    # jitted, as the trainer runs them: check_grads then compiles a few programs instead of
    # every primitive op by op (test_loss holds the losses eagerly to the oracle)
    return {
        "next_token_loss": LossCase(
            "next_token_loss", jax.jit(ar.next_token_loss), lm, (tokens, mask),
            stochastic=False,
            bad_arguments=[(lambda: ar.next_token_loss(lm, (tokens, mask[:, :5]), None),
                            "mask")]),
        "pixelcnn_loss": LossCase(
            "pixelcnn_loss", jax.jit(ar.pixelcnn_loss), pix, images, stochastic=False,
            bad_arguments=[(lambda: ar.pixelcnn_loss(pix, images[..., 0], None), "x")]),
        "wavenet_loss": LossCase(
            "wavenet_loss", jax.jit(ar.wavenet_loss), wave, signals, stochastic=False,
            bad_arguments=[(lambda: ar.wavenet_loss(wave, signals[..., None], None), "x")]),
    }


LOSSES_COVERED = (ar.next_token_loss, ar.pixelcnn_loss, ar.wavenet_loss)


@pytest.mark.parametrize("name", ["next_token_loss", "pixelcnn_loss", "wavenet_loss"])
def test_loss_conformance(name):
    assert_loss_conforms(_loss_cases()[name])


def test_the_cases_cover_every_public_sampler_and_loss():
    samplers = {n for n in dec.__all__ if n.startswith(("generate", "beam_search",
                                                         "speculative", "sample_token"))}
    samplers |= {n for n in dir(ar) if n.startswith(("pixelcnn_sample", "wavenet_sample"))}
    assert {f.__name__ for f in SAMPLERS_COVERED} == samplers
    assert {f.__name__ for f in LOSSES_COVERED} == {n for n in dir(ar) if n.endswith("_loss")}
