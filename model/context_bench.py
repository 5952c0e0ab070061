"""`gpt-lsp bench-context`: what context from other files costs per keystroke, on a large workspace.

Indexes WORKSPACE (up to --files source files) on the background thread the server uses, then
times the gathering stage at random cursors in its Python files, with --tabs other files open as
recent tabs (their windows computed, as they are once a tab has been open). The current file is
parsed first, as the pipeline's gate parses it before this stage. Prints the index build time and
the gathering time's p50/p95/max; no model is loaded.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

from gpt_lsp.completion.related import RelatedFiles
from gpt_lsp.model import metrics
from gpt_lsp.text.documents import DocumentStore
from gpt_lsp.workspace.index import WorkspaceIndex


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench-context",
        help="time the gathering of context from other files on a large workspace (no model)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("workspace", type=Path, metavar="WORKSPACE", help="a folder with many source files")
    p.add_argument("--files", type=int, default=1000, help="index at most this many files (default 1000)")
    p.add_argument("--n", type=int, default=300, help="cursors to time (default 300)")
    p.add_argument("--tabs", type=int, default=10, help="other files open as recent tabs (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.workspace.is_dir():
        print(f"gpt-lsp bench-context: error: not a folder: {args.workspace}", file=sys.stderr)
        return 2
    index = WorkspaceIndex([args.workspace], max_files=args.files)
    started = time.perf_counter()
    index.start()
    index.ready.wait()
    build_s = time.perf_counter() - started
    python = [f for f in index.files() if f.language == "python"]
    if not python:
        print(f"gpt-lsp bench-context: error: no Python files indexed in {args.workspace}", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    store = DocumentStore()
    related = RelatedFiles(index)
    for entry in rng.sample(python, min(args.tabs, len(python))):
        tab = store.open(
            entry.path.as_uri(), "python", 1, entry.path.read_text(encoding="utf-8", errors="replace")
        )
        related.touch(tab)
        related.windows.windows(tab)
    times, found = [], 0
    for i in range(args.n):
        entry = rng.choice(python)
        text = entry.path.read_text(encoding="utf-8", errors="replace")
        lines = [n for n, line in enumerate(text.split("\n")) if line.strip()]
        if not lines:
            continue
        doc = store.open(f"{entry.path.as_uri()}#{i}", "python", 1, text)
        line = rng.choice(lines)
        offset = doc.index.line_span(line)[1]
        assert doc.tree is not None  # parsed by the gate before this stage runs
        clock = time.perf_counter()
        pieces = related.gather(doc, offset)
        times.append((time.perf_counter() - clock) * 1000)
        found += bool(pieces)
        store.close(doc.uri)
    print(
        f"workspace: {args.workspace} ({len(index)} files indexed in {build_s:.2f} s on a background thread)"
    )
    print(
        f"cursors: {len(times)} in {len(python)} Python files, {args.tabs} recent tabs; {found} got context"
    )
    print(
        f"gathering: p50 {metrics.percentile(times, 0.5):.2f} ms  p95 {metrics.percentile(times, 0.95):.2f} ms"
        f"  max {max(times):.2f} ms"
    )
    return 0
