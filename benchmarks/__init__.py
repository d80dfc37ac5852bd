"""Benchmarks (``make bench`` = ``python -m benchmarks``): our code's speed, memory and cold start,
each figure against a baseline measured in the same run. Not shipped, not run by ``make test``."""
