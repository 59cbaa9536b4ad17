"""Rendering: occupancy grid, ray marching, compositing and image rendering."""
