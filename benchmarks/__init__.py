"""The benchmark scripts, a package so that they import each other without ``sys.path`` edits.

Run them from the repository root as modules: ``python -m benchmarks.speed --quick``.
"""
