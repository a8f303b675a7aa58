"""genjax benchmark suites: ``python -m genjax.bench [SUITE ...] [--quick]``.

Each suite is a module ``genjax/bench/<suite>.py`` with ``run(quick: bool = False) ->
list[Row]``; the harness times compile apart from steady state and writes
``benchmarks/results/<suite>.json``.
"""
