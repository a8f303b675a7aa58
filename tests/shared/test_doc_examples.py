"""Every public sampler, loss and model constructor carries a ``>>>`` example.

The examples themselves run as doctests in the docs step of CI
(``python -m pytest --doctest-modules genjax``); this test keeps the inventory honest:
the role table covers exactly the public callables, and the names still without an
example are exactly :data:`genjax.testing.doc_examples.PENDING`.
"""

from __future__ import annotations

import pytest

from genjax.testing import doc_examples
from genjax.testing.doc_example_roles import ROLES

ALLOWED_ROLES = {"sampler", "loss", "constructor", "other"}


@pytest.fixture(scope="module")
def public() -> dict[str, object]:
    return doc_examples.public_callables()


def test_every_public_callable_has_one_role(public):
    table = doc_examples.roles()
    assert sorted(set(public) - set(table)) == [], "add these to doc_example_roles.ROLES"
    assert sorted(set(table) - set(public)) == [], "no longer public: remove from ROLES"
    listed = [
        f"{family}.{name}"
        for family, by in ROLES.items()
        for names in by.values()
        for name in names
    ]
    assert len(listed) == len(set(listed)), "a name is listed under two roles"
    assert {role for by in ROLES.values() for role in by} <= ALLOWED_ROLES


def test_samplers_losses_and_constructors_have_examples(public):
    missing = {entry.split(" ")[0] for entry in doc_examples.missing_examples()}
    assert sorted(missing - doc_examples.PENDING) == [], "write a >>> example for these"
    # A pending name that has gained an example leaves the list, so it only shrinks.
    assert sorted(doc_examples.PENDING - missing) == []


def test_has_example_detects_a_missing_example():
    def documented() -> None:
        """Doc.

        Example:
          >>> 1 + 1
          2
        """

    def undocumented() -> None:
        """Doc without an example."""

    assert doc_examples.has_example(documented)
    assert not doc_examples.has_example(undocumented)
    assert not doc_examples.has_example(lambda: None)
