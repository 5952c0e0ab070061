"""Shared fixtures: a tiny tokenizer, tiny random checkpoints of every supported type, a tiny model directory.

The builders are plain functions so e2e tests and scripts can reuse them
(`sys.path.insert(0, "tests"); from conftest import build_tiny_model_dir`).
Models are 2 layers, hidden 32, vocab 400: exports take about a second each on one CPU core.
"""

from __future__ import annotations

import functools
import inspect
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from gpt_lsp.inference.model_dir import ModelDir

TINY_VOCAB_SIZE = 400
TINY_CONTEXT = 128
TINY_SLIDING_WINDOW = 8
# Stdlib modules whose source (~80 KB of ordinary Python) trains the tiny tokenizer in ~0.1 s.
_CORPUS_MODULES = ("textwrap", "string", "json.decoder", "json.encoder", "fnmatch", "shlex")


def tiny_corpus() -> list[str]:
    """About 80 KB of real Python source, from the standard library."""
    import importlib

    return [inspect.getsource(importlib.import_module(name)) for name in _CORPUS_MODULES]


@functools.cache
def build_tiny_tokenizer() -> Tokenizer:
    """A byte-level BPE with the gpt-lsp special tokens, trained on `tiny_corpus()` (cached per process)."""
    from gpt_lsp.model.tokenizer import train_tokenizer

    return train_tokenizer(tiny_corpus(), TINY_VOCAB_SIZE)


def _tiny_config(model_type: str, vocab_size: int) -> Any:
    import transformers as tf

    from gpt_lsp.model.tokenizer import EOS_TOKEN, PAD_TOKEN

    tokenizer = build_tiny_tokenizer()
    ids = {
        "bos_token_id": tokenizer.token_to_id(EOS_TOKEN),
        "eos_token_id": tokenizer.token_to_id(EOS_TOKEN),
        "pad_token_id": tokenizer.token_to_id(PAD_TOKEN),
        "vocab_size": vocab_size,
    }
    gpt2_like = {"n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": TINY_CONTEXT}
    llama_like = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": TINY_CONTEXT,
    }
    if model_type == "gpt2":
        return tf.GPT2Config(**gpt2_like, **ids)
    if model_type == "gpt_bigcode":
        return tf.GPTBigCodeConfig(**gpt2_like, multi_query=True, **ids)
    if model_type == "llama":
        return tf.LlamaConfig(**llama_like, num_key_value_heads=2, **ids)
    if model_type == "qwen2":
        return tf.Qwen2Config(**llama_like, num_key_value_heads=2, **ids)
    if model_type == "gpt_neox":
        return tf.GPTNeoXConfig(**llama_like, rotary_pct=0.5, **ids)
    if model_type == "gemma3_text":
        # A window far shorter than the test prompts, so the traced sliding mask is exercised;
        # one layer of each kind, each with its own rope base as in Gemma 3.
        return tf.Gemma3TextConfig(
            **llama_like,
            num_key_value_heads=1,
            head_dim=8,
            query_pre_attn_scalar=8,
            sliding_window=TINY_SLIDING_WINDOW,
            layer_types=["sliding_attention", "full_attention"],
            **ids,
        )
    if model_type == "starcoder2":
        return tf.Starcoder2Config(**llama_like, num_key_value_heads=2, sliding_window=None, **ids)
    if model_type == "phi3":
        return tf.Phi3Config(
            **llama_like, num_key_value_heads=2, original_max_position_embeddings=TINY_CONTEXT, **ids
        )
    raise ValueError(f"no tiny config for model type {model_type!r}")


def build_tiny_checkpoint(model_type: str, path: Path, seed: int = 0) -> Path:
    """Save a random-init tiny HF causal LM of `model_type` (+ tokenizer.json) to `path`."""
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = build_tiny_tokenizer()
    config = _tiny_config(model_type, tokenizer.get_vocab_size())
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save(str(path / "tokenizer.json"))
    return path


def build_tiny_model_dir(path: Path, model_type: str = "gpt2") -> ModelDir:
    """Export a tiny checkpoint to a model directory at `path` with both fp32 and int8 variants."""
    from gpt_lsp.model.export import export_checkpoint

    checkpoint = build_tiny_checkpoint(model_type, path.parent / f"{path.name}-checkpoint")
    return export_checkpoint(checkpoint, path, int8=True)


def pytest_configure(config: pytest.Config) -> None:
    """Servers started without a model choose what this machine has built (the code-tuned Gemma once
    `gpt-lsp build gemma-code` ran): tests get an empty cache of their own so they see a fresh install.
    The opt-in Gemma tests keep the real cache, where the imported model already lies."""
    if "gemma" not in (config.getoption("markexpr") or ""):
        os.environ["GPT_LSP_CACHE"] = tempfile.mkdtemp(prefix="gpt-lsp-test-cache-")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of the real 253 MB Gemma run only when asked for (`make gemma-test`, `-m gemma`)."""
    if "gemma" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="needs the real Gemma 3 270M: run `make gemma-test`")
    for item in items:
        if "gemma" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_tokenizer() -> Tokenizer:
    return build_tiny_tokenizer()


@pytest.fixture(scope="session")
def make_tiny_checkpoint() -> Callable[[str, Path], Path]:
    """Factory: `make_tiny_checkpoint(model_type, tmp_path) -> checkpoint directory`."""

    def make(model_type: str, tmp_path: Path) -> Path:
        return build_tiny_checkpoint(model_type, Path(tmp_path) / f"{model_type}-checkpoint")

    return make


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> ModelDir:
    """A tiny gpt2 model directory with `model.onnx` and `model.int8.onnx` (built once per session)."""
    pytest.importorskip("torch")
    return build_tiny_model_dir(tmp_path_factory.mktemp("tiny-model") / "gpt2")
