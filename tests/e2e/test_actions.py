"""Code actions, snippet commands and diagnostics over real LSP.

The tiny model has random weights, so what it generates is noise that may not parse. Snippet
tests therefore assert the honest contract: either an edit that parses is applied, or nothing is
applied and a message says why. Syntax diagnostics and MISSING-token quick fixes need no model
and are asserted exactly.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import tree_sitter
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import LanguageClient

from gpt_lsp.text.languages import language_for

from .conftest import open_doc, start_client

SOURCE = '''import os

# read every line of the file at path


def load(path):
    pass


def total(items):
    """Sum the items."""
    result = 0
    for item in items:
        result += item
    return result


class Box:
    def size(self):
        return 1
'''


class EditorState:
    """What a real editor does on workspace/applyEdit: check the version, apply, send didChange."""

    def __init__(self, client: LanguageClient) -> None:
        self.client = client
        self.texts: dict[str, tuple[int, str]] = {}
        self.applied: list[lsp.ApplyWorkspaceEditParams] = []

    @property
    def messages(self) -> list[str]:
        return [m.message for m in self.client.messages]  # pytest-lsp records window/showMessage

    def open(self, uri: str, text: str, language_id: str = "python") -> None:
        self.texts[uri] = (1, text)
        open_doc(self.client, uri, text, language_id)

    def apply(self, params: lsp.ApplyWorkspaceEditParams) -> lsp.ApplyWorkspaceEditResult:
        for change in params.edit.document_changes or []:
            uri, version = change.text_document.uri, change.text_document.version
            current_version, text = self.texts[uri]
            if version is not None and version != current_version:
                return lsp.ApplyWorkspaceEditResult(applied=False, failure_reason="stale version")
            for edit in sorted(
                change.edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True
            ):
                text = _replace(text, edit.range, edit.new_text)
            self.set_text(uri, text)
        self.applied.append(params)
        return lsp.ApplyWorkspaceEditResult(applied=True)

    def set_text(self, uri: str, text: str) -> None:
        version = self.texts[uri][0] + 1
        self.texts[uri] = (version, text)
        self.client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
                [lsp.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )


def _offset(text: str, pos: lsp.Position) -> int:
    lines = text.split("\n")
    return sum(len(line) + 1 for line in lines[: pos.line]) + pos.character  # ASCII test texts


def _replace(text: str, rng: lsp.Range, new: str) -> str:
    return text[: _offset(text, rng.start)] + new + text[_offset(text, rng.end) :]


def _parses(text: str, language_id: str = "python") -> bool:
    spec = language_for(language_id)
    assert spec is not None
    return not tree_sitter.Parser(spec.language).parse(text.encode()).root_node.has_error


def _code_action_hook(converter) -> None:
    """lsprotocol's client-side hook turns a CodeAction that carries a `command` into a Command
    (lsprotocol's client-side structure hook); decide by whether `command` is a string, as the spec does."""

    def structure(obj: Any, _: type) -> lsp.Command | lsp.CodeAction:
        if isinstance(obj.get("command"), str):
            return converter.structure(obj, lsp.Command)
        return converter.structure(obj, lsp.CodeAction)

    converter.register_structure_hook(lsp.Command | lsp.CodeAction, structure)
    from typing import Union

    converter.register_structure_hook(Union[lsp.Command, lsp.CodeAction], structure)  # noqa: UP007


async def _editor(model_path, encodings: list[str] | None = None) -> tuple[LanguageClient, EditorState]:
    client = await start_client(model_path, encodings)
    _code_action_hook(client.protocol._converter)
    editor = EditorState(client)

    @client.feature(lsp.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: lsp.ApplyWorkspaceEditParams) -> lsp.ApplyWorkspaceEditResult:
        return editor.apply(params)

    @client.feature(lsp.WINDOW_SHOW_MESSAGE_REQUEST)
    def pick_first(params: lsp.ShowMessageRequestParams) -> lsp.MessageActionItem | None:
        return params.actions[0] if params.actions else None

    await client.status_log.wait_for(lambda s: s["state"] in ("ready", "error"))
    return client, editor


@pytest.fixture(params=["utf-16", "utf-8"])
async def editor(request, model_path):
    client, state = await _editor(model_path, ["utf-8", "utf-16"] if request.param == "utf-8" else ["utf-16"])
    yield state
    await client.shutdown_session()
    await client.stop()


async def _actions(
    client: LanguageClient, uri: str, line: int, character: int, end=None
) -> list[lsp.CodeAction]:
    end = end or (line, character)
    result = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            lsp.TextDocumentIdentifier(uri),
            lsp.Range(lsp.Position(line, character), lsp.Position(*end)),
            lsp.CodeActionContext(diagnostics=[]),
        )
    )
    assert all(isinstance(a, lsp.CodeAction) for a in result or [])
    return list(result or [])


def _commands(actions: list[lsp.CodeAction]) -> set[str]:
    return {a.command.command for a in actions if a.command}


async def _diagnostics(
    client: LanguageClient, uri: str, predicate, timeout: float = 10.0
) -> list[lsp.Diagnostic]:
    async def poll():
        while True:
            found = client.diagnostics.get(uri)
            if found is not None and predicate(list(found)):
                return list(found)
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), timeout)


# --- snippet actions --------------------------------------------------------------------------


async def test_each_snippet_action_appears_where_it_should_and_not_elsewhere(editor):
    client, uri = editor.client, "file:///work/actions.py"
    editor.open(uri, SOURCE)
    assert _commands(await _actions(client, uri, 5, 4)) == {
        "gpt-lsp.implementFunction",
        "gpt-lsp.generateDocstring",
    }
    assert _commands(await _actions(client, uri, 2, 5)) == {"gpt-lsp.codeFromComment"}
    assert _commands(await _actions(client, uri, 14, 10)) == {"gpt-lsp.completeBlock"}
    assert _commands(await _actions(client, uri, 17, 3)) == {"gpt-lsp.generateDocstring"}
    # A function that is implemented and documented, a plain import, a blank line: nothing.
    assert _commands(await _actions(client, uri, 9, 4)) == set()
    assert _commands(await _actions(client, uri, 0, 3)) == set()
    assert _commands(await _actions(client, uri, 7, 0)) == set()


async def test_bad_ranges_and_unknown_documents_get_an_empty_list(editor):
    client, uri = editor.client, "file:///work/bad.py"
    editor.open(uri, SOURCE)
    assert await _actions(client, uri, 500, 3, (900, 0)) == []
    assert await _actions(client, "file:///work/never-opened.py", 0, 0) == []
    editor.open("file:///work/notes.txt", "# read the file\n", "plaintext")
    assert await _actions(client, "file:///work/notes.txt", 0, 3) == []


@pytest.mark.parametrize(
    "line,character,command",
    [
        (5, 4, "gpt-lsp.implementFunction"),
        (5, 4, "gpt-lsp.generateDocstring"),
        (2, 5, "gpt-lsp.codeFromComment"),
        (14, 10, "gpt-lsp.completeBlock"),
    ],
)
async def test_executing_an_action_applies_a_parsing_edit_or_says_why_not(editor, line, character, command):
    client, uri = editor.client, "file:///work/run.py"
    editor.open(uri, SOURCE)
    action = next(a for a in await _actions(client, uri, line, character) if a.command.command == command)
    result = await client.workspace_execute_command_async(
        lsp.ExecuteCommandParams(command, action.command.arguments)
    )
    if result["applied"]:
        assert len(editor.applied) == 1
        assert _parses(editor.texts[uri][1]) and editor.texts[uri][1] != SOURCE
    else:
        assert editor.applied == [] and editor.texts[uri] == (1, SOURCE)
        assert result["message"] and any(result["message"] in m for m in editor.messages)


async def test_several_candidates_are_sampled_and_the_chosen_one_applied(editor):
    client, uri = editor.client, "file:///work/candidates.py"
    editor.open(uri, SOURCE)
    result = await client.workspace_execute_command_async(
        lsp.ExecuteCommandParams(
            "gpt-lsp.completeBlock", [uri, 14, 10, 1, {"candidates": 3, "temperature": 1.0}]
        )
    )
    assert len(result["candidates"]) <= 3
    if result["applied"]:
        assert _parses(editor.texts[uri][1]) and result["candidates"]
    else:
        assert editor.applied == [] and result["message"]


async def test_no_edit_is_applied_to_a_stale_document(editor):
    client, uri = editor.client, "file:///work/stale.py"
    editor.open(uri, SOURCE)
    editor.set_text(uri, SOURCE + "\n")  # version 2: the action below was offered for version 1
    result = await client.workspace_execute_command_async(
        lsp.ExecuteCommandParams("gpt-lsp.implementFunction", [uri, 5, 4, 1])
    )
    assert not result["applied"] and "changed" in result["message"]
    assert editor.applied == []


async def test_a_cancelled_command_applies_nothing(editor):
    client, uri = editor.client, "file:///work/cancel.py"
    editor.open(uri, SOURCE)
    request = asyncio.ensure_future(
        client.protocol.send_request_async(
            lsp.WORKSPACE_EXECUTE_COMMAND,
            lsp.ExecuteCommandParams("gpt-lsp.implementFunction", [uri, 5, 4, 1]),
        )
    )
    await asyncio.sleep(0)  # let the request leave before its cancellation
    request.cancel()
    with pytest.raises((asyncio.CancelledError, JsonRpcRequestCancelled)):
        await request
    await client.status_log.wait_for(lambda s: s["uri"] == uri and s["state"] == "ready")
    await asyncio.sleep(0.3)
    assert editor.applied == []


async def test_commands_answer_with_a_message_when_the_model_is_unavailable(tmp_path):
    client, editor = await _editor(tmp_path / "no-model")
    try:
        uri = "file:///work/nomodel.py"
        editor.open(uri, SOURCE)
        assert _commands(await _actions(client, uri, 5, 4)) == set()
        result = await client.workspace_execute_command_async(
            lsp.ExecuteCommandParams("gpt-lsp.implementFunction", [uri, 5, 4, 1])
        )
        assert not result["applied"] and "model unavailable" in result["message"]
        # Syntax diagnostics and their quick fixes do not need the model.
        editor.set_text(uri, "print(len(x)\n")
        found = await _diagnostics(client, uri, lambda d: len(d) == 1)
        assert found[0].code == "unclosed-bracket"
    finally:
        await client.shutdown_session()
        await client.stop()


# --- syntax diagnostics -------------------------------------------------------------------------


async def test_syntax_diagnostics_appear_with_human_messages_and_clear_when_fixed(editor):
    client, uri = editor.client, "file:///work/syntax.py"
    editor.open(uri, "def f(x)\n    return x\n")
    found = await _diagnostics(client, uri, lambda d: len(d) == 1)
    assert found[0].message == "expected `:` after function signature"
    assert found[0].source == "gpt-lsp" and found[0].code == "expected-colon"
    assert found[0].severity == lsp.DiagnosticSeverity.Error
    assert found[0].range.start == lsp.Position(0, 8)
    editor.set_text(uri, "def f(x):\n    return x\n")
    assert await _diagnostics(client, uri, lambda d: len(d) == 0) == []


async def test_a_missing_token_quick_fix_removes_its_diagnostic(editor):
    client, uri = editor.client, "file:///work/fix.js"
    editor.open(uri, "let x = foo(1, 2;\n", "javascript")
    found = await _diagnostics(client, uri, lambda d: len(d) == 1)
    assert found[0].message == "missing `)`" and found[0].code == "missing-token"
    start = found[0].range.start
    actions = await _actions(client, uri, start.line, start.character)
    fix = next(a for a in actions if a.kind == lsp.CodeActionKind.QuickFix)
    assert fix.title == "Insert `)`" and fix.diagnostics[0].code == "missing-token"
    editor.apply(lsp.ApplyWorkspaceEditParams(fix.edit))
    assert editor.texts[uri][1] == "let x = foo(1, 2);\n"
    assert await _diagnostics(client, uri, lambda d: len(d) == 0) == []


async def test_quick_fixes_insert_a_colon_and_close_a_bracket(editor):
    """One ERROR node swallows both mistakes; fixing the first reveals the second."""
    client, uri = editor.client, "file:///work/colon.py"
    editor.open(uri, "if ready\n    go()\nvalues = [1, 2\n")
    for code, version in (("expected-colon", 1), ("unclosed-bracket", 2)):
        found = await _diagnostics(
            client, uri, lambda d, c=code, v=version: [x.code for x in d] == [c] and editor.texts[uri][0] == v
        )
        start = found[0].range.start
        actions = await _actions(client, uri, start.line, start.character)
        fix = next(a for a in actions if a.kind == lsp.CodeActionKind.QuickFix and a.is_preferred)
        assert editor.apply(lsp.ApplyWorkspaceEditParams(fix.edit)).applied
    assert editor.texts[uri][1] == "if ready:\n    go()\nvalues = [1, 2]\n"
    assert await _diagnostics(client, uri, lambda d: len(d) == 0) == []


async def test_an_error_region_repair_is_offered_only_if_it_parses(editor):
    client, uri = editor.client, "file:///work/repair.py"
    editor.open(uri, "x = 1 +\ny = 2\n")
    found = await _diagnostics(client, uri, lambda d: len(d) == 1)
    assert found[0].message == "expected an expression after `+`"
    actions = await _actions(client, uri, 0, 6)
    for action in actions:
        if action.kind == lsp.CodeActionKind.QuickFix:
            assert action.title.startswith("Repair with gpt-lsp")
            change = action.edit.document_changes[0]
            assert _parses(_replace(editor.texts[uri][1], change.edits[0].range, change.edits[0].new_text))


async def test_closing_a_document_clears_its_diagnostics(editor):
    client, uri = editor.client, "file:///work/close.py"
    editor.open(uri, "print(1\n")
    await _diagnostics(client, uri, lambda d: len(d) == 1)
    client.text_document_did_close(lsp.DidCloseTextDocumentParams(lsp.TextDocumentIdentifier(uri)))
    assert await _diagnostics(client, uri, lambda d: len(d) == 0) == []


# --- model hints --------------------------------------------------------------------------------


async def test_model_hints_are_published_with_a_quick_fix_once_calibrated(model_path, tmp_path):
    """A calibration with a permissive threshold (written here, as hint-bench --save would) turns
    hints on; with random weights any site may fire, so only the mechanics are asserted."""
    calibrated = tmp_path / "model"
    shutil.copytree(model_path, calibrated)
    (calibrated / "hints.json").write_text(json.dumps({"threshold": -1000, "precision": 1.0, "recall": 1.0}))
    client, editor = await _editor(calibrated)
    try:
        uri, text = (
            "file:///work/hints.py",
            "def mean(values, length):\n    total = sum(values)\n    return total\n",
        )
        editor.open(uri, text)
        editor.set_text(uri, text.replace("return total", "return total / lenght"))
        found = await _diagnostics(client, uri, lambda d: any(x.message.startswith("`lenght`") for x in d))
        hint = next(x for x in found if x.message.startswith("`lenght`"))
        assert hint.severity == lsp.DiagnosticSeverity.Information and hint.source == "gpt-lsp"
        assert hint.code in ("hint-typo", "hint-name") and hint.range.start == lsp.Position(2, 19)
        actions = await _actions(client, uri, 2, 20)
        fix = next(a for a in actions if a.title.startswith("Replace with"))
        assert editor.apply(lsp.ApplyWorkspaceEditParams(fix.edit)).applied
        assert "lenght" not in editor.texts[uri][1]
        await _diagnostics(client, uri, lambda d: not any("`lenght`" in x.message for x in d))
    finally:
        await client.shutdown_session()
        await client.stop()


def test_hint_bench_runs_against_any_model_directory(model_path, tmp_path, capsys):
    from gpt_lsp.model import hint_bench

    source = Path(inspect.getsourcefile(asyncio.queues))
    out = tmp_path / "bench.json"
    code = hint_bench.main([str(model_path), "--files", str(source), "--per-kind", "2", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "precision" in printed and "operator" in printed
    report = json.loads(out.read_text())
    assert report["bugs"] == 6 and {r["kind"] for r in report["rows"]} == {
        "typo",
        "wrong-variable",
        "operator",
        "all",
    }
