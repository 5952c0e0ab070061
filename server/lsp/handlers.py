"""One function per LSP feature. Each fetches what it needs, calls the session or the assist
features once, and converts the result; `register` binds them to a server.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp

from .. import __version__
from ..assist.scheduler import SnippetRequest
from ..assist.snippets import SnippetKind
from ..text.documents import Position
from .commands import CMD_ACCEPTED, CMD_STATUS, CMD_TOGGLE, SNIPPET_COMMANDS, parse_accepted, parse_options
from .convert import code_actions, completion_items, inline_items, to_encoding, to_position, to_text_changes
from .server import GptLanguageServer

log = logging.getLogger(__name__)
COMPLETION_TRIGGERS = [".", "(", " "]
ACTION_KINDS = [lsp.CodeActionKind.QuickFix, lsp.CodeActionKind.RefactorRewrite]


def initialize(ls: GptLanguageServer, params: lsp.InitializeParams) -> None:
    ls.attach_loop()
    ls.session.set_encoding(to_encoding(ls.workspace.position_encoding))
    folders = [f.uri for f in params.workspace_folders or []]
    ls.session.set_workspace(folders or [params.root_uri or ""])
    ls.read_settings(params.initialization_options)


def initialized(ls: GptLanguageServer, params: lsp.InitializedParams) -> None:
    ls.show_settings_error()


def did_change_configuration(ls: GptLanguageServer, params: lsp.DidChangeConfigurationParams) -> None:
    ls.read_settings(params.settings)
    ls.show_settings_error()


def did_open(ls: GptLanguageServer, params: lsp.DidOpenTextDocumentParams) -> None:
    d = params.text_document
    ls.session.open(d.uri, d.language_id, d.version, d.text)
    ls.assist.schedule_diagnostics(d.uri)


def did_change(ls: GptLanguageServer, params: lsp.DidChangeTextDocumentParams) -> None:
    d = params.text_document
    try:
        old, new = ls.session.change(d.uri, d.version, to_text_changes(params.content_changes))
    except KeyError:
        log.warning("ignored didChange for a document that is not open: %s", d.uri)
        return
    ls.assist.on_change(d.uri, old, new)
    ls.assist.schedule_diagnostics(d.uri)


def did_close(ls: GptLanguageServer, params: lsp.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.assist.on_close(uri, ls.session.close(uri))
    ls.memory.soon()


async def inline_completion(
    ls: GptLanguageServer, params: lsp.InlineCompletionParams
) -> lsp.InlineCompletionList | None:
    session, settings = ls.session, ls.session.settings.inline_completion
    typing = params.context.trigger_kind == lsp.InlineCompletionTriggerKind.Automatic
    found = await session.complete(
        params.text_document.uri, to_position(params.position), settings.enable, settings.candidates, typing
    )
    if not found:
        return None
    doc, outcome = found
    if not outcome.suggestions:
        return inline_items(doc, outcome)
    return inline_items(doc, outcome, ls.acceptance.shown(session.model_name(), doc.language_id))


async def completion(ls: GptLanguageServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    session, cursor = ls.session, to_position(params.position)
    invoked = params.context is not None and params.context.trigger_kind == lsp.CompletionTriggerKind.Invoked
    found = await session.complete(
        params.text_document.uri, cursor, session.settings.completion.enable, typing=not invoked
    )
    items = completion_items(*found, cursor) if found else []
    return lsp.CompletionList(is_incomplete=True, items=items)


async def code_action(ls: GptLanguageServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    start, end = to_position(params.range.start), to_position(params.range.end)
    found = await ls.assist.code_actions(params.text_document.uri, start, end)
    if not found:
        return []
    actions = code_actions(*found, start)
    only = params.context.only
    return [a for a in actions if not only or any(str(a.kind).startswith(str(k)) for k in only)]


async def snippet_action(
    ls: GptLanguageServer,
    kind: SnippetKind,
    uri: str,
    line: int,
    character: int,
    version: int,
    options: tuple,
) -> dict:
    """workspace/executeCommand of a snippet action: generate, pick, apply to the version it was made for."""
    cancelled = ls.gpt_protocol.cancel_check()  # pygls runs a cancelled executeCommand to its end
    n, temperature = parse_options(options)
    request = SnippetRequest(kind, uri, Position(max(line, 0), max(character, 0)), version, n, temperature)
    return await ls.run_snippet_command(request, cancelled)


def status(ls: GptLanguageServer) -> dict:
    session = ls.session
    return {
        "version": __version__,
        "model": str(session.model_path()),
        "enabled": session.enabled,
        "state": session.status.state,
        "reason": session.status.reason,
        "modelError": session.model_error,
        # Counted on this machine only (see `gpt-lsp stats`); never sent anywhere.
        "acceptance": ls.acceptance.summary(),
    }


def accepted(ls: GptLanguageServer, *arguments: Any) -> bool:
    """The client ran an inline item's command (the user accepted it), or an extension reported a
    partial acceptance (`{"id": ..., "partial": true}`). True when it was counted."""
    parsed = parse_accepted(arguments)
    if parsed is None:
        log.debug("gpt-lsp.accepted without a suggestion id: %r", arguments)
        return False
    return ls.acceptance.accepted(*parsed)


def toggle(ls: GptLanguageServer) -> bool:
    session = ls.session
    session.enabled = not session.enabled
    session.set_status(
        "ready" if session.enabled else "disabled",
        "enabled" if session.enabled else "disabled by the user",
    )
    return session.enabled


def shutdown(ls: GptLanguageServer, params: Any = None) -> None:
    ls.stop_features()


def exit_(ls: GptLanguageServer, params: Any = None) -> None:
    ls.exit_code = 0 if ls.gpt_protocol.shutdown_requested else 1


def _snippet_command(kind: SnippetKind):
    """The executeCommand handler of one snippet kind (pygls reads its typed arguments)."""

    async def run(
        ls: GptLanguageServer, uri: str, line: int, character: int, version: int, *options: Any
    ) -> dict:
        return await snippet_action(ls, kind, uri, line, character, version, options)

    run.__name__ = f"snippet_{kind.value}"
    return run


def register(ls: GptLanguageServer) -> None:
    """Bind every handler above to its LSP method or command."""
    features: list[tuple[str, Any, Any]] = [
        (lsp.INITIALIZE, initialize, None),
        (lsp.INITIALIZED, initialized, None),
        (lsp.WORKSPACE_DID_CHANGE_CONFIGURATION, did_change_configuration, None),
        (lsp.TEXT_DOCUMENT_DID_OPEN, did_open, None),
        (lsp.TEXT_DOCUMENT_DID_CHANGE, did_change, None),
        (lsp.TEXT_DOCUMENT_DID_CLOSE, did_close, None),
        (lsp.TEXT_DOCUMENT_INLINE_COMPLETION, inline_completion, lsp.InlineCompletionOptions()),
        (
            lsp.TEXT_DOCUMENT_COMPLETION,
            completion,
            lsp.CompletionOptions(trigger_characters=COMPLETION_TRIGGERS),
        ),
        (lsp.TEXT_DOCUMENT_CODE_ACTION, code_action, lsp.CodeActionOptions(code_action_kinds=ACTION_KINDS)),
        (lsp.SHUTDOWN, shutdown, None),
        (lsp.EXIT, exit_, None),
    ]
    for method, handler, options in features:
        ls.feature(method, options)(handler)
    for command, kind in SNIPPET_COMMANDS.items():
        ls.command(command)(_snippet_command(kind))
    ls.command(CMD_STATUS)(status)
    ls.command(CMD_TOGGLE)(toggle)
    ls.command(CMD_ACCEPTED)(accepted)


def create_server(model_path: Path | None = None) -> GptLanguageServer:
    ls = GptLanguageServer(model_path)
    register(ls)
    return ls
