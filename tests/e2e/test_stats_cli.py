"""`gpt-lsp stats` (server/tools/stats.py) in a subprocess, reading a prepared counts file."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _stats(*args: str, env_cache) -> subprocess.CompletedProcess:
    env = dict(os.environ, GPT_LSP_CACHE=str(env_cache))
    return subprocess.run(
        [sys.executable, "-m", "gpt_lsp.tools.stats", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


COUNTS = {
    "format": 1,
    "counts": [
        {"model": "default", "language": "python", "shown": 8, "accepted": 2, "partial": 1},
        {"model": "gemma-code", "language": "go", "shown": 0, "accepted": 0, "partial": 0},
    ],
}


def test_the_table_and_json_read_the_cache_file(tmp_path):
    (tmp_path / "acceptance.json").write_text(json.dumps(COUNTS))
    table = _stats(env_cache=tmp_path)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["model", "language", "shown", "accepted", "partial", "rate"]
    assert lines[1].split() == ["default", "python", "8", "2", "1", "25%"]
    assert lines[2].split() == ["gemma-code", "go", "0", "0", "0", "-"]
    assert "never uploaded" in lines[3]

    as_json = _stats("--json", env_cache=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["file"] == str(tmp_path / "acceptance.json")
    assert report["counts"][0] == {
        "model": "default",
        "language": "python",
        "shown": 8,
        "accepted": 2,
        "partial": 1,
        "rate": 0.25,
    }


def test_no_file_yet_and_a_corrupt_file(tmp_path):
    empty = _stats(env_cache=tmp_path)
    assert empty.returncode == 0 and "no inline completions counted yet" in empty.stdout
    (tmp_path / "acceptance.json").write_text("[1, 2")
    corrupt = _stats("--json", env_cache=tmp_path)
    assert corrupt.returncode == 2 and "not readable" in corrupt.stderr
    assert (tmp_path / "acceptance.json").read_text() == "[1, 2"  # reading never moves the file
