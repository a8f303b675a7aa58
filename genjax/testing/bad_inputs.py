"""Bad-input probes: does a public function answer a wrong argument with a clear error?

DESIGN.md, "Bad input gets a clear error": an argument checkable at trace time raises
``ValueError`` (or ``TypeError`` for a wrong kind of object) whose message names the argument.
Each family's ``tests/<family>/test_bad_inputs.py`` lists :class:`BadInput` cases -- one call
each, with the argument it gets wrong -- and runs :func:`assert_handled` on every case; the
probe (``python -m genjax.testing.probe``) imports every ``CASES`` list of the test modules
and counts the outcomes:

* ``clear``: ``ValueError``/``TypeError`` whose message names the argument (the goal);
* ``cryptic``: some other exception, or one that does not name the argument;
* ``silent_nonfinite``: returned NaN/inf without a word;
* ``silent_finite``: returned a finite (hence wrong, or at least unjustified) answer.

A *valid extreme* (``kind="extreme"``) is the opposite kind of case: an input the documented
domain allows, however extreme, whose answer must be finite (and, when ``check`` is given,
correct). Its outcomes are ``ok``, ``nonfinite``, ``wrong`` (``check`` failed) or ``raised``.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jax
import numpy as np

__all__ = ["BadInput", "classify", "assert_handled", "probe"]

REJECT_OUTCOMES = ("clear", "cryptic", "silent_nonfinite", "silent_finite")
EXTREME_OUTCOMES = ("ok", "nonfinite", "wrong", "raised")


@dataclasses.dataclass(frozen=True)
class BadInput:
    """One probe of one public function.

    Attributes:
      name: ``"<module>.<function>: <what is wrong>"``, shown in test ids and probe output.
      call: a thunk making the call (build arrays inside it or before; it is called once).
      argument: the argument's name as the function spells it; a clear error's message must
        contain it (for ``kind="reject"``).
      kind: ``"reject"`` (the input is outside the documented domain and must raise) or
        ``"extreme"`` (inside the domain, must return finite and correct values).
      check: for ``"extreme"``, an optional predicate on the result (True when correct).
    """

    name: str
    call: Callable[[], Any]
    argument: str = ""
    kind: str = "reject"
    check: Callable[[Any], bool] | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("reject", "extreme"):
            raise ValueError(f"kind must be one of 'reject', 'extreme', got {self.kind!r}")
        if self.kind == "reject" and not self.argument:
            raise ValueError(f"{self.name}: a 'reject' case names the argument it gets wrong")


def _all_finite(result: Any) -> bool:
    leaves = [
        np.asarray(leaf)
        for leaf in jax.tree_util.tree_leaves(result)
        if hasattr(leaf, "dtype") or isinstance(leaf, float | int | complex)
    ]
    return all(
        bool(np.all(np.isfinite(leaf)))
        for leaf in leaves
        if np.issubdtype(leaf.dtype, np.number)
    )


def classify(case: BadInput) -> tuple[str, str]:
    """Runs ``case`` and returns ``(outcome, detail)`` (see the module docstring)."""
    try:
        result = case.call()
        result = jax.block_until_ready(result)
    except (ValueError, TypeError) as err:
        message = str(err)
        if case.kind == "extreme":
            return "raised", f"{type(err).__name__}: {message[:200]}"
        if case.argument in message:
            return "clear", message[:200]
        return "cryptic", f"{type(err).__name__} without {case.argument!r}: {message[:200]}"
    except Exception as err:  # noqa: BLE001 - the probe's point is to see every kind of failure
        detail = f"{type(err).__name__}: {str(err)[:200]}"
        return ("raised" if case.kind == "extreme" else "cryptic"), detail
    finite = _all_finite(result)
    if case.kind == "extreme":
        if not finite:
            return "nonfinite", "returned NaN/inf"
        if case.check is not None and not case.check(result):
            return "wrong", "finite but the check failed"
        return "ok", ""
    return ("silent_finite", "returned finite values") if finite else (
        "silent_nonfinite",
        "returned NaN/inf",
    )


def assert_handled(case: BadInput) -> None:
    """Raises ``AssertionError`` unless ``case`` is ``clear`` (reject) or ``ok`` (extreme)."""
    outcome, detail = classify(case)
    wanted = "clear" if case.kind == "reject" else "ok"
    assert outcome == wanted, f"{case.name}: {outcome} ({detail})"


def probe(cases: Iterable[BadInput]) -> dict[str, Counter]:
    """Classifies every case; returns ``{"reject": Counter, "extreme": Counter}``."""
    counts = {"reject": Counter(), "extreme": Counter()}
    for case in cases:
        outcome, _ = classify(case)
        counts[case.kind][outcome] += 1
    return counts


def _family_cases() -> dict[str, list[BadInput]]:
    """Every ``CASES`` list of :class:`BadInput` in the modules ``tests/<family>/test_*.py``
    (``test_bad_inputs.py`` and the modules of newer parts that keep their probes beside
    their other tests); run from the repository root."""
    import tests  # the repository's test package; the probe is a development tool

    found: dict[str, list[BadInput]] = {}
    for package in pkgutil.iter_modules(tests.__path__):
        if not package.ispkg:
            continue
        folder = Path(tests.__path__[0]) / package.name
        for path in sorted(folder.glob("test_*.py")):
            text = path.read_text(encoding="utf-8")
            if "CASES" not in text or "BadInput" not in text:
                continue
            module = importlib.import_module(f"tests.{package.name}.{path.stem}")
            cases = [c for c in getattr(module, "CASES", []) if isinstance(c, BadInput)]
            found.setdefault(package.name, []).extend(cases)
    return found


def main() -> int:
    """Prints, per family, the reject and extreme counts and every case not handled."""
    sys.path.insert(0, ".")
    total = {"reject": Counter(), "extreme": Counter()}
    for family, cases in sorted(_family_cases().items()):
        counts = {"reject": Counter(), "extreme": Counter()}
        for case in cases:
            outcome, detail = classify(case)
            counts[case.kind][outcome] += 1
            if outcome not in ("clear", "ok"):
                print(f"  {family}: {case.name}: {outcome} ({detail})")
        reject = ", ".join(f"{k} {counts['reject'][k]}" for k in REJECT_OUTCOMES)
        extreme = ", ".join(f"{k} {counts['extreme'][k]}" for k in EXTREME_OUTCOMES)
        print(f"{family:16s} bad inputs: {reject} | valid extremes: {extreme}")
        for kind in total:
            total[kind].update(counts[kind])
    n = sum(total["reject"].values())
    clear = total["reject"]["clear"]
    print(f"all families: {clear}/{n} bad inputs clear ({100 * clear / max(n, 1):.1f}%), "
          f"{sum(total['extreme'].values())} valid extremes, {total['extreme']['ok']} ok")
    return 0

