"""Export a Hugging Face causal LM to a gpt-lsp model directory (ONNX decoder with KV cache).

Every supported architecture is exported behind one interface, optimum's decoder-with-past naming
(STYLE.md), so the engine has no model-type special cases:

    inputs   input_ids                  int64 [batch, sequence]
             attention_mask             int64 [batch, past_sequence + sequence]
             position_ids               int64 [batch, sequence]
             past_key_values.{i}.key    fp32  [batch, num_kv_heads, past_sequence, head_dim]
             past_key_values.{i}.value  fp32  [batch, num_kv_heads, past_sequence, head_dim]
    outputs  logits                     fp32  [batch, sequence, vocab]
             present.{i}.key / .value   fp32  [batch, num_kv_heads, past_sequence + sequence, head_dim]

One graph serves both prefill (past_sequence = 0) and decode. gpt_bigcode's multi-query cache
comes out as one key/value head per layer (num_kv_heads = 1) like any grouped-query model.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpt_lsp.model_dir import (
    CONFIG_NAME,
    TOKENIZER_NAME,
    VARIANT_FILES,
    FimTokens,
    ModelConfig,
    ModelDir,
    load_model_dir,
)

SUPPORTED_MODEL_TYPES = ("gpt2", "llama", "qwen2", "gpt_bigcode", "gpt_neox")
# Opset 17 has LayerNormalization and is read by every onnxruntime since 1.13.
DEFAULT_OPSET = 17
# Shapes of the example used to trace the graph. Past and sequence lengths differ from each other
# and from the batch size so that no length can be mistaken for another and frozen into the graph;
# the past is non-empty because a zero-length cache takes a different Python branch in transformers.
_TRACE_BATCH, _TRACE_SEQUENCE, _TRACE_PAST = 2, 3, 5


class ExportError(Exception):
    """The checkpoint cannot be exported; the message says why and what to do."""


def read_checkpoint_config(checkpoint: Path) -> dict[str, Any]:
    """The checkpoint's `config.json`, checked for a supported model type before torch is imported."""
    config_path = Path(checkpoint) / "config.json"
    if not config_path.is_file():
        raise ExportError(f"{checkpoint}: no config.json; expected a Hugging Face causal-LM directory")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ExportError(
            f"{config_path}: model type {model_type!r} is not supported for export; "
            f"supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    if not (Path(checkpoint) / TOKENIZER_NAME).is_file():
        raise ExportError(f"{checkpoint}: no {TOKENIZER_NAME}; save the tokenizer next to the weights")
    return config


def export_checkpoint(
    checkpoint: Path,
    out_dir: Path,
    int8: bool = False,
    context_length: int | None = None,
    opset: int = DEFAULT_OPSET,
    on_stage: Callable[[str], None] | None = None,
) -> ModelDir:
    """Export `checkpoint` into the model directory `out_dir` and return it, validated.

    Writes `model.onnx` (fp32), `model.int8.onnx` when `int8`, `tokenizer.json` and `gpt-lsp.json`.
    `context_length` defaults to the model's position limit; `on_stage` receives progress lines.
    """
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    say = on_stage or (lambda _: None)
    hf_config = read_checkpoint_config(checkpoint)
    model_config = _model_config(checkpoint, hf_config, context_length, int8)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in VARIANT_FILES.values():  # a variant left from an earlier export would be misleading
        (out_dir / stale).unlink(missing_ok=True)

    started = time.perf_counter()
    say(f"loading {checkpoint} ({hf_config['model_type']})")
    model = _load_model(checkpoint)
    fp32_path = out_dir / VARIANT_FILES["fp32"]
    say(f"exporting {fp32_path.name} (opset {opset})")
    export_onnx(model, fp32_path, opset)
    say("checking ONNX logits against torch")
    verify_onnx(model, fp32_path)
    if int8:
        from gpt_lsp.model.quantize import quantize_int8

        say(f"quantizing to {VARIANT_FILES['int8']}")
        quantize_int8(fp32_path, out_dir / VARIANT_FILES["int8"])
    shutil.copyfile(checkpoint / TOKENIZER_NAME, out_dir / TOKENIZER_NAME)
    (out_dir / CONFIG_NAME).write_text(model_config.to_json(), encoding="utf-8")
    say(f"wrote {out_dir} in {time.perf_counter() - started:.1f}s")
    return load_model_dir(out_dir)


def _model_config(
    checkpoint: Path, hf_config: dict[str, Any], context_length: int | None, int8: bool
) -> ModelConfig:
    """The `gpt-lsp.json` contents: prompt format and special tokens, read from the checkpoint."""
    from tokenizers import Tokenizer

    from gpt_lsp.model.tokenizer import PAD_TOKEN, has_fim_tokens

    tokenizer = Tokenizer.from_file(str(checkpoint / TOKENIZER_NAME))
    positions = hf_config.get("n_positions") or hf_config.get("max_position_embeddings")
    context_length = context_length or positions
    if not context_length:
        raise ExportError(
            f"{checkpoint}/config.json: no n_positions or max_position_embeddings; pass --context-length"
        )
    if positions and context_length > positions:
        raise ExportError(f"context length {context_length} exceeds the model's {positions} positions")

    def token(key: str) -> str | None:
        token_id = hf_config.get(key)
        if isinstance(token_id, list):  # several end tokens (Llama 3): the first is the document end
            token_id = token_id[0] if token_id else None
        if token_id is None:
            return None
        text = tokenizer.id_to_token(token_id)
        if text is None:
            raise ExportError(f"{checkpoint}/config.json: {key} {token_id} is not in {TOKENIZER_NAME}")
        return text

    eos = token("eos_token_id")
    if eos is None:
        raise ExportError(
            f"{checkpoint}/config.json: no eos_token_id; the server needs it to stop generating"
        )
    pad = token("pad_token_id") or (PAD_TOKEN if tokenizer.token_to_id(PAD_TOKEN) is not None else None)
    variants = {"fp32": VARIANT_FILES["fp32"]}
    if int8:
        variants["int8"] = VARIANT_FILES["int8"]
    return ModelConfig(
        model_type=hf_config["model_type"],
        context_length=int(context_length),
        eos_token=eos,
        fim=FimTokens() if has_fim_tokens(tokenizer) else None,
        pad_token=pad,
        variants=variants,
        description=f"exported from {checkpoint.resolve().name}",
    )


def _load_model(checkpoint: Path) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    # Eager attention: its explicit mask and softmax trace into plain ONNX ops on every model type.
    model = AutoModelForCausalLM.from_pretrained(checkpoint, attn_implementation="eager", dtype=torch.float32)
    model.config.use_cache = True
    return model.eval()


def _decoder_with_past(model: Any) -> tuple[Any, int]:
    """Wrap `model` as forward(input_ids, attention_mask, position_ids, *flat_past) -> (logits, *flat_present).

    Returns the wrapper and the number of layers.
    """
    import torch
    from transformers import DynamicCache

    num_layers = model.config.get_text_config().num_hidden_layers

    class DecoderWithPast(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, position_ids, *past):
            cache = DynamicCache(config=self.model.config)
            for i, layer in enumerate(cache.layers):
                # Set the tensors directly: `update` would concatenate onto a 1-D empty placeholder.
                key, value = past[2 * i], past[2 * i + 1]
                layer.lazy_initialization(key, value)
                layer.keys, layer.values = key, value
            out = self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                cache=cache,
                use_cache=True,
            )
            presents = [t for layer in out.cache.layers for t in (layer.keys, layer.values)]
            return (out.logits, *presents)

    return DecoderWithPast().eval(), num_layers


def _kv_shape(model: Any) -> tuple[int, int]:
    """(num_kv_heads, head_dim) of the cache, read from one forward pass rather than per-type config keys."""
    import torch

    with torch.no_grad():
        out = model(input_ids=torch.zeros(1, 1, dtype=torch.long), use_cache=True)
    keys = out.cache.layers[0].keys  # (B, num_kv_heads, T, head_dim)
    return keys.shape[1], keys.shape[3]


def example_inputs(model: Any, batch: int, sequence: int, past: int, seed: int = 0) -> dict[str, Any]:
    """Named example inputs in the ONNX interface (torch tensors); random ids, random past."""
    import torch

    num_layers = model.config.get_text_config().num_hidden_layers
    kv_heads, head_dim = _kv_shape(model)
    gen = torch.Generator().manual_seed(seed)
    vocab = model.config.get_text_config().vocab_size
    inputs = {
        "input_ids": torch.randint(0, vocab, (batch, sequence), generator=gen),
        "attention_mask": torch.ones(batch, past + sequence, dtype=torch.long),
        "position_ids": torch.arange(past, past + sequence).expand(batch, sequence).contiguous(),
    }
    for i in range(num_layers):
        for kind in ("key", "value"):
            inputs[f"past_key_values.{i}.{kind}"] = torch.randn(
                batch, kv_heads, past, head_dim, generator=gen
            )
    return inputs


def export_onnx(model: Any, path: Path, opset: int = DEFAULT_OPSET) -> None:
    """Trace `model` into an ONNX decoder-with-past at `path` (I/O names in the module docstring)."""
    import torch

    wrapper, num_layers = _decoder_with_past(model)
    inputs = example_inputs(model, _TRACE_BATCH, _TRACE_SEQUENCE, _TRACE_PAST)
    past_names = [f"past_key_values.{i}.{kind}" for i in range(num_layers) for kind in ("key", "value")]
    present_names = [f"present.{i}.{kind}" for i in range(num_layers) for kind in ("key", "value")]
    dynamic_axes = {
        "input_ids": {0: "batch", 1: "sequence"},
        "attention_mask": {0: "batch", 1: "past_sequence + sequence"},
        "position_ids": {0: "batch", 1: "sequence"},
        "logits": {0: "batch", 1: "sequence"},
        **{name: {0: "batch", 2: "past_sequence"} for name in past_names},
        **{name: {0: "batch", 2: "past_sequence + sequence"} for name in present_names},
    }
    # The TorchScript exporter (dynamo=False) handles the Python-level cache objects of
    # transformers; see tests/model/test_export.py for the parity checks that keep it honest.
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings about constants that the parity tests cover
        torch.onnx.export(
            wrapper,
            tuple(inputs.values()),
            str(path),
            input_names=list(inputs),
            output_names=["logits", *present_names],
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )


def verify_onnx(model: Any, path: Path, atol: float = 1e-3) -> None:
    """Compare ONNX and torch logits for an empty and a non-empty past; raise ExportError on mismatch."""
    import numpy as np
    import onnxruntime as ort
    import torch

    wrapper, _ = _decoder_with_past(model)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for past in (0, 4):
        inputs = example_inputs(model, batch=1, sequence=3, past=past, seed=1)
        with torch.no_grad():
            expected = wrapper(*inputs.values())[0].numpy()
        got = session.run(["logits"], {k: v.numpy() for k, v in inputs.items()})[0]
        if not np.allclose(got, expected, atol=atol):
            diff = float(np.abs(got - expected).max())
            raise ExportError(f"{path}: ONNX logits differ from torch by {diff:.2g} (past length {past})")


def register(subparsers: Any) -> None:
    """Add the `export` subcommand to the `gpt-lsp` CLI."""
    parser = subparsers.add_parser(
        "export",
        help="export a Hugging Face checkpoint to a gpt-lsp model directory (ONNX)",
        description=(
            "Export a local Hugging Face causal-LM directory (config.json, weights, tokenizer.json) to a "
            "model directory the server can load: model.onnx (fp32, with KV cache), tokenizer.json and "
            f"gpt-lsp.json. Supported model types: {', '.join(SUPPORTED_MODEL_TYPES)}. "
            "Needs the train extra: pip install 'gpt-lsp[train]'."
        ),
        epilog="example: gpt-lsp export runs/checkpoint ~/.cache/gpt-lsp/my-model --int8",
    )
    parser.add_argument("checkpoint", type=Path, metavar="CHECKPOINT", help="Hugging Face model directory")
    parser.add_argument(
        "out_dir", type=Path, metavar="OUT_DIR", help="model directory to write (created if missing)"
    )
    parser.add_argument(
        "--int8",
        action="store_true",
        help="also write model.int8.onnx (dynamic int8 quantization: smaller and faster on CPU; the server prefers it)",
    )
    parser.add_argument(
        "--opset",
        type=int,
        default=DEFAULT_OPSET,
        metavar="N",
        help=f"ONNX opset version (default: {DEFAULT_OPSET})",
    )
    parser.add_argument(
        "--context-length",
        type=int,
        default=None,
        metavar="N",
        help="context length recorded in gpt-lsp.json (default: the model's position limit)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """`gpt-lsp export`: returns the process exit status."""
    import sys

    try:
        export_checkpoint(
            args.checkpoint,
            args.out_dir,
            int8=args.int8,
            context_length=args.context_length,
            opset=args.opset,
            on_stage=lambda line: print(f"export: {line}", file=sys.stderr),
        )
    except (ExportError, ValueError, OSError) as err:
        print(f"gpt-lsp export: error: {err}", file=sys.stderr)
        return 1
    return 0
