"""Context from other files, gathered for one completion: the stage between `context` and `prompt`.

Three sources, in the order the prompt gets them (most specific first, since a small prompt
budget keeps only the head):

1. definitions of the identifiers just before the cursor (and of the one being typed) that live in
   another file of the workspace: often the only place the right name or argument order appears;
2. the recent file window most similar to the code above the cursor ("neighboring tabs");
3. the interface of the local modules the file imports (Python): signatures of the imported
   names, or the outline of an imported module (last: they are the least specific and the longest).

Everything is rendered as comments in the file's language, with the path it came from, so the
prompt stays code the model has seen many times (a file that begins with notes about other
files). Secret-bearing and ignored files never contribute; snippets of open documents come from
their redacted view, and the prompt builder redacts the block once more as a whole.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import tree_sitter

from ..privacy.model_input import model_view
from ..privacy.secret_files import is_secret_file, local_path
from ..text.documents import Document
from ..workspace.index import FileOutline, WorkspaceIndex
from ..workspace.neighbors import IDENTIFIER, NeighborWindows
from ..workspace.outline import Definition

MAX_CHARS = 1600  # the whole block; the prompt builder trims it further to its token share
MAX_RECENT = 20  # recent documents searched for similar windows
NEAR_CURSOR_LINES = 3  # identifiers on the cursor's line and the lines just above it
MAX_DEFINITIONS_PER_NAME = 3  # a name defined in more files than this is too ambiguous to show
MIN_TYPED_PREFIX = 3  # a half-typed identifier this long is looked up by prefix
QUERY_LINES = 20  # the lines above the cursor that neighbouring windows are compared with
_TYPED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_KEYWORDS = frozenset(
    "def class return if elif else for while in not and or is None True False import from as with "
    "try except finally raise pass break continue lambda yield await async self cls print len str "
    "int float bool list dict set tuple const let var function new this null undefined".split()
)


@dataclass(frozen=True)
class RelatedPiece:
    """One piece of context from another file."""

    source: str  # "definition", "import" or "neighbor"
    path: str  # where it came from, as shown in the prompt
    text: str


class RelatedFiles:
    """Knows the workspace index and the recently used documents; gathers context for a cursor."""

    def __init__(self, index: WorkspaceIndex | None = None, max_chars: int = MAX_CHARS) -> None:
        self.index = index
        self.max_chars = max_chars
        self.windows = NeighborWindows()
        self._recent: OrderedDict[str, tuple[Document, bool]] = OrderedDict()  # uri -> (doc, may be read)
        self._lock = threading.Lock()

    def touch(self, doc: Document) -> None:
        """`doc` was just opened or edited: it is the most recent document."""
        with self._lock:
            known = self._recent.get(doc.uri)
        # Whether it may be read is decided once per document (a few stat() calls for .gitignore).
        readable = known[1] if known is not None else self._may_read(doc.uri)
        with self._lock:
            self._recent[doc.uri] = (doc, readable)
            self._recent.move_to_end(doc.uri)
            while len(self._recent) > MAX_RECENT:
                self._recent.popitem(last=False)

    def forget(self, uri: str) -> None:
        with self._lock:
            self._recent.pop(uri, None)

    def recent(self, exclude: str) -> list[Document]:
        """The readable recent documents but `exclude`, most recent first."""
        with self._lock:
            return [d for uri, (d, readable) in reversed(self._recent.items()) if readable and uri != exclude]

    def _may_read(self, uri: str) -> bool:
        if is_secret_file(uri):
            return False
        return self.index is None or not self.index.ignores.ignores(uri)

    # -- gathering ----------------------------------------------------------------------------
    def gather(self, doc: Document, offset: int) -> list[RelatedPiece]:
        """The pieces for a completion at `offset` of `doc`, most specific first, within max_chars."""
        here = local_path(doc.uri)
        pieces: list[RelatedPiece] = []
        imported: list[tuple[FileOutline, str | None]] = []
        recent = self.recent(doc.uri)
        if self.index is not None:
            for other in recent[:4]:
                self.index.refresh(other)
            imported = self.imported_modules(doc)
            pieces += self._near_cursor(doc, offset, here, {f.path for f, _ in imported})
        pieces += self._neighbors(doc, offset, recent)
        pieces += self._imported(imported)
        return _within(_unique(pieces), self.max_chars)

    def _near_cursor(
        self, doc: Document, offset: int, here: Path | None, imported: set[Path]
    ) -> list[RelatedPiece]:
        """Definitions, in other files, of the identifiers nearest the cursor (nearest first)."""
        assert self.index is not None
        line = doc.index.line_of(offset)
        start = int(doc.index.starts[max(0, line - NEAR_CURSOR_LINES + 1)])
        text = doc.text[start:offset]
        names = [n for n in reversed(IDENTIFIER.findall(text)) if n not in _KEYWORDS]
        typed = _TYPED.search(text)  # the identifier the cursor is in, if any
        partial = typed.group() if typed else ""
        if len(partial) >= MIN_TYPED_PREFIX:
            names = self.index.names_starting_with(partial, 3) + names
        pieces, seen = [], set()
        for name in names:
            if name in seen:
                continue
            seen.add(name)
            found = [(f, d) for f, d in self.index.definitions_of(name) if f.path != here]
            if not found or (
                len(found) > MAX_DEFINITIONS_PER_NAME and not any(f.path in imported for f, _ in found)
            ):
                continue
            found.sort(key=lambda fd: fd[0].path not in imported)
            outline, definition = found[0]
            pieces.append(RelatedPiece("definition", outline.relative, _show(outline, definition)))
        return pieces

    def imported_modules(self, doc: Document) -> list[tuple[FileOutline, str | None]]:
        """(module, imported name or None for the whole module) for each local Python import."""
        if self.index is None or doc.tree is None or doc.spec is None or doc.spec.name != "python":
            return []
        here = local_path(doc.uri)
        found: list[tuple[FileOutline, str | None]] = []
        for node in doc.tree.root_node.children:
            if node.type == "import_from_statement":
                module = node.child_by_field_name("module_name")
                if module is None:
                    continue
                package = doc.text_of(module)
                target = self._resolve(package, here)
                for name_node in node.children_by_field_name("name"):
                    name = _imported_name(doc, name_node)
                    if target is not None and any(d.name == name and not d.owner for d in target.definitions):
                        found.append((target, name))
                    elif (submodule := self._resolve(_submodule(package, name), here)) is not None:
                        found.append((submodule, None))
            elif node.type == "import_statement":
                for name_node in node.children_by_field_name("name"):
                    target = self._resolve(_imported_name(doc, name_node), here)
                    if target is not None:
                        found.append((target, None))
        return [(f, n) for f, n in found if f.path != here]

    def _resolve(self, dotted: str, here: Path | None) -> FileOutline | None:
        """The workspace file a (possibly relative) module name refers to."""
        assert self.index is not None
        if not dotted.startswith("."):
            return self.index.module(dotted)
        if here is None:
            return None
        dots = len(dotted) - len(dotted.lstrip("."))
        base = here.parent
        for _ in range(dots - 1):
            base = base.parent
        parts = [p for p in dotted[dots:].split(".") if p]
        path = base.joinpath(*parts) if parts else base
        return self.index.file(path.with_suffix(".py")) or self.index.file(path / "__init__.py")

    def _imported(self, imported: list[tuple[FileOutline, str | None]]) -> list[RelatedPiece]:
        """Signatures of imported names, then outlines of imported modules (they cost more)."""
        pieces = []
        for outline, name in sorted(imported, key=lambda i: i[1] is None):
            if name is not None:
                definition = next(d for d in outline.definitions if d.name == name and not d.owner)
                pieces.append(RelatedPiece("import", outline.relative, definition.header))
            else:
                headers = [d.header.split("\n", 1)[0] for d in outline.definitions if not d.owner]
                if headers:
                    pieces.append(RelatedPiece("import", outline.relative, "\n".join(headers)))
        return pieces

    def _neighbors(self, doc: Document, offset: int, recent: list[Document]) -> list[RelatedPiece]:
        line = doc.index.line_of(offset)
        query = doc.text[int(doc.index.starts[max(0, line - QUERY_LINES)]) : offset]
        docs = [d for d in recent if d.spec is doc.spec or d.language_id == doc.language_id]
        pieces = []
        for snippet in self.windows.best(query, docs):
            other = next(d for d in docs if d.uri == snippet.uri)
            first, last = snippet.first_line, snippet.first_line + snippet.text.count("\n")
            start = int(other.index.starts[first])
            end = other.index.line_span(min(last, len(other.index.starts) - 1))[1]
            text = model_view(other).slice(start, end).strip("\n")
            pieces.append(RelatedPiece("neighbor", _shown_path(other.uri, self.index), text))
        return pieces


def render(pieces: list[RelatedPiece], line_comment: str) -> str:
    """The pieces as comment lines, grouped under the path each came from."""
    lines: list[str] = []
    last_path = None
    for piece in pieces:
        if piece.source == "neighbor":
            lines.append(f"{line_comment} Compare this snippet from {piece.path}:")
        elif piece.path != last_path:
            lines.append(f"{line_comment} From {piece.path}:")
        last_path = piece.path if piece.source != "neighbor" else None
        lines += [f"{line_comment} {line}".rstrip() for line in piece.text.split("\n")]
    return "\n".join(lines) + "\n" if lines else ""


def _show(outline: FileOutline, definition: Definition) -> str:
    """A definition as the prompt shows it; a method under its class header."""
    if not definition.owner:
        return definition.header
    owner = next((d for d in outline.definitions if d.name == definition.owner and not d.owner), None)
    head = owner.header.split("\n", 1)[0] if owner else f"class {definition.owner}:"
    return f"{head}\n{definition.header}"


def _imported_name(doc: Document, node: tree_sitter.Node) -> str:
    """What an import names (`a.b` of `import a.b as c`)."""
    if node.type == "aliased_import":
        node = node.child_by_field_name("name") or node
    return doc.text_of(node)


def _submodule(package: str, name: str) -> str:
    """`pkg` + `mod` -> `pkg.mod`; `..` + `mod` -> `..mod`."""
    return f"{package}{name}" if not package.strip(".") else f"{package}.{name}"


def _shown_path(uri: str, index: WorkspaceIndex | None) -> str:
    path = local_path(uri)
    if path is None:
        return uri
    root = index.root_of(path) if index is not None else None
    return path.relative_to(root).as_posix() if root is not None else path.name


def _unique(pieces: list[RelatedPiece]) -> list[RelatedPiece]:
    seen: set[tuple[str, str]] = set()
    kept = []
    for piece in pieces:
        key = (piece.path, piece.text)
        if key not in seen:
            seen.add(key)
            kept.append(piece)
    return kept


def _within(pieces: list[RelatedPiece], max_chars: int) -> list[RelatedPiece]:
    """The leading pieces that fit in `max_chars` (a piece that does not fit is skipped, not cut)."""
    kept, used = [], 0
    for piece in pieces:
        if used + len(piece.text) + 40 <= max_chars:
            kept.append(piece)
            used += len(piece.text) + 40
    return kept
