"""Bad and extreme inputs to every public function of the VAE family (issue 16).

Each ``reject`` case must raise a ValueError/TypeError naming the argument; each
``extreme`` case is inside the documented domain and must stay finite (and correct where a
``check`` is given). Finding 11 (``codebook_perplexity`` of out-of-range codes) and finding
13 (a Gaussian-decoder VAE's ELBO on raw 0-255 pixels at initialisation) are covered here.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import vae
from genjax.testing import BadInput, assert_handled

SHAPE = (4, 4, 1)
KEY = jax.random.key(0)
X = jax.random.uniform(jax.random.key(1), (3, *SHAPE))
WRONG_X = jnp.zeros((3, 5, 5, 1))
NAN_X = X.at[0, 0, 0, 0].set(jnp.nan)
VAE_B = vae.mlp_vae(SHAPE, 2, rngs=nnx.Rngs(0), hidden_sizes=(8,))
VAE_G = vae.mlp_vae(SHAPE, 2, rngs=nnx.Rngs(0), hidden_sizes=(8,), likelihood="gaussian")
AE = vae.mlp_autoencoder(SHAPE, 2, rngs=nnx.Rngs(0), hidden_sizes=(8,))
HVAE = vae.HierarchicalVAE(SHAPE, (2, 2), hidden=8, rngs=nnx.Rngs(0))
VQ = vae.VQVAE(SHAPE, num_latents=2, code_dim=2, num_codes=4, hidden_sizes=(8,),
               rngs=nnx.Rngs(0))
CODEBOOK = jnp.eye(4, 2)
Z_E = jnp.ones((3, 2))
MU = jnp.zeros((3, 2))
# Raw 0-255 pixels (finding 13): the untrained encoder's log-variance head reached ~100.
PIXELS = 255.0 * jax.random.uniform(jax.random.key(2), (8, *SHAPE))


def _finite_loss(result):
    loss, metrics = result
    return bool(np.isfinite(loss)) and all(bool(np.all(np.isfinite(v))) for v in metrics.values())


def _case(name, call, argument="", kind="reject", check=None):
    return BadInput(name, call, argument, kind, check)


CASES = [
    # --- losses -----------------------------------------------------------------------
    _case("loss.elbo_loss: batch of the wrong shape",
          lambda: vae.elbo_loss(VAE_B, WRONG_X, KEY), "batch"),
    _case("loss.elbo_loss: batch with NaN", lambda: vae.elbo_loss(VAE_B, NAN_X, KEY), "batch"),
    _case("loss.elbo_loss: beta < 0", lambda: vae.elbo_loss(VAE_B, X, KEY, beta=-1.0), "beta"),
    _case("loss.elbo_loss: beta NaN", lambda: vae.elbo_loss(VAE_B, X, KEY, beta=jnp.nan), "beta"),
    _case("loss.elbo_loss: gamma < 0", lambda: vae.elbo_loss(VAE_B, X, KEY, gamma=-1.0),
          "gamma"),
    _case("loss.elbo_loss: capacity < 0",
          lambda: vae.elbo_loss(VAE_B, X, KEY, capacity=-1.0), "capacity"),
    _case("loss.elbo_loss: model not a VAE", lambda: vae.elbo_loss(AE, X, KEY), "model"),
    _case("loss.elbo_terms: eps of the wrong shape",
          lambda: vae.elbo_terms(VAE_B, X, jnp.zeros((3, 5))), "eps"),
    _case("loss.elbo_terms: x of the wrong shape",
          lambda: vae.elbo_terms(VAE_B, WRONG_X, jnp.zeros((3, 2))), "batch"),
    _case("loss.capacity_schedule: num_steps 0",
          lambda: vae.capacity_schedule(1, c_max=5.0, num_steps=0), "num_steps"),
    _case("loss.capacity_schedule: c_max < 0",
          lambda: vae.capacity_schedule(1, c_max=-5.0, num_steps=10), "c_max"),
    _case("loss.iwae_bound: k = 0", lambda: vae.iwae_bound(VAE_B, X, KEY, k=0), "k"),
    _case("loss.iwae_bound: k not an int", lambda: vae.iwae_bound(VAE_B, X, KEY, k=2.5), "k"),
    _case("loss.iwae_bound: chunk_size 0",
          lambda: vae.iwae_bound(VAE_B, X, KEY, k=4, chunk_size=0), "chunk_size"),
    _case("loss.iwae_bound: chunk_size does not divide k",
          lambda: vae.iwae_bound(VAE_B, X, KEY, k=4, chunk_size=3), "chunk_size"),
    _case("loss.iwae_bound: batch of the wrong shape",
          lambda: vae.iwae_bound(VAE_B, WRONG_X, KEY, k=2), "batch"),
    _case("loss.iwae_loss: unknown estimator",
          lambda: vae.iwae_loss(VAE_B, X, KEY, k=2, estimator="vimco"), "estimator"),
    _case("loss.iwae_loss: k = 0", lambda: vae.iwae_loss(VAE_B, X, KEY, k=0), "k"),
    _case("loss.iwae_loss: batch with NaN", lambda: vae.iwae_loss(VAE_B, NAN_X, KEY, k=2),
          "batch"),
    _case("loss.iwae_log_weights: eps of the wrong shape",
          lambda: vae.iwae_log_weights(VAE_B, X, jnp.zeros((2, 3, 5))), "eps"),
    _case("loss.autoencoder_loss: batch of the wrong shape",
          lambda: vae.autoencoder_loss(AE, WRONG_X, KEY), "batch"),
    _case("loss.autoencoder_loss: batch with NaN",
          lambda: vae.autoencoder_loss(AE, NAN_X, KEY), "batch"),
    # --- distributions ----------------------------------------------------------------
    _case("distributions.kl_diag_gaussian: logvar shape differs",
          lambda: vae.kl_diag_gaussian(MU, jnp.zeros((3, 3))), "logvar"),
    _case("distributions.reparameterize: logvar shape differs",
          lambda: vae.reparameterize(KEY, MU, jnp.zeros((2, 2))), "logvar"),
    _case("distributions.bernoulli_log_likelihood: logits shape differs",
          lambda: vae.bernoulli_log_likelihood(X, jnp.zeros((3, 16))), "logits"),
    _case("distributions.gaussian_log_likelihood: mean shape differs",
          lambda: vae.gaussian_log_likelihood(X, jnp.zeros((3, 16)), 0.0), "mean"),
    _case("distributions.gaussian_log_likelihood: log_std not a scalar",
          lambda: vae.gaussian_log_likelihood(X, X, jnp.zeros(3)), "log_std"),
    _case("distributions.gaussian_log_likelihood: batch_ndim > x.ndim",
          lambda: vae.gaussian_log_likelihood(X, X, 0.0, batch_ndim=5), "batch_ndim"),
    # --- models -----------------------------------------------------------------------
    _case("model.mlp_vae: latent_dim 0",
          lambda: vae.mlp_vae(SHAPE, 0, rngs=nnx.Rngs(0), hidden_sizes=(4,)), "latent_dim"),
    _case("model.mlp_vae: unknown likelihood",
          lambda: vae.mlp_vae(SHAPE, 2, rngs=nnx.Rngs(0), hidden_sizes=(4,),
                                      likelihood="poisson"), "likelihood"),
    _case("model.mlp_autoencoder: latent_dim -1",
          lambda: vae.mlp_autoencoder(SHAPE, -1, rngs=nnx.Rngs(0)), "latent_dim"),
    _case("model.conv_vae: image_shape not (H, W, C)",
          lambda: vae.conv_vae((8, 8), 2, rngs=nnx.Rngs(0)), "image_shape"),
    _case("model.linear_vae: noise_std 0",
          lambda: vae.linear_vae(4, 2, rngs=nnx.Rngs(0), noise_std=0.0), "noise_std"),
    _case("model.linear_vae: data_dim 0",
          lambda: vae.linear_vae(0, 2, rngs=nnx.Rngs(0)), "data_dim"),
    _case("model.exact_posterior_vae: noise_std < 0",
          lambda: vae.exact_posterior_vae(np.eye(4, 2), np.zeros(4), -1.0), "noise_std"),
    _case("model.exact_posterior_vae: W not (D, L)",
          lambda: vae.exact_posterior_vae(np.ones(4), np.zeros(4), 1.0), "W"),
    _case("model.set_linear_vae: enc_kernel of the wrong shape",
          lambda: vae.set_linear_vae(vae.linear_vae(4, 2, rngs=nnx.Rngs(0)),
                                     enc_kernel=np.zeros((3, 3))), "enc_kernel"),
    _case("hierarchical.HierarchicalVAE: latent_dims[0] 0",
          lambda: vae.HierarchicalVAE(SHAPE, (0, 2), hidden=8, rngs=nnx.Rngs(0)),
          "latent_dims"),
    _case("hierarchical.hvae_terms: x of the wrong shape",
          lambda: vae.hvae_terms(HVAE, WRONG_X, jnp.zeros((3, 2)), jnp.zeros((3, 2))), "batch"),
    _case("hierarchical.hvae_terms: eps1 of the wrong shape",
          lambda: vae.hvae_terms(HVAE, X, jnp.zeros((3, 2)), jnp.zeros((3, 7))), "eps1"),
    _case("hierarchical.hvae_log_weights: eps2 of the wrong shape",
          lambda: vae.hvae_log_weights(HVAE, X, jnp.zeros((2, 3, 9)), jnp.zeros((2, 3, 2))),
          "eps2"),
    _case("hierarchical.hvae_generate: eps1 batch differs from eps2",
          lambda: vae.hvae_generate(HVAE, jnp.zeros((3, 2)), jnp.zeros((4, 2))), "eps1"),
    _case("hierarchical.precision_weighted: shapes differ",
          lambda: vae.precision_weighted(MU, MU, MU, jnp.zeros((3, 3))), "logvar_p"),
    # --- sampling ---------------------------------------------------------------------
    _case("sample.sample: n = 0", lambda: vae.sample(KEY, VAE_B, 0), "n"),
    _case("sample.sample: model of an unknown kind",
          lambda: vae.sample(KEY, object(), 2), "model"),
    _case("sample.noise_shapes: n = -1", lambda: vae.noise_shapes(VAE_B, -1), "n"),
    _case("sample.draw_noise: n = 0", lambda: vae.draw_noise(KEY, VAE_B, 0), "n"),
    _case("sample.sample_from_noise: noise of the wrong shape",
          lambda: vae.sample_from_noise(VAE_B, jnp.zeros((2, 5))), "noise"),
    _case("sample.encode_mean: x of the wrong shape",
          lambda: vae.encode_mean(VAE_B, WRONG_X), "x"),
    _case("sample.reconstruct: x of the wrong shape",
          lambda: vae.reconstruct(VAE_B, WRONG_X), "x"),
    _case("sample.interpolate: num = 1", lambda: vae.interpolate(VAE_B, X, X, num=1), "num"),
    _case("sample.interpolate: x_b shape differs",
          lambda: vae.interpolate(VAE_B, X, X[:2], num=3), "x_b"),
    _case("sample.fit_latent_gaussian: one example",
          lambda: vae.fit_latent_gaussian(AE, X[:1]), "x"),
    _case("sample.fit_latent_gaussian: x with NaN",
          lambda: vae.fit_latent_gaussian(AE, NAN_X), "x"),
    # --- VQ-VAE -----------------------------------------------------------------------
    _case("quantize.codebook_perplexity: index >= num_codes (finding 11)",
          lambda: vae.codebook_perplexity(jnp.array([5, 7, 9]), 4), "indices"),
    _case("quantize.codebook_perplexity: negative index",
          lambda: vae.codebook_perplexity(jnp.array([0, -1]), 4), "indices"),
    _case("quantize.codebook_perplexity: float indices",
          lambda: vae.codebook_perplexity(jnp.array([0.0, 1.0]), 4), "indices"),
    _case("quantize.codebook_perplexity: num_codes 0",
          lambda: vae.codebook_perplexity(jnp.array([0]), 0), "num_codes"),
    _case("quantize.nearest_code: codebook 1-D",
          lambda: vae.nearest_code(Z_E, jnp.zeros(4)), "codebook"),
    _case("quantize.nearest_code: z_e code_dim differs",
          lambda: vae.nearest_code(jnp.ones((3, 3)), CODEBOOK), "z_e"),
    _case("quantize.vector_quantize: z_e code_dim differs",
          lambda: vae.vector_quantize(jnp.ones((3, 5)), CODEBOOK), "z_e"),
    _case("quantize.ema_update: decay = 1",
          lambda: vae.ema_update(vae.ema_init(CODEBOOK), CODEBOOK, Z_E, jnp.zeros(3, int),
                                 decay=1.0), "decay"),
    _case("quantize.ema_update: epsilon < 0",
          lambda: vae.ema_update(vae.ema_init(CODEBOOK), CODEBOOK, Z_E, jnp.zeros(3, int),
                                 epsilon=-1.0), "epsilon"),
    _case("quantize.ema_update: indices out of range",
          lambda: vae.ema_update(vae.ema_init(CODEBOOK), CODEBOOK, Z_E, jnp.full(3, 9)),
          "indices"),
    _case("quantize.ema_update: indices shape differs from z_e",
          lambda: vae.ema_update(vae.ema_init(CODEBOOK), CODEBOOK, Z_E, jnp.zeros(5, int)),
          "indices"),
    _case("quantize.reset_dead_codes: threshold < 0",
          lambda: vae.reset_dead_codes(KEY, vae.ema_init(CODEBOOK), CODEBOOK, Z_E,
                                       threshold=-1.0), "threshold"),
    _case("quantize.VQVAE: num_codes 0",
          lambda: vae.VQVAE(SHAPE, num_latents=2, code_dim=2, num_codes=0, rngs=nnx.Rngs(0)),
          "num_codes"),
    _case("quantize.vqvae_loss: beta < 0", lambda: vae.vqvae_loss(VQ, X, KEY, beta=-1.0),
          "beta"),
    _case("quantize.vqvae_loss: batch of the wrong shape",
          lambda: vae.vqvae_loss(VQ, WRONG_X, KEY), "batch"),
    _case("quantize.vqvae_terms: batch of the wrong shape",
          lambda: vae.vqvae_terms(VQ, WRONG_X), "batch"),
    # --- valid extremes ---------------------------------------------------------------
    _case("loss.elbo_loss: Gaussian decoder on raw 0-255 pixels, MLP (finding 13)",
          lambda: vae.elbo_loss(VAE_G, PIXELS, KEY), kind="extreme", check=_finite_loss),
    _case("loss.iwae_bound: Gaussian decoder on raw 0-255 pixels (finding 13)",
          lambda: vae.iwae_bound(VAE_G, PIXELS, KEY, k=4), kind="extreme"),
    _case("model.bounded_logvar: the identity on [-30, 10], inside (-40, 20) beyond",
          lambda: vae.model.bounded_logvar(jnp.array([-29.5, 0.0, 9.5, 1e4, -1e4])),
          kind="extreme",
          check=lambda lv: np.array_equal(lv[:3], np.float32([-29.5, 0.0, 9.5]))
          and 19.99 < float(lv[3]) <= 20.0 and -40.0 <= float(lv[4]) < -39.99),
    _case("loss.vqvae_loss: batch with NaN", lambda: vae.vqvae_loss(VQ, NAN_X, KEY), "batch"),
    _case("distributions.kl_diag_gaussian: logvar -60 (a near-point posterior)",
          lambda: vae.kl_diag_gaussian(MU, jnp.full((3, 2), -60.0)), kind="extreme",
          check=lambda kl: np.allclose(kl, 0.5 * 2 * (np.exp(-60.0) - 1 + 60.0), rtol=1e-6)),
    _case("distributions.bernoulli_log_likelihood: logits +-1e4",
          lambda: vae.bernoulli_log_likelihood(jnp.array([[1.0, 0.0]]),
                                               jnp.array([[1e4, -1e4]])), kind="extreme",
          check=lambda ll: abs(float(ll[0])) < 1e-6),
    _case("quantize.codebook_perplexity: one code used is 1, uniform use is K",
          lambda: (vae.codebook_perplexity(jnp.zeros(5, int), 4),
                   vae.codebook_perplexity(jnp.arange(8) % 4, 4)), kind="extreme",
          check=lambda r: np.isclose(r[0], 1.0) and np.isclose(r[1], 4.0, rtol=1e-6)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_handled(case):
    assert_handled(case)
