"""The workspace index: what is indexed, what never is, and how open documents keep it current."""

from __future__ import annotations

from pathlib import Path

from gpt_lsp.text.documents import DocumentStore
from gpt_lsp.workspace.index import WorkspaceIndex, module_names, project_root


def make_workspace(root: Path) -> Path:
    (root / "pkg").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "shapes.py").write_text("def polygon_area(points):\n    return 0\n")
    (root / "node_modules" / "lib").mkdir(parents=True)
    (root / "node_modules" / "lib" / "index.js").write_text("function vendored() {}\n")
    (root / ".env").write_text("API_TOKEN = 'x'\n")
    (root / "secrets.py").write_text("def leaked_helper():\n    pass\n")
    (root / ".gitignore").write_text("secrets.py\n")
    (root / "notes.txt").write_text("def not_code(): pass\n")
    return root


def test_index_holds_source_files_and_never_ignored_secret_or_vendored_ones(tmp_path):
    index = WorkspaceIndex([make_workspace(tmp_path)])
    index.build()
    assert index.ready.is_set()
    assert sorted(f.relative for f in index.files()) == ["pkg/__init__.py", "pkg/shapes.py"]
    [(found, definition)] = index.definitions_of("polygon_area")
    assert found.relative == "pkg/shapes.py" and definition.header == "def polygon_area(points):"
    assert index.definitions_of("leaked_helper") == [] and index.definitions_of("vendored") == []
    assert index.module("pkg.shapes").path == tmp_path / "pkg" / "shapes.py"
    assert index.module("pkg").relative == "pkg/__init__.py"
    assert index.names_starting_with("poly", 3) == ["polygon_area"]


def test_an_open_document_replaces_the_file_on_disk_with_its_unsaved_text(tmp_path):
    index = WorkspaceIndex([make_workspace(tmp_path)])
    index.build()
    uri = (tmp_path / "pkg" / "shapes.py").as_uri()
    doc = DocumentStore().open(uri, "python", 7, "def triangle_area(a, b, c):\n    pass\n")
    index.refresh(doc)
    assert index.definitions_of("polygon_area") == []
    [(found, _)] = index.definitions_of("triangle_area")
    assert found.version == 7


def test_the_index_stops_at_its_file_limit(tmp_path):
    for i in range(10):
        (tmp_path / f"m{i}.py").write_text(f"def f{i}():\n    pass\n")
    index = WorkspaceIndex([tmp_path], max_files=4)
    index.build()
    assert len(index) == 4


def test_module_names_and_project_roots(tmp_path):
    assert module_names("src/pkg/io/json.py") == ["src.pkg.io.json", "pkg.io.json", "io.json", "json"]
    assert module_names("pkg/__init__.py") == ["pkg"]
    (tmp_path / "proj" / "a" / "b").mkdir(parents=True)
    (tmp_path / "proj" / "pyproject.toml").write_text("")
    assert project_root(tmp_path / "proj" / "a" / "b" / "c.py") == tmp_path / "proj"
