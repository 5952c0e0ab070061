"""JSON-RPC errors for requests pygls would otherwise drop, the pygls bookkeeping this server
does without, and the one place that reads pygls internals.

Wrongly typed params, requests before `initialize` and after `shutdown` each get a JSON-RPC error;
a malformed notification is dropped with one log line, never with an error popup. Where pygls
2.1 has no public way (a request's cancellation, whether `shutdown` came), this class answers
from its internals, so nothing else in the server touches them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import cattrs
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException, JsonRpcInternalError, JsonRpcInvalidParams
from pygls.protocol import LanguageServerProtocol, lsp_method

log = logging.getLogger(__name__)


@dataclass
class _Rejected:
    """A request that could not be structured; answered with its error instead of being dropped."""

    id: Any
    error: JsonRpcException
    jsonrpc: str = "2.0"


def _fill_trigger_kind(data: dict[str, Any]) -> None:
    """Clients built without `InlineCompletionTriggerKind` omit it; treat them as Invoked."""
    if data.get("method") == lsp.TEXT_DOCUMENT_INLINE_COMPLETION and isinstance(data.get("params"), dict):
        context = data["params"].setdefault("context", {})
        if isinstance(context, dict):
            context.setdefault("triggerKind", lsp.InlineCompletionTriggerKind.Invoked.value)


def _readable(err: Exception) -> str:
    cause = err.__cause__
    if isinstance(cause, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(cause))
    return str(cause or err)


@dataclass
class _Ignored:
    """A notification that could not be structured: logged once and dropped (no reply is possible)."""

    method: str
    jsonrpc: str = "2.0"


def _drop_range_length(data: dict[str, Any]) -> None:
    """`rangeLength` is deprecated (LSP 3.17) and unused here; a negative one must not lose the edit."""
    if data.get("method") == lsp.TEXT_DOCUMENT_DID_CHANGE and isinstance(data.get("params"), dict):
        for change in data["params"].get("contentChanges") or ():
            if isinstance(change, dict):
                change.pop("rangeLength", None)


class GptLspProtocol(LanguageServerProtocol):
    @lsp_method(lsp.INITIALIZE)
    def lsp_initialize(self, params: lsp.InitializeParams):
        """Prefer utf-8 whenever the client offers it; pygls takes the client's first choice."""
        general = params.capabilities.general
        if (
            general
            and general.position_encodings
            and lsp.PositionEncodingKind.Utf8 in general.position_encodings
        ):
            general.position_encodings = [lsp.PositionEncodingKind.Utf8]
        return (yield from super().lsp_initialize(params))

    # pygls keeps its own copy of every open document in `workspace`, updated on each didChange
    # (about 200 ms per keystroke on a file with a 1 MB line) and raising KeyError for documents
    # never opened. The server reads only its own DocumentStore, so these three skip that copy.
    @lsp_method(lsp.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: lsp.DidOpenTextDocumentParams):
        return (yield from self._to_user_handler(lsp.TEXT_DOCUMENT_DID_OPEN, params))

    @lsp_method(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: lsp.DidChangeTextDocumentParams):
        return (yield from self._to_user_handler(lsp.TEXT_DOCUMENT_DID_CHANGE, params))

    @lsp_method(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: lsp.DidCloseTextDocumentParams):
        return (yield from self._to_user_handler(lsp.TEXT_DOCUMENT_DID_CLOSE, params))

    def _to_user_handler(self, method: str, params: Any):
        handler = self.fm.features.get(method)
        if handler is not None:
            yield handler, (params,), None

    @lsp_method(lsp.SHUTDOWN)
    def lsp_shutdown(self, *args: Any):
        """pygls cancels the pending requests while iterating over its table of futures, and each
        cancel runs the forget callback below, which takes an entry out: the shutdown request then
        failed with "dictionary changed size". Cancel them here first, over a copy."""
        current = self.msg_id
        for msg_id, future in list(self._request_futures.items()):
            if msg_id != current and not future.done():
                future.cancel()
        return (yield from super().lsp_shutdown(*args))

    @lsp_method(lsp.WORKSPACE_EXECUTE_COMMAND)
    def lsp_workspace__execute_command(self, params: lsp.ExecuteCommandParams):
        """`arguments: null` means no arguments: a command that needs some answers -32602, not -32603."""
        if params.arguments is None:
            params.arguments = []
        return (yield from super().lsp_workspace__execute_command(params))

    def _execute_handler(
        self,
        msg_id: Any,
        handler: Callable[..., Any],
        callback: Callable[[Future], None],
        args: tuple | None = None,
        kwargs: dict | None = None,
    ) -> None:
        """Forget each handler's future once it is done.

        pygls 2.1 files every coroutine, thread and generator handler's future under `msg_id` in
        `_request_futures`, but only a request's reply takes the entry out again: the futures of
        notifications (a fresh uuid each) and of the handlers that builtin features yield to stayed
        forever, one per keystroke. No public hook exists, so this wraps the one private method.
        """

        def forget_then_callback(future: Future) -> None:
            if self._request_futures.get(msg_id) is future:
                self._request_futures.pop(msg_id, None)
            callback(future)

        super()._execute_handler(msg_id, handler, forget_then_callback, args, kwargs)

    def structure_message(self, data: dict[str, Any]):
        _fill_trigger_kind(data)
        _drop_range_length(data)
        try:
            return super().structure_message(data)
        except (JsonRpcInvalidParams, JsonRpcInternalError) as err:
            if "id" in data and "method" in data:
                message = f"invalid params for {data['method']}: {_readable(err)}"
                return _Rejected(data["id"], JsonRpcInvalidParams(message))
            if "method" in data:
                log.warning("ignored a malformed %s notification: %s", data["method"], _readable(err)[:200])
                return _Ignored(str(data["method"]))
            raise

    def handle_message(self, message) -> None:
        if isinstance(message, _Ignored):
            return
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

    @property
    def shutdown_requested(self) -> bool:
        """Whether the client sent `shutdown` (pygls records it privately)."""
        return bool(self._shutdown)

    def cancel_check(self) -> Callable[[], bool]:
        """For the request being dispatched now: a check that turns true once the client cancels it.

        pygls cancels a handler's future on `$/cancelRequest` but lets an async executeCommand
        handler run on, and offers no public handle on that future; this looks it up once.
        """
        future = self._request_futures.get(self.msg_id or "")
        return lambda: future is not None and future.cancelled()
