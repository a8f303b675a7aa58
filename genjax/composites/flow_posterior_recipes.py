"""``genjax train vae-iaf``: the VAE with a diagonal, a planar and an IAF posterior.

Three VAEs on the built-in 8x8 digits, the same MLP encoder/decoder (``HIDDEN``, a 2-D
latent so that the posteriors can be drawn) started from the same weights and trained the
same way — one Adam step of each on the same batch, the sum of their one-sample negative
ELBOs being the recipe's loss (the three parameter sets are disjoint, so each gets exactly
its own gradient):

* ``diag``: ``q(z|x) = N(mu, diag sigma^2)`` (Kingma & Welling 2014; :func:`~genjax.vae.elbo_loss`,
  analytic KL);
* ``planar``: ``q_0`` then ``PLANAR_K`` amortised planar steps (Rezende & Mohamed 2015);
* ``iaf``: ``q_0`` then ``IAF_K`` IAF steps with an ``IAF_CONTEXT``-wide context from the
  encoder's side (Kingma et al. 2016).

The report gives, for each posterior, the held-out one-sample ELBO (mean over the test set
and ``ELBO_DRAWS`` draws), the IWAE bound with ``IWAE_K`` samples on the first
``IWAE_IMAGES`` test images, the ELBO on those images, and ``gap = IWAE - ELBO``: a lower
bound on ``KL(q || p(z|x))`` that a better posterior shrinks (Cremer et al. 2018 call it the
approximation gap). Pictures: ``posteriors.png`` (test digits by rows, posteriors by
columns: contours of each model's own ``log p(x, z)`` with draws of its ``q(z|x)``) and
``samples.png`` (decoded prior samples of the IAF model).

The Bernoulli likelihood on greyscale digits is the continuous cross-entropy, so these
"nats" compare models, not densities of greyscale images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from genjax import gaussian
from genjax.composites.flow_posterior import flow_posterior_sample, mlp_flow_vae
from genjax.composites.flow_posterior_loss import flow_elbo_loss, flow_iwae_bound, flow_log_weights
from genjax.recipe import Recipe
from genjax.vae import loss
from genjax.vae.model import decoder_log_likelihood, mlp_vae
from genjax.vae.sample import sample

HIDDEN = (256, 256)  # the `vae` recipe's networks
LATENT = 2  # drawable posteriors
PLANAR_K = 8  # planar steps (R&M 2015 use up to 80 in 2-D toys; 8 bend a 2-D posterior)
IAF_K = 2  # IAF steps, z's order reversed between them
IAF_CONTEXT = 16  # width of the context h(x)
IAF_HIDDEN = (64, 64)  # MADE widths (>= L)
STEPS = 3000  # as the `vae` recipe: ~2-3 minutes for the three models on two CPU cores
BATCH = 128
IWAE_K = 1000  # importance samples of the held-out IWAE bound
IWAE_IMAGES = 100  # test images it is computed on
IWAE_CHUNK = 250  # samples evaluated at once
ELBO_DRAWS = 10  # draws per test image of the held-out ELBO
PICTURE_DIGITS = 3  # rows of posteriors.png
PICTURE_DRAWS = 400  # draws of q per panel
POSTERIORS = ("diag", "planar", "iaf")


def _image_shape(train_data: Any) -> tuple[int, ...]:
    shape = tuple(np.shape(train_data)[1:])
    if len(shape) != 3:
        raise ValueError(
            f"vae-iaf trains on images (n, H, W, C), got data of shape {np.shape(train_data)}"
        )
    return shape


def init(key: jax.Array, train_data: Any) -> dict:
    """The three models; their VAEs start from the same weights (same key, same order)."""
    shape = _image_shape(train_data)
    return {
        "diag": mlp_vae(shape, LATENT, rngs=nnx.Rngs(key), hidden_sizes=HIDDEN),
        "planar": mlp_flow_vae(
            shape,
            LATENT,
            flow="planar",
            num_flows=PLANAR_K,
            rngs=nnx.Rngs(key),
            hidden_sizes=HIDDEN,
        ),
        "iaf": mlp_flow_vae(
            shape,
            LATENT,
            flow="iaf",
            num_flows=IAF_K,
            rngs=nnx.Rngs(key),
            hidden_sizes=HIDDEN,
            context_dim=IAF_CONTEXT,
            made_hidden=IAF_HIDDEN,
        ),
    }


def objective(params: dict, batch: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
    """Sum of the three negative ELBOs (disjoint parameters: each its own gradient)."""
    k_diag, k_planar, k_iaf = jax.random.split(key, 3)
    l_diag, m_diag = loss.elbo_loss(params["diag"], batch, k_diag)
    l_planar, m_planar = flow_elbo_loss(params["planar"], batch, k_planar)
    l_iaf, m_iaf = flow_elbo_loss(params["iaf"], batch, k_iaf)
    metrics = {
        "elbo_diag": m_diag["elbo"],
        "elbo_planar": m_planar["elbo"],
        "elbo_iaf": m_iaf["elbo"],
        "log_det_iaf": m_iaf["log_det"],
    }
    return l_diag + l_planar + l_iaf, metrics


def recipe_sample(key: jax.Array, params: dict, n: int) -> jax.Array:
    """Decoded prior samples of the IAF-posterior model, ``(n, H, W, C)`` means."""
    return sample(key, params["iaf"].vae, int(n))


# --- report ------------------------------------------------------------------------------------


@jax.jit
def _diag_log_weights(model: Any, x: jax.Array, eps: jax.Array) -> jax.Array:
    return loss.iwae_log_weights(model, x, eps)  # (k, B), the model traced


_flow_log_weights = jax.jit(flow_log_weights)


def _log_weights(name: str, model: Any, x: jax.Array, eps: jax.Array) -> jax.Array:
    return (_diag_log_weights if name == "diag" else _flow_log_weights)(model, x, eps)


def _iwae(name: str, model: Any, x: jax.Array, key: jax.Array) -> jax.Array:
    k = IWAE_K
    chunk = min(IWAE_CHUNK, k) if k % min(IWAE_CHUNK, k) == 0 else k
    bound = loss.iwae_bound if name == "diag" else flow_iwae_bound
    return bound(model, x, key, k=k, chunk_size=chunk)


@jax.jit
def _log_joint(vae: Any, x: jax.Array, z: jax.Array) -> jax.Array:
    """``log p(x, z)`` of one image ``x (1, ...)`` on latents ``z (N, L)``: (N,)."""
    xs = jnp.broadcast_to(x, (z.shape[0], *x.shape[1:]))
    return decoder_log_likelihood(vae, xs, vae.decode(z)) + gaussian.standard_normal_log_prob(z)


@jax.jit
def _diag_draws(vae: Any, x: jax.Array, key: jax.Array) -> jax.Array:
    mu, logvar = vae.encode(x)  # (1, L)
    eps = jax.random.normal(key, (PICTURE_DRAWS, mu.shape[1]), mu.dtype)
    return mu + jnp.exp(0.5 * logvar) * eps  # (N, L)


def _draws(name: str, model: Any, x: jax.Array, key: jax.Array) -> np.ndarray:
    if name == "diag":
        return np.asarray(_diag_draws(model, x, key))
    xs = jnp.broadcast_to(x, (PICTURE_DRAWS, *x.shape[1:]))
    return np.asarray(flow_posterior_sample(key, model, xs)[0])


def _posterior_picture(
    key: jax.Array, params: dict, test: jax.Array, figures: dict, path: Path
) -> None:
    from matplotlib.figure import Figure

    rows = min(PICTURE_DIGITS, len(test))
    fig = Figure(figsize=(3.2 * len(POSTERIORS), 3.0 * rows), dpi=100)
    for r in range(rows):
        x = test[r : r + 1]
        for c, name in enumerate(POSTERIORS):
            model = params[name]
            vae = model if name == "diag" else model.vae
            z = _draws(name, model, x, jax.random.fold_in(key, 10 * r + c))
            centre, half = np.median(z, axis=0), 4.0 * np.std(z, axis=0).max() + 1e-3
            g = np.linspace(-1.0, 1.0, 80) * half
            gx, gy = np.meshgrid(centre[0] + g, centre[1] + g)
            grid = jnp.asarray(np.stack([gx.ravel(), gy.ravel()], axis=1), x.dtype)
            lj = np.asarray(_log_joint(vae, x, grid)).reshape(gx.shape)
            ax = fig.add_subplot(rows, len(POSTERIORS), r * len(POSTERIORS) + c + 1)
            levels = np.max(lj) - np.array([8.0, 4.0, 2.0, 1.0, 0.25])  # increasing
            ax.contour(gx, gy, lj, levels=levels, colors="k", linewidths=0.7, linestyles="solid")
            ax.scatter(z[:, 0], z[:, 1], s=2, c=f"C{c}", alpha=0.5)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"{name}: gap {figures[f'gap_nats_{name}']:.2f} nats", fontsize=9)
    fig.suptitle("vae-iaf: contours of log p(x, z) (own model), draws of q(z|x)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)


def report(key: jax.Array, params: dict, train_data: Any, test_data: Any, out_dir: Path) -> dict:
    """Held-out ELBO, IWAE-k and their gap per posterior; the two pictures."""
    from genjax import plotting

    out_dir = Path(out_dir)
    test = jnp.asarray(test_data)
    subset = test[:IWAE_IMAGES]
    k_elbo, k_iwae, k_pic, k_samples = jax.random.split(key, 4)
    figures: dict[str, float] = {}
    for i, name in enumerate(POSTERIORS):
        model = params[name]
        # log w of ELBO_DRAWS draws per test image: their mean estimates the ELBO
        eps = jax.random.normal(
            jax.random.fold_in(k_elbo, i), (ELBO_DRAWS, *test.shape[:1], LATENT), test.dtype
        )
        log_w = _log_weights(name, model, test, eps)  # (draws, n_test)
        bound = _iwae(name, model, subset, jax.random.fold_in(k_iwae, i))
        elbo_subset = float(jnp.mean(log_w[:, : subset.shape[0]]))
        figures[f"test_elbo_nats_{name}"] = float(jnp.mean(log_w))
        figures[f"test_elbo_nats_first{subset.shape[0]}_{name}"] = elbo_subset
        figures[f"test_iwae{IWAE_K}_nats_first{subset.shape[0]}_{name}"] = float(jnp.mean(bound))
        figures[f"gap_nats_{name}"] = float(jnp.mean(bound)) - elbo_subset
    _posterior_picture(k_pic, params, test, figures, out_dir / "posteriors.png")
    samples = recipe_sample(k_samples, params, 64)
    plotting.image_grid(
        jnp.clip(samples, 0.0, 1.0),
        out_dir / "samples.png",
        nrow=8,
        title="vae-iaf: samples (IAF-posterior model)",
    )
    return figures


RECIPES: tuple[Recipe, ...] = (
    Recipe(
        name="vae-iaf",
        family="composites",
        summary=f"VAE with diagonal vs planar (K={PLANAR_K}) vs IAF (K={IAF_K}) posteriors "
        "(Rezende & Mohamed 2015; Kingma et al. 2016), 2-D latent, digits: ELBO/IWAE gap",
        data="digits",
        init=init,
        sample=recipe_sample,
        report=report,
        loss=objective,
        steps=STEPS,
        batch_size=BATCH,
        learning_rate=1e-3,
    ),
)
