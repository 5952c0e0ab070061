"""What every file of the workspace defines, indexed by name and by module, built off the event loop.

The index is made once per session by a background thread (about a millisecond per file with
tree-sitter), then kept current from the editor's open documents: a document's outline is
refreshed from its own text when its version changes, so unsaved edits count. Lookups take a lock
for a dictionary read and cost microseconds, which is what lets the completion path consult it on
every keystroke.

Never indexed: secret-bearing files, files a `.gitignore` excludes, hidden folders, dependency
and build folders, files over `MAX_FILE_BYTES`. A workspace with more than `MAX_FILES` source
files is indexed up to that many (the first found, breadth-first, so the top-level package wins).
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from ..privacy.secret_files import WorkspaceIgnores, is_secret_file, local_path
from ..text.documents import Document
from ..text.languages import language_for
from .outline import Definition, outline

log = logging.getLogger(__name__)

MAX_FILES = 5000
MAX_FILE_BYTES = 512 * 1024
SKIPPED_DIRS = frozenset(
    {"node_modules", "__pycache__", "site-packages", "venv", "env", "build", "dist", "target", "vendor"}
)


@dataclass(frozen=True)
class FileOutline:
    path: Path
    relative: str  # the path shown in prompts: relative to its workspace root, with / separators
    language: str
    definitions: list[Definition]
    version: int | None = None  # the open document's version it was read from; None = from disk


PROJECT_MARKERS = (".git", "pyproject.toml", "setup.py", "setup.cfg", "package.json", "go.mod", "Cargo.toml")


def project_root(file: Path) -> Path:
    """The nearest folder above `file` that looks like a project root; its own folder if none does."""
    for folder in file.parents:
        if any((folder / marker).exists() for marker in PROJECT_MARKERS):
            return folder
    return file.parent


def module_names(relative: str) -> list[str]:
    """The dotted names a Python file can be imported as, longest first.

    `src/pkg/io/json.py` is `src.pkg.io.json`, `pkg.io.json`, `io.json` or `json` depending on
    which folder is on the import path; a package's `__init__.py` is the package itself.
    """
    parts = relative.removesuffix(".pyi").removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return [".".join(parts[i:]) for i in range(len(parts)) if parts[i:]]


class WorkspaceIndex:
    """Outlines of the workspace's source files, by path, by Python module name and by defined name."""

    def __init__(self, roots: list[Path], max_files: int = MAX_FILES) -> None:
        self.roots = [Path(os.path.abspath(r)) for r in roots]
        self.max_files = max_files
        self.ignores = WorkspaceIgnores(self.roots)
        self.ready = threading.Event()
        self._lock = threading.Lock()
        self._files: dict[Path, FileOutline] = {}
        self._by_name: dict[str, list[tuple[Path, Definition]]] = {}
        self._by_module: dict[str, Path] = {}
        self._sorted_names: list[str] | None = None  # for prefix lookups; rebuilt after a change

    # -- building ----------------------------------------------------------------------------
    def start(self) -> None:
        """Index the roots on a daemon thread; `ready` is set when it is done."""
        threading.Thread(target=self.build, name="gpt-lsp-index", daemon=True).start()

    def build(self) -> None:
        try:
            for path, root in self._source_files():
                self._read(path, root)
        except Exception:  # an unreadable workspace costs cross-file context, never the server
            log.exception("indexing the workspace failed")
        finally:
            self.ready.set()
            log.info("indexed %d files for cross-file context", len(self._files))

    def _source_files(self):
        """(path, root) of indexable files, breadth-first from each root, at most `max_files`."""
        count = 0
        for root in self.roots:
            queue = deque([root])
            while queue and count < self.max_files:
                directory = queue.popleft()
                try:
                    entries = sorted(os.scandir(directory), key=lambda e: e.name)
                except OSError:
                    continue
                for entry in entries:
                    name = entry.name
                    if name.startswith(".") or name in SKIPPED_DIRS or name.endswith(".egg-info"):
                        continue
                    path = Path(entry.path)
                    if entry.is_dir(follow_symlinks=False):
                        queue.append(path)
                    elif entry.is_file(follow_symlinks=False) and self._indexable(path):
                        yield path, root
                        count += 1
                        if count >= self.max_files:
                            return

    def _indexable(self, path: Path) -> bool:
        if language_for("", path.name) is None or is_secret_file(path.name):
            return False
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                return False
        except OSError:
            return False
        return not self.ignores.ignores(path.as_uri())

    def _read(self, path: Path, root: Path) -> None:
        spec = language_for("", path.name)
        try:
            source = path.read_bytes()
        except OSError:
            return
        if spec is None or b"\0" in source[:4096]:
            return
        relative = path.relative_to(root).as_posix()
        self._store(FileOutline(path, relative, spec.name, outline(source, spec)))

    def refresh(self, doc: Document) -> None:
        """Re-outline an open document from its current text (its unsaved edits count)."""
        path = local_path(doc.uri)
        if path is None or doc.spec is None or doc.tree is None:
            return
        with self._lock:
            known = self._files.get(path)
        if known is not None and known.version == doc.version:
            return
        root = self.root_of(path)
        if root is None or is_secret_file(path.name) or self.ignores.ignores(doc.uri):
            return
        definitions = outline(doc.source, doc.spec, doc.tree)
        self._store(
            FileOutline(path, path.relative_to(root).as_posix(), doc.spec.name, definitions, doc.version)
        )

    def _store(self, entry: FileOutline) -> None:
        with self._lock:
            old = self._files.get(entry.path)
            if old is not None:
                for d in old.definitions:
                    kept = [(p, x) for p, x in self._by_name.get(d.name, []) if p != entry.path]
                    self._by_name[d.name] = kept
            self._files[entry.path] = entry
            self._sorted_names = None
            for d in entry.definitions:
                self._by_name.setdefault(d.name, []).append((entry.path, d))
            if entry.language == "python":
                for name in module_names(entry.relative):
                    self._by_module.setdefault(name, entry.path)

    # -- lookups ------------------------------------------------------------------------------
    def root_of(self, path: Path) -> Path | None:
        inside = [r for r in self.roots if path.is_relative_to(r)]
        return max(inside, key=lambda r: len(r.parts)) if inside else None

    def file(self, path: Path) -> FileOutline | None:
        with self._lock:
            return self._files.get(path)

    def module(self, dotted: str) -> FileOutline | None:
        """The file a Python module name refers to (`pkg.mod`), if it is in the workspace."""
        with self._lock:
            path = self._by_module.get(dotted)
            return self._files.get(path) if path is not None else None

    def definitions_of(self, name: str) -> list[tuple[FileOutline, Definition]]:
        with self._lock:
            return [(self._files[p], d) for p, d in self._by_name.get(name, ())]

    def names_starting_with(self, prefix: str, limit: int) -> list[str]:
        """Up to `limit` defined names that start with `prefix` (for a half-typed identifier)."""
        with self._lock:
            if self._sorted_names is None:
                self._sorted_names = sorted(n for n, found in self._by_name.items() if found)
            names = self._sorted_names
        start = bisect.bisect_left(names, prefix)
        stop = bisect.bisect_left(names, prefix + "\U0010ffff", start)
        return sorted(names[start:stop], key=len)[:limit]

    def defined_names(self) -> list[str]:
        with self._lock:
            return [n for n, found in self._by_name.items() if found]

    def files(self) -> list[FileOutline]:
        with self._lock:
            return list(self._files.values())

    def __len__(self) -> int:
        return len(self._files)
