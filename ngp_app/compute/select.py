"""Where the backend is chosen: a backend name (``backends.resolve_backend`` turns ``auto`` into one) becomes the
:class:`Ops` everything else receives. Adapter modules are imported here lazily (a backend's kernels load only when
it is asked for); the domain
modules never import this package: they receive the resolved :class:`Ops`."""

from __future__ import annotations

import torch

from ..ops import Ops


def get_ops(name: str, device: torch.device | str | None = None) -> Ops:
    """The ops of backend ``name`` (torch, native or tcnn; not checked for availability: see ``resolve_ops``).
    ``device`` only matters for tcnn, whose marching is native when the native kernels run there."""
    if name == "torch":
        from . import reference

        return reference.ops()
    if name == "native":
        from . import native

        return native.ops()
    if name == "tcnn":
        from ..backends import native_available
        from . import tcnn

        dev = torch.device(device if device is not None else "cuda")
        return tcnn.ops(get_ops("native" if native_available(dev)[0] else "torch"))
    raise ValueError(f"unknown backend {name!r}")


def resolve_ops(requested: str, device: torch.device | str) -> Ops:
    """The ops of the backend ``requested`` (``auto``: the fastest usable one); an unusable request is an NgpError."""
    from ..backends import resolve_backend

    dev = torch.device(device)
    return get_ops(resolve_backend(requested, dev), dev)


def as_ops(ops: Ops | str | None, device: torch.device | str | None = None) -> Ops:
    """``ops`` itself, the ops of a backend name, or the reference for None (the top-level factories, e.g.
    ``snapshot.load_snapshot``, accept all three)."""
    if isinstance(ops, Ops):
        return ops
    return get_ops(ops or "torch", device)
