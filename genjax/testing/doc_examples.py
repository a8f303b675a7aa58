"""Which public sampler, loss and model constructor has an executable docstring example.

Runner (once per CI, in the docs step; not in the README's test line, whose ``testpaths``
is ``tests``)::

    python -m pytest --doctest-modules genjax -q -p no:cacheprovider

Cost (measured 2026-12-05, 09:13-09:30, on the shared 2-core machine, load average 25 falling
to 6 from nine concurrent sessions): ``-n 3``: 287 passed, 385 s user + 12 s sys CPU, 1021 s
wall. About 1.4 s of CPU per item, almost all XLA compiles of each example's jitted sampler
or loss (slowest: glow, conv_vae, pixelcnn_loss, DCGAN). On an idle 2-core machine with
``-n 2`` that is ~200 s wall -- over the 60 s target.

The options (``NORMALIZE_WHITESPACE``, ``ELLIPSIS``, ``NUMBER``) are in pyproject's
``[tool.pytest.ini_options]``; the repository's ``conftest.py`` skips ``genjax/bench``
(peer libraries) and gives every example ``jax``, ``jnp``, ``np``, ``nnx`` and the public
names of its family (:func:`example_namespace`), so an example in ``genjax/vae/loss.py``
calls ``mlp_vae`` as a reader of ``genjax.vae`` would.

What an example shows: something true and checkable (a shape, a known value such as
``kl_diag_gaussian(0, 0) = 0``, a first beta), at tiny sizes (each compiles in well under a
second), with ``jax.random.key(0)``, floats rounded (``round(float(x), 4)``) or reduced to
``bool``/``.shape``.

:data:`genjax.testing.doc_example_roles.ROLES` lists every public callable of every family
package with its role; ``tests/shared/test_doc_examples.py`` fails when a public callable is
missing from it, when a listed name is no longer public, and when a sampler, loss or
constructor has no ``>>>`` example and is not in :data:`PENDING` (the names still to do, a
list that may only shrink: a pending name that gains an example must leave it).
"""

from __future__ import annotations

import importlib
import inspect
import types
from typing import Any

import genjax
from genjax.testing.doc_example_roles import ROLES

#: The packages whose public callables are checked: the families and the shared packages.
FAMILIES: tuple[str, ...] = genjax.FAMILIES + ("nn", "metrics", "targets", "ode", "data")
REQUIRED_ROLES: tuple[str, ...] = ("sampler", "loss", "constructor")

# Samplers, losses and constructors that still lack an example (see the module docstring).
PENDING: frozenset[str] = frozenset()


def _public(module_name: str) -> list[tuple[str, Any]]:
    """``(name, object)`` for every public non-module name of a family package or module.

    ``__all__`` where the module has one (a submodule in it contributes its own public
    names, prefixed ``sub.``); otherwise every name not starting with ``_`` -- in a package
    the re-exports of its ``__init__``, in a plain module only what it defines.
    """
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    out: list[tuple[str, Any]] = []
    if names is None:
        is_package = hasattr(module, "__path__")
        for name, obj in vars(module).items():
            if name.startswith("_") or isinstance(obj, types.ModuleType):
                continue
            if not is_package and getattr(obj, "__module__", None) != module_name:
                continue
            out.append((name, obj))
        return out
    for name in names:
        obj = getattr(module, name)
        if isinstance(obj, types.ModuleType):
            out += [(f"{name}.{sub}", o) for sub, o in _public(obj.__name__)]
        else:
            out.append((name, obj))
    return out


def _family_of(obj: Any) -> str | None:
    """The family whose package defines ``obj`` (``genjax.targets.gan`` -> ``targets``)."""
    parts = (getattr(inspect.unwrap(obj), "__module__", None) or "").split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "genjax" else None


def public_callables() -> dict[str, Any]:
    """``"family.name" -> callable`` over every family, each object once.

    A name re-exported by a second family (``genjax.gan.optimal_discriminator`` from
    ``genjax.targets``) is listed under the family that defines it.
    """
    found: dict[str, Any] = {}
    seen: set[int] = set()
    for family in FAMILIES:
        for name, obj in _public(f"genjax.{family}"):
            if not callable(obj):
                continue
            ident = id(obj if isinstance(obj, type) else inspect.unwrap(obj))
            if ident in seen:
                continue
            home = _family_of(obj)
            if home in FAMILIES and home != family:
                home_names = {id(o): n for n, o in _public(f"genjax.{home}")}
                if id(obj) in home_names:
                    seen.add(ident)
                    found[f"{home}.{home_names[id(obj)]}"] = obj
                    continue
            seen.add(ident)
            found[f"{family}.{name}"] = obj
    return found


def roles() -> dict[str, str]:
    """``"family.name" -> role`` from the checked-in table."""
    return {
        f"{family}.{name}": role
        for family, by_role in ROLES.items()
        for role, names in by_role.items()
        for name in names
    }


def has_example(obj: Any) -> bool:
    """Whether ``obj``'s docstring holds a ``>>>`` example."""
    return ">>>" in (inspect.getdoc(obj) or "")


def missing_examples() -> list[str]:
    """Samplers, losses and constructors without an example, ``"family.name (role)"``."""
    table = roles()
    return [
        f"{name} ({table[name]})"
        for name, obj in public_callables().items()
        if table.get(name) in REQUIRED_ROLES and not has_example(obj)
    ]


def example_namespace(module_name: str) -> dict[str, Any]:
    """What a docstring example of ``module_name`` may use without importing it.

    ``genjax``, ``jax``, ``jnp``, ``np``, ``nnx`` and every public name of the module's family
    package (``genjax.vae.loss`` -> ``genjax.vae``); the module's own globals take precedence.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    import genjax

    namespace: dict[str, Any] = {"genjax": genjax, "jax": jax, "jnp": jnp, "np": np, "nnx": nnx}
    parts = module_name.split(".")
    if len(parts) > 1 and parts[0] == "genjax" and parts[1] in FAMILIES:
        family = importlib.import_module(f"genjax.{parts[1]}")
        names = getattr(family, "__all__", None) or [n for n in vars(family) if n[0] != "_"]
        namespace.update({n: getattr(family, n) for n in names})
    return namespace
