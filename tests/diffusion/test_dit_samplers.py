"""The DiT as a drop-in model of genjax's diffusion samplers, held to two oracles at once.

Each sampler runs with a tiny :class:`genjax.nn.DiT` (random weights, so that nothing is
zero) as its model and is compared on shared noise, in float64, with the diffusion oracle's
loop (``genjax.diffusion.oracle``) driven by the DiT oracle (``oracle_dit.dit_forward``):
DDPM with classifier-free guidance and Heun's EDM sampler through
``edm_precondition``. Every other sampler calls its model the same way (``model(x, t)`` on a
pytree, DESIGN.md); new weights compiling nothing is checked in tests/nn/test_dit.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import diffusion as d
from genjax import nn
from genjax.diffusion import oracle, oracle_dit
from genjax.testing import assert_close_to_oracle

T = 6  # a short schedule: DDPM visits every step
BETAS = oracle.linear_betas(T, 1e-2, 0.3)
K = 3  # classes; label K is the null label
SHAPE = (4, 4, 4, 1)  # 4x4 images in 2x2 patches: N = 4 tokens
NET_KW = dict(patch_size=2, dim=8, depth=1, num_heads=2, mlp_ratio=2.0, frequency_dim=4)


def _net(seed: int, dtype, **kw) -> nn.DiT:
    net = nn.DiT(1, rngs=nnx.Rngs(0), **NET_KW, **kw)
    rng = np.random.default_rng(seed)  # std 0.3 weights: gates and output layer nonzero
    return jax.tree.map(lambda w: jnp.asarray(0.3 * rng.standard_normal(w.shape), dtype), net)


def _oracle_fn(net: nn.DiT):
    """The oracle's ``f(x, t, labels)`` over the network's weights."""
    params = oracle_dit.params_from_dit(net)
    kw = dict(patch_size=2, num_heads=2, frequency_dim=4, time_scale=net.time_scale)
    return lambda x, t, y=None: oracle_dit.dit_forward(params, x, t, y, **kw)


@pytest.fixture
def noise():
    rng = np.random.default_rng(0)
    return rng.standard_normal(SHAPE), rng.standard_normal((T, *SHAPE))


def test_guided_ddpm_with_a_dit_matches_the_oracles(x64, noise):
    x_T, noises = noise
    schedule = d.from_betas(BETAS, dtype=jnp.float64)
    net = _net(1, jnp.float64, num_classes=K)
    f = _oracle_fn(net)
    labels, scale = np.array([0, 1, 2, 0]), 2.0
    null = np.full(4, K)

    def guided_np(x, t):  # eps_u + s (eps_c - eps_u), Ho & Salimans (2022)
        eps_u = f(x, t, null)
        return eps_u + scale * (f(x, t, labels) - eps_u)

    got = d.ddpm_sample_from_noise(
        d.guided_eps_fn(net, jnp.asarray(labels), K, scale), x_T, noises, schedule
    )
    want = oracle.ddpm_loop(guided_np, BETAS, x_T, noises)
    assert (
        np.abs(want - oracle.ddpm_loop(lambda x, t: f(x, t, null), BETAS, x_T, noises)).max() > 1e-3
    )
    assert_close_to_oracle(got, want, kind="long_loop", err_msg="ddpm guided")


def test_edm_heun_with_a_dit_matches_the_oracles(x64, noise):
    x_T, _ = noise
    net = _net(2, jnp.float64, time_scale=10.0)  # c_noise = log(sigma)/4 in ~[-1.6, 0.6]
    f = _oracle_fn(net)
    sigma_data = 0.5

    def den_np(x, sigma):  # D = c_skip x + c_out F(c_in x, c_noise)  (Karras et al. eq. 7)
        c_skip, c_out, c_in, c_noise, _ = oracle.edm_precondition(sigma, sigma_data)
        r = (-1,) + (1,) * (x.ndim - 1)
        return c_skip.reshape(r) * x + c_out.reshape(r) * f(c_in.reshape(r) * x, c_noise)

    sigmas = oracle.karras_sigmas(4, 0.002, 5.0)
    x0 = sigmas[0] * x_T
    got = d.heun_sample_from_noise(d.edm_precondition(net, sigma_data), x0, None, sigmas)
    assert_close_to_oracle(got, oracle.heun_loop(den_np, x0, sigmas), kind="long_loop")
