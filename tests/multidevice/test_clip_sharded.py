"""The sharded CLIP loss equals the single-device loss, in value and gradient.

Run with 8 host devices (``.ci/run`` does):
``XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m pytest tests/multidevice``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import contrastive as c
from genjax.contrastive import oracle

if jax.device_count() < 8:  # the directory's conftest skips too; this keeps the file safe alone
    pytest.skip("needs 8 devices (XLA_FLAGS=--xla_force_host_platform_device_count=8)",
                allow_module_level=True)

N, D = 32, 8  # 4 rows per device


@pytest.fixture(scope="module")
def mesh():
    return jax.sharding.Mesh(np.asarray(jax.devices()[:8]), ("data",))


def _pair():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(N, D))
    return a.astype(np.float32), (a + 0.7 * rng.normal(size=(N, D))).astype(np.float32)


def test_sharded_value_and_gradient_equal_the_global_loss(mesh):
    a, b = _pair()
    s = jnp.float32(7.0)
    sharded = functools.partial(c.sharded_clip_loss, mesh=mesh)
    # Inputs already laid over the devices, as the trainer's batch is.
    spec = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    a_dev, b_dev = jax.device_put(a, spec), jax.device_put(b, spec)
    value = jax.jit(sharded)(a_dev, b_dev, s)
    grads = jax.jit(jax.grad(sharded, argnums=(0, 1, 2)))(a_dev, b_dev, s)
    global_value = jax.jit(c.clip_loss)(a, b, s)
    global_grads = jax.jit(jax.grad(c.clip_loss, argnums=(0, 1, 2)))(a, b, s)
    # float32 both sides, same math in a different summation order: 1e-6 relative on the
    # value; gradient entries ~1e-2 with float32 rounding of N-term sums: atol 1e-7.
    np.testing.assert_allclose(float(value), float(global_value), rtol=1e-6)
    np.testing.assert_allclose(float(value), oracle.clip_loss(a, b, 7.0), rtol=1e-5)
    for g, h in zip(grads, global_grads, strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(h), rtol=1e-5, atol=1e-7)
    for g, o in zip(grads, oracle.clip_loss_grad(a, b, 7.0), strict=True):
        np.testing.assert_allclose(np.asarray(g), o, rtol=1e-4, atol=1e-6)
    # The negatives really are gathered: a per-device loss (4 rows, no gathering) differs.
    per_device = np.mean([oracle.clip_loss(a[i:i + 4], b[i:i + 4], 7.0) for i in range(0, N, 4)])
    assert abs(per_device - float(value)) > 0.1


def test_sharded_bad_arguments(mesh):
    a, b = _pair()
    with pytest.raises(ValueError, match="divisible"):
        c.sharded_clip_loss(a[:30], b[:30], 1.0, mesh=mesh)
    with pytest.raises(ValueError, match="axis_name"):
        c.sharded_clip_loss(a, b, 1.0, mesh=mesh, axis_name="model")
    with pytest.raises(ValueError, match="logit_scale must be positive"):
        c.sharded_clip_loss(a, b, 0.0, mesh=mesh)
    with pytest.raises(ValueError, match="text_emb"):
        c.sharded_clip_loss(a, b[:-8], 1.0, mesh=mesh)
