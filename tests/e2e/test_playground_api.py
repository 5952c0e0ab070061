"""The playground's HTTP API: the real server on a free loopback port, the shipped model, real ONNX inference."""

from __future__ import annotations

import http.client
import inspect
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gpt_lsp.tools.demo import SAMPLE
from gpt_lsp.tools.playground_api import Playground
from gpt_lsp.tools.playground_http import PlaygroundServer

DEMO = {"text": SAMPLE, "filename": "files.py", "line": 14, "col": 13}  # `make demo`'s cursor


@pytest.fixture(scope="module")
def server() -> Iterator[PlaygroundServer]:
    srv = PlaygroundServer(0, Playground())
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def request(
    srv: PlaygroundServer, method: str, path: str, body: object = None, host: str | None = None
) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=120)
    headers = {"Host": host} if host else {}
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), payload


def api(srv: PlaygroundServer, action: str, body: object) -> tuple[int, dict]:
    status, _, payload = request(srv, "POST", f"/{srv.token}/api/{action}", body)
    return status, json.loads(payload)


def test_every_path_needs_the_token(server: PlaygroundServer) -> None:
    for method, path in [
        ("GET", "/"),
        ("GET", "/playground.js"),
        ("GET", "/nottoken/"),
        ("POST", "/api/complete"),
    ]:
        status, _, payload = request(server, method, path, DEMO if method == "POST" else None)
        assert status == 403, path
        assert "forbidden" in json.loads(payload)["error"]
    status, headers, page = request(server, "GET", f"/{server.token}/")
    assert status == 200 and b"<title>gpt-lsp playground</title>" in page
    assert "default-src 'self'" in headers["Content-Security-Policy"]  # nothing may load from elsewhere
    assert b"http" not in page.replace(b"http-equiv", b"")  # no external URL in the page itself
    status, headers, _ = request(server, "GET", f"/{server.token}")
    assert status == 301 and headers["Location"] == f"/{server.token}/"


def test_a_foreign_host_header_is_refused(server: PlaygroundServer) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 still sends its own Host."""
    status, _, _ = request(server, "GET", f"/{server.token}/", host="evil.example")
    assert status == 403


def test_complete_reports_what_the_editor_gets_and_how(server: PlaygroundServer) -> None:
    status, report = api(server, "complete", DEMO)
    assert status == 200, report
    assert [c["text"] for c in report["completions"]] == ["return None"]  # as `gpt-lsp complete` prints
    assert report["context_kind"] == "block" and report["language"] == "python"
    assert set(report["timings_ms"]) == {"context", "redact", "related", "prompt", "decode", "postprocess"}
    ex = report["explain"]
    assert ex["prompt_format"] == "prefix"  # the shipped model's choice
    assert "".join(t["text"] for t in ex["prompt_tokens"]) == SAMPLE
    kept = "".join(s["text"] for s in ex["decoded"] if s["in_completion"])
    assert kept.strip() == "return None"
    status, again = api(server, "complete", DEMO)
    assert again["model"]["cached"] and again["model"]["load_ms"] == report["model"]["load_ms"]


def test_settings_take_effect(server: PlaygroundServer) -> None:
    def run(**settings: object) -> dict:
        status, report = api(server, "complete", {**DEMO, "settings": settings})
        assert status == 200, report
        return report

    short = run(max_tokens=2)
    assert [c["text"] for c in short["completions"]] == ["return"]
    assert len(short["explain"]["decoded"]) == 2 and short["explain"]["max_new_tokens"] == 2

    fim = run(prompt="fim")["explain"]
    assert fim["prompt_format"] == "fim"
    assert [t["text"] for t in fim["prompt_tokens"] if t["sentinel"]] == [
        "<fim_prefix>",
        "<fim_suffix>",
        "<fim_middle>",
    ]

    cut = run(budget=30)["explain"]
    assert cut["budget_tokens"] == 30 and len(cut["prompt_tokens"]) <= 30
    kept, dropped = cut["cut"]["prefix_chars_in_prompt"], cut["cut"]["prefix_chars_cut_for_budget"]
    assert kept + dropped == len(SAMPLE) and dropped > len(SAMPLE) / 2

    # Sampling at temperature 1 keeps only the likeliest token when top-p is tiny: greedy again.
    # (Were top_p ignored, 13 sampled tokens would match the greedy ones with odds far below 1%.)
    assert run(temperature=1.0, top_p=0.01)["completions"][0]["text"] == "return None"

    mid = {**DEMO, "text": "def get_user_name(user):\n    return user.na\n", "line": 2, "col": 19}
    healed = api(server, "complete", mid)[1]["explain"]["cut"]["healed"]
    unhealed = api(server, "complete", {**mid, "settings": {"healing": False}})[1]["explain"]["cut"]["healed"]
    assert (healed, unhealed) == ("a", "")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**DEMO, "line": 15}, "line 15 is outside the file (it has 14 lines)"),
        ({**DEMO, "col": 14}, "column 14 is outside line 14 (it has 12 characters)"),
        ({**DEMO, "line": 0}, "line 0 is outside the file"),
        ({"line": 1, "col": 1}, "text is required"),
        ({**DEMO, "line": "1"}, "line is required (int)"),
        ({**DEMO, "settings": {"temprature": 1}}, "unknown setting(s): temprature"),
        ({**DEMO, "settings": {"temperature": -1}}, "temperature must be between 0 and 5"),
        ({**DEMO, "settings": {"budget": "big"}}, "budget must be a number"),
        ({**DEMO, "settings": {"prompt": "spm"}}, "prompt must be one of auto, fim, prefix"),
        ({**DEMO, "settings": {"model": "/no/such/model"}}, "model: /no/such/model: not a directory"),
        ({**DEMO, "settings": {"prompt": "fim", "budget": 2}}, "token budget 2 leaves no room"),
        (b"{not json", "request body is not JSON"),
        (b"[1, 2]", "request body must be a JSON object"),
    ],
)
def test_bad_requests_get_a_clear_error(server: PlaygroundServer, body: object, message: str) -> None:
    status, reply = api(server, "complete", body)
    assert status == 400 and message in reply["error"], reply


def test_unknown_action_and_page_are_404(server: PlaygroundServer) -> None:
    assert api(server, "train", {})[0] == 404
    assert request(server, "GET", f"/{server.token}/secret.txt")[0] == 404


def test_concurrent_clicks_get_the_same_greedy_answer(server: PlaygroundServer) -> None:
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda _: api(server, "complete", DEMO), range(4)))
    assert [(s, r["completions"][0]["text"]) for s, r in replies] == [(200, "return None")] * 4


def test_eval_on_a_folder(server: PlaygroundServer, tmp_path: Path) -> None:
    pytest.importorskip("sacrebleu", reason="the evaluation needs gpt-lsp[train]")
    pytest.importorskip("rouge_score", reason="the evaluation needs gpt-lsp[train]")
    for module in (textwrap, json.decoder):
        (tmp_path / f"{module.__name__}.py").write_text(inspect.getsource(module))
    status, report = api(server, "eval", {"folder": str(tmp_path), "n": 8})
    assert status == 200, report
    summary = report["summary"]
    assert report["files"] == 2 and summary["n"] == 8
    for key in ("em", "es", "bleu", "rouge_l"):
        assert 0 <= summary[key] <= 100, key
    assert summary["es"] > 0  # the shipped model completes stdlib lines, at least in part
    assert len(report["examples"]) == 8 and all("target" in e for e in report["examples"])
    assert api(server, "eval", {"folder": str(tmp_path / "missing"), "n": 8}) == (
        400,
        {"error": f"{tmp_path / 'missing'}: not a directory"},
    )
    assert "n must be between 1 and 500" in api(server, "eval", {"folder": str(tmp_path), "n": 0})[1]["error"]


def test_command_prints_a_tokened_loopback_url() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gpt_lsp", "playground"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("gpt-lsp playground: open http://127.0.0.1:"), line
        url = line.split("open ", 1)[1].strip()
        port, token = url.removeprefix("http://127.0.0.1:").rstrip("/").split("/")
        assert len(token) >= 32
        conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
        conn.request("GET", f"/{token}/")
        assert conn.getresponse().status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    bad = subprocess.run(
        [sys.executable, "-m", "gpt_lsp", "playground", "--model", "/no/such/model"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "gpt-lsp playground: /no/such/model: not a directory" in bad.stderr


def test_playground_imports_no_torch() -> None:
    code = "import sys, gpt_lsp.cli, gpt_lsp.tools.playground_http; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
