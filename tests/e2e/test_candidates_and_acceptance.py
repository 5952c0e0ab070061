"""Several inline candidates and the local acceptance counter, through a real `gpt-lsp --stdio`
serving the shipped model: the setting's default answers one item, 3 answers the same greedy item
first and sampled alternatives after it; accepting an item (its command, run as a client runs it)
is counted in `gpt-lsp.status` and written to the cache on shutdown."""

from __future__ import annotations

import json

import pytest
from lsprotocol import types as lsp

from gpt_lsp.inference.model_dir import default_model_path

from .conftest import open_doc, start_client

TEXT = "import numpy as np\nx = np.\n"
AT = (1, 7)


def inline(uri: str) -> lsp.InlineCompletionParams:
    return lsp.InlineCompletionParams(
        context=lsp.InlineCompletionContext(trigger_kind=lsp.InlineCompletionTriggerKind.Invoked),
        text_document=lsp.TextDocumentIdentifier(uri),
        position=lsp.Position(*AT),
    )


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache of this test's own, inherited by the server it starts."""
    monkeypatch.setenv("GPT_LSP_CACHE", str(tmp_path))
    return tmp_path


async def _ready_client(options: dict | None = None):
    client = await start_client(default_model_path(), None, options)
    await client.status_log.wait_for(lambda s: s["state"] in ("ready", "error"))
    return client


async def _status(client) -> dict:
    return await client.workspace_execute_command_async(lsp.ExecuteCommandParams("gpt-lsp.status"))


async def test_one_candidate_by_default_and_the_greedy_one_first_of_three(cache):
    client = await _ready_client()
    try:
        uri = "file:///w/cand.py"
        open_doc(client, uri, TEXT)
        single = await client.text_document_inline_completion_async(inline(uri))
        assert single is not None and len(single.items) == 1
        greedy = single.items[0].insert_text

        client.workspace_did_change_configuration(
            lsp.DidChangeConfigurationParams(settings={"inlineCompletion": {"candidates": 3}})
        )
        # The extra candidates are sampled: a draw may repeat the greedy text (dropped as a duplicate),
        # so ask up to three times for an answer with alternatives.
        for _ in range(3):
            several = await client.text_document_inline_completion_async(inline(uri))
            texts = [item.insert_text for item in several.items]
            if len(texts) > 1:
                break
        assert 1 < len(texts) <= 3 and len(set(texts)) == len(texts), texts
        assert texts[0] == greedy
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_an_accepted_item_is_counted_locally(cache):
    client = await _ready_client()
    try:
        uri = "file:///w/accept.py"
        open_doc(client, uri, TEXT)
        result = await client.text_document_inline_completion_async(inline(uri))
        [item] = result.items
        assert item.command is not None and item.command.command == "gpt-lsp.accepted"
        assert item.command.arguments[0]["language"] == "python"
        before = await _status(client)
        assert before["acceptance"] == [
            {"model": "default", "language": "python", "shown": 1, "accepted": 0, "partial": 0, "rate": 0.0}
        ]

        # What a client does when the user accepts the item: run its command.
        counted = await client.workspace_execute_command_async(
            lsp.ExecuteCommandParams(item.command.command, item.command.arguments)
        )
        assert counted is True
        # An editor extension reporting a partial acceptance of the same answer.
        partial = dict(item.command.arguments[0], partial=True)
        assert await client.workspace_execute_command_async(
            lsp.ExecuteCommandParams("gpt-lsp.accepted", [partial])
        )
        # Running the command again counts nothing more.
        assert not await client.workspace_execute_command_async(
            lsp.ExecuteCommandParams(item.command.command, item.command.arguments)
        )
        [row] = (await _status(client))["acceptance"]
        assert (row["shown"], row["accepted"], row["partial"], row["rate"]) == (1, 1, 1, 1.0)
    finally:
        await client.shutdown_session()
        await client.stop()
    saved = json.loads((cache / "acceptance.json").read_text())
    assert [(r["model"], r["language"], r["shown"], r["accepted"]) for r in saved["counts"]] == [
        ("default", "python", 1, 1)
    ]
