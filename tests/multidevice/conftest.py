"""The multi-device tests need 8 devices; this file sets nothing, it only checks.

Run them in their own process, with the devices requested before JAX starts:

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m pytest tests/multidevice

(``.ci/run`` does). In the main suite, with one device, they are skipped. When ``XLA_FLAGS``
asks for 8 or more host devices and JAX still sees fewer (the flag came too late, or another
platform took over), collection fails instead: a CI run must not pass by skipping them all.
"""

from __future__ import annotations

import os
import re

import jax
import pytest

NEEDED = 8


def _requested() -> int:
    found = re.findall(r"--xla_force_host_platform_device_count=(\d+)",
                       os.environ.get("XLA_FLAGS", ""))
    return int(found[-1]) if found else 1


def pytest_collection_modifyitems(config, items):
    del config
    here = os.path.dirname(__file__)
    mine = [item for item in items if str(item.fspath).startswith(here)]
    if not mine or jax.device_count() >= NEEDED:
        return
    if _requested() >= NEEDED:
        raise pytest.UsageError(
            f"XLA_FLAGS asks for {_requested()} host devices but JAX sees "
            f"{jax.device_count()} ({jax.devices()}): the multidevice tests cannot run"
        )
    skip = pytest.mark.skip(
        reason=f"needs {NEEDED} devices (XLA_FLAGS=--xla_force_host_platform_device_count="
        f"{NEEDED}); JAX sees {jax.device_count()}"
    )
    for item in mine:
        item.add_marker(skip)
