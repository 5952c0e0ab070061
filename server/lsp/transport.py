"""The stdio wire: framing that resynchronises after garbage, and JSON-RPC errors for input that
never becomes a message pygls could answer.

pygls's reader trusts its input: one bad header or body and it loses the stream, and it drops a
batch array, a request without `"jsonrpc": "2.0"` or undecodable bytes without a reply. So a
reader thread copies only well-formed single messages to pygls and answers the rest itself on the
shared stdout, as the JSON-RPC 2.0 specification ("Error object", "Batch") asks.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable
from typing import Any, BinaryIO

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
# Header names are case-insensitive (RFC 7230 §3.2, which LSP's base protocol follows).
_HEADER = re.compile(rb"Content-Length:[ \t]*(\d{1,10})\r\n(?:[A-Za-z-]+:[^\r\n]*\r\n)*\r\n", re.IGNORECASE)
_CHUNK = 65536

Reply = Callable[[Any, int, str], None]  # (request id or None, error code, message)


class SharedWire:
    """stdout written by pygls on the event loop and by the reader thread; one lock keeps frames whole."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self._lock:
            view = memoryview(data)
            while view:
                written = self._raw.write(view)
                view = view[written or 0 :]

    def flush(self) -> None:
        self._raw.flush()

    def close(self) -> None:
        with self._lock:
            self._raw.close()

    def reply_error(self, msg_id: Any, code: int, message: str) -> None:
        body = json.dumps({"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}})
        try:
            self.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body.encode()))
        except (OSError, ValueError) as err:  # the client went away, or pygls closed stdout
            log.warning("could not send an error reply: %s", err)


def _request_id(item: Any) -> Any:
    return item.get("id") if isinstance(item, dict) and "method" in item else None


def screen(body: bytes, reply: Reply) -> bool:
    """True when `body` is one JSON-RPC 2.0 message pygls can take; otherwise answer or log it."""
    try:
        data = json.loads(body)
    except UnicodeDecodeError:
        reply(None, PARSE_ERROR, "the message is not valid UTF-8")
        return False
    except (ValueError, RecursionError) as err:  # pygls's reader dies on a RecursionError
        log.warning("skipped a message that is not JSON: %s", str(err)[:200])
        reply(None, PARSE_ERROR, "the message is not JSON")
        return False
    if isinstance(data, list):
        requests = [item for item in data if _request_id(item) is not None]
        log.warning("refused a batch of %d messages (LSP has no batches)", len(data))
        for item in requests:
            reply(item["id"], INVALID_REQUEST, "batch requests are not supported; send one message at a time")
        if not requests:
            reply(None, INVALID_REQUEST, "batch requests are not supported")
        return False
    if not isinstance(data, dict) or data.get("jsonrpc") != "2.0":
        msg_id = _request_id(data)
        log.warning('refused a message without "jsonrpc": "2.0" (id %r)', msg_id)
        if msg_id is not None or not isinstance(data, dict) or "method" not in data:
            reply(msg_id, INVALID_REQUEST, 'a request needs "jsonrpc": "2.0"')
        return False
    return True


def pump_frames(source: BinaryIO, sink: BinaryIO, reply: Reply) -> None:
    """Copy well-framed messages from `source` to `sink`, skipping whatever is not one."""
    buffer = b""
    while True:
        match = _HEADER.search(buffer)
        if match and match.start() > 0:
            log.warning("skipped %d bytes of garbage on stdin", match.start())
            buffer = buffer[match.start() :]
            continue
        if match:
            length = int(match.group(1))
            if length > MAX_MESSAGE_BYTES:
                log.warning("skipped a message claiming %d bytes", length)
                buffer = buffer[match.end() :]
                continue
            if len(buffer) >= match.end() + length:
                body = buffer[match.end() : match.end() + length]
                buffer = buffer[match.end() + length :]
                if screen(body, reply):
                    sink.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
                    sink.flush()
                continue
        elif len(buffer) > _CHUNK:
            buffer = buffer[-64:]  # keep a tail in case a header straddles the cut
        chunk = source.read1(_CHUNK) if hasattr(source, "read1") else source.read(_CHUNK)
        if not chunk:
            return
        buffer += chunk


def framed_stdin(source: BinaryIO, reply: Reply) -> BinaryIO:
    """A stream that carries only well-framed messages from `source`; EOF on `source` ends it.

    The stream is buffered: pygls reads a body with one `read(n)`, and a raw pipe returns at most
    one pipe buffer (64 KiB on Linux) per read, which cut every larger message short.
    """
    read_fd, write_fd = os.pipe()
    sink = os.fdopen(write_fd, "wb", buffering=0)

    def pump() -> None:
        try:
            pump_frames(source, sink, reply)
        except OSError as err:
            log.warning("stdin closed: %s", err)
        finally:
            sink.close()

    threading.Thread(target=pump, name="gpt-lsp-stdin", daemon=True).start()
    return os.fdopen(read_fd, "rb")
