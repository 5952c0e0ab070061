"""`gpt-lsp ship`: copy a trained model directory into the package as the embedded default.

Only the int8 graph travels (it is what CPUs serve fastest and keeps the wheel small:
total <= 30 MB), with the training checkpoint's weights (no optimizer state) so that
`gpt-lsp finetune default DATA` can start from it; the model card's fp32 figures come from the
training run's own directory.
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from gpt_lsp.inference.model_dir import CONFIG_NAME, TOKENIZER_NAME, VARIANT_FILES, load_model_dir
from gpt_lsp.inference.onnx_external import external_data_locations

DEFAULT_DIR = Path(__file__).resolve().parent / "default"
MAX_BYTES = 30 * 1024 * 1024


def ship(source: Path, target: Path = DEFAULT_DIR, description: str = "") -> int:
    """Write `target` as an int8-only copy of `source`; returns its size in bytes."""
    model = load_model_dir(source)
    if "int8" not in model.config.variants:
        raise SystemExit(
            f"{source}: has no int8 variant; export it with `gpt-lsp export CHECKPOINT OUT --int8`"
        )
    target.mkdir(parents=True, exist_ok=True)
    for stale in target.iterdir():
        if stale.is_file():
            stale.unlink()
    shutil.copyfile(model.onnx_path("int8"), target / VARIANT_FILES["int8"])
    for location in external_data_locations(model.onnx_path("int8")):  # weights kept beside the graph
        shutil.copyfile(source / location, target / location)
    shutil.copyfile(model.tokenizer_path, target / TOKENIZER_NAME)
    for extra in ("hints.json",):
        if (source / extra).is_file():
            shutil.copyfile(source / extra, target / extra)
    _ship_checkpoint(source.parent / "checkpoint", target / "checkpoint")
    config = replace(
        model.config,
        variants={"int8": VARIANT_FILES["int8"]},
        description=description or model.config.description,
    )
    (target / CONFIG_NAME).write_text(config.to_json())
    load_model_dir(target)  # the shipped copy must load on its own
    size = _size(target)
    if size > MAX_BYTES:
        raise SystemExit(
            f"{target}: {size / 1e6:.1f} MB is over the {MAX_BYTES / 1e6:.0f} MB budget for the shipped model"
        )
    return size


def _ship_checkpoint(checkpoint: Path, target: Path) -> None:
    """The torch weights too (no optimizer state), so `gpt-lsp finetune default DATA` works from a plain install."""
    if target.is_dir():
        shutil.rmtree(target)
    if not (checkpoint / "model.safetensors").is_file():
        return
    target.mkdir()
    for name in ("config.json", "model.safetensors", TOKENIZER_NAME, "generation_config.json"):
        if (checkpoint / name).is_file():
            shutil.copyfile(checkpoint / name, target / name)


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "ship", help="install a model directory as the embedded default (int8 only)", description=__doc__
    )
    p.add_argument("model_dir", type=Path, metavar="MODEL_DIR")
    p.add_argument("--to", type=Path, default=DEFAULT_DIR, help=f"target directory (default: {DEFAULT_DIR})")
    p.add_argument("--description", default="", help="one line for gpt-lsp.json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    size = ship(args.model_dir, args.to, args.description)
    print(f"shipped {args.model_dir} -> {args.to} ({size / 1e6:.1f} MB)")
    return 0
