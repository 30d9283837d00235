"""Benchmarks: each compares batchline with a named baseline, side by side in one run."""
