"""Privacy over real LSP: no feature of `gpt-lsp --stdio` shows the model a secret, and secret-bearing
or gitignored files are never sent at all.

The server runs under `spy_server.py`, which records every token sequence the ONNX engine runs,
decoded back to text. The test drives every feature a user can reach: inline completion, the four
snippet commands, the repair quick fix and model hints (turned on by a permissive calibration).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

from lsprotocol import types as lsp
from pytest_lsp import client_capabilities
from pytest_lsp.client import make_test_lsp_client
from unit.privacy.test_model_input import PASSWORD, SECRET_PIECES, SOURCE

from gpt_lsp.lsp.server import STATUS_NOTIFICATION

from .conftest import StatusLog
from .test_actions import EditorState, _actions, _code_action_hook, _diagnostics
from .test_serving import inline_params

SPY_SERVER = Path(__file__).with_name("spy_server.py")
COMMANDS = ["implementFunction", "generateDocstring", "codeFromComment", "completeBlock"]


async def start_spied(model: Path, log: Path, workspace: Path):
    client = make_test_lsp_client()
    client.status_log = StatusLog()  # type: ignore[attr-defined]
    client.feature(STATUS_NOTIFICATION)(client.status_log)
    await client.start_io(sys.executable, str(SPY_SERVER), str(log), "--stdio", "--model", str(model))
    _code_action_hook(client.protocol._converter)
    editor = EditorState(client)

    @client.feature(lsp.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: lsp.ApplyWorkspaceEditParams) -> lsp.ApplyWorkspaceEditResult:
        return editor.apply(params)

    await client.initialize_session(
        lsp.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            initialization_options={"logLevel": "verbose"},
            workspace_folders=[lsp.WorkspaceFolder(workspace.as_uri(), "ws")],
        )
    )
    await client.status_log.wait_for(lambda s: s["state"] in ("ready", "error"))
    return client, editor


def model_inputs(log: Path) -> list[str]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


async def test_no_feature_shows_the_model_a_secret(model_path, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(model_path, model)
    (model / "hints.json").write_text(json.dumps({"threshold": -1000, "precision": 1.0, "recall": 1.0}))
    workspace, log = tmp_path / "ws", tmp_path / "model-input.jsonl"
    workspace.mkdir()
    client, editor = await start_spied(model, log, workspace)
    try:
        uri = (workspace / "service.py").as_uri()
        editor.open(uri, SOURCE)
        lines = SOURCE.split("\n")
        # Inline completion at the end of lines near each secret (the windows hold them).
        for needle in ('NAME = "service"', "SLACK = ", "return open_session", "import os"):
            line = next(i for i, text in enumerate(lines) if needle in text)
            await client.text_document_inline_completion_async(inline_params(uri, line, len(lines[line])))
        # Every snippet command, wherever the server offers it.
        offered: dict[str, lsp.Command] = {}
        for line in range(len(lines)):
            for action in await _actions(client, uri, line, 4 if lines[line].startswith(" ") else 0):
                if action.command and action.command.command.removeprefix("gpt-lsp.") in COMMANDS:
                    offered.setdefault(action.command.command, action.command)
        assert sorted(offered) == sorted(f"gpt-lsp.{c}" for c in COMMANDS)
        for command in offered.values():
            await client.workspace_execute_command_async(
                lsp.ExecuteCommandParams(command.command, command.arguments)
            )
        # The repair quick fix, on a syntax error in the line holding a password.
        broken = (workspace / "broken.py").as_uri()
        editor.open(broken, SOURCE.replace(f'"{PASSWORD}"', f'"{PASSWORD}" + * 2'))
        line = next(i for i, text in enumerate(lines) if PASSWORD in text)
        await _diagnostics(client, broken, lambda d: len(d) >= 1)
        before = len(model_inputs(log))
        await _actions(client, broken, line, 0, (line, len(lines[line]) + 6))
        assert len(model_inputs(log)) > before, "the repair never ran the model"
        # Model hints on an edited line between the secrets.
        before = len(model_inputs(log))
        editor.set_text(uri, SOURCE.replace("open_session(host", "open_sesion(host"))
        await _diagnostics(client, uri, lambda d: any(str(x.code).startswith("hint-") for x in d), timeout=30)
        assert len(model_inputs(log)) > before, "hints never ran the model"
    finally:
        await client.shutdown_session()
        await client.stop()
    seen = model_inputs(log)
    assert len(seen) > 20
    assert not [(piece, text) for text in seen for piece in SECRET_PIECES if piece in text]
    assert any("<redacted:private-key>" in text for text in seen)
    assert any("<redacted:password>" in text for text in seen)


async def test_secret_and_gitignored_files_never_reach_the_model(model_path, tmp_path):
    workspace, log = tmp_path / "ws", tmp_path / "model-input.jsonl"
    (workspace / "generated").mkdir(parents=True)
    (workspace / ".gitignore").write_text("generated/\nlocal_*.py\n")
    client, editor = await start_spied(model_path, log, workspace)
    try:
        shown = (workspace / "app.py").as_uri()
        editor.open(shown, "def add(a, b):\n    return a + b\n\nx = add(\n")
        await client.text_document_inline_completion_async(inline_params(shown, 3, 8))
        assert model_inputs(log), "an ordinary file must reach the model, or this test proves nothing"
        before = len(model_inputs(log))
        for relative in ("generated/api.py", "local_settings.py", ".env", "prod.env", "deploy/id_rsa.bak"):
            uri = (workspace / relative).as_uri()
            editor.open(uri, "def add(a, b):\n    return a + b\n\nx = add(\n", "python")
            result = await client.text_document_inline_completion_async(inline_params(uri, 3, 8))
            assert not result or not getattr(result, "items", result)
            status = await client.status_log.wait_for(lambda s, uri=uri: s.get("uri") == uri)
            assert "gitignore" in status["reason"] or "secret" in status["reason"], status
            actions = await _actions(client, uri, 0, 4)
            assert not [a for a in actions if a.command], actions
        await asyncio.sleep(0.5)
        assert len(model_inputs(log)) == before
    finally:
        await client.shutdown_session()
        await client.stop()
