"""CLIP-guided generation: the spherical distance and its gradient against the NumPy oracle,
the straight-through quantiser, one Adam step of the whole pipeline against the oracle on
linear toy models, shared noise, descent, the recipe on a tiny configuration, bad arguments."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import data, registry
from genjax.composites import clip_guided as cg
from genjax.composites import oracle_vision_language as oracle
from genjax.composites import vision_language_recipes as vl
from genjax.testing import BadInput, assert_handled

M, DC, K, E = 2, 3, 5, 6  # latent vectors, code size, codes, CLIP embedding size
SCALE = 0.01  # keeps the toy decoder's pixels inside (0, 1), where the clip is the identity


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ToyDecoder:
    """``x = 0.5 + SCALE * (z_flat W)`` as (n, 8, 8, 1) images, with a codebook (K, DC)."""

    w: jax.Array  # (M DC, 64)
    codebook: jax.Array  # (K, DC)

    def decode(self, z):
        return (0.5 + SCALE * z.reshape(z.shape[0], -1) @ self.w).reshape(-1, 8, 8, 1)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ToyClip:
    """Linear encoders: ``u = x_flat A``, ``v = T[token 1]`` (the caption's first character)."""

    a: jax.Array  # (64, E)
    t: jax.Array  # (V, E)

    def encode_image(self, images):
        return images.reshape(images.shape[0], -1) @ self.a

    def encode_text(self, tokens):
        return self.t[tokens[:, 1]], None


@pytest.fixture(scope="module")
def toys():
    rng = np.random.default_rng(0)
    dec = ToyDecoder(jnp.asarray(rng.normal(size=(M * DC, 64)), jnp.float32),
                     jnp.asarray(rng.normal(size=(K, DC)), jnp.float32))
    clip = ToyClip(jnp.asarray(rng.normal(size=(64, E)), jnp.float32),
                   jnp.asarray(rng.normal(size=(40, E)), jnp.float32))
    tokens = jnp.asarray([[1, 4, 2], [1, 9, 2], [1, 20, 2]], jnp.int32)  # 3 prompts
    return dec, clip, tokens


def test_spherical_distance_and_gradient_match_oracle():
    rng = np.random.default_rng(1)
    u, v = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    got = cg.spherical_distance(jnp.asarray(u, jnp.float32), jnp.asarray(v, jnp.float32))
    np.testing.assert_allclose(np.asarray(got), oracle.spherical_distance(u, v), rtol=1e-5)
    # theta^2 / 2 for the angle theta between u and v
    theta = np.arccos(np.sum(u * v, 1) / np.linalg.norm(u, axis=1) / np.linalg.norm(v, axis=1))
    np.testing.assert_allclose(oracle.spherical_distance(u, v), theta**2 / 2, rtol=1e-10)
    g = jax.grad(lambda a: cg.spherical_distance(a, jnp.asarray(v, jnp.float32)).sum())(
        jnp.asarray(u, jnp.float32))
    np.testing.assert_allclose(np.asarray(g), oracle.spherical_distance_grad_u(u, v),
                               rtol=1e-4, atol=1e-6)
    # aligned: 0; opposite: pi^2 / 2
    np.testing.assert_allclose(float(cg.spherical_distance(jnp.ones(3), 2 * jnp.ones(3))), 0.0,
                               atol=1e-6)
    np.testing.assert_allclose(float(cg.spherical_distance(jnp.ones(3), -jnp.ones(3))),
                               np.pi**2 / 2, rtol=1e-6)
    g0 = jax.grad(lambda a: cg.spherical_distance(a, jnp.ones(3)))(jnp.ones(3))
    np.testing.assert_array_equal(np.asarray(g0), 0.0)  # aligned: a minimum, no NaN


def test_straight_through_quantiser(toys):
    dec, _, _ = toys
    z = jax.random.normal(jax.random.key(0), (3, M, DC))
    nearest = np.argmin(((np.asarray(z)[..., None, :] - np.asarray(dec.codebook)) ** 2).sum(-1),
                        axis=-1)  # (3, M)
    zq = np.asarray(dec.codebook)[nearest]
    np.testing.assert_allclose(np.asarray(cg.decode_latents(dec, z)),
                               np.asarray(dec.decode(jnp.asarray(zq))), rtol=1e-6)
    # the gradient passes straight through: d/dz sum(x(q(z))) = d/dz_q sum(Dec(z_q))
    g = jax.grad(lambda a: cg.decode_latents(dec, a).sum())(z)
    want = jax.grad(lambda a: dec.decode(a).sum())(jnp.asarray(zq))
    np.testing.assert_allclose(np.asarray(g), np.asarray(want), rtol=1e-6)


def test_one_adam_step_matches_oracle(toys):
    dec, clip, tokens = toys
    z0 = 0.5 * jax.random.normal(jax.random.key(3), (3, M, DC))
    shifts = jnp.zeros((1, 1, 2), jnp.int32)  # one step, one unshifted view
    lr = 0.05
    res = cg.clip_guided_from_noise(dec, clip, tokens, z0, shifts, learning_rate=lr,
                                    quantize=False)
    w, a = np.asarray(dec.w, np.float64), np.asarray(clip.a, np.float64)
    zf = np.asarray(z0, np.float64).reshape(3, -1)
    u = 2.0 * SCALE * zf @ w @ a  # u = (2 x - 1)_flat A with x = 0.5 + SCALE z W
    v = np.asarray(clip.t, np.float64)[np.asarray(tokens[:, 1])]
    np.testing.assert_allclose(float(res.loss_trace[0]), oracle.spherical_distance(u, v).mean(),
                               rtol=1e-5)
    g = 2.0 * SCALE * oracle.spherical_distance_grad_u(u, v) @ a.T @ w.T  # dL/dz, chain rule
    z1 = zf - lr * g / (np.abs(g) + 1e-8)  # Adam's first step: m^ = g, v^ = g^2
    # float32 pipeline vs float64; the step is lr sign(g) except where |g| ~ 1e-8
    np.testing.assert_allclose(np.asarray(res.latents).reshape(3, -1), z1, rtol=1e-5,
                               atol=1e-5)


def test_guidance_descends_and_shares_noise(toys):
    dec, clip, tokens = toys
    key = jax.random.key(5)
    kw = dict(num_steps=40, learning_rate=0.05, num_augmentations=2, max_shift=0,
              quantize=False)
    res = cg.clip_guided(key, dec, clip, tokens, (M, DC), **kw)
    assert float(res.loss_trace[-1]) < 0.5 * float(res.loss_trace[0])
    assert res.images.shape == (3, 8, 8, 1) and res.distance.shape == (3,)
    k_init, k_shift = jax.random.split(key)
    z0 = cg.initial_latents(k_init, dec, 3, (M, DC), quantize=False)
    twin = cg.clip_guided_from_noise(dec, clip, tokens, z0, cg.draw_shifts(k_shift, 40, 2, 0),
                                     learning_rate=0.05, quantize=False)
    np.testing.assert_allclose(np.asarray(twin.latents), np.asarray(res.latents), rtol=1e-6)
    # quantised: every decoded image is on the code grid
    q = cg.clip_guided(key, dec, clip, tokens, (M, DC), num_steps=3)
    codes = np.asarray(dec.codebook)
    z = np.asarray(q.latents)
    zq = codes[np.argmin(((z[..., None, :] - codes) ** 2).sum(-1), axis=-1)]
    np.testing.assert_allclose(np.asarray(q.images), np.asarray(dec.decode(jnp.asarray(zq))),
                               rtol=1e-6)


@pytest.mark.slow
def test_clip_guided_recipe_tiny(tmp_path, monkeypatch):
    monkeypatch.setattr(vl, "GUIDE_STEPS", 2)
    monkeypatch.setattr(vl, "REPORT_SEEDS", 1)
    recipe = registry.get("clip-guided")
    assert recipe.family == "composites" and recipe.sample_options == ("prompt", "steps")
    train_data = tuple(a[:32] for a in data.load_with_labels("digits", "train", 0))
    test_data = tuple(a[:10] for a in data.load_with_labels("digits", "test", 0))
    # the loss forward only: the step is the shared trainer's (tested there)
    params = recipe.init(jax.random.key(0), train_data)
    batch = tuple(jnp.asarray(a[:16]) for a in train_data)
    loss, metrics = jax.jit(recipe.loss)(params, batch, jax.random.key(1))
    assert np.isfinite(float(loss)) and float(metrics["vq_loss"]) > 0
    figures = recipe.report(jax.random.key(1), params, train_data, test_data, tmp_path)
    for k in ("prompt_digit_rate", "prompt_digit_rate_unoptimised_start",
              "prompt_digit_rate_unseen_template"):
        assert 0.0 <= figures[k] <= 1.0
    assert (tmp_path / "samples.png").stat().st_size > 0
    x = recipe.sample(jax.random.key(2), params, 10, prompt="a handwritten seven", steps=2)
    assert x.shape == (10, 8, 8, 1) and 0.0 <= float(x.min()) <= float(x.max()) <= 1.0
    for bad in ("", "seven!", ["a one"]):
        with pytest.raises(ValueError, match="prompt"):
            recipe.sample(jax.random.key(2), params, 10, prompt=bad)
    with pytest.raises(ValueError, match="steps"):
        recipe.sample(jax.random.key(2), params, 10, steps=0)


def _cases() -> list[BadInput]:
    rng = np.random.default_rng(0)
    dec = ToyDecoder(jnp.asarray(rng.normal(size=(M * DC, 64)), jnp.float32),
                     jnp.asarray(rng.normal(size=(K, DC)), jnp.float32))
    clip = ToyClip(jnp.asarray(rng.normal(size=(64, E)), jnp.float32),
                   jnp.asarray(rng.normal(size=(40, E)), jnp.float32))
    tok = jnp.asarray([[1, 4, 2], [1, 9, 2]], jnp.int32)
    z0 = jnp.zeros((2, M, DC))
    sh = jnp.zeros((2, 1, 2), jnp.int32)
    key = jax.random.key(0)

    @jax.tree_util.register_dataclass
    @dataclasses.dataclass(frozen=True)
    class NoCodebook:
        w: jax.Array

        def decode(self, z):
            return ToyDecoder(self.w, jnp.zeros((1, DC))).decode(z)

    plain = NoCodebook(dec.w)
    return [
        BadInput("clip_guided.clip_guided_from_noise: 1-D tokens",
                 lambda: cg.clip_guided_from_noise(dec, clip, tok[0], z0, sh), "tokens"),
        BadInput("clip_guided.clip_guided_from_noise: z0 rows differ from the prompts",
                 lambda: cg.clip_guided_from_noise(dec, clip, tok, z0[:1], sh), "z0"),
        BadInput("clip_guided.clip_guided_from_noise: shifts without the (dy, dx) axis",
                 lambda: cg.clip_guided_from_noise(dec, clip, tok, z0, sh[..., 0]), "shifts"),
        BadInput("clip_guided.clip_guided_from_noise: no steps",
                 lambda: cg.clip_guided_from_noise(dec, clip, tok, z0, sh[:0]), "shifts"),
        BadInput("clip_guided.clip_guided_from_noise: learning_rate 0",
                 lambda: cg.clip_guided_from_noise(dec, clip, tok, z0, sh, learning_rate=0.0),
                 "learning_rate"),
        BadInput("clip_guided.clip_guided_from_noise: learning_rate nan",
                 lambda: cg.clip_guided_from_noise(dec, clip, tok, z0, sh,
                                                   learning_rate=float("nan")), "learning_rate"),
        BadInput("clip_guided.clip_guided: quantize with a decoder that has no codebook",
                 lambda: cg.clip_guided(key, plain, clip, tok, (M, DC), num_steps=1), "model"),
        BadInput("clip_guided.clip_guided: latent_shape not ending in the code size",
                 lambda: cg.clip_guided(key, dec, clip, tok, (M, DC + 1), num_steps=1),
                 "latent_shape"),
        BadInput("clip_guided.clip_guided: num_steps 0",
                 lambda: cg.clip_guided(key, dec, clip, tok, (M, DC), num_steps=0), "num_steps"),
        BadInput("clip_guided.clip_guided: num_augmentations 0",
                 lambda: cg.clip_guided(key, dec, clip, tok, (M, DC), num_augmentations=0),
                 "num_augmentations"),
        BadInput("clip_guided.clip_guided: negative max_shift",
                 lambda: cg.clip_guided(key, dec, clip, tok, (M, DC), max_shift=-1),
                 "max_shift"),
        BadInput("clip_guided.clip_guided_from_noise: huge latents stay finite",
                 lambda: cg.clip_guided_from_noise(dec, clip, tok, z0 + 1e6, sh).images,
                 kind="extreme", check=lambda x: bool(np.all((np.asarray(x) >= 0)
                                                             & (np.asarray(x) <= 1)))),
    ]


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_inputs(case):
    assert_handled(case)
