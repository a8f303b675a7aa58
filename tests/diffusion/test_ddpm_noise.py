"""DDPM's keyed noise: cache-sized chunks of whole steps, Threefry's original layout.

``ddpm_sample(key, ...)`` draws step ``i``'s noise as row ``i % B`` of chunk ``i // B``,
``normal(fold_in(noise_key, i // B), (B, *shape))`` with two draws per Threefry-2x32 block
(the layout of ``jax.threefry_partitionable(False)``), ``B = ddpm.noise_chunk_steps(shape,
T)``. Held here to that definition spelled out (one chunk, and several with a partial last
one), to the standard normal law, and to the documented equality
``ddpm_sample(key) == ddpm_sample_from_noise(*ddpm_noise(key))``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import diffusion as d
from genjax import targets
from genjax.diffusion import ddpm

T, B = 20, 16
SCHEDULE = d.linear(T, 1e-3, 0.2)
EPS = d.analytic_eps_fn(targets.ring(), SCHEDULE)


def _keyed_and_twin(key, batch=B):
    out = d.ddpm_sample(key, EPS, (batch, 2), SCHEDULE, variance="beta_tilde")
    x_T, noises = d.ddpm_noise(key, (batch, 2), T)
    want = d.ddpm_sample_from_noise(EPS, x_T, noises, SCHEDULE, variance="beta_tilde")
    return out, want, x_T, noises


def _chunk(noise_key, c, steps, shape):
    with jax.threefry_partitionable(False):
        return jax.random.normal(jax.random.fold_in(noise_key, c), (steps, *shape))


def test_keyed_noise_is_one_original_layout_chunk():
    key = jax.random.key(5)
    assert ddpm.noise_chunk_steps((B, 2), T) == T  # 640 numbers: one chunk
    out, want, x_T, noises = _keyed_and_twin(key)
    init_key, noise_key = jax.random.split(key)
    np.testing.assert_array_equal(x_T, jax.random.normal(init_key, (B, 2)))
    spelled = _chunk(noise_key, 0, T, (B, 2))
    np.testing.assert_array_equal(noises, spelled)
    with jax.threefry_partitionable(True):  # the global setting does not change the draw
        np.testing.assert_array_equal(d.ddpm_noise(key, (B, 2), T)[1], spelled)
    # Same draws, two compiled programs: float32 rounding only; one wrong step's noise
    # would move the result by ~sqrt(beta_tilde) >= 0.03.
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    assert float(jnp.max(jnp.abs(out - x_T))) > 0.1  # it moved


def test_chunks_and_a_partial_last_chunk(monkeypatch):
    batch = B + 1  # a shape not compiled before: traced with the patched chunk size
    monkeypatch.setattr(ddpm, "NOISE_CHUNK_NUMBERS", 6 * batch * 2)  # B = 6: 3 chunks + 2 steps
    assert ddpm.noise_chunk_steps((batch, 2), T) == 6
    key = jax.random.key(6)
    shape = (batch, 2)
    x, path = d.ddpm_sample(key, EPS, shape, SCHEDULE, variance="beta_tilde",
                            return_trajectory=True)  # fmt: skip
    x_T, noises = d.ddpm_noise(key, shape, T)
    noise_key = jax.random.split(key)[1]
    for i in (0, 5, 6, 13, 17, 18, 19):  # chunk starts and ends, the partial chunk 3
        np.testing.assert_array_equal(noises[i], _chunk(noise_key, i // 6, 6, shape)[i % 6])
    _, want = d.ddpm_sample_from_noise(EPS, x_T, noises, SCHEDULE, variance="beta_tilde",
                                       return_trajectory=True)  # fmt: skip
    assert path.shape == (T, batch, 2)
    np.testing.assert_allclose(path, want, rtol=1e-5, atol=1e-5)  # every step's state
    np.testing.assert_array_equal(path[-1], x)


@pytest.mark.parametrize("impl", ["threefry2x32", "rbg"])
def test_predrawn_noise_law(impl):
    n_steps, shape = 64, (4096, 2)  # 2^19 draws
    z = np.asarray(d.ddpm_noise(jax.random.key(7, impl=impl), shape, n_steps)[1], np.float64)
    n = z.size
    # Five standard errors: mean 1/sqrt(n), variance sqrt(2/n), fourth moment sqrt(96/n),
    # the correlation of successive draws (a Threefry block's two words) 1/sqrt(n).
    flat = z.reshape(-1)
    assert abs(flat.mean()) < 5 / np.sqrt(n)
    assert abs(flat.var() - 1.0) < 5 * np.sqrt(2 / n)
    assert abs(np.mean(flat**4) - 3.0) < 5 * np.sqrt(96 / n)
    assert abs(np.corrcoef(flat[:-1], flat[1:])[0, 1]) < 5 / np.sqrt(n)
    assert abs(np.corrcoef(z[0].reshape(-1), z[1].reshape(-1))[0, 1]) < 5 / np.sqrt(n / 64)
