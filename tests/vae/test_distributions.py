"""KLs, likelihoods and the reparameterisation against the NumPy oracle."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import gaussian, vae
from genjax.vae import oracle

# float32 against float64 for sums of ~10-100 terms: 1e-5 relative (COMMON.md single_op).
RTOL32 = 1e-5


def _draw(key, shape, scale=1.0):
    return scale * jax.random.normal(key, shape)


@pytest.mark.parametrize("jit", [False, True])
def test_kl_matches_oracle_and_is_per_example(keys, jit):
    mu, logvar = _draw(keys[0], (6, 5)), _draw(keys[1], (6, 5))
    f = jax.jit(vae.kl_diag_gaussian) if jit else vae.kl_diag_gaussian
    got = f(mu, logvar)
    assert got.shape == (6,)
    np.testing.assert_allclose(got, oracle.kl_diag_gaussian(mu, logvar), rtol=RTOL32, atol=1e-6)
    assert np.all(np.asarray(got) > 0)  # a KL of non-standard Gaussians is positive
    np.testing.assert_allclose(vae.kl_diag_gaussian(jnp.zeros((2, 3)), jnp.zeros((2, 3))), 0.0)


def test_kl_between_gaussians_x64(x64, keys):
    # the ladder VAE's KL(q(z1|x,z2) || p(z1|z2)) is genjax.gaussian's, held to the oracle
    a, b, c, d = (_draw(k, (4, 3)).astype(jnp.float64) for k in keys[:4])
    np.testing.assert_allclose(gaussian.kl_diag_normals(a, b, c, d),
                               oracle.kl_diag_gaussians(a, b, c, d), rtol=1e-12)
    # against the standard normal it is the one-argument KL, vae.kl_diag_gaussian
    z = jnp.zeros_like(a)
    np.testing.assert_allclose(gaussian.kl_diag_normals(a, b, z, z), vae.kl_diag_gaussian(a, b),
                               rtol=1e-12)
    np.testing.assert_allclose(vae.kl_diag_gaussian(a, b), oracle.kl_diag_gaussian(a, b),
                               rtol=1e-12)


def test_kl_small_logvar_is_accurate_in_float32():
    # KL = (e^d - 1 - d)/2 ~ d^2/4 for logvar d = 1e-3. Written as exp(d) - 1 - d, float32
    # loses ~10% of it (exp(d) rounds at 6e-8 absolute); expm1(d) - d keeps ~1e-4 relative.
    d = 1e-3
    exact = 0.5 * (np.expm1(d) - d)
    got = vae.kl_diag_gaussian(jnp.zeros((1, 1), jnp.float32), jnp.full((1, 1), d, jnp.float32))
    np.testing.assert_allclose(got, [exact], rtol=1e-3)


@pytest.mark.parametrize("jit", [False, True])
def test_bernoulli_and_gaussian_likelihoods(keys, jit):
    x = jax.random.uniform(keys[0], (3, 4, 4, 1))
    logits = _draw(keys[1], (3, 4, 4, 1), 3.0)
    bern = jax.jit(vae.bernoulli_log_likelihood) if jit else vae.bernoulli_log_likelihood
    np.testing.assert_allclose(bern(x, logits), oracle.bernoulli_log_likelihood(x, logits),
                               rtol=RTOL32)
    gauss = jax.jit(vae.gaussian_log_likelihood) if jit else vae.gaussian_log_likelihood
    np.testing.assert_allclose(gauss(x, logits, jnp.asarray(-0.3)),
                               oracle.gaussian_log_likelihood(x, logits, -0.3), rtol=RTOL32)


def test_bernoulli_extreme_logits_finite_and_correct():
    x = jnp.array([[1.0, 0.0, 1.0, 0.0]])
    logits = jnp.array([[1e4, -1e4, -1e4, 1e4]])
    got = vae.bernoulli_log_likelihood(x, logits)
    # two confident hits contribute 0, two confident misses -1e4 each
    np.testing.assert_allclose(got, [-2e4], rtol=1e-6)


def test_log_normal_diag_matches_oracle(keys):
    # the density of q(z|x) in the IWAE weights is genjax.gaussian's
    z, mu, lv = (_draw(k, (5, 3)) for k in keys[:3])
    np.testing.assert_allclose(gaussian.diag_normal_log_prob(z, mu, lv),
                               oracle.log_normal_diag(z, mu, lv), rtol=RTOL32)


def test_reparameterize_moments_and_determinism(keys):
    mu = jnp.array([1.0, -2.0])
    logvar = jnp.log(jnp.array([0.25, 4.0]))
    z = vae.reparameterize(keys[0], jnp.broadcast_to(mu, (20000, 2)),
                           jnp.broadcast_to(logvar, (20000, 2)))
    # 20000 draws: the standard error of the mean is sigma/141, so 5 SE is ~0.035 sigma
    se = np.sqrt([0.25, 4.0]) / np.sqrt(20000)
    assert np.all(np.abs(np.asarray(z.mean(0)) - np.asarray(mu)) < 5 * se)
    np.testing.assert_allclose(z.std(0), [0.5, 2.0], rtol=0.03)
    np.testing.assert_array_equal(vae.reparameterize(keys[0], mu, logvar),
                                  jax.jit(vae.reparameterize)(keys[0], mu, logvar))


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="logvar"):
        vae.kl_diag_gaussian(jnp.zeros((2, 3)), jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match="logits"):
        vae.bernoulli_log_likelihood(jnp.zeros((2, 3)), jnp.zeros((2, 4)))


def test_extreme_logvars_stay_finite():
    mu = jnp.zeros((1, 2))
    logvar = jnp.array([[-30.0, 30.0]])
    kl = vae.kl_diag_gaussian(mu, logvar)
    # 1/2 [(e^-30 + 30 - 1) + (e^30 - 30 - 1)]: dominated by e^30 / 2
    np.testing.assert_allclose(kl, [0.5 * (np.exp(-30.0) + 29.0 + np.exp(30.0) - 31.0)],
                               rtol=1e-5)
    assert np.all(np.isfinite(gaussian.diag_normal_log_prob(mu, mu, logvar)))


def test_oracle_imports_numpy_only():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(oracle))
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
             for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree)
              if isinstance(n, ast.ImportFrom) and n.module}
    assert names <= {"numpy", "math", "__future__", "collections"}, names
