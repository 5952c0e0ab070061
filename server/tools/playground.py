"""`gpt-lsp playground`: a local web page to see and steer completions.

What it shows and how it is served are in playground_http.py (the HTTP side) and
playground_api.py (the requests); this module only parses the command line, so registering the
subcommand costs the other commands nothing.
"""

from __future__ import annotations

import argparse
import sys

from ..inference.model_select import add_model_option


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "playground",
        help="open a local web page to see and steer completions (prompt, token odds, settings, eval)",
        description="Serve the prompt playground on 127.0.0.1. The URL printed at start carries a random "
        "token; requests without it are refused.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    add_model_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..inference.model_dir import ModelDirError, load_model_dir
    from ..inference.model_select import resolve_model
    from .playground_api import Playground
    from .playground_http import PlaygroundServer

    model = ""
    if args.model:
        try:
            model = str(resolve_model(args.model))
            load_model_dir(model)
        except ModelDirError as err:
            print(f"gpt-lsp playground: {err}", file=sys.stderr)
            return 2
    try:
        server = PlaygroundServer(args.port, Playground(model))
    except OSError as err:
        print(f"gpt-lsp playground: cannot listen on 127.0.0.1:{args.port}: {err}", file=sys.stderr)
        return 2
    print(f"gpt-lsp playground: open {server.url}", flush=True)
    print("(listening on 127.0.0.1 only; Ctrl+C stops it)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
