"""LoRA (Hu et al. 2021) held to its NumPy oracle and to its exact properties.

* the linear and convolutional forward passes equal ``genjax.nn.oracle_lora`` (float64, from
  eq. 3) with a non-zero ``B``, under ``jax.jit`` and without;
* with ``B = 0`` (initialisation) the adapted model equals the base model bit for bit;
* merged and unmerged outputs agree, the merged kernel is the oracle's ``W0 + (alpha/r) A B``,
  and unmerging gives ``W0`` back;
* after training, the update of every kernel has rank exactly ``r`` (not 0: it moved), the
  frozen parameters are unchanged bit for bit, and the optimiser holds state for the
  adapters only.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from genjax import nn
from genjax.nn import oracle_lora

# float32 against float64: sums of <= 50 products of O(1) terms, each rounded at ~6e-8
# relative, stay well inside 1e-5 (Higham's gamma_n bound with n = 50 is 3e-6).
RTOL = ATOL = 1e-5


def _randomise_b(layer, key):
    """A non-zero B, so that the low-rank path contributes (B = 0 would hide its bugs)."""
    layer.lora_b.set_value(jax.random.normal(key, layer.lora_b[...].shape))
    return layer


class Small(nnx.Module):
    """Convolutions and linear layers in attributes, an ``nnx.List`` and an ``nnx.Dict``."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.conv = nnx.Conv(2, 4, (3, 3), rngs=rngs)
        self.blocks = nnx.List([nnx.Dict(down=nnx.Conv(4, 4, (3, 3), strides=2, rngs=rngs))])
        self.head = nnx.Linear(4 * 3 * 3, 3, rngs=rngs)

    def __call__(self, x):
        h = nnx.silu(self.conv(x))  # (B, 6, 6, 4)
        h = self.blocks[0]["down"](h)  # (B, 3, 3, 4)
        return self.head(h.reshape(h.shape[0], -1))  # (B, 3)


X_SMALL = jax.random.normal(jax.random.key(5), (2, 6, 6, 2))


@pytest.mark.parametrize("jit", [False, True])
def test_linear_matches_oracle(jit):
    layer = nn.LoRALinear(nnx.Linear(5, 4, rngs=nnx.Rngs(0)), rank=2, alpha=3.0, rngs=nnx.Rngs(1))
    _randomise_b(layer, jax.random.key(2))
    x = jax.random.normal(jax.random.key(3), (6, 5))
    call = jax.jit(lambda m, x: m(x)) if jit else (lambda m, x: m(x))
    want = oracle_lora.lora_linear(
        np.asarray(x),
        layer.base.kernel[...],
        layer.base.bias[...],
        layer.lora_a[...],
        layer.lora_b[...],
        3.0,
    )
    np.testing.assert_allclose(call(layer, x), want, rtol=RTOL, atol=ATOL)
    # the adapter moves the output by a non-negligible amount (the test can fail)
    assert np.max(np.abs(want - np.asarray(layer.base(x)))) > 0.1


CONV_CASES = [
    dict(strides=1, padding="SAME", kernel_dilation=1),
    dict(strides=2, padding="VALID", kernel_dilation=1),
    dict(strides=1, padding=((1, 0), (2, 1)), kernel_dilation=2),
    dict(strides=(2, 1), padding=1, kernel_dilation=1),
]


@pytest.mark.parametrize(
    ("case", "jit"),
    [(c, True) for c in CONV_CASES] + [(CONV_CASES[0], False)],
    ids=lambda v: f"{v['strides']}-{v['padding']}" if isinstance(v, dict) else f"jit={v}",
)
def test_conv_matches_oracle(case, jit):
    base = nnx.Conv(
        3,
        4,
        (3, 2),
        strides=case["strides"],
        padding=case["padding"],
        kernel_dilation=case["kernel_dilation"],
        rngs=nnx.Rngs(0),
    )
    layer = _randomise_b(nn.LoRAConv(base, rank=2, alpha=1.0, rngs=nnx.Rngs(1)), jax.random.key(2))
    x = jax.random.normal(jax.random.key(3), (2, 7, 6, 3))
    call = jax.jit(lambda m, x: m(x)) if jit else (lambda m, x: m(x))
    strides = (case["strides"],) * 2 if isinstance(case["strides"], int) else case["strides"]
    padding = case["padding"]
    if isinstance(padding, int):
        padding = ((padding, padding),) * 2
    want = oracle_lora.lora_conv2d(
        np.asarray(x),
        base.kernel[...],
        base.bias[...],
        layer.lora_a[...],
        layer.lora_b[...],
        1.0,
        strides=strides,
        padding=padding,
        dilation=(case["kernel_dilation"],) * 2,
    )
    np.testing.assert_allclose(call(layer, x), want, rtol=RTOL, atol=ATOL)
    assert np.max(np.abs(want - np.asarray(base(x)))) > 0.1


def test_conv_keeps_extra_batch_axes():
    layer = _randomise_b(
        nn.LoRAConv(nnx.Conv(2, 3, (3, 3), rngs=nnx.Rngs(0)), rank=1, rngs=nnx.Rngs(1)),
        jax.random.key(2),
    )
    x = jax.random.normal(jax.random.key(3), (2, 3, 5, 5, 2))
    np.testing.assert_allclose(
        layer(x).reshape(6, 5, 5, 3), layer(x.reshape(6, 5, 5, 2)), rtol=RTOL, atol=ATOL
    )


def test_b_zero_at_init_is_the_base_model_exactly():
    base = Small(nnx.Rngs(0))
    adapted = nn.apply_lora(jax.random.key(1), base, rank=2)
    names = sorted(
        ".".join(map(str, p))
        for p, m in nnx.iter_graph(adapted)
        if isinstance(m, (nn.LoRALinear, nn.LoRAConv))
    )
    assert names == ["blocks.0.down", "conv", "head"]
    assert isinstance(base.conv, nnx.Conv)  # the original is not modified
    np.testing.assert_array_equal(adapted(X_SMALL), base(X_SMALL))
    for _, m in nnx.iter_graph(adapted):
        if isinstance(m, (nn.LoRALinear, nn.LoRAConv)):
            assert not np.any(m.lora_b[...]) and np.all(np.std(m.lora_a[...]) > 0)


def test_where_selects_by_path_and_adapted_layers_are_skipped():
    adapted = nn.apply_lora(
        jax.random.key(1),
        Small(nnx.Rngs(0)),
        rank=1,
        where=lambda path, layer: path.startswith("blocks"),
    )
    assert isinstance(adapted.blocks[0]["down"], nn.LoRAConv)
    assert isinstance(adapted.conv, nnx.Conv) and isinstance(adapted.head, nnx.Linear)
    again = nn.apply_lora(jax.random.key(2), adapted, rank=1)  # the rest, not the base inside
    assert isinstance(again.blocks[0]["down"].base, nnx.Conv)
    np.testing.assert_array_equal(
        again.blocks[0]["down"].lora_a[...], adapted.blocks[0]["down"].lora_a[...]
    )


@pytest.fixture(scope="module")
def trained():
    """The small model adapted at rank 2 and trained 5 Adam steps on a regression:
    ``(start, model, optimiser state)``."""
    model = nn.apply_lora(jax.random.key(1), Small(nnx.Rngs(0)), rank=2, alpha=4.0)
    opt = nn.lora_optimizer(optax.adam(0.05))
    target = jax.random.normal(jax.random.key(9), (2, 3))

    @jax.jit
    def step(model, state):
        grads = jax.grad(lambda m: jnp.mean((m(X_SMALL) - target) ** 2))(model)
        updates, state = opt.update(grads, state, model)
        return optax.apply_updates(model, updates), state

    state = opt.init(model)
    start = model
    for _ in range(5):
        model, state = step(model, state)
    return start, model, state


def test_training_moves_only_the_adapters_with_a_rank_r_update(trained):
    start, model, _ = trained
    labels = jax.tree.leaves(nn.lora_labels(model))
    for label, a, b in zip(labels, jax.tree.leaves(start), jax.tree.leaves(model), strict=True):
        if label == "frozen":
            np.testing.assert_array_equal(a, b)  # frozen: bit for bit
        else:
            assert np.max(np.abs(np.asarray(a) - np.asarray(b))) > 1e-3  # trained
    merged = nn.merge_lora(model)
    for path, layer in nnx.iter_graph(model):
        if not isinstance(layer, (nn.LoRALinear, nn.LoRAConv)):
            continue
        before = np.asarray(layer.base.kernel[...], np.float64)
        after = np.asarray(_at(merged, path).base.kernel[...], np.float64)
        delta = (after - before).reshape(-1, before.shape[-1])  # (fan_in, d_out)
        s = np.linalg.svd(delta, compute_uv=False)
        # rank exactly r = 2: two singular values well above float32 rounding of the
        # kernel (|W| ~ 1, eps 6e-8), the rest at that rounding level.
        assert s[1] > 1e-3 * s[0] and s[0] > 1e-4, (path, s)
        assert np.all(s[2:] < 1e-5 * max(1.0, np.abs(after).max())), (path, s)


def _at(model, path):
    node = model
    for k in path:
        node = node[k] if isinstance(k, int) or isinstance(node, nnx.Dict) else getattr(node, k)
    return node


def test_frozen_parameters_get_no_optimiser_state(trained):
    _, model, state = trained
    trainable, total = nn.lora_parameter_counts(model)
    arrays = [x for x in jax.tree.leaves(state) if np.ndim(x) > 0]
    # Adam's two moments of the adapters, nothing for the frozen weights
    assert sum(np.size(x) for x in arrays) == 2 * trainable
    lora_shapes = sorted(
        np.shape(v)
        for v, lab in zip(
            jax.tree.leaves(model), jax.tree.leaves(nn.lora_labels(model)), strict=True
        )
        if lab == "lora"
    )
    assert sorted(np.shape(x) for x in arrays) == sorted(lora_shapes * 2)
    assert 0 < trainable < total


def test_merged_and_unmerged_agree_and_merge_is_the_oracle_kernel(trained):
    _, model, _ = trained
    merged = nn.merge_lora(model)
    # same function, one product per layer: float32 rounding of O(1) outputs only
    np.testing.assert_allclose(merged(X_SMALL), model(X_SMALL), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(
        jax.jit(lambda m: m(X_SMALL))(merged), model(X_SMALL), rtol=RTOL, atol=ATOL
    )
    assert np.max(np.abs(np.asarray(model(X_SMALL) - Small(nnx.Rngs(0))(X_SMALL)))) > 1e-3
    head = model.head
    want = oracle_lora.merged_kernel(
        head.base.kernel[...], head.lora_a[...], head.lora_b[...], head.alpha
    )
    np.testing.assert_allclose(merged.head.base.kernel[...], want, rtol=RTOL, atol=ATOL)
    assert merged.head.merged and not model.head.merged
    back = nn.unmerge_lora(merged)
    assert not back.head.merged
    np.testing.assert_allclose(back.head.base.kernel[...], head.base.kernel[...], atol=1e-6)
    np.testing.assert_allclose(back(X_SMALL), model(X_SMALL), rtol=RTOL, atol=ATOL)


def test_labels_of_a_dict_holding_a_model_and_arrays():
    model = nn.apply_lora(jax.random.key(0), nnx.Linear(3, 2, rngs=nnx.Rngs(0)), rank=1)
    labels = nn.lora_labels({"net": model, "shift": jnp.zeros(3)})
    flat = dict(
        zip(
            [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(labels)[0]],
            jax.tree.leaves(labels),
            strict=True,
        )
    )
    assert flat["['shift']"] == "frozen"
    assert sorted(k for k, v in flat.items() if v == "lora") == [
        "['net'].lora_a.value",
        "['net'].lora_b.value",
    ]
    assert nn.lora_parameter_counts({"net": model, "shift": jnp.zeros(3)}) == (5, 16)
