"""``python -m genjax.testing.probe``: every family's bad-input and valid-extreme counts.

Run from the repository root: it imports each ``CASES`` list of
:class:`genjax.testing.BadInput` in ``tests/<family>/test_*.py`` and prints, per family, how
many bad inputs got a clear error (and every one that did not), and how many valid extremes
stayed finite and correct (:func:`genjax.testing.bad_inputs.main`).
"""

from genjax.testing.bad_inputs import main

if __name__ == "__main__":
    raise SystemExit(main())
