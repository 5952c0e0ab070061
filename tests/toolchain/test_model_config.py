"""`finetune` edits gpt-lsp.json through ModelConfig, the type the server reads it with."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from gpt_lsp.inference.model_dir import (
    CONFIG_NAME,
    ModelConfig,
    default_model_path,
    read_config,
    write_config,
)
from gpt_lsp.model import finetune

CHILD = ModelConfig(model_type="gpt2", context_length=256, eos_token="<|endoftext|>", description="child")


def test_write_then_read_gives_the_same_config(tmp_path: Path) -> None:
    config = replace(CHILD, completion_prompt="prefix", provenance={"source": "x"})
    write_config(tmp_path, config)
    assert read_config(tmp_path) == config
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize("layout", ["shipped", "train-out"])
def test_finetuned_model_prompts_like_its_base(tmp_path: Path, layout: str) -> None:
    """`finetune default DATA`: the shipped model says completion_prompt "prefix", so must its child;
    every other field of the child's config stays as the exporter wrote it."""
    base = tmp_path / "base"
    (base / "checkpoint").mkdir(parents=True)
    folder = base if layout == "shipped" else base / "model"
    folder.mkdir(exist_ok=True)
    write_config(folder, replace(CHILD, description="base", completion_prompt="prefix"))
    child = tmp_path / "child"
    child.mkdir()
    write_config(child, CHILD)
    finetune.inherit_completion_prompt(base / "checkpoint", child)
    assert read_config(child) == replace(CHILD, completion_prompt="prefix")


def test_a_fim_base_leaves_the_child_alone(tmp_path: Path) -> None:
    base = tmp_path / "base"
    (base / "checkpoint").mkdir(parents=True)
    write_config(base, CHILD)
    child = tmp_path / "child"
    child.mkdir()
    (child / CONFIG_NAME).write_text(json.dumps(json.loads(CHILD.to_json()), indent=4))
    before = (child / CONFIG_NAME).read_text()
    finetune.inherit_completion_prompt(base / "checkpoint", child)
    assert (child / CONFIG_NAME).read_text() == before


def test_the_shipped_config_reads_as_the_server_reads_it() -> None:
    shipped = default_model_path()
    assert read_config(shipped) == ModelConfig.from_json((shipped / CONFIG_NAME).read_text(encoding="utf-8"))
    assert read_config(shipped).completion_prompt in ("fim", "prefix")


@pytest.mark.parametrize("name", ["default", "tiny"])
def test_finetune_base_takes_the_default_model_names(name: str) -> None:
    checkpoint, config = finetune.resolve_base(Path(name))
    assert checkpoint == default_model_path() / "checkpoint"
    assert config["model_type"] in finetune.SUPPORTED_MODEL_TYPES
