"""Every oracle imports with JAX (and the rest of genjax) made unimportable.

An oracle is an independent derivation of the math in NumPy; one that leaned on JAX or on the
code it checks would agree with that code by construction, and the test holding the two
together would prove nothing.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ORACLES = sorted(ROOT.glob("genjax/**/oracle*.py"))
FORBIDDEN = ("jax", "jaxlib", "flax", "optax", "chex", "genjax", "torch", "orbax")

BLOCKER = textwrap.dedent(
    f"""
    import importlib.abc, importlib.util, sys
    FORBIDDEN = {FORBIDDEN!r}

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in FORBIDDEN:
                raise ImportError(f"oracle imported {{name}}")
            return None

    sys.meta_path.insert(0, Block())
    spec = importlib.util.spec_from_file_location("oracle_under_test", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    public = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
    assert public, "the oracle defines no functions"
    print(len(public))
    """
)


def test_there_are_oracles():
    assert len(ORACLES) >= 2, ORACLES


@pytest.mark.parametrize("path", ORACLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_oracle_imports_without_jax(path):
    out = subprocess.run(
        [sys.executable, "-c", BLOCKER, str(path)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout.strip()) > 0
