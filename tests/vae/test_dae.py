"""Denoising autoencoder (Vincent et al. 2008): oracle agreement and the Tweedie optimum.

On Gaussian-mixture data under Gaussian corruption ``x~ = x + sigma eps`` the denoiser that
minimises ``E||x - D(x~)||^2`` is the posterior mean ``E[x | x~]``, which
``GaussianMixture.denoise(x~, alpha=1, sigma)`` computes exactly. So (i) its loss is below
that of every perturbation ``D* + delta h``, whose excess is ``delta^2 E||h||^2`` because the
residual ``x - D*(x~)`` is orthogonal to every function of ``x~``; (ii) a DAE trained on the
ring approaches it.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from genjax import oracle_targets, targets
from genjax.testing import (
    BadInput,
    LossCase,
    SamplerCase,
    assert_handled,
    assert_loss_conforms,
    assert_sampler_conforms,
)
from genjax.vae import denoising as dn
from genjax.vae import loss as vae_loss
from genjax.vae import model as vm
from genjax.vae import oracle
from genjax.vae import oracle_conditional as oc
from tests.vae._helpers import np_layers

SIGMA = 1.0  # ring radius 4, mode std 0.3: at sigma = 1 neighbouring modes (3.1 apart) overlap


@functools.cache
def _small_ae():
    return vm.mlp_autoencoder((3, 2), 4, rngs=nnx.Rngs(0), hidden_sizes=(6,))


def _np_denoise(model):
    enc, dec = np_layers(model.encoder.net), np_layers(model.decoder.net)
    return lambda x: oracle.mlp(oracle.mlp(x.reshape(len(x), -1), enc), dec).reshape(x.shape)


def test_corruptions_and_loss_match_the_oracle(keys):
    model = _small_ae()
    x = jax.random.uniform(keys[0], (5, 3, 2))
    eps = jax.random.normal(keys[1], x.shape)
    levels = jnp.array([0.0, 0.1, 0.5, 1.0, 2.0])
    np.testing.assert_allclose(dn.corrupt_from_noise(x, eps, levels),
                               oc.corrupt_gaussian(x, eps, levels), rtol=1e-6)
    u = jax.random.uniform(keys[2], x.shape)
    masked = dn.corrupt_from_noise(x, u, 0.4, "masking")
    np.testing.assert_array_equal(masked, oc.corrupt_masking(x, u, 0.4))
    assert 0 < np.mean(np.asarray(masked) == 0) < 1
    # the loss: its key splits into (levels, noise); the oracle gets the same draws
    for corruption, low, high in (("gaussian", 0.2, 0.8), ("masking", 0.1, 0.5)):
        loss, metrics = dn.dae_loss(model, x, keys[3], noise_level=low, max_noise_level=high,
                                    corruption=corruption)
        level_key, noise_key = jax.random.split(keys[3])
        level = jax.random.uniform(level_key, (5,), minval=low, maxval=high)
        noise = dn.draw_corruption_noise(noise_key, x.shape, corruption)
        corrupt = oc.corrupt_gaussian if corruption == "gaussian" else oc.corrupt_masking
        x_noisy = corrupt(x, noise, level)
        np.testing.assert_allclose(loss, oc.dae_loss(x, x_noisy, _np_denoise(model)), rtol=1e-5)
        np.testing.assert_allclose(metrics["noisy_mse_per_dim"],
                                   np.mean((np.asarray(x) - x_noisy) ** 2), rtol=1e-5)
    # at sigma = 0 the DAE loss is the plain autoencoder's
    np.testing.assert_allclose(dn.dae_loss(model, x, keys[4], noise_level=0.0)[0],
                               vae_loss.autoencoder_loss(model, x, keys[4])[0], rtol=1e-6)


@pytest.fixture(scope="module")
def ring_pairs():
    """Clean ring samples, their corrupted copies (sigma = SIGMA) and the exact denoiser."""
    ring = targets.ring()
    kx, ke = jax.random.split(jax.random.key(7))
    x = ring.sample(kx, 100_000)
    x_noisy = x + SIGMA * jax.random.normal(ke, x.shape)
    return ring, x, x_noisy, ring.denoise(x_noisy, 1.0, SIGMA)


def test_exact_denoiser_matches_the_oracle(ring_pairs):
    ring, _, x_noisy, best = ring_pairs
    args = (np.asarray(ring.weights), np.asarray(ring.means), np.asarray(ring.covs))
    want = oc.mixture_denoiser(x_noisy[:500], *args, SIGMA)
    np.testing.assert_allclose(best[:500], want, rtol=1e-4, atol=1e-5)  # float32 vs float64
    # and genjax's own float64 twin of the targets (Tweedie's x + sigma^2 score) agrees
    np.testing.assert_allclose(
        want, oracle_targets.mixture_posterior_mean_x0(*args, np.asarray(x_noisy[:500]), 1.0,
                                                       SIGMA), rtol=1e-9, atol=1e-12)


def test_posterior_mean_beats_every_perturbation(ring_pairs):
    _, x, x_noisy, best = ring_pairs
    x, x_noisy, best = (np.asarray(a, np.float64) for a in (x, x_noisy, best))
    n = len(x)

    def loss(d):
        return np.mean(np.sum((x - d) ** 2, axis=1))

    best_loss = loss(best)
    residual = x - best  # (n, 2), orthogonal to every function of x~
    directions = {
        "shift": np.broadcast_to([1.0, -0.5], x.shape),
        "linear": x_noisy @ np.array([[0.3, -1.0], [0.7, 0.2]]),
        "radial": x_noisy / np.linalg.norm(x_noisy, axis=1, keepdims=True),
        "wiggle": np.sin(2.0 * x_noisy[:, ::-1]),
        "identity": x_noisy - best,  # towards the noisy input itself
    }
    for name, h in directions.items():
        inner = np.sum(residual * h, axis=1)
        # orthogonality principle: E[(x - E[x|x~]) . h(x~)] = 0, within 4 standard errors
        assert abs(inner.mean()) < 4 * inner.std() / np.sqrt(n), name
        for delta in (-0.2, -0.05, 0.05, 0.2):
            assert loss(best + delta * h) > best_loss, (name, delta)
    # doing nothing scores sigma^2 D = 2; the posterior mean halves it (measured 1.00)
    assert loss(x_noisy) > 1.9 and best_loss < 0.6 * loss(x_noisy)
    # a denoiser with Tweedie's sign flipped is worse than doing nothing
    assert loss(2 * x_noisy - best) > loss(x_noisy)


def test_trained_dae_approaches_the_posterior_mean(ring_pairs):
    # An overcomplete MLP autoencoder 2-64-64-8-64-64-2 trained 600 Adam steps (cosine
    # decay) on fresh ring samples at sigma = 1: its held-out loss lies within 3% of the way
    # from the optimum (the Tweedie denoiser) to the noisy input's loss (measured 0.85%;
    # 0.47% after 1000 steps, 0.22% after 1500).
    ring, x, x_noisy, best = ring_pairs
    model = vm.mlp_autoencoder((2,), 8, rngs=nnx.Rngs(0), hidden_sizes=(64, 64))
    opt = optax.adam(optax.cosine_decay_schedule(3e-3, 600))

    @jax.jit
    def train(m, key):
        def step(carry, k):
            m, s = carry
            kx, kl = jax.random.split(k)
            g = jax.grad(lambda m: dn.dae_loss(m, ring.sample(kx, 256), kl,
                                               noise_level=SIGMA)[0])(m)
            u, s = opt.update(g, s, m)
            return (optax.apply_updates(m, u), s), None

        (m, _), _ = jax.lax.scan(step, (m, opt.init(m)), jax.random.split(key, 600))
        return m

    model = train(model, jax.random.key(3))
    x, x_noisy, best = x[:20000], x_noisy[:20000], best[:20000]
    err = {name: float(jnp.mean(jnp.sum((x - d) ** 2, axis=1)))
           for name, d in (("dae", dn.denoise(model, x_noisy)), ("exact", best),
                           ("noisy", x_noisy))}
    assert err["exact"] < err["dae"] < err["exact"] + 0.03 * (err["noisy"] - err["exact"]), err


def test_denoising_errors_share_the_noise(keys):
    model = _small_ae()
    x = jax.random.uniform(keys[0], (6, 3, 2))
    out = dn.denoising_errors(keys[1], model, x, [0.0, 0.5])
    eps = dn.draw_corruption_noise(keys[1], x.shape)
    for j, level in enumerate((0.0, 0.5)):
        x_noisy = oc.corrupt_gaussian(x, eps, level)
        np.testing.assert_allclose(out["noisy"][j], np.mean((np.asarray(x) - x_noisy) ** 2),
                                   rtol=1e-5, atol=1e-12)
        np.testing.assert_allclose(out["denoised"][j],
                                   oc.dae_loss(x, x_noisy, _np_denoise(model)) / 6, rtol=1e-5)
    assert out["noisy"][0] == 0 and out["noisy"][1] > 0


def test_dae_loss_and_chain_sampler_conform():
    model, x = _small_ae(), jax.random.uniform(jax.random.key(5), (3, 3, 2))
    # (the masking corruption runs through the same program; held to the oracle above)
    assert_loss_conforms(LossCase(
        name="dae_loss[gaussian]", model=model, batch=x,
        loss=functools.partial(dn.dae_loss, noise_level=0.1, max_noise_level=0.4),
        bad_arguments=[(lambda: dn.dae_loss(model, x, jax.random.key(0), noise_level=-1.0),
                        "noise_level")]))
    other = vm.mlp_autoencoder((3, 2), 4, rngs=nnx.Rngs(1), hidden_sizes=(6,))
    assert_sampler_conforms(SamplerCase(
        name="chain_sample", models=[model, other],
        sample=lambda key, m: dn.chain_sample(key, m, 3, noise_level=0.5, num_steps=4),
        from_noise=lambda key, m: dn.chain_sample_from_noise(
            m, jnp.zeros((3, 3, 2)), jax.random.normal(key, (4, 3, 3, 2)), 0.5),
        bad_arguments=[(lambda: dn.chain_sample(jax.random.key(0), model, 3, noise_level=0.0),
                        "noise_level"),
                       (lambda: dn.chain_sample(jax.random.key(0), model, 0, noise_level=0.5),
                        "n")]))


_X = jnp.zeros((2, 3, 2))

CASES = [
    BadInput("dae_loss: unknown corruption",
             lambda: dn.dae_loss(_small_ae(), _X, jax.random.key(0), corruption="salt"),
             "corruption"),
    BadInput("dae_loss: negative noise level",
             lambda: dn.dae_loss(_small_ae(), _X, jax.random.key(0), noise_level=-0.1),
             "noise_level"),
    BadInput("dae_loss: masking probability above 1",
             lambda: dn.dae_loss(_small_ae(), _X, jax.random.key(0), noise_level=1.5,
                                 corruption="masking"), "noise_level"),
    BadInput("dae_loss: max_noise_level below noise_level",
             lambda: dn.dae_loss(_small_ae(), _X, jax.random.key(0), noise_level=0.5,
                                 max_noise_level=0.2), "max_noise_level"),
    BadInput("dae_loss: batch of the wrong shape",
             lambda: dn.dae_loss(_small_ae(), jnp.zeros((2, 6)), jax.random.key(0)), "batch"),
    BadInput("dae_loss: a VAE is not an autoencoder",
             lambda: dn.dae_loss(vm.mlp_vae((3, 2), 2, rngs=nnx.Rngs(0), hidden_sizes=(4,)), _X,
                                 jax.random.key(0)), "model"),
    BadInput("corrupt_from_noise: noise of another shape",
             lambda: dn.corrupt_from_noise(_X, jnp.zeros((2, 6)), 0.1), "noise"),
    BadInput("corrupt_from_noise: one level per example, wrong count",
             lambda: dn.corrupt_from_noise(_X, jnp.zeros_like(_X), jnp.ones(3)), "noise_level"),
    BadInput("corrupt: negative level", lambda: dn.corrupt(jax.random.key(0), _X, -1.0),
             "noise_level"),
    BadInput("denoising_errors: levels not a vector",
             lambda: dn.denoising_errors(jax.random.key(0), _small_ae(), _X, 0.3),
             "noise_levels"),
    BadInput("denoising_errors: negative level",
             lambda: dn.denoising_errors(jax.random.key(0), _small_ae(), _X, [0.1, -0.3]),
             "noise_levels"),
    BadInput("denoise: x_noisy of the wrong shape",
             lambda: dn.denoise(_small_ae(), jnp.zeros((2, 5))), "x_noisy"),
    BadInput("dae_loss: sigma = 1e4 stays finite",
             lambda: dn.dae_loss(_small_ae(), _X, jax.random.key(0), noise_level=1e4),
             kind="extreme", check=lambda out: float(out[1]["noisy_mse_per_dim"]) > 1e7),
    BadInput("dae_loss: masking everything (nu = 1) zeroes the input",
             lambda: dn.dae_loss(_small_ae(), jnp.ones((2, 3, 2)), jax.random.key(0),
                                 noise_level=1.0, corruption="masking"),
             kind="extreme", check=lambda out: abs(float(out[1]["noisy_mse_per_dim"]) - 1) < 1e-6),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_inputs(case):
    assert_handled(case)
