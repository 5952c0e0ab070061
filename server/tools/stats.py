"""The `gpt-lsp stats` subcommand: the local acceptance counts (server/acceptance.py) as a table or JSON.

The counts are kept on this machine only; this command reads the file and nothing else.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="show how many inline completions were shown and accepted, per model and language",
        description="Print the acceptance counts the server keeps on this machine (never uploaded): "
        "inline answers shown, accepted, partially accepted, and the acceptance rate.",
    )
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    parser.add_argument(
        "--file", metavar="PATH", type=Path, help="the counts file (default: acceptance.json in the cache)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..acceptance import acceptance_path, read_counts, rows

    path = args.file or acceptance_path()
    try:
        table = rows(read_counts(path))
    except ValueError as err:
        print(f"gpt-lsp stats: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"file": str(path), "counts": table}, indent=2))
    else:
        print(render(table, path))
    return 0


def render(table: list[dict], path: Path) -> str:
    if not table:
        return f"no inline completions counted yet ({path})"
    head = ("model", "language", "shown", "accepted", "partial", "rate")
    body = [
        (
            r["model"],
            r["language"],
            str(r["shown"]),
            str(r["accepted"]),
            str(r["partial"]),
            "-" if r["rate"] is None else f"{r['rate']:.0%}",
        )
        for r in table
    ]
    widths = [max(len(row[i]) for row in (head, *body)) for i in range(len(head))]

    def line(row: tuple[str, ...]) -> str:
        cells = [
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([line(head), *map(line, body), f"({path}; counted on this machine, never uploaded)"])


def main(argv: list[str] | None = None) -> int:
    """`python -m gpt_lsp.tools.stats` until the subcommand is registered in the CLI."""
    parser = argparse.ArgumentParser(prog="gpt-lsp")
    register(parser.add_subparsers(required=True))
    args = parser.parse_args(["stats", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
