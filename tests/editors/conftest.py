"""Fixtures for the real-editor tests: the server command, a tiny model, a document it completes."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from .fixed_model import WORD, build_fixed_model_dir
from .lsp_probe import Candidate, pick_candidate

REPO = Path(__file__).resolve().parents[2]
EDITORS = REPO / "editors"


def _server() -> str | None:
    here = Path(sys.executable).parent / "gpt-lsp"
    if here.exists():
        return str(here)
    return shutil.which("gpt-lsp")


@pytest.fixture(scope="session")
def gpt_lsp_server() -> str:
    server = _server()
    if server is None:
        pytest.skip("the gpt-lsp console script is not installed (pip install -e .)")
    return server


@pytest.fixture(scope="session")
def editor_model_dir(tiny_tokenizer, tmp_path_factory) -> Path:  # noqa: ANN001 - tiny_tokenizer: tests/conftest.py
    """A tiny exported model whose every suggestion is exactly EXPECTED_TEXT (see fixed_model.py)."""
    pytest.importorskip("torch", reason="building the test model needs torch (pip install -e '.[train]')")
    pytest.importorskip(
        "transformers", reason="building the test model needs transformers (pip install -e '.[train]')"
    )
    return build_fixed_model_dir(tmp_path_factory.mktemp("editor-model") / "fixed", tiny_tokenizer)


EXPECTED_TEXT = WORD


@pytest.fixture(scope="session")
def completing_document(gpt_lsp_server: str, editor_model_dir: Path, tmp_path_factory) -> Candidate:  # noqa: ANN001
    """A document (text; cursor at the end) for which the server, asked directly, returns items."""
    cand, tried = pick_candidate(gpt_lsp_server, editor_model_dir, tmp_path_factory.mktemp("probe"))
    assert cand is not None, "the server completes none of the candidate documents:\n" + "\n".join(tried)
    return cand


def editor_env(**extra: str) -> dict[str, str]:
    """Environment for an editor process: the venv's bin first on PATH, no user config."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env
