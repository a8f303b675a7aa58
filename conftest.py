"""pytest hooks for the docstring examples: ``python -m pytest --doctest-modules genjax``.

The README's test line collects ``tests/`` only (``testpaths``), so nothing here runs there
except a no-op check in the fixture below. See :mod:`genjax.testing.doc_examples`.
"""

from __future__ import annotations

import os

# Examples run on CPU, as the tests do.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402
from _pytest.doctest import DoctestItem  # noqa: E402

# The benchmark suites time peer libraries (torch) and hold no examples; importing them
# would need the peers extra.
collect_ignore = ["genjax/bench"]


@pytest.fixture(autouse=True)
def _doctest_family_namespace(request: pytest.FixtureRequest) -> None:
    """Give every docstring example ``jax``, ``jnp``, ``np``, ``nnx`` and its family's names.

    An example in ``genjax/vae/loss.py`` may call ``mlp_vae`` (exported by ``genjax.vae``)
    without an import line, as a reader of the family's page would; the module's own globals
    win where a name is defined twice.
    """
    if not isinstance(request.node, DoctestItem):
        return
    from genjax.testing.doc_examples import example_namespace

    globs = request.node.dtest.globs
    for name, value in example_namespace(globs["__name__"]).items():
        globs.setdefault(name, value)
