"""Exact completions over LSP from a real ONNX graph whose answer is known (tests/editors/fixed_model.py):
ghost text content and range, list items, typing-through without a new decode, and the cache."""

from __future__ import annotations

import pytest
from editors.fixed_model import WORD, build_fixed_model_dir
from lsprotocol import types as lsp

from .conftest import open_doc, start_client


@pytest.fixture(scope="module")
def fixed_model(tiny_tokenizer, tmp_path_factory):
    pytest.importorskip("torch")
    return build_fixed_model_dir(tmp_path_factory.mktemp("fixed") / "model", tiny_tokenizer)


def inline(uri: str, line: int, character: int) -> lsp.InlineCompletionParams:
    return lsp.InlineCompletionParams(
        context=lsp.InlineCompletionContext(trigger_kind=lsp.InlineCompletionTriggerKind.Automatic),
        text_document=lsp.TextDocumentIdentifier(uri),
        position=lsp.Position(line, character),
    )


async def test_ghost_text_is_the_models_answer_at_the_cursor(fixed_model):
    client = await start_client(fixed_model)
    try:
        uri = "file:///w/exact.py"
        open_doc(client, uri, "import os\nvalue = \n")
        await client.status_log.wait_for(lambda s: s["state"] == "ready")
        result = await client.text_document_inline_completion_async(inline(uri, 1, 8))
        [item] = result.items
        assert item.insert_text == WORD
        assert (
            (item.range.start.line, item.range.start.character)
            == (1, 8)
            == (item.range.end.line, item.range.end.character)
        )

        listed = await client.text_document_completion_async(
            lsp.CompletionParams(lsp.TextDocumentIdentifier(uri), lsp.Position(1, 8))
        )
        [entry] = listed.items
        assert entry.text_edit.new_text == WORD and entry.filter_text == WORD

        # The user types the first two letters of the suggestion: the rest comes back without a decode.
        client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                lsp.VersionedTextDocumentIdentifier(version=2, uri=uri),
                [
                    lsp.TextDocumentContentChangePartial(
                        lsp.Range(lsp.Position(1, 8), lsp.Position(1, 8)), WORD[:2]
                    )
                ],
            )
        )
        result = await client.text_document_inline_completion_async(inline(uri, 1, 10))
        [item] = result.items
        assert item.insert_text == WORD[2:]
        assert (item.range.start.character, item.range.end.character) == (10, 10)
        await client.status_log.wait_for(lambda s: s["uri"] == uri and s["reason"] == "typing-through")
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_closing_characters_after_the_cursor_are_kept_once(fixed_model):
    client = await start_client(fixed_model)
    try:
        uri = "file:///w/call.py"
        open_doc(client, uri, "print()\n")
        await client.status_log.wait_for(lambda s: s["state"] == "ready")
        result = await client.text_document_inline_completion_async(inline(uri, 0, 6))
        [item] = result.items
        # The model says WORD (no `)`), so the existing `)` stays and is not replaced.
        assert item.insert_text == WORD and item.range.end.character == 6
    finally:
        await client.shutdown_session()
        await client.stop()
