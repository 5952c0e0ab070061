"""`gpt-lsp soak`: the server under a long, hostile session, as figures.

Starts the real `gpt-lsp --stdio` and talks raw JSON-RPC to it (so it can send what editors send,
only more of it): very large documents, thousands of notifications and completions, and typing
into files that are hard to parse. Prints messages sent, error replies, server deaths, RSS before
and after each soak, the largest message answered, and the p95 of a trivial request sent right
after each keystroke into each pathological file. It needs no toolchain: a server-only install
can run it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from gpt_lsp.model.metrics import percentile

TRIVIAL = ("workspace/executeCommand", {"command": "gpt-lsp.status"})
BLOCK = "def handler_{i}(request, items):\n    total = sum(x * 2 for x in items)\n    return total + {i}\n\n"


def python_source(n_bytes: int) -> str:
    """Ordinary Python of about `n_bytes`."""
    parts, size, i = [], 0, 0
    while size < n_bytes:
        parts.append(BLOCK.format(i=i))
        size += len(parts[-1])
        i += 1
    return "".join(parts)


def mixed_line_endings(n_bytes: int) -> str:
    lines = python_source(n_bytes).split("\n")
    return "".join(line + ("\r\n", "\n", "\r")[n % 3] for n, line in enumerate(lines))


PATHOLOGICAL = {  # name -> (text, (line, character) where the keystrokes go)
    "1 MB line": (lambda: "x = [" + "1, " * 333_333 + "]\n", (0, 500_000)),
    "50k-deep nesting": (lambda: "x = " + "[" * 50_000 + "]" * 50_000 + "\n", (0, 50_004)),
    "mixed CR/LF": (lambda: mixed_line_endings(1_000_000), (6_000, 4)),
    "5 MB file": (lambda: python_source(5_000_000), (60_000, 4)),
}


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    except (OSError, StopIteration):
        return float("nan")


class RawClient:
    """A JSON-RPC client over the server's stdio pipes; counts what it sends and what comes back."""

    def __init__(self, command: list[str]) -> None:
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self.sent = self.errors = self.popups = self.suggestions = 0
        self.largest_answered = 0
        self._next_id = 0
        self._replies: dict[Any, dict] = {}
        self._arrived: dict[Any, float] = {}
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = 0
            while (line := out.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if not line:
                with self._cond:
                    self._cond.notify_all()
                return
            message = json.loads(out.read(length))
            if "method" in message:
                if message["method"] == "window/showMessage" and message["params"]["type"] == 1:
                    self.popups += 1
                if "id" in message:  # a request from the server (progress, pick a candidate): decline
                    self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
                continue
            with self._cond:
                self.errors += "error" in message
                self._replies[message.get("id")] = message
                self._arrived[message.get("id")] = time.perf_counter()
                self._cond.notify_all()

    def send(self, message: dict) -> int:
        body = json.dumps(message).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()
        self.sent += 1
        return len(body)

    def notify(self, method: str, params: Any) -> int:
        return self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method: str, params: Any = None) -> int:
        self._next_id += 1
        self.send({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params})
        return self._next_id

    def wait(self, msg_id: int, timeout: float = 120.0) -> tuple[dict | None, float]:
        """The reply to `msg_id` and when it arrived; (None, nan) if the server died or timed out."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while msg_id not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return None, float("nan")
                self._cond.wait(min(left, 1.0))
            return self._replies.pop(msg_id), self._arrived.pop(msg_id)

    def call(self, method: str, params: Any = None, timeout: float = 120.0) -> dict | None:
        return self.wait(self.request(method, params), timeout)[0]

    def trivial_ms(self) -> float:
        """Latency of the cheapest request (the status command), in ms."""
        start = time.perf_counter()
        _, arrived = self.wait(self.request(*TRIVIAL))
        return (arrived - start) * 1000

    def open(self, uri: str, text: str) -> int:
        item = {"uri": uri, "languageId": "python", "version": 1, "text": text}
        return self.notify("textDocument/didOpen", {"textDocument": item})

    def insert(self, uri: str, version: int, line: int, character: int, text: str) -> int:
        at = {"line": line, "character": character}
        change = {"range": {"start": at, "end": at}, "text": text}
        params = {"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]}
        return self.notify("textDocument/didChange", params)

    def close(self) -> int:
        """Shut down politely; the exit code (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.call("shutdown", None, timeout=30)
            self.notify("exit", None)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -9


def _soak(client: RawClient, uri: str, count: int, step) -> tuple[float, float]:
    """RSS before and after `count` calls of `step(i)`, synchronising every 500 messages."""
    client.trivial_ms()
    before = rss_mb(client.proc.pid)
    for i in range(count):
        step(i)
        if i % 500 == 499:
            client.trivial_ms()
    client.trivial_ms()
    time.sleep(1.0)
    return before, rss_mb(client.proc.pid)


def _typist(client: RawClient, uri: str):
    """A step that types the next character of some code and asks for a completion right there,
    so no two completions see the same prefix (a repeated one would be answered from the cache)."""
    code = python_source(4_000)
    client.open(uri, "")
    cursor = [0, 0]

    def step(i: int) -> None:
        char = code[i % len(code)]
        client.insert(uri, i + 2, cursor[0], cursor[1], char)
        cursor[:] = [cursor[0] + 1, 0] if char == "\n" else [cursor[0], cursor[1] + 1]
        position = {"line": cursor[0], "character": cursor[1]}
        reply = client.call("textDocument/completion", {"textDocument": {"uri": uri}, "position": position})
        client.suggestions += bool(((reply or {}).get("result") or {}).get("items"))

    return step


def _open_close(client: RawClient, documents: int) -> tuple[float, float, float]:
    """RSS before, with `documents` files of 20 KB open (each parsed for diagnostics), and after closing them."""
    text = python_source(20_000)
    client.trivial_ms()
    before = rss_mb(client.proc.pid)
    for n in range(documents):
        client.open(f"file:///soak/many{n}.py", text.replace("handler_", f"handler{n}_"))
        if n % 200 == 199:
            client.trivial_ms()
    time.sleep(2.0)  # let the debounced syntax checks parse the last ones
    client.trivial_ms()
    opened = rss_mb(client.proc.pid)
    for n in range(documents):
        client.notify("textDocument/didClose", {"textDocument": {"uri": f"file:///soak/many{n}.py"}})
    client.trivial_ms()
    time.sleep(3.0)  # the server hands freed memory back 2 s after the last close
    return before, opened, rss_mb(client.proc.pid)


def run_soak(
    command: list[str], notifications: int, completions: int, keystrokes: int, documents: int, out=sys.stdout
) -> dict:
    client = RawClient(command)
    deaths = 0
    options = {"generation": {"debounceMs": 0}}
    client.call("initialize", {"processId": None, "capabilities": {}, "initializationOptions": options})
    client.notify("initialized", {})
    for _ in range(600):  # wait for the model, up to a minute
        reply = client.call("workspace/executeCommand", {"command": "gpt-lsp.status"})
        if reply is None or reply.get("result", {}).get("state") in ("ready", "error"):
            break
        time.sleep(0.1)
    model_state = (reply or {}).get("result", {}).get("state", "dead")

    for n, size in enumerate((60_000, 1_000_000, 5_000_000)):
        uri = f"file:///soak/large{n}.py"
        body = client.open(uri, python_source(size))
        if client.call(*TRIVIAL) is not None:
            client.largest_answered = max(client.largest_answered, body)
        client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    time.sleep(3.0)  # let the server hand those documents' memory back before measuring the soaks

    uri = "file:///soak/small.py"
    client.open(uri, python_source(2_000))

    # Type and delete one character, so the document stays the same size throughout.
    def keystroke(i: int) -> None:
        if i % 2 == 0:
            client.insert(uri, i + 2, 3, 4, "z")
        else:
            change = {
                "range": {"start": {"line": 3, "character": 4}, "end": {"line": 3, "character": 5}},
                "text": "",
            }
            params = {"textDocument": {"uri": uri, "version": i + 2}, "contentChanges": [change]}
            client.notify("textDocument/didChange", params)

    rss_notifications = _soak(client, uri, notifications, keystroke)
    rss_documents = _open_close(client, documents)
    rss_completions = _soak(client, uri, completions, _typist(client, "file:///soak/typing.py"))

    typing: dict[str, tuple[float, float]] = {}
    for n, (name, (make, (line, character))) in enumerate(PATHOLOGICAL.items()):
        if client.proc.poll() is not None:
            deaths += 1
            client = RawClient(command)
            client.call("initialize", {"processId": None, "capabilities": {}})
            client.notify("initialized", {})
        file_uri = f"file:///soak/pathological{n}.py"
        client.open(file_uri, make())
        client.trivial_ms()
        latencies = []
        for k in range(keystrokes):
            client.insert(file_uri, k + 2, line, character + k, "1")
            latencies.append(client.trivial_ms())
            time.sleep(0.03)  # a fast typist: ~30 keystrokes a second
        typing[name] = (percentile(latencies, 0.5), percentile(latencies, 0.95))
        client.notify("textDocument/didClose", {"textDocument": {"uri": file_uri}})

    deaths += client.proc.poll() is not None
    exit_code = client.close()
    figures = {
        "model": model_state,
        "messages_sent": client.sent,
        "errors": client.errors,
        "error_popups": client.popups,
        "server_deaths": deaths,
        "exit_code": exit_code,
        "largest_message_answered_bytes": client.largest_answered,
        "rss_notifications_mb": rss_notifications,
        "rss_completions_mb": rss_completions,
        "completions_with_items": client.suggestions,
        "rss_documents_mb": rss_documents,
        "typing_ms": typing,
    }
    _print(figures, notifications, completions, keystrokes, documents, out)
    return figures


def _print(f: dict, notifications: int, completions: int, keystrokes: int, documents: int, out) -> None:
    def rss(pair: tuple[float, float]) -> str:
        return f"{pair[0]:.1f} -> {pair[1]:.1f} MB (growth {pair[1] - pair[0]:+.1f} MB)"

    print(f"model: {f['model']}", file=out)
    print(f"messages sent: {f['messages_sent']}", file=out)
    print(f"error replies: {f['errors']}", file=out)
    print(f"error popups: {f['error_popups']}", file=out)
    print(f"server deaths: {f['server_deaths']}", file=out)
    print(f"exit code after shutdown/exit: {f['exit_code']}", file=out)
    print(f"largest message answered: {f['largest_message_answered_bytes']} bytes", file=out)
    print(f"RSS over {notifications} didChange notifications: {rss(f['rss_notifications_mb'])}", file=out)
    print(f"RSS over {completions} completions: {rss(f['rss_completions_mb'])}", file=out)
    print(f"completions that returned items: {f['completions_with_items']} of {completions}", file=out)
    before, opened, closed = f["rss_documents_mb"]
    print(
        f"RSS with {documents} documents of 20 KB open: {before:.1f} -> {opened:.1f} MB, after closing them {closed:.1f} MB",
        file=out,
    )
    for name, (p50, p95) in f["typing_ms"].items():
        print(
            f"trivial request while typing ({keystrokes} keys) into {name}: p50 {p50:.1f} ms, p95 {p95:.1f} ms",
            file=out,
        )


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "soak", help="stress the real server and print reliability figures", description=__doc__
    )
    p.add_argument("--model", metavar="DIR", type=Path, help="model directory (default: the shipped model)")
    p.add_argument("--notifications", type=int, default=10_000, help="didChange notifications to send")
    p.add_argument("--completions", type=int, default=10_000, help="completion requests to send")
    p.add_argument("--keystrokes", type=int, default=100, help="keystrokes into each pathological file")
    p.add_argument("--documents", type=int, default=2_000, help="documents of 20 KB to open and close")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    command = [sys.executable, "-m", "gpt_lsp", "--stdio"] + (
        ["--model", str(args.model)] if args.model else []
    )
    figures = run_soak(command, args.notifications, args.completions, args.keystrokes, args.documents)
    healthy = figures["server_deaths"] == 0 and figures["errors"] == 0 and figures["exit_code"] == 0
    return 0 if healthy else 1
