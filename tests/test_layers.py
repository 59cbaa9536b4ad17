"""The import structure: no module of the package imports, directly or through others, a module that imports it
(``lint-imports`` checks the layers; this also catches a circle through a package's ``__init__``)."""

from __future__ import annotations

import pytest

grimp = pytest.importorskip("grimp")  # import-linter's graph library (the test extra)


def test_no_import_circles() -> None:
    graph = grimp.build_graph("ngp_app", exclude_type_checking_imports=True, cache_dir=None)
    circles = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back:
                circles.append(" -> ".join((importer, *back)))
    assert not circles, "import circles:\n" + "\n".join(circles)
