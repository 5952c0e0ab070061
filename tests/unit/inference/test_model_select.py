"""What `--model` accepts (server/inference/model_select.py): folders, GGUF files by magic bytes, names."""

from __future__ import annotations

import json

import pytest

from gpt_lsp.inference import model_select
from gpt_lsp.inference.model_dir import ModelDirError, default_model_path
from gpt_lsp.inference.model_select import GGUF_MAGIC, list_models, resolve_model


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT_LSP_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_folder_is_served_as_it_is(tmp_path, cache):
    assert resolve_model(tmp_path) == tmp_path


def test_names_resolve_to_the_shipped_model_or_the_cache(cache):
    assert resolve_model("default") == default_model_path()
    (cache / "models" / "mine").mkdir(parents=True)
    assert resolve_model("mine") == cache / "models" / "mine"
    assert resolve_model("no-such-model").name == "no-such-model"  # loading it says what is wrong


def test_a_file_that_is_not_gguf_is_a_clear_error(tmp_path, cache):
    (tmp_path / "model.gguf").write_bytes(b"PK\x03\x04 a zip, not a GGUF")
    with pytest.raises(ModelDirError, match="neither a model directory nor a GGUF file"):
        resolve_model(tmp_path / "model.gguf")


def test_a_gguf_blob_is_imported_once_and_then_reused(tmp_path, cache, monkeypatch):
    blob = tmp_path / "sha256-4f2a"  # Ollama's naming: no extension
    blob.write_bytes(GGUF_MAGIC + b"\x03\x00\x00\x00")
    exports = []

    def fake_export(source, partial, on_stage):
        exports.append(source)
        (partial / "gpt-lsp.json").write_text(json.dumps({"model_type": "llama"}))

    monkeypatch.setattr(model_select, "_export", fake_export)
    first = resolve_model(blob)
    assert first.parent == cache / "models" and first.name.startswith("gguf-")
    assert resolve_model(blob) == first
    assert exports == [str(blob)]


def test_a_failed_import_leaves_nothing_behind(tmp_path, cache, monkeypatch):
    blob = tmp_path / "broken"
    blob.write_bytes(GGUF_MAGIC + b"truncated")
    with pytest.raises(ModelDirError, match="cannot import"):
        resolve_model(blob)
    assert not any((cache / "models").iterdir())


def test_models_lists_the_shipped_and_cached_models(cache):
    (cache / "models" / "mine").mkdir(parents=True)
    (cache / "models" / "mine" / "gpt-lsp.json").write_text(
        json.dumps({"model_type": "qwen2", "provenance": {"source": "/models/q.gguf"}})
    )
    names = dict(list_models())
    assert "default" in names and "gemma3-270m" in names
    assert "qwen2" in names["mine"] and "/models/q.gguf" in names["mine"]


def test_no_model_named_serves_the_built_gemma_code_and_otherwise_the_small_model(tmp_path, monkeypatch):
    """The default follows what is built for the shipped adapter; a build for another adapter is ignored."""
    from gpt_lsp.inference import model_select
    from gpt_lsp.inference.model_dir import default_model_path

    monkeypatch.setenv("GPT_LSP_CACHE", str(tmp_path / "cache"))
    assert model_select.default_choice() == default_model_path()
    version = model_select._shipped_adapter_version()
    assert version is not None, "the adapter ships inside the package"
    stale = tmp_path / "cache" / "gemma-code" / "0123456789abcdef-000000000000" / "model"
    stale.mkdir(parents=True)
    (stale / "gpt-lsp.json").write_text("{}")
    assert model_select.default_choice() == default_model_path()
    built = tmp_path / "cache" / "gemma-code" / f"0123456789abcdef-{version}" / "model"
    built.mkdir(parents=True)
    (built / "gpt-lsp.json").write_text("{}")
    assert model_select.default_choice() == built
    assert model_select.resolve_model("gemma-code") == built
    assert model_select.resolve_model("tiny") == default_model_path()
