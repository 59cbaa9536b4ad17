"""Datasets: loaders and the procedural demo-scene generator."""
