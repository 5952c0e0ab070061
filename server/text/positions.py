"""LSP positions and offsets in one text.

LSP 3.17 ("Position", "Text Documents"): lines end at \\n, \\r\\n or \\r; a character offset counts
code units of the negotiated encoding (utf-16 by default); positions past the end of a line or
of the document are clamped, never rejected; an offset inside a surrogate pair or a UTF-8
sequence snaps to the start of that character. Line starts are numpy arrays, so a lookup is
O(log n) even on a file with a megabyte-long line.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np


class PositionEncoding(str, Enum):
    UTF8 = "utf-8"
    UTF16 = "utf-16"
    UTF32 = "utf-32"


@dataclass(frozen=True)
class Position:
    line: int
    character: int  # code units of the negotiated PositionEncoding


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


def _line_breaks(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indexes of every \\n, and of every line break (\\n, or \\r not followed by \\n)."""
    newlines = np.flatnonzero(codes == 10).astype(np.int64)
    carriage = np.flatnonzero(codes == 13)
    if not carriage.size:
        return newlines, newlines
    after = carriage + 1
    lone = carriage[(after >= len(codes)) | (codes[np.minimum(after, len(codes) - 1)] != 10)]
    return newlines, np.union1d(newlines, lone).astype(np.int64)


class TextIndex:
    """Line starts of one text, for O(log n) position ⇄ offset and utf-8 byte offsets."""

    def __init__(
        self, text: str, encoding: PositionEncoding, breaks: tuple[np.ndarray, np.ndarray] | None = None
    ) -> None:
        self.text = text
        self.encoding = encoding
        self.is_ascii = text.isascii()
        newlines, line_breaks = breaks if breaks is not None else _line_breaks(_code_points(text))
        self._newlines = newlines  # tree-sitter rows break at \n only
        self.starts = np.concatenate((np.zeros(1, dtype=np.int64), line_breaks + 1))
        self._byte_starts: np.ndarray | None = None

    def edited(self, start: int, end: int, new_text: str) -> TextIndex:
        """The index of this text with text[start:end] replaced: only the edited lines are scanned
        (a full scan of a 1 MB file with mixed line endings takes ~50 ms, too long per keystroke)."""
        text = self.text[:start] + new_text + self.text[end:]
        delta = len(new_text) - (end - start)
        lo, hi = max(start - 1, 0), min(start + len(new_text) + 1, len(text))
        # The window reaches one character past `hi`: whether a \r there breaks depends on what follows.
        window = _line_breaks(_code_points(text[lo : hi + 1]))

        def splice(old: np.ndarray, found: np.ndarray) -> np.ndarray:
            return np.concatenate((old[old < lo], found[found < hi - lo] + lo, old[old > end] + delta))

        breaks = (splice(self._newlines, window[0]), splice(self.starts[1:] - 1, window[1]))
        return TextIndex(text, self.encoding, breaks)

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
