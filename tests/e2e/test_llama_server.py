"""`backend: openai` against a real llama.cpp server on loopback (llama-cpp-python, Gemma 3 270M GGUF).

Completions through gpt-lsp --stdio, a cancelled stream stopping the server's generation, the
server killed mid-request and restarted, 429 and 500 injected by a proxy in front of it, and a
wrong API key. Skipped, with the reason, where llama-cpp-python[server] is not installed.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from fake_model_server import FakeModelServer, Script
from llama_server import MODEL_ALIAS, LlamaServer, why_unavailable

from gpt_lsp.inference.engine import DecodeLimits
from gpt_lsp.inference.remote import RemoteEngine
from gpt_lsp.settings import RemoteSettings

from .conftest import open_doc, start_client
from .test_remote_backend import inline_texts, served_again, stop

pytestmark = pytest.mark.skipif(why_unavailable() is not None, reason=why_unavailable() or "")

KEY_ENV = "GPT_LSP_TEST_LLAMA_KEY"
KEY = "llama-test-key-7d1e"
CODE = """import os


def read_lines(path):
    with open(path) as handle:
        return [line.rstrip() for line in handle]


def main(argv):
    total = 0
    for name in argv[1:]:
        lines = read_lines(name)
        total += len(lines)
    return total
"""
# (line, character) cut points: the document is the text before each, as if typed up to there.
CUTS = [(3, 15), (4, 9), (5, 15), (9, 9), (10, 8), (11, 16), (12, 14), (13, 10)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def text_before(line: int, character: int) -> str:
    lines = CODE.split("\n")
    return "\n".join(lines[:line] + [lines[line][:character]])


def options(url: str, **generation) -> dict:
    return {
        "backend": "openai",
        "remote": {"baseUrl": url, "model": MODEL_ALIAS, "apiKeyEnv": KEY_ENV},
        "generation": {"timeoutMs": 10_000, **generation},
        "logLevel": "verbose",
    }


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    server = LlamaServer(free_port(), KEY, tmp_path_factory.mktemp("llama") / "server.log")
    server.start()
    yield server
    server.kill()


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)  # gpt-lsp --stdio inherits it; the settings carry only the name


async def test_completions_through_the_real_server(llama):
    client = await start_client(None, None, options(llama.url))
    served = []
    try:
        await client.status_log.wait_for(lambda s: s["state"] == "ready" and "model server" in s["reason"])
        for n, (line, character) in enumerate(CUTS):
            uri = f"file:///work/cut{n}.py"
            open_doc(client, uri, text_before(line, character))
            served += [t for t in await inline_texts(client, uri, line, character) if t.strip()]
    finally:
        await stop(client)
    assert len(served) >= len(CUTS) // 2, served


def test_a_cancelled_stream_stops_the_server_generating(llama):
    engine = RemoteEngine(RemoteSettings(base_url=llama.url, model=MODEL_ALIAS, api_key_env=KEY_ENV))
    engine.repetition_guard = False  # let the list run on: this test wants a long generation
    prompt = engine.encode("squares = [" + ", ".join(str(i * i) for i in range(12)) + ",")
    first = {}

    def cancelled() -> bool:
        return bool(first) and time.perf_counter() - first["at"] > 0.5

    def stop_rule(text: str) -> None:  # never cuts; notes when the first text arrived
        first.setdefault("at", time.perf_counter())
        first.setdefault("cpu", llama.cpu_seconds())

    generation = engine.generate(
        prompt, DecodeLimits(max_tokens=600, timeout_ms=30_000), stop_rule, cancelled
    )
    returned, cpu_at_cancel = time.perf_counter(), llama.cpu_seconds()
    assert generation.stop_reason == "cancelled" and generation.tokens > 5
    assert returned - first["at"] - 0.5 < 0.5  # the worker let go at once, not at the end of 600 tokens
    busy = (cpu_at_cancel - first["cpu"]) / (returned - first["at"])  # CPU s per s while generating
    time.sleep(0.3)  # the server notices at its next token
    settled = llama.cpu_seconds()
    time.sleep(1.0)
    idle = llama.cpu_seconds() - settled
    assert busy > 0.2, busy  # it was generating: the quiet after the cancel means something
    assert idle < busy / 3, (
        f"server still busy after the cancel: {idle:.2f} CPU s in 1 s (generating: {busy:.2f})"
    )
    assert "Disconnected from client" in llama.log()
    engine.close()


async def test_server_killed_mid_request_and_restarted(tmp_path):
    server = LlamaServer(free_port(), KEY, tmp_path / "server.log")
    server.start()
    client = await start_client(None, None, options(server.url))
    try:
        await client.status_log.wait_for(lambda s: s["state"] == "ready")
        uri = "file:///work/fib.py"
        open_doc(client, uri, "def fibonacci(n):\n")
        pending = asyncio.ensure_future(inline_texts(client, uri, 1, 0))  # a block: about 128 tokens
        await asyncio.sleep(0.4)
        server.kill()
        killed = time.perf_counter()
        assert await pending == []
        assert time.perf_counter() - killed < 2.0
        status = await client.status_log.wait_for(lambda s: s["state"] == "error")
        assert "model server unavailable" in status["reason"]
        server.start()
        texts = await served_again(client, uri, 1, 0)
        assert texts and texts[0].strip()
        assert len([m for m in client.messages if "model server" in m.message]) == 1
    finally:
        await stop(client)
        server.kill()


async def test_429_and_500_from_a_fault_injecting_proxy(llama):
    proxy = FakeModelServer(script=Script(mode="proxy", upstream=llama.url))
    client = await start_client(None, None, options(proxy.url))
    uri = "file:///work/proxy.py"
    line, character = CUTS[2]
    try:
        await client.status_log.wait_for(lambda s: s["state"] == "ready")
        open_doc(client, uri, text_before(line, character))
        assert await inline_texts(client, uri, line, character)  # through the proxy to the real server
        for mode, words in (("429", "rate limiting"), ("500", "HTTP 500")):
            proxy.script.mode, proxy.script.retry_after = mode, "1"
            client.status_log.items.clear()
            open_doc(client, f"{uri}.{mode}", text_before(line, character - 1))  # not in the cache
            for _ in range(5):  # typing on: the fault is seen once the pause before it has passed
                assert await inline_texts(client, f"{uri}.{mode}", line, character - 1) == []
                await asyncio.sleep(0.5)
            status = await client.status_log.wait_for(
                lambda s, w=words: s["state"] == "error" and w in s["reason"]
            )
            assert "model server unavailable" in status["reason"]
        popups = [m.message for m in client.messages if "model server" in m.message]
        # One popup per fault, not one per keystroke.
        assert len(popups) == 2 and "429" in popups[0] and "500" in popups[1]
        proxy.script.mode = "proxy"
        open_doc(client, f"{uri}.back", text_before(*CUTS[3]))
        assert await served_again(client, f"{uri}.back", *CUTS[3])
        assert [s.body.get("model") for s in proxy.served] == [MODEL_ALIAS] * len(proxy.served)
    finally:
        await stop(client)
        proxy.close()


async def test_a_wrong_api_key_is_reported_once(llama, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "not-the-key")
    client = await start_client(None, None, options(llama.url))
    try:
        await client.status_log.wait_for(lambda s: s["state"] == "ready")
        uri = "file:///work/key.py"
        open_doc(client, uri, text_before(*CUTS[0]))
        for _ in range(4):
            assert await inline_texts(client, uri, *CUTS[0]) == []
        status = await client.status_log.wait_for(lambda s: s["state"] == "error")
        assert "refused the API key" in status["reason"] and KEY_ENV in status["reason"]
        popups = [m.message for m in client.messages if "model server" in m.message]
        assert len(popups) == 1 and "not-the-key" not in popups[0]
    finally:
        await stop(client)
