"""Which model to serve: `--model` and the `model.path` setting accept a folder, a GGUF file or a name.

A GGUF file (from Ollama, LM Studio, llama.cpp; recognised by its magic bytes, so an Ollama blob
without an extension works) is exported once into the user cache, int8, by running
`gpt-lsp export` in a child process, and reused after that. The child needs the toolchain
(`pip install 'gpt-lsp[gemma]'`); the server itself never imports torch. A name is `default`/`tiny` (the
small shipped model), `gemma-code` (the code-tuned Gemma, built on first use by `gpt-lsp build
gemma-code`), a model folder in the cache (`gpt-lsp models` lists them), or a named base such as
`gemma3-270m`, which is exported from its registry package the same way.

With no model named at all, the server serves `gemma-code` when it has been built for the adapter
this version ships, and the small model otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from functools import cache
from importlib.util import find_spec
from pathlib import Path

from .model_dir import CONFIG_NAME, ModelDirError, default_model_path, user_cache_dir

GGUF_MAGIC = b"GGUF"  # the first four bytes of every GGUF file (llama.cpp's gguf.h)
DEFAULT_NAMES = ("default", "tiny")
GEMMA_CODE = "gemma-code"  # the code-tuned Gemma: registry base + the adapter shipped in gpt_lsp.model


@cache
def _shipped_adapter_version() -> str | None:
    """The first 12 hex digits of the shipped adapter's SHA-256: the key its builds are cached under."""
    adapter = default_model_path().parent / "gemma_code" / "adapter.safetensors"
    return hashlib.sha256(adapter.read_bytes()).hexdigest()[:12] if adapter.is_file() else None


def built_gemma_code() -> Path | None:
    """The code-tuned Gemma built for the shipped adapter, if `gpt-lsp build gemma-code` has run."""
    version = _shipped_adapter_version()
    root = user_cache_dir() / GEMMA_CODE
    if version is None or not root.is_dir():
        return None
    for build in sorted(root.glob(f"*-{version}")):
        if (build / "model" / CONFIG_NAME).is_file():
            return build / "model"
    return None


def model_label(path: Path) -> str:
    """A model's name for the status bar: the name it is known by, else its folder."""
    if path == default_model_path():
        return "default"
    if path == built_gemma_code():
        return GEMMA_CODE
    return path.parent.name if path.name == "model" else path.name


def default_choice() -> Path:
    """What to serve when no model is named: the code-tuned Gemma once built, else the small model."""
    return built_gemma_code() or default_model_path()


def models_root() -> Path:
    return user_cache_dir() / "models"


def is_gguf(path: Path) -> bool:
    """Whether `path` is a GGUF file, by its magic bytes (Ollama stores them as `sha256-...` blobs)."""
    path = Path(path)
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        return handle.read(4) == GGUF_MAGIC


def resolve_model(spec: str | Path, on_stage: Callable[[str], None] = lambda _: None) -> Path:
    """The model directory `spec` names, exporting a GGUF file or a named base on first use.

    What cannot be resolved comes back as a path, so that loading it gives the usual clear error.
    """
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if path.is_file():
        if not is_gguf(path):
            raise ModelDirError(f"{path}: neither a model directory nor a GGUF file")
        stat = path.stat()
        key = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()
        return _imported(str(path), models_root() / f"gguf-{hashlib.sha256(key).hexdigest()[:16]}", on_stage)
    if text in DEFAULT_NAMES:
        return default_model_path()
    if text == GEMMA_CODE:
        built = built_gemma_code()
        if built is None:
            on_stage("building gemma-code (once; a few minutes)")
            _run_toolchain(["build", GEMMA_CODE], "build: ", on_stage, f"cannot build {GEMMA_CODE}")
            built = built_gemma_code()
        if built is None:
            raise ModelDirError(f"gpt-lsp build {GEMMA_CODE} finished without a model")
        return built
    if "/" not in text and os.sep not in text:
        if (models_root() / text).is_dir():
            return models_root() / text
        if text in _named_bases():
            return _imported(text, models_root() / text, on_stage)
    return path


def _imported(source: str, out: Path, on_stage: Callable[[str], None]) -> Path:
    """`out`, exported from `source` unless an earlier run completed it."""
    if (out / CONFIG_NAME).is_file():
        return out
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    on_stage(f"importing {source} into {out} (once; a few minutes)")
    try:
        _export(source, partial, on_stage)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    partial.rename(out)  # complete or absent: a killed export never leaves a half model behind
    return out


def _export(source: str, out: Path, on_stage: Callable[[str], None]) -> None:
    """Run `gpt-lsp export SOURCE OUT --int8` in a child process, passing its stage lines on."""
    _run_toolchain(["export", source, str(out), "--int8"], "export: ", on_stage, f"cannot import {source}")


def _run_toolchain(
    arguments: list[str], stage_prefix: str, on_stage: Callable[[str], None], failure: str
) -> None:
    """Run a toolchain command in a child process (the server never imports torch), passing on the
    stderr lines that start with `stage_prefix`."""
    command = [sys.executable, "-m", "gpt_lsp", *arguments]
    with subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    ) as child:
        assert child.stderr is not None
        lines = []
        for line in child.stderr:  # one progress line per export stage
            lines.append(line.rstrip())
            if line.startswith(stage_prefix):
                on_stage(line.removeprefix(stage_prefix).strip())
    if child.returncode != 0:
        detail = next((ln for ln in reversed(lines) if ln.strip()), "no output")
        raise ModelDirError(f"{failure}: {detail} (this needs pip install 'gpt-lsp[gemma]')")


def list_models() -> list[tuple[str, str]]:
    """(name or path, what it is) for the shipped model, cached models and installed named bases."""
    found = [("default", f"the shipped model ({default_model_path()})")]
    built = built_gemma_code()
    state = f"built ({built})" if built else f"not built: gpt-lsp build {GEMMA_CODE}"
    found.append((GEMMA_CODE, f"code-tuned Gemma 3 270M (Gemma Terms of Use), {state}"))
    root = models_root()
    for folder in sorted(root.iterdir()) if root.is_dir() else ():
        config_path = folder / CONFIG_NAME
        if not config_path.is_file():
            continue
        config = json.loads(config_path.read_text(encoding="utf-8"))
        size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) / 1e6
        origin = config.get("provenance", {}).get("source", config.get("description", ""))
        found.append((folder.name, f"{config.get('model_type')}, {size:.0f} MB, from {origin}"))
    for name, base in _named_bases().items():
        if not (root / name).is_dir():
            installed = find_spec(base.module) is not None
            state = "installed" if installed else f"not installed: pip install {base.package}"
            found.append((name, f"named base, {state}; exported on first use ({base.license})"))
    return found


def _named_bases() -> dict:
    """Bases that `gpt-lsp export NAME` builds from a registry package (no torch imported here)."""
    from gpt_lsp.model.pretrained import NAMED_BASES

    return NAMED_BASES


def add_model_option(parser: argparse.ArgumentParser) -> None:
    """`--model` as every terminal command takes it: what `--stdio --model` accepts."""
    parser.add_argument(
        "--model",
        metavar="MODEL",
        help="model directory, GGUF file or name (default: what the server serves)",
    )
