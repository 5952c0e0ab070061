"""`gpt-lsp bench`: latency figures through the real server, as an editor sees them.

Starts `gpt-lsp --stdio` as a subprocess, replays a typing trace (one character per keystroke,
an inline completion request after each), and reports completion latency p50/p95, the p95 of a
trivial request sent while a decode runs (the event loop must never block),
and the server's RSS growth. With `--compare-variants` it runs fp32 and int8 in the same process
and prints their ratio, since the machine is shared and only same-run ratios are comparable.
With `--peers` it first measures raw prefill and decode speed of the same model and prompt through
the engine and through HF generate, optimum and llama.cpp (model/peers.py), and prints the ratios.
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


LONG_FILE_LINES = 500


async def _first_completion_ms(client: Any) -> float:
    """The first completion after the model is ready, at the end of a 500-line file (argparse's source):
    nothing cached, a full prompt window to prefill."""
    import argparse as long_module
    import inspect

    from lsprotocol import types as lsp

    lines = inspect.getsource(long_module).splitlines(keepends=True)[:LONG_FILE_LINES]
    text = "".join(lines).rstrip() + "\n        "
    uri = "file:///bench/long.py"
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "python", 1, text)))
    params = lsp.InlineCompletionParams(
        context=lsp.InlineCompletionContext(trigger_kind=lsp.InlineCompletionTriggerKind.Invoked),
        text_document=lsp.TextDocumentIdentifier(uri),
        position=lsp.Position(text.count("\n"), len(text.rsplit("\n", 1)[-1])),
    )
    start = time.perf_counter()
    await client.text_document_inline_completion_async(params)
    return (time.perf_counter() - start) * 1000


async def bench_server(
    model_dir: Path | None,
    variant: str,
    keystrokes: int,
    options: dict | None = None,
    before_request: Callable[[int], None] | None = None,
    after_request: Callable[[int, Any], None] | None = None,
    threads: int = 0,
) -> dict[str, Any]:
    """`before_request(i)` runs after keystroke i is sent and before its completion is timed;
    `after_request(i, result)` gets the completion's result."""
    from lsprotocol import types as lsp
    from pygls.lsp.client import LanguageClient

    client = LanguageClient("gpt-lsp-bench", "0.1")
    ready = asyncio.Event()
    client.feature("gpt-lsp/status")(lambda p: ready.set() if p.state in ("ready", "error") else None)
    # The syntax diagnostics the server publishes as the trace is typed; pygls logs each unhandled one.
    client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)(lambda _: None)
    model_args = ["--model", str(model_dir)] if model_dir else []
    await client.start_io(sys.executable, "-m", "gpt_lsp", "--stdio", *model_args)
    server = client._server  # the child process pygls started
    assert server is not None
    pid = server.pid
    options = options or {
        "model": {"variant": variant, "threads": threads},
        "generation": {"timeoutMs": 2000},
    }
    await client.initialize_async(
        lsp.InitializeParams(capabilities=lsp.ClientCapabilities(), initialization_options=options)
    )
    client.initialized(lsp.InitializedParams())
    await asyncio.wait_for(ready.wait(), 60)
    first_ms = await _first_completion_ms(client)
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
        "first_completion_ms": first_ms,
        "requests": len(completion_ms),
        "completion_p50_ms": percentile(completion_ms, 0.5),
        "completion_p95_ms": percentile(completion_ms, 0.95),
        "completion_ms": completion_ms,
        "trivial_p95_ms": percentile(trivial_ms, 0.95),
        "rss_growth_mb": (rss_end - rss_start) / 1024,
        "rss_end_mb": rss_end / 1024,
    }


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench", help="latency through the real server on a replayed typing trace", description=__doc__
    )
    p.add_argument(
        "model_dir",
        metavar="MODEL",
        nargs="?",
        help="model directory, GGUF file or model name (--backend local)",
    )
    p.add_argument(
        "--keystrokes", type=int, default=0, help="replay only this many characters (0 = the whole trace)"
    )
    p.add_argument(
        "--compare-variants", action="store_true", help="run fp32 and int8 in one process and print the ratio"
    )
    p.add_argument(
        "--peers",
        action="store_true",
        help="also time prefill and decode at --context tokens against HF generate, optimum and llama.cpp",
    )
    p.add_argument(
        "--context", type=int, default=512, help="context length of the decode figures (default 512)"
    )
    p.add_argument("--threads", type=int, default=0, help="threads for every runtime (default: all cores)")
    from gpt_lsp.model import bench_remote

    bench_remote.add_arguments(p)
    p.set_defaults(func=run)


def _print_peers(model_dir: Any, threads: int, context: int) -> None:
    from gpt_lsp.model.peers import compare

    results = compare(model_dir, threads, context)
    print(f"decode at {context} tokens of context, {threads} threads (medians):")
    for r in results:
        if r.skipped:
            print(f"  {r.runtime}: skipped: {r.skipped}")
        else:
            print(
                f"  {r.runtime}: prefill {r.prefill_ms:.0f} ms, decode {r.decode_ms_per_token:.1f} ms/token"
            )
    ours = [r for r in results if r.runtime.startswith("gpt-lsp") and r.decode_ms_per_token]
    best = min(ours, key=lambda r: r.decode_ms_per_token or 0.0)
    for r in results:
        if r.decode_ms_per_token and best.decode_ms_per_token and not r.runtime.startswith("gpt-lsp"):
            print(
                f"  {r.runtime} / {best.runtime}: {r.decode_ms_per_token / best.decode_ms_per_token:.2f}x per token"
            )


def run(args: argparse.Namespace) -> int:
    if args.backend == "openai":
        from gpt_lsp.model import bench_remote

        return bench_remote.run(args)
    if args.model_dir is None:
        print("gpt-lsp bench: error: MODEL is needed for --backend local", file=sys.stderr)
        return 2
    from gpt_lsp.inference.model_dir import ModelDirError, load_model_dir
    from gpt_lsp.inference.model_select import resolve_model

    try:
        model_dir = load_model_dir(resolve_model(args.model_dir))
    except ModelDirError as err:
        print(f"gpt-lsp bench: error: {err}", file=sys.stderr)
        return 2
    args.model_dir = model_dir.path
    threads = args.threads or max(1, (os.cpu_count() or 2) // 2)  # the server's default
    print(f"cpu cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, model: {args.model_dir}")
    if args.peers:
        _print_peers(model_dir, threads, args.context)
    variants = ["fp32", "int8"] if args.compare_variants else ["auto"]
    results = [
        asyncio.run(bench_server(args.model_dir, v, args.keystrokes, threads=threads)) for v in variants
    ]
    for r in results:
        print(
            f"{r['variant']:>5}: first completion in a {LONG_FILE_LINES}-line file {r['first_completion_ms']:.0f} ms; "
            f"typing trace: {r['requests']} completions, p50 {r['completion_p50_ms']:.1f} ms, "
            f"p95 {r['completion_p95_ms']:.1f} ms; trivial request during decode p95 {r['trivial_p95_ms']:.1f} ms; "
            f"RSS {r['rss_end_mb']:.0f} MB (growth {r['rss_growth_mb']:.1f} MB)"
        )
    if len(results) == 2:
        print(
            f"int8 / fp32 completion p50 ratio: {results[1]['completion_p50_ms'] / results[0]['completion_p50_ms']:.2f}"
        )
    return 0
