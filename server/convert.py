"""Pipeline results -> lsprotocol types. The only module besides lsp.py that knows lsprotocol."""

from __future__ import annotations

import re

from lsprotocol import types as lsp

from .documents import Document, Position, PositionEncoding, TextChange
from .pipeline import Outcome, Suggestion

_WORD_TAIL = re.compile(r"\w+$")


def to_position(pos: lsp.Position) -> Position:
    return Position(max(pos.line, 0), max(pos.character, 0))


def to_lsp_range(doc: Document, start: int, end: int) -> lsp.Range:
    a, b = doc.position_at(start), doc.position_at(end)
    return lsp.Range(lsp.Position(a.line, a.character), lsp.Position(b.line, b.character))


def to_text_changes(changes: list[lsp.TextDocumentContentChangeEvent]) -> list[TextChange]:
    out = []
    for change in changes:
        rng = getattr(change, "range", None)
        if rng is None:
            out.append(TextChange(change.text))
        else:
            out.append(TextChange(change.text, to_position(rng.start), to_position(rng.end)))
    return out


def to_encoding(kind: object) -> PositionEncoding:
    value = getattr(kind, "value", kind)
    try:
        return PositionEncoding(value)
    except ValueError:
        return PositionEncoding.UTF16


def inline_items(doc: Document, outcome: Outcome) -> lsp.InlineCompletionList:
    items = [
        lsp.InlineCompletionItem(insert_text=s.text, range=to_lsp_range(doc, s.start, s.end))
        for s in outcome.suggestions
    ]
    return lsp.InlineCompletionList(items=items)


def _label(s: Suggestion, line_prefix: str) -> str:
    first = s.text.split("\n", 1)[0]
    word = line_prefix.split()[-1] if line_prefix.split() else ""
    return (word + first).strip() or first.strip() or s.text.strip()


def completion_items(doc: Document, outcome: Outcome, cursor: Position) -> list[lsp.CompletionItem]:
    """List items that replace the word being typed, so the client's own filtering keeps working."""
    offset = doc.offset_at(cursor)
    line_prefix = doc.text[doc.offset_at(Position(cursor.line, 0)) : offset]
    items = []
    for rank, s in enumerate(outcome.suggestions):
        # Start the edit at the beginning of the word under the cursor: clients filter by the text
        # between the range start and the cursor, which must be a prefix of filterText.
        word_len = len(line_prefix) - len(
            line_prefix.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
        )
        start = s.start - word_len
        new_text = doc.text[start : s.start] + s.text
        items.append(
            lsp.CompletionItem(
                label=_label(s, line_prefix)[:80],
                kind=lsp.CompletionItemKind.Snippet if "\n" in s.text else lsp.CompletionItemKind.Text,
                detail="gpt-lsp",
                documentation=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=f"```\n{new_text}\n```"),
                filter_text=new_text,
                sort_text=f"0000{rank}",
                insert_text_format=lsp.InsertTextFormat.PlainText,
                text_edit=lsp.TextEdit(range=to_lsp_range(doc, start, s.end), new_text=new_text),
            )
        )
    return items
