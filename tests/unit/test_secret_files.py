"""Secret-bearing files are never completed in, and secrets never reach a prompt (RELIABILITY.md #21)."""

import pytest

from gpt_lsp.documents import DocumentStore, Position
from gpt_lsp.pipeline import Pipeline
from gpt_lsp.session import is_secret_file
from gpt_lsp.settings import GenerationSettings

from .test_pipeline import ScriptedEngine


@pytest.mark.parametrize("name", [".env", ".env.local", "server.pem", "id_rsa", "id_ed25519.pub", "tls.key"])
def test_secret_files_are_recognised(name):
    assert is_secret_file(f"file:///home/u/project/{name}")


@pytest.mark.parametrize("name", ["env.py", "keys.py", "README.md", "pem_utils.go", "environment.ts"])
def test_ordinary_files_are_not(name):
    assert not is_secret_file(f"file:///home/u/project/{name}")


def test_a_secret_in_the_code_never_reaches_the_model():
    key = "AKIA" + "IOSFODNN7EXAMPLE"
    doc = DocumentStore().open("file:///p/cfg.py", "python", 1, f'AWS_KEY = "{key}"\nclient = make(\n')
    engine = ScriptedEngine("AWS_KEY)")
    Pipeline(engine, GenerationSettings()).complete(doc, Position(1, 14))
    prompt_text = engine.decode(engine.calls[0][0])
    assert key not in prompt_text and "redacted" in prompt_text
