"""A minimal stdio JSON-RPC client used by the editor tests to pick a document the tiny test model completes.

With the fixed test model (fixed_model.py) the first candidate always completes; the others
(inside open string literals, where any text parses) keep the tests usable with a random-weights
model, whose gibberish the server drops wherever it would add syntax errors. `pick_candidate` asks
the real server directly which candidate yields items, so each editor test drives its editor with
a document where a suggestion is known to exist (and then asserts the editor shows it).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Queue
from typing import Any


@dataclass(frozen=True)
class Candidate:
    language_id: str
    ext: str
    text: str  # the cursor goes at the very end

    @property
    def end(self) -> tuple[int, int]:
        lines = self.text.split("\n")
        return len(lines) - 1, len(lines[-1])

    def as_json(self) -> dict[str, Any]:
        line, character = self.end
        return {
            "languageId": self.language_id,
            "ext": self.ext,
            "text": self.text,
            "line": line,
            "character": character,
        }


# Same list as editors/vscode/test/lspClient.js (CANDIDATES).
CANDIDATES = [
    Candidate("python", "py", "def greet(name):\n    return "),
    Candidate("python", "py", 's = "hello '),
    Candidate("python", "py", 'print("Hello, '),
    Candidate("javascript", "js", 'const s = "hello '),
    Candidate("go", "go", 'package main\n\nfunc main() {\n\ts := "hello '),
]


class StdioClient:
    def __init__(self, cmd: list[str]) -> None:
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self._id = 0
        self._responses: Queue[dict[str, Any]] = Queue()
        self.notifications: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if length is None:
                continue
            msg = json.loads(out.read(length))
            if "id" in msg and "method" in msg:  # server -> client request
                self._send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
            elif "id" in msg:
                self._responses.put(msg)
            else:
                self.notifications.append(msg)

    def _send(self, msg: dict[str, Any]) -> None:
        body = json.dumps(msg).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def request(self, method: str, params: Any, timeout: float = 30) -> Any:
        self._id += 1
        self._send({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = self._responses.get(timeout=max(0.01, deadline - time.monotonic()))
            except Empty:
                raise TimeoutError(f"{method}: no answer in {timeout}s") from None
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result")

    def notify(self, method: str, params: Any) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def close(self) -> int:
        try:
            self.request("shutdown", None, timeout=10)
            self.notify("exit", None)
            return self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def wait_ready(client: StdioClient, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = client.request("workspace/executeCommand", {"command": "gpt-lsp.status", "arguments": []})
        if status.get("state") == "ready" or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def pick_candidate(server: str, model_dir: Path, tmp_dir: Path) -> tuple[Candidate | None, list[str]]:
    """The first candidate document for which the server returns completion and inline items."""
    client = StdioClient([server, "--stdio", "--model", str(model_dir)])
    tried: list[str] = []
    try:
        client.request("initialize", {"processId": None, "rootUri": tmp_dir.as_uri(), "capabilities": {}})
        client.notify("initialized", {})
        status = wait_ready(client)
        if status.get("state") != "ready":
            return None, [f"model never became ready: {status}"]
        for i, cand in enumerate(CANDIDATES):
            uri = (tmp_dir / f"probe{i}.{cand.ext}").as_uri()
            client.notify(
                "textDocument/didOpen",
                {
                    "textDocument": {
                        "uri": uri,
                        "languageId": cand.language_id,
                        "version": 1,
                        "text": cand.text,
                    }
                },
            )
            line, character = cand.end
            pos = {"line": line, "character": character}
            comp = client.request("textDocument/completion", {"textDocument": {"uri": uri}, "position": pos})
            inline = client.request(
                "textDocument/inlineCompletion",
                {"textDocument": {"uri": uri}, "position": pos, "context": {"triggerKind": 1}},
            )
            n_inline = len((inline or {}).get("items", []) if isinstance(inline, dict) else inline or [])
            tried.append(f"{cand.text!r}: {len(comp['items'])} completion, {n_inline} inline")
            if comp["items"] and n_inline:
                return cand, tried
        return None, tried
    finally:
        client.close()
