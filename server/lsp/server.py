"""The language server: wires the session and the assist features together and owns everything
that must leave through the protocol (status notifications, messages, published diagnostics,
applied edits). The handlers, and `create_server`, are in handlers.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from .. import __version__
from ..acceptance import AcceptanceCounter
from ..assist.hints import Hint
from ..assist.scheduler import Assist, SnippetRequest
from ..assist.syntax import SyntaxProblem
from ..completion.postprocess import Edit
from ..session import Session, Status
from ..settings import SettingsError, parse_settings
from ..text.documents import Document
from .commands import TITLES, candidate_label
from .convert import to_diagnostics, workspace_edit
from .memory import MemoryReleaser
from .protocol import GptLspProtocol

log = logging.getLogger(__name__)
STATUS_NOTIFICATION = "gpt-lsp/status"


class GptLanguageServer(LanguageServer):
    def __init__(self, model_path: Path | None = None) -> None:
        super().__init__(
            "gpt-lsp",
            __version__,
            protocol_cls=GptLspProtocol,
            text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental,
        )
        self.session = Session(model_path, self._send_status, self._tell_user)
        self.assist = Assist(self.session, self._publish_diagnostics)
        self.exit_code = 1
        self.memory = MemoryReleaser()
        self.acceptance = AcceptanceCounter()  # local only: never sent anywhere
        self.settings_error: str | None = None  # shown once the client is initialized
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def gpt_protocol(self) -> GptLspProtocol:
        assert isinstance(self.protocol, GptLspProtocol)
        return self.protocol

    def attach_loop(self) -> None:
        """Remember the event loop (at initialize): the inference thread sends through it."""
        self._loop = asyncio.get_running_loop()

    def report_server_error(self, error: Exception, source: Any) -> None:
        """pygls shows every handler exception as an error popup; a client's protocol mistake
        (or our own bug) must not pop up on every keystroke, so it goes to the log only."""
        log.warning("%s: %s", getattr(source, "__name__", source), error)

    def _send_status(self, status: Status) -> None:
        """Status may change on the inference thread; notifications must leave from the event loop."""
        if self._loop is None:
            return
        self._loop.call_soon_threadsafe(self.protocol.notify, STATUS_NOTIFICATION, asdict(status))

    def _tell_user(self, message: str, popup: bool, level: str = "error") -> None:
        """Model faults (and the one notice about a better model) reach every editor: window/logMessage
        always, window/showMessage when `popup` (the session asks for it once per fault). May be
        called on the inference thread."""
        if self._loop is None:
            return
        if level == "info":
            kind = lsp.MessageType.Info
        else:
            kind = lsp.MessageType.Error if popup else lsp.MessageType.Warning

        def send() -> None:
            if popup:
                self.window_show_message(lsp.ShowMessageParams(kind, message))
            self.window_log_message(lsp.LogMessageParams(kind, message))

        self._loop.call_soon_threadsafe(send)

    def _publish_diagnostics(self, doc: Document, problems: list[SyntaxProblem], hints: list[Hint]) -> None:
        params = lsp.PublishDiagnosticsParams(doc.uri, to_diagnostics(doc, problems, hints), doc.version)
        self.text_document_publish_diagnostics(params)

    def read_settings(self, raw: Any) -> None:
        """Apply the client's settings; invalid ones fall back to the defaults and are reported once."""
        try:
            settings = parse_settings(raw)
        except SettingsError as err:
            settings = parse_settings(None)
            self.settings_error = f"gpt-lsp: invalid settings ({err}); using the defaults."
            log.warning("%s", self.settings_error)
        self.session.apply_settings(settings)

    def show_settings_error(self) -> None:
        if self.settings_error:
            self.window_show_message(lsp.ShowMessageParams(lsp.MessageType.Warning, self.settings_error))
            self.settings_error = None

    async def choose_candidate(self, edits: list[Edit]) -> Edit | None:
        """With several candidates, ask the user which one to apply (window/showMessageRequest)."""
        if len(edits) == 1:
            return edits[0]
        items = [lsp.MessageActionItem(candidate_label(i + 1, e)) for i, e in enumerate(edits)]
        params = lsp.ShowMessageRequestParams(
            lsp.MessageType.Info, f"gpt-lsp: {len(edits)} candidates", items
        )
        picked = await self.window_show_message_request_async(params)
        titles = [item.title for item in items]
        return edits[titles.index(picked.title)] if picked and picked.title in titles else None

    async def run_snippet_command(self, request: SnippetRequest, cancelled: Callable[[], bool]) -> dict:
        """Generate, let the user pick a candidate, and apply it only to the version it was made for."""
        doc, outcome, message = await self.assist.run_snippet(request, cancelled)
        edit = await self.choose_candidate(outcome.edits) if doc and outcome and outcome.edits else None
        applied = False
        if (
            edit is not None
            and doc is not None
            and not cancelled()
            and self.session.is_current(request.uri, request.version)
        ):
            params = lsp.ApplyWorkspaceEditParams(workspace_edit(doc, edit), label=TITLES[request.kind])
            response = await self.workspace_apply_edit_async(params)
            applied = response.applied
            message = "applied" if applied else response.failure_reason or "the editor refused the edit"
        elif edit is not None or (outcome and outcome.edits):
            message = "cancelled, or the document changed meanwhile; nothing was applied"
        if not applied:
            self.window_show_message(lsp.ShowMessageParams(lsp.MessageType.Info, f"gpt-lsp: {message}"))
        return {
            "applied": applied,
            "message": message,
            "candidates": [e.text for e in outcome.edits] if outcome else [],
        }

    def stop_features(self) -> None:
        """The client sent `shutdown`: stop pending diagnostics and decodes (pygls' own `shutdown`
        closes the transport, later, on exit)."""
        self.assist.shutdown()
        self.session.shutdown()
        self.acceptance.close()
