"""An in-process client for the LSP layer: raw JSON-RPC messages in, the server's output collected."""

from __future__ import annotations

import json
from typing import Any


class Wire:
    """Collects what the server writes; `messages` decodes the JSON-RPC bodies."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self) -> None:
        pass

    def messages(self) -> list[dict[str, Any]]:
        raw = b"".join(self.sent)
        out = []
        while raw:
            header, _, rest = raw.partition(b"\r\n\r\n")
            length = int(header.split(b"Content-Length:")[1].split(b"\r\n")[0])
            out.append(json.loads(rest[:length]))
            raw = rest[length:]
        return out


def feed(ls: Any, message: dict) -> None:
    """Hand one message to the protocol as the stdio reader would (params structured by pygls)."""
    message = {"jsonrpc": "2.0", **message}
    ls.protocol.handle_message(json.loads(json.dumps(message), object_hook=ls.protocol.structure_message))
