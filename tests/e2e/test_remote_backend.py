"""`backend: openai` over real LSP: gpt-lsp --stdio talking to a completion server on loopback.

The server here is the scriptable one in fake_model_server.py, so these run in every suite; the
same flows against a real llama.cpp server are in test_llama_server.py.
"""

from __future__ import annotations

import asyncio
import socket
import time

from fake_model_server import FakeModelServer, Script
from lsprotocol import types as lsp

from .conftest import open_doc, start_client
from .test_serving import inline_params

SOURCE = "def total(values):\n    \n"


def remote_options(url: str, **remote) -> dict:
    return {
        "backend": "openai",
        "remote": {"baseUrl": url, "model": "fake-coder", **remote},
        "generation": {"timeoutMs": 3000},
        "logLevel": "verbose",
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def inline_texts(client, uri: str, line: int, character: int) -> list[str]:
    result = await client.text_document_inline_completion_async(inline_params(uri, line, character))
    items = result.items if isinstance(result, lsp.InlineCompletionList) else (result or [])
    return [item.insert_text for item in items]


async def served_again(client, uri: str, line: int, character: int, timeout: float = 20.0) -> list[str]:
    """Ask until the server answers again: the first request after the pause is the one that gets through."""
    deadline = time.monotonic() + timeout
    while not (texts := await inline_texts(client, uri, line, character)) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    return texts


async def stop(client) -> None:
    await client.shutdown_session()
    await client.stop()


async def test_completion_comes_from_the_server_through_the_shared_pipeline():
    server = FakeModelServer(script=Script(pieces=["return", " sum", "(values", ")\n", "print(1)\n"]))
    client = await start_client(None, None, remote_options(server.url))
    try:
        await client.status_log.wait_for(lambda s: s["state"] == "ready" and "model server" in s["reason"])
        uri = "file:///work/total.py"
        open_doc(client, uri, SOURCE)
        assert await inline_texts(client, uri, 1, 4) == ["return sum(values)"]  # the line stop rule cut it
        body = server.served[0].body
        assert body["prompt"].endswith("def total(values):\n    ") and body["model"] == "fake-coder"
        assert body["stream"] is True and "suffix" not in body
        # The same position again is answered from the shared cache: the server sees no second request.
        assert await inline_texts(client, uri, 1, 4) == ["return sum(values)"]
        assert len(server.served) == 1
    finally:
        await stop(client)
        server.close()


async def test_a_newer_edit_closes_the_running_request():
    server = FakeModelServer(script=Script(pieces=[f"v{i} + " for i in range(300)], piece_delay_s=0.02))
    client = await start_client(None, None, remote_options(server.url))
    try:
        await client.status_log.wait_for(lambda s: s["state"] == "ready")
        uri = "file:///work/edit.py"
        open_doc(client, uri, SOURCE)
        pending = asyncio.ensure_future(inline_texts(client, uri, 1, 4))
        await asyncio.to_thread(server.wait_for, lambda: server.served and server.served[0].chunks_sent >= 3)
        client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                lsp.VersionedTextDocumentIdentifier(version=2, uri=uri),
                [
                    lsp.TextDocumentContentChangePartial(
                        lsp.Range(lsp.Position(1, 4), lsp.Position(1, 4)), "r"
                    )
                ],
            )
        )
        edited = time.perf_counter()
        assert await pending == []  # a result for the old version is never sent
        assert await asyncio.to_thread(server.wait_for, lambda: server.served[0].client_left_at is not None)
        assert server.served[0].client_left_at - edited < 1.0
        assert server.served[0].chunks_sent < 100 and not server.served[0].finished
    finally:
        await stop(client)
        server.close()


async def test_server_down_then_up_one_popup_status_says_why_and_no_restart():
    port = free_port()
    client = await start_client(None, None, remote_options(f"http://127.0.0.1:{port}/v1"))
    server = None
    try:
        await client.status_log.wait_for(lambda s: s["state"] == "ready")
        uri = "file:///work/down.py"
        open_doc(client, uri, SOURCE)
        started = time.perf_counter()
        for _ in range(8):  # typing while the server is down
            assert await inline_texts(client, uri, 1, 4) == []
        assert time.perf_counter() - started < 5.0
        status = await client.status_log.wait_for(
            lambda s: s["state"] == "error" and "unavailable" in s["reason"]
        )
        assert "cannot connect" in status["reason"]
        warnings = [m for m in client.messages if "model server unavailable" in m.message]
        assert len(warnings) == 1
        server = FakeModelServer(port)
        assert await served_again(client, uri, 1, 4) == ["x = 1"]
        await client.status_log.wait_for(lambda s: s["state"] == "ready" and s["reason"].startswith("ok"))
        assert len([m for m in client.messages if "model server" in m.message]) == 1
    finally:
        await stop(client)
        if server:
            server.close()


async def test_fallback_to_the_local_model_while_the_server_is_down(model_path):
    options = remote_options(f"http://127.0.0.1:{free_port()}/v1", fallbackToLocal=True)
    client = await start_client(model_path, None, options)
    try:
        await client.status_log.wait_for(lambda s: s["state"] == "ready")
        uri = "file:///work/fallback.py"
        open_doc(client, uri, SOURCE)
        await inline_texts(client, uri, 1, 4)  # whatever the tiny local model makes of it
        status = await client.status_log.wait_for(lambda s: s["uri"] == uri and "local model" in s["reason"])
        assert status["state"] == "ready" and "cannot connect" in status["reason"]
    finally:
        await stop(client)
