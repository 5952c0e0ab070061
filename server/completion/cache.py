"""Completion reuse: an LRU of decodes keyed by prompt, and typing-through of the shown suggestion.

Typing the first characters of a suggestion that is on screen must not cost a new decode
(Copilot and Tabby both forward the rest); asking twice for the same prompt must not either.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from ..inference.engine import Generation

# How much of the text around the cursor identifies "the same place" for typing-through.
_ANCHOR_CHARS = 256


class GenerationCache:
    """A thread-safe LRU of Generation results keyed by (prompt ids, decode parameters)."""

    def __init__(self, capacity: int = 128) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple, Generation] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Generation | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple, value: Generation) -> None:
        # A cancelled or timed-out decode is partial, an unavailable server produced nothing;
        # caching either would pin a truncated or empty suggestion.
        if value.stop_reason in ("cancelled", "timeout", "unavailable"):
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@dataclass(frozen=True)
class ShownSuggestion:
    """The last suggestion sent for a document and where the user was when it was made."""

    offset: int  # cursor offset in the document when the suggestion was made
    prefix_tail: str
    suffix_head: str
    text: str


class TypingThrough:
    """Per-document memory of the suggestion on screen."""

    def __init__(self) -> None:
        self._shown: dict[str, ShownSuggestion] = {}
        self._lock = threading.Lock()

    def remember(self, uri: str, offset: int, prefix: str, suffix: str, text: str) -> None:
        with self._lock:
            self._shown[uri] = ShownSuggestion(offset, prefix[-_ANCHOR_CHARS:], suffix[:_ANCHOR_CHARS], text)

    def forget(self, uri: str) -> None:
        with self._lock:
            self._shown.pop(uri, None)

    def rest(self, uri: str, offset: int, prefix: str, suffix: str) -> str | None:
        """The remainder of the shown suggestion when the user typed its beginning, else None.

        `prefix` is the text before the cursor at `offset` (any window of it that ends there).
        """
        with self._lock:
            shown = self._shown.get(uri)
        typed_len = offset - (shown.offset if shown else offset)
        if (
            shown is None
            or typed_len <= 0
            or typed_len > len(prefix)
            or suffix[:_ANCHOR_CHARS] != shown.suffix_head
        ):
            return None
        typed, before = prefix[len(prefix) - typed_len :], prefix[: len(prefix) - typed_len]
        overlap = min(len(before), len(shown.prefix_tail))
        if (
            not shown.text.startswith(typed)
            or before[len(before) - overlap :] != shown.prefix_tail[len(shown.prefix_tail) - overlap :]
        ):
            return None
        rest = shown.text[typed_len:]
        return rest if rest.strip() else None
