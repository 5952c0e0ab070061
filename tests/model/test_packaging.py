"""A non-editable install carries the shipped model: build the wheel and look inside."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_contains_the_default_model_and_no_torch_dependency(tmp_path):
    if not (ROOT / "model" / "default" / "gpt-lsp.json").is_file():
        pytest.skip("no default model shipped in model/default yet")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("gpt_lsp-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = zf.read(next(n for n in names if n.endswith("METADATA"))).decode()
    for name in ("gpt-lsp.json", "tokenizer.json", "model.int8.onnx", "checkpoint/model.safetensors"):
        assert f"gpt_lsp/model/default/{name}" in names, name
    assert "gpt_lsp/model/MODEL.md" in names
    for name in ("index.html", "playground.js", "playground.css"):  # the playground page
        assert f"gpt_lsp/tools/web/{name}" in names, name
    runtime = [
        line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    assert runtime and not any("torch" in line for line in runtime)
