"""Vim (real vim -es) with ALE and editors/vim: ALE's completion parses the server's items, inline
completion and commands through ALE's LSP connection. Needs apt vim + vim-ale."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import EDITORS, EXPECTED_TEXT, editor_env
from .lsp_probe import CANDIDATES
from .test_neovim import _server_publishes_diagnostics

pytestmark = pytest.mark.editor
HERE = Path(__file__).resolve().parent
DOC = CANDIDATES[0]
ALE_DIRS = [Path("/usr/share/vim-ale"), Path.home() / ".vim/pack/plugins/start/ale"]


@pytest.fixture(scope="module")
def vim_run(gpt_lsp_server: str, editor_model_dir: Path, tmp_path_factory) -> dict:  # noqa: ANN001
    vim = shutil.which("vim")
    if vim is None:
        pytest.skip("vim not installed (apt-get install vim vim-ale)")
    ale = next((d for d in ALE_DIRS if (d / "plugin" / "ale.vim").exists()), None)
    if ale is None:
        pytest.skip("ALE not installed (apt-get install vim-ale)")
    version = subprocess.run([vim, "--version"], capture_output=True, text=True, timeout=30).stdout
    if "+job" not in version or "+channel" not in version:
        pytest.skip("this vim lacks +job/+channel, which ALE's LSP client needs")
    tmp = tmp_path_factory.mktemp("vim")
    (tmp / ".git").mkdir()
    doc = tmp / f"example.{DOC.ext}"
    doc.write_text(DOC.text)
    out = tmp / "result.json"
    line, col = DOC.end
    env = editor_env(
        GPT_LSP_ALE_DIR=str(ale),
        GPT_LSP_VIM_DIR=str(EDITORS / "vim"),
        GPT_LSP_SERVER=gpt_lsp_server,
        GPT_LSP_MODEL=str(editor_model_dir),
        GPT_LSP_LOG=str(tmp / "gpt-lsp.log"),
        GPT_LSP_FILE=str(doc),
        GPT_LSP_OUT=str(out),
        GPT_LSP_LINE=str(line),
        GPT_LSP_COL=str(col),
        HOME=str(tmp),
    )
    proc = subprocess.run(
        [vim, "-N", "-u", "NONE", "-i", "NONE", "-n", "-es", "-S", str(HERE / "ale_test.vim")],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )
    assert out.exists(), (
        f"vim wrote no result (rc={proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    )
    result = json.loads(out.read_text())
    log = (tmp / "gpt-lsp.log").read_text()[-2000:] if (tmp / "gpt-lsp.log").exists() else ""
    assert "error" not in result, f"{result['error']}\nserver log:\n{log}"
    assert result.get("done") is True
    return result


def test_ale_runs_the_linter(vim_run: dict) -> None:
    assert vim_run["has_commands"] is True
    assert vim_run["filetype"] == "python"
    assert "gpt_lsp" in vim_run["linters"]
    assert vim_run["status"]["state"] == "ready"


def test_ale_completion(vim_run: dict) -> None:
    words = [c["word"] for c in vim_run["completions"]]
    assert EXPECTED_TEXT in words, f"ALE completions: {vim_run['completions']}"


def test_inline_completion_through_ale_connection(vim_run: dict) -> None:
    items = vim_run["inline"]["items"] if isinstance(vim_run["inline"], dict) else vim_run["inline"]
    assert items and items[0]["insertText"] == EXPECTED_TEXT


def test_toggle_command(vim_run: dict) -> None:
    assert vim_run["toggle_off"] is False
    assert vim_run["toggle_on"] is True


def test_ale_diagnostics(vim_run: dict) -> None:
    if vim_run["diagnostics"] == 0 and not _server_publishes_diagnostics():
        pytest.skip(
            "the server does not publish diagnostics yet (no publishDiagnostics in gpt_lsp.lsp.server)"
        )
    assert vim_run["diagnostics"] >= 1
