"""Emacs (batch, real Eglot) with editors/emacs/gpt-lsp.el: completion-at-point applies the server's
completion, commands round-trip, shutdown. Needs apt emacs-nox (+ elpa-eglot on Emacs 28)."""

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
DOC = CANDIDATES[0]  # "def greet(name):\n    return " -> the fixed model completes "text"


@pytest.fixture(scope="module")
def emacs_run(gpt_lsp_server: str, editor_model_dir: Path, tmp_path_factory) -> dict:  # noqa: ANN001
    emacs = shutil.which("emacs")
    if emacs is None:
        pytest.skip(
            "emacs not installed (apt-get install emacs-nox elpa-eglot, or editors/install-test-editors.sh emacs)"
        )
    probe = subprocess.run(
        [
            emacs,
            "--batch",
            "-Q",
            "--eval",
            "(progn (require 'package) (add-to-list 'package-directory-list \"/usr/share/emacs/site-lisp/elpa\")"
            ' (package-initialize) (princ (if (require \'eglot nil t) "yes" "no")))',
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.stdout.strip() != "yes":
        pytest.skip("Eglot not available (Emacs < 29 needs apt elpa-eglot)")
    tmp = tmp_path_factory.mktemp("emacs")
    (tmp / ".git").mkdir()  # a project root for Eglot
    doc = tmp / f"example.{DOC.ext}"
    doc.write_text(DOC.text)
    out = tmp / "result.json"
    env = editor_env(
        GPT_LSP_EMACS_DIR=str(EDITORS / "emacs"),
        GPT_LSP_SERVER=gpt_lsp_server,
        GPT_LSP_MODEL=str(editor_model_dir),
        GPT_LSP_LOG=str(tmp / "gpt-lsp.log"),
        GPT_LSP_FILE=str(doc),
        GPT_LSP_OUT=str(out),
        HOME=str(tmp),
    )
    proc = subprocess.run(
        [emacs, "--batch", "-Q", "-l", str(HERE / "eglot_test.el")],
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
    return result


def test_eglot_connects(emacs_run: dict, editor_model_dir: Path) -> None:
    assert emacs_run["connected"] is True
    assert emacs_run["server_name"] == "gpt-lsp"
    assert emacs_run["major_mode"] == "python-mode"
    assert emacs_run["ready_state"] == "ready"
    assert emacs_run["status_model"] == str(editor_model_dir)


def test_completion_at_point_applies_the_suggestion(emacs_run: dict) -> None:
    assert len(emacs_run["candidates"]) >= 1
    assert emacs_run["buffer_after_completion"] == DOC.text + EXPECTED_TEXT


def test_commands_and_status(emacs_run: dict) -> None:
    assert emacs_run["toggle_off"] is False
    assert emacs_run["toggle_on"] is True
    assert emacs_run["last_status"] in {"ready", "generating", "disabled"}


def test_shutdown(emacs_run: dict) -> None:
    assert emacs_run["server_exited"] is True


def test_flymake_diagnostics(emacs_run: dict) -> None:
    if emacs_run["diagnostics"] == 0 and not _server_publishes_diagnostics():
        pytest.skip(
            "the server does not publish diagnostics yet (no publishDiagnostics in gpt_lsp.lsp.server)"
        )
    assert emacs_run["diagnostics"] >= 1
    assert "gpt-lsp" in emacs_run["diagnostic_message"]
