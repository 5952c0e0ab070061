"""Open documents: their text, position index (positions.py) and an incrementally updated
tree-sitter tree.

Every `DocumentStore.change` builds a new `Document` snapshot (the old tree is copied before it
is edited), so a worker thread holding an older snapshot keeps a consistent text and tree.
A keystroke only edits the old tree; the parse happens when a reader first asks for `tree`
(completion, diagnostics: off the event loop), so typing never waits on tree-sitter, which
needs hundreds of milliseconds for a reparse of 50,000-deep nesting. Trees are kept for the most
recently parsed documents only (a tree takes tens of times its source in memory); the others
re-parse on demand. Parsing is skipped, with `fallback_reason` set and one log line, for files
over a size cap, text containing NUL bytes, and parses that exceed a time budget (tree-sitter#2144).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import tree_sitter

from .languages import LanguageSpec, language_for
from .positions import Position, PositionEncoding, TextIndex
from .syntax_tree import parser_for

__all__ = ["Document", "DocumentStore", "Position", "PositionEncoding", "TextChange", "TextIndex"]

log = logging.getLogger(__name__)

_READ_CHUNK = 1 << 12  # bytes handed to tree-sitter per read callback


@dataclass(frozen=True)
class TextChange:
    """One contentChange of didChange; no range means the whole text is replaced."""

    text: str
    start: Position | None = None
    end: Position | None = None


class Document:
    """One version of an open file. Treat as immutable: the store replaces it on every change."""

    def __init__(
        self,
        uri: str,
        language_id: str,
        version: int,
        text: str,
        spec: LanguageSpec | None,
        encoding: PositionEncoding = PositionEncoding.UTF16,
        index: TextIndex | None = None,
        parse: Callable[[Document], None] | None = None,
    ) -> None:
        self.uri = uri
        self.language_id = language_id
        self.version = version
        self.text = text
        self.spec = spec
        self.encoding = encoding
        self.index = index if index is not None else TextIndex(text, encoding)
        self.edited_tree: tree_sitter.Tree | None = None  # an older tree, edited to match `text`
        self._parse = parse
        self._parsed = parse is None
        self._tree: tree_sitter.Tree | None = None
        self._source = b""
        self._fallback_reason: str | None = None

    def _ensure_parsed(self) -> None:
        if not self._parsed and self._parse is not None:
            self._parse(self)

    @property
    def tree(self) -> tree_sitter.Tree | None:
        """The syntax tree, parsed on first use (possibly again, after the store dropped it)."""
        self._ensure_parsed()
        return self._tree

    @property
    def source(self) -> bytes:
        """The utf-8 text the tree was parsed from (empty without a tree)."""
        self._ensure_parsed()
        return self._source

    @property
    def fallback_reason(self) -> str | None:
        """Why there is no tree, or None."""
        self._ensure_parsed()
        return self._fallback_reason

    def set_parse(self, tree: tree_sitter.Tree | None, source: bytes, reason: str | None) -> None:
        self._tree, self._source, self._fallback_reason = tree, source, reason
        self.edited_tree, self._parsed = None, True

    def drop_tree(self) -> None:
        """Free the tree; the next reader re-parses from scratch."""
        self._tree, self._source, self.edited_tree, self._parsed = None, b"", None, False

    def tree_to_edit(self) -> tree_sitter.Tree | None:
        """A copy of the newest tree this version has, to edit for the next version."""
        tree = self._tree if self._parsed else self.edited_tree
        return tree.copy() if tree is not None else None

    def offset_at(self, pos: Position) -> int:
        """Index into `text` of a (clamped) position."""
        return self.index.offset_at(pos)

    def position_at(self, offset: int) -> Position:
        return self.index.position_at(offset)

    def byte_offset(self, offset: int) -> int:
        """utf-8 byte offset of a `text` index, as tree-sitter counts."""
        return self.index.byte_offset(offset)

    def str_offset(self, byte: int) -> int:
        """`text` index of a utf-8 byte offset into `source` (tree-sitter counts bytes)."""
        return byte if self.index.is_ascii else len(self.source[:byte].decode("utf-8", "replace"))

    def text_of(self, node: tree_sitter.Node) -> str:
        """The source text a syntax node spans."""
        return self.source[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def line_text(self, line: int) -> str:
        """A line without its line break; empty for lines that do not exist."""
        if line < 0 or line >= self.index.line_count:
            return ""
        start, end = self.index.line_span(line)
        return self.text[start:end]

    @property
    def line_count(self) -> int:
        return self.index.line_count


def _edit_tree(tree: tree_sitter.Tree, index: TextIndex, start: int, end: int, new_text: str) -> None:
    """Tell `tree` that text[start:end] of `index.text` becomes `new_text`."""
    start_byte, old_end_byte = index.byte_offset(start), index.byte_offset(end)
    start_point, old_end_point = index.ts_point(start), index.ts_point(end)
    inserted = new_text.encode("utf-8", "surrogatepass")
    newlines = new_text.count("\n")
    if newlines:
        tail = new_text[new_text.rfind("\n") + 1 :].encode("utf-8", "surrogatepass")
        new_end_point = (start_point[0] + newlines, len(tail))
    else:
        new_end_point = (start_point[0], start_point[1] + len(inserted))
    tree.edit(start_byte, old_end_byte, start_byte + len(inserted), start_point, old_end_point, new_end_point)


class _ChunkFeed:
    """Hands the source to tree-sitter through one reused buffer.

    py-tree-sitter 0.26 keeps a reference to every object a read callback returns, so returning
    slices of the source kept every parsed version of every file alive: memory grew by the file
    size per parse and closing files gave almost nothing back. Returning memoryviews of one buffer,
    refilled in place and cached per length (at most `_READ_CHUNK` of them), leaks nothing. Each
    read returns everything up to the chunk size: a chunk cut shorter could end inside a UTF-8
    character that tree-sitter's lexer then re-reads from its start. (Parsing plain bytes would not leak either, but then the
    binding ignores progress_callback, so no time budget, and holds the GIL for the whole parse.)
    Only one parse may use a feed at a time; the store's parse lock ensures that.
    """

    def __init__(self) -> None:
        self._buffer = bytearray(_READ_CHUNK)
        self._views: dict[int, memoryview] = {}

    def reader(
        self, source: bytes
    ) -> tuple[Callable[[int, tree_sitter.Point], bytes | memoryview], Callable[[], None]]:
        """A read callback over `source`, and a function that ends its use of the shared buffer."""
        live = True

        def read(byte: int, _point: tree_sitter.Point) -> bytes | memoryview:
            left = len(source) - byte
            if left <= 0:
                return b""
            if not live:  # a read after the parse (Node.text): a plain slice is safe there
                return source[byte : byte + _READ_CHUNK]
            size = min(left, _READ_CHUNK)
            self._buffer[:size] = source[byte : byte + size]
            view = self._views.get(size)
            if view is None:
                view = self._views[size] = memoryview(self._buffer)[:size]
            return view

        def done() -> None:
            nonlocal live
            live = False

        return read, done


class DocumentStore:
    """The open documents of one client session, keyed by URI."""

    def __init__(
        self,
        encoding: PositionEncoding = PositionEncoding.UTF16,
        max_parse_bytes: int = 2_000_000,
        parse_timeout_ms: float = 300.0,
        max_trees: int = 32,
    ) -> None:
        self.encoding = encoding
        self.max_parse_bytes = max_parse_bytes
        self.parse_timeout_ms = parse_timeout_ms
        self.max_trees = max_trees
        self._docs: dict[str, Document] = {}
        self._timed_out_len: dict[str, int] = {}  # text length at which a parse ran out of time
        self._reasons: dict[str, str | None] = {}  # last fallback reason logged per document
        self._with_trees: OrderedDict[str, Document] = OrderedDict()  # least recently parsed first
        self._trees_lock = threading.Lock()  # guards `_with_trees`; held only briefly
        self._parse_lock = threading.Lock()  # one parse at a time: the chunk feed is shared
        self._feed = _ChunkFeed()

    def open(self, uri: str, language_id: str, version: int, text: str) -> Document:
        self._timed_out_len.pop(uri, None)
        self._reasons.pop(uri, None)
        spec = language_for(language_id, uri)
        doc = Document(uri, language_id, version, text, spec, self.encoding, parse=self._parse)
        self._docs[uri] = doc
        return doc

    def change(self, uri: str, version: int, changes: list[TextChange]) -> Document:
        """Apply contentChanges in order; raises KeyError for a document that is not open."""
        old = self._docs[uri]
        index = old.index
        tree = old.tree_to_edit()
        for change in changes:
            if change.start is None or change.end is None:
                index, tree = TextIndex(change.text, self.encoding), None
                continue
            start, end = sorted((index.offset_at(change.start), index.offset_at(change.end)))
            if tree is not None:
                _edit_tree(tree, index, start, end, change.text)
            index = index.edited(start, end, change.text)
        doc = Document(uri, old.language_id, version, index.text, old.spec, self.encoding, index, self._parse)
        doc.edited_tree = tree
        self._docs[uri] = doc
        if tree is not None:
            self._remember(doc)
        return doc

    def close(self, uri: str) -> None:
        self._docs.pop(uri, None)
        self._timed_out_len.pop(uri, None)
        self._reasons.pop(uri, None)
        with self._trees_lock:
            self._with_trees.pop(uri, None)

    def get(self, uri: str) -> Document | None:
        return self._docs.get(uri)

    def __contains__(self, uri: object) -> bool:
        return uri in self._docs

    @property
    def tree_count(self) -> int:
        return len(self._with_trees)

    def _remember(self, doc: Document) -> None:
        """Count `doc` among the holders of a tree, dropping the least recently used beyond the cap."""
        with self._trees_lock:
            if self._docs.get(doc.uri) is not doc:  # closed, or an older version a worker still reads
                return
            self._with_trees.pop(doc.uri, None)
            self._with_trees[doc.uri] = doc
            while len(self._with_trees) > self.max_trees:
                _, evicted = self._with_trees.popitem(last=False)
                evicted.drop_tree()

    def _skip_reason(self, doc: Document) -> str | None:
        if doc.spec is None:
            return f"no tree-sitter grammar for languageId {doc.language_id!r}"
        if len(doc.text) > self.max_parse_bytes:  # cheap pre-check: a char is at least one byte
            return f"file larger than {self.max_parse_bytes} bytes"
        if "\x00" in doc.text:
            return "binary content (NUL bytes)"
        timed_out = self._timed_out_len.get(doc.uri)
        if timed_out is not None and len(doc.text) > timed_out // 2:
            return f"parsing took longer than {self.parse_timeout_ms:g} ms"
        return None

    def _parse(self, doc: Document) -> None:
        """Parse `doc` (called by its first reader, on whatever thread that is)."""
        with self._parse_lock:
            if doc._parsed:
                return
            tree, source, reason = self._parse_text(doc, doc.edited_tree)
            doc.set_parse(tree, source, reason)
        if tree is not None:
            self._remember(doc)
        previous = self._reasons.get(doc.uri)
        self._reasons[doc.uri] = reason
        if reason != previous:
            if reason is not None:
                log.info("%s: %s; context falls back to a plain-text window", doc.uri, reason)
            elif previous is not None:
                log.info("%s: syntax tree available again", doc.uri)

    def _parse_text(
        self, doc: Document, old_tree: tree_sitter.Tree | None
    ) -> tuple[tree_sitter.Tree | None, bytes, str | None]:
        reason = self._skip_reason(doc)
        if reason is not None:
            return None, b"", reason
        assert doc.spec is not None
        try:
            source = doc.text.encode("utf-8")
        except UnicodeEncodeError:
            return None, b"", "text is not valid Unicode (lone surrogates)"
        if len(source) > self.max_parse_bytes:
            return None, b"", f"file larger than {self.max_parse_bytes} bytes"
        tree = self._run_parser(doc.uri, doc.spec, source, old_tree)
        if tree is None:
            self._timed_out_len[doc.uri] = len(doc.text)
            return None, b"", f"parsing took longer than {self.parse_timeout_ms:g} ms"
        self._timed_out_len.pop(doc.uri, None)
        return tree, source, None

    def _run_parser(
        self, uri: str, spec: LanguageSpec, source: bytes, old_tree: tree_sitter.Tree | None
    ) -> tree_sitter.Tree | None:
        parser = parser_for(spec.language)
        deadline = time.perf_counter() + self.parse_timeout_ms / 1000
        read, done = self._feed.reader(source)

        def out_of_time(_byte: int, _has_error: bool) -> bool:
            return time.perf_counter() > deadline

        try:
            if old_tree is None:  # the binding rejects an explicit None
                return parser.parse(read, progress_callback=out_of_time)
            return parser.parse(read, old_tree, progress_callback=out_of_time)
        except ValueError:  # tree-sitter raises "Parsing failed" when the callback cancels
            parser.reset()  # otherwise the next parse resumes the cancelled one
            return None
        finally:
            done()
