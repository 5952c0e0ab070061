"""Open documents: their text, LSP position arithmetic, and an incrementally updated tree-sitter tree.

Positions follow LSP 3.17 ("Position", "Text Documents"): lines end at \\n, \\r\\n or \\r; a
character offset counts code units of the negotiated encoding (utf-16 by default); positions
past the end of a line or of the document are clamped, never rejected; an offset inside a
surrogate pair or a UTF-8 sequence snaps to the start of that character.

Every `DocumentStore.change` builds a new `Document` snapshot (the old tree is copied before it
is edited), so a worker thread holding an older snapshot keeps a consistent text and tree.
Parsing is skipped, with `fallback_reason` set and one log line, for files over a size cap,
text containing NUL bytes, and parses that exceed a time budget (tree-sitter#2144).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from enum import Enum

import numpy as np
import tree_sitter

from gpt_lsp.languages import LanguageSpec, language_for

log = logging.getLogger(__name__)

_READ_CHUNK = 1 << 16  # bytes handed to tree-sitter per read callback


class PositionEncoding(str, Enum):
    UTF8 = "utf-8"
    UTF16 = "utf-16"
    UTF32 = "utf-32"


@dataclass(frozen=True)
class Position:
    line: int
    character: int  # code units of the negotiated PositionEncoding


@dataclass(frozen=True)
class TextChange:
    """One contentChange of didChange; no range means the whole text is replaced."""

    text: str
    start: Position | None = None
    end: Position | None = None


def _code_points(text: str) -> np.ndarray:
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _unit_lengths(codes: np.ndarray, encoding: PositionEncoding) -> np.ndarray:
    """Code units each code point takes in `encoding` (lone surrogates count as in surrogatepass)."""
    if encoding is PositionEncoding.UTF16:
        return 1 + (codes > 0xFFFF).astype(np.int64)
    if encoding is PositionEncoding.UTF8:
        return 1 + (codes >= 0x80).astype(np.int64) + (codes >= 0x800) + (codes >= 0x10000)
    return np.ones(len(codes), dtype=np.int64)


def _unit_count(text: str, encoding: PositionEncoding) -> int:
    if text.isascii() or encoding is PositionEncoding.UTF32:
        return len(text)
    if encoding is PositionEncoding.UTF16:
        return len(text.encode("utf-16-le", "surrogatepass")) // 2
    return len(text.encode("utf-8", "surrogatepass"))


class TextIndex:
    """Line starts of one text, for O(log n) position ⇄ offset and utf-8 byte offsets."""

    def __init__(self, text: str, encoding: PositionEncoding) -> None:
        self.text = text
        self.encoding = encoding
        self.is_ascii = text.isascii()
        codes = _code_points(text)
        self._newlines = np.flatnonzero(codes == 10)  # tree-sitter rows break at \n only
        breaks = self._newlines
        carriage = np.flatnonzero(codes == 13)
        if carriage.size:
            after = carriage + 1
            lone = carriage[(after >= len(codes)) | (codes[np.minimum(after, len(codes) - 1)] != 10)]
            breaks = np.union1d(breaks, lone)
        self.starts = np.concatenate((np.zeros(1, dtype=np.int64), breaks.astype(np.int64) + 1))
        self._byte_starts: np.ndarray | None = None

    @property
    def line_count(self) -> int:
        return len(self.starts)

    def line_span(self, line: int) -> tuple[int, int]:
        """Start and end (before the line break) offsets of a line that exists."""
        start = int(self.starts[line])
        if line + 1 >= len(self.starts):
            return start, len(self.text)
        end = int(self.starts[line + 1]) - 1
        if end > start and self.text[end] == "\n" and self.text[end - 1] == "\r":
            end -= 1
        return start, end

    def line_of(self, offset: int) -> int:
        return int(np.searchsorted(self.starts, offset, side="right")) - 1

    def offset_at(self, pos: Position) -> int:
        if pos.line >= len(self.starts):
            return len(self.text)
        start, end = self.line_span(max(pos.line, 0))
        if pos.character <= 0:
            return start
        line = self.text[start:end]
        if self.is_ascii or self.encoding is PositionEncoding.UTF32 or line.isascii():
            return start + min(pos.character, len(line))
        ends = np.cumsum(_unit_lengths(_code_points(line), self.encoding))
        return start + int(np.searchsorted(ends, pos.character, side="right"))

    def position_at(self, offset: int) -> Position:
        offset = min(max(offset, 0), len(self.text))
        line = self.line_of(offset)
        start, end = self.line_span(line)
        return Position(line, _unit_count(self.text[start : min(offset, end)], self.encoding))

    def byte_offset(self, offset: int) -> int:
        offset = min(max(offset, 0), len(self.text))
        if self.is_ascii:
            return offset
        if self._byte_starts is None:
            sizes = _unit_lengths(_code_points(self.text), PositionEncoding.UTF8)
            self._byte_starts = np.concatenate(([0], np.cumsum(sizes)))[self.starts]
        line = self.line_of(offset)
        start = int(self.starts[line])
        return int(self._byte_starts[line]) + len(self.text[start:offset].encode("utf-8", "surrogatepass"))

    def ts_point(self, offset: int) -> tuple[int, int]:
        """tree-sitter's (row, byte column) of an offset; rows count \\n only."""
        row = int(np.searchsorted(self._newlines, offset, side="left"))
        row_start = int(self._newlines[row - 1]) + 1 if row else 0
        return row, self.byte_offset(offset) - self.byte_offset(row_start)


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
    ) -> None:
        self.uri = uri
        self.language_id = language_id
        self.version = version
        self.text = text
        self.spec = spec
        self.encoding = encoding
        self.tree: tree_sitter.Tree | None = None
        self.source: bytes = b""  # the utf-8 text the tree was parsed from (empty without a tree)
        self.fallback_reason: str | None = None
        self.index = index if index is not None else TextIndex(text, encoding)

    def offset_at(self, pos: Position) -> int:
        """Index into `text` of a (clamped) position."""
        return self.index.offset_at(pos)

    def position_at(self, offset: int) -> Position:
        return self.index.position_at(offset)

    def byte_offset(self, offset: int) -> int:
        """utf-8 byte offset of a `text` index, as tree-sitter counts."""
        return self.index.byte_offset(offset)

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


class DocumentStore:
    """The open documents of one client session, keyed by URI."""

    def __init__(
        self,
        encoding: PositionEncoding = PositionEncoding.UTF16,
        max_parse_bytes: int = 2_000_000,
        parse_timeout_ms: float = 300.0,
    ) -> None:
        self.encoding = encoding
        self.max_parse_bytes = max_parse_bytes
        self.parse_timeout_ms = parse_timeout_ms
        self._docs: dict[str, Document] = {}
        self._parsers: dict[str, tree_sitter.Parser] = {}
        self._timed_out_len: dict[str, int] = {}  # text length at which a parse ran out of time

    def open(self, uri: str, language_id: str, version: int, text: str) -> Document:
        self._timed_out_len.pop(uri, None)
        doc = Document(uri, language_id, version, text, language_for(language_id, uri), self.encoding)
        self._parse(doc, None, previous_reason=None)
        self._docs[uri] = doc
        return doc

    def change(self, uri: str, version: int, changes: list[TextChange]) -> Document:
        """Apply contentChanges in order; raises KeyError for a document that is not open."""
        old = self._docs[uri]
        index = old.index
        tree = old.tree.copy() if old.tree is not None else None
        for change in changes:
            if change.start is None or change.end is None:
                index, tree = TextIndex(change.text, self.encoding), None
                continue
            start, end = sorted((index.offset_at(change.start), index.offset_at(change.end)))
            if tree is not None:
                _edit_tree(tree, index, start, end, change.text)
            index = TextIndex(index.text[:start] + change.text + index.text[end:], self.encoding)
        doc = Document(uri, old.language_id, version, index.text, old.spec, self.encoding, index)
        self._parse(doc, tree, previous_reason=old.fallback_reason)
        self._docs[uri] = doc
        return doc

    def close(self, uri: str) -> None:
        self._docs.pop(uri, None)
        self._parsers.pop(uri, None)
        self._timed_out_len.pop(uri, None)

    def get(self, uri: str) -> Document | None:
        return self._docs.get(uri)

    def __contains__(self, uri: object) -> bool:
        return uri in self._docs

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

    def _parse(self, doc: Document, old_tree: tree_sitter.Tree | None, previous_reason: str | None) -> None:
        reason = self._skip_reason(doc)
        if reason is None:
            assert doc.spec is not None
            try:
                source = doc.text.encode("utf-8")
            except UnicodeEncodeError:
                source, reason = b"", "text is not valid Unicode (lone surrogates)"
            if reason is None and len(source) > self.max_parse_bytes:
                reason = f"file larger than {self.max_parse_bytes} bytes"
            elif reason is None:
                doc.tree = self._run_parser(doc.uri, doc.spec, source, old_tree)
                if doc.tree is None:
                    self._timed_out_len[doc.uri] = len(doc.text)
                    reason = f"parsing took longer than {self.parse_timeout_ms:g} ms"
                else:
                    self._timed_out_len.pop(doc.uri, None)
                    doc.source = source
        doc.fallback_reason = reason
        if reason != previous_reason:
            if reason is not None:
                log.info("%s: %s; context falls back to a plain-text window", doc.uri, reason)
            elif previous_reason is not None:
                log.info("%s: syntax tree available again", doc.uri)

    def _run_parser(
        self, uri: str, spec: LanguageSpec, source: bytes, old_tree: tree_sitter.Tree | None
    ) -> tree_sitter.Tree | None:
        parser = self._parsers.get(uri)
        if parser is None or parser.language != spec.language:
            parser = self._parsers[uri] = tree_sitter.Parser(spec.language)
        deadline = time.perf_counter() + self.parse_timeout_ms / 1000

        def read(byte: int, _point: tree_sitter.Point) -> bytes:
            return source[byte : byte + _READ_CHUNK]

        def out_of_time(_byte: int, _has_error: bool) -> bool:
            return time.perf_counter() > deadline

        try:
            if old_tree is None:  # the binding rejects an explicit None
                return parser.parse(read, progress_callback=out_of_time)
            return parser.parse(read, old_tree, progress_callback=out_of_time)
        except ValueError:  # tree-sitter raises "Parsing failed" when the callback cancels
            parser.reset()  # otherwise the next parse resumes the cancelled one
            return None
