"""A model that cannot serve, through the real server over stdio: bad settings are caught at load, a
graph that fails mid-decode answers without a suggestion (never -32603 per keystroke), repeated
failures turn AI features off with one window/showMessage, and a fixed model brings them back.

Every model here is a copy of the shipped one (model/default), edited: no torch needed.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from lsprotocol import types as lsp

from gpt_lsp.inference.model_dir import CONFIG_NAME, default_model_path

from .conftest import open_doc, server_command, start_client

URI = "file:///work/faults.py"
# About 40 tokens before the cursor (line 6, after "return "): longer than FAILS_ABOVE_TOKENS.
SOURCE = "import os\n\n\ndef read(path):\n    with open(path) as f:\n        data = f.read()\n    return \n"
FAILS_ABOVE_TOKENS = 16


def copy_model(target: Path, **config) -> Path:
    """The shipped model directory (without its training checkpoint), with `config` keys replaced."""
    source = default_model_path()
    target.mkdir(parents=True)
    for name in (CONFIG_NAME, "tokenizer.json", "model.int8.onnx"):
        shutil.copy(source / name, target / name)
    if config:
        write_config(target, **config)
    return target


def write_config(model: Path, **changes) -> None:
    raw = json.loads((default_model_path() / CONFIG_NAME).read_text())
    (model / CONFIG_NAME).write_text(json.dumps(raw | changes))


def fail_on_long_prompts(model: Path) -> None:
    """Rewrite the graph so that a forward pass over more than FAILS_ABOVE_TOKENS tokens fails inside
    ONNX Runtime (a Gather out of bounds): loading, the warm-up and one-token steps still run."""
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    path = model / "model.int8.onnx"
    graph_model = onnx.load(path)
    graph = graph_model.graph
    for node in graph.node:
        node.output[:] = ["logits_unchecked" if name == "logits" else name for name in node.output]
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(1, dtype=np.int64), "sequence_axis"),
            numpy_helper.from_array(np.zeros(FAILS_ABOVE_TOKENS + 1, dtype=np.float32), "allowed_lengths"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Shape", ["input_ids"], ["ids_shape"]),
            helper.make_node("Gather", ["ids_shape", "sequence_axis"], ["ids_length"]),
            helper.make_node("Gather", ["allowed_lengths", "ids_length"], ["length_checked"]),
            helper.make_node("Add", ["logits_unchecked", "length_checked"], ["logits"]),
        ]
    )
    onnx.save(graph_model, path)


def completion_params(line: int = 6, character: int = 11) -> lsp.CompletionParams:
    return lsp.CompletionParams(lsp.TextDocumentIdentifier(URI), lsp.Position(line, character))


def popups(client) -> list[str]:
    """window/showMessage errors (a snippet command also reports its own outcome, as Info)."""
    return [m.message for m in client.messages if m.type == lsp.MessageType.Error]


async def complete_without_suggestion(client, times: int) -> None:
    """Each request is answered (a JSON-RPC error would raise here) with no items."""
    for _ in range(times):
        result = await client.text_document_completion_async(completion_params())
        assert result is not None and len(result.items) == 0


async def switch_to_shipped_model_and_complete(client) -> None:
    client.status_log.items.clear()
    settings = {"gptLsp": {"model": {"path": str(default_model_path())}}}
    client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings=settings))
    await client.status_log.wait_for(lambda s: s["state"] == "ready" and "ready" in s["reason"])
    result = await client.text_document_completion_async(completion_params())
    assert result.items, "the shipped model suggests something after `return `"


@pytest.fixture
async def stop_after():
    clients = []
    yield clients.append
    for c in clients:
        await c.shutdown_session()
        await c.stop()


async def test_context_length_beyond_the_graph_is_refused_at_load_with_one_popup(tmp_path, stop_after):
    c = await start_client(copy_model(tmp_path / "long", context_length=512))
    stop_after(c)
    status = await c.status_log.wait_for(lambda s: s["state"] == "error")
    assert "context_length 512 is more than the model runs (256 positions" in status["reason"]
    assert "set context_length to 256 or less" in status["reason"]
    open_doc(c, URI, SOURCE)
    await complete_without_suggestion(c, 5)
    assert len(popups(c)) == 1 and "context_length 512" in popups(c)[0]
    assert any("context_length 512" in m.message for m in c.log_messages)
    await switch_to_shipped_model_and_complete(c)
    assert len(popups(c)) == 1


@pytest.mark.parametrize("length", [-1, 0])
async def test_non_positive_context_length_is_an_error_until_the_file_is_fixed(tmp_path, stop_after, length):
    model = copy_model(tmp_path / "negative", context_length=length)
    c = await start_client(model)
    stop_after(c)
    status = await c.status_log.wait_for(lambda s: s["state"] == "error")
    assert f"context_length must be a positive number of tokens, not {length}" in status["reason"]
    open_doc(c, URI, SOURCE)
    await complete_without_suggestion(c, 3)
    assert len(popups(c)) == 1
    # Fixing gpt-lsp.json on disk is enough: the next request notices and loads the model again.
    write_config(model, context_length=256)
    c.status_log.items.clear()
    await c.text_document_completion_async(completion_params())
    await c.status_log.wait_for(lambda s: s["state"] == "ready")
    result = await c.text_document_completion_async(completion_params())
    assert result.items
    assert len(popups(c)) == 1


async def test_repeated_decode_failures_turn_ai_off_once_and_a_good_model_brings_it_back(
    tmp_path, stop_after
):
    model = copy_model(tmp_path / "fails")
    fail_on_long_prompts(model)
    c = await start_client(model)
    stop_after(c)
    await c.status_log.wait_for(lambda s: s["state"] == "ready")
    open_doc(c, URI, SOURCE)

    await complete_without_suggestion(c, 1)
    first = await c.status_log.wait_for(lambda s: s["state"] == "error")
    assert "failed to decode (1 of 3" in first["reason"] and "Gather" in first["reason"]
    assert "[ONNXRuntimeError]" not in first["reason"]
    assert popups(c) == []  # one failure is one empty answer, not a popup

    # Snippet commands decode through the same path: an answer that says so, not -32603.
    block = lsp.ExecuteCommandParams("gpt-lsp.completeBlock", [URI, 6, 11, 1])
    result = await c.workspace_execute_command_async(block)
    assert (
        result["applied"] is False
        and result["message"] == "the model failed to decode; nothing was generated"
    )
    await c.status_log.wait_for(lambda s: "failed to decode (2 of 3" in s["reason"])

    await complete_without_suggestion(c, 1)
    off = await c.status_log.wait_for(lambda s: "failed 3 decodes in a row" in s["reason"])
    assert off["state"] == "error"
    await complete_without_suggestion(c, 4)  # answered at once: AI is off, nothing decodes
    status = await c.workspace_execute_command_async(lsp.ExecuteCommandParams("gpt-lsp.status"))
    assert status["state"] == "error" and "failed 3 decodes in a row" in status["modelError"]
    await asyncio.sleep(0.3)
    assert len(popups(c)) == 1 and "AI features are off" in popups(c)[0]
    warnings = [m.message for m in c.log_messages if "failed to decode" in m.message]
    assert len(warnings) == 2  # failures 1 and 2; the third is the popup (and its log line)

    await switch_to_shipped_model_and_complete(c)
    assert len(popups(c)) == 1


async def test_missing_model_directory_is_one_popup_and_one_stderr_line(tmp_path, stop_after):
    missing = tmp_path / "no-such-model"
    c = await start_client(missing)
    stop_after(c)
    await c.status_log.wait_for(lambda s: s["state"] == "error")
    open_doc(c, URI, SOURCE)
    await complete_without_suggestion(c, 3)
    assert len(popups(c)) == 1 and f"{missing}: not a directory" in popups(c)[0]

    proc = subprocess.run(server_command(missing), input=b"", capture_output=True, timeout=30)
    lines = proc.stderr.decode().strip().splitlines()
    assert lines == [
        f"gpt-lsp: model unavailable: {missing}: not a directory; expected a model directory "
        "(gpt-lsp.json, tokenizer.json, model.onnx); serving without AI features"
    ]
    assert proc.stdout == b""


def move_weights_out(model: Path, case: str) -> None:
    """Store the graph's weights as external data: beside it ("inside"), or reached through `..`,
    an absolute path or a symlink that leads out of the model directory."""
    onnx = pytest.importorskip("onnx")
    path = model / "model.int8.onnx"
    graph_model = onnx.load(path)
    onnx.save(graph_model, path, save_as_external_data=True, location="weights.data", size_threshold=0)
    if case == "inside":
        return
    outside = model.parent / "outside"
    outside.mkdir()
    (model / "weights.data").rename(outside / "weights.data")
    location = {"dotdot": "../outside/weights.data", "absolute": str(outside / "weights.data")}.get(case)
    if location is None:  # symlink: a plain name, but the file it names lies elsewhere
        (model / "weights.data").symlink_to(outside / "weights.data")
        return
    graph_model = onnx.load(path, load_external_data=False)
    for tensor in graph_model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save(graph_model, path)


@pytest.mark.parametrize("case", ["dotdot", "absolute", "symlink"])
async def test_external_data_outside_the_model_directory_is_refused(tmp_path, stop_after, case):
    model = copy_model(tmp_path / "model")
    move_weights_out(model, case)
    c = await start_client(model)
    stop_after(c)
    status = await c.status_log.wait_for(lambda s: s["state"] == "error")
    expected = "outside the model directory" if case == "symlink" else "must be a relative path inside"
    assert expected in status["reason"]
    assert len(popups(c)) == 1 and expected in popups(c)[0]


async def test_external_data_inside_the_model_directory_serves(tmp_path, stop_after):
    model = copy_model(tmp_path / "model")
    move_weights_out(model, "inside")
    c = await start_client(model)
    stop_after(c)
    await c.status_log.wait_for(lambda s: s["state"] == "ready")
    open_doc(c, URI, SOURCE)
    result = await c.text_document_completion_async(completion_params())
    assert result.items and popups(c) == []
