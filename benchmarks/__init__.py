"""genjax benchmark suites: ``python -m benchmarks [SUITE ...] [--quick]``.

Each suite is a module ``benchmarks/<suite>.py`` with ``run(quick: bool = False) ->
list[Row]``; the harness times compile apart from steady state and writes
``benchmarks/results/<suite>.json``.
"""
