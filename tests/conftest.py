"""Shared fixtures: keys, an x64 switch for oracle comparisons, loud numerics.

``jax_numpy_rank_promotion="raise"`` turns silent broadcasting between arrays of
different rank (a classic source of wrong-but-finite losses) into an error.
"""

from __future__ import annotations

import gc
import os

# Tests run on CPU and must never need an accelerator.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def key() -> jax.Array:
    """A fixed, typed PRNG key: same key, same output."""
    return jax.random.key(0)


@pytest.fixture
def keys() -> list[jax.Array]:
    """Eight independent fixed keys."""
    return list(jax.random.split(jax.random.key(1), 8))


@pytest.fixture
def x64():
    """Run the test body with float64 enabled (for tight comparisons with the oracles)."""
    with jax.enable_x64(True):
        yield


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Free every test module's compiled XLA programs when it ends.

    Each CPU executable maps its own code segments; one process compiling the whole suite's
    ~thousands of programs exhausts the kernel's memory-map limit (vm.max_map_count, 65530
    by default) and LLVM then fails with "Cannot allocate memory". Clearing JAX's caches per
    module keeps the live set to one module's programs.
    """
    yield
    jax.clear_caches()
    gc.collect()
