"""Dynamic int8 quantization of an exported decoder (weights int8, activations quantized per call).

Dynamic quantization needs no calibration data and about halves CPU latency for small decoders.
Only MatMul/Gemm with a constant weight are quantized: the attention products (Q·Kᵀ, A·V) multiply
two activations, and quantizing those costs accuracy for no size gain. Embedding lookups (Gather on
a constant table) are stored int8 too and dequantized row by row.

Vocabularies of 64k tokens and more get their two vocabulary-sized matrices (the embedding table
and the output layer) in 4 bits instead, blocks of 32 with one scale each (onnxruntime's
MatMulNBits / GatherBlockQuantized, int8 arithmetic): for Gemma 3 270M they hold 336 of its 436
million int8 bytes, and every decoded token reads the whole output layer. Measured on Gemma 3 270M
(one thread, shared two-core machine): decode 26-30 ms/token with 4-bit everywhere vs 30-35 ms with
int8 everywhere, but prefill 1.1 s vs 0.56 s for 480 tokens, because MatMulNBits is slower than
MatMulInteger on many rows; the output layer runs on one row per prompt (logits_to_keep), so
putting only the vocabulary matrices in 4 bits keeps int8's prefill and 4-bit's decode.

Per-tensor dynamic int8 gives one scale to a whole activation row, and the input of each MLP's
output projection has a few channels far larger than the rest (Dettmers et al. 2022, LLM.int8();
Sun et al. 2024, "Massive Activations in Large Language Models"): on Gemma 3 270M it is where int8
loses most against fp32. Those projections are quantized in blocks of 32, weights and activations
alike (8-bit MatMulNBits); see MLP_OUTPUT_PROJECTIONS for the figures.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# A quantized model whose weights exceed this keeps them in a file beside the graph
# (`model.int8.onnx.data`), each tensor at an offset aligned for memory mapping.
EXTERNAL_MIN_BYTES = 64 * 2**20
ALIGNMENT = 65536  # the allocation granularity of Windows; a multiple of every page size
# From this vocabulary size on, the embedding and output matrices are stored in 4 bits.
VOCAB_4BIT_MIN = 65_536
BLOCK_NBITS = 32
# MLP output projections, by module name: their inputs hold the outlier channels that per-tensor
# dynamic int8 flattens, so they are quantized in blocks of 32 instead, weights and activations alike.
# Measured on gemma-code (`gpt-lsp eval`, 100 held-out cuts each, loss over 20k tokens): fp32 loss
# 2.433, boundary EM/ES 34.0/66.0; all per-tensor int8 2.735, 28.0/60.5; these in blocks 2.584,
# 28.0/61.4 (mid-identifier EM 35.0 -> 38.0) for 180 ms more prefill of 480 tokens (531 -> 711 ms);
# the gate/up projections in blocks as well gained little more (2.552, 28.0/63.0) for 375 ms.
MLP_OUTPUT_PROJECTIONS = ("down_proj", "c_proj", "dense_4h_to_h")


class _DropPreprocessHint(logging.Filter):
    """onnxruntime suggests `quant_pre_process` on every call; it matters for static quantization
    (calibration on optimized shapes), not for dynamic MatMul weights, and would only confuse users."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """Keep onnxruntime's quantizers to warnings. They log through the root logger, and importing
    the 4-bit one sets the root level to INFO: a Gemma export printed 4,600 lines of per-tensor notes."""
    root = logging.getLogger()
    level, hint_filter = root.level, _DropPreprocessHint()
    from onnxruntime.quantization import matmul_nbits_quantizer

    root.setLevel(max(level, logging.WARNING))
    root.addFilter(hint_filter)
    nbits_log = logging.getLogger(matmul_nbits_quantizer.__name__)
    nbits_level = nbits_log.level
    nbits_log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.setLevel(level)
        root.removeFilter(hint_filter)
        nbits_log.setLevel(nbits_level)


def quantize_int8(src: Path, dst: Path) -> Path:
    """Write a dynamically quantized copy of the ONNX model `src` to `dst` and return `dst`."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_quantizer():
        model: Any = Path(src)
        loaded = onnx.load(str(src))
        vocabulary_nodes, mlp_outputs = _vocabulary_nodes(loaded), _mlp_output_nodes(loaded)
        if vocabulary_nodes:
            model = loaded = _blockwise(loaded, vocabulary_nodes, bits=4)
        if mlp_outputs:
            model = _blockwise(loaded, mlp_outputs, bits=8)
        del loaded
        quantize_dynamic(
            model_input=model,
            model_output=Path(dst),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Gemm", "Gather"],
            per_channel=False,
            extra_options={"MatMulConstBOnly": True},
        )
    store_weights_beside(Path(dst))
    return Path(dst)


def store_weights_beside(path: Path, min_bytes: int = EXTERNAL_MIN_BYTES) -> None:
    """Move the weights of the ONNX model at `path` into `<name>.data` beside it when they exceed
    `min_bytes`, every tensor at an ALIGNMENT-aligned offset.

    ONNX Runtime memory-maps aligned external data instead of copying it: a table read a row at a
    time (the embedding) then costs memory only for the rows used, and weights the runtime repacks
    are not held twice. Measured on Gemma 3 270M int8 after a 300-token prefill: resident memory
    560 MB with the weights inside the graph, 519 MB beside it; decode speed unchanged."""
    import onnx

    model = onnx.load(str(path))
    tensors = [t for t in model.graph.initializer if len(t.raw_data) >= 1024]
    if sum(len(t.raw_data) for t in tensors) < min_bytes:
        return
    location = path.name + ".data"
    with open(path.with_name(location), "wb") as out:
        for tensor in tensors:
            out.write(bytes(-out.tell() % ALIGNMENT))
            offset = out.tell()
            out.write(tensor.raw_data)
            entries = {"location": location, "offset": str(offset), "length": str(len(tensor.raw_data))}
            tensor.ClearField("raw_data")
            del tensor.external_data[:]
            for key, value in entries.items():
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value
            tensor.data_location = onnx.TensorProto.EXTERNAL
    onnx.save(model, str(path))


def _vocabulary_nodes(model: Any) -> set[str]:
    """Names of the embedding Gather and output MatMul when the vocabulary is big enough to matter."""
    logits = next((o for o in model.graph.output if o.name == "logits"), None)
    vocab = logits.type.tensor_type.shape.dim[-1].dim_value if logits is not None else 0
    if vocab < VOCAB_4BIT_MIN:
        return set()
    shapes = {init.name: list(init.dims) for init in model.graph.initializer}
    found = set()
    for node in model.graph.node:
        if node.op_type == "Gather" and shapes.get(node.input[0], [0])[0] == vocab:
            found.add(node.name)
        if node.op_type == "MatMul" and shapes.get(node.input[1], [0])[-1] == vocab:
            found.add(node.name)
    return found


def _mlp_output_nodes(model: Any) -> set[str]:
    """The MatMuls that project each MLP's wide activations back to the model width (by the module
    names of every supported family): the inputs where a few channels carry huge values."""
    return {
        n.name
        for n in model.graph.node
        if n.op_type == "MatMul" and any(f"/mlp/{name}/" in n.name for name in MLP_OUTPUT_PROJECTIONS)
    }


def _blockwise(model: Any, nodes: set[str], bits: int) -> Any:
    """`model` with the MatMul/Gather `nodes` in blocks of BLOCK_NBITS with one scale each
    (MatMulNBits, GatherBlockQuantized), weights in `bits` bits, activations in int8 per block."""
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    opset = {o.domain: o.version for o in model.opset_import}.get("", 0)
    others = [n.name for n in model.graph.node if n.op_type in ("MatMul", "Gather") and n.name not in nodes]
    config = DefaultWeightOnlyQuantConfig(
        block_size=BLOCK_NBITS,
        is_symmetric=True,
        accuracy_level=4,  # int8 activations: the fast CPU kernel
        op_types_to_quantize=("MatMul", "Gather"),
        quant_axes=(("MatMul", 0), ("Gather", 1)),
        bits=bits,
    )
    quantizer = MatMulNBitsQuantizer(model, nodes_to_exclude=others, algo_config=config)
    quantizer.process()
    out = quantizer.model.model
    # The quantizer raises the default-domain opset; the graph's own ops keep their exported semantics.
    for entry in out.opset_import:
        if entry.domain in ("", "ai.onnx"):
            entry.version = opset
    return out
