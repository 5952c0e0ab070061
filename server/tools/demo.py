"""`make demo`: start `gpt-lsp --stdio` like an editor would and show the ghost text it returns.

This is a real LSP session over a pipe with the real server process, not a call into the pipeline,
so what it prints is what an editor would show.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

from ..inference.model_dir import ModelDirError, default_model_path, load_model_dir

SAMPLE = '''import os


def count_lines(path):
    """Return the number of lines in the file at `path`."""
    with open(path) as f:
        return len(f.readlines())


def list_python_files(directory):
    result = []
    for name in os.listdir(directory):
        if name.endswith(".py"):
            '''


MODEL_LOAD_TIMEOUT_S = 900


async def run_demo(model: str | None) -> int:
    client = LanguageClient("gpt-lsp-demo", "0.1")
    statuses: list = []
    settled = asyncio.Event()

    def on_status(params) -> None:
        statuses.append(params)
        if params.state in ("ready", "error"):
            settled.set()
        elif params.reason.startswith(("importing", "exporting", "quantizing", "loading", "checking")):
            print(f"gpt-lsp: {params.reason}", file=sys.stderr)  # a GGUF import's progress

    client.feature("gpt-lsp/status")(on_status)
    client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)(lambda params: None)
    cmd = [sys.executable, "-m", "gpt_lsp", "--stdio"] + (["--model", model] if model else [])
    await client.start_io(*cmd)
    await client.initialize_async(lsp.InitializeParams(capabilities=lsp.ClientCapabilities()))
    client.initialized(lsp.InitializedParams())
    uri = "file:///demo/files.py"
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "python", 1, SAMPLE))
    )
    # Wait for the model (a big one takes seconds; a GGUF imported on first use, minutes).
    await asyncio.wait_for(settled.wait(), MODEL_LOAD_TIMEOUT_S)
    print("--- demo file (cursor at the end) ---")
    print(SAMPLE + "\u2588")
    line = SAMPLE.count("\n")
    character = len(SAMPLE.rsplit("\n", 1)[-1])
    start = time.perf_counter()
    result = await client.text_document_inline_completion_async(
        lsp.InlineCompletionParams(
            context=lsp.InlineCompletionContext(trigger_kind=lsp.InlineCompletionTriggerKind.Invoked),
            text_document=lsp.TextDocumentIdentifier(uri),
            position=lsp.Position(line, character),
        )
    )
    ms = (time.perf_counter() - start) * 1000
    items = result.items if isinstance(result, lsp.InlineCompletionList) else (result or [])
    served = next((s.reason for s in statuses if s.state == "ready" and s.reason.startswith("model ")), "")
    print(f"--- ghost text from gpt-lsp ({ms:.0f} ms; {served or 'no model ready'}) ---")
    print(
        items[0].insert_text
        if items
        else f"(no suggestion: {statuses[-1].reason if statuses else 'no status'})"
    )
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return 0 if items else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--model",
        help="model directory, GGUF file or name (default: gemma-code when built, else the shipped model)",
    )
    args = parser.parse_args()
    try:
        # A GGUF file or a named base is imported by the server, which reports its progress.
        if not args.model or Path(args.model).is_dir():
            load_model_dir(args.model or default_model_path())
    except ModelDirError as err:
        print(f"gpt-lsp demo: {err}", file=sys.stderr)
        print(
            "No model to serve. Train one with `gpt-lsp train --preset default --data DIR --out runs/default`\n"
            "and run `make demo MODEL=runs/default/model` (see model/MODEL.md).",
            file=sys.stderr,
        )
        return 1
    return asyncio.run(run_demo(args.model))


if __name__ == "__main__":
    raise SystemExit(main())
