"""`gpt-lsp train` under torchrun: two CPU processes on gloo end with bitwise identical weights."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

pytestmark = pytest.mark.slow
STDLIB = Path(sysconfig.get_paths()["stdlib"])


def test_two_ranks_end_with_identical_weights(tmp_path: Path) -> None:
    """Data: json/ and logging/ from the standard library (~150 KB)."""
    data = tmp_path / "src"
    for name in ("json", "logging"):
        shutil.copytree(STDLIB / name, data / name, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "out"
    hashes = tmp_path / "weights"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "gpt_lsp", "train", "--preset", "tiny", "--data", str(data), "--out", str(out),
        "--max-steps", "6", "--no-export", "--weights-hash-file", str(hashes),
    ]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0 = Path(f"{hashes}.rank0").read_text()
    rank1 = Path(f"{hashes}.rank1").read_text()
    assert rank0 == rank1
    state = json.loads((out / "checkpoint" / "trainer.json").read_text())
    assert state["world_size"] == 2
    assert state["step"] == 6 and state["tokens"] == 6 * 4 * 64 * 2  # each step: 4 sequences per rank
    assert "2 process(es)" in result.stderr
    # Only rank 0 writes: one progress report, one throughput line.
    assert result.stderr.count("throughput:") == 1
