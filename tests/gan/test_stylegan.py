"""StyleGAN's generator against its NumPy oracle and its closed forms (issue 18, item 3)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from genjax import gan
from genjax.gan import oracle, oracle_stylegan
from genjax.gan import stylegan as S
from genjax.testing import count_compilations


@pytest.fixture(scope="module")
def generator():
    g = S.StyleGANGenerator(6, (8, 8, 1), w_dim=5, mapping_layers=2, channels=3, rngs=nnx.Rngs(0))
    g = S.track_w_avg(g, jax.random.normal(jax.random.key(3), (4, 6)), decay=0.0)
    # nonzero noise strengths and biases (0 at init), so that the test sees them act
    leaves, treedef = jax.tree.flatten(g)
    rng = np.random.default_rng(9)
    return jax.tree.unflatten(
        treedef, [a + 0.1 * rng.standard_normal(a.shape).astype(a.dtype) for a in leaves]
    )


@pytest.mark.parametrize("jit", [False, True])
def test_modulated_conv_matches_the_per_example_kernel_oracle(jit):
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(k1, (2, 5, 5, 3))
    weight = jax.random.normal(k2, (3, 3, 3, 4))
    styles = jax.random.normal(k3, (2, 3))
    for demodulate in (True, False):
        f = lambda x, w, s, d=demodulate: gan.modulated_conv(x, w, s, demodulate=d)  # noqa: E731
        got = (jax.jit(f) if jit else f)(x, weight, styles)
        want = oracle_stylegan.modulated_conv(x, weight, styles, demodulate=demodulate)
        # float32 sums of 27 products of O(1) terms: rounding ~1e-6 relative
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    kernels = gan.demodulated_weights(weight, styles)
    np.testing.assert_allclose(
        kernels, oracle_stylegan.modulated_weights(weight, styles), rtol=1e-5, atol=1e-6
    )


def test_demodulation_gives_unit_output_variance():
    # closed form: Var y_j = sum_{i,k} w''^2 = S / (S + eps), held to the oracle ...
    weight = jax.random.normal(jax.random.key(1), (3, 3, 16, 4))
    styles = jax.random.uniform(jax.random.key(2), (2, 16), minval=0.1, maxval=3.0)
    closed = jnp.sum(jnp.square(gan.demodulated_weights(weight, styles)), axis=(1, 2, 3))
    np.testing.assert_allclose(
        closed, oracle_stylegan.demodulated_output_variance(weight, styles), rtol=1e-5
    )
    np.testing.assert_allclose(closed, 1.0, atol=1e-5)  # eps = 1e-8 << S
    # ... and measured: i.i.d. N(0, 1) inputs give output variance 1 at interior pixels
    # (no padding there), 64 x 64 = 4096 values per (example, channel); neighbouring outputs
    # share inputs, so the sample variance's relative std is a few times sqrt(2 / 4096) =
    # 0.022: 0.15 is > 5 of those
    x = jax.random.normal(jax.random.key(3), (2, 66, 66, 16))

    @jax.jit
    def variances(x, weight, styles):
        y = gan.modulated_conv(x, weight, styles)[:, 1:-1, 1:-1, :]
        y1 = gan.modulated_conv(x, weight, styles, demodulate=False)[:, 1:-1, 1:-1, :]
        return jnp.var(y.reshape(2, -1, 4), axis=1), jnp.var(y1.reshape(2, -1, 4), axis=1)

    var, var_plain = variances(x, weight, styles)  # (B, C_out) each
    np.testing.assert_allclose(var, 1.0, atol=0.15)
    # without demodulation the variance is S, far from 1 for these styles
    assert float(jnp.min(jnp.abs(var_plain - 1.0))) > 1.0


def test_generator_matches_the_oracle_with_mixing_noise_and_truncation(generator):
    # jitted (eager execution is covered by the modulated_conv test: CI time)
    g = generator
    z = jax.random.normal(jax.random.key(1), (3, 6))
    noise = S.stylegan_noise(jax.random.key(2), g, 3, mixing_prob=1.0)

    @jax.jit
    def both(g, z, noise):
        flipped = noise._replace(images=tuple(-n for n in noise.images))
        return g(z, noise, psi=0.7), g(z, flipped, psi=0.7)

    got, with_other_noise = both(g, z, noise)
    want = oracle_stylegan.generator(
        S.generator_weights(g),
        z,
        noise.images,
        psi=0.7,
        z_mix=noise.z_mix,
        crossover=noise.crossover,
    )
    assert np.all(np.asarray(noise.crossover) < g.num_ws)  # mixing happened in every row
    # five float32 layers of O(1) activations: rounding ~1e-6 of the output's scale
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # the noise inputs act: other noise images, another image
    assert float(jnp.max(jnp.abs(with_other_noise - got))) > 1e-3


def test_truncation_psi_zero_maps_every_z_to_the_image_of_w_avg(generator):
    g = generator
    z = jax.random.normal(jax.random.key(4), (5, 6)) * 3.0
    noise = S.stylegan_noise(jax.random.key(5), g, 1)

    @jax.jit
    def images(g, z, noise):
        shared = tuple(jnp.broadcast_to(n, (5, *n.shape[1:])) for n in noise.images)
        no_mix = jnp.full(5, g.num_ws, jnp.int32)
        mean_image = g.synthesize(
            jnp.broadcast_to(g.w_avg[...], (1, g.num_ws, g.w_dim)), noise.images
        )
        return (
            g(z, S.StyleNoise(shared, z, no_mix), psi=0.0),
            mean_image,
            g(z, S.StyleNoise(shared, z, no_mix), psi=1.0),
        )

    truncated, mean_image, free = images(g, z, noise)
    # identical inputs in other batch rows: equal up to float32 rounding of XLA's kernels
    np.testing.assert_allclose(truncated, jnp.broadcast_to(mean_image, truncated.shape), atol=1e-6)
    want = oracle_stylegan.synthesis(
        S.generator_weights(g),
        np.broadcast_to(np.asarray(g.w_avg[...]), (1, g.num_ws, g.w_dim)),
        noise.images,
    )
    np.testing.assert_allclose(mean_image, want, rtol=1e-5, atol=1e-5)
    # psi = 1 keeps the z's apart (a generator ignoring z would pass the lines above)
    assert float(jnp.max(jnp.std(free, axis=0))) > 1e-2


def test_style_mixing_takes_coarse_layers_from_one_latent_and_fine_from_the_other(generator):
    g = generator
    za, zb = (jax.random.normal(k, (2, 6)) for k in jax.random.split(jax.random.key(6)))
    noise = S.stylegan_noise(jax.random.key(7), g, 2)

    @jax.jit
    def mixed(g, za, zb, noise):
        cut = jnp.array([2, 2], jnp.int32)
        return (
            g.ws(za, S.StyleNoise(noise.images, zb, cut)),
            g.mapping(za),
            g.mapping(zb),
            S.stylegan_noise(jax.random.key(8), g, 4000, mixing_prob=0.9).crossover,
        )

    ws, wa, wb, c = mixed(g, za, zb, noise)
    np.testing.assert_allclose(ws[:, :2], jnp.repeat(wa[:, None], 2, axis=1), rtol=1e-6)
    np.testing.assert_allclose(ws[:, 2:], jnp.repeat(wb[:, None], 2, axis=1), rtol=1e-6)
    # the training draw mixes about mixing_prob of the samples, at crossovers 1 .. num_ws-1
    frac = float(jnp.mean(c < g.num_ws))
    assert abs(frac - 0.9) < 0.03  # binomial std sqrt(0.09 / 4000) = 0.005: 6 std
    assert set(np.unique(np.asarray(c))) == set(range(1, g.num_ws + 1))


def test_sampler_is_one_program_and_deterministic(generator):
    g = generator
    a = S.stylegan_sample(jax.random.key(0), g, 3, psi=0.5)
    np.testing.assert_array_equal(a, S.stylegan_sample(jax.random.key(0), g, 3, psi=0.5))
    g2 = S.track_w_avg(g, jnp.ones((1, 6)), decay=0.5)  # other w_avg, other psi: no recompile
    with count_compilations() as compiled:
        b = S.stylegan_sample(jax.random.key(0), g2, 3, psi=0.25)
    assert compiled[0] == 0 and b.shape == (3, 8, 8, 1)
    assert float(jnp.max(jnp.abs(a - b))) > 1e-3


def _spectral_layers(d):
    return [m for _, m in nnx.iter_modules(d) if isinstance(m, gan.SpectralNorm)]


def test_trainer_carries_spectral_u_and_keeps_buffers_out_of_the_optimiser(generator):
    # Both optimisers only shrink every leaf, w <- 0.9 w (weight decay, gradients zeroed):
    # the singular vectors of each kernel stay fixed, so after t steps each layer's u must
    # be t power iterations from u_0 (the oracle) -- u carried, not reset, advanced once a
    # step -- while u and w_avg, were they left to the optimiser, would shrink too.
    g = generator
    d = gan.StyleGANDiscriminator((8, 8, 1), channels=4, spectral_norm=True, rngs=nnx.Rngs(1))
    decay = optax.chain(optax.set_to_zero(), optax.add_decayed_weights(0.1), optax.scale(-1.0))
    trainer = gan.gan_trainer(
        g_optimizer=decay, d_optimizer=decay, loss="hinge", ema_decay=0.5, g_noise=S.stylegan_noise
    )
    state = trainer.init(g, d)
    step = jax.jit(trainer.step)
    x = jax.random.uniform(jax.random.key(2), (4, 8, 8, 1)) * 2 - 1
    layers0 = _spectral_layers(d)
    done = 0
    for steps in (3, 60):  # 3: not converged, so 1 or 6 iterations would differ
        for t in range(done, steps):
            state, info = step(state, x, jax.random.key(t))
        done = steps
        layers = _spectral_layers(state.d)
        assert len(layers) == 5
        for before, after in zip(layers0, layers, strict=True):
            kernel = np.asarray(before.layer.kernel[...], np.float64)
            _, u_want, _ = oracle.spectral_norm(kernel, before.u[...], steps)
            # float32 iterations against float64 ones: a few ulps per iteration
            np.testing.assert_allclose(after.u[...], u_want, atol=2e-5)
    for layer in layers:
        mat = np.asarray(layer.layer.kernel[...], np.float64)
        mat = mat.reshape(-1, mat.shape[-1]).T  # (out, in'): rows are outputs
        top = np.linalg.svd(mat, compute_uv=False)[0]
        estimate = np.linalg.norm(mat.T @ np.asarray(layer.u[...], np.float64))  # ||W^T u||
        # the error after t iterations is O((sigma_2 / sigma_1)^(2t)); these random kernels
        # have gaps of at least 10%, so 60 iterations leave < 1e-5
        assert estimate == pytest.approx(top, rel=1e-4)
    np.testing.assert_allclose(
        state.d.from_rgb.layer.kernel[...], 0.9**60 * d.from_rgb.layer.kernel[...], rtol=1e-4
    )  # it ran
    np.testing.assert_array_equal(state.g.w_avg[...], g.w_avg[...])  # kept from decay
    np.testing.assert_array_equal(state.g_ema.w_avg[...], g.w_avg[...])  # copied, not averaged
    assert np.isfinite(float(info.g_loss))
