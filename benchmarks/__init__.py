"""Benchmarks and the fault-injection harness (run from the repository root, e.g. `python -m benchmarks.faults`)."""
