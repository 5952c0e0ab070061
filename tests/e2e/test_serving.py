"""Completions over real LSP from a real ONNX model (tiny random weights: content is noise, the
protocol, ranges, gating, cancellation and status are what these tests pin down)."""

from __future__ import annotations

import asyncio

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcRequestCancelled

from .conftest import open_doc, start_client

SOURCE = "import os\n\n\ndef read(path):\n    with open(path) as f:\n        data = f.read()\n    return \n"


def inline_params(uri: str, line: int, character: int) -> lsp.InlineCompletionParams:
    return lsp.InlineCompletionParams(
        text_document=lsp.TextDocumentIdentifier(uri),
        position=lsp.Position(line, character),
        context=lsp.InlineCompletionContext(trigger_kind=lsp.InlineCompletionTriggerKind.Invoked),
    )


def in_document(text: str, rng: lsp.Range) -> bool:
    lines = text.split("\n")
    for pos in (rng.start, rng.end):
        if pos.line >= len(lines) or pos.character > len(lines[pos.line].encode("utf-16-le")) // 2:
            return False
    return (rng.start.line, rng.start.character) <= (rng.end.line, rng.end.character)


async def test_initialize_advertises_completion_and_negotiates_encoding(client):
    caps = client.init_result.capabilities
    assert caps.inline_completion_provider is not None
    assert caps.completion_provider is not None
    assert caps.text_document_sync.change == lsp.TextDocumentSyncKind.Incremental
    assert caps.position_encoding in (lsp.PositionEncodingKind.Utf8, lsp.PositionEncodingKind.Utf16)


async def test_utf8_is_chosen_whenever_the_client_offers_it(model_path):
    c = await start_client(model_path, ["utf-16", "utf-8"])
    try:
        assert c.init_result.capabilities.position_encoding == lsp.PositionEncodingKind.Utf8
    finally:
        await c.shutdown_session()
        await c.stop()


async def test_inline_completion_answers_with_ranges_inside_the_document(client):
    uri = "file:///work/read.py"
    open_doc(client, uri, SOURCE)
    result = await client.text_document_inline_completion_async(inline_params(uri, 6, 11))
    items = result.items if isinstance(result, lsp.InlineCompletionList) else (result or [])
    for item in items:
        assert isinstance(item.insert_text, str) and item.insert_text.strip()
        assert in_document(SOURCE, item.range)
    status = await client.status_log.wait_for(lambda s: s["uri"] == uri and s["state"] == "ready")
    assert status["reason"]


async def test_list_completion_items_carry_text_edits_and_filter_text(client):
    uri = "file:///work/list.py"
    open_doc(client, uri, SOURCE)
    result = await client.text_document_completion_async(
        lsp.CompletionParams(lsp.TextDocumentIdentifier(uri), lsp.Position(6, 11))
    )
    assert isinstance(result, lsp.CompletionList) and result.is_incomplete
    for item in result.items:
        assert item.text_edit is not None and in_document(SOURCE, item.text_edit.range)
        assert item.filter_text and item.text_edit.new_text.startswith(item.filter_text[:0])


async def test_gate_refuses_inside_a_comment_and_says_why(client):
    uri = "file:///work/comment.py"
    text = "# a comment about things\nx = 1\n"
    open_doc(client, uri, text)
    result = await client.text_document_inline_completion_async(inline_params(uri, 0, 5))
    assert not (result.items if isinstance(result, lsp.InlineCompletionList) else result)
    status = await client.status_log.wait_for(lambda s: s["uri"] == uri and "gate" in s["reason"])
    assert "comment" in status["reason"]


async def test_unknown_document_and_out_of_range_positions_do_not_fail(client):
    result = await client.text_document_inline_completion_async(
        inline_params("file:///never/opened.py", 0, 0)
    )
    assert not result or not result.items
    uri = "file:///work/range.py"
    open_doc(client, uri, SOURCE)
    result = await client.text_document_inline_completion_async(inline_params(uri, 500, 900))
    items = result.items if isinstance(result, lsp.InlineCompletionList) else (result or [])
    assert all(in_document(SOURCE, item.range) for item in items)


async def test_a_newer_edit_means_the_old_result_is_never_sent(client):
    uri = "file:///work/stale.py"
    open_doc(client, uri, SOURCE)
    pending = asyncio.ensure_future(client.text_document_inline_completion_async(inline_params(uri, 6, 11)))
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            lsp.VersionedTextDocumentIdentifier(version=2, uri=uri),
            [lsp.TextDocumentContentChangePartial(lsp.Range(lsp.Position(6, 11), lsp.Position(6, 11)), "d")],
        )
    )
    result = await pending
    # Either it finished before the edit landed (then its ranges are in version 1) or it was dropped.
    items = result.items if isinstance(result, lsp.InlineCompletionList) else (result or [])
    assert all(in_document(SOURCE, i.range) for i in items)


async def test_cancel_request_stops_the_decode_and_the_server_goes_on(client):
    uri = "file:///work/cancel.py"
    open_doc(client, uri, SOURCE)
    msg_id = "cancel-me"
    task = asyncio.ensure_future(
        client.protocol.send_request_async(
            lsp.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, 6, 11), msg_id=msg_id
        )
    )
    await asyncio.sleep(0)  # let the request go out before its cancellation
    client.protocol.notify(lsp.CANCEL_REQUEST, lsp.CancelParams(id=msg_id))
    try:
        await task
    except JsonRpcRequestCancelled:
        pass  # -32800: cancelled before it finished
    # The server still answers afterwards.
    status = await client.workspace_execute_command_async(lsp.ExecuteCommandParams("gpt-lsp.status"))
    assert status["modelError"] is None


async def test_status_and_toggle_commands(client):
    status = await client.workspace_execute_command_async(lsp.ExecuteCommandParams("gpt-lsp.status"))
    assert status["state"] in ("ready", "generating") and status["modelError"] is None
    assert await client.workspace_execute_command_async(lsp.ExecuteCommandParams("gpt-lsp.toggle")) is False
    uri = "file:///work/off.py"
    open_doc(client, uri, SOURCE)
    await client.text_document_inline_completion_async(inline_params(uri, 6, 11))
    await client.status_log.wait_for(lambda s: s["reason"] == "disabled by the user")
    assert await client.workspace_execute_command_async(lsp.ExecuteCommandParams("gpt-lsp.toggle")) is True


async def test_invalid_settings_fall_back_to_defaults_with_one_message(model_path):
    c = await start_client(model_path, None, {"generation": {"maxTokensLine": "lots"}})
    try:
        await asyncio.sleep(0.5)
        messages = [m.message for m in c.messages]
        assert any(
            "invalid settings" in m and "maxTokensLine" in m.replace("max_tokens_line", "maxTokensLine")
            for m in messages
        )
    finally:
        await c.shutdown_session()
        await c.stop()


async def test_missing_model_keeps_the_server_up_and_says_which_file(tmp_path):
    c = await start_client(tmp_path / "no-such-model")
    try:
        status = await c.status_log.wait_for(lambda s: s["state"] == "error")
        assert "no-such-model" in status["reason"]
        open_doc(c, "file:///work/a.py", SOURCE)
        result = await c.text_document_inline_completion_async(inline_params("file:///work/a.py", 6, 11))
        assert not result or not result.items
    finally:
        await c.shutdown_session()
        await c.stop()
