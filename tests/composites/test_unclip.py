"""The unCLIP cascade: the exact prior of Gaussian class embeddings, a trained prior held to
it, the cascade against the NumPy oracle on shared noise, and bad arguments."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from genjax import diffusion
from genjax.composites import oracle_unclip as oracle
from genjax.composites import unclip
from genjax.model import model_jit
from genjax.targets import GaussianMixture
from genjax.testing import moment_ztest

E = 4  # embedding size of the synthetic problem
# Ho et al.'s linear schedule (alpha_bar_{T-1} ~ 4e-5: x_{T-1} is N(0, I) to the precision
# the moment tests see). Deterministic DDIM is a first-order ODE solver and shrinks variances:
# on N(0, v) with the exact eps (oracle_unclip.ddim, float64) the sample variance is 0.77 v
# (v = 0.05) / 0.92 v (v = 1) after 50 steps, 0.87 v / 0.96 v after 100, 0.98 v / 0.99 v
# after 1000. So variances are tested after 1000 steps only; the means at 100.
PRIOR_SCHEDULE = diffusion.schedules.linear(1000)
# Three classes of image embeddings z | c ~ N(mu_c, Sigma_c); class c's "text embedding" is
# 2 e_c (any three distinct vectors: the prior only has to tell them apart); null = zeros.
MEANS = np.array([[1.5, 0.0, -0.5, 0.0], [-1.0, 1.0, 0.0, 0.5], [0.0, -1.5, 1.0, -0.5]])
_A = np.random.default_rng(0).normal(size=(3, E, E))
COVS = 0.1 * np.einsum("kij,klj->kil", _A, _A) + 0.05 * np.eye(E)  # SPD, correlated
TEXTS = 2.0 * np.eye(3, E)  # (3, E)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ExactPrior:
    """``prior(z_t, t, text) = E[eps | z_t, c(text)]``: the closed form of each class (the
    class read off the text embedding), the marginal mixture for the null (zero) text."""

    laws: tuple  # 3 one-component GaussianMixtures, then the marginal
    texts: jax.Array  # (3, E)
    schedule: diffusion.Schedule

    def __call__(self, z_t, t, text):
        alpha, sigma = self.schedule.alpha(t), self.schedule.sigma(t)  # (B,)
        every = jnp.stack([law.eps(z_t, alpha, sigma) for law in self.laws])  # (4, B, E)
        is_null = jnp.all(text == 0, axis=-1)  # (B,)
        label = jnp.where(is_null, 3, jnp.argmax(text @ self.texts.T, axis=-1))  # (B,)
        return jnp.take_along_axis(every, label[None, :, None], axis=0)[0]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Perturbed:
    """``factor * model(...) + shift``; a pytree, so every factor reuses one program."""

    model: ExactPrior
    factor: jax.Array
    shift: jax.Array

    def __call__(self, z_t, t, text):
        return self.factor * self.model(z_t, t, text) + self.shift


run = model_jit(lambda model, z_t, t, text: model(z_t, t, text))


@pytest.fixture(scope="module")
def exact():
    laws = [GaussianMixture.create([1.0], MEANS[c : c + 1], COVS[c : c + 1]) for c in range(3)]
    laws.append(GaussianMixture.create(np.full(3, 1 / 3), MEANS, COVS))
    return ExactPrior(tuple(laws), jnp.asarray(TEXTS, jnp.float32), PRIOR_SCHEDULE)


def _pairs(key, n):
    """``(z_image (n, E), z_text (n, E), labels (n,))`` from the synthetic classes."""
    k_c, k_z = jax.random.split(key)
    labels = jax.random.randint(k_c, (n,), 0, 3)
    chol = jnp.asarray(np.linalg.cholesky(COVS), jnp.float32)  # (3, E, E)
    noise = jax.random.normal(k_z, (n, E))
    z = jnp.asarray(MEANS, jnp.float32)[labels] + jnp.einsum("nij,nj->ni", chol[labels], noise)
    return z, jnp.asarray(TEXTS, jnp.float32)[labels], labels


def test_closed_form_prior_eps_matches_the_oracle(exact):
    # genjax.targets' eps of each class (float32) against sigma C^{-1} (z_t - alpha mu) in
    # float64, at three noise levels; the ExactPrior routes each text to its class.
    z_t = np.random.default_rng(1).normal(size=(6, E))
    for t in (50, 500, 950):
        alpha, sigma = float(PRIOR_SCHEDULE.alpha(t)), float(PRIOR_SCHEDULE.sigma(t))
        for c in range(3):
            want = oracle.gaussian_class_eps(MEANS[c], COVS[c], z_t, alpha, sigma)
            got = run(exact, jnp.asarray(z_t, jnp.float32), jnp.full((6,), t),
                      jnp.broadcast_to(jnp.asarray(TEXTS[c], jnp.float32), (6, E)))
            # float32 solve of a well-conditioned 4x4 system: ~1e-6 relative
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_closed_form_prior_minimises_the_prior_loss(exact):
    # The loss's minimiser is E[eps | z_t, c]: any perturbation of it scores worse on the
    # same (t, eps) draws (by E|delta|^2 up to a zero-mean cross term, far smaller here).
    z, text, _ = _pairs(jax.random.key(0), 2048)
    key = jax.random.key(1)

    def loss(factor, shift):
        model = Perturbed(exact, jnp.float32(factor), jnp.float32(shift))
        return float(unclip.prior_loss(model, (z, text), key, schedule=PRIOR_SCHEDULE)[0])

    best = loss(1.0, 0.0)
    for factor, shift in ((1.1, 0.0), (0.9, 0.0), (1.0, 0.05)):
        assert loss(factor, shift) > best


def _class_samples(key, prior, n_per_class, scale=1.0, steps=100):
    text = jnp.repeat(jnp.asarray(TEXTS, jnp.float32), n_per_class, axis=0)  # (3n, E)
    z = unclip.sample_embeddings(key, prior, text, PRIOR_SCHEDULE, num_steps=steps, scale=scale)
    return np.asarray(z).reshape(3, n_per_class, E)


def test_exact_prior_samples_have_the_class_moments(exact):
    # Guided DDIM at scale 1 on the closed-form eps draws from the class laws (1000 steps:
    # the variance bias, 2% at most, is ~0.5 sd of the 1000-sample variance test).
    z = _class_samples(jax.random.key(2), exact, 1000, steps=1000)
    for c in range(3):
        moment_ztest(z[c], MEANS[c], COVS[c], check_variance=True)


STEPS = 1500  # training steps of the prior below (batch 128)


@pytest.fixture(scope="module")
def trained():
    """An :class:`EmbeddingPrior` trained on the synthetic pairs (10% null text)."""
    prior = unclip.EmbeddingPrior(E, (128, 128), time_embed_dim=32, rngs=nnx.Rngs(0))
    opt = optax.adam(optax.cosine_decay_schedule(3e-3, STEPS))
    graph, params = nnx.split(prior)

    def loss_fn(p, key):
        k_data, k_drop, k_loss = jax.random.split(key, 3)
        z, text, _ = _pairs(k_data, 128)
        text = unclip.embedding_dropout(k_drop, text, 0.1)
        return unclip.prior_loss(nnx.merge(graph, p), (z, text), k_loss,
                                 schedule=PRIOR_SCHEDULE)[0]

    @jax.jit
    def train(p, key):
        def step(carry, k):
            p, s = carry
            g = jax.grad(loss_fn)(p, k)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        (p, _), _ = jax.lax.scan(step, (p, opt.init(p)), jax.random.split(key, STEPS))
        return p

    return nnx.merge(graph, train(params, jax.random.key(3)))


def test_trained_prior_approaches_the_closed_form(exact, trained):
    # Relative squared error of the learned eps against the exact one on fresh noisy pairs,
    # and class moments of its samples (means; 300 per class: a bias under ~0.25 sd passes).
    z, text, _ = _pairs(jax.random.key(4), 2048)
    t = jax.random.randint(jax.random.key(5), (2048,), 0, 1000)
    noise = jax.random.normal(jax.random.key(6), z.shape)
    z_t = PRIOR_SCHEDULE.alpha(t)[:, None] * z + PRIOR_SCHEDULE.sigma(t)[:, None] * noise
    want, got = exact(z_t, t, text), trained(z_t, t, text)
    rel = float(jnp.mean((got - want) ** 2) / jnp.mean(want**2))
    assert rel < 0.05, rel  # observed: see the report
    samples = _class_samples(jax.random.key(7), trained, 300)
    for c in range(3):
        moment_ztest(samples[c], MEANS[c], COVS[c])


# ---- the cascade against the oracle ----------------------------------------------------

P_Z = np.random.default_rng(2).normal(scale=0.3, size=(E, E))
P_T = np.random.default_rng(3).normal(scale=0.3, size=(E, E))


def _prior_np(z, t, text):
    return z @ P_Z + text @ P_T + 1e-3 * t[:, None]


def _prior_jax(z, t, text):
    return z @ jnp.asarray(P_Z, z.dtype) + text @ jnp.asarray(P_T, z.dtype) + 1e-3 * t[:, None]


def _decoder_np(x, t, emb):
    return 0.4 * x + 0.1 * np.tanh(emb.mean(axis=1))[:, None, None, None] + 1e-4 * t[:, None,
                                                                                      None, None]


def _decoder_jax(x, t, *, context):
    shift = 0.1 * jnp.tanh(context[:, 0, :].mean(axis=1))[:, None, None, None]
    return 0.4 * x + shift + 1e-4 * t[:, None, None, None]


def test_cascade_matches_the_oracle_on_shared_noise():
    rng = np.random.default_rng(4)
    text = rng.normal(size=(3, E))
    negative = rng.normal(size=(3, E))
    z_T, x_T = rng.normal(size=(3, E)), rng.normal(size=(3, 4, 4, 1))
    dec_schedule = diffusion.schedules.cosine(60)
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    alpha_bars = (np.asarray(PRIOR_SCHEDULE.alpha_bars, np.float64),
                  np.asarray(dec_schedule.alpha_bars, np.float64))
    # the noise twin with a negative prompt
    images, z = unclip.sample_from_noise(
        _prior_jax, _decoder_jax, f32(text), f32(z_T), f32(x_T), PRIOR_SCHEDULE, dec_schedule,
        prior_steps=10, decoder_steps=6, prior_scale=3.0, decoder_scale=2.0,
        negative_text=f32(negative))
    want_images, want_z = oracle.unclip_from_noise(_prior_np, _decoder_np, text, negative, z_T,
                                                   x_T, *alpha_bars, 10, 6, 3.0, 2.0)
    # float32 through 16 steps of linear maps (the schedules' float32 alpha_bars are the
    # oracle's too): ~1e-5 relative
    np.testing.assert_allclose(z, want_z, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(images, want_images, rtol=1e-4, atol=1e-4)
    # the random-key sampler, null negative: z_T, x_T from split(key), the oracle on them
    key = jax.random.key(9)
    k_z, k_x = jax.random.split(key)
    images, z = unclip.sample(key, _prior_jax, _decoder_jax, f32(text), (4, 4, 1),
                              PRIOR_SCHEDULE, dec_schedule, prior_steps=10, decoder_steps=6,
                              prior_scale=3.0, decoder_scale=2.0)
    want_images, want_null_z = oracle.unclip_from_noise(
        _prior_np, _decoder_np, text, np.zeros_like(text),
        np.asarray(jax.random.normal(k_z, (3, E))),
        np.asarray(jax.random.normal(k_x, (3, 4, 4, 1))), *alpha_bars, 10, 6, 3.0, 2.0)
    np.testing.assert_allclose(z, want_null_z, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(images, want_images, rtol=1e-4, atol=1e-4)
    # the negative prompt matters (same oracle, null instead of negative, moves z)
    null_z = oracle.unclip_from_noise(_prior_np, _decoder_np, text, np.zeros_like(text), z_T, x_T,
                                      *alpha_bars, 10, 6, 3.0, 2.0)[1]
    assert float(np.abs(want_z - null_z).max()) > 1e-2
    # extreme but valid: guidance 1e4 in both stages (the same compiled program: scales are
    # traced) stays finite; the embeddings stay on the sphere, the images in the clip range
    images, z = unclip.sample(key, _prior_jax, _decoder_jax, f32(text), (4, 4, 1),
                              PRIOR_SCHEDULE, dec_schedule, prior_steps=10, decoder_steps=6,
                              prior_scale=1e4, decoder_scale=1e4)
    assert bool(jnp.all(jnp.isfinite(images))) and float(jnp.abs(images).max()) <= 1.0
    np.testing.assert_allclose(jnp.linalg.norm(z, axis=1), np.sqrt(E), rtol=1e-5)


def test_bad_arguments():
    text = jnp.ones((2, E))
    sched = PRIOR_SCHEDULE
    with pytest.raises(ValueError, match="text"):
        unclip.sample_embeddings(jax.random.key(0), _prior_jax, jnp.ones(E), sched, num_steps=2,
                                 scale=1.0)
    with pytest.raises(ValueError, match="negative_text"):
        unclip.sample_embeddings(jax.random.key(0), _prior_jax, text, sched, num_steps=2,
                                 scale=1.0, negative_text=jnp.ones((3, E)))
    with pytest.raises(ValueError, match="scale"):
        unclip.sample_embeddings(jax.random.key(0), _prior_jax, text, sched, num_steps=2,
                                 scale=jnp.ones(2))
    with pytest.raises(ValueError, match="num_steps"):
        unclip.sample_embeddings(jax.random.key(0), _prior_jax, text, sched, num_steps=0,
                                 scale=1.0)
    with pytest.raises(ValueError, match="image_shape"):
        unclip.sample(jax.random.key(0), _prior_jax, _decoder_jax, text, (4, 4), sched, sched,
                      prior_steps=2, decoder_steps=2, prior_scale=1.0, decoder_scale=1.0)
    with pytest.raises(ValueError, match="z_text"):
        unclip.prior_loss(_prior_jax, (text, jnp.ones((3, E))), jax.random.key(0), schedule=sched)
    with pytest.raises(ValueError, match="p_uncond"):
        unclip.embedding_dropout(jax.random.key(0), text, 1.5)
    with pytest.raises(ValueError, match="time_embed_dim"):
        unclip.EmbeddingPrior(E, (8,), time_embed_dim=3, rngs=nnx.Rngs(0))
    # extreme but valid: a zero embedding stays finite on the sphere map (the null row)
    assert bool(jnp.all(unclip.to_sphere(jnp.zeros((2, E))) == 0))


# ---- the recipe ------------------------------------------------------------------------


def test_recipe_registered_and_prompt_plumbing(monkeypatch):
    from genjax import registry
    from genjax.composites import unclip_recipes as r

    recipe = registry.get("unclip")
    assert recipe.family == "composites" and recipe.sample_options == (
        "prompt", "guidance", "steps", "negative_prompt")
    seen = {}

    def fake_text(clip, tokens):  # (m, L) -> (m, E): the first E token ids
        del clip
        return jnp.asarray(tokens[:, :E], jnp.float32)

    def fake_sample(key, prior, decoder, text, shape, s1, s2, *, prior_steps, decoder_steps,
                    prior_scale, decoder_scale, negative_text=None):
        seen.update(text=text, negative=negative_text, steps=(prior_steps, decoder_steps),
                    scales=(float(prior_scale), float(decoder_scale)))
        return jnp.zeros((text.shape[0], *shape)), text

    monkeypatch.setattr(r.unclip, "text_embeddings", fake_text)
    monkeypatch.setattr(r.unclip, "sample", fake_sample)
    params = {"clip": None, "prior": None, "decoder": None}
    out = r.uc_sample(jax.random.key(0), params, 3, prompt="a two", guidance=2.0, steps=5,
                      negative_prompt="a one")
    assert out.shape == (3, 8, 8, 1) and float(out.min()) == 0.5  # [-1, 1] -> [0, 1]
    tokens = r.clip_recipes.prompt_tokens
    np.testing.assert_array_equal(seen["text"], np.repeat(tokens(["a two"])[:, :E], 3, axis=0))
    np.testing.assert_array_equal(seen["negative"], np.repeat(tokens(["a one"])[:, :E], 3, 0))
    assert seen["steps"] == (5, 5) and seen["scales"] == (2.0, 2.0)
    r.uc_sample(jax.random.key(0), params, 10)  # default prompts: digits 0..9 in turn
    np.testing.assert_array_equal(seen["text"][3], tokens(["a handwritten three"])[0, :E])
    assert seen["negative"] is None
    for name, kwargs in (("prompt", {"prompt": ["a one"] * 2}), ("prompt", {"prompt": ""}),
                         ("negative_prompt", {"negative_prompt": "seven!"}),
                         ("steps", {"steps": 0}), ("guidance", {"guidance": float("nan")}),
                         ("n", {"n": 0})):
        with pytest.raises(ValueError, match=name):
            r.uc_sample(jax.random.key(0), params, kwargs.pop("n", 3), **kwargs)



class TinyDecoder(nnx.Module):
    """``eps = a * x + Linear(context token)`` per channel: a weighted decoder of the U-Net's
    signature ``(x (B, H, W, C), t (B,), context=(B, 1, E))``, cheap to compile."""

    def __init__(self, rngs):
        self.a = nnx.Param(jax.random.normal(rngs.params(), ()))
        self.proj = nnx.Linear(E, 1, rngs=rngs)

    def __call__(self, x, t, *, context):
        del t
        return self.a[...] * x + self.proj(context[:, 0, :])[:, None, None, :]


def test_cascade_conforms():
    from genjax.testing import SamplerCase, assert_sampler_conforms

    models = [{"prior": unclip.EmbeddingPrior(E, (8,), time_embed_dim=4, rngs=nnx.Rngs(s)),
               "decoder": TinyDecoder(nnx.Rngs(s))} for s in (0, 1)]
    text = jnp.asarray(TEXTS, jnp.float32)
    kw = dict(prior_steps=3, decoder_steps=3, prior_scale=2.0, decoder_scale=2.0)

    def draw(key, m):
        return unclip.sample(key, m["prior"], m["decoder"], text, (2, 2, 1), PRIOR_SCHEDULE,
                             PRIOR_SCHEDULE, **kw)

    def from_noise(key, m):
        k_z, k_x = jax.random.split(key)
        return unclip.sample_from_noise(m["prior"], m["decoder"], text,
                                        jax.random.normal(k_z, text.shape),
                                        jax.random.normal(k_x, (3, 2, 2, 1)), PRIOR_SCHEDULE,
                                        PRIOR_SCHEDULE, **kw)

    assert_sampler_conforms(SamplerCase(
        name="unclip.sample", sample=draw, models=models, from_noise=from_noise,
        eager=False,  # jit vs eager of DDIM is the diffusion suite's; this one is slow eager
        bad_arguments=[(lambda: unclip.sample_from_noise(
            models[0]["prior"], models[0]["decoder"], text, jnp.zeros((2, E)),
            jnp.zeros((3, 2, 2, 1)), PRIOR_SCHEDULE, PRIOR_SCHEDULE, **kw), "z_T")],
    ))


@pytest.mark.slow
def test_unclip_recipe_trains_and_reports(tmp_path, monkeypatch):
    # `genjax train unclip` end to end at a tiny size: two steps of the shared trainer (the
    # three losses, EMA), then the whole report -- every figure of the module docstring and
    # the picture -- on 10 held-out digits. The real U-Net and CLIP, narrowed.
    from genjax import data, registry, train
    from genjax.composites import unclip_recipes as r

    monkeypatch.setattr(r, "PRIOR_HIDDEN", (8,))
    monkeypatch.setattr(r, "DECODER_CHANNELS", 8)  # GroupNorm's 8 groups need >= 8
    monkeypatch.setattr(r, "DECODER_MULTS", (1,))  # one level, cross-attention at 8x8
    monkeypatch.setattr(r, "DECODER_ATTENTION", (0,))
    monkeypatch.setattr(r, "REPORT_PER_DIGIT", 1)
    monkeypatch.setattr(r, "REPORT_DDIM_STEPS", 2)
    monkeypatch.setattr(r, "REPORT_HELD_OUT", 10)
    monkeypatch.setattr(r.clip_recipes, "IMAGE_WIDTHS", (8, 8))
    monkeypatch.setattr(r.clip_recipes, "IMAGE_HIDDEN", 16)
    monkeypatch.setattr(r.clip_recipes, "TEXT_WIDTH", 8)
    monkeypatch.setattr(r.clip_recipes, "TEXT_DEPTH", 1)
    monkeypatch.setattr(r.clip_recipes, "NUM_HEADS", 2)
    recipe = registry.get("unclip")
    train_data = tuple(a[:32] for a in data.load_with_labels("digits", "train", 0))
    test_data = tuple(a[:10] for a in data.load_with_labels("digits", "test", 0))
    res = train.fit(recipe, train_data, key=jax.random.key(0), out_dir=tmp_path, steps=2,
                    batch_size=16, progress=False, report=False)
    for h in res.history:  # all three losses train: each positive and finite
        for name in ("clip_loss", "prior_loss", "decoder_loss"):
            assert np.isfinite(h[name]) and h[name] > 0.0, (name, h)
    figures = recipe.report(jax.random.key(1), res.params, train_data, test_data, tmp_path)
    assert len(figures) == 7
    for name, value in figures.items():
        assert 0.0 <= value <= 1.0, (name, value)  # every figure a rate
    assert (tmp_path / "samples.png").stat().st_size > 0
    images = recipe.sample(jax.random.key(2), res.params, 10, steps=2, negative_prompt="a one")
    assert images.shape == (10, 8, 8, 1) and bool(jnp.all(jnp.isfinite(images)))
