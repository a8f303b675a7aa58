"""StyleGAN: generator sampling — genjax (one jitted program) vs the NumPy float64 oracle.

Workload, the ``stylegan-digits`` recipe's generator on 8x8x1 images: latent 32, ``w``
32, a 4-layer mapping network, 32 channels, a learned 4x4 constant, one modulated 3x3
convolution at 4x4 and two at 8x8 (upsampling, weight demodulation, noise inputs), toRGB
at both resolutions; 64 samples with truncation ``psi = 0.7``.

* ``genjax``: :func:`genjax.gan.stylegan_sample` — latents, noise images, mapping,
  truncation and synthesis in one ``jax.jit`` program (the generator traced);
* ``oracle (numpy f64)``: :func:`genjax.gan.oracle_stylegan.generator` on the same
  latents and noise images (drawn by genjax, outside the timing), with one kernel per
  example (eqs. 1-3 of Karras et al. 2020) and explicit sums over the kernel taps.

The two sides alternate (:func:`genjax.bench.harness.time_paired`); ``speedup`` = the
median over the pairs of oracle time / genjax time. ``max_abs_diff`` is the largest
difference between the two sides' images on the same draws (float32 against float64).
There is no peer row: no maintained library ships a StyleGAN2 generator for JAX or an 8x8
configuration of the official PyTorch one.
"""

from __future__ import annotations

import numpy as np

from genjax.bench.harness import Row, time_paired

SUITE = "stylegan"
N = 64
PSI = 0.7
NOTES = (
    "StyleGAN2 generator of the stylegan-digits recipe (8x8x1, latent 32, w 32, mapping 4, "
    "32 channels), 64 samples at psi 0.7: genjax stylegan_sample (one jit program) vs the "
    "float64 NumPy oracle on the same latents and noise; speedup = oracle / genjax, median "
    "of alternated pairs."
)


def run(quick: bool = False) -> list[Row]:
    import jax
    from flax import nnx

    from genjax import gan
    from genjax.gan import oracle_stylegan

    g = gan.StyleGANGenerator(
        32, (8, 8, 1), w_dim=32, mapping_layers=4, channels=32, rngs=nnx.Rngs(0)
    )
    key = jax.random.key(1)

    def genjax_call():
        return jax.block_until_ready(gan.stylegan_sample(key, g, N, psi=PSI))

    # the sampler's own draws: z from the first half of the key, the noise from the second
    z_key, noise_key = jax.random.split(key)
    z = np.asarray(jax.random.normal(z_key, (N, g.latent_dim)))
    noise = gan.stylegan_noise(noise_key, g, N)
    images = [np.asarray(n) for n in noise.images]
    weights = gan.generator_weights(g)

    def oracle_call():
        return oracle_stylegan.generator(weights, z, images, psi=PSI)

    # timed first, so that genjax's first call (its compile_s) is the compilation
    paired = time_paired(
        genjax_call, oracle_call, pairs=3 if quick else 5, repeats=2 if quick else 5
    )
    diff = float(np.max(np.abs(np.asarray(genjax_call()) - oracle_call())))
    case = f"generator sampling, {N} samples 8x8, psi {PSI}"
    return [
        Row(SUITE, case, "genjax", paired.a.compile_s, paired.a.run_s, {}),
        Row(
            SUITE,
            case,
            "oracle (numpy f64)",
            paired.b.compile_s,
            paired.b.run_s,
            {"speedup": paired.ratio, "pairs": paired.pairs, "max_abs_diff": diff},
        ),
    ]
