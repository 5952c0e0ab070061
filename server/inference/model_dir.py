"""The model directory: the one file format shared by the exporter and the server.

A model directory holds `tokenizer.json`, `gpt-lsp.json` and one or more ONNX decoders
(`model.onnx` in fp32, `model.int8.onnx` dynamically quantized). `gpt-lsp.json` says how to
prompt the model; the ONNX graph itself says how many layers and heads the KV cache has.
Loading validates everything up front so a broken directory fails with one clear message
instead of a stack trace mid-keystroke.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .onnx_external import external_data_locations

CONFIG_NAME = "gpt-lsp.json"
TOKENIZER_NAME = "tokenizer.json"
FORMAT_VERSION = 1
VARIANT_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
COMPLETION_PROMPTS = ("fim", "prefix")  # see ModelConfig.completion_prompt
_DRIVE = re.compile(r"^[A-Za-z]:")  # a Windows drive: absolute there, whatever this system says


class ModelDirError(Exception):
    """A model directory is missing, incomplete or unsafe; the message says which file and why."""


@dataclass(frozen=True)
class FimTokens:
    """Fill-in-the-middle sentinels (StarCoder spelling by default)."""

    prefix: str = "<fim_prefix>"
    suffix: str = "<fim_suffix>"
    middle: str = "<fim_middle>"


@dataclass(frozen=True)
class ModelConfig:
    """Contents of `gpt-lsp.json`: everything the server must know that the ONNX graph does not say."""

    model_type: str
    context_length: int
    eos_token: str
    fim: FimTokens | None = field(default_factory=FimTokens)
    pad_token: str | None = None
    # Put before every prompt (Gemma's and Llama's <bos>); None for models trained without one.
    bos_token: str | None = None
    # Variant name -> ONNX file name inside the directory; only files that exist are listed.
    variants: dict[str, str] = field(default_factory=lambda: {"fp32": VARIANT_FILES["fp32"]})
    format_version: int = FORMAT_VERSION
    description: str = ""
    # How inline completions are prompted: "fim" (code before and after the cursor) or "prefix"
    # (code before it only). A model trained with FIM may still infill worse than it continues;
    # `gpt-lsp eval --prompt fim|prefix` measures both, and the better one is written here.
    completion_prompt: str = "fim"
    # Where the weights came from (source path, SHA-256, license when the source states one).
    provenance: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        raw = json.loads(text)
        fim = raw.pop("fim", None)
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(fim=FimTokens(**fim) if fim else None, **known)


@dataclass(frozen=True)
class ModelDir:
    """A validated model directory."""

    path: Path
    config: ModelConfig

    def onnx_path(self, variant: str = "auto") -> Path:
        """The ONNX file for `variant`; "auto" prefers int8 (about 2x faster on CPU) when present."""
        variants = self.config.variants
        if variant == "auto":
            variant = "int8" if "int8" in variants else next(iter(variants))
        if variant not in variants:
            raise ModelDirError(f"{self.path}: no {variant!r} variant; available: {', '.join(variants)}")
        return self.path / variants[variant]

    @property
    def tokenizer_path(self) -> Path:
        return self.path / TOKENIZER_NAME


def _check_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise ModelDirError(f"{path}: missing {what}")
    with path.open("rb") as f:
        head = f.read(200)
    # A git-lfs pointer is a small text file; loading it as ONNX gives a baffling protobuf error.
    if head.startswith(b"version https://git-lfs"):
        raise ModelDirError(f"{path}: is a git-lfs pointer, not the {what}; run `git lfs pull`")
    if not head:
        raise ModelDirError(f"{path}: is empty; expected the {what}")


def _check_onnx_external_data(onnx_path: Path) -> None:
    """Every external-data file the graph names must lie inside the directory (CVE-2022-25882,
    CVE-2024-27318): no absolute path, no `..`, no symlink that resolves elsewhere. Checked here,
    before ONNX Runtime opens anything, because only runtimes from 1.24 on check it themselves."""
    try:
        locations = external_data_locations(onnx_path)
    except (OSError, ValueError) as err:
        raise ModelDirError(f"{onnx_path}: not a readable ONNX file ({err})") from err
    root = onnx_path.parent.resolve()
    for location in locations:
        parts = re.split(r"[\\/]", location)
        if not location or location.startswith(("/", "\\")) or _DRIVE.match(location) or ".." in parts:
            raise ModelDirError(
                f"{onnx_path}: external data location {location!r} must be a relative path inside the model directory"
            )
        try:
            target = (onnx_path.parent / location).resolve()
        except (OSError, ValueError) as err:
            raise ModelDirError(f"{onnx_path}: external data location {location!r}: {err}") from err
        if not target.is_relative_to(root):
            raise ModelDirError(
                f"{onnx_path}: external data {location!r} resolves to {target}, outside the model directory"
            )
        if not target.is_file():
            raise ModelDirError(f"{onnx_path}: external data file {location!r} is missing")


def load_model_dir(path: str | Path) -> ModelDir:
    """Validate `path` and read its `gpt-lsp.json`; raise ModelDirError with a clear message otherwise."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise ModelDirError(
            f"{root}: not a directory; expected a model directory ({CONFIG_NAME}, {TOKENIZER_NAME}, model.onnx)"
        )
    config_path = root / CONFIG_NAME
    _check_file(config_path, "model description")
    try:
        config = ModelConfig.from_json(config_path.read_text(encoding="utf-8"))
    except (ValueError, TypeError) as err:
        raise ModelDirError(f"{config_path}: not a valid {CONFIG_NAME}: {err}") from err
    if config.format_version > FORMAT_VERSION:
        raise ModelDirError(
            f"{config_path}: format {config.format_version} is newer than this gpt-lsp understands"
        )
    length = config.context_length
    if not isinstance(length, int) or isinstance(length, bool) or length < 1:
        raise ModelDirError(
            f"{config_path}: context_length must be a positive number of tokens, not {length!r}"
        )
    if not config.variants:
        raise ModelDirError(f"{config_path}: lists no ONNX variants")
    if config.completion_prompt not in COMPLETION_PROMPTS:
        raise ModelDirError(
            f"{config_path}: completion_prompt must be one of {', '.join(COMPLETION_PROMPTS)}, "
            f"not {config.completion_prompt!r}"
        )
    _check_file(root / TOKENIZER_NAME, "tokenizer (tokenizer.json)")
    for name in config.variants.values():
        if Path(name).name != name or not name.endswith(".onnx"):
            raise ModelDirError(f"{config_path}: variant file {name!r} must be a plain .onnx file name")
        _check_file(root / name, "ONNX model")
        _check_onnx_external_data(root / name)
    return ModelDir(root, config)


def model_fingerprint(path: Path) -> tuple:
    """Name, size and modification time of each file in the directory: one listing, cheap enough
    to tell on the next request whether a model that failed has been replaced or fixed."""
    try:
        with os.scandir(path) as entries:
            return tuple(
                sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in entries if e.is_file())
            )
    except OSError:
        return ()


def default_model_path() -> Path:
    """The model shipped inside the package (`gpt_lsp/model/default`)."""
    from importlib.resources import files

    return Path(str(files("gpt_lsp.model") / "default"))


def user_cache_dir() -> Path:
    """Where built models and dequantized checkpoints are cached: $GPT_LSP_CACHE, else the XDG cache."""
    configured = os.environ.get("GPT_LSP_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gpt-lsp"


def read_config(model_dir: Path) -> ModelConfig:
    """`model_dir/gpt-lsp.json`, without the checks of a full `load_model_dir` (the toolchain reads it
    before the ONNX files exist)."""
    return ModelConfig.from_json((Path(model_dir) / CONFIG_NAME).read_text(encoding="utf-8"))


def write_config(model_dir: Path, config: ModelConfig) -> None:
    """Write `config` as `model_dir/gpt-lsp.json`, replacing the file in one step (the toolchain never
    edits it as raw JSON)."""
    path = Path(model_dir) / CONFIG_NAME
    partial = path.with_name(path.name + ".partial")
    partial.write_text(config.to_json(), encoding="utf-8")
    partial.replace(path)
