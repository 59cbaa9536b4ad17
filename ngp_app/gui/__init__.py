"""The desktop app (``ngp app``): plain-Python state in ``state`` and friends; pyglet/DearPyGui only in
``viewport``, ``panel`` and ``app``, imported lazily so that servers without a display never load them."""
