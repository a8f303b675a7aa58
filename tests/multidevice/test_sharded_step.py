"""One training step on 8 devices equals the step on 1, for a recipe of every family.

For each family in the registry (families join as they land), its first recipe with a
``loss`` and its first with its own ``step`` (EM, counting, VQ-VAE's EMA codebook,
consistency training, a GAN's two players) are built on tiny data; then

* the compiled step on a 1-device mesh and on an 8-device mesh (batch laid over "data")
  give the same metrics (the loss among them) and the same new state;
* for loss recipes, the gradient the step applied (kept in the optimiser state by an identity
  transformation chained in front of the recipe's optimiser) equals the 1-device gradient;
* the 8-device step's compiled HLO holds all-reduces (the gradient / statistics sums) and no
  all-gather, all-to-all or reduce-scatter: the batch is never gathered.

Tolerance. Sharding changes only the order of float32 sums over the batch: each device sums
its 2 of 16 rows, then one all-reduce adds the 8 partial sums. Reordering a sum of b terms
moves it by at most (b - 1) * eps * sum|x_i| (Higham 2002, eq. 4.4), ~1e-6 of the terms'
scale for b = 16, eps = 6e-8. That rounding then passes through the backward pass of a
few layers and Adam's normalisation m / (sqrt(v) + eps) (which divides by |g|: relative
error in g stays relative error in the update); we allow rtol 2e-5 and an atol of 2e-6
times the leaf's scale (entries that cancel to near zero have no relative accuracy).
Integer leaves (counts, step counters) must agree exactly.

One exception, in the new parameters only: Adam's first update is
``lr * g / (|g| + eps)`` per coordinate (Kingma & Ba 2015, Algorithm 1), so a coordinate
whose gradient is itself a rounding residue moves by up to ``lr`` in a direction that the
summation order decides. Such coordinates exist: the gradient of an attention's key bias is
zero in exact arithmetic (softmax ignores a shift shared by all keys), so in float32 it is
pure rounding. More generally the reordering error of a sum is relative to its terms, not
to its value, so a coordinate whose gradient is small next to the rest of its leaf has few
correct digits, and Adam's scale-free step amplifies that. For loss recipes we see the
gradient (see ``_keep_gradient``): where the two gradients do not agree to 10%, or the
gradient is below 1e-3 of its leaf's largest, the new parameters may differ by up to
``2 * lr``. Recipes with their own step hide their gradient; for them at most 0.1% of a
leaf (and at least one entry) may. ``lr`` is the recipe's ``learning_rate`` (at least
``MIN_LR``).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genjax import data as data_lib
from genjax import registry, sharding, train

BATCH = 16  # two rows per device
FULL_N = 1001  # a full-batch data set that does not divide over 8 devices (7 * 143)
MINI_N = 64
RTOL = 2e-5
ATOL_SCALE = 2e-6
MIN_LR = 1e-3  # custom steps keep their own optimisers: Adam at 1e-3 in every one so far

#: Recipes whose step needs gathers, with why; True when even the batch itself is gathered.
GATHERS = {
    "ngram": (True, "counting n-grams sorts the whole corpus: XLA gathers the tokens to sort"),
    "clip": (False, "the contrastive loss compares each image with every caption of the "
                    "batch: devices gather the (B, E) embeddings, as distributed CLIP does"),
    "text-to-digit": (False, "its CLIP term (clip_model_loss) gathers the (B, E) embeddings, "
                             "as clip does; the diffusion term is per example"),
}

#: Recipes whose gradient is a difference of two batch means of bounded terms, with the bound
#: on the terms: the reordering error of each mean is relative to its terms (Higham 2002,
#: eq. 4.4), not to the difference, which can be 1e-3 of them. The gradient's tolerance is
#: then scaled by the terms' bound where that exceeds the leaf's largest entry.
TERM_SCALES = {
    # contrastive divergence: dF/dtheta at the data minus at the Gibbs negatives, built of
    # sigmoid probabilities and binary units, each in [0, 1]
    "rbm": 1.0,
}

#: LLVM's expensive passes off: compiling dominates this file's time. They act after SPMD
#: partitioning, so the collectives counted below are those of the default compile.
FAST_COMPILE = {"xla_llvm_disable_expensive_passes": True, "xla_backend_optimization_level": 0}


def _chosen() -> list[registry.Recipe]:
    """The first loss recipe and the first own-step recipe of every registered family."""
    picked: dict[tuple[str, bool], registry.Recipe] = {}
    for recipe in registry.recipes().values():
        picked.setdefault((recipe.family, recipe.step is not None), recipe)
    return list(picked.values())


RECIPES = _chosen()


def tiny_data(recipe: registry.Recipe):
    """The recipe's own training data, cut to a few rows (1001 for full-batch recipes)."""
    loaded = (recipe.load_data(recipe.data, "train", 0) if recipe.load_data is not None
              else data_lib.load(recipe.data, split="train"))
    n = FULL_N if recipe.full_batch else MINI_N
    return jax.tree.map(lambda a: np.asarray(a[:n]), loaded)


def _keep_gradient() -> optax.GradientTransformation:
    """An identity transformation whose state is the last gradient: chained in front of the
    recipe's optimiser, it makes the real step program return its gradient."""
    return optax.GradientTransformation(
        lambda params: jax.tree.map(jnp.zeros_like, params),
        lambda grads, state, params=None: (grads, grads),
    )


def _with_gradient(recipe: registry.Recipe) -> registry.Recipe:
    if recipe.loss is None:
        return recipe
    return dataclasses.replace(
        recipe,
        optimizer=lambda total: optax.chain(_keep_gradient(), train.make_optimizer(recipe, total)),
    )


def _prepare(name: str, devices: int, data, state):
    recipe = _with_gradient(registry.get(name))
    n = jax.tree.leaves(data)[0].shape[0]
    mesh = sharding.make_mesh(devices)
    state = sharding.put_replicated(state, mesh)
    placed = sharding.put_replicated(jax.tree.map(jnp.asarray, data), mesh)
    step = train.make_step(recipe, jax.random.key(1), num_examples=n, batch_size=BATCH,
                           total_steps=10, mesh=mesh)
    return state, placed, step.lower(state, placed)


@functools.cache
def _programs() -> dict:
    """For every chosen recipe and 1 or 8 devices: (state, compiled HLO text, new state,
    metrics), or the exception that building it raised.

    Tracing and the recipes' eager initialisation run here, in this thread, while XLA
    compiles the programs traced so far on two worker threads: compiling dominates, and
    it releases the GIL, so both cores are busy.
    """
    out: dict = {}
    pending = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        for recipe in RECIPES:
            try:
                data = tiny_data(recipe)
                state = train.init_state(_with_gradient(recipe), jax.random.key(0),
                                         jax.tree.map(jnp.asarray, data), 10)
                for devices in (1, 8):
                    placed_state, placed, lowered = _prepare(recipe.name, devices, data, state)
                    pending[recipe.name, devices] = (
                        placed_state, placed, pool.submit(lowered.compile, FAST_COMPILE))
            except Exception as err:  # reported by this recipe's tests, not by all of them
                out[recipe.name, 1] = out[recipe.name, 8] = err
        for key, (state, placed, future) in pending.items():
            try:
                compiled = future.result()
                new_state, metrics = compiled(state, placed)
                out[key] = (state, compiled.as_text(), new_state, metrics, placed)
            except Exception as err:
                out[key] = err
    return out


def _run(name: str, devices: int):
    result = _programs()[name, devices]
    if isinstance(result, Exception):
        raise result
    return result


def _assert_same(a, b, what: str, *, adam_lr: float | None = None, residues=None,
                 term_scale: float = 0.0) -> None:
    """``b`` equals ``a`` leaf by leaf (module docstring: tolerances). With ``adam_lr``,
    entries flagged in ``residues`` (a tree of bool masks like ``a``; None: any 0.1%) may
    differ by up to ``2 * adam_lr``."""
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    masks = [None] * len(leaves_a) if residues is None else jax.tree.leaves(residues)
    assert tree_a == tree_b, what
    assert leaves_a, f"{what}: nothing to compare"
    for i, (x, y, mask) in enumerate(zip(leaves_a, leaves_b, masks, strict=True)):
        x, y = np.asarray(sharding.to_local(x)), np.asarray(sharding.to_local(y))
        assert x.dtype == y.dtype and x.shape == y.shape, f"{what} leaf {i}"
        if not np.issubdtype(x.dtype, np.inexact):
            np.testing.assert_array_equal(y, x, err_msg=f"{what} leaf {i}")
            continue
        scale = max(float(np.max(np.abs(x))) if x.size else 0.0, term_scale)
        off = np.abs(y - x) > RTOL * np.abs(x) + ATOL_SCALE * scale
        if adam_lr is not None:
            allowed = (off.sum() <= max(1, x.size // 1000)) if mask is None else mask
            np.testing.assert_array_less(np.abs(y - x)[off & allowed], 2 * adam_lr,
                                         err_msg=f"{what} leaf {i} {x.shape}")
            off = off & ~allowed
        if off.any():
            np.testing.assert_allclose(y, x, rtol=RTOL, atol=ATOL_SCALE * scale,
                                       err_msg=f"{what} leaf {i} {x.shape}")


@pytest.mark.parametrize("name", [r.name for r in RECIPES])
def test_sharded_step_equals_single_device_step(name):
    before, _, state1, metrics1, _ = _run(name, 1)
    _, _, state8, metrics8, _ = _run(name, 8)
    assert set(metrics1) == set(metrics8)
    _assert_same(metrics1, metrics8, f"{name} metrics")  # the loss among them
    recipe = registry.get(name)
    if recipe.loss is not None:
        # The gradient that the step applied (kept by _keep_gradient): summed across devices
        # it equals the single-device gradient, and it is not zero.
        grads1, grads8 = state1.opt_state[0], state8.opt_state[0]
        _assert_same(grads1, grads8, f"{name} gradient", term_scale=TERM_SCALES.get(name, 0.0))
        assert sum(float(jnp.sum(jnp.square(g))) for g in jax.tree.leaves(grads1)) > 0
    lr = max(recipe.learning_rate, MIN_LR)
    residues = None
    if recipe.loss is not None:
        def residue(g, h):
            g, h = np.abs(np.asarray(g)), np.abs(np.asarray(g) - np.asarray(h))
            return (h > 0.1 * g) | (g < 1e-3 * g.max(initial=0.0))

        residues = jax.tree.map(residue, grads1, grads8)
    # The optimiser state holds the kept gradient and Adam's moments m = (1 - b1) g and
    # v = (1 - b2) g^2, whose rounding is at most that of g where |g| <= 1: same scale.
    _assert_same((state1.step, state1.opt_state), (state8.step, state8.opt_state),
                 f"{name} optimiser state", term_scale=TERM_SCALES.get(name, 0.0))
    for field in ("params", "ema_params"):
        if getattr(state1, field) is not None:
            _assert_same(getattr(state1, field), getattr(state8, field), f"{name} new {field}",
                         adam_lr=lr, residues=residues)
    # The step did something: a step that returned its input would pass the comparison.
    moved = [not np.array_equal(np.asarray(a), np.asarray(b))
             for a, b in zip(jax.tree.leaves(before.params), jax.tree.leaves(state1.params),
                             strict=True)]
    assert any(moved), f"{name}: the step left every parameter unchanged"
    # Outputs stay replicated over all 8 devices: the next step gets the same layout.
    leaf = jax.tree.leaves(state8.params)[0]
    assert leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == 8


def _gathered_shapes(hlo: str) -> list[tuple[str, tuple[int, ...]]]:
    """(dtype, shape) of every array an all-gather in ``hlo`` produces."""
    shapes = []
    for line in hlo.splitlines():
        head, sep, _ = line.partition(" all-gather(")
        if not sep:
            head, sep, _ = line.partition(" all-gather-start(")
        if sep and "=" in head:
            result = head.split("=", 1)[1]
            shapes += [(t, tuple(int(d) for d in dims.split(",") if d))
                       for t, dims in re.findall(r"(\w+)\[([\d,]*)\]", result)]
    return shapes


@pytest.mark.parametrize("name", [r.name for r in RECIPES])
def test_compiled_step_all_reduces_and_never_gathers_the_batch(name):
    recipe = registry.get(name)
    _, hlo, _, _, placed = _run(name, 8)
    counts = sharding.count_collectives(hlo)
    # The sums over the batch (gradients, statistics, metrics) become all-reduces.
    assert counts["all-reduce"] >= 1, counts
    assert counts["all-to-all"] == 0 and counts["reduce-scatter"] == 0, counts
    rows = jax.tree.leaves(placed)[0].shape[0] if recipe.full_batch else BATCH
    batch = {(str(x.dtype).replace("float", "f").replace("int", "s"), (rows, *x.shape[1:]))
             for x in jax.tree.leaves(placed)}
    gathered = set(_gathered_shapes(hlo))
    assert len(gathered) >= min(1, counts["all-gather"])  # the parser sees them
    gathers_batch, _why = GATHERS.get(name, (False, ""))
    if name not in GATHERS:
        assert counts["all-gather"] == 0, counts
    elif not gathers_batch:
        assert not gathered & batch, (gathered, batch)  # only derived arrays travel
    # The single-device program has no collectives at all.
    assert sum(sharding.count_collectives(_run(name, 1)[1]).values()) == 0


def test_every_registered_family_is_covered():
    families = {r.family for r in registry.recipes().values()}
    assert {r.family for r in RECIPES} == families
    assert {"diffusion", "vae", "counting", "mixture"} <= families
