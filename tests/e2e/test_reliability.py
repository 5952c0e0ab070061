"""Transport, lifecycle and fault behaviour of the real server process (framing, lifecycle, faults: docs/reliability.md).

These talk raw JSON-RPC over pipes so they can send what no well-behaved client library would.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time

import pytest

from .conftest import server_command


def frame(message: dict | str | bytes) -> bytes:
    body = (
        message
        if isinstance(message, bytes)
        else (message if isinstance(message, str) else json.dumps(message)).encode()
    )
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def parse_frames(data: bytes) -> list[dict]:
    """Split stdout into messages; fail if any byte is not part of a well-formed frame."""
    messages = []
    while data:
        header, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, f"stray bytes on stdout: {data[:80]!r}"
        lengths = [line for line in header.split(b"\r\n") if line.lower().startswith(b"content-length:")]
        assert lengths, f"frame without Content-Length: {header[:80]!r}"
        n = int(lengths[0].split(b":")[1])
        messages.append(json.loads(rest[:n]))
        data = rest[n:]
    return messages


def initialize(msg_id: int = 1, pid: int | None = None) -> dict:
    return {
        "jsonrpc": "2.0",
        "id": msg_id,
        "method": "initialize",
        "params": {"processId": pid, "capabilities": {}},
    }


def run_session(model, payload: bytes, timeout: float = 30.0) -> tuple[int, list[dict], bytes]:
    proc = subprocess.run(server_command(model), input=payload, capture_output=True, timeout=timeout)
    return proc.returncode, parse_frames(proc.stdout), proc.stderr


SHUTDOWN = {"jsonrpc": "2.0", "id": 99, "method": "shutdown"}
EXIT = {"jsonrpc": "2.0", "method": "exit"}
INITIALIZED = {"jsonrpc": "2.0", "method": "initialized", "params": {}}


def test_exit_after_shutdown_is_zero_and_without_is_one(model_path):
    code, messages, _ = run_session(
        model_path, frame(initialize()) + frame(INITIALIZED) + frame(SHUTDOWN) + frame(EXIT)
    )
    assert code == 0
    assert any(m.get("id") == 99 and m.get("result") is None and "error" not in m for m in messages)
    code, _, _ = run_session(model_path, frame(initialize()) + frame(EXIT))
    assert code == 1


def test_stdin_eof_ends_the_server_quickly(model_path):
    start = time.monotonic()
    code, messages, _ = run_session(model_path, frame(initialize()), timeout=20)
    assert time.monotonic() - start < 20
    assert any(m.get("id") == 1 and "result" in m for m in messages)


def test_unknown_method_and_bad_params_get_errors_not_a_crash(model_path):
    payload = (
        frame(initialize())
        + frame(INITIALIZED)
        + frame({"jsonrpc": "2.0", "id": 2, "method": "gpt-lsp/noSuchMethod", "params": {}})
        + frame({"jsonrpc": "2.0", "method": "$/noSuchNotification", "params": {}})
        + frame(
            {
                "jsonrpc": "2.0",
                "id": 3,
                "method": "textDocument/inlineCompletion",
                "params": {"textDocument": 5},
            }
        )
        + frame({"jsonrpc": "2.0", "id": 4, "method": "gpt-lsp/noSuchMethod"})
        + frame(
            {
                "jsonrpc": "2.0",
                "id": 12,
                "method": "textDocument/inlineCompletion",
                "params": {
                    "textDocument": {"uri": "file:///x.py"},
                    "position": {"line": 0, "character": 0},
                    "context": {},
                },
            }
        )
        + frame(SHUTDOWN)
        + frame(EXIT)
    )
    code, messages, _ = run_session(model_path, payload)
    by_id = {m.get("id"): m for m in messages if "id" in m}
    assert by_id[2]["error"]["code"] == -32601
    assert by_id[3]["error"]["code"] == -32602
    assert "text_document" in by_id[3]["error"]["message"]  # says which field is wrong
    assert "result" in by_id[12]  # a client that omits context.triggerKind still gets an answer
    assert by_id[99].get("result") is None and code == 0


@pytest.mark.parametrize(
    "garbage",
    [
        b"Content-Length: abc\r\n\r\n{}",
        b"Content-Length: 5\r\n\r\n{oops",
        b"\x00\xff\xfe random bytes \r\n\r\n",
        b"Content-Length: 20\r\n\r\n" + b"[" * 20,
        frame("[" * 100_000 + "]" * 100_000),
        frame('{"jsonrpc": "2.0", "id": 7, "method": "initialize", "params": "wrong"}'),
    ],
)
def test_bad_framing_and_bad_json_do_not_kill_the_server(model_path, garbage):
    payload = garbage + frame(initialize(msg_id=11)) + frame(SHUTDOWN) + frame(EXIT)
    code, messages, _ = run_session(model_path, payload)
    assert any(m.get("id") == 99 for m in messages), "server stopped answering after bad input"


def test_random_bytes_then_a_valid_session(model_path):
    rng = random.Random(1234)
    for _ in range(5):
        noise = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        code, messages, _ = run_session(
            model_path, noise + b"\r\n\r\n" + frame(initialize(msg_id=5)) + frame(SHUTDOWN) + frame(EXIT)
        )
        assert any(m.get("id") == 99 for m in messages)


def test_stdout_carries_only_json_rpc_even_when_libraries_print(model_path, tmp_path):
    """A library writing to fd 1 must not reach the wire (pygls#133)."""
    script = tmp_path / "noisy.py"
    script.write_text(
        "import os, sys, runpy\n"
        "import gpt_lsp.cli as cli\n"
        "orig = cli._setup_logging\n"
        "def noisy(*a):\n"
        "    orig(*a)\n"
        "    os.write(1, b'native library noise\\n')\n"
        "    print('python noise')\n"
        "cli._setup_logging = noisy\n"
        "sys.exit(cli.main(sys.argv[1:]))\n"
    )
    payload = frame(initialize()) + frame(INITIALIZED) + frame(SHUTDOWN) + frame(EXIT)
    proc = subprocess.run(
        [sys.executable, str(script), "--stdio", "--model", str(model_path)],
        input=payload,
        capture_output=True,
        timeout=30,
    )
    messages = parse_frames(proc.stdout)  # asserts every byte is framed
    assert any(m.get("id") == 1 for m in messages)
    assert b"native library noise" in proc.stderr and b"python noise" in proc.stderr


def test_server_exits_when_its_parent_dies(model_path):
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    server = subprocess.Popen(
        server_command(model_path), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    server.stdin.write(frame(initialize(pid=parent.pid)))
    server.stdin.flush()
    parent.wait()
    try:
        server.wait(timeout=5)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode is not None


def test_corrupt_model_file_keeps_initialize_working(model_path, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in os.listdir(model_path):
        (broken / name).write_bytes((model_path / name).read_bytes())
    (broken / "model.int8.onnx").write_bytes(
        b"version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 1\n"
    )
    payload = frame(initialize()) + frame(INITIALIZED)
    proc = subprocess.Popen(
        server_command(broken), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        out, _ = proc.communicate(payload + frame(SHUTDOWN) + frame(EXIT), timeout=30)
    finally:
        proc.kill()
    messages = parse_frames(out)
    assert any(m.get("id") == 1 and "result" in m for m in messages)


def test_requests_before_initialize_and_after_shutdown_are_refused(model_path):
    status = {
        "jsonrpc": "2.0",
        "id": 5,
        "method": "workspace/executeCommand",
        "params": {"command": "gpt-lsp.status"},
    }
    late = dict(status, id=6)
    payload = (
        frame(status) + frame(initialize()) + frame(INITIALIZED) + frame(SHUTDOWN) + frame(late) + frame(EXIT)
    )
    code, messages, _ = run_session(model_path, payload)
    by_id = {m.get("id"): m for m in messages if "id" in m}
    assert by_id[5]["error"]["code"] == -32002
    assert by_id[6]["error"]["code"] == -32600
    assert code == 0


def test_fuzzed_stream_with_oversized_messages_answers_every_request_once(model_path):
    """Garbage, oversized and malformed messages between requests: each request id gets one reply."""
    rng = random.Random(4321)
    big_text = "x = 1\n" * 500_000  # a 3 MB document
    status = {"jsonrpc": "2.0", "method": "workspace/executeCommand", "params": {"command": "gpt-lsp.status"}}
    hostile = [
        lambda: frame(
            {
                "jsonrpc": "2.0",
                "method": "textDocument/didOpen",
                "params": {
                    "textDocument": {
                        "uri": f"file:///f{rng.randrange(3)}.py",
                        "languageId": "python",
                        "version": 1,
                        "text": big_text,
                    }
                },
            }
        ),
        lambda: b"Content-Length: 200000000\r\n\r\n",  # claims more than the server accepts
        lambda: b"Content-Length: 9999999999\r\n\r\n{}",
        lambda: frame(b'{"jsonrpc": "2.0", "method": "\xff\xfe"}'),
        lambda: frame("{" * 50),
        lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))),
        lambda: frame(json.dumps([{"jsonrpc": "2.0", "method": "initialized"}])),
    ]
    payload = frame(initialize()) + frame(INITIALIZED)
    ids = []
    for n in range(40):
        payload += rng.choice(hostile)()
        msg_id = 1000 + n
        ids.append(msg_id)
        request = dict(status, id=msg_id)
        if n % 5 == 0:  # an oversized request of its own: 2 MB of arguments
            request["params"] = {"command": "gpt-lsp.status", "arguments": ["a" * 2_000_000]}
        payload += b"\r\n" + frame(request)
    payload += frame(SHUTDOWN) + frame(EXIT)
    code, messages, _ = run_session(model_path, payload, timeout=120)
    replies = [m["id"] for m in messages if "id" in m and "method" not in m]
    assert [replies.count(i) for i in ids] == [1] * len(ids)
    assert replies.count(99) == 1 and code == 0
