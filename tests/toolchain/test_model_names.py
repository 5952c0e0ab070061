"""Every command that takes a model takes it the way `--model` does: a folder, a GGUF file or a name.

Runs the real command line on the small shipped model (`default`), in a private cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gpt_lsp.inference.model_dir import CONFIG_NAME, TOKENIZER_NAME, default_model_path

SOURCE = '''
def total(items, start=0):
    """Sum of the items' prices, counted from start."""
    result = start
    for item in items:
        if item.price > 0 and item.count >= 1:
            result = result + item.price * item.count
    return result


def largest(values):
    best = None
    for value in values:
        if best is None or value > best:
            best = value
    return best
'''


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Held-out Python files and a cache holding one model under a name (`cached`)."""
    root = tmp_path_factory.mktemp("names")
    (root / "src").mkdir()
    for n in range(3):
        (root / "src" / f"m{n}.py").write_text(SOURCE * 3)
    cached = root / "cache" / "models" / "cached"
    cached.mkdir(parents=True)
    shipped = default_model_path()
    for name in (CONFIG_NAME, TOKENIZER_NAME, "model.int8.onnx"):
        shutil.copy(shipped / name, cached / name)
    return root


def gpt_lsp(workspace: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GPT_LSP_CACHE": str(workspace / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "gpt_lsp", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=workspace,
        timeout=180,
    )


@pytest.mark.parametrize("name", ["default", "tiny", "cached"])
def test_eval_takes_a_model_name(workspace: Path, name: str) -> None:
    out = workspace / f"eval-{name}.json"
    result = gpt_lsp(
        workspace,
        *("eval", name, "src", "--all-files", "--n", "2", "--lm-tokens", "200", "--max-tokens", "4"),
        *("--json", str(out)),
    )
    assert result.returncode == 0, result.stderr
    expected = default_model_path() if name != "cached" else workspace / "cache" / "models" / "cached"
    assert Path(json.loads(out.read_text())["model"]) == expected


def test_eval_compares_against_a_named_model(workspace: Path) -> None:
    out = workspace / "compare.json"
    result = gpt_lsp(
        workspace,
        *("eval", "default", "src", "--compare", "cached", "--all-files", "--n", "2", "--lm-tokens", "200"),
        *("--max-tokens", "4", "--json", str(out)),
    )
    assert result.returncode == 0, result.stderr
    assert [Path(r["model"]).name for r in json.loads(out.read_text())] == ["default", "cached"]


def test_bench_takes_a_model_name(workspace: Path) -> None:
    result = gpt_lsp(workspace, "bench", "tiny", "--keystrokes", "3")
    assert result.returncode == 0, result.stderr
    assert f"model: {default_model_path()}" in result.stdout


def test_hint_bench_takes_the_model_as_eval_does(workspace: Path) -> None:
    out = workspace / "hints.json"
    argv = ("--files", "src/m0.py", "--per-kind", "1", "--json", str(out))
    result = gpt_lsp(workspace, "hint-bench", "cached", *argv)
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["model"] == str(workspace / "cache" / "models" / "cached")
    top_level = gpt_lsp(workspace, "--model", "default", "hint-bench", *argv)
    assert top_level.returncode == 0, top_level.stderr
    assert json.loads(out.read_text())["model"] == str(default_model_path())


@pytest.mark.parametrize("command", ["bench", "hint-bench", "eval"])
def test_a_model_that_is_not_there_stays_an_error(workspace: Path, command: str) -> None:
    result = gpt_lsp(
        workspace, command, "/nonexistent", *(["src", "--all-files"] if command == "eval" else [])
    )
    assert result.returncode == (1 if command == "eval" else 2)
    assert result.stderr.strip() == (
        f"gpt-lsp {command}: error: /nonexistent: not a directory; expected a model directory "
        "(gpt-lsp.json, tokenizer.json, model.onnx)"
    )


@pytest.mark.parametrize("command", ["bench", "hint-bench", "eval"])
def test_a_file_that_is_no_gguf_is_named_as_such(workspace: Path, command: str) -> None:
    (workspace / "notes.txt").write_text("not a model")
    result = gpt_lsp(workspace, command, "notes.txt", *(["src", "--all-files"] if command == "eval" else []))
    assert result.returncode != 0
    assert "notes.txt: neither a model directory nor a GGUF file" in result.stderr


@pytest.mark.slow
def test_finetune_takes_a_model_name_as_base(workspace: Path) -> None:
    pytest.importorskip("torch")
    out = workspace / "ft-tiny"
    argv = ("finetune", "tiny", "src", "--out", str(out), "--max-steps", "1", "--batch-size", "1")
    result = gpt_lsp(workspace, *argv, "--no-export")
    assert result.returncode == 0, result.stderr
    state = json.loads((out / "checkpoint" / "trainer.json").read_text())
    assert state["base"] == str((default_model_path() / "checkpoint").resolve()) and state["step"] == 1


def test_finetune_names_a_base_it_cannot_find(workspace: Path) -> None:
    result = gpt_lsp(workspace, "finetune", "no-such-model", "src", "--out", str(workspace / "ft-none"))
    assert result.returncode == 2
    assert "no-such-model: no config.json" in result.stderr
