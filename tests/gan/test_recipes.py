"""GAN recipes train a few steps through genjax.train.fit, sample and draw their reports."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import data, registry, train
from genjax.gan import recipes


def test_recipes_are_registered():
    names = {r.name for r in recipes.RECIPES}
    assert {"gan", "wgan-gp", "dcgan", "cgan", "cyclegan"} <= names
    assert all(registry.get(n).family == "gan" for n in names)


def test_ring_quality_measures_collapse():
    from genjax import targets

    ring = targets.ring()
    one_mode = jnp.tile(ring.means[:1], (100, 1))  # total collapse onto mode 0
    q = recipes.ring_quality(one_mode, ring.sample(jax.random.key(0), 100))
    assert q["mode_coverage"] == pytest.approx(1 / 8) and q["high_quality_fraction"] == 1.0
    assert q["mode_kl_from_uniform"] == pytest.approx(np.log(8.0), rel=1e-6)
    spread = ring.sample(jax.random.key(1), 1000)
    q = recipes.ring_quality(spread, spread)
    # 3 std holds 98.9% of a 2-D Gaussian's mass; 1000 draws share 8 modes within ~10%
    assert q["mode_coverage"] == 1.0 and q["high_quality_fraction"] > 0.97
    assert q["mode_kl_from_uniform"] < 0.02


@pytest.mark.slow
def test_wgan_gp_recipe_trains_and_reports(tmp_path):
    # the ring recipe with the most machinery: n_critic = 5 slices, gradient penalty,
    # snapshots taken inside the jitted step; the image recipes share their step code
    recipe = registry.get("wgan-gp")
    train_x, test_x = data.load("ring")[:256], data.load("ring", split="test")[:256]
    res = train.fit(recipe, train_x, key=jax.random.key(0), out_dir=tmp_path, steps=3,
                    batch_size=20, progress=False, test_data=test_x)  # 4 examples per critic step
    assert all(np.isfinite(v) for k, v in res.history[-1].items() if k != "step")
    assert res.history[-1]["gradient_penalty"] > 0
    samples = recipe.sample(jax.random.key(1), res.params, 4)
    assert samples.shape == (4, 2) and bool(jnp.all(jnp.isfinite(samples)))
    for picture in ("samples.png", "snapshots.png"):
        assert (tmp_path / picture).stat().st_size > 0
    assert 0.0 <= res.summary["mode_coverage"] <= 1.0
    assert 0.0 <= res.summary["high_quality_fraction"] <= 1.0
    np.testing.assert_array_equal(res.params["snapshot_steps"][:1], [0])  # step 0 is kept


def test_digit_domains_are_unpaired_inversions():
    x, y = recipes.load_digit_domains("digits", "test", 0)
    assert x.shape == y.shape and x.shape[1:] == (8, 8, 1)
    images = data.load("digits", split="test")
    np.testing.assert_array_equal(y, 1.0 - images[len(x): 2 * len(x)])  # other images, inverted


def test_ring_quality_kl_is_undefined_when_no_sample_is_near_a_mode():
    far = jnp.full((64, 2), 50.0)  # every sample far outside the ring
    from genjax import targets

    ring = targets.ring(8, 4.0, 0.3)
    q = recipes.ring_quality(far, ring.sample(jax.random.key(0), 64))
    assert q["mode_coverage"] == 0.0
    assert np.isnan(q["mode_kl_from_uniform"])  # not 0, which would read as balanced
