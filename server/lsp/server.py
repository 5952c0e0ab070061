"""LSP handlers: each fetches what it needs, calls the session or pipeline once, and converts.

Only this module and convert.py know lsprotocol types: handlers stay thin.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from .. import __version__
from ..assist.snippets import (
    COMMAND_KINDS,
    TITLES,
    SnippetKind,
    candidate_label,
    parse_options,
)
from ..completion.postprocess import Edit
from ..privacy.secret_files import WorkspaceIgnores
from ..session import Session, Status
from ..settings import SettingsError, parse_settings
from ..text.documents import Position
from .convert import (
    code_actions,
    completion_items,
    diagnostics,
    inline_items,
    to_encoding,
    to_position,
    to_text_changes,
    workspace_edit,
)
from .memory import MemoryReleaser
from .protocol import GptLspProtocol

log = logging.getLogger(__name__)
STATUS_NOTIFICATION = "gpt-lsp/status"
CMD_STATUS = "gpt-lsp.status"
CMD_TOGGLE = "gpt-lsp.toggle"


class GptLanguageServer(LanguageServer):
    def __init__(self, model_path: Path | None = None) -> None:
        super().__init__(
            "gpt-lsp",
            __version__,
            protocol_cls=GptLspProtocol,
            text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental,
        )
        self.session = Session(model_path, self._send_status)
        self.session.assist.publish = self._publish_diagnostics
        self.session.tell_user = self._tell_user
        self.exit_code = 1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._settings_error: str | None = None
        self.memory = MemoryReleaser()

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

    def _publish_diagnostics(self, doc, problems, hints) -> None:
        params = lsp.PublishDiagnosticsParams(doc.uri, diagnostics(doc, problems, hints), doc.version)
        self.text_document_publish_diagnostics(params)

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

    async def run_snippet_command(
        self, kind: SnippetKind, uri: str, position: Position, version: int, options: tuple, cancelled
    ) -> dict:
        """Generate, let the user pick a candidate, and apply it only to the version it was made for."""
        session = self.session
        n, temperature = parse_options(options)
        doc, outcome, message = await session.assist.run_snippet(
            kind, uri, position, version, n, temperature, cancelled
        )
        edit = await self.choose_candidate(outcome.edits) if doc and outcome and outcome.edits else None
        applied = False
        if edit is not None and doc is not None and not cancelled() and session.is_current(uri, version):
            params = lsp.ApplyWorkspaceEditParams(workspace_edit(doc, edit), label=TITLES[kind])
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

    def read_settings(self, raw: Any) -> None:
        try:
            settings = parse_settings(raw)
        except SettingsError as err:
            settings = parse_settings(None)
            self._settings_error = f"gpt-lsp: invalid settings ({err}); using the defaults."
            log.warning("%s", self._settings_error)
        self.session.apply_settings(settings)


def register_features(ls: GptLanguageServer) -> None:  # noqa: C901 - one small closure per LSP method
    session = ls.session

    @ls.feature(lsp.INITIALIZE)
    def initialize(params: lsp.InitializeParams) -> None:
        ls._loop = asyncio.get_running_loop()
        session.set_encoding(to_encoding(ls.workspace.position_encoding))
        folders = [f.uri for f in params.workspace_folders or []]
        session.ignores = WorkspaceIgnores.for_uris(folders or [params.root_uri or ""])
        ls.read_settings(params.initialization_options)

    @ls.feature(lsp.INITIALIZED)
    def initialized(params: lsp.InitializedParams) -> None:
        if ls._settings_error:
            ls.window_show_message(lsp.ShowMessageParams(lsp.MessageType.Warning, ls._settings_error))
            ls._settings_error = None

    @ls.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(params: lsp.DidChangeConfigurationParams) -> None:
        ls.read_settings(params.settings)
        initialized(lsp.InitializedParams())

    @ls.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: lsp.DidOpenTextDocumentParams) -> None:
        d = params.text_document
        session.open(d.uri, d.language_id, d.version, d.text)
        session.assist.schedule_diagnostics(d.uri)

    @ls.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: lsp.DidChangeTextDocumentParams) -> None:
        d = params.text_document
        try:
            session.change(d.uri, d.version, to_text_changes(params.content_changes))
        except KeyError:
            log.warning("ignored didChange for a document that is not open: %s", d.uri)
            return
        session.assist.schedule_diagnostics(d.uri)

    @ls.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: lsp.DidCloseTextDocumentParams) -> None:
        session.close(params.text_document.uri)
        ls.memory.soon()

    @ls.feature(lsp.TEXT_DOCUMENT_INLINE_COMPLETION, lsp.InlineCompletionOptions())
    async def inline_completion(params: lsp.InlineCompletionParams) -> lsp.InlineCompletionList | None:
        found = await session.complete(
            params.text_document.uri, to_position(params.position), session.settings.inline_completion.enable
        )
        return inline_items(*found) if found else None

    @ls.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[".", "(", " "]))
    async def completion(params: lsp.CompletionParams) -> lsp.CompletionList:
        found = await session.complete(
            params.text_document.uri, to_position(params.position), session.settings.completion.enable
        )
        if not found:
            return lsp.CompletionList(is_incomplete=True, items=[])
        doc, outcome = found
        return lsp.CompletionList(
            is_incomplete=True, items=completion_items(doc, outcome, to_position(params.position))
        )

    kinds = [lsp.CodeActionKind.QuickFix, lsp.CodeActionKind.RefactorRewrite]

    @ls.feature(lsp.TEXT_DOCUMENT_CODE_ACTION, lsp.CodeActionOptions(code_action_kinds=kinds))
    async def code_action(params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        start, end = to_position(params.range.start), to_position(params.range.end)
        found = await session.assist.code_actions(params.text_document.uri, start, end)
        if not found:
            return []
        doc, fixes, snippets = found
        actions = code_actions(doc, fixes, snippets, start)
        only = params.context.only
        return [a for a in actions if not only or any(str(a.kind).startswith(str(k)) for k in only)]

    def snippet_command(kind: SnippetKind) -> None:
        async def run(
            ls_: LanguageServer, uri: str, line: int, character: int, version: int, *options: Any
        ) -> dict:
            # A cancelled executeCommand still runs to the end in pygls: watch our own request's future.
            request = ls.protocol._request_futures.get(ls.protocol.msg_id or "")
            cancelled = lambda: request is not None and request.cancelled()  # noqa: E731
            return await ls.run_snippet_command(
                kind, uri, Position(max(line, 0), max(character, 0)), version, options, cancelled
            )

        ls.command(kind.command)(run)

    for snippet_kind in COMMAND_KINDS:
        snippet_command(snippet_kind)

    @ls.command(CMD_STATUS)
    def status(ls_: LanguageServer) -> dict:
        return {
            "version": __version__,
            "model": str(session.model_path()),
            "enabled": session.enabled,
            "state": session.status.state,
            "reason": session.status.reason,
            "modelError": session.model_error,
        }

    @ls.command(CMD_TOGGLE)
    def toggle(ls_: LanguageServer) -> bool:
        session.enabled = not session.enabled
        session.set_status(
            "ready" if session.enabled else "disabled",
            "enabled" if session.enabled else "disabled by the user",
        )
        return session.enabled

    @ls.feature(lsp.SHUTDOWN)
    def shutdown(params: Any = None) -> None:
        session.shutdown()

    @ls.feature(lsp.EXIT)
    def exit_(params: Any = None) -> None:
        ls.exit_code = 0 if ls.protocol._shutdown else 1


def create_server(model_path: Path | None = None) -> GptLanguageServer:
    ls = GptLanguageServer(model_path)
    register_features(ls)
    return ls
