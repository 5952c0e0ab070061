"""Context from other files for one completion (server/completion/related.py)."""

from __future__ import annotations

from pathlib import Path

from gpt_lsp.completion.related import RelatedFiles, RelatedPiece, render
from gpt_lsp.text.documents import DocumentStore
from gpt_lsp.workspace.index import WorkspaceIndex

GEOMETRY = """from dataclasses import dataclass


@dataclass
class Point:
    x: float
    y: float


def polygon_area(points: list[Point]) -> float:
    return 0.0


def unused_helper(a, b):
    return a
"""
REPORT = "from .geometry import polygon_area\n\n\ndef square_area(side):\n    corners = make_corners(side)\n    return polygon_"


def workspace(root: Path) -> WorkspaceIndex:
    (root / "shapes").mkdir()
    (root / "shapes" / "__init__.py").write_text("")
    (root / "shapes" / "geometry.py").write_text(GEOMETRY)
    (root / "shapes" / "corners.py").write_text("def make_corners(side: float) -> list:\n    return []\n")
    (root / "shapes" / "config.env").write_text("def make_corners_secret(): pass\n")
    index = WorkspaceIndex([root])
    index.build()
    return index


def open_report(root: Path, text: str = REPORT):
    store = DocumentStore()
    return store, store.open((root / "shapes" / "report.py").as_uri(), "python", 1, text)


def test_definitions_near_the_cursor_come_first_then_imported_signatures(tmp_path):
    related = RelatedFiles(workspace(tmp_path))
    _, doc = open_report(tmp_path)
    pieces = related.gather(doc, len(doc.text))
    shown = [(p.source, p.path, p.text) for p in pieces]
    # The half-typed name and the names just above the cursor, found in the files that define them.
    assert shown[0] == ("definition", "shapes/geometry.py", "def polygon_area(points: list[Point]) -> float:")
    assert ("definition", "shapes/corners.py", "def make_corners(side: float) -> list:") in shown
    assert all("unused_helper" not in p.text for p in pieces)  # neither imported nor near the cursor


def test_a_module_import_brings_its_outline(tmp_path):
    related = RelatedFiles(workspace(tmp_path))
    _, doc = open_report(tmp_path, "from . import geometry\n\nx = 1\n")
    [piece] = related.gather(doc, len(doc.text))
    assert piece.source == "import" and piece.path == "shapes/geometry.py"
    assert piece.text.split("\n") == [
        "class Point:",
        "def polygon_area(points: list[Point]) -> float:",
        "def unused_helper(a, b):",
    ]


def test_the_most_similar_recent_tab_comes_from_its_redacted_view(tmp_path):
    related = RelatedFiles(workspace(tmp_path))
    store, doc = open_report(tmp_path, "def total(order):\n    amount = order.amount_due(currency)\n    ")
    tab = store.open(
        (tmp_path / "billing.py").as_uri(),
        "python",
        1,
        'STRIPE_KEY = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"\ndef charge(order):\n    amount = order.amount_due(currency)\n    return amount\n',
    )
    related.touch(tab)
    related.touch(doc)
    [neighbor] = [p for p in related.gather(doc, len(doc.text)) if p.source == "neighbor"]
    assert neighbor.path == "billing.py" and "order.amount_due(currency)" in neighbor.text
    assert "sk_live" not in neighbor.text


def test_secret_files_never_contribute(tmp_path):
    related = RelatedFiles(workspace(tmp_path))
    store, doc = open_report(tmp_path, "x = make_corn")
    secret = store.open((tmp_path / ".env").as_uri(), "python", 1, "x = make_corners(secret_value)\n")
    related.touch(secret)
    pieces = related.gather(doc, len(doc.text))
    assert [p.path for p in pieces] == ["shapes/corners.py"]  # found by the typed prefix; the .env never


def test_without_an_index_only_recent_tabs_count_and_the_block_respects_its_size(tmp_path):
    related = RelatedFiles(None, max_chars=200)
    store = DocumentStore()
    doc = store.open("file:///w/a.py", "python", 1, "alpha_beta = gamma_delta(epsilon)\n")
    tab = store.open("file:///w/b.py", "python", 1, "alpha_beta = gamma_delta(epsilon) * 2\n" * 3)
    related.touch(tab)
    [piece] = related.gather(doc, len(doc.text))
    assert piece.source == "neighbor" and piece.path == "b.py"
    # A piece that does not fit the block is left out whole, never cut mid-line.
    long_tab = store.open("file:///w/b.py", "python", 2, "alpha_beta = gamma_delta(epsilon) * 2\n" * 30)
    related.touch(long_tab)
    assert related.gather(doc, len(doc.text)) == []


def test_render_groups_by_path_as_comments():
    pieces = [
        RelatedPiece("definition", "a.py", "def f(x):"),
        RelatedPiece("import", "a.py", "class C:\n    def m(self):"),
        RelatedPiece("neighbor", "b.py", "y = f(1)"),
    ]
    assert render(pieces, "//") == (
        "// From a.py:\n// def f(x):\n// class C:\n//     def m(self):\n// Compare this snippet from b.py:\n// y = f(1)\n"
    )
    assert render([], "#") == ""
