"""`gpt-lsp build gemma-code`: the code-tuned Gemma, built on the user's machine from the base + an adapter.

gpt-lsp does not redistribute fine-tuned Gemma weights. It ships a LoRA adapter (model/gemma_code/,
a few MB) and builds the servable model locally: the registry package's GGUF (SHA-256 checked) ->
dequantized checkpoint (cached by `pretrained.gguf_checkpoint`) -> adapter merged into the weights
-> ONNX export with int8. Each result is cached in the user cache directory under the base's
SHA-256 and the adapter's version, so a new adapter or a different base never reuses a stale build.
The weights and everything built from them fall under the Gemma Terms of Use (model/gemma_code/NOTICE).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpt_lsp.inference.model_dir import user_cache_dir

NAME = "gemma-code"
BASE = "gemma3-270m"
ADAPTER = Path(__file__).parent / "gemma_code" / "adapter.safetensors"
STAGES = ("base checkpoint", "merge adapter", "save merged checkpoint", "export ONNX + int8")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def adapter_version(adapter: Path = ADAPTER) -> str:
    """The adapter's identity in cache keys: the first 12 hex digits of its SHA-256."""
    from gpt_lsp.model.pretrained import sha256_of

    return sha256_of(adapter)[:12]


def base_checkpoint(on_stage: Callable[[str], None] = say) -> tuple[Path, str]:
    """(dequantized base checkpoint, the base GGUF's SHA-256), built once and cached."""
    from gpt_lsp.model.pretrained import gguf_checkpoint, named_gguf

    checkpoint = gguf_checkpoint(named_gguf(BASE), on_stage=on_stage)
    digest = json.loads((checkpoint / "provenance.json").read_text(encoding="utf-8"))["sha256"]
    return checkpoint, digest


def named_checkpoint(name: str) -> Path:
    """The checkpoint `gpt-lsp finetune` starts from for a named base: the dequantized Gemma, or gemma-code."""
    if name == NAME:
        return merged_checkpoint()
    from gpt_lsp.model.pretrained import gguf_checkpoint, named_gguf

    return gguf_checkpoint(named_gguf(name), on_stage=say)


def build_dir(base_sha256: str, adapter: Path = ADAPTER) -> Path:
    return user_cache_dir() / NAME / f"{base_sha256[:16]}-{adapter_version(adapter)}"


def merged_checkpoint(
    adapter: Path = ADAPTER, on_stage: Callable[[str], None] = say, advance: Callable[[], None] = lambda: None
) -> Path:
    """A Hugging Face checkpoint of base + adapter, cached; what `finetune gemma-code` starts from."""
    base, digest = base_checkpoint(on_stage)
    advance()
    out = build_dir(digest, adapter) / "checkpoint"
    if (out / "provenance.json").is_file():
        for _ in range(2):  # merge and save: already done
            advance()
        return out
    merge_into(base, adapter, out, digest, on_stage, advance)
    return out


def merge_into(
    base: Path,
    adapter: Path,
    out: Path,
    base_sha256: str,
    on_stage: Callable[[str], None] = say,
    advance: Callable[[], None] = lambda: None,
) -> None:
    """Load `base`, add the adapter's deltas, save to `out` (provenance.json last: marks it complete)."""
    import torch
    from transformers import AutoModelForCausalLM

    from gpt_lsp.model.adapter import merge_adapter, read_adapter

    _, header = read_adapter(adapter)
    if header.get("base_sha256") not in (None, "", base_sha256):
        on_stage(
            f"note: {adapter.name} was trained on base {header['base_sha256'][:16]}, not {base_sha256[:16]}"
        )
    on_stage(f"merging {adapter.name} into {base}")
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    layers = merge_adapter(model, adapter)
    advance()
    on_stage(f"merged {layers} layers; saving {out}")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if (base / name).is_file():
            shutil.copy2(base / name, tmp / name)
    provenance = json.loads((base / "provenance.json").read_text(encoding="utf-8"))
    provenance.update({"adapter": str(adapter), "adapter_version": adapter_version(adapter)})
    (tmp / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    advance()


def is_current(model_dir: Path) -> bool:
    """Built, and by this exporter: a build from an older one is exported again from its cached
    checkpoint (it still serves, only slower)."""
    from gpt_lsp.model.export import EXPORT_REVISION

    config = model_dir / "gpt-lsp.json"
    if not config.is_file():
        return False
    provenance = json.loads(config.read_text(encoding="utf-8")).get("provenance") or {}
    return provenance.get("export_revision") == EXPORT_REVISION


def build(adapter: Path = ADAPTER, rebuild: bool = False) -> Path:
    """The servable gemma-code model directory (ONNX fp32 + int8), built once per base and adapter."""
    from tqdm import tqdm

    from gpt_lsp.model.export import export_checkpoint

    with tqdm(total=len(STAGES), unit="stage", file=sys.stderr, dynamic_ncols=True) as bar:

        def stage(message: str) -> None:
            bar.set_description(message[:60])
            bar.write(message, file=sys.stderr)

        _, digest = base_checkpoint(stage)
        model_dir = build_dir(digest, adapter) / "model"
        if rebuild:
            shutil.rmtree(build_dir(digest, adapter), ignore_errors=True)
        if is_current(model_dir):
            bar.update(len(STAGES))
            return model_dir
        checkpoint = merged_checkpoint(adapter, stage, bar.update)
        export_checkpoint(checkpoint, model_dir, int8=True, on_stage=stage)
        bar.update()
    return model_dir


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "build",
        help="build a model that ships as an adapter (gemma-code) on this machine",
        description=(
            "Build the code-tuned Gemma 3 270M: dequantize the registry package's GGUF (SHA-256 checked), "
            "merge the LoRA adapter shipped with gpt-lsp, export ONNX with int8. Cached in the user cache "
            "directory by base SHA-256 and adapter version. Needs `pip install 'gpt-lsp[gemma]'`. "
            "The weights fall under the Gemma Terms of Use: https://ai.google.dev/gemma/terms"
        ),
    )
    parser.add_argument("name", choices=[NAME], help="what to build")
    parser.add_argument(
        "--adapter", type=Path, default=ADAPTER, help="another adapter file (default: shipped)"
    )
    parser.add_argument("--rebuild", action="store_true", help="ignore the cached build")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gpt_lsp.model.adapter import AdapterError
    from gpt_lsp.model.export import ExportError
    from gpt_lsp.model.pretrained import PretrainedError

    try:
        model_dir = build(args.adapter, args.rebuild)
    except (AdapterError, ExportError, PretrainedError, OSError) as err:
        say(f"gpt-lsp build: error: {err}")
        return 2
    say(f"model ready: gpt-lsp --stdio --model {model_dir}")
    return 0
