"""Benchmarks (``ngp bench ...``)."""
