"""Negative prompts through the text-to-image sampler, text-to-digit's sample function and the
command line.

The exact check: captions name Gaussian-mixture classes (a one-token context ``e_c``) and the
"U-Net" returns each class's exact ``E[eps | x_t, c]`` (:mod:`genjax.targets`). Guided DDIM with
``negative_context`` must equal the float64 NumPy DDIM (:mod:`genjax.composites.oracle_unclip`)
driven by ``eps_neg + w (eps_cond - eps_neg)`` of the oracle's exact mixture eps
(:mod:`genjax.oracle_targets`) on the same starting noise.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import cli, diffusion, oracle_targets
from genjax.composites import oracle_unclip, text_to_image
from genjax.composites import recipes as t2d
from genjax.targets import GaussianMixture

SCHEDULE = diffusion.schedules.cosine(100)
COV = 0.1 * np.eye(4)  # images are (2, 2, 1): 4 pixels
# class 0: two modes; class 1: the second of them; class 2: a third place.
CLASSES = (
    (np.array([0.5, 0.5]), np.array([[-0.5] * 4, [0.5] * 4]), np.stack([COV, COV])),
    (np.array([1.0]), np.array([[0.5] * 4]), COV[None]),
    (np.array([1.0]), np.array([[0.5, -0.5, 0.5, -0.5]]), COV[None]),
)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ExactContextEps:
    """``model(x_t (B, 2, 2, 1), t (B,), context=(B, 1, 3)) = E[eps | x_t, argmax context]``."""

    laws: tuple
    schedule: diffusion.Schedule

    def __call__(self, x_t, t, *, context):
        alpha, sigma = self.schedule.alpha(t), self.schedule.sigma(t)
        flat = x_t.reshape(x_t.shape[0], -1)  # (B, 4)
        every = jnp.stack([law.eps(flat, alpha, sigma) for law in self.laws])  # (3, B, 4)
        label = jnp.argmax(context[:, 0, :], axis=-1)  # (B,)
        return jnp.take_along_axis(every, label[None, :, None], axis=0)[0].reshape(x_t.shape)


def _oracle_eps(label, x, t):
    ab = np.asarray(SCHEDULE.alpha_bars, np.float64)[t[0]]
    return oracle_targets.mixture_eps(*CLASSES[label], x.reshape(len(x), -1), np.sqrt(ab),
                                      np.sqrt(1.0 - ab)).reshape(x.shape)


def test_negative_context_sampling_matches_the_oracle():
    model = ExactContextEps(tuple(GaussianMixture.create(*c) for c in CLASSES), SCHEDULE)
    one_hot = jnp.eye(3)[:, None, :]  # (3, 1, 3): context of class c
    x_T = np.random.default_rng(0).normal(size=(4, 2, 2, 1))
    cond = jnp.zeros(4, jnp.int32)  # "class 0"
    for w in (1.0, 3.0):
        for neg in (1, 2):
            got = text_to_image.sample_from_noise(
                model, jnp.asarray(x_T, jnp.float32), one_hot[cond], one_hot[2:3], SCHEDULE,
                num_steps=10, guidance_scale=w, clip_x0=None,
                negative_context=one_hot[jnp.full(4, neg)])

            def eps(x, t, neg=neg, w=w):
                return oracle_unclip.guided(_oracle_eps(0, x, t), _oracle_eps(neg, x, t), w)

            want = oracle_unclip.ddim(eps, x_T, np.asarray(SCHEDULE.alpha_bars, np.float64), 10)
            # float32 through 10 DDIM steps of an exact mixture eps: ~1e-5 relative
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # At w = 3 against class 1 (class 0's second mode) the samples leave that mode.
    x = text_to_image.sample(jax.random.key(0), model, one_hot[jnp.zeros(400, jnp.int32)],
                             one_hot[2:3], (2, 2, 1), SCHEDULE, num_steps=20, guidance_scale=3.0,
                             clip_x0=None, negative_context=one_hot[1:2])
    plain = text_to_image.sample(jax.random.key(0), model, one_hot[jnp.zeros(400, jnp.int32)],
                                 one_hot[2:3], (2, 2, 1), SCHEDULE, num_steps=20,
                                 guidance_scale=1.0, clip_x0=None)
    second = lambda a: float(jnp.mean(a.reshape(400, -1).mean(axis=1) > 0))  # noqa: E731
    assert 0.35 < second(plain) < 0.65 and second(x) < 0.1  # observed 0.5 and ~0.0


def test_negative_context_is_checked():
    ctx = jnp.zeros((2, 1, 3))
    with pytest.raises(ValueError, match="negative_context"):
        text_to_image.sample(jax.random.key(0), lambda x, t, *, context: x, ctx, ctx[:1], (2, 2, 1),
                             SCHEDULE, num_steps=2, guidance_scale=2.0,
                             negative_context=jnp.zeros((3, 1, 3)))


# ---- text-to-digit's sample function: the plumbing, with fakes for CLIP and the U-Net ----


def test_text_to_digit_negative_prompt_reaches_the_sampler(monkeypatch):
    seen = {}

    def fake_context(clip, tokens):
        del clip
        return jnp.asarray(tokens, jnp.float32)[:, :, None]  # (m, L, 1): the tokens themselves

    def fake_sample(key, unet, context, null, shape, schedule, *, num_steps, guidance_scale,
                    negative_context=None):
        seen.update(context=context, null=null, negative=negative_context)
        return jnp.zeros((context.shape[0], *shape))

    monkeypatch.setattr(t2d.text_to_image, "text_context", fake_context)
    monkeypatch.setattr(t2d.text_to_image, "sample", fake_sample)
    params = {"clip": None, "unet": None}
    t2d.t2d_sample(jax.random.key(0), params, 3, prompt="a one", negative_prompt="a seven")
    np.testing.assert_array_equal(seen["negative"][:, :, 0],
                                  t2d.clip_recipes.prompt_tokens(["a seven"]))
    t2d.t2d_sample(jax.random.key(0), params, 2, prompt="a one",
                   negative_prompt=["a two", "a six"])
    assert seen["negative"].shape[0] == 2
    t2d.t2d_sample(jax.random.key(0), params, 2, prompt="a one")
    assert seen["negative"] is None  # no negative prompt: the empty caption's branch
    for bad in ("", "seven!", ["a two"] * 3):
        with pytest.raises(ValueError, match="negative_prompt"):
            t2d.t2d_sample(jax.random.key(0), params, 2, prompt="a one", negative_prompt=bad)


def test_cli_negative_prompt_option():
    args = cli._parser().parse_args(["sample", "runs/x", "--negative-prompt", "a handwritten one",
                                     "--prompt", "a seven"])
    assert args.negative_prompt == "a handwritten one" and args.prompt == "a seven"
