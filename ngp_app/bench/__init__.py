"""Benchmarks behind ``ngp bench``: training quality vs time, kernels, rendering."""
