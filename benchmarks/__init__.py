"""The benchmark runner: ``python -m benchmarks --quick`` (see __main__.py)."""
