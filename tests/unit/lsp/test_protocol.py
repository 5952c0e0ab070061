"""GptLspProtocol in-process: handlers' futures do not pile up in pygls's request table."""

from __future__ import annotations

import asyncio

from gpt_lsp.lsp.handlers import create_server

from .wire import Wire, feed


async def test_notifications_and_commands_leave_no_futures_behind(tmp_path) -> None:
    ls = create_server(tmp_path / "no-model")  # no model: the server still serves documents and commands
    ls.protocol.set_writer(Wire())
    feed(ls, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}})
    feed(ls, {"jsonrpc": "2.0", "method": "initialized", "params": {}})
    item = {"uri": "file:///a.py", "languageId": "python", "version": 1, "text": "x = 1\n"}
    feed(ls, {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": item}})
    at = {"line": 0, "character": 0}
    for version in range(2, 1002):
        change = {"range": {"start": at, "end": at}, "text": "y"}
        params = {"textDocument": {"uri": "file:///a.py", "version": version}, "contentChanges": [change]}
        feed(ls, {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": params})
    for msg_id in range(2, 52):
        params = {"command": "gpt-lsp.status"}
        feed(ls, {"jsonrpc": "2.0", "id": msg_id, "method": "workspace/executeCommand", "params": params})
    await asyncio.sleep(0.1)
    assert ls.session.documents.get("file:///a.py").text == "y" * 1000 + "x = 1\n"
    assert ls.protocol._request_futures == {}
    ls.session.shutdown()
