"""VS Code extension (editors/vscode): type-check + lint, the node protocol test and the compiled
activate() against a fake `vscode` module, both talking to the real server; packaging to a .vsix.

Needs node >= 20 and `npm ci` in editors/vscode (editors/install-test-editors.sh vscode).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from .conftest import EDITORS, EXPECTED_TEXT, editor_env

pytestmark = pytest.mark.editor
VSCODE = EDITORS / "vscode"


@pytest.fixture(scope="module")
def npm() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node/npm not installed")
    major = int(
        subprocess.run([node, "--version"], capture_output=True, text=True)
        .stdout.strip()
        .lstrip("v")
        .split(".")[0]
    )
    if major < 20:
        pytest.skip(f"node {major} is too old (the extension's toolchain needs node >= 20)")
    if not (VSCODE / "node_modules" / "vscode-languageclient").is_dir():
        pytest.skip(
            "editors/vscode/node_modules missing: run editors/install-test-editors.sh vscode (npm ci)"
        )
    return npm


def _run(cmd: list[str], timeout: int = 300, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=VSCODE, env=editor_env(**env), capture_output=True, text=True, timeout=timeout
    )


def _tap_counts(output: str) -> dict[str, int]:
    return {
        k: int(v) for k, v in re.findall(r"^# (pass|fail|skipped|cancelled|todo|tests) (\d+)$", output, re.M)
    }


@pytest.fixture(scope="module")
def compiled(npm: str) -> None:
    proc = _run([npm, "run", "-s", "compile"])
    assert proc.returncode == 0, f"tsc failed:\n{proc.stdout}\n{proc.stderr}"
    assert (VSCODE / "out" / "extension.js").exists()


def test_lint(npm: str) -> None:
    """`tsc --noEmit` under strict settings, then eslint (typescript-eslint strict) on src and tests."""
    proc = _run([npm, "run", "-s", "lint"])
    assert proc.returncode == 0, f"lint failed:\n{proc.stdout}\n{proc.stderr}"


def _node_test(npm: str, files: list[str], server: str, model: Path, **env: str) -> dict[str, int]:
    node = shutil.which("node")
    assert node
    proc = _run(
        [node, "--test", *files],
        timeout=240,
        GPT_LSP_SERVER=server,
        GPT_LSP_MODEL=str(model),
        GPT_LSP_EXPECT=EXPECTED_TEXT,
        **env,
    )
    counts = _tap_counts(proc.stdout)
    assert proc.returncode == 0 and counts.get("fail") == 0, (
        f"node --test failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"
    )
    assert counts.get("skipped") == 0, f"node tests skipped:\n{proc.stdout[-3000:]}"
    return counts


def test_protocol(compiled: None, npm: str, gpt_lsp_server: str, editor_model_dir: Path) -> None:
    """initialize with the extension's settings object, didOpen, completion, inlineCompletion with
    triggerKind, status/toggle commands, didChangeConfiguration, shutdown/exit (test/protocol.test.js)."""
    counts = _node_test(npm, ["test/protocol.test.js"], gpt_lsp_server, editor_model_dir)
    assert counts["pass"] >= 7


def test_activate_against_fake_vscode(
    compiled: None, npm: str, gpt_lsp_server: str, editor_model_dir: Path
) -> None:
    """The compiled activate(): missing-server notification, restart on settings change, the inline and
    completion providers vscode-languageclient registers, status bar, toggle, settings push, deactivate."""
    counts = _node_test(npm, ["test/activate.test.js"], gpt_lsp_server, editor_model_dir)
    assert counts["pass"] >= 10


def test_languages_and_first_run(compiled: None, npm: str) -> None:
    """`gptLsp.languages` (contributed default = activation events = the code's list; per-language
    off, extra languages on), the explain command line, and the first-run "Install with pipx…"
    prompt (test/languages.test.js; no server needed)."""
    node = shutil.which("node")
    assert node
    proc = _run([node, "--test", "test/languages.test.js"], timeout=120)
    counts = _tap_counts(proc.stdout)
    assert proc.returncode == 0 and counts.get("fail") == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert counts.get("pass") == 5 and counts.get("skipped") == 0


def test_package_vsix(npm: str, gpt_lsp_server: str, editor_model_dir: Path) -> None:
    """`npm run package` bundles with esbuild and builds a .vsix; the bundle passes the activate() test."""
    vsix = VSCODE / "gpt-lsp.vsix"
    vsix.unlink(missing_ok=True)
    proc = _run([npm, "run", "-s", "package"])
    assert proc.returncode == 0, f"npm run package failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    with zipfile.ZipFile(vsix) as z:
        names = set(z.namelist())
        manifest = json.loads(z.read("extension/package.json"))
    assert "extension/dist/extension.js" in names
    assert not any(n.startswith("extension/src/") or n.startswith("extension/node_modules/") for n in names)
    assert manifest["main"] == "./dist/extension.js"
    assert manifest["capabilities"]["untrustedWorkspaces"]["supported"] == "limited"
    assert manifest["icon"] == "images/icon.png" and "extension/images/icon.png" in names
    counts = _node_test(
        npm,
        ["test/activate.test.js"],
        gpt_lsp_server,
        editor_model_dir,
        GPT_LSP_EXTENSION="dist/extension.js",
    )
    assert counts["pass"] >= 10
