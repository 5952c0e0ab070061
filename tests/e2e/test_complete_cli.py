"""`gpt-lsp complete` end to end: a real subprocess, the shipped model, real ONNX inference."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpt_lsp.tools.demo import SAMPLE


def run_complete(*args: str, env_path: str | None = None) -> subprocess.CompletedProcess:
    env = None if env_path is None else {**os.environ, "PYTHONPATH": env_path}
    return subprocess.run(
        [sys.executable, "-m", "gpt_lsp", "complete", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.fixture
def demo_file(tmp_path: Path) -> Path:
    path = tmp_path / "files.py"
    path.write_text(SAMPLE)
    return path


def demo_target(path: Path) -> str:
    # The demo's cursor: the end of its last line (14 lines, the last one indentation only).
    return f"{path}:{SAMPLE.count(chr(10)) + 1}:{len(SAMPLE.rsplit(chr(10), 1)[-1]) + 1}"


def test_text_report_matches_what_the_editor_gets(demo_file: Path) -> None:
    result = run_complete(demo_target(demo_file))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{demo_file}:14:13  python  context: block (blank line in an empty block)"
    assert "stop: stop_rule" in lines[2] and lines[2].startswith("latency: ")
    # The shipped model is greedy and deterministic; `make demo` (real LSP) shows the same text.
    assert lines[3:6] == ["--- completion at 14:13 ---", "return None", "---"]


def test_json_explain_shows_prompt_and_token_odds(demo_file: Path) -> None:
    result = run_complete(demo_target(demo_file), "--json", "--explain")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["context_kind"] == "block"
    assert report["stop_reason"] == "stop_rule"
    assert [c["text"] for c in report["completions"]] == ["return None"]
    assert set(report["timings_ms"]) == {"context", "redact", "related", "prompt", "decode", "postprocess"}
    ex = report["explain"]
    prompt = "".join(t["text"] for t in ex["prompt_tokens"] if not t["sentinel"])
    assert prompt == SAMPLE  # the whole file fits the budget: nothing cut, nothing redacted
    assert len(ex["prompt_tokens"]) <= ex["budget_tokens"]
    assert ex["cut"]["prefix_chars_cut_for_budget"] == 0 and ex["redacted"] == {}
    decoded = ex["decoded"]
    kept = "".join(step["text"] for step in decoded if step["in_completion"])
    assert kept.strip() == "return None"
    for step in decoded:
        assert 0 < step["prob"] <= 1
        odds = [step["prob"]] + [a["prob"] for a in step["alternatives"]]
        assert odds == sorted(odds, reverse=True)  # greedy: the chosen token is the likeliest


def test_explain_reports_redaction_and_token_healing(tmp_path: Path) -> None:
    path = tmp_path / "users.py"
    path.write_text('import os\npassword = "hunter2xyz"\ndef get_user_name(user):\n    return user.na\n')
    result = run_complete(f"{path}:4", "--explain")  # FILE:LINE completes at the end of the line
    assert "hunter2xyz" not in result.stdout.split("=== prompt")[1]
    assert 'password = "<redacted:password>"' in result.stdout
    assert "redacted: 1 password" in result.stdout
    assert "token healing: 'a'" in result.stdout


def test_works_without_torch(demo_file: Path, tmp_path: Path) -> None:
    """A server-only install has no torch: make importing it fail and run the command anyway."""
    blocker = tmp_path / "no_torch"
    blocker.mkdir()
    (blocker / "torch.py").write_text("raise ImportError('torch is not installed')\n")
    result = run_complete(demo_target(demo_file), env_path=str(blocker))
    assert result.returncode == 0, result.stderr
    assert "return None" in result.stdout


def test_gated_position_and_bad_target(demo_file: Path) -> None:
    comment = demo_file.parent / "comment.py"
    comment.write_text("# a comment about nothing\n")
    result = run_complete(f"{comment}:1:5")
    assert result.returncode == 1
    assert "(no completion: gate:" in result.stdout
    result = run_complete(f"{demo_file}:99:1")
    assert result.returncode == 2 and "has 14 lines" in result.stderr
    assert run_complete("no-position.py").returncode == 2


def test_other_files_of_the_project_only_when_asked(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "shapes.py").write_text("def polygon_area(points: list) -> float:\n    return 0.0\n")
    main = tmp_path / "main.py"
    main.write_text("from shapes import polygon_area\n\nprint(polygon_")
    alone = json.loads(run_complete(f"{main}:3", "--json").stdout)
    assert alone["related"] == []
    asked = json.loads(run_complete(f"{main}:3", "--json", "--other-files", "--explain").stdout)
    assert [(p["source"], p["path"]) for p in asked["related"]] == [("definition", "shapes.py")]
    prompt = "".join(t["text"] for t in asked["explain"]["prompt_tokens"])
    assert "# From shapes.py:\n# def polygon_area(points: list) -> float:\n" in prompt
