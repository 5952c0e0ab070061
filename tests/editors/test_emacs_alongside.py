"""Eglot with gpt-lsp *alongside* another language server: `gpt-lsp-alongside` puts ruff's server
and gpt-lsp behind the rass multiplexer (PyPI rassumfrassum) in one Eglot connection.

Needs Emacs with Eglot, `rass` (pip install rassumfrassum) and `ruff` in the venv."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import EDITORS, EXPECTED_TEXT, editor_env
from .lsp_probe import CANDIDATES

pytestmark = pytest.mark.editor
HERE = Path(__file__).resolve().parent
DOC_TEXT = "import os\n\n\n" + CANDIDATES[0].text  # an unused import for ruff; "return " for gpt-lsp


def _tool(name: str, install: str) -> str:
    found = shutil.which(name, path=f"{Path(sys.executable).parent}:{editor_env()['PATH']}")
    if found is None:
        pytest.skip(f"{name} not installed ({install})")
    return found


@pytest.fixture(scope="module")
def alongside_run(gpt_lsp_server: str, editor_model_dir: Path, tmp_path_factory) -> dict:  # noqa: ANN001
    emacs = _tool("emacs", "apt-get install emacs-nox elpa-eglot, or editors/install-test-editors.sh emacs")
    rass = _tool("rass", "pip install rassumfrassum, or editors/install-test-editors.sh emacs")
    ruff = _tool("ruff", "pip install ruff")
    tmp = tmp_path_factory.mktemp("emacs-alongside")
    (tmp / ".git").mkdir()
    doc = tmp / "example.py"
    doc.write_text(DOC_TEXT)
    out = tmp / "result.json"
    env = editor_env(
        GPT_LSP_EMACS_DIR=str(EDITORS / "emacs"),
        GPT_LSP_SERVER=gpt_lsp_server,
        GPT_LSP_MODEL=str(editor_model_dir),
        GPT_LSP_LOG=str(tmp / "gpt-lsp.log"),
        GPT_LSP_RASS=rass,
        GPT_LSP_RUFF=ruff,
        GPT_LSP_FILE=str(doc),
        GPT_LSP_OUT=str(out),
        HOME=str(tmp),
    )
    proc = subprocess.run(
        [emacs, "--batch", "-Q", "-l", str(HERE / "eglot_alongside_test.el")],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.exists(), f"emacs wrote no result (rc={proc.returncode}):\n{proc.stderr[-3000:]}"
    result = json.loads(out.read_text())
    assert "error" not in result, f"{result['error']}\n{proc.stderr[-3000:]}"
    assert result.get("done") is True, proc.stderr[-3000:]
    result["gpt_lsp_log"] = (tmp / "gpt-lsp.log").read_text() if (tmp / "gpt-lsp.log").exists() else ""
    return result


def test_one_eglot_connection_runs_both_servers(alongside_run: dict) -> None:
    assert alongside_run["contact_program"].endswith("rass")
    assert alongside_run["connected"] is True
    assert alongside_run["servers_in_buffer"] == 1
    # rass joins the servers' names: the main server first, then gpt-lsp.
    assert alongside_run["server_name"].endswith("gpt-lsp") and alongside_run["server_name"] != "gpt-lsp"


def test_gpt_lsp_commands_status_and_completion(alongside_run: dict) -> None:
    assert alongside_run["ready_state"] == "ready"
    assert alongside_run["last_status"] in {"ready", "generating"}
    assert alongside_run["buffer_after_completion"] == DOC_TEXT + EXPECTED_TEXT
    # gpt-lsp got its own settings (rass's per-server initializationOptions), and accepted them.
    assert "invalid settings" not in alongside_run["gpt_lsp_log"]


def test_main_server_diagnostics_in_the_same_buffer(alongside_run: dict) -> None:
    assert any("F401" in d for d in alongside_run["diagnostics"]), alongside_run["diagnostics"]


def test_shutdown(alongside_run: dict) -> None:
    assert alongside_run["server_exited"] is True
