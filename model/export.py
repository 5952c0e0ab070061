"""Export a Hugging Face causal LM to a gpt-lsp model directory (ONNX decoder with KV cache).

Every supported architecture is exported behind one interface, optimum's decoder-with-past naming
(optimum's ONNX Runtime decoder convention), so the engine has no model-type special cases:

    inputs   input_ids                  int64 [batch, sequence]
             attention_mask             int64 [batch, past_sequence + sequence]
             position_ids               int64 [batch, sequence]
             past_key_values.{i}.key    fp32  [batch, num_kv_heads, past_sequence, head_dim]
             past_key_values.{i}.value  fp32  [batch, num_kv_heads, past_sequence, head_dim]
             logits_to_keep             int64 scalar: logits only for the last N positions
    outputs  logits                     fp32  [batch, logits_to_keep, vocab]
             present.{i}.key / .value   fp32  [batch, num_kv_heads, past_sequence + sequence, head_dim]

One graph serves both prefill (past_sequence = 0) and decode. gpt_bigcode's multi-query cache
comes out as one key/value head per layer (num_kv_heads = 1) like any grouped-query model.
The engine asks for the last position's logits only: for Gemma's 262,144-token vocabulary the
output layer over a 500-token prompt would cost more than the transformer itself.

SOURCE is a Hugging Face folder, a GGUF file (recognised by its magic bytes, so an Ollama blob
works too; dequantized once into a cached checkpoint by `pretrained.resolve_source`) or a named base.

Why not optimum's exporter: measured with the transformers this project pins (5.25), the newest
optimum-onnx (0.1.0, with optimum 2.1) declares transformers < 4.58 and fails on import
(`cannot import name 'get_parameter_dtype' from transformers.modeling_utils`); pip would downgrade
transformers to 4.57 to install it, which the toolchain cannot afford. This exporter keeps
optimum's I/O naming, so a graph from optimum and one from here are served alike.

Sliding-window models (Gemma 3: 512 tokens on 15 of 18 layers, Starcoder2) keep a full cache per
layer and the window lives in the traced attention mask, so the graph is exact at any length. The
default context length is the window itself (for Gemma 3, 512): on two CPU cores prefill costs
roughly a millisecond per token and the latency targets leave room for about that many prompt tokens,
and within the window every layer sees all of them, so nothing the model was shown is half-visible.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from gpt_lsp.inference.model_dir import (
    TOKENIZER_NAME,
    VARIANT_FILES,
    ModelConfig,
    ModelDir,
    load_model_dir,
    write_config,
)

# The one list of architectures the toolchain accepts (export and finetune), by config `model_type`.
SUPPORTED_MODEL_TYPES = (
    "gpt2",
    "llama",
    "qwen2",
    "gemma3_text",
    "starcoder2",
    "phi3",
    "gpt_bigcode",
    "gpt_neox",
)
# Recorded in every export's provenance (whose values are strings); raised when the exported graph changes, so cached builds
# (`gpt-lsp build gemma-code`) made by an older exporter are exported again. 2: grouped attention;
# 3: big int8 weights beside the graph (quantize.store_weights_beside); 4: MLP output projections
# quantized in blocks (quantize.MLP_OUTPUT_PROJECTIONS).
EXPORT_REVISION = "4"
# Families whose eager attention is transformers' grouped-query one (repeat_kv, then the products):
# exported with model/attention.py, which reads the cache without repeating it.
GROUPED_ATTENTION_TYPES = ("llama", "qwen2", "gemma3_text", "starcoder2", "phi3")
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

    `checkpoint` is a Hugging Face checkpoint folder, a GGUF file or a named base (module doc).
    Writes `model.onnx` (fp32), `model.int8.onnx` when `int8`, `tokenizer.json` and `gpt-lsp.json`.
    `context_length` defaults to the model's position limit, or its sliding window when it has one;
    `on_stage` receives progress lines.
    """
    from gpt_lsp.model.pretrained import PretrainedError, checkpoint_provenance, resolve_source

    say = on_stage or (lambda _: None)
    try:
        checkpoint = resolve_source(Path(checkpoint), on_stage=say)
    except PretrainedError as err:
        raise ExportError(str(err)) from err
    out_dir = Path(out_dir)
    hf_config = read_checkpoint_config(checkpoint)
    model_config = _model_config(checkpoint, hf_config, context_length, int8)
    provenance = {**checkpoint_provenance(checkpoint), "export_revision": EXPORT_REVISION}
    model_config = replace(model_config, provenance=provenance)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in VARIANT_FILES.values():  # a variant left from an earlier export would be misleading
        (out_dir / stale).unlink(missing_ok=True)
        (out_dir / f"{stale}.data").unlink(missing_ok=True)

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
    write_config(out_dir, model_config)
    say(f"wrote {out_dir} in {time.perf_counter() - started:.1f}s")
    return load_model_dir(out_dir)


def _model_config(
    checkpoint: Path, hf_config: dict[str, Any], context_length: int | None, int8: bool
) -> ModelConfig:
    """The `gpt-lsp.json` contents: prompt format and special tokens, read from the checkpoint."""
    from tokenizers import Tokenizer

    from gpt_lsp.model.tokenizer import PAD_TOKEN, find_fim_tokens

    tokenizer = Tokenizer.from_file(str(checkpoint / TOKENIZER_NAME))
    positions = hf_config.get("n_positions") or hf_config.get("max_position_embeddings")
    window = hf_config.get("sliding_window")
    context_length = context_length or (min(positions, window) if positions and window else positions)
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
    fim = find_fim_tokens(tokenizer)
    return ModelConfig(
        model_type=hf_config["model_type"],
        context_length=int(context_length),
        eos_token=eos,
        bos_token=_prepended_token(tokenizer),
        fim=fim,
        completion_prompt="fim" if fim else "prefix",
        pad_token=pad,
        variants=variants,
        description=f"exported from {checkpoint.resolve().name}",
    )


def _prepended_token(tokenizer: Any) -> str | None:
    """The token the tokenizer puts before every text (Gemma's and Llama's <bos>), or None.

    Such models were trained with it at position 0 and go astray without it, so the server
    prepends it to every prompt.
    """
    plain = tokenizer.encode("x", add_special_tokens=False).ids
    special = tokenizer.encode("x").ids
    if len(special) > len(plain) and special[1:] == plain:
        return tokenizer.id_to_token(special[0])
    return None


def _load_model(checkpoint: Path) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    from gpt_lsp.model import attention

    # Explicit mask and softmax that trace into plain ONNX ops: transformers' eager attention, or
    # for families whose eager attention repeats grouped key/value heads, the same arithmetic
    # without the copy (model/attention.py).
    model_type = read_checkpoint_config(checkpoint)["model_type"]
    implementation = attention.register() if model_type in GROUPED_ATTENTION_TYPES else "eager"
    model = AutoModelForCausalLM.from_pretrained(
        checkpoint, attn_implementation=implementation, dtype=torch.float32
    )
    model.config.use_cache = True
    return model.eval()


def _decoder_with_past(model: Any) -> tuple[Any, int]:
    """Wrap `model` as forward(input_ids, attention_mask, position_ids, logits_to_keep, *flat_past)
    -> (logits, *flat_present).

    The cache is one plain (unbounded) layer per model layer, also for sliding-window layers: the
    mask transformers builds from `config.sliding_window` hides what lies outside the window, so
    present = past + sequence holds for every layer and the engine has no per-layer special case.
    Logits come only for the last `logits_to_keep` positions: with a 262,144-token vocabulary the
    output layer over a whole prompt costs more than the transformer.
    """
    import torch
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    text_config = model.config.get_text_config()
    num_layers = text_config.num_hidden_layers
    softcap = getattr(text_config, "final_logit_softcapping", None)

    class DecoderWithPast(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, position_ids, logits_to_keep, *past):
            cache = DynamicCache()
            cache.layers = [DynamicLayer() for _ in range(num_layers)]
            for i, layer in enumerate(cache.layers):
                # Set the tensors directly: `update` would concatenate onto a 1-D empty placeholder.
                key, value = past[2 * i], past[2 * i + 1]
                layer.lazy_initialization(key, value)
                layer.keys, layer.values = key, value
            out = self.model.base_model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                cache=cache,
                use_cache=True,
            )
            hidden = out.last_hidden_state
            sequence = hidden.shape[1]
            kept = torch.arange(sequence - logits_to_keep, sequence, device=hidden.device)
            logits = self.model.get_output_embeddings()(hidden.index_select(1, kept))
            if softcap:  # Gemma 2 style; None for Gemma 3
                logits = torch.tanh(logits / softcap) * softcap
            presents = [t for layer in out.cache.layers for t in (layer.keys, layer.values)]
            return (logits, *presents)

    return DecoderWithPast().eval(), num_layers


def _kv_shape(model: Any) -> tuple[int, int]:
    """(num_kv_heads, head_dim) of the cache, read from one forward pass rather than per-type config keys."""
    import torch

    with torch.no_grad():
        out = model(input_ids=torch.zeros(1, 1, dtype=torch.long), use_cache=True)
    keys = out.cache.layers[0].keys  # (B, num_kv_heads, T, head_dim)
    return keys.shape[1], keys.shape[3]


def example_inputs(
    model: Any, batch: int, sequence: int, past: int, seed: int = 0, keep: int | None = None
) -> dict[str, Any]:
    """Named example inputs in the ONNX interface (torch tensors); random ids, random past; logits for
    the last `keep` positions (all by default)."""
    import torch

    num_layers = model.config.get_text_config().num_hidden_layers
    kv_heads, head_dim = _kv_shape(model)
    gen = torch.Generator().manual_seed(seed)
    vocab = model.config.get_text_config().vocab_size
    inputs = {
        "input_ids": torch.randint(0, vocab, (batch, sequence), generator=gen),
        "attention_mask": torch.ones(batch, past + sequence, dtype=torch.long),
        "position_ids": torch.arange(past, past + sequence).expand(batch, sequence).contiguous(),
        "logits_to_keep": torch.tensor(keep if keep is not None else sequence, dtype=torch.long),
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
    # Keep fewer logits than positions while tracing, so neither length is frozen as the other.
    inputs = example_inputs(model, _TRACE_BATCH, _TRACE_SEQUENCE, _TRACE_PAST, keep=_TRACE_SEQUENCE - 1)
    past_names = [f"past_key_values.{i}.{kind}" for i in range(num_layers) for kind in ("key", "value")]
    present_names = [f"present.{i}.{kind}" for i in range(num_layers) for kind in ("key", "value")]
    dynamic_axes = {
        "input_ids": {0: "batch", 1: "sequence"},
        "attention_mask": {0: "batch", 1: "past_sequence + sequence"},
        "position_ids": {0: "batch", 1: "sequence"},
        "logits": {0: "batch", 1: "logits_to_keep"},
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
    for past, keep in ((0, 3), (4, 3), (4, 1)):
        inputs = example_inputs(model, batch=1, sequence=3, past=past, seed=1, keep=keep)
        with torch.no_grad():
            expected = wrapper(*inputs.values())[0].numpy()
        got = session.run(["logits"], {k: v.numpy() for k, v in inputs.items()})[0]
        if not np.allclose(got, expected, atol=atol):
            diff = float(np.abs(got - expected).max())
            raise ExportError(
                f"{path}: ONNX logits differ from torch by {diff:.2g} (past length {past}, kept {keep})"
            )


def register(subparsers: Any) -> None:
    """Add the `export` subcommand to the `gpt-lsp` CLI."""
    parser = subparsers.add_parser(
        "export",
        help="export a Hugging Face checkpoint to a gpt-lsp model directory (ONNX)",
        description=(
            "Export a local Hugging Face causal-LM directory (config.json, weights, tokenizer.json), a GGUF "
            "file (dequantized once into a cached checkpoint) or a named base to a "
            "model directory the server can load: model.onnx (fp32, with KV cache), tokenizer.json and "
            f"gpt-lsp.json. Supported model types: {', '.join(SUPPORTED_MODEL_TYPES)}. "
            "Needs the train extra: pip install 'gpt-lsp[train]'."
        ),
        epilog="examples: gpt-lsp export runs/checkpoint ~/.cache/gpt-lsp/my-model --int8\n"
        "          gpt-lsp export gemma3-270m ~/.cache/gpt-lsp/gemma --int8",
    )
    parser.add_argument(
        "checkpoint",
        type=Path,
        metavar="SOURCE",
        help="Hugging Face model directory, GGUF file (an Ollama blob too) or a named base (gemma3-270m)",
    )
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
