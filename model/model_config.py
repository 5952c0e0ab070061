"""Reading and writing a model directory's `gpt-lsp.json` through `ModelConfig`, never as raw JSON.

The server reads the file with `ModelConfig.from_json`; writing through the same type keeps every
toolchain edit to fields the server knows, with the types it expects. These two functions belong
beside `ModelConfig` in gpt_lsp.model_dir.
"""

from __future__ import annotations

from pathlib import Path

from gpt_lsp.model_dir import CONFIG_NAME, ModelConfig


def read_config(model_dir: Path) -> ModelConfig:
    """`model_dir/gpt-lsp.json`, without the checks of a full `load_model_dir` (ONNX files may not exist yet)."""
    return ModelConfig.from_json((Path(model_dir) / CONFIG_NAME).read_text(encoding="utf-8"))


def write_config(model_dir: Path, config: ModelConfig) -> None:
    """Write `config` as `model_dir/gpt-lsp.json`, replacing the file in one step."""
    path = Path(model_dir) / CONFIG_NAME
    partial = path.with_name(path.name + ".partial")
    partial.write_text(config.to_json(), encoding="utf-8")
    partial.replace(path)
