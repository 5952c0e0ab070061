"""Dynamic int8 quantization of an exported decoder (weights int8, activations quantized per call).

Dynamic quantization needs no calibration data and about halves CPU latency for small decoders.
Only MatMul/Gemm with a constant weight are quantized: the attention products (Q·Kᵀ, A·V) multiply
two activations, and quantizing those costs accuracy for no size gain. Embedding lookups (Gather on
a constant table) are stored int8 too and dequantized row by row: Gemma's 262,144 x 640 table is
671 MB in fp32, more than the rest of the model.
"""

from __future__ import annotations

import logging
from pathlib import Path


class _DropPreprocessHint(logging.Filter):
    """onnxruntime suggests `quant_pre_process` on every call; it matters for static quantization
    (calibration on optimized shapes), not for dynamic MatMul weights, and would only confuse users."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def quantize_int8(src: Path, dst: Path) -> Path:
    """Write a dynamically quantized copy of the ONNX model `src` to `dst` and return `dst`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    hint_filter = _DropPreprocessHint()
    root = logging.getLogger()  # onnxruntime logs through the root logger (logging.warning)
    root.addFilter(hint_filter)
    try:
        quantize_dynamic(
            model_input=Path(src),
            model_output=Path(dst),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Gemm", "Gather"],
            per_channel=False,
            extra_options={"MatMulConstBOnly": True},
        )
    finally:
        root.removeFilter(hint_filter)
    return Path(dst)
