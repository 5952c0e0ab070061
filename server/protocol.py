"""What may cross the wire: framing that resynchronises after garbage, and JSON-RPC errors for
requests pygls would otherwise drop silently.

RELIABILITY.md #1, #2, #4, #20: random bytes, bad `Content-Length` headers, oversized bodies,
wrongly typed params, requests before `initialize` and after `shutdown` each get a JSON-RPC error
or are skipped, and the server keeps serving.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from typing import Any, BinaryIO

import cattrs
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException, JsonRpcInternalError, JsonRpcInvalidParams
from pygls.protocol import LanguageServerProtocol, lsp_method

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_HEADER = re.compile(rb"Content-Length:[ \t]*(\d{1,10})\r\n(?:[A-Za-z-]+:[^\r\n]*\r\n)*\r\n")
_CHUNK = 65536


def _decodes(body: bytes) -> bool:
    """Drop bodies that are not JSON here: pygls's reader does not survive a RecursionError from
    10^5-deep nesting, and garbage gets nothing but a log line anyway."""
    try:
        json.loads(body)
    except (ValueError, RecursionError) as err:
        log.warning("skipped a message that is not JSON: %s", str(err)[:200])
        return False
    return True


def _pump_frames(source: BinaryIO, sink: BinaryIO) -> None:
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
                if not _decodes(body):
                    continue
                sink.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
                sink.flush()
                continue
        elif len(buffer) > _CHUNK:
            buffer = buffer[-64:]  # keep a tail in case a header straddles the cut
        chunk = source.read1(_CHUNK) if hasattr(source, "read1") else source.read(_CHUNK)
        if not chunk:
            return
        buffer += chunk


def framed_stdin(source: BinaryIO) -> BinaryIO:
    """A pipe that carries only well-framed messages from `source`; EOF on `source` closes it."""
    read_fd, write_fd = os.pipe()
    sink = os.fdopen(write_fd, "wb", buffering=0)

    def pump() -> None:
        try:
            _pump_frames(source, sink)
        except OSError as err:
            log.warning("stdin closed: %s", err)
        finally:
            sink.close()

    threading.Thread(target=pump, name="gpt-lsp-stdin", daemon=True).start()
    return os.fdopen(read_fd, "rb", buffering=0)


@dataclass
class _Rejected:
    """A request that could not be structured; answered with its error instead of being dropped."""

    id: Any
    error: JsonRpcException
    jsonrpc: str = "2.0"


def _fill_trigger_kind(data: dict[str, Any]) -> None:
    """Clients built without `InlineCompletionTriggerKind` omit it (CLIENTS.md); treat them as Invoked."""
    if data.get("method") == lsp.TEXT_DOCUMENT_INLINE_COMPLETION and isinstance(data.get("params"), dict):
        context = data["params"].setdefault("context", {})
        if isinstance(context, dict):
            context.setdefault("triggerKind", lsp.InlineCompletionTriggerKind.Invoked.value)


def _readable(err: Exception) -> str:
    cause = err.__cause__
    if isinstance(cause, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(cause))
    return str(cause or err)


class GptLspProtocol(LanguageServerProtocol):
    @lsp_method(lsp.INITIALIZE)
    def lsp_initialize(self, params: lsp.InitializeParams):
        """Prefer utf-8 whenever the client offers it (RELIABILITY.md #5); pygls takes the client's first choice."""
        general = params.capabilities.general
        if (
            general
            and general.position_encodings
            and lsp.PositionEncodingKind.Utf8 in general.position_encodings
        ):
            general.position_encodings = [lsp.PositionEncodingKind.Utf8]
        return (yield from super().lsp_initialize(params))

    def structure_message(self, data: dict[str, Any]):
        _fill_trigger_kind(data)
        try:
            return super().structure_message(data)
        except (JsonRpcInvalidParams, JsonRpcInternalError) as err:
            if "id" in data and "method" in data:
                message = f"invalid params for {data['method']}: {_readable(err)}"
                return _Rejected(data["id"], JsonRpcInvalidParams(message))
            raise

    def handle_message(self, message) -> None:
        if isinstance(message, _Rejected):
            self._reply_error(message.id, message.error.code, message.error.message)
            return
        method = getattr(message, "method", None)
        if method is not None and hasattr(message, "id"):
            if self._shutdown and method != lsp.EXIT:
                self._reply_error(message.id, lsp.ErrorCodes.InvalidRequest, "the server is shutting down")
                return
            if self._workspace is None and method != lsp.INITIALIZE:
                self._reply_error(message.id, lsp.ErrorCodes.ServerNotInitialized, "initialize first")
                return
        super().handle_message(message)

    def _reply_error(self, msg_id: Any, code: int, text: str) -> None:
        self._send_response(msg_id, error=lsp.ResponseError(code=int(code), message=text))
