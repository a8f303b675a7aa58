"""The StyleGAN recipes train a few steps through genjax.train.fit and draw their reports."""

import jax
import numpy as np

from genjax import data, registry, train
from genjax.gan import stylegan_recipes


def test_stylegan_recipes_are_registered():
    names = {r.name for r in stylegan_recipes.RECIPES}
    assert names == {"stylegan-digits", "stylegan-digits-sn"}
    assert all(registry.get(n).family == "gan" for n in names)


def test_stylegan_sn_recipe_trains_and_reports(tmp_path):
    # the spectral-norm recipe: its report also reads the carried u of every critic layer
    recipe = registry.get("stylegan-digits-sn")
    train_x, test_x = data.load("digits")[:64], data.load("digits", split="test")[:64]
    res = train.fit(
        recipe,
        train_x,
        key=jax.random.key(0),
        out_dir=tmp_path,
        steps=2,
        batch_size=8,
        progress=False,
        test_data=test_x,
    )
    assert all(np.isfinite(v) for k, v in res.history[-1].items() if k != "step")
    for picture in ("samples.png", "style_mixing.png", "truncation.png"):
        assert (tmp_path / picture).stat().st_size > 0
    s = res.summary
    assert s["pixel_std_psi_0"] < 1e-5 < s["pixel_std_psi_1"]  # psi = 0: one image, w_avg's
    assert s["pixel_std_psi_0.5"] < s["pixel_std_psi_1"]
    assert 0.0 < s["spectral_sigma_max_relative_error"] < 1.0
    assert s["mmd_samples_test"] > s["mmd_train_test"]  # 2 steps: far from the data
    n = stylegan_recipes.REPORT_SAMPLES  # the report's sample size: no new compilation
    x = recipe.sample(jax.random.key(1), res.params, n, psi=0.5)
    assert x.shape == (n, 8, 8, 1) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0
