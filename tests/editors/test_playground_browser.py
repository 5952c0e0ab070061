"""The playground page in headless Chromium, driven by Playwright, against the real server and model.

Paste the demo file, click below its last line (the caret lands at the end, where `make demo`
completes), and check what the page shows: the completion, the context and gate, the prompt, the
token table and the latency; change settings and see the output change; compare a second model;
run an evaluation and check its chart. A full-page screenshot goes to runs/artifacts/playground.png
(or $GPT_LSP_E2E_ARTIFACTS). Needs apt `chromium` and PyPI `playwright` (no browser download):
`editors/install-test-editors.sh browser`.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpt_lsp.tools.demo import SAMPLE

from .conftest import EXPECTED_TEXT, REPO

CHROMIUM = os.environ.get("GPT_LSP_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("GPT_LSP_E2E_ARTIFACTS") or REPO / "runs" / "artifacts")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.editor,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and shutil.which("chromium") is None,
        reason=f"{CHROMIUM} missing: apt-get install chromium (editors/install-test-editors.sh browser)",
    ),
]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    from gpt_lsp.tools.playground_api import Playground
    from gpt_lsp.tools.playground_http import PlaygroundServer

    server = PlaygroundServer(0, Playground())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.url
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator:  # noqa: ANN201 - playwright Browser
    pytest.importorskip(
        "playwright",
        reason="pip install playwright (editors/install-test-editors.sh browser; no browser download)",
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
        chromium = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, url: str) -> Iterator:  # noqa: ANN001, ANN201
    """A fresh page with the demo file pasted, and the errors the page logged (there must be none)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    # A 400 answer is how the server rejects bad input (the page shows its message); anything else counts.
    pg.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and "status of 400" not in m.text else None,
    )
    offsite: list[str] = []
    pg.on("request", lambda r: None if r.url.startswith(url) else offsite.append(r.url))
    pg.goto(url)
    pg.fill("#filename", "files.py")
    pg.fill("#source", SAMPLE)
    try:
        yield pg
        assert errors == [], errors
        assert offsite == [], f"the page loaded something from elsewhere: {offsite}"
    except BaseException:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / "playground-failed.png"), full_page=True)
        raise
    finally:
        context.close()


def next_result(pg, action) -> None:  # noqa: ANN001
    """Do `action` and wait until the page has rendered the completion it asked for."""
    before = pg.locator("#results").get_attribute("data-runs") or "0"
    action()
    pg.wait_for_selector(f'#results[data-runs="{int(before) + 1}"]')


def click_end_of_file(pg) -> None:  # noqa: ANN001
    """A real mouse click in the empty area below the text: the caret goes to the end of the file."""
    box = pg.locator("#source").bounding_box()
    pg.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] - 12)


def token_rows(column) -> list[list[str]]:  # noqa: ANN001
    rows = column.locator("table.tokens tbody tr")
    return [[c.strip() for c in rows.nth(i).locator("td").all_inner_texts()] for i in range(rows.count())]


def test_click_shows_completion_prompt_tokens_and_latency(page) -> None:  # noqa: ANN001
    next_result(page, lambda: click_end_of_file(page))
    assert page.locator("#position").inner_text() == "Ln 14, Col 13"  # where `make demo` completes
    result = page.locator(".result")
    assert result.count() == 1
    assert result.locator("pre.completion").inner_text() == "return None"
    assert (
        result.locator('[data-fact="context-kind"] td').inner_text() == "block (blank line in an empty block)"
    )
    assert result.locator('[data-fact="gate"] td').inner_text() == "complete"
    # The prompt: the whole file, no sentinels (the shipped model prompts with the prefix), nothing cut.
    prompt = result.locator(".prompt")
    assert prompt.inner_text().rstrip() == SAMPLE.rstrip()
    assert prompt.locator(".sentinel").count() == 0
    assert result.locator('[data-cut="prefix"]').inner_text() == "0 cut for the budget"
    assert result.locator("[data-redacted]").inner_text() == "nothing"
    # The token table: the tokens of "return None" kept, with their odds and three alternatives each.
    rows = token_rows(result)
    heading = result.locator(".decoded h4").text_content()
    assert heading == f"Decoded tokens ({len(rows)})"
    assert [r[1] for r in rows[:3]] == ['"      "', '" return"', '" None"']
    assert [r[-1] for r in rows[:4]] == ["✓", "✓", "✓", "cut"]
    for i, row in enumerate(rows):
        assert 0 < float(row[2]) <= 1
        assert result.locator("table.tokens tbody tr").nth(i).locator(".alt").count() == 3
    latency = result.locator(".latency tr th").all_inner_texts()
    assert latency == ["context", "redact", "related", "prompt", "decode", "postprocess"]


def test_changed_settings_change_the_output(page) -> None:  # noqa: ANN001
    next_result(page, lambda: click_end_of_file(page))
    page.fill("input[name=max_tokens]", "2")
    next_result(page, lambda: page.click("#run"))
    result = page.locator(".result")
    assert result.locator("pre.completion").inner_text() == "return"
    assert [r[1] for r in token_rows(result)] == ['"      "', '" return"']

    page.select_option("select[name=prompt]", "fim")
    next_result(page, lambda: page.click("#run"))
    assert "(fim)" in result.locator(".prompt-box h4").text_content()
    sentinels = result.locator(".prompt .sentinel").all_inner_texts()
    assert sentinels == ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"]

    page.fill("input[name=budget]", "30")
    next_result(page, lambda: page.click("#run"))
    assert "of a 30-token budget" in result.locator(".prompt-box h4").text_content()
    assert result.locator('[data-cut="prefix"]').inner_text() != "0 cut for the budget"

    page.fill("input[name=budget]", "-5")  # a bad value: a clear message, and the page keeps working
    next_result(page, lambda: page.click("#run"))
    assert result.locator(".error").inner_text() == "budget must be between 0 and 1000000, not -5"


def python_folder(root: Path) -> Path:
    for module in (textwrap, json.decoder):
        (root / f"{module.__name__}.py").write_text(inspect.getsource(module))
    return root


def run_eval(pg, folder: Path, bars: int) -> None:  # noqa: ANN001
    pg.fill("#eval-folder", str(folder))
    pg.fill("#eval-n", "8")
    pg.click("#eval-run")
    pg.wait_for_selector("#eval-out svg.chart", timeout=180_000)
    assert pg.locator("#eval-out rect.bar-rect").count() == bars
    for key in ("em", "es", "bleu", "rouge_l"):
        values = pg.locator(f'#eval-out tr[data-metric="{key}"] td').all_inner_texts()
        assert len(values) == bars // 4 and all(0 <= float(v) <= 100 for v in values), (key, values)


def test_eval_draws_its_chart(page, tmp_path: Path) -> None:  # noqa: ANN001
    pytest.importorskip("sacrebleu", reason="the evaluation needs gpt-lsp[train]")
    run_eval(page, python_folder(tmp_path), bars=4)
    assert page.locator("#eval-out table.examples tbody tr").count() == 8


def test_compare_two_models_side_by_side(page, editor_model_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    """The shipped model next to the fixed test model (whose every suggestion is EXPECTED_TEXT);
    the screenshot of this page is the one kept in the artifacts."""
    pytest.importorskip("sacrebleu", reason="the evaluation needs gpt-lsp[train]")
    page.fill("input[name=compare]", str(editor_model_dir))
    next_result(page, lambda: click_end_of_file(page))
    columns = page.locator(".result")
    assert columns.count() == 2
    assert columns.nth(0).locator("pre.completion").inner_text() == "return None"
    assert columns.nth(1).locator("pre.completion").inner_text() == EXPECTED_TEXT
    assert columns.nth(1).locator(".model-path").inner_text() == str(editor_model_dir)
    run_eval(page, python_folder(tmp_path), bars=8)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)


def test_a_position_the_gate_rejects_says_why(page) -> None:  # noqa: ANN001
    page.focus("#source")
    page.keyboard.press("Control+Home")
    for _ in range(3):
        page.keyboard.press("ArrowRight")  # imp|ort: inside a word, with text to its right
    next_result(page, lambda: page.keyboard.press("Control+Enter"))
    assert page.locator("#position").inner_text() == "Ln 1, Col 4"
    result = page.locator(".result")
    assert (
        result.locator(".no-completion").inner_text()
        == "no completion: gate: mid-word with text to the right"
    )
    assert result.locator('[data-fact="gate"] td').inner_text() == "skip — mid-word with text to the right"
    assert result.locator("table.tokens").count() == 0  # the model was not called
