"""Conversion between lsprotocol types and the server's own: positions in every encoding, edits that
keep the client's filtering working, severities and code actions from typed fields."""

from __future__ import annotations

from lsprotocol import types as lsp

from gpt_lsp.assist.hints import Hint
from gpt_lsp.assist.snippets import SnippetKind
from gpt_lsp.assist.syntax import FixOrigin, QuickFix, SyntaxProblem
from gpt_lsp.completion.context import CompletionKind
from gpt_lsp.completion.pipeline import Outcome, Suggestion
from gpt_lsp.completion.postprocess import Edit
from gpt_lsp.lsp.convert import (
    code_actions,
    completion_items,
    inline_items,
    to_diagnostics,
    to_encoding,
    to_text_changes,
    workspace_edit,
)
from gpt_lsp.text.documents import DocumentStore, Position, PositionEncoding


def doc_of(text: str, encoding: PositionEncoding = PositionEncoding.UTF16):
    return DocumentStore(encoding=encoding).open("file:///t.py", "python", 3, text)


def test_unknown_encodings_fall_back_to_utf16() -> None:
    assert to_encoding(lsp.PositionEncodingKind.Utf8) is PositionEncoding.UTF8
    assert to_encoding("utf-64") is PositionEncoding.UTF16


def test_text_changes_keep_ranges_and_whole_document_replacements() -> None:
    ranged = lsp.TextDocumentContentChangePartial(
        range=lsp.Range(lsp.Position(0, 1), lsp.Position(0, 2)), text="z"
    )
    whole = lsp.TextDocumentContentChangeWholeDocument(text="new")
    partial, full = to_text_changes([ranged, whole])
    assert (partial.text, partial.start, partial.end) == ("z", Position(0, 1), Position(0, 2))
    assert (full.text, full.start, full.end) == ("new", None, None)


def test_inline_items_count_columns_in_the_clients_encoding() -> None:
    text = 'name = "é😀" + fo'
    doc = doc_of(text)
    at = len(text)
    outcome = Outcome([Suggestion("o(1)", at, at, CompletionKind.LINE)], "ok", doc.version)
    (item,) = inline_items(doc, outcome).items
    assert item.insert_text == "o(1)"
    assert item.range.start == lsp.Position(0, len(text) + 1)  # 😀 is two UTF-16 code units


def test_inline_items_carry_the_accept_command_only_when_counted() -> None:
    doc = doc_of("x = ")
    outcome = Outcome(
        [Suggestion("1", 4, 4, CompletionKind.LINE), Suggestion("2", 4, 4, CompletionKind.LINE)], "ok", 3
    )
    first, second = inline_items(doc, outcome, "ab12cd34").items
    assert first.command == second.command
    assert first.command.command == "gpt-lsp.accepted"
    assert first.command.arguments == [{"id": "ab12cd34", "language": "python"}]
    assert all(item.command is None for item in inline_items(doc, outcome).items)


def test_list_items_replace_the_word_being_typed() -> None:
    doc = doc_of("result = compu")
    at = len(doc.text)
    outcome = Outcome([Suggestion("te_total()", at, at, CompletionKind.LINE)], "ok", doc.version)
    (item,) = completion_items(doc, outcome, Position(0, at))
    assert item.text_edit.new_text == item.filter_text == "compute_total()"
    assert item.text_edit.range.start == lsp.Position(0, len("result = "))
    assert item.label == "compute_total()"


def test_syntax_problems_are_errors_and_hints_information() -> None:
    doc = doc_of("x = lenght(items)\n")
    problem = SyntaxProblem(0, 1, "missing `)`", "missing-token")
    hint = Hint(4, 10, "lenght", "length", "typo", 5.0)
    error, info = to_diagnostics(doc, [problem], [hint])
    assert (error.severity, error.code, error.source) == (
        lsp.DiagnosticSeverity.Error,
        "missing-token",
        "gpt-lsp",
    )
    assert (info.severity, info.code) == (lsp.DiagnosticSeverity.Information, "hint-typo")
    assert info.range == lsp.Range(lsp.Position(0, 4), lsp.Position(0, 10))


def test_code_actions_are_titled_and_ranked_by_where_the_fix_comes_from() -> None:
    doc = doc_of("def f(:\n    x = lenght\n")
    rule = QuickFix(FixOrigin.RULE, Edit(")", 6, 6), 6, 7, "missing-token", "missing `)`", "Insert `)`")
    hint = QuickFix(FixOrigin.HINT, Edit("length", 17, 23), 17, 23, "hint-typo", "did you mean")
    repair = QuickFix(FixOrigin.REPAIR, Edit("def f():\n", 0, 8), 0, 8, "invalid-syntax", "bad")
    actions = code_actions(doc, [rule, hint, repair], [SnippetKind.GENERATE_DOCSTRING], Position(0, 0))
    assert [a.title for a in actions] == [
        "Insert `)`",
        "Replace with `length`",
        "Repair with gpt-lsp: def f():",
        "Generate docstring (gpt-lsp)",
    ]
    assert [a.is_preferred for a in actions[:3]] == [True, True, False]
    assert actions[1].diagnostics[0].severity == lsp.DiagnosticSeverity.Information
    assert actions[2].diagnostics[0].severity == lsp.DiagnosticSeverity.Error
    command = actions[3].command
    assert (command.command, command.arguments) == ("gpt-lsp.generateDocstring", ["file:///t.py", 0, 0, 3])
    assert actions[3].kind == lsp.CodeActionKind.RefactorRewrite


def test_workspace_edits_name_the_version_they_were_made_for() -> None:
    doc = doc_of("x = 1\n")
    edit = workspace_edit(doc, Edit("2", 4, 5))
    (change,) = edit.document_changes
    assert (change.text_document.uri, change.text_document.version) == ("file:///t.py", 3)
    assert change.edits[0].new_text == "2"
