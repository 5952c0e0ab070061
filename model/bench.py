"""`gpt-lsp bench`: latency figures through the real server, as an editor sees them.

Starts `gpt-lsp --stdio` as a subprocess, replays a typing trace (one character per keystroke,
an inline completion request after each), and reports completion latency p50/p95, the p95 of a
trivial request sent while a decode runs (RELIABILITY.md #15: the event loop must not block),
and the server's RSS growth. With `--compare-variants` it runs fp32 and int8 in the same process
and prints their ratio, since the machine is shared and only same-run ratios are comparable.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpt_lsp.model.metrics import percentile

TRACE = """import os
import sys


def read_lines(path):
    with open(path) as handle:
        return [line.rstrip() for line in handle]


def main(argv):
    total = 0
    for name in argv[1:]:
        lines = read_lines(name)
        total += len(lines)
        print(name, len(lines))
    return total
"""


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0


async def bench_server(
    model_dir: Path | None,
    variant: str,
    keystrokes: int,
    options: dict | None = None,
    before_request: Callable[[int], None] | None = None,
    after_request: Callable[[int, Any], None] | None = None,
) -> dict[str, Any]:
    """`before_request(i)` runs after keystroke i is sent and before its completion is timed;
    `after_request(i, result)` gets the completion's result."""
    from lsprotocol import types as lsp
    from pygls.lsp.client import LanguageClient

    client = LanguageClient("gpt-lsp-bench", "0.1")
    ready = asyncio.Event()
    client.feature("gpt-lsp/status")(lambda p: ready.set() if p.state in ("ready", "error") else None)
    model_args = ["--model", str(model_dir)] if model_dir else []
    await client.start_io(sys.executable, "-m", "gpt_lsp", "--stdio", *model_args)
    pid = client._server.pid  # type: ignore[attr-defined]
    options = options or {"model": {"variant": variant}, "generation": {"timeoutMs": 2000}}
    await client.initialize_async(
        lsp.InitializeParams(capabilities=lsp.ClientCapabilities(), initialization_options=options)
    )
    client.initialized(lsp.InitializedParams())
    await asyncio.wait_for(ready.wait(), 60)
    uri = "file:///bench/trace.py"
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "python", 0, "")))
    completion_ms: list[float] = []
    trivial_ms: list[float] = []
    rss_start = _rss_kb(pid)
    line, col = 0, 0
    for version, ch in enumerate(TRACE[:keystrokes] if keystrokes else TRACE, start=1):
        client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                lsp.VersionedTextDocumentIdentifier(version=version, uri=uri),
                [
                    lsp.TextDocumentContentChangePartial(
                        lsp.Range(lsp.Position(line, col), lsp.Position(line, col)), ch
                    )
                ],
            )
        )
        line, col = (line + 1, 0) if ch == "\n" else (line, col + 1)
        if before_request is not None:
            before_request(version - 1)
        params = lsp.InlineCompletionParams(
            context=lsp.InlineCompletionContext(trigger_kind=lsp.InlineCompletionTriggerKind.Automatic),
            text_document=lsp.TextDocumentIdentifier(uri),
            position=lsp.Position(line, col),
        )
        start = time.perf_counter()
        pending = asyncio.ensure_future(client.text_document_inline_completion_async(params))
        trivial_start = time.perf_counter()
        await client.workspace_execute_command_async(lsp.ExecuteCommandParams("gpt-lsp.status"))
        trivial_ms.append((time.perf_counter() - trivial_start) * 1000)
        result = await pending
        completion_ms.append((time.perf_counter() - start) * 1000)
        if after_request is not None:
            after_request(version - 1, result)
    rss_end = _rss_kb(pid)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return {
        "variant": variant,
        "requests": len(completion_ms),
        "completion_p50_ms": percentile(completion_ms, 0.5),
        "completion_p95_ms": percentile(completion_ms, 0.95),
        "completion_ms": completion_ms,
        "trivial_p95_ms": percentile(trivial_ms, 0.95),
        "rss_growth_mb": (rss_end - rss_start) / 1024,
    }


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench", help="latency through the real server on a replayed typing trace", description=__doc__
    )
    p.add_argument("model_dir", type=Path, metavar="MODEL_DIR", nargs="?", help="for --backend local")
    p.add_argument(
        "--keystrokes", type=int, default=0, help="replay only this many characters (0 = the whole trace)"
    )
    p.add_argument(
        "--compare-variants", action="store_true", help="run fp32 and int8 in one process and print the ratio"
    )
    from gpt_lsp.model import bench_remote

    bench_remote.add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.backend == "openai":
        from gpt_lsp.model import bench_remote

        return bench_remote.run(args)
    if args.model_dir is None:
        raise SystemExit("gpt-lsp bench: MODEL_DIR is needed for --backend local")
    variants = ["fp32", "int8"] if args.compare_variants else ["auto"]
    results = [asyncio.run(bench_server(args.model_dir, v, args.keystrokes)) for v in variants]
    print(f"cpu cores: {os.cpu_count()}, model: {args.model_dir}")
    for r in results:
        print(
            f"{r['variant']:>5}: {r['requests']} completions, p50 {r['completion_p50_ms']:.1f} ms, "
            f"p95 {r['completion_p95_ms']:.1f} ms; trivial request during decode p95 {r['trivial_p95_ms']:.1f} ms; "
            f"RSS growth {r['rss_growth_mb']:.1f} MB"
        )
    if len(results) == 2:
        print(
            f"int8 / fp32 completion p50 ratio: {results[1]['completion_p50_ms'] / results[0]['completion_p50_ms']:.2f}"
        )
    return 0
