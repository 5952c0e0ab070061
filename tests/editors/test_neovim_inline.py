"""Neovim 0.12 ghost text and accept with editors/neovim: type in insert mode, see the plugin's native
inline completion, accept it with the documented key (<Tab>), check the buffer.

Needs Neovim >= 0.12 (vim.lsp.inline_completion): `nvim` on PATH if it is 0.12+, else the launcher
that editors/neovim/install-nvim-0.12.sh writes (Debian sid's neovim extracted privately; the
variable GPT_LSP_NVIM_012 may name any 0.12+ nvim). Skips when none is available.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import EDITORS, EXPECTED_TEXT, editor_env

pytestmark = pytest.mark.editor
HERE = Path(__file__).resolve().parent
START_TEXT = "def greet(name):\n\n"
TYPED = "    return "
LAUNCHER = (
    Path(os.environ.get("GPT_LSP_NVIM_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
         / "gpt-lsp-nvim-0.12") / "nvim"
)  # fmt: skip


def _version(nvim: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([nvim, "--version"], capture_output=True, text=True, timeout=30).stdout
        first = out.splitlines()[0]
        major, minor = (int(x) for x in first.split("v", 1)[1].split(".")[:2])
    except (OSError, IndexError, ValueError, subprocess.TimeoutExpired):
        return None
    return major, minor


def _nvim_012() -> str:
    candidates = [
        os.environ.get("GPT_LSP_NVIM_012"),
        shutil.which("nvim", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"),
        str(LAUNCHER),
    ]
    seen = []
    for nvim in candidates:
        if not nvim or not Path(nvim).exists():
            continue
        version = _version(nvim)
        seen.append(f"{nvim}: {version}")
        if version and version >= (0, 12):
            return nvim
    pytest.skip(
        "no Neovim >= 0.12 (native inline completion) found"
        + (f" ({'; '.join(seen)})" if seen else "")
        + ": run editors/neovim/install-nvim-0.12.sh or set GPT_LSP_NVIM_012"
    )


@pytest.fixture(scope="module")
def inline_run(gpt_lsp_server: str, editor_model_dir: Path, tmp_path_factory) -> dict:  # noqa: ANN001
    nvim = _nvim_012()
    tmp = tmp_path_factory.mktemp("nvim012")
    doc = tmp / "example.py"
    doc.write_text(START_TEXT)
    out = tmp / "result.json"
    log = tmp / "gpt-lsp.log"
    env = editor_env(
        GPT_LSP_PLUGIN=str(EDITORS / "neovim"),
        GPT_LSP_SERVER=gpt_lsp_server,
        GPT_LSP_MODEL=str(editor_model_dir),
        GPT_LSP_LOG=str(log),
        GPT_LSP_FILE=str(doc),
        GPT_LSP_OUT=str(out),
        XDG_STATE_HOME=str(tmp / "state"),
        XDG_CONFIG_HOME=str(tmp / "config"),
        XDG_DATA_HOME=str(tmp / "data"),
    )
    proc = subprocess.run(
        [nvim, "--headless", "--clean", "-c", f"luafile {HERE / 'nvim_inline_test.lua'}"],
        cwd=tmp,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.exists(), f"nvim wrote no result (rc={proc.returncode}):\n{proc.stderr[-3000:]}"
    result = json.loads(out.read_text())
    failed = [s for s in result["steps"] if not s["ok"]]
    server_log = log.read_text()[-3000:] if log.exists() else ""
    assert not failed, (
        f"steps failed: {failed}\nmode: {result.get('mode_at_failure')}, lines: {result.get('lines_at_failure')}"
        f"\nnotes: {result['notes']}\nnvim stderr:\n{proc.stderr[-2000:]}\nserver log:\n{server_log}"
    )
    assert result.get("done") is True, result
    return result


def test_plugin_enables_native_inline_completion(inline_run: dict) -> None:
    assert inline_run["version"].startswith("0.1") and tuple(
        map(int, inline_run["version"].split(".")[:2])
    ) >= (0, 12)
    assert inline_run["has_inline_api"] is True
    assert inline_run["filetype"] == "python"
    assert inline_run["inline_capability"] is True
    assert inline_run["inline_enabled"] is True
    assert inline_run["tab_map_desc"] == "gpt-lsp: accept inline completion"
    assert inline_run["ready_status"]["state"] == "ready"


def test_ghost_text_shown_in_insert_mode(inline_run: dict) -> None:
    ghost = inline_run["ghost"]
    assert inline_run["mode_with_ghost"] == "i"
    assert ghost["text"] == EXPECTED_TEXT
    assert (ghost["row"], ghost["col"]) == (1, len(TYPED))  # right after the cursor
    # Ghost text is an extmark: the buffer itself holds only what was typed.
    assert inline_run["lines_with_ghost"] == ["def greet(name):", TYPED]


def test_tab_accepts_the_ghost_text(inline_run: dict) -> None:
    assert inline_run["lines_after_accept"] == ["def greet(name):", TYPED + EXPECTED_TEXT]
    assert inline_run["cursor_after_accept"] == [2, len(TYPED + EXPECTED_TEXT)]
    assert inline_run["mode_after_accept"] == "i"
    assert inline_run["ghost_after_accept"] is None


def test_tab_without_ghost_text_is_a_plain_tab(inline_run: dict) -> None:
    if inline_run["ghost_before_plain_tab"] is not None:
        pytest.fail(f"a suggestion was shown after the accept: {inline_run['ghost_before_plain_tab']}")
    assert inline_run["lines_after_plain_tab"] == ["def greet(name):", TYPED + EXPECTED_TEXT + "\t"]


def test_ghost_text_cleared_on_leaving_insert_mode(inline_run: dict) -> None:
    assert inline_run["mode_after_esc"] == "n"
    assert inline_run["ghost_after_esc"] is None
