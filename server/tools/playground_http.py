"""The playground's HTTP server: the standard library's, on 127.0.0.1, behind a random token.

The page (server/tools/web/: plain HTML, JS and CSS, no build step, nothing loaded from elsewhere)
shows what `gpt-lsp complete --explain` shows, for any position you click, with the settings
you choose, and runs small evaluations. It listens on 127.0.0.1 only, and every URL starts with
a random token printed at start (as Jupyter does), so another user of the machine, or a web
page in your browser guessing ports, gets 403 and cannot run the model or read your files.
The Host header is checked too, against DNS rebinding.

Server-only: no torch. The evaluation needs the `train` extra (BLEU, ROUGE-L) and says so.
"""

from __future__ import annotations

import json
import logging
import secrets
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

from .playground_api import Playground, PlaygroundError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8_000_000
STATIC = {
    "": ("index.html", "text/html; charset=utf-8"),
    "playground.js": ("playground.js", "text/javascript; charset=utf-8"),
    "playground.css": ("playground.css", "text/css; charset=utf-8"),
}
# No inline script, nothing from another origin: the page works offline and injected text cannot run.
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'"


class PlaygroundServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, playground: Playground, token: str | None = None) -> None:
        super().__init__(("127.0.0.1", port), PlaygroundHandler)
        self.playground = playground
        self.token = token or secrets.token_urlsafe(24)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{self.token}/"


class PlaygroundHandler(BaseHTTPRequestHandler):
    server: PlaygroundServer
    server_version = "gpt-lsp-playground"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        route = self._route()
        if route is None:
            return
        if route == "" and not urlsplit(self.path).path.endswith("/"):  # relative URLs need the slash
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", f"/{self.server.token}/")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif route == "api/info":
            self._send_json(HTTPStatus.OK, {"default_model": self.server.playground.default_model})
        elif route in STATIC:
            name, content_type = STATIC[route]
            self._send(HTTPStatus.OK, (files("gpt_lsp.tools.web") / name).read_bytes(), content_type)
        else:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such page: /{route}"})

    def do_POST(self) -> None:  # noqa: N802
        route = self._route()
        if route is None:
            return
        actions = {
            "api/complete": self.server.playground.complete,
            "api/eval": self.server.playground.evaluate,
        }
        if route not in actions:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such action: /{route}"})
            return
        try:
            body = self._read_json()
            self._send_json(HTTPStatus.OK, actions[route](body))
        except PlaygroundError as err:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": str(err)})
        except Exception as err:  # one bad request must not take the playground down
            log.exception("playground: %s failed", route)
            self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(err).__name__}: {err}"})

    def _route(self) -> str | None:
        """The path after the token, or None after answering 403 (wrong token or foreign Host)."""
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        first, _, rest = urlsplit(self.path).path.lstrip("/").partition("/")
        if host not in ("127.0.0.1", "localhost") or not secrets.compare_digest(first, self.server.token):
            self._send_json(
                HTTPStatus.FORBIDDEN, {"error": "forbidden: open the URL gpt-lsp playground printed"}
            )
            return None
        return rest

    def _read_json(self) -> dict:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise PlaygroundError("bad Content-Length") from None
        if length > MAX_BODY_BYTES:
            raise PlaygroundError(f"request larger than {MAX_BODY_BYTES} bytes")
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except (ValueError, UnicodeDecodeError) as err:
            raise PlaygroundError(f"request body is not JSON: {err}") from None
        if not isinstance(body, dict):
            raise PlaygroundError("request body must be a JSON object")
        return body

    def _send_json(self, status: HTTPStatus, data: Any) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False, default=str).encode(), "application/json")

    def _send(self, status: HTTPStatus, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")  # the token must not leak in a Referer
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        # The request line carries the token; keep it out of logs.
        log.debug("playground: %s", (format % args).replace(self.server.token, "<token>"))
