"""A scriptable OpenAI-compatible completion server on loopback, for the remote backend's fault tests.

It streams `/v1/completions` as server-sent events over chunked HTTP/1.1 the way vLLM and
llama.cpp do, and can instead answer 429 (with Retry-After), 500, 401, garbage, nothing for a
while, or drop the connection mid-stream. In `proxy` mode it forwards to a real server and
injects those faults on demand. It records every request and, per request, how many chunks it
sent before the client went away, so tests can see that a cancelled stream stops at the server.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Served:
    """One request as the server saw it."""

    body: dict
    headers: dict
    chunks_sent: int = 0
    client_left_at: float | None = None  # perf_counter when a write failed because the client closed
    finished: bool = False


@dataclass
class Script:
    """What the server does with the next requests; tests change it between requests."""

    mode: str = "ok"  # ok | proxy | 429 | 500 | 401 | garbage | slow | drop
    pieces: list[str] = field(default_factory=lambda: ["x", " =", " 1", "\n", "y", " =", " 2", "\n"])
    piece_delay_s: float = 0.0
    slow_s: float = 5.0
    retry_after: str | None = "1"
    api_key: str | None = None  # when set, other keys get 401
    upstream: str | None = None  # the real server's base URL, for mode "proxy"


class FakeModelServer:
    def __init__(self, port: int = 0, script: Script | None = None) -> None:
        self.script = script or Script()
        self.served: list[Served] = []
        handler = type("Handler", (_Handler,), {"owner": self})
        self._httpd = _QuietServer(("127.0.0.1", port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def wait_for(self, predicate, timeout: float = 5.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.005)
        return False


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """A client closing a stream mid-way is what these tests do on purpose: not worth a traceback."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FakeModelServer

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self._json(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})

    def do_POST(self) -> None:
        script = self.owner.script
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        served = Served(json.loads(raw or b"{}"), dict(self.headers))
        self.owner.served.append(served)
        if script.api_key is not None and self.headers.get("Authorization") != f"Bearer {script.api_key}":
            return self._json(401, {"error": {"message": "Invalid API Key", "type": "invalid_request_error"}})
        if script.mode == "429":
            return self._json(429, {"error": "slow down"}, {"Retry-After": script.retry_after or ""})
        if script.mode == "500":
            return self._json(500, {"error": "the model crashed"})
        if script.mode == "401":
            return self._json(401, {"error": "bad key"})
        if script.mode == "slow":
            time.sleep(script.slow_s)
        if script.mode == "proxy":
            return self._proxy(raw, served)
        self._start_stream()
        if script.mode == "garbage":
            self._chunk(served, b"<html>502 Bad Gateway</html>\n\n")
            return self._end()
        for n, piece in enumerate(script.pieces):
            if script.mode == "drop" and n == 2:
                self.connection.shutdown(2)  # the server process died mid-stream
                self.close_connection = True
                return
            event = {"choices": [{"text": piece, "index": 0, "finish_reason": None}]}
            if not self._chunk(served, b"data: " + json.dumps(event).encode() + b"\n\n"):
                return
            time.sleep(script.piece_delay_s)
        last = {"choices": [{"text": "", "index": 0, "finish_reason": "length"}]}
        if self._chunk(served, b"data: " + json.dumps(last).encode() + b"\n\ndata: [DONE]\n\n"):
            served.finished = True
            self._end()

    def _proxy(self, raw: bytes, served: Served) -> None:
        """Forward to the real server chunk by chunk; when our client leaves, leave upstream too."""
        upstream = urlsplit(self.owner.script.upstream or "")
        conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        headers = {
            k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization", "accept")
        }
        conn.request("POST", self.path, body=raw, headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            body = response.read()
            conn.close()
            return self._reply(response.status, body, {"Content-Type": "application/json"})
        self._start_stream()
        try:
            while line := response.readline():
                if not self._chunk(served, line):
                    return
            served.finished = True
            self._end()
        finally:
            conn.close()

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, served: Served, data: bytes) -> bool:
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        except OSError:  # BrokenPipe / ConnectionReset: the client closed the request
            served.client_left_at = time.perf_counter()
            self.close_connection = True
            return False
        served.chunks_sent += 1
        return True

    def _end(self) -> None:
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _json(self, status: int, payload: object, headers: dict | None = None) -> None:
        self._reply(
            status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}
        )

    def _reply(self, status: int, body: bytes, headers: dict) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
