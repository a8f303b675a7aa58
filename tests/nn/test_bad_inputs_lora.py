"""Bad and extreme inputs to LoRA (``genjax.nn.lora``), in the shared BadInput format."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import nn
from genjax.testing import BadInput, assert_handled

LINEAR = nnx.Linear(4, 3, rngs=nnx.Rngs(0))
CONV = nnx.Conv(2, 3, (3, 3), rngs=nnx.Rngs(0))
ADAPTED = nn.LoRALinear(LINEAR, rank=2, rngs=nnx.Rngs(1))


def _case(name, call, argument="", kind="reject", check=None):
    return BadInput(name, call, argument, kind, check)


def _big_b(layer):
    layer = nnx.clone(layer)
    layer.lora_b.set_value(jnp.full(layer.lora_b[...].shape, 1e3))
    return layer


CASES = [
    _case(
        "lora.LoRALinear: rank 0", lambda: nn.LoRALinear(LINEAR, rank=0, rngs=nnx.Rngs(0)), "rank"
    ),
    _case(
        "lora.LoRALinear: rank above min(d_in, d_out)",
        lambda: nn.LoRALinear(LINEAR, rank=4, rngs=nnx.Rngs(0)),
        "rank",
    ),
    _case(
        "lora.LoRALinear: alpha 0",
        lambda: nn.LoRALinear(LINEAR, rank=1, alpha=0.0, rngs=nnx.Rngs(0)),
        "alpha",
    ),
    _case(
        "lora.LoRALinear: alpha nan",
        lambda: nn.LoRALinear(LINEAR, rank=1, alpha=float("nan"), rngs=nnx.Rngs(0)),
        "alpha",
    ),
    _case(
        "lora.LoRALinear: base a Conv",
        lambda: nn.LoRALinear(CONV, rank=1, rngs=nnx.Rngs(0)),
        "base",
    ),
    _case(
        "lora.LoRALinear: x with the wrong number of features",
        lambda: ADAPTED(jnp.zeros((2, 5))),
        "x",
    ),
    _case(
        "lora.LoRAConv: grouped convolution",
        lambda: nn.LoRAConv(
            nnx.Conv(2, 4, (3, 3), feature_group_count=2, rngs=nnx.Rngs(0)),
            rank=1,
            rngs=nnx.Rngs(0),
        ),
        "base",
    ),
    _case(
        "lora.LoRAConv: circular padding",
        lambda: nn.LoRAConv(
            nnx.Conv(2, 3, (3, 3), padding="CIRCULAR", rngs=nnx.Rngs(0)), rank=1, rngs=nnx.Rngs(0)
        ),
        "padding",
    ),
    _case(
        "lora.LoRAConv: x with the wrong channels",
        lambda: nn.LoRAConv(CONV, rank=1, rngs=nnx.Rngs(0))(jnp.zeros((1, 5, 5, 4))),
        "x",
    ),
    _case(
        "lora.apply_lora: where selects nothing",
        lambda: nn.apply_lora(
            jax.random.key(0),
            nn.MLP(2, [4], 2, rngs=nnx.Rngs(0)),
            rank=1,
            where=lambda path, layer: False,
        ),
        "where",
    ),
    _case(
        "lora.apply_lora: model not a module",
        lambda: nn.apply_lora(jax.random.key(0), {"w": jnp.zeros(2)}, rank=1),
        "model",
    ),
    _case(
        "lora.merge_lora: a model without adapters",
        lambda: nn.merge_lora(nn.MLP(2, [4], 2, rngs=nnx.Rngs(0))),
        "model",
    ),
    _case(
        "lora.unmerge_lora: a model without adapters",
        lambda: nn.unmerge_lora(nn.MLP(2, [4], 2, rngs=nnx.Rngs(0))),
        "model",
    ),
    # --- valid extremes -----------------------------------------------------------------
    _case(
        "lora.LoRALinear: rank = min(d_in, d_out), x of 1e4",
        kind="extreme",
        call=lambda: nn.LoRALinear(LINEAR, rank=3, rngs=nnx.Rngs(0))(jnp.full((2, 4), 1e4)),
        check=lambda y: bool(np.allclose(y, LINEAR(jnp.full((2, 4), 1e4)), rtol=1e-6)),
    ),
    _case(
        "lora.merge_lora: B of 1e3 merged equals unmerged",
        kind="extreme",
        call=lambda: (
            nn.merge_lora(_big_b(ADAPTED))(jnp.ones((1, 4))),
            _big_b(ADAPTED)(jnp.ones((1, 4))),
        ),
        check=lambda ys: bool(np.allclose(ys[0], ys[1], rtol=1e-5)),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_handled(case):
    assert_handled(case)
