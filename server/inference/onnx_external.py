"""Where an ONNX file says its external data lives, read straight from the protobuf wire format.

Tensors too large for one protobuf message live in files beside the graph, and each TensorProto
names its file in `external_data` under the key "location". A crafted model can name
`../../.ssh/id_rsa`, `/etc/shadow` or a symlink leading out of its directory (CVE-2022-25882,
CVE-2024-27318). ONNX Runtime rejects such paths itself only from 1.24 on, which Python 3.10
cannot install, and the `onnx` package is a toolchain dependency, not a server one. So this module
walks the few message fields that can hold a tensor and returns every location; model_dir.py
decides whether each one is safe before any inference session opens the file.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from pathlib import Path

# For each message kind, the length-delimited fields (onnx.proto field numbers) that lead to a
# tensor, and the kind of message each holds. Every other field is skipped by its length.
_TENSOR_PATHS: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training_info", 25: "function"},
    "training_info": {1: "graph", 2: "graph"},
    "graph": {1: "node", 5: "tensor", 15: "sparse_tensor"},
    "function": {7: "node", 11: "attribute"},
    "node": {5: "attribute"},
    "attribute": {
        5: "tensor",
        6: "graph",
        10: "tensor",
        11: "graph",
        22: "sparse_tensor",
        23: "sparse_tensor",
    },
    "sparse_tensor": {1: "tensor", 2: "tensor"},
    "tensor": {13: "entry"},  # TensorProto.external_data: StringStringEntryProto {key = 1, value = 2}
}
_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


def external_data_locations(onnx_path: Path) -> list[str]:
    """Every external-data location named anywhere in the model; ValueError if it is not protobuf."""
    with onnx_path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        found = dict.fromkeys(_locations(data))  # ordered and without repeats
    return list(found)


def _locations(data: mmap.mmap) -> Iterator[str]:
    pending = [("model", 0, len(data))]
    while pending:
        kind, start, end = pending.pop()
        if kind == "entry":
            entry = {number: bytes(data[a:b]) for number, a, b in _fields(data, start, end)}
            if entry.get(1) == b"location":
                yield entry.get(2, b"").decode("utf-8", "replace")
            continue
        inner = _TENSOR_PATHS[kind]
        pending.extend((inner[number], a, b) for number, a, b in _fields(data, start, end) if number in inner)


def _fields(data: mmap.mmap, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(field number, start, end) of each length-delimited field in data[start:end]; others skipped."""
    pos = start
    while pos < end:
        key, pos = _varint(data, pos, end)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            _, pos = _varint(data, pos, end)
        elif wire == _FIXED64:
            pos += 8
        elif wire == _FIXED32:
            pos += 4
        elif wire == _LENGTH:
            length, pos = _varint(data, pos, end)
            if pos + length > end:
                raise ValueError(f"field {number} runs past its message at byte {pos}")
            yield number, pos, pos + length
            pos += length
        else:
            raise ValueError(f"wire type {wire} at byte {pos} is not used by ONNX")
        if pos > end:
            raise ValueError(f"field {number} runs past its message at byte {pos}")


def _varint(data: mmap.mmap, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while pos < end and shift < 64:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise ValueError(f"truncated or overlong varint before byte {pos}")
