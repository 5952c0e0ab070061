"""The LSP layer in-process: JSON-RPC messages in, JSON-RPC messages out, no model needed.

Each test feeds raw messages to the protocol (as the stdio reader would) and reads what the server
wrote, so handler registration, capabilities and the session/assist wiring are checked together.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gpt_lsp.lsp.commands import CMD_ACCEPTED, CMD_STATUS, CMD_TOGGLE, SNIPPET_COMMANDS
from gpt_lsp.lsp.handlers import create_server

from .wire import Wire, feed

URI = "file:///p/app.py"


@pytest.fixture
def server(tmp_path):
    ls = create_server(tmp_path / "no-model")  # the model fails to load: documents and commands still work
    wire = Wire()
    ls.protocol.set_writer(wire)
    yield ls, wire
    ls.stop_features()


def reply(wire: Wire, msg_id: int) -> dict:
    return next(m for m in wire.messages() if m.get("id") == msg_id and "method" not in m)


def initialize(ls, options: Any = None) -> None:
    capabilities = {"general": {"positionEncodings": ["utf-16", "utf-8"]}}
    feed(
        ls,
        {
            "id": 1,
            "method": "initialize",
            "params": {"capabilities": capabilities, "initializationOptions": options},
        },
    )
    feed(ls, {"method": "initialized", "params": {}})


async def test_initialize_advertises_every_feature_and_command(server) -> None:
    ls, wire = server
    initialize(ls)
    await asyncio.sleep(0.05)
    capabilities = reply(wire, 1)["result"]["capabilities"]
    assert capabilities["positionEncoding"] == "utf-8"  # preferred whenever the client offers it
    assert capabilities["inlineCompletionProvider"] is not None
    assert capabilities["completionProvider"]["triggerCharacters"] == [".", "(", " "]
    assert set(capabilities["codeActionProvider"]["codeActionKinds"]) == {"quickfix", "refactor.rewrite"}
    commands = set(capabilities["executeCommandProvider"]["commands"])
    assert commands == {CMD_STATUS, CMD_TOGGLE, CMD_ACCEPTED, *SNIPPET_COMMANDS}


async def test_document_notifications_reach_the_session_and_assist(server) -> None:
    ls, wire = server
    initialize(ls)
    item = {"uri": URI, "languageId": "python", "version": 1, "text": "def f(:\n    pass\n"}
    feed(ls, {"method": "textDocument/didOpen", "params": {"textDocument": item}})
    change = {
        "range": {"start": {"line": 0, "character": 6}, "end": {"line": 0, "character": 6}},
        "text": ")",
    }
    params = {"textDocument": {"uri": URI, "version": 2}, "contentChanges": [change]}
    feed(ls, {"method": "textDocument/didChange", "params": params})
    assert ls.session.documents.get(URI).text == "def f():\n    pass\n"
    await asyncio.sleep(0.5)  # past the diagnostics debounce
    published = [m for m in wire.messages() if m.get("method") == "textDocument/publishDiagnostics"]
    assert published and published[-1]["params"] == {"uri": URI, "version": 2, "diagnostics": []}
    feed(ls, {"method": "textDocument/didClose", "params": {"textDocument": {"uri": URI}}})
    assert ls.session.documents.get(URI) is None


async def test_a_change_to_a_document_never_opened_is_dropped_without_a_popup(server) -> None:
    ls, wire = server
    initialize(ls)
    await asyncio.sleep(0.05)
    before = len(wire.messages())
    params = {"textDocument": {"uri": "file:///p/other.py", "version": 2}, "contentChanges": [{"text": "x"}]}
    for _ in range(5):
        feed(ls, {"method": "textDocument/didChange", "params": params})
    await asyncio.sleep(0.05)
    assert wire.messages()[before:] == []
    assert ls.session.documents.get("file:///p/other.py") is None


async def test_toggle_and_status_commands(server) -> None:
    ls, wire = server
    initialize(ls)
    feed(ls, {"id": 2, "method": "workspace/executeCommand", "params": {"command": CMD_TOGGLE}})
    feed(ls, {"id": 3, "method": "workspace/executeCommand", "params": {"command": CMD_STATUS}})
    await asyncio.sleep(0.05)
    assert reply(wire, 2)["result"] is False
    status = reply(wire, 3)["result"]
    assert status["enabled"] is False and status["state"] == "disabled"


async def test_invalid_settings_are_reported_once_and_the_defaults_apply(server) -> None:
    ls, wire = server
    initialize(ls, {"generation": {"maxTokensLine": "many"}})
    await asyncio.sleep(0.05)
    warnings = [
        m
        for m in wire.messages()
        if m.get("method") == "window/showMessage" and "invalid settings" in m["params"]["message"]
    ]
    assert len(warnings) == 1 and warnings[0]["params"]["type"] == 2  # Warning
    assert ls.session.settings.enable is True


async def test_exit_code_says_whether_shutdown_came_first(server) -> None:
    ls, wire = server
    initialize(ls)
    with pytest.raises(SystemExit):  # pygls ends the process on exit
        feed(ls, {"method": "exit"})
    assert ls.exit_code == 1
    feed(ls, {"id": 4, "method": "shutdown"})
    await asyncio.sleep(0.05)
    assert reply(wire, 4)["result"] is None
    with pytest.raises(SystemExit):
        feed(ls, {"method": "exit"})
    assert ls.exit_code == 0


async def test_the_workspace_folders_are_indexed_and_opened_documents_become_recent_tabs(
    server, tmp_path
) -> None:
    ls, wire = server
    (tmp_path / "shapes.py").write_text("def polygon_area(points):\n    return 0\n")
    capabilities = {"general": {"positionEncodings": ["utf-16"]}}
    folders = [{"uri": tmp_path.as_uri(), "name": "w"}]
    options = {"context": {"otherFiles": True}}
    params = {"capabilities": capabilities, "workspaceFolders": folders, "initializationOptions": options}
    feed(ls, {"id": 1, "method": "initialize", "params": params})
    await asyncio.sleep(0.05)
    index = ls.session.related.index
    assert index is not None and index.ready.wait(10)
    assert [f.relative for f in index.files()] == ["shapes.py"]
    uri = (tmp_path / "main.py").as_uri()
    feed(
        ls,
        {
            "method": "textDocument/didOpen",
            "params": {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": "x = 1\n"}},
        },
    )
    assert [d.uri for d in ls.session.related.recent(exclude="")] == [uri]
    feed(ls, {"method": "textDocument/didClose", "params": {"textDocument": {"uri": uri}}})
    assert ls.session.related.recent(exclude="") == []


async def test_by_default_the_workspace_is_not_indexed(server, tmp_path) -> None:
    ls, _ = server
    folders = [{"uri": tmp_path.as_uri(), "name": "w"}]
    feed(ls, {"id": 1, "method": "initialize", "params": {"capabilities": {}, "workspaceFolders": folders}})
    await asyncio.sleep(0.05)
    assert ls.session.roots == [tmp_path] and ls.session.related.index is None
