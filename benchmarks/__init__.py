"""Benchmarks: measured figures for parts of SPKT Dispatch, run with `python -m benchmarks.NAME`."""
