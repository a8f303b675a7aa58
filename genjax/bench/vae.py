"""VAE: a training step and an IWAE evaluation — genjax (jit) vs the NumPy oracle and PyTorch.

Workload, the ``vae`` recipe's network at a benchmark latent size: an MLP VAE
``64 -> 256 -> 256 -> 2x16`` / ``16 -> 256 -> 256 -> 64`` (SiLU, Bernoulli decoder) on
8x8 digits.

* ``train step``: one Adam step on the one-sample negative ELBO, batch 128 (genjax: the
  whole step — forward, backward, optax update — in one ``jax.jit``; PyTorch 2 eager:
  ``zero_grad``/``backward``/``step``). The oracle has no gradients, so its row times the
  ELBO **forward** only, float64.
* ``cvae sample``/``dae denoise``/``dae chain sample``: the conditional VAE's sampler
  (``z ~ p(z|y)``, decoder mean) and the denoising autoencoder's ``g(f(x~))`` and its
  corrupt-denoise chain, at the ``cvae``/``dae`` recipes' sizes (:func:`_conditional_rows`).
* ``iwae``: the IWAE bound with k importance samples on 100 test images (genjax: one jitted
  program, samples in chunks of 500; PyTorch: the same computation batched under
  ``no_grad``; oracle: ``oracle.vae_log_weights``, one NumPy pass per sample, float64,
  on fewer samples and scaled per sample — its k is stated in ``extra``).

PyTorch runs with one thread (see ``_torch_rows``). It is an optional peer
(``pip install torch``, the CPU wheel); its rows are skipped with a note when absent.
``speedup`` = that implementation's time / genjax's.
"""

from __future__ import annotations

import numpy as np

from genjax.bench.harness import Row, time_host, time_jax

LATENT = 16
HIDDEN = (256, 256)
BATCH = 128

NOTES = (
    "MLP VAE 64-256-256-(2x16) on 8x8 digits, Bernoulli decoder. train step: batch 128, "
    "Adam; the oracle row is the ELBO forward only (no gradients in NumPy). iwae: IWAE-k "
    "bound on 100 test images; oracle timed on fewer samples, scaled linearly to k. "
    "speedup = implementation's time / genjax's, measured side by side."
)


def _torch_vae(jax_model):
    """A PyTorch VAE with the same weights (Linear stores W as (out, in))."""
    import torch

    def copy_mlp(mlp):
        layers = []
        for i, lin in enumerate(mlp.layers):
            w = np.asarray(lin.kernel[...])
            t = torch.nn.Linear(w.shape[0], w.shape[1])
            with torch.no_grad():
                t.weight.copy_(torch.from_numpy(w.T.copy()))
                t.bias.copy_(torch.from_numpy(np.asarray(lin.bias[...]).copy()))
            layers.append(t)
            if i < len(mlp.layers) - 1:
                layers.append(torch.nn.SiLU())
        return torch.nn.Sequential(*layers)

    return copy_mlp(jax_model.encoder.net), copy_mlp(jax_model.decoder.net)


def _torch_rows(jax_model, x_train, x_test, k, genjax_step_s, genjax_iwae_s) -> list[Row]:
    import torch

    torch.manual_seed(0)
    enc, dec = _torch_vae(jax_model)
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    xb = torch.from_numpy(np.asarray(x_train).reshape(len(x_train), -1).copy())
    xt = torch.from_numpy(np.asarray(x_test).reshape(len(x_test), -1).copy())
    bce = torch.nn.functional.binary_cross_entropy_with_logits

    def step():
        opt.zero_grad()
        h = enc(xb)
        mu, logvar = h[:, :LATENT], h[:, LATENT:]
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        rec = bce(dec(z), xb, reduction="none").sum(-1)
        kl = 0.5 * (mu**2 + torch.exp(logvar) - 1.0 - logvar).sum(-1)
        loss = (rec + kl).mean()
        loss.backward()
        opt.step()
        return loss.detach()

    @torch.no_grad()
    def iwae():
        h = enc(xt)
        mu, logvar = h[:, :LATENT], h[:, LATENT:]
        std = torch.exp(0.5 * logvar)
        total = torch.full((len(xt),), -float("inf"))
        for _ in range(k // 500):  # the same chunking as genjax
            eps = torch.randn(500, *mu.shape)
            z = mu + std * eps  # (500, B, L)
            logits = dec(z)
            log_lik = -bce(logits, xt.expand_as(logits), reduction="none").sum(-1)
            log_pz = -0.5 * (z**2 + np.log(2 * np.pi)).sum(-1)
            log_q = -0.5 * (eps**2 + logvar + np.log(2 * np.pi)).sum(-1)
            total = torch.logaddexp(total, torch.logsumexp(log_lik + log_pz - log_q, 0))
        return total - np.log(k)

    # One thread: on a shared 2-core machine PyTorch's spinning thread pool ran the step
    # ~100x slower with 2 threads than with 1 (measured while writing this suite).
    torch.set_num_threads(1)
    t_step = time_host(step, repeats=10)
    t_iwae = time_host(iwae, repeats=3)
    return [
        Row("vae", f"train step, batch {BATCH}", f"pytorch {torch.__version__} (eager)",
            t_step.compile_s, t_step.run_s, {"speedup": t_step.run_s / genjax_step_s}),
        Row("vae", f"iwae-{k} on 100 images", f"pytorch {torch.__version__} (no_grad)",
            t_iwae.compile_s, t_iwae.run_s, {"speedup": t_iwae.run_s / genjax_iwae_s}),
    ]


def _conditional_rows(quick: bool) -> list[Row]:
    """CVAE sampling and DAE denoising (the ``cvae``/``dae`` recipes' networks, untrained).

    genjax: one jitted program each (the model traced; compile timed apart); oracle: the same
    maps in NumPy float64 (:mod:`genjax.vae.oracle`'s MLP) on the same noise.
    """
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from genjax import data
    from genjax.vae import conditional, denoising, oracle
    from genjax.vae import model as vae_model

    n = 200 if quick else 1000
    repeats = 3 if quick else 5
    rows: list[Row] = []

    def np_layers(mlp):
        return [(np.asarray(lin.kernel[...], np.float64), np.asarray(lin.bias[...], np.float64))
                for lin in mlp.layers]

    cvae = conditional.mlp_cvae((8, 8, 1), 10, 4, rngs=nnx.Rngs(0), hidden_sizes=HIDDEN)
    labels = jnp.arange(n, dtype=jnp.int32) % 10
    t = time_jax(conditional.cvae_sample, jax.random.key(0), cvae, labels, repeats=repeats)
    case = f"cvae sample, {n} digits"
    rows.append(Row("vae", case, "genjax (jit)", t.compile_s, t.run_s, {}))
    prior, dec = np_layers(cvae.prior), np_layers(cvae.decoder)
    noise = np.asarray(jax.random.normal(jax.random.key(1), (n, 4)), np.float64)
    onehot = np.eye(10)[np.asarray(labels)]

    def oracle_cvae():
        hp = oracle.mlp(onehot, prior)
        z = hp[:, :4] + np.exp(0.5 * hp[:, 4:]) * noise  # z ~ p(z | y)
        return 1.0 / (1.0 + np.exp(-oracle.mlp(np.concatenate([z, onehot], 1), dec)))

    t_or = time_host(oracle_cvae, repeats=repeats)
    rows.append(Row("vae", case, "oracle (numpy)", t_or.compile_s, t_or.run_s,
                    {"speedup": t_or.run_s / t.run_s}))

    dae = vae_model.mlp_autoencoder((8, 8, 1), 32, rngs=nnx.Rngs(0), hidden_sizes=(256,))
    clean = jnp.asarray(data.load("digits", split="test")[:n])
    # the digits test split holds 359 images: fewer than n at the full size
    n_test = clean.shape[0]
    noisy = denoising.corrupt(jax.random.key(2), clean, 0.3)
    t = time_jax(denoising.denoise, dae, noisy, repeats=repeats)
    case = f"dae denoise, {n_test} digits"
    rows.append(Row("vae", case, "genjax (jit)", t.compile_s, t.run_s, {}))
    enc_np, dec_np = np_layers(dae.encoder.net), np_layers(dae.decoder.net)
    noisy_np = np.asarray(noisy, np.float64).reshape(n_test, -1)
    t_or = time_host(lambda: oracle.mlp(oracle.mlp(noisy_np, enc_np), dec_np), repeats=repeats)
    rows.append(Row("vae", case, "oracle (numpy)", t_or.compile_s, t_or.run_s,
                    {"speedup": t_or.run_s / t.run_s}))
    steps = 5 if quick else 20
    t = time_jax(denoising.chain_sample, jax.random.key(3), dae, n, noise_level=0.5,
                 num_steps=steps, repeats=repeats)
    rows.append(Row("vae", f"dae chain sample, {steps} steps x {n} digits", "genjax (jit)",
                    t.compile_s, t.run_s, {}))
    return rows


def run(quick: bool = False) -> list[Row]:
    import jax
    import optax
    from flax import nnx

    from genjax import data, vae
    from genjax.vae import oracle

    k = 1000 if quick else 5000
    oracle_k = 20 if quick else 50
    repeats = 3 if quick else 5
    train_x = data.load("digits")
    test_x = data.load("digits", split="test")[:100]
    x_batch = jax.numpy.asarray(train_x[:BATCH])
    model = vae.mlp_vae((8, 8, 1), LATENT, rngs=nnx.Rngs(0), hidden_sizes=HIDDEN)
    opt = optax.adam(1e-3)

    @jax.jit
    def train_step(m, s, key):
        (loss, _), g = jax.value_and_grad(vae.elbo_loss, has_aux=True)(m, x_batch, key)
        u, s = opt.update(g, s, m)
        return optax.apply_updates(m, u), s, loss

    state = opt.init(model)
    t_step = time_jax(train_step, model, state, jax.random.key(1), repeats=repeats * 4)
    rows = [Row("vae", f"train step, batch {BATCH}", "genjax (jit)", t_step.compile_s,
                t_step.run_s, {})]

    # oracle: the ELBO forward of the same batch, float64
    enc_layers = [(np.asarray(lin.kernel[...], np.float64), np.asarray(lin.bias[...], np.float64))
                  for lin in model.encoder.net.layers]
    dec_layers = [(np.asarray(lin.kernel[...], np.float64), np.asarray(lin.bias[...], np.float64))
                  for lin in model.decoder.net.layers]
    xb = np.asarray(x_batch, np.float64)
    rng = np.random.default_rng(0)

    def oracle_elbo():
        h = oracle.mlp(xb.reshape(BATCH, -1), enc_layers)
        eps = rng.normal(size=(BATCH, LATENT))
        return oracle.vae_elbo(xb.reshape(BATCH, -1), h[:, :LATENT], h[:, LATENT:], eps,
                               lambda z: oracle.mlp(z, dec_layers), likelihood="bernoulli")

    t_or = time_host(oracle_elbo, repeats=repeats)
    rows.append(Row("vae", f"train step, batch {BATCH}", "oracle (numpy, ELBO forward only)",
                    t_or.compile_s, t_or.run_s, {"speedup": t_or.run_s / t_step.run_s}))

    iwae = vae.iwae_bound  # compiled at its public boundary (the model traced, k static)
    xt = jax.numpy.asarray(test_x)
    t_iwae = time_jax(iwae, model, xt, jax.random.key(2), k=k, chunk_size=500, repeats=repeats)
    bound = float(iwae(model, xt, jax.random.key(2), k=k, chunk_size=500).mean())
    rows.append(Row("vae", f"iwae-{k} on 100 images", "genjax (jit)", t_iwae.compile_s,
                    t_iwae.run_s, {"mean_bound_nats": bound}))
    xt64 = np.asarray(test_x, np.float64).reshape(100, -1)

    def oracle_iwae():
        h = oracle.mlp(xt64, enc_layers)
        eps = rng.normal(size=(oracle_k, 100, LATENT))
        lw = oracle.vae_log_weights(xt64, h[:, :LATENT], h[:, LATENT:], eps,
                                    lambda z: oracle.mlp(z, dec_layers), likelihood="bernoulli")
        return oracle.iwae_bound(lw)

    t_oi = time_host(oracle_iwae, repeats=max(1, repeats // 2))
    scaled = t_oi.run_s * k / oracle_k
    rows.append(Row("vae", f"iwae-{k} on 100 images", "oracle (numpy)", None, scaled,
                    {"speedup": scaled / t_iwae.run_s, "samples_timed": oracle_k}))
    rows += _conditional_rows(quick)
    try:
        import torch  # noqa: F401
    except ImportError:
        rows.append(Row("vae", "pytorch", "pytorch (absent: pip install torch)", None,
                        float("nan"), {"skipped": True}))
        return rows
    rows += _torch_rows(model, train_x[:BATCH], test_x, k, t_step.run_s, t_iwae.run_s)
    return rows
