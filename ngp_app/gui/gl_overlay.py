"""OpenGL drawing of overlay layers (``overlays.Layer``) over the viewport's image, at window resolution.

The geometry stays in ngp space on the GPU; each frame only the view-projection matrix changes, so frusta, occupied
cells, the crop box, the axes and a camera path stay sharp however low the render's resolution is. Only imported by
the viewport (needs pyglet and a GL context).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from pyglet import gl
from pyglet.graphics.shader import Shader, ShaderProgram

from .overlays import Layer

VERTEX = """#version 150 core
in vec3 position;
in vec4 colors;
uniform mat4 mvp;
out vec4 vertex_color;
void main() {
    gl_Position = mvp * vec4(position, 1.0);
    vertex_color = colors;
}
"""
FRAGMENT = """#version 150 core
in vec4 vertex_color;
out vec4 final_color;
void main() {
    final_color = vertex_color;
}
"""


class GLOverlay:
    """Keeps one vertex list per layer (re-uploaded only when the layer's ``key`` changes) and draws them."""

    def __init__(self, point_size: float = 2.0) -> None:
        self.program = ShaderProgram(Shader(VERTEX, "vertex"), Shader(FRAGMENT, "fragment"))
        self.point_size = point_size
        self._lists: dict[str, tuple[tuple, int, Any]] = {}  # name -> (key, count, vertex list)
        self.drawn = 0  # vertices drawn in the last frame (tests, HUD)

    def _vertex_list(self, layer: Layer) -> Any:
        have = self._lists.get(layer.name)
        n = len(layer.vertices)
        if have is not None and have[0] == layer.key and have[1] == n:
            return have[2]
        if have is not None:
            have[2].delete()
            del self._lists[layer.name]
        if n == 0:
            return None
        mode = gl.GL_LINES if layer.kind == "lines" else gl.GL_POINTS
        vl = self.program.vertex_list(
            n,
            mode,
            position=("f", layer.vertices.reshape(-1).tolist()),
            colors=("Bn", layer.colors.reshape(-1).tolist()),
        )
        self._lists[layer.name] = (layer.key, n, vl)
        return vl

    def draw(self, layers: Iterable[Layer], mvp: np.ndarray) -> None:
        """Draw ``layers`` with the (4, 4) view-projection ``mvp`` (``overlays.view_projection``) in the current
        viewport; no depth test (they are drawn over the image)."""
        layers = list(layers)
        names = {lay.name for lay in layers}
        for name in [k for k in self._lists if k not in names]:
            self._lists.pop(name)[2].delete()
        self.drawn = 0
        if not layers:
            return
        gl.glEnable(gl.GL_BLEND)
        gl.glBlendFunc(gl.GL_SRC_ALPHA, gl.GL_ONE_MINUS_SRC_ALPHA)
        gl.glPointSize(self.point_size)
        self.program.use()
        self.program["mvp"] = tuple(float(v) for v in np.asarray(mvp, dtype=np.float64).T.reshape(-1))  # column-major
        try:
            for lay in layers:
                vl = self._vertex_list(lay)
                if vl is not None:
                    vl.draw(gl.GL_LINES if lay.kind == "lines" else gl.GL_POINTS)
                    self.drawn += len(lay.vertices)
        finally:
            self.program.stop()

    def delete(self) -> None:
        for _, _, vl in self._lists.values():
            vl.delete()
        self._lists.clear()
