"""Negative-prompt guidance on Gaussian-mixture classes, where every score is exact.

The "network" is exact: class ``c``'s noise prediction is ``E[eps | x_t, c]`` of a Gaussian
mixture (:meth:`genjax.targets.GaussianMixture.eps`), the null label's is the marginal's.
Since ``eps = -sigma_t score``, the guided model with ``negative_labels`` must give

    score = score_neg + w (score_cond - score_neg)

with the scores of the noised class laws computed independently: by the float64 NumPy
oracle (:mod:`genjax.oracle_targets`, no JAX) and by the targets' ``noised_score``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import diffusion, oracle_targets
from genjax.model import model_jit
from genjax.targets import GaussianMixture

SCHEDULE = diffusion.schedules.cosine(200)
COV = 0.25 * np.eye(2)
# Class 0: two modes, left and right; class 1: the right mode only; class 2: the top.
CLASSES = (
    (np.array([0.5, 0.5]), np.array([[-2.0, 0.0], [2.0, 0.0]]), np.stack([COV, COV])),
    (np.array([1.0]), np.array([[2.0, 0.0]]), COV[None]),
    (np.array([1.0]), np.array([[0.0, 2.0]]), COV[None]),
)
NULL = len(CLASSES)


def _marginal():
    weights = np.concatenate([w / len(CLASSES) for w, _, _ in CLASSES])
    means = np.concatenate([m for _, m, _ in CLASSES])
    covs = np.concatenate([c for _, _, c in CLASSES])
    return weights, means, covs


LAWS = (*CLASSES, _marginal())  # row NULL: the unconditional law
#: One compiled call for every guided model of the same shapes (models are traced pytrees).
run = model_jit(lambda model, x, t: model(x, t))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ExactClassEps:
    """``model(x_t (B, 2), t (B,), labels (B,)) = E[eps | x_t, label]``, exactly."""

    laws: tuple  # of GaussianMixture, one per label (the last is the marginal)
    schedule: diffusion.Schedule

    def __call__(self, x_t, t, labels):
        alpha, sigma = self.schedule.alpha(t), self.schedule.sigma(t)  # (B,) each
        every = jnp.stack([law.eps(x_t, alpha, sigma) for law in self.laws])  # (C+1, B, 2)
        return jnp.take_along_axis(every, labels[None, :, None], axis=0)[0]  # (B, 2)


@pytest.fixture(scope="module")
def exact():
    return ExactClassEps(tuple(GaussianMixture.create(*law) for law in LAWS), SCHEDULE)


def _oracle_score(label, x, t):
    alpha = float(np.sqrt(np.asarray(SCHEDULE.alpha_bars, np.float64)[t]))
    sigma = float(np.sqrt(1.0 - np.asarray(SCHEDULE.alpha_bars, np.float64)[t]))
    return oracle_targets.mixture_score(*oracle_targets.mixture_noised(*LAWS[label], alpha, sigma),
                                        x)


@pytest.mark.parametrize("t", [20, 100, 180])
def test_guided_score_is_the_negative_mix_of_exact_scores(exact, t):
    rng = np.random.default_rng(t)
    x = rng.normal(scale=2.0, size=(12, 2))
    labels = np.array([0, 0, 2, 1] * 3)
    negative = np.array([1, 2, 0, 0] * 3)
    tt = jnp.full((12,), t)
    sigma = float(SCHEDULE.sigma(t))
    rows = np.arange(len(x))
    oracle = np.stack([_oracle_score(c, x, t) for c in range(len(LAWS))])  # (C+1, 12, 2)
    score_cond, score_neg, score_null = oracle[labels, rows], oracle[negative, rows], oracle[NULL]
    alpha = SCHEDULE.alpha(t)
    targets = np.stack([law.noised_score(jnp.asarray(x, jnp.float32), alpha, sigma)
                        for law in exact.laws])  # (C+1, 12, 2), float32
    targets_cond, targets_neg = targets[labels, rows], targets[negative, rows]
    for w in (0.0, 1.0, 3.0, -0.5):
        want = score_neg + w * (score_cond - score_neg)  # the exact negative-guided score
        model = diffusion.guided_eps_fn(exact, jnp.asarray(labels), NULL, jnp.asarray(w),
                                        negative_labels=jnp.asarray(negative))
        calls = (run, model.__call__) if w == 3.0 else (run,)  # jitted, and once eagerly
        for call in calls:
            args = (jnp.asarray(x, jnp.float32), tt)
            got = np.asarray(call(model, *args) if call is run else call(*args), np.float64)
            got = -got / sigma
            # float32 eps (relative ~1e-6) divided by sigma >= 0.1: within 1e-4 of the scale.
            tol = 1e-4 * np.abs(want).max()
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=tol)
        mixed = targets_neg + w * (targets_cond - targets_neg)
        np.testing.assert_allclose(-run(model, jnp.asarray(x, jnp.float32), tt) / sigma, mixed,
                                   rtol=1e-4, atol=1e-4 * float(jnp.abs(mixed).max()))
    # Without negative labels the second branch is the marginal (plain CFG), not class 1's.
    plain = diffusion.guided_eps_fn(exact, jnp.asarray(labels), NULL, 3.0)
    np.testing.assert_allclose(-np.asarray(run(plain, jnp.asarray(x, jnp.float32), tt)) / sigma,
                               score_null + 3.0 * (score_cond - score_null), rtol=1e-4,
                               atol=1e-4 * np.abs(score_cond).max() * 3)


def test_negative_guidance_moves_samples_away_from_the_negative_class(exact):
    # Class 0 has a left and a right mode; class 1 is its right mode alone. Guided by class 0
    # against class 1 at w = 3, DDIM on the exact model puts (almost) nothing on the right;
    # at w = 1 (the conditional law) half the samples are there. (Guidance does not sample
    # the tilted law p_c^w p_neg^(1-w) exactly; observed: 0.05 on the right at w = 3.)
    n = 1000
    labels, negative = jnp.zeros((n,), jnp.int32), jnp.ones((n,), jnp.int32)

    def right_share(w):
        model = diffusion.guided_eps_fn(exact, labels, NULL, jnp.asarray(w),
                                        negative_labels=negative)
        x = diffusion.ddim_sample(jax.random.key(0), model, (n, 2), SCHEDULE, num_steps=50)
        assert bool(jnp.all(jnp.isfinite(x)))
        return float(jnp.mean(x[:, 0] > 0))

    # Binomial(1000, 1/2): sd 0.016; 0.07 is > 4 sd (DDIM-50 on the exact eps is near exact)
    assert abs(right_share(1.0) - 0.5) < 0.07
    assert right_share(3.0) < 0.1


def test_negative_labels_are_checked(exact):
    labels = jnp.array([0, 1])
    with pytest.raises(ValueError, match="negative_labels"):
        diffusion.guided_eps_fn(exact, labels, NULL, 2.0, negative_labels=jnp.array([0, 1, 2]))
    with pytest.raises(ValueError, match="negative_labels"):
        diffusion.guided_eps_fn(exact, labels, NULL, 2.0, negative_labels=jnp.array([0.5, 1.0]))
