"""The panel's fixed-height texts (gui/widgets.py): whatever the text, the same number of lines, none too wide."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("dearpygui")

from ngp_app.gui.widgets import fixed_lines, shorten  # noqa: E402


@given(st.text(alphabet=st.sampled_from("ab /\n.-"), max_size=400), st.integers(1, 4), st.integers(8, 80))
def test_fixed_lines_always_has_its_height_and_width(text: str, lines: int, columns: int) -> None:
    out = fixed_lines(text, lines, columns).split("\n")
    assert len(out) == lines
    assert all(0 < len(line) <= columns for line in out)  # no empty line: Dear ImGui gives those no height


def test_fixed_lines_keeps_short_text_and_says_when_it_cut() -> None:
    assert fixed_lines("saved snapshot.npz", 2, 40) == "saved snapshot.npz\n "
    assert fixed_lines("one two three four", 1, 12) == "o...ree four"  # cut in the middle, its end kept
    assert fixed_lines("a\nb\nc", 2, 10) == "a\nb c"


def test_a_long_path_keeps_its_file_name() -> None:
    path = "/home/someone/" + "deep/" * 30 + "ngp-exports/snapshot.npz"
    cut = shorten(path, 50)
    assert len(cut) == 50 and cut.startswith("/home/") and cut.endswith("ngp-exports/snapshot.npz") and "..." in cut
    assert "ngp-exports/snapshot.npz" in fixed_lines(f"saved {path} in 2 s", 2, 50)
