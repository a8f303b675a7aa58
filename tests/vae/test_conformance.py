"""The VAE family under genjax.testing's conformance suites.

Samplers (``assert_sampler_conforms``): ``vae.sample`` for each of the four kinds of model -- VAE,
ladder (hierarchical) VAE, VQ-VAE and autoencoder -- each with two models of one structure
initialised from different keys; the noise twin is ``vae.sample_from_noise`` on noise drawn
here as ``sample`` documents it. Losses (``assert_loss_conforms``): ``elbo_loss`` (a VAE with
beta, and the ladder VAE), ``iwae_loss`` (both estimators; the ``"iwae"`` estimator is
``-mean(iwae_bound)``, so ``iwae_bound`` and its gradient are checked through it),
``vqvae_loss`` and ``autoencoder_loss``. (The Gaussian likelihood, the capacity objective
and the ladder VAE's IWAE weights run through the same compiled functions and are held to
the oracle in test_elbo_iwae.py.)

Where the gradient is not the derivative of the value (by design), the finite-difference
check is off and the reason is given: the VQ-VAE's straight-through estimator and DReG's
surrogate gradient (same value as IWAE, another unbiased gradient).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from genjax import vae
from genjax.testing import (
    LossCase,
    SamplerCase,
    assert_loss_conforms,
    assert_sampler_conforms,
    count_compilations,
)

SHAPE = (4, 4, 1)
N = 3  # samples per draw


def _vae(seed: int) -> vae.VAE:
    return vae.mlp_vae(SHAPE, 2, rngs=nnx.Rngs(seed), hidden_sizes=(8,))


def _hvae(seed: int) -> vae.HierarchicalVAE:
    return vae.HierarchicalVAE(SHAPE, (3, 2), rngs=nnx.Rngs(seed), hidden=8)


def _vq(seed: int) -> vae.VQVAE:
    return vae.VQVAE(SHAPE, num_latents=2, code_dim=2, num_codes=4, rngs=nnx.Rngs(seed),
                     hidden_sizes=(8,))


def _ae(seed: int) -> vae.Autoencoder:
    return vae.mlp_autoencoder(SHAPE, 2, rngs=nnx.Rngs(seed), hidden_sizes=(8,))


def _noise(key, model):
    """The noise ``vae.sample`` documents drawing, written out here."""
    if isinstance(model, vae.HierarchicalVAE):
        k2, k1 = jax.random.split(key)
        return jax.random.normal(k2, (N, 2)), jax.random.normal(k1, (N, 3))
    if isinstance(model, vae.VQVAE):
        return jax.random.gumbel(key, (N, 2, 4))  # (n, M, K)
    return jax.random.normal(key, (N, 2))


SAMPLERS = {"vae": _vae, "hvae": _hvae, "vq-vae": _vq, "autoencoder": _ae}


@pytest.mark.parametrize("kind", list(SAMPLERS))
def test_sample_conforms(kind):
    build = SAMPLERS[kind]
    models = [build(0), build(1)]
    assert_sampler_conforms(SamplerCase(
        name=f"vae.sample[{kind}]",
        sample=lambda key, m: vae.sample(key, m, N),
        models=models,
        from_noise=lambda key, m: vae.sample_from_noise(m, _noise(key, m)),
        bad_arguments=[(lambda: vae.sample(jax.random.key(0), models[0], 0), "n"),
                       (lambda: vae.sample(jax.random.key(0), object(), 2), "model")],
    ))


def test_ten_weight_sets_compile_once():
    # a structure no other test uses, so the first call is this test's only compilation
    models = [vae.mlp_vae(SHAPE, 2, rngs=nnx.Rngs(i), hidden_sizes=(7,)) for i in range(10)]
    key = jax.random.key(0)
    with count_compilations() as compiled:
        outs = [vae.sample(key, m, N) for m in models]
    assert compiled[0] == 1, compiled[0]
    assert len({float(jnp.sum(o)) for o in outs}) == 10  # ten weight sets, ten outputs


def _batch(seed: int = 7):
    return jax.random.uniform(jax.random.key(seed), (3, *SHAPE))


LOSSES = {
    # name: (loss, model, options)
    "elbo[bernoulli, beta]": (vae.elbo_loss, lambda: _vae(0), {"beta": 2.0}),
    "elbo[hierarchical]": (vae.elbo_loss, lambda: _hvae(0), {}),
    "iwae_loss[iwae]": (vae.iwae_loss, lambda: _vae(0), {"k": 3}),
}


@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_conforms(name):
    loss, build, options = LOSSES[name]
    model, batch = build(), _batch()
    bad = [(lambda: vae.elbo_loss(model, jnp.zeros((2, 5, 5, 1)), jax.random.key(0)), "batch")]
    if "k" in options:
        bad.append((lambda: loss(model, batch, jax.random.key(0), k=0), "k"))
    else:
        bad.append((lambda: loss(model, batch, jax.random.key(0), beta=-1.0), "beta"))
    assert_loss_conforms(LossCase(name=name, loss=functools.partial(loss, **options), model=model,
                        batch=batch, bad_arguments=bad))


def test_dreg_loss_conforms():
    # DReG's gradient is a surrogate's (Tucker et al. 2019, eq. 7): unbiased for the IWAE
    # gradient, but not the derivative of the loss value at fixed noise -- no finite
    # differences; the value, determinism, jit and a finite non-zero gradient are checked.
    model = _vae(0)
    assert_loss_conforms(LossCase(
        name="iwae_loss[dreg]", loss=functools.partial(vae.iwae_loss, k=3, estimator="dreg"),
        model=model, batch=_batch(), check_grads=False,
        bad_arguments=[(lambda: vae.iwae_loss(model, _batch(), jax.random.key(0), k=3,
                                              estimator="vimco"), "estimator")],
    ))


def test_vqvae_and_autoencoder_losses_conform():
    # both deterministic (the key is unused). The VQ-VAE's straight-through gradient is not
    # the derivative of the value (z_q does not move with z_e), so no finite differences.
    vq, x = _vq(0), _batch()
    assert_loss_conforms(LossCase(
        name="vqvae_loss", loss=vae.vqvae_loss, model=vq, batch=x, check_grads=False,
        stochastic=False,
        bad_arguments=[(lambda: vae.vqvae_loss(vq, x, None, beta=-1.0), "beta"),
                       (lambda: vae.vqvae_loss(vq, x[:, :2], None), "batch")],
    ))
    ae = _ae(0)
    assert_loss_conforms(LossCase(
        name="autoencoder_loss", loss=vae.autoencoder_loss, model=ae, batch=x, stochastic=False,
        bad_arguments=[(lambda: vae.autoencoder_loss(ae, x[:, :2], None), "batch")],
    ))
