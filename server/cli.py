"""The `gpt-lsp` command: `--stdio` serves LSP; subcommands run the model toolchain.

Serving protects stdout before anything else is imported that might print: the JSON-RPC stream
gets a private duplicate of file descriptor 1, and fd 1 itself is pointed at stderr, so a stray
print from onnxruntime, tokenizers or tree-sitter can never corrupt the wire (pygls#133).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import BinaryIO

from . import __version__

# Server-side commands that need no toolchain (gpt_lsp.<name>); each module registers itself.
SERVER_MODULES = ("complete_view", "playground", "soak")
# Toolchain subcommands live in gpt_lsp.model (the `train` extra), registered the same way; each
# imports torch only when run.
TOOLCHAIN_MODULES = (
    "corpus",
    "train",
    "finetune",
    "export",
    "evaluate",
    "bench",
    "hint_bench",
    "ship",
    "gemma_code",
)


def _protect_stdout() -> tuple[BinaryIO, BinaryIO]:
    """Return (stdin, stdout) binary streams for JSON-RPC; everything else printed goes to stderr."""
    wire: BinaryIO = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    return sys.stdin.buffer, wire


def _setup_logging(log_file: str | None, verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    handler: logging.Handler = (
        logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.getLogger("pygls").setLevel(max(level, logging.WARNING))


def _watch_parent(get_pid) -> None:
    """Exit when the editor that started us dies without closing stdin (copilot.lua#667: orphans)."""

    def watch() -> None:
        while True:
            time.sleep(1)
            pid = get_pid()
            if pid:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    logging.getLogger(__name__).warning("parent process %s is gone; exiting", pid)
                    os._exit(1)
                except PermissionError:
                    pass

    threading.Thread(target=watch, name="gpt-lsp-parent-watch", daemon=True).start()


def _report_unusable_model(model: str | None) -> None:
    """Say on stderr at once why `--model` cannot be served: editors show a server's stderr, and no
    LSP session may ever start to carry the message. The server still serves: settings can name
    another model, and syntax diagnostics and quick fixes need none."""
    if not model:
        return
    from .inference.model_dir import ModelDirError, load_model_dir

    try:
        load_model_dir(model)
    except ModelDirError as err:
        sys.stderr.write(f"gpt-lsp: model unavailable: {err}; serving without AI features\n")


def serve(args: argparse.Namespace) -> int:
    stdin, stdout = _protect_stdout()
    _setup_logging(args.log_file, args.verbose)
    _report_unusable_model(args.model)
    from .lsp.handlers import create_server

    ls = create_server(Path(args.model) if args.model else None)
    _watch_parent(lambda: ls.process_id)
    from .lsp.transport import SharedWire, framed_stdin

    wire = SharedWire(stdout)
    ls.start_io(framed_stdin(stdin, wire.reply_error), wire)  # type: ignore[arg-type]  # pygls only writes and flushes  # returns on `exit` or when stdin reaches EOF
    code = ls.exit_code if ls.gpt_protocol.shutdown_requested or ls.exit_code == 0 else 1
    logging.shutdown()
    os._exit(code)  # don't wait for a decode still running on the worker thread


def list_models(args: argparse.Namespace) -> int:
    """`gpt-lsp models`: the shipped model, models in the cache and installable named bases."""
    from .inference.model_select import list_models as found
    from .inference.model_select import models_root

    for name, what in found():
        sys.stdout.write(f"{name:<28} {what}\n")
    sys.stdout.write(f"(cache: {models_root()})\n")
    return 0


def build_parser(with_toolchain: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpt-lsp",
        description="A private, local code assistant behind the Language Server Protocol.",
        epilog="Editors start `gpt-lsp --stdio`. Toolchain commands (train, finetune, export, eval) need `pip install 'gpt-lsp[train]'`.",
    )
    parser.add_argument("--version", action="version", version=f"gpt-lsp {__version__}")
    parser.add_argument("--stdio", action="store_true", help="serve LSP over stdin/stdout (what editors run)")
    parser.add_argument(
        "--model",
        metavar="MODEL",
        help="model directory, GGUF file (exported once into the cache) or name (`gpt-lsp models`); "
        "default: the shipped model",
    )
    parser.add_argument("--log-file", metavar="PATH", help="write logs here instead of stderr")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="-v: info, -vv: debug")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve_parser = subparsers.add_parser("serve", help="serve LSP over stdio (same as --stdio)")
    serve_parser.set_defaults(func=serve)
    models_parser = subparsers.add_parser("models", help="list the models --model accepts on this machine")
    models_parser.set_defaults(func=list_models)
    for name in SERVER_MODULES if with_toolchain else ():
        importlib.import_module(f"gpt_lsp.tools.{name}").register(subparsers)
    for name in TOOLCHAIN_MODULES if with_toolchain else ():
        try:
            importlib.import_module(f"gpt_lsp.model.{name}").register(subparsers)
        except (ImportError, AttributeError) as err:  # that stage is not part of this installation
            logging.getLogger(__name__).debug("toolchain command %s unavailable: %s", name, err)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Serving must start fast and must not depend on the toolchain importing cleanly.
    serving = "--stdio" in argv or argv[:1] == ["serve"]
    parser = build_parser(with_toolchain=not serving)
    args = parser.parse_args(argv)
    if args.stdio or args.command == "serve":
        return serve(args)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    return int(args.func(args) or 0)
