"""Snippets of recently used files that look like the code at the cursor ("neighboring tabs").

Copilot's way of using other open files, as its authors describe it: cut each recent file into
overlapping windows of lines, score each window by the Jaccard similarity of its identifier set
with the lines just above the cursor, and show the best window if it is similar enough. It is
lexical and cheap, and it finds the place where the same names were used last time, which is
often the line the user is about to write again. Windows and their identifier sets are computed
once per document version.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

from ..text.documents import Document

WINDOW_LINES = 20
STRIDE_LINES = 10
MIN_SIMILARITY = 0.15  # below this, a window shares little more than keywords with the cursor's code
MAX_CACHED_DOCUMENTS = 32
MAX_WINDOWS_PER_DOCUMENT = 2000  # a huge file contributes its first windows only
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # what counts as a name, for every lexical match


@dataclass(frozen=True)
class Snippet:
    uri: str
    first_line: int  # 0-based
    text: str
    similarity: float


def identifiers(text: str) -> frozenset[str]:
    return frozenset(IDENTIFIER.findall(text))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)


class NeighborWindows:
    """The windows of each recent document version, with their identifier sets (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: OrderedDict[str, tuple[int, list[tuple[int, frozenset[str]]]]] = OrderedDict()

    def windows(self, doc: Document) -> list[tuple[int, frozenset[str]]]:
        """(first line, identifiers) of each window of `doc`."""
        with self._lock:
            cached = self._windows.get(doc.uri)
        if cached is not None and cached[0] == doc.version:
            return cached[1]
        lines = doc.text.split("\n")
        found = []
        for start in range(0, max(len(lines) - STRIDE_LINES, 1), STRIDE_LINES):
            found.append((start, identifiers("\n".join(lines[start : start + WINDOW_LINES]))))
            if len(found) >= MAX_WINDOWS_PER_DOCUMENT:
                break
        with self._lock:
            self._windows[doc.uri] = (doc.version, found)
            self._windows.move_to_end(doc.uri)
            while len(self._windows) > MAX_CACHED_DOCUMENTS:
                self._windows.popitem(last=False)
        return found

    def best(self, query: str, docs: list[Document], count: int = 1) -> list[Snippet]:
        """The `count` windows of `docs` most similar to `query` (at least MIN_SIMILARITY)."""
        wanted = identifiers(query)
        scored: list[tuple[float, Document, int]] = []
        for doc in docs:
            for start, names in self.windows(doc):
                score = jaccard(wanted, names)
                if score >= MIN_SIMILARITY:
                    scored.append((score, doc, start))
        scored.sort(key=lambda s: -s[0])
        snippets = []
        for score, doc, start in scored[:count]:
            text = "\n".join(doc.text.split("\n")[start : start + WINDOW_LINES]).strip("\n")
            snippets.append(Snippet(doc.uri, start, text, round(score, 3)))
        return snippets
