"""The compute backend, chosen once: an :class:`Ops` object holding the hot operations (hash-grid encoding, MLPs,
marching, compositing, occupancy helpers, the optimiser steps), which the field, occupancy grid, renderer and
trainer receive instead of acting on a backend name themselves. :mod:`compute.select` is the only reader of a
backend name; the record itself lives in the leaf module :mod:`ngp_app.ops`."""

from ..ops import Ops
from .select import as_ops, get_ops, resolve_ops

__all__ = ["Ops", "as_ops", "get_ops", "resolve_ops"]
