"""ONNX external data must stay inside the model directory, whatever onnxruntime version is installed.

Graphs are built with the `onnx` package (a toolchain dependency); the server reads them with its
own protobuf walk (server/inference/onnx_external.py), cross-checked here against onnx's enumeration.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from gpt_lsp.inference.model_dir import (
    CONFIG_NAME,
    TOKENIZER_NAME,
    ModelDirError,
    default_model_path,
    load_model_dir,
)
from gpt_lsp.inference.onnx_external import external_data_locations

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

WEIGHTS = np.arange(4, dtype=np.float32)


def external(name: str, location: str) -> TensorProto:
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=[4])
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    return tensor


def graph_with(location: str, name: str = "g") -> onnx.GraphProto:
    """y = x + w, with w read from `location`."""
    return helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        [external("w", location)],
    )


def save(graph: onnx.GraphProto, path: Path, **kwargs) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], **kwargs)
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture
def model_dir(tmp_path) -> Path:
    """A model directory (the shipped config and tokenizer) whose model.onnx the test writes."""
    root = tmp_path / "model"
    root.mkdir()
    for name in (CONFIG_NAME, TOKENIZER_NAME):
        shutil.copy(default_model_path() / name, root / name)
    config = (root / CONFIG_NAME).read_text().replace('"model.int8.onnx"', '"model.onnx"')
    (root / CONFIG_NAME).write_text(config)
    (root / "w.data").write_bytes(WEIGHTS.tobytes())
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "w.data").write_bytes(WEIGHTS.tobytes())
    return root


def test_data_inside_the_directory_loads_and_runs(model_dir):
    ort = pytest.importorskip("onnxruntime")
    save(graph_with("w.data"), model_dir / "model.onnx")
    loaded = load_model_dir(model_dir)
    session = ort.InferenceSession(str(loaded.onnx_path()), providers=["CPUExecutionProvider"])
    assert session.run(None, {"x": np.ones(4, np.float32)})[0].tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "location, reason",
    [
        ("../outside/w.data", "must be a relative path inside the model directory"),
        ("sub/../../outside/w.data", "must be a relative path inside the model directory"),
        ("..\\outside\\w.data", "must be a relative path inside the model directory"),
        ("ABSOLUTE", "must be a relative path inside the model directory"),
        ("C:/outside/w.data", "must be a relative path inside the model directory"),
        ("link.data", "outside the model directory"),
        ("linked-dir/w.data", "outside the model directory"),
        ("absent.data", "is missing"),
    ],
)
def test_data_outside_the_directory_is_refused_before_onnxruntime_opens_it(model_dir, location, reason):
    outside = model_dir.parent / "outside"
    if location == "ABSOLUTE":
        location = str(outside / "w.data")
    (model_dir / "link.data").symlink_to(outside / "w.data")
    (model_dir / "linked-dir").symlink_to(outside, target_is_directory=True)
    save(graph_with(location), model_dir / "model.onnx")
    with pytest.raises(ModelDirError, match=reason):
        load_model_dir(model_dir)


def test_locations_are_found_wherever_onnx_allows_a_tensor(tmp_path):
    """Initializers, Constant-node attributes, If/Loop subgraphs, sparse initializers, functions."""
    sub = graph_with("then.data", "then")
    constant = helper.make_node("Constant", [], ["c"], value=external("c", "constant.data"))
    branch = helper.make_node(
        "If", ["cond"], ["y"], then_branch=sub, else_branch=graph_with("else.data", "else")
    )
    sparse = helper.make_sparse_tensor(
        external("sv", "sparse-values.data"), external("si", "sparse-index.data"), [8]
    )
    function = helper.make_function(
        "local",
        "f",
        [],
        ["o"],
        [helper.make_node("Constant", [], ["o"], value=external("o", "function.data"))],
        [helper.make_opsetid("", 17)],
    )
    graph = helper.make_graph(
        [constant, branch, helper.make_node("f", [], ["o"], domain="local")],
        "main",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        [external("w", "initializer.data")],
        sparse_initializer=[sparse],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)],
        functions=[function],
    )
    path = tmp_path / "everywhere.onnx"
    onnx.save(model, path)
    found = set(external_data_locations(path))
    from onnx.external_data_helper import _get_all_tensors

    # onnx's own enumeration covers initializers, attributes and subgraphs; ours must cover as much.
    assert {e.value for t in _get_all_tensors(model) for e in t.external_data} <= found
    assert found == {
        "then.data",
        "else.data",
        "constant.data",
        "initializer.data",
        "sparse-values.data",
        "sparse-index.data",
        "function.data",
    }


def test_the_shipped_model_names_no_external_data():
    assert external_data_locations(default_model_path() / "model.int8.onnx") == []


@pytest.mark.parametrize("garbage", [b"\xff" * 64, b"\x3a\xff\xff\xff\xff\x0f", b"\x0b\x00"])
def test_a_file_that_is_not_protobuf_is_a_clear_error(model_dir, garbage):
    (model_dir / "model.onnx").write_bytes(garbage)
    with pytest.raises(ModelDirError, match="not a readable ONNX file"):
        load_model_dir(model_dir)
