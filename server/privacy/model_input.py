"""What the model may read of a document: its text with every secret replaced, found once per version.

Every feature that sends document text to the model (completion, snippets, the repair quick fix,
model hints) cuts that text from a `ModelView`, never from `Document.text`. So redaction is one
step in one place, and it runs on the whole document before any prompt window is cut: a private
key that begins above the window, or straddles the cursor, is found whole and its placeholder
stands wherever a slice touches it.

Finding secrets re-scans only the paragraph an edit touched (`redact.ParagraphCache`), and a
view is kept for the most recent version of each recently used document.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable

from ..text.documents import Document
from .redact import ParagraphCache, Secret, find_secrets

_MAX_VIEWS = 16


class ModelView:
    """One document version's text and its secrets (sorted, disjoint)."""

    def __init__(self, text: str, secrets: list[Secret]) -> None:
        self.text = text
        self.secrets = secrets
        self._starts = [s.start for s in secrets]
        self._ends = [s.end for s in secrets]

    def overlapping(self, start: int, end: int) -> list[Secret]:
        """The secrets that share at least one character with text[start:end]."""
        return self.secrets[bisect_right(self._ends, start) : bisect_left(self._starts, end)]

    def slice(self, start: int, end: int) -> str:
        """text[start:end] with every secret it touches, even partly, replaced by its placeholder."""
        return self.slice_mapped(start, end)[0]

    def slice_mapped(self, start: int, end: int) -> tuple[str, Callable[[int, bool], int]]:
        """`slice`, and a map from offsets in it back to document offsets (inside a placeholder: its
        secret's start, or its end for an offset that ends a range)."""
        start, end = max(0, start), min(len(self.text), end)
        parts: list[str] = []
        # (offset in the slice, document start, document end, is a placeholder)
        segments: list[tuple[int, int, int, bool]] = []
        length, position = 0, start
        for secret in self.overlapping(start, end) if start < end else []:
            if secret.start > position:
                parts.append(self.text[position : secret.start])
                segments.append((length, position, secret.start, False))
                length += secret.start - position
            parts.append(secret.placeholder)
            segments.append((length, secret.start, secret.end, True))
            length += len(secret.placeholder)
            position = secret.end
        if position < end:
            parts.append(self.text[position:end])
            segments.append((length, position, end, False))
        if len(segments) <= 1 and not (segments and segments[0][3]):
            return "".join(parts), lambda offset, is_end=False: start + offset
        marks = [segment[0] for segment in segments]

        def to_document(offset: int, is_end: bool = False) -> int:
            # An end offset on a boundary belongs to the segment before it.
            i = max((bisect_left(marks, offset) if is_end else bisect_right(marks, offset)) - 1, 0)
            mark, doc_start, doc_end, placeholder = segments[i]
            if placeholder:
                return doc_end if is_end else doc_start
            return doc_start + offset - mark

        return "".join(parts), to_document

    def redact(self, piece: str) -> str:
        """Text copied out of the document some other way (imports, signatures): every secret of the
        document it contains is replaced, and whatever the rules find in it on its own."""
        for secret in self.secrets:
            value = self.text[secret.start : secret.end]
            if value in piece:
                piece = piece.replace(value, secret.placeholder)
        found = find_secrets(piece)
        if not found:
            return piece
        return ModelView(piece, found).slice(0, len(piece))


class _Views:
    """The view of the latest version of each recently used document (thread-safe)."""

    def __init__(self) -> None:
        self._finder = ParagraphCache()
        self._views: OrderedDict[str, ModelView] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, doc: Document) -> ModelView:
        with self._lock:
            view = self._views.get(doc.uri)
        if view is not None and view.text is doc.text:
            return view
        view = ModelView(doc.text, self._finder.find(doc.text))
        with self._lock:
            self._views[doc.uri] = view
            self._views.move_to_end(doc.uri)
            while len(self._views) > _MAX_VIEWS:
                self._views.popitem(last=False)
        return view


_VIEWS = _Views()


def model_view(doc: Document) -> ModelView:
    """The redacted view of this document version (computed on first use, then reused)."""
    return _VIEWS.get(doc)
