"""Class sizes in the app package: no class in ``ngp_app/gui`` has more than ``MAX_METHODS`` methods (issue 16: the
83-method ``AppState`` became a session and collaborators; a new app feature gets its own collaborator)."""

from __future__ import annotations

import ast
from pathlib import Path

MAX_METHODS = 30
GUI = Path(__file__).resolve().parent.parent / "ngp_app" / "gui"


def method_counts(folder: Path) -> dict[str, int]:
    """``module:Class`` -> the number of functions defined in the class body (properties and setters count)."""
    counts = {}
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                defs = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
                counts[f"{path.stem}:{node.name}"] = len(defs)
    return counts


def test_no_app_class_has_more_than_30_methods() -> None:
    counts = method_counts(GUI)
    assert "session:Session" in counts  # the walk sees the app's classes
    big = {name: n for name, n in counts.items() if n > MAX_METHODS}
    assert not big, f"classes over {MAX_METHODS} methods: {big}"
