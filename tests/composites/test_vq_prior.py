"""The VQ tokenizer and its autoregressive code prior (genjax.composites.vq_prior).

Exact checks: encode -> decode -> encode returns the same codes (on a tokenizer whose
encoder is the decoder's left inverse); the per-token log-probabilities that
``generate(..., return_log_probs=True)`` reports sum to the prior's teacher-forced
log-likelihood of the same codes, for every decoding strategy, cached and not; the prior is
a distribution over the K^M code sequences (it sums to 1 by enumeration) and beam search
with enough beams finds its mode; the description length against NumPy/SciPy."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy.stats import norm

from genjax.composites import vq_prior as vp
from genjax.testing.bad_inputs import BadInput, assert_handled
from genjax.vae import VQVAE

K, M, C = 5, 3, 4  # codes, sequence length, classes: 125 sequences, enumerable


def _invertible_tokenizer() -> VQVAE:
    """Affine encoder = left inverse of the affine decoder: E(G(z)) = z A A^+ = z."""
    vq = VQVAE((8, 8, 1), num_latents=M, code_dim=2, num_codes=K, rngs=nnx.Rngs(0),
               hidden_sizes=())
    rng = np.random.default_rng(0)
    a = rng.normal(size=(M * 2, 64)) / 4  # (M D, 64), full row rank
    b = rng.uniform(size=64)
    pinv = np.linalg.pinv(a)  # (64, M D)
    dec, enc = vq.decoder.net.layers[0], vq.encoder.net.layers[0]
    dec.kernel[...] = jnp.asarray(a, jnp.float32)
    dec.bias[...] = jnp.asarray(b, jnp.float32)
    enc.kernel[...] = jnp.asarray(pinv, jnp.float32)
    enc.bias[...] = jnp.asarray(-b @ pinv, jnp.float32)
    vq.codebook[...] = jnp.asarray(3.0 * rng.normal(size=(K, 2)), jnp.float32)  # well apart
    return vq


@pytest.fixture(scope="module")
def prior():
    return vp.CodePrior(K, M, C, rngs=nnx.Rngs(1), dim=16, num_heads=2, num_layers=1)


@pytest.fixture(scope="module")
def all_codes():
    return jnp.asarray(list(itertools.product(range(K), repeat=M)), jnp.int32)  # (K^M, M)


@jax.jit
def _roundtrip(vq, codes, x):
    """(encode(decode(codes)), encode(x), encode(decode(encode(x)))) in one program."""
    c = vp.encode_codes(vq, x)
    return vp.encode_codes(vq, vp.decode_codes(vq, codes)), c, vp.encode_codes(
        vq, vp.decode_codes(vq, c))


def test_encode_decode_encode_returns_the_codes():
    vq = _invertible_tokenizer()
    codes = jax.random.randint(jax.random.key(0), (64, M), 0, K)
    x = jax.random.uniform(jax.random.key(1), (16, 8, 8, 1))
    again, c, c_again = _roundtrip(vq, codes, x)
    np.testing.assert_array_equal(again, codes)
    np.testing.assert_array_equal(c_again, c)
    assert len(np.unique(np.asarray(codes))) == K  # every code exercised


# each setting is its own compiled loop: ancestral, greedy, the filters composed, uncached
STRATEGIES = [dict(), dict(temperature=0.0), dict(top_k=3, top_p=0.8, min_p=0.1,
                                                  temperature=0.7), dict(use_cache=False)]


@pytest.mark.parametrize("options", STRATEGIES, ids=lambda o: ",".join(o) or "ancestral")
def test_generate_log_probs_equal_teacher_forced(prior, options):
    labels = jnp.asarray([0, 1, 2, 3, 1, 0], jnp.int32)
    for lab in (labels, None):
        codes, lp = vp.sample_codes(jax.random.key(3), prior, lab, n=6, return_log_probs=True,
                                    **options)
        assert codes.shape == (6, M) and bool(jnp.all((codes >= 0) & (codes < K)))
        # float32, three log-softmaxes summed: ~1e-6 (cached and uncached rows differ by
        # the attention's summation order)
        np.testing.assert_allclose(np.sum(lp, axis=1), vp.code_log_prob(prior, codes, lab),
                                   rtol=1e-5, atol=1e-5)


def test_prior_is_a_distribution_over_code_sequences(prior, all_codes):
    n = all_codes.shape[0]
    for label in range(C):
        lp = vp.code_log_prob(prior, all_codes, jnp.full((n,), label, jnp.int32))
        np.testing.assert_allclose(float(jnp.sum(jnp.exp(lp))), 1.0, rtol=1e-5)
    lp = vp.code_log_prob(prior, all_codes)  # the null prefix
    np.testing.assert_allclose(float(jnp.sum(jnp.exp(lp))), 1.0, rtol=1e-5)


def test_beam_search_finds_the_mode(prior, all_codes):
    labels = jnp.arange(C, dtype=jnp.int32)
    best, lp = vp.most_likely_codes(prior, labels, num_beams=K * K)  # K^2 beams: exhaustive
    n = all_codes.shape[0]
    for c in range(C):
        table = vp.code_log_prob(prior, all_codes, jnp.full((n,), c, jnp.int32))
        np.testing.assert_array_equal(best[c], all_codes[int(jnp.argmax(table))])
        np.testing.assert_allclose(float(lp[c]), float(jnp.max(table)), rtol=1e-5)


def test_prior_loss_is_the_mean_nll_per_code(prior):
    codes = jax.random.randint(jax.random.key(4), (8, M), 0, K)
    labels = jnp.arange(8, dtype=jnp.int32) % C
    key = jax.random.key(5)
    loss_fn = jax.jit(vp.prior_loss)  # p_uncond traced: one program for 0 and 1
    loss, m = loss_fn(prior, (codes, labels), key, p_uncond=0.0)
    np.testing.assert_allclose(float(loss), -float(jnp.mean(vp.code_log_prob(
        prior, codes, labels))) / M, rtol=1e-5)
    np.testing.assert_allclose(float(m["bits_per_code"]), float(loss) / np.log(2), rtol=1e-6)
    uncond, _ = loss_fn(prior, (codes, labels), key, p_uncond=1.0)
    np.testing.assert_allclose(float(uncond), -float(jnp.mean(vp.code_log_prob(prior, codes)))
                               / M, rtol=1e-5)


def test_sample_images_decodes_the_sampled_codes(prior):
    vq = _invertible_tokenizer()
    labels = jnp.asarray([2, 3, 0, 1, 1, 2], jnp.int32)  # greedy at B = 6: compiled above
    images = vp.sample_images(jax.random.key(6), vq, prior, labels, temperature=0.0)
    codes = vp.sample_codes(jax.random.key(6), prior, labels, temperature=0.0)
    np.testing.assert_allclose(images, vp.decode_codes(vq, codes), atol=1e-6)


def test_independent_code_log_prob():
    counts = jnp.asarray(np.random.default_rng(0).uniform(0.5, 3.0, (M, K)), jnp.float32)
    codes = jnp.asarray([[0, 4, 2], [1, 1, 1]], jnp.int32)
    p = np.asarray(counts, np.float64) / np.asarray(counts, np.float64).sum(1, keepdims=True)
    want = [sum(np.log(p[m, c[m]]) for m in range(M)) for c in np.asarray(codes)]
    np.testing.assert_allclose(vp.independent_code_log_prob(counts, codes), want, rtol=1e-5)


def test_total_bits_per_dim_against_scipy_and_normalised():
    rng = np.random.default_rng(1)
    levels = 17
    x = rng.integers(0, levels, (4, 2, 3, 1)) / (levels - 1)
    x_hat = np.clip(x + rng.normal(0, 0.1, x.shape), -0.2, 1.2)
    lp = np.asarray([-3.0, -1.0, -2.0, -4.0])
    sigma = 0.15
    h = 0.5 / (levels - 1)
    up = np.where(x >= 1 - h, np.inf, (x + h - x_hat) / sigma)
    lo = np.where(x <= h, -np.inf, (x - h - x_hat) / sigma)
    log_px = np.log(norm.cdf(up) - norm.cdf(lo)).reshape(4, -1).sum(1)
    want = np.mean(-lp - log_px) / (6 * np.log(2))
    got = vp.total_bits_per_dim(jnp.asarray(lp, jnp.float32), jnp.asarray(x, jnp.float32),
                                jnp.asarray(x_hat, jnp.float32), sigma)
    np.testing.assert_allclose(float(got), want, rtol=1e-5)
    # one pixel: the masses of the 17 values sum to 1 (a proper discrete likelihood)
    grid = jnp.arange(levels, dtype=jnp.float32)[:, None, None, None] / (levels - 1)
    bits = [float(vp.total_bits_per_dim(jnp.zeros(1), grid[j:j + 1],
                                        jnp.full((1, 1, 1, 1), 0.37), 0.2))
            for j in range(levels)]
    np.testing.assert_allclose(np.sum(2.0 ** -np.asarray(bits)), 1.0, rtol=1e-5)


def _prior():
    return vp.CodePrior(K, M, C, rngs=nnx.Rngs(1), dim=16, num_heads=2, num_layers=1)


CASES = [
    BadInput("vq_prior.encode_codes: not a VQVAE",
             lambda: vp.encode_codes(object(), jnp.zeros((2, 8, 8, 1))), "vq"),
    BadInput("vq_prior.encode_codes: images of the wrong shape",
             lambda: vp.encode_codes(_invertible_tokenizer(), jnp.zeros((2, 7, 8, 1))), "x"),
    BadInput("vq_prior.decode_codes: code out of range",
             lambda: vp.decode_codes(_invertible_tokenizer(), jnp.full((2, M), K)), "codes"),
    BadInput("vq_prior.decode_codes: float codes",
             lambda: vp.decode_codes(_invertible_tokenizer(), jnp.zeros((2, M))), "codes"),
    BadInput("vq_prior.CodePrior: zero codes",
             lambda: vp.CodePrior(0, M, C, rngs=nnx.Rngs(0)), "num_codes"),
    BadInput("vq_prior.code_log_prob: wrong sequence length",
             lambda: vp.code_log_prob(_prior(), jnp.zeros((2, M + 1), jnp.int32)), "codes"),
    BadInput("vq_prior.code_log_prob: label out of range",
             lambda: vp.code_log_prob(_prior(), jnp.zeros((2, M), jnp.int32),
                                      jnp.asarray([0, C])), "labels"),
    BadInput("vq_prior.prior_loss: p_uncond > 1",
             lambda: vp.prior_loss(_prior(), (jnp.zeros((2, M), jnp.int32),
                                              jnp.zeros(2, jnp.int32)), jax.random.key(0),
                                   p_uncond=1.5), "p_uncond"),
    BadInput("vq_prior.sample_codes: no labels and no n",
             lambda: vp.sample_codes(jax.random.key(0), _prior()), "n"),
    BadInput("vq_prior.sample_codes: negative temperature",
             lambda: vp.sample_codes(jax.random.key(0), _prior(), n=2, temperature=-1.0),
             "temperature"),
    BadInput("vq_prior.sample_images: prior of another tokenizer",
             lambda: vp.sample_images(jax.random.key(0), _invertible_tokenizer(),
                                      vp.CodePrior(K + 1, M, C, rngs=nnx.Rngs(0), dim=16,
                                                   num_heads=2, num_layers=1), n=2), "prior"),
    BadInput("vq_prior.total_bits_per_dim: sigma = 0",
             lambda: vp.total_bits_per_dim(jnp.zeros(1), jnp.zeros((1, 2)), jnp.zeros((1, 2)),
                                           0.0), "sigma"),
    BadInput("vq_prior.total_bits_per_dim: one level",
             lambda: vp.total_bits_per_dim(jnp.zeros(1), jnp.zeros((1, 2)), jnp.zeros((1, 2)),
                                           0.1, num_levels=1), "num_levels"),
    BadInput("vq_prior.total_bits_per_dim: reconstruction far outside the range",
             lambda: vp.total_bits_per_dim(jnp.zeros(1), jnp.zeros((1, 2)),
                                           jnp.full((1, 2), 1e6), 1e-3), kind="extreme"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_inputs(case):
    assert_handled(case)
