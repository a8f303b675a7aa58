"""The ``dit-digits`` recipe on a tiny budget: registered, adaLN-Zero's first gradient, a few
Adam steps, the label's effect. (The report -- a logistic-regression fit, the shared digit
classifier's training and three sampler runs -- costs ~15 CPU-s, over this work's CI budget;
it runs in ``genjax train dit-digits``.)"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from genjax import registry
from genjax.diffusion import dit_recipes
from genjax.testing import BadInput, assert_handled


def test_registered_in_the_diffusion_family():
    recipe = registry.get("dit-digits")
    assert recipe.family == "diffusion" and recipe.data == "digits"
    assert recipe.sample_options == ("sampler", "steps")
    assert [r.name for r in dit_recipes.RECIPES] == ["dit-digits"]


def test_trains_and_the_label_reaches_the_prediction():
    recipe = registry.get("dit-digits")
    train = recipe.load_data("digits", "train", 0)
    batch = (jnp.asarray(train[0][:32]), jnp.asarray(train[1][:32]))
    params = recipe.init(jax.random.key(0), batch)
    opt = optax.adam(recipe.learning_rate)

    @jax.jit
    def step(params, opt_state, key):
        (loss, _), grads = jax.value_and_grad(recipe.loss, has_aux=True)(params, batch, key)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, grads

    opt_state = opt.init(params)
    params, opt_state, loss0, grads = step(params, opt_state, jax.random.key(1))
    # adaLN-Zero at initialisation: the output is 0, so the loss is E||eps||^2 / dim = 1 up to
    # the batch's sampling error, and only the final layer's weights get a gradient (every
    # block's residual branch is gated by zero and the final linear map is zero).
    assert 0.7 < float(loss0) < 1.3
    net_grads = grads["net"]
    assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(net_grads.blocks)) == 0.0
    assert float(jnp.abs(net_grads.final.linear.kernel[...]).max()) > 0.0
    for i in range(2, 4):
        params, opt_state, loss, _ = step(params, opt_state, jax.random.key(i))
    assert np.isfinite(float(loss))

    # The label reaches the prediction (the samplers with a DiT: test_dit_samplers.py).
    x, t = jnp.asarray(train[0][:2]), jnp.array([500, 500])
    predict = jax.jit(lambda net, y: net(x, t, jnp.array([y, y])))
    eps_a, eps_b = (predict(params["net"], y) for y in (1, 7))
    assert float(jnp.abs(eps_a - eps_b).max()) > 0.0


CASES = [
    BadInput(
        "dit_recipes.dit_digits_sample: unknown sampler",
        lambda: dit_recipes.dit_digits_sample(jax.random.key(0), None, 2, sampler="euler"),
        "sampler",
    ),
    BadInput(
        "dit_recipes.dit_digits_sample: ddpm with fewer steps",
        lambda: dit_recipes.dit_digits_sample(
            jax.random.key(0),
            dit_recipes.dit_digits_init(jax.random.key(0), None),
            2,
            sampler="ddpm",
            steps=10,
        ),
        "steps",
    ),
    BadInput(
        "dit_recipes.dit_digits_sample: labels of the wrong length",
        lambda: dit_recipes.dit_digits_sample(jax.random.key(0), None, 3, labels=[1, 2]),
        "labels",
    ),
    BadInput(
        "dit_recipes.dit_digits_sample: n 0",
        lambda: dit_recipes.dit_digits_sample(jax.random.key(0), None, 0),
        "n",
    ),
]


def test_bad_input_is_handled():
    for case in CASES:
        assert_handled(case)
