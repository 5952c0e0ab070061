"""Pipeline and assist results -> lsprotocol types, and client input -> the server's own types."""

from __future__ import annotations

import re
from collections.abc import Sequence

from lsprotocol import types as lsp

from ..assist.hints import Hint
from ..assist.snippets import SnippetKind
from ..assist.syntax import FixOrigin, QuickFix, SyntaxProblem
from ..completion.pipeline import Outcome, Suggestion
from ..completion.postprocess import Edit
from ..text.documents import Document, Position, PositionEncoding, TextChange
from .commands import (
    ACCEPTED_TITLE,
    CMD_ACCEPTED,
    TITLES,
    accepted_arguments,
    command_id,
    fix_title,
    is_preferred,
)

_WORD_TAIL = re.compile(r"\w+$")


def to_position(pos: lsp.Position) -> Position:
    return Position(max(pos.line, 0), max(pos.character, 0))


def to_lsp_range(doc: Document, start: int, end: int) -> lsp.Range:
    a, b = doc.position_at(start), doc.position_at(end)
    return lsp.Range(lsp.Position(a.line, a.character), lsp.Position(b.line, b.character))


def to_text_changes(changes: Sequence[lsp.TextDocumentContentChangeEvent]) -> list[TextChange]:
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


def inline_items(
    doc: Document, outcome: Outcome, suggestion_id: str | None = None
) -> lsp.InlineCompletionList:
    """One item per candidate; each carries the command the client runs when the user accepts it."""
    command = None
    if suggestion_id is not None:
        args = accepted_arguments(suggestion_id, doc.language_id)
        command = lsp.Command(title=ACCEPTED_TITLE, command=CMD_ACCEPTED, arguments=args)
    items = [
        lsp.InlineCompletionItem(insert_text=s.text, range=to_lsp_range(doc, s.start, s.end), command=command)
        for s in outcome.suggestions
    ]
    return lsp.InlineCompletionList(items=items)


def _label(s: Suggestion, line_prefix: str) -> str:
    """The word being typed plus the first line of the suggestion: what the user will see inserted."""
    first = s.text.split("\n", 1)[0]
    word = _WORD_TAIL.search(line_prefix)
    return ((word.group() if word else "") + first).strip() or s.text.strip()


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


# --- diagnostics, code actions, workspace edits ----------------------------------------------

SOURCE = "gpt-lsp"


def _diagnostic(doc: Document, start: int, end: int, message: str, code: str, hint: bool) -> lsp.Diagnostic:
    return lsp.Diagnostic(
        range=to_lsp_range(doc, start, end),
        message=message,
        severity=lsp.DiagnosticSeverity.Information if hint else lsp.DiagnosticSeverity.Error,
        source=SOURCE,
        code=code,
    )


def to_diagnostics(doc: Document, problems: list[SyntaxProblem], hints: list[Hint]) -> list[lsp.Diagnostic]:
    """Syntax problems are errors; model hints are information, never louder than a linter."""
    out = [_diagnostic(doc, p.start, p.end, p.message, p.code, False) for p in problems]
    return out + [_diagnostic(doc, h.start, h.end, h.message, h.code, True) for h in hints]


def workspace_edit(doc: Document, edit: Edit) -> lsp.WorkspaceEdit:
    """A versioned edit: the client must refuse it if the document moved on (lsp-ai#105: edits computed on an old version)."""
    text_edit = lsp.TextEdit(range=to_lsp_range(doc, edit.start, edit.end), new_text=edit.text)
    identifier = lsp.OptionalVersionedTextDocumentIdentifier(uri=doc.uri, version=doc.version)
    return lsp.WorkspaceEdit(
        document_changes=[lsp.TextDocumentEdit(text_document=identifier, edits=[text_edit])]
    )


def code_actions(
    doc: Document, fixes: list[QuickFix], snippets: list[SnippetKind], cursor: Position
) -> list[lsp.CodeAction]:
    actions = [
        lsp.CodeAction(
            title=fix_title(f),
            kind=lsp.CodeActionKind.QuickFix,
            diagnostics=[_diagnostic(doc, f.start, f.end, f.message, f.code, f.origin is FixOrigin.HINT)],
            edit=workspace_edit(doc, f.edit),
            is_preferred=is_preferred(f),
        )
        for f in fixes
    ]
    args = [doc.uri, cursor.line, cursor.character, doc.version]
    for kind in snippets:
        command = lsp.Command(title=TITLES[kind], command=command_id(kind), arguments=args)
        actions.append(
            lsp.CodeAction(title=TITLES[kind], kind=lsp.CodeActionKind.RefactorRewrite, command=command)
        )
    return actions
