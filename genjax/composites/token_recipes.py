"""``genjax train vq-prior | vqgan``: image tokenizers and an autoregressive prior over their codes.

* ``vq-prior`` (van den Oord et al. 2017, sec. 3.3): a :class:`genjax.vae.VQVAE` tokenizer
  (``M = 8`` codes of a 32-code EMA codebook per digit) is trained for ``TOK_STEPS`` steps;
  then, with the tokenizer frozen, a class-conditional
  :class:`~genjax.composites.vq_prior.CodePrior` (a causal transformer with a class prefix
  token, 10% class dropout) is trained on its codes
  (:func:`~genjax.composites.vq_prior.prior_loss`). Sampling runs
  :func:`genjax.autoregressive.generate` through the KV cache and decodes.
* ``vqgan`` (Esser et al. 2021): the same VQ autoencoder trained with a patch discriminator
  (hinge loss, the adaptive weight of eq. 7, switched on after ``DISC_START`` steps) and a
  feature-matching term on the shared digit classifier's features
  (:mod:`genjax.composites.vqgan`); **a plain VQ-VAE of the same architecture, initial
  weights, batches, steps and step-size schedule is trained beside it in the same run**, so
  that the report compares the two reconstructions on equal terms. Both tokenizers' Adam step
  size decays to 0 over the tokenizer phase (cosine), so the report reads two converged end
  points, not wherever a constant step size left them. Then the prior is trained on the
  VQGAN's codes.

Both reports judge images with the shared classifier (:mod:`genjax.digit_classifier`,
seed 0): the fraction of class-conditional samples it reads as the requested class, and the
Fréchet distance of its features to the test images. The VQGAN's perceptual term is trained
on that same classifier's features, so its Fréchet distances are also given under a second,
independently trained classifier (seed 1) that the VQGAN never saw.

Parameters are dicts of Modules and optimiser states (pytrees of arrays); one compiled step
per recipe selects its phase with ``lax.cond`` on the step counter (as ``latent-diffusion``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from genjax import data, vae
from genjax.composites import vq_prior as vp
from genjax.composites import vqgan as vg
from genjax.digit_classifier import digit_classifier, frechet_features
from genjax.recipe import Recipe
from genjax.vae import quantize

NUM_CLASSES = 10
TOK = {"num_latents": 8, "code_dim": 4, "num_codes": 32}  # 8 codes of 32 per digit
HIDDEN = (256, 256)  # the tokenizer's MLP widths
BETA = 0.25  # commitment weight (van den Oord et al. 2017)
DECAY, EPSILON, DEAD = 0.99, 1e-5, 0.03  # EMA codebook (as genjax.vae's vq-vae recipe)
# The code prior's transformer, and its steps: on 1437 training digits (11.5k codes) the
# prior overfits fast. Measured on held-out codes (bits per code, conditional): width 64 x 2
# layers is best at ~200 steps (3.94) and reaches 6.7 at 1600 steps (train 1.1); width
# 32 x 1 layer is best at 400-600 steps (3.83) and 4.2 at 1600. So: the small one, stopped early.
PRIOR = {"dim": 32, "num_heads": 4, "num_layers": 1}
P_UNCOND = 0.1  # class dropout of the prior
TOK_STEPS = 3000  # tokenizer steps; the prior trains for the remaining ones
PRIOR_STEPS = 600
TOTAL_STEPS = TOK_STEPS + PRIOR_STEPS
# w_p: the feature term |phi(x) - phi(x_hat)|^2 is ~20-30 per digit once trained, the pixels'
# |x - x_hat|^2 ~0.6, so w_p = 0.01 keeps the two comparable, as Esser et al. weigh LPIPS
# and the L1 pixel loss equally. At w_p = 0.1 the features took ~80% of L_rec and the test
# MSE rose by a quarter (0.0137 vs the VQ-VAE's 0.0109); at 0.01 it is the VQ-VAE's.
PERCEPTUAL = 0.01
DISC_START = 1000  # the adversarial terms are switched on after this many steps
# Esser et al.'s discriminator weight, a factor on the adaptive lambda (their configs: 0.8).
# With lambda alone (GAN_WEIGHT = 1) the 8x8 critic stayed near chance (hinge loss ~2) while
# lambda ~150 matched its noisy gradient to the reconstruction's, and the reconstructions'
# Frechet distance was 1.9x the VQ-VAE's; at 0.1 the adversarial gradient is a tenth of the
# reconstruction's at the decoder's last layer (in the tokenizer-only loop, the critic alone,
# w_p = 0, gave 2.40 vs 2.74 / 2.11 vs 2.29 at seed 0 with the same MSE).
GAN_WEIGHT = 0.1
DISC_HIDDEN = (64, 64)  # the patch critic: 4x4 patches at stride 2, MLP 16 -> 64 -> 64 -> 1
REPORT_PER_CLASS = 50  # samples per class for the requested-class rates
_OPT = optax.adam(1e-3)
# The two tokenizers of ``vqgan`` (VQGAN and its VQ-VAE) decay Adam's step size from 1e-3 to 0
# over the tokenizer phase (cosine; Loshchilov & Hutter 2017): the report compares the last
# iterates, and at a constant 1e-3 they do not settle. In one run (seed 0) the Frechet
# distance (judge 0) of the test reconstructions read, at steps 2250, 2500, 2750 and 3000,
# 2.18, 2.62, 2.73, 1.96 for the VQ-VAE and 2.47, 2.22, 2.36, 2.47 for the VQGAN: swings
# larger than the difference measured, so the old per-seed comparison (means 2.19 vs 2.11 over
# seeds 0-2) read whichever step the run stopped at. With the decay, VQGAN vs VQ-VAE at steps
# 2000 / 2500 / 3000: seed 0 2.36 / 2.40 / 2.17 vs 2.71 / 2.87 / 2.88; seed 1 2.12 / 1.81 /
# 1.89 vs 3.12 / 2.65 / 2.74; seed 2 2.80 / 2.60 / 2.53 vs 3.08 / 2.79 / 2.60: lower at every
# checkpoint, at a test MSE 5-13% above the VQ-VAE's (the perception-distortion trade-off,
# Blau & Michaeli 2018). Under judge 1 (never trained against) seed 2 ties (2.60 vs 2.59).
# Resolution: resampling the 359 test digits (200 bootstraps, seed 0) gives the difference
# -0.80 with sd 0.35, so seeds 0 and 1 (-0.70, -0.84) are resolved and seed 2 (-0.07) is not.
TOK_LR = 1e-3


def _decaying_adam() -> optax.GradientTransformation:
    """Adam at ``TOK_LR * (1 + cos(pi t / TOK_STEPS)) / 2`` for the ``vqgan`` tokenizers."""
    return optax.adam(optax.cosine_decay_schedule(TOK_LR, TOK_STEPS))


_D_OPT = optax.adam(1e-4, b1=0.5, b2=0.9)  # the usual GAN Adam (Esser et al. use 4.5e-6 x B)


# --------------------------------------------------------------------------------------
# The tokenizer's update (public pieces of genjax.vae.quantize)
# --------------------------------------------------------------------------------------


def init_tokenizer(
    key: jax.Array, images: jax.Array, optimizer: optax.GradientTransformation = _OPT
) -> dict:
    """``{"vq", "vq_opt", "ema"}``: an MLP VQVAE with codes seeded on encoder outputs."""
    vq = vae.VQVAE(tuple(images.shape[1:]), rngs=nnx.Rngs(key), hidden_sizes=HIDDEN, **TOK)
    z_e = vq.encode(jnp.asarray(images[:256])).reshape(-1, TOK["code_dim"])
    pick = jax.random.choice(
        jax.random.fold_in(key, 1), z_e.shape[0], (TOK["num_codes"],), replace=False
    )
    vq.codebook[...] = z_e[pick]  # k-means++-like seeding on data
    return {"vq": vq, "vq_opt": optimizer.init(vq), "ema": quantize.ema_init(z_e[pick])}


def apply_tokenizer_update(
    state: dict,
    grads: Any,
    z_e: jax.Array,
    indices: jax.Array,
    key: jax.Array,
    optimizer: optax.GradientTransformation = _OPT,
) -> tuple[dict, jax.Array]:
    """Adam (``optimizer``, the one ``state["vq_opt"]`` was made by) on the encoder/decoder,
    then the EMA codebook update and dead-code restarts.

    Returns ``(new {"vq", "vq_opt", "ema"}, codebook perplexity of the batch)``.
    """
    vq = state["vq"]
    updates, opt = optimizer.update(grads, state["vq_opt"], vq)
    vq = optax.apply_updates(vq, updates)
    z_e = jax.lax.stop_gradient(z_e)
    ema, codebook = quantize.ema_update(
        state["ema"], vq.codebook[...], z_e, indices, decay=DECAY, epsilon=EPSILON
    )
    ema, codebook, _ = quantize.reset_dead_codes(key, ema, codebook, z_e, threshold=DEAD)
    vq = jax.tree.map(lambda a: a, vq)  # a fresh Module to write the new state into
    vq.codebook[...] = codebook
    use = jnp.sum(jax.nn.one_hot(indices, TOK["num_codes"]), axis=0)  # (M, K)
    vq.code_counts[...] = DECAY * vq.code_counts[...] + (1.0 - DECAY) * use  # indep. prior
    return {"vq": vq, "vq_opt": opt, "ema": ema}, quantize.codebook_perplexity(
        indices, TOK["num_codes"]
    )


def _vqvae_phase(
    state: dict, images: jax.Array, key: jax.Array, optimizer: optax.GradientTransformation = _OPT
) -> tuple[dict, jax.Array]:
    """One VQ-VAE step (eq. 3 with the EMA codebook) on ``state = {"vq", "vq_opt", "ema"}``."""
    grads, m = _vqvae_grads(state["vq"], images)
    new, _ = apply_tokenizer_update(state, grads, m["z_e"], m["indices"], key, optimizer)
    return new, m["loss"]


def _vqvae_grads(vq: vae.VQVAE, images: jax.Array) -> tuple[Any, dict]:
    def objective(m):
        t = quantize.vqvae_terms(m, images)
        return jnp.mean(t["reconstruction"] + BETA * t["commitment"]), t

    (value, t), grads = jax.value_and_grad(objective, has_aux=True)(vq)
    return grads, {"loss": value, "z_e": t["z_e"], "indices": t["indices"]}


def _prior_phase(
    prior: vp.CodePrior, opt_state: Any, vq: vae.VQVAE, batch: tuple, key: jax.Array
) -> tuple[vp.CodePrior, Any, jax.Array]:
    images, labels = batch
    codes = jax.lax.stop_gradient(vp.encode_codes(vq, images))  # (B, M), frozen tokenizer
    (value, _), g = jax.value_and_grad(vp.prior_loss, has_aux=True)(
        prior, (codes, labels), key, p_uncond=P_UNCOND
    )
    u, opt_state = _OPT.update(g, opt_state, prior)
    return optax.apply_updates(prior, u), opt_state, value


def _init_prior(key: jax.Array) -> dict:
    prior = vp.CodePrior(
        TOK["num_codes"], TOK["num_latents"], NUM_CLASSES, rngs=nnx.Rngs(key), **PRIOR
    )
    return {"prior": prior, "prior_opt": _OPT.init(prior)}


def _tokenizer_state(params: dict, prefix: str = "") -> dict:
    return {k: params[prefix + k] for k in ("vq", "vq_opt", "ema")}


# --------------------------------------------------------------------------------------
# vq-prior
# --------------------------------------------------------------------------------------


def vq_prior_init(key: jax.Array, train_data: tuple) -> dict:
    """``{"vq", "vq_opt", "ema", "prior", "prior_opt", "step"}``."""
    images, _ = train_data
    k_tok, k_prior = jax.random.split(key)
    return {
        **init_tokenizer(k_tok, jnp.asarray(images)),
        **_init_prior(k_prior),
        "step": jnp.zeros((), jnp.int32),
    }


def vq_prior_step(params: dict, batch: tuple, key: jax.Array) -> tuple[dict, dict]:
    """The tokenizer's step for ``TOK_STEPS`` steps, then the prior's (tokenizer frozen)."""
    images, _ = batch

    def tokenizer_phase(p):
        new, value = _vqvae_phase(_tokenizer_state(p), images, key)
        return {**p, **new}, value

    def prior_phase(p):
        prior, opt, value = _prior_phase(p["prior"], p["prior_opt"], p["vq"], batch, key)
        return {**p, "prior": prior, "prior_opt": opt}, value

    in_tok = params["step"] < TOK_STEPS
    new, value = jax.lax.cond(in_tok, tokenizer_phase, prior_phase, params)
    new["step"] = params["step"] + 1
    return new, {"loss": value, "tokenizer_phase": in_tok.astype(jnp.float32)}


def token_sample(
    key: jax.Array,
    params: dict,
    n: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> jax.Array:
    """``n`` digits ``(n, 8, 8, 1)``: classes 0, 1, .. 9 in turn, codes from the prior."""
    labels = jnp.arange(int(n), dtype=jnp.int32) % NUM_CLASSES
    x = vp.sample_images(
        key,
        params["vq"],
        params["prior"],
        labels,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
    )
    return jnp.clip(x, 0.0, 1.0)


def _class_independent_samples(
    key: jax.Array, vq: vae.VQVAE, codes: jax.Array, labels: np.ndarray, requested: np.ndarray
) -> jax.Array:
    """Codes drawn independently per position from per-class code frequencies (+1 smoothing)."""
    onehot = jax.nn.one_hot(codes, TOK["num_codes"])  # (n, M, K)
    counts = jnp.stack([jnp.sum(onehot[labels == c], axis=0) for c in range(NUM_CLASSES)])
    log_p = jnp.log(counts + 1.0)  # (C, M, K), unnormalised: Gumbel-max needs no normaliser
    g = jax.random.gumbel(key, (len(requested), *log_p.shape[1:]))
    return vp.decode_codes(vq, jnp.argmax(log_p[requested] + g, axis=-1))


def prior_figures(
    key: jax.Array,
    vq: vae.VQVAE,
    prior: vp.CodePrior,
    train: tuple,
    test: tuple,
    out_dir: Path,
    name: str,
) -> dict:
    """``samples.png`` (one row per class) and the prior's figures (module docstring)."""
    from genjax import plotting

    clf = digit_classifier(0)
    (train_x, _), (test_x, test_y) = train, test
    train_x, test_x = jnp.asarray(train_x), jnp.asarray(test_x)
    test_y = jnp.asarray(test_y, jnp.int32)
    k_grid, k_ar, k_ind, k_cls = jax.random.split(key, 4)
    codes = vp.encode_codes(vq, test_x)  # (n, M)
    train_codes = vp.encode_codes(vq, train_x)
    x_hat = vp.decode_codes(vq, codes)
    roundtrip = vp.encode_codes(vq, jnp.clip(x_hat, 0.0, 1.0))
    m = codes.shape[1]
    lp_cond = vp.code_log_prob(prior, codes, test_y)  # (n,) nats
    lp_uncond = vp.code_log_prob(prior, codes)
    lp_ind = vp.independent_code_log_prob(vq.code_counts[...], codes)
    train_hat = vp.decode_codes(vq, train_codes)
    sigma = jnp.sqrt(jnp.mean((train_x - train_hat) ** 2))  # the decoder's ML std (train set)
    ln2 = float(np.log(2.0))
    requested = np.repeat(np.arange(NUM_CLASSES), REPORT_PER_CLASS)
    req = jnp.asarray(requested, jnp.int32)
    ar = jnp.clip(vp.sample_images(k_ar, vq, prior, req), 0.0, 1.0)
    ind = jnp.clip(vae.sample(k_ind, vq, len(requested)), 0.0, 1.0)  # today's prior
    cls_ind = jnp.clip(
        _class_independent_samples(k_cls, vq, train_codes, np.asarray(train[1]), requested),
        0.0,
        1.0,
    )
    grid = token_sample(k_grid, {"vq": vq, "prior": prior}, 100)  # classes in turn
    grid = grid.reshape(10, NUM_CLASSES, *grid.shape[1:]).transpose(1, 0, 2, 3, 4)
    plotting.image_grid(
        grid.reshape(100, *grid.shape[2:]),
        Path(out_dir) / "samples.png",
        nrow=10,
        title=f"{name}: prior samples, one row per class",
    )
    return {
        "test_mse_per_dim": float(jnp.mean((test_x - x_hat) ** 2)),
        "codes_used_on_test": int(np.unique(np.asarray(codes)).size),
        "code_roundtrip_rate": float(jnp.mean(roundtrip == codes)),
        "prior_bits_per_code_conditional": float(-jnp.mean(lp_cond) / (m * ln2)),
        "prior_bits_per_code_unconditional": float(-jnp.mean(lp_uncond) / (m * ln2)),
        "independent_prior_bits_per_code": float(-jnp.mean(lp_ind) / (m * ln2)),
        "test_bits_per_dim": float(vp.total_bits_per_dim(lp_uncond, test_x, x_hat, sigma)),
        "test_bits_per_dim_independent_prior": float(
            vp.total_bits_per_dim(lp_ind, test_x, x_hat, sigma)
        ),
        "requested_class_rate": clf.accuracy(ar, req),
        "requested_class_rate_independent_prior": clf.accuracy(ind, req),
        "requested_class_rate_class_independent_prior": clf.accuracy(cls_ind, req),
        "frechet_samples_vs_test": frechet_features(clf, ar, test_x),
        "frechet_independent_prior_samples_vs_test": frechet_features(clf, ind, test_x),
        "frechet_reconstructions_vs_test": frechet_features(clf, jnp.clip(x_hat, 0, 1), test_x),
        "classifier_test_accuracy": clf.accuracy(test_x, test_y),
    }


def vq_prior_report(key, params, train_data, test_data, out_dir) -> dict:
    """``samples.png`` and ``reconstructions.png``; figures of :func:`prior_figures`."""
    from genjax import plotting

    x = jnp.asarray(test_data[0][:32])
    rec = jnp.clip(vp.decode_codes(params["vq"], vp.encode_codes(params["vq"], x)), 0.0, 1.0)
    pairs = jnp.stack([x.reshape(4, 8, *x.shape[1:]), rec.reshape(4, 8, *x.shape[1:])], axis=1)
    plotting.image_grid(
        pairs.reshape(64, *x.shape[1:]),
        Path(out_dir) / "reconstructions.png",
        nrow=8,
        title="vq-prior: test images / reconstructions",
    )
    return prior_figures(
        key, params["vq"], params["prior"], train_data, test_data, Path(out_dir), "vq-prior"
    )


# --------------------------------------------------------------------------------------
# vqgan
# --------------------------------------------------------------------------------------


def vqgan_init(key: jax.Array, train_data: tuple) -> dict:
    """VQGAN ``{"vq", "vq_opt", "ema", "disc", "disc_opt"}``, the baseline VQ-VAE ``base_*``
    (same initial weights), the frozen ``classifier``, the prior and the step counter."""
    images = jnp.asarray(train_data[0])
    k_tok, k_disc, k_prior = jax.random.split(key, 3)
    tok = init_tokenizer(k_tok, images, _decaying_adam())
    base = init_tokenizer(k_tok, images, _decaying_adam())  # the same weights, without GAN
    disc = vg.PatchDiscriminator(
        tuple(images.shape[1:]), hidden_sizes=DISC_HIDDEN, rngs=nnx.Rngs(k_disc)
    )
    return {
        **tok,
        **{"base_" + k: v for k, v in base.items()},
        "disc": disc,
        "disc_opt": _D_OPT.init(disc),
        # a copy: the trainer donates its state, the cached judge must survive it
        "classifier": jax.tree.map(jnp.copy, digit_classifier(0)),
        **_init_prior(k_prior),
        "step": jnp.zeros((), jnp.int32),
    }


def vqgan_step(params: dict, batch: tuple, key: jax.Array) -> tuple[dict, dict]:
    """Tokenizer phase: the VQGAN's generator and discriminator steps and the baseline
    VQ-VAE's step; then the prior on the VQGAN's codes."""
    images, _ = batch
    zero = jnp.zeros((), jnp.float32)

    def tokenizer_phase(p):
        disc_on = (p["step"] >= DISC_START).astype(jnp.float32)
        grads, m = vg.generator_gradients(
            p["vq"],
            p["disc"],
            images,
            p["classifier"],
            beta=BETA,
            perceptual_weight=PERCEPTUAL,
            disc_factor=GAN_WEIGHT * disc_on,
        )
        tok, perplexity = apply_tokenizer_update(
            _tokenizer_state(p), grads, m["z_e"], m["indices"], key, _decaying_adam()
        )
        fake = jax.lax.stop_gradient(m["x_hat"])
        d_value, d_grads = jax.value_and_grad(vg.discriminator_loss)(p["disc"], images, fake)
        d_updates, d_opt = _D_OPT.update(
            jax.tree.map(lambda g: disc_on * g, d_grads), p["disc_opt"], p["disc"]
        )
        disc = optax.apply_updates(p["disc"], d_updates)
        base, base_value = _vqvae_phase(
            _tokenizer_state(p, "base_"), images, jax.random.fold_in(key, 1), _decaying_adam()
        )
        new = {
            **p,
            **tok,
            **{"base_" + k: v for k, v in base.items()},
            "disc": disc,
            "disc_opt": d_opt,
        }
        return new, (
            m["loss"],
            m["rec"],
            m["perceptual"],
            m["adaptive_weight"],
            d_value,
            base_value,
            perplexity,
        )

    def prior_phase(p):
        prior, opt, value = _prior_phase(p["prior"], p["prior_opt"], p["vq"], batch, key)
        return {**p, "prior": prior, "prior_opt": opt}, (value, zero, zero, zero, zero, zero, zero)

    in_tok = params["step"] < TOK_STEPS
    new, values = jax.lax.cond(in_tok, tokenizer_phase, prior_phase, params)
    new["step"] = params["step"] + 1
    names = ("loss", "rec", "perceptual", "adaptive_weight", "d_loss", "vqvae_loss", "perplexity")
    metrics = dict(zip(names, values, strict=True))
    metrics["tokenizer_phase"] = in_tok.astype(jnp.float32)
    return new, metrics


def vqgan_report(key, params, train_data, test_data, out_dir) -> dict:
    """``reconstructions.png`` (test images / VQ-VAE / VQGAN), ``samples.png`` of the prior on
    the VQGAN's codes, Fréchet distances of both reconstructions and the prior's figures."""
    from genjax import plotting

    test_x = jnp.asarray(test_data[0])
    recs = {}
    for name, vq in (("vqvae", params["base_vq"]), ("vqgan", params["vq"])):
        recs[name] = jnp.clip(vp.decode_codes(vq, vp.encode_codes(vq, test_x)), 0.0, 1.0)
    rows = [test_x[:40], recs["vqvae"][:40], recs["vqgan"][:40]]  # 4 blocks of 10
    blocks = jnp.stack([r.reshape(4, 10, *test_x.shape[1:]) for r in rows], axis=1)
    plotting.image_grid(
        blocks.reshape(120, *test_x.shape[1:]),
        Path(out_dir) / "reconstructions.png",
        nrow=10,
        title="rows: test images / VQ-VAE / VQGAN (repeated)",
    )
    figures = {}
    for seed in (0, 1):
        clf = digit_classifier(seed)
        for name, rec in recs.items():
            figures[f"frechet_{name}_reconstructions_judge{seed}"] = frechet_features(
                clf, rec, test_x
            )
    for name, rec in recs.items():
        figures[f"{name}_test_mse_per_dim"] = float(jnp.mean((rec - test_x) ** 2))
    prior = prior_figures(
        key, params["vq"], params["prior"], train_data, test_data, Path(out_dir), "vqgan"
    )
    figures.update(
        {
            f"prior_{k}" if not k.startswith(("prior", "requested", "frechet_samples")) else k: v
            for k, v in prior.items()
        }
    )
    return figures


RECIPES: tuple[Recipe, ...] = (
    Recipe(
        name="vq-prior",
        family="composites",
        summary="VQ-VAE tokenizer (8 codes of 32), then a class-prefixed transformer prior "
        "over its codes, sampled with the KV cache (van den Oord et al. 2017)",
        data="digits",
        init=vq_prior_init,
        step=vq_prior_step,
        sample=token_sample,
        report=vq_prior_report,
        steps=TOTAL_STEPS,
        batch_size=128,
        load_data=data.load_with_labels,
        checkpoint_every=600,
        sample_options=("temperature", "top_k", "top_p"),
    ),
    Recipe(
        name="vqgan",
        family="composites",
        summary="VQGAN (Esser et al. 2021): patch discriminator, adaptive weight, classifier "
        "feature matching; a VQ-VAE beside it; the code prior on its tokens",
        data="digits",
        init=vqgan_init,
        step=vqgan_step,
        sample=token_sample,
        report=vqgan_report,
        steps=TOTAL_STEPS,
        batch_size=128,
        load_data=data.load_with_labels,
        checkpoint_every=600,
        sample_options=("temperature", "top_k", "top_p"),
    ),
)
