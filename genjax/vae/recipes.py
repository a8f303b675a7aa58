"""The VAE family's entries for ``genjax train``: vae, beta-vae, iwae, vq-vae, hvae, cvae,
dae, dae-ring.

(``latent-diffusion``, a VAE with a diffusion prior, joins two families: it lives in
:mod:`genjax.composites.recipes` and reuses :func:`likelihood_report` from here.)

Every recipe trains on the built-in 8x8 digits (any ``(n, H, W, C)`` images in [0, 1]
work: the networks are MLPs over the flattened image) and writes

* ``samples.png`` — decoder means of prior samples,
* ``reconstructions.png`` — test images (odd rows) above their reconstructions,
* ``interpolations.png`` — decoded straight lines between the latent means of test pairs,
* ``latents.png`` — for 2-D latents (the top layer of the hierarchical VAE), the test
  set's posterior means coloured by digit label (when the test set is the digits one);

and returns held-out figures: ``test_elbo_nats`` (one-sample ELBO, mean over the test
set), ``test_bits_per_dim``, and ``test_iwae5000_nats_first100``: the IWAE bound with
k = 5000 on the **first 100 test images only** (the whole test set at k = 5000 takes
minutes on two CPU cores). The Bernoulli likelihood on greyscale digits is the continuous
cross-entropy, so these "nats" compare models, not densities of greyscale images.

Three more recipes report their own figures:

* ``cvae`` (Sohn et al. 2015; trains on ``(images, labels)``): ``samples.png`` with one row
  per requested class, ``reconstructions.png``, the held-out conditional ELBO, and
  ``sample_class_accuracy``: the fraction of 100 samples per class that the shared digit
  classifier (:mod:`genjax.digit_classifier`) assigns to the requested class (beside its
  accuracy on real test digits). ``genjax sample RUN --prompt seven`` draws one class.
* ``dae`` (Vincent et al. 2008): ``denoising.png`` (clean; noisy / denoised rows per level)
  and the mean squared error per pixel to the clean test digits at sigma = 0.1 ... 0.5, for
  the denoised and for the noisy input, plus the classifier's accuracy on noisy and on
  denoised digits; sampling runs the corrupt-denoise chain (Bengio et al. 2013).
* ``dae-ring``: a DAE on the 2-D ring at sigma = 1 against the exact posterior mean
  ``E[x | x~]`` (Tweedie, ``targets.ring().denoise``): the errors of the DAE, the noisy
  input and the exact denoiser, ``gap_to_exact`` and ``relative_gap`` (the gap over the
  improvement the exact denoiser makes on the noisy input).

The recipes' ``params`` is the model Module itself (a pytree of arrays: the trainer
differentiates it, optax updates it, checkpoints store its leaves); the VQ-VAE's, trained
by its own step, is ``{"model", "opt_state", "ema"}``. Every figure comes from the family's
public functions, which compile once per shape with the model traced.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from genjax import data as data_lib
from genjax.metrics import bits_per_dim
from genjax.recipe import Recipe
from genjax.vae import conditional, hierarchical, loss, model, quantize
from genjax.vae.conditional import cvae_sample
from genjax.vae.denoising import chain_sample, corrupt, dae_loss, denoise, denoising_errors
from genjax.vae.sample import encode_mean, interpolate, reconstruct, sample

IWAE_K = 5000  # importance samples of the held-out IWAE figure (Burda et al. 2016, §5.2)
IWAE_IMAGES = 100  # test images it is computed on (see the module docstring)
IWAE_CHUNK = 500  # samples evaluated at once
HIDDEN = (256, 256)  # MLP widths: enough for 8x8 digits, a few ms per step on a CPU
LATENT = 2  # 2-D latents, so that the latent space can be drawn
BETA = 2.0  # beta-VAE weight; 4 (Higgins et al.) collapses the posterior on 8x8 digits
BETA_LATENT = 8  # beta-VAE latent size: more latents than needed, beta prunes them
IWAE_TRAIN_K = 8  # samples per example of the IWAE training objective
HVAE_LATENTS = (8, 2)  # (L1, L2): a 2-D top layer to draw, an 8-D lower layer
VQ = {"num_latents": 4, "code_dim": 4, "num_codes": 32}  # 4 codes of 32: 32^4 images
VQ_BETA = 0.25  # commitment weight, van den Oord et al. 2017
VQ_DECAY = 0.99  # EMA decay of the codebook statistics (Razavi et al. 2019)
VQ_EPSILON = 1e-5  # Laplace smoothing of the cluster sizes
VQ_DEAD = 0.03  # a code used by < 0.03 vectors per batch on average is restarted


def _image_shape(train_data: Any) -> tuple[int, ...]:
    shape = tuple(np.shape(train_data)[1:])
    if len(shape) != 3:
        raise ValueError(f"VAE recipes train on images (n, H, W, C), got data of shape "
                         f"{np.shape(train_data)}")
    return shape


# --- reports ---------------------------------------------------------------------------------


def _digit_labels(test_data: Any) -> np.ndarray | None:
    """The digit labels of ``test_data`` when it is the built-in digits test split."""
    try:
        ref, labels = data_lib.load_with_labels("digits", "test", 0)
    except Exception:  # noqa: BLE001 - no labels is not an error for a report
        return None
    test = np.asarray(test_data)
    if test.shape != ref.shape or not np.array_equal(test, ref):
        return None
    return np.asarray(labels)


def _latent_picture(z: np.ndarray, labels: np.ndarray, path: Path, title: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    points = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap="tab10", s=8, vmin=-0.5, vmax=9.5)
    fig.colorbar(points, ax=ax, ticks=range(10), label="digit")
    ax.set_title(title)
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    fig.savefig(path)


def _pictures(key: jax.Array, params: Any, test: jax.Array, out_dir: Path, name: str) -> None:
    from genjax import plotting

    out_dir = Path(out_dir)
    samples = sample(key, params, 64)
    plotting.image_grid(jnp.clip(samples, 0.0, 1.0), out_dir / "samples.png", nrow=8,
                        title=f"{name}: samples")
    x = test[:32]
    rec = reconstruct(params, x)
    # rows of 8: originals, then their reconstructions
    pairs = jnp.stack([x.reshape(4, 8, *x.shape[1:]), rec.reshape(4, 8, *x.shape[1:])], axis=1)
    plotting.image_grid(jnp.clip(pairs.reshape(64, *x.shape[1:]), 0.0, 1.0),
                        out_dir / "reconstructions.png", nrow=8,
                        title=f"{name}: test images / reconstructions")
    lines = interpolate(params, test[:8], test[8:16], num=10)  # (8, 10, H, W, C)
    plotting.image_grid(jnp.clip(lines.reshape(80, *x.shape[1:]), 0.0, 1.0),
                        out_dir / "interpolations.png", nrow=10,
                        title=f"{name}: latent interpolations")
    z = np.asarray(encode_mean(params, test))
    labels = _digit_labels(test)
    if z.shape[1] == 2 and labels is not None:
        _latent_picture(z, labels, out_dir / "latents.png", f"{name}: posterior means, test set")


def likelihood_report(key: jax.Array, params: Any, train: jax.Array, test: jax.Array,
                      out_dir: Path, name: str) -> dict:
    """The pictures of :func:`_pictures` and the held-out ELBO and IWAE figures of a VAE."""
    iwae_k, iwae_images = IWAE_K, IWAE_IMAGES  # read at call time (tests shrink them)
    k_pic, k_elbo, k_train, k_iwae = jax.random.split(key, 4)
    _pictures(k_pic, params, test, out_dir, name)
    elbo_metrics = jax.jit(lambda m, x, k: loss.elbo_loss(m, x, k)[1])  # the model traced
    m = elbo_metrics(params, test, k_elbo)
    m_train = elbo_metrics(params, train, k_train)
    subset = test[:iwae_images]
    chunk = min(IWAE_CHUNK, iwae_k) if iwae_k % min(IWAE_CHUNK, iwae_k) == 0 else iwae_k
    bound = loss.iwae_bound(params, subset, k_iwae, k=iwae_k, chunk_size=chunk)
    return {
        "test_elbo_nats": float(m["elbo"]),
        "test_bits_per_dim": float(m["bits_per_dim"]),
        "test_kl_nats": float(m["kl"]),
        "train_elbo_nats": float(m_train["elbo"]),
        f"test_iwae{iwae_k}_nats_first{len(subset)}": float(jnp.mean(bound)),
        f"test_iwae{iwae_k}_bits_per_dim_first{len(subset)}":
            float(bits_per_dim(-jnp.mean(bound), int(np.prod(test.shape[1:])))),
    }


# --- vae, beta-vae, iwae, hvae ------------------------------------------------------------------


def init_vae(key: jax.Array, train_data: Any, *, latent: int = LATENT) -> model.VAE:
    """An MLP VAE with ``HIDDEN`` layers and a ``latent``-D latent for the training images."""
    return model.mlp_vae(_image_shape(train_data), latent, rngs=nnx.Rngs(key),
                         hidden_sizes=HIDDEN)


def _init_hvae(key: jax.Array, train_data: Any) -> hierarchical.HierarchicalVAE:
    return hierarchical.HierarchicalVAE(_image_shape(train_data), HVAE_LATENTS,
                                        rngs=nnx.Rngs(key), hidden=256)


def _sample(key: jax.Array, params: Any, n: int) -> jax.Array:
    if isinstance(params, dict):  # the VQ-VAE's training state
        params = params["model"]
    return sample(key, params, n)


def _report(name: str):
    def report(key, params, train_data, test_data, out_dir) -> dict:
        return likelihood_report(key, params, train_data, test_data, Path(out_dir), name)

    return report


# --- vq-vae: its own step (gradient for encoder/decoder, EMA for the codebook) ----------------

_VQ_OPT = optax.adam(1e-3)


def _init_vq(key: jax.Array, train_data: Any) -> dict:
    vq = quantize.VQVAE(_image_shape(train_data), rngs=nnx.Rngs(key), hidden_sizes=HIDDEN, **VQ)
    # start the codes on encoder outputs, as k-means++ would seed them from data
    z_e = vq.encode(jnp.asarray(train_data[:256])).reshape(-1, VQ["code_dim"])
    pick = jax.random.choice(jax.random.fold_in(key, 1), z_e.shape[0], (VQ["num_codes"],),
                             replace=False)
    vq.codebook[...] = z_e[pick]
    return {"model": vq, "opt_state": _VQ_OPT.init(vq), "ema": quantize.ema_init(z_e[pick])}


def _vq_step(params: dict, batch: jax.Array, key: jax.Array) -> tuple[dict, dict]:
    vq = params["model"]

    def objective(m: quantize.VQVAE):
        t = quantize.vqvae_terms(m, batch)
        return jnp.mean(t["reconstruction"] + VQ_BETA * t["commitment"]), t

    (value, t), grads = jax.value_and_grad(objective, has_aux=True)(vq)
    updates, opt_state = _VQ_OPT.update(grads, params["opt_state"], vq)
    vq = optax.apply_updates(vq, updates)
    z_e = jax.lax.stop_gradient(t["z_e"])
    ema, codebook = quantize.ema_update(params["ema"], vq.codebook[...], z_e, t["indices"],
                                        decay=VQ_DECAY, epsilon=VQ_EPSILON)
    ema, codebook, num_reset = quantize.reset_dead_codes(key, ema, codebook, z_e,
                                                         threshold=VQ_DEAD)
    vq = jax.tree.map(lambda a: a, vq)  # a fresh Module to write the new state into
    vq.codebook[...] = codebook
    use = jnp.sum(jax.nn.one_hot(t["indices"], VQ["num_codes"]), axis=0)  # (M, K) this batch
    vq.code_counts[...] = VQ_DECAY * vq.code_counts[...] + (1.0 - VQ_DECAY) * use
    metrics = {"loss": value, "reconstruction": jnp.mean(t["reconstruction"]),
               "commitment": jnp.mean(t["commitment"]),
               "perplexity": quantize.codebook_perplexity(t["indices"], VQ["num_codes"]),
               "codes_reset": num_reset.astype(jnp.float32)}
    return {"model": vq, "opt_state": opt_state, "ema": ema}, metrics


def _vq_report(key, params, train_data, test_data, out_dir) -> dict:
    vq = params["model"]
    _pictures(key, vq, test_data, Path(out_dir), "vq-vae")
    t = jax.jit(quantize.vqvae_terms)(vq, test_data)  # the model traced
    n_dims = int(np.prod(test_data.shape[1:]))
    return {
        "test_mse_per_dim": float(jnp.mean(t["reconstruction"]) / n_dims),
        "test_codebook_perplexity": float(quantize.codebook_perplexity(t["indices"],
                                                                       vq.num_codes)),
        "codes_used_on_test": int(np.unique(np.asarray(t["indices"])).size),
        "num_codes": vq.num_codes,
    }


def _loss_recipe(name: str, summary: str, init: Any, objective: Any) -> Recipe:
    """A VAE recipe trained by the trainer's Adam on ``objective`` (3000 steps of 128)."""
    return Recipe(name=name, family="vae", summary=summary, data="digits", init=init,
                  sample=_sample, report=_report(name), loss=objective, steps=3000,
                  batch_size=128, learning_rate=1e-3)


# --- cvae: label-conditional VAE (Sohn et al. 2015) ----------------------------------------

CVAE_LATENT = 4  # style latent; the class enters every network as a one-hot vector
CVAE_PER_CLASS = 100  # samples per class judged by the shared digit classifier
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _cvae_init(key: jax.Array, train_data: Any) -> conditional.ConditionalVAE:
    images, labels = train_data
    return conditional.mlp_cvae(_image_shape(images), int(np.max(labels)) + 1, CVAE_LATENT,
                                rngs=nnx.Rngs(key), hidden_sizes=HIDDEN)


def _prompt_label(prompt: str, num_classes: int) -> int:
    """``"7"``, ``"seven"`` or ``"a handwritten seven"`` -> 7."""
    words = prompt.lower().replace(",", " ").split()
    for word in words:
        if word.isdigit() and int(word) < num_classes:
            return int(word)
        if word in DIGIT_WORDS[:num_classes]:
            return DIGIT_WORDS.index(word)
    raise ValueError(f"prompt must name a class in [0, {num_classes}) as a digit or a word "
                     f"('3', 'three'), got {prompt!r}")


def cvae_recipe_sample(key: jax.Array, params: conditional.ConditionalVAE, n: int, *,
                       prompt: str | None = None) -> jax.Array:
    """``n`` samples: classes 0, 1, 2, ... in turn, or all of the class ``prompt`` names."""
    n = int(n)
    if prompt is None:
        labels = np.arange(n) % params.num_classes
    else:
        labels = np.full(n, _prompt_label(str(prompt), params.num_classes))
    return cvae_sample(key, params, jnp.asarray(labels, jnp.int32))


def _cvae_report(key, params, train_data, test_data, out_dir) -> dict:
    from genjax import plotting
    from genjax.digit_classifier import digit_classifier

    (train_x, train_y), (test_x, test_y) = train_data, test_data
    k_grid, k_judge, k_elbo, k_train = jax.random.split(key, 4)
    c = params.num_classes
    grid = cvae_sample(k_grid, params, jnp.repeat(jnp.arange(c, dtype=jnp.int32), 10))
    plotting.image_grid(jnp.clip(grid, 0.0, 1.0), Path(out_dir) / "samples.png", nrow=10,
                        title="cvae: one row per requested class")
    x = jnp.asarray(test_x[:32])
    rec = conditional.cvae_reconstruct(params, x, jnp.asarray(test_y[:32], jnp.int32))
    pairs = jnp.stack([x.reshape(4, 8, *x.shape[1:]), rec.reshape(4, 8, *x.shape[1:])], axis=1)
    plotting.image_grid(jnp.clip(pairs.reshape(64, *x.shape[1:]), 0.0, 1.0),
                        Path(out_dir) / "reconstructions.png", nrow=8,
                        title="cvae: test images / reconstructions")
    elbo = jax.jit(lambda m, b, k: conditional.cvae_loss(m, b, k)[1])  # the model traced
    m_test = elbo(params, (jnp.asarray(test_x), jnp.asarray(test_y, jnp.int32)), k_elbo)
    m_train = elbo(params, (jnp.asarray(train_x), jnp.asarray(train_y, jnp.int32)), k_train)
    out = {"test_elbo_nats": float(m_test["elbo"]), "test_kl_nats": float(m_test["kl"]),
           "test_bits_per_dim": float(m_test["bits_per_dim"]),
           "train_elbo_nats": float(m_train["elbo"])}
    if tuple(np.shape(test_x)[1:]) == (8, 8, 1) and c == 10:  # the digits: the shared judge
        clf = digit_classifier()
        labels = jnp.repeat(jnp.arange(c, dtype=jnp.int32), CVAE_PER_CLASS)
        samples = cvae_sample(k_judge, params, labels)
        out["sample_class_accuracy"] = clf.accuracy(samples, labels)
        out["classifier_test_accuracy"] = clf.accuracy(test_x, test_y)
    return out


# --- dae: denoising autoencoder (Vincent et al. 2008) --------------------------------------

DAE_LATENT = 32  # code size of the digits DAE (64 pixels: a bottleneck of half)
DAE_MAX_SIGMA = 0.5  # training levels sigma ~ U[0, 0.5] (pixels in [0, 1])
DAE_REPORT_SIGMAS = (0.1, 0.2, 0.3, 0.5)
RING_SIGMA = 1.0  # the ring DAE's one level: modes 3.1 apart, std 0.3, overlap at sigma = 1
RING_LATENT = 8  # overcomplete (data 2-D): the corruption, not a bottleneck, stops copying
RING_HIDDEN = (64, 64)
DAE_CHAIN_STEPS = 20  # corrupt-denoise steps of the sampler


def _dae_init(key: jax.Array, train_data: Any) -> model.Autoencoder:
    return model.mlp_autoencoder(_image_shape(train_data), DAE_LATENT, rngs=nnx.Rngs(key),
                                 hidden_sizes=(256,))


def _dae_ring_init(key: jax.Array, train_data: Any) -> model.Autoencoder:
    return model.mlp_autoencoder(tuple(np.shape(train_data)[1:]), RING_LATENT,
                                 rngs=nnx.Rngs(key), hidden_sizes=RING_HIDDEN)


def dae_recipe_sample(key: jax.Array, params: model.Autoencoder, n: int, *,
                      steps: int | None = None) -> jax.Array:
    """The corrupt-denoise chain (Bengio et al. 2013) at the largest training level, from 0."""
    return chain_sample(key, params, n, noise_level=DAE_MAX_SIGMA,
                        num_steps=DAE_CHAIN_STEPS if steps is None else steps)


def dae_ring_sample(key: jax.Array, params: model.Autoencoder, n: int, *,
                    steps: int | None = None) -> jax.Array:
    """The corrupt-denoise chain at the ring DAE's level, from 0."""
    return chain_sample(key, params, n, noise_level=RING_SIGMA,
                        num_steps=DAE_CHAIN_STEPS if steps is None else steps)


def _dae_report(key, params, train_data, test_data, out_dir) -> dict:
    from genjax import plotting
    from genjax.digit_classifier import digit_classifier

    k_err, k_pic = jax.random.split(key)
    test = jnp.asarray(test_data)
    errors = denoising_errors(k_err, params, test, jnp.asarray(DAE_REPORT_SIGMAS))
    out = {}
    for j, s in enumerate(DAE_REPORT_SIGMAS):
        out[f"test_mse_denoised_sigma_{s:g}"] = float(errors["denoised"][j])
        out[f"test_mse_noisy_sigma_{s:g}"] = float(errors["noisy"][j])
    rows = [test[:10]]
    for s in DAE_REPORT_SIGMAS:
        noisy = corrupt(k_pic, test[:10], s)
        rows += [noisy, denoise(params, noisy)]
    plotting.image_grid(jnp.clip(jnp.concatenate(rows), 0.0, 1.0), Path(out_dir) / "denoising.png",
                        nrow=10, title=f"dae: clean; noisy/denoised, sigma "
                        f"{DAE_REPORT_SIGMAS[0]:g}-{DAE_REPORT_SIGMAS[-1]:g}")
    labels = _digit_labels(test_data)
    if labels is not None:  # how much of the digit survives: the shared classifier's accuracy
        clf, s = digit_classifier(), DAE_MAX_SIGMA
        noisy = corrupt(k_pic, test, s)
        out[f"classifier_accuracy_noisy_sigma_{s:g}"] = clf.accuracy(jnp.clip(noisy, 0, 1), labels)
        out[f"classifier_accuracy_denoised_sigma_{s:g}"] = clf.accuracy(
            jnp.clip(denoise(params, noisy), 0, 1), labels)
        out["classifier_accuracy_clean"] = clf.accuracy(test, labels)
    return out


def _dae_ring_report(key, params, train_data, test_data, out_dir) -> dict:
    from matplotlib.figure import Figure

    from genjax import targets

    test = jnp.asarray(test_data)
    noisy = corrupt(key, test, RING_SIGMA)
    dae = denoise(params, noisy)

    def mse(a):  # per dimension, to the clean points
        return float(jnp.mean(jnp.square(test - a)))

    out = {"test_mse_denoised": mse(dae), "test_mse_noisy": mse(noisy), "sigma": RING_SIGMA}
    fig = Figure(figsize=(5, 5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(*np.asarray(noisy[:2000]).T, s=2, c="0.7", label="noisy")
    ax.scatter(*np.asarray(dae[:2000]).T, s=2, c="C0", label="DAE")
    if _is_builtin_ring(test_data):
        # the built-in ring is targets.ring(): its exact denoiser E[x | x~] (Tweedie)
        exact = targets.ring().denoise(noisy, 1.0, RING_SIGMA)
        out["test_mse_exact_posterior_mean"] = mse(exact)
        out["gap_to_exact"] = out["test_mse_denoised"] - out["test_mse_exact_posterior_mean"]
        # fraction of the possible improvement over the noisy input not achieved
        out["relative_gap"] = out["gap_to_exact"] / (out["test_mse_noisy"]
                                                     - out["test_mse_exact_posterior_mean"])
        ax.scatter(*np.asarray(exact[:2000]).T, s=2, c="C3", label="exact E[x | x~]")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=4)
    ax.set_title(f"dae-ring: sigma = {RING_SIGMA:g}")
    fig.savefig(Path(out_dir) / "denoising.png")
    return out


def _is_builtin_ring(points: Any) -> bool:
    """Whether ``points`` is a split of the built-in ring (whose law is ``targets.ring()``)."""
    points = np.asarray(points)
    for split in ("test", "train"):
        ring = data_lib.load("ring", split=split)
        if ring.shape == points.shape and np.array_equal(ring, points):
            return True
    return False


RECIPES: tuple[Recipe, ...] = (
    _loss_recipe("vae", "VAE (Kingma & Welling 2014), 2-D latent, Bernoulli decoder, on 8x8 "
                 "digits", init_vae, loss.elbo_loss),
    _loss_recipe("beta-vae", f"beta-VAE (Higgins et al. 2017), beta={BETA}, {BETA_LATENT}-D "
                 "latent, digits", functools.partial(init_vae, latent=BETA_LATENT),
                 functools.partial(loss.elbo_loss, beta=BETA)),
    _loss_recipe("iwae", f"IWAE (Burda et al. 2016), k={IWAE_TRAIN_K}, DReG gradient, 2-D "
                 "latent, digits", init_vae,
                 functools.partial(loss.iwae_loss, k=IWAE_TRAIN_K, estimator="dreg")),
    Recipe(name="vq-vae", family="vae",
           summary="VQ-VAE (van den Oord et al. 2017), EMA codebook of 32, 4 codes per digit",
           data="digits", init=_init_vq, sample=_sample, report=_vq_report, step=_vq_step,
           steps=3000, batch_size=128),
    _loss_recipe("hvae", "two-level ladder VAE (Sønderby et al. 2016), latents 8 and 2, digits",
                 _init_hvae, loss.elbo_loss),
    Recipe(name="cvae", family="vae",
           summary=f"conditional VAE (Sohn et al. 2015), label in encoder/decoder/prior, "
           f"{CVAE_LATENT}-D latent, digits: --prompt 7", data="digits", init=_cvae_init,
           loss=conditional.cvae_loss, sample=cvae_recipe_sample, report=_cvae_report,
           steps=3000, batch_size=128, learning_rate=1e-3, load_data=data_lib.load_with_labels,
           sample_options=("prompt",)),
    Recipe(name="dae", family="vae",
           summary=f"denoising autoencoder (Vincent et al. 2008), Gaussian noise sigma in "
           f"[0, {DAE_MAX_SIGMA:g}], digits", data="digits", init=_dae_init,
           loss=functools.partial(dae_loss, noise_level=0.0, max_noise_level=DAE_MAX_SIGMA),
           sample=dae_recipe_sample, report=_dae_report, steps=3000, batch_size=128,
           learning_rate=1e-3, sample_options=("steps",)),
    Recipe(name="dae-ring", family="vae",
           summary=f"denoising autoencoder on the ring at sigma={RING_SIGMA:g}, against the "
           "exact posterior-mean (Tweedie) denoiser", data="ring", init=_dae_ring_init,
           loss=functools.partial(dae_loss, noise_level=RING_SIGMA), sample=dae_ring_sample,
           report=_dae_ring_report, steps=2000, batch_size=256,
           optimizer=lambda total: optax.adam(optax.cosine_decay_schedule(3e-3, total)),
           sample_options=("steps",)),
)
