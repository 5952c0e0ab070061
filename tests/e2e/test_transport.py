"""Large messages, malformed notifications and JSON-RPC edge cases against the real server over stdio."""

from __future__ import annotations

import json

from .test_reliability import EXIT, INITIALIZED, SHUTDOWN, frame, initialize, run_session

URI = "file:///big.py"


def status_request(msg_id: int, arguments=None) -> dict:
    params = {"command": "gpt-lsp.status"}
    if arguments is not None:
        params["arguments"] = arguments
    return {"jsonrpc": "2.0", "id": msg_id, "method": "workspace/executeCommand", "params": params}


def did_open(uri: str, text: str) -> dict:
    item = {"uri": uri, "languageId": "python", "version": 1, "text": text}
    return {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": item}}


def did_change(uri: str, version: int, change: dict) -> dict:
    params = {"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]}
    return {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": params}


def python_source(n_bytes: int) -> str:
    block = (
        "def handler_{i}(request, items):\n    total = sum(x * 2 for x in items)\n    return total + {i}\n\n"
    )
    parts, size, i = [], 0, 0
    while size < n_bytes:
        parts.append(block.format(i=i))
        size += len(parts[-1])
        i += 1
    return "".join(parts)


def start() -> bytes:
    return frame(initialize()) + frame(INITIALIZED)


def finish() -> bytes:
    return frame(SHUTDOWN) + frame(EXIT)


def test_large_documents_do_not_disconnect_the_server(model_path):
    payload = start()
    for n, size in enumerate((60_000, 1_000_000, 5_000_000)):
        payload += frame(did_open(f"file:///big{n}.py", python_source(size))) + frame(status_request(10 + n))
    text = python_source(200_000)
    for version in range(2, 32):  # 30 large whole-document changes in a row
        payload += frame(did_change("file:///big0.py", version, {"text": text + f"# v{version}\n"}))
    payload += frame(status_request(40)) + finish()
    code, messages, stderr = run_session(model_path, payload, timeout=120)
    by_id = {m.get("id"): m for m in messages if "id" in m}
    for msg_id in (10, 11, 12, 40, 99):
        assert "result" in by_id.get(msg_id, {}), (msg_id, stderr[-2000:])
    assert code == 0
    assert b"JSONDecodeError" not in stderr


def test_protocol_mistakes_in_notifications_show_no_popup(model_path):
    never_opened = did_change("file:///never.py", 2, {"range": _range(0, 0, 0, 0), "text": "x"})
    negative = did_change(URI, 2, {"range": _range(0, 0, 0, 0), "rangeLength": -5, "text": "y"})
    payload = start() + frame(did_open(URI, "a = 1\n"))
    for _ in range(5):
        payload += frame(never_opened) + frame(negative)
    payload += frame(status_request(20)) + finish()
    code, messages, _ = run_session(model_path, payload)
    assert not [m for m in messages if m.get("method") == "window/showMessage"], messages
    assert "result" in next(m for m in messages if m.get("id") == 20)
    assert code == 0


def _range(l0: int, c0: int, l1: int, c1: int) -> dict:
    return {"start": {"line": l0, "character": c0}, "end": {"line": l1, "character": c1}}


def test_lowercase_content_length_header_is_recognised(model_path):
    body = json.dumps(initialize(msg_id=3)).encode()
    payload = b"content-length: %d\r\n\r\n" % len(body) + body + frame(INITIALIZED) + finish()
    code, messages, _ = run_session(model_path, payload)
    assert "result" in next(m for m in messages if m.get("id") == 3)
    assert code == 0


def test_batches_missing_version_and_invalid_utf8_get_error_replies(model_path):
    batch = json.dumps([status_request(30), status_request(31), {"jsonrpc": "2.0", "method": "initialized"}])
    no_version = {"id": 32, "method": "workspace/executeCommand", "params": {"command": "gpt-lsp.status"}}
    payload = (
        start()
        + frame(batch)
        + frame(json.dumps(no_version))
        + frame(b'{"jsonrpc": "2.0", "id": 33, "method": "x\xff\xfe"}')
        + frame(status_request(34))
        + finish()
    )
    code, messages, _ = run_session(model_path, payload)
    by_id = {m.get("id"): m for m in messages if "id" in m}
    assert by_id[30]["error"]["code"] == by_id[31]["error"]["code"] == -32600
    assert by_id[32]["error"]["code"] == -32600
    assert any(m.get("id") is None and m.get("error", {}).get("code") == -32700 for m in messages)
    assert "result" in by_id[34]
    replies = [m.get("id") for m in messages if "id" in m and "method" not in m]
    assert sorted((r for r in replies if r is not None), key=str) == [1, 30, 31, 32, 34, 99]
    assert code == 0


def test_execute_command_with_null_arguments_is_invalid_params(model_path):
    snippet = {"command": "gpt-lsp.implementFunction", "arguments": None}
    request = {"jsonrpc": "2.0", "id": 50, "method": "workspace/executeCommand", "params": snippet}
    code, messages, _ = run_session(
        model_path, start() + frame(request) + frame(status_request(51, None)) + finish()
    )
    by_id = {m.get("id"): m for m in messages if "id" in m}
    assert by_id[50]["error"]["code"] == -32602
    assert "result" in by_id[51]
